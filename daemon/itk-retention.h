/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "itk-store-history.h"

G_BEGIN_DECLS

/* History retention (toolkit.conf HistoryMaxAgeDays, HistoryMaxRuns): a
 * pass a while after start and then every interval deletes the runs too old
 * or too many, a small transaction per low-priority idle callback so that
 * the main loop never waits long, and removes their folders under runs/ on
 * a worker thread. */

typedef struct {
        guint max_age_days;    /* 0: no age limit */
        guint max_runs;        /* 0: no count limit */
        guint interval_sec;    /* between passes; 0: 3600 */
        guint batch_runs;      /* 0: the store's default */
        guint batch_lines;     /* 0: the store's default */
        ItkStoreKeepFunc keep; /* runs it keeps are left for a later pass */
        gpointer keep_data;
        /* Called after each pass, folders removed (tests). */
        void (*pass_done)(guint n_removed, gpointer user_data);
        gpointer pass_done_data;
} ItkRetentionConfig;

typedef struct _ItkRetention ItkRetention;

/* @store is borrowed and must outlive the retention; @runs_dir holds a
 * folder per run named by its 32 hex digits. */
ItkRetention *itk_retention_new(ItkStore *store, const char *runs_dir,
                                const ItkRetentionConfig *config);
/* Starts a pass now unless one is going. */
void itk_retention_run_now(ItkRetention *self);
void itk_retention_free(ItkRetention *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkRetention, itk_retention_free)

G_END_DECLS
