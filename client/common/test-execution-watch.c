/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ItkExecutionWatch on a private bus: a daemon that (re)appears and speaks at
 * once is heard from its first signal, another client's look-alike signals
 * are not, and a start holds the new run's early signals until the caller
 * has its path. */
#include "itk-execution-watch.h"

#define RUN_A ITK_EXECUTION_PATH_PREFIX "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define RUN_B ITK_EXECUTION_PATH_PREFIX "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

typedef struct {
        GString *seen;
        guint finished;
        char *path;
} Observed;

static void
status_cb(ItkExecutionWatch *w, const char *path, guint status, guint previous, Observed *o)
{
        g_string_append_printf(o->seen, "%c:status:%s;", path[strlen(path) - 1],
                               itk_run_status_to_string(status));
}

static void
step_cb(ItkExecutionWatch *w, const char *path, int index, const char *id, const char *status,
        const char *message, Observed *o)
{
        g_string_append_printf(o->seen, "%c:step:%s=%s;", path[strlen(path) - 1], id, status);
}

static void
log_cb(ItkExecutionWatch *w, const char *path, guint64 usec, guint priority, const char *id,
       const char *message, Observed *o)
{
        g_string_append_printf(o->seen, "%c:log:%s;", path[strlen(path) - 1], message);
}

static void
properties_cb(ItkExecutionWatch *w, const char *path, GVariant *changed, Observed *o)
{
        const char *status = "?";

        g_variant_lookup(changed, "Status", "&s", &status);
        g_string_append_printf(o->seen, "%c:props:%s;", path[strlen(path) - 1], status);
}

static void
finished_cb(ItkExecutionWatch *w, const char *path, const char *status, const char *error,
            Observed *o)
{
        g_string_append_printf(o->seen, "%c:finished:%s;", path[strlen(path) - 1], status);
        o->finished++;
}

static void
connect_all(ItkExecutionWatch *w, Observed *o)
{
        g_signal_connect(w, "status-changed", G_CALLBACK(status_cb), o);
        g_signal_connect(w, "step-changed", G_CALLBACK(step_cb), o);
        g_signal_connect(w, "log", G_CALLBACK(log_cb), o);
        g_signal_connect(w, "properties-changed", G_CALLBACK(properties_cb), o);
        g_signal_connect(w, "finished", G_CALLBACK(finished_cb), o);
}

static GDBusConnection *
connect_to(GTestDBus *bus)
{
        g_autoptr(GError) error = NULL;
        GDBusConnection *c = g_dbus_connection_new_for_address_sync(
                g_test_dbus_get_bus_address(bus),
                G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                        G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                NULL, NULL, &error);

        g_assert_no_error(error);
        return c;
}

static void
emit(GDBusConnection *c, const char *path, const char *member, GVariant *params)
{
        g_autoptr(GError) error = NULL;

        g_dbus_connection_emit_signal(c, NULL, path, ITK_EXECUTION_INTERFACE, member, params,
                                      &error);
        g_assert_no_error(error);
}

static void
emit_run(GDBusConnection *c, const char *path, const char *final)
{
        g_autoptr(GVariantBuilder) changed = g_variant_builder_new(G_VARIANT_TYPE_VARDICT);
        g_autoptr(GError) error = NULL;

        emit(c, path, "StatusChanged", g_variant_new("(ss)", "running", "pending"));
        emit(c, path, "StepChanged", g_variant_new("(isss)", 0, "a", "running", ""));
        emit(c, path, "Log", g_variant_new("(tuss)", (guint64)1, 6u, "a", "hello"));
        g_variant_builder_add(changed, "{sv}", "Status", g_variant_new_string(final));
        g_dbus_connection_emit_signal(
                c, NULL, path, "org.freedesktop.DBus.Properties", "PropertiesChanged",
                g_variant_new("(sa{sv}as)", ITK_EXECUTION_INTERFACE, changed, NULL), &error);
        g_assert_no_error(error);
        emit(c, path, "StatusChanged", g_variant_new("(ss)", final, "running"));
        emit(c, path, "Finished", g_variant_new("(ss)", final, ""));
}

