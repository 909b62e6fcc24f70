/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Paged history and log reads, and retention (itk-store-history.c,
 * itk-retention.c). */
#include <glib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>
#include <unistd.h>

#include "itk-error.h"
#include "itk-retention.h"
#include "itk-store-history.h"
#include "itk-test-util.h"

#define DAY_USEC ((gint64)86400 * G_USEC_PER_SEC)

static ItkStore *
open_store(const char *path)
{
        g_autoptr(GError) error = NULL;
        ItkStore *store = itk_store_open(path, &error);

        g_assert_no_error(error);
        g_assert_nonnull(store);
        return store;
}

/* Ids are UUIDs made from @n so that a folder name can be derived. */
static char *
make_id(guint n)
{
        return g_strdup_printf("00000000-0000-4000-8000-%012x", n);
}

static void
insert_run_full(ItkStore *store, guint n, const char *status, gint64 created_at,
                const char *playbook, const char *error_text)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *id = make_id(n);
        ItkExecutionRecord record = {
                .id = id,
                .playbook = playbook,
                .playbook_name = "Gateway login",
                .playbook_version = "1",
                .domain = "gateway",
                .status = status,
                .error = error_text,
                .created_at = created_at,
                .started_by_uid = 1000,
                .current_step = -1,
        };

        g_assert_true(itk_store_insert_execution(store, &record, &error));
        g_assert_no_error(error);
}

static void
insert_run(ItkStore *store, guint n, const char *status, gint64 created_at)
{
        insert_run_full(store, n, status, created_at, "a.yaml", "");
}

static void
append_lines(ItkStore *store, guint n, guint count)
{
        g_autofree char *id = make_id(n);

        for (guint i = 0; i < count; i++) {
                g_autoptr(GError) error = NULL;
                g_autofree char *message = g_strdup_printf("line %u", i);
                g_assert_true(
                        itk_store_append_log(store, id, 1000 + i, 6, "step", message, &error));
                g_assert_no_error(error);
        }
}

static gint64
sql_int(ItkTestDir *td, const char *sql)
{
        sqlite3 *db = NULL;
        sqlite3_stmt *stmt = NULL;
        gint64 value;

        g_assert_cmpint(sqlite3_open_v2(td->path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
        g_assert_cmpint(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
        g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
        value = sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
        sqlite3_close(db);
        return value;
}

static gboolean
run_exists(ItkStore *store, guint n)
{
        g_autofree char *id = make_id(n);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) run = itk_store_get_execution(store, id, &error);

        if (run == NULL)
                g_assert_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_EXECUTION);
        return run != NULL;
}

/* The ids of one page, and its next cursor. */
static GPtrArray *
page_ids(ItkStore *store, const ItkHistoryFilter *filter, guint limit, const char *cursor,
         char **next)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) runs = itk_store_list_page(store, filter, limit, cursor, next, &error);
        GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
        GVariantIter iter;
        GVariant *run;

        g_assert_no_error(error);
        g_assert_nonnull(runs);
        g_variant_iter_init(&iter, runs);
        while ((run = g_variant_iter_next_value(&iter)) != NULL) {
                const char *id = NULL;
                g_assert_true(g_variant_lookup(run, "id", "&s", &id));
                g_ptr_array_add(ids, g_strdup(id));
                g_variant_unref(run);
        }
        return ids;
}

/* Every id a filter pages through, following cursors to the end. */
static GPtrArray *
all_ids(ItkStore *store, const ItkHistoryFilter *filter, guint limit, guint *n_pages)
{
        GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *cursor = g_strdup("");

        *n_pages = 0;
        for (;;) {
                g_autofree char *next = NULL;
                g_autoptr(GPtrArray) page = page_ids(store, filter, limit, cursor, &next);

                (*n_pages)++;
                g_assert_cmpuint(page->len, <=, limit);
                for (guint i = 0; i < page->len; i++)
                        g_ptr_array_add(ids, g_strdup(g_ptr_array_index(page, i)));
                if (*next == '\0')
                        break;
                g_free(cursor);
                cursor = g_steal_pointer(&next);
                g_assert_cmpuint(*n_pages, <, 100000);
        }
        return ids;
}

static void
assert_id(GPtrArray *ids, guint index, guint n)
{
        g_autofree char *id = make_id(n);

        g_assert_cmpuint(index, <, ids->len);
        g_assert_cmpstr(g_ptr_array_index(ids, index), ==, id);
}

