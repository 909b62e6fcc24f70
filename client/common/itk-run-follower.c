/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "itk-run-follower.h"

struct _ItkRunFollower {
        GObject parent_instance;
        GDBusConnection *connection;
        char *bus_name;
        char *path; /* NULL until StartExecution replies or follow() */
        /* The daemon's unique name, from a reply: signals from anyone else are
         * dropped. Until it is known, signals are kept in early. */
        char *owner;
        ItkRunStatus status;
        gboolean finished;
        /* Signals seen before the owner (and path) were known. */
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
        char *sender;
        char *path;
        char *member;
        GVariant *params;
} EarlySignal;

static void
early_signal_free(gpointer data)
{
        EarlySignal *e = data;

        g_free(e->sender);
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
        } else if (g_str_equal(member, "LogBatch") &&
                   g_variant_is_of_type(params, G_VARIANT_TYPE("(a(tuss))"))) {
                /* A burst of lines in one signal: "log" stays one per line. */
                g_autoptr(GVariant) lines = g_variant_get_child_value(params, 0);
                const char *step_id, *message;
                guint64 usec;
                guint32 priority;
                GVariantIter iter;

                g_variant_iter_init(&iter, lines);
                while (g_variant_iter_next(&iter, "(tu&s&s)", &usec, &priority, &step_id, &message))
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

        if (self->owner == NULL) {
                EarlySignal *e;

                if (!g_str_has_prefix(path, ITK_EXECUTION_PATH_PREFIX) ||
                    (self->path != NULL && !g_str_equal(path, self->path)))
                        return;
                e = g_new0(EarlySignal, 1);
                e->sender = g_strdup(sender);
                e->path = g_strdup(path);
                e->member = g_strdup(member);
                e->params = g_variant_ref(params);
                g_queue_push_tail(&self->early, e);
                return;
        }
        if (!g_str_equal(path, self->path) || g_strcmp0(sender, self->owner) != 0)
                return;
        dispatch(self, member, params);
}

/* @sender is a unique name or NULL: GDBus may drop the signals of a
 * well-known name while it still asks who owns it, so the owner is taken
 * from a reply instead. */
static void
subscribe(ItkRunFollower *self, const char *sender, const char *path, guint *sub_signals,
          guint *sub_properties)
{
        *sub_signals = g_dbus_connection_signal_subscribe(
                self->connection, sender, ITK_EXECUTION_INTERFACE, NULL, path, NULL,
                G_DBUS_SIGNAL_FLAGS_NONE, signal_cb, self, NULL);
        *sub_properties = g_dbus_connection_signal_subscribe(
                self->connection, sender, "org.freedesktop.DBus.Properties", "PropertiesChanged",
                path, ITK_EXECUTION_INTERFACE, G_DBUS_SIGNAL_FLAGS_NONE, signal_cb, self, NULL);
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

/* Takes @owner and @path as the run's and replays what came from them
 * before. The match itself stays as it was: GDBus drops the signals already
 * queued for a subscription that is removed, so narrowing it here could lose
 * the transitions that came right behind the reply. */
static void
adopt(ItkRunFollower *self, const char *owner, const char *path)
{
        if (self->path == NULL)
                self->path = g_strdup(path);
        g_free(self->owner);
        self->owner = g_strdup(owner);
        while (!g_queue_is_empty(&self->early)) {
                EarlySignal *e = g_queue_pop_head(&self->early);

                if (g_str_equal(e->path, path) && g_strcmp0(e->sender, owner) == 0)
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
        g_free(self->owner);
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
        g_autoptr(GDBusMessage) reply = NULL;
        GVariant *body = NULL;
        const char *path;

        reply = g_dbus_connection_send_message_with_reply_finish(G_DBUS_CONNECTION(source), result,
                                                                 &error);
        if (reply != NULL && g_dbus_message_to_gerror(reply, &error))
                g_clear_object(&reply);
        if (reply != NULL)
                body = g_dbus_message_get_body(reply);
        if (reply != NULL && (body == NULL || !g_variant_is_of_type(body, G_VARIANT_TYPE("(o)")))) {
                g_set_error(&error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_SIGNATURE,
                            "StartExecution replied with an unexpected type");
                g_clear_object(&reply);
        }
        if (reply == NULL) {
                unsubscribe(self);
                g_queue_clear_full(&self->early, early_signal_free);
                g_task_return_error(task, g_steal_pointer(&error));
                return;
        }
        g_variant_get(body, "(&o)", &path);
        if (self->status == ITK_RUN_STATUS_UNKNOWN)
                self->status = ITK_RUN_STATUS_PENDING;
        adopt(self, g_dbus_message_get_sender(reply), path);
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
        g_autoptr(GDBusMessage) message = NULL;

        g_return_if_fail(self->path == NULL && self->sub_signals == 0);
        g_task_set_source_tag(task, itk_run_follower_start_async);
        params_ref =
                g_variant_ref_sink(parameters != NULL ? parameters : g_variant_new("a{sv}", NULL));
        options_ref = g_variant_ref_sink(options != NULL ? options : g_variant_new("a{sv}", NULL));
        /* The match goes out before the call on the same connection, so the bus
         * has it before the daemon can emit the run's first StatusChanged. */
        subscribe(self, NULL, NULL, &self->sub_signals, &self->sub_properties);
        message = g_dbus_message_new_method_call(self->bus_name, ITK_MANAGER_PATH,
                                                 ITK_MANAGER_INTERFACE, "StartExecution");
        g_dbus_message_set_body(
                message, g_variant_new("(s@a{sv}@a{sv})", playbook, params_ref, options_ref));
        g_dbus_connection_send_message_with_reply(self->connection, message,
                                                  G_DBUS_SEND_MESSAGE_FLAGS_NONE, -1, NULL,
                                                  cancellable, start_cb, g_steal_pointer(&task));
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
        g_autoptr(GDBusMessage) reply = NULL;
        g_autoptr(GVariant) value = NULL;
        ItkRunFollower *self;
        GVariant *body;

        reply = g_dbus_connection_send_message_with_reply_finish(G_DBUS_CONNECTION(source), result,
                                                                 NULL);
        if (reply == NULL)
                return; /* cancelled: disposed */
        self = user_data;
        /* The signals kept so far came before this reply: they are older. */
        adopt(self, g_dbus_message_get_sender(reply), self->path);
        body = g_dbus_message_get_body(reply);
        if (g_dbus_message_get_message_type(reply) != G_DBUS_MESSAGE_TYPE_METHOD_RETURN ||
            body == NULL || !g_variant_is_of_type(body, G_VARIANT_TYPE("(v)")))
                return;
        g_variant_get(body, "(v)", &value);
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
        g_autoptr(GDBusMessage) message = NULL;

        g_return_if_fail(self->path == NULL && self->sub_signals == 0);
        subscribe(self, NULL, path, &self->sub_signals, &self->sub_properties);
        self->path = g_strdup(path);
        self->status_read = g_cancellable_new();
        /* Read after subscribing: a transition after this reply comes as a signal. */
        message = g_dbus_message_new_method_call(self->bus_name, path,
                                                 "org.freedesktop.DBus.Properties", "Get");
        g_dbus_message_set_body(message, g_variant_new("(ss)", ITK_EXECUTION_INTERFACE, "Status"));
        g_dbus_connection_send_message_with_reply(self->connection, message,
                                                  G_DBUS_SEND_MESSAGE_FLAGS_NONE, -1, NULL,
                                                  self->status_read, status_read_cb, self);
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
