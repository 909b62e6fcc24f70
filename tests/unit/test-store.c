/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "itk-test-util.h"
#include "itk-error.h"
#include "itk-store.h"

#define ID1 "00000000-0000-4000-8000-000000000001"
#define ID2 "00000000-0000-4000-8000-000000000002"
#define ID3 "00000000-0000-4000-8000-000000000003"
#define ID4 "00000000-0000-4000-8000-000000000004"
#define ID5 "00000000-0000-4000-8000-000000000005"
#define ID6 "00000000-0000-4000-8000-000000000006"
#define ID_MISSING "00000000-0000-4000-8000-0000000000ff"
#define INTERRUPTED "interrupted: the daemon stopped during this run"

static ItkStore *
open_store(const char *path)
{
        g_autoptr(GError) error = NULL;
        ItkStore *store = itk_store_open(path, &error);

        g_assert_no_error(error);
        g_assert_nonnull(store);
        return store;
}

static ItkExecutionRecord
make_execution(const char *id, const char *status, gint64 created_at)
{
        ItkExecutionRecord record = {
                .id = id,
                .playbook = "gateway/gateway_login.yaml",
                .playbook_name = "Gateway login",
                .playbook_version = "1.2",
                .domain = "gateway",
                .status = status,
                .created_at = created_at,
                .started_by_uid = 1000,
                .total_steps = 3,
                .current_step = -1,
        };
        return record;
}

static void
insert_execution(ItkStore *store, const char *id, const char *status, gint64 created_at)
{
        g_autoptr(GError) error = NULL;
        ItkExecutionRecord record = make_execution(id, status, created_at);

        g_assert_true(itk_store_insert_execution(store, &record, &error));
        g_assert_no_error(error);
}

static void
put_step(ItkStore *store, const char *id, const char *path, gint32 position, const char *status)
{
        g_autoptr(GError) error = NULL;
        ItkStepRecord step = {
                .execution_id = id,
                .step_path = path,
                .position = position,
                .name = path,
                .type = "utility.log",
                .status = status,
        };

        g_assert_true(itk_store_put_step(store, &step, &error));
        g_assert_no_error(error);
}

static char *
lookup_string(GVariant *dict, const char *key)
{
        const char *value = NULL;

        g_assert_true(g_variant_lookup(dict, key, "&s", &value));
        return g_strdup(value);
}

static gint64
lookup_int64(GVariant *dict, const char *key)
{
        gint64 value = 0;

        g_assert_true(g_variant_lookup(dict, key, "x", &value));
        return value;
}

static char *
execution_status(ItkStore *store, const char *id)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) run = itk_store_get_execution(store, id, &error);

        g_assert_no_error(error);
        return lookup_string(run, "status");
}

/* Raw access, to see what is in the file and not only what the API says. */
static gint64
sql_int(const char *path, const char *sql)
{
        sqlite3 *db = NULL;
        sqlite3_stmt *stmt = NULL;
        gint64 value;

        g_assert_cmpint(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
        g_assert_cmpint(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
        g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
        value = sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
        sqlite3_close(db);
        return value;
}

static void
sql_exec(const char *path, const char *sql)
{
        sqlite3 *db = NULL;

        g_assert_cmpint(
                sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL), ==,
                SQLITE_OK);
        g_assert_cmpint(sqlite3_exec(db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
        sqlite3_close(db);
}

static guint
file_mode(const char *path)
{
        struct stat st;

        g_assert_cmpint(g_stat(path, &st), ==, 0);
        return st.st_mode & 07777;
}

static void
test_store_open_schema(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-test-store-XXXXXX", "history.db");
        g_autofree char *wal = g_strconcat(td->path, "-wal", NULL);
        g_autofree char *journal_mode = NULL;
        mode_t old_umask;
        sqlite3 *db = NULL;
        sqlite3_stmt *stmt = NULL;

        /* The mode must not depend on the umask: 0 would give SQLite's 0644. */
        old_umask = umask(0);
        {
                g_autoptr(ItkStore) store = open_store(td->path);
                umask(old_umask);
                insert_execution(store, ID1, "running", 1);
                g_assert_cmpuint(file_mode(td->path), ==, 0600);
                /* SQLite gives the WAL the database's mode. */
                g_assert_true(g_file_test(wal, G_FILE_TEST_EXISTS));
                g_assert_cmpuint(file_mode(wal), ==, 0600);
        }

        g_assert_cmpint(sql_int(td->path, "PRAGMA user_version"), >=, 1);
        /* Small pages: every transition commits a few of them to the WAL. */
        g_assert_cmpint(sql_int(td->path, "PRAGMA page_size"), ==, 1024);
        g_assert_cmpint(sql_int(td->path, "PRAGMA application_id"), !=, 0);
        g_assert_cmpint(sql_int(td->path, "SELECT count(*) FROM sqlite_schema WHERE type = "
                                          "'table' AND name IN ('executions', 'steps', "
                                          "'log_lines')"),
                        ==, 3);
        /* History newest first, by status and by playbook; steps and log are
         * keyed by run. */
        g_assert_cmpint(sql_int(td->path, "SELECT count(*) FROM sqlite_schema WHERE type = "
                                          "'index' AND tbl_name = 'executions' AND sql LIKE "
                                          "'%created_at%'"),
                        ==, 3);
        g_assert_cmpint(sql_int(td->path, "SELECT count(*) FROM pragma_index_list('log_lines') "
                                          "WHERE origin = 'pk'"),
                        ==, 1);
        g_assert_cmpint(sql_int(td->path, "SELECT count(*) FROM pragma_index_list('steps') "
                                          "WHERE origin = 'pk'"),
                        ==, 1);

        /* WAL is persistent in the file. */
        g_assert_cmpint(sqlite3_open_v2(td->path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
        g_assert_cmpint(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), ==,
                        SQLITE_OK);
        g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
        journal_mode = g_strdup((const char *)sqlite3_column_text(stmt, 0));
        sqlite3_finalize(stmt);
        sqlite3_close(db);
        g_assert_cmpstr(journal_mode, ==, "wal");

        /* An existing file with a lax mode is tightened. */
        g_assert_cmpint(g_chmod(td->path, 0644), ==, 0);
        {
                g_autoptr(ItkStore) store = open_store(td->path);
                g_assert_cmpuint(file_mode(td->path), ==, 0600);
        }
}

static void
test_store_open_missing_dir(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-test-store-XXXXXX", "history.db");
        g_autofree char *subdir = g_build_filename(td->dir, "state", NULL);
        g_autofree char *path = g_build_filename(subdir, "history.db", NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkStore) store = itk_store_open(path, &error);

        g_assert_null(store);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_FAILED);
        g_assert_nonnull(strstr(error->message, path));
        /* Creating the state directory is the daemon's job. */
        g_assert_false(g_file_test(subdir, G_FILE_TEST_EXISTS));
}

static void
assert_open_fails(const char *path, const char *expected)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkStore) store = itk_store_open(path, &error);

        g_assert_null(store);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_FAILED);
        g_test_message("open error: %s", error->message);
        g_assert_nonnull(strstr(error->message, path));
        if (expected != NULL)
                g_assert_nonnull(strstr(error->message, expected));
}

