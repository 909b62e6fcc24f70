/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The request guard: what libsoup 3.2's server does not bound by itself.
 *
 * - A request head must be complete within --header-timeout seconds of its
 *   start (libsoup starts a request when the connection opens, and on a
 *   kept-alive connection at the first byte of the next one); a keep-alive
 *   connection may wait --idle-timeout seconds for its next request
 *   (BridgeListener closes it), and a body must be complete that long after
 *   its head.
 * - A refusal decided when the head is in (no token, body too large) is
 *   answered at once and the connection closed: libsoup would otherwise read,
 *   and keep, the whole body before writing any answer. The message is
 *   paused, and its connection taken from libsoup on the next turn of the
 *   loop, outside libsoup's own code, to write the answer ourselves.
 * - A body of unknown length (chunked) is counted as it arrives and refused
 *   once over its limit. */
#include "bridge.h"

#include <string.h>

#include "bridge-json.h"

/* How long a refused connection stays half-open after the answer, so that the
 * client reads the answer before the close resets the connection. */
#define GUARD_LINGER_MS 500
/* An answer the client does not read within this long is abandoned. */
#define GUARD_WRITE_TIMEOUT_SECONDS 5

typedef enum {
        PHASE_HEAD,
        PHASE_BODY,
        PHASE_DONE,
} GuardPhase;

typedef struct {
        Bridge *bridge;
        SoupServerMessage *msg; /* owns the guard */
        GuardPhase phase;
        guint timer_id;
        goffset limit; /* of the body, 0 none */
        goffset received;
        gboolean streaming; /* the body timer is an idle timer */
        char *refusal;      /* the answer, while the refusal waits for its idle */
        guint refuse_id;
} Guard;

typedef struct {
        GIOStream *stream;
        GSocket *socket;
        char *text;
        GCancellable *cancellable;
        guint timeout_id;
} Closing;

static void
closing_free(Closing *closing)
{
        g_clear_handle_id(&closing->timeout_id, g_source_remove);
        g_io_stream_close(closing->stream, NULL, NULL);
        g_object_unref(closing->stream);
        g_clear_object(&closing->socket);
        g_object_unref(closing->cancellable);
        g_free(closing->text);
        g_free(closing);
}

static gboolean
linger_done_cb(gpointer user_data)
{
        Closing *closing = user_data;

        closing->timeout_id = 0;
        closing_free(closing);
        return G_SOURCE_REMOVE;
}

static gboolean
write_timeout_cb(gpointer user_data)
{
        Closing *closing = user_data;

        closing->timeout_id = 0;
        g_cancellable_cancel(closing->cancellable);
        return G_SOURCE_REMOVE;
}

static void
written_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Closing *closing = user_data;
        g_autoptr(GError) error = NULL;

        g_clear_handle_id(&closing->timeout_id, g_source_remove);
        if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), result, NULL, &error) ||
            closing->socket == NULL) {
                closing_free(closing);
                return;
        }
        /* FIN after the answer; the close comes a little later. */
        g_socket_shutdown(closing->socket, FALSE, TRUE, NULL);
        closing->timeout_id = g_timeout_add(GUARD_LINGER_MS, linger_done_cb, closing);
}

/* Takes @msg's connection from libsoup, writes @text (if any) and closes it.
 * @msg may be gone when this returns. */
static void
close_connection(Bridge *bridge, SoupServerMessage *msg, char *text)
{
        GSocket *socket = bridge_listener_socket_for(bridge->listener, msg);
        Closing *closing;
        GIOStream *stream;

        if (socket != NULL)
                g_object_ref(socket);
        stream = soup_server_message_steal_connection(msg);
        if (stream == NULL) {
                g_clear_object(&socket);
                g_free(text);
                return;
        }
        closing = g_new0(Closing, 1);
        closing->stream = stream;
        closing->socket = socket;
        closing->text = text;
        closing->cancellable = g_cancellable_new();
        if (text == NULL) {
                closing_free(closing);
                return;
        }
        closing->timeout_id =
                g_timeout_add_seconds(GUARD_WRITE_TIMEOUT_SECONDS, write_timeout_cb, closing);
        g_output_stream_write_all_async(g_io_stream_get_output_stream(stream), text, strlen(text),
                                        G_PRIORITY_DEFAULT, closing->cancellable, written_cb,
                                        closing);
}

static char *
canned_answer(guint status, const char *error, const char *message)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) node = NULL;
        g_autofree char *body = NULL;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "error");
        json_builder_add_string_value(b, error);
        json_builder_set_member_name(b, "message");
        json_builder_add_string_value(b, message);
        json_builder_end_object(b);
        node = json_builder_get_root(b);
        body = bridge_json_to_string(node);
        return g_strdup_printf(
                "HTTP/1.1 %u %s\r\n"
                "Server: ignition-toolkit-bridge\r\n"
                "Content-Type: application/json\r\n"
                "Content-Length: %zu\r\n"
                "Cache-Control: no-store\r\n"
                "X-Content-Type-Options: nosniff\r\n"
                "%s"
                "Connection: close\r\n"
                "\r\n"
                "%s",
                status, soup_status_get_phrase(status), strlen(body),
                status == SOUP_STATUS_UNAUTHORIZED ? "WWW-Authenticate: Bearer\r\n" : "", body);
}

