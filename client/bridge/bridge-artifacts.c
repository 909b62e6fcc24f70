/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GET /api/executions/ID/artifacts[/NAME]: a run's files (screenshots, downloads,
 * backups, exports). The list is the daemon's; a file is streamed from the
 * read-only descriptor the daemon hands over (OpenHistoryArtifact), read off
 * the main loop in chunks and written as the client takes them. */
#include "bridge.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>
#include <gio/gunixinputstream.h>

#include "bridge-json.h"

#define CHUNK_BYTES (64 * 1024)

typedef struct {
        Bridge *bridge;
        SoupServerMessage *msg;
        char *id; /* dashed */
        char *name;
        char *content_type;
        char *sha256;
        GInputStream *input;
        GCancellable *cancellable;
        gulong wrote_id;
        gulong finished_id;
        gboolean reading;
        gboolean done;
        gboolean finished; /* the message is gone: touch it no more */
} Download;

static void
download_free(Download *dl)
{
        if (dl->wrote_id != 0)
                g_signal_handler_disconnect(dl->msg, dl->wrote_id);
        if (dl->finished_id != 0)
                g_signal_handler_disconnect(dl->msg, dl->finished_id);
        g_object_unref(dl->msg);
        g_free(dl->id);
        g_free(dl->name);
        g_free(dl->content_type);
        g_free(dl->sha256);
        g_clear_object(&dl->input);
        g_clear_object(&dl->cancellable);
        g_free(dl);
}

/* Not until the reply is set: a request whose answer is an error ends here. */
static void
download_fail(Download *dl, const GError *error)
{
        bridge_reply_gerror(dl->msg, error);
        soup_server_message_unpause(dl->msg);
        download_free(dl);
}

/* Images and PDFs show in the page; everything else is saved. The name is
 * quoted as RFC 6266 asks: ASCII with the odd characters replaced, and the
 * exact UTF-8 name percent-encoded. */
static char *
content_disposition(const char *name, const char *content_type)
{
        g_autofree char *base = g_path_get_basename(name);
        g_autofree char *encoded = g_uri_escape_string(base, NULL, FALSE);
        g_autoptr(GString) ascii = g_string_new(NULL);
        gboolean inline_ok = g_str_has_prefix(content_type, "image/") &&
                             !g_str_equal(content_type, "image/svg+xml");

        for (const char *p = base; *p != '\0'; p++) {
                guchar c = (guchar)*p;
                g_string_append_c(ascii,
                                  c < 0x20 || c >= 0x7f || c == '"' || c == '\\' ? '_' : (char)c);
        }
        return g_strdup_printf("%s; filename=\"%s\"; filename*=UTF-8''%s",
                               inline_ok ? "inline" : "attachment", ascii->str, encoded);
}

static void download_read_next(Download *dl);

static void
download_read_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Download *dl = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) bytes =
                g_input_stream_read_bytes_finish(G_INPUT_STREAM(source), result, &error);
        SoupMessageBody *body;

        dl->reading = FALSE;
        if (dl->finished) {
                /* The client went away ("finished" cancelled us): nothing to send. */
                download_free(dl);
                return;
        }
        body = soup_server_message_get_response_body(dl->msg);
        if (bytes == NULL) {
                /* The headers are out: all that is left is to cut the body short,
                 * which the client sees as a truncated download. */
                g_warning("artifact %s of %s: %s", dl->name, dl->id, error->message);
                soup_message_body_complete(body);
                dl->done = TRUE;
        } else if (g_bytes_get_size(bytes) == 0) {
                soup_message_body_complete(body);
                dl->done = TRUE;
        } else {
                soup_message_body_append_bytes(body, bytes);
        }
        soup_server_message_unpause(dl->msg);
}

static void
download_read_next(Download *dl)
{
        if (dl->reading || dl->done)
                return;
        dl->reading = TRUE;
        /* A regular file is not pollable: GIO reads it in a worker thread. */
        g_input_stream_read_bytes_async(dl->input, CHUNK_BYTES, G_PRIORITY_DEFAULT, dl->cancellable,
                                        download_read_cb, dl);
}

static void
download_wrote_chunk_cb(SoupServerMessage *msg, gpointer user_data)
{
        download_read_next(user_data);
}

static void
download_finished_cb(SoupServerMessage *msg, gpointer user_data)
{
        Download *dl = user_data;

        /* Sent, or the connection closed: a read in flight ends (cancelled)
         * and frees; otherwise nothing else will. */
        dl->finished = TRUE;
        if (dl->reading) {
                g_cancellable_cancel(dl->cancellable);
                return;
        }
        download_free(dl);
}

