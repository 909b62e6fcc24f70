/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include <gmodule.h>

#include "config.h"
#include "itk-step.h"
#include "itk-error.h"

static GHashTable *registry; /* type -> const ItkStepHandler* */
static GPtrArray *providers; /* const ItkStepProvider* */

void
itk_step_registry_register(const ItkStepHandler *handler)
{
        if (registry == NULL)
                registry = g_hash_table_new(g_str_hash, g_str_equal);
        g_hash_table_insert(registry, (gpointer)handler->type, (gpointer)handler);
}

void
itk_step_registry_ensure(void)
{
        static gsize once;

        if (g_once_init_enter(&once)) {
                itk_step_utility_register();
                itk_step_playbook_register();
                itk_step_gateway_register();
                itk_step_browser_register();
                itk_step_later_register();
                g_once_init_leave(&once, 1);
        }
}

const ItkStepHandler *
itk_step_registry_lookup(const char *type)
{
        itk_step_registry_ensure();
        return type != NULL ? g_hash_table_lookup(registry, type) : NULL;
}

void
itk_step_registry_register_provider(const ItkStepProvider *provider)
{
        if (providers == NULL)
                providers = g_ptr_array_new();
        g_ptr_array_add(providers, (gpointer)provider);
        for (guint i = 0; i < provider->n_handlers; i++)
                itk_step_registry_register(&provider->handlers[i]);
}

const ItkStepProvider *
itk_step_registry_lookup_provider(const char *type)
{
        itk_step_registry_ensure();
        for (guint i = 0; type != NULL && providers != NULL && i < providers->len; i++) {
                const ItkStepProvider *provider = g_ptr_array_index(providers, i);
                for (guint j = 0; provider->prefixes != NULL && provider->prefixes[j] != NULL; j++)
                        if (g_str_has_prefix(type, provider->prefixes[j]))
                                return provider;
        }
        return NULL;
}

gboolean
itk_step_registry_check_type(const char *type, GError **error)
{
        const ItkStepHandler *handler = itk_step_registry_lookup(type);
        const ItkStepProvider *provider = itk_step_registry_lookup_provider(type);

        if (handler == NULL && (provider == NULL || !provider->later)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK, "unknown step type '%s'",
                            type);
                return FALSE;
        }
        if (handler == NULL || (handler->run == NULL && handler->module == NULL) ||
            (provider != NULL && provider->later)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_NOT_SUPPORTED,
                            "step type '%s' is not supported yet", type);
                return FALSE;
        }
        if (provider != NULL && provider->check_available != NULL)
                return provider->check_available(error);
        return TRUE;
}

static gboolean
param_is_template(JsonNode *node)
{
        return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING &&
               strstr(json_node_get_string(node), "{{") != NULL;
}

static gboolean
param_check_type(const ItkStepParam *param, JsonNode *node, GError **error)
{
        static const char *const names[] = {
                [ITK_STEP_PARAM_STRING] = "text",
                [ITK_STEP_PARAM_INTEGER] = "a whole number",
                [ITK_STEP_PARAM_NUMBER] = "a number",
                [ITK_STEP_PARAM_BOOLEAN] = "true or false",
                [ITK_STEP_PARAM_LIST] = "a list",
                [ITK_STEP_PARAM_OBJECT] = "a mapping",
                [ITK_STEP_PARAM_SELECTOR] = "a selector (text)",
        };
        GType vtype = JSON_NODE_HOLDS_VALUE(node) ? json_node_get_value_type(node) : G_TYPE_NONE;
        gboolean ok = TRUE;

        if (JSON_NODE_HOLDS_NULL(node) || param_is_template(node))
                return TRUE;
        switch (param->type) {
        case ITK_STEP_PARAM_ANY:
                break;
        case ITK_STEP_PARAM_STRING:
        case ITK_STEP_PARAM_SELECTOR:
                ok = vtype == G_TYPE_STRING;
                break;
        case ITK_STEP_PARAM_INTEGER:
        case ITK_STEP_PARAM_NUMBER:
                if (vtype == G_TYPE_STRING) {
                        const char *text = json_node_get_string(node);
                        char *end = NULL;
                        g_ascii_strtod(text, &end);
                        ok = *text != '\0' && end != NULL && *end == '\0';
                } else {
                        ok = vtype == G_TYPE_INT64 ||
                             (param->type == ITK_STEP_PARAM_NUMBER && vtype == G_TYPE_DOUBLE);
                }
                break;
        case ITK_STEP_PARAM_BOOLEAN:
                ok = vtype == G_TYPE_BOOLEAN ||
                     (vtype == G_TYPE_STRING &&
                      (g_strcmp0(json_node_get_string(node), "true") == 0 ||
                       g_strcmp0(json_node_get_string(node), "false") == 0));
                break;
        case ITK_STEP_PARAM_LIST:
                ok = JSON_NODE_HOLDS_ARRAY(node);
                break;
        case ITK_STEP_PARAM_OBJECT:
                ok = JSON_NODE_HOLDS_OBJECT(node);
                break;
        }
        if (!ok) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK,
                            "parameter '%s' must be %s", param->name, names[param->type]);
                return FALSE;
        }
        if (param->choices != NULL && vtype == G_TYPE_STRING) {
                const char *text = json_node_get_string(node);
                g_autofree char *list = NULL;
                if (g_strv_contains(param->choices, text))
                        return TRUE;
                list = g_strjoinv(", ", (char **)param->choices);
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK,
                            "parameter '%s' must be one of %s", param->name, list);
                return FALSE;
        }
        return TRUE;
}

