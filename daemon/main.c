/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ignition-toolkitd: options, configuration, the bus, sd_notify, the loop. */
#include <errno.h>
#include <glib-unix.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "itk-authority.h"
#include "itk-browser.h"
#include "itk-bus.h"
#include "itk-journal.h"
#include "itk-manager-dbus.h"
#include "itk-manager.h"
#include "itk-priority.h"
#include "itk-sandbox.h"
#include "itk-step.h"

/* Grace period for cancelled runs to end before the daemon exits anyway. */
#define SHUTDOWN_GRACE_MS 3000

typedef struct {
        GMainLoop *loop;
        ItkManager *manager;
        gboolean stopping;
        int exit_code;
} Daemon;

static gboolean
itk_daemon_quit_cb(gpointer user_data)
{
        Daemon *daemon = user_data;
        g_main_loop_quit(daemon->loop);
        return G_SOURCE_REMOVE;
}

static void
itk_daemon_active_changed_cb(ItkManager *manager, gpointer user_data)
{
        Daemon *daemon = user_data;
        guint active = itk_manager_get_active_count(manager);

        sd_notifyf(0, "STATUS=%u execution%s running", active, active == 1 ? "" : "s");
        if (daemon->stopping && active == 0)
                g_idle_add(itk_daemon_quit_cb, daemon);
}

static gboolean
itk_daemon_signal_cb(gpointer user_data)
{
        Daemon *daemon = user_data;

        if (daemon->stopping)
                return G_SOURCE_CONTINUE;
        daemon->stopping = TRUE;
        sd_notify(0, "STOPPING=1\nSTATUS=Stopping: cancelling active executions");
        g_message("stopping: cancelling active executions");
        itk_manager_cancel_all(daemon->manager);
        if (itk_manager_get_active_count(daemon->manager) == 0)
                g_idle_add(itk_daemon_quit_cb, daemon);
        else
                g_timeout_add(SHUTDOWN_GRACE_MS, itk_daemon_quit_cb, daemon);
        return G_SOURCE_CONTINUE;
}

static gboolean
itk_daemon_bus_lost_cb(gpointer user_data)
{
        Daemon *daemon = user_data;

        daemon->exit_code = EXIT_FAILURE;
        g_main_loop_quit(daemon->loop);
        return G_SOURCE_REMOVE;
}

static void
itk_daemon_sandbox_checked_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;

        if (itk_sandbox_check_finish(result, &error))
                g_message("scripts run confined by bubblewrap (%s)",
                          itk_sandbox_get_bwrap(itk_sandbox_get_default()));
        else
                g_warning("%s; script steps will fail", error->message);
}

static guint
itk_config_get_uint(GKeyFile *config, const char *key, guint fallback)
{
        g_autoptr(GError) error = NULL;
        gint64 value = g_key_file_get_int64(config, "Daemon", key, &error);

        if (error != NULL) {
                if (!g_error_matches(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND) &&
                    !g_error_matches(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND))
                        g_warning("toolkit.conf: %s=: %s; using %u", key, error->message, fallback);
                return fallback;
        }
        if (value < 0 || value > G_MAXUINT32) {
                g_warning("toolkit.conf: %s=%" G_GINT64_FORMAT " is out of range; using %u", key,
                          value, fallback);
                return fallback;
        }
        return (guint)value;
}

static int
itk_daemon_open_bus(gboolean user, const char *address, sd_bus **ret)
{
        sd_bus *bus = NULL;
        int r;

        if (address != NULL) {
                r = sd_bus_new(&bus);
                if (r < 0)
                        return r;
                r = sd_bus_set_address(bus, address);
                if (r >= 0)
                        r = sd_bus_set_bus_client(bus, 1);
                if (r >= 0)
                        r = sd_bus_start(bus);
                if (r < 0) {
                        sd_bus_unref(bus);
                        return r;
                }
        } else if (user) {
                r = sd_bus_open_user(&bus);
                if (r < 0)
                        return r;
        } else {
                r = sd_bus_open_system(&bus);
                if (r < 0)
                        return r;
        }
        *ret = bus;
        return 0;
}

