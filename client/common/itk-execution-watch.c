/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "itk-execution-watch.h"

/* Signals kept while the owner is still unknown (one round trip): past this,
 * what another client sends in that window is dropped rather than kept. */
#define MAX_UNCHECKED 10000

struct _ItkExecutionWatch {
        GObject parent_instance;
        GDBusConnection *connection;
        char *bus_name;
        char *path; /* NULL: every execution */
        /* The daemon's unique name; only its signals count. */
        char *owner;
        gboolean owner_known;
        /* While > 0 (a StartExecution on its way), the signals of runs not
         * heard from before are queued: one of them may be the new one. */
        guint holds;
        GQueue queue;        /* Queued, in arrival order */
        GHashTable *queued;  /* path -> count in queue */
        GHashTable *running; /* paths delivered and not Finished: not new */
        guint unchecked;
        guint sub_signals;
        guint sub_properties;
        guint sub_owner;
        GCancellable *cancellable;
};

G_DEFINE_TYPE(ItkExecutionWatch, itk_execution_watch, G_TYPE_OBJECT)

enum {
        SIG_STATUS_CHANGED,
        SIG_STEP_CHANGED,
        SIG_LOG,
        SIG_PROPERTIES_CHANGED,
        SIG_FINISHED,
        SIG_OWNER_CHANGED,
        N_SIGNALS
};
static guint signals[N_SIGNALS];

typedef struct {
        char *sender;
        char *path;
        char *member;
        GVariant *params;
        /* Its sender was the owner when it came (FALSE: not known yet). */
        gboolean checked;
} Queued;

static void
queued_free(gpointer data)
{
        Queued *q = data;

        g_free(q->sender);
        g_free(q->path);
        g_free(q->member);
        g_variant_unref(q->params);
        g_free(q);
}

static void
dispatch(ItkExecutionWatch *self, const char *path, const char *member, GVariant *params)
{
        if (g_str_equal(member, "StatusChanged") &&
            g_variant_is_of_type(params, G_VARIANT_TYPE("(ss)"))) {
                const char *status, *previous;

                g_variant_get(params, "(&s&s)", &status, &previous);
                g_signal_emit(self, signals[SIG_STATUS_CHANGED], 0, path,
                              (guint)itk_run_status_from_string(status),
                              (guint)itk_run_status_from_string(previous));
        } else if (g_str_equal(member, "StepChanged") &&
                   g_variant_is_of_type(params, G_VARIANT_TYPE("(isss)"))) {
                const char *step_id, *status, *message;
                gint32 index;

                g_variant_get(params, "(i&s&s&s)", &index, &step_id, &status, &message);
                g_signal_emit(self, signals[SIG_STEP_CHANGED], 0, path, index, step_id, status,
                              message);
        } else if (g_str_equal(member, "Log") &&
                   g_variant_is_of_type(params, G_VARIANT_TYPE("(tuss)"))) {
                const char *step_id, *message;
                guint64 usec;
                guint32 priority;

                g_variant_get(params, "(tu&s&s)", &usec, &priority, &step_id, &message);
                g_signal_emit(self, signals[SIG_LOG], 0, path, usec, priority, step_id, message);
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
                        g_signal_emit(self, signals[SIG_LOG], 0, path, usec, priority, step_id,
                                      message);
        } else if (g_str_equal(member, "PropertiesChanged") &&
                   g_variant_is_of_type(params, G_VARIANT_TYPE("(sa{sv}as)"))) {
                g_autoptr(GVariant) changed = g_variant_get_child_value(params, 1);
                const char *interface;

                g_variant_get_child(params, 0, "&s", &interface);
                if (g_str_equal(interface, ITK_EXECUTION_INTERFACE))
                        g_signal_emit(self, signals[SIG_PROPERTIES_CHANGED], 0, path, changed);
        } else if (g_str_equal(member, "Finished") &&
                   g_variant_is_of_type(params, G_VARIANT_TYPE("(ss)"))) {
                const char *status, *error;

                g_variant_get(params, "(&s&s)", &status, &error);
                g_signal_emit(self, signals[SIG_FINISHED], 0, path, status, error);
        }
}

