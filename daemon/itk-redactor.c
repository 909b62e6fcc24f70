/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "itk-redactor.h"
#include "itk-script.h"

struct _ItkRedactor {
        GPtrArray *own;         /* char*, this run's secrets, distinct */
        ItkSecretSet *compiled; /* of own; NULL until needed after a change */
        ItkSecretSet *shared;   /* every stored secret, or NULL */
};

ItkRedactor *
itk_redactor_new(void)
{
        ItkRedactor *redactor = g_new0(ItkRedactor, 1);

        redactor->own = g_ptr_array_new_with_free_func(g_free);
        return redactor;
}

static void
itk_redactor_wipe_cb(gpointer data, gpointer user_data)
{
        memset(data, 0, strlen(data));
}

void
itk_redactor_free(ItkRedactor *redactor)
{
        if (redactor == NULL)
                return;
        g_ptr_array_foreach(redactor->own, itk_redactor_wipe_cb, NULL);
        g_ptr_array_unref(redactor->own);
        g_clear_pointer(&redactor->compiled, itk_secret_set_unref);
        g_clear_pointer(&redactor->shared, itk_secret_set_unref);
        g_free(redactor);
}

void
itk_redactor_add_secret(ItkRedactor *redactor, const char *secret)
{
        g_return_if_fail(redactor != NULL);

        if (secret == NULL || *secret == '\0')
                return;
        /* Templates report each use: the common case is one already known. */
        for (guint i = 0; i < redactor->own->len; i++) {
                if (g_str_equal(g_ptr_array_index(redactor->own, i), secret))
                        return;
        }
        g_ptr_array_add(redactor->own, g_strdup(secret));
        g_clear_pointer(&redactor->compiled, itk_secret_set_unref);
}

void
itk_redactor_set_shared(ItkRedactor *redactor, ItkSecretSet *set)
{
        g_return_if_fail(redactor != NULL);

        if (set == redactor->shared)
                return;
        /* A secret deleted from the store while this run is live was
         * already in reach of it: keep masking it here. */
        if (redactor->shared != NULL) {
                const char *const *old = itk_secret_set_get_secrets(redactor->shared);
                for (guint i = 0; old[i] != NULL; i++) {
                        if (!itk_secret_set_contains(set, old[i]))
                                itk_redactor_add_secret(redactor, old[i]);
                }
        }
        g_clear_pointer(&redactor->shared, itk_secret_set_unref);
        if (set != NULL)
                redactor->shared = itk_secret_set_ref(set);
}

gboolean
itk_redactor_is_empty(ItkRedactor *redactor)
{
        return redactor == NULL ||
               (redactor->own->len == 0 && itk_secret_set_is_empty(redactor->shared));
}

static void
itk_redactor_find(ItkRedactor *redactor, const char *text, gsize length, GArray *spans)
{
        if (redactor->compiled == NULL && redactor->own->len > 0) {
                g_ptr_array_add(redactor->own, NULL);
                redactor->compiled = itk_secret_set_new((const char *const *)redactor->own->pdata);
                g_ptr_array_set_size(redactor->own, redactor->own->len - 1);
        }
        itk_secret_set_find(redactor->compiled, text, length, spans);
        itk_secret_set_find(redactor->shared, text, length, spans);
}

static int
itk_redactor_hex(char c)
{
        return g_ascii_isxdigit(c) ? g_ascii_xdigit_value(c) : -1;
}

/* URL-encoded secrets: search the percent-decoded text ('+' as space) and
 * map what is found back to the bytes that encode it. Whichever bytes an
 * encoder escaped, and in which hex case, the decoded view holds the
 * secret as is. */
static void
itk_redactor_find_decoded(ItkRedactor *redactor, const char *text, gsize length, GArray *spans)
{
        g_autofree char *decoded = g_malloc(length + 1);
        g_autofree gsize *origin = g_new(gsize, length + 1);
        g_autoptr(GArray) found = g_array_new(FALSE, FALSE, sizeof(ItkSecretSpan));
        gsize n = 0;

        for (gsize i = 0; i < length;) {
                int hi, lo;

                origin[n] = i;
                if (text[i] == '%' && i + 2 < length && (hi = itk_redactor_hex(text[i + 1])) >= 0 &&
                    (lo = itk_redactor_hex(text[i + 2])) >= 0) {
                        decoded[n++] = (char)(hi << 4 | lo);
                        i += 3;
                } else {
                        decoded[n++] = text[i] == '+' ? ' ' : text[i];
                        i++;
                }
        }
        origin[n] = length;
        itk_redactor_find(redactor, decoded, n, found);
        for (guint i = 0; i < found->len; i++) {
                const ItkSecretSpan *span = &g_array_index(found, ItkSecretSpan, i);
                ItkSecretSpan mapped = { origin[span->start], origin[span->end] };
                g_array_append_val(spans, mapped);
        }
        memset(decoded, 0, n);
}

