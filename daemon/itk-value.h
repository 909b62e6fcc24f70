/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "itk-limits.h"

G_BEGIN_DECLS

/* Values are JSON inside the engine and GVariant at the bus boundary. */

/* GVariant -> JSON. b -> boolean; y n q i u x t -> integer (a "t" above
 * G_MAXINT64 is an error); d -> double (NaN and infinities are errors: JSON
 * has no form for them); s o g -> string; v -> its content, unwrapped at any
 * depth; arrays of any supported type (as, av, aa{sv}, ay, ...) -> array;
 * dictionaries keyed by s, o or g with any supported value type (a{sv},
 * a{ss}, ...) -> object (a repeated key: the last wins).
 * Everything else (tuples, maybe types, handles "h", dictionaries with other
 * keys) gives NULL with ITK_ERROR_INVALID_ARGS naming the type. */
JsonNode *itk_value_from_variant(GVariant *value, GError **error);
/* A dictionary (a{sv} or any dictionary itk_value_from_variant() accepts,
 * also inside a "v") -> JSON object; anything else is ITK_ERROR_INVALID_ARGS. */
JsonObject *itk_value_object_from_variant(GVariant *dict, GError **error);
/* JSON -> GVariant: bool b, integer x, double d, string s, array av, object
 * a{sv}. D-Bus has no null, and maybe types cannot cross it, so JSON null
 * (and a NULL node) becomes an empty "av": it reads back as [], which a
 * client cannot mistake for text the way "" could be. Floating. */
GVariant *itk_value_to_variant(JsonNode *node);
/* Object -> a{sv}. Floating. */
GVariant *itk_value_object_to_variant(JsonObject *object);
/* Text for embedding in a longer string: strings as they are, integers as
 * plain digits, doubles as Python's str() writes them (2.0 -> "2.0", 1.5 ->
 * "1.5", 0.1 -> "0.1", 1e-07 -> "1e-07", 1e+16 -> "1e+16", "nan", "inf"),
 * booleans true/false, null as "", arrays and objects as compact JSON. */
char *itk_value_to_text(JsonNode *node);
/* Compact JSON text of any node (a NULL node is "null"). Doubles are written
 * as itk_value_to_text() writes them, so they read back as doubles; a
 * non-finite double, which JSON cannot hold, is written as null. */
char *itk_value_to_json(JsonNode *node);

/* Bounds on a value read from a caller (itk-limits.h), checked before each
 * part is copied: the bus reader calls these as it meets each value, and
 * itk_value_budget_check_variant() applies the same rules to a value
 * already in memory. Errors are ITK_ERROR_INVALID_ARGS naming the bound
 * and the size met. */
/* A container opens: one value, one level deeper. */
gboolean itk_value_budget_enter(ItkValueBudget *budget, GError **error);
void itk_value_budget_leave(ItkValueBudget *budget);
/* A basic value; @string_length: bytes of a string, 0 for other types. */
gboolean itk_value_budget_add(ItkValueBudget *budget, gsize string_length, GError **error);
gboolean itk_value_budget_check_variant(ItkValueBudget *budget, GVariant *value, GError **error);

G_END_DECLS
