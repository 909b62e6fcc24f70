/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib-object.h>
#include <json-glib/json-glib.h>

#include "itk-live-view.h"
#include "itk-playbook.h"
#include "itk-secret-set.h"
#include "itk-store.h"
#include "itk-template.h"

G_BEGIN_DECLS

/* The execution state machine (DESIGN.md §4, §5). It knows nothing of the
 * bus: the glue in itk-execution-dbus.c mirrors its GObject signals.
 *
 * Every transition is committed to the store (when there is one) before the
 * signal that announces it is emitted. */

typedef enum {
        ITK_STATUS_PENDING,
        ITK_STATUS_RUNNING,
        ITK_STATUS_PAUSED,
        ITK_STATUS_COMPLETED,
        ITK_STATUS_FAILED,
        ITK_STATUS_CANCELLED,
} ItkStatus;

typedef enum {
        ITK_STEP_PENDING,
        ITK_STEP_RUNNING,
        ITK_STEP_COMPLETED,
        ITK_STEP_FAILED,
        ITK_STEP_SKIPPED,
        ITK_STEP_CANCELLED,
} ItkStepStatus;

const char *itk_status_to_string(ItkStatus status);
gboolean itk_status_is_terminal(ItkStatus status);
const char *itk_step_status_to_string(ItkStepStatus status);

/* Flags of the "properties-changed" signal. */
typedef enum {
        ITK_EXECUTION_PROP_STATUS = 1 << 0,
        ITK_EXECUTION_PROP_PAUSE_REQUESTED = 1 << 1,
        ITK_EXECUTION_PROP_DEBUG_MODE = 1 << 2,
        ITK_EXECUTION_PROP_CURRENT_STEP = 1 << 3, /* CurrentStep, CurrentStepId, CurrentStepName */
        ITK_EXECUTION_PROP_PROGRESS = 1 << 4,
        ITK_EXECUTION_PROP_STARTED_AT = 1 << 5,
        ITK_EXECUTION_PROP_FINISHED_AT = 1 << 6,
        ITK_EXECUTION_PROP_ERROR = 1 << 7,
} ItkExecutionProp;

/* Loads a playbook.run target and binds nothing; borrowed from the manager. */
typedef struct {
        ItkPlaybook *playbook;  /* required */
        JsonObject *parameters; /* bound (itk_playbook_bind_parameters) */
        ItkStore *store;        /* NULL: no history (unit tests) */
        const char *work_dir;   /* the run's folder; NULL: the temp dir */
        /* When set, the run's folder is made as <runs_dir>/<object id> before its
         * history row, and becomes work_dir: a run whose folder cannot be made
         * leaves no row behind. */
        const char *runs_dir;
        const char *gateway_url;       /* option, NULL when none */
        const char *credential;        /* the credential option's name, NULL when none */
        GHashTable *timeout_overrides; /* step id -> GUINT_TO_POINTER(seconds); borrowed */
        gboolean debug_mode;
        guint32 started_by_uid;
        const char *python;             /* interpreter for utility.python */
        ItkPlaybookResolveFunc resolve; /* playbook.run targets */
        gpointer resolve_data;
        ItkCredentialLookupFunc credential_lookup;
        gpointer credential_data;
        /* Secrets to mask from the start (passwords of a credential used to
         * fill parameters, ...). NULL-terminated, may be NULL. */
        const char *const *secrets;
        /* Gateway API token from a credential; never shown anywhere. */
        const char *gateway_token;
        /* Every stored secret, masked in this run too (borrowed, may be NULL). */
        ItkSecretSet *shared_secrets;
        /* Called once the run's folder exists, before the history row: may put
         * files there and change config->parameters (input files). */
        gboolean (*prepare_run_dir)(const char *run_dir, JsonObject *parameters, gpointer data,
                                    GError **error);
        gpointer prepare_data;
} ItkExecutionConfig;

#define ITK_TYPE_EXECUTION (itk_execution_get_type())
G_DECLARE_FINAL_TYPE(ItkExecution, itk_execution, ITK, EXECUTION, GObject)

