/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Execution ids and the verbs on one execution: list, status, steps, log,
 * cancel/pause/resume/skip/skip-back, debug. */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

char *
ctl_id_from_hex(const char *hex)
{
        if (hex == NULL || strlen(hex) != 32)
                return NULL;
        for (const char *p = hex; *p != '\0'; p++) {
                if (!g_ascii_isxdigit(*p))
                        return NULL;
        }
        return g_strdup_printf("%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
                               hex + 20);
}

static char *
ctl_executions_id_to_hex(const char *id)
{
        g_autoptr(GString) hex = g_string_new(NULL);

        for (const char *p = id; *p != '\0'; p++) {
                if (*p != '-')
                        g_string_append_c(hex, g_ascii_tolower(*p));
        }
        return g_string_free(g_steal_pointer(&hex), FALSE);
}

char *
ctl_execution_path(const char *id)
{
        g_autofree char *hex = ctl_executions_id_to_hex(id);

        return g_strconcat(CTL_EXECUTION_PREFIX, hex, NULL);
}

static gboolean
ctl_executions_is_full_id(const char *arg)
{
        g_autofree char *hex = NULL;
        g_autofree char *dashed = NULL;

        if (strlen(arg) != 32 && strlen(arg) != 36)
                return FALSE;
        hex = ctl_executions_id_to_hex(arg);
        dashed = ctl_id_from_hex(hex);
        return dashed != NULL && (strlen(arg) == 32 || g_ascii_strcasecmp(dashed, arg) == 0);
}

static gboolean
ctl_executions_id_matches(const char *id, const char *prefix)
{
        g_autofree char *hex = ctl_executions_id_to_hex(id);

        return g_ascii_strncasecmp(id, prefix, strlen(prefix)) == 0 ||
               g_ascii_strncasecmp(hex, prefix, strlen(prefix)) == 0;
}

static void
ctl_executions_add_candidate(GPtrArray *ids, GHashTable *live, const char *id, const char *path)
{
        for (guint i = 0; i < ids->len; i++) {
                if (g_str_equal(g_ptr_array_index(ids, i), id))
                        return;
        }
        g_ptr_array_add(ids, g_strdup(id));
        if (path != NULL)
                g_hash_table_insert(live, g_strdup(id), g_strdup(path));
}

int
ctl_resolve_execution(CtlContext *ctx, const char *arg, char **ret_id, char **ret_path)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *history = NULL;
        g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GHashTable) live = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_autofree char *prefix = NULL;
        const char *path, *id, *playbook, *status;
        uint32_t current, total;
        int r;

        /* An object path is an id too. */
        if (g_str_has_prefix(arg, CTL_EXECUTION_PREFIX))
                prefix = g_strdup(arg + strlen(CTL_EXECUTION_PREFIX));
        else
                prefix = g_strdup(arg);
        if (prefix[0] == '\0' || strspn(prefix, "0123456789abcdefABCDEF-") != strlen(prefix)) {
                ctl_error("'%s' is not an execution id", arg);
                return CTL_EXIT_USAGE;
        }

        r = ctl_call_manager(ctx, "ListExecutions", &reply, "cannot list executions", NULL);
        if (r != 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(osssuu)");
        while (r > 0) {
                r = sd_bus_message_read(reply, "(osssuu)", &path, &id, &playbook, &status, &current,
                                        &total);
                if (r > 0 && ctl_executions_id_matches(id, prefix))
                        ctl_executions_add_candidate(ids, live, id, path);
        }
        if (r < 0) {
                ctl_error("cannot read the execution list: %s", g_strerror(-r));
                return CTL_EXIT_FAILURE;
        }

        /* Finished runs that left the bus. */
        r = ctl_call_manager(ctx, "GetHistory", &history, "cannot read the history", "us", 0, "");
        if (r != 0)
                return r;
        {
                g_autoptr(JsonNode) runs = ctl_json_read_reply(history, &r);

                if (runs == NULL || !JSON_NODE_HOLDS_ARRAY(runs)) {
                        ctl_error("cannot read the history: %s", g_strerror(-r));
                        return CTL_EXIT_FAILURE;
                }
                for (guint i = 0; i < json_array_get_length(json_node_get_array(runs)); i++) {
                        JsonObject *run =
                                json_array_get_object_element(json_node_get_array(runs), i);
                        const char *run_id = ctl_json_get_string(run, "id");

                        if (run_id != NULL && ctl_executions_id_matches(run_id, prefix))
                                ctl_executions_add_candidate(ids, live, run_id, NULL);
                }
        }

        if (ids->len == 0 && ctl_executions_is_full_id(prefix)) {
                /* Older than the history list shows: let the daemon judge it. */
                g_autofree char *hex = ctl_executions_id_to_hex(prefix);

                g_ptr_array_add(ids, ctl_id_from_hex(hex));
        }
        if (ids->len == 0) {
                ctl_error("no execution matches '%s'", arg);
                return CTL_EXIT_NOINPUT;
        }
        if (ids->len > 1) {
                g_autoptr(GString) list = g_string_new(NULL);

                for (guint i = 0; i < ids->len; i++)
                        g_string_append_printf(list, "%s%s", i > 0 ? ", " : "",
                                               (char *)g_ptr_array_index(ids, i));
                ctl_error("'%s' is ambiguous: it matches %s", arg, list->str);
                return CTL_EXIT_USAGE;
        }
        id = g_ptr_array_index(ids, 0);
        if (ret_path != NULL)
                *ret_path = g_strdup(g_hash_table_lookup(live, id));
        *ret_id = g_strdup(id);
        return 0;
}

