/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* An immutable, shared set of secrets compiled into one Aho-Corasick
 * automaton over every form in which a secret may show up in text:
 *  - as is, and JSON-escaped (a"b as a\"b);
 *  - base64, standard and URL-safe, with and without padding;
 *  - inside a longer base64 text (user:password in a Basic header): for
 *    each of the three byte alignments, the characters that depend on the
 *    secret's bytes alone (fragments shorter than ITK_SECRET_SET_MIN_FRAGMENT
 *    are left out: they would match at random).
 * URL-encoded forms are found by searching a percent-decoded view of the
 * text (ItkRedactor), which covers every encoder's choice of escaped bytes,
 * hex case and '+' for space without listing them here.
 *
 * One pass over the text finds every occurrence of every form, whatever the
 * number of secrets: the cost is linear in the text. */

#define ITK_SECRET_SET_MIN_FRAGMENT 4

typedef struct _ItkSecretSet ItkSecretSet;

/* A byte range [start, end) of a text to mask. */
typedef struct {
        gsize start;
        gsize end;
} ItkSecretSpan;

/* @secrets: NULL-terminated, may be NULL; empty strings and duplicates are
 * ignored. */
ItkSecretSet *itk_secret_set_new(const char *const *secrets);
ItkSecretSet *itk_secret_set_ref(ItkSecretSet *self);
void itk_secret_set_unref(ItkSecretSet *self);

gboolean itk_secret_set_is_empty(ItkSecretSet *self);
gboolean itk_secret_set_contains(ItkSecretSet *self, const char *secret);
/* The secrets as given (deduplicated); borrowed, NULL-terminated. */
const char *const *itk_secret_set_get_secrets(ItkSecretSet *self);

/* Appends to @spans (ItkSecretSpan) the ranges of @text (@length bytes, NUL
 * bytes allowed) covered by any form of any secret, in order, overlapping
 * and touching ranges merged. */
void itk_secret_set_find(ItkSecretSet *self, const char *text, gsize length, GArray *spans);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkSecretSet, itk_secret_set_unref)

G_END_DECLS
