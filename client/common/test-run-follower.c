/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ItkRunFollower against a fake Manager on a private bus that emits the new
 * run's transitions as early as the bus allows: right behind its reply, and
 * (stricter than the contract) one StatusChanged even before it. A follower
 * that subscribed after the reply would miss them. */
#include "itk-run-follower.h"

#define FAKE_PATH ITK_EXECUTION_PATH_PREFIX "0123456789abcdef0123456789abcdef"

static const char manager_xml[] = "<node><interface name='org.ignition.Toolkit.Manager'>"
                                  "<method name='StartExecution'><arg type='s' direction='in'/>"
                                  "<arg type='a{sv}' direction='in'/><arg type='a{sv}' "
                                  "direction='in'/><arg type='o' direction='out'/></method>"
                                  "</interface></node>";

static void
emit(GDBusConnection *c, const char *path, const char *member, GVariant *params)
{
        g_dbus_connection_emit_signal(c, NULL, path, ITK_EXECUTION_INTERFACE, member, params, NULL);
}

static void
method_cb(GDBusConnection *c, const char *sender, const char *path, const char *iface,
          const char *method, GVariant *params, GDBusMethodInvocation *invocation, gpointer data)
{
        /* Another run's signal first: the follower must not take it for its own. */
        emit(c, ITK_EXECUTION_PATH_PREFIX "ffff", "StatusChanged",
             g_variant_new("(ss)", "running", "pending"));
        emit(c, FAKE_PATH, "StatusChanged", g_variant_new("(ss)", "running", "pending"));
        g_dbus_method_invocation_return_value(invocation, g_variant_new("(o)", FAKE_PATH));
        emit(c, FAKE_PATH, "StepChanged", g_variant_new("(isss)", 0, "a", "running", ""));
        emit(c, FAKE_PATH, "Log", g_variant_new("(tuss)", (guint64)1, 6u, "a", "hello"));
        /* A burst of lines in one signal: still one "log" each, in order. */
        emit(c, FAKE_PATH, "LogBatch",
             g_variant_new_parsed("([(@t 2, @u 6, 'a', 'two'), (@t 3, @u 6, 'a', 'three')],)"));
        emit(c, FAKE_PATH, "StatusChanged", g_variant_new("(ss)", "paused", "running"));
        emit(c, FAKE_PATH, "StatusChanged", g_variant_new("(ss)", "running", "paused"));
        emit(c, FAKE_PATH, "StepChanged", g_variant_new("(isss)", 0, "a", "completed", ""));
        emit(c, FAKE_PATH, "StatusChanged", g_variant_new("(ss)", "cancelled", "running"));
        emit(c, FAKE_PATH, "Finished", g_variant_new("(ss)", "cancelled", ""));
}

typedef struct {
        GString *seen;
        gboolean done;
        char *path;
} Observed;

static void
status_cb(ItkRunFollower *f, guint status, guint previous, Observed *o)
{
        g_string_append_printf(o->seen, "status:%s;", itk_run_status_to_string(status));
}

static void
step_cb(ItkRunFollower *f, int index, const char *id, const char *status, const char *message,
        Observed *o)
{
        g_string_append_printf(o->seen, "step:%s=%s;", id, status);
}

static void
log_cb(ItkRunFollower *f, guint64 usec, guint priority, const char *id, const char *message,
       Observed *o)
{
        g_string_append_printf(o->seen, "log:%s;", message);
}

static void
finished_cb(ItkRunFollower *f, const char *status, const char *error, Observed *o)
{
        g_string_append_printf(o->seen, "finished:%s;", status);
        o->done = TRUE;
}

static void
started_cb(GObject *source, GAsyncResult *result, gpointer data)
{
        Observed *o = data;
        g_autoptr(GError) error = NULL;

        o->path = itk_run_follower_start_finish(ITK_RUN_FOLLOWER(source), result, &error);
        g_assert_no_error(error);
}

