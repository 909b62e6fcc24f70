/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A run's recorded files. Saving copies the daemon's read-only fd to the
 * chosen file with g_output_stream_splice_async; a preview reads an image
 * into memory the same way. Nothing waits on the main loop. */
#include "config.h"

#include <gio/gunixfdlist.h>
#include <gio/gunixinputstream.h>

#include "itk-artifacts-pane.h"
#include "itk-test-hook.h"

/* A preview reads the whole file into memory: screenshots are far smaller. */
#define PREVIEW_MAX_BYTES (64 * 1024 * 1024)

struct _ItkArtifactsPane {
        GtkWindow *window;
        char *path;        /* a run on the bus */
        char *id;          /* else a run from history; for a run on the bus once known */
        gboolean left_bus; /* the run's object is gone: ask the Manager by id */
        GtkWidget *root;
        GtkListBox *list;
        GtkLabel *message;
        GCancellable *cancellable;
        GVariant *artifacts; /* aa{sv} as listed */
        gboolean in_flight;
        gboolean again;
};

typedef enum { OP_SAVE, OP_PREVIEW } OpKind;

typedef struct {
        ItkArtifactsPane *pane;
        OpKind kind;
        char *name;
        GFile *file; /* OP_SAVE */
        GInputStream *source;
} ArtifactOp;

static void
artifact_op_free(ArtifactOp *op)
{
        g_free(op->name);
        g_clear_object(&op->file);
        g_clear_object(&op->source);
        g_free(op);
}

static const char *
lookup_string(GVariant *dict, const char *key)
{
        const char *value = NULL;

        return g_variant_lookup(dict, key, "&s", &value) ? value : "";
}

static GVariant *
find_artifact(ItkArtifactsPane *self, const char *name)
{
        GVariantIter iter;
        GVariant *entry;

        if (self->artifacts == NULL)
                return NULL;
        g_variant_iter_init(&iter, self->artifacts);
        while ((entry = g_variant_iter_next_value(&iter)) != NULL) {
                if (g_str_equal(lookup_string(entry, "name"), name))
                        return entry;
                g_variant_unref(entry);
        }
        return NULL;
}

static gboolean
use_history(ItkArtifactsPane *self)
{
        return self->path == NULL || self->left_bus;
}

/* The run left the bus (RetentionSeconds after its end): its files are
 * still there, through the Manager. Returns TRUE when a retry by id makes sense. */
static gboolean
run_left_bus(ItkArtifactsPane *self, const GError *error)
{
        g_autofree char *remote = NULL;

        if (use_history(self) || self->id == NULL || !g_dbus_error_is_remote_error(error))
                return FALSE;
        remote = g_dbus_error_get_remote_error(error);
        if (!g_str_equal(remote, "org.freedesktop.DBus.Error.UnknownObject") &&
            !g_str_equal(remote, "org.freedesktop.DBus.Error.UnknownMethod") &&
            !g_str_equal(remote, "org.ignition.Toolkit.Error.NoSuchExecution"))
                return FALSE;
        self->left_bus = TRUE;
        return TRUE;
}

static void
show_message(ItkArtifactsPane *self, const char *text)
{
        gtk_label_set_text(self->message, text);
        gtk_widget_set_visible(GTK_WIDGET(self->message), text[0] != '\0');
}

static void
op_failed(ArtifactOp *op, const char *what, GError *error)
{
        g_autofree char *reason = itk_app_describe_error(error);
        g_autofree char *text = g_strdup_printf("%s %s: %s", what, op->name, reason);

        show_message(op->pane, text);
        itk_test_hook_emit(op->kind == OP_SAVE ? "ArtifactSaved" : "ArtifactPreviewShown",
                           g_variant_new("(sss)", op->name, "", text));
        artifact_op_free(op);
}

static void
splice_saved_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        ArtifactOp *op = user_data;
        g_autofree char *where = NULL;
        g_autofree char *text = NULL;

        if (g_output_stream_splice_finish(G_OUTPUT_STREAM(source), result, &error) < 0) {
                if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
                        artifact_op_free(op);
                        return;
                }
                op_failed(op, _("Could not save"), error);
                return;
        }
        where = g_file_get_parse_name(op->file);
        text = g_strdup_printf(_("Saved %s to %s"), op->name, where);
        show_message(op->pane, text);
        itk_test_hook_emit("ArtifactSaved", g_variant_new("(sss)", op->name, where, ""));
        artifact_op_free(op);
}

