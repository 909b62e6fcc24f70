/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "itk-store-history.h"

#include <string.h>

#include "itk-error.h"
#include "itk-store-private.h"

#define ITK_STORE_FINISHED_SQL "('completed', 'failed', 'cancelled')"
#define ITK_STORE_HISTORY_CURSOR "h1:"
#define ITK_STORE_LOG_CURSOR "l1:"
#define ITK_STORE_PRUNE_BATCH_RUNS 50
#define ITK_STORE_PRUNE_BATCH_LINES 5000

/* Statements here are prepared per call (a few tens of µs): the queries
 * depend on the filter, and the store's cache stays the hot path's. */
typedef sqlite3_stmt ItkStoreQuery;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkStoreQuery, sqlite3_finalize)

static void
itk_store_history_set_error(ItkStore *store, GError **error, const char *what)
{
        g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED, "Failed to %s in history store %s: %s",
                    what, itk_store_get_path(store), sqlite3_errmsg(itk_store_get_db(store)));
}

static ItkStoreQuery *
itk_store_history_prepare(ItkStore *store, const char *sql, const char *what, GError **error)
{
        sqlite3_stmt *stmt = NULL;

        if (sqlite3_prepare_v2(itk_store_get_db(store), sql, -1, &stmt, NULL) != SQLITE_OK) {
                itk_store_history_set_error(store, error, what);
                sqlite3_finalize(stmt);
                return NULL;
        }
        return stmt;
}

static gboolean
itk_store_history_check_limit(guint *limit, guint fallback, guint max, const char *what,
                              GError **error)
{
        if (*limit == 0)
                *limit = fallback;
        if (*limit <= max)
                return TRUE;
        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                    "limit %u is above the maximum of %u %s per call", *limit, max, what);
        return FALSE;
}

static void
itk_store_history_bad_cursor(GError **error)
{
        /* The cursor is not quoted back: it is the caller's arbitrary text. */
        g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                            "invalid cursor: pass \"\" for the first page or the next_cursor "
                            "of the previous page");
}

static gboolean
itk_store_history_parse_int(const char *text, gint64 *value)
{
        guint64 magnitude = 0;
        gboolean negative = text[0] == '-';

        /* Strict: digits only, no spaces, no "+" */
        text += negative ? 1 : 0;
        if (text[0] == '\0' || strspn(text, "0123456789") != strlen(text) ||
            !g_ascii_string_to_unsigned(text, 10, 0, (guint64)G_MAXINT64 + (negative ? 1 : 0),
                                        &magnitude, NULL))
                return FALSE;
        *value = negative ? (gint64)(0 - magnitude) : (gint64)magnitude;
        return TRUE;
}

/* "h1:<created_at>:<rowid>" of the last row of the previous page. */
static gboolean
itk_store_history_parse_cursor(const char *cursor, gint64 *created_at, gint64 *rowid,
                               GError **error)
{
        g_auto(GStrv) parts = NULL;

        if (cursor == NULL || *cursor == '\0') {
                *created_at = G_MAXINT64;
                *rowid = G_MAXINT64;
                return TRUE;
        }
        if (!g_str_has_prefix(cursor, ITK_STORE_HISTORY_CURSOR) || strlen(cursor) > 64) {
                itk_store_history_bad_cursor(error);
                return FALSE;
        }
        parts = g_strsplit(cursor + strlen(ITK_STORE_HISTORY_CURSOR), ":", 3);
        if (g_strv_length(parts) != 2 || !itk_store_history_parse_int(parts[0], created_at) ||
            !itk_store_history_parse_int(parts[1], rowid)) {
                itk_store_history_bad_cursor(error);
                return FALSE;
        }
        return TRUE;
}

static gboolean
itk_store_history_valid_status(const char *status)
{
        return g_strcmp0(status, "completed") == 0 || g_strcmp0(status, "failed") == 0 ||
               g_strcmp0(status, "cancelled") == 0;
}

