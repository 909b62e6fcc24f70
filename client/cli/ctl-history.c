/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ignitionctl history and forget: the finished runs in the store. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static gboolean
ctl_history_valid_status_filter(const char *status)
{
        static const char *const statuses[] = { "completed", "failed", "cancelled" };

        for (gsize i = 0; i < G_N_ELEMENTS(statuses); i++) {
                if (g_str_equal(status, statuses[i]))
                        return TRUE;
        }
        return FALSE;
}

/* "2026-12-01" (local midnight), "2026-12-01 13:30[:05]", ISO 8601 with an
 * offset, or "@SECONDS" since the epoch; µs since the epoch. */
static gboolean
ctl_history_parse_time(const char *text, gint64 *usec)
{
        g_autoptr(GTimeZone) local = g_time_zone_new_local();
        g_autoptr(GDateTime) dt = NULL;
        g_autofree char *iso = NULL;
        guint64 seconds = 0;

        if (text[0] == '@') {
                if (!g_ascii_string_to_unsigned(text + 1, 10, 0, G_MAXINT64 / G_USEC_PER_SEC,
                                                &seconds, NULL))
                        return FALSE;
                *usec = (gint64)seconds * G_USEC_PER_SEC;
                return TRUE;
        }
        if (strlen(text) == 10)
                iso = g_strconcat(text, "T00:00:00", NULL);
        else
                iso = g_strdelimit(g_strdup(text), " ", 'T');
        dt = g_date_time_new_from_iso8601(iso, local);
        if (dt == NULL)
                return FALSE;
        *usec = g_date_time_to_unix(dt) * G_USEC_PER_SEC + g_date_time_get_microsecond(dt);
        return TRUE;
}

static gboolean
ctl_history_paged(CtlContext *ctx)
{
        return ctx->all || ctx->page_size != 0 || ctx->since != NULL || ctx->until != NULL ||
               ctx->playbook_filter != NULL || ctx->text_filter != NULL;
}

/* GetHistoryPage, following the cursor: --limit runs (100 by default), or
 * every run with --all. A text search may return short pages: only the
 * empty cursor ends the walk. */
static int
ctl_history_load_pages(CtlContext *ctx, const char *status, JsonArray **ret)
{
        g_autoptr(JsonArray) runs = json_array_new();
        g_autofree char *cursor = g_strdup("");
        gint64 since = G_MININT64, until = G_MAXINT64;
        guint want = ctx->all ? G_MAXUINT : ctx->limit != 0 ? ctx->limit : 100;

        if (ctx->since != NULL && !ctl_history_parse_time(ctx->since, &since)) {
                ctl_error("--since takes a date (2026-12-01), a local time (2026-12-01 13:30) "
                          "or @SECONDS, not '%s'",
                          ctx->since);
                return CTL_EXIT_USAGE;
        }
        if (ctx->until != NULL && !ctl_history_parse_time(ctx->until, &until)) {
                ctl_error("--until takes a date (2026-12-01), a local time (2026-12-01 13:30) "
                          "or @SECONDS, not '%s'",
                          ctx->until);
                return CTL_EXIT_USAGE;
        }
        while (json_array_get_length(runs) < want) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                g_autoptr(JsonNode) page = NULL;
                guint room = want - json_array_get_length(runs);
                guint size = ctx->page_size != 0 ? ctx->page_size : 100;
                const char *next = NULL;
                JsonArray *array;
                int r;

                r = ctl_call_manager(ctx, "GetHistoryPage", &reply, "cannot read the history",
                                     "a{sv}us", 5, "status", "s", status, "playbook", "s",
                                     ctx->playbook_filter != NULL ? ctx->playbook_filter : "",
                                     "text", "s", ctx->text_filter != NULL ? ctx->text_filter : "",
                                     "since", "x", since, "until", "x", until, MIN(size, room),
                                     cursor);
                if (r != 0)
                        return r;
                page = ctl_json_read_value(reply, &r);
                if (page == NULL || !JSON_NODE_HOLDS_ARRAY(page) ||
                    (r = sd_bus_message_read(reply, "s", &next)) < 0) {
                        ctl_error("cannot read the history: %s", g_strerror(r < 0 ? -r : EBADMSG));
                        return CTL_EXIT_FAILURE;
                }
                array = json_node_get_array(page);
                for (guint i = 0; i < json_array_get_length(array); i++)
                        json_array_add_element(runs, json_array_dup_element(array, i));
                if (next == NULL || *next == '\0')
                        break;
                g_free(cursor);
                cursor = g_strdup(next);
        }
        *ret = g_steal_pointer(&runs);
        return 0;
}

