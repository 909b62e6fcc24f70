/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The writable part of the playbook library: one folder under the state
 * directory (STATEDIR/playbooks/local) that SavePlaybook and DeletePlaybook
 * change. Writes happen on one worker thread, in the order they were asked
 * for, so the main loop never waits on the disk and two saves of one id
 * never land out of order. No sd-bus here. */
typedef struct _ItkLibraryStore ItkLibraryStore;

ItkLibraryStore *itk_library_store_new(const char *dir);
void itk_library_store_free(ItkLibraryStore *self);
const char *itk_library_store_get_dir(ItkLibraryStore *self);

/* An id a caller may save under: a relative path of [A-Za-z0-9_.-] names
 * joined by '/', at most 4 folders deep, ending in ".yaml", no "." or ".."
 * component nor hidden name, at most ITK_LIMIT_NAME_LENGTH bytes.
 * ITK_ERROR_INVALID_ARGS naming the problem otherwise. */
gboolean itk_library_store_check_id(const char *id, GError **error);

/* Writes @source (at most ITK_LIMIT_SOURCE_BYTES) as @id: a temp file in the
 * same folder, fsync, rename over the old one, fsync of the folder. Folders
 * are made as needed. The caller validated the text. */
void itk_library_store_save_async(ItkLibraryStore *self, const char *id, const char *source,
                                  GAsyncReadyCallback callback, gpointer user_data);
gboolean itk_library_store_save_finish(GAsyncResult *result, GError **error);

/* Removes @id; ITK_ERROR_NO_SUCH_PLAYBOOK when it is not in this folder. */
void itk_library_store_delete_async(ItkLibraryStore *self, const char *id,
                                    GAsyncReadyCallback callback, gpointer user_data);
gboolean itk_library_store_delete_finish(GAsyncResult *result, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkLibraryStore, itk_library_store_free)

G_END_DECLS