GVariant *
itk_store_list_page(ItkStore *store, const ItkHistoryFilter *filter, guint limit,
                    const char *cursor, char **next_cursor, GError **error)
{
        g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("aa{sv}"));
        g_autoptr(ItkStoreQuery) stmt = NULL;
        g_autoptr(GString) sql = NULL;
        g_autofree char *text = NULL;
        ItkHistoryFilter none = ITK_HISTORY_FILTER_INIT;
        int n_columns;
        gboolean by_status, by_playbook;
        gint64 cursor_created, cursor_rowid, upper;
        gint64 last_created = 0, last_rowid = 0;
        guint scan, scanned = 0, matched = 0;
        gboolean more = FALSE;
        int rc;

        g_return_val_if_fail(store != NULL, NULL);
        g_return_val_if_fail(next_cursor != NULL, NULL);

        if (filter == NULL)
                filter = &none;
        if (!itk_store_history_check_limit(&limit, ITK_STORE_HISTORY_PAGE_DEFAULT,
                                           ITK_STORE_HISTORY_PAGE_MAX, "runs", error) ||
            !itk_store_history_parse_cursor(cursor, &cursor_created, &cursor_rowid, error))
                return NULL;
        by_status = filter->status != NULL && *filter->status != '\0';
        by_playbook = filter->playbook != NULL && *filter->playbook != '\0';
        if (by_status && !itk_store_history_valid_status(filter->status)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                            "unknown status '%s': use completed, failed or cancelled",
                            filter->status);
                return NULL;
        }
        if (filter->text != NULL && *filter->text != '\0')
                text = g_ascii_strdown(filter->text, -1);

        /* One range of an index (created_at, or status/playbook then
         * created_at) walked newest first from the cursor; the unary + keeps
         * the planner off the status index when only finished-ness is asked. */
        sql = g_string_new("SELECT ");
        g_string_append(sql, itk_store_execution_columns());
        g_string_append(sql, ", rowid");
        if (text != NULL)
                g_string_append(sql, ", instr(lower(id || ' ' || playbook || ' ' || playbook_name "
                                     "|| ' ' || domain || ' ' || error), ?7) > 0");
        g_string_append(sql, " FROM executions WHERE ");
        g_string_append(sql, by_status ? "status = ?5" : "+status IN " ITK_STORE_FINISHED_SQL);
        if (by_playbook)
                g_string_append(sql, " AND playbook = ?6");
        g_string_append(sql, " AND created_at >= ?1 AND created_at <= ?2 "
                             "AND (created_at < ?3 OR rowid < ?4) "
                             "ORDER BY created_at DESC, rowid DESC LIMIT ?8");
        stmt = itk_store_history_prepare(store, sql->str, "list executions", error);
        if (stmt == NULL)
                return NULL;
        /* The run's columns, then rowid and the text match: counted, so a
         * column the store adds cannot shift them. */
        n_columns = sqlite3_column_count(stmt) - (text != NULL ? 2 : 1);

        upper = cursor_created;
        if (filter->until != G_MAXINT64)
                upper = MIN(upper, filter->until == G_MININT64 ? G_MININT64 : filter->until - 1);
        /* Without a text search one row more tells whether a next page exists. */
        scan = text != NULL ? ITK_STORE_HISTORY_SCAN_MAX : limit + 1;
        if (sqlite3_bind_int64(stmt, 1, filter->since) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 2, upper) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 3, cursor_created) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 4, cursor_rowid) != SQLITE_OK ||
            (by_status &&
             sqlite3_bind_text(stmt, 5, filter->status, -1, SQLITE_STATIC) != SQLITE_OK) ||
            (by_playbook &&
             sqlite3_bind_text(stmt, 6, filter->playbook, -1, SQLITE_STATIC) != SQLITE_OK) ||
            (text != NULL && sqlite3_bind_text(stmt, 7, text, -1, SQLITE_STATIC) != SQLITE_OK) ||
            sqlite3_bind_int64(stmt, 8, scan) != SQLITE_OK) {
                itk_store_history_set_error(store, error, "list executions");
                return NULL;
        }
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                if (matched == limit) {
                        more = TRUE;
                        break;
                }
                scanned++;
                last_created = sqlite3_column_int64(stmt, 8);
                last_rowid = sqlite3_column_int64(stmt, n_columns);
                if (text != NULL && sqlite3_column_int(stmt, n_columns + 1) == 0)
                        continue;
                g_variant_builder_add_value(&builder, itk_store_execution_row(stmt));
                matched++;
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
                itk_store_history_set_error(store, error, "list executions");
                return NULL;
        }
        /* A text search that used up its scan goes on from the last row it
         * looked at, matching or not. */
        if (text != NULL && scanned == scan)
                more = TRUE;
        *next_cursor = more ? g_strdup_printf(ITK_STORE_HISTORY_CURSOR "%" G_GINT64_FORMAT
                                                                       ":%" G_GINT64_FORMAT,
                                              last_created, last_rowid)
                            : g_strdup("");
        return g_variant_ref_sink(g_variant_builder_end(&builder));
}

