/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "itk-run-follower.h"

/* One run, seen through an ItkExecutionWatch: the watch keeps the match,
 * the owner and the early signals; the follower keeps the run's path and
 * status, and turns the watch's signals for that path into its own. */
struct _ItkRunFollower {
        GObject parent_instance;
        GDBusConnection *connection;
        char *bus_name;
        char *path; /* NULL until StartExecution replies or follow() */
        ItkExecutionWatch *watch;
        ItkRunStatus status;
        gboolean finished;
        GCancellable *status_read;
};

G_DEFINE_TYPE(ItkRunFollower, itk_run_follower, G_TYPE_OBJECT)

enum {
        SIG_STATUS_CHANGED,
        SIG_STEP_CHANGED,
        SIG_LOG,
        SIG_PROPERTIES_CHANGED,
        SIG_FINISHED,
        N_SIGNALS
};
static guint signals[N_SIGNALS];

static gboolean
is_mine(ItkRunFollower *self, const char *path)
{
        return self->path != NULL && g_str_equal(path, self->path);
}

static void
set_status(ItkRunFollower *self, ItkRunStatus status, ItkRunStatus previous)
{
        /* Terminal is terminal: a late reply never turns a finished run back. */
        if (itk_run_status_is_terminal(self->status) || status == self->status)
                return;
        self->status = status;
        g_signal_emit(self, signals[SIG_STATUS_CHANGED], 0, (guint)status, (guint)previous);
}

static void
status_cb(ItkExecutionWatch *watch, const char *path, guint status, guint previous,
          ItkRunFollower *self)
{
        if (is_mine(self, path))
                set_status(self, status, previous);
}

static void
step_cb(ItkExecutionWatch *watch, const char *path, gint index, const char *step_id,
        const char *status, const char *message, ItkRunFollower *self)
{
        if (is_mine(self, path))
                g_signal_emit(self, signals[SIG_STEP_CHANGED], 0, index, step_id, status, message);
}

static void
log_cb(ItkExecutionWatch *watch, const char *path, guint64 usec, guint priority,
       const char *step_id, const char *message, ItkRunFollower *self)
{
        if (is_mine(self, path))
                g_signal_emit(self, signals[SIG_LOG], 0, usec, priority, step_id, message);
}

static void
properties_cb(ItkExecutionWatch *watch, const char *path, GVariant *changed, ItkRunFollower *self)
{
        if (is_mine(self, path))
                g_signal_emit(self, signals[SIG_PROPERTIES_CHANGED], 0, changed);
}

static void
finished_cb(ItkExecutionWatch *watch, const char *path, const char *status, const char *error,
            ItkRunFollower *self)
{
        if (!is_mine(self, path) || self->finished)
                return;
        self->finished = TRUE;
        /* Finished is the last signal; the status it names is final. */
        set_status(self, itk_run_status_from_string(status), self->status);
        g_signal_emit(self, signals[SIG_FINISHED], 0, status, error);
}

static void
watch(ItkRunFollower *self, const char *path)
{
        self->watch = itk_execution_watch_new(self->connection, self->bus_name, path);
        g_signal_connect(self->watch, "status-changed", G_CALLBACK(status_cb), self);
        g_signal_connect(self->watch, "step-changed", G_CALLBACK(step_cb), self);
        g_signal_connect(self->watch, "log", G_CALLBACK(log_cb), self);
        g_signal_connect(self->watch, "properties-changed", G_CALLBACK(properties_cb), self);
        g_signal_connect(self->watch, "finished", G_CALLBACK(finished_cb), self);
}

static void
unwatch(ItkRunFollower *self)
{
        if (self->watch == NULL)
                return;
        g_signal_handlers_disconnect_by_data(self->watch, self);
        g_clear_object(&self->watch);
}

static void
itk_run_follower_dispose(GObject *object)
{
        ItkRunFollower *self = ITK_RUN_FOLLOWER(object);

        g_cancellable_cancel(self->status_read);
        g_clear_object(&self->status_read);
        unwatch(self);
        g_clear_object(&self->connection);
        G_OBJECT_CLASS(itk_run_follower_parent_class)->dispose(object);
}

static void
itk_run_follower_finalize(GObject *object)
{
        ItkRunFollower *self = ITK_RUN_FOLLOWER(object);

        g_free(self->bus_name);
        g_free(self->path);
        G_OBJECT_CLASS(itk_run_follower_parent_class)->finalize(object);
}

