/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ItkLiveView with a fake screencast: the framing of messages, the
 * screencast following the watchers, a slow watcher getting the newest
 * frame, the run's end closing every watcher, input checks. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "itk-error.h"
#include "itk-live-view.h"

static guint n_starts, n_stops, n_ready;
static int fake_session;

static gpointer
fake_start(gpointer session, ItkLiveView *view)
{
        g_assert_true(session == &fake_session);
        n_starts++;
        return GUINT_TO_POINTER(n_starts);
}

static void
fake_stop(gpointer cast)
{
        n_stops++;
}

static void
fake_ready(gpointer cast)
{
        n_ready++;
}

static void
fake_input_async(gpointer session, const char *kind, JsonObject *event, GCancellable *cancellable,
                 GAsyncReadyCallback callback, gpointer user_data)
{
        g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
        g_task_return_pointer(task, g_strdup_printf("fake %s", kind), g_free);
}

static char *
fake_input_finish(GAsyncResult *result, GError **error)
{
        return g_task_propagate_pointer(G_TASK(result), error);
}

static const char *
step_cb(gpointer data)
{
        return "step-1";
}

static ItkLiveView *
new_view(void)
{
        static const ItkLiveBackend backend = {
                .start = fake_start,
                .stop = fake_stop,
                .ready = fake_ready,
                .input_async = fake_input_async,
                .input_finish = fake_input_finish,
        };

        itk_live_view_set_backend("fake", &backend);
        n_starts = n_stops = n_ready = 0;
        return itk_live_view_new("fake", step_cb, NULL);
}

/* A reader of one watcher's messages, never blocking the main loop. */
typedef struct {
        int fd;
        GByteArray *buf;
        gboolean eof;
} Reader;

static Reader *
reader_new(int fd)
{
        Reader *r = g_new0(Reader, 1);

        r->fd = fd;
        r->buf = g_byte_array_new();
        return r;
}

static void
reader_free(Reader *r)
{
        if (r->fd >= 0)
                close(r->fd);
        g_byte_array_unref(r->buf);
        g_free(r);
}

/* Reads what is there now. */
static void
reader_pump(Reader *r)
{
        guint8 chunk[65536];

        for (;;) {
                ssize_t n = recv(r->fd, chunk, sizeof(chunk), MSG_DONTWAIT);
                if (n > 0) {
                        g_byte_array_append(r->buf, chunk, (guint)n);
                        continue;
                }
                if (n == 0)
                        r->eof = TRUE;
                else
                        g_assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
                return;
        }
}

/* The next complete message, or NULL when none is there yet. */
static JsonObject *
reader_take(Reader *r, GBytes **payload)
{
        guint32 hlen, plen;
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(GError) error = NULL;
        JsonObject *header;

        reader_pump(r);
        if (r->buf->len < 8)
                return NULL;
        memcpy(&hlen, r->buf->data, 4);
        memcpy(&plen, r->buf->data + 4, 4);
        hlen = GUINT32_FROM_BE(hlen);
        plen = GUINT32_FROM_BE(plen);
        g_assert_cmpuint(hlen, <=, ITK_LIVE_VIEW_MAX_HEADER);
        if (r->buf->len < 8 + hlen + plen)
                return NULL;
        g_assert_true(
                json_parser_load_from_data(parser, (const char *)r->buf->data + 8, hlen, &error));
        g_assert_no_error(error);
        header = json_object_ref(json_node_get_object(json_parser_get_root(parser)));
        if (payload != NULL)
                *payload = g_bytes_new(r->buf->data + 8 + hlen, plen);
        g_byte_array_remove_range(r->buf, 0, 8 + hlen + plen);
        return header;
}

/* Waits (main loop running) for the next message. */
static JsonObject *
reader_next(Reader *r, GBytes **payload)
{
        JsonObject *header;

        while ((header = reader_take(r, payload)) == NULL) {
                g_assert_false(r->eof);
                /* Let the view write; then give the socket a moment. */
                while (g_main_context_iteration(NULL, FALSE))
                        ;
                if ((header = reader_take(r, payload)) != NULL)
                        return header;
                g_assert_false(r->eof);
                g_main_context_iteration(NULL, TRUE);
        }
        return header;
}

static Reader *
open_reader(ItkLiveView *view)
{
        g_autoptr(GError) error = NULL;
        int fd = itk_live_view_open(view, &error);

        g_assert_no_error(error);
        g_assert_cmpint(fd, >=, 0);
        return reader_new(fd);
}