static void
test_store_open_corrupt(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-test-store-XXXXXX", "history.db");
        g_autoptr(GError) error = NULL;
        g_autofree char *contents = NULL;
        gsize length = 0;

        /* Not a database at all. */
        {
                g_autofree char *garbage = g_strnfill(8192, 'x');
                g_assert_true(g_file_set_contents(td->path, garbage, -1, &error));
                g_assert_no_error(error);
                assert_open_fails(td->path, "not a database");
        }

        /* A real store whose first page (the schema) is overwritten after
         * the 100-byte header. */
        g_assert_cmpint(g_unlink(td->path), ==, 0);
        {
                g_autoptr(ItkStore) store = open_store(td->path);
                insert_execution(store, ID1, "completed", 1);
        }
        g_assert_true(g_file_get_contents(td->path, &contents, &length, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(length, >=, 4096);
        memset(contents + 100, 0xa5, 4096 - 100);
        g_assert_true(g_file_set_contents(td->path, contents, (gssize)length, &error));
        g_assert_no_error(error);
        assert_open_fails(td->path, NULL);

        /* Another application's database. */
        g_assert_cmpint(g_unlink(td->path), ==, 0);
        sql_exec(td->path, "CREATE TABLE executions (x); INSERT INTO executions VALUES (1)");
        assert_open_fails(td->path, "another application");
        /* ...left as it was. */
        g_assert_cmpint(sql_int(td->path, "SELECT x FROM executions"), ==, 1);

        /* A store from a newer daemon. */
        g_assert_cmpint(g_unlink(td->path), ==, 0);
        {
                g_autoptr(ItkStore) store = open_store(td->path);
        }
        sql_exec(td->path, "PRAGMA user_version = 999");
        assert_open_fails(td->path, "newer");

        /* A directory where the file should be. */
        g_assert_cmpint(g_unlink(td->path), ==, 0);
        g_assert_cmpint(g_mkdir(td->path, 0700), ==, 0);
        assert_open_fails(td->path, NULL);
        g_assert_cmpint(g_rmdir(td->path), ==, 0);
}

static void
test_store_execution(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-test-store-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) run = NULL;
        ItkExecutionRecord record = make_execution(ID1, "pending", 1000);
        g_autofree char *s = NULL;
        guint32 uid = 0;
        gint32 n = 0;
        gboolean debug = TRUE;

        record.parameters_json = "{\"host\":\"gw\"}";
        g_assert_true(itk_store_insert_execution(store, &record, &error));
        g_assert_no_error(error);

        run = itk_store_get_execution(store, ID1, &error);
        g_assert_no_error(error);
        g_assert_true(g_variant_is_of_type(run, G_VARIANT_TYPE_VARDICT));
        s = lookup_string(run, "id");
        g_assert_cmpstr(s, ==, ID1);
        g_clear_pointer(&s, g_free);
        s = lookup_string(run, "playbook");
        g_assert_cmpstr(s, ==, "gateway/gateway_login.yaml");
        g_clear_pointer(&s, g_free);
        s = lookup_string(run, "playbook-name");
        g_assert_cmpstr(s, ==, "Gateway login");
        g_clear_pointer(&s, g_free);
        s = lookup_string(run, "playbook-version");
        g_assert_cmpstr(s, ==, "1.2");
        g_clear_pointer(&s, g_free);
        s = lookup_string(run, "domain");
        g_assert_cmpstr(s, ==, "gateway");
        g_clear_pointer(&s, g_free);
        s = lookup_string(run, "status");
        g_assert_cmpstr(s, ==, "pending");
        g_clear_pointer(&s, g_free);
        /* No error is "", not a missing key. */
        s = lookup_string(run, "error");
        g_assert_cmpstr(s, ==, "");
        g_clear_pointer(&s, g_free);
        s = lookup_string(run, "parameters");
        g_assert_cmpstr(s, ==, "{\"host\":\"gw\"}");
        g_clear_pointer(&s, g_free);
        g_assert_cmpint(lookup_int64(run, "created-at"), ==, 1000);
        g_assert_cmpint(lookup_int64(run, "started-at"), ==, 0);
        g_assert_cmpint(lookup_int64(run, "finished-at"), ==, 0);
        g_assert_true(g_variant_lookup(run, "started-by-uid", "u", &uid));
        g_assert_cmpuint(uid, ==, 1000);
        g_assert_true(g_variant_lookup(run, "total-steps", "i", &n));
        g_assert_cmpint(n, ==, 3);
        g_assert_true(g_variant_lookup(run, "current-step", "i", &n));
        g_assert_cmpint(n, ==, -1);
        g_assert_true(g_variant_lookup(run, "debug-mode", "b", &debug));
        g_assert_false(debug);
        g_clear_pointer(&run, g_variant_unref);

        /* Update touches the live fields only. */
        record.status = "failed";
        record.error = "step 2 failed";
        record.started_at = 2000;
        record.finished_at = 3000;
        record.current_step = 2;
        record.debug_mode = TRUE;
        record.playbook = "something/else.yaml";
        record.total_steps = 99;
        g_assert_true(itk_store_update_execution(store, &record, &error));
        g_assert_no_error(error);
        run = itk_store_get_execution(store, ID1, &error);
        g_assert_no_error(error);
        s = lookup_string(run, "status");
        g_assert_cmpstr(s, ==, "failed");
        g_clear_pointer(&s, g_free);
        s = lookup_string(run, "error");
        g_assert_cmpstr(s, ==, "step 2 failed");
        g_clear_pointer(&s, g_free);
        g_assert_cmpint(lookup_int64(run, "started-at"), ==, 2000);
        g_assert_cmpint(lookup_int64(run, "finished-at"), ==, 3000);
        g_assert_true(g_variant_lookup(run, "current-step", "i", &n));
        g_assert_cmpint(n, ==, 2);
        g_assert_true(g_variant_lookup(run, "debug-mode", "b", &debug));
        g_assert_true(debug);
        s = lookup_string(run, "playbook");
        g_assert_cmpstr(s, ==, "gateway/gateway_login.yaml");
        g_clear_pointer(&s, g_free);
        g_assert_true(g_variant_lookup(run, "total-steps", "i", &n));
        g_assert_cmpint(n, ==, 3);
        g_clear_pointer(&run, g_variant_unref);

        /* Absent parameters read as "". */
        record = make_execution(ID2, "pending", 1001);
        g_assert_true(itk_store_insert_execution(store, &record, &error));
        g_assert_no_error(error);
        run = itk_store_get_execution(store, ID2, &error);
        g_assert_no_error(error);
        s = lookup_string(run, "parameters");
        g_assert_cmpstr(s, ==, "");
        g_clear_pointer(&s, g_free);
        g_clear_pointer(&run, g_variant_unref);

        /* The same id twice is refused, naming the file. */
        g_assert_false(itk_store_insert_execution(store, &record, &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_FAILED);
        g_assert_nonnull(strstr(error->message, td->path));
        g_clear_error(&error);

        /* Missing runs. */
        record = make_execution(ID_MISSING, "running", 0);
        g_assert_false(itk_store_update_execution(store, &record, &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_EXECUTION);
        g_clear_error(&error);
        run = itk_store_get_execution(store, ID_MISSING, &error);
        g_assert_null(run);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_EXECUTION);
}

static GVariant *
get_steps(ItkStore *store, const char *id)
{
        g_autoptr(GError) error = NULL;
        GVariant *steps = itk_store_get_steps(store, id, &error);

        g_assert_no_error(error);
        g_assert_true(g_variant_is_of_type(steps, G_VARIANT_TYPE("aa{sv}")));
        return steps;
}

static char *
step_field(GVariant *steps, gsize index, const char *key)
{
        g_autoptr(GVariant) step = g_variant_get_child_value(steps, index);

        return lookup_string(step, key);
}

static void
test_store_steps(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-test-store-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) steps = NULL;
        g_autoptr(GVariant) step = NULL;
        g_autofree char *s = NULL;
        guint32 attempts = 0;
        ItkStepRecord record = {
                .execution_id = ID1,
                .step_path = "login",
                .position = 0,
                .name = "Log in",
                .type = "gateway.login",
                .status = "completed",
                .attempts = 2,
                .started_at = 10,
                .finished_at = 20,
                .output_json = "{\"ok\":true}",
        };

        insert_execution(store, ID1, "running", 1);
        insert_execution(store, ID2, "running", 2);

        /* A run without steps is an empty list, not an error. */
        steps = get_steps(store, ID1);
        g_assert_cmpuint(g_variant_n_children(steps), ==, 0);
        g_clear_pointer(&steps, g_variant_unref);

        /* Put out of position order: the result is in position order. */
        put_step(store, ID1, "restart", 2, "pending");
        put_step(store, ID1, "wait", 1, "running");
        put_step(store, ID1, "login", 0, "running");
        put_step(store, ID1, "wait/poll", 3, "pending");
        put_step(store, ID2, "other", 0, "running");

        /* Upsert: same key replaces the fields, keeps one row. */
        g_assert_true(itk_store_put_step(store, &record, &error));
        g_assert_no_error(error);

        steps = get_steps(store, ID1);
        /* Nested as live: "wait/poll" is a child of "wait", not a fourth step. */
        g_assert_cmpuint(g_variant_n_children(steps), ==, 3);
        s = step_field(steps, 0, "step-id");
        g_assert_cmpstr(s, ==, "login");
        g_clear_pointer(&s, g_free);
        s = step_field(steps, 1, "step-id");
        g_assert_cmpstr(s, ==, "wait");
        g_clear_pointer(&s, g_free);
        s = step_field(steps, 2, "step-id");
        g_assert_cmpstr(s, ==, "restart");
        g_clear_pointer(&s, g_free);
        {
                g_autoptr(GVariant) wait = g_variant_get_child_value(steps, 1);
                g_autoptr(GVariant) children =
                        g_variant_lookup_value(wait, "children", G_VARIANT_TYPE("aa{sv}"));

                g_assert_nonnull(children);
                g_assert_cmpuint(g_variant_n_children(children), ==, 1);
                s = step_field(children, 0, "step-id");
                g_assert_cmpstr(s, ==, "wait/poll");
                g_clear_pointer(&s, g_free);
                s = step_field(children, 0, "output");
                g_assert_cmpstr(s, ==, "");
                g_clear_pointer(&s, g_free);
        }

        step = g_variant_get_child_value(steps, 0);
        s = lookup_string(step, "name");
        g_assert_cmpstr(s, ==, "Log in");
        g_clear_pointer(&s, g_free);
        s = lookup_string(step, "type");
        g_assert_cmpstr(s, ==, "gateway.login");
        g_clear_pointer(&s, g_free);
        s = lookup_string(step, "status");
        g_assert_cmpstr(s, ==, "completed");
        g_clear_pointer(&s, g_free);
        s = lookup_string(step, "error");
        g_assert_cmpstr(s, ==, "");
        g_clear_pointer(&s, g_free);
        s = lookup_string(step, "output");
        g_assert_cmpstr(s, ==, "{\"ok\":true}");
        g_clear_pointer(&s, g_free);
        g_assert_true(g_variant_lookup(step, "attempts", "u", &attempts));
        g_assert_cmpuint(attempts, ==, 2);
        g_assert_cmpint(lookup_int64(step, "started-at"), ==, 10);
        g_assert_cmpint(lookup_int64(step, "finished-at"), ==, 20);
        g_clear_pointer(&step, g_variant_unref);
        g_clear_pointer(&steps, g_variant_unref);

        /* The position is that of the first appearance. */
        record.position = 7;
        record.status = "failed";
        record.error = "boom";
        g_assert_true(itk_store_put_step(store, &record, &error));
        g_assert_no_error(error);
        steps = get_steps(store, ID1);
        s = step_field(steps, 0, "step-id");
        g_assert_cmpstr(s, ==, "login");
        g_clear_pointer(&s, g_free);
        s = step_field(steps, 0, "error");
        g_assert_cmpstr(s, ==, "boom");
        g_clear_pointer(&s, g_free);
        g_clear_pointer(&steps, g_variant_unref);

        /* Steps of another run do not leak in. */
        steps = get_steps(store, ID2);
        g_assert_cmpuint(g_variant_n_children(steps), ==, 1);
        g_clear_pointer(&steps, g_variant_unref);

        /* A step of a missing run. */
        record.execution_id = ID_MISSING;
        g_assert_false(itk_store_put_step(store, &record, &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_EXECUTION);
        g_clear_error(&error);
        steps = itk_store_get_steps(store, ID_MISSING, &error);
        g_assert_null(steps);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_EXECUTION);
}

static GVariant *
get_log(ItkStore *store, const char *id, guint max)
{
        g_autoptr(GError) error = NULL;
        GVariant *log = itk_store_get_log(store, id, max, &error);

        g_assert_no_error(error);
        g_assert_true(g_variant_is_of_type(log, G_VARIANT_TYPE("a(tuss)")));
        return log;
}

static void
assert_log_line(GVariant *log, gsize index, guint64 usec, const char *message)
{
        guint64 got_usec = 0;
        guint32 priority = 0;
        const char *step_id = NULL;
        const char *got_message = NULL;

        g_variant_get_child(log, index, "(tu&s&s)", &got_usec, &priority, &step_id, &got_message);
        g_assert_cmpuint(got_usec, ==, usec);
        g_assert_cmpuint(priority, ==, 6);
        g_assert_cmpstr(step_id, ==, usec % 2 == 0 ? "even" : "");
        g_assert_cmpstr(got_message, ==, message);
}

static void
test_store_log(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-test-store-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) log = NULL;

        insert_execution(store, ID1, "running", 1);
        insert_execution(store, ID2, "running", 2);

        log = get_log(store, ID1, 0);
        g_assert_cmpuint(g_variant_n_children(log), ==, 0);
        g_clear_pointer(&log, g_variant_unref);

        /* The usec goes down while the order must follow the appends. */
        for (guint i = 0; i < 10; i++) {
                g_autofree char *message = g_strdup_printf("line %u", i);
                g_assert_true(itk_store_append_log(store, ID1, 100 - i, 6,
                                                   (100 - i) % 2 == 0 ? "even" : NULL, message,
                                                   &error));
                g_assert_no_error(error);
                g_assert_true(itk_store_append_log(store, ID2, 1, 3, "x", "other", &error));
                g_assert_no_error(error);
        }

        log = get_log(store, ID1, 0);
        g_assert_cmpuint(g_variant_n_children(log), ==, 10);
        assert_log_line(log, 0, 100, "line 0");
        assert_log_line(log, 9, 91, "line 9");
        g_clear_pointer(&log, g_variant_unref);

        /* The last max lines, oldest first. */
        log = get_log(store, ID1, 3);
        g_assert_cmpuint(g_variant_n_children(log), ==, 3);
        assert_log_line(log, 0, 93, "line 7");
        assert_log_line(log, 1, 92, "line 8");
        assert_log_line(log, 2, 91, "line 9");
        g_clear_pointer(&log, g_variant_unref);

        log = get_log(store, ID1, 1000);
        g_assert_cmpuint(g_variant_n_children(log), ==, 10);
        g_clear_pointer(&log, g_variant_unref);

        /* A log line of a missing run. */
        g_assert_false(itk_store_append_log(store, ID_MISSING, 1, 6, NULL, "x", &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_EXECUTION);
        g_clear_error(&error);
        log = itk_store_get_log(store, ID_MISSING, 0, &error);
        g_assert_null(log);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_EXECUTION);
}