gboolean
itk_step_registry_validate_params(const char *type, JsonObject *params, const char **param,
                                  gssize *offset, GError **error)
{
        const ItkStepHandler *handler = itk_step_registry_lookup(type);
        const ItkStepProvider *provider = itk_step_registry_lookup_provider(type);

        *param = NULL;
        *offset = -1;
        if (handler == NULL || params == NULL)
                return TRUE;
        for (const ItkStepParam *p = handler->params; p != NULL && p->name != NULL; p++) {
                JsonNode *node = json_object_get_member(params, p->name);
                if (node != NULL && !param_check_type(p, node, error)) {
                        *param = p->name;
                        return FALSE;
                }
        }
        if (provider != NULL && provider->validate != NULL)
                return provider->validate(handler, params, param, offset, error);
        return TRUE;
}

/* --- sessions ---------------------------------------------------------------- */

typedef struct {
        char *name;
        gpointer data;
        GDestroyNotify close;
} Session;

struct _ItkStepSessions {
        GPtrArray *items; /* Session*, in creation order */
        ItkStepSessionChangedFunc changed;
        gpointer changed_data;
};

void
itk_step_sessions_set_changed_func(ItkStepSessions *sessions, ItkStepSessionChangedFunc func,
                                   gpointer user_data)
{
        sessions->changed = func;
        sessions->changed_data = user_data;
}

ItkStepSessions *
itk_step_sessions_new(void)
{
        ItkStepSessions *sessions = g_new0(ItkStepSessions, 1);

        sessions->items = g_ptr_array_new();
        return sessions;
}

void
itk_step_sessions_close(ItkStepSessions *sessions)
{
        if (sessions == NULL)
                return;
        /* Newest first; a close function may not add sessions. */
        while (sessions->items->len > 0) {
                Session *session =
                        g_ptr_array_steal_index(sessions->items, sessions->items->len - 1);
                /* Users of the session let go of it before it closes. */
                if (sessions->changed != NULL)
                        sessions->changed(sessions->changed_data, session->name, NULL);
                if (session->close != NULL)
                        session->close(session->data);
                g_free(session->name);
                g_free(session);
        }
}

void
itk_step_sessions_free(ItkStepSessions *sessions)
{
        if (sessions == NULL)
                return;
        itk_step_sessions_close(sessions);
        g_ptr_array_unref(sessions->items);
        g_free(sessions);
}

static Session *
itk_step_sessions_find(ItkStepSessions *sessions, const char *name)
{
        for (guint i = 0; sessions != NULL && i < sessions->items->len; i++) {
                Session *session = g_ptr_array_index(sessions->items, i);
                if (g_strcmp0(session->name, name) == 0)
                        return session;
        }
        return NULL;
}

void
itk_step_registry_set_run(const char *type, ItkStepRunFunc run)
{
        /* Handlers with a module are registered from mutable tables. */
        ItkStepHandler *handler = (ItkStepHandler *)itk_step_registry_lookup(type);

        g_return_if_fail(handler != NULL && handler->module != NULL);
        handler->run = run;
}

/* Loads itk-step-<name>.so from $ITK_MODULE_DIR (development trees
 * and tests) or the installed module folder, and calls its entry point. */
