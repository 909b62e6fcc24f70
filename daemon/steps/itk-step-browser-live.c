/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The live view's browser side (docs/live-view.md): Chromium's screencast
 * of a run's page, and the operator's input sent to it. */
#include <string.h>

#include "itk-browser.h"
#include "itk-error.h"
#include "itk-live-view.h"
#include "itk-step-browser-live.h"

/* --- the screencast ------------------------------------------------------------ */

typedef struct {
        ItkLiveView *view;
        ItkCdp *cdp;
        char *session_id;
        char *frame_id; /* the main frame, whose navigations change the URL */
        char *url;
        guint handler_id;
        GCancellable *cancellable;
        guint ack_id;         /* the ack held back to keep under the frame rate */
        gint64 pending_ack;   /* screencast session id of the frame to ack, -1: none */
        gint64 last_ack_usec; /* monotonic */
} Cast;

#define FRAME_INTERVAL_USEC (G_USEC_PER_SEC / ITK_LIVE_VIEW_MAX_FPS)

static void
cast_send_ack(Cast *cast)
{
        JsonObject *params = json_object_new();

        json_object_set_int_member(params, "sessionId", cast->pending_ack);
        cast->pending_ack = -1;
        cast->last_ack_usec = g_get_monotonic_time();
        itk_cdp_send(cast->cdp, cast->session_id, "Page.screencastFrameAck", params);
}

static gboolean
cast_ack_cb(gpointer user_data)
{
        Cast *cast = user_data;

        cast->ack_id = 0;
        /* Every watcher is still busy with a frame: the next one waits for
         * the first to drain (cast_ready). */
        if (itk_live_view_is_ready(cast->view))
                cast_send_ack(cast);
        return G_SOURCE_REMOVE;
}

static void
cast_ready(gpointer data)
{
        Cast *cast = data;

        if (cast->pending_ack >= 0 && cast->ack_id == 0)
                cast_send_ack(cast);
}

/* Chromium sends the next frame only once this one is acked: holding the
 * ack back bounds the rate without queueing anything. */
static void
cast_ack(Cast *cast, gint64 screencast_session)
{
        gint64 wait = cast->last_ack_usec + FRAME_INTERVAL_USEC - g_get_monotonic_time();

        cast->pending_ack = screencast_session;
        if (cast->ack_id != 0)
                return;
        if (wait <= 0) {
                if (itk_live_view_is_ready(cast->view))
                        cast_send_ack(cast);
        } else
                cast->ack_id = g_timeout_add((guint)((wait + 999) / 1000), cast_ack_cb, cast);
}

static void
cast_set_url(Cast *cast, const char *url)
{
        if (url == NULL)
                return;
        g_free(cast->url);
        cast->url = g_strdup(url);
}

static void
cast_frame(Cast *cast, JsonObject *params)
{
        JsonObject *metadata = itk_json_object_member(params, "metadata");
        const char *data = json_object_get_string_member_with_default(params, "data", NULL);
        g_autoptr(GBytes) jpeg = NULL;
        guchar *decoded;
        gsize size = 0;
        double timestamp = 0;
        guint width = 0, height = 0;

        if (data == NULL || !json_object_has_member(params, "sessionId"))
                return;
        if (metadata != NULL) {
                width = (guint)json_object_get_double_member_with_default(metadata, "deviceWidth",
                                                                          0);
                height = (guint)json_object_get_double_member_with_default(metadata, "deviceHeight",
                                                                           0);
                timestamp = json_object_get_double_member_with_default(metadata, "timestamp", 0);
        }
        decoded = g_base64_decode(data, &size);
        jpeg = g_bytes_new_take(decoded, size);
        itk_live_view_push_frame(
                cast->view, jpeg, width, height, cast->url != NULL ? cast->url : "",
                timestamp > 0 ? (gint64)(timestamp * G_USEC_PER_SEC) : g_get_real_time());
        cast_ack(cast, json_object_get_int_member(params, "sessionId"));
}

static void
cast_event_cb(ItkCdp *cdp, const char *session_id, const char *method, JsonObject *params,
              gpointer user_data)
{
        Cast *cast = user_data;

        if (g_str_equal(method, "Page.screencastFrame")) {
                cast_frame(cast, params);
        } else if (g_str_equal(method, "Page.frameNavigated")) {
                JsonObject *frame = itk_json_object_member(params, "frame");
                if (frame != NULL && !json_object_has_member(frame, "parentId"))
                        cast_set_url(cast, json_object_get_string_member_with_default(frame, "url",
                                                                                      NULL));
        } else if (g_str_equal(method, "Page.navigatedWithinDocument")) {
                if (g_strcmp0(json_object_get_string_member_with_default(params, "frameId", NULL),
                              cast->frame_id) == 0)
                        cast_set_url(cast, json_object_get_string_member_with_default(params, "url",
                                                                                      NULL));
        }
}

