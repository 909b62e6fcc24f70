/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ignitionctl run: start a playbook and follow it live.
 *
 * Race-free: the match on path_namespace='/org/ignition/Toolkit' is added
 * before StartExecution is sent, and signals that arrive before its reply are
 * kept until the reply names the object (DESIGN.md §4, Guarantees). Ctrl-C
 * cancels the run; a second Ctrl-C detaches and leaves it going. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

typedef struct {
        char *number; /* "3", nested "3.2" */
        char *name;
        guint64 started; /* monotonic, 0 when not seen running */
        char *status;
} CtlRunStep;

typedef struct {
        CtlContext *ctx;
        sd_bus *bus;
        sd_event *event;
        char *playbook;
        char *path; /* NULL until the StartExecution reply */
        char *id;
        GPtrArray *early;  /* sd_bus_message*, before the reply */
        GHashTable *steps; /* step id -> RunStep */
        guint total;
        guint64 t0;
        int interrupts;
        gboolean cancel_sent;
        char *final_status;
        char *final_error;
        int exit_status; /* set when the loop ends for any other reason */
} CtlRun;

static void
ctl_run_step_free(CtlRunStep *step)
{
        g_free(step->number);
        g_free(step->name);
        g_free(step->status);
        g_free(step);
}

static void
ctl_run_message_unref(gpointer m)
{
        sd_bus_message_unref(m);
}

static void
ctl_run_clear(CtlRun *run)
{
        g_free(run->playbook);
        g_free(run->path);
        g_free(run->id);
        g_ptr_array_unref(run->early);
        g_hash_table_unref(run->steps);
        g_free(run->final_status);
        g_free(run->final_error);
}

static void
ctl_run_add_steps(CtlRun *run, JsonArray *steps, const char *number_prefix)
{
        guint main_steps = 0;

        for (guint i = 0; steps != NULL && i < json_array_get_length(steps); i++) {
                JsonObject *s = json_array_get_object_element(steps, i);
                const char *step_id = ctl_json_get_string(s, "step-id");
                gint64 index = ctl_json_get_int(s, "index", i);
                CtlRunStep *step;

                if (step_id == NULL)
                        continue;
                /* Refreshed after a nested playbook started: keep what we saw. */
                step = g_hash_table_lookup(run->steps, step_id);
                if (step != NULL) {
                        if (step->name == NULL)
                                step->name = g_strdup(ctl_json_get_string(s, "name"));
                        if (ctl_json_get_array(s, "children") != NULL) {
                                g_autofree char *prefix = g_strconcat(step->number, ".", NULL);

                                ctl_run_add_steps(run, ctl_json_get_array(s, "children"), prefix);
                        }
                        if (g_strcmp0(ctl_json_get_string(s, "phase"), "rollback") != 0)
                                main_steps++;
                        continue;
                }
                step = g_new0(CtlRunStep, 1);
                /* Rollback steps are numbered on their own: "rollback 1". */
                if (g_strcmp0(ctl_json_get_string(s, "phase"), "rollback") == 0)
                        step->number = g_strdup_printf("%srollback %" G_GINT64_FORMAT,
                                                       number_prefix, index - main_steps + 1);
                else
                        step->number =
                                g_strdup_printf("%s%" G_GINT64_FORMAT, number_prefix, index + 1);
                if (g_strcmp0(ctl_json_get_string(s, "phase"), "rollback") != 0)
                        main_steps++;
                step->name = g_strdup(ctl_json_get_string(s, "name"));
                /* What happens next comes from the signals. */
                step->status = g_strdup("pending");
                g_hash_table_replace(run->steps, g_strdup(step_id), step);
                if (ctl_json_get_array(s, "children") != NULL) {
                        g_autofree char *prefix = g_strconcat(step->number, ".", NULL);

                        ctl_run_add_steps(run, ctl_json_get_array(s, "children"), prefix);
                }
        }
}