static void
replace_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GFileOutputStream) out = g_file_replace_finish(G_FILE(source), result, &error);
        ArtifactOp *op = user_data;

        if (out == NULL) {
                if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
                        artifact_op_free(op);
                        return;
                }
                op_failed(op, _("Could not save"), error);
                return;
        }
        g_output_stream_splice_async(
                G_OUTPUT_STREAM(out), op->source,
                G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
                G_PRIORITY_DEFAULT, op->pane->cancellable, splice_saved_cb, op);
}

static void
preview_close_cb(GtkWidget *window, gpointer user_data)
{
        const char *name = g_object_get_data(G_OBJECT(window), "artifact");

        itk_test_hook_emit("ArtifactPreviewClosed", g_variant_new("(s)", name ? name : ""));
}

static void
decode_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
        GError *error = NULL;
        GdkTexture *texture = gdk_texture_new_from_bytes(task_data, &error);

        if (texture == NULL)
                g_task_return_error(task, error);
        else
                g_task_return_pointer(task, texture, g_object_unref);
}

static void
decoded_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GdkTexture) texture = g_task_propagate_pointer(G_TASK(result), &error);
        ArtifactOp *op = user_data;
        GtkWidget *window, *box, *header, *picture, *scroller;
        g_autofree char *size = NULL;

        if (texture == NULL) {
                if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
                        artifact_op_free(op);
                        return;
                }
                op_failed(op, _("Could not show"), error);
                return;
        }
        window = adw_window_new();
        gtk_widget_set_name(window, "artifact-preview");
        gtk_window_set_title(GTK_WINDOW(window), op->name);
        gtk_window_set_transient_for(GTK_WINDOW(window), op->pane->window);
        gtk_window_set_default_size(GTK_WINDOW(window),
                                    MIN(1000, gdk_texture_get_width(texture) + 24),
                                    MIN(760, gdk_texture_get_height(texture) + 72));
        box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
        header = adw_header_bar_new();
        adw_header_bar_set_title_widget(ADW_HEADER_BAR(header), adw_window_title_new(op->name, ""));
        picture = gtk_picture_new_for_paintable(GDK_PAINTABLE(texture));
        gtk_picture_set_can_shrink(GTK_PICTURE(picture), TRUE);
        gtk_accessible_update_property(GTK_ACCESSIBLE(picture), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                       op->name, -1);
        scroller = gtk_scrolled_window_new();
        gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scroller), picture);
        gtk_widget_set_vexpand(scroller, TRUE);
        gtk_box_append(GTK_BOX(box), header);
        gtk_box_append(GTK_BOX(box), scroller);
        adw_window_set_content(ADW_WINDOW(window), box);
        g_object_set_data_full(G_OBJECT(window), "artifact", g_strdup(op->name), g_free);
        g_signal_connect(window, "destroy", G_CALLBACK(preview_close_cb), NULL);
        gtk_window_present(GTK_WINDOW(window));
        size = g_strdup_printf("%dx%d", gdk_texture_get_width(texture),
                               gdk_texture_get_height(texture));
        itk_test_hook_emit("ArtifactPreviewShown", g_variant_new("(sss)", op->name, size, ""));
        artifact_op_free(op);
}

static void
splice_preview_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GTask) task = NULL;
        ArtifactOp *op = user_data;

        if (g_output_stream_splice_finish(G_OUTPUT_STREAM(source), result, &error) < 0) {
                if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
                        artifact_op_free(op);
                        return;
                }
                op_failed(op, _("Could not open"), error);
                return;
        }
        /* Decoding a page-sized image takes a while: off the main thread. */
        task = g_task_new(NULL, op->pane->cancellable, decoded_cb, op);
        g_task_set_task_data(task,
                             g_memory_output_stream_steal_as_bytes(G_MEMORY_OUTPUT_STREAM(source)),
                             (GDestroyNotify)g_bytes_unref);
        g_task_run_in_thread(task, decode_thread);
}

static void send_open(ArtifactOp *op);

