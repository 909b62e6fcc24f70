/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "itk-app.h"
#include "itk-test-hook.h"

static ItkApp app_state;

ItkApp *
itk_app_get(void)
{
        return &app_state;
}

void
itk_app_call_manager(const char *method, GVariant *args, const char *reply_type,
                     GAsyncReadyCallback callback, gpointer user_data)
{
        ItkApp *app = itk_app_get();

        g_dbus_connection_call(app->bus, ITK_BUS_NAME, ITK_MANAGER_PATH, ITK_MANAGER_INTERFACE,
                               method, args, reply_type ? G_VARIANT_TYPE(reply_type) : NULL,
                               G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, -1,
                               app->cancellable, callback, user_data);
}

void
itk_app_call_execution(const char *path, const char *method, GVariant *args, const char *reply_type,
                       GAsyncReadyCallback callback, gpointer user_data)
{
        ItkApp *app = itk_app_get();

        g_dbus_connection_call(app->bus, ITK_BUS_NAME, path, ITK_EXECUTION_INTERFACE, method, args,
                               reply_type ? G_VARIANT_TYPE(reply_type) : NULL,
                               G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, -1,
                               app->cancellable, callback, user_data);
}

gboolean
itk_app_error_is_denied(const GError *error)
{
        g_autofree char *name = NULL;

        if (error == NULL || !g_dbus_error_is_remote_error(error))
                return FALSE;
        name = g_dbus_error_get_remote_error(error);
        return g_strcmp0(name, "org.freedesktop.DBus.Error.AccessDenied") == 0 ||
               g_strcmp0(name, "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired") == 0;
}

char *
itk_app_describe_error(const GError *error)
{
        g_autoptr(GError) copy = NULL;

        if (itk_app_error_is_denied(error))
                return g_strdup(_("You are not authorized to do this. Ask an administrator to "
                                  "grant you access to Ignition Toolkit."));
        if (g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
            g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER))
                return g_strdup(_("The Ignition Toolkit service is not running."));
        copy = g_error_copy(error);
        g_dbus_error_strip_remote_error(copy);
        return g_strdup(copy->message);
}

void
itk_app_toast(const char *text)
{
        ItkApp *app = itk_app_get();
        AdwToastOverlay *overlay;

        if (app->window == NULL)
                return;
        overlay = g_object_get_data(G_OBJECT(app->window), "toasts");
        if (overlay != NULL)
                adw_toast_overlay_add_toast(overlay, adw_toast_new(text));
}

GVariant *
itk_app_lookup_playbook(const char *id)
{
        ItkApp *app = itk_app_get();
        GVariantIter iter;
        GVariant *entry;

        if (app->playbooks == NULL)
                return NULL;
        g_variant_iter_init(&iter, app->playbooks);
        while ((entry = g_variant_iter_next_value(&iter)) != NULL) {
                const char *entry_id = NULL;

                if (g_variant_lookup(entry, "id", "&s", &entry_id) && g_strcmp0(entry_id, id) == 0)
                        return entry;
                g_variant_unref(entry);
        }
        return NULL;
}

char *
itk_format_duration(gint64 usec)
{
        gint64 s = usec / G_USEC_PER_SEC;

        if (usec < 0)
                return g_strdup("");
        if (s < 1)
                return g_strdup_printf(_("%d ms"), (int)(usec / 1000));
        if (s < 60)
                return g_strdup_printf(_("%.1f s"), usec / (double)G_USEC_PER_SEC);
        if (s < 3600)
                return g_strdup_printf(_("%d min %d s"), (int)(s / 60), (int)(s % 60));
        return g_strdup_printf(_("%d h %d min"), (int)(s / 3600), (int)(s / 60 % 60));
}

char *
itk_format_time(gint64 usec)
{
        g_autoptr(GDateTime) t = NULL;

        if (usec <= 0)
                return g_strdup("");
        t = g_date_time_new_from_unix_local(usec / G_USEC_PER_SEC);
        return t != NULL ? g_date_time_format(t, "%Y-%m-%d %H:%M:%S") : g_strdup("");
}