/* --- list ----------------------------------------------------------------------------- */

int
ctl_verb_list(CtlContext *ctx, int argc, char **argv)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(CtlTable) table = ctl_table_new("ID", "PLAYBOOK", "STATUS", "STEP", NULL);
        g_autoptr(JsonArray) array = json_array_new();
        const char *path, *id, *playbook, *status;
        uint32_t current, total;
        int r;

        r = ctl_call_manager(ctx, "ListExecutions", &reply, "cannot list executions", NULL);
        if (r != 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(osssuu)");
        while (r > 0) {
                r = sd_bus_message_read(reply, "(osssuu)", &path, &id, &playbook, &status, &current,
                                        &total);
                if (r <= 0)
                        break;
                if (ctx->json) {
                        JsonObject *o = json_object_new();

                        json_object_set_string_member(o, "id", id);
                        json_object_set_string_member(o, "path", path);
                        json_object_set_string_member(o, "playbook", playbook);
                        json_object_set_string_member(o, "status", status);
                        json_object_set_int_member(o, "current-step", current);
                        json_object_set_int_member(o, "total-steps", total);
                        json_array_add_object_element(array, o);
                } else {
                        gboolean ended = g_str_equal(status, "completed") ||
                                         g_str_equal(status, "failed") ||
                                         g_str_equal(status, "cancelled");
                        g_autofree char *step =
                                ended ? g_strdup("-")
                                      : g_strdup_printf("%u/%u", MIN(current + 1, total), total);

                        ctl_table_add_row(table, id, playbook, status, step);
                }
        }
        if (r < 0) {
                ctl_error("cannot read the execution list: %s", g_strerror(-r));
                return CTL_EXIT_FAILURE;
        }
        if (ctx->json) {
                g_autoptr(JsonNode) node = json_node_init_array(json_node_alloc(), array);

                ctl_json_print(ctx, node);
                return 0;
        }
        if (ctl_table_get_rows(table) > 0)
                ctl_table_print(ctx, table);
        if (!ctx->quiet)
                printf("%s%u executions listed.\n", ctl_table_get_rows(table) > 0 ? "\n" : "",
                       ctl_table_get_rows(table));
        return 0;
}

/* --- one execution, live or recorded ---------------------------------------------------- */

static int
ctl_executions_call_execution(CtlContext *ctx, const char *path, const char *iface,
                              const char *method, sd_bus_error *error, sd_bus_message **reply,
                              const char *types, ...)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        sd_bus *bus;
        va_list ap;
        int r;

        r = ctl_get_bus(ctx, &bus);
        if (r != 0)
                return -ENOTCONN;
        r = sd_bus_message_new_method_call(bus, &m, CTL_BUS_NAME, path, iface, method);
        if (r >= 0 && types != NULL) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
        }
        if (r < 0)
                return r;
        return sd_bus_call(bus, m, 0, error, reply);
}

