/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The browser.* and perspective.* steps (PLAYBOOKS.md "browser"): one
 * provider whose per-execution session is an ItkBrowserPage (its own
 * browser context), shared with nested playbooks and closed with the run.
 *
 * Every step is a chain of CDP calls made with the op's own cancellable:
 * Cancel, Skip and SkipBack (the step's cancellable) and the step's
 * timeout (an ItkTimer on the execution's pausable group) abandon the call
 * in flight at once. Element waits run in the page (the agent's waitFor(),
 * on DOM mutations and animation frames); the daemon owns the clock. A wait
 * satisfied while the run is paused completes only after Resume (a 0 ms
 * ItkTimer on the same group holds it). */
#include <string.h>

#include "itk-browser.h"
#include "itk-error.h"
#include "itk-step.h"
#include "itk-step-browser-agent.h"
#include "itk-step-browser-live.h"

#define SESSION_NAME "browser"

/* Retries of a click whose target is covered: as Playwright, short first. */
static const guint retry_backoff_ms[] = { 20, 50, 100, 100, 500 };

typedef struct _BrowserOp BrowserOp;
typedef void (*OpStepFunc)(BrowserOp *op);
typedef void (*AgentDoneFunc)(BrowserOp *op, JsonObject *remote, GError *error);

struct _BrowserOp {
        JsonObject *artifact_output; /* a screenshot's output while it is listed */
        GTask *task;
        ItkStepContext *ctx;
        JsonObject *params;
        const char *type;
        GCancellable *cancellable; /* the step's */
        gulong cancel_id;
        GCancellable *calls; /* every CDP call of this op */
        gboolean finished;

        ItkBrowserPage *page; /* borrowed from the session */
        ItkCdp *cdp;
        const char *session_id;
        gint64 world;

        ItkTimer *deadline;
        ItkTimer *gate;
        ItkTimer *backoff;
        guint attempts;
        guint64 timeout_ms;
        char *waiting_for; /* "'#x' to be visible", for the timeout message */
        JsonNode *output;

        /* Step data. */
        char *selector;
        char *state;
        gboolean force;
        char *value; /* fill: wiped when done */
        gboolean secret;
        char *element; /* objectId of the element acted on */
        double x, y;
        /* navigate */
        guint lifecycle_handler;
        char *loader_id;
        char *wait_event;
        GPtrArray *seen_events; /* "loaderId\nname" seen before the reply */
        gboolean navigated;
        /* agent call in flight */
        char *agent_fn;
        JsonArray *agent_args;
        gboolean agent_by_value;
        AgentDoneFunc agent_done;
        guint agent_retries;
        OpStepFunc next;  /* after an element wait */
        char *wait_state; /* of that wait */
};

static void
browser_op_free(BrowserOp *op)
{
        g_clear_pointer(&op->deadline, itk_timer_free);
        g_clear_pointer(&op->gate, itk_timer_free);
        g_clear_pointer(&op->backoff, itk_timer_free);
        if (op->lifecycle_handler != 0 && op->cdp != NULL)
                itk_cdp_remove_handler(op->cdp, op->lifecycle_handler);
        g_clear_pointer(&op->cdp, itk_cdp_unref);
        g_clear_object(&op->calls);
        g_clear_object(&op->cancellable);
        g_clear_pointer(&op->params, json_object_unref);
        g_clear_pointer(&op->ctx, itk_step_context_unref);
        g_clear_pointer(&op->output, json_node_unref);
        g_clear_pointer(&op->artifact_output, json_object_unref);
        g_free(op->waiting_for);
        g_free(op->selector);
        g_free(op->state);
        if (op->value != NULL)
                memset(op->value, 0, strlen(op->value));
        g_free(op->value);
        g_free(op->element);
        g_free(op->loader_id);
        g_free(op->wait_event);
        g_clear_pointer(&op->seen_events, g_ptr_array_unref);
        g_free(op->agent_fn);
        g_free(op->wait_state);
        g_clear_pointer(&op->agent_args, json_array_unref);
        g_clear_object(&op->task);
}

static BrowserOp *
browser_op_ref(BrowserOp *op)
{
        return g_rc_box_acquire(op);
}

static void
browser_op_unref(BrowserOp *op)
{
        g_rc_box_release_full(op, (GDestroyNotify)browser_op_free);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(BrowserOp, browser_op_unref)

/* --- parameters ----------------------------------------------------------------- */

static const char *
param_string(BrowserOp *op, const char *name, const char *fallback)
{
        JsonNode *node = json_object_get_member(op->params, name);

        if (node == NULL || !JSON_NODE_HOLDS_VALUE(node))
                return fallback;
        if (json_node_get_value_type(node) == G_TYPE_STRING)
                return json_node_get_string(node);
        return fallback;
}

/* Numbers and numeric text; @fallback when absent or null. FALSE when unusable. */
static gboolean
param_uint(BrowserOp *op, const char *name, guint64 fallback, guint64 *out, GError **error)
{
        JsonNode *node = json_object_get_member(op->params, name);
        double value;

        *out = fallback;
        if (node == NULL || JSON_NODE_HOLDS_NULL(node))
                return TRUE;
        if (JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING) {
                char *end = NULL;
                value = g_ascii_strtod(json_node_get_string(node), &end);
                if (end == json_node_get_string(node) || *end != '\0')
                        value = -1;
        } else if (JSON_NODE_HOLDS_VALUE(node) &&
                   (json_node_get_value_type(node) == G_TYPE_INT64 ||
                    json_node_get_value_type(node) == G_TYPE_DOUBLE)) {
                value = json_node_get_double(node);
        } else {
                value = -1;
        }
        if (!(value >= 0 && value <= 86400000.0)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                            "parameter '%s' must be a number of milliseconds", name);
                return FALSE;
        }
        *out = (guint64)value;
        return TRUE;
}

static gboolean
param_bool(BrowserOp *op, const char *name, gboolean fallback)
{
        JsonNode *node = json_object_get_member(op->params, name);

        if (node == NULL || !JSON_NODE_HOLDS_VALUE(node))
                return fallback;
        if (json_node_get_value_type(node) == G_TYPE_BOOLEAN)
                return json_node_get_boolean(node);
        if (json_node_get_value_type(node) == G_TYPE_STRING)
                return g_ascii_strcasecmp(json_node_get_string(node), "true") == 0;
        return fallback;
}

/* --- completing ---------------------------------------------------------------------- */

static void
set_str(char **field, const char *value)
{
        char *copy = g_strdup(value);

        g_free(*field);
        *field = copy;
}

static void
browser_op_disconnect(BrowserOp *op)
{
        if (op->cancel_id != 0)
                g_cancellable_disconnect(op->cancellable, op->cancel_id);
        op->cancel_id = 0;
        g_clear_pointer(&op->deadline, itk_timer_free);
        g_clear_pointer(&op->backoff, itk_timer_free);
        g_cancellable_cancel(op->calls);
}

static void
browser_op_fail(BrowserOp *op, GError *error)
{
        if (op->finished) {
                g_error_free(error);
                return;
        }
        op->finished = TRUE;
        browser_op_ref(op);
        browser_op_disconnect(op);
        g_task_return_error(op->task, error);
        browser_op_unref(op); /* the running reference */
        browser_op_unref(op);
}

static void browser_op_failf(BrowserOp *op, const char *format, ...) G_GNUC_PRINTF(2, 3);

static void
browser_op_failf(BrowserOp *op, const char *format, ...)
{
        va_list args;
        g_autofree char *message = NULL;

        va_start(args, format);
        message = g_strdup_vprintf(format, args);
        va_end(args);
        browser_op_fail(op, g_error_new_literal(ITK_ERROR, ITK_ERROR_FAILED, message));
}

static void
browser_op_gate_cb(gpointer user_data)
{
        BrowserOp *op = user_data;

        g_clear_pointer(&op->gate, itk_timer_free);
        if (op->finished) {
                browser_op_unref(op); /* the gate's */
                return;
        }
        op->finished = TRUE;
        browser_op_disconnect(op);
        g_task_return_pointer(op->task, g_steal_pointer(&op->output),
                              (GDestroyNotify)json_node_unref);
        browser_op_unref(op); /* the running reference */
        browser_op_unref(op); /* the gate's */
}

/* Success: through a 0 ms timer of the run's group, so that a wait that
 * ends while the run is paused completes after Resume. */
static void
browser_op_succeed(BrowserOp *op, JsonObject *output)
{
        ItkTimerGroup *timers = itk_step_context_get_timer_group(op->ctx);

        if (op->finished) {
                json_object_unref(output);
                return;
        }
        op->output = json_node_init_object(json_node_alloc(), output);
        json_object_unref(output);
        g_clear_pointer(&op->deadline, itk_timer_free);
        if (timers != NULL && itk_timer_group_is_paused(timers)) {
                op->gate = itk_timer_new(timers, 0, browser_op_gate_cb, browser_op_ref(op));
                return;
        }
        browser_op_ref(op);
        browser_op_gate_cb(op);
}

/* Best effort: resolve the agent's pending waits so the page stops observing. */
static void
browser_op_abort_page_waits(BrowserOp *op)
{
        JsonObject *params;

        if (op->cdp == NULL || op->world == 0 || itk_cdp_is_closed(op->cdp))
                return;
        params = json_object_new();
        json_object_set_string_member(params, "expression",
                                      "globalThis.__itkAgent && __itkAgent.abortWaits()");
        json_object_set_int_member(params, "contextId", op->world);
        itk_cdp_send(op->cdp, op->session_id, "Runtime.evaluate", params);
}

static gboolean
browser_op_cancelled_idle_cb(gpointer user_data)
{
        BrowserOp *op = user_data;

        if (!op->finished) {
                op->finished = TRUE;
                browser_op_disconnect(op);
                g_task_return_new_error(op->task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
                browser_op_unref(op); /* the running reference; the idle holds one more */
        }
        return G_SOURCE_REMOVE;
}

static void
browser_op_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
        BrowserOp *op = user_data;

        (void)cancellable;
        /* Inside g_cancellable_cancel(): abandon the calls now (their late
         * replies are dropped), return from a fresh iteration. */
        g_cancellable_cancel(op->calls);
        if (op->gate != NULL) {
                g_clear_pointer(&op->gate, itk_timer_free);
                browser_op_unref(op); /* the gate's; the running one remains */
        }
        browser_op_abort_page_waits(op);
        g_idle_add_full(G_PRIORITY_HIGH, browser_op_cancelled_idle_cb, browser_op_ref(op),
                        (GDestroyNotify)browser_op_unref);
}

static void
browser_op_deadline_cb(gpointer user_data)
{
        BrowserOp *op = user_data;

        g_clear_pointer(&op->deadline, itk_timer_free);
        browser_op_abort_page_waits(op);
        browser_op_failf(op, "timed out after %" G_GUINT64_FORMAT " ms%s%s", op->timeout_ms,
                         op->waiting_for != NULL ? " waiting for " : "",
                         op->waiting_for != NULL ? op->waiting_for : "");
}

static void
browser_op_start_deadline(BrowserOp *op, guint64 timeout_ms)
{
        ItkTimerGroup *timers = itk_step_context_get_timer_group(op->ctx);

        op->timeout_ms = timeout_ms;
        if (timers != NULL)
                op->deadline = itk_timer_new(timers, timeout_ms, browser_op_deadline_cb, op);
}

/* An error of a CDP call: the page's own reason when its browser died. */
static void
browser_op_fail_call(BrowserOp *op, const char *what, GError *error)
{
        g_autoptr(GError) dead = NULL;

        if (op->finished)
                return;
        if (!itk_browser_page_check(op->page, &dead)) {
                browser_op_fail(op, g_steal_pointer(&dead));
                return;
        }
        browser_op_failf(op, "%s: %s", what, error->message);
}

/* --- CDP calls ------------------------------------------------------------------ */

typedef void (*CallDoneFunc)(BrowserOp *op, JsonObject *reply, GError *error);

typedef struct {
        BrowserOp *op;
        CallDoneFunc done;
} Call;

static void
browser_call_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Call *call = user_data;
        g_autoptr(BrowserOp) op = call->op;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) reply = itk_cdp_call_finish(NULL, result, &error);
        CallDoneFunc done = call->done;

        (void)source;
        g_free(call);
        if (op->finished)
                return;
        done(op, reply, error);
}

