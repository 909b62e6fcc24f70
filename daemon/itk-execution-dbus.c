/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "itk-bus.h"
#include "itk-error.h"
#include "itk-manager-dbus.h"
#include "itk-value.h"

/* A LogBatch signal holds at most this many bytes of messages; a longer
 * burst goes out as several (the bus limits a message's size). */
#define LOG_BATCH_MAX_BYTES (1024 * 1024)

typedef struct {
        sd_bus *bus;
        char *path;
        /* While a burst of lines is announced: the LogBatch being built. */
        guint burst_depth;
        sd_bus_message *log_batch;
        guint log_batch_lines;
        gsize log_batch_bytes;
} Export;

static void
export_free(Export *export)
{
        sd_bus_message_unref(export->log_batch);
        sd_bus_unref(export->bus);
        g_free(export->path);
        g_free(export);
}

char *
itk_execution_dbus_path(ItkExecution *execution)
{
        return g_strconcat(ITK_BUS_EXECUTION_PREFIX "/", itk_execution_get_object_id(execution),
                           NULL);
}

/* --- signals ----------------------------------------------------------------- */

static void
itk_execution_dbus_emit(Export *export, const char *member, const char *types, ...)
{
        _itk_cleanup_bus_message_ sd_bus_message *m = NULL;
        va_list args;
        int r;

        r = sd_bus_message_new_signal(export->bus, &m, export->path, ITK_BUS_EXECUTION_IFACE,
                                      member);
        if (r >= 0) {
                va_start(args, types);
                r = sd_bus_message_appendv(m, types, args);
                va_end(args);
        }
        if (r >= 0)
                r = sd_bus_send(export->bus, m, NULL);
        if (r < 0)
                g_warning("cannot emit %s on %s: %s", member, export->path, g_strerror(-r));
}

static void
status_changed_cb(ItkExecution *execution, int status, int previous, gpointer user_data)
{
        itk_execution_dbus_emit(user_data, "StatusChanged", "ss", itk_status_to_string(status),
                                itk_status_to_string(previous));
}

static void
step_changed_cb(ItkExecution *execution, int index, const char *step_id, int status,
                const char *message, gpointer user_data)
{
        itk_execution_dbus_emit(user_data, "StepChanged", "isss", index, step_id,
                                itk_step_status_to_string(status), message);
}

/* Sends the LogBatch being built, if it holds any line. */
static void
log_batch_flush(Export *export)
{
        _itk_cleanup_bus_message_ sd_bus_message *m = g_steal_pointer(&export->log_batch);
        guint lines = export->log_batch_lines;
        int r;

        export->log_batch_lines = 0;
        export->log_batch_bytes = 0;
        if (m == NULL || lines == 0)
                return;
        r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_send(export->bus, m, NULL);
        if (r < 0)
                g_warning("cannot emit LogBatch on %s: %s", export->path, g_strerror(-r));
}

static int
log_batch_open(Export *export)
{
        int r = sd_bus_message_new_signal(export->bus, &export->log_batch, export->path,
                                          ITK_BUS_EXECUTION_IFACE, "LogBatch");

        if (r >= 0)
                r = sd_bus_message_open_container(export->log_batch, 'a', "(tuss)");
        if (r < 0)
                export->log_batch = sd_bus_message_unref(export->log_batch);
        return r;
}

static void
log_cb(ItkExecution *execution, guint64 usec, guint priority, const char *step_id,
       const char *message, gpointer user_data)
{
        Export *export = user_data;
        int r;

        if (export->burst_depth == 0) {
                itk_execution_dbus_emit(export, "Log", "tuss", usec, priority, step_id, message);
                return;
        }
        /* One message per burst: a flood of output costs the bus (and every
         * client) one message per burst, not per line, so a StatusChanged
         * queued behind it is not held up by thousands of them. */
        if (export->log_batch_bytes >= LOG_BATCH_MAX_BYTES)
                log_batch_flush(export);
        if (export->log_batch == NULL && log_batch_open(export) < 0) {
                itk_execution_dbus_emit(export, "Log", "tuss", usec, priority, step_id, message);
                return;
        }
        r = sd_bus_message_append(export->log_batch, "(tuss)", usec, priority, step_id, message);
        if (r < 0) {
                g_warning("cannot add a line to LogBatch on %s: %s", export->path, g_strerror(-r));
                return;
        }
        export->log_batch_lines++;
        export->log_batch_bytes += strlen(step_id) + strlen(message) + 32;
}

