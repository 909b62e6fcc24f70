/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>

#include "itk-cdp.h"
#include "itk-error.h"

/* Chromium's replies hold screenshots; a message above this is a broken peer. */
#define CDP_MAX_MESSAGE (256u * 1024 * 1024)

typedef struct {
        guint id;
        char *session_id; /* NULL: any */
        ItkCdpEventFunc func;
        gpointer user_data;
        gboolean removed;
} Handler;

typedef struct {
        ItkCdp *cdp; /* borrowed; the request is removed before the cdp goes */
        guint id;
        GTask *task;
        GCancellable *cancellable;
        gulong cancel_id;
} Request;

struct _ItkCdp {
        gatomicrefcount ref;
        int read_fd;
        int write_fd;
        guint read_watch;
        guint write_watch;
        GByteArray *in;
        GByteArray *out;
        guint next_id;
        GHashTable *pending; /* id -> Request* */
        GPtrArray *handlers; /* Handler* */
        guint next_handler;
        guint dispatching;
        gboolean in_read;
        ItkCdpClosedFunc closed_func;
        gpointer closed_data;
        GError *close_error;
};

static void
request_free(Request *request)
{
        g_clear_object(&request->task);
        g_clear_object(&request->cancellable);
        g_free(request);
}

static void
handler_free(Handler *handler)
{
        g_free(handler->session_id);
        g_free(handler);
}

static void itk_cdp_shutdown(ItkCdp *cdp, GError *error, gboolean notify);
static gboolean itk_cdp_read_cb(int fd, GIOCondition condition, gpointer user_data);

ItkCdp *
itk_cdp_new(int read_fd, int write_fd)
{
        ItkCdp *cdp = g_new0(ItkCdp, 1);

        g_atomic_ref_count_init(&cdp->ref);
        cdp->read_fd = read_fd;
        cdp->write_fd = write_fd;
        g_unix_set_fd_nonblocking(read_fd, TRUE, NULL);
        g_unix_set_fd_nonblocking(write_fd, TRUE, NULL);
        fcntl(read_fd, F_SETFD, FD_CLOEXEC);
        fcntl(write_fd, F_SETFD, FD_CLOEXEC);
        cdp->in = g_byte_array_new();
        cdp->out = g_byte_array_new();
        cdp->next_id = 1;
        cdp->pending = g_hash_table_new(g_direct_hash, g_direct_equal);
        cdp->handlers = g_ptr_array_new_with_free_func((GDestroyNotify)handler_free);
        cdp->read_watch =
                g_unix_fd_add(read_fd, G_IO_IN | G_IO_HUP | G_IO_ERR, itk_cdp_read_cb, cdp);
        return cdp;
}

ItkCdp *
itk_cdp_ref(ItkCdp *cdp)
{
        g_atomic_ref_count_inc(&cdp->ref);
        return cdp;
}

void
itk_cdp_unref(ItkCdp *cdp)
{
        if (cdp == NULL || !g_atomic_ref_count_dec(&cdp->ref))
                return;
        itk_cdp_close(cdp, "the browser connection was closed");
        g_hash_table_unref(cdp->pending);
        g_ptr_array_unref(cdp->handlers);
        g_byte_array_unref(cdp->in);
        g_byte_array_unref(cdp->out);
        g_clear_error(&cdp->close_error);
        g_free(cdp);
}

void
itk_cdp_set_closed_func(ItkCdp *cdp, ItkCdpClosedFunc func, gpointer user_data)
{
        cdp->closed_func = func;
        cdp->closed_data = user_data;
}

gboolean
itk_cdp_is_closed(ItkCdp *cdp)
{
        return cdp->read_fd < 0;
}

const GError *
itk_cdp_get_close_error(ItkCdp *cdp)
{
        return cdp->close_error;
}

guint
itk_cdp_get_n_pending(ItkCdp *cdp)
{
        return g_hash_table_size(cdp->pending);
}

JsonObject *
itk_json_object_member(JsonObject *object, const char *name)
{
        JsonNode *node = object != NULL ? json_object_get_member(object, name) : NULL;

        return node != NULL && JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
}

JsonArray *
itk_json_array_member(JsonObject *object, const char *name)
{
        JsonNode *node = object != NULL ? json_object_get_member(object, name) : NULL;

        return node != NULL && JSON_NODE_HOLDS_ARRAY(node) ? json_node_get_array(node) : NULL;
}

/* --- events ---------------------------------------------------------------- */

guint
itk_cdp_add_handler(ItkCdp *cdp, const char *session_id, ItkCdpEventFunc func, gpointer user_data)
{
        Handler *handler = g_new0(Handler, 1);

        handler->id = ++cdp->next_handler;
        handler->session_id = g_strdup(session_id);
        handler->func = func;
        handler->user_data = user_data;
        g_ptr_array_add(cdp->handlers, handler);
        return handler->id;
}

