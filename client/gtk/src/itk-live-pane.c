/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The live view pane: reads the daemon's live view socket asynchronously
 * (4-byte header length, 4-byte payload length, JSON header, JPEG), decodes
 * the newest frame in a worker thread and shows it in a GtkPicture. Frames
 * that arrive while one is decoding replace each other: a slow client shows
 * fewer frames, never old ones. */
#include "config.h"

#include <gio/gunixfdlist.h>
#include <gio/gunixinputstream.h>
#include <json-glib/json-glib.h>

#include "itk-live-pane.h"
#include "itk-test-hook.h"

#define LIVE_HEADER_MAX 4096
#define LIVE_READ_SIZE (64 * 1024)
/* A frame bigger than this is a broken stream, not a page. */
#define LIVE_PAYLOAD_MAX (32 * 1024 * 1024)

typedef struct {
        char *url;
        char *step;
        guint64 sequence;
        int width, height; /* CSS pixels of the page: SendInput's coordinates */
} FrameInfo;

struct _ItkLivePane {
        char *path;
        GtkWidget *root;
        GtkPicture *picture;
        GtkLabel *url_label;
        GtkLabel *step_label;
        GtkLabel *message_label;
        GtkWidget *paused_label;
        GCancellable *session; /* the open view's reads and decodes; NULL when closed */
        GInputStream *stream;
        GByteArray *buffer;
        gboolean opening;
        gboolean ended;
        gboolean paused;
        gboolean debug_mode; /* the daemon takes input while running in debug mode too */
        /* The frame being decoded, and the newest one waiting for it. */
        gboolean decoding;
        GBytes *pending_jpeg;
        FrameInfo pending;
        FrameInfo shown;
        guint frames;
        char *state;
        gulong map_id, unmap_id;
};

static void
frame_info_clear(FrameInfo *info)
{
        g_clear_pointer(&info->url, g_free);
        g_clear_pointer(&info->step, g_free);
        info->sequence = 0;
        info->width = info->height = 0;
}

static void
show_message(ItkLivePane *self, const char *state, const char *message)
{
        g_free(self->state);
        self->state = g_strdup(state);
        gtk_label_set_text(self->message_label, message);
        gtk_widget_set_visible(GTK_WIDGET(self->message_label), message[0] != '\0');
        /* Alone in the middle of an empty picture; under a frame, below it. */
        gtk_widget_set_valign(GTK_WIDGET(self->message_label),
                              self->frames > 0 ? GTK_ALIGN_END : GTK_ALIGN_CENTER);
        itk_test_hook_emit("LiveStatusShown", g_variant_new("(sss)", self->path, state, message));
}

static void
close_session(ItkLivePane *self)
{
        if (self->session != NULL)
                g_cancellable_cancel(self->session);
        g_clear_object(&self->session);
        /* A pending read holds the stream: its cancellation ends it and the
         * last reference closes the socket. */
        if (self->stream != NULL && !g_input_stream_has_pending(self->stream))
                g_input_stream_close(self->stream, NULL, NULL); /* a close(2), never blocks */
        g_clear_object(&self->stream);
        g_byte_array_set_size(self->buffer, 0);
        g_clear_pointer(&self->pending_jpeg, g_bytes_unref);
        frame_info_clear(&self->pending);
        self->decoding = FALSE;
        self->opening = FALSE;
}

static void
decode_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
        g_autoptr(GdkPixbufLoader) loader = gdk_pixbuf_loader_new_with_type("jpeg", NULL);
        GBytes *jpeg = task_data;
        GError *error = NULL;
        GdkPixbuf *pixbuf;

        if (loader == NULL) {
                g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                                        "no JPEG decoder (gdk-pixbuf's jpeg loader)");
                return;
        }
        if (!gdk_pixbuf_loader_write_bytes(loader, jpeg, &error)) {
                /* A loader is closed before it goes, or gdk-pixbuf warns. */
                gdk_pixbuf_loader_close(loader, NULL);
                g_task_return_error(task, error);
                return;
        }
        if (!gdk_pixbuf_loader_close(loader, &error)) {
                g_task_return_error(task, error);
                return;
        }
        pixbuf = gdk_pixbuf_loader_get_pixbuf(loader);
        if (pixbuf == NULL) {
                g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                        "the frame is not an image");
                return;
        }
        g_task_return_pointer(task, g_object_ref(pixbuf), g_object_unref);
}