/* Column text as a GVariant string, repaired if not UTF-8 (as the store). */
static GVariant *
itk_store_history_column_string(sqlite3_stmt *stmt, int column)
{
        const char *text = (const char *)sqlite3_column_text(stmt, column);
        int len = sqlite3_column_bytes(stmt, column);

        if (text == NULL)
                return g_variant_new_string("");
        if (!g_utf8_validate(text, len, NULL))
                return g_variant_new_take_string(g_utf8_make_valid(text, len));
        return g_variant_new_string(text);
}

/* NULL with NO_SUCH_EXECUTION when there is no run. */
static char *
itk_store_history_get_status(ItkStore *store, const char *id, GError **error)
{
        g_autoptr(ItkStoreQuery) stmt = itk_store_history_prepare(
                store, "SELECT status FROM executions WHERE id = ?1", "read an execution", error);
        int rc;

        if (stmt == NULL)
                return NULL;
        if (sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC) != SQLITE_OK) {
                itk_store_history_set_error(store, error, "read an execution");
                return NULL;
        }
        rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW)
                return g_strdup((const char *)sqlite3_column_text(stmt, 0));
        if (rc == SQLITE_DONE)
                g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_EXECUTION,
                            "No execution %s in history store %s", id, itk_store_get_path(store));
        else
                itk_store_history_set_error(store, error, "read an execution");
        return NULL;
}

GVariant *
itk_store_get_log_page(ItkStore *store, const char *id, guint limit, const char *cursor,
                       char **next_cursor, GError **error)
{
        g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a(tuss)"));
        g_autoptr(ItkStoreQuery) stmt = NULL;
        g_autofree char *status = NULL;
        gint64 after = 0;
        gint64 last;
        guint n = 0;
        gboolean more = FALSE;
        gboolean live;
        int rc;

        g_return_val_if_fail(store != NULL, NULL);
        g_return_val_if_fail(id != NULL && next_cursor != NULL, NULL);

        if (!itk_store_history_check_limit(&limit, ITK_STORE_LOG_PAGE_DEFAULT,
                                           ITK_STORE_LOG_PAGE_MAX, "log lines", error))
                return NULL;
        if (cursor != NULL && *cursor != '\0' &&
            (!g_str_has_prefix(cursor, ITK_STORE_LOG_CURSOR) || strlen(cursor) > 64 ||
             !itk_store_history_parse_int(cursor + strlen(ITK_STORE_LOG_CURSOR), &after) ||
             after < 0)) {
                itk_store_history_bad_cursor(error);
                return NULL;
        }
        status = itk_store_history_get_status(store, id, error);
        if (status == NULL)
                return NULL;
        live = !itk_store_history_valid_status(status);

        /* A range of the (execution_id, seq) key: no index to add. */
        stmt = itk_store_history_prepare(store,
                                         "SELECT seq, usec, priority, step_id, message "
                                         "FROM log_lines WHERE execution_id = ?1 AND seq > ?2 "
                                         "ORDER BY seq LIMIT ?3",
                                         "read the log", error);
        if (stmt == NULL)
                return NULL;
        if (sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 2, after) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 3, (gint64)limit + 1) != SQLITE_OK) {
                itk_store_history_set_error(store, error, "read the log");
                return NULL;
        }
        last = after;
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                if (n == limit) {
                        more = TRUE;
                        break;
                }
                last = sqlite3_column_int64(stmt, 0);
                g_variant_builder_add(&builder, "(tu@s@s)", (guint64)sqlite3_column_int64(stmt, 1),
                                      (guint32)sqlite3_column_int64(stmt, 2),
                                      itk_store_history_column_string(stmt, 3),
                                      itk_store_history_column_string(stmt, 4));
                n++;
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
                itk_store_history_set_error(store, error, "read the log");
                return NULL;
        }
        /* A live run may log more: its cursor stays for the next call. */
        *next_cursor = more || live
                               ? g_strdup_printf(ITK_STORE_LOG_CURSOR "%" G_GINT64_FORMAT, last)
                               : g_strdup("");
        return g_variant_ref_sink(g_variant_builder_end(&builder));
}

/* --- retention ------------------------------------------------------------------- */

struct _ItkStorePrune {
        ItkStore *store;
        guint batch_runs;
        guint batch_lines;
        /* Runs at or before (bound_created, bound_rowid) go... */
        gint64 bound_created;
        gint64 bound_rowid;
        /* ...and the pass has looked at every run up to here. */
        gint64 pos_created;
        gint64 pos_rowid;
        gboolean done;
};

typedef struct {
        char *id;
        gint64 created_at;
        gint64 rowid;
        gboolean finished;
} ItkStorePruneRow;

static void
itk_store_prune_row_clear(ItkStorePruneRow *row)
{
        g_free(row->id);
}