static void
test_start_sees_every_transition(void)
{
        g_autoptr(GTestDBus) bus = g_test_dbus_new(G_TEST_DBUS_NONE);
        g_autoptr(GDBusConnection) service = NULL;
        g_autoptr(GDBusConnection) client = NULL;
        g_autoptr(GDBusNodeInfo) node = NULL;
        g_autoptr(ItkRunFollower) follower = NULL;
        g_autoptr(GError) error = NULL;
        static const GDBusInterfaceVTable vtable = { method_cb, NULL, NULL, { 0 } };
        Observed o = { g_string_new(NULL), FALSE, NULL };

        g_test_dbus_up(bus);
        service = g_dbus_connection_new_for_address_sync(
                g_test_dbus_get_bus_address(bus),
                G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                        G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                NULL, NULL, &error);
        g_assert_no_error(error);
        node = g_dbus_node_info_new_for_xml(manager_xml, &error);
        g_assert_no_error(error);
        g_dbus_connection_register_object(service, ITK_MANAGER_PATH, node->interfaces[0], &vtable,
                                          NULL, NULL, &error);
        g_assert_no_error(error);
        g_bus_own_name_on_connection(service, ITK_BUS_NAME, G_BUS_NAME_OWNER_FLAGS_NONE, NULL, NULL,
                                     NULL, NULL);
        client = g_dbus_connection_new_for_address_sync(
                g_test_dbus_get_bus_address(bus),
                G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                        G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                NULL, NULL, &error);
        g_assert_no_error(error);
        /* Wait for the name (a round trip on the service connection orders it). */
        while (TRUE) {
                g_autoptr(GVariant) r = g_dbus_connection_call_sync(
                        client, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                        "org.freedesktop.DBus", "NameHasOwner", g_variant_new("(s)", ITK_BUS_NAME),
                        NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
                gboolean has = FALSE;

                g_variant_get(r, "(b)", &has);
                if (has)
                        break;
                g_main_context_iteration(NULL, TRUE);
        }

        follower = itk_run_follower_new(client, ITK_BUS_NAME);
        g_signal_connect(follower, "status-changed", G_CALLBACK(status_cb), &o);
        g_signal_connect(follower, "step-changed", G_CALLBACK(step_cb), &o);
        g_signal_connect(follower, "log", G_CALLBACK(log_cb), &o);
        g_signal_connect(follower, "finished", G_CALLBACK(finished_cb), &o);
        itk_run_follower_start_async(follower, "x.yaml", NULL, NULL, NULL, started_cb, &o);
        while (!o.done || o.path == NULL)
                g_main_context_iteration(NULL, TRUE);

        g_assert_cmpstr(o.path, ==, FAKE_PATH);
        g_assert_cmpstr(o.seen->str, ==,
                        "status:running;step:a=running;log:hello;log:two;log:three;status:paused;"
                        "status:running;"
                        "step:a=completed;status:cancelled;finished:cancelled;");
        g_assert_cmpint(itk_run_follower_get_status(follower), ==, ITK_RUN_STATUS_CANCELLED);
        g_assert_true(itk_run_follower_is_finished(follower));

        g_clear_object(&follower);
        g_clear_object(&client);
        g_clear_object(&service);
        g_test_dbus_down(bus);
        g_string_free(o.seen, TRUE);
        g_free(o.path);
}

static const char execution_xml[] = "<node><interface name='org.ignition.Toolkit.Execution'>"
                                    "<property name='Status' type='s' access='read'/>"
                                    "</interface></node>";

static GVariant *
get_status_cb(GDBusConnection *c, const char *sender, const char *path, const char *iface,
              const char *name, GError **error, gpointer data)
{
        /* The run finished before the follower looked: no signal will come. */
        return g_variant_new_string("failed");
}

static void
test_follow_finished_run(void)
{
        g_autoptr(GTestDBus) bus = g_test_dbus_new(G_TEST_DBUS_NONE);
        g_autoptr(GDBusConnection) service = NULL;
        g_autoptr(GDBusConnection) client = NULL;
        g_autoptr(GDBusNodeInfo) node = NULL;
        g_autoptr(ItkRunFollower) follower = NULL;
        g_autoptr(GError) error = NULL;
        static const GDBusInterfaceVTable vtable = { NULL, get_status_cb, NULL, { 0 } };
        Observed o = { g_string_new(NULL), FALSE, NULL };

        g_test_dbus_up(bus);
        service = g_dbus_connection_new_for_address_sync(
                g_test_dbus_get_bus_address(bus),
                G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                        G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                NULL, NULL, &error);
        g_assert_no_error(error);
        node = g_dbus_node_info_new_for_xml(execution_xml, &error);
        g_assert_no_error(error);
        g_dbus_connection_register_object(service, FAKE_PATH, node->interfaces[0], &vtable, NULL,
                                          NULL, &error);
        g_assert_no_error(error);
        client = g_dbus_connection_new_for_address_sync(
                g_test_dbus_get_bus_address(bus),
                G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                        G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                NULL, NULL, &error);
        g_assert_no_error(error);

        /* Addressed by unique name: no well-known name is owned here. */
        follower = itk_run_follower_new(client, g_dbus_connection_get_unique_name(service));
        g_signal_connect(follower, "status-changed", G_CALLBACK(status_cb), &o);
        g_signal_connect(follower, "finished", G_CALLBACK(finished_cb), &o);
        itk_run_follower_follow(follower, FAKE_PATH);
        while (!o.done)
                g_main_context_iteration(NULL, TRUE);
        g_assert_cmpstr(o.seen->str, ==, "status:failed;finished:failed;");
        g_assert_cmpstr(itk_run_follower_get_path(follower), ==, FAKE_PATH);

        g_clear_object(&follower);
        g_clear_object(&client);
        g_clear_object(&service);
        g_test_dbus_down(bus);
        g_string_free(o.seen, TRUE);
}

static void
test_status_controls(void)
{
        /* The contract's control table: what a UI offers in each status. */
        g_assert_cmpint(itk_run_status_controls(ITK_RUN_STATUS_RUNNING, FALSE), ==,
                        ITK_RUN_CONTROL_CANCEL | ITK_RUN_CONTROL_PAUSE | ITK_RUN_CONTROL_SKIP |
                                ITK_RUN_CONTROL_SKIP_BACK | ITK_RUN_CONTROL_DEBUG);
        g_assert_true(itk_run_status_controls(ITK_RUN_STATUS_RUNNING, TRUE) &
                      ITK_RUN_CONTROL_RESUME);
        g_assert_false(itk_run_status_controls(ITK_RUN_STATUS_PAUSED, FALSE) &
                       ITK_RUN_CONTROL_PAUSE);
        g_assert_true(itk_run_status_controls(ITK_RUN_STATUS_PAUSED, FALSE) &
                      ITK_RUN_CONTROL_RESUME);
        g_assert_cmpint(itk_run_status_controls(ITK_RUN_STATUS_PENDING, FALSE) &
                                ITK_RUN_CONTROL_SKIP,
                        ==, 0);
        for (ItkRunStatus s = ITK_RUN_STATUS_COMPLETED; s <= ITK_RUN_STATUS_CANCELLED; s++)
                g_assert_cmpint(itk_run_status_controls(s, FALSE), ==, 0);
        g_assert_cmpint(itk_run_status_from_string("paused"), ==, ITK_RUN_STATUS_PAUSED);
        g_assert_cmpint(itk_run_status_from_string("bogus"), ==, ITK_RUN_STATUS_UNKNOWN);
        g_assert_cmpint(itk_run_status_from_string(NULL), ==, ITK_RUN_STATUS_UNKNOWN);
        g_assert_cmpint(itk_step_status_from_string("skipped"), ==, ITK_STEP_STATUS_SKIPPED);
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/client/status-controls", test_status_controls);
        g_test_add_func("/client/follower/start-sees-every-transition",
                        test_start_sees_every_transition);
        g_test_add_func("/client/follower/follow-finished-run", test_follow_finished_run);
        return g_test_run();
}
