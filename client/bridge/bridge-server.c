/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The HTTP side of the bridge: routing, the bearer token, Origin checks, body
 * limits, JSON replies, D-Bus error mapping and the static web UI. */
#include "bridge.h"

#include <string.h>
#include <sys/socket.h>

#include "bridge-json.h"

/* --- replies ------------------------------------------------------------------ */

static void
add_common_headers(SoupServerMessage *msg)
{
        SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);

        soup_message_headers_replace(h, "X-Content-Type-Options", "nosniff");
        soup_message_headers_replace(h, "X-Frame-Options", "DENY");
        soup_message_headers_replace(h, "Referrer-Policy", "no-referrer");
}

void
bridge_reply_json(SoupServerMessage *msg, guint status, JsonNode *node)
{
        g_autofree char *text = NULL;
        gsize length;

        add_common_headers(msg);
        soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Cache-Control",
                                     "no-store");
        soup_server_message_set_status(msg, status, NULL);
        if (node == NULL) {
                soup_server_message_set_response(msg, NULL, SOUP_MEMORY_STATIC, NULL, 0);
                return;
        }
        text = bridge_json_to_string(node);
        length = strlen(text);
        soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_TAKE,
                                         g_steal_pointer(&text), length);
}

void
bridge_reply_error(SoupServerMessage *msg, guint status, const char *error, const char *message)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) node = NULL;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "error");
        json_builder_add_string_value(b, error);
        json_builder_set_member_name(b, "message");
        json_builder_add_string_value(b, message);
        json_builder_end_object(b);
        node = json_builder_get_root(b);
        bridge_reply_json(msg, status, node);
}

static const struct {
        const char *name;
        guint status;
} error_map[] = {
        { "InvalidState", SOUP_STATUS_CONFLICT },
        { "NotRunning", SOUP_STATUS_CONFLICT },
        { "NoSuchPlaybook", SOUP_STATUS_NOT_FOUND },
        { "NoSuchExecution", SOUP_STATUS_NOT_FOUND },
        { "NoSuchCredential", SOUP_STATUS_NOT_FOUND },
        { "NoSuchArtifact", SOUP_STATUS_NOT_FOUND },
        { "NoSuchInputFile", SOUP_STATUS_NOT_FOUND },
        { "InvalidArgs", SOUP_STATUS_BAD_REQUEST },
        { "InvalidParameters", SOUP_STATUS_BAD_REQUEST },
        { "InvalidPlaybook", SOUP_STATUS_UNPROCESSABLE_ENTITY },
        { "LimitsExceeded", 429 },
        /* The history store cannot write: no run starts until it can. */
        { "StoreFailed", SOUP_STATUS_SERVICE_UNAVAILABLE },
        { "AccessDenied", SOUP_STATUS_FORBIDDEN },
        { "InteractiveAuthorizationRequired", SOUP_STATUS_FORBIDDEN },
        { "NotSupported", SOUP_STATUS_NOT_IMPLEMENTED },
        /* The daemon is not there (or went away during the call). */
        { "ServiceUnknown", SOUP_STATUS_SERVICE_UNAVAILABLE },
        { "NameHasNoOwner", SOUP_STATUS_SERVICE_UNAVAILABLE },
        { "NoReply", SOUP_STATUS_SERVICE_UNAVAILABLE },
        { "Disconnected", SOUP_STATUS_SERVICE_UNAVAILABLE },
        { "NoServer", SOUP_STATUS_SERVICE_UNAVAILABLE },
        { "Spawn.ServiceNotFound", SOUP_STATUS_SERVICE_UNAVAILABLE },
};

/* The short D-Bus error name ("InvalidState") and the HTTP status for it. */
guint
bridge_status_for_gerror(const GError *error, char **out_name)
{
        g_autofree char *remote = g_dbus_error_get_remote_error(error);
        const char *name = "Failed";

        if (remote != NULL) {
                const char *dot = strrchr(remote, '.');

                name = dot != NULL ? dot + 1 : remote;
                if (g_str_has_prefix(remote, "org.freedesktop.DBus.Error.Spawn."))
                        name = "ServiceNotFound";
        } else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CLOSED) ||
                   g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ||
                   g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_DISCONNECTED)) {
                name = "Disconnected";
        }
        if (out_name != NULL)
                *out_name = g_strdup(name);
        for (gsize i = 0; i < G_N_ELEMENTS(error_map); i++) {
                if (g_str_equal(error_map[i].name, name))
                        return error_map[i].status;
        }
        if (g_str_equal(name, "ServiceNotFound"))
                return SOUP_STATUS_SERVICE_UNAVAILABLE;
        return SOUP_STATUS_INTERNAL_SERVER_ERROR;
}