/* Properties of the live object, under the keys of GetHistory. */
static JsonObject *
ctl_executions_object_from_properties(JsonObject *props, const char *path)
{
        static const struct {
                const char *property;
                const char *key;
        } map[] = {
                { "Id", "id" },
                { "Playbook", "playbook" },
                { "PlaybookName", "playbook-name" },
                { "PlaybookVersion", "playbook-version" },
                { "Domain", "domain" },
                { "Status", "status" },
                { "Error", "error" },
                { "StartedAt", "started-at" },
                { "FinishedAt", "finished-at" },
                { "StartedByUid", "started-by-uid" },
                { "TotalSteps", "total-steps" },
                { "CurrentStep", "current-step" },
                { "CurrentStepId", "current-step-id" },
                { "CurrentStepName", "current-step-name" },
                { "DebugMode", "debug-mode" },
                { "PauseRequested", "pause-requested" },
                { "Progress", "progress" },
        };
        JsonObject *o = json_object_new();

        for (gsize i = 0; i < G_N_ELEMENTS(map); i++) {
                JsonNode *value = json_object_get_member(props, map[i].property);

                json_object_set_member(o, map[i].key,
                                       value != NULL ? json_node_copy(value)
                                                     : json_node_new(JSON_NODE_NULL));
        }
        json_object_set_string_member(o, "path", path);
        json_object_set_boolean_member(o, "live", TRUE);
        return o;
}

static JsonObject *
ctl_executions_object_from_record(JsonObject *record)
{
        static const char *const keys[] = {
                "id",
                "playbook",
                "playbook-name",
                "playbook-version",
                "domain",
                "status",
                "error",
                "started-at",
                "finished-at",
                "started-by-uid",
                "total-steps",
                "current-step",
                "current-step-id",
                "current-step-name",
                "debug-mode",
                "pause-requested",
                "progress",
        };
        JsonObject *o = json_object_new();

        for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
                JsonNode *value = json_object_get_member(record, keys[i]);

                json_object_set_member(o, keys[i],
                                       value != NULL ? json_node_copy(value)
                                                     : json_node_new(JSON_NODE_NULL));
        }
        json_object_set_null_member(o, "path");
        json_object_set_boolean_member(o, "live", FALSE);
        return o;
}

static int
ctl_executions_get_record(CtlContext *ctx, const char *id, JsonObject **ret)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(JsonNode) node = NULL;
        g_autofree char *what = g_strdup_printf("cannot read execution %s", id);
        int r;

        r = ctl_call_manager(ctx, "GetExecutionRecord", &reply, what, "s", id);
        if (r != 0)
                return r;
        node = ctl_json_read_reply(reply, &r);
        if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node)) {
                ctl_error("%s: %s", what, g_strerror(r < 0 ? -r : EBADMSG));
                return CTL_EXIT_FAILURE;
        }
        *ret = json_object_ref(json_node_get_object(node));
        return 0;
}

static gboolean
ctl_executions_object_gone(const sd_bus_error *error)
{
        return sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_OBJECT) ||
               sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_METHOD) ||
               sd_bus_error_has_name(error, CTL_ERROR_PREFIX "NoSuchExecution");
}

/* The status of a live object, or of the record when it left the bus. */
static int
ctl_executions_load_status(CtlContext *ctx, const char *id, const char *path, JsonObject **ret)
{
        if (path != NULL) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                g_autoptr(JsonNode) props = NULL;
                int r;

                r = ctl_executions_call_execution(ctx, path, "org.freedesktop.DBus.Properties",
                                                  "GetAll", &error, &reply, "s",
                                                  CTL_EXECUTION_IFACE);
                if (r >= 0) {
                        props = ctl_json_read_reply(reply, &r);
                        if (props != NULL && JSON_NODE_HOLDS_OBJECT(props)) {
                                *ret = ctl_executions_object_from_properties(
                                        json_node_get_object(props), path);
                                return 0;
                        }
                        ctl_error("cannot read execution %s: %s", id, g_strerror(-r));
                        return CTL_EXIT_FAILURE;
                }
                if (!ctl_executions_object_gone(&error))
                        return ctl_bus_error(ctx, &error, r, "cannot read execution %s", id);
                /* It left the bus since we listed it. */
        }
        {
                g_autoptr(JsonObject) record = NULL;
                int r = ctl_executions_get_record(ctx, id, &record);

                if (r != 0)
                        return r;
                *ret = ctl_executions_object_from_record(record);
        }
        return 0;
}

