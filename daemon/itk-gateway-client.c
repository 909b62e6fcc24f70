/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <libsoup/soup.h>
#include <string.h>

#include "itk-error.h"
#include "itk-gateway-client.h"

#define ITK_GATEWAY_TOKEN_HEADER "X-Ignition-API-Token"
#define ITK_GATEWAY_DEFAULT_CONNECT_MS 10000
#define ITK_GATEWAY_DEFAULT_CALL_MS 60000
/* JSON answers above this are refused rather than held in memory. */
#define ITK_GATEWAY_MAX_BODY (32 * 1024 * 1024)
#define ITK_GATEWAY_READ_CHUNK 65536
/* The central directory of an archive worth uploading fits in this. */
#define ITK_ZIP_MAX_CENTRAL_DIRECTORY (64 * 1024 * 1024)

struct _ItkGatewayClient {
        GObject parent_instance;
        SoupSession *session;
        char *base_url; /* without a trailing '/' */
        char *token;    /* secret: only ever put in the request header */
        guint connect_timeout_ms;
        guint call_timeout_ms;
};

G_DEFINE_FINAL_TYPE(ItkGatewayClient, itk_gateway_client, G_TYPE_OBJECT)

static void
itk_gateway_client_finalize(GObject *object)
{
        ItkGatewayClient *self = ITK_GATEWAY_CLIENT(object);

        g_clear_object(&self->session);
        g_free(self->base_url);
        if (self->token != NULL)
                memset(self->token, 0, strlen(self->token));
        g_free(self->token);
        G_OBJECT_CLASS(itk_gateway_client_parent_class)->finalize(object);
}

static void
itk_gateway_client_class_init(ItkGatewayClientClass *klass)
{
        G_OBJECT_CLASS(klass)->finalize = itk_gateway_client_finalize;
}

static void
itk_gateway_client_init(ItkGatewayClient *self)
{
        self->connect_timeout_ms = ITK_GATEWAY_DEFAULT_CONNECT_MS;
        self->call_timeout_ms = ITK_GATEWAY_DEFAULT_CALL_MS;
}

/* A header value: printable ASCII without spaces, NAME:KEY. Nothing of the
 * token goes into the messages. */
static gboolean
itk_gateway_token_is_valid(const char *token, GError **error)
{
        const char *colon = strchr(token, ':');

        for (const char *p = token; *p != '\0'; p++) {
                if (*p <= 0x20 || *p >= 0x7f) {
                        g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                                            "the API token contains characters that cannot be "
                                            "sent in a header");
                        return FALSE;
                }
        }
        if (colon == NULL || colon == token || colon[1] == '\0') {
                g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                                    "the API token must be NAME:KEY (the key alone is refused "
                                    "by the gateway)");
                return FALSE;
        }
        return TRUE;
}

ItkGatewayClient *
itk_gateway_client_new(const char *base_url, const char *token, GError **error)
{
        g_autoptr(ItkGatewayClient) self = NULL;
        g_autoptr(GUri) uri = NULL;
        g_autoptr(GError) local_error = NULL;
        const char *scheme;
        gsize len;

        if (base_url == NULL || *base_url == '\0') {
                g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                                    "no gateway URL: give the run a gateway_url (parameter, "
                                    "option or credential) or the step a 'gateway_url'");
                return NULL;
        }
        uri = g_uri_parse(base_url, G_URI_FLAGS_NONE, &local_error);
        if (uri == NULL) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                            "gateway URL '%s' is not valid: %s", base_url, local_error->message);
                return NULL;
        }
        scheme = g_uri_get_scheme(uri);
        if ((g_ascii_strcasecmp(scheme, "http") != 0 && g_ascii_strcasecmp(scheme, "https") != 0) ||
            g_uri_get_host(uri) == NULL || *g_uri_get_host(uri) == '\0' ||
            g_uri_get_query(uri) != NULL || g_uri_get_userinfo(uri) != NULL) {
                /* A URL with user info may hold a password: don't repeat it. */
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                            "gateway URL '%s' must be http(s)://host[:port] without user or query",
                            g_uri_get_userinfo(uri) != NULL ? "(with user info)" : base_url);
                return NULL;
        }
        if (token != NULL && *token == '\0')
                token = NULL;
        if (token != NULL && !itk_gateway_token_is_valid(token, error))
                return NULL;

        self = g_object_new(ITK_TYPE_GATEWAY_CLIENT, NULL);
        self->base_url = g_strdup(base_url);
        len = strlen(self->base_url);
        while (len > 0 && self->base_url[len - 1] == '/')
                self->base_url[--len] = '\0';
        self->token = g_strdup(token);
        /* Timeouts are our own timers; keep-alive connections are reused. */
        self->session = soup_session_new_with_options("timeout", 0, "idle-timeout", 30, NULL);
        soup_session_remove_feature_by_type(self->session, SOUP_TYPE_CONTENT_DECODER);
        return g_steal_pointer(&self);
}

const char *
itk_gateway_client_get_base_url(ItkGatewayClient *self)
{
        return self->base_url;
}

gboolean
itk_gateway_client_has_token(ItkGatewayClient *self)
{
        return self->token != NULL;
}

void
itk_gateway_client_set_timeouts(ItkGatewayClient *self, guint connect_timeout_ms,
                                guint call_timeout_ms)
{
        self->connect_timeout_ms = connect_timeout_ms;
        self->call_timeout_ms = call_timeout_ms;
}

