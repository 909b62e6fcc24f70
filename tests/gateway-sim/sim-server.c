/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/socket.h>
#include "sim-server-private.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>

#define ITK_SIM_TOKEN_HEADER "X-Ignition-API-Token"
#define ITK_SIM_TOO_LARGE "itk-sim-too-large"
#define ITK_SIM_BODY_SIZE "itk-sim-body-size"

typedef enum {
        ITK_SIM_HELD_HANG,    /* never answered; released when the client goes */
        ITK_SIM_HELD_DROP,    /* connection closed from an idle callback */
        ITK_SIM_HELD_SLOW,    /* dispatched when the timer fires */
        ITK_SIM_HELD_RESTORE, /* answered 200 when the timer fires, then STARTING */
} ItkSimHeldKind;

typedef struct {
        ItkSimServer *server;
        SoupServerMessage *msg;
        ItkSimHeldKind kind;
        GSource *source;
} ItkSimHeld;

static void itk_sim_server_dispatch(ItkSimServer *self, SoupServerMessage *msg);

/* ---- replies ---- */

void
itk_sim_reply_json(SoupServerMessage *msg, guint status, JsonNode *node)
{
        g_autofree char *text = json_to_string(node, FALSE);

        json_node_unref(node);
        soup_server_message_set_status(msg, status, NULL);
        soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_TAKE,
                                         g_steal_pointer(&text), strlen(text));
}

void
itk_sim_reply_message(SoupServerMessage *msg, guint status, const char *format, ...)
{
        g_autofree char *message = NULL;
        JsonNode *node = json_node_new(JSON_NODE_OBJECT);
        JsonObject *o = json_object_new();
        va_list args;

        va_start(args, format);
        message = g_strdup_vprintf(format, args);
        va_end(args);
        json_object_set_string_member(o, "message", message);
        json_node_take_object(node, o);
        itk_sim_reply_json(msg, status, node);
}

/* The error page Jetty writes when the servlet layer refuses a request
 * (auth, unknown servlet path, startup): HTML, whatever the Accept says. */
void
itk_sim_reply_jetty(SoupServerMessage *msg, guint status)
{
        const char *reason = soup_status_get_phrase(status);
        g_autofree char *uri =
                g_markup_escape_text(g_uri_get_path(soup_server_message_get_uri(msg)), -1);

        itk_sim_reply_html(msg, status,
                           g_strdup_printf("<html>\n<head>\n<meta http-equiv=\"Content-Type\" "
                                           "content=\"text/html;charset=utf-8\"/>\n"
                                           "<title>Error %u %s</title>\n</head>\n"
                                           "<body>\n<h2>HTTP ERROR %u %s</h2>\n<table>\n"
                                           "<tr><th>URI:</th><td>%s</td></tr>\n"
                                           "<tr><th>STATUS:</th><td>%u</td></tr>\n"
                                           "<tr><th>MESSAGE:</th><td>%s</td></tr>\n"
                                           "</table>\n<hr/><a href=\"https://jetty.org/\">"
                                           "Powered by Jetty:// 12.0.16</a><hr/>\n\n"
                                           "</body>\n</html>\n",
                                           status, reason, status, reason, uri, status, reason));
}

void
itk_sim_reply_html(SoupServerMessage *msg, guint status, char *html)
{
        soup_server_message_set_status(msg, status, NULL);
        soup_server_message_set_response(msg, "text/html;charset=utf-8", SOUP_MEMORY_TAKE, html,
                                         strlen(html));
}

void
itk_sim_reply_bytes(SoupServerMessage *msg, const char *content_type, GBytes *bytes)
{
        SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
        SoupMessageBody *body = soup_server_message_get_response_body(msg);

        soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
        soup_message_headers_set_content_type(h, content_type, NULL);
        soup_message_body_append_bytes(body, bytes);
}

const char *
itk_sim_query(GHashTable *query, const char *key)
{
        return query != NULL ? g_hash_table_lookup(query, key) : NULL;
}

gboolean
itk_sim_query_bool(GHashTable *query, const char *key)
{
        const char *v = itk_sim_query(query, key);
        return v != NULL && (g_ascii_strcasecmp(v, "true") == 0 || g_strcmp0(v, "1") == 0);
}

GBytes *
itk_sim_request_body(SoupServerMessage *msg)
{
        return soup_message_body_flatten(soup_server_message_get_request_body(msg));
}

/* ---- held requests ---- */