/* Names and numbers of the steps, for the lines we print. */
static void
ctl_run_load_steps(CtlRun *run)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(JsonNode) node = NULL;
        int r;

        r = sd_bus_call_method(run->bus, CTL_BUS_NAME, run->path, CTL_EXECUTION_IFACE, "GetSteps",
                               &error, &reply, "");
        if (r < 0)
                return; /* lines then show step ids only */
        node = ctl_json_read_reply(reply, &r);
        if (node == NULL || !JSON_NODE_HOLDS_ARRAY(node))
                return;
        ctl_run_add_steps(run, json_node_get_array(node), "");
        if (run->total > 0)
                return;
        for (guint i = 0; i < json_array_get_length(json_node_get_array(node)); i++) {
                JsonObject *s = json_array_get_object_element(json_node_get_array(node), i);

                if (g_strcmp0(ctl_json_get_string(s, "phase"), "rollback") != 0)
                        run->total++;
        }
}

static CtlRunStep *
ctl_run_lookup_step(CtlRun *run, int index, const char *step_id)
{
        CtlRunStep *step = g_hash_table_lookup(run->steps, step_id);
        const char *slash;

        if (step != NULL)
                return step;
        /* The steps of a nested playbook are known once it started. */
        if (strchr(step_id, '/') != NULL) {
                ctl_run_load_steps(run);
                step = g_hash_table_lookup(run->steps, step_id);
                if (step != NULL)
                        return step;
        }
        /* A step the daemon did not list. */
        step = g_new0(CtlRunStep, 1);
        slash = strrchr(step_id, '/');
        if (slash != NULL) {
                g_autofree char *parent_id = g_strndup(step_id, slash - step_id);
                CtlRunStep *parent = g_hash_table_lookup(run->steps, parent_id);

                step->number =
                        g_strdup_printf("%s.%d", parent != NULL ? parent->number : "?", index + 1);
        } else {
                step->number = g_strdup_printf("%d", index + 1);
        }
        g_hash_table_replace(run->steps, g_strdup(step_id), step);
        return step;
}

static gboolean
ctl_run_is_terminal(const char *status)
{
        return g_strcmp0(status, "completed") == 0 || g_strcmp0(status, "failed") == 0 ||
               g_strcmp0(status, "cancelled") == 0;
}

/* Prints @text and a newline; its later lines are indented by @indent. */
static void
ctl_run_print_indented(const char *text, const char *indent)
{
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

        for (guint i = 0; lines[i] != NULL; i++) {
                if (lines[i + 1] == NULL && lines[i][0] == '\0' && i > 0)
                        break;
                printf("%s%s\n", i > 0 ? indent : "", lines[i]);
        }
}

static void
ctl_run_show_step(CtlRun *run, int index, const char *step_id, const char *status,
                  const char *message)
{
        CtlContext *ctx = run->ctx;
        CtlRunStep *step = ctl_run_lookup_step(run, index, step_id);
        g_autofree char *took = NULL;
        gboolean was_seen = step->started != 0 || ctl_run_is_terminal(step->status) ||
                            g_strcmp0(step->status, "skipped") == 0;
        const char *name = step->name != NULL && step->name[0] != '\0' ? step->name : step_id;

        if (g_str_equal(status, "running")) {
                step->started = ctl_now_monotonic();
        } else if (step->started != 0 && !g_str_equal(status, "pending")) {
                took = ctl_format_duration(ctl_now_monotonic() - step->started);
                step->started = 0;
        }
        g_free(step->status);
        step->status = g_strdup(status);
        /* Every step starts pending; only a reset (SkipBack) is news. */
        if (g_str_equal(status, "pending") && !was_seen)
                return;
        if (ctx->quiet)
                return;
        if (strstr(step->number, "rollback") != NULL)
                printf("[%s] %s: %s%s%s", step->number, name, ctl_color_status(ctx, status),
                       g_str_equal(status, "pending") ? "reset" : status, ctl_color_reset(ctx));
        else
                printf("[%s/%u] %s: %s%s%s", step->number, run->total, name,
                       ctl_color_status(ctx, status),
                       g_str_equal(status, "pending") ? "reset" : status, ctl_color_reset(ctx));
        if (took != NULL)
                printf(" (%s)", took);
        if (message != NULL && message[0] != '\0') {
                printf(": ");
                ctl_run_print_indented(message, "      ");
        } else {
                printf("\n");
        }
        fflush(stdout);
}