static void
log_burst_cb(ItkExecution *execution, gboolean begin, gpointer user_data)
{
        Export *export = user_data;

        if (begin) {
                export->burst_depth++;
                return;
        }
        g_return_if_fail(export->burst_depth > 0);
        if (--export->burst_depth == 0)
                log_batch_flush(export);
}

static void
finished_cb(ItkExecution *execution, int status, const char *error, gpointer user_data)
{
        itk_execution_dbus_emit(user_data, "Finished", "ss", itk_status_to_string(status),
                                error != NULL ? error : "");
}

static void
properties_changed_cb(ItkExecution *execution, guint props, gpointer user_data)
{
        Export *export = user_data;
        const char *names[16];
        guint n = 0;
        int r;

        if (props & ITK_EXECUTION_PROP_STATUS)
                names[n++] = "Status";
        if (props & ITK_EXECUTION_PROP_PAUSE_REQUESTED)
                names[n++] = "PauseRequested";
        if (props & ITK_EXECUTION_PROP_DEBUG_MODE)
                names[n++] = "DebugMode";
        if (props & ITK_EXECUTION_PROP_CURRENT_STEP) {
                names[n++] = "CurrentStep";
                names[n++] = "CurrentStepId";
                names[n++] = "CurrentStepName";
        }
        if (props & ITK_EXECUTION_PROP_PROGRESS)
                names[n++] = "Progress";
        if (props & ITK_EXECUTION_PROP_STARTED_AT)
                names[n++] = "StartedAt";
        if (props & ITK_EXECUTION_PROP_FINISHED_AT)
                names[n++] = "FinishedAt";
        if (props & ITK_EXECUTION_PROP_ERROR)
                names[n++] = "Error";
        names[n] = NULL;
        if (n == 0)
                return;
        r = sd_bus_emit_properties_changed_strv(export->bus, export->path, ITK_BUS_EXECUTION_IFACE,
                                                (char **)names);
        if (r < 0)
                g_warning("cannot emit PropertiesChanged on %s: %s", export->path, g_strerror(-r));
}

void
itk_execution_dbus_export(sd_bus *bus, ItkExecution *execution)
{
        Export *export = g_new0(Export, 1);
        int r;

        export->bus = sd_bus_ref(bus);
        export->path = itk_execution_dbus_path(execution);
        g_object_set_data_full(G_OBJECT(execution), "itk-dbus-export", export,
                               (GDestroyNotify)export_free);
        g_signal_connect(execution, "status-changed", G_CALLBACK(status_changed_cb), export);
        g_signal_connect(execution, "step-changed", G_CALLBACK(step_changed_cb), export);
        g_signal_connect(execution, "log", G_CALLBACK(log_cb), export);
        g_signal_connect(execution, "log-burst", G_CALLBACK(log_burst_cb), export);
        g_signal_connect(execution, "finished", G_CALLBACK(finished_cb), export);
        g_signal_connect(execution, "properties-changed", G_CALLBACK(properties_changed_cb),
                         export);
        r = sd_bus_emit_object_added(bus, export->path);
        if (r < 0)
                g_warning("cannot announce %s: %s", export->path, g_strerror(-r));
}

void
itk_execution_dbus_unexport(sd_bus *bus, ItkExecution *execution)
{
        Export *export = g_object_get_data(G_OBJECT(execution), "itk-dbus-export");
        int r;

        if (export == NULL)
                return;
        r = sd_bus_emit_object_removed(bus, export->path);
        if (r < 0)
                g_warning("cannot announce the removal of %s: %s", export->path, g_strerror(-r));
        g_signal_handlers_disconnect_by_data(execution, export);
        g_object_set_data(G_OBJECT(execution), "itk-dbus-export", NULL);
}

/* --- object lookup ------------------------------------------------------------ */

static int
itk_execution_dbus_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                        void **found, sd_bus_error *error)
{
        ItkManager *manager = userdata;
        const char *id;
        ItkExecution *execution;

        if (!g_str_has_prefix(path, ITK_BUS_EXECUTION_PREFIX "/"))
                return 0;
        id = path + strlen(ITK_BUS_EXECUTION_PREFIX "/");
        if (strlen(id) != 32 || strchr(id, '/') != NULL)
                return 0;
        execution = itk_manager_lookup(manager, id);
        if (execution == NULL)
                return 0;
        *found = execution;
        return 1;
}