/* Steps or log lines: from the live object, else from the record. */
static int
ctl_executions_load_live_or_record(CtlContext *ctx, const char *id, const char *path,
                                   const char *method, const char *record_key, JsonArray **ret)
{
        g_autoptr(JsonObject) record = NULL;
        JsonArray *array;
        int r;

        if (path != NULL) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                g_autoptr(JsonNode) node = NULL;

                if (g_str_equal(method, "GetLog"))
                        r = ctl_executions_call_execution(ctx, path, CTL_EXECUTION_IFACE, method,
                                                          &error, &reply, "u", 0);
                else
                        r = ctl_executions_call_execution(ctx, path, CTL_EXECUTION_IFACE, method,
                                                          &error, &reply, NULL);
                if (r >= 0) {
                        node = ctl_json_read_reply(reply, &r);
                        if (node != NULL && JSON_NODE_HOLDS_ARRAY(node)) {
                                *ret = json_array_ref(json_node_get_array(node));
                                return 0;
                        }
                        ctl_error("cannot read execution %s: %s", id, g_strerror(-r));
                        return CTL_EXIT_FAILURE;
                }
                if (!ctl_executions_object_gone(&error))
                        return ctl_bus_error(ctx, &error, r, "cannot read execution %s", id);
        }
        r = ctl_executions_get_record(ctx, id, &record);
        if (r != 0)
                return r;
        array = ctl_json_get_array(record, record_key);
        *ret = array != NULL ? json_array_ref(array) : json_array_new();
        return 0;
}

/* --- status ----------------------------------------------------------------------------- */

static void
ctl_executions_print_log_line(CtlContext *ctx, JsonArray *line)
{
        guint64 usec;
        guint priority;
        const char *step_id, *message;
        g_autoptr(GDateTime) dt = NULL;
        g_autofree char *stamp = NULL;
        const char *color = "";

        if (json_array_get_length(line) < 4)
                return;
        usec = (guint64)json_array_get_int_element(line, 0);
        priority = (guint)json_array_get_int_element(line, 1);
        step_id = json_array_get_string_element(line, 2);
        message = json_array_get_string_element(line, 3);
        dt = g_date_time_new_from_unix_local((gint64)(usec / G_USEC_PER_SEC));
        stamp = dt != NULL ? g_date_time_format(dt, "%H:%M:%S") : g_strdup("-");
        if (ctx->color && priority <= 3)
                color = "\033[0;1;31m";
        else if (ctx->color && priority == 4)
                color = "\033[0;1;33m";
        else if (ctx->color && priority >= 7)
                color = "\033[0;38;5;245m";
        printf("%s.%03u %s%s%s%s%s\n", stamp, (guint)(usec % G_USEC_PER_SEC / 1000),
               step_id != NULL && step_id[0] != '\0' ? step_id : "",
               step_id != NULL && step_id[0] != '\0' ? ": " : "", color,
               message != NULL ? message : "", *color != '\0' ? ctl_color_reset(ctx) : "");
}

