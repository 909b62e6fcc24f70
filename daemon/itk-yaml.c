/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>
#include <math.h>
#include <yaml.h>
#include <gio/gio.h>

#include "itk-yaml.h"
#include "itk-playbook.h"

#define TAG_PREFIX "tag:yaml.org,2002:"

static const ItkYamlLimits default_limits = {
        .max_size = ITK_PLAYBOOK_MAX_SIZE,
        .max_depth = ITK_PLAYBOOK_MAX_DEPTH,
        .max_nodes = ITK_PLAYBOOK_MAX_NODES,
        .max_bytes = ITK_LIMIT_YAML_EXPANDED_BYTES,
};

/* --- nodes ----------------------------------------------------------------- */

static ItkYamlNode *
itk_yaml_node_new(ItkYamlKind kind, const yaml_mark_t *mark, const yaml_char_t *tag)
{
        ItkYamlNode *node = g_new0(ItkYamlNode, 1);

        g_ref_count_init(&node->ref);
        node->kind = kind;
        node->line = (int)MIN(mark->line + 1, (size_t)G_MAXINT);
        node->column = (int)MIN(mark->column + 1, (size_t)G_MAXINT);
        node->tag = g_strdup((const char *)tag);
        if (kind != ITK_YAML_SCALAR)
                node->items = g_ptr_array_new_with_free_func((GDestroyNotify)itk_yaml_node_unref);
        return node;
}

ItkYamlNode *
itk_yaml_node_ref(ItkYamlNode *node)
{
        g_return_val_if_fail(node != NULL, NULL);
        g_ref_count_inc(&node->ref);
        return node;
}

void
itk_yaml_node_unref(ItkYamlNode *node)
{
        if (node == NULL || !g_ref_count_dec(&node->ref))
                return;
        g_free(node->tag);
        g_free(node->text);
        if (node->items != NULL)
                g_ptr_array_unref(node->items);
        g_free(node);
}

guint
itk_yaml_node_get_size(const ItkYamlNode *node)
{
        g_return_val_if_fail(node != NULL, 0);
        if (node->kind == ITK_YAML_SEQUENCE)
                return node->items->len;
        if (node->kind == ITK_YAML_MAPPING)
                return node->items->len / 2;
        return 0;
}

ItkYamlNode *
itk_yaml_node_get_item(const ItkYamlNode *node, guint index)
{
        g_return_val_if_fail(node != NULL && node->kind == ITK_YAML_SEQUENCE, NULL);
        g_return_val_if_fail(index < node->items->len, NULL);
        return g_ptr_array_index(node->items, index);
}

ItkYamlNode *
itk_yaml_node_get_key(const ItkYamlNode *node, guint index)
{
        g_return_val_if_fail(node != NULL && node->kind == ITK_YAML_MAPPING, NULL);
        g_return_val_if_fail(index < node->items->len / 2, NULL);
        return g_ptr_array_index(node->items, 2 * index);
}

ItkYamlNode *
itk_yaml_node_get_value(const ItkYamlNode *node, guint index)
{
        g_return_val_if_fail(node != NULL && node->kind == ITK_YAML_MAPPING, NULL);
        g_return_val_if_fail(index < node->items->len / 2, NULL);
        return g_ptr_array_index(node->items, 2 * index + 1);
}

ItkYamlNode *
itk_yaml_node_lookup(const ItkYamlNode *node, const char *key)
{
        g_return_val_if_fail(node != NULL && key != NULL, NULL);
        if (node->kind != ITK_YAML_MAPPING)
                return NULL;
        for (guint i = node->items->len / 2; i > 0; i--) {
                ItkYamlNode *k = g_ptr_array_index(node->items, 2 * (i - 1));
                if (k->kind == ITK_YAML_SCALAR && strcmp(k->text, key) == 0)
                        return g_ptr_array_index(node->items, 2 * (i - 1) + 1);
        }
        return NULL;
}

const char *
itk_yaml_error_get_position(const GError *error, int *line, int *column)
{
        int l = 0, c = 0, n = 0;

        g_return_val_if_fail(error != NULL, NULL);
        if (sscanf(error->message, "line %d, column %d: %n", &l, &c, &n) == 2 && n > 0 && l > 0 &&
            c > 0) {
                *line = l;
                *column = c;
                return error->message + n;
        }
        *line = 0;
        *column = 0;
        return error->message;
}

/* --- parsing ----------------------------------------------------------------- */

typedef struct {
        ItkYamlNode *node;
        char *anchor; /* registered when the collection ends */
        gsize size;   /* nodes of the subtree, aliases expanded */
        gsize bytes;  /* scalar bytes of the subtree, aliases expanded */
        guint height; /* collection levels of the subtree, aliases expanded */
} ItkYamlFrame;