static GBytes *
make_jpeg(gsize size, guint8 fill)
{
        guint8 *data = g_malloc(size);

        memset(data, fill, size);
        data[0] = 0xff;
        data[1] = 0xd8;
        return g_bytes_new_take(data, size);
}

static void
test_encode(void)
{
        g_autoptr(JsonObject) header = json_object_new();
        g_autoptr(GBytes) payload = g_bytes_new_static("xyz", 3);
        g_autoptr(GBytes) message = NULL;
        const guint8 *data;
        gsize size;
        guint32 hlen, plen;

        json_object_set_int_member(header, "a", 1);
        message = itk_live_view_encode(header, payload);
        data = g_bytes_get_data(message, &size);
        memcpy(&hlen, data, 4);
        memcpy(&plen, data + 4, 4);
        g_assert_cmpuint(GUINT32_FROM_BE(hlen), ==, strlen("{\"a\":1}"));
        g_assert_cmpuint(GUINT32_FROM_BE(plen), ==, 3);
        g_assert_cmpuint(size, ==, 8 + 7 + 3);
        g_assert_cmpmem(data + 8, 7, "{\"a\":1}", 7);
        g_assert_cmpmem(data + 15, 3, "xyz", 3);
        /* Big-endian on the wire. */
        g_assert_cmpuint(data[3], ==, 7);
        g_assert_cmpuint(data[0], ==, 0);
}

static void
test_no_browser(void)
{
        ItkLiveView *view = new_view();
        Reader *r = open_reader(view);
        g_autoptr(JsonObject) header = reader_next(r, NULL);

        g_assert_cmpstr(json_object_get_string_member(header, "type"), ==, "status");
        g_assert_cmpstr(json_object_get_string_member(header, "state"), ==, "no-browser");
        /* No session: nothing to cast. */
        g_assert_cmpuint(n_starts, ==, 0);
        /* The browser opens: the cast starts for the watcher already there. */
        itk_live_view_set_session(view, &fake_session);
        g_assert_cmpuint(n_starts, ==, 1);
        g_assert_true(itk_live_view_is_casting(view));
        /* It closes (the run's session ends): the cast stops. */
        itk_live_view_set_session(view, NULL);
        g_assert_cmpuint(n_stops, ==, 1);
        g_assert_false(itk_live_view_is_casting(view));
        reader_free(r);
        itk_live_view_free(view);
}

static void
wait_watchers(ItkLiveView *view, guint n)
{
        while (itk_live_view_get_n_watchers(view) != n)
                g_main_context_iteration(NULL, TRUE);
}

static void
test_cast_follows_watchers(void)
{
        ItkLiveView *view = new_view();
        Reader *a, *b;

        itk_live_view_set_session(view, &fake_session);
        /* Nobody watches: the browser encodes nothing. */
        g_assert_cmpuint(n_starts, ==, 0);
        g_assert_false(itk_live_view_is_casting(view));
        a = open_reader(view);
        g_assert_cmpuint(n_starts, ==, 1);
        b = open_reader(view);
        /* Several watchers share one screencast. */
        g_assert_cmpuint(n_starts, ==, 1);
        g_assert_cmpuint(itk_live_view_get_n_watchers(view), ==, 2);
        /* A reader that closes its end is cleaned up from the loop. */
        reader_free(a);
        wait_watchers(view, 1);
        g_assert_cmpuint(n_stops, ==, 0);
        reader_free(b);
        wait_watchers(view, 0);
        g_assert_cmpuint(n_stops, ==, 1);
        g_assert_false(itk_live_view_is_casting(view));
        /* A new watcher starts it again. */
        b = open_reader(view);
        g_assert_cmpuint(n_starts, ==, 2);
        reader_free(b);
        wait_watchers(view, 0);
        g_assert_cmpuint(n_stops, ==, 2);
        itk_live_view_free(view);
}