gboolean
itk_gateway_client_status_is_transient(guint status, const GError *error)
{
        if (error != NULL && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return FALSE;
        if (status == SOUP_STATUS_SERVICE_UNAVAILABLE)
                return TRUE;
        if (error != NULL && g_error_matches(error, ITK_ERROR, ITK_ERROR_TIMED_OUT))
                return TRUE;
        return status == 0 && error != NULL &&
               !g_error_matches(error, ITK_ERROR, ITK_ERROR_NOT_SUPPORTED) &&
               !g_error_matches(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS);
}

/* --- one call ---------------------------------------------------------------- */

typedef struct {
        ItkGatewayClient *client;
        SoupMessage *msg;
        char *url;  /* for messages; never holds the token */
        char *path; /* without the query */
        char *action;
        ItkGatewayRequestFlags flags;
        guint timeout_ms;
        char *upload_file;
        char *upload_content_type;
        char *download_file;
        GFile *tmp_file;

        /* The call runs on its own cancellable: the caller's cancels it, and so
         * do the timeouts. */
        GCancellable *cancellable;
        GCancellable *caller_cancellable;
        gulong caller_cancel_id;
        GSource *call_timeout;
        GSource *connect_timeout;
        gboolean timed_out;
        gboolean connect_timed_out;
        gboolean returned;

        guint status;
        GInputStream *body;
        GByteArray *data;
        gint64 downloaded;
} ItkGatewayCall;

static void
itk_gateway_call_clear_timers(ItkGatewayCall *call)
{
        if (call->call_timeout != NULL) {
                g_source_destroy(call->call_timeout);
                g_clear_pointer(&call->call_timeout, g_source_unref);
        }
        if (call->connect_timeout != NULL) {
                g_source_destroy(call->connect_timeout);
                g_clear_pointer(&call->connect_timeout, g_source_unref);
        }
}

static void
itk_gateway_call_free(ItkGatewayCall *call)
{
        itk_gateway_call_clear_timers(call);
        if (call->caller_cancel_id != 0)
                g_cancellable_disconnect(call->caller_cancellable, call->caller_cancel_id);
        g_clear_object(&call->caller_cancellable);
        if (call->msg != NULL)
                g_signal_handlers_disconnect_by_data(call->msg, call);
        g_clear_object(&call->msg);
        g_clear_object(&call->cancellable);
        if (call->body != NULL)
                /* An unread body: closing it drops the connection. */
                g_input_stream_close_async(call->body, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
        g_clear_object(&call->body);
        g_clear_pointer(&call->data, g_byte_array_unref);
        g_clear_object(&call->tmp_file);
        g_clear_object(&call->client);
        g_free(call->url);
        g_free(call->path);
        g_free(call->action);
        g_free(call->upload_file);
        g_free(call->upload_content_type);
        g_free(call->download_file);
        g_free(call);
}

/* Completes the task once; later callbacks of the abandoned operation only
 * clean up. Takes the task reference. */
static void
itk_gateway_call_return_error(GTask *task, GError *error)
{
        ItkGatewayCall *call = g_task_get_task_data(task);

        if (call->returned) {
                g_error_free(error);
        } else {
                call->returned = TRUE;
                itk_gateway_call_clear_timers(call);
                g_task_return_error(task, error);
        }
        g_object_unref(task);
}

static void
itk_gateway_call_return_node(GTask *task, JsonNode *node)
{
        ItkGatewayCall *call = g_task_get_task_data(task);

        if (call->returned) {
                g_clear_pointer(&node, json_node_unref);
        } else {
                call->returned = TRUE;
                itk_gateway_call_clear_timers(call);
                g_task_return_pointer(task, node,
                                      node != NULL ? (GDestroyNotify)json_node_unref : NULL);
        }
        g_object_unref(task);
}

/* Replaces an error caused by our own cancellation with what it meant. */
static GError *
itk_gateway_call_map_error(ItkGatewayCall *call, GError *error)
{
        if (g_cancellable_is_cancelled(call->caller_cancellable)) {
                g_error_free(error);
                return g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                           "gateway request cancelled");
        }
        if (call->connect_timed_out) {
                g_error_free(error);
                return g_error_new(ITK_ERROR, ITK_ERROR_TIMED_OUT,
                                   "could not connect to the gateway at %s within %u s",
                                   call->client->base_url,
                                   (call->client->connect_timeout_ms + 999) / 1000);
        }
        if (call->timed_out) {
                g_error_free(error);
                return g_error_new(ITK_ERROR, ITK_ERROR_TIMED_OUT,
                                   "the gateway did not answer %s %s within %u s",
                                   soup_message_get_method(call->msg), call->path,
                                   (call->timeout_ms + 999) / 1000);
        }
        return error;
}

static void
itk_gateway_call_fail(GTask *task, GError *error)
{
        itk_gateway_call_return_error(
                task, itk_gateway_call_map_error(g_task_get_task_data(task), error));
}

/* The caller's cancellable fired: stop libsoup and answer at once, whatever
 * libsoup still does. */
static gboolean
itk_gateway_call_cancelled_idle_cb(gpointer user_data)
{
        GTask *task = user_data;
        ItkGatewayCall *call = g_task_get_task_data(task);

        g_cancellable_cancel(call->cancellable);
        itk_gateway_call_return_error(
                g_object_ref(task),
                g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "gateway request cancelled"));
        return G_SOURCE_REMOVE;
}

static void
itk_gateway_call_caller_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
        GTask *task = user_data;

        /* Nothing synchronous here: completing the call inside the emission
         * could make its owner disconnect from this cancellable, which
         * deadlocks in GLib. */
        g_idle_add_full(G_PRIORITY_HIGH, itk_gateway_call_cancelled_idle_cb, g_object_ref(task),
                        g_object_unref);
}