static void
test_page_basic(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-history-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autoptr(GPtrArray) ids = NULL;
        guint n_pages;

        /* Two runs share a created_at: the rowid orders them. */
        for (guint n = 1; n <= 25; n++)
                insert_run(store, n, "completed", n == 12 ? 11 * 1000 : n * 1000);
        insert_run(store, 100, "running", 99999);
        insert_run(store, 101, "pending", 99999);

        ids = all_ids(store, NULL, 10, &n_pages);
        g_assert_cmpuint(n_pages, ==, 3);
        g_assert_cmpuint(ids->len, ==, 25);
        /* Newest first; live runs are not history. */
        for (guint i = 0; i < 25; i++)
                assert_id(ids, i, 25 - i);

        /* A full last page says so: no extra empty page. */
        g_clear_pointer(&ids, g_ptr_array_unref);
        ids = all_ids(store, NULL, 5, &n_pages);
        g_assert_cmpuint(n_pages, ==, 5);
        g_assert_cmpuint(ids->len, ==, 25);
}

static void
test_page_stable(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-history-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autoptr(GPtrArray) first = NULL;
        g_autoptr(GPtrArray) second = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *next = NULL;
        g_autofree char *next2 = NULL;
        g_autofree char *victim = NULL;

        for (guint n = 1; n <= 20; n++)
                insert_run(store, n, "failed", n * 1000);
        first = page_ids(store, NULL, 5, "", &next);
        assert_id(first, 0, 20);
        assert_id(first, 4, 16);

        /* Newer runs arrive and one of the next page is deleted: the next
         * page goes on right after the last run shown, no repeat, no gap. */
        for (guint n = 21; n <= 30; n++)
                insert_run(store, n, "failed", n * 1000);
        victim = make_id(14);
        g_assert_true(itk_store_delete_execution(store, victim, &error));
        g_assert_no_error(error);
        second = page_ids(store, NULL, 5, next, &next2);
        g_assert_cmpuint(second->len, ==, 5);
        assert_id(second, 0, 15);
        assert_id(second, 1, 13);
        assert_id(second, 4, 10);
}

static void
test_page_filter(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-history-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autoptr(GPtrArray) ids = NULL;
        ItkHistoryFilter filter = ITK_HISTORY_FILTER_INIT;
        guint n_pages;

        for (guint n = 1; n <= 30; n++)
                insert_run_full(store, n, n % 3 == 0 ? "failed" : "completed", n * 1000,
                                n % 2 == 0 ? "even.yaml" : "odd.yaml",
                                n == 7 ? "Gateway said NO: Timeout" : "");

        filter.status = "failed";
        ids = all_ids(store, &filter, 4, &n_pages);
        g_assert_cmpuint(ids->len, ==, 10);
        assert_id(ids, 0, 30);
        assert_id(ids, 9, 3);

        filter.playbook = "even.yaml";
        g_clear_pointer(&ids, g_ptr_array_unref);
        ids = all_ids(store, &filter, 4, &n_pages);
        g_assert_cmpuint(ids->len, ==, 5); /* 6, 12, 18, 24, 30 */
        assert_id(ids, 0, 30);
        assert_id(ids, 4, 6);

        /* since <= created_at < until */
        filter = (ItkHistoryFilter)ITK_HISTORY_FILTER_INIT;
        filter.since = 10 * 1000;
        filter.until = 20 * 1000;
        g_clear_pointer(&ids, g_ptr_array_unref);
        ids = all_ids(store, &filter, 3, &n_pages);
        g_assert_cmpuint(ids->len, ==, 10);
        assert_id(ids, 0, 19);
        assert_id(ids, 9, 10);

        /* Text: ASCII case-insensitive, in the error or the playbook. */
        filter = (ItkHistoryFilter)ITK_HISTORY_FILTER_INIT;
        filter.text = "TIMEOUT";
        g_clear_pointer(&ids, g_ptr_array_unref);
        ids = all_ids(store, &filter, 10, &n_pages);
        g_assert_cmpuint(ids->len, ==, 1);
        assert_id(ids, 0, 7);
        filter.text = "EVEN.y";
        g_clear_pointer(&ids, g_ptr_array_unref);
        ids = all_ids(store, &filter, 100, &n_pages);
        g_assert_cmpuint(ids->len, ==, 15);
}