static void
cast_history_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Cast *cast = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) reply = itk_cdp_call_finish(NULL, result, &error);
        JsonArray *entries;
        gint64 index;

        /* Cancelled: @cast is gone. */
        if (reply == NULL)
                return;
        entries = itk_json_array_member(reply, "entries");
        index = json_object_get_int_member_with_default(reply, "currentIndex", -1);
        /* A navigation seen meanwhile is newer. */
        if (cast->url == NULL && entries != NULL && index >= 0 &&
            index < json_array_get_length(entries))
                cast_set_url(cast,
                             json_object_get_string_member_with_default(
                                     json_array_get_object_element(entries, index), "url", NULL));
}

static gpointer
cast_start(gpointer session, ItkLiveView *view)
{
        ItkBrowserPage *page = session;
        Cast *cast = g_new0(Cast, 1);
        JsonObject *params = json_object_new();

        cast->view = view;
        cast->cdp = itk_cdp_ref(itk_browser_page_get_cdp(page));
        cast->session_id = g_strdup(itk_browser_page_get_session_id(page));
        cast->frame_id = g_strdup(itk_browser_page_get_frame_id(page));
        cast->cancellable = g_cancellable_new();
        cast->pending_ack = -1;
        cast->handler_id = itk_cdp_add_handler(cast->cdp, cast->session_id, cast_event_cb, cast);
        itk_cdp_call_async(cast->cdp, cast->session_id, "Page.getNavigationHistory", NULL,
                           cast->cancellable, cast_history_cb, cast);
        json_object_set_string_member(params, "format", "jpeg");
        json_object_set_int_member(params, "quality", 70);
        json_object_set_int_member(params, "everyNthFrame", 1);
        itk_cdp_send(cast->cdp, cast->session_id, "Page.startScreencast", params);
        return cast;
}

static void
cast_stop(gpointer data)
{
        Cast *cast = data;

        g_cancellable_cancel(cast->cancellable);
        g_clear_object(&cast->cancellable);
        g_clear_handle_id(&cast->ack_id, g_source_remove);
        itk_cdp_remove_handler(cast->cdp, cast->handler_id);
        /* The encoder stops: nobody pays for frames nobody watches. */
        if (!itk_cdp_is_closed(cast->cdp))
                itk_cdp_send(cast->cdp, cast->session_id, "Page.stopScreencast", NULL);
        itk_cdp_unref(cast->cdp);
        g_free(cast->session_id);
        g_free(cast->frame_id);
        g_free(cast->url);
        g_free(cast);
}

/* --- input ---------------------------------------------------------------------- */

typedef struct {
        ItkCdp *cdp;
        char *session_id;
        char *kind;
        JsonObject *event;
        char *url;
        gboolean password; /* the focused element is a password field */
        GPtrArray *calls;  /* Call*, sent in order */
        guint next;
        GCancellable *cancellable; /* of its CDP calls: the caller's, or the deadline */
        GCancellable *outer;       /* the caller's */
        gulong outer_handler;
        guint deadline_id;
        gboolean timed_out;
} Input;

/* A page whose renderer is stuck answers nothing: steering it fails rather
 * than waits. */
#define INPUT_DEADLINE_SEC 10

typedef struct {
        char *method;
        JsonObject *params; /* NULL once sent */
} Call;

static void
call_free(Call *call)
{
        g_free(call->method);
        if (call->params != NULL)
                json_object_unref(call->params);
        g_free(call);
}

static void
input_free(Input *input)
{
        g_clear_handle_id(&input->deadline_id, g_source_remove);
        if (input->outer != NULL)
                g_cancellable_disconnect(input->outer, input->outer_handler);
        g_clear_object(&input->outer);
        g_clear_object(&input->cancellable);
        itk_cdp_unref(input->cdp);
        g_free(input->session_id);
        g_free(input->kind);
        json_object_unref(input->event);
        g_free(input->url);
        g_clear_pointer(&input->calls, g_ptr_array_unref);
        g_free(input);
}

static void
input_add_call(Input *input, const char *method, JsonObject *params)
{
        Call *call = g_new0(Call, 1);

        call->method = g_strdup(method);
        call->params = params;
        g_ptr_array_add(input->calls, call);
}