static void
browser_call(BrowserOp *op, const char *method, JsonObject *params, CallDoneFunc done)
{
        Call *call = g_new0(Call, 1);

        call->op = browser_op_ref(op);
        call->done = done;
        itk_cdp_call_async(op->cdp, op->session_id, method, params, op->calls, browser_call_cb,
                           call);
}

/* --- the agent ------------------------------------------------------------------ */

static void agent_call_send(BrowserOp *op);
static void browser_wait_for(BrowserOp *op, const char *state, OpStepFunc next);

static void
agent_world_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(BrowserOp) op = user_data;
        g_autoptr(GError) error = NULL;
        gint64 world = itk_browser_page_get_world_finish(op->page, result, &error);

        (void)source;
        if (op->finished)
                return;
        if (world == 0) {
                op->agent_done(op, NULL, error);
                return;
        }
        op->world = world;
        agent_call_send(op);
}

static void
agent_call_with_world(BrowserOp *op)
{
        if (op->world != 0) {
                agent_call_send(op);
                return;
        }
        itk_browser_page_get_world_async(op->page, op->calls, agent_world_cb, browser_op_ref(op));
}

static void
agent_injected_cb(BrowserOp *op, JsonObject *reply, GError *error)
{
        if (reply == NULL) {
                op->agent_done(op, NULL, error);
                return;
        }
        agent_call_send(op);
}

static const char *
exception_text(JsonObject *reply)
{
        JsonObject *details = itk_json_object_member(reply, "exceptionDetails");
        JsonObject *exception;

        if (details == NULL)
                return NULL;
        exception = json_object_has_member(details, "exception")
                            ? itk_json_object_member(details, "exception")
                            : NULL;
        if (exception != NULL && json_object_has_member(exception, "description"))
                return json_object_get_string_member(exception, "description");
        return json_object_get_string_member_with_default(details, "text", "exception");
}