static void
download_opened_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Download *dl = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GUnixFDList) fds = NULL;
        g_autoptr(GVariant) reply = g_dbus_connection_call_with_unix_fd_list_finish(
                G_DBUS_CONNECTION(source), &fds, result, &error);
        g_autofree char *disposition = NULL;
        SoupMessageHeaders *headers;
        struct stat st;
        gint32 index = -1;
        int fd;

        if (reply == NULL) {
                download_fail(dl, error);
                return;
        }
        g_variant_get(reply, "(h)", &index);
        fd = fds != NULL ? g_unix_fd_list_get(fds, index, &error) : -1;
        if (fd < 0 || fstat(fd, &st) < 0) {
                g_autoptr(GError) local =
                        g_error_new(G_IO_ERROR, G_IO_ERROR_FAILED,
                                    "the daemon sent no readable file for %s", dl->name);
                if (fd >= 0)
                        close(fd);
                download_fail(dl, local);
                return;
        }
        dl->input = g_unix_input_stream_new(fd, TRUE);
        dl->cancellable = g_cancellable_new();
        headers = soup_server_message_get_response_headers(dl->msg);
        soup_message_headers_replace(headers, "X-Content-Type-Options", "nosniff");
        soup_message_headers_replace(headers, "X-Frame-Options", "DENY");
        soup_message_headers_replace(headers, "Referrer-Policy", "no-referrer");
        soup_message_headers_replace(headers, "Cache-Control", "no-store");
        /* Opened on its own, the file runs nothing. */
        soup_message_headers_replace(headers, "Content-Security-Policy",
                                     "default-src 'none'; sandbox");
        soup_message_headers_set_content_type(headers, dl->content_type, NULL);
        disposition = content_disposition(dl->name, dl->content_type);
        soup_message_headers_replace(headers, "Content-Disposition", disposition);
        if (dl->sha256 != NULL)
                soup_message_headers_replace(headers, "X-Artifact-SHA256", dl->sha256);
        soup_message_headers_set_encoding(headers, SOUP_ENCODING_CONTENT_LENGTH);
        soup_message_headers_set_content_length(headers, st.st_size);
        soup_message_body_set_accumulate(soup_server_message_get_response_body(dl->msg), FALSE);
        soup_server_message_set_status(dl->msg, SOUP_STATUS_OK, NULL);
        dl->wrote_id =
                g_signal_connect(dl->msg, "wrote-chunk", G_CALLBACK(download_wrote_chunk_cb), dl);
        dl->finished_id =
                g_signal_connect(dl->msg, "finished", G_CALLBACK(download_finished_cb), dl);
        if (soup_server_message_get_method(dl->msg) == SOUP_METHOD_HEAD) {
                dl->done = TRUE;
                soup_message_body_complete(soup_server_message_get_response_body(dl->msg));
                soup_server_message_unpause(dl->msg);
                return;
        }
        download_read_next(dl);
}

/* The listing first: the content type and checksum of the file, and a clear
 * 404 for a name that is not there. */
static void
download_listed_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Download *dl = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply =
                g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        g_autoptr(GVariant) list = NULL;
        GVariantIter iter;
        GVariant *entry;

        if (reply == NULL) {
                download_fail(dl, error);
                return;
        }
        list = g_variant_get_child_value(reply, 0);
        g_variant_iter_init(&iter, list);
        while ((entry = g_variant_iter_next_value(&iter)) != NULL) {
                g_autoptr(GVariant) owned = entry;
                const char *name = NULL, *type = NULL, *sha = NULL;

                if (!g_variant_lookup(entry, "name", "&s", &name) || !g_str_equal(name, dl->name))
                        continue;
                if (g_variant_lookup(entry, "content-type", "&s", &type) && *type != '\0')
                        dl->content_type = g_strdup(type);
                if (g_variant_lookup(entry, "sha256", "&s", &sha) && *sha != '\0')
                        dl->sha256 = g_strdup(sha);
                break;
        }
        if (dl->content_type == NULL)
                dl->content_type = g_strdup("application/octet-stream");
        /* Not listed: the daemon says so (NoSuchArtifact, or InvalidArgs for a bad name). */
        g_dbus_connection_call_with_unix_fd_list(dl->bridge->bus, ITK_BUS_NAME, ITK_MANAGER_PATH,
                                                 ITK_MANAGER_INTERFACE, "OpenHistoryArtifact",
                                                 g_variant_new("(ss)", dl->id, dl->name),
                                                 G_VARIANT_TYPE("(h)"), G_DBUS_CALL_FLAGS_NONE, -1,
                                                 NULL, NULL, download_opened_cb, dl);
}

void
bridge_artifacts_download(Bridge *bridge, SoupServerMessage *msg, const char *id, const char *name)
{
        Download *dl = g_new0(Download, 1);

        dl->bridge = bridge;
        dl->msg = g_object_ref(msg);
        dl->id = g_strdup(id);
        dl->name = g_strdup(name);
        soup_server_message_pause(msg);
        g_dbus_connection_call(bridge->bus, ITK_BUS_NAME, ITK_MANAGER_PATH, ITK_MANAGER_INTERFACE,
                               "ListHistoryArtifacts", g_variant_new("(s)", id),
                               G_VARIANT_TYPE("(aa{sv})"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                               download_listed_cb, dl);
}