/* A text search examines a bounded number of runs per call and says where
 * to go on, even from an empty page. */
static void
test_page_text_scan(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-history-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autoptr(GPtrArray) first = NULL;
        g_autoptr(GPtrArray) ids = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *next = NULL;
        ItkHistoryFilter filter = ITK_HISTORY_FILTER_INIT;
        guint n_pages;
        guint total = ITK_STORE_HISTORY_SCAN_MAX + 100;

        g_assert_true(itk_store_begin(store, &error));
        for (guint n = 1; n <= total; n++)
                insert_run_full(store, n, "completed", n, "a.yaml", n == 1 ? "needle" : "");
        g_assert_true(itk_store_commit(store, &error));

        filter.text = "needle";
        first = page_ids(store, &filter, 10, "", &next);
        g_assert_cmpuint(first->len, ==, 0);
        g_assert_cmpstr(next, !=, "");
        ids = all_ids(store, &filter, 10, &n_pages);
        g_assert_cmpuint(n_pages, ==, 2);
        g_assert_cmpuint(ids->len, ==, 1);
        assert_id(ids, 0, 1);
}

static void
test_page_caps(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-history-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autoptr(GPtrArray) ids = NULL;
        g_autoptr(GVariant) runs = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *next = NULL;
        g_autofree char *id = make_id(1);

        g_assert_true(itk_store_begin(store, &error));
        for (guint n = 1; n <= 150; n++)
                insert_run(store, n, "completed", n);
        g_assert_true(itk_store_commit(store, &error));

        ids = page_ids(store, NULL, 0, NULL, &next);
        g_assert_cmpuint(ids->len, ==, ITK_STORE_HISTORY_PAGE_DEFAULT);
        g_clear_pointer(&next, g_free);
        g_clear_pointer(&ids, g_ptr_array_unref);
        ids = page_ids(store, NULL, ITK_STORE_HISTORY_PAGE_MAX, NULL, &next);
        g_assert_cmpuint(ids->len, ==, 150);
        g_assert_cmpstr(next, ==, "");
        g_clear_pointer(&next, g_free);

        runs = itk_store_list_page(store, NULL, ITK_STORE_HISTORY_PAGE_MAX + 1, NULL, &next,
                                   &error);
        g_assert_null(runs);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
        g_assert_nonnull(strstr(error->message, "1000"));
        g_clear_error(&error);

        runs = itk_store_get_log_page(store, id, ITK_STORE_LOG_PAGE_MAX + 1, NULL, &next, &error);
        g_assert_null(runs);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
        g_assert_nonnull(strstr(error->message, "5000"));
}

static void
test_page_bad_cursor(void)
{
        static const char *const history_bad[] = {
                "garbage", "h1:",     "h1:1",    "h1:1:2:3",
                "h1:x:1",  "h1:1:1x", "h1: 1:2", "h1:99999999999999999999:1",
                "l1:5",    "h2:1:2",
        };
        static const char *const log_bad[] = { "garbage", "l1:", "l1:-1", "l1:1x", "h1:1:2" };
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-history-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autofree char *id = make_id(1);
        ItkHistoryFilter filter = ITK_HISTORY_FILTER_INIT;

        insert_run(store, 1, "completed", 1);
        for (gsize i = 0; i < G_N_ELEMENTS(history_bad); i++) {
                g_autoptr(GError) error = NULL;
                g_autofree char *next = NULL;
                g_autoptr(GVariant) runs =
                        itk_store_list_page(store, NULL, 10, history_bad[i], &next, &error);
                g_assert_null(runs);
                g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
                g_assert_nonnull(strstr(error->message, "invalid cursor"));
        }
        for (gsize i = 0; i < G_N_ELEMENTS(log_bad); i++) {
                g_autoptr(GError) error = NULL;
                g_autofree char *next = NULL;
                g_autoptr(GVariant) lines =
                        itk_store_get_log_page(store, id, 10, log_bad[i], &next, &error);
                g_assert_null(lines);
                g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
                g_assert_nonnull(strstr(error->message, "invalid cursor"));
        }
        {
                g_autoptr(GError) error = NULL;
                g_autofree char *next = NULL;
                g_autoptr(GVariant) runs = NULL;

                filter.status = "running";
                runs = itk_store_list_page(store, &filter, 10, "", &next, &error);
                g_assert_null(runs);
                g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
                g_assert_nonnull(strstr(error->message, "running"));
        }
}

