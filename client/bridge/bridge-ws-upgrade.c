/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A WebSocket upgrade the bridge makes itself, as libsoup's own handler does,
 * but with the message-size-counting input (bridge-ws-input.c) under the
 * connection, so that a message over BRIDGE_MAX_WS_MESSAGE closes it (1009)
 * however it is split into frames. Shared by /ws/executions and the live view. */
#include "config.h"

#include "bridge.h"

typedef struct {
        Bridge *bridge;
        BridgeWsAcceptFunc accept;
        gpointer data;
        GDestroyNotify destroy;
} Upgrade;

static void
upgrade_free(gpointer data, GClosure *closure)
{
        Upgrade *up = data;

        (void)closure;
        if (up->destroy != NULL)
                up->destroy(up->data);
        g_free(up);
}

static gboolean
close_too_big_cb(gpointer user_data)
{
        SoupWebsocketConnection *conn = user_data;

        if (soup_websocket_connection_get_state(conn) == SOUP_WEBSOCKET_STATE_OPEN)
                soup_websocket_connection_close(conn, SOUP_WEBSOCKET_CLOSE_TOO_BIG,
                                                "message too big");
        return G_SOURCE_REMOVE;
}

/* The connection is made before it exists: its input stream tells the
 * connection that will read it. */
typedef struct {
        SoupWebsocketConnection *conn;
} TooBigTarget;

/* From inside libsoup's read: the close waits for the next turn of the loop. */
static void
too_big_cb(gpointer data)
{
        TooBigTarget *target = data;

        if (target->conn != NULL)
                g_idle_add_full(G_PRIORITY_HIGH, close_too_big_cb, g_object_ref(target->conn),
                                g_object_unref);
}

static void
wrote_informational_cb(SoupServerMessage *msg, gpointer user_data)
{
        Upgrade *up = user_data;
        g_autoptr(GSocket) socket = NULL;
        g_autoptr(GIOStream) stream = NULL;
        g_autoptr(GIOStream) wrapped = NULL;
        g_autoptr(SoupWebsocketConnection) conn = NULL;
        g_autoptr(GUri) uri = NULL;
        g_autofree char *origin = NULL;
        TooBigTarget *target;
        GSocket *found;

        if (soup_server_message_get_status(msg) != SOUP_STATUS_SWITCHING_PROTOCOLS)
                return;
        found = bridge_listener_socket_for(up->bridge->listener, msg);
        socket = found != NULL ? g_object_ref(found) : NULL;
        uri = g_uri_ref(soup_server_message_get_uri(msg));
        origin = g_strdup(soup_message_headers_get_one(soup_server_message_get_request_headers(msg),
                                                       "Origin"));
        stream = soup_server_message_steal_connection(msg);
        if (stream == NULL)
                return;
        target = g_new0(TooBigTarget, 1);
        wrapped = bridge_ws_input_wrap(stream, BRIDGE_MAX_WS_MESSAGE, too_big_cb, target);
        g_object_set_data_full(G_OBJECT(wrapped), "bridge-too-big", target, g_free);
        conn = soup_websocket_connection_new(wrapped, uri, SOUP_WEBSOCKET_CONNECTION_SERVER, origin,
                                             NULL, NULL);
        target->conn = conn; /* the connection owns the stream, and the stream the target */
        /* Per frame, in libsoup; per message, in BridgeWsInput under it. */
        soup_websocket_connection_set_max_incoming_payload_size(conn, BRIDGE_MAX_WS_MESSAGE + 1);
        soup_websocket_connection_set_keepalive_interval(conn, BRIDGE_WS_KEEPALIVE_SECONDS);
        up->accept(conn, socket, up->data);
}

void
bridge_ws_accept_upgrade(Bridge *bridge, SoupServerMessage *msg, BridgeWsAcceptFunc accept,
                         gpointer data, GDestroyNotify destroy)
{
        /* Offered "itk.v1" (with the token beside it) is echoed; nothing, nothing. */
        static const char *const protocols[] = { BRIDGE_WS_PROTOCOL, NULL };
        Upgrade *up;

        if (!soup_websocket_server_process_handshake(msg, NULL, (char **)protocols, NULL, NULL)) {
                if (destroy != NULL)
                        destroy(data);
                return;
        }
        up = g_new0(Upgrade, 1);
        up->bridge = bridge;
        up->accept = accept;
        up->data = data;
        up->destroy = destroy;
        g_signal_connect_data(msg, "wrote-informational", G_CALLBACK(wrote_informational_cb), up,
                              upgrade_free, 0);
}