static void
itk_run_follower_class_init(ItkRunFollowerClass *klass)
{
        GObjectClass *object_class = G_OBJECT_CLASS(klass);

        object_class->dispose = itk_run_follower_dispose;
        object_class->finalize = itk_run_follower_finalize;
        signals[SIG_STATUS_CHANGED] =
                g_signal_new("status-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                             NULL, NULL, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_UINT);
        signals[SIG_STEP_CHANGED] = g_signal_new(
                "step-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                G_TYPE_NONE, 4, G_TYPE_INT, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING);
        signals[SIG_LOG] = g_signal_new("log", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                        NULL, NULL, G_TYPE_NONE, 4, G_TYPE_UINT64, G_TYPE_UINT,
                                        G_TYPE_STRING, G_TYPE_STRING);
        signals[SIG_PROPERTIES_CHANGED] =
                g_signal_new("properties-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                             NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_VARIANT);
        signals[SIG_FINISHED] =
                g_signal_new("finished", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                             NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
}

static void
itk_run_follower_init(ItkRunFollower *self)
{
}

ItkRunFollower *
itk_run_follower_new(GDBusConnection *connection, const char *bus_name)
{
        ItkRunFollower *self = g_object_new(ITK_TYPE_RUN_FOLLOWER, NULL);

        self->connection = g_object_ref(connection);
        self->bus_name = g_strdup(bus_name != NULL ? bus_name : ITK_BUS_NAME);
        return self;
}

static void
start_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GTask) task = user_data;
        ItkRunFollower *self = g_task_get_source_object(task);
        g_autoptr(GError) error = NULL;
        char *path;

        path = itk_execution_watch_start_finish(ITK_EXECUTION_WATCH(source), result, &error);
        if (path == NULL) {
                unwatch(self);
                g_task_return_error(task, g_steal_pointer(&error));
                return;
        }
        /* The watch holds the run's early signals until this has returned. */
        self->path = g_strdup(path);
        if (self->status == ITK_RUN_STATUS_UNKNOWN)
                self->status = ITK_RUN_STATUS_PENDING;
        g_task_return_pointer(task, path, g_free);
}

void
itk_run_follower_start_async(ItkRunFollower *self, const char *playbook, GVariant *parameters,
                             GVariant *options, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data)
{
        GTask *task = g_task_new(self, cancellable, callback, user_data);

        g_return_if_fail(self->path == NULL && self->watch == NULL);
        g_task_set_source_tag(task, itk_run_follower_start_async);
        /* Every execution: the new one's path is not known before the reply. */
        watch(self, NULL);
        itk_execution_watch_start_async(self->watch, playbook, parameters, options, cancellable,
                                        start_cb, task);
}

char *
itk_run_follower_start_finish(ItkRunFollower *self, GAsyncResult *result, GError **error)
{
        g_return_val_if_fail(g_task_is_valid(result, self), NULL);
        return g_task_propagate_pointer(G_TASK(result), error);
}

static void
status_read_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GVariant) value = NULL;
        g_autoptr(GError) error = NULL;
        ItkRunFollower *self;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return; /* disposed */
        self = user_data;
        if (reply == NULL)
                return;
        /* The watch delivered what came before this reply: the reply is newer. */
        g_variant_get(reply, "(v)", &value);
        if (!g_variant_is_of_type(value, G_VARIANT_TYPE_STRING))
                return;
        set_status(self, itk_run_status_from_string(g_variant_get_string(value, NULL)),
                   self->status);
        /* A run that had finished before we looked sends no more Finished. */
        if (itk_run_status_is_terminal(self->status) && !self->finished) {
                self->finished = TRUE;
                g_signal_emit(self, signals[SIG_FINISHED], 0,
                              itk_run_status_to_string(self->status), "");
        }
}

void
itk_run_follower_follow(ItkRunFollower *self, const char *path)
{
        g_return_if_fail(self->path == NULL && self->watch == NULL);
        watch(self, path);
        self->path = g_strdup(path);
        self->status_read = g_cancellable_new();
        /* Read after subscribing: a transition after this reply comes as a signal. */
        g_dbus_connection_call(
                self->connection, self->bus_name, path, "org.freedesktop.DBus.Properties", "Get",
                g_variant_new("(ss)", ITK_EXECUTION_INTERFACE, "Status"), G_VARIANT_TYPE("(v)"),
                G_DBUS_CALL_FLAGS_NONE, -1, self->status_read, status_read_cb, self);
}

const char *
itk_run_follower_get_path(ItkRunFollower *self)
{
        return self->path;
}

ItkRunStatus
itk_run_follower_get_status(ItkRunFollower *self)
{
        return self->status;
}

gboolean
itk_run_follower_is_finished(ItkRunFollower *self)
{
        return self->finished;
}

GDBusConnection *
itk_run_follower_get_connection(ItkRunFollower *self)
{
        return self->connection;
}