static void
test_log_page(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-history-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autofree char *done_id = make_id(1);
        g_autofree char *live_id = make_id(2);
        g_autofree char *cursor = g_strdup("");
        g_autoptr(GError) error = NULL;
        guint total = 0;
        guint pages = 0;

        insert_run(store, 1, "completed", 1);
        insert_run(store, 2, "running", 2);
        append_lines(store, 1, 12);

        /* A finished run: pages of 5, 5 and 2, in order, then "". */
        for (;;) {
                g_autofree char *next = NULL;
                g_autoptr(GVariant) lines =
                        itk_store_get_log_page(store, done_id, 5, cursor, &next, &error);
                g_assert_no_error(error);
                for (gsize i = 0; i < g_variant_n_children(lines); i++) {
                        const char *message = NULL;
                        g_autofree char *want = g_strdup_printf("line %u", total);
                        g_variant_get_child(lines, i, "(tu&s&s)", NULL, NULL, NULL, &message);
                        g_assert_cmpstr(message, ==, want);
                        total++;
                }
                pages++;
                if (*next == '\0')
                        break;
                g_free(cursor);
                cursor = g_steal_pointer(&next);
        }
        g_assert_cmpuint(total, ==, 12);
        g_assert_cmpuint(pages, ==, 3);

        /* A live run: the cursor stays, and the lines logged since follow. */
        {
                g_autofree char *next = NULL;
                g_autofree char *next2 = NULL;
                g_autoptr(GVariant) lines =
                        itk_store_get_log_page(store, live_id, 5, "", &next, &error);
                g_autoptr(GVariant) more = NULL;

                g_assert_no_error(error);
                g_assert_cmpuint(g_variant_n_children(lines), ==, 0);
                g_assert_cmpstr(next, !=, "");
                append_lines(store, 2, 3);
                more = itk_store_get_log_page(store, live_id, 5, next, &next2, &error);
                g_assert_no_error(error);
                g_assert_cmpuint(g_variant_n_children(more), ==, 3);
                g_assert_cmpstr(next2, !=, "");
        }
        {
                g_autofree char *next = NULL;
                g_autofree char *missing = make_id(99);
                g_autoptr(GVariant) lines =
                        itk_store_get_log_page(store, missing, 5, "", &next, &error);
                g_assert_null(lines);
                g_assert_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_EXECUTION);
        }
}

static gboolean
keep_run_3(const char *id, gpointer user_data)
{
        g_autofree char *three = make_id(3);
        guint *asked = user_data;

        (*asked)++;
        return g_str_equal(id, three);
}

/* Runs the pass to its end; returns the number of steps. */
static guint
prune_all(ItkStore *store, const ItkStorePrunePolicy *policy, ItkStoreKeepFunc keep, gpointer data,
          GPtrArray *removed, guint max_per_step)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkStorePrune) prune = itk_store_prune_new(store, policy, &error);
        gboolean done = FALSE;
        guint steps = 0;

        g_assert_no_error(error);
        while (!done) {
                guint before = removed->len;
                g_assert_true(itk_store_prune_step(prune, keep, data, removed, &done, &error));
                g_assert_no_error(error);
                g_assert_cmpuint(removed->len - before, <=, max_per_step);
                steps++;
                g_assert_cmpuint(steps, <, 10000);
        }
        return steps;
}

static void
test_prune_age(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-history-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autoptr(GPtrArray) removed = g_ptr_array_new_with_free_func(g_free);
        gint64 now = g_get_real_time();
        ItkStorePrunePolicy policy = { .created_before = now - 90 * DAY_USEC };
        guint asked = 0;

        insert_run(store, 1, "completed", now - 200 * DAY_USEC);
        insert_run(store, 2, "failed", now - 100 * DAY_USEC);
        insert_run(store, 3, "completed", now - 95 * DAY_USEC); /* kept: on the bus */
        insert_run(store, 4, "running", now - 120 * DAY_USEC);  /* live: never */
        insert_run(store, 5, "cancelled", now - 10 * DAY_USEC);
        insert_run(store, 6, "completed", now);
        append_lines(store, 1, 10);
        append_lines(store, 5, 10);

        prune_all(store, &policy, keep_run_3, &asked, removed, 50);
        g_assert_cmpuint(removed->len, ==, 2);
        g_assert_false(run_exists(store, 1));
        g_assert_false(run_exists(store, 2));
        g_assert_true(run_exists(store, 3));
        g_assert_true(run_exists(store, 4));
        g_assert_true(run_exists(store, 5));
        g_assert_true(run_exists(store, 6));
        g_assert_cmpuint(asked, ==, 3);
        /* The log lines went with their run. */
        g_assert_cmpint(sql_int(td, "SELECT count(*) FROM log_lines"), ==, 10);
}