static void
itk_sim_held_free(gpointer p)
{
        ItkSimHeld *h = p;

        if (h->source != NULL) {
                g_source_destroy(h->source);
                g_source_unref(h->source);
        }
        g_object_unref(h->msg);
        g_free(h);
}

static void
itk_sim_server_release(ItkSimServer *self, ItkSimHeld *held)
{
        g_ptr_array_remove_fast(self->held, held);
}

/* Closes the TCP connection under @msg without an answer. */
static void
itk_sim_close_connection(SoupServerMessage *msg)
{
        g_autoptr(GIOStream) stream = soup_server_message_steal_connection(msg);

        if (stream != NULL)
                g_io_stream_close(stream, NULL, NULL);
}

static gboolean
itk_sim_held_drop_cb(gpointer user_data)
{
        ItkSimHeld *held = user_data;
        g_autoptr(SoupServerMessage) msg = g_object_ref(held->msg);

        itk_sim_server_release(held->server, held);
        itk_sim_close_connection(msg);
        return G_SOURCE_REMOVE;
}

static gboolean
itk_sim_held_slow_cb(gpointer user_data)
{
        ItkSimHeld *held = user_data;
        ItkSimServer *self = held->server;
        g_autoptr(SoupServerMessage) msg = g_object_ref(held->msg);

        itk_sim_server_release(self, held);
        /* Unpause first: a dispatch that holds again pauses, which cancels it. */
        soup_server_message_unpause(msg);
        itk_sim_server_dispatch(self, msg);
        return G_SOURCE_REMOVE;
}

static gboolean
itk_sim_held_restore_cb(gpointer user_data)
{
        ItkSimHeld *held = user_data;
        ItkSimServer *self = held->server;
        g_autoptr(SoupServerMessage) msg = g_object_ref(held->msg);
        JsonNode *node = json_node_new(JSON_NODE_OBJECT);
        JsonObject *o = json_object_new();

        itk_sim_server_release(self, held);
        json_object_set_boolean_member(o, "success", TRUE);
        json_node_take_object(node, o);
        itk_sim_reply_json(msg, SOUP_STATUS_OK, node);
        soup_server_message_unpause(msg);
        itk_sim_state_begin_starting(self->state);
        return G_SOURCE_REMOVE;
}

/* A hung request lives until its client goes away: then the socket reads EOF. */
static gboolean
itk_sim_held_socket_cb(GSocket *socket, GIOCondition condition, gpointer user_data)
{
        ItkSimHeld *held = user_data;
        g_autoptr(SoupServerMessage) msg = g_object_ref(held->msg);
        char byte;
        GInputVector vec = { &byte, 1 };
        int flags = G_SOCKET_MSG_PEEK;
        gssize n;

        n = g_socket_receive_message(socket, NULL, &vec, 1, NULL, NULL, &flags, NULL, NULL);
        if (n > 0) {
                /* The client sent more (pipelining): stop watching, stay hung. */
                g_clear_pointer(&held->source, g_source_unref);
                return G_SOURCE_REMOVE;
        }
        itk_sim_server_release(held->server, held);
        itk_sim_close_connection(msg);
        return G_SOURCE_REMOVE;
}

static void
itk_sim_server_hold(ItkSimServer *self, SoupServerMessage *msg, ItkSimHeldKind kind, guint ms)
{
        ItkSimHeld *held = g_new0(ItkSimHeld, 1);
        GSocket *socket;

        held->server = self;
        held->msg = g_object_ref(msg);
        held->kind = kind;
        soup_server_message_pause(msg);
        switch (kind) {
        case ITK_SIM_HELD_HANG:
                socket = soup_server_message_get_socket(msg);
                if (socket != NULL) {
                        held->source =
                                g_socket_create_source(socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
                        g_source_set_callback(held->source, G_SOURCE_FUNC(itk_sim_held_socket_cb),
                                              held, NULL);
                }
                break;
        case ITK_SIM_HELD_DROP:
                held->source = g_idle_source_new();
                g_source_set_callback(held->source, itk_sim_held_drop_cb, held, NULL);
                break;
        case ITK_SIM_HELD_SLOW:
                held->source = g_timeout_source_new(ms);
                g_source_set_callback(held->source, itk_sim_held_slow_cb, held, NULL);
                break;
        case ITK_SIM_HELD_RESTORE:
                held->source = g_timeout_source_new(ms);
                g_source_set_callback(held->source, itk_sim_held_restore_cb, held, NULL);
                break;
        }
        if (held->source != NULL)
                g_source_attach(held->source, NULL);
        g_ptr_array_add(self->held, held);
}

void
itk_sim_server_hold_restore(ItkSimServer *self, SoupServerMessage *msg, guint ms)
{
        itk_sim_server_hold(self, msg, ITK_SIM_HELD_RESTORE, ms);
}

/* ---- state directory ---- */

static void
itk_sim_server_saved_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkSimServer *self = user_data;
        g_autoptr(GError) error = NULL;

        if (!g_file_replace_contents_finish(G_FILE(source), result, NULL, &error))
                g_warning("writing %s: %s", g_file_peek_path(G_FILE(source)), error->message);
        self->pending_writes--;
}

