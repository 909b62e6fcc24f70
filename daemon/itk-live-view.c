/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>

#include "itk-error.h"
#include "itk-live-view.h"

typedef struct {
        char *session_name;
        ItkLiveBackend backend;
} Backend;

static GPtrArray *backends; /* Backend*, main thread only */

void
itk_live_view_set_backend(const char *session_name, const ItkLiveBackend *backend)
{
        Backend *entry;

        if (backends == NULL)
                backends = g_ptr_array_new();
        for (guint i = 0; i < backends->len; i++) {
                entry = g_ptr_array_index(backends, i);
                if (g_str_equal(entry->session_name, session_name)) {
                        entry->backend = *backend;
                        return;
                }
        }
        entry = g_new0(Backend, 1);
        entry->session_name = g_strdup(session_name);
        entry->backend = *backend;
        g_ptr_array_add(backends, entry);
}

static const ItkLiveBackend *
lookup_backend(const char *session_name)
{
        for (guint i = 0; backends != NULL && i < backends->len; i++) {
                Backend *entry = g_ptr_array_index(backends, i);
                if (g_str_equal(entry->session_name, session_name))
                        return &entry->backend;
        }
        return NULL;
}

typedef struct {
        ItkLiveView *view;
        int fd;
        guint in_id;
        guint out_id;
        GBytes *sending; /* being written, from @offset */
        gsize offset;
        GBytes *next; /* the newest message not begun yet; older ones were dropped */
} Watcher;

struct _ItkLiveView {
        char *session_name;
        ItkLiveStepFunc step_func;
        gpointer step_data;
        gpointer session;
        gpointer cast; /* the backend's screencast, while someone watches */
        GPtrArray *watchers;
        GBytes *last_frame; /* encoded, for new watchers */
        char *url;
        guint64 sequence;
        gboolean closed;
        gboolean waiting_ready;    /* the backend holds a frame back until a watcher drains */
        GCancellable *cancellable; /* cancelled when the run ends: inputs in flight stop */
};

GBytes *
itk_live_view_encode(JsonObject *header, GBytes *payload)
{
        g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);
        g_autoptr(JsonGenerator) generator = json_generator_new();
        g_autofree char *text = NULL;
        gsize header_len, payload_len = payload != NULL ? g_bytes_get_size(payload) : 0;
        guint8 *data;
        guint32 be;

        json_node_set_object(node, header);
        json_generator_set_root(generator, node);
        text = json_generator_to_data(generator, &header_len);
        data = g_malloc(ITK_LIVE_VIEW_PREFIX_SIZE + header_len + payload_len);
        be = GUINT32_TO_BE((guint32)header_len);
        memcpy(data, &be, 4);
        be = GUINT32_TO_BE((guint32)payload_len);
        memcpy(data + 4, &be, 4);
        memcpy(data + ITK_LIVE_VIEW_PREFIX_SIZE, text, header_len);
        if (payload_len > 0)
                memcpy(data + ITK_LIVE_VIEW_PREFIX_SIZE + header_len,
                       g_bytes_get_data(payload, NULL), payload_len);
        return g_bytes_new_take(data, ITK_LIVE_VIEW_PREFIX_SIZE + header_len + payload_len);
}

static GBytes *
encode_status(const char *state, const char *message)
{
        g_autoptr(JsonObject) header = json_object_new();

        json_object_set_string_member(header, "type", "status");
        json_object_set_string_member(header, "state", state);
        json_object_set_string_member(header, "message", message);
        return itk_live_view_encode(header, NULL);
}

static void watcher_remove(Watcher *watcher);

static void
watcher_free(Watcher *watcher)
{
        g_clear_handle_id(&watcher->in_id, g_source_remove);
        g_clear_handle_id(&watcher->out_id, g_source_remove);
        g_clear_pointer(&watcher->sending, g_bytes_unref);
        g_clear_pointer(&watcher->next, g_bytes_unref);
        if (watcher->fd >= 0)
                close(watcher->fd);
        g_free(watcher);
}

static gboolean watcher_writable_cb(int fd, GIOCondition condition, gpointer user_data);

