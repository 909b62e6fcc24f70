/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* BridgeListener: accepts the bridge's connections and hands them to libsoup.
 *
 * libsoup 3.2 stops watching a listening socket for good after one failed
 * accept(), so a bridge out of descriptors (EMFILE/ENFILE) would never
 * accept again. Here a failed accept pauses accepting on a timer and tries
 * again; the episode is logged once. Connections handed over as streams
 * lose their GSocket in libsoup, so the listener keeps a table from the
 * peer's address to the socket for the code that needs it (WebSocket send
 * queues, closing a connection). */
#include "bridge.h"

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>

struct _BridgeListener {
        SoupServer *server;
        GPtrArray *sockets; /* listening GSocket */
        GPtrArray *sources; /* the accept watch of each socket, NULL while paused */
        guint resume_id;
        gboolean starved;  /* accept failed; logged for this episode */
        GHashTable *conns; /* peer address text -> ListenerConn */
};

typedef struct {
        BridgeListener *listener;
        char *key;
        GSocket *socket;
        GObject *stream; /* weak: the entry goes with it */
        guint idle_id;   /* between two requests */
} ListenerConn;

static char *
address_key(GSocketAddress *address)
{
        g_autofree char *host = NULL;

        if (address == NULL || !G_IS_INET_SOCKET_ADDRESS(address))
                return NULL;
        host = g_inet_address_to_string(
                g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(address)));
        return g_strdup_printf("%s|%u", host,
                               g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(address)));
}

static void stream_gone_cb(gpointer user_data, GObject *where_the_object_was);

static void
conn_free(ListenerConn *conn)
{
        if (conn->stream != NULL)
                g_object_weak_unref(conn->stream, stream_gone_cb, conn);
        g_clear_handle_id(&conn->idle_id, g_source_remove);
        g_object_unref(conn->socket);
        g_free(conn->key);
        g_free(conn);
}

static void
stream_gone_cb(gpointer user_data, GObject *where_the_object_was)
{
        ListenerConn *conn = user_data;
        ListenerConn *current = g_hash_table_lookup(conn->listener->conns, conn->key);

        conn->stream = NULL;
        if (current == conn)
                g_hash_table_remove(conn->listener->conns, conn->key);
}

static void
hand_over(BridgeListener *listener, GSocket *socket)
{
        g_autoptr(GSocketConnection) stream = g_socket_connection_factory_create_connection(socket);
        g_autoptr(GSocketAddress) local = g_socket_get_local_address(socket, NULL);
        g_autoptr(GSocketAddress) remote = g_socket_get_remote_address(socket, NULL);
        g_autoptr(GError) error = NULL;
        char *key = address_key(remote);

        if (key != NULL) {
                ListenerConn *conn = g_new0(ListenerConn, 1);

                conn->listener = listener;
                conn->key = key;
                conn->socket = g_object_ref(socket);
                conn->stream = G_OBJECT(stream);
                g_object_weak_ref(conn->stream, stream_gone_cb, conn);
                g_hash_table_replace(listener->conns, g_strdup(key), conn);
        }
        if (!soup_server_accept_iostream(listener->server, G_IO_STREAM(stream), local, remote,
                                         &error))
                g_printerr("cannot serve a connection: %s\n", error->message);
}

static void start_watches(BridgeListener *listener);

static gboolean
resume_cb(gpointer user_data)
{
        BridgeListener *listener = user_data;

        listener->resume_id = 0;
        start_watches(listener);
        return G_SOURCE_REMOVE;
}

static void
pause_accepting(BridgeListener *listener, const GError *error)
{
        if (!listener->starved)
                g_printerr("cannot accept connections (%s); retrying every %u ms until it "
                           "works again\n",
                           error->message, BRIDGE_ACCEPT_RETRY_MS);
        listener->starved = TRUE;
        for (guint i = 0; i < listener->sources->len; i++) {
                GSource *source = g_ptr_array_index(listener->sources, i);

                if (source != NULL) {
                        g_source_destroy(source);
                        g_source_unref(source);
                        listener->sources->pdata[i] = NULL;
                }
        }
        if (listener->resume_id == 0)
                listener->resume_id = g_timeout_add(BRIDGE_ACCEPT_RETRY_MS, resume_cb, listener);
}

/* Connections accepted per wakeup: the loop's other work goes on during a flood. */
#define ACCEPT_BATCH 32

static gboolean
accept_cb(GSocket *socket, GIOCondition condition, gpointer user_data)
{
        BridgeListener *listener = user_data;

        for (guint n = 0; n < ACCEPT_BATCH; n++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(GSocket) client = g_socket_accept(socket, NULL, &error);

                if (client == NULL) {
                        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK) ||
                            g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED) ||
                            g_error_matches(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE))
                                return G_SOURCE_CONTINUE;
                        /* EMFILE, ENFILE, ENOBUFS...: the watch is torn down here,
                         * or the listening socket, still readable, would spin. */
                        pause_accepting(listener, error);
                        return G_SOURCE_CONTINUE;
                }
                if (listener->starved) {
                        g_printerr("accepting connections again\n");
                        listener->starved = FALSE;
                }
                hand_over(listener, client);
        }
        return G_SOURCE_CONTINUE;
}

static void
start_watches(BridgeListener *listener)
{
        for (guint i = 0; i < listener->sockets->len; i++) {
                GSource *source;

                if (g_ptr_array_index(listener->sources, i) != NULL)
                        continue;
                source = g_socket_create_source(g_ptr_array_index(listener->sockets, i), G_IO_IN,
                                                NULL);
                g_source_set_callback(source, G_SOURCE_FUNC(accept_cb), listener, NULL);
                g_source_attach(source, NULL);
                listener->sources->pdata[i] = source;
        }
}

