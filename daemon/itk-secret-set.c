/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "itk-secret-set.h"

#define NO_NODE G_MAXUINT32

typedef struct {
        guint32 edges;   /* first edge in edge_bytes/edge_targets */
        guint32 n_edges; /* sorted by byte */
        guint32 fail;
        guint32 cover; /* length of the longest pattern ending here, 0 none */
} Node;

struct _ItkSecretSet {
        gatomicrefcount ref;
        GPtrArray *secrets; /* char*, as given, NULL-terminated */
        GHashTable *index;  /* secret -> itself, for contains() */
        GArray *nodes;      /* Node; 0 is the root */
        guint8 *edge_bytes; /* edges of all nodes, grouped by node */
        guint32 *edge_targets;
        guint32 root[256]; /* the root's edges, dense: most bytes stop here */
};

/* The secret as it appears inside JSON text ("a\"b"), NULL when the same. */
static char *
itk_secret_set_json_escape(const char *secret)
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

static void
itk_secret_set_wipe_free(gpointer data)
{
        memset(data, 0, strlen(data));
        g_free(data);
}

static void
itk_secret_set_add_pattern(GHashTable *patterns, char *pattern)
{
        if (*pattern == '\0')
                g_free(pattern);
        else
                g_hash_table_add(patterns, pattern);
}

/* Base64 forms of @secret, in both alphabets. */
static void
itk_secret_set_add_base64(GHashTable *patterns, const char *secret)
{
        gsize n = strlen(secret);
        g_autofree guint8 *buffer = g_malloc0(n + 4);
        GPtrArray *forms = g_ptr_array_new_with_free_func(itk_secret_set_wipe_free);
        g_autofree char *whole = g_base64_encode((const guchar *)secret, n);
        char *eq;

        g_ptr_array_add(forms, g_strdup(whole));
        eq = strchr(whole, '=');
        if (eq != NULL)
                *eq = '\0';
        g_ptr_array_add(forms, g_strdup(whole));

        /* Inside a longer text the secret starts at byte offset 0, 1 or 2 of
         * a 3-byte group. Its bits then span [8a, 8a + 8n) of the stream;
         * character k (bits [6k, 6k + 6)) depends on the secret alone when
         * that window lies inside the span. */
        for (gsize a = 0; a < 3; a++) {
                g_autofree char *encoded = NULL;
                gsize first = (8 * a + 5) / 6;
                gsize end = (8 * a + 8 * n) / 6;

                if (end < first || end - first < ITK_SECRET_SET_MIN_FRAGMENT)
                        continue;
                memset(buffer, 0, n + 4);
                memcpy(buffer + a, secret, n);
                encoded = g_base64_encode(buffer, a + n + 2);
                g_ptr_array_add(forms, g_strndup(encoded + first, end - first));
        }

        for (guint i = 0, len = forms->len; i < len; i++) {
                char *url = g_strdup(g_ptr_array_index(forms, i));
                g_strdelimit(url, "+", '-');
                g_strdelimit(url, "/", '_');
                g_ptr_array_add(forms, url);
        }
        for (guint i = 0; i < forms->len; i++)
                itk_secret_set_add_pattern(patterns, g_strdup(g_ptr_array_index(forms, i)));
        g_ptr_array_unref(forms);
}

typedef struct {
        guint32 parent;
        guint8 byte;
        guint32 child;
} Edge;