static void
ctl_run_show_log(CtlRun *run, guint priority, const char *step_id, const char *message)
{
        CtlContext *ctx = run->ctx;
        const char *label = priority <= 3 ? "error: " : priority == 4 ? "warning: " : "";

        if (ctx->quiet)
                return;
        /* Indented under the step that wrote it; the run's own lines less so. */
        printf("%s%s%s%s", step_id[0] != '\0' ? "      " : "  ",
               ctx->color && priority <= 4 ? "\033[0;1;33m" : "", label,
               ctx->color && priority <= 4 ? "\033[0m" : "");
        ctl_run_print_indented(message, step_id[0] != '\0' ? "        " : "    ");
        fflush(stdout);
}

static void
ctl_run_finish(CtlRun *run, const char *status, const char *error)
{
        CtlContext *ctx = run->ctx;
        g_autofree char *took = ctl_format_duration(ctl_now_monotonic() - run->t0);
        g_autoptr(GHashTable) counts = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(GString) summary = g_string_new(NULL);
        static const char *const order[] = { "completed", "failed",  "skipped",
                                             "cancelled", "pending", "running" };
        GHashTableIter iter;
        gpointer key, value;

        g_free(run->final_status);
        run->final_status = g_strdup(status);
        g_free(run->final_error);
        run->final_error = g_strdup(error);
        sd_event_exit(run->event, 0);
        if (ctx->quiet)
                return;

        /* Top-level steps only: nested ones are counted by their parent. */
        g_hash_table_iter_init(&iter, run->steps);
        while (g_hash_table_iter_next(&iter, &key, &value)) {
                CtlRunStep *step = value;

                if (strchr(key, '/') != NULL || step->status == NULL)
                        continue;
                g_hash_table_insert(
                        counts, step->status,
                        GUINT_TO_POINTER(
                                GPOINTER_TO_UINT(g_hash_table_lookup(counts, step->status)) + 1));
        }
        for (gsize i = 0; i < G_N_ELEMENTS(order); i++) {
                guint n = GPOINTER_TO_UINT(g_hash_table_lookup(counts, order[i]));

                if (n > 0)
                        g_string_append_printf(summary, "%s%u %s", summary->len > 0 ? ", " : "", n,
                                               order[i]);
        }
        printf("%s%s%s: %s in %s%s%s%s\n", ctl_color_status(ctx, status), status,
               ctl_color_reset(ctx), run->id, took, summary->len > 0 ? " (" : "", summary->str,
               summary->len > 0 ? ")" : "");
        if (error != NULL && error[0] != '\0') {
                printf("Error: ");
                ctl_run_print_indented(error, "  ");
        }
        fflush(stdout);
}

static void
ctl_run_log_line(void *data, uint64_t usec, uint32_t priority, const char *step_id,
                 const char *message)
{
        (void)usec;
        ctl_run_show_log(data, priority, step_id, message);
}

static void
ctl_run_dispatch(CtlRun *run, sd_bus_message *m)
{
        const char *member = sd_bus_message_get_member(m);

        if (g_strcmp0(sd_bus_message_get_path(m), run->path) != 0 ||
            g_strcmp0(sd_bus_message_get_interface(m), CTL_EXECUTION_IFACE) != 0 ||
            run->final_status != NULL)
                return;
        if (g_str_equal(member, "StepChanged")) {
                int32_t index;
                const char *step_id, *status, *message;

                if (sd_bus_message_read(m, "isss", &index, &step_id, &status, &message) >= 0)
                        ctl_run_show_step(run, index, step_id, status, message);
        } else if (g_str_equal(member, "Log") || g_str_equal(member, "LogBatch")) {
                ctl_read_log_lines(m, ctl_run_log_line, run);
        } else if (g_str_equal(member, "StatusChanged")) {
                const char *status, *previous;

                if (sd_bus_message_read(m, "ss", &status, &previous) < 0 || run->ctx->quiet)
                        return;
                if (g_str_equal(status, "paused"))
                        printf("Paused.\n");
                else if (g_str_equal(status, "running") && g_str_equal(previous, "paused"))
                        printf("Resumed.\n");
                fflush(stdout);
        } else if (g_str_equal(member, "Finished")) {
                const char *status, *error;

                if (sd_bus_message_read(m, "ss", &status, &error) >= 0)
                        ctl_run_finish(run, status, error);
        }
}