static void
agent_reply_cb(BrowserOp *op, JsonObject *reply, GError *error)
{
        const char *exception;

        if (reply == NULL) {
                /* The document went away under us (a navigation): wait for
                 * the next one's world and call again. */
                if (error != NULL && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) &&
                    (strstr(error->message, "context") != NULL ||
                     strstr(error->message, "Cannot find") != NULL ||
                     strstr(error->message, "navigated") != NULL) &&
                    op->agent_retries++ < 20 && itk_browser_page_check(op->page, NULL)) {
                        itk_browser_page_forget_world(op->page, op->world);
                        op->world = 0;
                        /* An element of the old document means nothing in the
                         * new one: find it again from the start. */
                        if (op->element != NULL && op->next != NULL && op->wait_state != NULL &&
                            g_strcmp0(op->agent_fn, "waitFor") != 0) {
                                g_autofree char *state = g_strdup(op->wait_state);
                                guint retries = op->agent_retries;
                                browser_wait_for(op, state, op->next);
                                op->agent_retries = retries;
                                return;
                        }
                        agent_call_with_world(op);
                        return;
                }
                op->agent_done(op, NULL, error);
                return;
        }
        exception = exception_text(reply);
        if (exception != NULL && strstr(exception, "ITK_NO_AGENT") != NULL &&
            op->agent_retries++ < 3) {
                JsonObject *params = json_object_new();
                json_object_set_string_member(params, "expression",
                                              itk_step_browser_agent_source());
                json_object_set_int_member(params, "contextId", op->world);
                browser_call(op, "Runtime.evaluate", params, agent_injected_cb);
                return;
        }
        if (exception != NULL &&
            (strstr(exception, "context") != NULL && strstr(exception, "destroyed") != NULL) &&
            op->agent_retries++ < 20) {
                op->world = 0;
                agent_call_with_world(op);
                return;
        }
        if (exception != NULL) {
                g_autoptr(GError) page_error = NULL;
                /* First line only: "Error: invalid selector: ..." without the stack. */
                g_autofree char *line = g_strndup(exception, strcspn(exception, "\n"));
                const char *text = g_str_has_prefix(line, "Error: ") ? line + 7 : line;
                page_error = g_error_new(ITK_ERROR, ITK_ERROR_FAILED, "%s", text);
                op->agent_done(op, NULL, page_error);
                return;
        }
        op->agent_done(op, itk_json_object_member(reply, "result"), NULL);
}

static void
agent_call_send(BrowserOp *op)
{
        JsonObject *params = json_object_new();
        JsonArray *args = json_array_new();
        JsonObject *arg = json_object_new();

        json_object_set_string_member(arg, "value", op->agent_fn);
        json_array_add_object_element(args, arg);
        for (guint i = 0; op->agent_args != NULL && i < json_array_get_length(op->agent_args); i++)
                json_array_add_element(args,
                                       json_node_copy(json_array_get_element(op->agent_args, i)));
        json_object_set_string_member(
                params, "functionDeclaration",
                "function (name, ...args) { const a = globalThis.__itkAgent; "
                "if (!a) throw new Error('ITK_NO_AGENT'); return a[name](...args); }");
        json_object_set_int_member(params, "executionContextId", op->world);
        json_object_set_array_member(params, "arguments", args);
        json_object_set_boolean_member(params, "returnByValue", op->agent_by_value);
        json_object_set_boolean_member(params, "awaitPromise", TRUE);
        browser_call(op, "Runtime.callFunctionOn", params, agent_reply_cb);
}

static JsonNode *
take_object_node(JsonObject *object)
{
        JsonNode *node = json_node_new(JSON_NODE_OBJECT);

        json_node_take_object(node, object);
        return node;
}

static JsonNode *
arg_value_node(JsonNode *value)
{
        JsonObject *arg = json_object_new();

        json_object_set_member(arg, "value", value);
        return take_object_node(arg);
}

static JsonNode *
arg_string(const char *text)
{
        return arg_value_node(json_node_init_string(json_node_alloc(), text));
}

static JsonNode *
arg_element(const char *object_id)
{
        JsonObject *arg = json_object_new();

        json_object_set_string_member(arg, "objectId", object_id);
        return take_object_node(arg);
}

/* Calls __itkAgent[@fn](...@args) (args: CallArgument nodes, transfer full). */
static void
agent_call(BrowserOp *op, const char *fn, gboolean by_value, AgentDoneFunc done, ...)
{
        va_list ap;
        JsonNode *arg;

        g_free(op->agent_fn);
        op->agent_fn = g_strdup(fn);
        g_clear_pointer(&op->agent_args, json_array_unref);
        op->agent_args = json_array_new();
        va_start(ap, done);
        while ((arg = va_arg(ap, JsonNode *)) != NULL)
                json_array_add_element(op->agent_args, arg);
        va_end(ap);
        op->agent_by_value = by_value;
        op->agent_done = done;
        op->agent_retries = 0;
        agent_call_with_world(op);
}

static JsonNode *
remote_value(JsonObject *remote)
{
        return remote != NULL ? json_object_get_member(remote, "value") : NULL;
}

/* --- waiting for an element -------------------------------------------------------- */

static void
wait_done_cb(BrowserOp *op, JsonObject *remote, GError *error)
{
        g_clear_pointer(&op->element, g_free);
        if (remote == NULL) {
                browser_op_fail_call(op, "the page failed", error);
                return;
        }
        if (json_object_has_member(remote, "objectId"))
                op->element = g_strdup(json_object_get_string_member(remote, "objectId"));
        op->next(op);
}

/* Waits in the page for @selector in @state (AGENT-API.md waitFor), then
 * runs @next with op->element set (NULL for detached/hidden). */
static void
browser_wait_for(BrowserOp *op, const char *state, OpStepFunc next)
{
        JsonObject *options = json_object_new();

        json_object_set_string_member(options, "state", state);
        json_object_set_boolean_member(options, "force", op->force);
        g_free(op->waiting_for);
        op->waiting_for =
                g_strdup_printf("'%s' to be %s", op->selector, op->force ? "attached" : state);
        op->next = next;
        set_str(&op->wait_state, state);
        agent_call(op, "waitFor", FALSE, wait_done_cb, arg_string(op->selector),
                   arg_value_node(take_object_node(options)), NULL);
}

/* --- navigate ------------------------------------------------------------------- */

static void
navigate_done(BrowserOp *op)
{
        JsonObject *output = json_object_new();

        json_object_set_string_member(output, "url", param_string(op, "url", ""));
        json_object_set_string_member(output, "wait_until", op->wait_event);
        browser_op_succeed(op, output);
}

static void
navigate_event_cb(ItkCdp *cdp, const char *session_id, const char *method, JsonObject *params,
                  gpointer user_data)
{
        BrowserOp *op = user_data;
        const char *loader = json_object_get_string_member_with_default(params, "loaderId", "");
        const char *name = json_object_get_string_member_with_default(params, "name", "");

        (void)cdp;
        (void)session_id;
        if (op->finished || g_strcmp0(method, "Page.lifecycleEvent") != 0 ||
            g_strcmp0(json_object_get_string_member_with_default(params, "frameId", ""),
                      itk_browser_page_get_frame_id(op->page)) != 0 ||
            g_strcmp0(name, op->wait_event) != 0)
                return;
        if (op->loader_id == NULL) {
                /* Before Page.navigate's reply: remember it. */
                g_ptr_array_add(op->seen_events, g_strdup(loader));
                return;
        }
        if (g_strcmp0(loader, op->loader_id) == 0)
                navigate_done(op);
}

