/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Output helpers: D-Bus values as JSON, tables, durations and timestamps. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

/* Reads one complete value at the read pointer of @m. */
JsonNode *
ctl_json_read_value(sd_bus_message *m, int *ret_r)
{
        g_autoptr(JsonNode) node = NULL;
        const char *contents = NULL;
        char type = 0;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r <= 0) {
                *ret_r = r < 0 ? r : -EBADMSG;
                return NULL;
        }
        switch (type) {
        case SD_BUS_TYPE_STRING:
        case SD_BUS_TYPE_OBJECT_PATH:
        case SD_BUS_TYPE_SIGNATURE: {
                const char *s = NULL;

                r = sd_bus_message_read_basic(m, type, &s);
                if (r >= 0)
                        node = json_node_init_string(json_node_alloc(), s);
                break;
        }
        case SD_BUS_TYPE_BOOLEAN: {
                int b = 0;

                r = sd_bus_message_read_basic(m, type, &b);
                if (r >= 0)
                        node = json_node_init_boolean(json_node_alloc(), b != 0);
                break;
        }
        case SD_BUS_TYPE_BYTE: {
                uint8_t v = 0;

                r = sd_bus_message_read_basic(m, type, &v);
                if (r >= 0)
                        node = json_node_init_int(json_node_alloc(), v);
                break;
        }
        case SD_BUS_TYPE_INT16: {
                int16_t v = 0;

                r = sd_bus_message_read_basic(m, type, &v);
                if (r >= 0)
                        node = json_node_init_int(json_node_alloc(), v);
                break;
        }
        case SD_BUS_TYPE_UINT16: {
                uint16_t v = 0;

                r = sd_bus_message_read_basic(m, type, &v);
                if (r >= 0)
                        node = json_node_init_int(json_node_alloc(), v);
                break;
        }
        case SD_BUS_TYPE_INT32:
        case SD_BUS_TYPE_UNIX_FD: {
                int32_t v = 0;

                r = sd_bus_message_read_basic(m, type, &v);
                if (r >= 0)
                        node = json_node_init_int(json_node_alloc(), v);
                break;
        }
        case SD_BUS_TYPE_UINT32: {
                uint32_t v = 0;

                r = sd_bus_message_read_basic(m, type, &v);
                if (r >= 0)
                        node = json_node_init_int(json_node_alloc(), v);
                break;
        }
        case SD_BUS_TYPE_INT64: {
                int64_t v = 0;

                r = sd_bus_message_read_basic(m, type, &v);
                if (r >= 0)
                        node = json_node_init_int(json_node_alloc(), v);
                break;
        }
        case SD_BUS_TYPE_UINT64: {
                uint64_t v = 0;

                r = sd_bus_message_read_basic(m, type, &v);
                if (r >= 0)
                        node = json_node_init_int(json_node_alloc(), (gint64)MIN(v, G_MAXINT64));
                break;
        }
        case SD_BUS_TYPE_DOUBLE: {
                double v = 0;

                r = sd_bus_message_read_basic(m, type, &v);
                if (r >= 0)
                        node = json_node_init_double(json_node_alloc(), v);
                break;
        }
        case SD_BUS_TYPE_VARIANT:
                r = sd_bus_message_enter_container(m, type, contents);
                if (r < 0)
                        break;
                node = ctl_json_read_value(m, &r);
                if (node == NULL)
                        break;
                r = sd_bus_message_exit_container(m);
                break;
        case SD_BUS_TYPE_STRUCT: {
                g_autoptr(JsonArray) array = json_array_new();

                r = sd_bus_message_enter_container(m, type, contents);
                while (r >= 0 && (r = sd_bus_message_peek_type(m, NULL, NULL)) > 0) {
                        JsonNode *item = ctl_json_read_value(m, &r);

                        if (item == NULL)
                                break;
                        json_array_add_element(array, item);
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r >= 0)
                        node = json_node_init_array(json_node_alloc(), array);
                break;
        }
        case SD_BUS_TYPE_ARRAY:
                r = sd_bus_message_enter_container(m, type, contents);
                if (r < 0)
                        break;
                if (contents[0] == SD_BUS_TYPE_DICT_ENTRY_BEGIN) {
                        g_autoptr(JsonObject) object = json_object_new();
                        g_autofree char *entry = g_strndup(contents + 1, strlen(contents) - 2);

                        while ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY,
                                                                   entry)) > 0) {
                                g_autoptr(JsonNode) key = ctl_json_read_value(m, &r);
                                g_autofree char *name = NULL;
                                JsonNode *value;

                                if (key == NULL)
                                        break;
                                name = JSON_NODE_HOLDS_VALUE(key) && json_node_get_value_type(
                                                                             key) == G_TYPE_STRING
                                               ? g_strdup(json_node_get_string(key))
                                               : g_strdup_printf("%" G_GINT64_FORMAT,
                                                                 json_node_get_int(key));
                                value = ctl_json_read_value(m, &r);
                                if (value == NULL)
                                        break;
                                json_object_set_member(object, name, value);
                                r = sd_bus_message_exit_container(m);
                                if (r < 0)
                                        break;
                        }
                        if (r >= 0)
                                node = json_node_init_object(json_node_alloc(), object);
                } else {
                        g_autoptr(JsonArray) array = json_array_new();

                        while ((r = sd_bus_message_peek_type(m, NULL, NULL)) > 0) {
                                JsonNode *item = ctl_json_read_value(m, &r);

                                if (item == NULL)
                                        break;
                                json_array_add_element(array, item);
                        }
                        if (r >= 0)
                                node = json_node_init_array(json_node_alloc(), array);
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                break;
        default:
                r = -EBADMSG;
                break;
        }
        if (r < 0) {
                *ret_r = r;
                return NULL;
        }
        *ret_r = 0;
        return g_steal_pointer(&node);
}