static void
test_frames(void)
{
        ItkLiveView *view = new_view();
        g_autoptr(GBytes) jpeg = make_jpeg(1000, 7);
        g_autoptr(GBytes) payload = NULL;
        g_autoptr(GBytes) payload2 = NULL;
        g_autoptr(JsonObject) status = NULL;
        g_autoptr(JsonObject) header = NULL;
        g_autoptr(JsonObject) header2 = NULL;
        Reader *a, *b;

        itk_live_view_set_session(view, &fake_session);
        a = open_reader(view);
        status = reader_next(a, NULL);
        g_assert_cmpstr(json_object_get_string_member(status, "state"), ==, "waiting");
        itk_live_view_push_frame(view, jpeg, 1280, 720, "http://gw/page", 1234567);
        header = reader_next(a, &payload);
        g_assert_cmpstr(json_object_get_string_member(header, "type"), ==, "frame");
        g_assert_cmpint(json_object_get_int_member(header, "width"), ==, 1280);
        g_assert_cmpint(json_object_get_int_member(header, "height"), ==, 720);
        g_assert_cmpstr(json_object_get_string_member(header, "url"), ==, "http://gw/page");
        g_assert_cmpstr(json_object_get_string_member(header, "step"), ==, "step-1");
        g_assert_cmpint(json_object_get_int_member(header, "timestamp"), ==, 1234567);
        g_assert_cmpint(json_object_get_int_member(header, "sequence"), ==, 1);
        g_assert_true(g_bytes_equal(payload, jpeg));
        g_assert_cmpstr(itk_live_view_get_url(view), ==, "http://gw/page");
        /* A later watcher (a paused page sends no new frames) gets the last one first. */
        b = open_reader(view);
        header2 = reader_next(b, &payload2);
        g_assert_cmpstr(json_object_get_string_member(header2, "type"), ==, "frame");
        g_assert_cmpint(json_object_get_int_member(header2, "sequence"), ==, 1);
        g_assert_true(g_bytes_equal(payload2, jpeg));
        reader_free(a);
        reader_free(b);
        itk_live_view_free(view);
}

static void
test_slow_watcher(void)
{
        ItkLiveView *view = new_view();
        Reader *fast, *slow;
        JsonObject *header;
        gint64 fast_last = 0, slow_last = 0;
        guint slow_count = 0;
        const guint n_frames = 40;

        itk_live_view_set_session(view, &fake_session);
        fast = open_reader(view);
        slow = open_reader(view);
        json_object_unref(reader_next(fast, NULL));
        /* Frames larger than a socket's buffer: the slow reader never reads
         * while they come; the fast one reads each. */
        for (guint i = 0; i < n_frames; i++) {
                g_autoptr(GBytes) jpeg = make_jpeg(512 * 1024, (guint8)i);
                itk_live_view_push_frame(view, jpeg, 1920, 1080, "u", i);
                header = reader_next(fast, NULL);
                fast_last = json_object_get_int_member(header, "sequence");
                json_object_unref(header);
        }
        g_assert_cmpint(fast_last, ==, n_frames);
        /* Now the slow one drains: the frame it was being sent, then only the
         * newest; everything between was dropped, not queued. */
        while (slow_last < n_frames) {
                header = reader_next(slow, NULL);
                if (g_str_equal(json_object_get_string_member(header, "type"), "frame")) {
                        slow_last = json_object_get_int_member(header, "sequence");
                        slow_count++;
                }
                json_object_unref(header);
        }
        g_assert_cmpint(slow_last, ==, n_frames);
        g_assert_cmpuint(slow_count, <=, 3);
        /* The fast watcher was never held back by the slow one. */
        g_assert_cmpuint(itk_live_view_get_n_watchers(view), ==, 2);
        reader_free(fast);
        reader_free(slow);
        itk_live_view_free(view);
}

/* The browser is asked for frames only as fast as the fastest watcher reads. */
static void
test_ready_follows_reader(void)
{
        ItkLiveView *view = new_view();
        g_autoptr(GBytes) jpeg = make_jpeg(1024 * 1024, 1);
        Reader *r;

        itk_live_view_set_session(view, &fake_session);
        r = open_reader(view);
        json_object_unref(reader_next(r, NULL));
        g_assert_true(itk_live_view_is_ready(view));
        /* A frame bigger than the socket holds: the watcher is busy. */
        itk_live_view_push_frame(view, jpeg, 10, 10, "u", 1);
        g_assert_false(itk_live_view_is_ready(view));
        g_assert_cmpuint(n_ready, ==, 0);
        /* It reads the frame: the backend is told to go on, once. */
        json_object_unref(reader_next(r, NULL));
        while (n_ready == 0)
                g_main_context_iteration(NULL, TRUE);
        g_assert_cmpuint(n_ready, ==, 1);
        g_assert_true(itk_live_view_is_ready(view));
        reader_free(r);
        itk_live_view_free(view);
}

