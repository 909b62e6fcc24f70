/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "itk-run-follower.h"

struct _ItkRunFollower {
        GObject parent_instance;
        GDBusConnection *connection;
        char *bus_name;
        char *path; /* NULL until StartExecution replies or follow() */
        ItkRunStatus status;
        gboolean finished;
        /* Signals seen before the path was known: (o path, s member, v params). */
        GQueue early;
        guint sub_signals;
        guint sub_properties;
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

typedef struct {
        char *path;
        char *member;
        GVariant *params;
} EarlySignal;

static void
early_signal_free(gpointer data)
{
        EarlySignal *e = data;

        g_free(e->path);
        g_free(e->member);
        g_variant_unref(e->params);
        g_free(e);
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
dispatch(ItkRunFollower *self, const char *member, GVariant *params)
{
        if (g_str_equal(member, "StatusChanged") &&
            g_variant_is_of_type(params, G_VARIANT_TYPE("(ss)"))) {
                const char *status, *previous;

                g_variant_get(params, "(&s&s)", &status, &previous);
                set_status(self, itk_run_status_from_string(status),
                           itk_run_status_from_string(previous));
        } else if (g_str_equal(member, "StepChanged") &&
                   g_variant_is_of_type(params, G_VARIANT_TYPE("(isss)"))) {
                const char *step_id, *status, *message;
                gint32 index;

                g_variant_get(params, "(i&s&s&s)", &index, &step_id, &status, &message);
                g_signal_emit(self, signals[SIG_STEP_CHANGED], 0, index, step_id, status, message);
        } else if (g_str_equal(member, "Log") &&
                   g_variant_is_of_type(params, G_VARIANT_TYPE("(tuss)"))) {
                const char *step_id, *message;
                guint64 usec;
                guint32 priority;

                g_variant_get(params, "(tu&s&s)", &usec, &priority, &step_id, &message);
                g_signal_emit(self, signals[SIG_LOG], 0, usec, priority, step_id, message);
        } else if (g_str_equal(member, "PropertiesChanged") &&
                   g_variant_is_of_type(params, G_VARIANT_TYPE("(sa{sv}as)"))) {
                g_autoptr(GVariant) changed = g_variant_get_child_value(params, 1);

                g_signal_emit(self, signals[SIG_PROPERTIES_CHANGED], 0, changed);
        } else if (g_str_equal(member, "Finished") &&
                   g_variant_is_of_type(params, G_VARIANT_TYPE("(ss)"))) {
                const char *status, *error;

                g_variant_get(params, "(&s&s)", &status, &error);
                if (self->finished)
                        return;
                self->finished = TRUE;
                /* Finished is the last signal; the status it names is final. */
                set_status(self, itk_run_status_from_string(status), self->status);
                g_signal_emit(self, signals[SIG_FINISHED], 0, status, error);
        }
}

static void
signal_cb(GDBusConnection *connection, const char *sender, const char *path, const char *interface,
          const char *member, GVariant *params, gpointer user_data)
{
        ItkRunFollower *self = user_data;

        if (self->path == NULL) {
                EarlySignal *e;

                if (!g_str_has_prefix(path, ITK_EXECUTION_PATH_PREFIX))
                        return;
                e = g_new0(EarlySignal, 1);
                e->path = g_strdup(path);
                e->member = g_strdup(member);
                e->params = g_variant_ref(params);
                g_queue_push_tail(&self->early, e);
                return;
        }
        if (!g_str_equal(path, self->path))
                return;
        dispatch(self, member, params);
}

static void
subscribe(ItkRunFollower *self, const char *path, guint *sub_signals, guint *sub_properties)
{
        *sub_signals = g_dbus_connection_signal_subscribe(
                self->connection, self->bus_name, ITK_EXECUTION_INTERFACE, NULL, path, NULL,
                G_DBUS_SIGNAL_FLAGS_NONE, signal_cb, self, NULL);
        *sub_properties = g_dbus_connection_signal_subscribe(
                self->connection, self->bus_name, "org.freedesktop.DBus.Properties",
                "PropertiesChanged", path, ITK_EXECUTION_INTERFACE, G_DBUS_SIGNAL_FLAGS_NONE,
                signal_cb, self, NULL);
}

static void
unsubscribe(ItkRunFollower *self)
{
        if (self->sub_signals != 0)
                g_dbus_connection_signal_unsubscribe(self->connection, self->sub_signals);
        if (self->sub_properties != 0)
                g_dbus_connection_signal_unsubscribe(self->connection, self->sub_properties);
        self->sub_signals = self->sub_properties = 0;
}

/* Narrows the match from every execution to @path. The new match is added
 * before the wide one is removed, so no signal falls in between. */
static void
narrow_to(ItkRunFollower *self, const char *path)
{
        guint sub_signals, sub_properties;

        subscribe(self, path, &sub_signals, &sub_properties);
        unsubscribe(self);
        self->sub_signals = sub_signals;
        self->sub_properties = sub_properties;
        self->path = g_strdup(path);
        while (!g_queue_is_empty(&self->early)) {
                EarlySignal *e = g_queue_pop_head(&self->early);

                if (g_str_equal(e->path, path))
                        dispatch(self, e->member, e->params);
                early_signal_free(e);
        }
}

static void
itk_run_follower_dispose(GObject *object)
{
        ItkRunFollower *self = ITK_RUN_FOLLOWER(object);

        g_cancellable_cancel(self->status_read);
        g_clear_object(&self->status_read);
        if (self->connection != NULL)
                unsubscribe(self);
        g_queue_clear_full(&self->early, early_signal_free);
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
        g_queue_init(&self->early);
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
        g_autoptr(GVariant) reply = NULL;
        const char *path;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        if (reply == NULL) {
                unsubscribe(self);
                g_queue_clear_full(&self->early, early_signal_free);
                g_task_return_error(task, g_steal_pointer(&error));
                return;
        }
        g_variant_get(reply, "(&o)", &path);
        if (self->status == ITK_RUN_STATUS_UNKNOWN)
                self->status = ITK_RUN_STATUS_PENDING;
        narrow_to(self, path);
        g_task_return_pointer(task, g_strdup(path), g_free);
}

void
itk_run_follower_start_async(ItkRunFollower *self, const char *playbook, GVariant *parameters,
                             GVariant *options, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data)
{
        g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
        g_autoptr(GVariant) params_ref = NULL;
        g_autoptr(GVariant) options_ref = NULL;

        g_return_if_fail(self->path == NULL && self->sub_signals == 0);
        g_task_set_source_tag(task, itk_run_follower_start_async);
        params_ref = parameters != NULL ? g_variant_ref_sink(parameters)
                                        : g_variant_ref_sink(g_variant_new("a{sv}", NULL));
        options_ref = options != NULL ? g_variant_ref_sink(options)
                                      : g_variant_ref_sink(g_variant_new("a{sv}", NULL));
        /* The match goes out before the call on the same connection, so the bus
         * has it before the daemon can emit the run's first StatusChanged. */
        subscribe(self, NULL, &self->sub_signals, &self->sub_properties);
        g_dbus_connection_call(self->connection, self->bus_name, ITK_MANAGER_PATH,
                               ITK_MANAGER_INTERFACE, "StartExecution",
                               g_variant_new("(s@a{sv}@a{sv})", playbook, params_ref, options_ref),
                               G_VARIANT_TYPE("(o)"), G_DBUS_CALL_FLAGS_NONE, -1, cancellable,
                               start_cb, g_steal_pointer(&task));
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
        ItkRunFollower *self;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, NULL);
        if (reply == NULL)
                return; /* cancelled (disposed) or gone: the signals still tell */
        self = user_data;
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
        g_return_if_fail(self->path == NULL && self->sub_signals == 0);
        subscribe(self, path, &self->sub_signals, &self->sub_properties);
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