static void start_decode(ItkLivePane *self);

static void
decode_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GdkPixbuf) pixbuf = g_task_propagate_pointer(G_TASK(result), &error);
        g_autoptr(GdkTexture) texture = NULL;
        ItkLivePane *self;

        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return; /* the view closed; self may be gone */
        self = user_data;
        self->decoding = FALSE;
        if (pixbuf == NULL) {
                g_autofree char *text =
                        g_strdup_printf(_("A frame could not be shown: %s"), error->message);

                show_message(self, "error", text);
        } else {
                g_autofree char *step = NULL;

                texture = gdk_texture_new_for_pixbuf(pixbuf);
                gtk_picture_set_paintable(self->picture, GDK_PAINTABLE(texture));
                self->frames++;
                gtk_label_set_text(self->url_label, self->shown.url);
                gtk_widget_set_tooltip_text(GTK_WIDGET(self->url_label), self->shown.url);
                step = self->shown.step[0] ? g_strdup_printf(_("Step: %s"), self->shown.step)
                                           : g_strdup(_("Between steps"));
                gtk_label_set_text(self->step_label, step);
                if (g_strcmp0(self->state, "closed") != 0)
                        show_message(self, "frame", "");
                itk_test_hook_emit("LiveFrameShown",
                                   g_variant_new("(ssst)", self->path, self->shown.url,
                                                 self->shown.step, self->shown.sequence));
        }
        if (self->pending_jpeg != NULL)
                start_decode(self);
}

/* Decodes the newest frame received, off the main thread. */
static void
start_decode(ItkLivePane *self)
{
        g_autoptr(GTask) task = NULL;

        if (self->decoding || self->pending_jpeg == NULL || self->session == NULL)
                return;
        self->decoding = TRUE;
        frame_info_clear(&self->shown);
        self->shown = self->pending;
        memset(&self->pending, 0, sizeof(self->pending));
        task = g_task_new(NULL, self->session, decode_cb, self);
        g_task_set_task_data(task, g_steal_pointer(&self->pending_jpeg),
                             (GDestroyNotify)g_bytes_unref);
        g_task_run_in_thread(task, decode_thread);
}

static gboolean
handle_message(ItkLivePane *self, const guint8 *header, gsize header_len, const guint8 *payload,
               gsize payload_len, GError **error)
{
        g_autoptr(JsonParser) parser = json_parser_new();
        JsonObject *object;
        const char *type;

        if (!json_parser_load_from_data(parser, (const char *)header, (gssize)header_len, error))
                return FALSE;
        if (!JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                            "a message header is not a JSON object");
                return FALSE;
        }
        object = json_node_get_object(json_parser_get_root(parser));
        type = json_object_get_string_member_with_default(object, "type", "");
        if (g_str_equal(type, "frame")) {
                frame_info_clear(&self->pending);
                g_clear_pointer(&self->pending_jpeg, g_bytes_unref);
                self->pending.url =
                        g_strdup(json_object_get_string_member_with_default(object, "url", ""));
                self->pending.step =
                        g_strdup(json_object_get_string_member_with_default(object, "step", ""));
                self->pending.sequence =
                        (guint64)json_object_get_int_member_with_default(object, "sequence", 0);
                self->pending.width =
                        (int)json_object_get_int_member_with_default(object, "width", 0);
                self->pending.height =
                        (int)json_object_get_int_member_with_default(object, "height", 0);
                self->pending_jpeg = g_bytes_new(payload, payload_len);
        } else if (g_str_equal(type, "status")) {
                const char *state = json_object_get_string_member_with_default(object, "state", "");
                const char *message =
                        json_object_get_string_member_with_default(object, "message", "");

                show_message(self, state, message);
        }
        /* Other types may come in later versions: skipped. */
        return TRUE;
}