JsonNode *
ctl_json_read_reply(sd_bus_message *m, int *r)
{
        return ctl_json_read_value(m, r);
}

void
ctl_json_print(CtlContext *ctx, JsonNode *node)
{
        g_autoptr(JsonGenerator) generator = json_generator_new();
        g_autofree char *text = NULL;

        json_generator_set_pretty(generator, ctx->json_pretty);
        json_generator_set_indent(generator, 2);
        json_generator_set_root(generator, node);
        text = json_generator_to_data(generator, NULL);
        fputs(text, stdout);
        fputc('\n', stdout);
}

const char *
ctl_json_get_string(JsonObject *o, const char *key)
{
        JsonNode *node = o != NULL ? json_object_get_member(o, key) : NULL;

        if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
            json_node_get_value_type(node) != G_TYPE_STRING)
                return NULL;
        return json_node_get_string(node);
}

gint64
ctl_json_get_int(JsonObject *o, const char *key, gint64 fallback)
{
        JsonNode *node = o != NULL ? json_object_get_member(o, key) : NULL;

        if (node == NULL || !JSON_NODE_HOLDS_VALUE(node))
                return fallback;
        if (json_node_get_value_type(node) == G_TYPE_INT64)
                return json_node_get_int(node);
        if (json_node_get_value_type(node) == G_TYPE_DOUBLE)
                return (gint64)json_node_get_double(node);
        if (json_node_get_value_type(node) == G_TYPE_BOOLEAN)
                return json_node_get_boolean(node);
        return fallback;
}

gboolean
ctl_json_get_bool(JsonObject *o, const char *key)
{
        return ctl_json_get_int(o, key, 0) != 0;
}

JsonArray *
ctl_json_get_array(JsonObject *o, const char *key)
{
        JsonNode *node = o != NULL ? json_object_get_member(o, key) : NULL;

        if (node == NULL || !JSON_NODE_HOLDS_ARRAY(node))
                return NULL;
        return json_node_get_array(node);
}

char *
ctl_format_duration(guint64 usec)
{
        guint64 ms = usec / 1000;
        guint64 s = usec / G_USEC_PER_SEC;

        if (usec < 1000)
                return g_strdup_printf("%" G_GUINT64_FORMAT "us", usec);
        if (ms < 1000)
                return g_strdup_printf("%" G_GUINT64_FORMAT "ms", ms);
        if (s < 60)
                return g_strdup_printf("%.2fs", (double)usec / G_USEC_PER_SEC);
        if (s < 3600)
                return g_strdup_printf("%" G_GUINT64_FORMAT "min %" G_GUINT64_FORMAT "s", s / 60,
                                       s % 60);
        return g_strdup_printf("%" G_GUINT64_FORMAT "h %" G_GUINT64_FORMAT "min", s / 3600,
                               (s % 3600) / 60);
}