static gboolean
itk_gateway_call_timeout_cb(gpointer user_data)
{
        ItkGatewayCall *call = user_data;

        call->timed_out = TRUE;
        g_clear_pointer(&call->call_timeout, g_source_unref);
        g_cancellable_cancel(call->cancellable);
        return G_SOURCE_REMOVE;
}

static gboolean
itk_gateway_call_connect_timeout_cb(gpointer user_data)
{
        ItkGatewayCall *call = user_data;

        call->connect_timed_out = TRUE;
        g_clear_pointer(&call->connect_timeout, g_source_unref);
        g_cancellable_cancel(call->cancellable);
        return G_SOURCE_REMOVE;
}

static void
itk_gateway_call_connected(ItkGatewayCall *call)
{
        if (call->connect_timeout != NULL) {
                g_source_destroy(call->connect_timeout);
                g_clear_pointer(&call->connect_timeout, g_source_unref);
        }
}

static void
itk_gateway_network_event_cb(SoupMessage *msg, GSocketClientEvent event, GIOStream *connection,
                             gpointer user_data)
{
        if (event == G_SOCKET_CLIENT_COMPLETE)
                itk_gateway_call_connected(user_data);
}

static void
itk_gateway_wrote_headers_cb(SoupMessage *msg, gpointer user_data)
{
        /* A reused keep-alive connection emits no network events. */
        itk_gateway_call_connected(user_data);
}

static GSource *
itk_gateway_timeout_source_new(guint ms, GSourceFunc func, gpointer data)
{
        GSource *source = g_timeout_source_new(ms);

        g_source_set_callback(source, func, data, NULL);
        g_source_attach(source, g_main_context_get_thread_default());
        return source;
}

/* --- answers ----------------------------------------------------------------- */

static gboolean
itk_gateway_content_type_is_json(SoupMessage *msg)
{
        const char *type =
                soup_message_headers_get_content_type(soup_message_get_response_headers(msg), NULL);

        return type != NULL && (g_ascii_strcasecmp(type, "application/json") == 0 ||
                                g_str_has_suffix(type, "+json"));
}

static gboolean
itk_gateway_content_type_is_html(SoupMessage *msg)
{
        const char *type =
                soup_message_headers_get_content_type(soup_message_get_response_headers(msg), NULL);

        return type != NULL && (g_ascii_strcasecmp(type, "text/html") == 0 ||
                                g_ascii_strcasecmp(type, "application/xhtml+xml") == 0);
}

/* "<title>Error 401 Unauthorized</title>" -> "Error 401 Unauthorized". */
static char *
itk_gateway_html_title(GByteArray *data)
{
        g_autofree char *text = g_strndup((const char *)data->data, MIN(data->len, 65536));
        g_autofree char *lower = g_ascii_strdown(text, -1);
        const char *start = strstr(lower, "<title>");
        const char *end;
        g_autofree char *title = NULL;

        if (start == NULL)
                return NULL;
        start += strlen("<title>");
        end = strstr(start, "</title>");
        if (end == NULL)
                return NULL;
        title = g_strndup(text + (start - lower), end - start);
        g_strstrip(title);
        if (!g_utf8_validate(title, -1, NULL) || *title == '\0')
                return NULL;
        return g_steal_pointer(&title);
}

/* {"message": ...}, {"problem": "..."} or {"problem": {"message": ...}}, "error". */
static char *
itk_gateway_json_message(JsonNode *node)
{
        JsonObject *o;
        JsonNode *problem;
        const char *members[] = { "message", "error", "detail", NULL };

        if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node))
                return NULL;
        o = json_node_get_object(node);
        problem = json_object_get_member(o, "problem");
        if (problem != NULL && JSON_NODE_HOLDS_VALUE(problem) &&
            json_node_get_value_type(problem) == G_TYPE_STRING)
                return g_strdup(json_node_get_string(problem));
        if (problem != NULL && JSON_NODE_HOLDS_OBJECT(problem)) {
                g_autofree char *inner = itk_gateway_json_message(problem);
                if (inner != NULL)
                        return g_steal_pointer(&inner);
        }
        for (guint i = 0; members[i] != NULL; i++) {
                JsonNode *m = json_object_get_member(o, members[i]);
                if (m != NULL && JSON_NODE_HOLDS_VALUE(m) &&
                    json_node_get_value_type(m) == G_TYPE_STRING)
                        return g_strdup(json_node_get_string(m));
        }
        return NULL;
}

/* A refusal inside a 200: success false, or a problem. NULL when none. */
static char *
itk_gateway_refusal(JsonNode *node)
{
        JsonObject *o;
        JsonNode *success, *problem, *failed;
        g_autofree char *message = NULL;

        if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node))
                return NULL;
        o = json_node_get_object(node);
        success = json_object_get_member(o, "success");
        problem = json_object_get_member(o, "problem");
        if (!(success != NULL && JSON_NODE_HOLDS_VALUE(success) &&
              json_node_get_value_type(success) == G_TYPE_BOOLEAN &&
              !json_node_get_boolean(success)) &&
            (problem == NULL || JSON_NODE_HOLDS_NULL(problem)))
                return NULL;
        message = itk_gateway_json_message(node);
        if (message != NULL)
                return g_steal_pointer(&message);
        /* modules/uninstall: {"success": false, "failedUninstalls": {"uninstall": [ids]}} */
        failed = json_object_get_member(o, "failedUninstalls");
        if (failed != NULL && JSON_NODE_HOLDS_OBJECT(failed)) {
                JsonNode *ids = json_object_get_member(json_node_get_object(failed), "uninstall");
                if (ids != NULL && JSON_NODE_HOLDS_ARRAY(ids)) {
                        g_autoptr(GString) s = g_string_new("could not uninstall");
                        JsonArray *a = json_node_get_array(ids);
                        for (guint i = 0; i < json_array_get_length(a); i++) {
                                JsonNode *n = json_array_get_element(a, i);
                                if (JSON_NODE_HOLDS_VALUE(n) &&
                                    json_node_get_value_type(n) == G_TYPE_STRING)
                                        g_string_append_printf(s, "%s %s", i > 0 ? "," : "",
                                                               json_node_get_string(n));
                        }
                        return g_string_free(g_steal_pointer(&s), FALSE);
                }
        }
        return g_strdup("no reason given");
}

