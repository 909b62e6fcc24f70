/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The gateway.* step types over the 8.3 REST API (GATEWAY-API.md). Each
 * handler is a chain of asynchronous calls on one ItkGatewayOp; every wait is
 * an ItkTimer of the execution's group (so Pause freezes it) and every
 * request runs on the op's cancellable (so Cancel ends it at once). */
#include <gmodule.h>
#include "config.h"

#include <math.h>
#include <string.h>

#include "itk-error.h"
#include "itk-step.h"

#include "itk-gateway-client.h"

#define API "/data/api/v1"
#define ITK_GW_DEFAULT_WAIT_S 300
#define ITK_GW_DEFAULT_RESTART_FLOOR_MS 5000
#define ITK_GW_POLL_START_MS 2000
#define ITK_GW_POLL_MAX_MS 30000
#define ITK_GW_PING_TIMEOUT_MS 10000

typedef struct _ItkGatewayOp ItkGatewayOp;
typedef void (*ItkGatewayOpFunc)(ItkGatewayOp *op);

struct _ItkGatewayOp {
        GTask *task;
        ItkStepContext *ctx;
        ItkGatewayClient *client;
        JsonObject *params;
        GCancellable *step_cancellable;
        gulong step_cancel_id;
        /* Ours: cancelled by the step's cancellable and by the wait budget. */
        GCancellable *cancellable;
        ItkTimerGroup *own_timers; /* only when the context has none */
        ItkTimer *budget;
        guint64 budget_ms;
        gboolean timed_out;
        char *timeout_what; /* "the gateway did not become ready" */
        JsonObject *output;

        /* waits */
        guint64 poll_ms;
        guint64 poll_max_ms;
        guint polls;
        gint64 wait_started;
        gboolean seen_down;
        char *last_state;
        ItkGatewayOpFunc poll;      /* one poll; calls itk_gateway_op_poll_again or ends */
        ItkGatewayOpFunc wait_done; /* after wait_for_ready's RUNNING */

        /* step data */
        char *file;
        char *module_id;
        char *module_name;
        char *project;
        gboolean want_wait;
};

static void
itk_gateway_op_free(ItkGatewayOp *op)
{
        g_clear_pointer(&op->budget, itk_timer_free);
        if (op->step_cancel_id != 0)
                g_cancellable_disconnect(op->step_cancellable, op->step_cancel_id);
        g_clear_object(&op->step_cancellable);
        g_clear_object(&op->cancellable);
        if (op->own_timers != NULL) {
                itk_step_context_set_timer_group(op->ctx, NULL);
                itk_timer_group_free(op->own_timers);
        }
        g_clear_object(&op->client);
        g_clear_pointer(&op->params, json_object_unref);
        g_clear_pointer(&op->output, json_object_unref);
        g_clear_pointer(&op->ctx, itk_step_context_unref);
        g_free(op->timeout_what);
        g_free(op->last_state);
        g_free(op->file);
        g_free(op->module_id);
        g_free(op->module_name);
        g_free(op->project);
        g_clear_object(&op->task);
        g_free(op);
}

/* Ends the step with @error, saying what a cancellation meant. */
static void
itk_gateway_op_return_error(ItkGatewayOp *op, GError *error)
{
        g_autoptr(GError) owned = error;

        if (g_cancellable_is_cancelled(op->step_cancellable)) {
                g_task_return_new_error(op->task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                        "gateway step cancelled");
        } else if (op->timed_out) {
                g_task_return_new_error(
                        op->task, ITK_ERROR, ITK_ERROR_TIMED_OUT,
                        "%s within %" G_GUINT64_FORMAT " s%s%s%s",
                        op->timeout_what ? op->timeout_what : "the wait ended",
                        (op->budget_ms + 999) / 1000, op->last_state ? " (last seen: " : "",
                        op->last_state ? op->last_state : "", op->last_state ? ")" : "");
        } else {
                g_task_return_error(op->task, g_steal_pointer(&owned));
        }
        itk_gateway_op_free(op);
}

static void
itk_gateway_op_return_output(ItkGatewayOp *op)
{
        JsonNode *node = json_node_new(JSON_NODE_OBJECT);

        json_node_take_object(node, g_steal_pointer(&op->output));
        g_task_return_pointer(op->task, node, (GDestroyNotify)json_node_unref);
        itk_gateway_op_free(op);
}

static void
itk_gateway_op_step_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
        ItkGatewayOp *op = user_data;

        g_cancellable_cancel(op->cancellable);
}

/* --- parameters -------------------------------------------------------------- */

static gboolean
itk_gateway_node_is_string(JsonNode *node)
{
        return node != NULL && JSON_NODE_HOLDS_VALUE(node) &&
               json_node_get_value_type(node) == G_TYPE_STRING;
}

static const char *
itk_gateway_param_string(JsonObject *params, const char *name, GError **error)
{
        JsonNode *node = json_object_get_member(params, name);

        if (node == NULL || JSON_NODE_HOLDS_NULL(node))
                return NULL;
        if (!itk_gateway_node_is_string(node)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                            "parameter '%s' must be text", name);
                return NULL;
        }
        return json_node_get_string(node);
}

/* The first non-empty text of @names; NULL (and @error when @required) if none. */
static const char *
itk_gateway_param_any(JsonObject *params, const char *const *names, gboolean required,
                      GError **error)
{
        for (guint i = 0; names[i] != NULL; i++) {
                const char *v = itk_gateway_param_string(params, names[i], error);
                if (v == NULL && error != NULL && *error != NULL)
                        return NULL;
                if (v != NULL && *v != '\0')
                        return v;
        }
        if (required)
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                            "parameter '%s' is required", names[0]);
        return NULL;
}

static gboolean
itk_gateway_param_bool(JsonObject *params, const char *name, gboolean fallback, gboolean *out,
                       GError **error)
{
        JsonNode *node = json_object_get_member(params, name);

        *out = fallback;
        if (node == NULL || JSON_NODE_HOLDS_NULL(node))
                return TRUE;
        if (JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_BOOLEAN) {
                *out = json_node_get_boolean(node);
                return TRUE;
        }
        if (itk_gateway_node_is_string(node)) {
                const char *s = json_node_get_string(node);
                if (g_ascii_strcasecmp(s, "true") == 0 || g_strcmp0(s, "1") == 0) {
                        *out = TRUE;
                        return TRUE;
                }
                if (g_ascii_strcasecmp(s, "false") == 0 || g_strcmp0(s, "0") == 0) {
                        *out = FALSE;
                        return TRUE;
                }
        }
        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                    "parameter '%s' must be true or false", name);
        return FALSE;
}

