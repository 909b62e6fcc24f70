/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The /api handlers. Every answer comes from the daemon: each request pauses
 * its message, makes one or two async D-Bus calls and unpauses with the reply. */
#include "bridge.h"

#include <string.h>

#include "bridge-json.h"

typedef struct _Request Request;

/* Gets the reply or the error of a call; returns TRUE when the response is
 * set, FALSE when it started another call for the same request. */
typedef gboolean (*ReplyFunc)(Request *req, GVariant *reply, const GError *error);

struct _Request {
        Bridge *bridge;
        SoupServerMessage *msg;
        ReplyFunc func;
        char *hex; /* execution id, 32 hex digits */
        char *name;
        char *status_filter;
        guint limit;
        guint max;
        gboolean flag;
        JsonArray *list;
        GHashTable *seen;
        ItkClientDBusExecution *execution;
};

static Request *
request_new(Bridge *bridge, SoupServerMessage *msg)
{
        Request *req = g_new0(Request, 1);

        req->bridge = bridge;
        req->msg = g_object_ref(msg);
        soup_server_message_pause(msg);
        return req;
}

static void
request_free(Request *req)
{
        soup_server_message_unpause(req->msg);
        g_object_unref(req->msg);
        g_free(req->hex);
        g_free(req->name);
        g_free(req->status_filter);
        g_clear_pointer(&req->list, json_array_unref);
        g_clear_pointer(&req->seen, g_hash_table_unref);
        g_clear_object(&req->execution);
        g_free(req);
}

static void
call_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
        Request *req = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = g_dbus_proxy_call_finish(G_DBUS_PROXY(source), res, &error);

        if (req->func(req, reply, error))
                request_free(req);
}

static void
call(Request *req, gpointer proxy, const char *method, GVariant *args, ReplyFunc func)
{
        req->func = func;
        g_dbus_proxy_call(G_DBUS_PROXY(proxy), method, args, G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                          call_done_cb, req);
}

static void
get_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
        Request *req = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply =
                g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);

        if (req->func(req, reply, error))
                request_free(req);
}

/* Reads one property fresh: after a control call the cache may lag the reply. */
static void
get_property(Request *req, gpointer proxy, const char *name, ReplyFunc func)
{
        req->func = func;
        g_dbus_connection_call(
                req->bridge->bus, ITK_BUS_NAME, g_dbus_proxy_get_object_path(G_DBUS_PROXY(proxy)),
                "org.freedesktop.DBus.Properties", "Get",
                g_variant_new("(ss)", ITK_EXECUTION_INTERFACE, name), G_VARIANT_TYPE("(v)"),
                G_DBUS_CALL_FLAGS_NONE, -1, NULL, get_done_cb, req);
}

/* --- ids and summaries -------------------------------------------------------- */

char *
bridge_id_to_hex(const char *id)
{
        GString *hex = g_string_sized_new(32);

        for (const char *p = id; *p != '\0'; p++) {
                if (*p == '-')
                        continue;
                if (!g_ascii_isxdigit(*p) || hex->len >= 32) {
                        g_string_free(hex, TRUE);
                        return NULL;
                }
                g_string_append_c(hex, g_ascii_tolower(*p));
        }
        if (hex->len != 32) {
                g_string_free(hex, TRUE);
                return NULL;
        }
        return g_string_free(hex, FALSE);
}

char *
bridge_hex_to_dashed(const char *hex)
{
        if (strlen(hex) != 32)
                return g_strdup(hex);
        return g_strdup_printf("%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
                               hex + 20);
}

ItkClientDBusExecution *
bridge_find_execution(Bridge *bridge, const char *id)
{
        g_autofree char *hex = bridge_id_to_hex(id);
        g_autofree char *path = NULL;
        g_autoptr(GDBusObject) object = NULL;

        if (hex == NULL)
                return NULL;
        path = g_strconcat(ITK_EXECUTION_PATH_PREFIX, hex, NULL);
        object = g_dbus_object_manager_get_object(bridge->objects, path);
        if (object == NULL)
                return NULL;
        return itk_client_dbus_object_get_execution(ITK_CLIENT_DBUS_OBJECT(object));
}

static void
set_string(JsonBuilder *b, const char *name, const char *value)
{
        json_builder_set_member_name(b, name);
        json_builder_add_string_value(b, value != NULL ? value : "");
}

static void
set_int(JsonBuilder *b, const char *name, gint64 value)
{
        json_builder_set_member_name(b, name);
        json_builder_add_int_value(b, value);
}

static void
set_bool(JsonBuilder *b, const char *name, gboolean value)
{
        json_builder_set_member_name(b, name);
        json_builder_add_boolean_value(b, value);
}

JsonNode *
bridge_execution_summary(ItkClientDBusExecution *e)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        const char *path = g_dbus_proxy_get_object_path(G_DBUS_PROXY(e));

        json_builder_begin_object(b);
        set_string(b, "execution_id", itk_client_dbus_execution_get_id(e));
        set_string(b, "path", path);
        set_string(b, "playbook", itk_client_dbus_execution_get_playbook(e));
        set_string(b, "playbook_name", itk_client_dbus_execution_get_playbook_name(e));
        set_string(b, "playbook_version", itk_client_dbus_execution_get_playbook_version(e));
        set_string(b, "domain", itk_client_dbus_execution_get_domain(e));
        set_string(b, "status", itk_client_dbus_execution_get_status(e));
        set_bool(b, "pause_requested", itk_client_dbus_execution_get_pause_requested(e));
        set_bool(b, "debug_mode", itk_client_dbus_execution_get_debug_mode(e));
        set_int(b, "current_step", itk_client_dbus_execution_get_current_step(e));
        set_string(b, "current_step_id", itk_client_dbus_execution_get_current_step_id(e));
        set_string(b, "current_step_name", itk_client_dbus_execution_get_current_step_name(e));
        set_int(b, "total_steps", itk_client_dbus_execution_get_total_steps(e));
        json_builder_set_member_name(b, "progress");
        json_builder_add_double_value(b, itk_client_dbus_execution_get_progress(e));
        set_int(b, "started_at", (gint64)itk_client_dbus_execution_get_started_at(e));
        set_int(b, "finished_at", (gint64)itk_client_dbus_execution_get_finished_at(e));
        set_string(b, "error", itk_client_dbus_execution_get_error(e));
        set_int(b, "started_by_uid", itk_client_dbus_execution_get_started_by_uid(e));
        json_builder_end_object(b);
        return json_builder_get_root(b);
}