const char *
itk_status_label(const char *status)
{
        static const struct {
                const char *status;
                const char *label;
        } labels[] = {
                { "pending", N_("Pending") }, { "running", N_("Running") },
                { "paused", N_("Paused") },   { "completed", N_("Completed") },
                { "failed", N_("Failed") },   { "cancelled", N_("Cancelled") },
                { "skipped", N_("Skipped") },
        };

        for (guint i = 0; i < G_N_ELEMENTS(labels); i++)
                if (g_strcmp0(status, labels[i].status) == 0)
                        return _(labels[i].label);
        return status != NULL ? status : "";
}

static void
name_appeared_cb(GDBusConnection *connection, const char *name, const char *owner,
                 gpointer user_data)
{
        ItkApp *app = itk_app_get();

        g_free(app->owner);
        app->owner = g_strdup(owner);
        if (app->window != NULL)
                itk_window_daemon_changed(app->window, TRUE);
}

static void
name_vanished_cb(GDBusConnection *connection, const char *name, gpointer user_data)
{
        ItkApp *app = itk_app_get();

        g_clear_pointer(&app->owner, g_free);
        if (app->window != NULL && connection != NULL)
                itk_window_daemon_changed(app->window, FALSE);
}

static void
bus_ready(GDBusConnection *bus)
{
        ItkApp *app = itk_app_get();

        app->bus = bus;
        if (app->test_mode)
                itk_test_hook_export(bus);
        g_bus_watch_name_on_connection(bus, ITK_BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                       name_appeared_cb, name_vanished_cb, NULL, NULL);
}

static void
bus_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkApp *app = itk_app_get();
        g_autoptr(GError) error = NULL;
        GDBusConnection *bus;

        if (app->bus_address != NULL)
                bus = g_dbus_connection_new_for_address_finish(result, &error);
        else
                bus = g_bus_get_finish(result, &error);
        if (bus == NULL) {
                g_autofree char *text =
                        g_strdup_printf(_("Cannot connect to the bus: %s"), error->message);

                g_warning("%s", text);
                if (app->window != NULL)
                        itk_window_daemon_changed(app->window, FALSE);
                itk_app_toast(text);
                return;
        }
        bus_ready(bus);
}

static void
about_cb(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
        ItkApp *app = itk_app_get();
        static const char *developers[] = { "Ignition Toolkit contributors", NULL };

        adw_show_about_window(app->window, "application-name", _("Ignition Toolkit"),
                              "application-icon", APP_ID, "version", PACKAGE_VERSION,
                              "license-type", GTK_LICENSE_LGPL_2_1, "developers", developers, NULL);
}

static void
quit_cb(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
        g_application_quit(G_APPLICATION(itk_app_get()->gapp));
}

static void
page_cb(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
        ItkApp *app = itk_app_get();

        if (app->window != NULL)
                itk_window_show_page(app->window, g_variant_get_string(parameter, NULL));
}

static void
reload_cb(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
        ItkApp *app = itk_app_get();

        if (app->window != NULL)
                itk_window_reload(app->window);
}

static void
activate_cb(GApplication *gapp, gpointer user_data)
{
        ItkApp *app = itk_app_get();

        if (app->window == NULL) {
                app->window = itk_window_new(app->gapp);
                if (app->bus == NULL) {
                        if (app->bus_address != NULL)
                                g_dbus_connection_new_for_address(
                                        app->bus_address,
                                        G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                        NULL, app->cancellable, bus_cb, NULL);
                        else
                                g_bus_get(app->user_bus ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM,
                                          app->cancellable, bus_cb, NULL);
                }
        }
        gtk_window_present(app->window);
}