/* Seconds (a number, or numeric text) as milliseconds. */
static gboolean
itk_gateway_param_seconds(JsonObject *params, const char *name, guint64 fallback_ms,
                          guint64 *out_ms, GError **error)
{
        JsonNode *node = json_object_get_member(params, name);
        double value;

        *out_ms = fallback_ms;
        if (node == NULL || JSON_NODE_HOLDS_NULL(node))
                return TRUE;
        if (JSON_NODE_HOLDS_VALUE(node) && (json_node_get_value_type(node) == G_TYPE_INT64 ||
                                            json_node_get_value_type(node) == G_TYPE_DOUBLE)) {
                value = json_node_get_double(node);
        } else if (itk_gateway_node_is_string(node)) {
                char *end = NULL;
                value = g_ascii_strtod(json_node_get_string(node), &end);
                if (end == json_node_get_string(node) || *end != '\0')
                        value = -1;
        } else {
                value = -1;
        }
        if (!(value >= 0 && value <= ITK_DURATION_MAX_SECONDS)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                            "parameter '%s' must be a number of seconds from 0 to at most %d "
                            "(30 days)",
                            name, ITK_DURATION_MAX_SECONDS);
                return FALSE;
        }
        *out_ms = (guint64)llround(value * 1000);
        return TRUE;
}

/* @name relative to the playbook's folder, else the run's folder. */
static char *
itk_gateway_resolve_path(ItkStepContext *ctx, const char *name, gboolean prefer_playbook_dir)
{
        const char *base = NULL;

        if (g_path_is_absolute(name))
                return g_strdup(name);
        if (prefer_playbook_dir)
                base = itk_step_context_get_playbook_dir(ctx);
        if (base == NULL)
                base = itk_step_context_get_work_dir(ctx);
        if (base == NULL)
                base = g_get_tmp_dir();
        return g_build_filename(base, name, NULL);
}

static char *
itk_gateway_escape(const char *segment)
{
        return g_uri_escape_string(segment, NULL, FALSE);
}

/* --- the op ------------------------------------------------------------------ */

static ItkGatewayOp *
itk_gateway_op_new(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                   GAsyncReadyCallback callback, gpointer user_data)
{
        ItkGatewayOp *op = g_new0(ItkGatewayOp, 1);
        g_autoptr(GError) error = NULL;
        const char *const url_names[] = { "gateway_url", "url", NULL };
        const char *url, *token;
        guint64 request_ms;

        op->task = itk_step_task_new(ctx, cancellable, callback, user_data);
        op->ctx = itk_step_context_ref(ctx);
        op->params = json_object_ref(params);
        op->output = json_object_new();
        op->cancellable = g_cancellable_new();
        if (cancellable != NULL) {
                op->step_cancellable = g_object_ref(cancellable);
                op->step_cancel_id = g_cancellable_connect(
                        cancellable, G_CALLBACK(itk_gateway_op_step_cancelled_cb), op, NULL);
        }
        if (itk_step_context_get_timer_group(ctx) == NULL) {
                op->own_timers = itk_timer_group_new();
                itk_step_context_set_timer_group(ctx, op->own_timers);
        }

        url = itk_gateway_param_any(params, url_names, FALSE, &error);
        if (error == NULL && url == NULL)
                url = itk_step_context_get_gateway_url(ctx);
        token = error == NULL ? itk_gateway_param_string(params, "token", &error) : NULL;
        if (error == NULL && (token == NULL || *token == '\0'))
                token = itk_step_context_get_gateway_token(ctx);
        if (error == NULL)
                op->client = itk_gateway_client_new(url, token, &error);
        if (error == NULL &&
            itk_gateway_param_seconds(params, "request_timeout", 0, &request_ms, &error) &&
            request_ms > 0)
                itk_gateway_client_set_timeouts(op->client, MIN(request_ms, 10000),
                                                (guint)MIN(request_ms, G_MAXUINT - 1));
        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return NULL;
        }
        return op;
}

/* Sends a request on the op's cancellable; @callback gets the op. */
static void
itk_gateway_op_request(ItkGatewayOp *op, const ItkGatewayRequest *request,
                       GAsyncReadyCallback callback)
{
        itk_gateway_client_request_async(op->client, request, op->cancellable, callback, op);
}

static JsonNode *
itk_gateway_op_finish(ItkGatewayOp *op, GAsyncResult *result, guint *status, GError **error)
{
        return itk_gateway_client_request_finish(op->client, result, status, error);
}

static void
itk_gateway_op_budget_cb(gpointer user_data)
{
        ItkGatewayOp *op = user_data;

        op->timed_out = TRUE;
        g_cancellable_cancel(op->cancellable);
}

/* The wait budget: pausable, from the `wait_timeout` parameter (s). Its old
 * name `timeout` still works, with a note: it read like the step's own
 * per-attempt `timeout`, which is a different clock. */
static gboolean
itk_gateway_op_start_budget(ItkGatewayOp *op, const char *what, GError **error)
{
        const char *name = "wait_timeout";

        if (!json_object_has_member(op->params, "wait_timeout") &&
            json_object_has_member(op->params, "timeout")) {
                name = "timeout";
                itk_step_context_log(op->ctx, ITK_LOG_WARNING,
                                     "parameter 'timeout' of a gateway wait is deprecated: "
                                     "write 'wait_timeout'");
        }
        if (!itk_gateway_param_seconds(op->params, name, ITK_GW_DEFAULT_WAIT_S * 1000,
                                       &op->budget_ms, error))
                return FALSE;
        g_free(op->timeout_what);
        op->timeout_what = g_strdup(what);
        op->budget = itk_timer_new(itk_step_context_get_timer_group(op->ctx), op->budget_ms,
                                   itk_gateway_op_budget_cb, op);
        return TRUE;
}

static gboolean
itk_gateway_node_state(JsonNode *node, const char **state, const char **details)
{
        JsonObject *o;

        *state = *details = NULL;
        if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node))
                return FALSE;
        o = json_node_get_object(node);
        *state = json_object_get_string_member_with_default(o, "state", NULL);
        *details = json_object_get_string_member_with_default(o, "details", NULL);
        return *state != NULL;
}

/* --- polling: a floor, then polls 2 s apart backing off to 30 s ----------------- */

static void
itk_gateway_op_poll_slept_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;

        if (!itk_step_context_sleep_finish(op->ctx, result, &error)) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        op->polls++;
        op->poll(op);
}

static void
itk_gateway_op_poll_again(ItkGatewayOp *op)
{
        guint64 delay = op->poll_ms;

        op->poll_ms = MIN(op->poll_ms * 3 / 2, op->poll_max_ms);
        itk_step_context_sleep_async(op->ctx, delay, op->cancellable, itk_gateway_op_poll_slept_cb,
                                     op);
}