static const char *
lookup_s(GVariant *dict, const char *key)
{
        const char *value = NULL;

        if (!g_variant_lookup(dict, key, "&s", &value))
                return "";
        return value;
}

static gint64
lookup_int(GVariant *dict, const char *key, gint64 fallback)
{
        g_autoptr(GVariant) v = g_variant_lookup_value(dict, key, NULL);

        if (v == NULL)
                return fallback;
        if (g_variant_is_of_type(v, G_VARIANT_TYPE_INT32))
                return g_variant_get_int32(v);
        if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32))
                return g_variant_get_uint32(v);
        if (g_variant_is_of_type(v, G_VARIANT_TYPE_INT64))
                return g_variant_get_int64(v);
        if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64))
                return (gint64)g_variant_get_uint64(v);
        return fallback;
}

/* A finished run as the history store has it: the same shape, no path. */
static JsonNode *
record_summary(GVariant *record, gboolean with_steps)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autofree char *dashed = bridge_hex_to_dashed(lookup_s(record, "id"));
        const char *status = lookup_s(record, "status");
        gint64 total = lookup_int(record, "total-steps", 0);
        gint64 current = lookup_int(record, "current-step", -1);
        double progress = -1;
        gboolean debug_mode = FALSE;

        /* The Progress the run had on the bus, as stored; a guess only for
         * runs recorded before the store kept it. */
        if (!g_variant_lookup(record, "progress", "d", &progress) || progress < 0) {
                if (itk_run_status_from_string(status) == ITK_RUN_STATUS_COMPLETED)
                        progress = 1.0;
                else if (total > 0 && current > 0)
                        progress = MIN(1.0, (double)current / (double)total);
                else
                        progress = 0.0;
        }
        g_variant_lookup(record, "debug-mode", "b", &debug_mode);
        json_builder_begin_object(b);
        set_string(b, "execution_id", dashed);
        json_builder_set_member_name(b, "path");
        json_builder_add_null_value(b);
        set_string(b, "playbook", lookup_s(record, "playbook"));
        set_string(b, "playbook_name", lookup_s(record, "playbook-name"));
        set_string(b, "playbook_version", lookup_s(record, "playbook-version"));
        set_string(b, "domain", lookup_s(record, "domain"));
        set_string(b, "status", status);
        set_bool(b, "pause_requested", FALSE);
        set_bool(b, "debug_mode", debug_mode);
        set_int(b, "current_step", current);
        set_string(b, "current_step_id", "");
        set_string(b, "current_step_name", "");
        set_int(b, "total_steps", total);
        json_builder_set_member_name(b, "progress");
        json_builder_add_double_value(b, progress);
        set_int(b, "started_at", lookup_int(record, "started-at", 0));
        set_int(b, "finished_at", lookup_int(record, "finished-at", 0));
        set_string(b, "error", lookup_s(record, "error"));
        set_int(b, "started_by_uid", lookup_int(record, "started-by-uid", 0));
        if (with_steps) {
                g_autoptr(GVariant) steps =
                        g_variant_lookup_value(record, "steps", G_VARIANT_TYPE("aa{sv}"));

                json_builder_set_member_name(b, "steps");
                if (steps != NULL) {
                        json_builder_add_value(b, bridge_json_from_variant(steps));
                } else {
                        json_builder_begin_array(b);
                        json_builder_end_array(b);
                }
        }
        json_builder_end_object(b);
        return json_builder_get_root(b);
}

JsonNode *
bridge_record_summary(GVariant *record)
{
        return record_summary(record, FALSE);
}

/* Dashed id of a hex id, for responses. */
static char *
req_dashed(Request *req)
{
        return bridge_hex_to_dashed(req->hex);
}

/* --- small replies ------------------------------------------------------------ */

static gboolean
reply_converted(Request *req, GVariant *reply, const GError *error)
{
        g_autoptr(GVariant) value = NULL;
        g_autoptr(JsonNode) node = NULL;

        if (error != NULL) {
                bridge_reply_gerror(req->msg, error);
                return TRUE;
        }
        value = g_variant_get_child_value(reply, 0);
        node = bridge_json_from_variant(value);
        bridge_reply_json(req->msg, SOUP_STATUS_OK, node);
        return TRUE;
}

static gboolean
reply_no_content(Request *req, GVariant *reply, const GError *error)
{
        if (error != NULL)
                bridge_reply_gerror(req->msg, error);
        else
                bridge_reply_json(req->msg, SOUP_STATUS_NO_CONTENT, NULL);
        return TRUE;
}

static void
reply_bad_request(SoupServerMessage *msg, const char *message)
{
        bridge_reply_error(msg, SOUP_STATUS_BAD_REQUEST, "InvalidArgs", message);
}

static JsonObject *
parse_body_object(SoupServerMessage *msg, JsonNode **out_root)
{
        SoupMessageBody *body = soup_server_message_get_request_body(msg);
        g_autoptr(GBytes) bytes = soup_message_body_flatten(body);
        g_autoptr(GError) error = NULL;
        gsize size;
        const char *data = g_bytes_get_data(bytes, &size);
        JsonNode *root;

        if (size == 0) {
                reply_bad_request(msg, "a JSON object body is required");
                return NULL;
        }
        root = bridge_json_parse(data, size, &error);
        if (root == NULL) {
                g_autofree char *message = g_strdup_printf("invalid JSON: %s", error->message);

                reply_bad_request(msg, message);
                return NULL;
        }
        if (!JSON_NODE_HOLDS_OBJECT(root)) {
                json_node_unref(root);
                reply_bad_request(msg, "the body must be a JSON object");
                return NULL;
        }
        *out_root = root;
        return json_node_get_object(root);
}