static JsonNode *
itk_gateway_parse_json(GByteArray *data, GError **error)
{
        g_autoptr(JsonParser) parser = json_parser_new_immutable();

        if (data->len == 0)
                return NULL;
        if (!json_parser_load_from_data(parser, (const char *)data->data, data->len, error))
                return NULL;
        return json_node_ref(json_parser_get_root(parser));
}

/* The explanation of a non-2xx status. */
static GError *
itk_gateway_status_error(ItkGatewayCall *call, JsonNode *json)
{
        SoupMessage *msg = call->msg;
        guint status = call->status;
        g_autofree char *detail = NULL;
        const char *method = soup_message_get_method(msg);

        if (json != NULL)
                detail = itk_gateway_json_message(json);
        else if (call->data != NULL && itk_gateway_content_type_is_html(msg))
                detail = itk_gateway_html_title(call->data);

        if (SOUP_STATUS_IS_REDIRECTION(status)) {
                const char *location = soup_message_headers_get_one(
                        soup_message_get_response_headers(msg), "Location");
                if (location != NULL && strstr(location, "/welcome") != NULL)
                        return g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                           "gateway not commissioned: %s redirects every request "
                                           "to its setup page (/welcome); finish commissioning "
                                           "first",
                                           call->client->base_url);
                return g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                   "the gateway answered %s %s with a redirect (HTTP %u to %s); "
                                   "redirects are not followed",
                                   method, call->path, status, location ? location : "nowhere");
        }
        switch (status) {
        case SOUP_STATUS_UNAUTHORIZED:
                if (call->client->token == NULL || (call->flags & ITK_GATEWAY_REQUEST_NO_AUTH))
                        return g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                           "the API token is missing or unknown (HTTP 401 on %s): "
                                           "give the run a gateway API token (credential or "
                                           "gateway_token parameter)",
                                           call->path);
                return g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                   "the API token is missing or unknown (HTTP 401 on %s): check "
                                   "the token's name and key on the gateway",
                                   call->path);
        case SOUP_STATUS_FORBIDDEN:
                return g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                   "the API token is not permitted to %s (HTTP 403 on %s): it is "
                                   "read-only, lacks the permission, or requires HTTPS%s%s",
                                   call->action ? call->action : "make this call", call->path,
                                   detail ? ": " : "", detail ? detail : "");
        case SOUP_STATUS_SERVICE_UNAVAILABLE:
                return g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                   "gateway is restarting (HTTP 503 on %s); wait for it with "
                                   "gateway.wait_for_ready",
                                   call->path);
        case SOUP_STATUS_NOT_FOUND:
                /* Jetty's own HTML 404 under /data: no REST API servlet (8.1). */
                if (json == NULL && g_str_has_prefix(call->path, "/data/"))
                        return g_error_new(ITK_ERROR, ITK_ERROR_NOT_SUPPORTED,
                                           "the gateway at %s has no REST API (%s not found): "
                                           "this step needs Ignition 8.3+",
                                           call->client->base_url, call->path);
                break;
        default:
                break;
        }
        return g_error_new(ITK_ERROR, ITK_ERROR_FAILED, "%s %s failed: HTTP %u %s%s%s", method,
                           call->path, status,
                           soup_message_get_reason_phrase(msg) ? soup_message_get_reason_phrase(msg)
                                                               : "",
                           detail ? ": " : "", detail ? detail : "");
}

static void
itk_gateway_call_finish_body(GTask *task)
{
        ItkGatewayCall *call = g_task_get_task_data(task);
        g_autoptr(JsonNode) json = NULL;
        g_autoptr(GError) error = NULL;
        gboolean is_json = itk_gateway_content_type_is_json(call->msg);

        if (is_json) {
                json = itk_gateway_parse_json(call->data, &error);
                if (error != NULL && SOUP_STATUS_IS_SUCCESSFUL(call->status)) {
                        itk_gateway_call_return_error(
                                task, g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                                  "the gateway answered %s with invalid JSON: %s",
                                                  call->path, error->message));
                        return;
                }
        }
        if (!SOUP_STATUS_IS_SUCCESSFUL(call->status)) {
                itk_gateway_call_return_error(task, itk_gateway_status_error(call, json));
                return;
        }
        if (!is_json && itk_gateway_content_type_is_html(call->msg) &&
            g_str_has_prefix(call->path, "/data/")) {
                /* An HTML page where the API answers JSON: a proxy or login page. */
                g_autofree char *title = itk_gateway_html_title(call->data);
                itk_gateway_call_return_error(
                        task, g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                          "the gateway answered %s with an HTML page (%s), not "
                                          "the API",
                                          call->path, title ? title : "no title"));
                return;
        }
        if (!(call->flags & ITK_GATEWAY_REQUEST_NO_REFUSAL_CHECK)) {
                g_autofree char *refusal = itk_gateway_refusal(json);
                if (refusal != NULL) {
                        itk_gateway_call_return_error(
                                task, g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                                  "the gateway refused %s %s: %s",
                                                  soup_message_get_method(call->msg), call->path,
                                                  refusal));
                        return;
                }
        }
        itk_gateway_call_return_node(task, g_steal_pointer(&json));
}