int
main(int argc, char **argv)
{
        g_autoptr(GOptionContext) context = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GKeyFile) config = g_key_file_new();
        g_autoptr(ItkManager) manager = NULL;
        g_autoptr(GMainLoop) loop = NULL;
        g_autoptr(GPtrArray) playbook_dirs = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *config_file = NULL;
        g_autofree char *python = NULL;
        g_auto(GStrv) input_dirs = NULL;
        g_autofree char *browser_binary = NULL;
        g_autoptr(GError) browser_error = NULL;
        gint64 browser_idle;
        g_autofree char *group = NULL;
        g_autoptr(ItkAuthority) authority = NULL;
        g_auto(GStrv) playbook_path = NULL;
        g_autofree char *state_dir = NULL;
        g_autofree char *config_dir = NULL;
        g_autofree char *bus_address = NULL;
        gboolean user_bus = FALSE;
        gboolean version = FALSE;
        gint retention = -1;
        ItkManagerConfig manager_config = { 0 };
        Daemon daemon = { 0 };
        sd_bus *bus = NULL;
        GSource *bus_source;
        int r;
        const GOptionEntry entries[] = {
                { "user", 0, 0, G_OPTION_ARG_NONE, &user_bus, "Use the session bus", NULL },
                { "bus-address", 0, 0, G_OPTION_ARG_STRING, &bus_address,
                  "Connect to the bus at ADDRESS", "ADDRESS" },
                { "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir,
                  "History and run folders (default " ITK_STATE_DIR ")", "DIR" },
                { "config-dir", 0, 0, G_OPTION_ARG_FILENAME, &config_dir,
                  "toolkit.conf and playbooks/ (default " ITK_CONFIG_DIR ")", "DIR" },
                { "playbook-path", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &playbook_path,
                  "Playbook library folder, searched after CONFIG-DIR/playbooks; may repeat "
                  "(default " ITK_PLAYBOOK_DIR ")",
                  "DIR" },
                { "retention", 0, 0, G_OPTION_ARG_INT, &retention,
                  "Seconds a finished execution stays on the bus (overrides toolkit.conf)",
                  "SECONDS" },
                { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit",
                  NULL },
                { NULL },
        };

        setlocale(LC_ALL, "");
        context = g_option_context_new("- run Ignition Toolkit playbooks as a D-Bus service");
        g_option_context_add_main_entries(context, entries, NULL);
        if (!g_option_context_parse(context, &argc, &argv, &error)) {
                g_printerr("ignition-toolkitd: %s\n", error->message);
                return 2;
        }
        if (version) {
                g_print("ignition-toolkitd %s\n", PACKAGE_VERSION);
                return 0;
        }
        if (bus_address != NULL && user_bus) {
                g_printerr("ignition-toolkitd: --user and --bus-address exclude each other\n");
                return 2;
        }

        if (config_dir == NULL)
                config_dir = g_strdup(ITK_CONFIG_DIR);
        if (state_dir == NULL)
                state_dir = g_strdup(ITK_STATE_DIR);
        config_file = g_build_filename(config_dir, "toolkit.conf", NULL);
        if (!g_key_file_load_from_file(config, config_file, G_KEY_FILE_NONE, &error)) {
                if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
                        g_printerr("ignition-toolkitd: %s: %s\n", config_file, error->message);
                        return 1;
                }
                g_clear_error(&error);
        }

        g_ptr_array_add(playbook_dirs, g_build_filename(config_dir, "playbooks", NULL));
        if (playbook_path != NULL) {
                for (guint i = 0; playbook_path[i] != NULL; i++)
                        g_ptr_array_add(playbook_dirs, g_strdup(playbook_path[i]));
        } else {
                g_ptr_array_add(playbook_dirs, g_strdup(ITK_PLAYBOOK_DIR));
        }
        g_ptr_array_add(playbook_dirs, NULL);

        python = g_key_file_get_string(config, "Daemon", "Python", NULL);
        manager_config.state_dir = state_dir;
        manager_config.playbook_dirs = (const char *const *)playbook_dirs->pdata;
        manager_config.max_concurrent = itk_config_get_uint(config, "MaxConcurrentExecutions", 64);
        manager_config.max_per_caller = itk_config_get_uint(config, "MaxExecutionsPerCaller", 0);
        manager_config.retention_sec =
                retention >= 0 ? (guint)retention
                               : itk_config_get_uint(config, "RetentionSeconds", 600);
        manager_config.pending_timeout_sec =
                itk_config_get_uint(config, "PendingTimeoutSeconds", 300);
        manager_config.python = python;
        manager_config.history_max_age_days = itk_config_get_uint(config, "HistoryMaxAgeDays", 90);
        manager_config.history_max_runs = itk_config_get_uint(config, "HistoryMaxRuns", 10000);
        manager_config.history_prune_interval_sec =
                itk_config_get_uint(config, "HistoryPruneIntervalSeconds", 3600);
        {
                /* 2 GiB does not fit itk_config_get_uint's range. */
                g_autoptr(GError) bytes_error = NULL;
                gint64 bytes =
                        g_key_file_get_int64(config, "Daemon", "MaxInputFileBytes", &bytes_error);
                manager_config.input_max_bytes =
                        bytes_error == NULL && bytes > 0 ? (guint64)bytes : 0;
        }
        manager_config.input_expiry_sec =
                itk_config_get_uint(config, "InputFileExpirySeconds", 3600);
        input_dirs =
                g_key_file_get_string_list(config, "Daemon", "InputFileDirectories", NULL, NULL);
        manager_config.input_dirs = (const char *const *)input_dirs;
        manager_config.require_verified_nested =
                g_key_file_get_boolean(config, "Daemon", "RequireVerifiedNested", NULL);

        itk_sandbox_set_default(itk_sandbox_new_from_config(config, state_dir, &error));
        if (itk_sandbox_get_default() == NULL) {
                g_printerr("ignition-toolkitd: %s: %s\n", config_file, error->message);
                return 1;
        }

        /* [Browser]: Chromium starts on the first browser step. */
        browser_binary = g_key_file_get_string(config, "Browser", "Binary", NULL);
        browser_idle =
                g_key_file_get_int64(config, "Browser", "IdleTimeoutSeconds", &browser_error);
        itk_browser_configure(browser_binary, state_dir,
                              browser_error != NULL || browser_idle <= 0
                                      ? ITK_BROWSER_DEFAULT_IDLE_TIMEOUT
                                      : (guint)MIN(browser_idle, G_MAXUINT));

        itk_step_registry_ensure();
        manager = itk_manager_new(&manager_config, &error);
        if (manager == NULL) {
                g_printerr("ignition-toolkitd: %s\n", error->message);
                return 1;
        }

        r = itk_daemon_open_bus(user_bus, bus_address, &bus);
        if (r < 0) {
                g_printerr("ignition-toolkitd: cannot connect to the %s bus: %s\n",
                           bus_address != NULL ? "given"
                           : user_bus          ? "session"
                                               : "system",
                           g_strerror(-r));
                return 1;
        }
        group = g_key_file_get_string(config, "Authorization", "Group", NULL);
        authority = itk_authority_new(bus, group != NULL ? group : "ignition-toolkit");
        r = itk_manager_dbus_register(bus, manager, authority);
        if (r < 0) {
                g_printerr("ignition-toolkitd: cannot publish objects: %s\n", g_strerror(-r));
                sd_bus_unref(bus);
                return 1;
        }
        r = sd_bus_request_name(bus, ITK_BUS_NAME, 0);
        if (r < 0) {
                g_printerr("ignition-toolkitd: cannot own %s: %s\n", ITK_BUS_NAME,
                           r == -EEXIST ? "another daemon owns it" : g_strerror(-r));
                sd_bus_unref(bus);
                return 1;
        }

        /* The unit's Nice= favours this loop; what it starts must run at 0. */
        if (itk_priority_get_nice() < 0) {
                g_autoptr(GError) nice_error = NULL;

                if (itk_priority_check_children(&nice_error))
                        g_message("running at nice %d; the processes it starts run at nice 0",
                                  itk_priority_get_nice());
                else
                        g_warning("%s", nice_error->message);
        }

        loop = g_main_loop_new(NULL, FALSE);
        daemon.loop = loop;
        daemon.manager = manager;
        bus_source = itk_bus_attach(bus, itk_daemon_bus_lost_cb, &daemon);
        g_signal_connect(manager, "active-changed", G_CALLBACK(itk_daemon_active_changed_cb),
                         &daemon);
        itk_journal_attach(manager);
        g_unix_signal_add(SIGTERM, itk_daemon_signal_cb, &daemon);
        g_unix_signal_add(SIGINT, itk_daemon_signal_cb, &daemon);

        g_message("ignition-toolkitd %s ready on the %s bus (state %s)", PACKAGE_VERSION,
                  bus_address != NULL ? "given"
                  : user_bus          ? "session"
                                      : "system",
                  state_dir);
        if (!itk_sandbox_get_enabled(itk_sandbox_get_default()))
                g_warning("[Sandbox] Enabled=false: scripts run unconfined, as this daemon's "
                          "user, and can read its credentials and history");
        else
                itk_sandbox_check_async((ItkSandbox *)itk_sandbox_get_default(), NULL,
                                        itk_daemon_sandbox_checked_cb, NULL);
        sd_notify(0, "READY=1\nSTATUS=0 executions running");
        g_main_loop_run(loop);

        sd_bus_flush(bus);
        g_source_destroy(bus_source);
        g_source_unref(bus_source);
        g_signal_handlers_disconnect_by_data(manager, &daemon);
        g_clear_object(&manager);
        sd_bus_flush_close_unref(bus);
        itk_sandbox_set_default(NULL);
        return daemon.exit_code;
}