/* Owns the name with a blocking round trip, then speaks at once: the watch's
 * loop has not run in between, so it cannot have asked anyone anything. */
static void
own_name(GDBusConnection *c)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
                c, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                "RequestName", g_variant_new("(su)", ITK_BUS_NAME, 0u), G_VARIANT_TYPE("(u)"),
                G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);

        g_assert_no_error(error);
}

static void
wait_finished(Observed *o, guint count)
{
        while (o->finished < count)
                g_main_context_iteration(NULL, TRUE);
}

static void
test_daemon_appears_and_speaks_at_once(void)
{
        g_autoptr(GTestDBus) bus = g_test_dbus_new(G_TEST_DBUS_NONE);
        g_autoptr(GDBusConnection) client = NULL;
        g_autoptr(GDBusConnection) daemon_a = NULL;
        g_autoptr(GDBusConnection) daemon_b = NULL;
        g_autoptr(GDBusConnection) impostor = NULL;
        g_autoptr(ItkExecutionWatch) watch = NULL;
        Observed o = { g_string_new(NULL), 0, NULL };

        g_test_dbus_up(bus);
        client = connect_to(bus);
        impostor = connect_to(bus);
        daemon_a = connect_to(bus);
        watch = itk_execution_watch_new(client, ITK_BUS_NAME, NULL);
        connect_all(watch, &o);
        /* Nobody owns the name yet: the watch learns that first. */
        while (itk_execution_watch_get_owner(watch) == NULL && o.seen->len == 0 &&
               g_main_context_iteration(NULL, FALSE))
                ;
        g_dbus_connection_flush_sync(client, NULL, NULL);

        own_name(daemon_a);
        emit(impostor, RUN_B, "StatusChanged", g_variant_new("(ss)", "failed", "running"));
        emit_run(daemon_a, RUN_A, "completed");
        emit(impostor, RUN_A, "Finished", g_variant_new("(ss)", "failed", "forged"));
        g_dbus_connection_flush_sync(impostor, NULL, NULL);
        g_dbus_connection_flush_sync(daemon_a, NULL, NULL);
        wait_finished(&o, 1);
        g_assert_cmpstr(itk_execution_watch_get_owner(watch), ==,
                        g_dbus_connection_get_unique_name(daemon_a));

        /* The daemon restarts under a new unique name and speaks at once. */
        g_dbus_connection_close_sync(daemon_a, NULL, NULL);
        daemon_b = connect_to(bus);
        own_name(daemon_b);
        emit_run(daemon_b, RUN_B, "cancelled");
        g_dbus_connection_flush_sync(daemon_b, NULL, NULL);
        wait_finished(&o, 2);
        g_assert_cmpstr(itk_execution_watch_get_owner(watch), ==,
                        g_dbus_connection_get_unique_name(daemon_b));

        g_assert_cmpstr(o.seen->str, ==,
                        "a:status:running;a:step:a=running;a:log:hello;a:props:completed;"
                        "a:status:completed;a:finished:completed;"
                        "b:status:running;b:step:a=running;b:log:hello;b:props:cancelled;"
                        "b:status:cancelled;b:finished:cancelled;");

        g_clear_object(&watch);
        g_clear_object(&client);
        g_clear_object(&impostor);
        g_clear_object(&daemon_a);
        g_clear_object(&daemon_b);
        g_test_dbus_down(bus);
        g_string_free(o.seen, TRUE);
}

static const char manager_xml[] = "<node><interface name='org.ignition.Toolkit.Manager'>"
                                  "<method name='StartExecution'><arg type='s' direction='in'/>"
                                  "<arg type='a{sv}' direction='in'/><arg type='a{sv}' "
                                  "direction='in'/><arg type='o' direction='out'/></method>"
                                  "</interface></node>";