static void
opened_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GUnixFDList) fds = NULL;
        g_autoptr(GVariant) reply = NULL;
        ArtifactOp *op = user_data;
        gint32 handle = -1;
        int fd;

        reply = g_dbus_connection_call_with_unix_fd_list_finish(G_DBUS_CONNECTION(source), &fds,
                                                                result, &error);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
                artifact_op_free(op);
                return;
        }
        if (reply == NULL && run_left_bus(op->pane, error)) {
                send_open(op);
                return;
        }
        if (reply == NULL) {
                op_failed(op, _("Could not open"), error);
                return;
        }
        g_variant_get(reply, "(h)", &handle);
        fd = fds != NULL ? g_unix_fd_list_get(fds, handle, &error) : -1;
        if (fd < 0) {
                g_autoptr(GError) none = g_error_new_literal(G_IO_ERROR, G_IO_ERROR_FAILED,
                                                             _("the daemon sent no file"));

                op_failed(op, _("Could not open"), error ? error : none);
                return;
        }
        op->source = g_unix_input_stream_new(fd, TRUE);
        if (op->kind == OP_SAVE) {
                g_file_replace_async(op->file, NULL, FALSE, G_FILE_CREATE_REPLACE_DESTINATION,
                                     G_PRIORITY_DEFAULT, op->pane->cancellable, replace_cb, op);
        } else {
                g_autoptr(GOutputStream) memory = g_memory_output_stream_new_resizable();

                g_output_stream_splice_async(
                        memory, op->source,
                        G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
                        G_PRIORITY_DEFAULT, op->pane->cancellable, splice_preview_cb, op);
        }
}

static void
send_open(ArtifactOp *op)
{
        ItkArtifactsPane *self = op->pane;
        ItkApp *app = itk_app_get();

        if (!use_history(self))
                g_dbus_connection_call_with_unix_fd_list(
                        app->bus, ITK_BUS_NAME, self->path, ITK_EXECUTION_INTERFACE, "OpenArtifact",
                        g_variant_new("(s)", op->name), G_VARIANT_TYPE("(h)"),
                        G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, -1, NULL,
                        self->cancellable, opened_cb, op);
        else
                g_dbus_connection_call_with_unix_fd_list(
                        app->bus, ITK_BUS_NAME, ITK_MANAGER_PATH, ITK_MANAGER_INTERFACE,
                        "OpenHistoryArtifact", g_variant_new("(ss)", self->id, op->name),
                        G_VARIANT_TYPE("(h)"), G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION,
                        -1, NULL, self->cancellable, opened_cb, op);
}

static void
start_op(ItkArtifactsPane *self, OpKind kind, const char *name, GFile *file)
{
        ArtifactOp *op = g_new0(ArtifactOp, 1);

        op->pane = self;
        op->kind = kind;
        op->name = g_strdup(name);
        op->file = file ? g_object_ref(file) : NULL;
        show_message(self, "");
        send_open(op);
}

static void
save_chosen_cb(GtkNativeDialog *chooser, int response, gpointer user_data)
{
        ItkArtifactsPane *self = user_data;
        const char *name = g_object_get_data(G_OBJECT(chooser), "artifact");
        GCancellable *alive = g_object_get_data(G_OBJECT(chooser), "alive");

        /* The run window may have closed while the chooser was open. */
        if (response == GTK_RESPONSE_ACCEPT && !g_cancellable_is_cancelled(alive)) {
                g_autoptr(GFile) file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(chooser));

                if (file != NULL)
                        start_op(self, OP_SAVE, name, file);
        }
        gtk_native_dialog_destroy(chooser);
        g_object_unref(chooser);
}

static void
save_clicked_cb(GtkButton *button, gpointer user_data)
{
        ItkArtifactsPane *self = user_data;
        const char *name = g_object_get_data(G_OBJECT(button), "artifact");
        g_autofree char *base = g_path_get_basename(name);
        GtkFileChooserNative *chooser =
                gtk_file_chooser_native_new(_("Save File"), self->window,
                                            GTK_FILE_CHOOSER_ACTION_SAVE, _("_Save"), _("_Cancel"));

        gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(chooser), TRUE);
        gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(chooser), base);
        g_object_set_data_full(G_OBJECT(chooser), "artifact", g_strdup(name), g_free);
        g_object_set_data_full(G_OBJECT(chooser), "alive", g_object_ref(self->cancellable),
                               g_object_unref);
        g_signal_connect(chooser, "response", G_CALLBACK(save_chosen_cb), self);
        gtk_native_dialog_show(GTK_NATIVE_DIALOG(chooser));
}

static void
preview_clicked_cb(GtkButton *button, gpointer user_data)
{
        start_op(user_data, OP_PREVIEW, g_object_get_data(G_OBJECT(button), "artifact"), NULL);
}