/* Bytes that are not UTF-8 (a damaged file, a careless writer) must come out
 * as valid strings: GVariant and D-Bus would reject them. */
static void
test_store_invalid_utf8(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-test-store-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) log = NULL;
        const char *message = NULL;

        insert_execution(store, ID1, "running", 1);
        g_assert_true(itk_store_append_log(store, ID1, 1, 6, NULL, "bad \xff\xfe bytes", &error));
        g_assert_no_error(error);
        log = get_log(store, ID1, 0);
        g_variant_get_child(log, 0, "(tu&s&s)", NULL, NULL, NULL, &message);
        g_assert_true(g_utf8_validate(message, -1, NULL));
        g_assert_true(g_str_has_prefix(message, "bad "));
        g_assert_true(g_str_has_suffix(message, " bytes"));
}

static void
assert_history(GPtrArray *runs, const char *const *ids)
{
        g_assert_nonnull(runs);
        g_assert_cmpuint(runs->len, ==, g_strv_length((char **)ids));
        for (guint i = 0; i < runs->len; i++) {
                g_autofree char *id = lookup_string(runs->pdata[i], "id");
                g_assert_cmpstr(id, ==, ids[i]);
        }
}

static void
test_store_list(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-test-store-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) runs = NULL;

        /* Insertion order differs from creation order; ID6 and ID2 tie. */
        insert_execution(store, ID3, "failed", 300);
        insert_execution(store, ID1, "completed", 100);
        insert_execution(store, ID4, "running", 400);
        insert_execution(store, ID2, "cancelled", 200);
        insert_execution(store, ID5, "paused", 500);
        insert_execution(store, ID6, "failed", 200);

        /* Finished runs only, newest first; among equals the later insert. */
        runs = itk_store_list_executions(store, 0, NULL, &error);
        g_assert_no_error(error);
        assert_history(runs, (const char *const[]){ ID3, ID6, ID2, ID1, NULL });
        g_clear_pointer(&runs, g_ptr_array_unref);

        runs = itk_store_list_executions(store, 0, "", &error);
        g_assert_no_error(error);
        assert_history(runs, (const char *const[]){ ID3, ID6, ID2, ID1, NULL });
        g_clear_pointer(&runs, g_ptr_array_unref);

        runs = itk_store_list_executions(store, 2, NULL, &error);
        g_assert_no_error(error);
        assert_history(runs, (const char *const[]){ ID3, ID6, NULL });
        g_clear_pointer(&runs, g_ptr_array_unref);

        runs = itk_store_list_executions(store, 0, "failed", &error);
        g_assert_no_error(error);
        assert_history(runs, (const char *const[]){ ID3, ID6, NULL });
        g_clear_pointer(&runs, g_ptr_array_unref);

        runs = itk_store_list_executions(store, 1, "failed", &error);
        g_assert_no_error(error);
        assert_history(runs, (const char *const[]){ ID3, NULL });
        g_clear_pointer(&runs, g_ptr_array_unref);

        /* A live status is not history. */
        runs = itk_store_list_executions(store, 0, "running", &error);
        g_assert_no_error(error);
        assert_history(runs, (const char *const[]){ NULL });
        g_clear_pointer(&runs, g_ptr_array_unref);

        /* Each element is the same a{sv} as GetExecution's. */
        runs = itk_store_list_executions(store, 1, "completed", &error);
        g_assert_no_error(error);
        g_assert_cmpuint(runs->len, ==, 1);
        g_assert_true(g_variant_is_of_type(runs->pdata[0], G_VARIANT_TYPE_VARDICT));
        g_assert_false(g_variant_is_floating(runs->pdata[0]));
        g_assert_cmpint(lookup_int64(runs->pdata[0], "created-at"), ==, 100);
        g_clear_pointer(&runs, g_ptr_array_unref);

        /* The default limit is 100. */
        for (guint i = 0; i < 120; i++) {
                g_autofree char *id = g_strdup_printf("10000000-0000-4000-8000-%012u", i);
                insert_execution(store, id, "completed", 1000 + i);
        }
        runs = itk_store_list_executions(store, 0, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(runs->len, ==, 100);
        g_assert_cmpint(lookup_int64(runs->pdata[0], "created-at"), ==, 1119);
}