static void itk_gateway_read_body_next(GTask *task);

static void
itk_gateway_read_body_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        GTask *task = user_data;
        ItkGatewayCall *call = g_task_get_task_data(task);
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) bytes =
                g_input_stream_read_bytes_finish(G_INPUT_STREAM(source), result, &error);

        if (bytes == NULL) {
                itk_gateway_call_fail(task,
                                      g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                                  "reading the gateway's answer to %s failed: %s",
                                                  call->path, error->message));
                return;
        }
        if (g_bytes_get_size(bytes) == 0) {
                g_clear_object(&call->body);
                itk_gateway_call_finish_body(task);
                return;
        }
        if (call->data->len + g_bytes_get_size(bytes) > ITK_GATEWAY_MAX_BODY) {
                itk_gateway_call_return_error(
                        task, g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                          "the gateway's answer to %s is larger than %u MiB",
                                          call->path, ITK_GATEWAY_MAX_BODY / (1024 * 1024)));
                return;
        }
        g_byte_array_append(call->data, g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
        itk_gateway_read_body_next(task);
}

static void
itk_gateway_read_body_next(GTask *task)
{
        ItkGatewayCall *call = g_task_get_task_data(task);

        g_input_stream_read_bytes_async(call->body, ITK_GATEWAY_READ_CHUNK, G_PRIORITY_DEFAULT,
                                        call->cancellable, itk_gateway_read_body_cb, task);
}

/* --- downloads ------------------------------------------------------------- */

static void
itk_gateway_download_drop_tmp(ItkGatewayCall *call)
{
        if (call->tmp_file != NULL)
                g_file_delete_async(call->tmp_file, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
}

static void
itk_gateway_download_moved_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        GTask *task = user_data;
        ItkGatewayCall *call = g_task_get_task_data(task);
        g_autoptr(GError) error = NULL;
        JsonObject *o;
        JsonNode *node;

        if (!g_file_move_finish(G_FILE(source), result, &error)) {
                itk_gateway_download_drop_tmp(call);
                itk_gateway_call_fail(task, g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                                        "cannot write %s: %s", call->download_file,
                                                        error->message));
                return;
        }
        g_clear_object(&call->tmp_file);
        o = json_object_new();
        json_object_set_string_member(o, "path", call->download_file);
        json_object_set_int_member(o, "size", call->downloaded);
        node = json_node_new(JSON_NODE_OBJECT);
        json_node_take_object(node, o);
        itk_gateway_call_return_node(task, node);
}

static void
itk_gateway_download_spliced_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        GTask *task = user_data;
        ItkGatewayCall *call = g_task_get_task_data(task);
        g_autoptr(GError) error = NULL;
        g_autoptr(GFile) dest = NULL;
        gssize n = g_output_stream_splice_finish(G_OUTPUT_STREAM(source), result, &error);

        if (n < 0) {
                itk_gateway_download_drop_tmp(call);
                itk_gateway_call_fail(task,
                                      g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                                  "downloading %s to %s failed: %s", call->path,
                                                  call->download_file, error->message));
                return;
        }
        g_clear_object(&call->body);
        call->downloaded = n;
        dest = g_file_new_for_path(call->download_file);
        g_file_move_async(call->tmp_file, dest, G_FILE_COPY_OVERWRITE, G_PRIORITY_DEFAULT,
                          call->cancellable, NULL, NULL, itk_gateway_download_moved_cb, task);
}

static void
itk_gateway_download_created_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        GTask *task = user_data;
        ItkGatewayCall *call = g_task_get_task_data(task);
        g_autoptr(GError) error = NULL;
        g_autoptr(GFileOutputStream) out = g_file_create_finish(G_FILE(source), result, &error);

        if (out == NULL) {
                itk_gateway_call_fail(task, g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                                        "cannot write %s: %s", call->download_file,
                                                        error->message));
                return;
        }
        g_output_stream_splice_async(
                G_OUTPUT_STREAM(out), call->body,
                G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
                G_PRIORITY_DEFAULT, call->cancellable, itk_gateway_download_spliced_cb, task);
}

static void
itk_gateway_download_start(GTask *task)
{
        ItkGatewayCall *call = g_task_get_task_data(task);
        g_autofree char *dir = g_path_get_dirname(call->download_file);
        g_autofree char *base = g_path_get_basename(call->download_file);
        g_autofree char *tmp_name = g_strdup_printf(".%s.%08x.part", base, g_random_int());
        g_autofree char *tmp_path = g_build_filename(dir, tmp_name, NULL);

        call->tmp_file = g_file_new_for_path(tmp_path);
        g_file_create_async(call->tmp_file, G_FILE_CREATE_PRIVATE, G_PRIORITY_DEFAULT,
                            call->cancellable, itk_gateway_download_created_cb, task);
}

static void
itk_gateway_download_sniffed_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        GTask *task = user_data;
        ItkGatewayCall *call = g_task_get_task_data(task);
        g_autoptr(GError) error = NULL;
        gsize available = 0;
        const guint8 *peek;

        if (g_buffered_input_stream_fill_finish(G_BUFFERED_INPUT_STREAM(source), result, &error) <
            0) {
                itk_gateway_call_fail(task,
                                      g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                                  "reading the gateway's answer to %s failed: %s",
                                                  call->path, error->message));
                return;
        }
        peek = g_buffered_input_stream_peek_buffer(G_BUFFERED_INPUT_STREAM(source), &available);
        /* Don't trust Content-Type: sniff the ZIP signature. */
        if (available < 4 || memcmp(peek, "PK\x03\x04", 4) != 0) {
                itk_gateway_call_return_error(
                        task,
                        g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                    "the gateway's answer to %s is not a ZIP archive", call->path));
                return;
        }
        itk_gateway_download_start(task);
}

