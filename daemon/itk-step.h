/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "itk-timer.h"

G_BEGIN_DECLS

/* Log priorities are syslog's (journald's PRIORITY=). */
typedef enum {
        ITK_LOG_ERR = 3,
        ITK_LOG_WARNING = 4,
        ITK_LOG_NOTICE = 5,
        ITK_LOG_INFO = 6,
        ITK_LOG_DEBUG = 7,
} ItkLogPriority;

typedef struct _ItkStepContext ItkStepContext;

/* A step handler is one asynchronous operation. It receives its parameters
 * with every {{ }} reference already resolved, and completes through a GTask
 * created with itk_step_task_new(): g_task_return_pointer() with a JsonNode
 * object (transfer full, free func json_node_unref) or g_task_return_error().
 *
 * Cancellation: when @cancellable fires the handler must complete within
 * milliseconds (timers destroyed, requests cancelled, process groups killed)
 * and return G_IO_ERROR_CANCELLED. The execution decides what the
 * cancellation meant (Cancel, Skip, SkipBack or the step timeout).
 *
 * @ctx is valid until the handler's task has returned. */
typedef void (*ItkStepRunFunc)(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data);

/* Parameter types of a step's schema, checked at validation on literal
 * values (a value holding a {{ }} reference is checked when it runs). */
typedef enum {
        ITK_STEP_PARAM_ANY,
        ITK_STEP_PARAM_STRING,
        ITK_STEP_PARAM_INTEGER, /* a whole number, or its text ("5000") */
        ITK_STEP_PARAM_NUMBER,
        ITK_STEP_PARAM_BOOLEAN,
        ITK_STEP_PARAM_LIST,
        ITK_STEP_PARAM_OBJECT,
        ITK_STEP_PARAM_SELECTOR, /* text in the browser's selector dialect */
} ItkStepParamType;

typedef struct {
        const char *name;
        ItkStepParamType type;
        /* JSON text of the default, NULL when none (documentation and
         * itk_step_params_get_*()). */
        const char *default_json;
        /* Allowed texts, NULL-terminated; NULL: any. */
        const char *const *choices;
} ItkStepParam;

typedef struct {
        const char *type;   /* "utility.sleep" */
        ItkStepRunFunc run; /* NULL: a known step type of later work, "not supported yet" */
        /* Waits only through ItkStepContext timers, so Pause suspends it at once
         * (DESIGN.md §4, "pausable steps"). */
        gboolean pausable;
        /* Required parameter names, NULL-terminated; for validation. A "a|b"
         * entry means either name satisfies it (`script` or `code`). */
        const char *const *required;
        /* Optional: the same step done synchronously, for steps that never
         * wait (log, set_variable). The engine then runs consecutive such
         * steps in one batch instead of one main-loop iteration each. */
        JsonNode *(*run_sync)(ItkStepContext *ctx, JsonObject *params, GError **error);
        /* Optional: the loadable module ("gateway" for itk-step-gateway.so)
         * that provides @run; loaded on the first run of such a step, so a
         * daemon that never talks to a gateway never maps libsoup. */
        const char *module;
        /* Optional: the parameters it knows, terminated by a NULL name; used
         * to check types and choices at validation. */
        const ItkStepParam *params;
} ItkStepHandler;

/* A step provider owns a family of step types (every type under its
 * prefixes): it describes them for validation, runs them, and may keep one
 * session per execution (a browser context) that nested playbooks share and
 * that the execution closes when the run ends. DESIGN.md §5. */
typedef struct {
        const char *name;            /* "browser"; also the session key */
        const char *const *prefixes; /* "browser.", "perspective.", NULL-terminated */
        ItkStepHandler *handlers;    /* mutable: modules install run functions */
        guint n_handlers;
        /* Non-NULL: the family is declared but later work; every type under its
         * prefixes validates with ITK_ERROR_NOT_SUPPORTED "step type 'x' is not
         * supported yet". */
        gboolean later;
        /* Optional: can this family run here at all (Chromium installed)?
         * FALSE with a clear error, reported at validation and at start. */
        gboolean (*check_available)(GError **error);
        /* Optional: checks of literal parameter values beyond the schema. On
         * FALSE, *param names the parameter at fault and *offset the 0-based
         * byte offset inside its text (-1: the whole value). */
        gboolean (*validate)(const ItkStepHandler *handler, JsonObject *params, const char **param,
                             gssize *offset, GError **error);
} ItkStepProvider;