char *
itk_sim_server_save_file(ItkSimServer *self, const char *relpath, GBytes *bytes)
{
        g_autofree char *path = g_build_filename(self->state_dir, relpath, NULL);
        g_autofree char *dir = g_path_get_dirname(path);
        g_autoptr(GFile) file = g_file_new_for_path(path);

        if (g_mkdir_with_parents(dir, 0700) < 0) {
                g_warning("creating %s: %s", dir, g_strerror(errno));
                return NULL;
        }
        self->pending_writes++;
        g_file_replace_contents_bytes_async(file, bytes, NULL, FALSE,
                                            G_FILE_CREATE_REPLACE_DESTINATION, NULL,
                                            itk_sim_server_saved_cb, self);
        return g_steal_pointer(&path);
}

static void
itk_sim_rm_rf(const char *path)
{
        g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
        const char *name;

        while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
                g_autofree char *child = g_build_filename(path, name, NULL);

                if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
                    !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
                        itk_sim_rm_rf(child);
                else
                        g_unlink(child);
        }
        g_rmdir(path);
}

/* ---- /sim/: runtime control for the tests ---- */

static void
itk_sim_reply_state(ItkSimServer *self, SoupServerMessage *msg)
{
        JsonNode *node = itk_sim_state_to_json(self->state);
        JsonObject *o = json_node_get_object(node);

        json_object_set_int_member(o, "port", self->state->port);
        json_object_set_int_member(o, "heldRequests", self->held->len);
        json_object_set_string_member(o, "stateDir", self->state_dir);
        itk_sim_reply_json(msg, SOUP_STATUS_OK, node);
}

static gboolean
itk_sim_is_loopback(SoupServerMessage *msg)
{
        GSocketAddress *addr = soup_server_message_get_remote_address(msg);

        return G_IS_INET_SOCKET_ADDRESS(addr) &&
               g_inet_address_get_is_loopback(
                       g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(addr)));
}

