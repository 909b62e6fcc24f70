/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "itk-error.h"
#include "itk-value.h"

/* --- GVariant -> JSON ----------------------------------------------------- */

static gboolean
itk_value_dict_key_type_ok(const GVariantType *type)
{
        return g_variant_type_equal(type, G_VARIANT_TYPE_STRING) ||
               g_variant_type_equal(type, G_VARIANT_TYPE_OBJECT_PATH) ||
               g_variant_type_equal(type, G_VARIANT_TYPE_SIGNATURE);
}

/* The first part of @type that has no JSON form, NULL when all do. Checked
 * on the type, not the value, so an empty "ah" is refused like a full one. */
static const GVariantType *
itk_value_find_unsupported(const GVariantType *type)
{
        if (g_variant_type_is_basic(type)) {
                if (g_variant_type_equal(type, G_VARIANT_TYPE_HANDLE))
                        return type;
                return NULL;
        }
        if (g_variant_type_equal(type, G_VARIANT_TYPE_VARIANT))
                return NULL; /* the content is checked when it is met */
        if (g_variant_type_is_array(type)) {
                const GVariantType *element = g_variant_type_element(type);
                if (g_variant_type_is_dict_entry(element)) {
                        if (!itk_value_dict_key_type_ok(g_variant_type_key(element)))
                                return type;
                        return itk_value_find_unsupported(g_variant_type_value(element));
                }
                return itk_value_find_unsupported(element);
        }
        return type; /* tuples, dict entries, maybe types */
}

static gboolean
itk_value_check_type(GVariant *value, GError **error)
{
        const GVariantType *type = g_variant_get_type(value);
        const GVariantType *bad = itk_value_find_unsupported(type);
        g_autofree char *bad_str = NULL;

        if (bad == NULL)
                return TRUE;
        bad_str = g_variant_type_dup_string(bad);
        if (bad == type) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS, "unsupported value type '%s'",
                            bad_str);
        } else {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                            "unsupported value type '%s' in '%s'", bad_str,
                            g_variant_get_type_string(value));
        }
        return FALSE;
}

static JsonNode *
itk_value_node_new_int(gint64 v)
{
        JsonNode *node = json_node_alloc();
        json_node_init_int(node, v);
        return node;
}