/* Anything but 127.0.0.0/8 and ::1 is reachable from elsewhere. */
static void
warn_if_exposed(GSocket *socket)
{
        g_autoptr(GSocketAddress) local = g_socket_get_local_address(socket, NULL);
        GInetAddress *address;
        g_autofree char *text = NULL;

        if (local == NULL || !G_IS_INET_SOCKET_ADDRESS(local))
                return;
        address = g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(local));
        if (g_inet_address_get_is_loopback(address))
                return;
        text = g_inet_address_to_string(address);
        g_printerr("warning: listening on %s, beyond loopback: other machines can reach the "
                   "bridge; only the access token stands in their way\n",
                   text);
}

gboolean
bridge_listener_add(BridgeListener *listener, GSocket *socket, GError **error)
{
        g_socket_set_blocking(socket, FALSE);
        warn_if_exposed(socket);
        g_ptr_array_add(listener->sockets, g_object_ref(socket));
        g_ptr_array_add(listener->sources, NULL);
        if (listener->resume_id == 0)
                start_watches(listener);
        return TRUE;
}

static ListenerConn *
conn_for(BridgeListener *listener, SoupServerMessage *msg)
{
        g_autofree char *key = address_key(soup_server_message_get_remote_address(msg));

        return key != NULL ? g_hash_table_lookup(listener->conns, key) : NULL;
}

/* libsoup reads nothing between two requests: the connection is closed
 * (shut down, which libsoup sees as its end) after this long without one. */
static gboolean
idle_cb(gpointer user_data)
{
        ListenerConn *conn = user_data;

        conn->idle_id = 0;
        if (!g_socket_is_closed(conn->socket))
                g_socket_shutdown(conn->socket, TRUE, TRUE, NULL);
        return G_SOURCE_REMOVE;
}

void
bridge_listener_idle(BridgeListener *listener, SoupServerMessage *msg, guint seconds)
{
        ListenerConn *conn = conn_for(listener, msg);

        if (conn == NULL)
                return;
        g_clear_handle_id(&conn->idle_id, g_source_remove);
        conn->idle_id = g_timeout_add_seconds(seconds, idle_cb, conn);
}

void
bridge_listener_busy(BridgeListener *listener, SoupServerMessage *msg)
{
        ListenerConn *conn = conn_for(listener, msg);

        if (conn != NULL)
                g_clear_handle_id(&conn->idle_id, g_source_remove);
}

GSocket *
bridge_listener_socket_for(BridgeListener *listener, SoupServerMessage *msg)
{
        g_autofree char *key = NULL;
        ListenerConn *conn;

        GSocket *socket = soup_server_message_get_socket(msg);

        if (socket != NULL || listener == NULL)
                return socket;
        key = address_key(soup_server_message_get_remote_address(msg));
        conn = key != NULL ? g_hash_table_lookup(listener->conns, key) : NULL;
        return conn != NULL ? conn->socket : NULL;
}

/* libsoup 3.2 keeps a connection alive after a response only while it has a
 * listener of its own. It gets one no client can reach: a Unix socket whose
 * path is gone as soon as it listens. */
static gboolean
give_soup_a_listener(SoupServer *server, GError **error)
{
        g_autofree char *dir = g_dir_make_tmp("itk-bridge-XXXXXX", error);
        g_autofree char *path = NULL;
        g_autoptr(GSocket) socket = NULL;
        g_autoptr(GSocketAddress) address = NULL;
        gboolean ok;

        if (dir == NULL)
                return FALSE;
        path = g_build_filename(dir, "unreachable", NULL);
        address = g_unix_socket_address_new(path);
        socket = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
                              error);
        ok = socket != NULL && g_socket_bind(socket, address, FALSE, error) &&
             g_socket_listen(socket, error);
        g_unlink(path);
        g_rmdir(dir);
        return ok && soup_server_listen_socket(server, socket, 0, error);
}

BridgeListener *
bridge_listener_new(SoupServer *server, GError **error)
{
        BridgeListener *listener;

        if (!give_soup_a_listener(server, error))
                return NULL;
        listener = g_new0(BridgeListener, 1);

        listener->server = server;
        listener->sockets = g_ptr_array_new_with_free_func(g_object_unref);
        listener->sources = g_ptr_array_new();
        listener->conns =
                g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)conn_free);
        return listener;
}

void
bridge_listener_free(BridgeListener *listener)
{
        GHashTableIter iter;
        ListenerConn *conn;

        if (listener == NULL)
                return;
        g_clear_handle_id(&listener->resume_id, g_source_remove);
        for (guint i = 0; i < listener->sources->len; i++) {
                GSource *source = g_ptr_array_index(listener->sources, i);

                if (source != NULL) {
                        g_source_destroy(source);
                        g_source_unref(source);
                }
        }
        g_ptr_array_unref(listener->sources);
        for (guint i = 0; i < listener->sockets->len; i++)
                g_socket_close(g_ptr_array_index(listener->sockets, i), NULL);
        g_ptr_array_unref(listener->sockets);
        g_hash_table_iter_init(&iter, listener->conns);
        while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&conn)) {
                if (conn->stream != NULL)
                        g_object_weak_unref(conn->stream, stream_gone_cb, conn);
                conn->stream = NULL;
        }
        g_hash_table_unref(listener->conns);
        g_free(listener);
}