/* Starts polling with @poll after a floor of @default_floor_ms (`min_wait` s). */
static gboolean
itk_gateway_op_start_polling(ItkGatewayOp *op, ItkGatewayOpFunc poll, guint64 default_floor_ms,
                             GError **error)
{
        guint64 floor_ms;

        if (!itk_gateway_param_seconds(op->params, "min_wait", default_floor_ms, &floor_ms,
                                       error) ||
            !itk_gateway_param_seconds(op->params, "poll_interval", ITK_GW_POLL_START_MS,
                                       &op->poll_ms, error))
                return FALSE;
        op->poll_ms = MAX(op->poll_ms, 50);
        op->poll_max_ms = MAX(op->poll_ms, ITK_GW_POLL_MAX_MS);
        op->poll = poll;
        op->wait_started = g_get_monotonic_time();
        itk_step_context_sleep_async(op->ctx, floor_ms, op->cancellable,
                                     itk_gateway_op_poll_slept_cb, op);
        return TRUE;
}

/* --- waiting for RUNNING (wait_for_ready, restart, restore) -------------------- */

static void
itk_gateway_ready_ping_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = itk_gateway_op_finish(op, result, NULL, &error);
        const char *state = NULL, *details = NULL;

        if (g_cancellable_is_cancelled(op->cancellable)) {
                itk_gateway_op_return_error(
                        op, g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled"));
                return;
        }
        g_free(op->last_state);
        if (error != NULL) {
                /* Down, refusing connections or 503: still restarting. */
                op->last_state = g_strdup(error->message);
                op->seen_down = TRUE;
        } else if (itk_gateway_node_state(node, &state, &details)) {
                op->last_state =
                        details ? g_strdup_printf("%s (%s)", state, details) : g_strdup(state);
                if (g_strcmp0(state, "RUNNING") == 0 && details == NULL) {
                        json_object_set_string_member(op->output, "state", state);
                        json_object_set_boolean_member(op->output, "ready", TRUE);
                        json_object_set_int_member(op->output, "waited_ms",
                                                   (g_get_monotonic_time() - op->wait_started) /
                                                           1000);
                        json_object_set_int_member(op->output, "polls", op->polls);
                        json_object_set_boolean_member(op->output, "went_down", op->seen_down);
                        op->wait_done(op);
                        return;
                }
                op->seen_down = TRUE;
        } else {
                op->last_state = g_strdup("an answer without a state");
        }
        itk_gateway_op_poll_again(op);
}

static void
itk_gateway_ready_poll(ItkGatewayOp *op)
{
        ItkGatewayRequest req = {
                .path = "/StatusPing",
                .flags = ITK_GATEWAY_REQUEST_NO_AUTH,
                .timeout_ms = ITK_GW_PING_TIMEOUT_MS,
        };

        itk_gateway_op_request(op, &req, itk_gateway_ready_ping_cb);
}

static void
itk_gateway_op_wait_ready(ItkGatewayOp *op, guint64 default_floor_ms, ItkGatewayOpFunc done)
{
        g_autoptr(GError) error = NULL;

        op->wait_done = done;
        if (!itk_gateway_op_start_budget(op, "the gateway did not become ready", &error) ||
            !itk_gateway_op_start_polling(op, itk_gateway_ready_poll, default_floor_ms, &error))
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
}

/* --- gateway.ping ---------------------------------------------------------------- */

static void
itk_gateway_ping_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = itk_gateway_op_finish(op, result, NULL, &error);
        const char *state, *details;

        if (node == NULL && error == NULL)
                error = g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                    "the gateway at %s answered /StatusPing without JSON",
                                    itk_gateway_client_get_base_url(op->client));
        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        if (!itk_gateway_node_state(node, &state, &details)) {
                itk_gateway_op_return_error(
                        op, g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                        "the gateway at %s answered /StatusPing without a state",
                                        itk_gateway_client_get_base_url(op->client)));
                return;
        }
        json_object_set_string_member(op->output, "gateway_url",
                                      itk_gateway_client_get_base_url(op->client));
        json_object_set_string_member(op->output, "state", state);
        if (details != NULL)
                json_object_set_string_member(op->output, "details", details);
        json_object_set_boolean_member(op->output, "ready",
                                       g_strcmp0(state, "RUNNING") == 0 && details == NULL);
        itk_gateway_op_return_output(op);
}

static void
itk_gateway_ping_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                     GAsyncReadyCallback callback, gpointer user_data)
{
        ItkGatewayOp *op = itk_gateway_op_new(ctx, params, cancellable, callback, user_data);
        ItkGatewayRequest req = { .path = "/StatusPing", .flags = ITK_GATEWAY_REQUEST_NO_AUTH };

        if (op != NULL)
                itk_gateway_op_request(op, &req, itk_gateway_ping_cb);
}

/* --- gateway.wait_for_ready -------------------------------------------------------- */

static void
itk_gateway_op_return_output_cb(ItkGatewayOp *op)
{
        itk_gateway_op_return_output(op);
}

static void
itk_gateway_wait_for_ready_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
        ItkGatewayOp *op = itk_gateway_op_new(ctx, params, cancellable, callback, user_data);

        if (op != NULL)
                itk_gateway_op_wait_ready(op, 0, itk_gateway_op_return_output_cb);
}

/* --- simple JSON calls: get_info, list_projects, get_project, scan_projects ----- */

/* Copies the members of an object answer into the output, or sets @key. */
static void
itk_gateway_output_merge(ItkGatewayOp *op, const char *key, JsonNode *node)
{
        if (node == NULL)
                return;
        if (key == NULL && JSON_NODE_HOLDS_OBJECT(node)) {
                JsonObjectIter iter;
                const char *name;
                JsonNode *value;

                json_object_iter_init(&iter, json_node_get_object(node));
                while (json_object_iter_next(&iter, &name, &value))
                        json_object_set_member(op->output, name, json_node_copy(value));
        } else {
                json_object_set_member(op->output, key ? key : "result", json_node_copy(node));
        }
}

/* A list answer {"items": [...], "metadata": {...}} as {key: items, count}. */
static void
itk_gateway_output_items(ItkGatewayOp *op, const char *key, JsonNode *node)
{
        JsonNode *items = NULL;

        if (node != NULL && JSON_NODE_HOLDS_OBJECT(node))
                items = json_object_get_member(json_node_get_object(node), "items");
        if (items == NULL || !JSON_NODE_HOLDS_ARRAY(items)) {
                json_object_set_array_member(op->output, key, json_array_new());
                json_object_set_int_member(op->output, "count", 0);
                return;
        }
        json_object_set_member(op->output, key, json_node_copy(items));
        json_object_set_int_member(op->output, "count",
                                   json_array_get_length(json_node_get_array(items)));
}

