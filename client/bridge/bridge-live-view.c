/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The live view through the bridge: WebSocket /ws/executions/ID/live relays
 * the daemon's Execution.OpenLiveView messages as binary WebSocket messages,
 * and POST /api/executions/ID/input forwards to Execution.SendInput.
 *
 * One OpenLiveView fd per watched run, shared by all its watchers: read
 * asynchronously, each daemon message is kept as one GBytes and sent to every
 * watcher of that run (nobody else). A watcher whose socket has not drained
 * keeps only the newest message waiting, so a slow client sees fewer frames,
 * never old ones, and never slows the others. The last watcher leaving closes
 * the fd, and with it the run's screencast if nobody else watches. */
#include "bridge.h"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <gio/gunixfdlist.h>
#include <gio/gunixinputstream.h>

#include "bridge-json.h"

/* What the daemon promises (docs/live-view.md); more is a broken stream. */
#define LIVE_MAX_HEADER 4096
#define LIVE_MAX_PAYLOAD (32 * 1024 * 1024)
#define LIVE_READ_CHUNK (256 * 1024)
/* Bytes the kernel may hold unsent for a watcher before frames wait: about
 * part of one 1080p JPEG. TCP_NOTSENT_LOWAT makes the socket writable again
 * once it drained below this. */
#define LIVE_MAX_UNSENT (128 * 1024)
/* Without TCP_NOTSENT_LOWAT (a Unix socket), a waiting frame is retried this often. */
#define LIVE_RETRY_MS 30

typedef struct _LiveRun LiveRun;

struct _BridgeLiveView {
        Bridge *bridge;
        GHashTable *runs; /* hex -> LiveRun */
};

typedef struct {
        LiveRun *run;
        SoupWebsocketConnection *conn;
        GSocket *socket;  /* for its send queue, or NULL */
        gboolean lowat;   /* TCP_NOTSENT_LOWAT is set: writable means drained */
        GBytes *waiting;  /* the newest message not yet sent */
        GSource *drained; /* waits for the socket to drain */
} LiveWatcher;

struct _LiveRun {
        BridgeLiveView *live;
        char *hex;
        GPtrArray *watchers; /* LiveWatcher */
        GCancellable *cancellable;
        GInputStream *input;
        GByteArray *buffer;  /* read, not yet a whole message */
        GBytes *last_frame;  /* for a watcher that comes later (a paused page) */
        GBytes *last_status; /* idem */
        gboolean ended;
};

static void watcher_try_send(LiveWatcher *w);
static void live_run_unref(LiveRun *run);
static LiveRun *live_run_ref(LiveRun *run);

/* --- watchers ------------------------------------------------------------------ */

static void
watcher_free(LiveWatcher *w)
{
        g_signal_handlers_disconnect_by_data(w->conn, w);
        if (w->drained != NULL) {
                g_source_destroy(w->drained);
                g_source_unref(w->drained);
        }
        if (soup_websocket_connection_get_state(w->conn) == SOUP_WEBSOCKET_STATE_OPEN)
                soup_websocket_connection_close(w->conn, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, NULL);
        g_object_unref(w->conn);
        g_clear_object(&w->socket);
        g_clear_pointer(&w->waiting, g_bytes_unref);
        live_run_unref(w->run);
        g_free(w);
}

/* Bytes written to the socket that the kernel has not sent yet, or -1. */
static int
unsent_bytes(LiveWatcher *w)
{
        int queued = 0;
        int fd;

        if (w->socket == NULL)
                return -1;
        fd = g_socket_get_fd(w->socket);
        if (ioctl(fd, w->lowat ? SIOCOUTQNSD : SIOCOUTQ, &queued) < 0)
                return -1;
        return queued;
}

static gboolean
drained_cb(gpointer user_data)
{
        LiveWatcher *w = user_data;

        g_source_unref(w->drained);
        w->drained = NULL;
        watcher_try_send(w);
        return G_SOURCE_REMOVE;
}