static int
itk_execution_dbus_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***nodes,
                             sd_bus_error *error)
{
        ItkManager *manager = userdata;
        g_autoptr(GPtrArray) executions = itk_manager_get_executions(manager);
        char **list = calloc(executions->len + 1, sizeof(char *));

        if (list == NULL)
                return -ENOMEM;
        for (guint i = 0; i < executions->len; i++) {
                g_autofree char *path = itk_execution_dbus_path(g_ptr_array_index(executions, i));
                /* sd-bus frees the list with free(). */
                list[i] = strdup(path);
                if (list[i] == NULL) {
                        for (guint j = 0; j < i; j++)
                                free(list[j]);
                        free(list);
                        return -ENOMEM;
                }
        }
        *nodes = list;
        return 1;
}

/* --- methods -------------------------------------------------------------------- */

static ItkAuthority *authority;

/* Runs the control method named by @m once the caller is authorized. */
static int
itk_execution_dbus_control_authorized(sd_bus_message *m, gpointer user_data, sd_bus_error *error)
{
        ItkExecution *execution = user_data;
        const char *member = sd_bus_message_get_member(m);
        g_autoptr(GError) local = NULL;
        gboolean ok;
        int r;

        if (g_str_equal(member, "SetDebugMode")) {
                int enabled;
                r = sd_bus_message_read(m, "b", &enabled);
                if (r < 0)
                        return r;
                ok = itk_execution_set_debug_mode(execution, enabled, &local);
        } else if (g_str_equal(member, "Start")) {
                ok = itk_execution_start(execution, &local);
        } else if (g_str_equal(member, "Cancel")) {
                ok = itk_execution_cancel(execution, &local);
        } else if (g_str_equal(member, "Pause")) {
                ok = itk_execution_pause(execution, &local);
        } else if (g_str_equal(member, "Resume")) {
                ok = itk_execution_resume(execution, &local);
        } else if (g_str_equal(member, "Skip")) {
                ok = itk_execution_skip(execution, &local);
        } else if (g_str_equal(member, "SkipBack")) {
                ok = itk_execution_skip_back(execution, &local);
        } else {
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_METHOD, "unknown method %s",
                                         member);
        }
        if (!ok)
                return itk_bus_error_from_gerror(local, error);
        return sd_bus_reply_method_return(m, NULL);
}

static int
method_control(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        ItkExecution *execution = userdata;

        /* The starter controls its own run without asking polkit. */
        return itk_authority_run(authority, m, ITK_ACTION_CONTROL_EXECUTION,
                                 itk_execution_get_started_by_uid(execution),
                                 itk_execution_dbus_control_authorized, execution, g_object_ref,
                                 g_object_unref, error);
}

static int
itk_execution_dbus_reply_variant(sd_bus_message *m, GVariant *value)
{
        _itk_cleanup_bus_message_ sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = itk_bus_message_append_variant(reply, value);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int
get_steps_authorized(sd_bus_message *m, gpointer userdata, sd_bus_error *error)
{
        g_autoptr(GVariant) steps = g_variant_ref_sink(itk_execution_get_steps(userdata));
        return itk_execution_dbus_reply_variant(m, steps);
}

static int
get_log_authorized(sd_bus_message *m, gpointer userdata, sd_bus_error *error)
{
        g_autoptr(GError) local = NULL;
        g_autoptr(GVariant) log = NULL;
        uint32_t max;
        int r;

        r = sd_bus_message_read(m, "u", &max);
        if (r < 0)
                return r;
        /* A reply must fit a bus message: 0 ("all") means the newest lines
         * up to the bound. */
        if (max > ITK_LIMIT_LOG_LINES)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "max %u is above the limit of %d log lines per call",
                                         (guint)max, ITK_LIMIT_LOG_LINES);
        log = itk_execution_get_log(userdata, max != 0 ? max : ITK_LIMIT_LOG_LINES, &local);
        if (log == NULL)
                return itk_bus_error_from_gerror(local, error);
        return itk_execution_dbus_reply_variant(m, log);
}

static ItkManager *log_page_manager;