static void read_more(ItkLivePane *self);

/* Messages follow each other unaligned in the buffer. */
static guint32
read_be32(const guint8 *p)
{
        return (guint32)p[0] << 24 | (guint32)p[1] << 16 | (guint32)p[2] << 8 | (guint32)p[3];
}

static void
read_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) bytes =
                g_input_stream_read_bytes_finish(G_INPUT_STREAM(source), result, &error);
        ItkLivePane *self;
        gsize used = 0;

        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        self = user_data;
        if (bytes == NULL || g_bytes_get_size(bytes) == 0) {
                /* EOF: the run ended (or the daemon left). The last frame stays. */
                if (error != NULL) {
                        g_autofree char *text =
                                g_strdup_printf(_("The live view stopped: %s"), error->message);

                        show_message(self, "error", text);
                } else if (g_strcmp0(self->state, "closed") != 0) {
                        show_message(self, "closed", _("The run ended."));
                }
                self->ended = TRUE;
                start_decode(self);
                /* Keep the session for the last decode; only the stream goes. */
                g_input_stream_close(self->stream, NULL, NULL);
                g_clear_object(&self->stream);
                return;
        }
        g_byte_array_append(self->buffer, g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
        while (self->buffer->len - used >= 8) {
                const guint8 *p = self->buffer->data + used;
                guint32 header_len = read_be32(p);
                guint32 payload_len = read_be32(p + 4);

                if (header_len > LIVE_HEADER_MAX || payload_len > LIVE_PAYLOAD_MAX) {
                        g_autofree char *text = g_strdup_printf(
                                _("The live view sent a malformed message (header of %u bytes)."),
                                header_len);

                        show_message(self, "error", text);
                        close_session(self);
                        return;
                }
                if (self->buffer->len - used < 8 + (gsize)header_len + payload_len)
                        break;
                if (!handle_message(self, p + 8, header_len, p + 8 + header_len, payload_len,
                                    &error)) {
                        g_autofree char *text = g_strdup_printf(
                                _("The live view sent a malformed message: %s"), error->message);

                        show_message(self, "error", text);
                        close_session(self);
                        return;
                }
                used += 8 + (gsize)header_len + payload_len;
        }
        g_byte_array_remove_range(self->buffer, 0, (guint)used);
        start_decode(self);
        read_more(self);
}

static void
read_more(ItkLivePane *self)
{
        g_input_stream_read_bytes_async(self->stream, LIVE_READ_SIZE, G_PRIORITY_DEFAULT,
                                        self->session, read_cb, self);
}

static void
open_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GUnixFDList) fds = NULL;
        g_autoptr(GVariant) reply = NULL;
        ItkLivePane *self;
        gint32 handle = -1;
        int fd;

        reply = g_dbus_connection_call_with_unix_fd_list_finish(G_DBUS_CONNECTION(source), &fds,
                                                                result, &error);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        self = user_data;
        self->opening = FALSE;
        if (reply == NULL) {
                g_autofree char *remote = g_dbus_error_get_remote_error(error);
                g_autofree char *text = NULL;

                if (remote != NULL &&
                    g_str_equal(remote, "org.ignition.Toolkit.Error.NotRunning")) {
                        self->ended = TRUE;
                        if (self->frames == 0)
                                show_message(self, "closed",
                                             _("The run ended: there is no page to watch."));
                        return;
                }
                text = itk_app_describe_error(error);
                show_message(self, "error", text);
                return;
        }
        g_variant_get(reply, "(h)", &handle);
        fd = fds != NULL ? g_unix_fd_list_get(fds, handle, &error) : -1;
        if (fd < 0) {
                show_message(self, "error", _("The daemon sent no live view socket."));
                return;
        }
        self->stream = g_unix_input_stream_new(fd, TRUE);
        read_more(self);
}