static void watcher_wait_drained(LiveWatcher *w, gboolean writable_lied);

static gboolean
socket_drained_cb(GSocket *socket, GIOCondition condition, gpointer user_data)
{
        LiveWatcher *w = user_data;

        if (unsent_bytes(w) < LIVE_MAX_UNSENT)
                return drained_cb(w);
        g_source_unref(w->drained);
        w->drained = NULL;
        watcher_wait_drained(w, TRUE);
        return G_SOURCE_REMOVE;
}

static void
watcher_wait_drained(LiveWatcher *w, gboolean writable_lied)
{
        if (w->drained != NULL)
                return;
        /* Writable with TCP_NOTSENT_LOWAT: fewer than LIVE_MAX_UNSENT bytes unsent.
         * Should it say so and be wrong (libsoup wrote first), a timer this once,
         * rather than a source that fires again at once. */
        if (w->lowat && !writable_lied) {
                w->drained = g_socket_create_source(w->socket, G_IO_OUT, NULL);
                g_source_set_callback(w->drained, G_SOURCE_FUNC(socket_drained_cb), w, NULL);
        } else {
                w->drained = g_timeout_source_new(LIVE_RETRY_MS);
                g_source_set_callback(w->drained, drained_cb, w, NULL);
        }
        g_source_attach(w->drained, NULL);
}

static void
watcher_try_send(LiveWatcher *w)
{
        gsize size;
        const void *data;
        int unsent;

        if (w->waiting == NULL ||
            soup_websocket_connection_get_state(w->conn) != SOUP_WEBSOCKET_STATE_OPEN)
                return;
        unsent = unsent_bytes(w);
        if (unsent >= LIVE_MAX_UNSENT) {
                watcher_wait_drained(w, FALSE);
                return;
        }
        data = g_bytes_get_data(w->waiting, &size);
        soup_websocket_connection_send_binary(w->conn, data, size);
        g_clear_pointer(&w->waiting, g_bytes_unref);
}

/* The newest message replaces one still waiting. */
static void
watcher_offer(LiveWatcher *w, GBytes *message)
{
        g_clear_pointer(&w->waiting, g_bytes_unref);
        w->waiting = g_bytes_ref(message);
        if (w->drained == NULL)
                watcher_try_send(w);
}

/* A text message of the bridge's own: {"type":"error"|"ended", ...}. */
static void
send_text(SoupWebsocketConnection *conn, const char *type, const char *error, const char *message)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) node = NULL;
        g_autofree char *text = NULL;

        if (soup_websocket_connection_get_state(conn) != SOUP_WEBSOCKET_STATE_OPEN)
                return;
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "type");
        json_builder_add_string_value(b, type);
        if (error != NULL) {
                json_builder_set_member_name(b, "error");
                json_builder_add_string_value(b, error);
        }
        json_builder_set_member_name(b, "message");
        json_builder_add_string_value(b, message);
        json_builder_end_object(b);
        node = json_builder_get_root(b);
        text = bridge_json_to_string(node);
        soup_websocket_connection_send_text(conn, text);
}

/* --- the run's fd ------------------------------------------------------------- */

static LiveRun *
live_run_ref(LiveRun *run)
{
        return g_rc_box_acquire(run);
}

static void
live_run_clear(LiveRun *run)
{
        g_free(run->hex);
        g_ptr_array_unref(run->watchers);
        g_object_unref(run->cancellable);
        g_clear_object(&run->input);
        g_byte_array_unref(run->buffer);
        g_clear_pointer(&run->last_frame, g_bytes_unref);
        g_clear_pointer(&run->last_status, g_bytes_unref);
}

static void
live_run_unref(LiveRun *run)
{
        g_rc_box_release_full(run, (GDestroyNotify)live_run_clear);
}

/* Leaves the table and closes every watcher with @code/@reason (the fd with
 * it). The watchers stay until their connection says it closed. */