static const struct {
        const char *key;
        int code;
        const char *text;
} named_keys[] = {
        { "Enter", 13, "\r" },    { "Tab", 9, NULL },         { "Backspace", 8, NULL },
        { "Escape", 27, NULL },   { "Delete", 46, NULL },     { "ArrowLeft", 37, NULL },
        { "ArrowUp", 38, NULL },  { "ArrowRight", 39, NULL }, { "ArrowDown", 40, NULL },
        { "Home", 36, NULL },     { "End", 35, NULL },        { "PageUp", 33, NULL },
        { "PageDown", 34, NULL },
};

static char *
input_plan(Input *input)
{
        JsonObject *e = input->event;
        const char *url = input->url != NULL ? input->url : "the page";

        if (g_str_equal(input->kind, "click")) {
                double x = json_object_get_double_member(e, "x");
                double y = json_object_get_double_member(e, "y");
                const char *button =
                        json_object_get_string_member_with_default(e, "button", "left");
                const char *types[] = { "mouseMoved", "mousePressed", "mouseReleased" };
                for (guint i = 0; i < G_N_ELEMENTS(types); i++) {
                        JsonObject *p = json_object_new();
                        json_object_set_string_member(p, "type", types[i]);
                        json_object_set_double_member(p, "x", x);
                        json_object_set_double_member(p, "y", y);
                        if (i > 0) {
                                json_object_set_string_member(p, "button", button);
                                json_object_set_int_member(p, "clickCount", 1);
                        }
                        input_add_call(input, "Input.dispatchMouseEvent", p);
                }
                return g_strdup_printf("operator clicked (%s) at %.0f,%.0f on %s", button, x, y,
                                       url);
        }
        if (g_str_equal(input->kind, "scroll")) {
                double x = json_object_get_double_member(e, "x");
                double y = json_object_get_double_member(e, "y");
                double dx = json_object_get_double_member_with_default(e, "dx", 0);
                double dy = json_object_get_double_member_with_default(e, "dy", 0);
                JsonObject *p = json_object_new();
                json_object_set_string_member(p, "type", "mouseWheel");
                json_object_set_double_member(p, "x", x);
                json_object_set_double_member(p, "y", y);
                json_object_set_double_member(p, "deltaX", dx);
                json_object_set_double_member(p, "deltaY", dy);
                input_add_call(input, "Input.dispatchMouseEvent", p);
                return g_strdup_printf("operator scrolled by %.0f,%.0f at %.0f,%.0f on %s", dx, dy,
                                       x, y, url);
        } else {
                const char *key = json_object_get_string_member(e, "key");
                const char *text = json_object_get_string_member_with_default(e, "text", NULL);
                JsonObject *down = json_object_new();
                JsonObject *up = json_object_new();
                int code = 0;
                gboolean named = FALSE;

                for (guint i = 0; i < G_N_ELEMENTS(named_keys); i++) {
                        if (g_str_equal(named_keys[i].key, key)) {
                                code = named_keys[i].code;
                                if (text == NULL)
                                        text = named_keys[i].text;
                                named = TRUE;
                        }
                }
                /* One character with no text given types itself. */
                if (text == NULL && !named && g_utf8_strlen(key, -1) == 1)
                        text = key;
                json_object_set_string_member(down, "type",
                                              text != NULL ? "keyDown" : "rawKeyDown");
                json_object_set_string_member(down, "key", key);
                if (text != NULL)
                        json_object_set_string_member(down, "text", text);
                if (code != 0) {
                        json_object_set_int_member(down, "windowsVirtualKeyCode", code);
                        json_object_set_int_member(up, "windowsVirtualKeyCode", code);
                }
                json_object_set_string_member(up, "type", "keyUp");
                json_object_set_string_member(up, "key", key);
                input_add_call(input, "Input.dispatchKeyEvent", down);
                input_add_call(input, "Input.dispatchKeyEvent", up);
                /* What was typed is never logged; a named key only outside
                 * password fields. */
                if (input->password)
                        return g_strdup_printf("operator pressed a key in a password field on %s",
                                               url);
                if (named)
                        return g_strdup_printf("operator pressed %s on %s", key, url);
                return g_strdup_printf("operator typed a key on %s", url);
        }
}

static void input_next(GTask *task);

static gboolean
input_deadline_cb(gpointer user_data)
{
        Input *input = user_data;

        input->deadline_id = 0;
        input->timed_out = TRUE;
        g_cancellable_cancel(input->cancellable);
        return G_SOURCE_REMOVE;
}

static void
input_outer_cancelled_cb(GCancellable *outer, gpointer user_data)
{
        g_cancellable_cancel(user_data);
}