static void
itk_sim_server_control(ItkSimServer *self, SoupServerMessage *msg, const char *path,
                       GHashTable *query)
{
        const char *method = soup_server_message_get_method(msg);
        gboolean post = g_strcmp0(method, SOUP_METHOD_POST) == 0;
        g_autoptr(GError) error = NULL;

        if (!itk_sim_is_loopback(msg)) {
                itk_sim_reply_message(msg, SOUP_STATUS_FORBIDDEN, "loopback only");
                return;
        }
        if (g_strcmp0(path, "/sim/state") == 0 && g_strcmp0(method, SOUP_METHOD_GET) == 0) {
                itk_sim_reply_state(self, msg);
        } else if (g_strcmp0(path, "/sim/reset") == 0 && post) {
                itk_sim_state_reset(self->state);
                g_hash_table_remove_all(self->sessions);
                itk_sim_reply_state(self, msg);
        } else if (g_strcmp0(path, "/sim/fault") == 0 && post) {
                if (!itk_sim_state_set_fault(self->state, itk_sim_query(query, "path"),
                                             itk_sim_query(query, "mode"), &error)) {
                        itk_sim_reply_message(msg, SOUP_STATUS_BAD_REQUEST, "%s", error->message);
                        return;
                }
                itk_sim_reply_state(self, msg);
        } else if (g_strcmp0(path, "/sim/restart-never-returns") == 0 && post) {
                itk_sim_state_set_restart_never_returns(self->state,
                                                        itk_sim_query_bool(query, "on"));
                itk_sim_reply_state(self, msg);
        } else if (g_strcmp0(path, "/sim/commissioned") == 0 && post) {
                self->state->commissioned = itk_sim_query_bool(query, "on");
                itk_sim_reply_state(self, msg);
        } else if (g_strcmp0(path, "/sim/clicks") == 0 && g_strcmp0(method, SOUP_METHOD_GET) == 0) {
                /* A page that shows every click and key it gets (live view
                 * steering tests); with ?tick it also keeps changing. */
                itk_sim_reply_html(
                        msg, SOUP_STATUS_OK,
                        g_strdup("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                                 "<title>Clicks</title><style>html,body{margin:0;height:100%}"
                                 "#pad{position:fixed;inset:0;background:#eef}"
                                 "#log{position:relative;z-index:1;margin:60px 10px}</style>"
                                 "</head><body><div id=\"pad\"></div><div id=\"log\">"
                                 "<input id=\"field\"><ol id=\"clicks\"></ol>"
                                 "<ol id=\"keys\"></ol></div><script>"
                                 "function add(id,t){const li=document.createElement('li');"
                                 "li.textContent=t;document.getElementById(id).appendChild(li)}"
                                 "document.addEventListener('click',e=>add('clicks',"
                                 "Math.round(e.clientX)+','+Math.round(e.clientY)+' '+e.button));"
                                 "document.addEventListener('keydown',e=>add('keys',e.key));"
                                 /* ?tick: a counter that changes the page 10 times a
                                  * second, for tests of a moving picture. */
                                 "if(location.search.includes('tick')){const t="
                                 "document.createElement('p');t.id='tick';"
                                 "document.getElementById('log').prepend(t);let n=0;"
                                 "setInterval(()=>{t.textContent='tick '+(++n)},100)}"
                                 "</script></body></html>\n"));
        } else if (g_strcmp0(path, "/sim/trial") == 0 && post) {
                itk_sim_state_set_trial_expired(self->state, itk_sim_query_bool(query, "expired"));
                itk_sim_reply_state(self, msg);
        } else {
                itk_sim_reply_message(msg, SOUP_STATUS_NOT_FOUND, "No simulator control at %s %s",
                                      method, path);
        }
}

/* ---- the dispatcher ---- */

static void
itk_sim_record_header_cb(const char *name, const char *value, gpointer user_data)
{
        JsonObject *o = user_data;

        if (g_ascii_strcasecmp(name, ITK_SIM_TOKEN_HEADER) == 0) {
                /* Keep the token name, never the key. */
                const char *colon = strrchr(value, ':');
                g_autofree char *redacted =
                        colon != NULL
                                ? g_strdup_printf("%.*s:<redacted>", (int)(colon - value), value)
                                : g_strdup("<redacted>");
                json_object_set_string_member(o, name, redacted);
        } else if (g_ascii_strcasecmp(name, "Authorization") == 0 ||
                   g_ascii_strcasecmp(name, "Cookie") == 0) {
                json_object_set_string_member(o, name, "<redacted>");
        } else {
                json_object_set_string_member(o, name, value);
        }
}

static void
itk_sim_server_record(ItkSimServer *self, SoupServerMessage *msg, const char *path)
{
        const char *method = soup_server_message_get_method(msg);
        const char *pattern = itk_sim_api_route_pattern(method, path);
        g_autofree char *key = g_strdup_printf("%s %s", method, pattern != NULL ? pattern : path);
        JsonObject *headers = json_object_new();

        itk_sim_state_count(self->state, key);
        soup_message_headers_foreach(soup_server_message_get_request_headers(msg),
                                     itk_sim_record_header_cb, headers);
        g_clear_pointer(&self->state->last_headers, json_object_unref);
        self->state->last_headers = headers;
        g_free(self->state->last_request);
        self->state->last_request = g_strdup_printf("%s %s", method, path);
        if (self->verbose)
                g_printerr("itk-gateway-sim: %s %s\n", method, path);
}

static void
itk_sim_reply_status_ping(ItkSimServer *self, SoupServerMessage *msg)
{
        JsonNode *node = json_node_new(JSON_NODE_OBJECT);
        JsonObject *o = json_object_new();

        if (self->state->phase == ITK_SIM_PHASE_STARTING) {
                json_object_set_string_member(o, "state", "STARTING");
        } else {
                json_object_set_string_member(o, "state", "RUNNING");
                if (!self->state->commissioned)
                        json_object_set_string_member(o, "details", "COMMISSIONING");
        }
        json_node_take_object(node, o);
        itk_sim_reply_json(msg, SOUP_STATUS_OK, node);
}

