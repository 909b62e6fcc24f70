/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GVariant <-> JSON: the daemon speaks a{sv} with kebab-case keys, the web
 * speaks JSON with snake_case keys. */
#include "bridge-json.h"

#include <string.h>

char *
bridge_json_key(const char *key)
{
        char *snake = g_strdup(key);

        g_strdelimit(snake, "-", '_');
        return snake;
}

/* D-Bus property names are CamelCase: "CurrentStepId" -> "current_step_id". */
char *
bridge_json_property_key(const char *name)
{
        GString *s = g_string_new(NULL);

        for (const char *p = name; *p != '\0'; p++) {
                if (g_ascii_isupper(*p) && p != name)
                        g_string_append_c(s, '_');
                g_string_append_c(s, g_ascii_tolower(*p));
        }
        return g_string_free(s, FALSE);
}

/* These keys carry JSON text; the web gets the parsed value ("" is null). */
static gboolean
is_json_text_key(const char *key)
{
        return g_str_equal(key, "output") || g_str_equal(key, "parameters") ||
               g_str_equal(key, "metadata");
}

static JsonNode *
parse_json_text(const char *text)
{
        g_autoptr(JsonParser) parser = json_parser_new();
        JsonNode *root;

        if (text[0] == '\0')
                return json_node_new(JSON_NODE_NULL);
        if (!json_parser_load_from_data(parser, text, -1, NULL))
                return json_node_init_string(json_node_alloc(), text);
        root = json_parser_get_root(parser);
        return root != NULL ? json_node_copy(root) : json_node_new(JSON_NODE_NULL);
}

static JsonNode *
dict_to_json(GVariant *value)
{
        JsonObject *object = json_object_new();
        JsonNode *node = json_node_init_object(json_node_alloc(), object);
        GVariantIter iter;
        GVariant *entry;

        g_variant_iter_init(&iter, value);
        while ((entry = g_variant_iter_next_value(&iter)) != NULL) {
                g_autoptr(GVariant) k = g_variant_get_child_value(entry, 0);
                g_autoptr(GVariant) v = g_variant_get_child_value(entry, 1);
                g_autoptr(GVariant) inner = NULL;
                g_autofree char *key = NULL;
                JsonNode *member;

                if (g_variant_is_of_type(v, G_VARIANT_TYPE_VARIANT))
                        inner = g_variant_get_variant(v);
                else
                        inner = g_variant_ref(v);
                if (g_variant_is_of_type(k, G_VARIANT_TYPE_STRING))
                        key = bridge_json_key(g_variant_get_string(k, NULL));
                else
                        key = g_variant_print(k, FALSE);
                if (is_json_text_key(key) && g_variant_is_of_type(inner, G_VARIANT_TYPE_STRING))
                        member = parse_json_text(g_variant_get_string(inner, NULL));
                else
                        member = bridge_json_from_variant(inner);
                json_object_set_member(object, key, member);
                g_variant_unref(entry);
        }
        json_object_unref(object);
        return node;
}

JsonNode *
bridge_json_from_variant(GVariant *value)
{
        JsonNode *node = json_node_alloc();

        switch (g_variant_classify(value)) {
        case G_VARIANT_CLASS_BOOLEAN:
                return json_node_init_boolean(node, g_variant_get_boolean(value));
        case G_VARIANT_CLASS_BYTE:
                return json_node_init_int(node, g_variant_get_byte(value));
        case G_VARIANT_CLASS_INT16:
                return json_node_init_int(node, g_variant_get_int16(value));
        case G_VARIANT_CLASS_UINT16:
                return json_node_init_int(node, g_variant_get_uint16(value));
        case G_VARIANT_CLASS_INT32:
                return json_node_init_int(node, g_variant_get_int32(value));
        case G_VARIANT_CLASS_UINT32:
                return json_node_init_int(node, g_variant_get_uint32(value));
        case G_VARIANT_CLASS_INT64:
                return json_node_init_int(node, g_variant_get_int64(value));
        case G_VARIANT_CLASS_UINT64:
                return json_node_init_int(node, (gint64)g_variant_get_uint64(value));
        case G_VARIANT_CLASS_HANDLE:
                return json_node_init_int(node, g_variant_get_handle(value));
        case G_VARIANT_CLASS_DOUBLE:
                return json_node_init_double(node, g_variant_get_double(value));
        case G_VARIANT_CLASS_STRING:
        case G_VARIANT_CLASS_OBJECT_PATH:
        case G_VARIANT_CLASS_SIGNATURE:
                return json_node_init_string(node, g_variant_get_string(value, NULL));
        case G_VARIANT_CLASS_VARIANT: {
                g_autoptr(GVariant) inner = g_variant_get_variant(value);

                json_node_free(node);
                return bridge_json_from_variant(inner);
        }
        case G_VARIANT_CLASS_MAYBE: {
                g_autoptr(GVariant) inner = g_variant_get_maybe(value);

                if (inner == NULL)
                        return json_node_init_null(node);
                json_node_free(node);
                return bridge_json_from_variant(inner);
        }
        case G_VARIANT_CLASS_ARRAY:
                if (g_variant_type_is_dict_entry(
                            g_variant_type_element(g_variant_get_type(value)))) {
                        json_node_free(node);
                        return dict_to_json(value);
                }
                G_GNUC_FALLTHROUGH;
        case G_VARIANT_CLASS_TUPLE:
        case G_VARIANT_CLASS_DICT_ENTRY: {
                JsonArray *array = json_array_new();
                GVariantIter iter;
                GVariant *child;

                g_variant_iter_init(&iter, value);
                while ((child = g_variant_iter_next_value(&iter)) != NULL) {
                        json_array_add_element(array, bridge_json_from_variant(child));
                        g_variant_unref(child);
                }
                json_node_init_array(node, array);
                json_array_unref(array);
                return node;
        }
        }
        return json_node_init_null(node);
}