/* An optional string member: FALSE (with a 400 reply) when present but not a string. */
static gboolean
optional_string(SoupServerMessage *msg, JsonObject *object, const char *name, const char **out)
{
        JsonNode *node = json_object_get_member(object, name);

        *out = NULL;
        if (node == NULL || JSON_NODE_HOLDS_NULL(node))
                return TRUE;
        if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING) {
                g_autofree char *message = g_strdup_printf("%s must be a string", name);

                reply_bad_request(msg, message);
                return FALSE;
        }
        *out = json_node_get_string(node);
        return TRUE;
}

/* --- playbooks ---------------------------------------------------------------- */

/* An invalid playbook comes with fewer keys; the web always gets them all. */
static void
playbook_fill(JsonObject *p)
{
        static const char *const strings[] = { "id",          "name",   "version",
                                               "description", "domain", "group" };
        static const char *const arrays[] = { "errors", "parameters" };

        for (gsize i = 0; i < G_N_ELEMENTS(strings); i++) {
                if (!json_object_has_member(p, strings[i]))
                        json_object_set_string_member(p, strings[i], "");
        }
        for (gsize i = 0; i < G_N_ELEMENTS(arrays); i++) {
                if (!json_object_has_member(p, arrays[i]))
                        json_object_set_array_member(p, arrays[i], json_array_new());
        }
        if (!json_object_has_member(p, "verified"))
                json_object_set_boolean_member(p, "verified", FALSE);
        if (!json_object_has_member(p, "valid"))
                json_object_set_boolean_member(p, "valid", FALSE);
        if (!json_object_has_member(p, "step_count"))
                json_object_set_int_member(p, "step_count", 0);
}

static gboolean
reply_playbooks(Request *req, GVariant *reply, const GError *error)
{
        g_autoptr(GVariant) value = NULL;
        g_autoptr(JsonNode) node = NULL;

        if (error != NULL) {
                bridge_reply_gerror(req->msg, error);
                return TRUE;
        }
        value = g_variant_get_child_value(reply, 0);
        node = bridge_json_from_variant(value);
        if (JSON_NODE_HOLDS_ARRAY(node)) {
                JsonArray *array = json_node_get_array(node);

                for (guint i = 0; i < json_array_get_length(array); i++)
                        playbook_fill(json_array_get_object_element(array, i));
        } else if (JSON_NODE_HOLDS_OBJECT(node)) {
                playbook_fill(json_node_get_object(node));
        }
        bridge_reply_json(req->msg, SOUP_STATUS_OK, node);
        return TRUE;
}

static void
get_playbooks(Request *req)
{
        call(req, req->bridge->manager, "ListPlaybooks", NULL, reply_playbooks);
}

static void
get_playbook(Request *req, const char *id)
{
        call(req, req->bridge->manager, "GetPlaybook", g_variant_new("(s)", id), reply_playbooks);
}

/* The "source" member of a JSON body: a string, else a 400 reply and NULL. */
static const char *
body_source(Request *req, JsonNode **root)
{
        JsonObject *body = parse_body_object(req->msg, root);
        const char *source = NULL;

        if (body == NULL || !optional_string(req->msg, body, "source", &source))
                return NULL;
        if (source == NULL)
                reply_bad_request(req->msg, "source (the playbook's YAML text) is required");
        return source;
}

/* {id?, diagnostics} from the daemon's diagnostics (aa{sv}); @id NULL: none. */
static gboolean
reply_diagnostics(Request *req, GVariant *reply, const GError *error, const char *id)
{
        g_autoptr(GVariant) value = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) node = NULL;

        if (error != NULL) {
                bridge_reply_gerror(req->msg, error);
                return TRUE;
        }
        value = g_variant_get_child_value(reply, 0);
        json_builder_begin_object(b);
        if (id != NULL)
                set_string(b, "id", id);
        json_builder_set_member_name(b, "diagnostics");
        json_builder_add_value(b, bridge_json_from_variant(value));
        json_builder_end_object(b);
        node = json_builder_get_root(b);
        bridge_reply_json(req->msg, SOUP_STATUS_OK, node);
        return TRUE;
}

static gboolean
saved_playbook_done(Request *req, GVariant *reply, const GError *error)
{
        return reply_diagnostics(req, reply, error, req->name);
}

static gboolean
validated_playbook_done(Request *req, GVariant *reply, const GError *error)
{
        return reply_diagnostics(req, reply, error, NULL);
}

/* PUT saves into the daemon's local library; the daemon checks the id, the
 * text and manage-library. */
static void
save_playbook(Request *req, const char *id)
{
        g_autoptr(JsonNode) root = NULL;
        const char *source = body_source(req, &root);

        if (source == NULL) {
                request_free(req);
                return;
        }
        req->name = g_strdup(id);
        call(req, req->bridge->manager, "SavePlaybook", g_variant_new("(ss)", id, source),
             saved_playbook_done);
}

static void
validate_playbook(Request *req)
{
        g_autoptr(JsonNode) root = NULL;
        const char *source = body_source(req, &root);

        if (source == NULL) {
                request_free(req);
                return;
        }
        call(req, req->bridge->manager, "ValidatePlaybook", g_variant_new("(s)", source),
             validated_playbook_done);
}

/* --- executions --------------------------------------------------------------- */

static gboolean
list_history_done(Request *req, GVariant *reply, const GError *error)
{
        g_autoptr(GVariant) runs = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) node = NULL;
        GVariantIter iter;
        GVariant *run;

        if (error != NULL) {
                bridge_reply_gerror(req->msg, error);
                return TRUE;
        }
        runs = reply != NULL
                       ? g_variant_get_child_value(reply, 0)
                       : g_variant_ref_sink(g_variant_new_array(G_VARIANT_TYPE_VARDICT, NULL, 0));
        g_variant_iter_init(&iter, runs);
        while ((run = g_variant_iter_next_value(&iter)) != NULL) {
                g_autofree char *hex = bridge_id_to_hex(lookup_s(run, "id"));

                if (json_array_get_length(req->list) < req->limit &&
                    (hex == NULL || !g_hash_table_contains(req->seen, hex)))
                        json_array_add_element(req->list, record_summary(run, FALSE));
                g_variant_unref(run);
        }
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "executions");
        json_builder_add_value(b, json_node_init_array(json_node_alloc(), req->list));
        json_builder_end_object(b);
        node = json_builder_get_root(b);
        bridge_reply_json(req->msg, SOUP_STATUS_OK, node);
        return TRUE;
}