static gboolean
itk_store_prune_after(gint64 a_created, gint64 a_rowid, gint64 b_created, gint64 b_rowid)
{
        return a_created > b_created || (a_created == b_created && a_rowid > b_rowid);
}

ItkStorePrune *
itk_store_prune_new(ItkStore *store, const ItkStorePrunePolicy *policy, GError **error)
{
        g_autoptr(ItkStorePrune) prune = g_new0(ItkStorePrune, 1);

        g_return_val_if_fail(store != NULL && policy != NULL, NULL);

        prune->store = store;
        prune->batch_runs =
                policy->batch_runs != 0 ? policy->batch_runs : ITK_STORE_PRUNE_BATCH_RUNS;
        prune->batch_lines =
                policy->batch_lines != 0 ? policy->batch_lines : ITK_STORE_PRUNE_BATCH_LINES;
        prune->bound_created = G_MININT64;
        prune->bound_rowid = G_MININT64;
        prune->pos_created = G_MININT64;
        prune->pos_rowid = G_MININT64;
        if (policy->created_before != 0) {
                prune->bound_created = policy->created_before - 1;
                prune->bound_rowid = G_MAXINT64;
        }
        if (policy->max_runs != 0) {
                /* The newest run past the count, found by walking max_runs
                 * entries of the created_at index. */
                g_autoptr(ItkStoreQuery) stmt = itk_store_history_prepare(
                        store,
                        "SELECT created_at, rowid FROM executions "
                        "ORDER BY created_at DESC, rowid DESC LIMIT 1 OFFSET ?1",
                        "count executions", error);
                int rc;

                if (stmt == NULL)
                        return NULL;
                if (sqlite3_bind_int64(stmt, 1, policy->max_runs) != SQLITE_OK) {
                        itk_store_history_set_error(store, error, "count executions");
                        return NULL;
                }
                rc = sqlite3_step(stmt);
                if (rc == SQLITE_ROW) {
                        gint64 created = sqlite3_column_int64(stmt, 0);
                        gint64 rowid = sqlite3_column_int64(stmt, 1);
                        if (itk_store_prune_after(created, rowid, prune->bound_created,
                                                  prune->bound_rowid)) {
                                prune->bound_created = created;
                                prune->bound_rowid = rowid;
                        }
                } else if (rc != SQLITE_DONE) {
                        itk_store_history_set_error(store, error, "count executions");
                        return NULL;
                }
        }
        prune->done = prune->bound_created == G_MININT64 && prune->bound_rowid == G_MININT64;
        return g_steal_pointer(&prune);
}

void
itk_store_prune_free(ItkStorePrune *prune)
{
        g_free(prune);
}

/* The next runs of the pass, oldest first, read before anything is deleted. */
static GArray *
itk_store_prune_next_rows(ItkStorePrune *prune, GError **error)
{
        g_autoptr(GArray) rows = g_array_new(FALSE, TRUE, sizeof(ItkStorePruneRow));
        g_autoptr(ItkStoreQuery) stmt = itk_store_history_prepare(
                prune->store,
                "SELECT id, created_at, rowid, status IN " ITK_STORE_FINISHED_SQL
                " FROM executions WHERE created_at >= ?1 AND (created_at > ?1 OR rowid > ?2) "
                "AND created_at <= ?3 ORDER BY created_at, rowid LIMIT ?4",
                "find runs to prune", error);
        int rc;

        g_array_set_clear_func(rows, (GDestroyNotify)itk_store_prune_row_clear);
        if (stmt == NULL)
                return NULL;
        if (sqlite3_bind_int64(stmt, 1, prune->pos_created) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 2, prune->pos_rowid) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 3, prune->bound_created) != SQLITE_OK ||
            sqlite3_bind_int64(stmt, 4, prune->batch_runs) != SQLITE_OK) {
                itk_store_history_set_error(prune->store, error, "find runs to prune");
                return NULL;
        }
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
                ItkStorePruneRow row = {
                        .id = g_strdup((const char *)sqlite3_column_text(stmt, 0)),
                        .created_at = sqlite3_column_int64(stmt, 1),
                        .rowid = sqlite3_column_int64(stmt, 2),
                        .finished = sqlite3_column_int(stmt, 3) != 0,
                };
                if (row.id == NULL)
                        row.id = g_strdup("");
                g_array_append_val(rows, row);
        }
        if (rc != SQLITE_DONE) {
                itk_store_history_set_error(prune->store, error, "find runs to prune");
                return NULL;
        }
        return g_steal_pointer(&rows);
}