static void
test_store_delete(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-test-store-XXXXXX", "history.db");
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) run = NULL;

        {
                g_autoptr(ItkStore) store = open_store(td->path);

                insert_execution(store, ID1, "completed", 1);
                insert_execution(store, ID2, "completed", 2);
                put_step(store, ID1, "a", 0, "completed");
                put_step(store, ID2, "a", 0, "completed");
                g_assert_true(itk_store_append_log(store, ID1, 1, 6, NULL, "x", &error));
                g_assert_true(itk_store_append_log(store, ID2, 1, 6, NULL, "x", &error));
                g_assert_no_error(error);

                g_assert_true(itk_store_delete_execution(store, ID1, &error));
                g_assert_no_error(error);
                run = itk_store_get_execution(store, ID1, &error);
                g_assert_null(run);
                g_assert_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_EXECUTION);
                g_clear_error(&error);

                /* A second delete, or of an id never seen. */
                g_assert_false(itk_store_delete_execution(store, ID1, &error));
                g_assert_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_EXECUTION);
                g_clear_error(&error);
                g_assert_false(itk_store_delete_execution(store, ID_MISSING, &error));
                g_assert_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_EXECUTION);
                g_clear_error(&error);

                run = itk_store_get_execution(store, ID2, &error);
                g_assert_no_error(error);
        }

        /* Its steps and log went with it; the other run's stayed. */
        g_assert_cmpint(
                sql_int(td->path, "SELECT count(*) FROM steps WHERE execution_id = '" ID1 "'"), ==,
                0);
        g_assert_cmpint(
                sql_int(td->path, "SELECT count(*) FROM log_lines WHERE execution_id = '" ID1 "'"),
                ==, 0);
        g_assert_cmpint(sql_int(td->path, "SELECT count(*) FROM steps"), ==, 1);
        g_assert_cmpint(sql_int(td->path, "SELECT count(*) FROM log_lines"), ==, 1);
}