static void
itk_gateway_simple_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = itk_gateway_op_finish(op, result, NULL, &error);

        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        itk_gateway_output_merge(op, NULL, node);
        itk_gateway_op_return_output(op);
}

static void
itk_gateway_get_info_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data)
{
        ItkGatewayOp *op = itk_gateway_op_new(ctx, params, cancellable, callback, user_data);
        ItkGatewayRequest req = { .path = API "/gateway-info", .action = "read the gateway info" };

        if (op != NULL)
                itk_gateway_op_request(op, &req, itk_gateway_simple_cb);
}

static void
itk_gateway_scan_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = itk_gateway_op_finish(op, result, NULL, &error);

        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        json_object_set_boolean_member(op->output, "scanned", TRUE);
        itk_gateway_op_return_output(op);
}

static void
itk_gateway_scan_projects_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
        ItkGatewayOp *op = itk_gateway_op_new(ctx, params, cancellable, callback, user_data);
        ItkGatewayRequest req = {
                .method = "POST",
                .path = API "/scan/projects",
                .action = "scan projects (a write)",
        };

        if (op != NULL)
                itk_gateway_op_request(op, &req, itk_gateway_scan_cb);
}

static void
itk_gateway_list_projects_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = itk_gateway_op_finish(op, result, NULL, &error);

        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        itk_gateway_output_items(op, "projects", node);
        itk_gateway_op_return_output(op);
}

static void
itk_gateway_list_projects_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
        ItkGatewayOp *op = itk_gateway_op_new(ctx, params, cancellable, callback, user_data);
        ItkGatewayRequest req = { .path = API "/projects/list?limit=-1",
                                  .action = "list projects" };

        if (op != NULL)
                itk_gateway_op_request(op, &req, itk_gateway_list_projects_cb);
}

static const char *const project_names[] = { "project_name", "project", "name", NULL };

static void
itk_gateway_get_project_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data)
{
        ItkGatewayOp *op = itk_gateway_op_new(ctx, params, cancellable, callback, user_data);
        g_autoptr(GError) error = NULL;
        g_autofree char *escaped = NULL;
        g_autofree char *path = NULL;
        const char *name;
        ItkGatewayRequest req = { .action = "read projects" };

        if (op == NULL)
                return;
        name = itk_gateway_param_any(params, project_names, TRUE, &error);
        if (name == NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        escaped = itk_gateway_escape(name);
        path = g_strdup_printf(API "/projects/find/%s", escaped);
        req.path = path;
        itk_gateway_op_request(op, &req, itk_gateway_simple_cb);
}

/* --- gateway.get_health: StatusPing + overview -------------------------------------- */

static void
itk_gateway_health_overview_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = itk_gateway_op_finish(op, result, NULL, &error);

        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        itk_gateway_output_merge(op, "overview", node);
        itk_gateway_op_return_output(op);
}

static void
itk_gateway_health_ping_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = itk_gateway_op_finish(op, result, NULL, &error);
        const char *state, *details;
        ItkGatewayRequest req = { .path = API "/overview", .action = "read the gateway overview" };

        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        if (!itk_gateway_node_state(node, &state, &details))
                state = "UNKNOWN";
        json_object_set_string_member(op->output, "state", state);
        if (details != NULL)
                json_object_set_string_member(op->output, "details", details);
        json_object_set_boolean_member(op->output, "healthy",
                                       g_strcmp0(state, "RUNNING") == 0 && details == NULL);
        itk_gateway_op_request(op, &req, itk_gateway_health_overview_cb);
}

static void
itk_gateway_get_health_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data)
{
        ItkGatewayOp *op = itk_gateway_op_new(ctx, params, cancellable, callback, user_data);
        ItkGatewayRequest req = { .path = "/StatusPing", .flags = ITK_GATEWAY_REQUEST_NO_AUTH };

        if (op != NULL)
                itk_gateway_op_request(op, &req, itk_gateway_health_ping_cb);
}

/* --- gateway.list_modules -------------------------------------------------------- */

static void
itk_gateway_list_quarantined_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = itk_gateway_op_finish(op, result, NULL, &error);
        JsonNode *items = NULL;

        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        if (node != NULL && JSON_NODE_HOLDS_OBJECT(node))
                items = json_object_get_member(json_node_get_object(node), "items");
        json_object_set_member(op->output, "quarantined",
                               items != NULL && JSON_NODE_HOLDS_ARRAY(items)
                                       ? json_node_copy(items)
                                       : json_node_init_array(json_node_alloc(), json_array_new()));
        itk_gateway_op_return_output(op);
}

static void
itk_gateway_list_healthy_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = itk_gateway_op_finish(op, result, NULL, &error);
        ItkGatewayRequest req = { .path = API "/modules/quarantined?limit=-1",
                                  .action = "list modules" };

        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        itk_gateway_output_items(op, "modules", node);
        itk_gateway_op_request(op, &req, itk_gateway_list_quarantined_cb);
}

static void
itk_gateway_list_modules_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data)
{
        ItkGatewayOp *op = itk_gateway_op_new(ctx, params, cancellable, callback, user_data);
        ItkGatewayRequest req = { .path = API "/modules/healthy?limit=-1",
                                  .action = "list modules" };

        if (op != NULL)
                itk_gateway_op_request(op, &req, itk_gateway_list_healthy_cb);
}

/* --- gateway.upload_module: upload, accept certificate and EULA, install ---------- */

static void itk_gateway_upload_next(ItkGatewayOp *op);

static gboolean
itk_gateway_output_flag(ItkGatewayOp *op, const char *name)
{
        return json_object_get_boolean_member_with_default(op->output, name, FALSE);
}

static void
itk_gateway_upload_installed_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = itk_gateway_op_finish(op, result, NULL, &error);

        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        json_object_set_boolean_member(op->output, "installed", TRUE);
        json_object_set_boolean_member(op->output, "restart_required", TRUE);
        itk_step_context_logf(op->ctx, ITK_LOG_INFO,
                              "module %s installed; it becomes ACTIVE after a gateway restart",
                              op->module_id);
        itk_gateway_op_return_output(op);
}

static void
itk_gateway_upload_accepted_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        guint status = 0;
        g_autoptr(JsonNode) node = itk_gateway_op_finish(op, result, &status, &error);

        /* 409: accepted already, which is what we wanted. */
        if (error != NULL && status != 409) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        itk_gateway_upload_next(op);
}

/* Accepts what the upload said is not accepted yet, then installs. */

typedef struct {
        const char *contains; /* output flag: the upload brought one */
        const char *accepted; /* output flag: it is accepted */
        const char *param;    /* step parameter that allows accepting it */
        const char *what;
        const char *endpoint;
        const char *action;
} ItkGatewayAcceptance;