static gboolean
can_deliver(ItkExecutionWatch *self, const char *path)
{
        if (!self->owner_known)
                return FALSE;
        if (self->holds == 0)
                return TRUE;
        /* Held: only a run heard from before the start, with nothing queued. */
        return g_hash_table_contains(self->running, path) &&
               !g_hash_table_contains(self->queued, path);
}

static void
deliver(ItkExecutionWatch *self, const char *path, const char *member, GVariant *params)
{
        /* PropertiesChanged may trail Finished: it does not make a run live again. */
        if (g_str_equal(member, "Finished"))
                g_hash_table_remove(self->running, path);
        else if (!g_str_equal(member, "PropertiesChanged") &&
                 !g_hash_table_contains(self->running, path))
                g_hash_table_add(self->running, g_strdup(path));
        dispatch(self, path, member, params);
}

static void
unqueue(ItkExecutionWatch *self, const char *path)
{
        guint count = GPOINTER_TO_UINT(g_hash_table_lookup(self->queued, path));

        if (count <= 1)
                g_hash_table_remove(self->queued, path);
        else
                g_hash_table_insert(self->queued, g_strdup(path), GUINT_TO_POINTER(count - 1));
}

/* Delivers what was kept, oldest first. A handler may start another hold
 * (a StartExecution from a callback): delivery stops there. */
static void
flush(ItkExecutionWatch *self)
{
        g_object_ref(self);
        while (self->owner_known && self->holds == 0 && !g_queue_is_empty(&self->queue)) {
                Queued *q = g_queue_pop_head(&self->queue);

                unqueue(self, q->path);
                deliver(self, q->path, q->member, q->params);
                queued_free(q);
        }
        g_object_unref(self);
}

static void
set_owner(ItkExecutionWatch *self, const char *owner)
{
        gboolean changed = g_strcmp0(owner, self->owner) != 0 || !self->owner_known;

        if (!self->owner_known) {
                /* What came before is the owner's, or nobody's to hear. */
                for (GList *l = self->queue.head; l != NULL;) {
                        GList *next = l->next;
                        Queued *q = l->data;

                        if (!q->checked && (owner == NULL || g_strcmp0(q->sender, owner) != 0)) {
                                unqueue(self, q->path);
                                queued_free(q);
                                g_queue_delete_link(&self->queue, l);
                        } else {
                                q->checked = TRUE;
                        }
                        l = next;
                }
                self->unchecked = 0;
                self->owner_known = TRUE;
        }
        g_free(self->owner);
        self->owner = g_strdup(owner);
        /* A new daemon's runs are all new. */
        if (changed)
                g_hash_table_remove_all(self->running);
        if (changed)
                g_signal_emit(self, signals[SIG_OWNER_CHANGED], 0, self->owner);
        flush(self);
}

static void
signal_cb(GDBusConnection *connection, const char *sender, const char *path, const char *interface,
          const char *member, GVariant *params, gpointer user_data)
{
        ItkExecutionWatch *self = user_data;
        Queued *q;

        if (!g_str_has_prefix(path, ITK_EXECUTION_PATH_PREFIX) ||
            (self->path != NULL && !g_str_equal(path, self->path)))
                return;
        if (self->owner_known && (self->owner == NULL || g_strcmp0(sender, self->owner) != 0))
                return;
        if (can_deliver(self, path)) {
                deliver(self, path, member, params);
                return;
        }
        if (!self->owner_known && self->unchecked++ >= MAX_UNCHECKED)
                return;
        q = g_new0(Queued, 1);
        q->sender = g_strdup(sender);
        q->path = g_strdup(path);
        q->member = g_strdup(member);
        q->params = g_variant_ref(params);
        q->checked = self->owner_known;
        g_queue_push_tail(&self->queue, q);
        g_hash_table_insert(
                self->queued, g_strdup(path),
                GUINT_TO_POINTER(GPOINTER_TO_UINT(g_hash_table_lookup(self->queued, path)) + 1));
}

