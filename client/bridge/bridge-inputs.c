/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Input files for `file` parameters (docs/input-files.md):
 *
 * POST /api/input-files?name=FILE: the request body is the file. It is never
 * kept whole: each chunk libsoup reads goes into a socket whose other end the
 * daemon reads (Manager.StageInputFile), and reading the request pauses while
 * the daemon is behind. Content-Length is required and checked against the
 * daemon's MaxInputFileBytes before a byte is read (411, 413).
 * GET /api/input-files/host: the files the admin allows (ListInputFiles).
 * POST /api/input-files/host {directory, name}: copy one (StageHostFile). */
#include "bridge.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>
#include <glib-unix.h>

#include "bridge-json.h"

typedef struct {
        Bridge *bridge;
        SoupServerMessage *msg; /* NULL once it is gone */
        char *name;
        int sock; /* our end; -1 once closed (EOF for the daemon) */
        GBytes *pending;
        gsize pending_offset;
        guint writable_id;
        goffset expected;
        goffset sent;
        gboolean broken; /* the daemon stopped reading: the rest is dropped */
        gboolean body_done;
        gboolean handler_waiting;
        gboolean replied; /* the daemon answered */
        GVariant *reply;
        GError *error;
} Upload;

static Upload *
upload_ref(Upload *up)
{
        return g_atomic_rc_box_acquire(up);
}

static void
upload_clear(Upload *up)
{
        g_clear_handle_id(&up->writable_id, g_source_remove);
        if (up->sock >= 0)
                close(up->sock);
        g_clear_pointer(&up->pending, g_bytes_unref);
        g_clear_pointer(&up->reply, g_variant_unref);
        g_clear_error(&up->error);
        g_free(up->name);
}

static void
upload_unref(Upload *up)
{
        g_atomic_rc_box_release_full(up, (GDestroyNotify)upload_clear);
}

/* The message is finished and gone. */
static void
upload_msg_gone(gpointer data)
{
        Upload *up = data;

        up->msg = NULL;
        /* A cut-off body: the daemon sees EOF early; the token it makes is
         * never given to anyone and expires. */
        g_clear_handle_id(&up->writable_id, g_source_remove);
        if (up->sock >= 0) {
                close(up->sock);
                up->sock = -1;
        }
        upload_unref(up);
}

static void
upload_close_sock(Upload *up)
{
        if (up->sock >= 0) {
                close(up->sock);
                up->sock = -1;
        }
}

/* 200 {token, name, size, sha256} from the daemon's (s token, t size, s sha256). */
static void
reply_staged(SoupServerMessage *msg, GVariant *reply, const char *name)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) node = NULL;
        const char *token, *sha256;
        guint64 size;

        g_variant_get(reply, "(&st&s)", &token, &size, &sha256);
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "token");
        json_builder_add_string_value(b, token);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, name);
        json_builder_set_member_name(b, "size");
        json_builder_add_int_value(b, (gint64)size);
        json_builder_set_member_name(b, "sha256");
        json_builder_add_string_value(b, sha256);
        json_builder_end_object(b);
        node = json_builder_get_root(b);
        bridge_reply_json(msg, SOUP_STATUS_OK, node);
}

static void
upload_respond(Upload *up)
{
        if (up->error != NULL) {
                bridge_reply_gerror(up->msg, up->error);
        } else if (up->sent != up->expected) {
                bridge_reply_error(up->msg, SOUP_STATUS_BAD_REQUEST, "BadRequest",
                                   "the body ended before Content-Length bytes");
        } else {
                reply_staged(up->msg, up->reply, up->name);
        }
        soup_server_message_unpause(up->msg);
}

static void
staged_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Upload *up = user_data;

        up->reply = g_dbus_connection_call_with_unix_fd_list_finish(G_DBUS_CONNECTION(source), NULL,
                                                                    result, &up->error);
        up->replied = TRUE;
        if (up->msg != NULL && up->error != NULL && !up->body_done) {
                /* Refused before the body is in (too many staged, a bad
                 * name): answer now instead of reading the rest. */
                g_autofree char *name = NULL;
                guint status = bridge_status_for_gerror(up->error, &name);

                g_dbus_error_strip_remote_error(up->error);
                bridge_guard_refuse(up->msg, status, name, up->error->message);
        } else if (up->msg != NULL && up->handler_waiting) {
                upload_respond(up);
        }
        upload_unref(up);
}