static void
open_view(ItkLivePane *self)
{
        if (self->ended || self->session != NULL)
                return;
        self->session = g_cancellable_new();
        self->opening = TRUE;
        g_dbus_connection_call_with_unix_fd_list(
                itk_app_get()->bus, ITK_BUS_NAME, self->path, ITK_EXECUTION_INTERFACE,
                "OpenLiveView", g_variant_new("(a{sv})", NULL), G_VARIANT_TYPE("(h)"),
                G_DBUS_CALL_FLAGS_NONE, -1, NULL, self->session, open_cb, self);
}

static void
map_cb(GtkWidget *widget, gpointer user_data)
{
        open_view(user_data);
}

static void
unmap_cb(GtkWidget *widget, gpointer user_data)
{
        /* Nobody watches: the daemon stops the screencast when the last reader closes. */
        close_session(user_data);
}

static void
input_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        ItkLivePane *self;
        g_autofree char *text = NULL;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        self = user_data;
        if (reply != NULL) {
                itk_test_hook_emit("LiveInputSent", g_variant_new("(ss)", self->path, ""));
                return;
        }
        g_dbus_error_strip_remote_error(error);
        text = g_strdup_printf(_("The click was not sent: %s"), error->message);
        show_message(self, "refused", text);
        itk_test_hook_emit("LiveInputSent", g_variant_new("(ss)", self->path, error->message));
}

/* The daemon takes input while the run is paused or in debug mode
 * (InvalidState otherwise): say so without a call. */
static gboolean
may_steer(ItkLivePane *self)
{
        if (self->paused || self->debug_mode)
                return TRUE;
        show_message(self, "refused",
                     _("The page takes clicks and keys only while the run is paused or in "
                       "debug mode."));
        itk_test_hook_emit("LiveInputSent", g_variant_new("(ss)", self->path, "not paused"));
        return FALSE;
}

static void
send_input(ItkLivePane *self, const char *kind, GVariant *event)
{
        g_dbus_connection_call(itk_app_get()->bus, ITK_BUS_NAME, self->path,
                               ITK_EXECUTION_INTERFACE, "SendInput",
                               g_variant_new("(s@a{sv})", kind, event), NULL,
                               G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, -1, self->session,
                               input_cb, self);
}

/* A click at widget coordinates, mapped onto the page's CSS pixels. The
 * picture keeps the frame's aspect ratio, centred. */
static gboolean
send_click(ItkLivePane *self, double x, double y)
{
        GdkPaintable *paintable = gtk_picture_get_paintable(self->picture);
        double w = gtk_widget_get_width(GTK_WIDGET(self->picture));
        double h = gtk_widget_get_height(GTK_WIDGET(self->picture));
        double pw, ph, scale, ox, oy, page_x, page_y;
        GVariantBuilder event;

        if (paintable == NULL || self->shown.width <= 0 || self->session == NULL || w <= 0 ||
            h <= 0)
                return FALSE;
        pw = gdk_paintable_get_intrinsic_width(paintable);
        ph = gdk_paintable_get_intrinsic_height(paintable);
        if (pw <= 0 || ph <= 0)
                return FALSE;
        scale = MIN(w / pw, h / ph);
        ox = (w - pw * scale) / 2;
        oy = (h - ph * scale) / 2;
        page_x = (x - ox) / (pw * scale) * self->shown.width;
        page_y = (y - oy) / (ph * scale) * self->shown.height;
        if (page_x < 0 || page_y < 0 || page_x > self->shown.width || page_y > self->shown.height)
                return FALSE; /* the margin beside the picture */
        if (!may_steer(self))
                return TRUE;
        g_variant_builder_init(&event, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&event, "{sv}", "x", g_variant_new_double(page_x));
        g_variant_builder_add(&event, "{sv}", "y", g_variant_new_double(page_y));
        g_variant_builder_add(&event, "{sv}", "button", g_variant_new_string("left"));
        send_input(self, "click", g_variant_builder_end(&event));
        return TRUE;
}