/* --- sending ----------------------------------------------------------------- */

/* Errors of libsoup and GIO become ITK_ERROR_FAILED with their text; a
 * cancellation stays one (itk_gateway_call_map_error says what it meant). */
static GError *
itk_gateway_error_to_itk(GError *error)
{
        GError *mapped;

        if (error->domain == ITK_ERROR || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return error;
        mapped = g_error_new_literal(ITK_ERROR, ITK_ERROR_FAILED, error->message);
        g_error_free(error);
        return mapped;
}

static void
itk_gateway_sent_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        GTask *task = user_data;
        ItkGatewayCall *call = g_task_get_task_data(task);
        g_autoptr(GError) error = NULL;
        g_autoptr(GInputStream) body =
                soup_session_send_finish(SOUP_SESSION(source), result, &error);

        if (body == NULL) {
                if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                        g_prefix_error(&error, "could not reach the gateway at %s (%s %s): ",
                                       call->client->base_url, soup_message_get_method(call->msg),
                                       call->path);
                itk_gateway_call_fail(task, itk_gateway_error_to_itk(g_steal_pointer(&error)));
                return;
        }
        itk_gateway_call_connected(call);
        call->status = soup_message_get_status(call->msg);
        call->body = g_steal_pointer(&body);
        if (call->download_file != NULL && SOUP_STATUS_IS_SUCCESSFUL(call->status)) {
                if (call->flags & ITK_GATEWAY_REQUEST_EXPECT_ZIP) {
                        GInputStream *buffered = g_buffered_input_stream_new(call->body);
                        g_object_unref(call->body);
                        call->body = buffered;
                        g_buffered_input_stream_fill_async(G_BUFFERED_INPUT_STREAM(buffered), 4,
                                                           G_PRIORITY_DEFAULT, call->cancellable,
                                                           itk_gateway_download_sniffed_cb, task);
                } else {
                        itk_gateway_download_start(task);
                }
                return;
        }
        call->data = g_byte_array_new();
        itk_gateway_read_body_next(task);
}

static void
itk_gateway_call_send(GTask *task)
{
        ItkGatewayCall *call = g_task_get_task_data(task);

        soup_session_send_async(call->client->session, call->msg, G_PRIORITY_DEFAULT,
                                call->cancellable, itk_gateway_sent_cb, task);
}

static void
itk_gateway_upload_opened_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        GTask *task = user_data;
        ItkGatewayCall *call = g_task_get_task_data(task);
        g_autoptr(GError) error = NULL;
        g_autoptr(GFileInputStream) in = g_file_read_finish(G_FILE(source), result, &error);
        g_autoptr(GFileInfo) info = NULL;

        if (in == NULL) {
                itk_gateway_call_fail(task,
                                      g_error_new(ITK_ERROR, ITK_ERROR_FAILED, "cannot read %s: %s",
                                                  call->upload_file, error->message));
                return;
        }
        /* fstat() of an open local file does not block. */
        info = g_file_input_stream_query_info(in, G_FILE_ATTRIBUTE_STANDARD_SIZE, NULL, &error);
        if (info == NULL) {
                itk_gateway_call_fail(task,
                                      g_error_new(ITK_ERROR, ITK_ERROR_FAILED, "cannot read %s: %s",
                                                  call->upload_file, error->message));
                return;
        }
        /* Streamed from disk with a Content-Length: never the whole file in memory. */
        soup_message_set_request_body(call->msg,
                                      call->upload_content_type ? call->upload_content_type
                                                                : "application/octet-stream",
                                      G_INPUT_STREAM(in), g_file_info_get_size(info));
        itk_gateway_call_send(task);
}