static GVariant *
array_to_variant(JsonArray *array, GError **error)
{
        guint n = json_array_get_length(array);
        gboolean all_strings = TRUE;
        g_autoptr(GVariantBuilder) builder = NULL;

        for (guint i = 0; i < n; i++) {
                JsonNode *e = json_array_get_element(array, i);

                if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_STRING)
                        all_strings = FALSE;
        }
        builder = g_variant_builder_new(all_strings ? G_VARIANT_TYPE("as") : G_VARIANT_TYPE("av"));
        for (guint i = 0; i < n; i++) {
                JsonNode *e = json_array_get_element(array, i);
                GVariant *v;

                if (all_strings) {
                        g_variant_builder_add(builder, "s", json_node_get_string(e));
                        continue;
                }
                v = bridge_json_to_variant(e, error);
                if (v == NULL)
                        return NULL;
                g_variant_builder_add(builder, "v", v);
        }
        return g_variant_builder_end(builder);
}

/* JSON string -> s, integer -> x, float -> d, boolean -> b, array of strings ->
 * as, other array -> av, object -> a{sv}. null has no D-Bus type. */
GVariant *
bridge_json_to_variant(JsonNode *node, GError **error)
{
        switch (json_node_get_node_type(node)) {
        case JSON_NODE_NULL:
                g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                                    "null is not a valid parameter value");
                return NULL;
        case JSON_NODE_ARRAY:
                return array_to_variant(json_node_get_array(node), error);
        case JSON_NODE_OBJECT: {
                JsonObject *object = json_node_get_object(node);
                g_autoptr(GVariantBuilder) builder = g_variant_builder_new(G_VARIANT_TYPE_VARDICT);
                JsonObjectIter iter;
                const char *name;
                JsonNode *member;

                json_object_iter_init_ordered(&iter, object);
                while (json_object_iter_next_ordered(&iter, &name, &member)) {
                        GVariant *v = bridge_json_to_variant(member, error);

                        if (v == NULL)
                                return NULL;
                        g_variant_builder_add(builder, "{sv}", name, v);
                }
                return g_variant_builder_end(builder);
        }
        case JSON_NODE_VALUE:
                break;
        }
        switch (json_node_get_value_type(node)) {
        case G_TYPE_STRING:
                return g_variant_new_string(json_node_get_string(node));
        case G_TYPE_INT64:
                return g_variant_new_int64(json_node_get_int(node));
        case G_TYPE_DOUBLE:
                return g_variant_new_double(json_node_get_double(node));
        case G_TYPE_BOOLEAN:
                return g_variant_new_boolean(json_node_get_boolean(node));
        default:
                g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                                    "unsupported JSON value");
                return NULL;
        }
}

char *
bridge_json_to_string(JsonNode *node)
{
        g_autoptr(JsonGenerator) generator = json_generator_new();

        json_generator_set_root(generator, node);
        return json_generator_to_data(generator, NULL);
}

JsonNode *
bridge_json_parse(const char *data, gsize length, GError **error)
{
        g_autoptr(JsonParser) parser = json_parser_new_immutable();
        JsonNode *root;

        if (!json_parser_load_from_data(parser, data, (gssize)length, error))
                return NULL;
        root = json_parser_get_root(parser);
        if (root == NULL) {
                g_set_error_literal(error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_PARSE,
                                    "empty document");
                return NULL;
        }
        return json_node_copy(root);
}