static GHashTable *
itk_sim_parse_query(SoupServerMessage *msg)
{
        const char *q = g_uri_get_query(soup_server_message_get_uri(msg));
        return q != NULL ? soup_form_decode(q) : NULL;
}

static void
itk_sim_server_dispatch(ItkSimServer *self, SoupServerMessage *msg)
{
        const char *path = g_uri_get_path(soup_server_message_get_uri(msg));
        g_autoptr(GHashTable) query = itk_sim_parse_query(msg);

        if (g_object_get_data(G_OBJECT(msg), ITK_SIM_TOO_LARGE) != NULL) {
                itk_sim_reply_message(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                                      "Request body exceeds %" G_GSIZE_FORMAT " bytes",
                                      self->max_body);
                return;
        }
        /* An uncommissioned gateway sends everything to the commissioning
         * pages; only the health check answers. */
        if (!self->state->commissioned && g_strcmp0(path, "/StatusPing") != 0 &&
            !g_str_has_prefix(path, "/welcome")) {
                soup_message_headers_replace(soup_server_message_get_response_headers(msg),
                                             "Location", "/welcome");
                soup_server_message_set_status(msg, SOUP_STATUS_FOUND, NULL);
                return;
        }
        if (g_strcmp0(path, "/StatusPing") == 0) {
                itk_sim_reply_status_ping(self, msg);
                return;
        }
        if (self->state->phase == ITK_SIM_PHASE_STARTING) {
                itk_sim_reply_jetty(msg, SOUP_STATUS_SERVICE_UNAVAILABLE);
                return;
        }
        if ((g_str_has_prefix(path, "/data/") || g_strcmp0(path, "/data") == 0) &&
            !g_str_has_prefix(path, "/data/perspective/"))
                itk_sim_api_dispatch(self, msg, path, query);
        else
                itk_sim_web_dispatch(self, msg, path, query);
}

static void
itk_sim_server_handle_cb(SoupServer *server, SoupServerMessage *msg, const char *decoded_path,
                         GHashTable *query, gpointer user_data)
{
        ItkSimServer *self = user_data;
        const char *path = g_uri_get_path(soup_server_message_get_uri(msg));
        ItkSimFault *fault;

        if (g_str_has_prefix(path, "/sim/")) {
                itk_sim_server_control(self, msg, path, query);
                return;
        }
        /* Down, not answering: clients see the connection close. */
        if (self->state->phase == ITK_SIM_PHASE_OFFLINE) {
                itk_sim_close_connection(msg);
                return;
        }
        itk_sim_server_record(self, msg, path);

        fault = itk_sim_state_find_fault(self->state, path);
        switch (fault != NULL ? fault->mode : ITK_SIM_FAULT_NONE) {
        case ITK_SIM_FAULT_NONE:
                itk_sim_server_dispatch(self, msg);
                break;
        case ITK_SIM_FAULT_HANG:
                itk_sim_server_hold(self, msg, ITK_SIM_HELD_HANG, 0);
                break;
        case ITK_SIM_FAULT_DROP:
                itk_sim_server_hold(self, msg, ITK_SIM_HELD_DROP, 0);
                break;
        case ITK_SIM_FAULT_SLOW:
                itk_sim_server_hold(self, msg, ITK_SIM_HELD_SLOW, fault->slow_ms);
                break;
        case ITK_SIM_FAULT_500:
                itk_sim_reply_message(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR,
                                      "Simulated internal error");
                break;
        case ITK_SIM_FAULT_HTML500:
                itk_sim_reply_jetty(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR);
                break;
        }
}

/* Bounds memory: past max_body the body is no longer kept, and the
 * request gets 413 once it has been read. */
static void
itk_sim_mark_too_large(SoupServerMessage *msg)
{
        SoupMessageBody *body = soup_server_message_get_request_body(msg);

        soup_message_body_set_accumulate(body, FALSE);
        soup_message_body_truncate(body);
        g_object_set_data(G_OBJECT(msg), ITK_SIM_TOO_LARGE, GINT_TO_POINTER(1));
}

static void
itk_sim_got_chunk_cb(SoupServerMessage *msg, GBytes *chunk, gpointer user_data)
{
        ItkSimServer *self = user_data;
        gsize *size = g_object_get_data(G_OBJECT(msg), ITK_SIM_BODY_SIZE);

        *size += g_bytes_get_size(chunk);
        if (*size > self->max_body && g_object_get_data(G_OBJECT(msg), ITK_SIM_TOO_LARGE) == NULL)
                itk_sim_mark_too_large(msg);
}

