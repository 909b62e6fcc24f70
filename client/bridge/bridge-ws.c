/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The WebSocket /ws/executions: a snapshot on connect, then the daemon's
 * execution signals fanned out to every client, each event serialized once
 * and each batch frame built once for all the clients it suits. Each client
 * has a cursor in the stream of events; the fan-out goes round the clients
 * a few at a time, so events that arrive during it reach the clients not
 * yet served in the same round. */
#include "bridge.h"

#include <netinet/in.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "bridge-json.h"

struct _BridgeWs {
        Bridge *bridge;
        GPtrArray *clients; /* WsClient */
        gulong handlers[2]; /* bridge->objects: added, removed */
        /* On bridge->watch: what the executions say. */
        gulong watch_handlers[5];
        GPtrArray *pending; /* WsEvent: not yet sent to every client, in the daemon's order */
        guint64 next_seq;   /* of the next event */
        guint flush_id;
        guint cursor; /* the next client the fan-out visits */
};

typedef struct {
        BridgeWs *ws;
        SoupWebsocketConnection *conn;
        GSocket *socket;     /* for its send queue */
        char *subscribed;    /* 32 hex digits, or NULL for every execution */
        guint64 next_seq;    /* the first event not sent to it (earlier ones are in
                              * its snapshot or were sent) */
        gint64 behind_since; /* monotonic usec it was first seen behind, or 0 */
        gint64 checked_at;   /* when its send queue was last looked at */
} WsClient;

/* One event, serialized once for every client. */
typedef struct {
        guint64 seq;
        char *hex;         /* the execution it is about */
        gboolean filtered; /* a step or log event: only for that execution's subscribers */
        char *text;
} WsEvent;

static void
ws_event_free(WsEvent *event)
{
        g_free(event->hex);
        g_free(event->text);
        g_free(event);
}

static void
ws_client_free(WsClient *client)
{
        g_signal_handlers_disconnect_by_data(client->conn, client);
        if (soup_websocket_connection_get_state(client->conn) == SOUP_WEBSOCKET_STATE_OPEN)
                soup_websocket_connection_close(client->conn, SOUP_WEBSOCKET_CLOSE_GOING_AWAY,
                                                NULL);
        g_object_unref(client->conn);
        g_clear_object(&client->socket);
        g_free(client->subscribed);
        g_free(client);
}

static void
send_to(WsClient *client, const char *text)
{
        if (soup_websocket_connection_get_state(client->conn) == SOUP_WEBSOCKET_STATE_OPEN)
                soup_websocket_connection_send_text(client->conn, text);
}

static gboolean
event_is_for(const WsEvent *event, const char *subscribed, guint64 first_seq)
{
        if (event->seq < first_seq)
                return FALSE;
        return !event->filtered || subscribed == NULL || g_str_equal(event->hex, subscribed);
}

/* What a client with this subscription is sent of the pending events: one
 * event as itself, several as one {"type":"batch","events":[...]} frame, none
 * as NULL. */
static char *
build_frame(GPtrArray *pending, const char *subscribed, guint64 first_seq)
{
        g_autoptr(GString) frame = NULL;
        const WsEvent *only = NULL;
        guint count = 0;

        for (guint i = 0; i < pending->len; i++) {
                const WsEvent *event = g_ptr_array_index(pending, i);

                if (!event_is_for(event, subscribed, first_seq))
                        continue;
                if (count++ == 0) {
                        only = event;
                        continue;
                }
                if (frame == NULL) {
                        frame = g_string_new("{\"type\":\"batch\",\"events\":[");
                        g_string_append(frame, only->text);
                }
                g_string_append_c(frame, ',');
                g_string_append(frame, event->text);
        }
        if (frame != NULL) {
                g_string_append(frame, "]}");
                return g_string_free(g_steal_pointer(&frame), FALSE);
        }
        return only != NULL ? g_strdup(only->text) : NULL;
}

/* A client that does not read (a frozen tab, a peer gone without a reset)
 * would make libsoup queue its frames without end once the kernel's buffer is
 * full. It counts as behind while the kernel holds 1 MiB for it, or half its
 * send buffer if that is smaller; behind at a flush and still behind at a
 * flush --ws-max-lag seconds later, it is closed. Its page reconnects and
 * gets a snapshot, so nothing it shows stays stale. The queue is looked at
 * at most twice a second per client, to keep two syscalls per client out of
 * every flush of a busy run. */
