/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include <gmodule.h>

#include "config.h"
#include "itk-step.h"
#include "itk-error.h"

static GHashTable *registry; /* type -> const ItkStepHandler* */

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
                g_once_init_leave(&once, 1);
        }
}

const ItkStepHandler *
itk_step_registry_lookup(const char *type)
{
        itk_step_registry_ensure();
        return type != NULL ? g_hash_table_lookup(registry, type) : NULL;
}

gboolean
itk_step_registry_check_type(const char *type, GError **error)
{
        static const char *const later[] = { "browser.", "perspective.", "fat.", "designer.",
                                             NULL };
        const ItkStepHandler *handler = itk_step_registry_lookup(type);

        if (handler != NULL && (handler->run != NULL || handler->module != NULL))
                return TRUE;
        if (handler == NULL) {
                gboolean is_later = FALSE;
                for (guint i = 0; later[i] != NULL; i++)
                        is_later |= g_str_has_prefix(type, later[i]);
                if (!is_later) {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK,
                                    "unknown step type '%s'", type);
                        return FALSE;
                }
        }
        g_set_error(error, ITK_ERROR, ITK_ERROR_NOT_SUPPORTED,
                    "step type '%s' is not supported yet", type);
        return FALSE;
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
        JsonObject *variables;
        ItkTimerGroup *timers;
        char *work_dir;
        char *playbook_dir;
        char *gateway_url;
        char *gateway_token;
        char *python;
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