static gboolean
is_image(GVariant *artifact)
{
        guint64 size = 0;

        g_variant_lookup(artifact, "size", "t", &size);
        return g_str_has_prefix(lookup_string(artifact, "content-type"), "image/") &&
               size <= PREVIEW_MAX_BYTES;
}

static void
show_list(ItkArtifactsPane *self)
{
        GtkWidget *child;
        GVariantIter iter;
        GVariant *entry;
        guint n = 0;

        while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->list))) != NULL)
                gtk_list_box_remove(self->list, child);
        g_variant_iter_init(&iter, self->artifacts);
        while ((entry = g_variant_iter_next_value(&iter)) != NULL) {
                const char *name = lookup_string(entry, "name");
                const char *step = lookup_string(entry, "step");
                const char *type = lookup_string(entry, "content-type");
                guint64 size = 0;
                g_autofree char *size_text = NULL;
                g_autofree char *subtitle = NULL;
                GtkWidget *row = adw_action_row_new();
                GtkWidget *save = gtk_button_new_from_icon_name("document-save-symbolic");

                g_variant_lookup(entry, "size", "t", &size);
                size_text = g_format_size(size);
                subtitle = g_strdup_printf("%s · %s · %s", step[0] ? step : _("no step"), size_text,
                                           type[0] ? type : _("unknown type"));
                adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), name);
                adw_preferences_row_set_use_markup(ADW_PREFERENCES_ROW(row), FALSE);
                adw_action_row_set_subtitle(ADW_ACTION_ROW(row), subtitle);
                if (is_image(entry)) {
                        GtkWidget *view = gtk_button_new_from_icon_name("image-x-generic-symbolic");

                        gtk_widget_set_tooltip_text(view, _("Preview"));
                        gtk_accessible_update_property(GTK_ACCESSIBLE(view),
                                                       GTK_ACCESSIBLE_PROPERTY_LABEL, _("Preview"),
                                                       -1);
                        gtk_widget_set_valign(view, GTK_ALIGN_CENTER);
                        gtk_widget_add_css_class(view, "flat");
                        g_object_set_data_full(G_OBJECT(view), "artifact", g_strdup(name), g_free);
                        g_signal_connect(view, "clicked", G_CALLBACK(preview_clicked_cb), self);
                        adw_action_row_add_suffix(ADW_ACTION_ROW(row), view);
                }
                gtk_widget_set_tooltip_text(save, _("Save As…"));
                gtk_accessible_update_property(GTK_ACCESSIBLE(save), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                               _("Save As…"), -1);
                gtk_widget_set_valign(save, GTK_ALIGN_CENTER);
                gtk_widget_add_css_class(save, "flat");
                g_object_set_data_full(G_OBJECT(save), "artifact", g_strdup(name), g_free);
                g_signal_connect(save, "clicked", G_CALLBACK(save_clicked_cb), self);
                adw_action_row_add_suffix(ADW_ACTION_ROW(row), save);
                gtk_list_box_append(self->list, row);
                g_variant_unref(entry);
                n++;
        }
        gtk_widget_set_visible(GTK_WIDGET(self->list), n > 0);
        if (n == 0)
                show_message(self, _("This run has recorded no files."));
        else if (g_str_equal(gtk_label_get_text(self->message),
                             _("This run has recorded no files.")))
                show_message(self, "");
        itk_test_hook_emit("ArtifactsShown",
                           g_variant_new("(su)", self->path ? self->path : self->id, n));
}

static void
list_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        ItkArtifactsPane *self;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        self = user_data;
        self->in_flight = FALSE;
        if (reply == NULL && run_left_bus(self, error)) {
                itk_artifacts_pane_refresh(self);
                return;
        }
        if (reply == NULL) {
                g_autofree char *text = itk_app_describe_error(error);

                show_message(self, text);
        } else {
                g_clear_pointer(&self->artifacts, g_variant_unref);
                self->artifacts = g_variant_get_child_value(reply, 0);
                show_list(self);
        }
        if (self->again)
                itk_artifacts_pane_refresh(self);
}