void itk_step_registry_register_provider(const ItkStepProvider *provider);
/* The provider owning @type (by prefix), or NULL. */
const ItkStepProvider *itk_step_registry_lookup_provider(const char *type);
/* Validation of a step's literal parameters against its handler's schema and
 * its provider's checks; see ItkStepProvider.validate for @param/@offset. */
gboolean itk_step_registry_validate_params(const char *type, JsonObject *params, const char **param,
                                           gssize *offset, GError **error);

/* Per-execution sessions, keyed by provider name. The execution owns one
 * table, shares it with the contexts of every step (nested playbooks
 * included) and closes it when the run ends or is cancelled. */
typedef struct _ItkStepSessions ItkStepSessions;
ItkStepSessions *itk_step_sessions_new(void);
/* Closes every session (their destroy functions run now). */
void itk_step_sessions_close(ItkStepSessions *sessions);
void itk_step_sessions_free(ItkStepSessions *sessions);
/* Told when the session @name is installed, and with @session NULL just
 * before it closes (the live view follows the run's browser page). */
typedef void (*ItkStepSessionChangedFunc)(gpointer user_data, const char *name, gpointer session);
void itk_step_sessions_set_changed_func(ItkStepSessions *sessions, ItkStepSessionChangedFunc func,
                                        gpointer user_data);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkStepSessions, itk_step_sessions_free)

void itk_step_registry_register(const ItkStepHandler *handler);
/* Registers every built-in handler once (utility, playbook, gateway, ...). */
void itk_step_registry_ensure(void);
const ItkStepHandler *itk_step_registry_lookup(const char *type);
/* TRUE when @type can run. Otherwise a validation error naming it:
 * ITK_ERROR_NOT_SUPPORTED "step type 'browser.click' is not supported yet"
 * for the families of later work (browser, perspective, fat, designer, and
 * any registered without a run function), ITK_ERROR_INVALID_PLAYBOOK
 * "unknown step type 'x'" otherwise. */
gboolean itk_step_registry_check_type(const char *type, GError **error);
/* The handler ready to run @type: loads its module first if needed.
 * ITK_ERROR_NOT_SUPPORTED when the module cannot be loaded. */
const ItkStepHandler *itk_step_registry_resolve(const char *type, GError **error);
/* For modules: installs the run function of a registered @type. */
void itk_step_registry_set_run(const char *type, ItkStepRunFunc run);

/* Helpers for handlers. */
GTask *itk_step_task_new(ItkStepContext *ctx, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data);
JsonNode *itk_step_run_finish(GAsyncResult *result, GError **error);

/* --- The context handed to a running step ---------------------------------
 * The execution creates one per attempt. Tests build one with
 * itk_step_context_new() and the setters below. */

typedef void (*ItkStepLogFunc)(gpointer user_data, ItkLogPriority priority, const char *step_id,
                               const char *message);

/* Brackets a batch of log lines: @begin TRUE before, FALSE after. */
typedef void (*ItkStepLogBatchFunc)(gpointer user_data, gboolean begin);

ItkStepContext *itk_step_context_new(const char *step_id);
ItkStepContext *itk_step_context_ref(ItkStepContext *ctx);
void itk_step_context_unref(ItkStepContext *ctx);

/* Setters, for the execution (or a test). */
void itk_step_context_set_log_func(ItkStepContext *ctx, ItkStepLogFunc func, gpointer user_data);
/* Optional; the execution stores a batch in one transaction and announces
 * its lines after the commit. */
void itk_step_context_set_log_batch_func(ItkStepContext *ctx, ItkStepLogBatchFunc func,
                                         gpointer user_data);
/* Borrowed; the variables of the playbook frame the step runs in. */
void itk_step_context_set_variables(ItkStepContext *ctx, JsonObject *variables);
/* Borrowed; the execution's pausable timers. */
void itk_step_context_set_timer_group(ItkStepContext *ctx, ItkTimerGroup *timers);
void itk_step_context_set_work_dir(ItkStepContext *ctx, const char *dir);
void itk_step_context_set_playbook_dir(ItkStepContext *ctx, const char *dir);
void itk_step_context_set_gateway_url(ItkStepContext *ctx, const char *url);
/* Secret: never logged; the handler sends it in a header. */
void itk_step_context_set_gateway_token(ItkStepContext *ctx, const char *token);
void itk_step_context_set_python(ItkStepContext *ctx, const char *python);
/* Lines a script step may send to the log (the rest is only captured);
 * 0, the default: ITK_STEP_MAX_SCRIPT_LOG_LINES. */