typedef struct {
        ItkYamlNode *node;
        gsize size;
        gsize bytes;
        guint height;
} ItkYamlAnchor;

typedef struct {
        const ItkYamlLimits *limits;
        GArray *stack;       /* ItkYamlFrame */
        GHashTable *anchors; /* name -> ItkYamlAnchor* */
        gsize total;         /* nodes so far, aliases expanded */
        gsize total_bytes;   /* scalar bytes so far, aliases expanded */
        ItkYamlNode *root;
        gsize root_size;
        guint root_height;
} ItkYamlBuilder;

static void
itk_yaml_anchor_free(ItkYamlAnchor *anchor)
{
        itk_yaml_node_unref(anchor->node);
        g_free(anchor);
}

static void
itk_yaml_frame_clear(ItkYamlFrame *frame)
{
        g_clear_pointer(&frame->node, itk_yaml_node_unref);
        g_clear_pointer(&frame->anchor, g_free);
}

static void
itk_yaml_builder_clear(ItkYamlBuilder *builder)
{
        g_clear_pointer(&builder->stack, g_array_unref);
        g_clear_pointer(&builder->anchors, g_hash_table_unref);
        g_clear_pointer(&builder->root, itk_yaml_node_unref);
}

static void set_error_at(GError **error, GQuark domain, int code, int line, int column,
                         const char *format, ...) G_GNUC_PRINTF(6, 7);

static void
set_error_at(GError **error, GQuark domain, int code, int line, int column, const char *format, ...)
{
        g_autofree char *message = NULL;
        va_list args;

        va_start(args, format);
        message = g_strdup_vprintf(format, args);
        va_end(args);
        if (line > 0)
                g_set_error(error, domain, code, "line %d, column %d: %s", line, column, message);
        else
                g_set_error_literal(error, domain, code, message);
}

static void
register_anchor(ItkYamlBuilder *builder, const char *name, ItkYamlNode *node, gsize size,
                gsize bytes, guint height)
{
        ItkYamlAnchor *anchor = g_new0(ItkYamlAnchor, 1);

        anchor->node = itk_yaml_node_ref(node);
        anchor->size = size;
        anchor->bytes = bytes;
        anchor->height = height;
        /* A redefined anchor replaces the earlier one for later aliases. */
        g_hash_table_replace(builder->anchors, g_strdup(name), anchor);
}

/* Takes @node. */
static void
builder_add(ItkYamlBuilder *builder, ItkYamlNode *node, gsize size, gsize bytes, guint height)
{
        ItkYamlFrame *parent;

        if (builder->stack->len == 0) {
                g_clear_pointer(&builder->root, itk_yaml_node_unref);
                builder->root = node;
                builder->root_size = size;
                builder->root_height = height;
                return;
        }
        parent = &g_array_index(builder->stack, ItkYamlFrame, builder->stack->len - 1);
        g_ptr_array_add(parent->node->items, node);
        parent->size += size;
        parent->bytes += bytes;
        parent->height = MAX(parent->height, height + 1);
}

static gboolean
is_merge_key(const ItkYamlNode *key)
{
        return key->kind == ITK_YAML_SCALAR && key->plain &&
               (key->tag == NULL || g_strcmp0(key->tag, TAG_PREFIX "merge") == 0) &&
               strcmp(key->text, "<<") == 0;
}

static void
append_pairs(GPtrArray *pairs, ItkYamlNode *mapping)
{
        for (guint i = 0; i < mapping->items->len; i++)
                g_ptr_array_add(pairs, itk_yaml_node_ref(g_ptr_array_index(mapping->items, i)));
}

/* Applies "<<" merge keys the way PyYAML's flatten_mapping does: the merged
 * pairs come first and a later pair with the same key wins, so the
 * mapping's own keys override merged ones, and in "<<: [*a, *b]" the
 * earlier *a overrides *b. The merged nodes are shared, not copied: the
 * alias expansion that brought them was already counted. */