static void
test_prune_count(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-history-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autoptr(GPtrArray) removed = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;
        ItkStorePrunePolicy policy = { .max_runs = 10, .batch_runs = 4 };
        guint steps;

        g_assert_true(itk_store_begin(store, &error));
        for (guint n = 1; n <= 30; n++)
                insert_run(store, n, n == 5 ? "paused" : "completed", n * 1000);
        g_assert_true(itk_store_commit(store, &error));

        /* 20 are too many, one of them live: 19 go, at most 4 a step. */
        steps = prune_all(store, &policy, NULL, NULL, removed, 4);
        g_assert_cmpuint(removed->len, ==, 19);
        g_assert_cmpuint(steps, >=, 5);
        g_assert_true(run_exists(store, 5));
        for (guint n = 1; n <= 20; n++)
                g_assert_cmpint(run_exists(store, n), ==, n == 5);
        for (guint n = 21; n <= 30; n++)
                g_assert_true(run_exists(store, n));
        g_assert_cmpint(sql_int(td, "SELECT count(*) FROM executions"), ==, 11);

        /* Nothing beyond the limits: a pass does nothing. */
        g_ptr_array_set_size(removed, 0);
        prune_all(store, &policy, NULL, NULL, removed, 0);
        g_assert_cmpuint(removed->len, ==, 0);
}

/* A run with a long log loses it a batch of lines at a time. */
static void
test_prune_lines(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-history-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autoptr(GPtrArray) removed = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkStorePrune) prune = NULL;
        ItkStorePrunePolicy policy = { .max_runs = 1, .batch_lines = 5 };
        gboolean done = FALSE;
        ItkStepRecord step = {
                .step_path = "s",
                .status = "completed",
        };
        g_autofree char *id = make_id(1);

        insert_run(store, 1, "completed", 1000);
        insert_run(store, 2, "completed", 2000);
        append_lines(store, 1, 12);
        step.execution_id = id;
        g_assert_true(itk_store_put_step(store, &step, &error));

        prune = itk_store_prune_new(store, &policy, &error);
        g_assert_no_error(error);
        g_assert_true(itk_store_prune_step(prune, NULL, NULL, removed, &done, &error));
        g_assert_false(done);
        g_assert_cmpuint(removed->len, ==, 0);
        g_assert_cmpint(sql_int(td, "SELECT count(*) FROM log_lines"), ==, 7);
        g_assert_true(itk_store_prune_step(prune, NULL, NULL, removed, &done, &error));
        g_assert_cmpint(sql_int(td, "SELECT count(*) FROM log_lines"), ==, 2);
        while (!done)
                g_assert_true(itk_store_prune_step(prune, NULL, NULL, removed, &done, &error));
        g_assert_cmpuint(removed->len, ==, 1);
        g_assert_cmpint(sql_int(td, "SELECT count(*) FROM log_lines"), ==, 0);
        g_assert_cmpint(sql_int(td, "SELECT count(*) FROM steps"), ==, 0);
        g_assert_true(run_exists(store, 2));
}

/* A step while the engine's transaction is open waits for a later one. */
static void
test_prune_in_transaction(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-history-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autoptr(GPtrArray) removed = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkStorePrune) prune = NULL;
        ItkStorePrunePolicy policy = { .max_runs = 1 };
        gboolean done = TRUE;

        insert_run(store, 1, "completed", 1000);
        insert_run(store, 2, "completed", 2000);
        prune = itk_store_prune_new(store, &policy, &error);
        g_assert_true(itk_store_begin(store, &error));
        g_assert_true(itk_store_prune_step(prune, NULL, NULL, removed, &done, &error));
        g_assert_false(done);
        g_assert_cmpuint(removed->len, ==, 0);
        g_assert_true(itk_store_commit(store, &error));
        g_assert_true(itk_store_prune_step(prune, NULL, NULL, removed, &done, &error));
        g_assert_cmpuint(removed->len, ==, 1);
        g_assert_false(run_exists(store, 1));
}