static void
navigate_reply_cb(BrowserOp *op, JsonObject *reply, GError *error)
{
        const char *error_text;

        if (reply == NULL) {
                browser_op_fail_call(op, "navigation failed", error);
                return;
        }
        error_text = json_object_get_string_member_with_default(reply, "errorText", NULL);
        if (error_text != NULL && *error_text != '\0') {
                browser_op_failf(op, "navigation to %s failed: %s", param_string(op, "url", ""),
                                 error_text);
                return;
        }
        op->loader_id = g_strdup(json_object_get_string_member_with_default(reply, "loaderId", ""));
        /* No loader: a same-document navigation, done already. */
        if (*op->loader_id == '\0') {
                navigate_done(op);
                return;
        }
        for (guint i = 0; i < op->seen_events->len; i++)
                if (g_strcmp0(g_ptr_array_index(op->seen_events, i), op->loader_id) == 0) {
                        navigate_done(op);
                        return;
                }
}

static void
navigate_start(BrowserOp *op)
{
        const char *url = param_string(op, "url", NULL);
        const char *until = param_string(op, "wait_until", param_string(op, "wait_for", "load"));
        JsonObject *params;
        guint64 timeout;
        g_autoptr(GError) error = NULL;

        if (url == NULL || *url == '\0') {
                browser_op_failf(op, "parameter 'url' is required");
                return;
        }
        if (g_ascii_strcasecmp(until, "domcontentloaded") == 0)
                op->wait_event = g_strdup("DOMContentLoaded");
        else if (g_ascii_strcasecmp(until, "networkidle") == 0)
                op->wait_event = g_strdup("networkIdle");
        else if (g_ascii_strcasecmp(until, "load") == 0 || g_ascii_strcasecmp(until, "commit") == 0)
                op->wait_event = g_strdup("load");
        else {
                browser_op_failf(op, "parameter 'wait_until' must be load, domcontentloaded or "
                                     "networkidle");
                return;
        }
        if (!param_uint(op, "timeout", 30000, &timeout, &error)) {
                browser_op_fail(op, g_steal_pointer(&error));
                return;
        }
        /* The old tool's playbooks give navigate's timeout in seconds
         * ("timeout: 30"); no page loads in under a second, so a value
         * below 1000 is seconds, not milliseconds. */
        if (timeout > 0 && timeout < 1000)
                timeout *= 1000;
        g_free(op->waiting_for);
        op->waiting_for = g_strdup_printf("%s to load", url);
        browser_op_start_deadline(op, timeout);
        op->seen_events = g_ptr_array_new_with_free_func(g_free);
        op->lifecycle_handler = itk_cdp_add_handler(op->cdp, op->session_id, navigate_event_cb, op);
        params = json_object_new();
        json_object_set_string_member(params, "url", url);
        browser_call(op, "Page.navigate", params, navigate_reply_cb);
}

/* --- element steps -------------------------------------------------------------- */

static void
output_selector(JsonObject *output, BrowserOp *op)
{
        json_object_set_string_member(output, "selector", op->selector);
}

/* wait / verify / verify_state */
static void
wait_found(BrowserOp *op)
{
        JsonObject *output = json_object_new();

        output_selector(output, op);
        json_object_set_string_member(output, "state", op->state);
        /* hidden/detached succeed when nothing matches. */
        json_object_set_boolean_member(output, "found", op->element != NULL);
        if (g_str_has_prefix(op->type, "browser.verify"))
                json_object_set_boolean_member(output, "verified", TRUE);
        browser_op_succeed(op, output);
}

static void
wait_start(BrowserOp *op)
{
        browser_wait_for(op, op->state, wait_found);
}

/* click */
static void click_start(BrowserOp *op);

static void
click_retry_cb(gpointer user_data)
{
        BrowserOp *op = user_data;

        g_clear_pointer(&op->backoff, itk_timer_free);
        click_start(op);
}

static void
click_released_cb(BrowserOp *op, JsonObject *reply, GError *error)
{
        JsonObject *output;

        if (reply == NULL) {
                browser_op_fail_call(op, "click failed", error);
                return;
        }
        output = json_object_new();
        output_selector(output, op);
        json_object_set_boolean_member(output, "clicked", TRUE);
        browser_op_succeed(op, output);
}

static JsonObject *
mouse_event(const char *type, double x, double y)
{
        JsonObject *params = json_object_new();

        json_object_set_string_member(params, "type", type);
        json_object_set_double_member(params, "x", x);
        json_object_set_double_member(params, "y", y);
        if (g_strcmp0(type, "mouseMoved") != 0) {
                json_object_set_string_member(params, "button", "left");
                json_object_set_int_member(params, "clickCount", 1);
        }
        return params;
}

static void
click_pressed_cb(BrowserOp *op, JsonObject *reply, GError *error)
{
        if (reply == NULL) {
                browser_op_fail_call(op, "click failed", error);
                return;
        }
        browser_call(op, "Input.dispatchMouseEvent", mouse_event("mouseReleased", op->x, op->y),
                     click_released_cb);
}

static void
click_press(BrowserOp *op)
{
        /* Sent together: Chromium handles them in order. */
        itk_cdp_send(op->cdp, op->session_id, "Input.dispatchMouseEvent",
                     mouse_event("mouseMoved", op->x, op->y));
        browser_call(op, "Input.dispatchMouseEvent", mouse_event("mousePressed", op->x, op->y),
                     click_pressed_cb);
}

static void
click_retry_later(BrowserOp *op, const char *reason)
{
        ItkTimerGroup *timers = itk_step_context_get_timer_group(op->ctx);
        guint delay = retry_backoff_ms[MIN(op->attempts, G_N_ELEMENTS(retry_backoff_ms) - 1)];

        op->attempts++;
        g_free(op->waiting_for);
        op->waiting_for = g_strdup_printf("'%s' to receive the click (%s)", op->selector, reason);
        op->backoff = itk_timer_new(timers, delay, click_retry_cb, op);
}

static void
click_hit_cb(BrowserOp *op, JsonObject *remote, GError *error)
{
        JsonNode *value = remote_value(remote);
        JsonObject *hit =
                value != NULL && JSON_NODE_HOLDS_OBJECT(value) ? json_node_get_object(value) : NULL;

        if (remote == NULL) {
                browser_op_fail_call(op, "click failed", error);
                return;
        }
        if (hit != NULL && json_object_get_boolean_member_with_default(hit, "ok", FALSE)) {
                click_press(op);
                return;
        }
        click_retry_later(op, hit != NULL ? json_object_get_string_member_with_default(
                                                    hit, "reason", "covered")
                                          : "covered");
}

static void
click_point_cb(BrowserOp *op, JsonObject *remote, GError *error)
{
        JsonNode *value = remote_value(remote);
        JsonObject *point;

        if (remote == NULL) {
                browser_op_fail_call(op, "click failed", error);
                return;
        }
        if (value == NULL || !JSON_NODE_HOLDS_OBJECT(value)) {
                click_retry_later(op, "no box to click");
                return;
        }
        point = json_node_get_object(value);
        op->x = json_object_get_double_member_with_default(point, "x", 0);
        op->y = json_object_get_double_member_with_default(point, "y", 0);
        if (op->force) {
                click_press(op);
                return;
        }
        agent_call(op, "hitTarget", TRUE, click_hit_cb, arg_element(op->element),
                   arg_value_node(json_node_init_double(json_node_alloc(), op->x)),
                   arg_value_node(json_node_init_double(json_node_alloc(), op->y)), NULL);
}