static const struct {
        guint keyval;
        const char *key;
} dom_keys[] = {
        { GDK_KEY_Return, "Enter" },   { GDK_KEY_KP_Enter, "Enter" },
        { GDK_KEY_Tab, "Tab" },        { GDK_KEY_BackSpace, "Backspace" },
        { GDK_KEY_Escape, "Escape" },  { GDK_KEY_Delete, "Delete" },
        { GDK_KEY_Left, "ArrowLeft" }, { GDK_KEY_Right, "ArrowRight" },
        { GDK_KEY_Up, "ArrowUp" },     { GDK_KEY_Down, "ArrowDown" },
        { GDK_KEY_Home, "Home" },      { GDK_KEY_End, "End" },
        { GDK_KEY_Page_Up, "PageUp" }, { GDK_KEY_Page_Down, "PageDown" },
};

/* A key typed on the focused picture: a DOM key name, or the character it
 * types. Shortcuts (Ctrl, Alt) stay the window's. */
static gboolean
send_key(ItkLivePane *self, guint keyval, GdkModifierType state)
{
        const char *key = NULL;
        char text[8] = { 0 };
        GVariantBuilder event;

        if (self->frames == 0 || self->session == NULL ||
            (state & (GDK_CONTROL_MASK | GDK_ALT_MASK | GDK_SUPER_MASK)) != 0)
                return FALSE;
        for (guint i = 0; i < G_N_ELEMENTS(dom_keys); i++)
                if (dom_keys[i].keyval == keyval)
                        key = dom_keys[i].key;
        if (key == NULL) {
                gunichar c = gdk_keyval_to_unicode(keyval);

                if (c == 0 || !g_unichar_isprint(c))
                        return FALSE;
                g_unichar_to_utf8(c, text);
                key = text;
        }
        if (!may_steer(self))
                return TRUE;
        g_variant_builder_init(&event, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&event, "{sv}", "key", g_variant_new_string(key));
        send_input(self, "key", g_variant_builder_end(&event));
        return TRUE;
}

static gboolean
key_pressed_cb(GtkEventControllerKey *controller, guint keyval, guint keycode,
               GdkModifierType state, gpointer user_data)
{
        return send_key(user_data, keyval, state);
}

static void
click_pressed_cb(GtkGestureClick *gesture, int n_press, double x, double y, gpointer user_data)
{
        ItkLivePane *self = user_data;

        /* Keys typed next go to the page. */
        gtk_widget_grab_focus(GTK_WIDGET(self->picture));
}

static void
click_released_cb(GtkGestureClick *gesture, int n_press, double x, double y, gpointer user_data)
{
        send_click(user_data, x, y);
}

