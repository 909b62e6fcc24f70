/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

#include "sim-state.h"

G_BEGIN_DECLS

/* The HTTP side of the simulator: one SoupServer on 127.0.0.1, every request
 * through one dispatcher (faults, commissioning, restart phases, auth, then
 * the route). */

typedef struct _ItkSimServer ItkSimServer;

typedef struct {
        const char *state_dir; /* NULL: a temporary directory, removed at exit */
        gsize max_body;        /* request bodies above this get 413 */
        const char *web_user;
        const char *web_password;
        gboolean verbose; /* one line per request on stderr */
} ItkSimServerOptions;

ItkSimServer *itk_sim_server_new(ItkSimState *state, const ItkSimServerOptions *options,
                                 GError **error);
/* Listens on 127.0.0.1:@port (0 = any free port); returns the port or 0. */
guint itk_sim_server_listen(ItkSimServer *self, guint port, GError **error);
void itk_sim_server_free(ItkSimServer *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkSimServer, itk_sim_server_free)

G_END_DECLS