int
ctl_history_load_log_pages(CtlContext *ctx, const char *id, JsonArray **ret)
{
        g_autoptr(JsonArray) lines = json_array_new();
        g_autofree char *cursor = g_strdup("");
        g_autofree char *what = g_strdup_printf("cannot read the log of %s", id);

        for (;;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                g_autoptr(JsonNode) page = NULL;
                guint size = ctx->page_size != 0 ? ctx->page_size : 1000;
                const char *next = NULL;
                JsonArray *array;
                int r;

                r = ctl_call_manager(ctx, "GetHistoryLogPage", &reply, what, "sus", id, size,
                                     cursor);
                if (r != 0)
                        return r;
                page = ctl_json_read_value(reply, &r);
                if (page == NULL || !JSON_NODE_HOLDS_ARRAY(page) ||
                    (r = sd_bus_message_read(reply, "s", &next)) < 0) {
                        ctl_error("%s: %s", what, g_strerror(r < 0 ? -r : EBADMSG));
                        return CTL_EXIT_FAILURE;
                }
                array = json_node_get_array(page);
                for (guint i = 0; i < json_array_get_length(array); i++)
                        json_array_add_element(lines, json_array_dup_element(array, i));
                /* A live run's cursor never ends: a short page is its end for now. */
                if (next == NULL || *next == '\0' || json_array_get_length(array) < size)
                        break;
                g_free(cursor);
                cursor = g_strdup(next);
        }
        *ret = g_steal_pointer(&lines);
        return 0;
}

int
ctl_verb_history(CtlContext *ctx, int argc, char **argv)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(JsonNode) runs = NULL;
        g_autoptr(CtlTable) table = NULL;
        const char *status = ctx->status_filter != NULL ? ctx->status_filter : "";
        JsonArray *array;
        int r;

        if (status[0] != '\0' && !ctl_history_valid_status_filter(status)) {
                ctl_error("--status takes completed, failed or cancelled, not '%s'", status);
                return CTL_EXIT_USAGE;
        }
        if (ctl_history_paged(ctx)) {
                g_autoptr(JsonArray) all = NULL;

                r = ctl_history_load_pages(ctx, status, &all);
                if (r != 0)
                        return r;
                runs = json_node_init_array(json_node_alloc(), all);
        } else {
                r = ctl_call_manager(ctx, "GetHistory", &reply, "cannot read the history", "us",
                                     ctx->limit, status);
                if (r != 0)
                        return r;
                runs = ctl_json_read_reply(reply, &r);
                if (runs == NULL || !JSON_NODE_HOLDS_ARRAY(runs)) {
                        ctl_error("cannot read the history: %s", g_strerror(-r));
                        return CTL_EXIT_FAILURE;
                }
        }
        if (ctx->json) {
                ctl_json_print(ctx, runs);
                return 0;
        }
        array = json_node_get_array(runs);
        table = ctl_table_new("ID", "PLAYBOOK", "STATUS", "STARTED", "TOOK", "ERROR", NULL);
        for (guint i = 0; i < json_array_get_length(array); i++) {
                JsonObject *run = json_array_get_object_element(array, i);
                gint64 started = ctl_json_get_int(run, "started-at", 0);
                gint64 finished = ctl_json_get_int(run, "finished-at", 0);
                g_autofree char *when = ctl_format_timestamp((guint64)started);
                g_autofree char *took = started > 0 && finished >= started
                                                ? ctl_format_duration((guint64)(finished - started))
                                                : NULL;
                const char *error = ctl_json_get_string(run, "error");

                ctl_table_add_row(
                        table, ctl_json_get_string(run, "id"), ctl_json_get_string(run, "playbook"),
                        ctl_json_get_string(run, "status"), when, took, error != NULL ? error : "");
        }
        if (ctl_table_get_rows(table) > 0)
                ctl_table_print(ctx, table);
        if (!ctx->quiet)
                printf("%s%u runs listed.\n", ctl_table_get_rows(table) > 0 ? "\n" : "",
                       ctl_table_get_rows(table));
        return 0;
}

int
ctl_verb_forget(CtlContext *ctx, int argc, char **argv)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autofree char *id = NULL;
        g_autofree char *what = NULL;
        int r;

        r = ctl_resolve_execution(ctx, argv[1], &id, NULL);
        if (r != 0)
                return r;
        what = g_strdup_printf("cannot forget %s", id);
        r = ctl_call_manager(ctx, "DeleteExecution", &reply, what, "s", id);
        if (r != 0)
                return r;
        if (!ctx->quiet)
                printf("Forgot %s.\n", id);
        return 0;
}