static gboolean
apply_merge_keys(ItkYamlNode *mapping, GError **error)
{
        g_autoptr(GPtrArray) merged = NULL;
        g_autoptr(GPtrArray) own = NULL;
        g_autoptr(GHashTable) own_keys = NULL;
        g_autoptr(GHashTable) position = NULL;
        GPtrArray *result;
        gboolean any = FALSE;

        for (guint i = 0; i < mapping->items->len && !any; i += 2)
                any = is_merge_key(g_ptr_array_index(mapping->items, i));
        if (!any)
                return TRUE;

        merged = g_ptr_array_new_with_free_func((GDestroyNotify)itk_yaml_node_unref);
        own = g_ptr_array_new_with_free_func((GDestroyNotify)itk_yaml_node_unref);
        for (guint i = 0; i < mapping->items->len; i += 2) {
                ItkYamlNode *key = g_ptr_array_index(mapping->items, i);
                ItkYamlNode *value = g_ptr_array_index(mapping->items, i + 1);

                if (!is_merge_key(key)) {
                        g_ptr_array_add(own, itk_yaml_node_ref(key));
                        g_ptr_array_add(own, itk_yaml_node_ref(value));
                } else if (value->kind == ITK_YAML_MAPPING) {
                        append_pairs(merged, value);
                } else if (value->kind == ITK_YAML_SEQUENCE) {
                        for (guint j = value->items->len; j > 0; j--) {
                                ItkYamlNode *item = g_ptr_array_index(value->items, j - 1);
                                if (item->kind != ITK_YAML_MAPPING) {
                                        set_error_at(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                                     item->line, item->column,
                                                     "a merge key '<<' needs mappings to merge");
                                        return FALSE;
                                }
                                append_pairs(merged, item);
                        }
                } else {
                        set_error_at(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, value->line,
                                     value->column,
                                     "a merge key '<<' needs a mapping or a list of mappings");
                        return FALSE;
                }
        }

        /* A merged key keeps the place where it first appears and the value of
         * its last occurrence (dict semantics); the mapping's own keys win. */
        own_keys = g_hash_table_new(g_str_hash, g_str_equal);
        for (guint i = 0; i < own->len; i += 2) {
                ItkYamlNode *key = g_ptr_array_index(own, i);
                if (key->kind == ITK_YAML_SCALAR)
                        g_hash_table_add(own_keys, key->text);
        }
        position = g_hash_table_new(g_str_hash, g_str_equal);
        result = g_ptr_array_new_with_free_func((GDestroyNotify)itk_yaml_node_unref);
        for (guint i = 0; i < merged->len; i += 2) {
                ItkYamlNode *key = g_ptr_array_index(merged, i);
                ItkYamlNode *value = g_ptr_array_index(merged, i + 1);
                gpointer at;

                if (key->kind == ITK_YAML_SCALAR) {
                        if (g_hash_table_contains(own_keys, key->text))
                                continue;
                        if (g_hash_table_lookup_extended(position, key->text, NULL, &at)) {
                                guint index = GPOINTER_TO_UINT(at);
                                itk_yaml_node_unref(result->pdata[index + 1]);
                                result->pdata[index + 1] = itk_yaml_node_ref(value);
                                continue;
                        }
                        g_hash_table_insert(position, key->text, GUINT_TO_POINTER(result->len));
                }
                g_ptr_array_add(result, itk_yaml_node_ref(key));
                g_ptr_array_add(result, itk_yaml_node_ref(value));
        }
        for (guint i = 0; i < own->len; i++)
                g_ptr_array_add(result, itk_yaml_node_ref(g_ptr_array_index(own, i)));

        g_ptr_array_unref(mapping->items);
        mapping->items = result;
        return TRUE;
}

/* @alias: the alias name, NULL for a node of the source. */
static gboolean
count_nodes(ItkYamlBuilder *builder, gsize count, const char *alias, const yaml_mark_t *mark,
            GError **error)
{
        if (count <= builder->limits->max_nodes &&
            builder->total <= builder->limits->max_nodes - count) {
                builder->total += count;
                return TRUE;
        }
        if (alias != NULL)
                set_error_at(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE, (int)mark->line + 1,
                             (int)mark->column + 1,
                             "the document has more than %u nodes (aliases expanded): alias '*%s' "
                             "repeats %" G_GSIZE_FORMAT " nodes, %" G_GSIZE_FORMAT
                             " were already counted",
                             builder->limits->max_nodes, alias, count, builder->total);
        else
                set_error_at(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE, (int)mark->line + 1,
                             (int)mark->column + 1,
                             "the document has more than %u nodes (aliases expanded)",
                             builder->limits->max_nodes);
        return FALSE;
}

/* Counted before the scalar is copied or the alias shared, so a document
 * that would expand past the budget is refused having built only what
 * fits. @alias: the alias name, NULL for a scalar of the source. */
