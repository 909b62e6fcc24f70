/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "itk-redactor.h"

#define ITK_REDACTOR_MIN_SECRET 4

struct _ItkRedactor {
        GPtrArray *secrets; /* char*, distinct, longest first */
};

ItkRedactor *
itk_redactor_new(void)
{
        ItkRedactor *redactor = g_new0(ItkRedactor, 1);

        redactor->secrets = g_ptr_array_new_with_free_func(g_free);
        return redactor;
}

void
itk_redactor_free(ItkRedactor *redactor)
{
        if (redactor == NULL)
                return;
        g_ptr_array_unref(redactor->secrets);
        g_free(redactor);
}

static gint
itk_redactor_compare_length_cb(gconstpointer a, gconstpointer b)
{
        gsize la = strlen(*(const char *const *)a);
        gsize lb = strlen(*(const char *const *)b);

        return la < lb ? 1 : la > lb ? -1 : 0;
}

static void
itk_redactor_add_one(ItkRedactor *redactor, const char *secret)
{
        for (guint i = 0; i < redactor->secrets->len; i++) {
                if (g_str_equal(g_ptr_array_index(redactor->secrets, i), secret))
                        return;
        }
        g_ptr_array_add(redactor->secrets, g_strdup(secret));
        g_ptr_array_sort(redactor->secrets, itk_redactor_compare_length_cb);
}

/* The secret as it appears inside JSON text ("a\"b"), NULL when the same. */
static char *
itk_redactor_json_escape(const char *secret)
{
        GString *out = NULL;

        for (const char *p = secret; *p != '\0'; p++) {
                guchar c = (guchar)*p;
                if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) {
                        if (out != NULL)
                                g_string_append_c(out, (char)c);
                        continue;
                }
                if (out == NULL)
                        out = g_string_new_len(secret, p - secret);
                switch (c) {
                case '"':
                        g_string_append(out, "\\\"");
                        break;
                case '\\':
                        g_string_append(out, "\\\\");
                        break;
                case '\n':
                        g_string_append(out, "\\n");
                        break;
                case '\r':
                        g_string_append(out, "\\r");
                        break;
                case '\t':
                        g_string_append(out, "\\t");
                        break;
                case '\b':
                        g_string_append(out, "\\b");
                        break;
                case '\f':
                        g_string_append(out, "\\f");
                        break;
                default:
                        g_string_append_printf(out, "\\u%04x", c);
                        break;
                }
        }
        return out != NULL ? g_string_free(out, FALSE) : NULL;
}

void
itk_redactor_add_secret(ItkRedactor *redactor, const char *secret)
{
        g_autofree char *escaped = NULL;

        g_return_if_fail(redactor != NULL);

        if (secret == NULL || strlen(secret) < ITK_REDACTOR_MIN_SECRET)
                return;
        itk_redactor_add_one(redactor, secret);
        /* Texts that leave an execution are often JSON (outputs, stored
         * parameters): mask the escaped form too. */
        escaped = itk_redactor_json_escape(secret);
        if (escaped != NULL)
                itk_redactor_add_one(redactor, escaped);
}

gboolean
itk_redactor_is_empty(ItkRedactor *redactor)
{
        return redactor == NULL || redactor->secrets->len == 0;
}

char *
itk_redactor_apply(ItkRedactor *redactor, const char *text)
{
        g_autofree guint8 *covered = NULL;
        gsize len;
        GString *out;

        if (text == NULL)
                return NULL;
        if (itk_redactor_is_empty(redactor))
                return g_strdup(text);

        /* Mark every byte inside any occurrence of any secret, overlapping
         * ones included, then mask each covered run once. Secrets that
         * overlap in the text ("abcdef" and "defghi" in "abcdefghi") are
         * masked whole, which replacing one secret after the other would
         * not do, and the mask itself is never searched. */
        len = strlen(text);
        for (guint i = 0; i < redactor->secrets->len; i++) {
                const char *secret = g_ptr_array_index(redactor->secrets, i);
                gsize secret_len = strlen(secret);
                const char *p = text;

                while ((p = strstr(p, secret)) != NULL) {
                        if (covered == NULL)
                                covered = g_malloc0(len);
                        memset(covered + (p - text), 1, secret_len);
                        p++;
                }
        }
        if (covered == NULL)
                return g_strdup(text);

        out = g_string_sized_new(len);
        for (gsize i = 0; i < len;) {
                gsize j = i;
                if (!covered[i]) {
                        while (j < len && !covered[j])
                                j++;
                        g_string_append_len(out, text + i, (gssize)(j - i));
                } else {
                        while (j < len && covered[j])
                                j++;
                        g_string_append(out, ITK_REDACTED);
                }
                i = j;
        }
        return g_string_free(out, FALSE);
}

static JsonNode *
itk_redactor_apply_node(ItkRedactor *redactor, JsonNode *node)
{
        switch (json_node_get_node_type(node)) {
        case JSON_NODE_OBJECT: {
                g_autoptr(JsonObject) object = json_object_new();
                JsonObjectIter iter;
                const char *key;
                JsonNode *member;

                json_object_iter_init_ordered(&iter, json_node_get_object(node));
                while (json_object_iter_next_ordered(&iter, &key, &member)) {
                        g_autofree char *masked = itk_redactor_apply(redactor, key);
                        /* Two keys masked alike: the later one wins. */
                        json_object_set_member(object, masked,
                                               itk_redactor_apply_node(redactor, member));
                }
                return json_node_init_object(json_node_alloc(), object);
        }
        case JSON_NODE_ARRAY: {
                JsonArray *array = json_node_get_array(node);
                guint n = json_array_get_length(array);
                g_autoptr(JsonArray) copy = json_array_sized_new(n);

                for (guint i = 0; i < n; i++)
                        json_array_add_element(
                                copy, itk_redactor_apply_node(redactor,
                                                              json_array_get_element(array, i)));
                return json_node_init_array(json_node_alloc(), copy);
        }
        case JSON_NODE_VALUE:
                if (json_node_get_value_type(node) == G_TYPE_STRING) {
                        g_autofree char *masked =
                                itk_redactor_apply(redactor, json_node_get_string(node));
                        return json_node_init_string(json_node_alloc(), masked);
                }
                return json_node_copy(node);
        case JSON_NODE_NULL:
        default:
                return json_node_copy(node);
        }
}

JsonNode *
itk_redactor_apply_json(ItkRedactor *redactor, JsonNode *node)
{
        if (node == NULL)
                return NULL;
        if (itk_redactor_is_empty(redactor))
                return json_node_copy(node);
        return itk_redactor_apply_node(redactor, node);
}