static void
click_found(BrowserOp *op)
{
        agent_call(op, "actionPoint", TRUE, click_point_cb, arg_element(op->element), NULL);
}

static void
click_start(BrowserOp *op)
{
        browser_wait_for(op, "click", click_found);
}

/* fill */
static void
fill_done(BrowserOp *op)
{
        JsonObject *output = json_object_new();

        /* Never the value: it may be a password. */
        output_selector(output, op);
        json_object_set_boolean_member(output, "filled", TRUE);
        json_object_set_int_member(output, "length", (gint64)g_utf8_strlen(op->value, -1));
        if (op->secret)
                json_object_set_boolean_member(output, "secret", TRUE);
        memset(op->value, 0, strlen(op->value));
        browser_op_succeed(op, output);
}

static void
fill_typed_cb(BrowserOp *op, JsonObject *reply, GError *error)
{
        if (reply == NULL) {
                browser_op_fail_call(op, "fill failed", error);
                return;
        }
        fill_done(op);
}

static void
fill_prepared_cb(BrowserOp *op, JsonObject *remote, GError *error)
{
        JsonNode *value = remote_value(remote);
        const char *kind = NULL;
        JsonObject *params;

        if (remote == NULL) {
                browser_op_fail_call(op, "fill failed", error);
                return;
        }
        if (value != NULL && JSON_NODE_HOLDS_OBJECT(value))
                kind = json_object_get_string_member_with_default(json_node_get_object(value),
                                                                  "kind", NULL);
        if (g_strcmp0(kind, "select") == 0) {
                fill_done(op);
                return;
        }
        params = json_object_new();
        if (*op->value == '\0') {
                /* Inserting nothing leaves the selection: delete it. */
                json_object_set_string_member(params, "type", "keyDown");
                json_object_set_string_member(params, "key", "Delete");
                json_object_set_string_member(params, "code", "Delete");
                json_object_set_int_member(params, "windowsVirtualKeyCode", 46);
                itk_cdp_send(op->cdp, op->session_id, "Input.dispatchKeyEvent",
                             json_object_ref(params));
                json_object_set_string_member(params, "type", "keyUp");
                browser_call(op, "Input.dispatchKeyEvent", params, fill_typed_cb);
                return;
        }
        json_object_set_string_member(params, "text", op->value);
        browser_call(op, "Input.insertText", params, fill_typed_cb);
}

static void
fill_found(BrowserOp *op)
{
        agent_call(op, "prepareFill", TRUE, fill_prepared_cb, arg_element(op->element),
                   arg_string(op->value), NULL);
}

static void
fill_start(BrowserOp *op)
{
        browser_wait_for(op, "fill", fill_found);
}

/* keyboard */
typedef struct {
        const char *key;
        const char *code;
        int vk;
        const char *text;
} KeyInfo;

static const KeyInfo keys[] = {
        { "Enter", "Enter", 13, "\r" },
        { "Tab", "Tab", 9, NULL },
        { "Escape", "Escape", 27, NULL },
        { "Backspace", "Backspace", 8, NULL },
        { "Delete", "Delete", 46, NULL },
        { "ArrowUp", "ArrowUp", 38, NULL },
        { "ArrowDown", "ArrowDown", 40, NULL },
        { "ArrowLeft", "ArrowLeft", 37, NULL },
        { "ArrowRight", "ArrowRight", 39, NULL },
        { "Home", "Home", 36, NULL },
        { "End", "End", 35, NULL },
        { "PageUp", "PageUp", 33, NULL },
        { "PageDown", "PageDown", 34, NULL },
        { "Space", "Space", 32, " " },
        { " ", "Space", 32, " " },
};

static void
keyboard_done_cb(BrowserOp *op, JsonObject *reply, GError *error)
{
        JsonObject *output;

        if (reply == NULL) {
                browser_op_fail_call(op, "keyboard input failed", error);
                return;
        }
        output = json_object_new();
        if (param_string(op, "key", NULL) != NULL)
                json_object_set_string_member(output, "key", param_string(op, "key", NULL));
        else
                json_object_set_int_member(output, "typed",
                                           (gint64)g_utf8_strlen(param_string(op, "text", ""), -1));
        browser_op_succeed(op, output);
}

static void
keyboard_start(BrowserOp *op)
{
        const char *key = param_string(op, "key", NULL);
        const char *text = param_string(op, "text", NULL);
        JsonObject *params = json_object_new();
        KeyInfo info = { 0 };

        if (key == NULL) {
                if (text == NULL) {
                        json_object_unref(params);
                        browser_op_failf(op, "parameter 'key' or 'text' is required");
                        return;
                }
                json_object_set_string_member(params, "text", text);
                browser_call(op, "Input.insertText", params, keyboard_done_cb);
                return;
        }
        for (guint i = 0; i < G_N_ELEMENTS(keys); i++)
                if (g_ascii_strcasecmp(keys[i].key, key) == 0)
                        info = keys[i];
        if (info.key == NULL) {
                if (g_utf8_strlen(key, -1) != 1) {
                        json_object_unref(params);
                        browser_op_failf(op, "unknown key '%s'", key);
                        return;
                }
                info.key = key;
                info.text = key;
                info.vk = g_ascii_isalnum(*key) ? g_ascii_toupper(*key) : 0;
        }
        json_object_set_string_member(params, "type", info.text != NULL ? "keyDown" : "rawKeyDown");
        json_object_set_string_member(params, "key", info.key);
        if (info.code != NULL)
                json_object_set_string_member(params, "code", info.code);
        json_object_set_int_member(params, "windowsVirtualKeyCode", info.vk);
        if (info.text != NULL)
                json_object_set_string_member(params, "text", info.text);
        itk_cdp_send(op->cdp, op->session_id, "Input.dispatchKeyEvent", json_object_ref(params));
        json_object_set_string_member(params, "type", "keyUp");
        json_object_remove_member(params, "text");
        browser_call(op, "Input.dispatchKeyEvent", params, keyboard_done_cb);
}

/* file_upload */
static char *
resolve_path(BrowserOp *op, const char *path)
{
        const char *base;

        if (g_path_is_absolute(path))
                return g_strdup(path);
        base = itk_step_context_get_playbook_dir(op->ctx);
        if (base != NULL) {
                g_autofree char *candidate = g_build_filename(base, path, NULL);
                if (g_file_test(candidate, G_FILE_TEST_EXISTS))
                        return g_steal_pointer(&candidate);
        }
        return g_build_filename(itk_step_context_get_work_dir(op->ctx), path, NULL);
}

static void
upload_done_cb(BrowserOp *op, JsonObject *reply, GError *error)
{
        JsonObject *output;

        if (reply == NULL) {
                browser_op_fail_call(op, "file upload failed", error);
                return;
        }
        output = json_object_new();
        output_selector(output, op);
        json_object_set_string_member(output, "file", op->value);
        browser_op_succeed(op, output);
}

