/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* ItkLiveView: the watchers of one run's browser (docs/live-view.md).
 *
 * Each watcher is one end of a socket pair handed out by OpenLiveView. The
 * view writes messages to it: 4 bytes big-endian header length, 4 bytes
 * big-endian payload length, the JSON header, then the payload (the JPEG of
 * a frame; empty for a status message). Writes never block and never queue:
 * a watcher whose socket is full gets the newest message once it drains,
 * older ones are dropped (at most the message being written and the newest
 * are kept per watcher). Frames are encoded once and shared by all watchers.
 *
 * The frames come from a backend (the browser module) that screencasts the
 * run's session (its ItkBrowserPage): started on the first watcher, stopped
 * after the last. The last frame is kept and sent to every new watcher (a
 * paused run's page stays visible). */

typedef struct _ItkLiveView ItkLiveView;

/* At most this many frames a second are asked of the browser. */
#define ITK_LIVE_VIEW_MAX_FPS 15
/* The size of the 8-byte prefix of every message. */
#define ITK_LIVE_VIEW_PREFIX_SIZE 8
/* Bound of a message's JSON header, so that readers can refuse garbage. */
#define ITK_LIVE_VIEW_MAX_HEADER 4096

/* The browser module's side. @session is the provider's session of the run
 * (an ItkBrowserPage). */
typedef struct {
        /* Starts the screencast; frames go to itk_live_view_push_frame().
         * Returns a handle for @stop. */
        gpointer (*start)(gpointer session, ItkLiveView *view);
        void (*stop)(gpointer cast);
        /* Optional: a watcher's socket drained after itk_live_view_is_ready()
         * said FALSE; frames are worth asking for again. */
        void (*ready)(gpointer cast);
        /* Sends one input event (kind "click", "scroll" or "key", checked by
         * itk_live_view_check_input()) to the page. Completes with a line
         * that describes it for the run's log (never a typed text of a
         * password field). */
        void (*input_async)(gpointer session, const char *kind, JsonObject *event,
                            GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer user_data);
        char *(*input_finish)(GAsyncResult *result, GError **error);
} ItkLiveBackend;

/* Installed by the module that owns sessions named @session_name. */
void itk_live_view_set_backend(const char *session_name, const ItkLiveBackend *backend);

/* The current step id of the run, for frame headers. */
typedef const char *(*ItkLiveStepFunc)(gpointer data);

ItkLiveView *itk_live_view_new(const char *session_name, ItkLiveStepFunc step_func,
                               gpointer step_data);
/* Closes every watcher and stops the screencast. */
void itk_live_view_free(ItkLiveView *self);

/* The session of the run (NULL: none, or gone). Starts the screencast when
 * someone is watching. */
void itk_live_view_set_session(ItkLiveView *self, gpointer session);
/* A new watcher: returns the reader's end (the caller owns it), or -1 with
 * @error. Without a session yet, the watcher is told so by a status message
 * and gets frames once the browser opens. */
int itk_live_view_open(ItkLiveView *self, GError **error);
/* Closes every watcher (the run ended): their readers see EOF after a last
 * status message saying @reason. */
void itk_live_view_close_all(ItkLiveView *self, const char *reason);
guint itk_live_view_get_n_watchers(ItkLiveView *self);
gboolean itk_live_view_is_casting(ItkLiveView *self);
/* TRUE when some watcher could take a frame now (its socket is drained):
 * the backend asks the browser for the next frame only then, so the rate
 * follows the fastest watcher. When FALSE, the backend's ready() is called
 * once a watcher drains. */
gboolean itk_live_view_is_ready(ItkLiveView *self);
/* The URL of the newest frame ("" when none). */
const char *itk_live_view_get_url(ItkLiveView *self);

/* For the backend: a frame (@jpeg borrowed) of the page at @url, @width x
 * @height CSS pixels (the coordinates of SendInput), taken at @timestamp_us
 * (wall clock). */
void itk_live_view_push_frame(ItkLiveView *self, GBytes *jpeg, guint width, guint height,
                              const char *url, gint64 timestamp_us);

/* Checks an input event of SendInput: kind "click" {x, y, button?}, "scroll"
 * {x, y, dx?, dy?}, "key" {key, text?}. ITK_ERROR_INVALID_ARGS naming the
 * problem. */
gboolean itk_live_view_check_input(const char *kind, JsonObject *event, GError **error);
/* Sends the event to the session's page through the backend. Without
 * @cancellable it stops when the run ends (itk_live_view_close_all()). */
void itk_live_view_input_async(ItkLiveView *self, const char *kind, JsonObject *event,
                               GCancellable *cancellable, GAsyncReadyCallback callback,
                               gpointer user_data);
char *itk_live_view_input_finish(ItkLiveView *self, GAsyncResult *result, GError **error);

/* Encodes one message (prefix, header, payload); exposed for tests. */
GBytes *itk_live_view_encode(JsonObject *header, GBytes *payload);

G_END_DECLS