static void
test_store_mark_interrupted(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-test-store-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autoptr(GError) error = NULL;
        ItkExecutionRecord done = make_execution(ID4, "failed", 4);
        ItkStepRecord step = {
                .execution_id = ID4,
                .step_path = "stuck",
                .position = 1,
                .status = "running",
                .error = "",
        };
        gint64 before = g_get_real_time();
        const char *live[] = { ID1, ID2, ID3 };
        gint n;

        insert_execution(store, ID1, "pending", 1);
        insert_execution(store, ID2, "running", 2);
        insert_execution(store, ID3, "paused", 3);
        done.error = "its own error";
        done.finished_at = 44;
        g_assert_true(itk_store_insert_execution(store, &done, &error));
        g_assert_no_error(error);
        insert_execution(store, ID5, "completed", 5);
        insert_execution(store, ID6, "cancelled", 6);

        put_step(store, ID2, "done", 0, "completed");
        put_step(store, ID2, "busy", 1, "running");
        put_step(store, ID2, "next", 2, "pending");
        put_step(store, ID3, "busy", 0, "running");
        /* A finished run's steps are left alone, whatever they say. */
        g_assert_true(itk_store_put_step(store, &step, &error));
        g_assert_no_error(error);

        n = itk_store_mark_interrupted(store, &error);
        g_assert_no_error(error);
        g_assert_cmpint(n, ==, 3);

        for (guint i = 0; i < G_N_ELEMENTS(live); i++) {
                g_autoptr(GVariant) run = itk_store_get_execution(store, live[i], &error);
                g_autofree char *status = NULL;
                g_autofree char *message = NULL;

                g_assert_no_error(error);
                status = lookup_string(run, "status");
                message = lookup_string(run, "error");
                g_assert_cmpstr(status, ==, "failed");
                g_assert_cmpstr(message, ==, INTERRUPTED);
                g_assert_cmpint(lookup_int64(run, "finished-at"), >=, before);
        }

        {
                g_autoptr(GVariant) steps = get_steps(store, ID2);
                g_autofree char *s0 = step_field(steps, 0, "status");
                g_autofree char *s1 = step_field(steps, 1, "status");
                g_autofree char *s2 = step_field(steps, 2, "status");
                g_autoptr(GVariant) busy = g_variant_get_child_value(steps, 1);

                g_assert_cmpstr(s0, ==, "completed");
                g_assert_cmpstr(s1, ==, "failed");
                g_assert_cmpstr(s2, ==, "pending");
                g_assert_cmpint(lookup_int64(busy, "finished-at"), >=, before);
        }
        {
                g_autoptr(GVariant) steps = get_steps(store, ID3);
                g_autofree char *s0 = step_field(steps, 0, "status");
                g_assert_cmpstr(s0, ==, "failed");
        }
        {
                g_autoptr(GVariant) run = itk_store_get_execution(store, ID4, &error);
                g_autoptr(GVariant) steps = get_steps(store, ID4);
                g_autofree char *message = lookup_string(run, "error");
                g_autofree char *s0 = step_field(steps, 0, "status");

                g_assert_no_error(error);
                g_assert_cmpstr(message, ==, "its own error");
                g_assert_cmpint(lookup_int64(run, "finished-at"), ==, 44);
                g_assert_cmpstr(s0, ==, "running");
        }
        {
                g_autofree char *s5 = execution_status(store, ID5);
                g_autofree char *s6 = execution_status(store, ID6);
                g_assert_cmpstr(s5, ==, "completed");
                g_assert_cmpstr(s6, ==, "cancelled");
        }

        /* Nothing left to recover. */
        n = itk_store_mark_interrupted(store, &error);
        g_assert_no_error(error);
        g_assert_cmpint(n, ==, 0);
}