static void
live_run_end(LiveRun *run, gushort code, const char *error, const char *reason)
{
        g_autoptr(GPtrArray) conns = g_ptr_array_new_with_free_func(g_object_unref);

        if (run->ended)
                return;
        run->ended = TRUE;
        g_cancellable_cancel(run->cancellable);
        /* A copy: "closed" may come from inside the close. */
        for (guint i = 0; i < run->watchers->len; i++)
                g_ptr_array_add(
                        conns,
                        g_object_ref(((LiveWatcher *)g_ptr_array_index(run->watchers, i))->conn));
        for (guint i = 0; i < conns->len; i++) {
                SoupWebsocketConnection *conn = g_ptr_array_index(conns, i);

                if (error != NULL)
                        send_text(conn, "error", error, reason);
                else
                        send_text(conn, "ended", NULL, reason);
                if (soup_websocket_connection_get_state(conn) == SOUP_WEBSOCKET_STATE_OPEN)
                        soup_websocket_connection_close(conn, code, reason);
        }
        g_hash_table_remove(run->live->runs, run->hex);
}

static void read_more(LiveRun *run);

#define NOT_RUNNING_MESSAGE "the run is not running (it ended, or there is no such run)"

/* No such object on the daemon: the run left the bus, or never was. */
static gboolean
is_gone(const GError *error)
{
        g_autofree char *remote = g_dbus_error_get_remote_error(error);

        return remote != NULL &&
               (g_str_equal(remote, "org.freedesktop.DBus.Error.UnknownObject") ||
                g_str_equal(remote, "org.freedesktop.DBus.Error.UnknownMethod") ||
                g_str_equal(remote, "org.freedesktop.DBus.Error.UnknownInterface"));
}

static guint32
be32(const guint8 *p)
{
        return ((guint32)p[0] << 24) | ((guint32)p[1] << 16) | ((guint32)p[2] << 8) | p[3];
}

/* Sends every whole message in the buffer; FALSE on a broken stream. */
static gboolean
take_messages(LiveRun *run)
{
        while (run->buffer->len >= 8) {
                guint32 header_len = be32(run->buffer->data);
                guint32 payload_len = be32(run->buffer->data + 4);
                gsize total;
                g_autoptr(GBytes) message = NULL;
                g_autoptr(GPtrArray) snapshot = NULL;

                if (header_len == 0 || header_len > LIVE_MAX_HEADER ||
                    payload_len > LIVE_MAX_PAYLOAD)
                        return FALSE;
                total = 8 + (gsize)header_len + payload_len;
                if (run->buffer->len < total)
                        return TRUE;
                message = g_bytes_new(run->buffer->data, total);
                g_byte_array_remove_range(run->buffer, 0, (guint)total);
                /* Frames carry a JPEG, status messages nothing. */
                if (payload_len > 0) {
                        g_clear_pointer(&run->last_frame, g_bytes_unref);
                        run->last_frame = g_bytes_ref(message);
                } else {
                        g_clear_pointer(&run->last_status, g_bytes_unref);
                        run->last_status = g_bytes_ref(message);
                }
                /* A copy: a send may close a watcher, which leaves the array. */
                snapshot = g_ptr_array_sized_new(run->watchers->len); /* frees nothing */
                for (guint i = 0; i < run->watchers->len; i++)
                        g_ptr_array_add(snapshot, g_ptr_array_index(run->watchers, i));
                for (guint i = 0; i < snapshot->len; i++)
                        watcher_offer(g_ptr_array_index(snapshot, i), message);
        }
        return TRUE;
}