void
itk_artifacts_pane_refresh(ItkArtifactsPane *self)
{
        ItkApp *app = itk_app_get();

        if (self->in_flight) {
                self->again = TRUE;
                return;
        }
        self->in_flight = TRUE;
        self->again = FALSE;
        if (!use_history(self))
                g_dbus_connection_call(app->bus, ITK_BUS_NAME, self->path, ITK_EXECUTION_INTERFACE,
                                       "ListArtifacts", NULL, G_VARIANT_TYPE("(aa{sv})"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, self->cancellable, list_cb,
                                       self);
        else
                g_dbus_connection_call(app->bus, ITK_BUS_NAME, ITK_MANAGER_PATH,
                                       ITK_MANAGER_INTERFACE, "ListHistoryArtifacts",
                                       g_variant_new("(s)", self->id), G_VARIANT_TYPE("(aa{sv})"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, self->cancellable, list_cb,
                                       self);
}

ItkArtifactsPane *
itk_artifacts_pane_new(GtkWindow *window, const char *path, const char *id)
{
        ItkArtifactsPane *self = g_new0(ItkArtifactsPane, 1);
        GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);

        self->window = window;
        self->path = g_strdup(path);
        self->id = g_strdup(id);
        self->cancellable = g_cancellable_new();
        self->root = g_object_ref_sink(gtk_scrolled_window_new());
        gtk_widget_set_name(self->root, "artifacts");
        gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(self->root), GTK_POLICY_NEVER,
                                       GTK_POLICY_AUTOMATIC);
        self->list = GTK_LIST_BOX(gtk_list_box_new());
        gtk_list_box_set_selection_mode(self->list, GTK_SELECTION_NONE);
        gtk_widget_add_css_class(GTK_WIDGET(self->list), "boxed-list");
        gtk_widget_set_visible(GTK_WIDGET(self->list), FALSE);
        self->message = GTK_LABEL(gtk_label_new(""));
        gtk_label_set_wrap(self->message, TRUE);
        gtk_label_set_xalign(self->message, 0);
        gtk_label_set_selectable(self->message, TRUE);
        gtk_widget_add_css_class(GTK_WIDGET(self->message), "dim-label");
        gtk_widget_set_visible(GTK_WIDGET(self->message), FALSE);
        gtk_widget_set_margin_start(box, 6);
        gtk_widget_set_margin_end(box, 12);
        gtk_widget_set_margin_top(box, 6);
        gtk_widget_set_margin_bottom(box, 6);
        gtk_box_append(GTK_BOX(box), GTK_WIDGET(self->list));
        gtk_box_append(GTK_BOX(box), GTK_WIDGET(self->message));
        gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(self->root), box);
        itk_artifacts_pane_refresh(self);
        return self;
}

void
itk_artifacts_pane_free(ItkArtifactsPane *self)
{
        if (self == NULL)
                return;
        g_cancellable_cancel(self->cancellable);
        g_clear_object(&self->cancellable);
        g_clear_pointer(&self->artifacts, g_variant_unref);
        g_object_unref(self->root);
        g_free(self->path);
        g_free(self->id);
        g_free(self);
}

void
itk_artifacts_pane_set_id(ItkArtifactsPane *self, const char *id)
{
        if (self->id == NULL)
                self->id = g_strdup(id);
}

GtkWidget *
itk_artifacts_pane_get_widget(ItkArtifactsPane *self)
{
        return self->root;
}

GVariant *
itk_artifacts_pane_describe(ItkArtifactsPane *self)
{
        GVariantBuilder b;
        GVariantIter iter;
        GVariant *entry;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a(ssts)"));
        if (self->artifacts != NULL) {
                g_variant_iter_init(&iter, self->artifacts);
                while ((entry = g_variant_iter_next_value(&iter)) != NULL) {
                        guint64 size = 0;

                        g_variant_lookup(entry, "size", "t", &size);
                        g_variant_builder_add(&b, "(ssts)", lookup_string(entry, "name"),
                                              lookup_string(entry, "step"), size,
                                              lookup_string(entry, "content-type"));
                        g_variant_unref(entry);
                }
        }
        return g_variant_builder_end(&b);
}

gboolean
itk_artifacts_pane_save(ItkArtifactsPane *self, const char *name, GFile *file)
{
        g_autoptr(GVariant) artifact = find_artifact(self, name);

        if (artifact == NULL)
                return FALSE;
        start_op(self, OP_SAVE, name, file);
        return TRUE;
}

gboolean
itk_artifacts_pane_preview(ItkArtifactsPane *self, const char *name)
{
        g_autoptr(GVariant) artifact = find_artifact(self, name);

        if (artifact == NULL || !is_image(artifact))
                return FALSE;
        start_op(self, OP_PREVIEW, name, NULL);
        return TRUE;
}