static gboolean
list_live_done(Request *req, GVariant *reply, const GError *error)
{
        g_autoptr(GVariantIter) iter = NULL;
        const char *path, *id, *playbook, *status;
        guint32 current, total;

        if (error != NULL) {
                bridge_reply_gerror(req->msg, error);
                return TRUE;
        }
        g_variant_get(reply, "(a(osssuu))", &iter);
        while (g_variant_iter_next(iter, "(&o&s&s&suu)", &path, &id, &playbook, &status, &current,
                                   &total)) {
                g_autoptr(ItkClientDBusExecution) e = bridge_find_execution(req->bridge, id);
                const char *live_status =
                        e != NULL ? itk_client_dbus_execution_get_status(e) : status;
                char *hex = bridge_id_to_hex(id);

                if (hex != NULL)
                        g_hash_table_add(req->seen, hex);
                if (req->status_filter[0] != '\0' &&
                    g_strcmp0(live_status, req->status_filter) != 0)
                        continue;
                if (json_array_get_length(req->list) >= req->limit)
                        continue;
                if (e != NULL) {
                        json_array_add_element(req->list, bridge_execution_summary(e));
                } else {
                        /* Not in the object cache yet: what the list says, same shape. */
                        g_autoptr(JsonBuilder) b = json_builder_new();

                        json_builder_begin_object(b);
                        set_string(b, "execution_id", id);
                        set_string(b, "path", path);
                        set_string(b, "playbook", playbook);
                        set_string(b, "playbook_name", "");
                        set_string(b, "playbook_version", "");
                        set_string(b, "domain", "");
                        set_string(b, "status", status);
                        set_bool(b, "pause_requested", FALSE);
                        set_bool(b, "debug_mode", FALSE);
                        set_int(b, "current_step", current);
                        set_string(b, "current_step_id", "");
                        set_string(b, "current_step_name", "");
                        set_int(b, "total_steps", total);
                        json_builder_set_member_name(b, "progress");
                        json_builder_add_double_value(b, 0.0);
                        set_int(b, "started_at", 0);
                        set_int(b, "finished_at", 0);
                        set_string(b, "error", "");
                        set_int(b, "started_by_uid", 0);
                        json_builder_end_object(b);
                        json_array_add_element(req->list, json_builder_get_root(b));
                }
        }
        /* History holds finished runs only; the daemon refuses a live status there. */
        if (itk_run_status_from_string(req->status_filter) != ITK_RUN_STATUS_UNKNOWN &&
            !itk_run_status_is_terminal(itk_run_status_from_string(req->status_filter)))
                return list_history_done(req, NULL, NULL);
        call(req, req->bridge->manager, "GetHistory",
             g_variant_new("(us)", req->limit, req->status_filter), list_history_done);
        return FALSE;
}

static gboolean
parse_uint_param(GHashTable *query, const char *name, guint fallback, guint *out)
{
        const char *text = query != NULL ? g_hash_table_lookup(query, name) : NULL;
        guint64 value;

        *out = fallback;
        if (text == NULL || text[0] == '\0')
                return TRUE;
        if (!g_ascii_string_to_unsigned(text, 10, 0, G_MAXUINT32, &value, NULL))
                return FALSE;
        *out = (guint)value;
        return TRUE;
}

static void
list_executions(Request *req, GHashTable *query)
{
        const char *status = query != NULL ? g_hash_table_lookup(query, "status") : NULL;

        if (!parse_uint_param(query, "limit", 100, &req->limit)) {
                reply_bad_request(req->msg, "limit must be a non-negative integer");
                request_free(req);
                return;
        }
        if (req->limit == 0)
                req->limit = 100;
        req->status_filter = g_strdup(status != NULL ? status : "");
        req->list = json_array_new();
        req->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        call(req, req->bridge->manager, "ListExecutions", NULL, list_live_done);
}

static void
start_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
        Request *req = user_data;
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) node = NULL;
        g_autoptr(ItkClientDBusExecution) e = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *dashed = NULL;
        g_autofree char *path =
                itk_execution_watch_start_finish(ITK_EXECUTION_WATCH(source), res, &error);

        if (path == NULL) {
                bridge_reply_gerror(req->msg, error);
                request_free(req);
                return;
        }
        dashed = bridge_hex_to_dashed(strrchr(path, '/') + 1);
        e = bridge_find_execution(req->bridge, dashed);
        json_builder_begin_object(b);
        set_string(b, "execution_id", dashed);
        set_string(b, "path", path);
        set_string(b, "status",
                   e != NULL ? itk_client_dbus_execution_get_status(e)
                             : itk_run_status_to_string(ITK_RUN_STATUS_PENDING));
        set_string(b, "playbook", req->name);
        json_builder_end_object(b);
        node = json_builder_get_root(b);
        bridge_reply_json(req->msg, SOUP_STATUS_CREATED, node);
        request_free(req);
}