int
ctl_verb_status(CtlContext *ctx, int argc, char **argv)
{
        g_autofree char *id = NULL;
        g_autofree char *path = NULL;
        g_autoptr(JsonObject) o = NULL;
        g_autoptr(JsonArray) log = NULL;
        g_autofree char *started = NULL;
        g_autofree char *finished = NULL;
        const char *status, *name, *version, *error, *step_name;
        gint64 started_at, finished_at, current, total;
        int r;

        r = ctl_resolve_execution(ctx, argv[1], &id, &path);
        if (r != 0)
                return r;
        r = ctl_executions_load_status(ctx, id, path, &o);
        if (r != 0)
                return r;
        if (ctx->json) {
                g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), o);

                ctl_json_print(ctx, node);
                return 0;
        }

        status = ctl_json_get_string(o, "status");
        name = ctl_json_get_string(o, "playbook-name");
        version = ctl_json_get_string(o, "playbook-version");
        error = ctl_json_get_string(o, "error");
        step_name = ctl_json_get_string(o, "current-step-name");
        started_at = ctl_json_get_int(o, "started-at", 0);
        finished_at = ctl_json_get_int(o, "finished-at", 0);
        current = ctl_json_get_int(o, "current-step", -1);
        total = ctl_json_get_int(o, "total-steps", 0);
        started = ctl_format_timestamp((guint64)started_at);
        finished = ctl_format_timestamp((guint64)finished_at);

        printf("%s%s%s %s%s%s\n", ctl_color_status(ctx, status), ctx->color ? "●" : "*",
               ctl_color_reset(ctx), id, name != NULL && name[0] != '\0' ? " - " : "",
               name != NULL ? name : "");
        printf("    Playbook: %s", ctl_json_get_string(o, "playbook"));
        if (version != NULL && version[0] != '\0')
                printf(" (version %s)", version);
        printf("\n      Status: %s%s%s", ctl_color_status(ctx, status), status,
               ctl_color_reset(ctx));
        if (current >= 0 && total > 0 && status != NULL &&
            (g_str_equal(status, "running") || g_str_equal(status, "paused"))) {
                printf(" (step %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT "%s%s)", current + 1, total,
                       step_name != NULL && step_name[0] != '\0' ? ": " : "",
                       step_name != NULL ? step_name : "");
        } else if (total > 0) {
                printf(" (%" G_GINT64_FORMAT " steps)", total);
        }
        if (ctl_json_get_bool(o, "pause-requested"))
                printf(", pause requested");
        printf("\n     Started: %s\n", started);
        if (finished_at > 0) {
                g_autofree char *took =
                        started_at > 0 && finished_at >= started_at
                                ? ctl_format_duration((guint64)(finished_at - started_at))
                                : NULL;

                printf("    Finished: %s%s%s%s\n", finished, took != NULL ? " (took " : "",
                       took != NULL ? took : "", took != NULL ? ")" : "");
        }
        if (ctl_json_get_bool(o, "live"))
                printf("       Debug: %s\n", ctl_json_get_bool(o, "debug-mode") ? "on" : "off");
        if (error != NULL && error[0] != '\0')
                printf("       Error: %s\n", error);
        {
                gint64 uid = ctl_json_get_int(o, "started-by-uid", -1);
                struct passwd *pw = uid >= 0 ? getpwuid((uid_t)uid) : NULL;

                printf("  Started by: %s%suid %" G_GINT64_FORMAT "%s\n",
                       pw != NULL ? pw->pw_name : "", pw != NULL ? " (" : "", uid,
                       pw != NULL ? ")" : "");
        }
        if (!ctl_json_get_bool(o, "live"))
                printf("              (no longer on the bus; from the history)\n");

        if (ctx->quiet)
                return 0;
        /* The newest lines, as systemctl status shows the journal. */
        r = ctl_executions_load_live_or_record(ctx, id, path, "GetLog", "log", &log);
        if (r == 0 && json_array_get_length(log) > 0) {
                guint n = json_array_get_length(log);

                printf("\n");
                for (guint i = n > 10 ? n - 10 : 0; i < n; i++)
                        ctl_executions_print_log_line(ctx, json_array_get_array_element(log, i));
        }
        return 0;
}

/* --- steps ------------------------------------------------------------------------------ */

static void
ctl_executions_add_step_rows(CtlContext *ctx, CtlTable *table, JsonArray *steps,
                             const char *number_prefix)
{
        gint64 main_steps = 0;

        for (guint i = 0; i < json_array_get_length(steps); i++) {
                JsonObject *s = json_array_get_object_element(steps, i);
                g_autofree char *number = NULL;
                g_autofree char *attempts = NULL;
                g_autofree char *took = NULL;
                gint64 started = ctl_json_get_int(s, "started-at", 0);
                gint64 finished = ctl_json_get_int(s, "finished-at", 0);
                const char *phase = ctl_json_get_string(s, "phase");
                const char *error = ctl_json_get_string(s, "error");
                JsonArray *children = ctl_json_get_array(s, "children");

                /* Rollback steps are numbered on their own, "r1". */
                if (g_strcmp0(phase, "rollback") == 0)
                        number = g_strdup_printf("%sr%" G_GINT64_FORMAT, number_prefix,
                                                 ctl_json_get_int(s, "index", i) - main_steps + 1);
                else
                        number = g_strdup_printf("%s%" G_GINT64_FORMAT, number_prefix,
                                                 ctl_json_get_int(s, "index", i) + 1);
                if (g_strcmp0(phase, "rollback") != 0)
                        main_steps++;
                attempts = g_strdup_printf("%" G_GINT64_FORMAT, ctl_json_get_int(s, "attempts", 0));
                if (started > 0 && finished >= started)
                        took = ctl_format_duration((guint64)(finished - started));
                ctl_table_add_row(table, number, ctl_json_get_string(s, "step-id"),
                                  ctl_json_get_string(s, "name"), ctl_json_get_string(s, "type"),
                                  ctl_json_get_string(s, "status"), attempts, took,
                                  error != NULL && error[0] != '\0' ? error : "");
                if (children != NULL) {
                        g_autofree char *prefix = g_strconcat(number, ".", NULL);

                        ctl_executions_add_step_rows(ctx, table, children, prefix);
                }
        }
}