static const ItkGatewayAcceptance acceptances[] = {
        { "contains_cert", "cert_accepted", "accept_certificate", "certificate",
          "/modules/certificate", "accept module certificates" },
        { "contains_eula", "license_accepted", "accept_license", "license", "/modules/eula",
          "accept module licenses" },
};

static void
itk_gateway_upload_next(ItkGatewayOp *op)
{
        g_autofree char *escaped = itk_gateway_escape(op->module_id);
        g_autofree char *path = NULL;
        ItkGatewayRequest req = { .method = "POST" };
        gboolean accept_cert = TRUE, accept_eula = TRUE, install = TRUE;
        g_autoptr(GError) error = NULL;

        if (!itk_gateway_param_bool(op->params, "accept_certificate", TRUE, &accept_cert, &error) ||
            !itk_gateway_param_bool(op->params, "accept_license", TRUE, &accept_eula, &error) ||
            !itk_gateway_param_bool(op->params, "install", TRUE, &install, &error)) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        /* A module may wait in quarantine for its certificate, then its licence. */
        for (guint i = 0; i < G_N_ELEMENTS(acceptances); i++) {
                const ItkGatewayAcceptance *a = &acceptances[i];
                gboolean allowed = i == 0 ? accept_cert : accept_eula;

                if (!itk_gateway_output_flag(op, a->contains) ||
                    itk_gateway_output_flag(op, a->accepted))
                        continue;
                if (!allowed) {
                        itk_gateway_op_return_error(
                                op, g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                                "module %s waits in quarantine: its %s is not "
                                                "accepted (%s is false)",
                                                op->module_id, a->what, a->param));
                        return;
                }
                json_object_set_boolean_member(op->output, a->accepted, TRUE);
                path = g_strdup_printf(API "%s?moduleId=%s", a->endpoint, escaped);
                req.path = path;
                req.action = a->action;
                itk_gateway_op_request(op, &req, itk_gateway_upload_accepted_cb);
                return;
        }
        if (!install) {
                json_object_set_boolean_member(op->output, "installed", FALSE);
                itk_gateway_op_return_output(op);
                return;
        }
        path = g_strdup_printf(API "/modules/install?moduleId=%s", escaped);
        req.path = path;
        req.action = "install modules";
        itk_gateway_op_request(op, &req, itk_gateway_upload_installed_cb);
}

static void
itk_gateway_uploaded_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = itk_gateway_op_finish(op, result, NULL, &error);
        JsonObject *o;

        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        o = node != NULL && JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
        if (o == NULL || json_object_get_string_member_with_default(o, "moduleId", NULL) == NULL) {
                itk_gateway_op_return_error(
                        op,
                        g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                    "the gateway accepted %s but named no module id", op->file));
                return;
        }
        op->module_id = g_strdup(json_object_get_string_member(o, "moduleId"));
        json_object_set_string_member(op->output, "module_id", op->module_id);
        json_object_set_string_member(op->output, "file", op->file);
        json_object_set_boolean_member(
                op->output, "contains_cert",
                json_object_get_boolean_member_with_default(o, "containsCert", FALSE));
        json_object_set_boolean_member(
                op->output, "cert_accepted",
                json_object_get_boolean_member_with_default(o, "certAccepted", FALSE));
        json_object_set_boolean_member(
                op->output, "contains_eula",
                json_object_get_boolean_member_with_default(o, "containsEula", FALSE));
        json_object_set_boolean_member(
                op->output, "license_accepted",
                json_object_get_boolean_member_with_default(o, "licenseAccepted", FALSE));
        itk_step_context_logf(op->ctx, ITK_LOG_INFO, "uploaded %s as module %s", op->file,
                              op->module_id);
        itk_gateway_upload_next(op);
}

static const char *const file_names[] = { "file", "file_path", "path", NULL };

static void
itk_gateway_upload_module_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
        ItkGatewayOp *op = itk_gateway_op_new(ctx, params, cancellable, callback, user_data);
        g_autoptr(GError) error = NULL;
        g_autofree char *base = NULL;
        g_autofree char *escaped = NULL;
        g_autofree char *path = NULL;
        const char *file;
        ItkGatewayRequest req = {
                .method = "POST",
                .action = "upload modules",
                .upload_content_type = "application/octet-stream",
                .timeout_ms = G_MAXUINT, /* the step's timeout bounds it */
        };

        if (op == NULL)
                return;
        file = itk_gateway_param_any(params, file_names, TRUE, &error);
        if (file == NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        op->file = itk_gateway_resolve_path(ctx, file, TRUE);
        base = g_path_get_basename(op->file);
        escaped = itk_gateway_escape(base);
        path = g_strdup_printf(API "/modules/upload?fileName=%s", escaped);
        req.path = path;
        req.upload_file = op->file;
        itk_gateway_op_request(op, &req, itk_gateway_uploaded_cb);
}

/* --- gateway.wait_for_module_installation ------------------------------------------ */

/* The list item naming our module: by id, or by name (or id) for module_name. */
static JsonObject *
itk_gateway_find_module(ItkGatewayOp *op, JsonNode *list)
{
        JsonNode *items;

        if (list == NULL || !JSON_NODE_HOLDS_OBJECT(list))
                return NULL;
        items = json_object_get_member(json_node_get_object(list), "items");
        if (items == NULL || !JSON_NODE_HOLDS_ARRAY(items))
                return NULL;
        for (guint i = 0; i < json_array_get_length(json_node_get_array(items)); i++) {
                JsonNode *n = json_array_get_element(json_node_get_array(items), i);
                JsonObject *o;
                const char *id, *name;

                if (!JSON_NODE_HOLDS_OBJECT(n))
                        continue;
                o = json_node_get_object(n);
                id = json_object_get_string_member_with_default(o, "id", NULL);
                name = json_object_get_string_member_with_default(o, "name", NULL);
                if (op->module_id != NULL && g_strcmp0(id, op->module_id) == 0)
                        return o;
                if (op->module_name != NULL &&
                    ((name != NULL && g_ascii_strcasecmp(name, op->module_name) == 0) ||
                     g_strcmp0(id, op->module_name) == 0))
                        return o;
        }
        return NULL;
}

static const char *
itk_gateway_module_label(ItkGatewayOp *op)
{
        return op->module_id != NULL ? op->module_id : op->module_name;
}