static void
method_cb(GDBusConnection *c, const char *sender, const char *path, const char *iface,
          const char *method, GVariant *params, GDBusMethodInvocation *invocation, gpointer data)
{
        const char *playbook;

        g_variant_get(params, "(&s@a{sv}@a{sv})", &playbook, NULL, NULL);
        if (g_str_equal(playbook, "refused.yaml")) {
                g_dbus_method_invocation_return_dbus_error(
                        invocation, "org.freedesktop.DBus.Error.AccessDenied", "not authorized");
                return;
        }
        /* Another run, heard from before, goes on meanwhile. */
        emit(c, RUN_B, "Log", g_variant_new("(tuss)", (guint64)2, 6u, "b", "meanwhile"));
        /* The whole run before the reply: stricter than the contract. */
        emit_run(c, RUN_A, "completed");
        g_dbus_method_invocation_return_value(invocation, g_variant_new("(o)", RUN_A));
}

typedef struct {
        Observed *o;
        GError *error;
        gboolean done;
} Start;

static void
started_cb(GObject *source, GAsyncResult *result, gpointer data)
{
        Start *s = data;

        g_free(s->o->path);
        s->o->path =
                itk_execution_watch_start_finish(ITK_EXECUTION_WATCH(source), result, &s->error);
        /* Nothing of the run may have been delivered before its path is known. */
        g_string_append_printf(s->o->seen, "reply:%s;", s->o->path != NULL ? "ok" : "error");
        s->done = TRUE;
}

static void
test_start_holds_until_the_path_is_known(void)
{
        g_autoptr(GTestDBus) bus = g_test_dbus_new(G_TEST_DBUS_NONE);
        g_autoptr(GDBusConnection) client = NULL;
        g_autoptr(GDBusConnection) service = NULL;
        g_autoptr(GDBusNodeInfo) node = NULL;
        g_autoptr(ItkExecutionWatch) watch = NULL;
        g_autoptr(GError) error = NULL;
        static const GDBusInterfaceVTable vtable = { method_cb, NULL, NULL, { 0 } };
        Observed o = { g_string_new(NULL), 0, NULL };
        Start s = { &o, NULL, FALSE };

        g_test_dbus_up(bus);
        service = connect_to(bus);
        node = g_dbus_node_info_new_for_xml(manager_xml, &error);
        g_assert_no_error(error);
        g_dbus_connection_register_object(service, ITK_MANAGER_PATH, node->interfaces[0], &vtable,
                                          NULL, NULL, &error);
        g_assert_no_error(error);
        own_name(service);
        client = connect_to(bus);
        watch = itk_execution_watch_new(client, ITK_BUS_NAME, NULL);
        connect_all(watch, &o);
        emit(service, RUN_B, "StatusChanged", g_variant_new("(ss)", "running", "pending"));
        while (o.seen->len == 0)
                g_main_context_iteration(NULL, TRUE);
        /* Held for the new run only: run B's line is not held behind the reply. */
        itk_execution_watch_start_async(watch, "x.yaml", NULL, NULL, NULL, started_cb, &s);
        wait_finished(&o, 1);
        g_assert_no_error(s.error);
        g_assert_cmpstr(o.path, ==, RUN_A);
        g_assert_cmpstr(o.seen->str, ==,
                        "b:status:running;b:log:meanwhile;reply:ok;a:status:running;a:step:a="
                        "running;a:log:hello;"
                        "a:props:completed;a:status:completed;a:finished:completed;");

        /* A refusal comes back as the daemon's error, and delivery resumes. */
        g_string_truncate(o.seen, 0);
        s.done = FALSE;
        itk_execution_watch_start_async(watch, "refused.yaml", NULL, NULL, NULL, started_cb, &s);
        while (!s.done)
                g_main_context_iteration(NULL, TRUE);
        g_assert_error(s.error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED);
        g_clear_error(&s.error);
        emit_run(service, RUN_B, "failed");
        wait_finished(&o, 2);
        g_assert_true(g_str_has_prefix(o.seen->str, "reply:error;b:status:running;"));

        g_clear_object(&watch);
        g_clear_object(&client);
        g_clear_object(&service);
        g_test_dbus_down(bus);
        g_string_free(o.seen, TRUE);
        g_free(o.path);
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/client/watch/daemon-appears-and-speaks-at-once",
                        test_daemon_appears_and_speaks_at_once);
        g_test_add_func("/client/watch/start-holds-until-the-path-is-known",
                        test_start_holds_until_the_path_is_known);
        return g_test_run();
}