static void
test_store_reopen(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-test-store-XXXXXX", "history.db");
        g_autoptr(GError) error = NULL;

        {
                g_autoptr(ItkStore) store = open_store(td->path);
                insert_execution(store, ID1, "completed", 1);
                put_step(store, ID1, "a", 0, "completed");
                g_assert_true(itk_store_append_log(store, ID1, 5, 6, "a", "hello", &error));
                g_assert_no_error(error);
                /* Closed with a transaction open: it is rolled back. */
                g_assert_true(itk_store_begin(store, &error));
                g_assert_no_error(error);
                insert_execution(store, ID2, "completed", 2);
        }
        {
                g_autoptr(ItkStore) store = open_store(td->path);
                g_autoptr(GVariant) steps = get_steps(store, ID1);
                g_autoptr(GVariant) log = get_log(store, ID1, 0);
                g_autoptr(GVariant) run = NULL;
                g_autofree char *status = execution_status(store, ID1);

                g_assert_cmpstr(status, ==, "completed");
                g_assert_cmpuint(g_variant_n_children(steps), ==, 1);
                g_assert_cmpuint(g_variant_n_children(log), ==, 1);
                run = itk_store_get_execution(store, ID2, &error);
                g_assert_null(run);
                g_assert_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_EXECUTION);
        }
}

static void
test_store_transactions(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-test-store-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) run = NULL;
        ItkExecutionRecord record = make_execution(ID1, "running", 1);

        /* Rolled back: gone. */
        g_assert_true(itk_store_begin(store, &error));
        g_assert_no_error(error);
        insert_execution(store, ID1, "pending", 1);
        itk_store_rollback(store);
        run = itk_store_get_execution(store, ID1, &error);
        g_assert_null(run);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_EXECUTION);
        g_clear_error(&error);

        /* Rollback with nothing open is harmless (error paths call it). */
        itk_store_rollback(store);

        /* Committed: there, visible to another connection. A failed
         * statement in the middle does not spoil the transaction. */
        g_assert_true(itk_store_begin(store, &error));
        g_assert_no_error(error);
        insert_execution(store, ID1, "pending", 1);
        put_step(store, ID1, "a", 0, "running");
        g_assert_false(itk_store_append_log(store, ID_MISSING, 1, 6, NULL, "x", &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_EXECUTION);
        g_clear_error(&error);
        g_assert_true(itk_store_update_execution(store, &record, &error));
        g_assert_no_error(error);
        g_assert_cmpint(sql_int(td->path, "SELECT count(*) FROM executions"), ==, 0);
        g_assert_true(itk_store_commit(store, &error));
        g_assert_no_error(error);
        g_assert_cmpint(sql_int(td->path, "SELECT count(*) FROM executions WHERE status = "
                                          "'running'"),
                        ==, 1);
        g_assert_cmpint(sql_int(td->path, "SELECT count(*) FROM steps"), ==, 1);

        /* Outside begin/commit each call commits by itself. */
        put_step(store, ID1, "b", 1, "running");
        g_assert_cmpint(sql_int(td->path, "SELECT count(*) FROM steps"), ==, 2);

        /* The store is usable for transactions again. */
        g_assert_true(itk_store_begin(store, &error));
        g_assert_no_error(error);
        g_assert_true(itk_store_commit(store, &error));
        g_assert_no_error(error);
}

/* A caller's logic error is loud (critical) but not fatal in production, and
 * the store stays usable. Run in a subprocess that does not abort on
 * criticals. */
static void
test_store_nested_begin(void)
{
        if (g_test_subprocess()) {
                g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-test-store-XXXXXX", "history.db");
                g_autoptr(ItkStore) store = open_store(td->path);
                g_autoptr(GError) error = NULL;

                g_log_set_always_fatal(G_LOG_FATAL_MASK);
                g_assert_true(itk_store_begin(store, &error));
                g_assert_no_error(error);
                insert_execution(store, ID1, "pending", 1);
                g_assert_false(itk_store_begin(store, &error));
                g_assert_error(error, ITK_ERROR, ITK_ERROR_FAILED);
                g_clear_error(&error);
                /* The outer transaction is intact and commits. */
                g_assert_true(itk_store_commit(store, &error));
                g_assert_no_error(error);
                g_assert_cmpint(sql_int(td->path, "SELECT count(*) FROM executions"), ==, 1);

                g_assert_false(itk_store_commit(store, &error));
                g_assert_error(error, ITK_ERROR, ITK_ERROR_FAILED);
                return;
        }
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
        g_test_trap_assert_passed();
        g_test_trap_assert_stderr("*CRITICAL*already open*CRITICAL*no transaction open*");
}

/* kill -9 after a commit: the committed transition is there (it sits in the
 * WAL, not yet checkpointed), the uncommitted one is not. */