static gboolean
count_bytes(ItkYamlBuilder *builder, gsize bytes, const char *alias, const yaml_mark_t *mark,
            GError **error)
{
        gsize max = builder->limits->max_bytes;
        g_autofree char *limit = NULL;

        if (max == 0 || (bytes <= max && builder->total_bytes <= max - bytes)) {
                builder->total_bytes += bytes;
                return TRUE;
        }
        /* Not g_format_size(): it puts a no-break space in the text. */
        limit = max % (1024 * 1024) == 0
                        ? g_strdup_printf("%" G_GSIZE_FORMAT " MiB", max / (1024 * 1024))
                        : g_strdup_printf("%" G_GSIZE_FORMAT " bytes", max);
        if (alias != NULL)
                set_error_at(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE, (int)mark->line + 1,
                             (int)mark->column + 1,
                             "the document expands to more than %s through YAML aliases: alias "
                             "'*%s' repeats %" G_GSIZE_FORMAT " bytes of text, %" G_GSIZE_FORMAT
                             " were already expanded (the limit is %" G_GSIZE_FORMAT " bytes)",
                             limit, alias, bytes, builder->total_bytes, max);
        else
                set_error_at(
                        error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE, (int)mark->line + 1,
                        (int)mark->column + 1,
                        "the document holds more than %s of text (the limit is %" G_GSIZE_FORMAT
                        " bytes)",
                        limit, max);
        return FALSE;
}

static gboolean
anchor_is_open(ItkYamlBuilder *builder, const char *name)
{
        for (guint i = 0; i < builder->stack->len; i++) {
                ItkYamlFrame *frame = &g_array_index(builder->stack, ItkYamlFrame, i);
                if (g_strcmp0(frame->anchor, name) == 0)
                        return TRUE;
        }
        return FALSE;
}

static gboolean
builder_handle_event(ItkYamlBuilder *builder, yaml_event_t *event, GError **error)
{
        const yaml_mark_t *mark = &event->start_mark;
        int line = (int)MIN(mark->line + 1, (size_t)G_MAXINT);
        int column = (int)MIN(mark->column + 1, (size_t)G_MAXINT);

        switch (event->type) {
        case YAML_SCALAR_EVENT: {
                ItkYamlNode *node;

                if (!count_nodes(builder, 1, NULL, mark, error) ||
                    !count_bytes(builder, event->data.scalar.length, NULL, mark, error))
                        return FALSE;
                node = itk_yaml_node_new(ITK_YAML_SCALAR, mark, event->data.scalar.tag);
                node->text = g_strndup((const char *)event->data.scalar.value,
                                       event->data.scalar.length);
                node->length = event->data.scalar.length;
                node->plain = event->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                if (event->data.scalar.anchor != NULL)
                        register_anchor(builder, (const char *)event->data.scalar.anchor, node, 1,
                                        node->length, 0);
                builder_add(builder, node, 1, node->length, 0);
                return TRUE;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
                gboolean is_seq = event->type == YAML_SEQUENCE_START_EVENT;
                const yaml_char_t *tag =
                        is_seq ? event->data.sequence_start.tag : event->data.mapping_start.tag;
                const yaml_char_t *anchor = is_seq ? event->data.sequence_start.anchor
                                                   : event->data.mapping_start.anchor;
                ItkYamlFrame frame = { 0 };

                if (builder->stack->len + 1 > builder->limits->max_depth) {
                        set_error_at(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE, line, column,
                                     "collections are nested more than %u deep",
                                     builder->limits->max_depth);
                        return FALSE;
                }
                if (!count_nodes(builder, 1, NULL, mark, error))
                        return FALSE;
                frame.node =
                        itk_yaml_node_new(is_seq ? ITK_YAML_SEQUENCE : ITK_YAML_MAPPING, mark, tag);
                frame.anchor = g_strdup((const char *)anchor);
                frame.size = 1;
                frame.height = 1;
                g_array_append_val(builder->stack, frame);
                return TRUE;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
                ItkYamlFrame frame;

                g_assert(builder->stack->len > 0);
                frame = g_array_index(builder->stack, ItkYamlFrame, builder->stack->len - 1);
                /* Steal the frame's pointers before shrinking the array. */
                memset(&g_array_index(builder->stack, ItkYamlFrame, builder->stack->len - 1), 0,
                       sizeof(ItkYamlFrame));
                g_array_set_size(builder->stack, builder->stack->len - 1);
                if (frame.node->kind == ITK_YAML_MAPPING && !apply_merge_keys(frame.node, error)) {
                        itk_yaml_frame_clear(&frame);
                        return FALSE;
                }
                if (frame.anchor != NULL)
                        register_anchor(builder, frame.anchor, frame.node, frame.size, frame.bytes,
                                        frame.height);
                builder_add(builder, g_steal_pointer(&frame.node), frame.size, frame.bytes,
                            frame.height);
                itk_yaml_frame_clear(&frame);
                return TRUE;
        }
        case YAML_ALIAS_EVENT: {
                const char *name = (const char *)event->data.alias.anchor;
                ItkYamlAnchor *anchor = g_hash_table_lookup(builder->anchors, name);

                if (anchor == NULL) {
                        set_error_at(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, line, column,
                                     anchor_is_open(builder, name)
                                             ? "alias '*%s' refers to a collection that contains it"
                                             : "unknown alias '*%s'",
                                     name);
                        return FALSE;
                }
                if (builder->stack->len + anchor->height > builder->limits->max_depth) {
                        set_error_at(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE, line, column,
                                     "collections are nested more than %u deep "
                                     "(aliases expanded)",
                                     builder->limits->max_depth);
                        return FALSE;
                }
                if (!count_nodes(builder, anchor->size, name, mark, error) ||
                    !count_bytes(builder, anchor->bytes, name, mark, error))
                        return FALSE;
                builder_add(builder, itk_yaml_node_ref(anchor->node), anchor->size, anchor->bytes,
                            anchor->height);
                return TRUE;
        }
        case YAML_NO_EVENT:
        case YAML_STREAM_START_EVENT:
        case YAML_STREAM_END_EVENT:
        case YAML_DOCUMENT_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
        default:
                return TRUE;
        }
}