static void
start_execution(Request *req)
{
        g_autoptr(JsonNode) root = NULL;
        g_autoptr(GVariantBuilder) options = g_variant_builder_new(G_VARIANT_TYPE_VARDICT);
        g_autoptr(GVariant) params = NULL;
        g_autoptr(GError) error = NULL;
        JsonObject *body = parse_body_object(req->msg, &root);
        const char *playbook, *credential, *gateway_url;
        JsonNode *node;

        if (body == NULL)
                goto out;
        if (!optional_string(req->msg, body, "playbook_path", &playbook) ||
            !optional_string(req->msg, body, "credential_name", &credential) ||
            !optional_string(req->msg, body, "gateway_url", &gateway_url))
                goto out;
        if (playbook == NULL || playbook[0] == '\0') {
                reply_bad_request(req->msg, "playbook_path is required");
                goto out;
        }
        node = json_object_get_member(body, "parameters");
        if (node != NULL && !JSON_NODE_HOLDS_NULL(node)) {
                if (!JSON_NODE_HOLDS_OBJECT(node)) {
                        reply_bad_request(req->msg, "parameters must be an object");
                        goto out;
                }
                params = bridge_json_to_variant(node, &error);
                if (params == NULL) {
                        reply_bad_request(req->msg, error->message);
                        goto out;
                }
        } else {
                params = g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0);
        }
        g_variant_ref_sink(params);
        if (credential != NULL)
                g_variant_builder_add(options, "{sv}", "credential",
                                      g_variant_new_string(credential));
        if (gateway_url != NULL)
                g_variant_builder_add(options, "{sv}", "gateway-url",
                                      g_variant_new_string(gateway_url));
        node = json_object_get_member(body, "debug_mode");
        if (node != NULL && !JSON_NODE_HOLDS_NULL(node)) {
                if (!JSON_NODE_HOLDS_VALUE(node) ||
                    json_node_get_value_type(node) != G_TYPE_BOOLEAN) {
                        reply_bad_request(req->msg, "debug_mode must be a boolean");
                        goto out;
                }
                g_variant_builder_add(options, "{sv}", "debug",
                                      g_variant_new_boolean(json_node_get_boolean(node)));
        }
        node = json_object_get_member(body, "timeout_overrides");
        if (node != NULL && !JSON_NODE_HOLDS_NULL(node)) {
                g_autoptr(GVariantBuilder) t = g_variant_builder_new(G_VARIANT_TYPE("a{su}"));
                JsonObjectIter iter;
                const char *step;
                JsonNode *seconds;

                if (!JSON_NODE_HOLDS_OBJECT(node)) {
                        reply_bad_request(req->msg, "timeout_overrides must be an object");
                        goto out;
                }
                json_object_iter_init(&iter, json_node_get_object(node));
                while (json_object_iter_next(&iter, &step, &seconds)) {
                        GType type = JSON_NODE_HOLDS_VALUE(seconds)
                                             ? json_node_get_value_type(seconds)
                                             : G_TYPE_INVALID;
                        double value;

                        if (type != G_TYPE_INT64 && type != G_TYPE_DOUBLE) {
                                reply_bad_request(req->msg,
                                                  "timeout_overrides values must be numbers");
                                goto out;
                        }
                        value = json_node_get_double(seconds);
                        if (value < 0 || value > G_MAXUINT32) {
                                reply_bad_request(req->msg,
                                                  "timeout_overrides values are out of range");
                                goto out;
                        }
                        g_variant_builder_add(t, "{su}", step, (guint32)value);
                }
                g_variant_builder_add(options, "{sv}", "timeout-overrides",
                                      g_variant_builder_end(t));
        }
        req->name = g_strdup(playbook);
        /* Through the shared watch: the run's first signals are heard and relayed
         * even when this very call starts the daemon. */
        itk_execution_watch_start_async(req->bridge->watch, playbook, params,
                                        g_variant_builder_end(options), NULL, start_done_cb, req);
        return;
out:
        request_free(req);
}

static gboolean
get_one_record_done(Request *req, GVariant *reply, const GError *error)
{
        g_autoptr(GVariant) record = NULL;
        g_autoptr(JsonNode) node = NULL;

        if (error != NULL) {
                bridge_reply_gerror(req->msg, error);
                return TRUE;
        }
        record = g_variant_get_child_value(reply, 0);
        node = record_summary(record, TRUE);
        bridge_reply_json(req->msg, SOUP_STATUS_OK, node);
        return TRUE;
}

static gboolean
is_gone_error(const GError *error)
{
        return g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD) ||
               g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT) ||
               g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_INTERFACE);
}

static gboolean
get_one_steps_done(Request *req, GVariant *reply, const GError *error)
{
        g_autoptr(JsonNode) node = NULL;
        g_autoptr(GVariant) steps = NULL;

        if (error != NULL && is_gone_error(error)) {
                /* Left the bus between the lookup and the call: ask the store. */
                call(req, req->bridge->manager, "GetExecutionRecord",
                     g_variant_new("(s)", req->hex), get_one_record_done);
                return FALSE;
        }
        if (error != NULL) {
                bridge_reply_gerror(req->msg, error);
                return TRUE;
        }
        steps = g_variant_get_child_value(reply, 0);
        node = bridge_execution_summary(req->execution);
        json_object_set_member(json_node_get_object(node), "steps",
                               bridge_json_from_variant(steps));
        bridge_reply_json(req->msg, SOUP_STATUS_OK, node);
        return TRUE;
}

static void
get_execution(Request *req)
{
        if (req->execution != NULL)
                call(req, req->execution, "GetSteps", NULL, get_one_steps_done);
        else
                call(req, req->bridge->manager, "GetExecutionRecord",
                     g_variant_new("(s)", req->hex), get_one_record_done);
}

static JsonNode *
log_lines(GVariant *lines, guint max)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        gsize n = g_variant_n_children(lines);
        gsize first = max > 0 && n > max ? n - max : 0;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "lines");
        json_builder_begin_array(b);
        for (gsize i = first; i < n; i++) {
                const char *step_id, *message;
                guint64 usec;
                guint32 priority;

                g_variant_get_child(lines, i, "(tu&s&s)", &usec, &priority, &step_id, &message);
                json_builder_begin_object(b);
                set_int(b, "usec", (gint64)usec);
                set_int(b, "priority", priority);
                set_string(b, "step_id", step_id);
                set_string(b, "message", message);
                json_builder_end_object(b);
        }
        json_builder_end_array(b);
        json_builder_end_object(b);
        return json_builder_get_root(b);
}