/* @value's type has been checked by itk_value_check_type(). */
static JsonNode *
itk_value_from_variant_checked(GVariant *value, GError **error)
{
        JsonNode *node;

        switch (g_variant_classify(value)) {
        case G_VARIANT_CLASS_BOOLEAN:
                node = json_node_alloc();
                return json_node_init_boolean(node, g_variant_get_boolean(value));
        case G_VARIANT_CLASS_BYTE:
                return itk_value_node_new_int(g_variant_get_byte(value));
        case G_VARIANT_CLASS_INT16:
                return itk_value_node_new_int(g_variant_get_int16(value));
        case G_VARIANT_CLASS_UINT16:
                return itk_value_node_new_int(g_variant_get_uint16(value));
        case G_VARIANT_CLASS_INT32:
                return itk_value_node_new_int(g_variant_get_int32(value));
        case G_VARIANT_CLASS_UINT32:
                return itk_value_node_new_int(g_variant_get_uint32(value));
        case G_VARIANT_CLASS_INT64:
                return itk_value_node_new_int(g_variant_get_int64(value));
        case G_VARIANT_CLASS_UINT64: {
                guint64 v = g_variant_get_uint64(value);
                if (v > G_MAXINT64) {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "value %" G_GUINT64_FORMAT
                                    " of type 't' does not fit a JSON integer",
                                    v);
                        return NULL;
                }
                return itk_value_node_new_int((gint64)v);
        }
        case G_VARIANT_CLASS_DOUBLE: {
                double v = g_variant_get_double(value);
                if (!isfinite(v)) {
                        g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                            "value of type 'd' is not a finite number");
                        return NULL;
                }
                node = json_node_alloc();
                return json_node_init_double(node, v);
        }
        case G_VARIANT_CLASS_STRING:
        case G_VARIANT_CLASS_OBJECT_PATH:
        case G_VARIANT_CLASS_SIGNATURE:
                node = json_node_alloc();
                return json_node_init_string(node, g_variant_get_string(value, NULL));
        case G_VARIANT_CLASS_VARIANT: {
                g_autoptr(GVariant) child = g_variant_get_variant(value);
                if (!itk_value_check_type(child, error))
                        return NULL;
                return itk_value_from_variant_checked(child, error);
        }
        case G_VARIANT_CLASS_ARRAY: {
                gsize n = g_variant_n_children(value);
                const GVariantType *element = g_variant_type_element(g_variant_get_type(value));

                if (g_variant_type_is_dict_entry(element)) {
                        g_autoptr(JsonObject) object = json_object_new();
                        for (gsize i = 0; i < n; i++) {
                                g_autoptr(GVariant) entry = g_variant_get_child_value(value, i);
                                g_autoptr(GVariant) key = g_variant_get_child_value(entry, 0);
                                g_autoptr(GVariant) val = g_variant_get_child_value(entry, 1);
                                JsonNode *member = itk_value_from_variant_checked(val, error);
                                if (member == NULL)
                                        return NULL;
                                json_object_set_member(object, g_variant_get_string(key, NULL),
                                                       member);
                        }
                        node = json_node_alloc();
                        return json_node_init_object(node, object);
                } else {
                        g_autoptr(JsonArray) array = json_array_sized_new(n);
                        for (gsize i = 0; i < n; i++) {
                                g_autoptr(GVariant) child = g_variant_get_child_value(value, i);
                                JsonNode *element_node =
                                        itk_value_from_variant_checked(child, error);
                                if (element_node == NULL)
                                        return NULL;
                                json_array_add_element(array, element_node);
                        }
                        node = json_node_alloc();
                        return json_node_init_array(node, array);
                }
        }
        case G_VARIANT_CLASS_HANDLE:
        case G_VARIANT_CLASS_MAYBE:
        case G_VARIANT_CLASS_TUPLE:
        case G_VARIANT_CLASS_DICT_ENTRY:
        default:
                break;
        }
        /* itk_value_check_type() refused these already. */
        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS, "unsupported value type '%s'",
                    g_variant_get_type_string(value));
        return NULL;
}

JsonNode *
itk_value_from_variant(GVariant *value, GError **error)
{
        g_return_val_if_fail(value != NULL, NULL);
        g_return_val_if_fail(error == NULL || *error == NULL, NULL);

        if (!itk_value_check_type(value, error))
                return NULL;
        return itk_value_from_variant_checked(value, error);
}

JsonObject *
itk_value_object_from_variant(GVariant *dict, GError **error)
{
        g_autoptr(JsonNode) node = NULL;

        g_return_val_if_fail(dict != NULL, NULL);

        node = itk_value_from_variant(dict, error);
        if (node == NULL)
                return NULL;
        if (!JSON_NODE_HOLDS_OBJECT(node)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                            "expected a dictionary 'a{sv}', got '%s'",
                            g_variant_get_type_string(dict));
                return NULL;
        }
        return json_node_dup_object(node);
}

/* --- JSON -> GVariant ----------------------------------------------------- */