/* Reader errors (bad UTF-8, control characters) carry a byte offset only. */
static void
position_of_offset(const char *data, gsize length, gsize offset, int *line, int *column)
{
        *line = 1;
        *column = 1;
        for (gsize i = 0; i < offset && i < length; i++) {
                if (data[i] == '\n') {
                        (*line)++;
                        *column = 1;
                } else if (((guchar)data[i] & 0xc0) != 0x80) {
                        (*column)++;
                }
        }
}

static void
set_parser_error(yaml_parser_t *parser, const char *data, gsize length, GError **error)
{
        const char *problem = parser->problem != NULL ? parser->problem : "invalid YAML";
        int line, column;

        if (parser->error == YAML_MEMORY_ERROR)
                g_error("libyaml: out of memory");
        if (parser->error == YAML_READER_ERROR) {
                position_of_offset(data, length, parser->problem_offset, &line, &column);
                if (parser->problem_value != -1)
                        set_error_at(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, line, column,
                                     "%s (#%X)", problem, (guint)parser->problem_value);
                else
                        set_error_at(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, line, column, "%s",
                                     problem);
                return;
        }
        line = (int)MIN(parser->problem_mark.line + 1, (size_t)G_MAXINT);
        column = (int)MIN(parser->problem_mark.column + 1, (size_t)G_MAXINT);
        if (parser->context != NULL)
                set_error_at(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, line, column,
                             "%s (%s at line %d, column %d)", problem, parser->context,
                             (int)parser->context_mark.line + 1,
                             (int)parser->context_mark.column + 1);
        else
                set_error_at(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, line, column, "%s",
                             problem);
}

ItkYamlNode *
itk_yaml_parse(const char *data, gssize length, const ItkYamlLimits *limits, GError **error)
{
        ItkYamlBuilder builder = { 0 };
        yaml_parser_t parser;
        guint documents = 0;
        gboolean ok = TRUE;
        gsize size;

        g_return_val_if_fail(data != NULL || length == 0, NULL);

        if (limits == NULL)
                limits = &default_limits;
        size = length < 0 ? strlen(data) : (gsize)length;
        if (size > limits->max_size) {
                set_error_at(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE, 0, 0,
                             "the document is %" G_GSIZE_FORMAT
                             " bytes, larger than the limit of %" G_GSIZE_FORMAT " bytes",
                             size, limits->max_size);
                return NULL;
        }

        builder.limits = limits;
        builder.stack = g_array_new(FALSE, TRUE, sizeof(ItkYamlFrame));
        g_array_set_clear_func(builder.stack, (GDestroyNotify)itk_yaml_frame_clear);
        builder.anchors = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                (GDestroyNotify)itk_yaml_anchor_free);

        if (!yaml_parser_initialize(&parser))
                g_error("libyaml: out of memory");
        yaml_parser_set_input_string(&parser, (const unsigned char *)(data != NULL ? data : ""),
                                     size);

        while (ok) {
                yaml_event_t event;
                gboolean done;

                if (!yaml_parser_parse(&parser, &event)) {
                        set_parser_error(&parser, data, size, error);
                        ok = FALSE;
                        break;
                }
                done = event.type == YAML_STREAM_END_EVENT;
                if (event.type == YAML_DOCUMENT_START_EVENT && ++documents > 1) {
                        set_error_at(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                     (int)event.start_mark.line + 1,
                                     (int)event.start_mark.column + 1,
                                     "only one document is allowed, found a second one");
                        ok = FALSE;
                } else {
                        ok = builder_handle_event(&builder, &event, error);
                }
                yaml_event_delete(&event);
                if (done)
                        break;
        }
        yaml_parser_delete(&parser);

        if (ok && builder.root == NULL) {
                /* An empty stream is a null document, as PyYAML reads it. */
                yaml_mark_t start = { 0 };
                builder.root = itk_yaml_node_new(ITK_YAML_SCALAR, &start, NULL);
                builder.root->text = g_strdup("");
                builder.root->plain = TRUE;
        }
        if (!ok) {
                itk_yaml_builder_clear(&builder);
                return NULL;
        }
        {
                ItkYamlNode *root = g_steal_pointer(&builder.root);
                itk_yaml_builder_clear(&builder);
                return root;
        }
}