void
itk_gateway_client_request_async(ItkGatewayClient *self, const ItkGatewayRequest *request,
                                 GCancellable *cancellable, GAsyncReadyCallback callback,
                                 gpointer user_data)
{
        g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
        ItkGatewayCall *call = g_new0(ItkGatewayCall, 1);
        g_autoptr(GUri) uri = NULL;
        g_autoptr(GError) error = NULL;
        const char *query;
        SoupMessageHeaders *headers;

        g_return_if_fail(request->path != NULL && request->path[0] == '/');
        g_task_set_source_tag(task, itk_gateway_client_request_async);
        g_task_set_check_cancellable(task, FALSE);
        g_task_set_task_data(task, call, (GDestroyNotify)itk_gateway_call_free);
        call->client = g_object_ref(self);
        call->url = g_strconcat(self->base_url, request->path, NULL);
        query = strchr(request->path, '?');
        call->path =
                query ? g_strndup(request->path, query - request->path) : g_strdup(request->path);
        call->action = g_strdup(request->action);
        call->flags = request->flags;
        call->timeout_ms = request->timeout_ms != 0 ? request->timeout_ms : self->call_timeout_ms;
        call->upload_file = g_strdup(request->upload_file);
        call->upload_content_type = g_strdup(request->upload_content_type);
        call->download_file = g_strdup(request->download_file);
        call->cancellable = g_cancellable_new();

        uri = g_uri_parse(call->url, G_URI_FLAGS_ENCODED, &error);
        if (uri == NULL) {
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                                        "cannot build a request URL from %s and %s", self->base_url,
                                        call->path);
                return;
        }
        call->msg = soup_message_new_from_uri(request->method ? request->method : "GET", uri);
        /* An uncommissioned gateway redirects everything to /welcome: never follow. */
        soup_message_add_flags(call->msg, SOUP_MESSAGE_NO_REDIRECT);
        headers = soup_message_get_request_headers(call->msg);
        soup_message_headers_replace(headers, "Accept", "application/json");
        if (self->token != NULL && !(request->flags & ITK_GATEWAY_REQUEST_NO_AUTH))
                soup_message_headers_replace(headers, ITK_GATEWAY_TOKEN_HEADER, self->token);
        g_signal_connect(call->msg, "network-event", G_CALLBACK(itk_gateway_network_event_cb),
                         call);
        g_signal_connect(call->msg, "wrote-headers", G_CALLBACK(itk_gateway_wrote_headers_cb),
                         call);

        if (cancellable != NULL) {
                call->caller_cancellable = g_object_ref(cancellable);
                call->caller_cancel_id = g_cancellable_connect(
                        cancellable, G_CALLBACK(itk_gateway_call_caller_cancelled_cb), task, NULL);
                if (g_cancellable_is_cancelled(cancellable))
                        return;
        }
        if (call->timeout_ms != G_MAXUINT)
                call->call_timeout = itk_gateway_timeout_source_new(
                        call->timeout_ms, itk_gateway_call_timeout_cb, call);
        if (self->connect_timeout_ms > 0)
                call->connect_timeout = itk_gateway_timeout_source_new(
                        self->connect_timeout_ms, itk_gateway_call_connect_timeout_cb, call);

        if (request->upload_file != NULL) {
                g_autoptr(GFile) file = g_file_new_for_path(request->upload_file);
                g_file_read_async(file, G_PRIORITY_DEFAULT, call->cancellable,
                                  itk_gateway_upload_opened_cb, g_steal_pointer(&task));
                return;
        }
        if (request->json_body != NULL) {
                g_autoptr(GBytes) body =
                        g_bytes_new(request->json_body, strlen(request->json_body));
                soup_message_set_request_body_from_bytes(call->msg, "application/json", body);
        }
        itk_gateway_call_send(g_steal_pointer(&task));
}

JsonNode *
itk_gateway_client_request_finish(ItkGatewayClient *self, GAsyncResult *result, guint *out_status,
                                  GError **error)
{
        ItkGatewayCall *call;

        g_return_val_if_fail(g_task_is_valid(result, self), NULL);
        call = g_task_get_task_data(G_TASK(result));
        if (out_status != NULL)
                *out_status = call->status;
        return g_task_propagate_pointer(G_TASK(result), error);
}

/* --- ZIP validation ------------------------------------------------------------ */

#define ITK_ZIP_EOCD_SIZE 22
#define ITK_ZIP_MAX_COMMENT 65535

typedef struct {
        char *path;
        GFileInputStream *in;
        goffset size;
        guint8 *tail;
        gsize tail_len;
        goffset tail_start;
        guint8 *cd;
        guint32 cd_offset;
        guint32 cd_size;
        guint entries;
} ItkZipCheck;

static void
itk_zip_check_free(ItkZipCheck *check)
{
        g_free(check->path);
        g_clear_object(&check->in);
        g_free(check->tail);
        g_free(check->cd);
        g_free(check);
}

static guint16
itk_zip_u16(const guint8 *p)
{
        return (guint16)(p[0] | (p[1] << 8));
}

static guint32
itk_zip_u32(const guint8 *p)
{
        return (guint32)p[0] | ((guint32)p[1] << 8) | ((guint32)p[2] << 16) | ((guint32)p[3] << 24);
}

static void
itk_zip_fail(GTask *task, const char *reason)
{
        ItkZipCheck *check = g_task_get_task_data(task);

        g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_FAILED,
                                "%s is not a complete ZIP archive: %s", check->path, reason);
        g_object_unref(task);
}

/* Walks the central directory: every entry's header and data must lie
 * before it, which a truncated archive cannot satisfy. */
static void
itk_zip_check_directory(GTask *task, const guint8 *cd)
{
        ItkZipCheck *check = g_task_get_task_data(task);
        const guint8 *p = cd, *end = cd + check->cd_size;

        for (guint i = 0; i < check->entries; i++) {
                guint32 comp_size, local;
                guint16 name_len, extra_len, comment_len;

                if (end - p < 46 || itk_zip_u32(p) != 0x02014b50) {
                        itk_zip_fail(task, "its central directory is damaged");
                        return;
                }
                comp_size = itk_zip_u32(p + 20);
                name_len = itk_zip_u16(p + 28);
                extra_len = itk_zip_u16(p + 30);
                comment_len = itk_zip_u16(p + 32);
                local = itk_zip_u32(p + 42);
                if ((guint64)local + 30 + name_len + comp_size > check->cd_offset) {
                        itk_zip_fail(task, "an entry lies beyond its data (truncated?)");
                        return;
                }
                if ((gsize)(end - p) < 46u + name_len + extra_len + comment_len) {
                        itk_zip_fail(task, "its central directory is damaged");
                        return;
                }
                p += 46 + name_len + extra_len + comment_len;
        }
        if (p != end) {
                itk_zip_fail(task, "its central directory does not match its entry count");
                return;
        }
        g_task_return_boolean(task, TRUE);
        g_object_unref(task);
}

static void
itk_zip_cd_read_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        GTask *task = user_data;
        ItkZipCheck *check = g_task_get_task_data(task);
        g_autoptr(GError) error = NULL;
        gsize got = 0;

        if (!g_input_stream_read_all_finish(G_INPUT_STREAM(source), result, &got, &error)) {
                g_task_return_error(task, g_steal_pointer(&error));
                g_object_unref(task);
                return;
        }
        if (got != check->cd_size) {
                itk_zip_fail(task, "its central directory is cut short");
                return;
        }
        itk_zip_check_directory(task, check->cd);
}