static void
test_store_crash(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-test-store-XXXXXX", "history.db");
        g_autofree char *wal = g_strconcat(td->path, "-wal", NULL);
        g_autoptr(GError) error = NULL;
        int status = 0;
        pid_t pid;

        pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                ItkStore *store = itk_store_open(td->path, NULL);
                ItkExecutionRecord record = make_execution(ID1, "running", 1);
                ItkStepRecord step = { .execution_id = ID1, .step_path = "a", .status = "running" };

                if (store == NULL)
                        _exit(10);
                if (!itk_store_begin(store, NULL) ||
                    !itk_store_insert_execution(store, &record, NULL) ||
                    !itk_store_put_step(store, &step, NULL) || !itk_store_commit(store, NULL))
                        _exit(11);
                record.status = "completed";
                step.status = "completed";
                if (!itk_store_begin(store, NULL) ||
                    !itk_store_update_execution(store, &record, NULL) ||
                    !itk_store_put_step(store, &step, NULL))
                        _exit(12);
                /* No commit, no close, no atexit. */
                _exit(0);
        }
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
        g_assert_true(g_file_test(wal, G_FILE_TEST_EXISTS));

        {
                g_autoptr(ItkStore) store = open_store(td->path);
                g_autofree char *run_status = execution_status(store, ID1);
                g_autoptr(GVariant) steps = get_steps(store, ID1);
                g_autofree char *step_status = NULL;

                g_assert_cmpstr(run_status, ==, "running");
                g_assert_cmpuint(g_variant_n_children(steps), ==, 1);
                step_status = step_field(steps, 0, "status");
                g_assert_cmpstr(step_status, ==, "running");
                /* And start-up recovery finds it. */
                g_assert_cmpint(itk_store_mark_interrupted(store, &error), ==, 1);
                g_assert_no_error(error);
        }
}

static double
cpu_time(clockid_t clock)
{
        struct timespec ts;

        g_assert_cmpint(clock_gettime(clock, &ts), ==, 0);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static goffset
file_size(const char *path)
{
        struct stat st;

        return g_stat(path, &st) == 0 ? st.st_size : 0;
}

/* Checkpoints run on the store's own thread: the WAL is copied back in the
 * background and then rewound, without a checkpoint from the caller. Seen
 * from outside: the WAL file stops growing and is overwritten instead. */
static void
test_store_checkpoint(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-test-store-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autofree char *wal = g_strconcat(td->path, "-wal", NULL);
        gint64 deadline = g_get_monotonic_time() + 20 * G_TIME_SPAN_SECOND;
        goffset before = 0;
        goffset after = 0;
        guint n = 0;

        insert_execution(store, ID1, "running", 1);
        /* Well over the 1 MiB that wakes the checkpointer. */
        while (file_size(wal) < 3 * 1024 * 1024) {
                g_autofree char *path = g_strdup_printf("step-%u", n);
                put_step(store, ID1, path, (gint32)n++, "completed");
        }
        do {
                g_autofree char *path = g_strdup_printf("step-%u", n);

                g_usleep(10 * G_TIME_SPAN_MILLISECOND);
                before = file_size(wal);
                put_step(store, ID1, path, (gint32)n++, "completed");
                after = file_size(wal);
        } while (after != before && g_get_monotonic_time() < deadline);
        g_assert_cmpint(after, ==, before);

        for (guint i = 0; i < 200; i++) {
                g_autofree char *path = g_strdup_printf("step-%u", n);
                put_step(store, ID1, path, (gint32)n++, "completed");
        }
        g_assert_cmpint(file_size(wal), ==, before);
        g_assert_cmpint(sql_int(td->path, "SELECT count(*) FROM steps"), ==, n);
}

/* A trivial step as the engine records it: the step starts (step row and
 * the run's current step) and ends (step row and a log line). With @grouped
 * false each is a transaction of its own, as the engine does now (2 per
 * step); with @grouped true the end of one step and the start of the next
 * share one (1 per step), to show what grouping would buy. */
static void
run_perf(gboolean grouped)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-test-store-XXXXXX", "history.db");
        g_autoptr(ItkStore) store = open_store(td->path);
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) steps = NULL;
        g_autofree char *wal = g_strconcat(td->path, "-wal", NULL);
        ItkExecutionRecord record = make_execution(ID1, "running", 1);
        guint n_steps = g_test_perf() ? 200000 : 20000;
        guint n_transactions = 0;
        gint64 slowest = 0;
        gint64 start;
        double seconds;
        double cpu_seconds;
        double thread_seconds;

        insert_execution(store, ID1, "running", 1);
        if (grouped) {
                g_assert_true(itk_store_begin(store, &error));
                g_assert_no_error(error);
        }
        cpu_seconds = cpu_time(CLOCK_PROCESS_CPUTIME_ID);
        thread_seconds = cpu_time(CLOCK_THREAD_CPUTIME_ID);
        start = g_get_monotonic_time();
        for (guint i = 0; i < n_steps; i++) {
                gint64 step_start = g_get_monotonic_time();
                char path[32];
                ItkStepRecord step = {
                        .execution_id = ID1,
                        .step_path = path,
                        .position = (gint32)i,
                        .name = "noop",
                        .type = "utility.log",
                        .status = "running",
                        .attempts = 1,
                        .started_at = 1,
                };
                gboolean ok;

                g_snprintf(path, sizeof(path), "step-%u", i);
                record.current_step = (gint32)i;
                ok = (grouped ? TRUE : itk_store_begin(store, &error)) &&
                     itk_store_put_step(store, &step, &error) &&
                     itk_store_update_execution(store, &record, &error) &&
                     itk_store_commit(store, &error);
                g_assert_no_error(error);
                g_assert_true(ok);
                n_transactions++;

                step.status = "completed";
                step.finished_at = 2;
                step.output_json = "{}";
                ok = itk_store_begin(store, &error) && itk_store_put_step(store, &step, &error) &&
                     itk_store_append_log(store, ID1, i, 6, path, "done", &error) &&
                     (grouped ? TRUE : itk_store_commit(store, &error));
                g_assert_no_error(error);
                g_assert_true(ok);
                n_transactions += grouped ? 0 : 1;
                slowest = MAX(slowest, g_get_monotonic_time() - step_start);
        }
        if (grouped) {
                g_assert_true(itk_store_commit(store, &error));
                g_assert_no_error(error);
        }
        seconds = (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
        cpu_seconds = cpu_time(CLOCK_PROCESS_CPUTIME_ID) - cpu_seconds;
        thread_seconds = cpu_time(CLOCK_THREAD_CPUTIME_ID) - thread_seconds;
        /* Wall time depends on the disk and the machine's load; the CPU time
         * of the calling thread is what the store costs the main loop (the
         * process total adds the checkpointer). */
        g_test_message("store, %s: %u steps in %.3f s: %.0f steps/s, %.0f transactions/s; "
                       "CPU per step %.1f us in the caller, %.1f us in all; "
                       "slowest step %.1f ms; WAL %.1f MiB",
                       grouped ? "1 transaction per step" : "2 transactions per step", n_steps,
                       seconds, n_steps / seconds, n_transactions / seconds,
                       thread_seconds * G_USEC_PER_SEC / n_steps,
                       cpu_seconds * G_USEC_PER_SEC / n_steps, slowest / 1000.0,
                       file_size(wal) / 1048576.0);
        if (g_test_perf())
                g_test_minimized_result(seconds, "%u steps in %.3f s", n_steps, seconds);

        /* The work was done, not only timed. */
        steps = get_steps(store, ID1);
        g_assert_cmpuint(g_variant_n_children(steps), ==, n_steps);
        {
                g_autofree char *last = step_field(steps, n_steps - 1, "status");
                g_assert_cmpstr(last, ==, "completed");
        }
        {
                g_autoptr(GVariant) log = get_log(store, ID1, 0);
                g_assert_cmpuint(g_variant_n_children(log), ==, n_steps);
        }
}