static gboolean
client_too_far_behind(WsClient *client, gint64 now)
{
        guint max_lag = client->ws->bridge->ws_max_lag_seconds;
        int queued = 0, sndbuf = 0;
        socklen_t len = sizeof(sndbuf);
        int fd;

        if (client->socket == NULL || now - client->checked_at < G_USEC_PER_SEC / 2)
                return FALSE;
        client->checked_at = now;
        fd = g_socket_get_fd(client->socket);
        if (ioctl(fd, SIOCOUTQ, &queued) < 0 ||
            getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) < 0 ||
            queued < MIN(sndbuf / 2, BRIDGE_WS_BEHIND_BYTES)) {
                client->behind_since = 0;
                return FALSE;
        }
        if (client->behind_since == 0)
                client->behind_since = now;
        return now - client->behind_since >= (gint64)max_lag * G_USEC_PER_SEC;
}

/* Clients written to per turn of the main loop. A fan-out to hundreds of
 * clients takes milliseconds; between these slices the daemon's signals are
 * dispatched, and the clients not yet reached get them in the same round
 * instead of waiting for a whole second one. */
#define WS_FLUSH_SLICE 64

static void
drop_events_sent_to_all(BridgeWs *ws)
{
        guint64 oldest = ws->next_seq;
        guint done = 0;

        for (guint i = 0; i < ws->clients->len; i++)
                oldest = MIN(oldest, ((WsClient *)g_ptr_array_index(ws->clients, i))->next_seq);
        while (done < ws->pending->len &&
               ((WsEvent *)g_ptr_array_index(ws->pending, done))->seq < oldest)
                done++;
        if (done > 0)
                g_ptr_array_remove_range(ws->pending, 0, done);
}

/* Sends each client visited what it has not had yet. A frame is built once
 * for all the clients at the same point with the same subscription: in a
 * burst, that is every client following all executions, and every client
 * subscribed to the same one. Runs until every client has every event. */
static gboolean
flush_cb(gpointer user_data)
{
        BridgeWs *ws = user_data;
        g_autoptr(GHashTable) frames =
                g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        gint64 now = g_get_monotonic_time();
        guint written = 0;

        for (guint visited = 0; visited < ws->clients->len && written < WS_FLUSH_SLICE; visited++) {
                WsClient *client;
                g_autofree char *key = NULL;
                const char *frame;

                if (ws->cursor >= ws->clients->len)
                        ws->cursor = 0;
                client = g_ptr_array_index(ws->clients, ws->cursor++);
                if (client->next_seq == ws->next_seq)
                        continue;
                if (soup_websocket_connection_get_state(client->conn) !=
                    SOUP_WEBSOCKET_STATE_OPEN) {
                        client->next_seq = ws->next_seq;
                        continue;
                }
                if (client_too_far_behind(client, now)) {
                        g_printerr("closing a WebSocket client more than %u s behind\n",
                                   ws->bridge->ws_max_lag_seconds);
                        client->next_seq = ws->next_seq;
                        soup_websocket_connection_close(client->conn,
                                                        SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION,
                                                        "too far behind; reconnect");
                        continue;
                }
                key = g_strdup_printf("%s/%" G_GUINT64_FORMAT, client->subscribed ?: "",
                                      client->next_seq);
                if (!g_hash_table_lookup_extended(frames, key, NULL, (gpointer *)&frame)) {
                        frame = build_frame(ws->pending, client->subscribed, client->next_seq);
                        g_hash_table_insert(frames, g_steal_pointer(&key), (char *)frame);
                }
                client->next_seq = ws->next_seq;
                if (frame != NULL) {
                        send_to(client, frame);
                        written++;
                }
        }
        drop_events_sent_to_all(ws);
        if (ws->pending->len > 0)
                return G_SOURCE_CONTINUE;
        ws->flush_id = 0;
        return G_SOURCE_REMOVE;
}

/* @hex: the execution the event is about; @filtered: step and log events go
 * only to clients subscribed to it (or to everything). */