static gboolean
itk_step_registry_load_module(const char *name, GError **error)
{
        static GHashTable *loaded; /* name -> GModule*, never unloaded */
        const char *dir = g_getenv("ITK_MODULE_DIR");
        g_autofree char *file = g_strdup_printf("itk-step-%s.so", name);
        g_autofree char *symbol = g_strdup_printf("itk_step_%s_module_init", name);
        g_autofree char *path = NULL;
        void (*init)(void) = NULL;
        GModule *module;

        if (loaded == NULL)
                loaded = g_hash_table_new(g_str_hash, g_str_equal);
        if (g_hash_table_contains(loaded, name))
                return TRUE;
        path = g_build_filename(dir != NULL && *dir != '\0' ? dir : ITK_MODULE_DIR, file, NULL);
        /* A one-time load on the first step of that kind. */
        module = g_module_open(path, G_MODULE_BIND_LOCAL);
        if (module == NULL) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_NOT_SUPPORTED,
                            "the %s steps are not available: %s", name, g_module_error());
                return FALSE;
        }
        if (!g_module_symbol(module, symbol, (gpointer *)&init) || init == NULL) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_NOT_SUPPORTED,
                            "the %s steps are not available: %s has no %s", name, path, symbol);
                g_module_close(module);
                return FALSE;
        }
        g_module_make_resident(module);
        init();
        g_hash_table_insert(loaded, g_strdup(name), module);
        return TRUE;
}

const ItkStepHandler *
itk_step_registry_resolve(const char *type, GError **error)
{
        const ItkStepHandler *handler = itk_step_registry_lookup(type);

        if (handler != NULL && handler->run == NULL && handler->module != NULL &&
            !itk_step_registry_load_module(handler->module, error))
                return NULL;
        if (handler == NULL || handler->run == NULL) {
                if (error != NULL && *error == NULL)
                        g_set_error(error, ITK_ERROR, ITK_ERROR_NOT_SUPPORTED,
                                    "step type '%s' is not supported", type);
                return NULL;
        }
        return handler;
}

GTask *
itk_step_task_new(ItkStepContext *ctx, GCancellable *cancellable, GAsyncReadyCallback callback,
                  gpointer user_data)
{
        GTask *task = g_task_new(NULL, cancellable, callback, user_data);

        g_task_set_task_data(task, itk_step_context_ref(ctx),
                             (GDestroyNotify)itk_step_context_unref);
        g_task_set_check_cancellable(task, FALSE);
        return task;
}

JsonNode *
itk_step_run_finish(GAsyncResult *result, GError **error)
{
        return g_task_propagate_pointer(G_TASK(result), error);
}

/* --- context --------------------------------------------------------------- */

struct _ItkStepContext {
        gatomicrefcount ref;
        char *step_id;
        ItkStepLogFunc log_func;
        gpointer log_data;
        ItkStepLogBatchFunc log_batch_func;
        gpointer log_batch_data;
        guint script_log_lines;
        JsonObject *variables;
        ItkTimerGroup *timers;
        char *work_dir;
        char *playbook_dir;
        char *gateway_url;
        char *gateway_token;
        char *python;
        ItkStepSessions *sessions;
        gboolean (*is_secret)(gpointer data, const char *value);
        gpointer secret_data;
        ItkStepArtifactFunc artifact_func;
        gpointer artifact_data;
};

ItkStepContext *
itk_step_context_new(const char *step_id)
{
        ItkStepContext *ctx = g_new0(ItkStepContext, 1);

        g_atomic_ref_count_init(&ctx->ref);
        ctx->step_id = g_strdup(step_id);
        return ctx;
}

ItkStepContext *
itk_step_context_ref(ItkStepContext *ctx)
{
        g_atomic_ref_count_inc(&ctx->ref);
        return ctx;
}

void
itk_step_context_unref(ItkStepContext *ctx)
{
        if (!g_atomic_ref_count_dec(&ctx->ref))
                return;
        g_free(ctx->step_id);
        g_free(ctx->work_dir);
        g_free(ctx->playbook_dir);
        g_free(ctx->gateway_url);
        if (ctx->gateway_token != NULL)
                memset(ctx->gateway_token, 0, strlen(ctx->gateway_token));
        g_free(ctx->gateway_token);
        g_free(ctx->python);
        g_free(ctx);
}

void
itk_step_context_set_log_func(ItkStepContext *ctx, ItkStepLogFunc func, gpointer user_data)
{
        ctx->log_func = func;
        ctx->log_data = user_data;
}

void
itk_step_context_set_log_batch_func(ItkStepContext *ctx, ItkStepLogBatchFunc func,
                                    gpointer user_data)
{
        ctx->log_batch_func = func;
        ctx->log_batch_data = user_data;
}

