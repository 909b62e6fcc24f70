/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ignition-toolkit-bridge: what the server, the API and the WebSocket share. */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "itk-client-dbus.h"
#include "itk-execution-watch.h"

#define BRIDGE_MAX_BODY (1024 * 1024)
#define BRIDGE_MAX_WS_MESSAGE (64 * 1024)
/* A body sent without a valid token (or to a path that takes none) is refused past this. */
#define BRIDGE_MAX_PREAUTH_BODY (64 * 1024)
/* From the start of a request to its complete head (defaults of --header-timeout). */
#define BRIDGE_HEADER_TIMEOUT_SECONDS 10
/* A keep-alive connection with no request, or a body that stops arriving (--idle-timeout). */
#define BRIDGE_IDLE_TIMEOUT_SECONDS 60
/* While accept() fails (out of descriptors), how long accepting pauses before a retry. */
#define BRIDGE_ACCEPT_RETRY_MS 250
#define BRIDGE_WS_KEEPALIVE_SECONDS 15
/* The WebSocket subprotocol the bridge speaks. A browser may send its token as a
 * second offered protocol, BRIDGE_WS_TOKEN_PREFIX + token, instead of in the URL
 * (which Chromium prints in the console when a connection fails). */
#define BRIDGE_WS_PROTOCOL "itk.v1"
#define BRIDGE_WS_TOKEN_PREFIX "itk.token."
/* A WebSocket client this long behind is closed; it reconnects for a fresh snapshot. */
#define BRIDGE_WS_MAX_LAG_SECONDS 30
/* Bytes waiting in the kernel for a WebSocket client that mean it is behind. */
#define BRIDGE_WS_BEHIND_BYTES (1024 * 1024)

typedef struct _BridgeWs BridgeWs;
typedef struct _BridgeListener BridgeListener;
typedef struct _BridgeLiveView BridgeLiveView;

/* The bridge keeps no state of its own beyond connections: everything else
 * is asked of the daemon or read from the proxies' property caches. */
typedef struct {
        GDBusConnection *bus;
        ItkClientDBusManager *manager;
        GDBusObjectManager *objects; /* ItkClientDBusObjectManagerClient */
        /* Every execution's signals (client/common): heard from a new daemon's
         * first one on, which the object manager's per-owner match is not. */
        ItkExecutionWatch *watch;
        SoupServer *server;
        char *token;
        GPtrArray *origins; /* allowed Origin values, the bridge's own first */
        char *web_root;
        guint ws_max_lag_seconds;
        guint header_timeout_seconds;
        guint idle_timeout_seconds;
        BridgeWs *ws;
        BridgeListener *listener;
        BridgeLiveView *live;
} Bridge;

/* bridge-server.c: @inherited, a listening socket from systemd, is used instead of
 * binding @host:@port when not NULL. */
gboolean bridge_server_listen(Bridge *bridge, const char *host, guint port, GSocket *inherited,
                              guint *out_port, GError **error);
void bridge_server_add_own_origins(Bridge *bridge, const char *host, guint port);
void bridge_reply_json(SoupServerMessage *msg, guint status, JsonNode *node);
void bridge_reply_error(SoupServerMessage *msg, guint status, const char *error,
                        const char *message);
void bridge_reply_gerror(SoupServerMessage *msg, const GError *error);
guint bridge_status_for_gerror(const GError *error, char **out_name);

/* bridge-artifacts.c: streams artifact @name of run @id (dashed) as the response. */
void bridge_artifacts_download(Bridge *bridge, SoupServerMessage *msg, const char *id,
                               const char *name);

/* bridge-api.c: @path is below /api (e.g. "/executions/ID"). */
void bridge_api_handle(Bridge *bridge, SoupServerMessage *msg, const char *path, GHashTable *query);

/* bridge-listener.c: accepts connections itself, so that running out of
 * descriptors pauses accepting instead of ending it. */