char *
ctl_format_timestamp(guint64 usec)
{
        g_autoptr(GDateTime) dt = NULL;

        if (usec == 0)
                return g_strdup("-");
        dt = g_date_time_new_from_unix_local((gint64)(usec / G_USEC_PER_SEC));
        if (dt == NULL)
                return g_strdup("-");
        return g_date_time_format(dt, "%Y-%m-%d %H:%M:%S");
}

guint64
ctl_now_realtime(void)
{
        return (guint64)g_get_real_time();
}

guint64
ctl_now_monotonic(void)
{
        return (guint64)g_get_monotonic_time();
}

const char *
ctl_color_status(CtlContext *ctx, const char *status)
{
        if (!ctx->color || status == NULL)
                return "";
        if (g_str_equal(status, "completed"))
                return "\033[0;32m";
        if (g_str_equal(status, "failed"))
                return "\033[0;1;31m";
        if (g_str_equal(status, "cancelled") || g_str_equal(status, "skipped"))
                return "\033[0;33m";
        if (g_str_equal(status, "running") || g_str_equal(status, "paused"))
                return "\033[0;1;39m";
        return "";
}

const char *
ctl_color_reset(CtlContext *ctx)
{
        return ctx->color ? "\033[0m" : "";
}

struct _CtlTable {
        guint columns;
        GPtrArray *rows; /* char** of @columns cells; row 0 is the header */
};

CtlTable *
ctl_table_new(const char *first_header, ...)
{
        CtlTable *table = g_new0(CtlTable, 1);
        g_autoptr(GPtrArray) header = g_ptr_array_new();
        va_list ap;

        va_start(ap, first_header);
        for (const char *h = first_header; h != NULL; h = va_arg(ap, const char *))
                g_ptr_array_add(header, g_strdup(h));
        va_end(ap);
        table->columns = header->len;
        g_ptr_array_add(header, NULL);
        table->rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
        g_ptr_array_add(table->rows, g_ptr_array_free(g_steal_pointer(&header), FALSE));
        return table;
}

void
ctl_table_add_rowv(CtlTable *table, const char *const *cells)
{
        char **row = g_new0(char *, table->columns + 1);

        for (guint i = 0; i < table->columns; i++)
                row[i] = g_strdup(cells[i] != NULL ? cells[i] : "-");
        g_ptr_array_add(table->rows, row);
}

void
ctl_table_add_row(CtlTable *table, const char *first_cell, ...)
{
        g_autofree const char **cells = g_new0(const char *, table->columns + 1);
        va_list ap;

        cells[0] = first_cell;
        va_start(ap, first_cell);
        for (guint i = 1; i < table->columns; i++)
                cells[i] = va_arg(ap, const char *);
        va_end(ap);
        ctl_table_add_rowv(table, cells);
}

guint
ctl_table_get_rows(CtlTable *table)
{
        return table->rows->len - 1;
}

void
ctl_table_print(CtlContext *ctx, CtlTable *table)
{
        g_autofree gsize *width = g_new0(gsize, table->columns);

        for (guint r = 0; r < table->rows->len; r++) {
                char **row = g_ptr_array_index(table->rows, r);

                for (guint c = 0; c < table->columns; c++)
                        width[c] = MAX(width[c], (gsize)g_utf8_strlen(row[c], -1));
        }
        for (guint r = 0; r < table->rows->len; r++) {
                char **row = g_ptr_array_index(table->rows, r);
                g_autoptr(GString) line = g_string_new(NULL);

                if (r == 0 && ctx->quiet)
                        continue;
                for (guint c = 0; c < table->columns; c++) {
                        g_string_append(line, row[c]);
                        if (c + 1 < table->columns) {
                                gsize pad = width[c] - (gsize)g_utf8_strlen(row[c], -1) + 2;

                                for (gsize i = 0; i < pad; i++)
                                        g_string_append_c(line, ' ');
                        }
                }
                /* No trailing blanks from an empty last column. */
                while (line->len > 0 && line->str[line->len - 1] == ' ')
                        g_string_truncate(line, line->len - 1);
                if (r == 0 && ctx->color)
                        printf("\033[1m%s\033[0m\n", line->str);
                else
                        printf("%s\n", line->str);
        }
}

void
ctl_table_free(CtlTable *table)
{
        if (table == NULL)
                return;
        g_ptr_array_unref(table->rows);
        g_free(table);
}