/* Writes what the socket takes now; FALSE when the watcher is gone. */
static gboolean
watcher_flush(Watcher *watcher)
{
        while (watcher->sending != NULL) {
                gsize size;
                const guint8 *data = g_bytes_get_data(watcher->sending, &size);
                ssize_t n = send(watcher->fd, data + watcher->offset, size - watcher->offset,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                        if (watcher->out_id == 0)
                                watcher->out_id = g_unix_fd_add(watcher->fd, G_IO_OUT,
                                                                watcher_writable_cb, watcher);
                        return TRUE;
                }
                if (n < 0) {
                        /* EPIPE and the like: the reader went away. */
                        watcher_remove(watcher);
                        return FALSE;
                }
                watcher->offset += (gsize)n;
                if (watcher->offset == size) {
                        g_bytes_unref(watcher->sending);
                        watcher->sending = g_steal_pointer(&watcher->next);
                        watcher->offset = 0;
                }
        }
        g_clear_handle_id(&watcher->out_id, g_source_remove);
        if (watcher->view->waiting_ready && watcher->view->cast != NULL) {
                const ItkLiveBackend *backend = lookup_backend(watcher->view->session_name);
                watcher->view->waiting_ready = FALSE;
                if (backend != NULL && backend->ready != NULL)
                        backend->ready(watcher->view->cast);
        }
        return TRUE;
}

static gboolean
watcher_writable_cb(int fd, GIOCondition condition, gpointer user_data)
{
        Watcher *watcher = user_data;

        /* watcher_flush() watches again when the socket fills up once more. */
        watcher->out_id = 0;
        watcher_flush(watcher);
        return G_SOURCE_REMOVE;
}

/* Sends @message to @watcher, dropping the one it had not begun. */
static gboolean
watcher_queue(Watcher *watcher, GBytes *message)
{
        if (watcher->sending == NULL) {
                watcher->sending = g_bytes_ref(message);
                watcher->offset = 0;
        } else {
                g_clear_pointer(&watcher->next, g_bytes_unref);
                watcher->next = g_bytes_ref(message);
                /* Already waiting for the socket to drain. */
                if (watcher->out_id != 0)
                        return TRUE;
        }
        return watcher_flush(watcher);
}

static gboolean
watcher_readable_cb(int fd, GIOCondition condition, gpointer user_data)
{
        Watcher *watcher = user_data;
        char buf[256];
        ssize_t n;

        /* Readers send nothing: anything read is discarded; EOF or an error
         * means the reader closed its end. */
        for (;;) {
                n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n > 0)
                        continue;
                if (n < 0 && errno == EINTR)
                        continue;
                break;
        }
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) ||
            (condition & (G_IO_HUP | G_IO_ERR))) {
                watcher->in_id = 0;
                watcher_remove(watcher);
                return G_SOURCE_REMOVE;
        }
        return G_SOURCE_CONTINUE;
}

static void
itk_live_view_stop_cast(ItkLiveView *self)
{
        const ItkLiveBackend *backend = lookup_backend(self->session_name);

        if (self->cast == NULL)
                return;
        if (backend != NULL)
                backend->stop(self->cast);
        self->cast = NULL;
        self->waiting_ready = FALSE;
}

static void
itk_live_view_start_cast(ItkLiveView *self)
{
        const ItkLiveBackend *backend = lookup_backend(self->session_name);

        if (self->cast != NULL || self->session == NULL || backend == NULL ||
            self->watchers->len == 0)
                return;
        self->cast = backend->start(self->session, self);
}

static void
watcher_remove(Watcher *watcher)
{
        ItkLiveView *self = watcher->view;

        g_ptr_array_remove(self->watchers, watcher);
        watcher_free(watcher);
        /* Nobody watches: the browser stops encoding frames. */
        if (self->watchers->len == 0)
                itk_live_view_stop_cast(self);
}

ItkLiveView *
itk_live_view_new(const char *session_name, ItkLiveStepFunc step_func, gpointer step_data)
{
        ItkLiveView *self = g_new0(ItkLiveView, 1);

        self->session_name = g_strdup(session_name);
        self->step_func = step_func;
        self->step_data = step_data;
        self->watchers = g_ptr_array_new();
        self->url = g_strdup("");
        self->cancellable = g_cancellable_new();
        return self;
}