static int
ctl_run_signal_cb(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        CtlRun *run = userdata;

        if (run->path == NULL) {
                /* Not ours to judge yet: the reply has not said which object is ours. */
                g_ptr_array_add(run->early, sd_bus_message_ref(m));
                return 0;
        }
        ctl_run_dispatch(run, m);
        return 0;
}

static int
ctl_run_name_owner_cb(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        CtlRun *run = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (g_str_equal(name, CTL_BUS_NAME) && new_owner[0] == '\0' && run->final_status == NULL) {
                ctl_error("ignition-toolkitd left the bus; the run's outcome is unknown");
                run->exit_status = CTL_EXIT_UNAVAILABLE;
                sd_event_exit(run->event, 0);
        }
        return 0;
}

static int
ctl_run_cancel_reply_cb(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        CtlRun *run = userdata;
        const sd_bus_error *error = sd_bus_message_get_error(m);

        /* NotRunning: it ended on its own meanwhile; Finished tells how. */
        if (error != NULL && !sd_bus_error_has_name(error, CTL_ERROR_PREFIX "NotRunning"))
                ctl_bus_error(run->ctx, error, -EIO, "cannot cancel %s", run->id);
        return 0;
}

static void
ctl_run_send_cancel(CtlRun *run)
{
        int r;

        if (run->cancel_sent)
                return;
        run->cancel_sent = TRUE;
        r = sd_bus_call_method_async(run->bus, NULL, CTL_BUS_NAME, run->path, CTL_EXECUTION_IFACE,
                                     "Cancel", ctl_run_cancel_reply_cb, run, "");
        if (r < 0)
                ctl_error("cannot cancel %s: %s", run->id, g_strerror(-r));
}

static int
ctl_run_interrupt_cb(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        CtlRun *run = userdata;

        run->interrupts++;
        if (si->ssi_signo == SIGTERM || run->interrupts > 1) {
                fprintf(stderr, "Detached; %s keeps running.\n",
                        run->id != NULL ? run->id : "the execution");
                run->exit_status = CTL_EXIT_DETACHED;
                sd_event_exit(run->event, 0);
                return 0;
        }
        fprintf(stderr, "Cancelling%s%s (Ctrl-C again to detach)...\n", run->id ? " " : "",
                run->id ? run->id : "");
        if (run->path != NULL)
                ctl_run_send_cancel(run);
        return 0;
}

static int
ctl_run_start_reply_cb(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        CtlRun *run = userdata;
        const sd_bus_error *error = sd_bus_message_get_error(m);
        const char *path;
        const char *hex;
        int r;

        if (error != NULL) {
                run->exit_status =
                        ctl_bus_error(run->ctx, error, -EIO, "cannot start %s", run->playbook);
                sd_event_exit(run->event, 0);
                return 0;
        }
        r = sd_bus_message_read(m, "o", &path);
        if (r < 0) {
                ctl_error("cannot start %s: %s", run->playbook, g_strerror(-r));
                run->exit_status = CTL_EXIT_FAILURE;
                sd_event_exit(run->event, 0);
                return 0;
        }
        run->path = g_strdup(path);
        hex = g_str_has_prefix(path, CTL_EXECUTION_PREFIX) ? path + strlen(CTL_EXECUTION_PREFIX)
                                                           : "";
        run->id = ctl_id_from_hex(hex);
        if (run->id == NULL)
                run->id = g_strdup(path);
        ctl_run_load_steps(run);
        if (!run->ctx->quiet) {
                printf("Started %s as %s (%u steps)\n", run->playbook, run->id, run->total);
                fflush(stdout);
        }
        if (run->interrupts > 0)
                ctl_run_send_cancel(run);
        for (guint i = 0; i < run->early->len; i++)
                ctl_run_dispatch(run, g_ptr_array_index(run->early, i));
        g_ptr_array_set_size(run->early, 0);
        return 0;
}