ItkLivePane *
itk_live_pane_new(const char *path)
{
        ItkLivePane *self = g_new0(ItkLivePane, 1);
        GtkWidget *info = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
        GtkWidget *overlay = gtk_overlay_new();
        GtkWidget *frame = gtk_frame_new(NULL);
        GtkGesture *click = gtk_gesture_click_new();
        GtkEventController *keys;

        self->path = g_strdup(path);
        self->buffer = g_byte_array_new();
        self->state = g_strdup("");
        self->root = g_object_ref_sink(gtk_box_new(GTK_ORIENTATION_VERTICAL, 6));
        gtk_widget_set_name(self->root, "live-view");
        gtk_widget_set_margin_start(self->root, 6);
        gtk_widget_set_margin_end(self->root, 12);
        gtk_widget_set_margin_top(self->root, 6);
        gtk_widget_set_margin_bottom(self->root, 6);

        self->url_label = GTK_LABEL(gtk_label_new(""));
        gtk_label_set_ellipsize(self->url_label, PANGO_ELLIPSIZE_MIDDLE);
        gtk_label_set_xalign(self->url_label, 0);
        gtk_label_set_selectable(self->url_label, TRUE);
        gtk_widget_set_hexpand(GTK_WIDGET(self->url_label), TRUE);
        gtk_accessible_update_property(GTK_ACCESSIBLE(self->url_label),
                                       GTK_ACCESSIBLE_PROPERTY_LABEL, _("Page address"), -1);
        self->step_label = GTK_LABEL(gtk_label_new(""));
        gtk_widget_add_css_class(GTK_WIDGET(self->step_label), "dim-label");
        gtk_box_append(GTK_BOX(info), GTK_WIDGET(self->url_label));
        gtk_box_append(GTK_BOX(info), GTK_WIDGET(self->step_label));

        self->picture = GTK_PICTURE(gtk_picture_new());
        gtk_picture_set_can_shrink(self->picture, TRUE);
        gtk_picture_set_content_fit(self->picture, GTK_CONTENT_FIT_CONTAIN);
        gtk_widget_set_size_request(GTK_WIDGET(self->picture), 240, 160);
        gtk_widget_set_vexpand(GTK_WIDGET(self->picture), TRUE);
        gtk_widget_set_hexpand(GTK_WIDGET(self->picture), TRUE);
        gtk_accessible_update_property(GTK_ACCESSIBLE(self->picture), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                       _("The run's browser page"), -1);
        gtk_gesture_single_set_button(GTK_GESTURE_SINGLE(click), GDK_BUTTON_PRIMARY);
        g_signal_connect(click, "pressed", G_CALLBACK(click_pressed_cb), self);
        g_signal_connect(click, "released", G_CALLBACK(click_released_cb), self);
        gtk_widget_add_controller(GTK_WIDGET(self->picture), GTK_EVENT_CONTROLLER(click));
        keys = gtk_event_controller_key_new();
        g_signal_connect(keys, "key-pressed", G_CALLBACK(key_pressed_cb), self);
        gtk_widget_add_controller(GTK_WIDGET(self->picture), keys);
        gtk_widget_set_focusable(GTK_WIDGET(self->picture), TRUE);

        self->paused_label = gtk_label_new(_("Paused"));
        gtk_widget_add_css_class(self->paused_label, "osd");
        gtk_widget_add_css_class(self->paused_label, "heading");
        gtk_widget_set_halign(self->paused_label, GTK_ALIGN_START);
        gtk_widget_set_valign(self->paused_label, GTK_ALIGN_START);
        gtk_widget_set_margin_start(self->paused_label, 6);
        gtk_widget_set_margin_top(self->paused_label, 6);
        gtk_widget_set_visible(self->paused_label, FALSE);
        gtk_widget_set_tooltip_text(self->paused_label,
                                    _("The run is paused: clicks on the page reach it"));

        self->message_label = GTK_LABEL(gtk_label_new(""));
        gtk_label_set_wrap(self->message_label, TRUE);
        gtk_label_set_justify(self->message_label, GTK_JUSTIFY_CENTER);
        gtk_widget_add_css_class(GTK_WIDGET(self->message_label), "dim-label");
        gtk_widget_set_halign(GTK_WIDGET(self->message_label), GTK_ALIGN_CENTER);
        gtk_widget_set_valign(GTK_WIDGET(self->message_label), GTK_ALIGN_END);
        gtk_widget_set_margin_bottom(GTK_WIDGET(self->message_label), 12);
        gtk_widget_set_visible(GTK_WIDGET(self->message_label), FALSE);

        gtk_overlay_set_child(GTK_OVERLAY(overlay), GTK_WIDGET(self->picture));
        gtk_overlay_add_overlay(GTK_OVERLAY(overlay), self->paused_label);
        gtk_overlay_add_overlay(GTK_OVERLAY(overlay), GTK_WIDGET(self->message_label));
        gtk_frame_set_child(GTK_FRAME(frame), overlay);
        gtk_widget_set_vexpand(frame, TRUE);

        gtk_box_append(GTK_BOX(self->root), info);
        gtk_box_append(GTK_BOX(self->root), frame);
        self->map_id = g_signal_connect(self->root, "map", G_CALLBACK(map_cb), self);
        self->unmap_id = g_signal_connect(self->root, "unmap", G_CALLBACK(unmap_cb), self);
        return self;
}