static void
broadcast(BridgeWs *ws, const char *hex, gboolean filtered, JsonBuilder *b)
{
        g_autoptr(JsonNode) node = json_builder_get_root(b);
        WsEvent *event;

        if (ws->clients->len == 0)
                return;
        event = g_new0(WsEvent, 1);
        event->seq = ws->next_seq++;
        event->hex = g_strdup(hex);
        event->filtered = filtered;
        event->text = bridge_json_to_string(node);
        g_ptr_array_add(ws->pending, event);
        if (ws->flush_id == 0)
                ws->flush_id = g_idle_add_full(G_PRIORITY_DEFAULT, flush_cb, ws, NULL);
}

static const char *
hex_of_path(const char *path)
{
        const char *slash = strrchr(path, '/');

        return slash != NULL ? slash + 1 : path;
}

/* @execution may be NULL: the watch's events come before the object may be known. */
static JsonBuilder *
begin_event(const char *type, ItkClientDBusExecution *execution, const char *path)
{
        JsonBuilder *b = json_builder_new();
        const char *id = execution != NULL ? itk_client_dbus_execution_get_id(execution) : NULL;
        g_autofree char *dashed = NULL;

        if (id == NULL || id[0] == '\0')
                id = dashed = bridge_hex_to_dashed(hex_of_path(path));
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "type");
        json_builder_add_string_value(b, type);
        json_builder_set_member_name(b, "execution_id");
        json_builder_add_string_value(b, id);
        return b;
}

static void
add_string(JsonBuilder *b, const char *name, const char *value)
{
        json_builder_set_member_name(b, name);
        json_builder_add_string_value(b, value);
}

/* The daemon's execution signals, from the shared watch (client/common). */
static void
status_cb(ItkExecutionWatch *watch, const char *path, guint status, guint previous,
          gpointer user_data)
{
        BridgeWs *ws = user_data;
        g_autoptr(JsonBuilder) b = NULL;

        if (ws->clients->len == 0)
                return;
        b = begin_event("status", NULL, path);
        add_string(b, "status", itk_run_status_to_string(status));
        add_string(b, "previous", itk_run_status_to_string(previous));
        json_builder_end_object(b);
        broadcast(ws, hex_of_path(path), FALSE, b);
}

static void
step_cb(ItkExecutionWatch *watch, const char *path, gint index, const char *step_id,
        const char *status, const char *message, gpointer user_data)
{
        BridgeWs *ws = user_data;
        g_autoptr(JsonBuilder) b = NULL;

        if (ws->clients->len == 0)
                return;
        b = begin_event("step", NULL, path);
        json_builder_set_member_name(b, "index");
        json_builder_add_int_value(b, index);
        add_string(b, "step_id", step_id);
        add_string(b, "status", status);
        add_string(b, "message", message);
        json_builder_end_object(b);
        broadcast(ws, hex_of_path(path), TRUE, b);
}

static void
log_cb(ItkExecutionWatch *watch, const char *path, guint64 usec, guint priority,
       const char *step_id, const char *message, gpointer user_data)
{
        BridgeWs *ws = user_data;
        g_autoptr(JsonBuilder) b = NULL;

        if (ws->clients->len == 0)
                return;
        b = begin_event("log", NULL, path);
        json_builder_set_member_name(b, "usec");
        json_builder_add_int_value(b, (gint64)usec);
        json_builder_set_member_name(b, "priority");
        json_builder_add_int_value(b, priority);
        add_string(b, "step_id", step_id);
        add_string(b, "message", message);
        json_builder_end_object(b);
        broadcast(ws, hex_of_path(path), TRUE, b);
}

static void
finished_cb(ItkExecutionWatch *watch, const char *path, const char *status, const char *error,
            gpointer user_data)
{
        BridgeWs *ws = user_data;
        g_autoptr(JsonBuilder) b = NULL;

        if (ws->clients->len == 0)
                return;
        b = begin_event("finished", NULL, path);
        add_string(b, "status", status);
        add_string(b, "error", error);
        json_builder_end_object(b);
        broadcast(ws, hex_of_path(path), FALSE, b);
}