int
ctl_verb_steps(CtlContext *ctx, int argc, char **argv)
{
        g_autofree char *id = NULL;
        g_autofree char *path = NULL;
        g_autoptr(JsonArray) steps = NULL;
        g_autoptr(CtlTable) table = NULL;
        int r;

        r = ctl_resolve_execution(ctx, argv[1], &id, &path);
        if (r != 0)
                return r;
        r = ctl_executions_load_live_or_record(ctx, id, path, "GetSteps", "steps", &steps);
        if (r != 0)
                return r;
        if (ctx->json) {
                g_autoptr(JsonNode) node = json_node_init_array(json_node_alloc(), steps);

                ctl_json_print(ctx, node);
                return 0;
        }
        table = ctl_table_new("#", "ID", "NAME", "TYPE", "STATUS", "TRIES", "TOOK", "ERROR", NULL);
        ctl_executions_add_step_rows(ctx, table, steps, "");
        ctl_table_print(ctx, table);
        return 0;
}

/* --- log -------------------------------------------------------------------------------- */

typedef struct {
        CtlContext *ctx;
        const char *path;
        guint64 last_usec;  /* newest line GetLog returned */
        guint skip_at_last; /* lines at last_usec that GetLog already printed */
        gboolean finished;
        gboolean daemon_gone;
} CtlLogFollow;

static void
ctl_executions_emit_log_json_line(CtlContext *ctx, guint64 usec, guint priority,
                                  const char *step_id, const char *message)
{
        g_autoptr(JsonArray) a = json_array_new();
        g_autoptr(JsonNode) node = NULL;
        gboolean pretty = ctx->json_pretty;

        json_array_add_int_element(a, (gint64)usec);
        json_array_add_int_element(a, priority);
        json_array_add_string_element(a, step_id);
        json_array_add_string_element(a, message);
        node = json_node_init_array(json_node_alloc(), a);
        /* One line per record while following (JSON Lines). */
        ctx->json_pretty = FALSE;
        ctl_json_print(ctx, node);
        ctx->json_pretty = pretty;
}

void
ctl_read_log_lines(sd_bus_message *m, CtlLogLineFunc func, void *data)
{
        const char *member = sd_bus_message_get_member(m);
        uint64_t usec;
        uint32_t priority;
        const char *step_id, *message;

        if (g_strcmp0(member, "Log") == 0) {
                if (sd_bus_message_read(m, "tuss", &usec, &priority, &step_id, &message) >= 0)
                        func(data, usec, priority, step_id, message);
                return;
        }
        if (g_strcmp0(member, "LogBatch") != 0 ||
            sd_bus_message_enter_container(m, 'a', "(tuss)") < 0)
                return;
        while (sd_bus_message_read(m, "(tuss)", &usec, &priority, &step_id, &message) > 0)
                func(data, usec, priority, step_id, message);
}

/* A line of a followed run's log, from Log or LogBatch. */
static void
ctl_executions_follow_line(void *data, uint64_t usec, uint32_t priority, const char *step_id,
                           const char *message)
{
        CtlLogFollow *f = data;

        /* GetLog raced with these signals: drop what it already returned. */
        if (usec < f->last_usec)
                return;
        if (usec == f->last_usec && f->skip_at_last > 0) {
                f->skip_at_last--;
                return;
        }
        if (f->ctx->json) {
                ctl_executions_emit_log_json_line(f->ctx, usec, priority, step_id, message);
        } else {
                g_autoptr(JsonArray) line = json_array_new();

                json_array_add_int_element(line, (gint64)usec);
                json_array_add_int_element(line, priority);
                json_array_add_string_element(line, step_id);
                json_array_add_string_element(line, message);
                ctl_executions_print_log_line(f->ctx, line);
        }
}