static gboolean
log_record_done(Request *req, GVariant *reply, const GError *error)
{
        g_autoptr(GVariant) record = NULL;
        g_autoptr(GVariant) lines = NULL;
        g_autoptr(JsonNode) node = NULL;

        if (error != NULL) {
                bridge_reply_gerror(req->msg, error);
                return TRUE;
        }
        record = g_variant_get_child_value(reply, 0);
        lines = g_variant_lookup_value(record, "log", G_VARIANT_TYPE("a(tuss)"));
        if (lines == NULL)
                lines = g_variant_ref_sink(g_variant_new_array(G_VARIANT_TYPE("(tuss)"), NULL, 0));
        node = log_lines(lines, req->max);
        bridge_reply_json(req->msg, SOUP_STATUS_OK, node);
        return TRUE;
}

static gboolean
log_live_done(Request *req, GVariant *reply, const GError *error)
{
        g_autoptr(GVariant) lines = NULL;
        g_autoptr(JsonNode) node = NULL;

        if (error != NULL && is_gone_error(error)) {
                call(req, req->bridge->manager, "GetExecutionRecord",
                     g_variant_new("(s)", req->hex), log_record_done);
                return FALSE;
        }
        if (error != NULL) {
                bridge_reply_gerror(req->msg, error);
                return TRUE;
        }
        lines = g_variant_get_child_value(reply, 0);
        node = log_lines(lines, 0);
        bridge_reply_json(req->msg, SOUP_STATUS_OK, node);
        return TRUE;
}

static void
get_log(Request *req, GHashTable *query)
{
        if (!parse_uint_param(query, "max", 0, &req->max)) {
                reply_bad_request(req->msg, "max must be a non-negative integer");
                request_free(req);
                return;
        }
        if (req->execution != NULL)
                call(req, req->execution, "GetLog", g_variant_new("(u)", req->max), log_live_done);
        else
                call(req, req->bridge->manager, "GetExecutionRecord",
                     g_variant_new("(s)", req->hex), log_record_done);
}

/* A control call on a run that has left the bus: 409 if the store knows it. */
static gboolean
control_gone_done(Request *req, GVariant *reply, const GError *error)
{
        if (error != NULL)
                bridge_reply_gerror(req->msg, error);
        else
                bridge_reply_error(req->msg, SOUP_STATUS_CONFLICT, "NotRunning",
                                   "the execution has finished");
        return TRUE;
}

static gboolean
control_status_done(Request *req, GVariant *reply, const GError *error)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) node = NULL;
        g_autoptr(GVariant) value = NULL;
        g_autofree char *dashed = req_dashed(req);
        const char *status = itk_client_dbus_execution_get_status(req->execution);

        /* The call succeeded; if the object left in between, the cache is the best we have. */
        if (error == NULL) {
                g_variant_get(reply, "(v)", &value);
                if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING))
                        status = g_variant_get_string(value, NULL);
        }
        json_builder_begin_object(b);
        set_string(b, "execution_id", dashed);
        set_string(b, "status", status);
        json_builder_end_object(b);
        node = json_builder_get_root(b);
        bridge_reply_json(req->msg, SOUP_STATUS_OK, node);
        return TRUE;
}

static gboolean
control_done(Request *req, GVariant *reply, const GError *error)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) node = NULL;
        g_autofree char *dashed = req_dashed(req);

        if (error != NULL && is_gone_error(error)) {
                call(req, req->bridge->manager, "GetExecutionRecord",
                     g_variant_new("(s)", req->hex), control_gone_done);
                return FALSE;
        }
        if (error != NULL) {
                bridge_reply_gerror(req->msg, error);
                return TRUE;
        }
        if (req->name == NULL) {
                get_property(req, req->execution, "Status", control_status_done);
                return FALSE;
        }
        json_builder_begin_object(b);
        set_string(b, "execution_id", dashed);
        set_bool(b, "debug_mode", req->flag);
        json_builder_end_object(b);
        node = json_builder_get_root(b);
        bridge_reply_json(req->msg, SOUP_STATUS_OK, node);
        return TRUE;
}

static void
control(Request *req, const char *action, const char *debug)
{
        static const struct {
                const char *action, *method;
        } methods[] = {
                { "cancel", "Cancel" }, { "pause", "Pause" },        { "resume", "Resume" },
                { "skip", "Skip" },     { "skip_back", "SkipBack" },
        };
        const char *method = NULL;
        GVariant *args = NULL;

        if (debug != NULL) {
                if (g_str_equal(debug, "enable") || g_str_equal(debug, "disable")) {
                        method = "SetDebugMode";
                        req->flag = g_str_equal(debug, "enable");
                        req->name = g_strdup("debug");
                        args = g_variant_new("(b)", req->flag);
                }
        } else {
                for (gsize i = 0; i < G_N_ELEMENTS(methods); i++) {
                        if (g_str_equal(action, methods[i].action))
                                method = methods[i].method;
                }
        }
        if (method == NULL) {
                bridge_reply_error(req->msg, SOUP_STATUS_NOT_FOUND, "NotFound", "no such action");
                request_free(req);
                return;
        }
        if (req->execution == NULL) {
                if (args != NULL)
                        g_variant_unref(g_variant_ref_sink(args));
                call(req, req->bridge->manager, "GetExecutionRecord",
                     g_variant_new("(s)", req->hex), control_gone_done);
                return;
        }
        call(req, req->execution, method, args, control_done);
}

static void
delete_execution(Request *req)
{
        call(req, req->bridge->manager, "DeleteExecution", g_variant_new("(s)", req->hex),
             reply_no_content);
}

/* --- credentials -------------------------------------------------------------- */

static gboolean
credential_set_done(Request *req, GVariant *reply, const GError *error)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) node = NULL;

        if (error != NULL) {
                bridge_reply_gerror(req->msg, error);
                return TRUE;
        }
        json_builder_begin_object(b);
        set_string(b, "name", req->name);
        json_builder_end_object(b);
        node = json_builder_get_root(b);
        bridge_reply_json(req->msg, req->flag ? SOUP_STATUS_CREATED : SOUP_STATUS_OK, node);
        return TRUE;
}