static void
read_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
        LiveRun *run = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) bytes =
                g_input_stream_read_bytes_finish(G_INPUT_STREAM(source), res, &error);

        if (run->ended) {
                live_run_unref(run);
                return;
        }
        if (bytes == NULL) {
                g_printerr("live view of %s: %s\n", run->hex, error->message);
                live_run_end(run, SOUP_WEBSOCKET_CLOSE_SERVER_ERROR, "Failed",
                             "reading the live view failed");
        } else if (g_bytes_get_size(bytes) == 0) {
                live_run_end(run, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL, "the run ended");
        } else {
                g_byte_array_append(run->buffer, g_bytes_get_data(bytes, NULL),
                                    (guint)g_bytes_get_size(bytes));
                if (!take_messages(run))
                        live_run_end(run, SOUP_WEBSOCKET_CLOSE_SERVER_ERROR, "Failed",
                                     "the daemon's live view stream is malformed");
                else
                        read_more(run);
        }
        live_run_unref(run);
}

static void
read_more(LiveRun *run)
{
        g_input_stream_read_bytes_async(run->input, LIVE_READ_CHUNK, G_PRIORITY_DEFAULT,
                                        run->cancellable, read_cb, live_run_ref(run));
}

static void
open_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
        LiveRun *run = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GUnixFDList) fds = NULL;
        g_autoptr(GVariant) reply = g_dbus_connection_call_with_unix_fd_list_finish(
                G_DBUS_CONNECTION(source), &fds, res, &error);
        gint32 handle = -1;
        int fd;

        if (run->ended) {
                live_run_unref(run);
                return;
        }
        if (reply != NULL)
                g_variant_get(reply, "(h)", &handle);
        if (reply == NULL || fds == NULL || handle < 0 ||
            handle >= g_unix_fd_list_get_length(fds) ||
            (fd = g_unix_fd_list_get(fds, handle, &error)) < 0) {
                g_autofree char *name = NULL;

                if (error == NULL)
                        g_set_error_literal(&error, G_IO_ERROR, G_IO_ERROR_FAILED,
                                            "the daemon sent no live view descriptor");
                if (is_gone(error)) {
                        live_run_end(run, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, "NotRunning",
                                     NOT_RUNNING_MESSAGE);
                } else {
                        bridge_status_for_gerror(error, &name);
                        if (g_dbus_error_is_remote_error(error))
                                g_dbus_error_strip_remote_error(error);
                        live_run_end(run, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, name,
                                     error->message);
                }
                live_run_unref(run);
                return;
        }
        run->input = g_unix_input_stream_new(fd, TRUE);
        read_more(run);
        live_run_unref(run);
}

static LiveRun *
live_run_new(BridgeLiveView *live, const char *hex)
{
        LiveRun *run = g_rc_box_new0(LiveRun);
        g_autofree char *path = g_strconcat(ITK_EXECUTION_PATH_PREFIX, hex, NULL);

        run->live = live;
        run->hex = g_strdup(hex);
        run->watchers = g_ptr_array_new_with_free_func((GDestroyNotify)watcher_free);
        run->cancellable = g_cancellable_new();
        run->buffer = g_byte_array_new();
        /* Asked of the daemon even when the bridge's list lacks the run (a bridge
         * that may not view it): the daemon's answer is the one to relay. */
        g_dbus_connection_call_with_unix_fd_list(
                live->bridge->bus, ITK_BUS_NAME, path, ITK_EXECUTION_INTERFACE, "OpenLiveView",
                g_variant_new("(a{sv})", NULL), G_VARIANT_TYPE("(h)"), G_DBUS_CALL_FLAGS_NONE, -1,
                NULL, run->cancellable, open_done_cb, live_run_ref(run));
        return run;
}

/* --- WebSocket ---------------------------------------------------------------- */

static gboolean
free_watcher_idle_cb(gpointer user_data)
{
        watcher_free(user_data);
        return G_SOURCE_REMOVE;
}