static void
itk_gateway_module_quarantined_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        guint status = 0;
        g_autoptr(JsonNode) node = itk_gateway_op_finish(op, result, &status, &error);
        JsonObject *found;

        if (error != NULL) {
                if (itk_gateway_client_status_is_transient(status, error) &&
                    !g_cancellable_is_cancelled(op->cancellable)) {
                        itk_gateway_op_poll_again(op);
                        return;
                }
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        found = itk_gateway_find_module(op, node);
        if (found != NULL) {
                const char *reason =
                        json_object_get_string_member_with_default(found, "reason", NULL);
                gboolean cert =
                        json_object_get_boolean_member_with_default(found, "certAccepted", TRUE);
                gboolean eula =
                        json_object_get_boolean_member_with_default(found, "licenseAccepted", TRUE);

                if (reason == NULL)
                        reason = !cert   ? "its certificate is not accepted"
                                 : !eula ? "its license is not accepted"
                                         : "no reason given";
                itk_gateway_op_return_error(op, g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                                            "module %s is quarantined: %s",
                                                            itk_gateway_module_label(op), reason));
                return;
        }
        itk_gateway_op_poll_again(op);
}

static void
itk_gateway_module_healthy_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        guint status = 0;
        g_autoptr(JsonNode) node = itk_gateway_op_finish(op, result, &status, &error);
        g_autofree char *escaped = NULL;
        g_autofree char *path = NULL;
        JsonObject *found;
        const char *state;
        ItkGatewayRequest req = { .action = "list modules" };

        if (error != NULL) {
                if (itk_gateway_client_status_is_transient(status, error) &&
                    !g_cancellable_is_cancelled(op->cancellable)) {
                        /* Restarting: the module list comes back with the gateway. */
                        g_free(op->last_state);
                        op->last_state = g_strdup(error->message);
                        itk_gateway_op_poll_again(op);
                        return;
                }
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        found = itk_gateway_find_module(op, node);
        state = found ? json_object_get_string_member_with_default(found, "state", NULL) : NULL;
        if (g_strcmp0(state, "ACTIVE") == 0) {
                JsonObjectIter iter;
                const char *name;
                JsonNode *value;

                json_object_iter_init(&iter, found);
                while (json_object_iter_next(&iter, &name, &value))
                        json_object_set_member(op->output, name, json_node_copy(value));
                json_object_set_string_member(op->output, "module_id",
                                              json_object_get_string_member_with_default(
                                                      found, "id", itk_gateway_module_label(op)));
                json_object_set_int_member(op->output, "waited_ms",
                                           (g_get_monotonic_time() - op->wait_started) / 1000);
                itk_gateway_op_return_output(op);
                return;
        }
        g_free(op->last_state);
        op->last_state = g_strdup(found ? (state ? state : "no state") : "not installed");
        escaped = itk_gateway_escape(itk_gateway_module_label(op));
        path = g_strdup_printf(API "/modules/quarantined?limit=-1&search=%s", escaped);
        req.path = path;
        itk_gateway_op_request(op, &req, itk_gateway_module_quarantined_cb);
}

static void
itk_gateway_module_poll(ItkGatewayOp *op)
{
        g_autofree char *escaped = itk_gateway_escape(itk_gateway_module_label(op));
        g_autofree char *path = g_strdup_printf(API "/modules/healthy?limit=-1&search=%s", escaped);
        ItkGatewayRequest req = { .path = path, .action = "list modules" };

        itk_gateway_op_request(op, &req, itk_gateway_module_healthy_cb);
}

static void
itk_gateway_wait_for_module_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data)
{
        ItkGatewayOp *op = itk_gateway_op_new(ctx, params, cancellable, callback, user_data);
        g_autoptr(GError) error = NULL;
        g_autofree char *what = NULL;
        const char *id, *name = NULL;

        if (op == NULL)
                return;
        id = itk_gateway_param_string(params, "module_id", &error);
        if (error == NULL)
                name = itk_gateway_param_string(params, "module_name", &error);
        if (error == NULL && (id == NULL || *id == '\0') && (name == NULL || *name == '\0'))
                error = g_error_new_literal(ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                                            "parameter 'module_id' or 'module_name' is required");
        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        if (id != NULL && *id != '\0')
                op->module_id = g_strdup(id);
        else
                op->module_name = g_strdup(name);
        what = g_strdup_printf("module %s did not become ACTIVE", itk_gateway_module_label(op));
        if (!itk_gateway_op_start_budget(op, what, &error) ||
            !itk_gateway_op_start_polling(op, itk_gateway_module_poll, 0, &error))
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
}

/* --- gateway.uninstall_module -------------------------------------------------------- */

static void
itk_gateway_uninstalled_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = itk_gateway_op_finish(op, result, NULL, &error);

        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        json_object_set_string_member(op->output, "module_id", op->module_id);
        json_object_set_boolean_member(op->output, "uninstalled", TRUE);
        json_object_set_boolean_member(op->output, "restart_required", TRUE);
        itk_gateway_op_return_output(op);
}

static void
itk_gateway_uninstall_module_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data)
{
        ItkGatewayOp *op = itk_gateway_op_new(ctx, params, cancellable, callback, user_data);
        g_autoptr(GError) error = NULL;
        const char *const names[] = { "module_id", "module", NULL };
        g_autofree char *escaped = NULL;
        g_autofree char *path = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonGenerator) gen = json_generator_new();
        g_autoptr(JsonNode) root = NULL;
        g_autofree char *body = NULL;
        const char *id;
        ItkGatewayRequest req = { .method = "DELETE", .action = "uninstall modules" };

        if (op == NULL)
                return;
        id = itk_gateway_param_any(params, names, TRUE, &error);
        if (id == NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        op->module_id = g_strdup(id);
        /* Sources disagree on where the id goes: send it in both. */
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "uninstall");
        json_builder_begin_array(b);
        json_builder_add_string_value(b, id);
        json_builder_end_array(b);
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        json_generator_set_root(gen, root);
        body = json_generator_to_data(gen, NULL);
        escaped = itk_gateway_escape(id);
        path = g_strdup_printf(API "/modules/uninstall?moduleId=%s", escaped);
        req.path = path;
        req.json_body = body;
        itk_gateway_op_request(op, &req, itk_gateway_uninstalled_cb);
}

/* --- gateway.export_project and gateway.backup: downloads ----------------------------- */

static void
itk_gateway_download_listed_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;

        (void)source;
        if (!itk_step_context_add_artifact_finish(op->ctx, result, &error)) {
                if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
                        itk_gateway_op_return_error(op, g_steal_pointer(&error));
                        return;
                }
                /* Saved outside the run's folder (an absolute path) is allowed;
                 * it is just not offered for download. */
                itk_step_context_logf(op->ctx, ITK_LOG_NOTICE,
                                      "%s is not listed as an artifact: %s", op->file,
                                      error->message);
        }
        itk_gateway_op_return_output(op);
}