static int
get_log_page_authorized(sd_bus_message *m, gpointer userdata, sd_bus_error *error)
{
        _itk_cleanup_bus_message_ sd_bus_message *reply = NULL;
        g_autoptr(GError) local = NULL;
        g_autoptr(GVariant) lines = NULL;
        g_autofree char *next_cursor = NULL;
        const char *cursor;
        uint32_t limit;
        int r;

        r = sd_bus_message_read(m, "us", &limit, &cursor);
        if (r < 0)
                return r;
        if (strlen(cursor) > ITK_LIMIT_NAME_LENGTH)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "the cursor is %zu bytes long (the limit is %d bytes)",
                                         strlen(cursor), ITK_LIMIT_NAME_LENGTH);
        lines = itk_manager_get_log_page(log_page_manager, itk_execution_get_id(userdata), limit,
                                         cursor, &next_cursor, &local);
        if (lines == NULL)
                return itk_bus_error_from_gerror(local, error);
        return itk_bus_reply_page(m, lines, next_cursor);
}

static int
method_get_log_page(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        return itk_authority_run(
                authority, m, ITK_ACTION_VIEW, itk_execution_get_started_by_uid(userdata),
                get_log_page_authorized, userdata, g_object_ref, g_object_unref, error);
}

/* Steps and log lines of someone else's run need the view right; the
 * starter reads its own without asking. */
static int
method_get_steps(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        return itk_authority_run(authority, m, ITK_ACTION_VIEW,
                                 itk_execution_get_started_by_uid(userdata), get_steps_authorized,
                                 userdata, g_object_ref, g_object_unref, error);
}

static int
method_get_log(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        return itk_authority_run(authority, m, ITK_ACTION_VIEW,
                                 itk_execution_get_started_by_uid(userdata), get_log_authorized,
                                 userdata, g_object_ref, g_object_unref, error);
}

/* --- artifacts ----------------------------------------------------------------------- */

static int
list_artifacts_authorized(sd_bus_message *m, gpointer userdata, sd_bus_error *error)
{
        g_autoptr(GVariant) artifacts = g_variant_ref_sink(itk_execution_list_artifacts(userdata));
        return itk_execution_dbus_reply_variant(m, artifacts);
}

static int
open_artifact_authorized(sd_bus_message *m, gpointer userdata, sd_bus_error *error)
{
        g_autoptr(GError) local = NULL;
        const char *name;
        int fd, r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        fd = itk_execution_open_artifact(userdata, name, &local);
        if (fd < 0)
                return itk_bus_error_from_gerror(local, error);
        return itk_bus_reply_fd(m, fd);
}

/* Artifacts are the run's to see, as its steps and log. */
static int
method_list_artifacts(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        return itk_authority_run(
                authority, m, ITK_ACTION_VIEW, itk_execution_get_started_by_uid(userdata),
                list_artifacts_authorized, userdata, g_object_ref, g_object_unref, error);
}

static int
method_open_artifact(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        return itk_authority_run(
                authority, m, ITK_ACTION_VIEW, itk_execution_get_started_by_uid(userdata),
                open_artifact_authorized, userdata, g_object_ref, g_object_unref, error);
}

/* --- live view ------------------------------------------------------------------------ */

static int
open_live_view_authorized(sd_bus_message *m, gpointer userdata, sd_bus_error *error)
{
        ItkExecution *execution = userdata;
        g_autoptr(GError) local = NULL;
        ItkLiveView *view;
        const char *key;
        int fd, r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        /* No options yet: say so rather than ignore one. */
        r = sd_bus_message_enter_container(m, 'e', "sv");
        if (r < 0)
                return r;
        if (r > 0) {
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "unknown live view option '%s'", key);
        }
        view = itk_execution_get_live_view(execution, &local);
        if (view == NULL)
                return itk_bus_error_from_gerror(local, error);
        fd = itk_live_view_open(view, &local);
        if (fd < 0)
                return itk_bus_error_from_gerror(local, error);
        return itk_bus_reply_fd(m, fd);
}

static int
method_open_live_view(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        return itk_authority_run(
                authority, m, ITK_ACTION_VIEW, itk_execution_get_started_by_uid(userdata),
                open_live_view_authorized, userdata, g_object_ref, g_object_unref, error);
}

typedef struct {
        ItkExecution *execution;
        sd_bus_message *m;
} SendInput;

static void
send_input_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        SendInput *call = user_data;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        g_autoptr(GError) local = NULL;
        ItkLiveView *view = itk_execution_get_live_view(call->execution, NULL);
        g_autofree char *line = NULL;
        int r;

        if (view == NULL)
                g_set_error(&local, ITK_ERROR, ITK_ERROR_NOT_RUNNING,
                            "the run ended before the input was sent");
        else
                line = itk_live_view_input_finish(view, result, &local);
        if (line != NULL) {
                itk_execution_log_operator(call->execution, line);
                r = sd_bus_reply_method_return(call->m, NULL);
        } else {
                itk_bus_error_from_gerror(local, &error);
                r = sd_bus_reply_method_error(call->m, &error);
                sd_bus_error_free(&error);
        }
        if (r < 0)
                g_warning("cannot reply to SendInput: %s", g_strerror(-r));
        sd_bus_message_unref(call->m);
        g_object_unref(call->execution);
        g_free(call);
}