static void
watcher_closed_cb(SoupWebsocketConnection *conn, gpointer user_data)
{
        LiveWatcher *w = user_data;
        LiveRun *run = w->run;
        guint index;

        g_signal_handlers_disconnect_by_data(conn, w);
        /* Freed from an idle: we may be inside a send to this very watcher. */
        if (g_ptr_array_find(run->watchers, w, &index)) {
                g_ptr_array_steal_index_fast(run->watchers, index);
                g_idle_add_full(G_PRIORITY_DEFAULT, free_watcher_idle_cb, w, NULL);
        }
        if (run->watchers->len == 0 && !run->ended) {
                run->ended = TRUE;
                g_cancellable_cancel(run->cancellable);
                g_hash_table_remove(run->live->runs, run->hex);
        }
}

static void
watch(BridgeLiveView *live, SoupWebsocketConnection *conn, GSocket *socket, const char *hex)
{
        LiveRun *run = g_hash_table_lookup(live->runs, hex);
        LiveWatcher *w;

        if (run == NULL) {
                run = live_run_new(live, hex);
                g_hash_table_insert(live->runs, run->hex, run);
        }
        w = g_new0(LiveWatcher, 1);
        w->run = live_run_ref(run);
        w->conn = g_object_ref(conn);
        if (socket != NULL && g_socket_get_family(socket) != G_SOCKET_FAMILY_UNIX) {
                w->socket = g_object_ref(socket);
                g_socket_set_option(socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
                w->lowat = g_socket_set_option(socket, IPPROTO_TCP, TCP_NOTSENT_LOWAT,
                                               LIVE_MAX_UNSENT, NULL);
        } else if (socket != NULL) {
                w->socket = g_object_ref(socket);
        }
        g_signal_connect(conn, "closed", G_CALLBACK(watcher_closed_cb), w);
        g_ptr_array_add(run->watchers, w);
        /* A paused page changes no more: the newest frame there is, at once. */
        if (run->last_status != NULL)
                watcher_offer(w, run->last_status);
        if (run->last_frame != NULL)
                watcher_offer(w, run->last_frame);
}

typedef struct {
        BridgeLiveView *live;
        char *hex;
} Upgrade;

static void
upgrade_free(gpointer data)
{
        Upgrade *up = data;

        g_free(up->hex);
        g_free(up);
}

static void
accept_cb(SoupWebsocketConnection *conn, GSocket *socket, gpointer data)
{
        Upgrade *up = data;

        watch(up->live, conn, socket, up->hex);
}

char *
bridge_live_view_match(const char *path)
{
        g_auto(GStrv) parts = NULL;

        if (!g_str_has_prefix(path, "/ws/executions/"))
                return NULL;
        parts = g_strsplit(path + strlen("/ws/executions/"), "/", -1);
        if (g_strv_length(parts) != 2 || !g_str_equal(parts[1], "live"))
                return NULL;
        return bridge_id_to_hex(parts[0]);
}

void
bridge_live_view_upgrade(BridgeLiveView *live, SoupServerMessage *msg, const char *hex)
{
        Upgrade *up = g_new0(Upgrade, 1);

        up->live = live;
        up->hex = g_strdup(hex);
        bridge_ws_accept_upgrade(live->bridge, msg, accept_cb, up, upgrade_free);
}

/* --- input -------------------------------------------------------------------- */

typedef struct {
        SoupServerMessage *msg;
        char *dashed;
} InputRequest;

static void
input_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
        InputRequest *req = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply =
                g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);

        if (reply == NULL && is_gone(error)) {
                bridge_reply_error(req->msg, SOUP_STATUS_CONFLICT, "NotRunning",
                                   NOT_RUNNING_MESSAGE);
        } else if (reply == NULL) {
                bridge_reply_gerror(req->msg, error);
        } else {
                g_autoptr(JsonBuilder) b = json_builder_new();
                g_autoptr(JsonNode) node = NULL;

                json_builder_begin_object(b);
                json_builder_set_member_name(b, "execution_id");
                json_builder_add_string_value(b, req->dashed);
                json_builder_end_object(b);
                node = json_builder_get_root(b);
                bridge_reply_json(req->msg, SOUP_STATUS_OK, node);
        }
        soup_server_message_unpause(req->msg);
        g_object_unref(req->msg);
        g_free(req->dashed);
        g_free(req);
}