void
itk_cdp_remove_handler(ItkCdp *cdp, guint id)
{
        for (guint i = 0; i < cdp->handlers->len; i++) {
                Handler *handler = g_ptr_array_index(cdp->handlers, i);
                if (handler->id != id)
                        continue;
                /* During a dispatch the array stays as it is; swept afterwards. */
                if (cdp->dispatching > 0)
                        handler->removed = TRUE;
                else
                        g_ptr_array_remove_index(cdp->handlers, i);
                return;
        }
}

static void
itk_cdp_dispatch_event(ItkCdp *cdp, const char *session_id, const char *method, JsonObject *params)
{
        /* Handlers added during the dispatch see the next event, not this one. */
        guint n = cdp->handlers->len;

        cdp->dispatching++;
        for (guint i = 0; i < n && i < cdp->handlers->len; i++) {
                Handler *handler = g_ptr_array_index(cdp->handlers, i);
                if (handler->removed)
                        continue;
                if (handler->session_id != NULL && g_strcmp0(handler->session_id, session_id) != 0)
                        continue;
                handler->func(cdp, session_id, method, params, handler->user_data);
        }
        cdp->dispatching--;
        if (cdp->dispatching == 0) {
                for (guint i = cdp->handlers->len; i > 0; i--) {
                        Handler *handler = g_ptr_array_index(cdp->handlers, i - 1);
                        if (handler->removed)
                                g_ptr_array_remove_index(cdp->handlers, i - 1);
                }
        }
}

/* --- replies ----------------------------------------------------------------- */

static void
itk_cdp_complete(Request *request, JsonObject *reply)
{
        JsonObject *error = itk_json_object_member(reply, "error");

        if (error != NULL) {
                const char *message = json_object_get_string_member_with_default(error, "message",
                                                                                 "unknown error");
                const char *data = json_object_get_string_member_with_default(error, "data", NULL);
                g_task_return_new_error(request->task, ITK_ERROR, ITK_ERROR_FAILED, "%s%s%s",
                                        message, data != NULL ? ": " : "",
                                        data != NULL ? data : "");
        } else {
                JsonObject *result = itk_json_object_member(reply, "result");
                g_task_return_pointer(request->task,
                                      result != NULL ? json_object_ref(result) : json_object_new(),
                                      (GDestroyNotify)json_object_unref);
        }
}

static void
itk_cdp_handle_message(ItkCdp *cdp, const char *data, gsize length)
{
        g_autoptr(JsonParser) parser = json_parser_new_immutable();
        JsonNode *root;
        JsonObject *message;

        if (!json_parser_load_from_data(parser, data, (gssize)length, NULL))
                return; /* not ours to judge; Chromium never sends this */
        root = json_parser_get_root(parser);
        if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root))
                return;
        message = json_node_get_object(root);
        /* Ids and methods only: parameters may hold secrets. */
        if (g_getenv("ITK_CDP_TRACE") != NULL)
                g_printerr("cdp <- id=%" G_GINT64_FORMAT " method=%s session=%s error=%s\n",
                           json_object_get_int_member_with_default(message, "id", 0),
                           json_object_get_string_member_with_default(message, "method", "-"),
                           json_object_get_string_member_with_default(message, "sessionId", "-"),
                           itk_json_object_member(message, "error") != NULL ? "yes" : "no");
        if (json_object_has_member(message, "id")) {
                guint id = (guint)json_object_get_int_member_with_default(message, "id", 0);
                Request *request = NULL;

                if (!g_hash_table_steal_extended(cdp->pending, GUINT_TO_POINTER(id), NULL,
                                                 (gpointer *)&request))
                        return; /* cancelled: forgotten */
                if (request->cancel_id != 0)
                        g_cancellable_disconnect(request->cancellable, request->cancel_id);
                itk_cdp_complete(request, message);
                request_free(request);
        } else if (json_object_has_member(message, "method")) {
                JsonObject *params = itk_json_object_member(message, "params");
                g_autoptr(JsonObject) empty = NULL;
                if (params == NULL)
                        params = empty = json_object_new();
                itk_cdp_dispatch_event(
                        cdp, json_object_get_string_member_with_default(message, "sessionId", NULL),
                        json_object_get_string_member(message, "method"), params);
        }
}