static void
itk_sim_server_early_cb(SoupServer *server, SoupServerMessage *msg, const char *decoded_path,
                        GHashTable *query, gpointer user_data)
{
        ItkSimServer *self = user_data;
        SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);

        if (soup_message_headers_get_encoding(h) == SOUP_ENCODING_CONTENT_LENGTH &&
            (guint64)soup_message_headers_get_content_length(h) > self->max_body) {
                itk_sim_mark_too_large(msg);
                return;
        }
        g_object_set_data_full(G_OBJECT(msg), ITK_SIM_BODY_SIZE, g_new0(gsize, 1), g_free);
        g_signal_connect(msg, "got-chunk", G_CALLBACK(itk_sim_got_chunk_cb), self);
}

/* ---- lifecycle ---- */

ItkSimServer *
itk_sim_server_new(ItkSimState *state, const ItkSimServerOptions *options, GError **error)
{
        g_autoptr(ItkSimServer) self = g_new0(ItkSimServer, 1);

        self->state = state;
        self->max_body = options->max_body;
        self->web_user = g_strdup(options->web_user);
        self->web_password = g_strdup(options->web_password);
        self->verbose = options->verbose;
        self->sessions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        self->held = g_ptr_array_new_with_free_func(itk_sim_held_free);
        if (options->state_dir != NULL) {
                if (g_mkdir_with_parents(options->state_dir, 0700) < 0) {
                        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                                    "cannot create %s: %s", options->state_dir, g_strerror(errno));
                        return NULL;
                }
                self->state_dir = g_strdup(options->state_dir);
        } else {
                self->state_dir = g_dir_make_tmp("itk-gateway-sim-XXXXXX", error);
                if (self->state_dir == NULL)
                        return NULL;
                self->state_dir_is_temp = TRUE;
        }
        self->soup = soup_server_new("server-header", "Jetty(12.0.16)", NULL);
        soup_server_add_early_handler(self->soup, NULL, itk_sim_server_early_cb, self, NULL);
        soup_server_add_handler(self->soup, NULL, itk_sim_server_handle_cb, self, NULL);
        return g_steal_pointer(&self);
}

guint
itk_sim_server_listen(ItkSimServer *self, guint port, GError **error)
{
        g_autoptr(GSocketAddress) addr = g_inet_socket_address_new_from_string("127.0.0.1", port);
        g_autoptr(GSocket) socket = NULL;
        GSList *uris;
        guint bound;

        /* Our own socket, for a listen backlog that survives many runs
         * connecting at once (soup_server_listen() keeps GSocket's 10). */
        socket = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                              error);
        if (socket == NULL)
                return 0;
        g_socket_set_listen_backlog(socket, SOMAXCONN);
        if (!g_socket_bind(socket, addr, TRUE, error) || !g_socket_listen(socket, error))
                return 0;
        if (!soup_server_listen_socket(self->soup, socket, 0, error))
                return 0;
        uris = soup_server_get_uris(self->soup);
        bound = uris != NULL ? (guint)g_uri_get_port(uris->data) : 0;
        g_slist_free_full(uris, (GDestroyNotify)g_uri_unref);
        self->state->port = bound;
        return bound;
}

void
itk_sim_server_free(ItkSimServer *self)
{
        if (self == NULL)
                return;
        /* Held requests get their connection closed: no client waits forever. */
        while (self->held->len > 0) {
                ItkSimHeld *held = g_ptr_array_index(self->held, self->held->len - 1);
                g_autoptr(SoupServerMessage) msg = g_object_ref(held->msg);

                g_ptr_array_remove_index(self->held, self->held->len - 1);
                itk_sim_close_connection(msg);
        }
        if (self->soup != NULL) {
                soup_server_disconnect(self->soup);
                while (g_main_context_iteration(NULL, FALSE))
                        ;
                g_object_unref(self->soup);
        }
        while (self->pending_writes > 0)
                g_main_context_iteration(NULL, TRUE);
        if (self->state_dir_is_temp)
                itk_sim_rm_rf(self->state_dir);
        g_ptr_array_unref(self->held);
        g_hash_table_unref(self->sessions);
        g_free(self->state_dir);
        g_free(self->web_user);
        g_free(self->web_password);
        g_free(self);
}