BridgeListener *bridge_listener_new(SoupServer *server, GError **error);
void bridge_listener_free(BridgeListener *listener);
gboolean bridge_listener_add(BridgeListener *listener, GSocket *socket, GError **error);
/* Between two requests of a keep-alive connection: closed after @seconds. */
void bridge_listener_idle(BridgeListener *listener, SoupServerMessage *msg, guint seconds);
void bridge_listener_busy(BridgeListener *listener, SoupServerMessage *msg);
/* The connection's socket (borrowed), or NULL. */
GSocket *bridge_listener_socket_for(BridgeListener *listener, SoupServerMessage *msg);

/* bridge-guard.c: timeouts and refusals that must not wait for a body. */
void bridge_guard_attach(Bridge *bridge);
/* Answers @status and closes the connection without reading the body. */
void bridge_guard_refuse(SoupServerMessage *msg, guint status, const char *error,
                         const char *message);
/* Refuses the body (413) once more than @limit bytes of it arrived. */
void bridge_guard_limit_body(SoupServerMessage *msg, goffset limit);
/* The body timer restarts at every chunk (a long upload), instead of
 * bounding the whole body. */
void bridge_guard_stream_body(SoupServerMessage *msg);

/* bridge-ws.c */
BridgeWs *bridge_ws_new(Bridge *bridge);
void bridge_ws_free(BridgeWs *ws);
/* Takes over @msg's connection once the 101 is written. */
void bridge_ws_upgrade(BridgeWs *ws, SoupServerMessage *msg);

/* bridge-ws-upgrade.c: answers a checked WebSocket handshake; once the 101 is
 * written, the connection (over our size-counting input, keepalive on) goes
 * to @accept with the client's socket (NULL when unknown). @destroy frees
 * @data when the request is done with, accepted or not. */
typedef void (*BridgeWsAcceptFunc)(SoupWebsocketConnection *conn, GSocket *socket, gpointer data);
void bridge_ws_accept_upgrade(Bridge *bridge, SoupServerMessage *msg, BridgeWsAcceptFunc accept,
                              gpointer data, GDestroyNotify destroy);

/* bridge-ws-input.c: counts a WebSocket message's size across its frames. */
GIOStream *bridge_ws_input_wrap(GIOStream *base, gsize max_message,
                                void (*too_big_func)(gpointer data), gpointer data);

/* Execution lookups shared by the API and the WebSocket. */
char *bridge_id_to_hex(const char *id);
char *bridge_hex_to_dashed(const char *hex);
ItkClientDBusExecution *bridge_find_execution(Bridge *bridge, const char *id);
JsonNode *bridge_execution_summary(ItkClientDBusExecution *execution);
/* A history record (GetHistory's keys) as an ExecutionSummary without steps. */
JsonNode *bridge_record_summary(GVariant *record);

/* bridge-history.c: GET /api/history. */
void bridge_history_get(Bridge *bridge, SoupServerMessage *msg, GHashTable *query);

/* bridge-live-view.c: WebSocket /ws/executions/ID/live and POST .../input. */
BridgeLiveView *bridge_live_view_new(Bridge *bridge);
void bridge_live_view_free(BridgeLiveView *live);
/* The run's 32 hex digits when @path is /ws/executions/ID/live, else NULL. */
char *bridge_live_view_match(const char *path);
/* Takes over @msg's connection once the 101 is written (handshake checked). */
void bridge_live_view_upgrade(BridgeLiveView *live, SoupServerMessage *msg, const char *hex);
/* POST /api/executions/ID/input: the body to Execution.SendInput. */
void bridge_live_view_input(Bridge *bridge, SoupServerMessage *msg, const char *hex);

/* bridge-inputs.c: TRUE when @path is an upload, which it takes over (the body
 * streams to the daemon); then bridge_inputs_handle() answers it. */
gboolean bridge_inputs_early(Bridge *bridge, SoupServerMessage *msg, const char *path,
                             GHashTable *query);
void bridge_inputs_handle(Bridge *bridge, SoupServerMessage *msg, const char *method, char **parts,
                          guint n);
