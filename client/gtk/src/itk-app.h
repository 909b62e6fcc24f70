/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <adwaita.h>
#include <glib/gi18n.h>

#include "itk-run-follower.h"

G_BEGIN_DECLS

/* The application's shared state: one connection to the daemon's bus, its
 * owner while it is present, and the open run windows. */
typedef struct {
        AdwApplication *gapp;
        char *bus_address; /* --bus-address; NULL for the system bus */
        gboolean user_bus;
        GDBusConnection *bus;
        char *owner; /* the daemon's unique name, NULL while it is absent */
        GCancellable *cancellable;
        GtkWindow *window;
        GHashTable *run_views; /* object path or id -> GtkWindow */
        GVariant *playbooks;   /* ListPlaybooks' aa{sv}, NULL until loaded */
        GVariant *credentials; /* ListCredentials' aa{sv} */
        gboolean test_mode;
} ItkApp;

ItkApp *itk_app_get(void);
int itk_app_run(int argc, char **argv);

/* A call to the Manager; @callback gets g_dbus_connection_call's result. */
void itk_app_call_manager(const char *method, GVariant *args, const char *reply_type,
                          GAsyncReadyCallback callback, gpointer user_data);
void itk_app_call_execution(const char *path, const char *method, GVariant *args,
                            const char *reply_type, GAsyncReadyCallback callback,
                            gpointer user_data);
/* A user-facing text for a failed call: names authorization problems plainly. */
char *itk_app_describe_error(const GError *error);
gboolean itk_app_error_is_denied(const GError *error);
void itk_app_toast(const char *text);

/* Called by the app when the daemon comes and goes, or the library changes. */
void itk_window_daemon_changed(GtkWindow *window, gboolean present);
void itk_window_reload(GtkWindow *window);
GtkWindow *itk_window_new(AdwApplication *app);
void itk_window_show_page(GtkWindow *window, const char *name);
/* For the test hook: the list rows shown (not filtered out), per page. */
guint itk_window_count_rows(GtkWindow *window, const char *page);
/* The credential dialog for @name ("" to add one); for the test hook. */
gboolean itk_window_edit_credential(GtkWindow *window, const char *name);
GtkWidget *itk_window_get_credential_dialog(void);
void itk_window_select_playbook(GtkWindow *window, const char *id);
void itk_window_search_playbooks(GtkWindow *window, const char *text);
/* Shows the History page filtered by @status ("" for any); FALSE if unknown. */
gboolean itk_window_filter_history(GtkWindow *window, const char *status);
/* "pages", or "absent" while the daemon is not on the bus. */
const char *itk_window_get_main_page(GtkWindow *window);

/* Playbook metadata from ListPlaybooks, or NULL. */
GVariant *itk_app_lookup_playbook(const char *id);
char *itk_format_duration(gint64 usec);
char *itk_format_time(gint64 usec);
const char *itk_status_label(const char *status);

G_END_DECLS