/* Sends what is pending; FALSE when the socket is full (wait for it). */
static gboolean
upload_flush(Upload *up)
{
        while (up->pending != NULL && !up->broken) {
                gsize size;
                const guint8 *data = g_bytes_get_data(up->pending, &size);
                ssize_t n = send(up->sock, data + up->pending_offset, size - up->pending_offset,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return FALSE;
                if (n < 0) {
                        /* The daemon closed its end: its reply says why. */
                        up->broken = TRUE;
                        break;
                }
                up->pending_offset += (gsize)n;
                if (up->pending_offset == size) {
                        g_clear_pointer(&up->pending, g_bytes_unref);
                        up->pending_offset = 0;
                }
        }
        g_clear_pointer(&up->pending, g_bytes_unref);
        return TRUE;
}

static gboolean
writable_cb(int fd, GIOCondition condition, gpointer user_data)
{
        Upload *up = user_data;

        if (!upload_flush(up))
                return G_SOURCE_CONTINUE;
        up->writable_id = 0;
        if (up->body_done)
                upload_close_sock(up);
        else if (up->msg != NULL)
                soup_server_message_unpause(up->msg);
        return G_SOURCE_REMOVE;
}

static void
got_chunk_cb(SoupServerMessage *msg, GBytes *chunk, gpointer user_data)
{
        Upload *up = user_data;

        up->sent += g_bytes_get_size(chunk);
        if (up->broken || up->sock < 0)
                return;
        up->pending = g_bytes_ref(chunk);
        up->pending_offset = 0;
        if (upload_flush(up))
                return;
        /* Reading the request waits until the daemon caught up. */
        soup_server_message_pause(msg);
        up->writable_id = g_unix_fd_add(up->sock, G_IO_OUT, writable_cb, up);
}

static void
got_body_cb(SoupServerMessage *msg, gpointer user_data)
{
        Upload *up = user_data;

        up->body_done = TRUE;
        if (up->writable_id == 0)
                upload_close_sock(up);
}

/* With the daemon's limit known: refuse, or start streaming to the daemon. */
static void
limit_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Upload *up = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply =
                g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        g_autoptr(GUnixFDList) fds = NULL;
        guint64 max = 0;
        int pair[2];

        if (up->msg == NULL) {
                upload_unref(up);
                return;
        }
        if (reply == NULL) {
                g_autofree char *name = NULL;
                guint status = bridge_status_for_gerror(error, &name);

                g_dbus_error_strip_remote_error(error);
                bridge_guard_refuse(up->msg, status, name, error->message);
                upload_unref(up);
                return;
        }
        {
                g_autoptr(GVariant) value = NULL;
                g_variant_get(reply, "(v)", &value);
                if (g_variant_is_of_type(value, G_VARIANT_TYPE_UINT64))
                        max = g_variant_get_uint64(value);
        }
        if (max > 0 && (guint64)up->expected > max) {
                g_autofree char *text = g_strdup_printf("the file is %" G_GOFFSET_FORMAT
                                                        " bytes; the limit is %" G_GUINT64_FORMAT
                                                        " (MaxInputFileBytes)",
                                                        up->expected, max);
                bridge_guard_refuse(up->msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                                    "PayloadTooLarge", text);
                upload_unref(up);
                return;
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
                bridge_guard_refuse(up->msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "Failed",
                                    "cannot make a socket for the upload");
                upload_unref(up);
                return;
        }
        up->sock = pair[0];
        fds = g_unix_fd_list_new();
        g_unix_fd_list_append(fds, pair[1], NULL);
        close(pair[1]);
        /* The reply comes once the whole body went through: no call timeout. */
        g_dbus_connection_call_with_unix_fd_list(
                up->bridge->bus, ITK_BUS_NAME, ITK_MANAGER_PATH, ITK_MANAGER_INTERFACE,
                "StageInputFile", g_variant_new("(sh)", up->name, 0), G_VARIANT_TYPE("(sts)"),
                G_DBUS_CALL_FLAGS_NONE, G_MAXINT, fds, NULL, staged_cb, upload_ref(up));
        g_signal_connect(up->msg, "got-chunk", G_CALLBACK(got_chunk_cb), up);
        g_signal_connect(up->msg, "got-body", G_CALLBACK(got_body_cb), up);
        bridge_guard_limit_body(up->msg, up->expected);
        bridge_guard_stream_body(up->msg);
        soup_server_message_unpause(up->msg);
        upload_unref(up);
}

gboolean
bridge_inputs_early(Bridge *bridge, SoupServerMessage *msg, const char *path, GHashTable *query)
{
        SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
        const char *name = query != NULL ? g_hash_table_lookup(query, "name") : NULL;
        Upload *up;

        if (!g_str_equal(path, "/api/input-files") ||
            soup_server_message_get_method(msg) != SOUP_METHOD_POST)
                return FALSE;
        if (soup_message_headers_get_encoding(h) != SOUP_ENCODING_CONTENT_LENGTH) {
                bridge_guard_refuse(msg, SOUP_STATUS_LENGTH_REQUIRED, "LengthRequired",
                                    "an upload needs a Content-Length");
                return TRUE;
        }
        if (name == NULL || *name == '\0') {
                bridge_guard_refuse(msg, SOUP_STATUS_BAD_REQUEST, "InvalidArgs",
                                    "the query parameter name (the file's name) is required");
                return TRUE;
        }
        up = g_atomic_rc_box_new0(Upload);
        up->bridge = bridge;
        up->msg = msg;
        up->name = g_strdup(name);
        up->sock = -1;
        up->expected = soup_message_headers_get_content_length(h);
        g_object_set_data_full(G_OBJECT(msg), "bridge-upload", up, upload_msg_gone);
        soup_message_body_set_accumulate(soup_server_message_get_request_body(msg), FALSE);
        /* No byte of the body is read before the limit is checked. */
        bridge_guard_limit_body(msg, up->expected);
        soup_server_message_pause(msg);
        g_dbus_connection_call(
                bridge->bus, ITK_BUS_NAME, ITK_MANAGER_PATH, "org.freedesktop.DBus.Properties",
                "Get", g_variant_new("(ss)", ITK_MANAGER_INTERFACE, "MaxInputFileBytes"),
                G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, limit_cb, upload_ref(up));
        return TRUE;
}