void
itk_step_context_set_variables(ItkStepContext *ctx, JsonObject *variables)
{
        ctx->variables = variables;
}

void
itk_step_context_set_timer_group(ItkStepContext *ctx, ItkTimerGroup *timers)
{
        ctx->timers = timers;
}

#define SET_STRING(field)                                                                          \
        do {                                                                                       \
                g_free(ctx->field);                                                                \
                ctx->field = g_strdup(field);                                                      \
        } while (0)

void
itk_step_context_set_work_dir(ItkStepContext *ctx, const char *work_dir)
{
        SET_STRING(work_dir);
}

void
itk_step_context_set_playbook_dir(ItkStepContext *ctx, const char *playbook_dir)
{
        SET_STRING(playbook_dir);
}

void
itk_step_context_set_gateway_url(ItkStepContext *ctx, const char *gateway_url)
{
        SET_STRING(gateway_url);
}

void
itk_step_context_set_gateway_token(ItkStepContext *ctx, const char *gateway_token)
{
        SET_STRING(gateway_token);
}

void
itk_step_context_set_python(ItkStepContext *ctx, const char *python)
{
        SET_STRING(python);
}

void
itk_step_context_set_sessions(ItkStepContext *ctx, ItkStepSessions *sessions)
{
        ctx->sessions = sessions;
}

void
itk_step_context_set_secret_func(ItkStepContext *ctx,
                                 gboolean (*is_secret)(gpointer data, const char *value),
                                 gpointer data)
{
        ctx->is_secret = is_secret;
        ctx->secret_data = data;
}

gpointer
itk_step_context_get_session(ItkStepContext *ctx, const char *name)
{
        Session *session = itk_step_sessions_find(ctx->sessions, name);

        return session != NULL ? session->data : NULL;
}

gboolean
itk_step_context_set_session(ItkStepContext *ctx, const char *name, gpointer data,
                             GDestroyNotify close)
{
        Session *session;

        if (ctx->sessions == NULL) {
                if (close != NULL)
                        close(data);
                return FALSE;
        }
        session = itk_step_sessions_find(ctx->sessions, name);
        if (session != NULL) {
                if (ctx->sessions->changed != NULL)
                        ctx->sessions->changed(ctx->sessions->changed_data, name, NULL);
                if (session->close != NULL)
                        session->close(session->data);
        } else {
                session = g_new0(Session, 1);
                session->name = g_strdup(name);
                g_ptr_array_add(ctx->sessions->items, session);
        }
        session->data = data;
        session->close = close;
        if (ctx->sessions->changed != NULL)
                ctx->sessions->changed(ctx->sessions->changed_data, name, data);
        return TRUE;
}

gboolean
itk_step_context_is_secret(ItkStepContext *ctx, const char *value)
{
        return value != NULL && *value != '\0' && ctx->is_secret != NULL &&
               ctx->is_secret(ctx->secret_data, value);
}

const char *
itk_step_context_get_step_id(ItkStepContext *ctx)
{
        return ctx->step_id;
}

void
itk_step_context_log(ItkStepContext *ctx, ItkLogPriority priority, const char *message)
{
        if (ctx->log_func != NULL)
                ctx->log_func(ctx->log_data, priority, ctx->step_id, message);
}

void
itk_step_context_logf(ItkStepContext *ctx, ItkLogPriority priority, const char *format, ...)
{
        g_autofree char *message = NULL;
        va_list args;

        va_start(args, format);
        message = g_strdup_vprintf(format, args);
        va_end(args);
        itk_step_context_log(ctx, priority, message);
}

void
itk_step_context_set_script_log_lines(ItkStepContext *ctx, guint max)
{
        ctx->script_log_lines = max;
}

guint
itk_step_context_get_script_log_lines(ItkStepContext *ctx)
{
        return ctx->script_log_lines != 0 ? ctx->script_log_lines : ITK_STEP_MAX_SCRIPT_LOG_LINES;
}

void
itk_step_context_log_batch(ItkStepContext *ctx, gboolean begin)
{
        if (ctx->log_batch_func != NULL)
                ctx->log_batch_func(ctx->log_batch_data, begin);
}

JsonObject *
itk_step_context_get_variables(ItkStepContext *ctx)
{
        return ctx->variables;
}

void
itk_step_context_set_variable(ItkStepContext *ctx, const char *name, JsonNode *value)
{
        if (ctx->variables != NULL)
                json_object_set_member(ctx->variables, name, value);
        else
                json_node_unref(value);
}