/* {kind, x, y, button, dx, dy, key, text} -> (s kind, a{sv} event): numbers
 * as doubles, strings as strings; the daemon checks the rest. */
static GVariant *
input_args(JsonObject *body, char **out_problem)
{
        g_auto(GVariantBuilder) event = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
        g_autoptr(GList) members = json_object_get_members(body);
        const char *kind = NULL;

        for (GList *l = members; l != NULL; l = l->next) {
                const char *name = l->data;
                JsonNode *value = json_object_get_member(body, name);
                GType type = JSON_NODE_HOLDS_VALUE(value) ? json_node_get_value_type(value)
                                                          : G_TYPE_INVALID;

                if (g_str_equal(name, "kind")) {
                        if (type != G_TYPE_STRING) {
                                *out_problem = g_strdup("'kind' must be a string");
                                return NULL;
                        }
                        kind = json_node_get_string(value);
                } else if (type == G_TYPE_STRING) {
                        g_variant_builder_add(&event, "{sv}", name,
                                              g_variant_new_string(json_node_get_string(value)));
                } else if (type == G_TYPE_INT64 || type == G_TYPE_DOUBLE) {
                        g_variant_builder_add(&event, "{sv}", name,
                                              g_variant_new_double(json_node_get_double(value)));
                } else {
                        *out_problem = g_strdup_printf("'%s' must be a number or a string", name);
                        return NULL;
                }
        }
        if (kind == NULL) {
                *out_problem = g_strdup("'kind' is missing (click, scroll or key)");
                return NULL;
        }
        return g_variant_new("(sa{sv})", kind, &event);
}

void
bridge_live_view_input(Bridge *bridge, SoupServerMessage *msg, const char *hex)
{
        SoupMessageBody *body = soup_server_message_get_request_body(msg);
        g_autofree char *path = g_strconcat(ITK_EXECUTION_PATH_PREFIX, hex, NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = NULL;
        g_autofree char *problem = NULL;
        GVariant *args;
        InputRequest *req;

        node = bridge_json_parse(body->data, (gsize)body->length, &error);
        if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node)) {
                bridge_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "InvalidArgs",
                                   "the body must be a JSON object {kind, ...}");
                return;
        }
        args = input_args(json_node_get_object(node), &problem);
        if (args == NULL) {
                bridge_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "InvalidArgs", problem);
                return;
        }
        req = g_new0(InputRequest, 1);
        req->msg = g_object_ref(msg);
        req->dashed = bridge_hex_to_dashed(hex);
        soup_server_message_pause(msg);
        g_dbus_connection_call(bridge->bus, ITK_BUS_NAME, path, ITK_EXECUTION_INTERFACE,
                               "SendInput", args, G_VARIANT_TYPE("()"), G_DBUS_CALL_FLAGS_NONE, -1,
                               NULL, input_done_cb, req);
}

/* --- lifetime ----------------------------------------------------------------- */

/* The table's reference. */
static void
live_run_drop(gpointer data)
{
        live_run_unref(data);
}

BridgeLiveView *
bridge_live_view_new(Bridge *bridge)
{
        BridgeLiveView *live = g_new0(BridgeLiveView, 1);

        live->bridge = bridge;
        live->runs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, live_run_drop);
        return live;
}

void
bridge_live_view_free(BridgeLiveView *live)
{
        GHashTableIter iter;
        gpointer value;

        if (live == NULL)
                return;
        /* Shutting down: every watcher goes now (each holds its run). */
        g_hash_table_iter_init(&iter, live->runs);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                LiveRun *run = value;

                run->ended = TRUE;
                g_cancellable_cancel(run->cancellable);
                g_ptr_array_set_size(run->watchers, 0);
        }
        g_hash_table_unref(live->runs);
        g_free(live);
}