static void
itk_gateway_downloaded_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = itk_gateway_op_finish(op, result, NULL, &error);

        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        /* The client's {"path", "size"}. */
        itk_gateway_output_merge(op, NULL, node);
        itk_step_context_logf(op->ctx, ITK_LOG_INFO, "saved %s", op->file);
        itk_step_context_add_artifact_async(op->ctx, op->file, NULL, op->cancellable,
                                            itk_gateway_download_listed_cb, op);
}

static void
itk_gateway_export_project_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
        ItkGatewayOp *op = itk_gateway_op_new(ctx, params, cancellable, callback, user_data);
        g_autoptr(GError) error = NULL;
        g_autofree char *escaped = NULL;
        g_autofree char *path = NULL;
        g_autofree char *default_name = NULL;
        const char *name, *dest = NULL;
        ItkGatewayRequest req = {
                .action = "export projects",
                .flags = ITK_GATEWAY_REQUEST_EXPECT_ZIP,
                .timeout_ms = G_MAXUINT,
        };

        if (op == NULL)
                return;
        name = itk_gateway_param_any(params, project_names, TRUE, &error);
        if (name != NULL)
                dest = itk_gateway_param_string(params, "path", &error);
        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        if (dest == NULL || *dest == '\0') {
                default_name = g_strdup_printf("%s.zip", name);
                dest = default_name;
        }
        op->project = g_strdup(name);
        op->file = itk_gateway_resolve_path(ctx, dest, FALSE);
        json_object_set_string_member(op->output, "project", name);
        escaped = itk_gateway_escape(name);
        path = g_strdup_printf(API "/projects/export/%s", escaped);
        req.path = path;
        req.download_file = op->file;
        itk_gateway_op_request(op, &req, itk_gateway_downloaded_cb);
}

static void
itk_gateway_backup_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                       GAsyncReadyCallback callback, gpointer user_data)
{
        ItkGatewayOp *op = itk_gateway_op_new(ctx, params, cancellable, callback, user_data);
        g_autoptr(GError) error = NULL;
        g_autofree char *path = NULL;
        g_autofree char *default_name = NULL;
        const char *type = NULL, *dest = NULL;
        ItkGatewayRequest req = {
                .action = "download backups",
                .flags = ITK_GATEWAY_REQUEST_EXPECT_ZIP,
                .timeout_ms = G_MAXUINT, /* can take minutes; the step's timeout bounds it */
        };

        if (op == NULL)
                return;
        type = itk_gateway_param_string(params, "type", &error);
        if (error == NULL)
                dest = itk_gateway_param_string(params, "path", &error);
        if (error == NULL && type != NULL && g_strcmp0(type, "roaming") != 0 &&
            g_strcmp0(type, "all") != 0)
                error = g_error_new(ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                                    "parameter 'type' must be roaming or all, not '%s'", type);
        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        if (type == NULL)
                type = "all";
        if (dest == NULL || *dest == '\0') {
                g_autoptr(GDateTime) now = g_date_time_new_now_utc();
                default_name = g_date_time_format(now, "gateway-backup-%Y%m%d-%H%M%S.gwbk");
                dest = default_name;
        }
        op->file = itk_gateway_resolve_path(ctx, dest, FALSE);
        json_object_set_string_member(op->output, "type", type);
        path = g_strdup_printf(API "/backup?type=%s", type);
        req.path = path;
        req.download_file = op->file;
        itk_gateway_op_request(op, &req, itk_gateway_downloaded_cb);
}

/* --- gateway.import_project: validate the ZIP, then upload ----------------------------- */

static void
itk_gateway_imported_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = itk_gateway_op_finish(op, result, NULL, &error);

        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        json_object_set_string_member(op->output, "project", op->project);
        json_object_set_string_member(op->output, "file", op->file);
        json_object_set_boolean_member(op->output, "imported", TRUE);
        itk_gateway_op_return_output(op);
}

static void
itk_gateway_import_validated_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autofree char *escaped = NULL;
        g_autofree char *path = NULL;
        gboolean overwrite = FALSE;
        guint entries = 0;
        ItkGatewayRequest req = {
                .method = "POST",
                .action = "import projects",
                .upload_content_type = "application/zip",
                .timeout_ms = G_MAXUINT,
        };

        if (!itk_gateway_zip_validate_finish(result, &entries, &error)) {
                /* A truncated archive would wipe the project: never send it. */
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        if (entries == 0) {
                itk_gateway_op_return_error(
                        op,
                        g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                    "%s is an empty ZIP archive, not a project export", op->file));
                return;
        }
        if (!itk_gateway_param_bool(op->params, "overwrite", FALSE, &overwrite, &error)) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        escaped = itk_gateway_escape(op->project);
        path = g_strdup_printf(API "/projects/import/%s?overwrite=%s", escaped,
                               overwrite ? "true" : "false");
        req.path = path;
        req.upload_file = op->file;
        itk_gateway_op_request(op, &req, itk_gateway_imported_cb);
}

static void
itk_gateway_import_project_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
        ItkGatewayOp *op = itk_gateway_op_new(ctx, params, cancellable, callback, user_data);
        g_autoptr(GError) error = NULL;
        const char *file, *name = NULL;

        if (op == NULL)
                return;
        file = itk_gateway_param_any(params, file_names, TRUE, &error);
        if (file != NULL)
                name = itk_gateway_param_any(params, project_names, FALSE, &error);
        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        op->file = itk_gateway_resolve_path(ctx, file, TRUE);
        if (name != NULL) {
                op->project = g_strdup(name);
        } else {
                /* "Foo.zip" imports as Foo. */
                g_autofree char *base = g_path_get_basename(op->file);
                char *dot = strrchr(base, '.');
                if (dot != NULL && dot != base)
                        *dot = '\0';
                op->project = g_steal_pointer(&base);
        }
        itk_gateway_zip_validate_async(op->file, op->cancellable, itk_gateway_import_validated_cb,
                                       op);
}

/* --- gateway.restart and gateway.restore ------------------------------------------------ */

static void
itk_gateway_restart_requested_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = itk_gateway_op_finish(op, result, NULL, &error);

        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        json_object_set_boolean_member(op->output, "restarted", TRUE);
        itk_step_context_log(op->ctx, ITK_LOG_INFO, "gateway restart requested");
        if (!op->want_wait) {
                itk_gateway_op_return_output(op);
                return;
        }
        itk_gateway_op_wait_ready(op, ITK_GW_DEFAULT_RESTART_FLOOR_MS,
                                  itk_gateway_op_return_output_cb);
}

static void
itk_gateway_restart_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                        GAsyncReadyCallback callback, gpointer user_data)
{
        ItkGatewayOp *op = itk_gateway_op_new(ctx, params, cancellable, callback, user_data);
        g_autoptr(GError) error = NULL;
        ItkGatewayRequest req = {
                .method = "POST",
                .path = API "/restart-tasks/restart?confirm=true",
                .action = "restart the gateway",
        };

        if (op == NULL)
                return;
        if (!itk_gateway_param_bool(params, "wait_for_ready", TRUE, &op->want_wait, &error)) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        itk_gateway_op_request(op, &req, itk_gateway_restart_requested_cb);
}