static gboolean
valid_credential_name(const char *name)
{
        if (name == NULL || name[0] == '\0' || strlen(name) > 128)
                return FALSE;
        for (const char *p = name; *p != '\0'; p++) {
                if (!g_ascii_isalnum(*p) && *p != '_' && *p != '.' && *p != '-')
                        return FALSE;
        }
        return TRUE;
}

/* POST (@url_name NULL) creates, PUT updates; secrets go in and never come back. */
static void
set_credential(Request *req, const char *url_name)
{
        static const struct {
                const char *json, *dbus;
        } fields[] = {
                { "username", "username" },       { "password", "password" },
                { "gateway_url", "gateway-url" }, { "api_token", "api-token" },
                { "description", "description" },
        };
        g_autoptr(JsonNode) root = NULL;
        g_autoptr(GVariantBuilder) builder = g_variant_builder_new(G_VARIANT_TYPE_VARDICT);
        JsonObject *body = parse_body_object(req->msg, &root);
        const char *name;

        if (body == NULL || !optional_string(req->msg, body, "name", &name))
                goto out;
        if (url_name != NULL) {
                if (name != NULL && !g_str_equal(name, url_name)) {
                        reply_bad_request(req->msg, "name does not match the URL");
                        goto out;
                }
                name = url_name;
        }
        if (!valid_credential_name(name)) {
                reply_bad_request(req->msg, "name must be [A-Za-z0-9_.-]+");
                goto out;
        }
        for (gsize i = 0; i < G_N_ELEMENTS(fields); i++) {
                const char *value;

                if (!optional_string(req->msg, body, fields[i].json, &value))
                        goto out;
                if (value != NULL)
                        g_variant_builder_add(builder, "{sv}", fields[i].dbus,
                                              g_variant_new_string(value));
        }
        req->name = g_strdup(name);
        req->flag = url_name == NULL;
        call(req, req->bridge->manager, "SetCredential", g_variant_new("(sa{sv})", name, builder),
             credential_set_done);
        return;
out:
        request_free(req);
}

/* --- run context --------------------------------------------------------------- */

/* A JSON text the daemon stored (redacted), parsed; @fallback when empty or bad. */
static JsonNode *
stored_json(const char *text, JsonNodeType fallback)
{
        g_autoptr(GError) error = NULL;
        JsonNode *node = NULL;

        if (text != NULL && *text != '\0')
                node = bridge_json_parse(text, strlen(text), &error);
        if (node == NULL || JSON_NODE_TYPE(node) != fallback) {
                g_clear_pointer(&node, json_node_unref);
                node = json_node_new(fallback);
                if (fallback == JSON_NODE_OBJECT)
                        json_node_take_object(node, json_object_new());
        }
        return node;
}

static gboolean
context_done(Request *req, GVariant *reply, const GError *error)
{
        g_autoptr(GVariant) record = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) node = NULL;
        g_autoptr(JsonNode) options = NULL;
        g_autofree char *dashed = NULL;
        gboolean debug_mode = FALSE;
        JsonObject *o;
        JsonNode *overrides;

        if (error != NULL) {
                bridge_reply_gerror(req->msg, error);
                return TRUE;
        }
        record = g_variant_get_child_value(reply, 0);
        options = stored_json(lookup_s(record, "options"), JSON_NODE_OBJECT);
        o = json_node_get_object(options);
        overrides = json_object_get_member(o, "timeout-overrides");
        g_variant_lookup(record, "debug-mode", "b", &debug_mode);
        dashed = req_dashed(req);
        json_builder_begin_object(b);
        set_string(b, "execution_id", dashed);
        set_string(b, "playbook", lookup_s(record, "playbook"));
        json_builder_set_member_name(b, "parameters");
        json_builder_add_value(b, stored_json(lookup_s(record, "parameters"), JSON_NODE_OBJECT));
        set_string(b, "credential",
                   json_object_get_string_member_with_default(o, "credential", ""));
        set_string(b, "gateway_url",
                   json_object_get_string_member_with_default(o, "gateway-url", ""));
        json_builder_set_member_name(b, "timeout_overrides");
        if (overrides != NULL && JSON_NODE_HOLDS_OBJECT(overrides)) {
                json_builder_add_value(b, json_node_copy(overrides));
        } else {
                json_builder_begin_object(b);
                json_builder_end_object(b);
        }
        set_bool(b, "debug_mode", debug_mode);
        json_builder_end_object(b);
        node = json_builder_get_root(b);
        bridge_reply_json(req->msg, SOUP_STATUS_OK, node);
        return TRUE;
}

/* What a run was started with (GetExecutionRecord): parameters as the daemon
 * stored them (secrets masked), credential name, gateway URL, timeouts. */
static void
get_context(Request *req)
{
        call(req, req->bridge->manager, "GetExecutionRecord", g_variant_new("(s)", req->hex),
             context_done);
}

/* --- routing ------------------------------------------------------------------ */

static void
reply_method_not_allowed(Request *req)
{
        bridge_reply_error(req->msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "MethodNotAllowed",
                           "method not allowed here");
        request_free(req);
}

static void
reply_not_found(Request *req)
{
        bridge_reply_error(req->msg, SOUP_STATUS_NOT_FOUND, "NotFound", "no such resource");
        request_free(req);
}

/* GET .../artifacts: the list; GET .../artifacts/NAME: the file (NAME may hold '/'). */
static void
route_artifacts(Request *req, const char *method, char **parts, guint n)
{
        g_autofree char *dashed = req_dashed(req);

        if (method != SOUP_METHOD_GET) {
                reply_method_not_allowed(req);
        } else if (n == 3) {
                call(req, req->bridge->manager, "ListHistoryArtifacts",
                     g_variant_new("(s)", dashed), reply_converted);
        } else {
                g_autoptr(SoupServerMessage) msg = g_object_ref(req->msg);
                g_autofree char *name = g_strjoinv("/", parts + 3);
                Bridge *bridge = req->bridge;

                request_free(req);
                bridge_artifacts_download(bridge, msg, dashed, name);
        }
}