/* --file: each local file goes to the daemon as a file descriptor
 * (StageInputFile); the parameter's value becomes "staged:TOKEN". */
static int
ctl_run_stage_files(CtlContext *ctx, sd_bus *bus)
{
        for (guint i = 0; ctx->files != NULL && i < ctx->files->len; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                const char *spec = g_ptr_array_index(ctx->files, i);
                const char *eq = strchr(spec, '=');
                g_autofree char *name = g_strndup(spec, eq - spec);
                g_autofree char *base = g_path_get_basename(eq + 1);
                const char *token, *sha256;
                uint64_t size;
                int fd, r;

                fd = open(eq + 1, O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                        ctl_error("--file %s: cannot open %s: %s", name, eq + 1, g_strerror(errno));
                        return CTL_EXIT_NOINPUT;
                }
                r = sd_bus_message_new_method_call(bus, &call, CTL_BUS_NAME, CTL_MANAGER_PATH,
                                                   CTL_MANAGER_IFACE, "StageInputFile");
                if (r >= 0)
                        r = sd_bus_message_append(call, "sh", base, fd);
                /* A large file takes a while to copy: an hour, not the 25 s default. */
                if (r >= 0)
                        r = sd_bus_call(bus, call, UINT64_C(3600) * G_USEC_PER_SEC, &error, &reply);
                close(fd);
                if (r < 0)
                        return ctl_bus_error(ctx, &error, r, "cannot upload %s for %s", eq + 1,
                                             name);
                r = sd_bus_message_read(reply, "sts", &token, &size, &sha256);
                if (r < 0) {
                        ctl_error("cannot read the StageInputFile reply: %s", g_strerror(-r));
                        return CTL_EXIT_FAILURE;
                }
                if (!ctx->quiet)
                        fprintf(stderr, "%s: %s, %" PRIu64 " bytes, sha256 %s\n", name, base, size,
                                sha256);
                g_ptr_array_add(ctx->params, g_strdup_printf("%s=staged:%s", name, token));
        }
        return 0;
}