/* --- after the body ------------------------------------------------------------ */

static void
host_listed_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        SoupServerMessage *msg = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply =
                g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);

        if (reply == NULL) {
                bridge_reply_gerror(msg, error);
        } else {
                g_autoptr(GVariant) list = g_variant_get_child_value(reply, 0);
                g_autoptr(JsonNode) node = bridge_json_from_variant(list);
                bridge_reply_json(msg, SOUP_STATUS_OK, node);
        }
        soup_server_message_unpause(msg);
        g_object_unref(msg);
}

typedef struct {
        SoupServerMessage *msg;
        char *name;
} HostStage;

static void
host_staged_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        HostStage *hs = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply =
                g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);

        if (reply == NULL) {
                bridge_reply_gerror(hs->msg, error);
        } else {
                reply_staged(hs->msg, reply, hs->name);
        }
        soup_server_message_unpause(hs->msg);
        g_object_unref(hs->msg);
        g_free(hs->name);
        g_free(hs);
}

static void
stage_host(Bridge *bridge, SoupServerMessage *msg)
{
        SoupMessageBody *body = soup_server_message_get_request_body(msg);
        g_autoptr(GBytes) bytes = soup_message_body_flatten(body);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) root = NULL;
        JsonObject *object;
        JsonNode *directory, *name;
        HostStage *hs;
        const char *base;

        root = bridge_json_parse(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes), &error);
        object = root != NULL && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
        directory = object != NULL ? json_object_get_member(object, "directory") : NULL;
        name = object != NULL ? json_object_get_member(object, "name") : NULL;
        if (directory == NULL || name == NULL || !JSON_NODE_HOLDS_VALUE(directory) ||
            !JSON_NODE_HOLDS_VALUE(name) || json_node_get_value_type(directory) != G_TYPE_STRING ||
            json_node_get_value_type(name) != G_TYPE_STRING) {
                bridge_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "InvalidArgs",
                                   "the body must be {\"directory\": \"...\", \"name\": \"...\"}");
                return;
        }
        hs = g_new0(HostStage, 1);
        hs->msg = g_object_ref(msg);
        base = strrchr(json_node_get_string(name), '/');
        hs->name = g_strdup(base != NULL ? base + 1 : json_node_get_string(name));
        soup_server_message_pause(msg);
        g_dbus_connection_call(
                bridge->bus, ITK_BUS_NAME, ITK_MANAGER_PATH, ITK_MANAGER_INTERFACE, "StageHostFile",
                g_variant_new("(ss)", json_node_get_string(directory), json_node_get_string(name)),
                G_VARIANT_TYPE("(sts)"), G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, host_staged_cb,
                hs);
}

void
bridge_inputs_handle(Bridge *bridge, SoupServerMessage *msg, const char *method, char **parts,
                     guint n)
{
        if (n == 1 && method == SOUP_METHOD_POST) {
                Upload *up = g_object_get_data(G_OBJECT(msg), "bridge-upload");

                if (up == NULL) {
                        bridge_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "BadRequest", "no upload");
                        return;
                }
                up->handler_waiting = TRUE;
                soup_server_message_pause(msg);
                if (up->replied)
                        upload_respond(up);
                return;
        }
        if (n == 2 && g_str_equal(parts[1], "host") && method == SOUP_METHOD_GET) {
                soup_server_message_pause(msg);
                g_dbus_connection_call(bridge->bus, ITK_BUS_NAME, ITK_MANAGER_PATH,
                                       ITK_MANAGER_INTERFACE, "ListInputFiles", NULL,
                                       G_VARIANT_TYPE("(aa{sv})"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                       host_listed_cb, g_object_ref(msg));
                return;
        }
        if (n == 2 && g_str_equal(parts[1], "host") && method == SOUP_METHOD_POST) {
                stage_host(bridge, msg);
                return;
        }
        if (n == 1 || (n == 2 && g_str_equal(parts[1], "host")))
                bridge_reply_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "MethodNotAllowed",
                                   "input files: POST uploads, GET host lists, POST host stages");
        else
                bridge_reply_error(msg, SOUP_STATUS_NOT_FOUND, "NotFound", "no such API");
}