/* --- resolution --------------------------------------------------------------- */

typedef enum {
        RESOLVE_NULL,
        RESOLVE_BOOL,
        RESOLVE_INT,
        RESOLVE_FLOAT,
        RESOLVE_N,
} ResolveKind;

/* PyYAML's implicit resolvers (resolver.py, YAML 1.1), plus the YAML 1.2
 * forms 0o17 and 1e3. \z: PCRE's $ would also match before a final newline. */
static const char *const resolve_patterns[RESOLVE_N] = {
        [RESOLVE_NULL] = "^(?:~|null|Null|NULL|)\\z",
        [RESOLVE_BOOL] = "^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE"
                         "|on|On|ON|off|Off|OFF)\\z",
        [RESOLVE_INT] = "^(?:[-+]?0b[0-1_]+"
                        "|[-+]?0o[0-7_]+"
                        "|[-+]?0[0-7_]+"
                        "|[-+]?(?:0|[1-9][0-9_]*)"
                        "|[-+]?0x[0-9a-fA-F_]+"
                        "|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)\\z",
        [RESOLVE_FLOAT] = "^(?:[-+]?(?:[0-9][0-9_]*)\\.[0-9_]*(?:[eE][-+][0-9]+)?"
                          "|\\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
                          "|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\\.[0-9_]*"
                          "|[-+]?\\.(?:inf|Inf|INF)"
                          "|\\.(?:nan|NaN|NAN)"
                          "|[-+]?[0-9][0-9_]*(?:\\.[0-9_]*)?[eE][-+]?[0-9]+)\\z",
};

static const char *const resolve_first_chars[RESOLVE_N] = {
        [RESOLVE_NULL] = "~nN",
        [RESOLVE_BOOL] = "yYnNtTfFoO",
        [RESOLVE_INT] = "-+0123456789",
        [RESOLVE_FLOAT] = "-+.0123456789",
};

static gboolean
resolve_matches(ResolveKind kind, const char *text, gsize length)
{
        static GRegex *regexes[RESOLVE_N];
        static gsize once;

        if (g_once_init_enter(&once)) {
                for (guint i = 0; i < RESOLVE_N; i++)
                        regexes[i] = g_regex_new(resolve_patterns[i], G_REGEX_OPTIMIZE, 0, NULL);
                g_once_init_leave(&once, 1);
        }
        g_assert(regexes[kind] != NULL);
        /* Most text cannot match: decide by the first character before running a regex. */
        if (length > 0 && strchr(resolve_first_chars[kind], text[0]) == NULL)
                return FALSE;
        /* Every form is short; a long text cannot match and need not be scanned. */
        if (length > 128)
                return FALSE;
        return g_regex_match_full(regexes[kind], text, (gssize)length, 0, 0, NULL, NULL);
}

static gboolean
text_is_bool_true(const char *text)
{
        return g_ascii_strcasecmp(text, "yes") == 0 || g_ascii_strcasecmp(text, "true") == 0 ||
               g_ascii_strcasecmp(text, "on") == 0;
}

