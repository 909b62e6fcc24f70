/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ignitionctl history and forget: the finished runs in the store. */
#include <stdio.h>

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
        r = ctl_call_manager(ctx, "GetHistory", &reply, "cannot read the history", "us", ctx->limit,
                             status);
        if (r != 0)
                return r;
        runs = ctl_json_read_reply(reply, &r);
        if (runs == NULL || !JSON_NODE_HOLDS_ARRAY(runs)) {
                ctl_error("cannot read the history: %s", g_strerror(-r));
                return CTL_EXIT_FAILURE;
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