static gboolean
itk_cdp_read_cb(int fd, GIOCondition condition, gpointer user_data)
{
        ItkCdp *cdp = user_data;
        g_autoptr(ItkCdp) hold = itk_cdp_ref(cdp);
        gsize start = 0;

        (void)condition;
        cdp->in_read = TRUE;
        for (;;) {
                guint8 buffer[65536];
                gssize n = read(fd, buffer, sizeof buffer);
                if (n > 0) {
                        g_byte_array_append(cdp->in, buffer, (guint)n);
                        if ((gsize)n < sizeof buffer)
                                break;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        break;
                itk_cdp_shutdown(cdp,
                                 g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                             n == 0 ? "the browser closed its connection"
                                                    : "reading from the browser failed: %s",
                                             g_strerror(errno)),
                                 TRUE);
                break;
        }
        /* Each NUL ends one message; a handler may close the connection. */
        while (!itk_cdp_is_closed(cdp)) {
                guint8 *end = memchr(cdp->in->data + start, '\0', cdp->in->len - start);
                if (end == NULL)
                        break;
                itk_cdp_handle_message(cdp, (const char *)cdp->in->data + start,
                                       (gsize)(end - (cdp->in->data + start)));
                start = (gsize)(end - cdp->in->data) + 1;
        }
        if (!itk_cdp_is_closed(cdp)) {
                g_byte_array_remove_range(cdp->in, 0, (guint)start);
                if (cdp->in->len > CDP_MAX_MESSAGE)
                        itk_cdp_shutdown(
                                cdp,
                                g_error_new_literal(ITK_ERROR, ITK_ERROR_FAILED,
                                                    "the browser sent an oversized message"),
                                TRUE);
        }
        cdp->in_read = FALSE;
        return itk_cdp_is_closed(cdp) ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

/* --- requests ---------------------------------------------------------------- */

static gboolean itk_cdp_write_cb(int fd, GIOCondition condition, gpointer user_data);

static void
itk_cdp_flush(ItkCdp *cdp)
{
        while (cdp->out->len > 0) {
                gssize n = write(cdp->write_fd, cdp->out->data, cdp->out->len);
                if (n > 0) {
                        g_byte_array_remove_range(cdp->out, 0, (guint)n);
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                        if (cdp->write_watch == 0)
                                cdp->write_watch = g_unix_fd_add(cdp->write_fd, G_IO_OUT,
                                                                 itk_cdp_write_cb, cdp);
                        return;
                }
                itk_cdp_shutdown(cdp,
                                 g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                             "writing to the browser failed: %s",
                                             g_strerror(errno)),
                                 TRUE);
                return;
        }
        g_clear_handle_id(&cdp->write_watch, g_source_remove);
}

static gboolean
itk_cdp_write_cb(int fd, GIOCondition condition, gpointer user_data)
{
        ItkCdp *cdp = user_data;

        (void)fd;
        (void)condition;
        cdp->write_watch = 0;
        itk_cdp_flush(cdp);
        return G_SOURCE_REMOVE;
}

static guint
itk_cdp_queue(ItkCdp *cdp, const char *session_id, const char *method, JsonObject *params)
{
        g_autoptr(JsonBuilder) builder = json_builder_new_immutable();
        g_autoptr(JsonGenerator) generator = json_generator_new();
        g_autoptr(JsonNode) root = NULL;
        g_autofree char *text = NULL;
        gsize length = 0;
        guint id = cdp->next_id++;

        json_builder_begin_object(builder);
        json_builder_set_member_name(builder, "id");
        json_builder_add_int_value(builder, id);
        json_builder_set_member_name(builder, "method");
        json_builder_add_string_value(builder, method);
        if (session_id != NULL) {
                json_builder_set_member_name(builder, "sessionId");
                json_builder_add_string_value(builder, session_id);
        }
        json_builder_set_member_name(builder, "params");
        if (params != NULL) {
                JsonNode *node = json_node_alloc();
                json_node_init_object(node, params);
                json_builder_add_value(builder, node);
        } else {
                json_builder_begin_object(builder);
                json_builder_end_object(builder);
        }
        json_builder_end_object(builder);
        if (g_getenv("ITK_CDP_TRACE") != NULL)
                g_printerr("cdp -> id=%u method=%s session=%s\n", id, method,
                           session_id != NULL ? session_id : "-");
        root = json_builder_get_root(builder);
        json_generator_set_root(generator, root);
        text = json_generator_to_data(generator, &length);
        g_byte_array_append(cdp->out, (const guint8 *)text, (guint)length + 1); /* the NUL too */
        /* The request may carry a password (browser.fill): wipe our copy. */
        memset(text, 0, length);
        if (cdp->write_watch == 0)
                itk_cdp_flush(cdp);
        return id;
}

void
itk_cdp_send(ItkCdp *cdp, const char *session_id, const char *method, JsonObject *params)
{
        g_autoptr(JsonObject) owned = params;

        if (itk_cdp_is_closed(cdp))
                return;
        itk_cdp_queue(cdp, session_id, method, owned);
}