static void
properties_cb(ItkExecutionWatch *watch, const char *path, GVariant *changed, gpointer user_data)
{
        BridgeWs *ws = user_data;
        g_autoptr(JsonBuilder) b = NULL;
        GVariantIter iter;
        const char *name;
        GVariant *value;

        if (ws->clients->len == 0)
                return;
        b = begin_event("properties", NULL, path);
        json_builder_set_member_name(b, "changed");
        json_builder_begin_object(b);
        g_variant_iter_init(&iter, changed);
        while (g_variant_iter_next(&iter, "{&sv}", &name, &value)) {
                g_autofree char *key = bridge_json_property_key(name);

                json_builder_set_member_name(b, key);
                json_builder_add_value(b, bridge_json_from_variant(value));
                g_variant_unref(value);
        }
        json_builder_end_object(b);
        json_builder_end_object(b);
        broadcast(ws, hex_of_path(path), FALSE, b);
}

static void
object_added_cb(GDBusObjectManager *manager, GDBusObject *object, gpointer user_data)
{
        BridgeWs *ws = user_data;
        ItkClientDBusExecution *execution =
                itk_client_dbus_object_peek_execution(ITK_CLIENT_DBUS_OBJECT(object));
        const char *path = g_dbus_object_get_object_path(object);
        g_autoptr(JsonBuilder) b = NULL;

        if (execution == NULL || ws->clients->len == 0)
                return;
        b = begin_event("execution_new", execution, path);
        add_string(b, "playbook", itk_client_dbus_execution_get_playbook(execution) ?: "");
        json_builder_set_member_name(b, "execution");
        json_builder_add_value(b, bridge_execution_summary(execution));
        json_builder_end_object(b);
        broadcast(ws, hex_of_path(path), FALSE, b);
}

static void
object_removed_cb(GDBusObjectManager *manager, GDBusObject *object, gpointer user_data)
{
        BridgeWs *ws = user_data;
        ItkClientDBusExecution *execution =
                itk_client_dbus_object_peek_execution(ITK_CLIENT_DBUS_OBJECT(object));
        const char *path = g_dbus_object_get_object_path(object);
        g_autoptr(JsonBuilder) b = NULL;

        if (execution == NULL || ws->clients->len == 0)
                return;
        b = begin_event("execution_removed", execution, path);
        add_string(b, "status", itk_client_dbus_execution_get_status(execution) ?: "");
        json_builder_end_object(b);
        broadcast(ws, hex_of_path(path), FALSE, b);
}

static void
send_snapshot(WsClient *client)
{
        Bridge *bridge = client->ws->bridge;
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) node = NULL;
        g_autofree char *text = NULL;
        GList *objects = g_dbus_object_manager_get_objects(bridge->objects);

        json_builder_begin_object(b);
        add_string(b, "type", "snapshot");
        json_builder_set_member_name(b, "executions");
        json_builder_begin_array(b);
        for (GList *l = objects; l != NULL; l = l->next) {
                ItkClientDBusExecution *execution = itk_client_dbus_object_peek_execution(l->data);

                if (execution != NULL)
                        json_builder_add_value(b, bridge_execution_summary(execution));
        }
        json_builder_end_array(b);
        json_builder_end_object(b);
        g_list_free_full(objects, g_object_unref);
        node = json_builder_get_root(b);
        text = bridge_json_to_string(node);
        send_to(client, text);
}

static void
message_cb(SoupWebsocketConnection *conn, gint type, GBytes *message, gpointer user_data)
{
        WsClient *client = user_data;
        g_autoptr(JsonNode) node = NULL;
        JsonObject *object;
        JsonNode *id;
        gsize size;
        const char *data = g_bytes_get_data(message, &size);

        if (type != SOUP_WEBSOCKET_DATA_TEXT)
                return;
        node = bridge_json_parse(data, size, NULL);
        if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node))
                return;
        object = json_node_get_object(node);
        if (g_strcmp0(json_object_get_string_member_with_default(object, "type", ""),
                      "subscribe") != 0)
                return;
        id = json_object_get_member(object, "execution_id");
        g_clear_pointer(&client->subscribed, g_free);
        if (id != NULL && JSON_NODE_HOLDS_VALUE(id) &&
            json_node_get_value_type(id) == G_TYPE_STRING)
                client->subscribed = bridge_id_to_hex(json_node_get_string(id));
}