/* The length of the longest end of @text (@length bytes) that is the start
 * of @secret and not all of it, 0 when none. */
static gsize
itk_redactor_cut_prefix(const char *text, gsize length, const char *secret, gsize from)
{
        gsize n = strlen(secret);

        /* Only an end shorter than the secret can be its start. */
        if (n < 2)
                return 0;
        if (length > n - 1)
                from = MAX(from, length - (n - 1));
        for (gsize p = from; p < length; p++) {
                gsize k = length - p;
                if (k < n && text[p] == secret[0] && memcmp(text + p, secret, k) == 0)
                        return k;
        }
        return 0;
}

/* A text the script reader cut (it ends with a truncation marker) may end
 * in the first bytes of a secret whose rest was dropped: no search for the
 * whole secret can find those, so the end that starts a secret is masked.
 * Plain forms only (docs/security.md). */
static void
itk_redactor_find_cut(ItkRedactor *redactor, const char *text, gsize length, GArray *spans)
{
        static const char *const markers[] = { ITK_SCRIPT_LINE_TRUNCATED,
                                               ITK_SCRIPT_OUTPUT_TRUNCATED, NULL };
        const char *const *shared = NULL;
        gsize head = 0, longest = 0, from;

        for (guint i = 0; markers[i] != NULL && head == 0; i++) {
                gsize m = strlen(markers[i]);
                if (length > m && memcmp(text + length - m, markers[i], m) == 0)
                        head = length - m;
        }
        if (head == 0)
                return;
        /* Each secret is looked for only in the last bytes it could start
         * in, so a cut text costs about the total length of the secrets. */
        from = head > ITK_REDACTOR_MAX_CUT ? head - ITK_REDACTOR_MAX_CUT : 0;
        for (guint i = 0; i < redactor->own->len; i++)
                longest = MAX(longest,
                              itk_redactor_cut_prefix(text, head,
                                                      g_ptr_array_index(redactor->own, i), from));
        if (redactor->shared != NULL)
                shared = itk_secret_set_get_secrets(redactor->shared);
        for (guint i = 0; shared != NULL && shared[i] != NULL; i++)
                longest = MAX(longest, itk_redactor_cut_prefix(text, head, shared[i], from));
        if (longest > 0)
                g_array_append_val(spans, ((ItkSecretSpan){ head - longest, head }));
}

static gint
itk_redactor_compare_span_cb(gconstpointer a, gconstpointer b)
{
        const ItkSecretSpan *x = a, *y = b;

        return x->start < y->start ? -1 : x->start > y->start ? 1 : 0;
}

char *
itk_redactor_apply(ItkRedactor *redactor, const char *text)
{
        g_autoptr(GArray) spans = NULL;
        gsize len, at = 0, end = 0;
        GString *out;

        if (text == NULL)
                return NULL;
        if (itk_redactor_is_empty(redactor))
                return g_strdup(text);

        /* Every range covered by any form of any secret, then each run of
         * overlapping or touching ranges masked once: secrets that overlap
         * in the text are masked whole, and the mask itself is never
         * searched. */
        len = strlen(text);
        spans = g_array_new(FALSE, FALSE, sizeof(ItkSecretSpan));
        itk_redactor_find(redactor, text, len, spans);
        if (memchr(text, '%', len) != NULL || memchr(text, '+', len) != NULL)
                itk_redactor_find_decoded(redactor, text, len, spans);
        itk_redactor_find_cut(redactor, text, len, spans);
        if (spans->len == 0)
                return g_strdup(text);
        g_array_sort(spans, itk_redactor_compare_span_cb);

        out = g_string_sized_new(len);
        for (guint i = 0; i < spans->len;) {
                gsize start = g_array_index(spans, ItkSecretSpan, i).start;

                end = g_array_index(spans, ItkSecretSpan, i).end;
                for (i++; i < spans->len && g_array_index(spans, ItkSecretSpan, i).start <= end;
                     i++)
                        end = MAX(end, g_array_index(spans, ItkSecretSpan, i).end);
                g_string_append_len(out, text + at, (gssize)(start - at));
                g_string_append(out, ITK_REDACTED);
                at = end;
        }
        g_string_append(out, text + at);
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