GVariant *
itk_value_to_variant(JsonNode *node)
{
        if (node == NULL)
                return g_variant_new_array(G_VARIANT_TYPE_VARIANT, NULL, 0);

        switch (json_node_get_node_type(node)) {
        case JSON_NODE_OBJECT:
                return itk_value_object_to_variant(json_node_get_object(node));
        case JSON_NODE_ARRAY: {
                JsonArray *array = json_node_get_array(node);
                guint n = json_array_get_length(array);
                GVariantBuilder builder;

                g_variant_builder_init(&builder, G_VARIANT_TYPE("av"));
                for (guint i = 0; i < n; i++) {
                        GVariant *child = itk_value_to_variant(json_array_get_element(array, i));
                        g_variant_builder_add_value(&builder, g_variant_new_variant(child));
                }
                return g_variant_builder_end(&builder);
        }
        case JSON_NODE_VALUE:
                switch (json_node_get_value_type(node)) {
                case G_TYPE_BOOLEAN:
                        return g_variant_new_boolean(json_node_get_boolean(node));
                case G_TYPE_INT64:
                        return g_variant_new_int64(json_node_get_int(node));
                case G_TYPE_DOUBLE:
                        return g_variant_new_double(json_node_get_double(node));
                case G_TYPE_STRING: {
                        const char *s = json_node_get_string(node);
                        return g_variant_new_string(s != NULL ? s : "");
                }
                default:
                        break;
                }
                break;
        case JSON_NODE_NULL:
        default:
                break;
        }
        return g_variant_new_array(G_VARIANT_TYPE_VARIANT, NULL, 0);
}

GVariant *
itk_value_object_to_variant(JsonObject *object)
{
        GVariantBuilder builder;
        JsonObjectIter iter;
        const char *key;
        JsonNode *member;

        g_variant_builder_init(&builder, G_VARIANT_TYPE_VARDICT);
        if (object == NULL)
                return g_variant_builder_end(&builder);
        json_object_iter_init_ordered(&iter, object);
        while (json_object_iter_next_ordered(&iter, &key, &member))
                g_variant_builder_add(&builder, "{sv}", key, itk_value_to_variant(member));
        return g_variant_builder_end(&builder);
}

/* --- Text ------------------------------------------------------------------ */

/* Python's repr()/str() of a float: the shortest digits that read back to
 * the same double, in fixed notation when the decimal exponent is within
 * [-4, 16), in exponent notation ("1e-07", "1.5e+16") otherwise. */
static void
itk_value_append_double(GString *out, double value)
{
        static const char *const formats[] = {
                "%.0e", "%.1e",  "%.2e",  "%.3e",  "%.4e",  "%.5e",  "%.6e",  "%.7e",  "%.8e",
                "%.9e", "%.10e", "%.11e", "%.12e", "%.13e", "%.14e", "%.15e", "%.16e",
        };
        char buf[G_ASCII_DTOSTR_BUF_SIZE];
        char digits[32];
        gsize n_digits = 0;
        int exponent;
        int decpt;
        const char *e;
        double magnitude;

        if (isnan(value)) {
                g_string_append(out, "nan");
                return;
        }
        if (signbit(value))
                g_string_append_c(out, '-');
        magnitude = fabs(value);
        if (isinf(magnitude)) {
                g_string_append(out, "inf");
                return;
        }

        /* g_ascii_formatd(): never the locale's decimal comma. */
        for (gsize i = 0; i < G_N_ELEMENTS(formats); i++) {
                g_ascii_formatd(buf, sizeof(buf), formats[i], magnitude);
                if (g_ascii_strtod(buf, NULL) == magnitude)
                        break;
        }

        /* buf is "d[.ddd]e[+-]XX". */
        for (const char *p = buf; *p != 'e' && *p != '\0'; p++) {
                if (g_ascii_isdigit(*p) && n_digits < sizeof(digits) - 1)
                        digits[n_digits++] = *p;
        }
        while (n_digits > 1 && digits[n_digits - 1] == '0')
                n_digits--;
        digits[n_digits] = '\0';
        e = strchr(buf, 'e');
        exponent = e != NULL ? atoi(e + 1) : 0;
        decpt = exponent + 1;

        if (decpt <= -4 || decpt > 16) {
                g_string_append_c(out, digits[0]);
                if (n_digits > 1) {
                        g_string_append_c(out, '.');
                        g_string_append_len(out, digits + 1, (gssize)n_digits - 1);
                }
                g_string_append_printf(out, "e%c%02d", exponent < 0 ? '-' : '+', ABS(exponent));
        } else if (decpt <= 0) {
                g_string_append(out, "0.");
                for (int i = 0; i < -decpt; i++)
                        g_string_append_c(out, '0');
                g_string_append_len(out, digits, (gssize)n_digits);
        } else if ((gsize)decpt < n_digits) {
                g_string_append_len(out, digits, decpt);
                g_string_append_c(out, '.');
                g_string_append_len(out, digits + decpt, (gssize)n_digits - decpt);
        } else {
                g_string_append_len(out, digits, (gssize)n_digits);
                for (gsize i = n_digits; i < (gsize)decpt; i++)
                        g_string_append_c(out, '0');
                g_string_append(out, ".0");
        }
}