/* -p values go as strings: the daemon converts them to the declared types. */
static int
ctl_run_append_parameters(CtlContext *ctx, sd_bus_message *m)
{
        int r = sd_bus_message_open_container(m, 'a', "{sv}");

        for (guint i = 0; r >= 0 && i < ctx->params->len; i++) {
                const char *p = g_ptr_array_index(ctx->params, i);
                const char *eq = strchr(p, '=');
                g_autofree char *name = g_strndup(p, eq - p);

                r = sd_bus_message_append(m, "{sv}", name, "s", eq + 1);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int
ctl_run_append_options(CtlContext *ctx, sd_bus_message *m, const char *source)
{
        int r = sd_bus_message_open_container(m, 'a', "{sv}");

        if (r >= 0 && source != NULL)
                r = sd_bus_message_append(m, "{sv}", "source", "s", source);
        if (r >= 0 && ctx->debug)
                r = sd_bus_message_append(m, "{sv}", "debug", "b", 1);
        if (r >= 0 && ctx->credential != NULL)
                r = sd_bus_message_append(m, "{sv}", "credential", "s", ctx->credential);
        if (r >= 0 && ctx->gateway_url != NULL)
                r = sd_bus_message_append(m, "{sv}", "gateway-url", "s", ctx->gateway_url);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

int
ctl_verb_run(CtlContext *ctx, int argc, char **argv)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *match = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *owner_match = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *start_slot = NULL;
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        g_autofree char *source = NULL;
        g_autofree char *label = NULL;
        const char *playbook = argv[1];
        CtlRun run = {
                .ctx = ctx,
                .early = g_ptr_array_new_with_free_func(ctl_run_message_unref),
                .steps = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                               (GDestroyNotify)ctl_run_step_free),
                .exit_status = -1,
        };
        sigset_t mask;
        int r;

        /* A file the caller has goes as text: the daemon never reads the caller's files. */
        if (g_file_test(playbook, G_FILE_TEST_IS_REGULAR)) {
                g_autoptr(GError) error = NULL;

                if (!g_file_get_contents(playbook, &source, NULL, &error)) {
                        ctl_error("cannot read %s: %s", playbook, error->message);
                        ctl_run_clear(&run);
                        return CTL_EXIT_NOINPUT;
                }
                label = g_path_get_basename(playbook);
        } else {
                label = g_strdup(playbook);
        }
        run.playbook = g_strdup(label);

        r = ctl_get_bus(ctx, &run.bus);
        if (r != 0) {
                ctl_run_clear(&run);
                return r;
        }

        r = ctl_run_stage_files(ctx, run.bus);
        if (r != 0) {
                ctl_run_clear(&run);
                return r;
        }

        r = sd_bus_message_new_method_call(run.bus, &call, CTL_BUS_NAME, CTL_MANAGER_PATH,
                                           CTL_MANAGER_IFACE, "StartExecution");
        if (r >= 0)
                r = sd_bus_message_append(call, "s", label);
        if (r >= 0)
                r = ctl_run_append_parameters(ctx, call);
        if (r >= 0)
                r = ctl_run_append_options(ctx, call, source);
        if (r < 0) {
                ctl_error("cannot build the StartExecution call: %s", g_strerror(-r));
                ctl_run_clear(&run);
                return CTL_EXIT_FAILURE;
        }

        if (ctx->no_follow) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                const char *path;
                g_autofree char *id = NULL;

                r = sd_bus_call(run.bus, call, 0, &error, &reply);
                if (r < 0) {
                        r = ctl_bus_error(ctx, &error, r, "cannot start %s", label);
                        ctl_run_clear(&run);
                        return r;
                }
                r = sd_bus_message_read(reply, "o", &path);
                if (r < 0) {
                        ctl_error("cannot start %s: %s", label, g_strerror(-r));
                        ctl_run_clear(&run);
                        return CTL_EXIT_FAILURE;
                }
                id = g_str_has_prefix(path, CTL_EXECUTION_PREFIX)
                             ? ctl_id_from_hex(path + strlen(CTL_EXECUTION_PREFIX))
                             : NULL;
                printf("%s\n", id != NULL ? id : path);
                ctl_run_clear(&run);
                return 0;
        }

        r = sd_event_default(&event);
        if (r >= 0)
                r = sd_bus_attach_event(run.bus, event, SD_EVENT_PRIORITY_NORMAL);
        run.event = event;
        /* Synchronous AddMatch: in place before StartExecution leaves. */
        if (r >= 0)
                r = sd_bus_add_match(run.bus, &match,
                                     "type='signal',sender='" CTL_BUS_NAME "',"
                                     "path_namespace='" CTL_MANAGER_PATH "'",
                                     ctl_run_signal_cb, &run);
        if (r >= 0)
                r = sd_bus_match_signal(run.bus, &owner_match, "org.freedesktop.DBus",
                                        "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                        "NameOwnerChanged", ctl_run_name_owner_cb, &run);
        if (r < 0) {
                ctl_error("cannot watch executions: %s", g_strerror(-r));
                sd_bus_detach_event(run.bus);
                ctl_run_clear(&run);
                return CTL_EXIT_FAILURE;
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        r = sd_event_add_signal(event, NULL, SIGINT, ctl_run_interrupt_cb, &run);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGTERM, ctl_run_interrupt_cb, &run);
        if (r >= 0)
                r = sd_bus_call_async(run.bus, &start_slot, call, ctl_run_start_reply_cb, &run, 0);
        run.t0 = ctl_now_monotonic();
        if (r >= 0)
                r = sd_event_loop(event);
        sd_bus_detach_event(run.bus);
        if (r < 0) {
                ctl_error("cannot follow %s: %s", label, g_strerror(-r));
                ctl_run_clear(&run);
                return CTL_EXIT_FAILURE;
        }

        if (run.final_status != NULL) {
                if (g_str_equal(run.final_status, "completed"))
                        r = CTL_EXIT_OK;
                else if (g_str_equal(run.final_status, "cancelled"))
                        r = CTL_EXIT_CANCELLED;
                else
                        r = CTL_EXIT_FAILURE;
        } else {
                r = run.exit_status >= 0 ? run.exit_status : CTL_EXIT_FAILURE;
        }
        ctl_run_clear(&run);
        return r;
}