static void
owner_changed_cb(GDBusConnection *connection, const char *sender, const char *path,
                 const char *interface, const char *member, GVariant *params, gpointer user_data)
{
        ItkExecutionWatch *self = user_data;
        const char *name, *old_owner, *new_owner;

        if (!g_variant_is_of_type(params, G_VARIANT_TYPE("(sss)")))
                return;
        g_variant_get(params, "(&s&s&s)", &name, &old_owner, &new_owner);
        if (g_str_equal(name, self->bus_name))
                set_owner(self, new_owner[0] != '\0' ? new_owner : NULL);
}

static void
get_owner_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply =
                g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        ItkExecutionWatch *self = user_data;
        const char *owner = NULL;

        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return; /* disposed */
        /* A NameOwnerChanged before this reply is older than it: the reply wins. */
        if (reply != NULL)
                g_variant_get(reply, "(&s)", &owner);
        set_owner(self, owner);
}

static void
itk_execution_watch_dispose(GObject *object)
{
        ItkExecutionWatch *self = ITK_EXECUTION_WATCH(object);

        g_cancellable_cancel(self->cancellable);
        g_clear_object(&self->cancellable);
        if (self->connection != NULL) {
                if (self->sub_signals != 0)
                        g_dbus_connection_signal_unsubscribe(self->connection, self->sub_signals);
                if (self->sub_properties != 0)
                        g_dbus_connection_signal_unsubscribe(self->connection,
                                                             self->sub_properties);
                if (self->sub_owner != 0)
                        g_dbus_connection_signal_unsubscribe(self->connection, self->sub_owner);
                self->sub_signals = self->sub_properties = self->sub_owner = 0;
        }
        g_queue_clear_full(&self->queue, queued_free);
        g_hash_table_remove_all(self->queued);
        g_hash_table_remove_all(self->running);
        g_clear_object(&self->connection);
        G_OBJECT_CLASS(itk_execution_watch_parent_class)->dispose(object);
}

static void
itk_execution_watch_finalize(GObject *object)
{
        ItkExecutionWatch *self = ITK_EXECUTION_WATCH(object);

        g_free(self->bus_name);
        g_free(self->path);
        g_free(self->owner);
        g_hash_table_unref(self->queued);
        g_hash_table_unref(self->running);
        G_OBJECT_CLASS(itk_execution_watch_parent_class)->finalize(object);
}

