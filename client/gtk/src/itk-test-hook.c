/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The test hook (ITK_GTK_TEST=1 only): org.ignition.Toolkit.GtkTest on the
 * daemon's bus. Its methods act on the widgets as a user's click would
 * (gtk_widget_activate on the real buttons) and report what the widgets
 * show; its signals say when the window shows something new, so tests wait
 * on events instead of sleeping. */
#include "config.h"

#include "itk-run-dialog.h"
#include "itk-run-view.h"
#include "itk-test-hook.h"

#define HOOK_NAME "org.ignition.Toolkit.GtkTest"
#define HOOK_PATH "/org/ignition/Toolkit/GtkTest"

static const char hook_xml[] =
        "<node><interface name='org.ignition.Toolkit.GtkTest'>"
        "<method name='OpenRunDialog'><arg type='s' direction='in'/></method>"
        "<method name='SetDialogParameter'><arg type='s' direction='in'/>"
        "<arg type='s' direction='in'/></method>"
        "<method name='StartFromDialog'/>"
        "<method name='OpenRun'><arg type='s' direction='in'/></method>"
        "<method name='OpenRecord'><arg type='s' direction='in'/></method>"
        "<method name='DescribeRun'><arg type='s' direction='in'/>"
        "<arg type='a{sv}' direction='out'/></method>"
        "<method name='Press'><arg type='s' direction='in'/><arg type='s' direction='in'/></method>"
        "<method name='CountRows'><arg type='s' direction='in'/>"
        "<arg type='u' direction='out'/></method>"
        "<method name='EditCredential'><arg type='s' direction='in'/></method>"
        "<method name='CredentialDialogFields'><arg type='a{ss}' direction='out'/></method>"
        "<method name='SetCredentialField'><arg type='s' direction='in'/>"
        "<arg type='s' direction='in'/></method>"
        "<method name='SaveCredential'/>"
        "<method name='FilterHistory'><arg type='s' direction='in'/></method>"
        "<method name='SearchPlaybooks'><arg type='s' direction='in'/></method>"
        "<method name='SelectPlaybook'><arg type='s' direction='in'/></method>"
        "<method name='MainPage'><arg type='s' direction='out'/></method>"
        "<method name='ShowPage'><arg type='s' direction='in'/></method>"
        "<method name='Screenshot'><arg type='s' direction='in'/><arg type='s' direction='in'/>"
        "</method>"
        "<method name='CloseRun'><arg type='s' direction='in'/></method>"
        "<method name='ShowRunPane'><arg type='s' direction='in'/><arg type='s' direction='in'/>"
        "</method>"
        "<method name='LiveClick'><arg type='s' direction='in'/><arg type='d' direction='in'/>"
        "<arg type='d' direction='in'/></method>"
        "<method name='LiveKey'><arg type='s' direction='in'/><arg type='s' direction='in'/>"
        "</method>"
        "<method name='SaveArtifact'><arg type='s' direction='in'/><arg type='s' direction='in'/>"
        "<arg type='s' direction='in'/></method>"
        "<method name='PreviewArtifact'><arg type='s' direction='in'/>"
        "<arg type='s' direction='in'/></method>"
        "<signal name='LiveStatusShown'><arg type='s'/><arg type='s'/><arg type='s'/></signal>"
        "<signal name='LiveFrameShown'><arg type='s'/><arg type='s'/><arg type='s'/>"
        "<arg type='t'/></signal>"
        "<signal name='LiveInputSent'><arg type='s'/><arg type='s'/></signal>"
        "<signal name='ArtifactsShown'><arg type='s'/><arg type='u'/></signal>"
        "<signal name='ArtifactSaved'><arg type='s'/><arg type='s'/><arg type='s'/></signal>"
        "<signal name='ArtifactPreviewShown'><arg type='s'/><arg type='s'/><arg type='s'/>"
        "</signal>"
        "<signal name='ArtifactPreviewClosed'><arg type='s'/></signal>"
        "<signal name='DurationTicked'><arg type='s'/><arg type='s'/></signal>"
        "<signal name='FirstFrame'><arg type='x'/></signal>"
        "<signal name='PlaybooksLoaded'><arg type='u'/></signal>"
        "<signal name='ExecutionsShown'><arg type='u'/></signal>"
        "<signal name='HistoryShown'><arg type='u'/></signal>"
        "<signal name='DaemonPresent'><arg type='b'/></signal>"
        "<signal name='CredentialsShown'><arg type='u'/></signal>"
        "<signal name='PageMessage'><arg type='s'/><arg type='s'/><arg type='s'/></signal>"
        "<signal name='DialogError'><arg type='s'/></signal>"
        "<signal name='RunViewOpened'><arg type='s'/></signal>"
        "<signal name='RunViewUpdated'><arg type='s'/><arg type='s'/></signal>"
        "<signal name='StatusShown'><arg type='s'/><arg type='s'/><arg type='x'/></signal>"
        "<signal name='StatusPainted'><arg type='s'/><arg type='s'/><arg type='x'/></signal>"
        "</interface></node>";