static void
pass_done_cb(guint n_removed, gpointer user_data)
{
        guint *result = user_data;

        *result = n_removed + 1;
}

static char *
run_folder(const char *runs_dir, guint n)
{
        g_autofree char *name = g_strdup_printf("00000000000040008000%012x", n);
        return g_build_filename(runs_dir, name, NULL);
}

static void
remove_tree(const char *path)
{
        g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
        const char *name;

        while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
                g_autofree char *child = g_build_filename(path, name, NULL);
                if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
                    !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
                        remove_tree(child);
                else
                        g_unlink(child);
        }
        g_rmdir(path);
}

/* The retention driver: runs and their folders go, a symbolic link in a
 * folder is removed but not followed, a kept run's folder stays. */
static void
test_retention_folders(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-history-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autofree char *runs_dir = g_build_filename(td->dir, "runs", NULL);
        g_autofree char *outside = g_build_filename(td->dir, "outside.txt", NULL);
        g_autoptr(ItkRetention) retention = NULL;
        guint result = 0;
        guint asked = 0;
        ItkRetentionConfig config = {
                .max_runs = 2,
                .interval_sec = 1,
                .batch_runs = 2,
                .keep = keep_run_3,
                .keep_data = &asked,
                .pass_done = pass_done_cb,
                .pass_done_data = &result,
        };

        g_assert_cmpint(g_mkdir(runs_dir, 0700), ==, 0);
        g_assert_true(g_file_set_contents(outside, "keep me", -1, NULL));
        for (guint n = 1; n <= 6; n++) {
                g_autofree char *folder = run_folder(runs_dir, n);
                g_autofree char *sub = g_build_filename(folder, "sub", NULL);
                g_autofree char *file = g_build_filename(sub, "out.txt", NULL);
                g_autofree char *link = g_build_filename(folder, "link", NULL);

                insert_run(store, n, "completed", n * 1000);
                g_assert_cmpint(g_mkdir_with_parents(sub, 0700), ==, 0);
                g_assert_true(g_file_set_contents(file, "x", -1, NULL));
                g_assert_cmpint(symlink(td->dir, link), ==, 0);
        }

        retention = itk_retention_new(store, runs_dir, &config);
        while (result == 0)
                g_main_context_iteration(NULL, TRUE);
        g_assert_cmpuint(result - 1, ==, 3); /* 1, 2, 4: 3 is kept, 5 and 6 are the newest */
        for (guint n = 1; n <= 6; n++) {
                g_autofree char *folder = run_folder(runs_dir, n);
                gboolean kept = n == 3 || n >= 5;
                g_assert_cmpint(run_exists(store, n), ==, kept);
                g_assert_cmpint(g_file_test(folder, G_FILE_TEST_EXISTS), ==, kept);
        }
        g_assert_true(g_file_test(outside, G_FILE_TEST_IS_REGULAR));
        g_assert_true(g_file_test(td->path, G_FILE_TEST_IS_REGULAR));
        g_clear_pointer(&retention, itk_retention_free);
        remove_tree(runs_dir);
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/store-history/page/basic", test_page_basic);
        g_test_add_func("/store-history/page/stable", test_page_stable);
        g_test_add_func("/store-history/page/filter", test_page_filter);
        g_test_add_func("/store-history/page/text-scan", test_page_text_scan);
        g_test_add_func("/store-history/page/caps", test_page_caps);
        g_test_add_func("/store-history/page/bad-cursor", test_page_bad_cursor);
        g_test_add_func("/store-history/log-page", test_log_page);
        g_test_add_func("/store-history/prune/age", test_prune_age);
        g_test_add_func("/store-history/prune/count", test_prune_count);
        g_test_add_func("/store-history/prune/lines", test_prune_lines);
        g_test_add_func("/store-history/prune/in-transaction", test_prune_in_transaction);
        g_test_add_func("/store-history/retention/folders", test_retention_folders);
        return g_test_run();
}