static gint
itk_secret_set_compare_str_cb(gconstpointer a, gconstpointer b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static inline guint32
itk_secret_set_goto(ItkSecretSet *self, guint32 node, guint8 byte)
{
        const Node *n;
        guint32 lo, hi;

        if (node == 0)
                return self->root[byte];
        n = &g_array_index(self->nodes, Node, node);
        lo = n->edges;
        hi = n->edges + n->n_edges;
        while (lo < hi) {
                guint32 mid = lo + (hi - lo) / 2;
                if (self->edge_bytes[mid] == byte)
                        return self->edge_targets[mid];
                if (self->edge_bytes[mid] < byte)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NO_NODE;
}

/* Builds the trie from the sorted patterns without lookups (each pattern
 * shares its prefix with the one before), then the failure links. */
static void
itk_secret_set_compile(ItkSecretSet *self, GPtrArray *sorted)
{
        g_autoptr(GArray) edges = g_array_new(FALSE, FALSE, sizeof(Edge));
        g_autoptr(GArray) path = g_array_new(FALSE, FALSE, sizeof(guint32));
        g_autoptr(GArray) queue = g_array_new(FALSE, FALSE, sizeof(guint32));
        g_autofree guint32 *fill = NULL;
        const char *previous = "";
        Node root = { 0, 0, 0, 0 };
        guint32 zero = 0;

        g_array_append_val(self->nodes, root);
        g_array_append_val(path, zero);
        for (guint i = 0; i < sorted->len; i++) {
                const char *pattern = g_ptr_array_index(sorted, i);
                gsize len = strlen(pattern);
                gsize common = 0;

                while (pattern[common] != '\0' && pattern[common] == previous[common])
                        common++;
                g_array_set_size(path, common + 1);
                for (gsize k = common; k < len; k++) {
                        Node node = { 0, 0, 0, 0 };
                        guint32 id = self->nodes->len;
                        Edge edge = { g_array_index(path, guint32, k), (guint8)pattern[k], id };

                        g_array_append_val(self->nodes, node);
                        g_array_append_val(edges, edge);
                        g_array_append_val(path, id);
                }
                g_array_index(self->nodes, Node, g_array_index(path, guint32, len)).cover =
                        (guint32)len;
                previous = pattern;
        }

        /* Grouped by parent with a counting sort, which keeps creation order
         * within a parent: patterns were inserted in sorted order, so each
         * node's children were created in increasing byte order. */
        self->edge_bytes = g_new(guint8, MAX(edges->len, 1));
        self->edge_targets = g_new(guint32, MAX(edges->len, 1));
        fill = g_new0(guint32, self->nodes->len);
        for (guint i = 0; i < edges->len; i++)
                g_array_index(self->nodes, Node, g_array_index(edges, Edge, i).parent).n_edges++;
        for (guint i = 0, offset = 0; i < self->nodes->len; i++) {
                Node *node = &g_array_index(self->nodes, Node, i);
                node->edges = offset;
                offset += node->n_edges;
        }
        for (guint i = 0; i < 256; i++)
                self->root[i] = 0;
        for (guint i = 0; i < edges->len; i++) {
                const Edge *e = &g_array_index(edges, Edge, i);
                guint32 at = g_array_index(self->nodes, Node, e->parent).edges + fill[e->parent]++;

                self->edge_bytes[at] = e->byte;
                self->edge_targets[at] = e->child;
                if (e->parent == 0)
                        self->root[e->byte] = e->child;
        }

        /* Breadth first: a node's failure link is the longest proper suffix
         * of its string that is in the trie; its cover the longest pattern
         * among its suffixes (all patterns ending here are suffixes of the
         * longest, so covering that one covers them all). */
        for (guint32 i = 0; i < g_array_index(self->nodes, Node, 0).n_edges; i++)
                g_array_append_val(queue, self->edge_targets[i]);
        for (guint q = 0; q < queue->len; q++) {
                guint32 id = g_array_index(queue, guint32, q);
                Node *node = &g_array_index(self->nodes, Node, id);
                guint32 first = node->edges, count = node->n_edges;

                for (guint32 i = first; i < first + count; i++) {
                        guint32 child = self->edge_targets[i];
                        guint8 byte = self->edge_bytes[i];
                        guint32 f = g_array_index(self->nodes, Node, id).fail;
                        guint32 target;
                        Node *c;

                        for (;;) {
                                target = itk_secret_set_goto(self, f, byte);
                                if (target != NO_NODE && target != 0 && target != child)
                                        break;
                                if (f == 0) {
                                        target = 0;
                                        break;
                                }
                                f = g_array_index(self->nodes, Node, f).fail;
                        }
                        c = &g_array_index(self->nodes, Node, child);
                        c->fail = target;
                        if (c->cover == 0)
                                c->cover = g_array_index(self->nodes, Node, target).cover;
                        g_array_append_val(queue, child);
                }
        }
}

ItkSecretSet *
itk_secret_set_new(const char *const *secrets)
{
        ItkSecretSet *self = g_new0(ItkSecretSet, 1);
        g_autoptr(GHashTable) patterns =
                g_hash_table_new_full(g_str_hash, g_str_equal, itk_secret_set_wipe_free, NULL);
        g_autoptr(GPtrArray) sorted = NULL;
        GHashTableIter iter;
        gpointer key;

        g_atomic_ref_count_init(&self->ref);
        self->secrets = g_ptr_array_new_with_free_func(g_free);
        self->index = g_hash_table_new(g_str_hash, g_str_equal);
        self->nodes = g_array_new(FALSE, FALSE, sizeof(Node));
        for (guint i = 0; secrets != NULL && secrets[i] != NULL; i++) {
                const char *secret = secrets[i];
                char *copy;
                char *escaped;

                if (*secret == '\0' || g_hash_table_contains(self->index, secret))
                        continue;
                copy = g_strdup(secret);
                g_ptr_array_add(self->secrets, copy);
                g_hash_table_add(self->index, copy);
                itk_secret_set_add_pattern(patterns, g_strdup(secret));
                escaped = itk_secret_set_json_escape(secret);
                if (escaped != NULL)
                        itk_secret_set_add_pattern(patterns, escaped);
                itk_secret_set_add_base64(patterns, secret);
        }
        g_ptr_array_add(self->secrets, NULL);

        sorted = g_ptr_array_new();
        g_hash_table_iter_init(&iter, patterns);
        while (g_hash_table_iter_next(&iter, &key, NULL))
                g_ptr_array_add(sorted, key);
        g_ptr_array_sort(sorted, itk_secret_set_compare_str_cb);
        itk_secret_set_compile(self, sorted);
        return self;
}

ItkSecretSet *
itk_secret_set_ref(ItkSecretSet *self)
{
        g_atomic_ref_count_inc(&self->ref);
        return self;
}

void
itk_secret_set_unref(ItkSecretSet *self)
{
        if (self == NULL || !g_atomic_ref_count_dec(&self->ref))
                return;
        /* Best effort: overwrite the secrets before the memory is released. */
        for (guint i = 0; i + 1 < self->secrets->len; i++) {
                char *secret = g_ptr_array_index(self->secrets, i);
                memset(secret, 0, strlen(secret));
        }
        g_hash_table_unref(self->index);
        g_ptr_array_unref(self->secrets);
        g_array_unref(self->nodes);
        g_free(self->edge_bytes);
        g_free(self->edge_targets);
        g_free(self);
}

gboolean
itk_secret_set_is_empty(ItkSecretSet *self)
{
        return self == NULL || self->secrets->len <= 1;
}

gboolean
itk_secret_set_contains(ItkSecretSet *self, const char *secret)
{
        return self != NULL && secret != NULL && g_hash_table_contains(self->index, secret);
}

const char *const *
itk_secret_set_get_secrets(ItkSecretSet *self)
{
        return (const char *const *)self->secrets->pdata;
}

static void
itk_secret_set_add_span(GArray *spans, guint floor, gsize start, gsize end)
{
        /* Ends arrive in increasing order; a long match may swallow earlier
         * spans. Touching spans merge, so they become one mask. */
        while (spans->len > floor) {
                ItkSecretSpan *last = &g_array_index(spans, ItkSecretSpan, spans->len - 1);
                if (start > last->end)
                        break;
                start = MIN(start, last->start);
                g_array_set_size(spans, spans->len - 1);
        }
        g_array_append_val(spans, ((ItkSecretSpan){ start, end }));
}

void
itk_secret_set_find(ItkSecretSet *self, const char *text, gsize length, GArray *spans)
{
        const Node *nodes;
        guint floor;
        guint32 state = 0;

        if (itk_secret_set_is_empty(self))
                return;
        nodes = (const Node *)(gpointer)self->nodes->data;
        floor = spans->len;
        for (gsize i = 0; i < length; i++) {
                guint8 byte = (guint8)text[i];
                guint32 cover;

                if (state == 0) {
                        /* Most bytes of most text start no pattern. */
                        while (self->root[byte] == 0 && ++i < length)
                                byte = (guint8)text[i];
                        if (i == length)
                                break;
                        state = self->root[byte];
                } else {
                        for (;;) {
                                guint32 next = itk_secret_set_goto(self, state, byte);
                                if (next != NO_NODE && (next != 0 || state == 0)) {
                                        state = next;
                                        break;
                                }
                                state = nodes[state].fail;
                        }
                }
                cover = nodes[state].cover;
                if (cover > 0)
                        itk_secret_set_add_span(spans, floor, i + 1 - cover, i + 1);
        }
}