static void
test_store_perf(void)
{
        run_perf(FALSE);
}

static void
test_store_perf_grouped(void)
{
        run_perf(TRUE);
}

/* What a run shows live survives the store: each step's index and phase,
 * and the run's progress; a database of schema 1 gains them on open. */
static void
test_store_live_fields(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-test-store-XXXXXX", "history.db");
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) steps = NULL;
        g_autoptr(GVariant) step = NULL;
        g_autoptr(GVariant) run = NULL;
        g_autofree char *phase = NULL;
        ItkExecutionRecord record = make_execution(ID1, "running", 1);
        ItkStepRecord undo = {
                .execution_id = ID1,
                .step_path = "undo",
                .position = 3,
                .name = "Undo",
                .type = "utility.log",
                .status = "completed",
                .index = 2,
                .phase = "rollback",
        };
        gint32 index = -9;
        double progress = -9;

        {
                g_autoptr(ItkStore) store = open_store(td->path);

                insert_execution(store, ID1, "running", 1);
                put_step(store, ID1, "a", 0, "completed");
                g_assert_true(itk_store_put_step(store, &undo, &error));
                g_assert_no_error(error);
                record.status = "failed";
                record.progress = 0.5;
                g_assert_true(itk_store_update_execution(store, &record, &error));
                g_assert_no_error(error);

                steps = get_steps(store, ID1);
                step = g_variant_get_child_value(steps, 1);
                g_assert_true(g_variant_lookup(step, "index", "i", &index));
                g_assert_cmpint(index, ==, 2);
                phase = lookup_string(step, "phase");
                g_assert_cmpstr(phase, ==, "rollback");
                g_clear_pointer(&phase, g_free);
                g_clear_pointer(&step, g_variant_unref);
                step = g_variant_get_child_value(steps, 0);
                phase = lookup_string(step, "phase");
                g_assert_cmpstr(phase, ==, "main");
                run = itk_store_get_execution(store, ID1, &error);
                g_assert_no_error(error);
                g_assert_true(g_variant_lookup(run, "progress", "d", &progress));
                g_assert_cmpfloat(progress, ==, 0.5);
        }

        /* Back to schema 1 (as an older daemon left it): reopening migrates,
         * and rows from before say "not recorded". */
        sql_exec(td->path, "ALTER TABLE steps DROP COLUMN step_index;"
                           "ALTER TABLE steps DROP COLUMN phase;"
                           "ALTER TABLE executions DROP COLUMN progress;"
                           "DROP INDEX executions_playbook;"
                           "DROP TABLE artifacts;"
                           "ALTER TABLE executions DROP COLUMN options;"
                           "PRAGMA user_version = 1;");
        {
                g_autoptr(ItkStore) store = open_store(td->path);

                g_clear_pointer(&run, g_variant_unref);
                run = itk_store_get_execution(store, ID1, &error);
                g_assert_no_error(error);
                g_assert_true(g_variant_lookup(run, "progress", "d", &progress));
                g_assert_cmpfloat(progress, ==, -1);
        }
        g_assert_cmpint(sql_int(td->path, "PRAGMA user_version"), ==, 5);
        g_assert_cmpint(sql_int(td->path, "SELECT count(*) FROM sqlite_schema WHERE name IN "
                                          "('executions_playbook', 'artifacts')"),
                        ==, 2);
        /* The options column (a run's credential and timeouts) came back too. */
        g_assert_true(g_variant_lookup(run, "options", "&s", NULL));
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/store/open/schema", test_store_open_schema);
        g_test_add_func("/store/open/missing-dir", test_store_open_missing_dir);
        g_test_add_func("/store/open/corrupt", test_store_open_corrupt);
        g_test_add_func("/store/execution", test_store_execution);
        g_test_add_func("/store/steps", test_store_steps);
        g_test_add_func("/store/live-fields", test_store_live_fields);
        g_test_add_func("/store/log", test_store_log);
        g_test_add_func("/store/invalid-utf8", test_store_invalid_utf8);
        g_test_add_func("/store/list", test_store_list);
        g_test_add_func("/store/delete", test_store_delete);
        g_test_add_func("/store/mark-interrupted", test_store_mark_interrupted);
        g_test_add_func("/store/reopen", test_store_reopen);
        g_test_add_func("/store/transactions", test_store_transactions);
        g_test_add_func("/store/nested-begin", test_store_nested_begin);
        g_test_add_func("/store/crash", test_store_crash);
        g_test_add_func("/store/checkpoint", test_store_checkpoint);
        g_test_add_func("/store/perf", test_store_perf);
        g_test_add_func("/store/perf-grouped", test_store_perf_grouped);

        return g_test_run();
}