static int
ctl_executions_log_signal_cb(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        CtlLogFollow *f = userdata;
        const char *member = sd_bus_message_get_member(m);

        if (sd_bus_message_is_signal(m, "org.freedesktop.DBus", "NameOwnerChanged")) {
                const char *name, *old_owner, *new_owner;

                if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) >= 0 &&
                    g_str_equal(name, CTL_BUS_NAME) && new_owner[0] == '\0') {
                        f->daemon_gone = TRUE;
                        sd_event_exit(sd_bus_get_event(sd_bus_message_get_bus(m)), 0);
                }
                return 0;
        }
        if (g_strcmp0(sd_bus_message_get_path(m), f->path) != 0 ||
            g_strcmp0(sd_bus_message_get_interface(m), CTL_EXECUTION_IFACE) != 0)
                return 0;
        if (g_strcmp0(member, "Log") == 0 || g_strcmp0(member, "LogBatch") == 0) {
                ctl_read_log_lines(m, ctl_executions_follow_line, f);
                fflush(stdout);
        } else if (g_strcmp0(member, "Finished") == 0) {
                f->finished = TRUE;
                sd_event_exit(sd_bus_get_event(sd_bus_message_get_bus(m)), 0);
        }
        return 0;
}

static int
ctl_executions_log_signal_exit_cb(sd_event_source *s, const struct signalfd_siginfo *si,
                                  void *userdata)
{
        sd_event_exit(sd_event_source_get_event(s), 0);
        return 0;
}

int
ctl_verb_log(CtlContext *ctx, int argc, char **argv)
{
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *match = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *owner_match = NULL;
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        g_autofree char *id = NULL;
        g_autofree char *path = NULL;
        g_autofree char *rule = NULL;
        g_autoptr(JsonArray) lines = NULL;
        g_autoptr(JsonObject) status = NULL;
        CtlLogFollow follow = { .ctx = ctx };
        sd_bus *bus;
        sigset_t mask;
        guint n;
        int r;

        r = ctl_resolve_execution(ctx, argv[1], &id, &path);
        if (r != 0)
                return r;
        follow.path = path;
        if (ctx->follow && path != NULL) {
                r = ctl_get_bus(ctx, &bus);
                if (r != 0)
                        return r;
                /* The match before GetLog, so no line falls between the two. */
                rule = g_strdup_printf("type='signal',sender='%s',path='%s',interface='%s'",
                                       CTL_BUS_NAME, path, CTL_EXECUTION_IFACE);
                r = sd_bus_add_match(bus, &match, rule, ctl_executions_log_signal_cb, &follow);
                if (r >= 0)
                        r = sd_bus_match_signal(bus, &owner_match, "org.freedesktop.DBus",
                                                "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                                "NameOwnerChanged", ctl_executions_log_signal_cb,
                                                &follow);
                if (r < 0) {
                        ctl_error("cannot watch execution %s: %s", id, g_strerror(-r));
                        return CTL_EXIT_FAILURE;
                }
        }
        /* --all: every stored line, not only the newest ones. */
        if (ctx->all)
                r = ctl_history_load_log_pages(ctx, id, &lines);
        else
                r = ctl_executions_load_live_or_record(ctx, id, path, "GetLog", "log", &lines);
        if (r != 0)
                return r;
        n = json_array_get_length(lines);
        if (ctx->json && !ctx->follow) {
                g_autoptr(JsonNode) node = json_node_init_array(json_node_alloc(), lines);

                ctl_json_print(ctx, node);
                return 0;
        }
        for (guint i = 0; i < n; i++) {
                JsonArray *line = json_array_get_array_element(lines, i);
                guint64 usec = (guint64)json_array_get_int_element(line, 0);

                if (ctx->json)
                        ctl_executions_emit_log_json_line(
                                ctx, usec, (guint)json_array_get_int_element(line, 1),
                                json_array_get_string_element(line, 2),
                                json_array_get_string_element(line, 3));
                else
                        ctl_executions_print_log_line(ctx, line);
                if (usec > follow.last_usec) {
                        follow.last_usec = usec;
                        follow.skip_at_last = 0;
                }
                if (usec == follow.last_usec)
                        follow.skip_at_last++;
        }
        fflush(stdout);
        if (!ctx->follow || path == NULL)
                return 0;

        /* A run that ended before the match was added sends no Finished any more. */
        r = ctl_executions_load_status(ctx, id, path, &status);
        if (r != 0)
                return r;
        if (g_strcmp0(ctl_json_get_string(status, "status"), "completed") == 0 ||
            g_strcmp0(ctl_json_get_string(status, "status"), "failed") == 0 ||
            g_strcmp0(ctl_json_get_string(status, "status"), "cancelled") == 0) {
                /* Still process what is queued: lines of the run's last moments. */
                while (sd_bus_process(bus, NULL) > 0)
                        ;
                return 0;
        }

        r = sd_event_default(&event);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, ctl_executions_log_signal_exit_cb,
                                        NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGTERM, ctl_executions_log_signal_exit_cb,
                                        NULL);
        if (r >= 0)
                r = sd_event_loop(event);
        sd_bus_detach_event(bus);
        if (r < 0) {
                ctl_error("cannot follow execution %s: %s", id, g_strerror(-r));
                return CTL_EXIT_FAILURE;
        }
        if (follow.daemon_gone) {
                ctl_error("ignition-toolkitd left the bus");
                return CTL_EXIT_UNAVAILABLE;
        }
        return 0;
}

