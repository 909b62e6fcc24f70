/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Masks secret values in every string that leaves an execution (DESIGN.md
 * §5). Secrets shorter than 4 bytes are ignored: masking "a" would mangle
 * every message and a 3-byte secret is not one. */

#define ITK_REDACTED "********"

typedef struct _ItkRedactor ItkRedactor;

ItkRedactor *itk_redactor_new(void);
void itk_redactor_free(ItkRedactor *redactor);
/* Adding also covers the secret's JSON-escaped form (a"b as a\"b), so JSON
 * text that carries it is masked too. Adding one twice is harmless. */
void itk_redactor_add_secret(ItkRedactor *redactor, const char *secret);
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