/* Completes @task (its reference is taken) with the failure of a CDP call. */
static void
input_fail(GTask *task, GError *error)
{
        Input *input = g_task_get_task_data(task);

        if (input->timed_out)
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_TIMED_OUT,
                                        "the page did not answer within %d s", INPUT_DEADLINE_SEC);
        else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                g_task_return_error(task, g_error_copy(error));
        else
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_FAILED,
                                        "the page did not take the input: %s", error->message);
        g_object_unref(task);
}

static void
input_call_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        GTask *task = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) reply = itk_cdp_call_finish(NULL, result, &error);

        if (reply == NULL) {
                input_fail(task, error);
                return;
        }
        input_next(task);
}

static void
input_next(GTask *task)
{
        Input *input = g_task_get_task_data(task);
        Call *call;

        if (input->next == input->calls->len) {
                g_task_return_pointer(task, g_object_steal_data(G_OBJECT(task), "line"), g_free);
                g_object_unref(task);
                return;
        }
        call = g_ptr_array_index(input->calls, input->next++);
        /* The call takes the params. */
        itk_cdp_call_async(input->cdp, input->session_id, call->method,
                           g_steal_pointer(&call->params), input->cancellable, input_call_cb, task);
}

static void
input_probe_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        GTask *task = user_data;
        Input *input = g_task_get_task_data(task);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) reply = itk_cdp_call_finish(NULL, result, &error);
        JsonObject *value = NULL;

        if (reply == NULL && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
                input_fail(task, error);
                return;
        }
        /* A page that cannot answer still takes input; then it is logged
         * without its URL, and a key as if in a password field. */
        input->password = TRUE;
        if (reply != NULL) {
                JsonObject *remote = itk_json_object_member(reply, "result");
                value = remote != NULL ? itk_json_object_member(remote, "value") : NULL;
        }
        if (value != NULL) {
                input->url =
                        g_strdup(json_object_get_string_member_with_default(value, "url", NULL));
                input->password =
                        json_object_get_boolean_member_with_default(value, "password", TRUE);
        }
        g_object_set_data_full(G_OBJECT(task), "line", input_plan(input), g_free);
        input_next(task);
}

static void
input_async(gpointer session, const char *kind, JsonObject *event, GCancellable *cancellable,
            GAsyncReadyCallback callback, gpointer user_data)
{
        ItkBrowserPage *page = session;
        GTask *task = g_task_new(NULL, cancellable, callback, user_data);
        g_autoptr(GError) error = NULL;
        JsonObject *params;
        Input *input;

        g_task_set_source_tag(task, input_async);
        if (!itk_browser_page_check(page, &error)) {
                g_task_return_error(task, g_steal_pointer(&error));
                g_object_unref(task);
                return;
        }
        input = g_new0(Input, 1);
        input->cdp = itk_cdp_ref(itk_browser_page_get_cdp(page));
        input->session_id = g_strdup(itk_browser_page_get_session_id(page));
        input->kind = g_strdup(kind);
        input->event = json_object_ref(event);
        input->calls = g_ptr_array_new_with_free_func((GDestroyNotify)call_free);
        input->cancellable = g_cancellable_new();
        if (cancellable != NULL) {
                input->outer = g_object_ref(cancellable);
                input->outer_handler =
                        g_cancellable_connect(cancellable, G_CALLBACK(input_outer_cancelled_cb),
                                              g_object_ref(input->cancellable), g_object_unref);
        }
        input->deadline_id = g_timeout_add_seconds(INPUT_DEADLINE_SEC, input_deadline_cb, input);
        g_task_set_task_data(task, input, (GDestroyNotify)input_free);
        /* The URL for the log line, and whether keys go to a password field. */
        params = json_object_new();
        json_object_set_string_member(
                params, "expression",
                "({url: location.href, password: !!(document.activeElement && "
                "document.activeElement.type === 'password')})");
        json_object_set_boolean_member(params, "returnByValue", TRUE);
        itk_cdp_call_async(input->cdp, input->session_id, "Runtime.evaluate", params,
                           input->cancellable, input_probe_cb, task);
}

static char *
input_finish(GAsyncResult *result, GError **error)
{
        return g_task_propagate_pointer(G_TASK(result), error);
}

void
itk_step_browser_live_register(void)
{
        static const ItkLiveBackend backend = {
                .start = cast_start,
                .stop = cast_stop,
                .ready = cast_ready,
                .input_async = input_async,
                .input_finish = input_finish,
        };

        itk_live_view_set_backend("browser", &backend);
}
