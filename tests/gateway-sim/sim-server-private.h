/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "sim-server.h"

G_BEGIN_DECLS

struct _ItkSimServer {
        ItkSimState *state; /* borrowed */
        SoupServer *soup;
        char *state_dir;
        gboolean state_dir_is_temp;
        gsize max_body;
        char *web_user;
        char *web_password;
        gboolean verbose;
        GHashTable *sessions; /* JSESSIONID -> restart count at login + 1 */
        GPtrArray *held;      /* of ItkSimHeld: paused requests */
        guint pending_writes;
};

/* Replies. */
void itk_sim_reply_json(SoupServerMessage *msg, guint status, JsonNode *node /* consumed */);
void itk_sim_reply_message(SoupServerMessage *msg, guint status, const char *format, ...)
        G_GNUC_PRINTF(3, 4);
void itk_sim_reply_jetty(SoupServerMessage *msg, guint status);
void itk_sim_reply_html(SoupServerMessage *msg, guint status, char *html /* consumed */);
void itk_sim_reply_bytes(SoupServerMessage *msg, const char *content_type, GBytes *bytes);
const char *itk_sim_query(GHashTable *query, const char *key);
gboolean itk_sim_query_bool(GHashTable *query, const char *key);
GBytes *itk_sim_request_body(SoupServerMessage *msg);

/* Holds @msg paused for @ms, then answers 200 and starts the gateway
 * (a backup restore blocks, then the gateway restarts). */
void itk_sim_server_hold_restore(ItkSimServer *self, SoupServerMessage *msg, guint ms);
/* Writes @bytes to STATE_DIR/@relpath in the background; returns the path. */
char *itk_sim_server_save_file(ItkSimServer *self, const char *relpath, GBytes *bytes);

/* /data/...: the 8.3 REST API. */
void itk_sim_api_dispatch(ItkSimServer *self, SoupServerMessage *msg, const char *path,
                          GHashTable *query);
/* Runs the REST route @method @path without the token check: the web pages'
 * own calls, authorised by their login session, so pages and API share one
 * implementation. */
void itk_sim_api_call(ItkSimServer *self, SoupServerMessage *msg, const char *method,
                      const char *path, GHashTable *query);
/* The route pattern of a request, for the per-route counts; NULL if none. */
const char *itk_sim_api_route_pattern(const char *method, const char *path);
/* Everything else: the web pages the browser steps drive. */
void itk_sim_web_dispatch(ItkSimServer *self, SoupServerMessage *msg, const char *path,
                          GHashTable *query);

G_END_DECLS