/* The number of log lines @id still has. */
static gboolean
itk_store_prune_count_lines(ItkStorePrune *prune, const char *id, gint64 *first, gint64 *count,
                            GError **error)
{
        /* min and max are two seeks in the run's key range: no scan. */
        g_autoptr(ItkStoreQuery) stmt = itk_store_history_prepare(
                prune->store,
                "SELECT ifnull(min(seq), 0), ifnull(max(seq), -1) FROM log_lines "
                "WHERE execution_id = ?1",
                "count log lines", error);

        if (stmt == NULL)
                return FALSE;
        if (sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_step(stmt) != SQLITE_ROW) {
                itk_store_history_set_error(prune->store, error, "count log lines");
                return FALSE;
        }
        *first = sqlite3_column_int64(stmt, 0);
        *count = sqlite3_column_int64(stmt, 1) - *first + 1;
        return TRUE;
}

static gboolean
itk_store_prune_exec(ItkStorePrune *prune, const char *sql, const char *id, gint64 arg,
                     const char *what, GError **error)
{
        g_autoptr(ItkStoreQuery) stmt = itk_store_history_prepare(prune->store, sql, what, error);

        if (stmt == NULL)
                return FALSE;
        if (sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC) != SQLITE_OK ||
            (sqlite3_bind_parameter_count(stmt) > 1 &&
             sqlite3_bind_int64(stmt, 2, arg) != SQLITE_OK) ||
            sqlite3_step(stmt) != SQLITE_DONE) {
                itk_store_history_set_error(prune->store, error, what);
                return FALSE;
        }
        return TRUE;
}

static gboolean
itk_store_prune_batch(ItkStorePrune *prune, GArray *rows, ItkStoreKeepFunc keep, gpointer user_data,
                      GPtrArray *removed, GError **error)
{
        gint64 lines_left = prune->batch_lines;

        for (guint i = 0; i < rows->len; i++) {
                ItkStorePruneRow *row = &g_array_index(rows, ItkStorePruneRow, i);
                gint64 first = 0, count = 0;

                if (itk_store_prune_after(row->created_at, row->rowid, prune->bound_created,
                                          prune->bound_rowid)) {
                        prune->done = TRUE;
                        return TRUE;
                }
                if (row->finished && (keep == NULL || !keep(row->id, user_data))) {
                        if (!itk_store_prune_count_lines(prune, row->id, &first, &count, error))
                                return FALSE;
                        if (count > lines_left) {
                                /* Too many for what is left of this batch: a
                                 * run with a huge log loses its lines a
                                 * batch at a time, its row last. */
                                if (lines_left == prune->batch_lines &&
                                    !itk_store_prune_exec(prune,
                                                          "DELETE FROM log_lines WHERE "
                                                          "execution_id = ?1 AND seq < ?2",
                                                          row->id, first + lines_left,
                                                          "prune log lines", error))
                                        return FALSE;
                                return TRUE;
                        }
                        /* Steps and log lines go with it (ON DELETE CASCADE). */
                        if (!itk_store_prune_exec(prune, "DELETE FROM executions WHERE id = ?1",
                                                  row->id, 0, "prune an execution", error))
                                return FALSE;
                        lines_left -= count;
                        g_ptr_array_add(removed, g_strdup(row->id));
                }
                prune->pos_created = row->created_at;
                prune->pos_rowid = row->rowid;
        }
        if (rows->len < prune->batch_runs)
                prune->done = TRUE;
        return TRUE;
}

gboolean
itk_store_prune_step(ItkStorePrune *prune, ItkStoreKeepFunc keep, gpointer user_data,
                     GPtrArray *removed, gboolean *done, GError **error)
{
        g_autoptr(GArray) rows = NULL;
        g_autoptr(GPtrArray) batch = g_ptr_array_new_with_free_func(g_free);
        gint64 pos_created = prune->pos_created;
        gint64 pos_rowid = prune->pos_rowid;

        g_return_val_if_fail(prune != NULL && removed != NULL && done != NULL, FALSE);

        *done = prune->done;
        if (prune->done || itk_store_in_transaction(prune->store))
                return TRUE;
        if (!itk_store_begin(prune->store, error))
                return FALSE;
        rows = itk_store_prune_next_rows(prune, error);
        if (rows == NULL || !itk_store_prune_batch(prune, rows, keep, user_data, batch, error) ||
            !itk_store_commit(prune->store, error)) {
                itk_store_rollback(prune->store);
                /* Nothing of this batch happened: the next step tries it again. */
                prune->pos_created = pos_created;
                prune->pos_rowid = pos_rowid;
                prune->done = FALSE;
                return FALSE;
        }
        for (guint i = 0; i < batch->len; i++)
                g_ptr_array_add(removed, g_steal_pointer(&batch->pdata[i]));
        *done = prune->done;
        return TRUE;
}
