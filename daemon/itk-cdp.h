/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* ItkCdp: one Chrome DevTools Protocol connection over Chromium's
 * --remote-debugging-pipe (we write requests to its fd 3, read replies and
 * events from its fd 4; each message is JSON followed by a NUL).
 *
 * Every request carries an id and completes its own GTask. A cancelled
 * request completes with G_IO_ERROR_CANCELLED from the next main-loop
 * iteration and is forgotten: its late reply is dropped. Events are routed
 * to the handlers registered for their sessionId (flatten sessions).
 * Nothing blocks: reads and writes are non-blocking fds watched by the
 * thread-default main context. */

typedef struct _ItkCdp ItkCdp;

/* @session_id: NULL for browser-level events. @params is borrowed. */
typedef void (*ItkCdpEventFunc)(ItkCdp *cdp, const char *session_id, const char *method,
                                JsonObject *params, gpointer user_data);
/* The connection ended (EOF, read error, malformed data, closed); @error says why. */
typedef void (*ItkCdpClosedFunc)(ItkCdp *cdp, const GError *error, gpointer user_data);

/* Takes ownership of both fds (made non-blocking). */
ItkCdp *itk_cdp_new(int read_fd, int write_fd);
ItkCdp *itk_cdp_ref(ItkCdp *cdp);
void itk_cdp_unref(ItkCdp *cdp);

void itk_cdp_set_closed_func(ItkCdp *cdp, ItkCdpClosedFunc func, gpointer user_data);
/* Ends the connection: fds closed, every pending request fails with @reason
 * (ITK_ERROR_FAILED), the closed function is NOT called. Idempotent. */
void itk_cdp_close(ItkCdp *cdp, const char *reason);
gboolean itk_cdp_is_closed(ItkCdp *cdp);
/* Why the connection ended (NULL while open). */
const GError *itk_cdp_get_close_error(ItkCdp *cdp);

/* Sends @method with @params (transfer full; NULL for none) to the page
 * session @session_id (NULL: the browser). The reply's "result" object, or
 * ITK_ERROR_FAILED with the protocol error's message. */
void itk_cdp_call_async(ItkCdp *cdp, const char *session_id, const char *method, JsonObject *params,
                        GCancellable *cancellable, GAsyncReadyCallback callback,
                        gpointer user_data);
JsonObject *itk_cdp_call_finish(ItkCdp *cdp, GAsyncResult *result, GError **error);
/* Fire and forget: the reply is dropped. */
void itk_cdp_send(ItkCdp *cdp, const char *session_id, const char *method, JsonObject *params);

/* @session_id NULL: every event. Returns an id for itk_cdp_remove_handler(),
 * which is safe from inside a handler. */
guint itk_cdp_add_handler(ItkCdp *cdp, const char *session_id, ItkCdpEventFunc func,
                          gpointer user_data);
void itk_cdp_remove_handler(ItkCdp *cdp, guint id);

/* Pending requests, for tests. */
guint itk_cdp_get_n_pending(ItkCdp *cdp);

/* Members of protocol messages, NULL when absent or of another kind. */
JsonObject *itk_json_object_member(JsonObject *object, const char *name);
JsonArray *itk_json_array_member(JsonObject *object, const char *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkCdp, itk_cdp_unref)

G_END_DECLS