static int
send_input_authorized(sd_bus_message *m, gpointer userdata, sd_bus_error *error)
{
        ItkExecution *execution = userdata;
        g_autoptr(GError) local = NULL;
        g_autoptr(GVariant) event_variant = NULL;
        g_autoptr(JsonObject) event = NULL;
        ItkStatus status = itk_execution_get_status(execution);
        ItkLiveView *view;
        SendInput *call;
        const char *kind;
        int r;

        r = sd_bus_message_read(m, "s", &kind);
        if (r < 0)
                return r;
        {
                ItkValueBudget budget = ITK_VALUE_BUDGET_INIT("event");
                budget.max_values = 16;
                r = itk_bus_message_read_bounded(m, &budget, &event_variant, &local);
                if (r == -E2BIG && local != NULL)
                        return itk_bus_error_from_gerror(local, error);
                if (r < 0)
                        return r;
        }
        event = itk_value_object_from_variant(event_variant, &local);
        if (event == NULL || !itk_live_view_check_input(kind, event, &local))
                return itk_bus_error_from_gerror(local, error);
        if (itk_status_is_terminal(status))
                return sd_bus_error_setf(error, "org.ignition.Toolkit.Error.NotRunning",
                                         "execution %s has ended", itk_execution_get_id(execution));
        /* The operator steers a run that stands still, never one racing its steps. */
        if (status != ITK_STATUS_PAUSED &&
            !(status == ITK_STATUS_RUNNING && itk_execution_get_debug_mode(execution)))
                return sd_bus_error_setf(error, "org.ignition.Toolkit.Error.InvalidState",
                                         "the browser can be steered only while the run is "
                                         "paused or in debug mode (it is %s)",
                                         itk_status_to_string(status));
        view = itk_execution_get_live_view(execution, &local);
        if (view == NULL)
                return itk_bus_error_from_gerror(local, error);
        call = g_new0(SendInput, 1);
        call->execution = g_object_ref(execution);
        call->m = sd_bus_message_ref(m);
        itk_live_view_input_async(view, kind, event, NULL, send_input_cb, call);
        return 1;
}

static int
method_send_input(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        return itk_authority_run(authority, m, ITK_ACTION_STEER_BROWSER,
                                 itk_execution_get_started_by_uid(userdata), send_input_authorized,
                                 userdata, g_object_ref, g_object_unref, error);
}

/* --- properties ---------------------------------------------------------------------- */

static int
property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
             sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        ItkExecution *e = userdata;

        if (g_str_equal(property, "Id"))
                return sd_bus_message_append(reply, "s", itk_execution_get_id(e));
        if (g_str_equal(property, "Playbook"))
                return sd_bus_message_append(reply, "s", itk_execution_get_playbook_id(e));
        if (g_str_equal(property, "PlaybookName"))
                return sd_bus_message_append(reply, "s", itk_execution_get_playbook(e)->name);
        if (g_str_equal(property, "PlaybookVersion"))
                return sd_bus_message_append(reply, "s", itk_execution_get_playbook(e)->version);
        if (g_str_equal(property, "Domain")) {
                const char *domain = itk_execution_get_playbook(e)->domain;
                return sd_bus_message_append(reply, "s", domain != NULL ? domain : "");
        }
        if (g_str_equal(property, "Status"))
                return sd_bus_message_append(reply, "s",
                                             itk_status_to_string(itk_execution_get_status(e)));
        if (g_str_equal(property, "PauseRequested"))
                return sd_bus_message_append(reply, "b", itk_execution_get_pause_requested(e));
        if (g_str_equal(property, "DebugMode"))
                return sd_bus_message_append(reply, "b", itk_execution_get_debug_mode(e));
        if (g_str_equal(property, "CurrentStep"))
                return sd_bus_message_append(reply, "i", itk_execution_get_current_step(e));
        if (g_str_equal(property, "CurrentStepId"))
                return sd_bus_message_append(reply, "s", itk_execution_get_current_step_id(e));
        if (g_str_equal(property, "CurrentStepName"))
                return sd_bus_message_append(reply, "s", itk_execution_get_current_step_name(e));
        if (g_str_equal(property, "TotalSteps"))
                return sd_bus_message_append(reply, "u", itk_execution_get_total_steps(e));
        if (g_str_equal(property, "Progress"))
                return sd_bus_message_append(reply, "d", itk_execution_get_progress(e));
        if (g_str_equal(property, "StartedAt"))
                return sd_bus_message_append(reply, "t", (uint64_t)itk_execution_get_started_at(e));
        if (g_str_equal(property, "FinishedAt"))
                return sd_bus_message_append(reply, "t",
                                             (uint64_t)itk_execution_get_finished_at(e));
        if (g_str_equal(property, "Error"))
                return sd_bus_message_append(reply, "s", itk_execution_get_error(e));
        if (g_str_equal(property, "StartedByUid"))
                return sd_bus_message_append(reply, "u", itk_execution_get_started_by_uid(e));
        return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "unknown property %s",
                                 property);
}

