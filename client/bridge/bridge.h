/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ignition-toolkit-bridge: what the server, the API and the WebSocket share. */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "itk-dbus-generated.h"

#define BRIDGE_BUS_NAME "org.ignition.Toolkit"
#define BRIDGE_MANAGER_PATH "/org/ignition/Toolkit"
#define BRIDGE_EXECUTION_PREFIX "/org/ignition/Toolkit/execution/"
#define BRIDGE_MAX_BODY (1024 * 1024)
#define BRIDGE_MAX_WS_MESSAGE (64 * 1024)
#define BRIDGE_WS_KEEPALIVE_SECONDS 15
/* A WebSocket client this long behind is closed; it reconnects for a fresh snapshot. */
#define BRIDGE_WS_MAX_LAG_SECONDS 30
/* Bytes waiting in the kernel for a WebSocket client that mean it is behind. */
#define BRIDGE_WS_BEHIND_BYTES (1024 * 1024)

typedef struct _BridgeWs BridgeWs;

/* The bridge keeps no state of its own beyond connections: everything else
 * is asked of the daemon or read from the proxies' property caches. */
typedef struct {
        GDBusConnection *bus;
        ItkDBusManager *manager;
        GDBusObjectManager *objects; /* ItkDBusObjectManagerClient */
        SoupServer *server;
        char *token;
        GPtrArray *origins; /* allowed Origin values, the bridge's own first */
        char *web_root;
        guint ws_max_lag_seconds;
        BridgeWs *ws;
} Bridge;

/* bridge-server.c */
gboolean bridge_server_listen(Bridge *bridge, const char *host, guint port, guint *out_port,
                              GError **error);
void bridge_server_add_own_origins(Bridge *bridge, const char *host, guint port);
void bridge_reply_json(SoupServerMessage *msg, guint status, JsonNode *node);
void bridge_reply_error(SoupServerMessage *msg, guint status, const char *error,
                        const char *message);
void bridge_reply_gerror(SoupServerMessage *msg, const GError *error);
guint bridge_status_for_gerror(const GError *error, char **out_name);

/* bridge-api.c: @path is below /api (e.g. "/executions/ID"). */
void bridge_api_handle(Bridge *bridge, SoupServerMessage *msg, const char *path, GHashTable *query);

/* bridge-ws.c */
BridgeWs *bridge_ws_new(Bridge *bridge);
void bridge_ws_free(BridgeWs *ws);
void bridge_ws_accept(BridgeWs *ws, SoupServerMessage *msg, SoupWebsocketConnection *conn);

/* Execution lookups shared by the API and the WebSocket. */
char *bridge_id_to_hex(const char *id);
char *bridge_hex_to_dashed(const char *hex);
ItkDBusExecution *bridge_find_execution(Bridge *bridge, const char *id);
JsonNode *bridge_execution_summary(ItkDBusExecution *execution);