/* @text matched the int pattern. Returns a node (integer, or float beyond 64 bits). */
static JsonNode *
parse_int(const char *text)
{
        g_autoptr(GString) digits = g_string_new(NULL);
        gboolean negative = FALSE;
        const char *p = text;
        guint base = 10;
        guint64 value = 0;
        double fvalue = 0;
        gboolean overflow = FALSE;

        if (*p == '-' || *p == '+')
                negative = *p++ == '-';
        for (const char *q = p; *q != '\0'; q++)
                if (*q != '_')
                        g_string_append_c(digits, *q);

        if (strchr(digits->str, ':') != NULL) {
                /* Sexagesimal: 190:20:30 = 190 * 3600 + 20 * 60 + 30. */
                g_auto(GStrv) parts = g_strsplit(digits->str, ":", -1);
                for (guint i = 0; parts[i] != NULL; i++) {
                        guint64 part = g_ascii_strtoull(parts[i], NULL, 10);
                        fvalue = fvalue * 60 + (double)part;
                        if (value > (G_MAXUINT64 - part) / 60)
                                overflow = TRUE;
                        else
                                value = value * 60 + part;
                }
        } else {
                const char *d = digits->str;
                if (g_str_has_prefix(d, "0b")) {
                        base = 2;
                        d += 2;
                } else if (g_str_has_prefix(d, "0x")) {
                        base = 16;
                        d += 2;
                } else if (g_str_has_prefix(d, "0o")) {
                        base = 8;
                        d += 2;
                } else if (d[0] == '0' && d[1] != '\0') {
                        base = 8;
                        d += 1;
                }
                if (*d == '\0')
                        return NULL; /* "0x_": no digits; PyYAML fails, we keep text */
                for (; *d != '\0'; d++) {
                        guint digit = (guint)g_ascii_xdigit_value(*d);
                        fvalue = fvalue * base + digit;
                        if (value > (G_MAXUINT64 - digit) / base)
                                overflow = TRUE;
                        else
                                value = value * base + digit;
                }
        }

        {
                JsonNode *node = json_node_new(JSON_NODE_VALUE);
                if (!overflow && !negative && value <= (guint64)G_MAXINT64)
                        json_node_set_int(node, (gint64)value);
                else if (!overflow && negative && value <= (guint64)G_MAXINT64 + 1)
                        json_node_set_int(node, value == (guint64)G_MAXINT64 + 1 ? G_MININT64
                                                                                 : -(gint64)value);
                else
                        json_node_set_double(node, negative ? -fvalue : fvalue);
                return node;
        }
}

/* @text matched the float pattern. */
static JsonNode *
parse_float(const char *text)
{
        g_autoptr(GString) clean = g_string_new(NULL);
        JsonNode *node = json_node_new(JSON_NODE_VALUE);
        const char *p = text;
        double sign = 1, value;

        if (*p == '-' || *p == '+')
                sign = *p++ == '-' ? -1 : 1;
        for (; *p != '\0'; p++)
                if (*p != '_')
                        g_string_append_c(clean, g_ascii_tolower(*p));

        if (strcmp(clean->str, ".inf") == 0) {
                value = INFINITY;
        } else if (strcmp(clean->str, ".nan") == 0) {
                value = NAN;
        } else if (strchr(clean->str, ':') != NULL) {
                g_auto(GStrv) parts = g_strsplit(clean->str, ":", -1);
                value = 0;
                for (guint i = 0; parts[i] != NULL; i++)
                        value = value * 60 + g_ascii_strtod(parts[i], NULL);
        } else {
                value = g_ascii_strtod(clean->str, NULL);
        }
        json_node_set_double(node, sign * value);
        return node;
}

static JsonNode *
new_string_node(const char *text)
{
        JsonNode *node = json_node_new(JSON_NODE_VALUE);
        json_node_set_string(node, text);
        return node;
}

gboolean
itk_yaml_node_is_null(const ItkYamlNode *node)
{
        g_return_val_if_fail(node != NULL, FALSE);
        if (node->kind != ITK_YAML_SCALAR)
                return FALSE;
        if (g_strcmp0(node->tag, TAG_PREFIX "null") == 0)
                return TRUE;
        return node->tag == NULL && node->plain &&
               resolve_matches(RESOLVE_NULL, node->text, node->length);
}