/* --- control ------------------------------------------------------------------------------ */

static int
ctl_executions_control(CtlContext *ctx, const char *arg, const char *verb, const char *method,
                       const char *types, int value)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autofree char *id = NULL;
        g_autofree char *path = NULL;
        int r;

        r = ctl_resolve_execution(ctx, arg, &id, &path);
        if (r != 0)
                return r;
        if (path == NULL) {
                ctl_error("execution %s has finished and left the bus", id);
                return CTL_EXIT_FAILURE;
        }
        if (types != NULL)
                r = ctl_executions_call_execution(ctx, path, CTL_EXECUTION_IFACE, method, &error,
                                                  &reply, types, value);
        else
                r = ctl_executions_call_execution(ctx, path, CTL_EXECUTION_IFACE, method, &error,
                                                  &reply, NULL);
        if (r < 0) {
                if (ctl_executions_object_gone(&error)) {
                        ctl_error("execution %s has finished and left the bus", id);
                        return CTL_EXIT_FAILURE;
                }
                return ctl_bus_error(ctx, &error, r, "cannot %s %s", verb, id);
        }
        return 0;
}

int
ctl_verb_control(CtlContext *ctx, int argc, char **argv)
{
        static const struct {
                const char *verb;
                const char *method;
        } map[] = {
                { "cancel", "Cancel" }, { "pause", "Pause" },        { "resume", "Resume" },
                { "skip", "Skip" },     { "skip-back", "SkipBack" },
        };

        for (gsize i = 0; i < G_N_ELEMENTS(map); i++) {
                if (g_str_equal(argv[0], map[i].verb))
                        return ctl_executions_control(ctx, argv[1], map[i].verb, map[i].method,
                                                      NULL, 0);
        }
        g_assert_not_reached();
}

int
ctl_verb_debug(CtlContext *ctx, int argc, char **argv)
{
        gboolean on;

        if (g_str_equal(argv[2], "on") || g_str_equal(argv[2], "true") ||
            g_str_equal(argv[2], "yes") || g_str_equal(argv[2], "1")) {
                on = TRUE;
        } else if (g_str_equal(argv[2], "off") || g_str_equal(argv[2], "false") ||
                   g_str_equal(argv[2], "no") || g_str_equal(argv[2], "0")) {
                on = FALSE;
        } else {
                ctl_error("debug takes on or off, not '%s'", argv[2]);
                return CTL_EXIT_USAGE;
        }
        return ctl_executions_control(ctx, argv[1],
                                      on ? "turn on debug mode of" : "turn off debug mode of",
                                      "SetDebugMode", "b", on);
}