void
bridge_reply_gerror(SoupServerMessage *msg, const GError *error)
{
        g_autofree char *name = NULL;
        g_autoptr(GError) copy = g_error_copy(error);
        guint status = bridge_status_for_gerror(error, &name);

        g_dbus_error_strip_remote_error(copy);
        if (status == SOUP_STATUS_SERVICE_UNAVAILABLE) {
                g_free(name);
                name = g_strdup("Unavailable");
        }
        bridge_reply_error(msg, status, name, copy->message);
}

/* --- auth and origin ---------------------------------------------------------- */

/* Compares SHA-256 digests of the two, byte by byte without an early exit: the
 * time taken tells neither how much of the token matched nor its length. */
static gboolean
token_equal(const char *a, const char *b)
{
        guint8 da[32], db[32];
        gsize la = sizeof(da), lb = sizeof(db);
        g_autoptr(GChecksum) ca = NULL;
        g_autoptr(GChecksum) cb = NULL;
        guint diff = 0;

        if (a == NULL || b == NULL || b[0] == '\0')
                return FALSE;
        ca = g_checksum_new(G_CHECKSUM_SHA256);
        cb = g_checksum_new(G_CHECKSUM_SHA256);
        g_checksum_update(ca, (const guchar *)a, -1);
        g_checksum_update(cb, (const guchar *)b, -1);
        g_checksum_get_digest(ca, da, &la);
        g_checksum_get_digest(cb, db, &lb);
        for (gsize i = 0; i < sizeof(da); i++)
                diff |= da[i] ^ db[i];
        return diff == 0;
}

static gboolean
bearer_ok(Bridge *bridge, SoupServerMessage *msg)
{
        const char *auth = soup_message_headers_get_one(
                soup_server_message_get_request_headers(msg), "Authorization");

        if (auth == NULL || g_ascii_strncasecmp(auth, "Bearer ", 7) != 0)
                return FALSE;
        auth += 7;
        while (*auth == ' ')
                auth++;
        return token_equal(auth, bridge->token);
}

static gboolean
origin_ok(Bridge *bridge, SoupServerMessage *msg)
{
        const char *origin = soup_message_headers_get_one(
                soup_server_message_get_request_headers(msg), "Origin");

        /* No Origin: not a browser (curl, the CLI); the token still applies. */
        if (origin == NULL)
                return TRUE;
        for (guint i = 0; i < bridge->origins->len; i++) {
                if (g_ascii_strcasecmp(origin, g_ptr_array_index(bridge->origins, i)) == 0)
                        return TRUE;
        }
        return FALSE;
}

static gboolean
is_state_changing(const char *method)
{
        return method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD &&
               method != SOUP_METHOD_OPTIONS;
}

static void
reply_unauthorized(SoupServerMessage *msg)
{
        soup_message_headers_replace(soup_server_message_get_response_headers(msg),
                                     "WWW-Authenticate", "Bearer");
        bridge_reply_error(msg, SOUP_STATUS_UNAUTHORIZED, "Unauthorized",
                           "a valid bearer token is required");
}

static void
reply_bad_origin(SoupServerMessage *msg)
{
        bridge_reply_error(msg, SOUP_STATUS_FORBIDDEN, "Forbidden", "origin not allowed");
}

/* --- static files ------------------------------------------------------------- */

static const char *
content_type_for(const char *path)
{
        static const struct {
                const char *ext, *type;
        } types[] = {
                { ".html", "text/html; charset=utf-8" },
                { ".js", "text/javascript; charset=utf-8" },
                { ".mjs", "text/javascript; charset=utf-8" },
                { ".css", "text/css; charset=utf-8" },
                { ".json", "application/json" },
                { ".svg", "image/svg+xml" },
                { ".png", "image/png" },
                { ".ico", "image/x-icon" },
                { ".woff2", "font/woff2" },
                { ".txt", "text/plain; charset=utf-8" },
        };

        for (gsize i = 0; i < G_N_ELEMENTS(types); i++) {
                if (g_str_has_suffix(path, types[i].ext))
                        return types[i].type;
        }
        return "application/octet-stream";
}