void
itk_live_view_close_all(ItkLiveView *self, const char *reason)
{
        g_autoptr(GBytes) goodbye = NULL;

        self->closed = TRUE;
        g_cancellable_cancel(self->cancellable);
        itk_live_view_stop_cast(self);
        if (reason != NULL)
                goodbye = encode_status("closed", reason);
        while (self->watchers->len > 0) {
                Watcher *watcher = g_ptr_array_steal_index(self->watchers, 0);
                /* Best effort: a reader that keeps up sees why it ended. */
                if (goodbye != NULL && watcher->sending == NULL) {
                        gsize size;
                        const guint8 *data = g_bytes_get_data(goodbye, &size);
                        (void)!send(watcher->fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
                }
                watcher_free(watcher);
        }
}

void
itk_live_view_free(ItkLiveView *self)
{
        if (self == NULL)
                return;
        itk_live_view_close_all(self, NULL);
        g_ptr_array_unref(self->watchers);
        g_clear_pointer(&self->last_frame, g_bytes_unref);
        g_clear_object(&self->cancellable);
        g_free(self->session_name);
        g_free(self->url);
        g_free(self);
}

void
itk_live_view_set_session(ItkLiveView *self, gpointer session)
{
        if (session == self->session)
                return;
        itk_live_view_stop_cast(self);
        self->session = session;
        if (session != NULL && !self->closed)
                itk_live_view_start_cast(self);
}

int
itk_live_view_open(ItkLiveView *self, GError **error)
{
        g_autoptr(GBytes) status = NULL;
        Watcher *watcher;
        int fds[2];

        if (self->closed) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_NOT_RUNNING,
                            "the run has ended: its browser is closed");
                return -1;
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) {
                int saved = errno;
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED, "cannot make a socket: %s",
                            g_strerror(saved));
                return -1;
        }
        /* Our end never blocks; the reader's end is theirs to choose. */
        (void)!fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
        watcher = g_new0(Watcher, 1);
        watcher->view = self;
        watcher->fd = fds[0];
        watcher->in_id =
                g_unix_fd_add(fds[0], G_IO_IN | G_IO_HUP | G_IO_ERR, watcher_readable_cb, watcher);
        g_ptr_array_add(self->watchers, watcher);
        if (self->last_frame != NULL)
                watcher_queue(watcher, self->last_frame);
        else if (self->session == NULL || lookup_backend(self->session_name) == NULL)
                status = encode_status("no-browser", "this run has no browser page (yet): "
                                                     "frames follow once a browser step opens it");
        else
                status = encode_status("waiting", "waiting for the first frame of the page");
        if (status != NULL)
                watcher_queue(watcher, status);
        itk_live_view_start_cast(self);
        return fds[1];
}

guint
itk_live_view_get_n_watchers(ItkLiveView *self)
{
        return self->watchers->len;
}

gboolean
itk_live_view_is_ready(ItkLiveView *self)
{
        for (guint i = 0; i < self->watchers->len; i++) {
                Watcher *watcher = g_ptr_array_index(self->watchers, i);
                if (watcher->sending == NULL)
                        return TRUE;
        }
        self->waiting_ready = TRUE;
        return FALSE;
}

gboolean
itk_live_view_is_casting(ItkLiveView *self)
{
        return self->cast != NULL;
}

const char *
itk_live_view_get_url(ItkLiveView *self)
{
        return self->url;
}

void
itk_live_view_push_frame(ItkLiveView *self, GBytes *jpeg, guint width, guint height,
                         const char *url, gint64 timestamp_us)
{
        g_autoptr(JsonObject) header = json_object_new();
        g_autoptr(GPtrArray) watchers = NULL;
        const char *step = self->step_func != NULL ? self->step_func(self->step_data) : NULL;

        if (self->closed)
                return;
        g_free(self->url);
        self->url = g_strdup(url != NULL ? url : "");
        json_object_set_string_member(header, "type", "frame");
        json_object_set_int_member(header, "width", width);
        json_object_set_int_member(header, "height", height);
        json_object_set_string_member(header, "url", self->url);
        json_object_set_string_member(header, "step", step != NULL ? step : "");
        json_object_set_int_member(header, "timestamp", timestamp_us);
        json_object_set_int_member(header, "sequence", (gint64)++self->sequence);
        g_clear_pointer(&self->last_frame, g_bytes_unref);
        self->last_frame = itk_live_view_encode(header, jpeg);
        /* A failed write removes its watcher: iterate over a copy. */
        watchers = g_ptr_array_copy(self->watchers, NULL, NULL);
        for (guint i = 0; i < watchers->len; i++)
                watcher_queue(g_ptr_array_index(watchers, i), self->last_frame);
}