static void
upload_found(BrowserOp *op)
{
        JsonObject *params = json_object_new();
        JsonArray *files = json_array_new();

        json_array_add_string_element(files, op->value);
        json_object_set_array_member(params, "files", files);
        json_object_set_string_member(params, "objectId", op->element);
        browser_call(op, "DOM.setFileInputFiles", params, upload_done_cb);
}

static void
upload_start(BrowserOp *op)
{
        const char *path = param_string(op, "file_path", param_string(op, "file", NULL));

        if (path == NULL || *path == '\0') {
                browser_op_failf(op, "parameter 'file_path' is required");
                return;
        }
        op->value = resolve_path(op, path);
        if (!g_file_test(op->value, G_FILE_TEST_IS_REGULAR)) {
                browser_op_failf(op, "file to upload not found: %s", op->value);
                return;
        }
        op->force = TRUE; /* file inputs are often hidden behind a styled button */
        browser_wait_for(op, "attached", upload_found);
}

/* screenshot */
static void
screenshot_listed_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(BrowserOp) op = user_data;
        g_autoptr(GError) error = NULL;
        JsonObject *output = g_steal_pointer(&op->artifact_output);

        (void)source;
        /* The file is there either way: a run is not failed over its listing. */
        if (!itk_step_context_add_artifact_finish(op->ctx, result, &error))
                itk_step_context_logf(op->ctx, ITK_LOG_WARNING, "screenshot not listed: %s",
                                      error->message);
        if (op->finished) {
                json_object_unref(output);
                return;
        }
        browser_op_succeed(op, output);
}

static void
screenshot_written_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(BrowserOp) op = user_data;
        g_autoptr(GError) error = NULL;
        GBytes *bytes = g_object_get_data(source, "itk-bytes");
        g_autofree char *sha = NULL;
        g_autofree char *name = NULL;
        JsonObject *output;

        if (!g_file_replace_contents_finish(G_FILE(source), result, NULL, &error)) {
                browser_op_failf(op, "cannot save the screenshot: %s", error->message);
                return;
        }
        if (op->finished)
                return;
        sha = g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, bytes);
        name = g_file_get_basename(G_FILE(source));
        output = json_object_new();
        json_object_set_string_member(output, "name", name);
        json_object_set_string_member(output, "path", op->value);
        json_object_set_int_member(output, "size", (gint64)g_bytes_get_size(bytes));
        json_object_set_string_member(output, "sha256", sha);
        json_object_set_string_member(output, "content_type", "image/png");
        itk_step_context_logf(op->ctx, ITK_LOG_INFO, "screenshot saved: %s", name);
        op->artifact_output = output;
        itk_step_context_add_artifact_async(op->ctx, op->value, "image/png", NULL,
                                            screenshot_listed_cb, browser_op_ref(op));
}

static void
screenshot_taken_cb(BrowserOp *op, JsonObject *reply, GError *error)
{
        const char *data;
        guchar *png;
        gsize length = 0;
        GBytes *bytes;
        g_autoptr(GFile) file = NULL;

        if (reply == NULL) {
                browser_op_fail_call(op, "screenshot failed", error);
                return;
        }
        data = json_object_get_string_member_with_default(reply, "data", "");
        png = g_base64_decode(data, &length);
        bytes = g_bytes_new_take(png, length);
        file = g_file_new_for_path(op->value);
        g_object_set_data_full(G_OBJECT(file), "itk-bytes", bytes, (GDestroyNotify)g_bytes_unref);
        /* Not cancelled with the step: a half-written file helps nobody. */
        g_file_replace_contents_bytes_async(file, bytes, NULL, FALSE, G_FILE_CREATE_NONE, NULL,
                                            screenshot_written_cb, browser_op_ref(op));
}

static void
screenshot_capture(BrowserOp *op, double width, double height)
{
        JsonObject *params = json_object_new();

        json_object_set_string_member(params, "format", "png");
        if (width > 0 && height > 0) {
                JsonObject *clip = json_object_new();
                json_object_set_double_member(clip, "x", 0);
                json_object_set_double_member(clip, "y", 0);
                json_object_set_double_member(clip, "width", width);
                json_object_set_double_member(clip, "height", height);
                json_object_set_double_member(clip, "scale", 1);
                json_object_set_object_member(params, "clip", clip);
                json_object_set_boolean_member(params, "captureBeyondViewport", TRUE);
        }
        browser_call(op, "Page.captureScreenshot", params, screenshot_taken_cb);
}

static void
screenshot_metrics_cb(BrowserOp *op, JsonObject *reply, GError *error)
{
        JsonObject *size;

        if (reply == NULL) {
                browser_op_fail_call(op, "screenshot failed", error);
                return;
        }
        size = json_object_has_member(reply, "cssContentSize")
                       ? itk_json_object_member(reply, "cssContentSize")
                       : itk_json_object_member(reply, "contentSize");
        screenshot_capture(op, size != NULL ? json_object_get_double_member(size, "width") : 0,
                           size != NULL ? json_object_get_double_member(size, "height") : 0);
}

static void
screenshot_start(BrowserOp *op)
{
        const char *given = param_string(op, "path", param_string(op, "name", NULL));
        g_autofree char *base = NULL;
        g_autofree char *name = NULL;

        /* Always inside the run's folder, whatever the playbook says. */
        if (given != NULL && *given != '\0') {
                base = g_path_get_basename(given);
        } else {
                base = g_strdup(itk_step_context_get_step_id(op->ctx));
                g_strdelimit(base, "/", '-');
        }
        if (g_strcmp0(base, ".") == 0 || g_strcmp0(base, "/") == 0 || *base == '.')
                set_str(&base, "screenshot");
        name = g_str_has_suffix(base, ".png") ? g_strdup(base) : g_strconcat(base, ".png", NULL);
        op->value = g_build_filename(itk_step_context_get_work_dir(op->ctx), name, NULL);
        if (param_bool(op, "full_page", FALSE))
                browser_call(op, "Page.getLayoutMetrics", NULL, screenshot_metrics_cb);
        else
                screenshot_capture(op, 0, 0);
}

/* verify_text, verify_attribute */
static void verify_value_again(BrowserOp *op);

static void
verify_retry_cb(gpointer user_data)
{
        BrowserOp *op = user_data;

        g_clear_pointer(&op->backoff, itk_timer_free);
        verify_value_again(op);
}

/* As Playwright's assertions do, a mismatch is looked at again (the page may
 * still be updating) until the step's timeout, whose message then says what
 * was expected and what the page last showed. Without a timeout it fails at
 * once. Takes @mismatch. */
static void
verify_retry_later(BrowserOp *op, char *mismatch)
{
        ItkTimerGroup *timers = itk_step_context_get_timer_group(op->ctx);
        guint delay = retry_backoff_ms[MIN(op->attempts, G_N_ELEMENTS(retry_backoff_ms) - 1)];

        if (op->deadline == NULL) {
                browser_op_failf(op, "%s", mismatch);
                g_free(mismatch);
                return;
        }
        op->attempts++;
        g_free(op->waiting_for);
        op->waiting_for = mismatch;
        op->backoff = itk_timer_new(timers, delay, verify_retry_cb, op);
}