static void
serve_static(Bridge *bridge, SoupServerMessage *msg, const char *path)
{
        const char *method = soup_server_message_get_method(msg);
        g_autofree char *decoded = NULL;
        g_autofree char *file = NULL;
        g_autoptr(GMappedFile) mapped = NULL;
        g_auto(GStrv) parts = NULL;
        GBytes *bytes;

        if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD) {
                bridge_reply_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "MethodNotAllowed",
                                   "static files are read-only");
                return;
        }
        decoded = g_uri_unescape_string(path, "/");
        if (decoded == NULL || decoded[0] != '/') {
                bridge_reply_error(msg, SOUP_STATUS_NOT_FOUND, "NotFound", "no such file");
                return;
        }
        /* No dot segments and no hidden files: nothing outside the web root. */
        parts = g_strsplit(decoded, "/", -1);
        for (guint i = 0; parts[i] != NULL; i++) {
                if (parts[i][0] == '.') {
                        bridge_reply_error(msg, SOUP_STATUS_NOT_FOUND, "NotFound", "no such file");
                        return;
                }
        }
        if (g_str_has_suffix(decoded, "/"))
                file = g_strconcat(bridge->web_root, decoded, "index.html", NULL);
        else
                file = g_strconcat(bridge->web_root, decoded, NULL);
        if (g_file_test(file, G_FILE_TEST_IS_DIR)) {
                g_autofree char *index = g_build_filename(file, "index.html", NULL);

                g_free(file);
                file = g_steal_pointer(&index);
        }
        mapped = g_mapped_file_new(file, FALSE, NULL);
        if (mapped == NULL) {
                bridge_reply_error(msg, SOUP_STATUS_NOT_FOUND, "NotFound", "no such file");
                return;
        }
        add_common_headers(msg);
        soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Cache-Control",
                                     "no-cache");
        soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
        bytes = g_mapped_file_get_bytes(mapped);
        soup_message_headers_set_content_type(soup_server_message_get_response_headers(msg),
                                              content_type_for(file), NULL);
        soup_message_body_append_bytes(soup_server_message_get_response_body(msg), bytes);
        g_bytes_unref(bytes);
}

/* --- health ------------------------------------------------------------------- */

static void
reply_status(SoupServerMessage *msg, guint status, const char *text)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) node = NULL;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "status");
        json_builder_add_string_value(b, text);
        json_builder_end_object(b);
        node = json_builder_get_root(b);
        bridge_reply_json(msg, status, node);
}

static void
serve_health(Bridge *bridge, SoupServerMessage *msg, const char *path)
{
        if (g_str_equal(path, "/health") || g_str_equal(path, "/health/live")) {
                reply_status(msg, SOUP_STATUS_OK, "ok");
        } else if (g_str_equal(path, "/health/ready")) {
                g_autofree char *owner = g_dbus_object_manager_client_get_name_owner(
                        G_DBUS_OBJECT_MANAGER_CLIENT(bridge->objects));

                if (owner != NULL)
                        reply_status(msg, SOUP_STATUS_OK, "ready");
                else
                        reply_status(msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "unavailable");
        } else {
                bridge_reply_error(msg, SOUP_STATUS_NOT_FOUND, "NotFound", "no such resource");
        }
}

/* --- routing ------------------------------------------------------------------ */

static gboolean
is_api_path(const char *path)
{
        return g_str_equal(path, "/api") || g_str_has_prefix(path, "/api/");
}

/* One Content-Length of digits only: a repeated or odd one is how request
 * smuggling starts, and libsoup 3.2 would take the first. */
static gboolean
content_length_ok(SoupMessageHeaders *h)
{
        const char *list = soup_message_headers_get_list(h, "Content-Length");

        if (list == NULL)
                return TRUE;
        if (soup_message_headers_get_list(h, "Transfer-Encoding") != NULL || list[0] == '\0')
                return FALSE;
        for (const char *p = list; *p != '\0'; p++) {
                if (!g_ascii_isdigit(*p))
                        return FALSE;
        }
        return strlen(list) <= 15;
}