static gboolean
get_number(JsonObject *event, const char *name, gboolean required, double *value, GError **error)
{
        JsonNode *node = json_object_get_member(event, name);

        if (node == NULL) {
                if (required)
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "input event needs '%s'", name);
                return !required;
        }
        if (!JSON_NODE_HOLDS_VALUE(node) || (json_node_get_value_type(node) != G_TYPE_INT64 &&
                                             json_node_get_value_type(node) != G_TYPE_DOUBLE)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                            "input event member '%s' must be a number", name);
                return FALSE;
        }
        *value = json_node_get_double(node);
        if (!isfinite(*value) || *value < -100000 || *value > 100000) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                            "input event member '%s' is out of range", name);
                return FALSE;
        }
        return TRUE;
}

static gboolean
get_string(JsonObject *event, const char *name, gboolean required, GError **error)
{
        JsonNode *node = json_object_get_member(event, name);

        if (node == NULL) {
                if (required)
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "input event needs '%s'", name);
                return !required;
        }
        if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                            "input event member '%s' must be a string", name);
                return FALSE;
        }
        if (strlen(json_node_get_string(node)) > 256) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                            "input event member '%s' is longer than 256 bytes", name);
                return FALSE;
        }
        return TRUE;
}

static gboolean
check_members(JsonObject *event, const char *const *known, GError **error)
{
        g_autoptr(GList) members = json_object_get_members(event);

        for (GList *l = members; l != NULL; l = l->next) {
                if (!g_strv_contains(known, l->data)) {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "unknown input event member '%s'", (const char *)l->data);
                        return FALSE;
                }
        }
        return TRUE;
}

gboolean
itk_live_view_check_input(const char *kind, JsonObject *event, GError **error)
{
        double x, y, d;

        if (g_strcmp0(kind, "click") == 0) {
                static const char *const known[] = { "x", "y", "button", NULL };
                const char *button;
                if (!check_members(event, known, error) ||
                    !get_number(event, "x", TRUE, &x, error) ||
                    !get_number(event, "y", TRUE, &y, error) ||
                    !get_string(event, "button", FALSE, error))
                        return FALSE;
                button = json_object_get_string_member_with_default(event, "button", "left");
                if (!g_str_equal(button, "left") && !g_str_equal(button, "middle") &&
                    !g_str_equal(button, "right")) {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "button '%s' is not left, middle or right", button);
                        return FALSE;
                }
                return TRUE;
        }
        if (g_strcmp0(kind, "scroll") == 0) {
                static const char *const known[] = { "x", "y", "dx", "dy", NULL };
                return check_members(event, known, error) &&
                       get_number(event, "x", TRUE, &x, error) &&
                       get_number(event, "y", TRUE, &y, error) &&
                       get_number(event, "dx", FALSE, &d, error) &&
                       get_number(event, "dy", FALSE, &d, error);
        }
        if (g_strcmp0(kind, "key") == 0) {
                static const char *const known[] = { "key", "text", NULL };
                if (!check_members(event, known, error) || !get_string(event, "key", TRUE, error) ||
                    !get_string(event, "text", FALSE, error))
                        return FALSE;
                if (*json_object_get_string_member(event, "key") == '\0') {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "input event member 'key' is empty");
                        return FALSE;
                }
                return TRUE;
        }
        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                    "unknown input kind '%s' (expected click, scroll or key)", kind);
        return FALSE;
}

void
itk_live_view_input_async(ItkLiveView *self, const char *kind, JsonObject *event,
                          GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data)
{
        const ItkLiveBackend *backend = lookup_backend(self->session_name);
        g_autoptr(GTask) task = NULL;

        if (self->session == NULL || backend == NULL) {
                task = g_task_new(NULL, cancellable, callback, user_data);
                g_task_set_source_tag(task, itk_live_view_input_async);
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_NOT_SUPPORTED,
                                        "this run has no browser page to steer");
                return;
        }
        /* Without a cancellable of the caller's, the run's end stops it. */
        backend->input_async(self->session, kind, event,
                             cancellable != NULL ? cancellable : self->cancellable, callback,
                             user_data);
}

char *
itk_live_view_input_finish(ItkLiveView *self, GAsyncResult *result, GError **error)
{
        const ItkLiveBackend *backend = lookup_backend(self->session_name);

        if (g_task_is_valid(result, NULL) &&
            g_task_get_source_tag(G_TASK(result)) == itk_live_view_input_async)
                return g_task_propagate_pointer(G_TASK(result), error);
        return backend->input_finish(result, error);
}