static void
startup_cb(GApplication *gapp, gpointer user_data)
{
        static const GActionEntry actions[] = {
                { "about", about_cb, NULL, NULL, NULL, { 0 } },
                { "quit", quit_cb, NULL, NULL, NULL, { 0 } },
                { "page", page_cb, "s", NULL, NULL, { 0 } },
                { "reload", reload_cb, NULL, NULL, NULL, { 0 } },
        };
        static const struct {
                const char *action;
                const char *accels[2];
        } accels[] = {
                { "app.quit", { "<Control>q", NULL } },
                { "app.reload", { "<Control>r", NULL } },
                { "app.page::playbooks", { "<Alt>1", NULL } },
                { "app.page::executions", { "<Alt>2", NULL } },
                { "app.page::history", { "<Alt>3", NULL } },
                { "app.page::credentials", { "<Alt>4", NULL } },
                { "win.search", { "<Control>f", NULL } },
                { "window.close", { "<Control>w", NULL } },
        };

        g_action_map_add_action_entries(G_ACTION_MAP(gapp), actions, G_N_ELEMENTS(actions), NULL);
        for (guint i = 0; i < G_N_ELEMENTS(accels); i++)
                gtk_application_set_accels_for_action(GTK_APPLICATION(gapp), accels[i].action,
                                                      accels[i].accels);
        /* Dark style follows the system's preference. */
        adw_style_manager_set_color_scheme(adw_style_manager_get_default(),
                                           ADW_COLOR_SCHEME_DEFAULT);
}

static int
local_options_cb(GApplication *gapp, GVariantDict *options, gpointer user_data)
{
        ItkApp *app = itk_app_get();

        if (g_variant_dict_contains(options, "version")) {
                g_print("%s %s\n", "ignition-toolkit-gtk", PACKAGE_VERSION);
                return 0;
        }
        g_variant_dict_lookup(options, "bus-address", "s", &app->bus_address);
        g_variant_dict_lookup(options, "user", "b", &app->user_bus);
        if (app->bus_address != NULL && app->user_bus) {
                g_printerr("%s\n", _("--bus-address and --user exclude each other"));
                return 2;
        }
        return -1;
}

int
itk_app_run(int argc, char **argv)
{
        ItkApp *app = itk_app_get();
        static const GOptionEntry options[] = {
                { "bus-address", 0, 0, G_OPTION_ARG_STRING, NULL,
                  N_("Connect to the daemon on this D-Bus address (development)"), N_("ADDRESS") },
                { "user", 0, 0, G_OPTION_ARG_NONE, NULL,
                  N_("Connect to the daemon on the session bus"), NULL },
                { "version", 0, 0, G_OPTION_ARG_NONE, NULL, N_("Print the version"), NULL },
                { NULL, 0, 0, 0, NULL, NULL, NULL },
        };
        int status;

        app->test_mode = g_strcmp0(g_getenv("ITK_GTK_TEST"), "1") == 0;
        app->cancellable = g_cancellable_new();
        app->run_views = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        /* Several windows of the app may follow different daemons (--bus-address):
         * each process stays its own. */
        app->gapp = adw_application_new(APP_ID, G_APPLICATION_NON_UNIQUE);
        g_application_add_main_option_entries(G_APPLICATION(app->gapp), options);
        g_signal_connect(app->gapp, "handle-local-options", G_CALLBACK(local_options_cb), NULL);
        g_signal_connect(app->gapp, "startup", G_CALLBACK(startup_cb), NULL);
        g_signal_connect(app->gapp, "activate", G_CALLBACK(activate_cb), NULL);
        status = g_application_run(G_APPLICATION(app->gapp), argc, argv);
        g_cancellable_cancel(app->cancellable);
        g_clear_object(&app->cancellable);
        g_clear_object(&app->gapp);
        g_clear_object(&app->bus);
        g_clear_pointer(&app->run_views, g_hash_table_unref);
        g_clear_pointer(&app->playbooks, g_variant_unref);
        g_clear_pointer(&app->credentials, g_variant_unref);
        g_clear_pointer(&app->owner, g_free);
        g_clear_pointer(&app->bus_address, g_free);
        return status;
}