static void
guard_stop_timers(Guard *guard)
{
        g_clear_handle_id(&guard->timer_id, g_source_remove);
}

static void
guard_free(Guard *guard)
{
        guard_stop_timers(guard);
        g_clear_handle_id(&guard->refuse_id, g_source_remove);
        g_free(guard->refusal);
        g_free(guard);
}

static gboolean
timeout_cb(gpointer user_data)
{
        Guard *guard = user_data;
        Bridge *bridge = guard->bridge;
        SoupServerMessage *msg = guard->msg;
        char *text;

        guard->timer_id = 0;
        text = canned_answer(SOUP_STATUS_REQUEST_TIMEOUT, "RequestTimeout",
                             guard->phase == PHASE_HEAD ? "the request head took too long"
                                                        : "the request body took too long");
        close_connection(bridge, msg, text);
        return G_SOURCE_REMOVE;
}

static void
guard_set_timer(Guard *guard, guint seconds)
{
        g_clear_handle_id(&guard->timer_id, g_source_remove);
        guard->timer_id = g_timeout_add_seconds(seconds, timeout_cb, guard);
}

static gboolean
refuse_cb(gpointer user_data)
{
        Guard *guard = user_data;
        char *text = g_steal_pointer(&guard->refusal);

        guard->refuse_id = 0;
        close_connection(guard->bridge, guard->msg, text);
        return G_SOURCE_REMOVE;
}

void
bridge_guard_refuse(SoupServerMessage *msg, guint status, const char *error, const char *message)
{
        Guard *guard = g_object_get_data(G_OBJECT(msg), "bridge-guard");

        if (guard == NULL) {
                soup_message_headers_replace(soup_server_message_get_response_headers(msg),
                                             "Connection", "close");
                bridge_reply_error(msg, status, error, message);
                return;
        }
        if (guard->refuse_id != 0)
                return;
        guard_stop_timers(guard);
        guard->phase = PHASE_DONE;
        guard->refusal = canned_answer(status, error, message);
        soup_server_message_pause(msg);
        guard->refuse_id = g_idle_add_full(G_PRIORITY_HIGH, refuse_cb, guard, NULL);
}

void
bridge_guard_limit_body(SoupServerMessage *msg, goffset limit)
{
        Guard *guard = g_object_get_data(G_OBJECT(msg), "bridge-guard");

        if (guard != NULL)
                guard->limit = limit;
}

void
bridge_guard_stream_body(SoupServerMessage *msg)
{
        Guard *guard = g_object_get_data(G_OBJECT(msg), "bridge-guard");

        if (guard != NULL)
                guard->streaming = TRUE;
}

static void
got_headers_cb(SoupServerMessage *msg, gpointer user_data)
{
        Guard *guard = user_data;

        if (guard->refuse_id != 0)
                return;
        guard_stop_timers(guard);
        guard->phase = PHASE_BODY;
        guard_set_timer(guard, guard->bridge->idle_timeout_seconds);
}

static void
got_chunk_cb(SoupServerMessage *msg, GBytes *chunk, gpointer user_data)
{
        Guard *guard = user_data;

        guard->received += g_bytes_get_size(chunk);
        if (guard->streaming && guard->refuse_id == 0)
                guard_set_timer(guard, guard->bridge->idle_timeout_seconds);
        if (guard->limit > 0 && guard->received > guard->limit) {
                g_autofree char *text =
                        g_strdup_printf("the request body is larger than %" G_GOFFSET_FORMAT " KiB",
                                        guard->limit / 1024);

                bridge_guard_refuse(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "PayloadTooLarge",
                                    text);
        }
}

static void
got_body_cb(SoupServerMessage *msg, gpointer user_data)
{
        Guard *guard = user_data;

        if (guard->refuse_id != 0)
                return;
        guard_stop_timers(guard);
        guard->phase = PHASE_DONE;
}

static void
request_started_cb(SoupServer *server, SoupServerMessage *msg, gpointer user_data)
{
        Bridge *bridge = user_data;
        Guard *guard = g_new0(Guard, 1);

        bridge_listener_busy(bridge->listener, msg);
        guard->bridge = bridge;
        guard->msg = msg;
        g_object_set_data_full(G_OBJECT(msg), "bridge-guard", guard, (GDestroyNotify)guard_free);
        g_signal_connect(msg, "got-headers", G_CALLBACK(got_headers_cb), guard);
        g_signal_connect(msg, "got-chunk", G_CALLBACK(got_chunk_cb), guard);
        g_signal_connect(msg, "got-body", G_CALLBACK(got_body_cb), guard);
        guard->phase = PHASE_HEAD;
        guard_set_timer(guard, bridge->header_timeout_seconds);
}

static void
request_finished_cb(SoupServer *server, SoupServerMessage *msg, gpointer user_data)
{
        Bridge *bridge = user_data;

        bridge_listener_idle(bridge->listener, msg, bridge->idle_timeout_seconds);
}

void
bridge_guard_attach(Bridge *bridge)
{
        g_signal_connect(bridge->server, "request-started", G_CALLBACK(request_started_cb), bridge);
        g_signal_connect(bridge->server, "request-finished", G_CALLBACK(request_finished_cb),
                         bridge);
}