void
itk_live_pane_free(ItkLivePane *self)
{
        if (self == NULL)
                return;
        g_signal_handler_disconnect(self->root, self->map_id);
        g_signal_handler_disconnect(self->root, self->unmap_id);
        close_session(self);
        frame_info_clear(&self->shown);
        g_byte_array_unref(self->buffer);
        g_object_unref(self->root);
        g_free(self->state);
        g_free(self->path);
        g_free(self);
}

GtkWidget *
itk_live_pane_get_widget(ItkLivePane *self)
{
        return self->root;
}

void
itk_live_pane_set_paused(ItkLivePane *self, gboolean paused)
{
        self->paused = paused;
        gtk_widget_set_visible(self->paused_label, paused);
        /* A refusal said before the change no longer holds. */
        if (g_strcmp0(self->state, "refused") == 0)
                show_message(self, "frame", "");
}

void
itk_live_pane_set_debug_mode(ItkLivePane *self, gboolean debug_mode)
{
        self->debug_mode = debug_mode;
        if (debug_mode && g_strcmp0(self->state, "refused") == 0)
                show_message(self, "frame", "");
}

void
itk_live_pane_set_ended(ItkLivePane *self)
{
        self->ended = TRUE;
        gtk_widget_set_visible(self->paused_label, FALSE);
}

GVariant *
itk_live_pane_describe(ItkLivePane *self)
{
        GdkPaintable *paintable = gtk_picture_get_paintable(self->picture);
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "frames", g_variant_new_uint32(self->frames));
        g_variant_builder_add(&b, "{sv}", "sequence", g_variant_new_uint64(self->shown.sequence));
        g_variant_builder_add(&b, "{sv}", "url",
                              g_variant_new_string(gtk_label_get_text(self->url_label)));
        g_variant_builder_add(&b, "{sv}", "step",
                              g_variant_new_string(gtk_label_get_text(self->step_label)));
        g_variant_builder_add(&b, "{sv}", "state", g_variant_new_string(self->state));
        g_variant_builder_add(
                &b, "{sv}", "message",
                g_variant_new_string(gtk_widget_get_visible(GTK_WIDGET(self->message_label))
                                             ? gtk_label_get_text(self->message_label)
                                             : ""));
        g_variant_builder_add(&b, "{sv}", "paused",
                              g_variant_new_boolean(gtk_widget_get_visible(self->paused_label)));
        g_variant_builder_add(&b, "{sv}", "watching", g_variant_new_boolean(self->stream != NULL));
        g_variant_builder_add(
                &b, "{sv}", "width",
                g_variant_new_int32(paintable ? gdk_paintable_get_intrinsic_width(paintable) : 0));
        g_variant_builder_add(
                &b, "{sv}", "height",
                g_variant_new_int32(paintable ? gdk_paintable_get_intrinsic_height(paintable) : 0));
        return g_variant_builder_end(&b);
}

gboolean
itk_live_pane_click(ItkLivePane *self, double fx, double fy)
{
        return send_click(self, fx * gtk_widget_get_width(GTK_WIDGET(self->picture)),
                          fy * gtk_widget_get_height(GTK_WIDGET(self->picture)));
}

gboolean
itk_live_pane_key(ItkLivePane *self, guint keyval)
{
        return send_key(self, keyval, 0);
}