/* Runs when the head is in: whatever is refused here is refused before a
 * byte of the body is read (see bridge-guard.c). A body may be as large as
 * BRIDGE_MAX_BODY on an authenticated API call, BRIDGE_MAX_PREAUTH_BODY
 * anywhere else. */
static void
early_cb(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
         gpointer user_data)
{
        Bridge *bridge = user_data;
        SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
        goffset limit = BRIDGE_MAX_PREAUTH_BODY;
        g_autofree char *too_large = NULL;

        if (!content_length_ok(h)) {
                bridge_guard_refuse(msg, SOUP_STATUS_BAD_REQUEST, "BadRequest",
                                    "one Content-Length of digits, and no Transfer-Encoding "
                                    "with it, is required");
                return;
        }
        if (is_api_path(path)) {
                if (is_state_changing(soup_server_message_get_method(msg)) &&
                    !origin_ok(bridge, msg)) {
                        bridge_guard_refuse(msg, SOUP_STATUS_FORBIDDEN, "Forbidden",
                                            "origin not allowed");
                        return;
                }
                if (!bearer_ok(bridge, msg)) {
                        bridge_guard_refuse(msg, SOUP_STATUS_UNAUTHORIZED, "Unauthorized",
                                            "a valid bearer token is required");
                        return;
                }
                limit = BRIDGE_MAX_BODY;
                if (bridge_inputs_early(bridge, msg, path, query))
                        return;
        }
        too_large = g_strdup_printf("the request body is larger than %" G_GOFFSET_FORMAT " KiB",
                                    limit / 1024);
        if (soup_message_headers_get_encoding(h) == SOUP_ENCODING_CONTENT_LENGTH &&
            soup_message_headers_get_content_length(h) > limit) {
                bridge_guard_refuse(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "PayloadTooLarge",
                                    too_large);
                return;
        }
        bridge_guard_limit_body(msg, limit);
}

static void
handler_cb(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
           gpointer user_data)
{
        Bridge *bridge = user_data;
        const char *method = soup_server_message_get_method(msg);
        SoupMessageBody *body = soup_server_message_get_request_body(msg);

        if (body->length > BRIDGE_MAX_BODY) {
                bridge_reply_error(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "PayloadTooLarge",
                                   "the request body is larger than 1024 KiB");
                return;
        }
        if (is_api_path(path)) {
                if (is_state_changing(method) && !origin_ok(bridge, msg)) {
                        reply_bad_origin(msg);
                        return;
                }
                if (!bearer_ok(bridge, msg)) {
                        reply_unauthorized(msg);
                        return;
                }
                bridge_api_handle(bridge, msg, path + strlen("/api"), query);
                return;
        }
        if (g_str_equal(path, "/health") || g_str_has_prefix(path, "/health/")) {
                serve_health(bridge, msg, path);
                return;
        }
        serve_static(bridge, msg, path);
}

/* Shares the path with the WebSocket handler: a status set here refuses the
 * upgrade, none lets libsoup complete the handshake. */
static void
ws_http_cb(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
           gpointer user_data)
{
        Bridge *bridge = user_data;
        static const char *const protocols[] = { BRIDGE_WS_PROTOCOL, NULL };
        const char *token = query != NULL ? g_hash_table_lookup(query, "access_token") : NULL;
        const char *offered = soup_message_headers_get_list(
                soup_server_message_get_request_headers(msg), "Sec-WebSocket-Protocol");
        g_autoptr(GError) error = NULL;
        g_autofree char *protocol_token = NULL;
        g_autofree char *live_hex = bridge_live_view_match(path);

        if (token == NULL && offered != NULL) {
                GSList *list = soup_header_parse_list(offered);

                for (GSList *l = list; l != NULL; l = l->next) {
                        if (g_str_has_prefix(l->data, BRIDGE_WS_TOKEN_PREFIX)) {
                                g_free(protocol_token);
                                protocol_token =
                                        g_strdup((char *)l->data + strlen(BRIDGE_WS_TOKEN_PREFIX));
                        }
                }
                soup_header_free_list(list);
                token = protocol_token;
        }

        if (!g_str_equal(path, "/ws/executions") && live_hex == NULL) {
                bridge_reply_error(msg, SOUP_STATUS_NOT_FOUND, "NotFound", "no such resource");
                return;
        }
        if (!origin_ok(bridge, msg)) {
                reply_bad_origin(msg);
                return;
        }
        if (!token_equal(token, bridge->token)) {
                reply_unauthorized(msg);
                return;
        }
        if (!soup_websocket_server_check_handshake(msg, NULL, (char **)protocols, NULL, &error)) {
                bridge_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "BadRequest", error->message);
                return;
        }
        if (live_hex != NULL)
                bridge_live_view_upgrade(bridge->live, msg, live_hex);
        else
                bridge_ws_upgrade(bridge->ws, msg);
}

