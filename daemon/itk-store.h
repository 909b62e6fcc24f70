/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The SQLite history store (DESIGN.md §6): WAL, synchronous=NORMAL (a
 * transaction is durable across a crash of the daemon once committed),
 * prepared statements kept for the hot path. Every method is synchronous and
 * short; the engine groups the writes of one transition between
 * itk_store_begin() and itk_store_commit() and only then announces it. */

typedef struct _ItkStore ItkStore;

typedef struct {
        const char *id;       /* canonical dashed UUID */
        const char *playbook; /* id or label */
        const char *playbook_name;
        const char *playbook_version;
        const char *domain;
        const char *status;          /* pending|running|paused|completed|failed|cancelled */
        const char *error;           /* NULL or "" when none */
        const char *parameters_json; /* redacted, NULL for none */
        gint64 created_at;           /* µs since the epoch; 0 = unset */
        gint64 started_at;
        gint64 finished_at;
        guint32 started_by_uid;
        gboolean debug_mode;
        gint32 total_steps;
        gint32 current_step;
        double progress; /* 0..1, as the Progress property */
        /* Start options besides parameters (JSON, redacted), NULL for none. */
        const char *options_json;
} ItkExecutionRecord;

typedef struct {
        const char *execution_id;
        const char *step_path; /* "id" or "parent/child" */
        gint32 position;       /* order of first appearance within the run */
        const char *name;
        const char *type;
        const char *status; /* pending|running|completed|failed|skipped|cancelled */
        guint32 attempts;
        gint64 started_at;
        gint64 finished_at;
        const char *error;
        const char *output_json; /* NULL when none */
        gint32 index;            /* within its playbook, as GetSteps' "index" */
        const char *phase;       /* "main" or "rollback"; NULL = "main" */
} ItkStepRecord;

ItkStore *itk_store_open(const char *path, GError **error);
void itk_store_free(ItkStore *store);

/* Outside begin/commit every call commits by itself. A begin while a
 * transaction is open (or a commit without one) is a caller bug: critical
 * warning and FALSE. After commit, failed or not, no transaction is open;
 * rollback is a no-op when none is, so error paths may call it freely. */
gboolean itk_store_begin(ItkStore *store, GError **error);
gboolean itk_store_commit(ItkStore *store, GError **error);
void itk_store_rollback(ItkStore *store);

gboolean itk_store_insert_execution(ItkStore *store, const ItkExecutionRecord *record,
                                    GError **error);
/* Updates status, error, started_at, finished_at, debug_mode, current_step. */
gboolean itk_store_update_execution(ItkStore *store, const ItkExecutionRecord *record,
                                    GError **error);
/* Inserts or replaces the row keyed by (execution_id, step_path); a
 * replaced row keeps its first position. */
gboolean itk_store_put_step(ItkStore *store, const ItkStepRecord *record, GError **error);
gboolean itk_store_append_log(ItkStore *store, const char *execution_id, gint64 usec,
                              guint priority, const char *step_id, const char *message,
                              GError **error);

/* Start-up recovery: runs left pending/running/paused become failed with
 * "interrupted: the daemon stopped during this run" and finished_at now;
 * their running steps become failed too. Returns how many runs, or -1. */
gint itk_store_mark_interrupted(ItkStore *store, GError **error);

/* Finished runs, newest first (by created_at), at most @limit (0 = 100);
 * @status NULL or "" for any. Each element is a GVariant a{sv} with keys:
 * id s, playbook s, playbook-name s, playbook-version s, domain s, status s,
 * error s, created-at x, started-at x, finished-at x, started-by-uid u,
 * debug-mode b, total-steps i, current-step i, progress d (as the Progress
 * property last was; -1 when not recorded), parameters s (JSON, "" when
 * none), options s (JSON object: credential s, gateway-url s,
 * timeout-overrides {step: seconds}; "" when none or not recorded). Runs that are not finished are
 * not history: a live @status matches nothing. */
GPtrArray *itk_store_list_executions(ItkStore *store, guint limit, const char *status,
                                     GError **error);
/* One run (live or finished) in the same a{sv} form, or NULL with
 * ITK_ERROR_NO_SUCH_EXECUTION. */
/* The getters below return a full reference (not floating). */
GVariant *itk_store_get_execution(ItkStore *store, const char *id, GError **error);
/* aa{sv} in the live GetSteps' shape: index i, step-id s, name s, type s,
 * status s, attempts u, started-at x, finished-at x, error s, output s (JSON
 * text, "" when none), phase s, children aa{sv} (steps of a playbook.run,
 * nested by their "parent/child" path), each level in position order.
 * Empty for a run without steps; ITK_ERROR_NO_SUCH_EXECUTION for no run. */
GVariant *itk_store_get_steps(ItkStore *store, const char *id, GError **error);
/* a(tuss) of (usec, priority, step_id, message), oldest first, the last
 * @max lines (0 = all); ITK_ERROR_NO_SUCH_EXECUTION for no run. */
GVariant *itk_store_get_log(ItkStore *store, const char *id, guint max, GError **error);
/* A file the run wrote into its folder (itk-artifact.h). */
typedef struct {
        const char *execution_id;
        const char *name; /* relative to the run's folder */
        const char *step_id;
        guint64 size;
        const char *content_type;
        const char *sha256; /* lowercase hex */
        gint64 created_at;  /* µs since the epoch */
} ItkArtifactRecord;

/* Inserts or replaces the row keyed by (execution_id, name);
 * ITK_ERROR_NO_SUCH_EXECUTION when the run has no row. */
gboolean itk_store_put_artifact(ItkStore *store, const ItkArtifactRecord *record, GError **error);
/* aa{sv} in ListArtifacts' shape: name s, step s, size t, content-type s,
 * sha256 s, created-at x; oldest first. ITK_ERROR_NO_SUCH_EXECUTION for no run. */
GVariant *itk_store_list_artifacts(ItkStore *store, const char *id, GError **error);
/* Deletes the run, its steps, log and artifact rows (not the files);
 * ITK_ERROR_NO_SUCH_EXECUTION if absent. */
gboolean itk_store_delete_execution(ItkStore *store, const char *id, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkStore, itk_store_free)

G_END_DECLS