static void
test_close_all(void)
{
        ItkLiveView *view = new_view();
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) header = NULL;
        Reader *r;

        itk_live_view_set_session(view, &fake_session);
        r = open_reader(view);
        json_object_unref(reader_next(r, NULL));
        itk_live_view_close_all(view, "the run ended: completed");
        g_assert_cmpuint(n_stops, ==, 1);
        g_assert_cmpuint(itk_live_view_get_n_watchers(view), ==, 0);
        header = reader_next(r, NULL);
        g_assert_cmpstr(json_object_get_string_member(header, "state"), ==, "closed");
        g_assert_cmpstr(json_object_get_string_member(header, "message"), ==,
                        "the run ended: completed");
        reader_pump(r);
        g_assert_true(r->eof);
        g_assert_cmpint(itk_live_view_open(view, &error), ==, -1);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_NOT_RUNNING);
        reader_free(r);
        itk_live_view_free(view);
}

static JsonObject *
parse(const char *json)
{
        g_autoptr(JsonParser) parser = json_parser_new();

        g_assert_true(json_parser_load_from_data(parser, json, -1, NULL));
        return json_object_ref(json_node_get_object(json_parser_get_root(parser)));
}

static void
check_input(const char *kind, const char *json, const char *error_part)
{
        g_autoptr(JsonObject) event = parse(json);
        g_autoptr(GError) error = NULL;
        gboolean ok = itk_live_view_check_input(kind, event, &error);

        if (error_part == NULL) {
                g_assert_no_error(error);
                g_assert_true(ok);
        } else {
                g_assert_false(ok);
                g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
                g_assert_nonnull(strstr(error->message, error_part));
        }
}

static void
test_check_input(void)
{
        check_input("click", "{\"x\": 1, \"y\": 2.5}", NULL);
        check_input("click", "{\"x\": 1, \"y\": 2, \"button\": \"right\"}", NULL);
        check_input("click", "{\"x\": 1}", "needs 'y'");
        check_input("click", "{\"x\": \"1\", \"y\": 2}", "'x' must be a number");
        check_input("click", "{\"x\": 1, \"y\": 2, \"button\": \"fourth\"}", "button 'fourth'");
        check_input("click", "{\"x\": 1e9, \"y\": 2}", "out of range");
        check_input("click", "{\"x\": 1, \"y\": 2, \"z\": 3}", "unknown input event member 'z'");
        check_input("scroll", "{\"x\": 1, \"y\": 2, \"dy\": -120}", NULL);
        check_input("key", "{\"key\": \"Enter\"}", NULL);
        check_input("key", "{\"key\": \"a\", \"text\": \"a\"}", NULL);
        check_input("key", "{\"key\": \"\"}", "'key' is empty");
        check_input("key", "{}", "needs 'key'");
        check_input("drag", "{}", "unknown input kind 'drag'");
}

typedef struct {
        ItkLiveView *view;
        char *line;
} InputCall;

static void
input_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        InputCall *call = user_data;
        g_autoptr(GError) error = NULL;

        call->line = itk_live_view_input_finish(call->view, result, &error);
        if (call->line == NULL)
                call->line = g_strdup_printf("error: %s", error->message);
}

static void
test_input_needs_page(void)
{
        ItkLiveView *view = new_view();
        g_autoptr(JsonObject) event = parse("{\"x\": 1, \"y\": 2}");
        InputCall call = { view, NULL };

        /* No page: a clear error, not a crash. */
        itk_live_view_input_async(view, "click", event, NULL, input_cb, &call);
        while (call.line == NULL)
                g_main_context_iteration(NULL, TRUE);
        g_assert_cmpstr(call.line, ==, "error: this run has no browser page to steer");
        g_clear_pointer(&call.line, g_free);
        itk_live_view_set_session(view, &fake_session);
        itk_live_view_input_async(view, "click", event, NULL, input_cb, &call);
        while (call.line == NULL)
                g_main_context_iteration(NULL, TRUE);
        g_assert_cmpstr(call.line, ==, "fake click");
        g_free(call.line);
        itk_live_view_free(view);
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/live-view/encode", test_encode);
        g_test_add_func("/live-view/no-browser", test_no_browser);
        g_test_add_func("/live-view/cast-follows-watchers", test_cast_follows_watchers);
        g_test_add_func("/live-view/frames", test_frames);
        g_test_add_func("/live-view/slow-watcher", test_slow_watcher);
        g_test_add_func("/live-view/ready-follows-reader", test_ready_follows_reader);
        g_test_add_func("/live-view/close-all", test_close_all);
        g_test_add_func("/live-view/check-input", test_check_input);
        g_test_add_func("/live-view/input-needs-page", test_input_needs_page);
        return g_test_run();
}
