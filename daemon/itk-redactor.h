/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "itk-secret-set.h"

G_BEGIN_DECLS

/* Masks secret values in every string that leaves an execution (DESIGN.md
 * §5, docs/security.md) in every form ItkSecretSet knows, and URL-encoded
 * (percent-encoding in either hex case, '+' for space) by also searching a
 * percent-decoded view of the text.
 *
 * Two layers: the run's own secrets (those it references: its credential,
 * secret parameters, {{ credential }} templates), of any length; and the
 * shared set of every stored secret (ITK_REDACTOR_MIN_SHARED bytes or
 * longer), swapped for a new one whenever the store changes. A secret that
 * leaves the shared set stays masked in this run. */

#define ITK_REDACTOR_MIN_SHARED 4

#define ITK_REDACTED "********"

/* How far from its end a cut text (one that ends with a script reader's
 * truncation marker) is searched for the first bytes of a secret. */
#define ITK_REDACTOR_MAX_CUT (16 * 1024)

typedef struct _ItkRedactor ItkRedactor;

ItkRedactor *itk_redactor_new(void);
void itk_redactor_free(ItkRedactor *redactor);
/* A secret this run references, masked from now on in all its forms
 * whatever its length. Adding one twice is harmless. */
void itk_redactor_add_secret(ItkRedactor *redactor, const char *secret);
/* Replaces the shared set (NULL: none); secrets of the old set missing from
 * @set are kept as this run's own. */
void itk_redactor_set_shared(ItkRedactor *redactor, ItkSecretSet *set);
gboolean itk_redactor_is_empty(ItkRedactor *redactor);
/* New string with each occurrence of each secret replaced by ITK_REDACTED.
 * Occurrences that overlap or touch (one secret inside another, or two
 * sharing bytes) become a single ITK_REDACTED, so no part of any secret is
 * left. NULL in, NULL out. */
char *itk_redactor_apply(ItkRedactor *redactor, const char *text);
/* Deep copy of @node with every string (values and keys) redacted. */
JsonNode *itk_redactor_apply_json(ItkRedactor *redactor, JsonNode *node);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkRedactor, itk_redactor_free)

G_END_DECLS