void
bridge_server_add_own_origins(Bridge *bridge, const char *host, guint port)
{
        g_autoptr(GInetAddress) addr = g_inet_address_new_from_string(host);
        gboolean v6 = addr != NULL && g_inet_address_get_family(addr) == G_SOCKET_FAMILY_IPV6;

        g_ptr_array_insert(bridge->origins, 0,
                           v6 ? g_strdup_printf("http://[%s]:%u", host, port)
                              : g_strdup_printf("http://%s:%u", host, port));
        /* A loopback bridge is also reached as localhost. */
        if (addr != NULL && g_inet_address_get_is_loopback(addr)) {
                g_ptr_array_add(bridge->origins, g_strdup_printf("http://localhost:%u", port));
                g_ptr_array_add(bridge->origins, g_strdup_printf("http://127.0.0.1:%u", port));
                g_ptr_array_add(bridge->origins, g_strdup_printf("http://[::1]:%u", port));
        }
}

gboolean
bridge_server_listen(Bridge *bridge, const char *host, guint port, GSocket *inherited,
                     guint *out_port, GError **error)
{
        g_autoptr(GSocket) socket = NULL;
        g_autoptr(GSocketAddress) local = NULL;

        bridge->server = soup_server_new("server-header", "ignition-toolkit-bridge", NULL);
        soup_server_add_early_handler(bridge->server, NULL, early_cb, bridge, NULL);
        soup_server_add_handler(bridge->server, NULL, handler_cb, bridge, NULL);
        /* The WebSocket upgrade is ours (bridge_ws_upgrade), not libsoup's, to
         * put a message-size check under the connection. It negotiates no
         * extension: not permessage-deflate, which every browser asks for,
         * since each client would compress the same frames again, in its own
         * zlib state of some 300 KB, and the events are small and mostly go to
         * localhost. */
        soup_server_add_handler(bridge->server, "/ws/executions", ws_http_cb, bridge, NULL);
        /* Not matched with the handler at "/ws/executions" otherwise. */
        soup_server_add_early_handler(bridge->server, "/ws/executions", early_cb, bridge, NULL);
        bridge->listener = bridge_listener_new(bridge->server, error);
        if (bridge->listener == NULL)
                return FALSE;
        bridge_guard_attach(bridge);
        if (inherited != NULL) {
                socket = g_object_ref(inherited);
        } else {
                g_autoptr(GInetAddress) addr = g_inet_address_new_from_string(host);
                g_autoptr(GSocketAddress) sockaddr = NULL;

                if (addr == NULL && g_str_equal(host, "localhost"))
                        addr = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
                if (addr == NULL) {
                        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                                    "not an IP address: %s", host);
                        return FALSE;
                }
                sockaddr = g_inet_socket_address_new(addr, (guint16)port);
                socket = g_socket_new(g_inet_address_get_family(addr), G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_TCP, error);
                if (socket == NULL)
                        return FALSE;
                /* A full listen backlog: every page reconnecting at once after a
                 * bridge restart would otherwise see dropped SYNs and second-long
                 * retries. */
                g_socket_set_listen_backlog(socket, SOMAXCONN);
                if (!g_socket_bind(socket, sockaddr, TRUE, error) ||
                    !g_socket_listen(socket, error))
                        return FALSE;
        }
        if (!bridge_listener_add(bridge->listener, socket, error))
                return FALSE;
        local = g_socket_get_local_address(socket, NULL);
        *out_port = port;
        if (local != NULL && G_IS_INET_SOCKET_ADDRESS(local))
                *out_port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
        return TRUE;
}