static void
itk_execution_watch_class_init(ItkExecutionWatchClass *klass)
{
        GObjectClass *object_class = G_OBJECT_CLASS(klass);
        GType type = G_TYPE_FROM_CLASS(klass);

        object_class->dispose = itk_execution_watch_dispose;
        object_class->finalize = itk_execution_watch_finalize;
        signals[SIG_STATUS_CHANGED] =
                g_signal_new("status-changed", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                             G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_UINT, G_TYPE_UINT);
        signals[SIG_STEP_CHANGED] = g_signal_new(
                "step-changed", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 5,
                G_TYPE_STRING, G_TYPE_INT, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING);
        signals[SIG_LOG] = g_signal_new("log", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                        G_TYPE_NONE, 5, G_TYPE_STRING, G_TYPE_UINT64, G_TYPE_UINT,
                                        G_TYPE_STRING, G_TYPE_STRING);
        signals[SIG_PROPERTIES_CHANGED] =
                g_signal_new("properties-changed", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                             G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_VARIANT);
        signals[SIG_FINISHED] =
                g_signal_new("finished", type, G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
                             3, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING);
        signals[SIG_OWNER_CHANGED] = g_signal_new("owner-changed", type, G_SIGNAL_RUN_LAST, 0, NULL,
                                                  NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
itk_execution_watch_init(ItkExecutionWatch *self)
{
        g_queue_init(&self->queue);
        self->queued = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        self->running = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

ItkExecutionWatch *
itk_execution_watch_new(GDBusConnection *connection, const char *bus_name, const char *path)
{
        ItkExecutionWatch *self = g_object_new(ITK_TYPE_EXECUTION_WATCH, NULL);

        self->connection = g_object_ref(connection);
        self->bus_name = g_strdup(bus_name != NULL ? bus_name : ITK_BUS_NAME);
        self->path = g_strdup(path);
        self->cancellable = g_cancellable_new();
        /* No sender in the rules: GDBus would resolve a well-known one itself
         * and drop what comes while it asks. The owner is checked here. */
        self->sub_signals = g_dbus_connection_signal_subscribe(
                connection, NULL, ITK_EXECUTION_INTERFACE, NULL, path, NULL,
                G_DBUS_SIGNAL_FLAGS_NONE, signal_cb, self, NULL);
        self->sub_properties = g_dbus_connection_signal_subscribe(
                connection, NULL, "org.freedesktop.DBus.Properties", "PropertiesChanged", path,
                ITK_EXECUTION_INTERFACE, G_DBUS_SIGNAL_FLAGS_NONE, signal_cb, self, NULL);
        if (g_dbus_is_unique_name(self->bus_name)) {
                self->owner_known = TRUE;
                self->owner = g_strdup(self->bus_name);
                return self;
        }
        self->sub_owner = g_dbus_connection_signal_subscribe(
                connection, "org.freedesktop.DBus", "org.freedesktop.DBus", "NameOwnerChanged",
                "/org/freedesktop/DBus", self->bus_name, G_DBUS_SIGNAL_FLAGS_NONE, owner_changed_cb,
                self, NULL);
        /* Sent after the match rules: an owner that appears later is announced. */
        g_dbus_connection_call(connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "GetNameOwner",
                               g_variant_new("(s)", self->bus_name), G_VARIANT_TYPE("(s)"),
                               G_DBUS_CALL_FLAGS_NONE, -1, self->cancellable, get_owner_cb, self);
        return self;
}

static gboolean
release_cb(gpointer user_data)
{
        ItkExecutionWatch *self = user_data;

        self->holds--;
        if (self->connection != NULL)
                flush(self);
        return G_SOURCE_REMOVE;
}

static void
start_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GTask) task = user_data;
        ItkExecutionWatch *self = g_task_get_source_object(task);
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
        /* Delivery resumes once the caller has the path (its callback may
         * run now or from an idle of the same priority, queued before this). */
        g_idle_add_full(G_PRIORITY_DEFAULT, release_cb, g_object_ref(self), g_object_unref);
        if (reply == NULL) {
                g_task_return_error(task, g_steal_pointer(&error));
                return;
        }
        /* The reply is the daemon's (activated by this very call, perhaps). */
        if (!self->owner_known)
                set_owner(self, g_dbus_message_get_sender(reply));
        g_variant_get(body, "(&o)", &path);
        g_task_return_pointer(task, g_strdup(path), g_free);
}

void
itk_execution_watch_start_async(ItkExecutionWatch *self, const char *playbook, GVariant *parameters,
                                GVariant *options, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data)
{
        g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
        g_autoptr(GVariant) params_ref = NULL;
        g_autoptr(GVariant) options_ref = NULL;
        g_autoptr(GDBusMessage) message = NULL;

        g_task_set_source_tag(task, itk_execution_watch_start_async);
        params_ref =
                g_variant_ref_sink(parameters != NULL ? parameters : g_variant_new("a{sv}", NULL));
        options_ref = g_variant_ref_sink(options != NULL ? options : g_variant_new("a{sv}", NULL));
        self->holds++;
        message = g_dbus_message_new_method_call(self->bus_name, ITK_MANAGER_PATH,
                                                 ITK_MANAGER_INTERFACE, "StartExecution");
        g_dbus_message_set_body(
                message, g_variant_new("(s@a{sv}@a{sv})", playbook, params_ref, options_ref));
        g_dbus_connection_send_message_with_reply(self->connection, message,
                                                  G_DBUS_SEND_MESSAGE_FLAGS_NONE, -1, NULL,
                                                  cancellable, start_cb, g_steal_pointer(&task));
}

char *
itk_execution_watch_start_finish(ItkExecutionWatch *self, GAsyncResult *result, GError **error)
{
        g_return_val_if_fail(g_task_is_valid(result, self), NULL);
        return g_task_propagate_pointer(G_TASK(result), error);
}

const char *
itk_execution_watch_get_owner(ItkExecutionWatch *self)
{
        return self->owner;
}

GDBusConnection *
itk_execution_watch_get_connection(ItkExecutionWatch *self)
{
        return self->connection;
}

const char *
itk_execution_watch_get_bus_name(ItkExecutionWatch *self)
{
        return self->bus_name;
}