static gboolean
free_client_idle_cb(gpointer user_data)
{
        ws_client_free(user_data);
        return G_SOURCE_REMOVE;
}

static void
closed_cb(SoupWebsocketConnection *conn, gpointer user_data)
{
        WsClient *client = user_data;
        guint index;

        /* Freed from an idle: we may be inside a send to this very client. */
        if (g_ptr_array_find(client->ws->clients, client, &index)) {
                g_ptr_array_steal_index_fast(client->ws->clients, index);
                g_signal_handlers_disconnect_by_data(conn, client);
                g_idle_add_full(G_PRIORITY_DEFAULT, free_client_idle_cb, client, NULL);
        }
}

/* Events are small frames written one by one: without TCP_NODELAY, Nagle
 * holds each behind the peer's delayed ACK of the previous one. */
static void
set_nodelay(GSocket *socket)
{
        if (socket != NULL && g_socket_get_family(socket) != G_SOCKET_FAMILY_UNIX)
                g_socket_set_option(socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
}

static void
ws_accept(BridgeWs *ws, SoupWebsocketConnection *conn, GSocket *socket)
{
        WsClient *client = g_new0(WsClient, 1);

        set_nodelay(socket);

        client->ws = ws;
        client->conn = g_object_ref(conn);
        client->socket = socket != NULL ? g_object_ref(socket) : NULL;
        client->next_seq = ws->next_seq;
        g_signal_connect(conn, "message", G_CALLBACK(message_cb), client);
        g_signal_connect(conn, "closed", G_CALLBACK(closed_cb), client);
        g_ptr_array_add(ws->clients, client);
        send_snapshot(client);
}

static void
ws_accept_cb(SoupWebsocketConnection *conn, GSocket *socket, gpointer data)
{
        ws_accept(data, conn, socket);
}

/* The handshake has been checked by the caller. */
void
bridge_ws_upgrade(BridgeWs *ws, SoupServerMessage *msg)
{
        bridge_ws_accept_upgrade(ws->bridge, msg, ws_accept_cb, ws, NULL);
}

BridgeWs *
bridge_ws_new(Bridge *bridge)
{
        BridgeWs *ws = g_new0(BridgeWs, 1);

        ws->bridge = bridge;
        ws->clients = g_ptr_array_new_with_free_func((GDestroyNotify)ws_client_free);
        ws->pending = g_ptr_array_new_with_free_func((GDestroyNotify)ws_event_free);
        ws->watch_handlers[0] =
                g_signal_connect(bridge->watch, "status-changed", G_CALLBACK(status_cb), ws);
        ws->watch_handlers[1] =
                g_signal_connect(bridge->watch, "step-changed", G_CALLBACK(step_cb), ws);
        ws->watch_handlers[2] = g_signal_connect(bridge->watch, "log", G_CALLBACK(log_cb), ws);
        ws->watch_handlers[3] = g_signal_connect(bridge->watch, "properties-changed",
                                                 G_CALLBACK(properties_cb), ws);
        ws->watch_handlers[4] =
                g_signal_connect(bridge->watch, "finished", G_CALLBACK(finished_cb), ws);
        ws->handlers[0] =
                g_signal_connect(bridge->objects, "object-added", G_CALLBACK(object_added_cb), ws);
        ws->handlers[1] = g_signal_connect(bridge->objects, "object-removed",
                                           G_CALLBACK(object_removed_cb), ws);
        return ws;
}

void
bridge_ws_free(BridgeWs *ws)
{
        if (ws == NULL)
                return;
        for (gsize i = 0; i < G_N_ELEMENTS(ws->handlers); i++)
                g_signal_handler_disconnect(ws->bridge->objects, ws->handlers[i]);
        for (gsize i = 0; i < G_N_ELEMENTS(ws->watch_handlers); i++)
                g_signal_handler_disconnect(ws->bridge->watch, ws->watch_handlers[i]);
        g_clear_handle_id(&ws->flush_id, g_source_remove);
        g_ptr_array_unref(ws->clients);
        g_ptr_array_unref(ws->pending);
        g_free(ws);
}