static GDBusConnection *hook_bus;

void
itk_test_hook_emit(const char *signal, GVariant *params)
{
        if (hook_bus == NULL) {
                g_variant_unref(g_variant_ref_sink(params));
                return;
        }
        g_dbus_connection_emit_signal(hook_bus, NULL, HOOK_PATH, HOOK_NAME, signal, params, NULL);
}

static void
first_frame_cb(GdkFrameClock *clock, gpointer user_data)
{
        g_signal_handlers_disconnect_by_func(clock, first_frame_cb, user_data);
        itk_test_hook_emit("FirstFrame", g_variant_new("(x)", g_get_real_time()));
}

static void
window_mapped_cb(GtkWidget *window, gpointer user_data)
{
        GdkFrameClock *clock = gtk_widget_get_frame_clock(window);

        if (clock != NULL)
                g_signal_connect(clock, "after-paint", G_CALLBACK(first_frame_cb), NULL);
}

void
itk_test_hook_window_shown(GtkWindow *window)
{
        if (itk_app_get()->test_mode)
                g_signal_connect(window, "map", G_CALLBACK(window_mapped_cb), NULL);
}

static GtkWindow *
find_view(const char *key)
{
        return g_hash_table_lookup(itk_app_get()->run_views, key);
}

static gboolean
save_png(GtkWidget *widget, const char *file, GError **error)
{
        int width = gtk_widget_get_width(widget), height = gtk_widget_get_height(widget);
        g_autoptr(GdkPaintable) paintable = gtk_widget_paintable_new(widget);
        GtkSnapshot *snapshot = gtk_snapshot_new();
        g_autoptr(GskRenderNode) node = NULL;
        g_autoptr(GdkTexture) texture = NULL;
        GskRenderer *renderer = gtk_native_get_renderer(gtk_widget_get_native(widget));

        gdk_paintable_snapshot(paintable, snapshot, width, height);
        node = gtk_snapshot_free_to_node(snapshot);
        if (node == NULL || renderer == NULL || width <= 0 || height <= 0) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "the window is not drawn yet");
                return FALSE;
        }
        texture = gsk_renderer_render_texture(renderer, node,
                                              &GRAPHENE_RECT_INIT(0, 0, width, height));
        if (!gdk_texture_save_to_png(texture, file)) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot write %s", file);
                return FALSE;
        }
        return TRUE;
}

typedef struct {
        GtkWidget *window;
        char *file;
        GDBusMethodInvocation *invocation;
        gulong handler;
} PendingShot;

/* After a paint the window's layout is done and its nodes are current. */
static void
shot_after_paint_cb(GdkFrameClock *clock, gpointer user_data)
{
        PendingShot *shot = user_data;
        g_autoptr(GError) error = NULL;

        g_signal_handler_disconnect(clock, shot->handler);
        if (save_png(shot->window, shot->file, &error))
                g_dbus_method_invocation_return_value(shot->invocation, NULL);
        else
                g_dbus_method_invocation_return_dbus_error(
                        shot->invocation, "org.ignition.Toolkit.GtkTest.Failed", error->message);
        g_object_unref(shot->window);
        g_free(shot->file);
        g_free(shot);
}