static void
itk_value_append_json_string(GString *out, const char *s)
{
        const char *run = s;

        g_string_append_c(out, '"');
        for (const char *p = s; *p != '\0'; p++) {
                guchar c = (guchar)*p;
                const char *escape = NULL;

                if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)
                        continue;
                g_string_append_len(out, run, p - run);
                run = p + 1;
                switch (c) {
                case '"':
                        escape = "\\\"";
                        break;
                case '\\':
                        escape = "\\\\";
                        break;
                case '\b':
                        escape = "\\b";
                        break;
                case '\f':
                        escape = "\\f";
                        break;
                case '\n':
                        escape = "\\n";
                        break;
                case '\r':
                        escape = "\\r";
                        break;
                case '\t':
                        escape = "\\t";
                        break;
                default:
                        g_string_append_printf(out, "\\u%04x", c);
                        continue;
                }
                g_string_append(out, escape);
        }
        g_string_append_len(out, run, (gssize)strlen(run));
        g_string_append_c(out, '"');
}

static void
itk_value_append_json(GString *out, JsonNode *node)
{
        if (node == NULL) {
                g_string_append(out, "null");
                return;
        }
        switch (json_node_get_node_type(node)) {
        case JSON_NODE_OBJECT: {
                JsonObjectIter iter;
                const char *key;
                JsonNode *member;
                gboolean first = TRUE;

                g_string_append_c(out, '{');
                json_object_iter_init_ordered(&iter, json_node_get_object(node));
                while (json_object_iter_next_ordered(&iter, &key, &member)) {
                        if (!first)
                                g_string_append_c(out, ',');
                        first = FALSE;
                        itk_value_append_json_string(out, key);
                        g_string_append_c(out, ':');
                        itk_value_append_json(out, member);
                }
                g_string_append_c(out, '}');
                return;
        }
        case JSON_NODE_ARRAY: {
                JsonArray *array = json_node_get_array(node);
                guint n = json_array_get_length(array);

                g_string_append_c(out, '[');
                for (guint i = 0; i < n; i++) {
                        if (i > 0)
                                g_string_append_c(out, ',');
                        itk_value_append_json(out, json_array_get_element(array, i));
                }
                g_string_append_c(out, ']');
                return;
        }
        case JSON_NODE_VALUE:
                switch (json_node_get_value_type(node)) {
                case G_TYPE_BOOLEAN:
                        g_string_append(out, json_node_get_boolean(node) ? "true" : "false");
                        return;
                case G_TYPE_INT64:
                        g_string_append_printf(out, "%" G_GINT64_FORMAT, json_node_get_int(node));
                        return;
                case G_TYPE_DOUBLE: {
                        double v = json_node_get_double(node);
                        if (isfinite(v))
                                itk_value_append_double(out, v);
                        else
                                g_string_append(out, "null");
                        return;
                }
                case G_TYPE_STRING: {
                        const char *s = json_node_get_string(node);
                        itk_value_append_json_string(out, s != NULL ? s : "");
                        return;
                }
                default:
                        break;
                }
                break;
        case JSON_NODE_NULL:
        default:
                break;
        }
        g_string_append(out, "null");
}

char *
itk_value_to_json(JsonNode *node)
{
        GString *out = g_string_sized_new(64);

        itk_value_append_json(out, node);
        return g_string_free(out, FALSE);
}