static gboolean
itk_cdp_cancelled_idle_cb(gpointer user_data)
{
        Request *request = user_data;

        g_cancellable_disconnect(request->cancellable, request->cancel_id);
        request->cancel_id = 0;
        g_task_return_new_error(request->task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                "the browser command was cancelled");
        request_free(request);
        return G_SOURCE_REMOVE;
}

static void
itk_cdp_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
        Request *request = user_data;
        Request *pending = NULL;

        (void)cancellable;
        /* Runs inside g_cancellable_cancel(): forget the request now (a late
         * reply is dropped), complete it from a fresh iteration. */
        if (!g_hash_table_steal_extended(request->cdp->pending, GUINT_TO_POINTER(request->id), NULL,
                                         (gpointer *)&pending))
                return;
        g_idle_add_full(G_PRIORITY_HIGH, itk_cdp_cancelled_idle_cb, request, NULL);
}

void
itk_cdp_call_async(ItkCdp *cdp, const char *session_id, const char *method, JsonObject *params,
                   GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
        g_autoptr(JsonObject) owned = params;
        g_autoptr(ItkCdp) hold = itk_cdp_ref(cdp); /* a failed write closes it */
        GTask *task = g_task_new(NULL, cancellable, callback, user_data);
        Request *request;

        g_task_set_source_tag(task, itk_cdp_call_async);
        g_task_set_check_cancellable(task, FALSE);
        if (itk_cdp_is_closed(cdp)) {
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_FAILED, "%s",
                                        cdp->close_error != NULL
                                                ? cdp->close_error->message
                                                : "the browser connection is closed");
                g_object_unref(task);
                return;
        }
        if (g_cancellable_is_cancelled(cancellable)) {
                g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                        "the browser command was cancelled");
                g_object_unref(task);
                return;
        }
        request = g_new0(Request, 1);
        request->cdp = cdp;
        request->task = task;
        request->id = itk_cdp_queue(cdp, session_id, method, owned);
        if (itk_cdp_is_closed(cdp)) {
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_FAILED, "%s",
                                        cdp->close_error->message);
                request_free(request);
                return;
        }
        g_hash_table_insert(cdp->pending, GUINT_TO_POINTER(request->id), request);
        if (cancellable != NULL) {
                request->cancellable = g_object_ref(cancellable);
                request->cancel_id = g_cancellable_connect(
                        cancellable, G_CALLBACK(itk_cdp_cancelled_cb), request, NULL);
        }
}

JsonObject *
itk_cdp_call_finish(ItkCdp *cdp, GAsyncResult *result, GError **error)
{
        (void)cdp;
        return g_task_propagate_pointer(G_TASK(result), error);
}

/* --- closing ----------------------------------------------------------------- */

static void
itk_cdp_shutdown(ItkCdp *cdp, GError *error, gboolean notify)
{
        g_autoptr(GHashTable) pending = NULL;
        GHashTableIter iter;
        Request *request;

        g_autoptr(ItkCdp) hold = NULL;

        if (itk_cdp_is_closed(cdp)) {
                g_error_free(error);
                return;
        }
        /* The owner may drop its reference in the closed function. */
        hold = itk_cdp_ref(cdp);
        cdp->close_error = error;
        /* From inside the read callback, its return value removes the watch. */
        if (cdp->read_watch != 0 && !cdp->in_read)
                g_source_remove(cdp->read_watch);
        cdp->read_watch = 0;
        g_clear_handle_id(&cdp->write_watch, g_source_remove);
        close(cdp->read_fd);
        close(cdp->write_fd);
        cdp->read_fd = cdp->write_fd = -1;
        /* The owner first, so that what it marks (a dead page) explains
         * the failures below. */
        if (notify && cdp->closed_func != NULL)
                cdp->closed_func(cdp, error, cdp->closed_data);
        pending = g_steal_pointer(&cdp->pending);
        cdp->pending = g_hash_table_new(g_direct_hash, g_direct_equal);
        g_hash_table_iter_init(&iter, pending);
        while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&request)) {
                if (request->cancel_id != 0)
                        g_cancellable_disconnect(request->cancellable, request->cancel_id);
                g_task_return_new_error(request->task, ITK_ERROR, ITK_ERROR_FAILED, "%s",
                                        error->message);
                request_free(request);
        }
}

void
itk_cdp_close(ItkCdp *cdp, const char *reason)
{
        if (itk_cdp_is_closed(cdp))
                return;
        itk_cdp_shutdown(cdp, g_error_new(ITK_ERROR, ITK_ERROR_FAILED, "%s", reason), FALSE);
}
