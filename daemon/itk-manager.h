/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib-object.h>
#include <json-glib/json-glib.h>

#include "itk-credentials.h"
#include "itk-execution.h"
#include "itk-input-files.h"
#include "itk-store-history.h"

G_BEGIN_DECLS

/* The executions table, limits, retention, the playbook library and the
 * history queries. No sd-bus here: itk-manager-dbus.c is the glue. */

typedef struct {
        const char *state_dir;            /* history.db, runs/ */
        const char *const *playbook_dirs; /* library folders, searched in order */
        guint max_concurrent;             /* 0 = unlimited */
        guint max_per_caller;             /* 0 = unlimited */
        guint retention_sec;              /* finished runs stay on the bus this long */
        guint pending_timeout_sec;        /* unstarted pending runs are cancelled after */
        const char *python;               /* interpreter for utility.python */
        gboolean require_verified_nested;
        guint history_max_age_days;       /* runs created longer ago are pruned; 0 = keep */
        guint history_max_runs;           /* the newest this many are kept; 0 = all */
        guint history_prune_interval_sec; /* between pruning passes; 0 = 3600 */
        guint64 input_max_bytes;          /* a staged input file; 0 = the default */
        guint input_expiry_sec;           /* unused staged files are dropped; 0 = default */
        const char *const *input_dirs;    /* host folders files may be chosen from */
} ItkManagerConfig;

typedef struct {
        const char *source; /* YAML text, or NULL for a library id */
        gboolean debug;
        gboolean start;
        const char *credential;
        const char *gateway_url;
        GHashTable *timeout_overrides; /* step id -> GUINT_TO_POINTER(seconds) */
        gboolean cancel_on_disconnect;
        guint32 uid;        /* the caller */
        const char *sender; /* the caller's bus name, NULL when none */
} ItkStartOptions;

#define ITK_TYPE_MANAGER (itk_manager_get_type())
G_DECLARE_FINAL_TYPE(ItkManager, itk_manager, ITK, MANAGER, GObject)

/* Opens the store in the state directory and marks runs a previous daemon
 * left behind as interrupted. */
ItkManager *itk_manager_new(const ItkManagerConfig *config, GError **error);

/* Validates and creates a pending execution, adds it to the table and emits
 * "execution-added". Starting it (after the caller's reply) is the caller's
 * job: itk_execution_start() when options->start. */
ItkExecution *itk_manager_create_execution(ItkManager *self, const char *playbook,
                                           JsonObject *parameters, const ItkStartOptions *options,
                                           GError **error);
/* Staged input files for `file` parameters; borrowed. */
ItkInputFiles *itk_manager_get_input_files(ItkManager *self);
/* By dashed id or 32 hex digits; NULL when not on the bus. */
ItkExecution *itk_manager_lookup(ItkManager *self, const char *id);
/* Live executions, in creation order; borrowed. */
GPtrArray *itk_manager_get_executions(ItkManager *self);
guint itk_manager_get_active_count(ItkManager *self);
guint itk_manager_get_max_concurrent(ItkManager *self);
guint itk_manager_get_max_per_caller(ItkManager *self);
guint itk_manager_get_retention_sec(ItkManager *self);

/* Cancels the runs started with cancel-on-disconnect by @sender. */
void itk_manager_sender_vanished(ItkManager *self, const char *sender);
/* Cancels every active run (daemon shutdown). */
void itk_manager_cancel_all(ItkManager *self);

GVariant *itk_manager_get_history(ItkManager *self, guint limit, const char *status,
                                  GError **error);
GVariant *itk_manager_get_record(ItkManager *self, const char *id, GError **error);
gboolean itk_manager_delete_execution(ItkManager *self, const char *id, GError **error);
/* Paged history (itk-store-history.h): a full reference; *next_cursor "" at
 * the end. A run's log by id, live or not. */
GVariant *itk_manager_get_history_page(ItkManager *self, const ItkHistoryFilter *filter,
                                       guint limit, const char *cursor, char **next_cursor,
                                       GError **error);
GVariant *itk_manager_get_log_page(ItkManager *self, const char *id, guint limit,
                                   const char *cursor, char **next_cursor, GError **error);
/* The uid that started the run @id (live or stored), or FALSE when none. */
gboolean itk_manager_get_run_owner(ItkManager *self, const char *id, guint32 *uid);
/* Artifacts of a run, live or in history (dashed or hex @id). */
/* aa{sv} as Execution.ListArtifacts, a full reference; ITK_ERROR_NO_SUCH_EXECUTION. */
GVariant *itk_manager_list_artifacts(ItkManager *self, const char *id, GError **error);
/* A read-only fd of the listed artifact @name, or -1 (ITK_ERROR_NO_SUCH_EXECUTION,
 * ITK_ERROR_NO_SUCH_ARTIFACT, ITK_ERROR_INVALID_ARGS). */
int itk_manager_open_artifact(ItkManager *self, const char *id, const char *name, GError **error);

GVariant *itk_manager_list_playbooks(ItkManager *self);
GVariant *itk_manager_get_playbook(ItkManager *self, const char *id, GError **error);
/* aa{sv} of diagnostics; never fails. */
GVariant *itk_manager_validate_playbook(ItkManager *self, const char *source);
/* Loads a library playbook by id; ITK_ERROR_NO_SUCH_PLAYBOOK or
 * ITK_ERROR_INVALID_PLAYBOOK. */
ItkPlaybook *itk_manager_load_playbook(ItkManager *self, const char *id, GError **error);

/* The local library (STATEDIR/playbooks/local, listed with local=true):
 * SavePlaybook refuses an invalid playbook (ITK_ERROR_INVALID_PLAYBOOK) and
 * an id a read-only folder holds (ITK_ERROR_ACCESS_DENIED), else writes it
 * atomically and finishes with the diagnostics (warnings) as aa{sv}.
 * Bad ids: ITK_ERROR_INVALID_ARGS. */
void itk_manager_save_playbook_async(ItkManager *self, const char *id, const char *source,
                                     GAsyncReadyCallback callback, gpointer user_data);
GVariant *itk_manager_save_playbook_finish(ItkManager *self, GAsyncResult *result, GError **error);
/* ITK_ERROR_NO_SUCH_PLAYBOOK, or ITK_ERROR_ACCESS_DENIED for a read-only one. */
void itk_manager_delete_playbook_async(ItkManager *self, const char *id,
                                       GAsyncReadyCallback callback, gpointer user_data);
gboolean itk_manager_delete_playbook_finish(ItkManager *self, GAsyncResult *result, GError **error);
const char *itk_manager_get_local_playbook_dir(ItkManager *self);

/* The credential store; borrowed. */
ItkCredentials *itk_manager_get_credentials(ItkManager *self);

/* Diagnostics as aa{sv}; shared with the CLI's offline validation. */
GVariant *itk_diagnostics_to_variant(GPtrArray *diagnostics);

G_END_DECLS
