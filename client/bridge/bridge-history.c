/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GET /api/history: finished runs, filtered and paged by the daemon's
 * Manager.GetHistoryPage. A text search may give short pages; the bridge follows
 * next_cursor a bounded number of times to fill the page the client asked for. */
#include "bridge.h"

#define HISTORY_DEFAULT_LIMIT 50
#define HISTORY_MAX_LIMIT 1000
/* Daemon calls per request while a search fills a page. */
#define HISTORY_MAX_CALLS 8

typedef struct {
        Bridge *bridge;
        SoupServerMessage *msg;
        GVariant *filter; /* a{sv}, as GetHistoryPage takes it */
        guint limit;
        char *cursor;
        guint calls;
        JsonArray *runs;
} HistoryRequest;

static void
history_request_free(HistoryRequest *req)
{
        soup_server_message_unpause(req->msg);
        g_object_unref(req->msg);
        g_variant_unref(req->filter);
        g_free(req->cursor);
        json_array_unref(req->runs);
        g_free(req);
}

static void
reply_page(HistoryRequest *req, const char *next_cursor)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) node = NULL;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "runs");
        json_builder_add_value(b, json_node_init_array(json_node_alloc(), req->runs));
        json_builder_set_member_name(b, "next_cursor");
        json_builder_add_string_value(b, next_cursor);
        json_builder_end_object(b);
        node = json_builder_get_root(b);
        bridge_reply_json(req->msg, SOUP_STATUS_OK, node);
}

static void call_page(HistoryRequest *req);

static void
page_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
        HistoryRequest *req = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = g_dbus_proxy_call_finish(G_DBUS_PROXY(source), res, &error);
        g_autoptr(GVariant) runs = NULL;
        const char *next = NULL;
        GVariantIter iter;
        GVariant *run;

        if (error != NULL) {
                bridge_reply_gerror(req->msg, error);
                history_request_free(req);
                return;
        }
        g_variant_get(reply, "(@aa{sv}&s)", &runs, &next);
        g_variant_iter_init(&iter, runs);
        while ((run = g_variant_iter_next_value(&iter)) != NULL) {
                json_array_add_element(req->runs, bridge_record_summary(run));
                g_variant_unref(run);
        }
        if (next[0] != '\0' && json_array_get_length(req->runs) < req->limit &&
            req->calls < HISTORY_MAX_CALLS) {
                g_free(req->cursor);
                req->cursor = g_strdup(next);
                call_page(req);
                return;
        }
        reply_page(req, next);
        history_request_free(req);
}

static void
call_page(HistoryRequest *req)
{
        req->calls++;
        g_dbus_proxy_call(G_DBUS_PROXY(req->bridge->manager), "GetHistoryPage",
                          g_variant_new("(@a{sv}us)", req->filter,
                                        req->limit - json_array_get_length(req->runs), req->cursor),
                          G_DBUS_CALL_FLAGS_NONE, -1, NULL, page_done_cb, req);
}

static gboolean
parse_time(GHashTable *query, const char *name, gint64 *out, gboolean *out_set)
{
        const char *text = query != NULL ? g_hash_table_lookup(query, name) : NULL;

        *out_set = FALSE;
        if (text == NULL || text[0] == '\0')
                return TRUE;
        if (!g_ascii_string_to_signed(text, 10, 0, G_MAXINT64, out, NULL))
                return FALSE;
        *out_set = TRUE;
        return TRUE;
}

static const char *
query_s(GHashTable *query, const char *name)
{
        const char *text = query != NULL ? g_hash_table_lookup(query, name) : NULL;

        return text != NULL ? text : "";
}

void
bridge_history_get(Bridge *bridge, SoupServerMessage *msg, GHashTable *query)
{
        const char *status = query_s(query, "status");
        const char *limit_text = query_s(query, "limit");
        const char *playbook = query_s(query, "playbook");
        const char *text = query_s(query, "q");
        gint64 since = 0, until = 0;
        gboolean has_since, has_until;
        guint64 limit = HISTORY_DEFAULT_LIMIT;
        g_auto(GVariantBuilder) filter = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
        HistoryRequest *req;

        if (status[0] != '\0' && !itk_run_status_is_terminal(itk_run_status_from_string(status))) {
                bridge_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "InvalidArgs",
                                   "status must be completed, failed or cancelled");
                return;
        }
        if (limit_text[0] != '\0' &&
            !g_ascii_string_to_unsigned(limit_text, 10, 1, HISTORY_MAX_LIMIT, &limit, NULL)) {
                bridge_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "InvalidArgs",
                                   "limit must be an integer from 1 to 1000");
                return;
        }
        if (!parse_time(query, "since", &since, &has_since) ||
            !parse_time(query, "until", &until, &has_until)) {
                bridge_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "InvalidArgs",
                                   "since and until must be microseconds since the epoch");
                return;
        }
        if (status[0] != '\0')
                g_variant_builder_add(&filter, "{sv}", "status", g_variant_new_string(status));
        if (playbook[0] != '\0')
                g_variant_builder_add(&filter, "{sv}", "playbook", g_variant_new_string(playbook));
        if (has_since)
                g_variant_builder_add(&filter, "{sv}", "since", g_variant_new_int64(since));
        if (has_until)
                g_variant_builder_add(&filter, "{sv}", "until", g_variant_new_int64(until));
        if (text[0] != '\0')
                g_variant_builder_add(&filter, "{sv}", "text", g_variant_new_string(text));

        req = g_new0(HistoryRequest, 1);
        req->bridge = bridge;
        req->msg = g_object_ref(msg);
        req->limit = (guint)limit;
        req->cursor = g_strdup(query_s(query, "cursor"));
        req->runs = json_array_new();
        req->filter = g_variant_ref_sink(g_variant_builder_end(&filter));
        soup_server_message_pause(msg);
        call_page(req);
}