static void
method_cb(GDBusConnection *connection, const char *sender, const char *path, const char *interface,
          const char *method, GVariant *params, GDBusMethodInvocation *invocation,
          gpointer user_data)
{
        ItkApp *app = itk_app_get();
        const char *a = NULL, *b = NULL;

        if (g_variant_n_children(params) > 0)
                g_variant_get_child(params, 0, "&s", &a);
        if (g_variant_n_children(params) > 1) {
                g_autoptr(GVariant) second = g_variant_get_child_value(params, 1);

                /* LiveClick's second argument is a number. */
                if (g_variant_is_of_type(second, G_VARIANT_TYPE_STRING))
                        b = g_variant_get_string(second, NULL);
        }

        if (g_str_equal(method, "OpenRunDialog")) {
                g_autoptr(GVariant) pb = itk_app_lookup_playbook(a);

                if (pb == NULL || app->window == NULL) {
                        g_dbus_method_invocation_return_dbus_error(
                                invocation, "org.ignition.Toolkit.GtkTest.NotFound",
                                "no such playbook loaded");
                        return;
                }
                gtk_window_present(itk_run_dialog_new(app->window, pb));
        } else if (g_str_equal(method, "SetDialogParameter")) {
                GtkWindow *dialog = itk_run_dialog_get_current();

                if (dialog == NULL || !itk_run_dialog_set_value(dialog, a, b)) {
                        g_dbus_method_invocation_return_dbus_error(
                                invocation, "org.ignition.Toolkit.GtkTest.NotFound",
                                "no dialog or no such parameter");
                        return;
                }
        } else if (g_str_equal(method, "StartFromDialog")) {
                GtkWindow *dialog = itk_run_dialog_get_current();

                if (dialog == NULL) {
                        g_dbus_method_invocation_return_dbus_error(
                                invocation, "org.ignition.Toolkit.GtkTest.NotFound", "no dialog");
                        return;
                }
                itk_run_dialog_start(dialog);
        } else if (g_str_equal(method, "OpenRun")) {
                gtk_window_present(itk_run_view_open_live(a, NULL));
        } else if (g_str_equal(method, "OpenRecord")) {
                gtk_window_present(itk_run_view_open_record(a));
        } else if (g_str_equal(method, "DescribeRun") || g_str_equal(method, "Press")) {
                GtkWindow *view = find_view(a);

                if (view == NULL) {
                        g_dbus_method_invocation_return_dbus_error(
                                invocation, "org.ignition.Toolkit.GtkTest.NotFound",
                                "no run window for that path or id");
                        return;
                }
                if (g_str_equal(method, "DescribeRun")) {
                        g_dbus_method_invocation_return_value(
                                invocation,
                                g_variant_new_tuple((GVariant *[]){ itk_run_view_describe(view) },
                                                    1));
                        return;
                }
                if (!itk_run_view_press(view, b)) {
                        g_dbus_method_invocation_return_dbus_error(
                                invocation, "org.ignition.Toolkit.GtkTest.NotOffered",
                                "that control is not offered in this status");
                        return;
                }
        } else if (g_str_equal(method, "CloseRun")) {
                GtkWindow *view = find_view(a);

                if (view == NULL) {
                        g_dbus_method_invocation_return_dbus_error(
                                invocation, "org.ignition.Toolkit.GtkTest.NotFound",
                                "no run window for that path or id");
                        return;
                }
                gtk_window_destroy(view);
        } else if (g_str_equal(method, "LiveKey")) {
                GtkWindow *view = find_view(a);
                guint keyval = gdk_keyval_from_name(b);

                if (view == NULL || itk_run_view_get_live(view) == NULL ||
                    keyval == GDK_KEY_VoidSymbol ||
                    !itk_live_pane_key(itk_run_view_get_live(view), keyval)) {
                        g_dbus_method_invocation_return_dbus_error(
                                invocation, "org.ignition.Toolkit.GtkTest.NotFound",
                                "no live view shown, or a key the page is not given");
                        return;
                }
        } else if (g_str_equal(method, "ShowRunPane") || g_str_equal(method, "LiveClick") ||
                   g_str_equal(method, "SaveArtifact") || g_str_equal(method, "PreviewArtifact")) {
                GtkWindow *view = find_view(a);
                gboolean done = FALSE;

                if (view != NULL && g_str_equal(method, "ShowRunPane")) {
                        done = itk_run_view_show_pane(view, b);
                } else if (view != NULL && g_str_equal(method, "LiveClick")) {
                        double fx = 0, fy = 0;

                        g_variant_get(params, "(&sdd)", NULL, &fx, &fy);
                        done = itk_run_view_get_live(view) != NULL &&
                               itk_live_pane_click(itk_run_view_get_live(view), fx, fy);
                } else if (view != NULL && g_str_equal(method, "SaveArtifact")) {
                        const char *file = NULL;
                        g_autoptr(GFile) target = NULL;

                        g_variant_get_child(params, 2, "&s", &file);
                        target = g_file_new_for_path(file);
                        done = itk_artifacts_pane_save(itk_run_view_get_artifacts(view), b, target);
                } else if (view != NULL) {
                        done = itk_artifacts_pane_preview(itk_run_view_get_artifacts(view), b);
                }
                if (!done) {
                        g_dbus_method_invocation_return_dbus_error(
                                invocation, "org.ignition.Toolkit.GtkTest.NotFound",
                                "no such run window, pane, picture or artifact");
                        return;
                }
        } else if (g_str_equal(method, "CountRows")) {
                g_dbus_method_invocation_return_value(
                        invocation,
                        g_variant_new("(u)",
                                      app->window ? itk_window_count_rows(app->window, a) : 0));
                return;
        } else if (g_str_equal(method, "EditCredential")) {
                if (app->window == NULL || !itk_window_edit_credential(app->window, a)) {
                        g_dbus_method_invocation_return_dbus_error(
                                invocation, "org.ignition.Toolkit.GtkTest.NotFound",
                                "no such credential listed");
                        return;
                }
        } else if (g_str_equal(method, "CredentialDialogFields") ||
                   g_str_equal(method, "SetCredentialField") ||
                   g_str_equal(method, "SaveCredential")) {
                static const char *const keys[] = { "name",        "username", "gateway-url",
                                                    "description", "password", "api-token" };
                GtkWidget *dialog = itk_window_get_credential_dialog();
                GVariantBuilder fields;

                if (dialog == NULL) {
                        g_dbus_method_invocation_return_dbus_error(
                                invocation, "org.ignition.Toolkit.GtkTest.NotFound",
                                "no credential dialog");
                        return;
                }
                if (g_str_equal(method, "SaveCredential")) {
                        adw_message_dialog_response(ADW_MESSAGE_DIALOG(dialog), "save");
                } else if (g_str_equal(method, "SetCredentialField")) {
                        GtkEditable *entry = g_object_get_data(G_OBJECT(dialog), a);

                        if (entry == NULL) {
                                g_dbus_method_invocation_return_dbus_error(
                                        invocation, "org.ignition.Toolkit.GtkTest.NotFound",
                                        "no such field");
                                return;
                        }
                        gtk_editable_set_text(entry, b);
                } else {
                        g_variant_builder_init(&fields, G_VARIANT_TYPE("a{ss}"));
                        for (guint i = 0; i < G_N_ELEMENTS(keys); i++)
                                g_variant_builder_add(&fields, "{ss}", keys[i],
                                                      gtk_editable_get_text(g_object_get_data(
                                                              G_OBJECT(dialog), keys[i])));
                        g_dbus_method_invocation_return_value(invocation,
                                                              g_variant_new("(a{ss})", &fields));
                        return;
                }
        } else if (g_str_equal(method, "FilterHistory")) {
                if (app->window == NULL || !itk_window_filter_history(app->window, a)) {
                        g_dbus_method_invocation_return_dbus_error(
                                invocation, "org.ignition.Toolkit.GtkTest.NotFound",
                                "no such status filter");
                        return;
                }
        } else if (g_str_equal(method, "SearchPlaybooks")) {
                if (app->window != NULL)
                        itk_window_search_playbooks(app->window, a);
        } else if (g_str_equal(method, "SelectPlaybook")) {
                if (app->window != NULL)
                        itk_window_select_playbook(app->window, a);
        } else if (g_str_equal(method, "MainPage")) {
                g_dbus_method_invocation_return_value(
                        invocation,
                        g_variant_new("(s)",
                                      app->window ? itk_window_get_main_page(app->window) : ""));
                return;
        } else if (g_str_equal(method, "ShowPage")) {
                if (app->window != NULL)
                        itk_window_show_page(app->window, a);
        } else if (g_str_equal(method, "Screenshot")) {
                GtkWindow *window = g_str_equal(a, "main")     ? app->window
                                    : g_str_equal(a, "dialog") ? itk_run_dialog_get_current()
                                                               : find_view(a);
                GdkFrameClock *clock =
                        window != NULL ? gtk_widget_get_frame_clock(GTK_WIDGET(window)) : NULL;
                PendingShot *shot;

                if (clock == NULL) {
                        g_dbus_method_invocation_return_dbus_error(
                                invocation, "org.ignition.Toolkit.GtkTest.Failed",
                                "no such window, or it is not shown");
                        return;
                }
                shot = g_new0(PendingShot, 1);
                shot->window = g_object_ref(GTK_WIDGET(window));
                shot->file = g_strdup(b);
                shot->invocation = invocation;
                shot->handler = g_signal_connect(clock, "after-paint",
                                                 G_CALLBACK(shot_after_paint_cb), shot);
                gtk_widget_queue_draw(GTK_WIDGET(window));
                return;
        }
        g_dbus_method_invocation_return_value(invocation, NULL);
}

void
itk_test_hook_export(GDBusConnection *bus)
{
        static const GDBusInterfaceVTable vtable = { method_cb, NULL, NULL, { 0 } };
        g_autoptr(GDBusNodeInfo) node = g_dbus_node_info_new_for_xml(hook_xml, NULL);
        g_autoptr(GError) error = NULL;

        if (!g_dbus_connection_register_object(bus, HOOK_PATH, node->interfaces[0], &vtable, NULL,
                                               NULL, &error)) {
                g_warning("test hook: %s", error->message);
                return;
        }
        hook_bus = bus;
        /* The name last: a test that sees it can call every method. */
        g_bus_own_name_on_connection(bus, HOOK_NAME, G_BUS_NAME_OWNER_FLAGS_NONE, NULL, NULL, NULL,
                                     NULL);
}
