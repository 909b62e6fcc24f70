/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "itk-secret-set.h"

G_BEGIN_DECLS

/* The credential store (DESIGN.md §6): one JSON file in the state
 * directory, mode 0600, replaced atomically (temp file, fsync, rename) by
 * GIO off the main loop. Names, usernames, gateway URLs and descriptions are
 * readable through the API; passwords and API tokens only reach executions. */

typedef struct _ItkCredentials ItkCredentials;

/* Loads @path if it exists; a missing file is an empty store. */
ItkCredentials *itk_credentials_new(const char *path, GError **error);
void itk_credentials_free(ItkCredentials *self);

/* aa{sv}: name, username, gateway-url, description, has-password,
 * has-api-token. Floating. */
GVariant *itk_credentials_list(ItkCredentials *self);
gboolean itk_credentials_has(ItkCredentials *self, const char *name);
/* A new object with every stored field (username, password, gateway_url,
 * api_token, description), or NULL with ITK_ERROR_NO_SUCH_CREDENTIAL. */
JsonObject *itk_credentials_lookup(ItkCredentials *self, const char *name, GError **error);

/* Validates and applies @fields (a{sv} of username, password, gateway-url,
 * api-token, description; all s; absent fields keep their value), then
 * saves. Completes once the file is on disk. Errors: ITK_ERROR_INVALID_ARGS. */
void itk_credentials_set_async(ItkCredentials *self, const char *name, GVariant *fields,
                               GAsyncReadyCallback callback, gpointer user_data);
gboolean itk_credentials_set_finish(GAsyncResult *result, GError **error);
/* ITK_ERROR_NO_SUCH_CREDENTIAL when absent. */
void itk_credentials_delete_async(ItkCredentials *self, const char *name,
                                  GAsyncReadyCallback callback, gpointer user_data);
gboolean itk_credentials_delete_finish(GAsyncResult *result, GError **error);

/* Every stored secret (each password, API token and the KEY of each
 * NAME:KEY token) at least ITK_REDACTOR_MIN_SHARED bytes long, compiled for
 * masking; replaced by a new set on each change. Borrowed: ref to keep. */
ItkSecretSet *itk_credentials_get_secret_set(ItkCredentials *self);
/* Called whenever the stored secrets changed (the table is updated at once
 * by set/delete, before the file is written). */
void itk_credentials_set_changed_func(ItkCredentials *self, GFunc func, gpointer user_data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkCredentials, itk_credentials_free)

G_END_DECLS