static void
verify_value_cb(BrowserOp *op, JsonObject *remote, GError *error)
{
        JsonNode *value = remote_value(remote);
        const char *actual =
                value != NULL && JSON_NODE_HOLDS_VALUE(value) ? json_node_get_string(value) : NULL;
        gboolean text = g_strcmp0(op->type, "browser.verify_text") == 0;
        const char *expected = param_string(op, text ? "text" : "value", NULL);
        const char *match = text ? param_string(op, "match", "contains") : "exact";
        gboolean ok = FALSE;
        JsonObject *output;

        if (remote == NULL) {
                browser_op_fail_call(op, "verification failed", error);
                return;
        }
        if (actual == NULL && !text) {
                verify_retry_later(op, g_strdup_printf("element '%s' to have attribute '%s'",
                                                       op->selector,
                                                       param_string(op, "attribute", "")));
                return;
        }
        if (actual == NULL)
                actual = "";
        if (expected == NULL) {
                ok = TRUE; /* only that the attribute exists */
        } else if (g_strcmp0(match, "exact") == 0) {
                ok = g_strcmp0(actual, expected) == 0;
        } else if (g_strcmp0(match, "regex") == 0) {
                g_autoptr(GError) regex_error = NULL;
                g_autoptr(GRegex) regex = g_regex_new(expected, 0, 0, &regex_error);
                if (regex == NULL) {
                        browser_op_failf(op, "invalid regular expression: %s",
                                         regex_error->message);
                        return;
                }
                ok = g_regex_match(regex, actual, 0, NULL);
        } else {
                g_autofree char *a = g_utf8_casefold(actual, -1);
                g_autofree char *e = g_utf8_casefold(expected, -1);
                ok = strstr(a, e) != NULL;
        }
        if (!ok) {
                verify_retry_later(op,
                                   g_strdup_printf("%s of '%s' %s \"%s\" (it is \"%s\")",
                                                   text ? "text" : "attribute", op->selector,
                                                   g_strcmp0(match, "contains") == 0 ? "to contain"
                                                   : g_strcmp0(match, "regex") == 0  ? "to match"
                                                                                     : "to be",
                                                   expected, actual));
                return;
        }
        output = json_object_new();
        output_selector(output, op);
        json_object_set_string_member(output, text ? "text" : "value", actual);
        json_object_set_boolean_member(output, "verified", TRUE);
        browser_op_succeed(op, output);
}

static void
verify_text_found(BrowserOp *op)
{
        agent_call(op, "text", TRUE, verify_value_cb, arg_element(op->element), NULL);
}

static void
verify_attribute_found(BrowserOp *op)
{
        agent_call(op, "attribute", TRUE, verify_value_cb, arg_element(op->element),
                   arg_string(param_string(op, "attribute", "")), NULL);
}

static void
verify_value_again(BrowserOp *op)
{
        /* The timeout's message keeps naming the mismatch, not the wait. */
        g_autofree char *mismatch = g_steal_pointer(&op->waiting_for);

        if (g_strcmp0(op->type, "browser.verify_text") == 0)
                browser_wait_for(op, "attached", verify_text_found);
        else
                browser_wait_for(op, "attached", verify_attribute_found);
        if (!op->finished && mismatch != NULL) {
                g_free(op->waiting_for);
                op->waiting_for = g_steal_pointer(&mismatch);
        }
}

static void
verify_text_start(BrowserOp *op)
{
        if (param_string(op, "text", NULL) == NULL) {
                browser_op_failf(op, "parameter 'text' is required");
                return;
        }
        browser_wait_for(op, "attached", verify_text_found);
}

static void
verify_attribute_start(BrowserOp *op)
{
        if (param_string(op, "attribute", NULL) == NULL) {
                browser_op_failf(op, "parameter 'attribute' is required");
                return;
        }
        browser_wait_for(op, "attached", verify_attribute_found);
}

/* perspective.discover_page */
static JsonNode *
string_list_arg(BrowserOp *op, const char *name)
{
        JsonNode *node = json_object_get_member(op->params, name);
        JsonArray *list = json_array_new();

        if (node != NULL && JSON_NODE_HOLDS_ARRAY(node)) {
                JsonArray *given = json_node_get_array(node);
                for (guint i = 0; i < json_array_get_length(given); i++) {
                        JsonNode *item = json_array_get_element(given, i);
                        if (JSON_NODE_HOLDS_VALUE(item) &&
                            json_node_get_value_type(item) == G_TYPE_STRING)
                                json_array_add_string_element(list, json_node_get_string(item));
                }
        } else if (node != NULL && JSON_NODE_HOLDS_VALUE(node) &&
                   json_node_get_value_type(node) == G_TYPE_STRING &&
                   *json_node_get_string(node) != '\0') {
                json_array_add_string_element(list, json_node_get_string(node));
        }
        return arg_value_node(json_node_init_array(json_node_alloc(), list));
}

static void
discover_cb(BrowserOp *op, JsonObject *remote, GError *error)
{
        JsonNode *value = remote_value(remote);
        JsonObject *output;
        g_autoptr(GDateTime) now = g_date_time_new_now_utc();
        g_autofree char *stamp = g_date_time_format_iso8601(now);

        if (remote == NULL) {
                browser_op_fail_call(op, "page discovery failed", error);
                return;
        }
        if (value == NULL || !JSON_NODE_HOLDS_OBJECT(value)) {
                browser_op_failf(op, "page discovery returned nothing");
                return;
        }
        /* The reply is immutable: a new object with its members. */
        output = json_object_new();
        {
                JsonObjectIter iter;
                const char *name;
                JsonNode *member;
                json_object_iter_init(&iter, json_node_get_object(value));
                while (json_object_iter_next(&iter, &name, &member))
                        json_object_set_member(output, name, json_node_copy(member));
        }
        json_object_set_string_member(output, "timestamp", stamp);
        browser_op_succeed(op, output);
}

static void
discover_start(BrowserOp *op)
{
        agent_call(op, "discover", TRUE, discover_cb,
                   arg_string(param_string(op, "selector", "body")), string_list_arg(op, "types"),
                   string_list_arg(op, "exclude_selectors"), NULL);
}

/* --- running a step ------------------------------------------------------------- */

typedef struct {
        const char *type;
        OpStepFunc start;
        const char *state;       /* element steps: the state waited for; NULL: none */
        guint64 default_timeout; /* ms */
} StepKind;

static const StepKind step_kinds[] = {
        { "browser.navigate", navigate_start, NULL, 30000 },
        { "browser.click", click_start, "click", 30000 },
        { "browser.fill", fill_start, "fill", 30000 },
        { "browser.keyboard", keyboard_start, NULL, 30000 },
        { "browser.file_upload", upload_start, "attached", 30000 },
        { "browser.screenshot", screenshot_start, NULL, 30000 },
        { "browser.wait", wait_start, "visible", 30000 },
        { "browser.verify", wait_start, "visible", 5000 },
        { "browser.verify_text", verify_text_start, "attached", 5000 },
        { "browser.verify_attribute", verify_attribute_start, "attached", 5000 },
        { "browser.verify_state", wait_start, "visible", 5000 },
        { "perspective.discover_page", discover_start, NULL, 30000 },
};

static void
download_listed_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(ItkStepContext) ctx = user_data;
        g_autoptr(GError) error = NULL;

        (void)source;
        if (!itk_step_context_add_artifact_finish(ctx, result, &error))
                itk_step_context_logf(ctx, ITK_LOG_WARNING, "download not listed: %s",
                                      error->message);
}