/* Creates a pending execution and records it in the store. */
ItkExecution *itk_execution_new(const ItkExecutionConfig *config, GError **error);
/* The store's secrets changed: mask @set's from now on; those no longer in
 * it stay masked in this run (itk_redactor_set_shared()). */
void itk_execution_set_shared_secrets(ItkExecution *self, ItkSecretSet *set);

const char *itk_execution_get_id(ItkExecution *self);        /* dashed UUID */
const char *itk_execution_get_object_id(ItkExecution *self); /* 32 hex digits */
const char *itk_execution_get_playbook_id(ItkExecution *self);
ItkPlaybook *itk_execution_get_playbook(ItkExecution *self);
ItkStatus itk_execution_get_status(ItkExecution *self);
gboolean itk_execution_get_pause_requested(ItkExecution *self);
gboolean itk_execution_get_debug_mode(ItkExecution *self);
int itk_execution_get_current_step(ItkExecution *self);
/* "" when none; nested as "parent/child". */
const char *itk_execution_get_current_step_id(ItkExecution *self);
const char *itk_execution_get_current_step_name(ItkExecution *self);
guint itk_execution_get_total_steps(ItkExecution *self);
double itk_execution_get_progress(ItkExecution *self);
gint64 itk_execution_get_started_at(ItkExecution *self);
gint64 itk_execution_get_finished_at(ItkExecution *self);
const char *itk_execution_get_error(ItkExecution *self); /* "" when none */
guint32 itk_execution_get_started_by_uid(ItkExecution *self);

/* Control methods; the table of DESIGN.md §4. Errors: ITK_ERROR_INVALID_STATE,
 * ITK_ERROR_NOT_RUNNING. */
gboolean itk_execution_start(ItkExecution *self, GError **error);
gboolean itk_execution_cancel(ItkExecution *self, GError **error);
gboolean itk_execution_pause(ItkExecution *self, GError **error);
gboolean itk_execution_resume(ItkExecution *self, GError **error);
gboolean itk_execution_skip(ItkExecution *self, GError **error);
gboolean itk_execution_skip_back(ItkExecution *self, GError **error);
gboolean itk_execution_set_debug_mode(ItkExecution *self, gboolean enabled, GError **error);

/* aa{sv} as Execution.GetSteps; floating. */
GVariant *itk_execution_get_steps(ItkExecution *self);
/* a(tuss), the newest @max lines (0 = all kept); transfer full. */
GVariant *itk_execution_get_log(ItkExecution *self, guint max, GError **error);

/* Artifacts (files steps wrote into the run's folder), as Execution.ListArtifacts:
 * aa{sv} name s, step s, size t, content-type s, sha256 s, created-at x; floating. */
GVariant *itk_execution_list_artifacts(ItkExecution *self);
/* A read-only fd of the listed artifact @name (itk_artifact_open()), or -1 with
 * ITK_ERROR_INVALID_ARGS or ITK_ERROR_NO_SUCH_ARTIFACT. */
int itk_execution_open_artifact(ItkExecution *self, const char *name, GError **error);
/* The watchers of the run's browser (OpenLiveView, SendInput), made on first
 * use; ITK_ERROR_NOT_RUNNING once the run ended (all watchers were closed). */
ItkLiveView *itk_execution_get_live_view(ItkExecution *self, GError **error);
/* A line of the operator's (live steering) in the run's log, redacted. */
void itk_execution_log_operator(ItkExecution *self, const char *message);

/* The run's folder (scripts' working directory, downloads); set before it starts. */
void itk_execution_set_work_dir(ItkExecution *self, const char *dir);

/* A pending run ends cancelled after this many ms unless started (0 = never). */
void itk_execution_set_pending_timeout(ItkExecution *self, guint msec);
/* A run that ended because the history store failed: stores its end (all
 * steps and the run's row) once the store writes again. TRUE when there is
 * nothing (more) to store. */
gboolean itk_execution_save_end(ItkExecution *self, GError **error);

G_END_DECLS
