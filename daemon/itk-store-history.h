/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "itk-store.h"

G_BEGIN_DECLS

/* Paged reads and retention of the history store. Pages are keyset pages:
 * a cursor names the last row a page held (never an offset), so runs added
 * or pruned between two calls neither repeat nor skip a run, and every page
 * is a range of an index however many runs are stored. Cursors are opaque
 * to callers; a malformed one is ITK_ERROR_INVALID_ARGS. */

/* GetHistoryPage: 0 = default, above the cap ITK_ERROR_INVALID_ARGS. */
#define ITK_STORE_HISTORY_PAGE_DEFAULT 100
#define ITK_STORE_HISTORY_PAGE_MAX 1000
/* Runs one "text" search call examines at most (bounds the work per call). */
#define ITK_STORE_HISTORY_SCAN_MAX 5000
/* GetLogPage / GetHistoryLogPage. */
#define ITK_STORE_LOG_PAGE_DEFAULT 1000
#define ITK_STORE_LOG_PAGE_MAX 5000

typedef struct {
        const char *status;   /* NULL or "" for any finished status */
        const char *playbook; /* NULL or "" for any; else exact */
        gint64 since;         /* created_at >= since (µs); G_MININT64: none */
        gint64 until;         /* created_at < until (µs); G_MAXINT64: none */
        const char *text;     /* NULL or "": none; ASCII case-insensitive substring */
} ItkHistoryFilter;

#define ITK_HISTORY_FILTER_INIT                                                                    \
        {                                                                                          \
                NULL, NULL, G_MININT64, G_MAXINT64, NULL                                           \
        }

/* Finished runs, newest first, as itk_store_list_executions() (a full
 * reference to an aa{sv}). @cursor NULL or "" for the first page.
 * *next_cursor is "" when no more pages; a page may be short or empty
 * while it is not (a text search stops after ITK_STORE_HISTORY_SCAN_MAX
 * runs). */
GVariant *itk_store_list_page(ItkStore *store, const ItkHistoryFilter *filter, guint limit,
                              const char *cursor, char **next_cursor, GError **error);

/* a(tuss) of a run's stored log, oldest first, after @cursor (NULL or ""
 * for the first line). *next_cursor is "" once the last line of a finished
 * run was returned; for a live run it is never "". ITK_ERROR_NO_SUCH_EXECUTION
 * for no run. */
GVariant *itk_store_get_log_page(ItkStore *store, const char *id, guint limit, const char *cursor,
                                 char **next_cursor, GError **error);

/* --- retention ------------------------------------------------------------------- */

typedef struct {
        gint64 created_before; /* runs created before this (µs) go; 0: no age limit */
        guint max_runs;        /* keep the newest this many runs; 0: no count limit */
        guint batch_runs;      /* runs deleted per transaction; 0: 50 */
        guint batch_lines;     /* log lines deleted per transaction; 0: 5000 */
} ItkStorePrunePolicy;

/* TRUE keeps the run (by dashed id) this time, e.g. while it is on the bus. */
typedef gboolean (*ItkStoreKeepFunc)(const char *id, gpointer user_data);

/* A pruning pass: which runs are too old or too many is decided when it
 * begins; each step is one short transaction. Runs that are not finished
 * are never pruned. */
typedef struct _ItkStorePrune ItkStorePrune;

ItkStorePrune *itk_store_prune_new(ItkStore *store, const ItkStorePrunePolicy *policy,
                                   GError **error);
/* Deletes up to a batch of runs (with their steps and log lines) in one
 * transaction, oldest first, and appends their dashed ids to @removed. A
 * run with more log lines than a batch loses them a batch at a time first.
 * Does nothing while a caller's transaction is open (try again later).
 * *done is TRUE when the pass is over. */
gboolean itk_store_prune_step(ItkStorePrune *prune, ItkStoreKeepFunc keep, gpointer user_data,
                              GPtrArray *removed, gboolean *done, GError **error);
void itk_store_prune_free(ItkStorePrune *prune);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkStorePrune, itk_store_prune_free)

G_END_DECLS