/* A download finishes whenever the browser is done with it, so it is the
 * artifact of the last browser step that ran (usually the click on the link). */
static void
download_done_cb(gpointer data, const char *path)
{
        ItkStepContext *ctx = data;
        g_autofree char *name = g_path_get_basename(path);

        itk_step_context_logf(ctx, ITK_LOG_INFO, "download saved: %s", name);
        itk_step_context_add_artifact_async(ctx, path, NULL, NULL, download_listed_cb,
                                            itk_step_context_ref(ctx));
}

static void
browser_op_begin(BrowserOp *op)
{
        const StepKind *kind = NULL;
        g_autoptr(GError) error = NULL;
        guint64 timeout;

        for (guint i = 0; i < G_N_ELEMENTS(step_kinds); i++)
                if (g_strcmp0(step_kinds[i].type, op->type) == 0)
                        kind = &step_kinds[i];
        if (!itk_browser_page_check(op->page, &error)) {
                browser_op_fail(op, g_steal_pointer(&error));
                return;
        }
        itk_browser_page_set_download_func(op->page, download_done_cb,
                                           itk_step_context_ref(op->ctx),
                                           (GDestroyNotify)itk_step_context_unref);
        op->cdp = itk_cdp_ref(itk_browser_page_get_cdp(op->page));
        op->session_id = itk_browser_page_get_session_id(op->page);
        if (kind->state != NULL) {
                const char *selector = param_string(op, "selector", NULL);
                if (selector == NULL || *selector == '\0') {
                        browser_op_failf(op, "parameter 'selector' is required");
                        return;
                }
                op->selector = g_strdup(selector);
                op->force = param_bool(op, "force", FALSE);
                op->state = g_strdup(kind->state);
                if (g_strcmp0(op->type, "browser.verify") == 0) {
                        const char *state = param_string(op, "state", NULL);
                        const char *condition = param_string(op, "condition", NULL);
                        if (!param_bool(op, "exists", TRUE) ||
                            g_strcmp0(condition, "not_exists") == 0)
                                set_str(&op->state, "detached");
                        else if (state != NULL)
                                set_str(&op->state, state);
                        else if (g_strcmp0(condition, "exists") == 0)
                                set_str(&op->state, "attached");
                } else if (g_strcmp0(op->type, "browser.verify_state") == 0 ||
                           g_strcmp0(op->type, "browser.wait") == 0) {
                        set_str(&op->state, param_string(op, "state", kind->state));
                }
        }
        /* navigate starts its own clock once it knows the URL. */
        if (kind->start != navigate_start) {
                if (!param_uint(op, "timeout", kind->default_timeout, &timeout, &error)) {
                        browser_op_fail(op, g_steal_pointer(&error));
                        return;
                }
                browser_op_start_deadline(op, timeout);
        }
        kind->start(op);
}

static void
browser_session_close(gpointer data)
{
        itk_browser_page_close(data);
}

static void
browser_page_ready_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(BrowserOp) op = user_data;
        g_autoptr(GError) error = NULL;
        ItkBrowserPage *page = itk_browser_new_page_finish(NULL, result, &error);

        (void)source;
        if (page == NULL) {
                if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                        browser_op_fail(op, g_steal_pointer(&error));
                return;
        }
        if (op->finished) {
                /* Cancelled meanwhile: nobody holds the page. */
                itk_browser_page_close(page);
                return;
        }
        itk_browser_page_set_download_dir(page, itk_step_context_get_work_dir(op->ctx));
        if (!itk_step_context_set_session(op->ctx, SESSION_NAME, page, browser_session_close)) {
                browser_op_failf(op, "browser steps need an execution to hold their page");
                return;
        }
        op->page = page;
        browser_op_begin(op);
}

static void
itk_step_browser_start(const char *type, ItkStepContext *ctx, JsonObject *params,
                       GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
        BrowserOp *op = g_rc_box_new0(BrowserOp);
        ItkBrowser *browser = itk_browser_get_default();

        op->type = type;
        op->task = itk_step_task_new(ctx, cancellable, callback, user_data);
        op->ctx = itk_step_context_ref(ctx);
        op->params = json_object_ref(params);
        op->calls = g_cancellable_new();
        if (cancellable != NULL) {
                op->cancellable = g_object_ref(cancellable);
                op->cancel_id = g_cancellable_connect(
                        cancellable, G_CALLBACK(browser_op_cancelled_cb), op, NULL);
        }
        if (g_strcmp0(type, "browser.fill") == 0) {
                const char *value = param_string(op, "value", NULL);
                if (value == NULL) {
                        browser_op_failf(op, "parameter 'value' must be text");
                        browser_op_unref(op);
                        return;
                }
                op->value = g_strdup(value);
                op->secret = itk_step_context_is_secret(ctx, value);
        }
        itk_browser_set_agent_source(browser, itk_step_browser_agent_source());
        op->page = itk_step_context_get_session(ctx, SESSION_NAME);
        if (op->finished)
                ; /* cancelled already */
        else if (op->page != NULL)
                browser_op_begin(op);
        else
                itk_browser_new_page_async(browser, op->calls, browser_page_ready_cb,
                                           browser_op_ref(op));
        /* The op keeps its first reference until it finishes. */
}

#define RUN_FUNC(name, type)                                                                       \
        static void name(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,       \
                         GAsyncReadyCallback callback, gpointer user_data)                         \
        {                                                                                          \
                itk_step_browser_start(type, ctx, params, cancellable, callback, user_data);       \
        }

RUN_FUNC(run_navigate, "browser.navigate")
RUN_FUNC(run_click, "browser.click")
RUN_FUNC(run_fill, "browser.fill")
RUN_FUNC(run_keyboard, "browser.keyboard")
RUN_FUNC(run_file_upload, "browser.file_upload")
RUN_FUNC(run_screenshot, "browser.screenshot")
RUN_FUNC(run_wait, "browser.wait")
RUN_FUNC(run_verify, "browser.verify")
RUN_FUNC(run_verify_text, "browser.verify_text")
RUN_FUNC(run_verify_attribute, "browser.verify_attribute")
RUN_FUNC(run_verify_state, "browser.verify_state")
RUN_FUNC(run_discover, "perspective.discover_page")

/* --- the module ------------------------------------------------------------------ */

/* Called once when the daemon loads this module (itk_step_registry_resolve())
 * or by tests that link it: installs the run functions of the types that
 * itk-step-browser-types.c declares. */
void
itk_step_browser_module_init(void)
{
        static const struct {
                const char *type;
                ItkStepRunFunc run;
        } runs[] = {
                { "browser.navigate", run_navigate },
                { "browser.click", run_click },
                { "browser.fill", run_fill },
                { "browser.keyboard", run_keyboard },
                { "browser.file_upload", run_file_upload },
                { "browser.screenshot", run_screenshot },
                { "browser.wait", run_wait },
                { "browser.verify", run_verify },
                { "browser.verify_text", run_verify_text },
                { "browser.verify_attribute", run_verify_attribute },
                { "browser.verify_state", run_verify_state },
                { "perspective.discover_page", run_discover },
        };

        itk_step_registry_ensure();
        for (guint i = 0; i < G_N_ELEMENTS(runs); i++)
                itk_step_registry_set_run(runs[i].type, runs[i].run);
        itk_step_browser_live_register();
}