ItkTimerGroup *
itk_step_context_get_timer_group(ItkStepContext *ctx)
{
        return ctx->timers;
}

const char *
itk_step_context_get_work_dir(ItkStepContext *ctx)
{
        return ctx->work_dir != NULL ? ctx->work_dir : g_get_tmp_dir();
}

const char *
itk_step_context_get_playbook_dir(ItkStepContext *ctx)
{
        return ctx->playbook_dir;
}

const char *
itk_step_context_get_gateway_url(ItkStepContext *ctx)
{
        return ctx->gateway_url;
}

const char *
itk_step_context_get_gateway_token(ItkStepContext *ctx)
{
        return ctx->gateway_token;
}

const char *
itk_step_context_get_python(ItkStepContext *ctx)
{
        return ctx->python != NULL ? ctx->python : "python3";
}

/* --- pausable sleep ---------------------------------------------------------- */

typedef struct {
        ItkTimer *timer;
        gulong cancel_id;
        GCancellable *cancellable;
} SleepData;

static void
sleep_data_free(SleepData *data)
{
        itk_timer_free(data->timer);
        g_free(data);
}

static void
sleep_timer_cb(gpointer user_data)
{
        g_autoptr(GTask) task = user_data;
        SleepData *data = g_task_get_task_data(task);

        g_cancellable_disconnect(data->cancellable, data->cancel_id);
        data->cancel_id = 0;
        g_task_return_boolean(task, TRUE);
}

static gboolean
sleep_cancelled_idle_cb(gpointer user_data)
{
        g_autoptr(GTask) task = user_data;
        SleepData *data = g_task_get_task_data(task);

        g_cancellable_disconnect(data->cancellable, data->cancel_id);
        data->cancel_id = 0;
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
        return G_SOURCE_REMOVE;
}

static void
sleep_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
        GTask *task = user_data;
        SleepData *data = g_task_get_task_data(task);

        /* Runs inside g_cancellable_cancel(): the timer must not fire after this,
         * and the task returns from a fresh main-loop iteration. */
        g_clear_pointer(&data->timer, itk_timer_free);
        g_idle_add_full(G_PRIORITY_HIGH, sleep_cancelled_idle_cb, task, NULL);
}

void
itk_step_context_sleep_async(ItkStepContext *ctx, guint64 msec, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data)
{
        GTask *task = g_task_new(NULL, cancellable, callback, user_data);
        SleepData *data = g_new0(SleepData, 1);

        g_task_set_task_data(task, data, (GDestroyNotify)sleep_data_free);
        g_task_set_source_tag(task, itk_step_context_sleep_async);
        if (g_cancellable_is_cancelled(cancellable)) {
                g_idle_add_full(G_PRIORITY_HIGH, sleep_cancelled_idle_cb, task, NULL);
                return;
        }
        g_return_if_fail(ctx->timers != NULL);
        /* The task reference is held by the timer until it fires, or handed to
         * the idle callback when cancelled. */
        data->timer = itk_timer_new(ctx->timers, msec, sleep_timer_cb, task);
        if (cancellable != NULL) {
                data->cancellable = cancellable;
                data->cancel_id = g_cancellable_connect(cancellable, G_CALLBACK(sleep_cancelled_cb),
                                                        task, NULL);
        }
}

gboolean
itk_step_context_sleep_finish(ItkStepContext *ctx, GAsyncResult *result, GError **error)
{
        (void)ctx;
        return g_task_propagate_boolean(G_TASK(result), error);
}

/* --- artifacts ------------------------------------------------------------------------ */

void
itk_step_context_set_artifact_func(ItkStepContext *ctx, ItkStepArtifactFunc func, gpointer data)
{
        ctx->artifact_func = func;
        ctx->artifact_data = data;
}

void
itk_step_context_add_artifact_async(ItkStepContext *ctx, const char *path, const char *content_type,
                                    GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data)
{
        GTask *task = g_task_new(NULL, cancellable, callback, user_data);

        g_task_set_source_tag(task, itk_step_context_add_artifact_async);
        if (ctx->artifact_func == NULL) {
                /* No execution (unit tests): nothing keeps a list. */
                g_task_return_boolean(task, TRUE);
                g_object_unref(task);
                return;
        }
        ctx->artifact_func(ctx->artifact_data, ctx->step_id, path, content_type, task);
}

gboolean
itk_step_context_add_artifact_finish(ItkStepContext *ctx, GAsyncResult *result, GError **error)
{
        (void)ctx;
        return g_task_propagate_boolean(G_TASK(result), error);
}