char *
itk_value_to_text(JsonNode *node)
{
        GString *out;

        if (node == NULL)
                return g_strdup("");

        switch (json_node_get_node_type(node)) {
        case JSON_NODE_NULL:
                return g_strdup("");
        case JSON_NODE_VALUE:
                switch (json_node_get_value_type(node)) {
                case G_TYPE_STRING: {
                        const char *s = json_node_get_string(node);
                        return g_strdup(s != NULL ? s : "");
                }
                case G_TYPE_DOUBLE:
                        /* Unlike JSON, text may say "nan" and "inf", as Python does. */
                        out = g_string_sized_new(32);
                        itk_value_append_double(out, json_node_get_double(node));
                        return g_string_free(out, FALSE);
                default:
                        break;
                }
                break;
        case JSON_NODE_OBJECT:
        case JSON_NODE_ARRAY:
        default:
                break;
        }
        return itk_value_to_json(node);
}

/* --- bounds ---------------------------------------------------------------- */

static gboolean
itk_value_budget_count(ItkValueBudget *budget, GError **error)
{
        if (budget->values >= budget->max_values) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                            "%s hold more than %" G_GSIZE_FORMAT
                            " values (the limit is %" G_GSIZE_FORMAT ")",
                            budget->what, budget->max_values, budget->max_values);
                return FALSE;
        }
        budget->values++;
        return TRUE;
}

gboolean
itk_value_budget_enter(ItkValueBudget *budget, GError **error)
{
        g_return_val_if_fail(budget != NULL, FALSE);

        if (!itk_value_budget_count(budget, error))
                return FALSE;
        if (budget->depth >= budget->max_depth) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                            "%s nest containers more than %u deep (the limit is %u)", budget->what,
                            budget->max_depth, budget->max_depth);
                return FALSE;
        }
        budget->depth++;
        return TRUE;
}

void
itk_value_budget_leave(ItkValueBudget *budget)
{
        g_return_if_fail(budget != NULL && budget->depth > 0);
        budget->depth--;
}

gboolean
itk_value_budget_add(ItkValueBudget *budget, gsize string_length, GError **error)
{
        g_return_val_if_fail(budget != NULL, FALSE);

        if (!itk_value_budget_count(budget, error))
                return FALSE;
        if (string_length > budget->max_string) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                            "%s hold a string of %" G_GSIZE_FORMAT
                            " bytes (the limit is %" G_GSIZE_FORMAT " bytes)",
                            budget->what, string_length, budget->max_string);
                return FALSE;
        }
        if (string_length > budget->max_bytes - MIN(budget->bytes, budget->max_bytes)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                            "%s hold more than %" G_GSIZE_FORMAT
                            " bytes of text (the limit is %" G_GSIZE_FORMAT " bytes)",
                            budget->what, budget->max_bytes, budget->max_bytes);
                return FALSE;
        }
        budget->bytes += string_length;
        return TRUE;
}

gboolean
itk_value_budget_check_variant(ItkValueBudget *budget, GVariant *value, GError **error)
{
        g_return_val_if_fail(budget != NULL && value != NULL, FALSE);

        if (g_variant_is_container(value)) {
                gboolean entry = g_variant_is_of_type(value, G_VARIANT_TYPE_DICT_ENTRY);
                GVariantIter iter;
                GVariant *child;

                /* As the bus reader counts: a dict entry is its key and value. */
                if (!entry && !itk_value_budget_enter(budget, error))
                        return FALSE;
                g_variant_iter_init(&iter, value);
                while ((child = g_variant_iter_next_value(&iter)) != NULL) {
                        gboolean ok = itk_value_budget_check_variant(budget, child, error);
                        g_variant_unref(child);
                        if (!ok)
                                return FALSE;
                }
                if (!entry)
                        itk_value_budget_leave(budget);
                return TRUE;
        }
        if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING) ||
            g_variant_is_of_type(value, G_VARIANT_TYPE_OBJECT_PATH) ||
            g_variant_is_of_type(value, G_VARIANT_TYPE_SIGNATURE)) {
                gsize length;
                g_variant_get_string(value, &length);
                return itk_value_budget_add(budget, length, error);
        }
        return itk_value_budget_add(budget, 0, error);
}