static void
route_execution(Request *req, const char *method, char **parts, guint n, GHashTable *query)
{
        /* parts: "executions", ID, [action], [debug action] */
        req->hex = bridge_id_to_hex(parts[1]);
        if (req->hex == NULL) {
                bridge_reply_error(req->msg, SOUP_STATUS_BAD_REQUEST, "InvalidArgs",
                                   "not an execution id");
                request_free(req);
                return;
        }
        req->execution = bridge_find_execution(req->bridge, req->hex);
        if (n == 2) {
                if (method == SOUP_METHOD_GET)
                        get_execution(req);
                else if (method == SOUP_METHOD_DELETE)
                        delete_execution(req);
                else
                        reply_method_not_allowed(req);
                return;
        }
        if (n == 3 && g_str_equal(parts[2], "context")) {
                if (method == SOUP_METHOD_GET)
                        get_context(req);
                else
                        reply_method_not_allowed(req);
                return;
        }
        if (n == 3 && g_str_equal(parts[2], "log")) {
                if (method == SOUP_METHOD_GET)
                        get_log(req, query);
                else
                        reply_method_not_allowed(req);
                return;
        }
        if (n == 3 && g_str_equal(parts[2], "input")) {
                g_autoptr(SoupServerMessage) msg = g_object_ref(req->msg);
                g_autofree char *hex = g_strdup(req->hex);
                Bridge *bridge = req->bridge;

                request_free(req);
                if (method == SOUP_METHOD_POST)
                        bridge_live_view_input(bridge, msg, hex);
                else
                        bridge_reply_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "MethodNotAllowed",
                                           "input is sent with POST");
                return;
        }
        if (n >= 3 && g_str_equal(parts[2], "artifacts")) {
                route_artifacts(req, method, parts, n);
                return;
        }
        if (n == 3 || (n == 4 && g_str_equal(parts[2], "debug"))) {
                if (method != SOUP_METHOD_POST)
                        reply_method_not_allowed(req);
                else
                        control(req, parts[2], n == 4 ? parts[3] : NULL);
                return;
        }
        reply_not_found(req);
}

void
bridge_api_handle(Bridge *bridge, SoupServerMessage *msg, const char *path, GHashTable *query)
{
        const char *method = soup_server_message_get_method(msg);
        Request *req = request_new(bridge, msg);
        g_auto(GStrv) raw = NULL;
        g_autoptr(GPtrArray) parts = g_ptr_array_new_with_free_func(g_free);
        guint n;

        /* Segments, percent-decoded; an empty segment (a trailing slash) is dropped. */
        raw = g_strsplit(path[0] == '/' ? path + 1 : path, "/", -1);
        for (guint i = 0; raw[i] != NULL; i++) {
                char *segment;

                if (raw[i][0] == '\0')
                        continue;
                segment = g_uri_unescape_string(raw[i], NULL);
                if (segment == NULL) {
                        reply_bad_request(msg, "bad escape in the path");
                        request_free(req);
                        return;
                }
                g_ptr_array_add(parts, segment);
        }
        n = parts->len;
        g_ptr_array_add(parts, NULL);
        if (n == 0) {
                reply_not_found(req);
                return;
        }
        if (g_str_equal(parts->pdata[0], "playbooks")) {
                if (n == 2 && g_str_equal(parts->pdata[1], "validate")) {
                        if (method == SOUP_METHOD_POST)
                                validate_playbook(req);
                        else
                                reply_method_not_allowed(req);
                } else if (n >= 2 && (method == SOUP_METHOD_PUT || method == SOUP_METHOD_DELETE)) {
                        g_autofree char *id = g_strjoinv("/", (char **)parts->pdata + 1);

                        if (method == SOUP_METHOD_PUT)
                                save_playbook(req, id);
                        else
                                call(req, bridge->manager, "DeletePlaybook",
                                     g_variant_new("(s)", id), reply_no_content);
                } else if (method != SOUP_METHOD_GET) {
                        reply_method_not_allowed(req);
                } else if (n == 1) {
                        get_playbooks(req);
                } else {
                        /* The id may contain '/': join what follows "playbooks". */
                        g_autofree char *id = g_strjoinv("/", (char **)parts->pdata + 1);

                        get_playbook(req, id);
                }
                return;
        }
        if (g_str_equal(parts->pdata[0], "executions")) {
                if (n == 1) {
                        if (method == SOUP_METHOD_GET)
                                list_executions(req, query);
                        else if (method == SOUP_METHOD_POST)
                                start_execution(req);
                        else
                                reply_method_not_allowed(req);
                        return;
                }
                route_execution(req, method, (char **)parts->pdata, n, query);
                return;
        }
        if (g_str_equal(parts->pdata[0], "history")) {
                /* bridge-history.c answers with a request of its own. */
                request_free(req);
                if (n != 1)
                        bridge_reply_error(msg, SOUP_STATUS_NOT_FOUND, "NotFound", "no such API");
                else if (method != SOUP_METHOD_GET)
                        bridge_reply_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "MethodNotAllowed",
                                           "history is read with GET");
                else
                        bridge_history_get(bridge, msg, query);
                return;
        }
        if (g_str_equal(parts->pdata[0], "input-files")) {
                /* bridge-inputs.c answers on its own. */
                request_free(req);
                bridge_inputs_handle(bridge, msg, method, (char **)parts->pdata, n);
                return;
        }
        if (g_str_equal(parts->pdata[0], "credentials")) {
                if (n == 1 && method == SOUP_METHOD_GET)
                        call(req, bridge->manager, "ListCredentials", NULL, reply_converted);
                else if (n == 1 && method == SOUP_METHOD_POST)
                        set_credential(req, NULL);
                else if (n == 2 && method == SOUP_METHOD_PUT)
                        set_credential(req, parts->pdata[1]);
                else if (n == 2 && method == SOUP_METHOD_DELETE)
                        call(req, bridge->manager, "DeleteCredential",
                             g_variant_new("(s)", (const char *)parts->pdata[1]), reply_no_content);
                else if (n <= 2)
                        reply_method_not_allowed(req);
                else
                        reply_not_found(req);
                return;
        }
        reply_not_found(req);
}