#define ITK_STEP_MAX_SCRIPT_LOG_LINES 1000000
void itk_step_context_set_script_log_lines(ItkStepContext *ctx, guint max);
guint itk_step_context_get_script_log_lines(ItkStepContext *ctx);
/* Borrowed; the execution's sessions. */
void itk_step_context_set_sessions(ItkStepContext *ctx, ItkStepSessions *sessions);
/* Set for handlers: the values of secrets in use (redacted everywhere). */
void itk_step_context_set_secret_func(ItkStepContext *ctx,
                                      gboolean (*is_secret)(gpointer data, const char *value),
                                      gpointer data);

/* Records the file at @path (in the run's folder) as an artifact of the
 * step: completes @task (transfer full) with TRUE once it is listed, or an
 * error (outside the run's folder, unreadable). */
typedef void (*ItkStepArtifactFunc)(gpointer data, const char *step_id, const char *path,
                                    const char *content_type, GTask *task);
void itk_step_context_set_artifact_func(ItkStepContext *ctx, ItkStepArtifactFunc func,
                                        gpointer data);

/* Accessors, for handlers. */
const char *itk_step_context_get_step_id(ItkStepContext *ctx);
/* Appends one line to the execution log under this step; the execution
 * redacts secrets and bounds the size. */
void itk_step_context_log(ItkStepContext *ctx, ItkLogPriority priority, const char *message);
void itk_step_context_logf(ItkStepContext *ctx, ItkLogPriority priority, const char *format, ...)
        G_GNUC_PRINTF(3, 4);
/* Groups the lines logged until the matching end (@begin FALSE) into one
 * batch: one store transaction, one group of Log signals (one per line,
 * after the commit). Pairs must nest; for a burst of lines such as one read
 * of a script's output. */
void itk_step_context_log_batch(ItkStepContext *ctx, gboolean begin);
JsonObject *itk_step_context_get_variables(ItkStepContext *ctx);
void itk_step_context_set_variable(ItkStepContext *ctx, const char *name, JsonNode *value);
ItkTimerGroup *itk_step_context_get_timer_group(ItkStepContext *ctx);
const char *itk_step_context_get_work_dir(ItkStepContext *ctx);
/* Folder of the playbook file, for relative paths; NULL for a playbook sent as text. */
const char *itk_step_context_get_playbook_dir(ItkStepContext *ctx);
const char *itk_step_context_get_gateway_url(ItkStepContext *ctx);
const char *itk_step_context_get_gateway_token(ItkStepContext *ctx);
/* The interpreter for utility.python ("python3" unless configured). */
const char *itk_step_context_get_python(ItkStepContext *ctx);
/* The session of provider @name for this execution, NULL when none yet. */
gpointer itk_step_context_get_session(ItkStepContext *ctx, const char *name);
/* Installs @session (closed with @close when the run ends); FALSE, and
 * @session closed at once, when the context has no session table. */
gboolean itk_step_context_set_session(ItkStepContext *ctx, const char *name, gpointer session,
                                      GDestroyNotify close);
/* TRUE when @value is (or contains) a secret of the run: a password from a
 * credential or a secret parameter. */
gboolean itk_step_context_is_secret(ItkStepContext *ctx, const char *value);

/* The step wrote @path (a screenshot, a download, a backup): list it among
 * the run's artifacts (name, size, SHA-256, @content_type or NULL to guess
 * from the name), hashed off the main loop. Completes TRUE without an
 * execution; an error when @path is outside the run's folder or unreadable
 * (the step decides whether that matters: usually a warning). */
void itk_step_context_add_artifact_async(ItkStepContext *ctx, const char *path,
                                         const char *content_type, GCancellable *cancellable,
                                         GAsyncReadyCallback callback, gpointer user_data);
gboolean itk_step_context_add_artifact_finish(ItkStepContext *ctx, GAsyncResult *result,
                                              GError **error);

/* A pausable, cancellable wait of @msec on the execution's timer group.
 * Completes with TRUE, or FALSE and G_IO_ERROR_CANCELLED. */
void itk_step_context_sleep_async(ItkStepContext *ctx, guint64 msec, GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data);
gboolean itk_step_context_sleep_finish(ItkStepContext *ctx, GAsyncResult *result, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkStepContext, itk_step_context_unref)

/* Registration entry points of the step families (steps/). */
void itk_step_utility_register(void);
void itk_step_playbook_register(void);
void itk_step_gateway_register(void);
void itk_step_browser_register(void);
void itk_step_later_register(void);
/* The gateway module's entry point (steps/itk-step-gateway.c). */
void itk_step_gateway_module_init(void);
/* The browser module's entry point (steps/itk-step-browser.c). */
void itk_step_browser_module_init(void);

G_END_DECLS