static void
itk_zip_tail_read_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        GTask *task = user_data;
        ItkZipCheck *check = g_task_get_task_data(task);
        g_autoptr(GError) error = NULL;
        gsize got = 0;
        gssize pos;
        const guint8 *eocd = NULL;
        goffset eocd_at;

        if (!g_input_stream_read_all_finish(G_INPUT_STREAM(source), result, &got, &error)) {
                g_task_return_error(task, g_steal_pointer(&error));
                g_object_unref(task);
                return;
        }
        check->tail_len = got;
        /* The record is the last thing in the file, after at most a comment. */
        for (pos = (gssize)got - ITK_ZIP_EOCD_SIZE; pos >= 0; pos--) {
                const guint8 *p = check->tail + pos;
                if (itk_zip_u32(p) == 0x06054b50 &&
                    (gsize)pos + ITK_ZIP_EOCD_SIZE + itk_zip_u16(p + 20) == got) {
                        eocd = p;
                        break;
                }
        }
        if (eocd == NULL) {
                itk_zip_fail(task, "no end-of-central-directory record (truncated?)");
                return;
        }
        eocd_at = check->tail_start + pos;
        check->entries = itk_zip_u16(eocd + 10);
        check->cd_size = itk_zip_u32(eocd + 12);
        check->cd_offset = itk_zip_u32(eocd + 16);
        if (check->entries == 0xffff || check->cd_size == 0xffffffff ||
            check->cd_offset == 0xffffffff) {
                /* ZIP64: the record is there; its locator must precede it. */
                if (pos >= 20 && itk_zip_u32(eocd - 20) == 0x07064b50) {
                        check->entries = G_MAXUINT;
                        g_task_return_boolean(task, TRUE);
                        g_object_unref(task);
                        return;
                }
                itk_zip_fail(task, "its ZIP64 records are missing");
                return;
        }
        if ((goffset)check->cd_offset + check->cd_size > eocd_at) {
                itk_zip_fail(task, "its central directory lies beyond the file's end (truncated?)");
                return;
        }
        if (check->cd_size > ITK_ZIP_MAX_CENTRAL_DIRECTORY) {
                itk_zip_fail(task, "its central directory is implausibly large");
                return;
        }
        if ((goffset)check->cd_offset >= check->tail_start) {
                itk_zip_check_directory(task, check->tail + (check->cd_offset - check->tail_start));
                return;
        }
        /* lseek() on a local file does not block. */
        if (!g_seekable_seek(G_SEEKABLE(check->in), check->cd_offset, G_SEEK_SET, NULL, &error)) {
                g_task_return_error(task, g_steal_pointer(&error));
                g_object_unref(task);
                return;
        }
        check->cd = g_malloc(MAX(check->cd_size, 1));
        g_input_stream_read_all_async(G_INPUT_STREAM(check->in), check->cd, check->cd_size,
                                      G_PRIORITY_DEFAULT, g_task_get_cancellable(task),
                                      itk_zip_cd_read_cb, task);
}

static void
itk_zip_opened_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        GTask *task = user_data;
        ItkZipCheck *check = g_task_get_task_data(task);
        g_autoptr(GError) error = NULL;
        g_autoptr(GFileInfo) info = NULL;

        check->in = g_file_read_finish(G_FILE(source), result, &error);
        if (check->in == NULL) {
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_FAILED, "cannot read %s: %s",
                                        check->path, error->message);
                g_object_unref(task);
                return;
        }
        info = g_file_input_stream_query_info(check->in, G_FILE_ATTRIBUTE_STANDARD_SIZE, NULL,
                                              &error);
        if (info == NULL) {
                g_task_return_error(task, g_steal_pointer(&error));
                g_object_unref(task);
                return;
        }
        check->size = g_file_info_get_size(info);
        if (check->size < ITK_ZIP_EOCD_SIZE) {
                itk_zip_fail(task, "it is too short");
                return;
        }
        check->tail_len = MIN(check->size, ITK_ZIP_EOCD_SIZE + ITK_ZIP_MAX_COMMENT);
        check->tail_start = check->size - check->tail_len;
        if (!g_seekable_seek(G_SEEKABLE(check->in), check->tail_start, G_SEEK_SET, NULL, &error)) {
                g_task_return_error(task, g_steal_pointer(&error));
                g_object_unref(task);
                return;
        }
        check->tail = g_malloc(check->tail_len);
        g_input_stream_read_all_async(G_INPUT_STREAM(check->in), check->tail, check->tail_len,
                                      G_PRIORITY_DEFAULT, g_task_get_cancellable(task),
                                      itk_zip_tail_read_cb, task);
}

void
itk_gateway_zip_validate_async(const char *path, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
        GTask *task = g_task_new(NULL, cancellable, callback, user_data);
        ItkZipCheck *check = g_new0(ItkZipCheck, 1);
        g_autoptr(GFile) file = g_file_new_for_path(path);

        g_task_set_source_tag(task, itk_gateway_zip_validate_async);
        check->path = g_strdup(path);
        g_task_set_task_data(task, check, (GDestroyNotify)itk_zip_check_free);
        g_file_read_async(file, G_PRIORITY_DEFAULT, cancellable, itk_zip_opened_cb, task);
}

gboolean
itk_gateway_zip_validate_finish(GAsyncResult *result, guint *out_entries, GError **error)
{
        ItkZipCheck *check = g_task_get_task_data(G_TASK(result));

        if (!g_task_propagate_boolean(G_TASK(result), error))
                return FALSE;
        if (out_entries != NULL)
                *out_entries = check->entries;
        return TRUE;
}