static void
itk_gateway_restored_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = itk_gateway_op_finish(op, result, NULL, &error);

        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        json_object_set_string_member(op->output, "file", op->file);
        json_object_set_boolean_member(op->output, "restored", TRUE);
        itk_step_context_log(op->ctx, ITK_LOG_INFO,
                             "backup restored; waiting for the gateway to restart");
        if (!op->want_wait) {
                itk_gateway_op_return_output(op);
                return;
        }
        itk_gateway_op_wait_ready(op, ITK_GW_DEFAULT_RESTART_FLOOR_MS,
                                  itk_gateway_op_return_output_cb);
}

static void
itk_gateway_restore_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                        GAsyncReadyCallback callback, gpointer user_data)
{
        ItkGatewayOp *op = itk_gateway_op_new(ctx, params, cancellable, callback, user_data);
        g_autoptr(GError) error = NULL;
        g_autoptr(GString) path = g_string_new(API "/backup");
        gboolean restore_disabled = FALSE;
        const char *file, *new_name = NULL;
        ItkGatewayRequest req = {
                .method = "POST",
                .action = "restore backups",
                .upload_content_type = "application/octet-stream",
                .timeout_ms = G_MAXUINT, /* blocks while restoring */
        };

        if (op == NULL)
                return;
        file = itk_gateway_param_any(params, file_names, TRUE, &error);
        if (file != NULL)
                new_name = itk_gateway_param_string(params, "new_name", &error);
        if (error == NULL)
                itk_gateway_param_bool(params, "restore_disabled", FALSE, &restore_disabled,
                                       &error);
        if (error == NULL)
                itk_gateway_param_bool(params, "wait_for_ready", TRUE, &op->want_wait, &error);
        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        op->file = itk_gateway_resolve_path(ctx, file, TRUE);
        g_string_append_printf(path, "?restoreDisabled=%s", restore_disabled ? "true" : "false");
        if (new_name != NULL && *new_name != '\0') {
                g_autofree char *escaped = itk_gateway_escape(new_name);
                g_string_append_printf(path, "&renameEnabled=true&newName=%s", escaped);
        }
        req.path = path->str;
        req.upload_file = op->file;
        itk_gateway_op_request(op, &req, itk_gateway_restored_cb);
}

/* --- gateway.login / gateway.logout ------------------------------------------------------
 * The old tool logged in with a username and password through the web UI. 8.3
 * gateways take an API token instead, so these are kept for old playbooks:
 * with a token they check it with a cheap authenticated GET (gateway-info)
 * and succeed; there is no session to open or close. */

#define ITK_GW_LOGIN_NOTE                                                                          \
        "API token authentication: no session is opened; every gateway step sends the token"

static void
itk_gateway_login_checked_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkGatewayOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = itk_gateway_op_finish(op, result, NULL, &error);

        if (error != NULL) {
                itk_gateway_op_return_error(op, g_steal_pointer(&error));
                return;
        }
        json_object_set_boolean_member(op->output, "authenticated", TRUE);
        json_object_set_string_member(op->output, "note", ITK_GW_LOGIN_NOTE);
        itk_gateway_op_return_output(op);
}

static void
itk_gateway_login_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                      GAsyncReadyCallback callback, gpointer user_data)
{
        ItkGatewayOp *op = itk_gateway_op_new(ctx, params, cancellable, callback, user_data);
        ItkGatewayRequest req = { .path = API "/gateway-info", .action = "read the gateway info" };

        if (op == NULL)
                return;
        if (!itk_gateway_client_has_token(op->client)) {
                itk_gateway_op_return_error(
                        op, g_error_new_literal(ITK_ERROR, ITK_ERROR_FAILED,
                                                "no gateway API token: Ignition 8.3 gateways take "
                                                "an API token (a credential or the gateway_token "
                                                "parameter), not a username and password"));
                return;
        }
        itk_gateway_op_request(op, &req, itk_gateway_login_checked_cb);
}

static void
itk_gateway_logout_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                       GAsyncReadyCallback callback, gpointer user_data)
{
        ItkGatewayOp *op = itk_gateway_op_new(ctx, params, cancellable, callback, user_data);
        ItkGatewayRequest req = { .path = API "/gateway-info", .action = "read the gateway info" };

        if (op == NULL)
                return;
        if (!itk_gateway_client_has_token(op->client)) {
                /* Nothing to close. */
                json_object_set_boolean_member(op->output, "authenticated", FALSE);
                json_object_set_string_member(op->output, "note", ITK_GW_LOGIN_NOTE);
                itk_gateway_op_return_output(op);
                return;
        }
        itk_gateway_op_request(op, &req, itk_gateway_login_checked_cb);
}

/* --- module entry point ------------------------------------------------------------------- */

/* Called once when the daemon loads this module (itk_step_registry_resolve())
 * or directly by tests that link it: installs the run functions of the
 * gateway.* types registered by steps/itk-step-gateway-types.c. */
G_MODULE_EXPORT void
itk_step_gateway_module_init(void)
{
        static const struct {
                const char *type;
                ItkStepRunFunc run;
        } runs[] = {
                { "gateway.login", itk_gateway_login_run },
                { "gateway.logout", itk_gateway_logout_run },
                { "gateway.ping", itk_gateway_ping_run },
                { "gateway.get_info", itk_gateway_get_info_run },
                { "gateway.get_health", itk_gateway_get_health_run },
                { "gateway.list_modules", itk_gateway_list_modules_run },
                { "gateway.upload_module", itk_gateway_upload_module_run },
                { "gateway.wait_for_module_installation", itk_gateway_wait_for_module_run },
                { "gateway.uninstall_module", itk_gateway_uninstall_module_run },
                { "gateway.list_projects", itk_gateway_list_projects_run },
                { "gateway.get_project", itk_gateway_get_project_run },
                { "gateway.export_project", itk_gateway_export_project_run },
                { "gateway.import_project", itk_gateway_import_project_run },
                { "gateway.scan_projects", itk_gateway_scan_projects_run },
                { "gateway.restart", itk_gateway_restart_run },
                { "gateway.wait_for_ready", itk_gateway_wait_for_ready_run },
                { "gateway.backup", itk_gateway_backup_run },
                { "gateway.restore", itk_gateway_restore_run },
        };

        itk_step_registry_ensure();
        for (guint i = 0; i < G_N_ELEMENTS(runs); i++)
                itk_step_registry_set_run(runs[i].type, runs[i].run);
}