static const sd_bus_vtable execution_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Start", "", "", method_control, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Cancel", "", "", method_control, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Pause", "", "", method_control, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Resume", "", "", method_control, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Skip", "", "", method_control, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("SkipBack", "", "", method_control, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SetDebugMode", "b", SD_BUS_PARAM(enabled), "", "", method_control,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetSteps", "", "", "aa{sv}", SD_BUS_PARAM(steps),
                                 method_get_steps, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetLog", "u", SD_BUS_PARAM(max), "a(tuss)", SD_BUS_PARAM(lines),
                                 method_get_log, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetLogPage", "us", SD_BUS_PARAM(limit) SD_BUS_PARAM(cursor),
                                 "a(tuss)s", SD_BUS_PARAM(lines) SD_BUS_PARAM(next_cursor),
                                 method_get_log_page, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListArtifacts", "", "", "aa{sv}", SD_BUS_PARAM(artifacts),
                                 method_list_artifacts, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("OpenArtifact", "s", SD_BUS_PARAM(name), "h", SD_BUS_PARAM(fd),
                                 method_open_artifact, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("OpenLiveView", "a{sv}", SD_BUS_PARAM(options), "h",
                                 SD_BUS_PARAM(view), method_open_live_view,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SendInput", "sa{sv}", SD_BUS_PARAM(kind) SD_BUS_PARAM(event), "",
                                 "", method_send_input, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_NAMES("StatusChanged", "ss", SD_BUS_PARAM(status) SD_BUS_PARAM(previous),
                                 0),
        SD_BUS_SIGNAL_WITH_NAMES("StepChanged", "isss",
                                 SD_BUS_PARAM(index) SD_BUS_PARAM(step_id) SD_BUS_PARAM(status)
                                         SD_BUS_PARAM(message),
                                 0),
        SD_BUS_SIGNAL_WITH_NAMES("Log", "tuss",
                                 SD_BUS_PARAM(usec) SD_BUS_PARAM(priority) SD_BUS_PARAM(step_id)
                                         SD_BUS_PARAM(message),
                                 0),
        SD_BUS_SIGNAL_WITH_NAMES("LogBatch", "a(tuss)", SD_BUS_PARAM(lines), 0),
        SD_BUS_SIGNAL_WITH_NAMES("Finished", "ss", SD_BUS_PARAM(status) SD_BUS_PARAM(error), 0),
        SD_BUS_PROPERTY("Id", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Playbook", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("PlaybookName", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("PlaybookVersion", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Domain", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Status", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PauseRequested", "b", property_get, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("DebugMode", "b", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CurrentStep", "i", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CurrentStepId", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CurrentStepName", "s", property_get, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("TotalSteps", "u", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Progress", "d", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("StartedAt", "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("FinishedAt", "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Error", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("StartedByUid", "u", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_VTABLE_END,
};

int
itk_execution_dbus_register(sd_bus *bus, ItkManager *manager, ItkAuthority *auth)
{
        int r;

        authority = auth;
        log_page_manager = manager;
        r = sd_bus_add_fallback_vtable(bus, NULL, ITK_BUS_EXECUTION_PREFIX, ITK_BUS_EXECUTION_IFACE,
                                       execution_vtable, itk_execution_dbus_find, manager);
        if (r < 0)
                return r;
        return sd_bus_add_node_enumerator(bus, NULL, ITK_BUS_EXECUTION_PREFIX,
                                          itk_execution_dbus_enumerate, manager);
}