static JsonNode *
resolve_scalar(const ItkYamlNode *node, GError **error)
{
        const char *tag = node->tag;
        const char *text = node->text;
        gsize length = node->length;
        JsonNode *result;

        if (tag == NULL && !node->plain)
                return new_string_node(text);
        if (tag == NULL) {
                if (resolve_matches(RESOLVE_NULL, text, length))
                        return json_node_new(JSON_NODE_NULL);
                if (resolve_matches(RESOLVE_BOOL, text, length)) {
                        result = json_node_new(JSON_NODE_VALUE);
                        json_node_set_boolean(result, text_is_bool_true(text));
                        return result;
                }
                if (resolve_matches(RESOLVE_INT, text, length) && (result = parse_int(text)))
                        return result;
                if (resolve_matches(RESOLVE_FLOAT, text, length))
                        return parse_float(text);
                return new_string_node(text);
        }
        if (strcmp(tag, "!") == 0 || strcmp(tag, TAG_PREFIX "str") == 0 ||
            strcmp(tag, TAG_PREFIX "timestamp") == 0)
                return new_string_node(text);
        if (strcmp(tag, TAG_PREFIX "null") == 0)
                return json_node_new(JSON_NODE_NULL);
        if (strcmp(tag, TAG_PREFIX "bool") == 0 && resolve_matches(RESOLVE_BOOL, text, length)) {
                result = json_node_new(JSON_NODE_VALUE);
                json_node_set_boolean(result, text_is_bool_true(text));
                return result;
        }
        if (strcmp(tag, TAG_PREFIX "int") == 0 && resolve_matches(RESOLVE_INT, text, length) &&
            (result = parse_int(text)))
                return result;
        if (strcmp(tag, TAG_PREFIX "float") == 0) {
                if (resolve_matches(RESOLVE_FLOAT, text, length))
                        return parse_float(text);
                if (resolve_matches(RESOLVE_INT, text, length) && (result = parse_int(text))) {
                        if (json_node_get_value_type(result) == G_TYPE_INT64)
                                json_node_set_double(result, (double)json_node_get_int(result));
                        return result;
                }
        }
        if (strcmp(tag, TAG_PREFIX "bool") == 0 || strcmp(tag, TAG_PREFIX "int") == 0 ||
            strcmp(tag, TAG_PREFIX "float") == 0) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                            "line %d, column %d: '%s' is not a valid !!%s", node->line,
                            node->column, text, tag + strlen(TAG_PREFIX));
                return NULL;
        }
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "line %d, column %d: unsupported tag '%s' on a scalar", node->line,
                    node->column, tag);
        return NULL;
}

static gboolean
check_collection_tag(const ItkYamlNode *node, GError **error)
{
        const char *expected =
                node->kind == ITK_YAML_SEQUENCE ? TAG_PREFIX "seq" : TAG_PREFIX "map";

        if (node->tag == NULL || strcmp(node->tag, "!") == 0 || strcmp(node->tag, expected) == 0)
                return TRUE;
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "line %d, column %d: unsupported tag '%s' on a %s", node->line, node->column,
                    node->tag, node->kind == ITK_YAML_SEQUENCE ? "sequence" : "mapping");
        return FALSE;
}

static gboolean
check_no_nul(const ItkYamlNode *node, GError **error)
{
        if (node->length == strlen(node->text))
                return TRUE;
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "line %d, column %d: text must not contain NUL characters", node->line,
                    node->column);
        return FALSE;
}

JsonNode *
itk_yaml_node_to_json(const ItkYamlNode *node, GError **error)
{
        g_return_val_if_fail(node != NULL, NULL);

        switch (node->kind) {
        case ITK_YAML_SCALAR:
                if (!check_no_nul(node, error))
                        return NULL;
                return resolve_scalar(node, error);
        case ITK_YAML_SEQUENCE: {
                g_autoptr(JsonArray) array = NULL;

                if (!check_collection_tag(node, error))
                        return NULL;
                array = json_array_sized_new(node->items->len);
                for (guint i = 0; i < node->items->len; i++) {
                        JsonNode *item =
                                itk_yaml_node_to_json(g_ptr_array_index(node->items, i), error);
                        if (item == NULL)
                                return NULL;
                        json_array_add_element(array, item);
                }
                return json_node_init_array(json_node_alloc(), array);
        }
        case ITK_YAML_MAPPING: {
                g_autoptr(JsonObject) object = NULL;

                if (!check_collection_tag(node, error))
                        return NULL;
                object = json_object_new();
                for (guint i = 0; i < node->items->len; i += 2) {
                        const ItkYamlNode *key = g_ptr_array_index(node->items, i);
                        JsonNode *value;

                        if (key->kind != ITK_YAML_SCALAR) {
                                /* Usually an unquoted "{{ x }}", which YAML reads as
                                 * a flow mapping inside a flow mapping. */
                                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                            "line %d, column %d: a mapping key must be a scalar, "
                                            "not a %s%s",
                                            key->line, key->column,
                                            key->kind == ITK_YAML_SEQUENCE ? "sequence" : "mapping",
                                            key->kind == ITK_YAML_MAPPING
                                                    ? " (quote text that starts with '{{')"
                                                    : "");
                                return NULL;
                        }
                        if (!check_no_nul(key, error))
                                return NULL;
                        value = itk_yaml_node_to_json(g_ptr_array_index(node->items, i + 1), error);
                        if (value == NULL)
                                return NULL;
                        /* A duplicate key replaces the earlier value, as in PyYAML. */
                        json_object_set_member(object, key->text, value);
                }
                return json_node_init_object(json_node_alloc(), object);
        }
        default:
                g_assert_not_reached();
        }
}
