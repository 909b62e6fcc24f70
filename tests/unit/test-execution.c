/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The execution state machine without a bus: control semantics, failure
 * handling, nesting, and "committed before announced". Test-only step types
 * (test.hold, test.fail) are registered so each case is deterministic. */
#include <glib/gstdio.h>

#include "itk-error.h"
#include "itk-execution.h"
#include "itk-redactor.h"
#include "itk-step.h"
#include "itk-store.h"

/* --- test step types ----------------------------------------------------------- */

/* test.hold: completes when released (test_release_holds) or cancelled; not pausable. */
static GPtrArray *holds;

static gboolean
test_hold_cancelled_idle_cb(gpointer user_data)
{
        g_autoptr(GTask) task = user_data;

        /* Unless it was released in the meantime. */
        if (g_ptr_array_remove(holds, task)) {
                g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
                g_object_unref(task);
        }
        return G_SOURCE_REMOVE;
}

static void
test_hold_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
        g_idle_add(test_hold_cancelled_idle_cb, g_object_ref(user_data));
}

static void
test_hold_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
              GAsyncReadyCallback callback, gpointer user_data)
{
        GTask *task = itk_step_task_new(ctx, cancellable, callback, user_data);

        g_ptr_array_add(holds, task);
        g_cancellable_connect(cancellable, G_CALLBACK(test_hold_cancelled_cb), task, NULL);
}

static void
test_release_holds(void)
{
        while (holds->len > 0) {
                GTask *task = g_ptr_array_steal_index(holds, 0);
                JsonNode *output = json_from_string("{\"held\": true}", NULL);
                g_task_return_pointer(task, output, (GDestroyNotify)json_node_unref);
                g_object_unref(task);
        }
}

/* test.fail: fails while its "failures" counter (a variable) is above 0. */
static void
test_fail_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
              GAsyncReadyCallback callback, gpointer user_data)
{
        g_autoptr(GTask) task = itk_step_task_new(ctx, cancellable, callback, user_data);
        JsonObject *vars = itk_step_context_get_variables(ctx);
        gint64 left = json_object_has_member(vars, "failures")
                              ? json_object_get_int_member(vars, "failures")
                              : G_MAXINT;

        if (left > 0) {
                itk_step_context_set_variable(ctx, "failures",
                                              json_node_init_int(json_node_alloc(), left - 1));
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_FAILED, "deliberate failure");
                return;
        }
        g_task_return_pointer(task, json_from_string("{\"ok\": true}", NULL),
                              (GDestroyNotify)json_node_unref);
}

/* test.deaf: ignores its cancellable (a buggy handler); completes only when
 * the test releases it. */
static GPtrArray *deaf;

static void
test_deaf_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
              GAsyncReadyCallback callback, gpointer user_data)
{
        g_ptr_array_add(deaf, itk_step_task_new(ctx, cancellable, callback, user_data));
}

static const ItkStepHandler test_deaf = { .type = "test.deaf", .run = test_deaf_run };

/* Warnings a test expects go here instead of aborting it (structured logging
 * bypasses g_test_expect_message). */
static GPtrArray *journal;

static GLogWriterOutput
journal_writer(GLogLevelFlags level, const GLogField *fields, gsize n, gpointer user_data)
{
        if ((level & G_LOG_LEVEL_WARNING) && journal != NULL) {
                for (gsize i = 0; i < n; i++)
                        if (g_str_equal(fields[i].key, "MESSAGE"))
                                g_ptr_array_add(journal, g_strdup(fields[i].value));
                return G_LOG_WRITER_HANDLED;
        }
        return g_log_writer_default(level, fields, n, user_data);
}
static const ItkStepHandler test_hold = { .type = "test.hold", .run = test_hold_run };
static const ItkStepHandler test_fail = { .type = "test.fail", .run = test_fail_run };

/* --- fixture ---------------------------------------------------------------------- */

typedef struct {
        ItkExecution *execution;
        GPtrArray *statuses; /* "previous>status" */
        GPtrArray *steps;    /* "path:status" */
        GPtrArray *logs;
        guint finished;
        char *finished_status;
        gboolean signal_after_finished;
        ItkStore *store;
        char *tmpdir;
        GHashTable *library;  /* id -> YAML, for playbook.run */
        ItkSecretSet *shared; /* the credential store's secrets, or NULL */
} Fixture;

static void
status_changed_cb(ItkExecution *e, int status, int previous, Fixture *f)
{
        if (f->finished > 0)
                f->signal_after_finished = TRUE;
        g_ptr_array_add(f->statuses, g_strdup_printf("%s>%s", itk_status_to_string(previous),
                                                     itk_status_to_string(status)));
        if (f->store != NULL) {
                /* Committed before announced: the store already says so. */
                g_autoptr(GVariant) run =
                        itk_store_get_execution(f->store, itk_execution_get_id(e), NULL);
                const char *stored = NULL;
                g_assert_nonnull(run);
                g_assert_true(g_variant_lookup(run, "status", "&s", &stored));
                g_assert_cmpstr(stored, ==, itk_status_to_string(status));
        }
}

static void
step_changed_cb(ItkExecution *e, int index, const char *path, int status, const char *message,
                Fixture *f)
{
        if (f->finished > 0)
                f->signal_after_finished = TRUE;
        g_ptr_array_add(f->steps,
                        g_strdup_printf("%s:%s", path, itk_step_status_to_string(status)));
}

static void
log_cb(ItkExecution *e, guint64 usec, guint priority, const char *step, const char *message,
       Fixture *f)
{
        if (f->finished > 0)
                f->signal_after_finished = TRUE;
        g_ptr_array_add(f->logs, g_strdup(message));
}

static void
finished_cb(ItkExecution *e, int status, const char *error, Fixture *f)
{
        f->finished++;
        g_free(f->finished_status);
        f->finished_status = g_strdup(itk_status_to_string(status));
}

static ItkPlaybook *
resolve_cb(const char *id, gpointer user_data, GError **error)
{
        Fixture *f = user_data;
        const char *yaml = f->library != NULL ? g_hash_table_lookup(f->library, id) : NULL;

        if (yaml == NULL) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_PLAYBOOK, "no playbook '%s'", id);
                return NULL;
        }
        return itk_playbook_new_from_data(yaml, -1, id, NULL, error);
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
        f->statuses = g_ptr_array_new_with_free_func(g_free);
        f->steps = g_ptr_array_new_with_free_func(g_free);
        f->logs = g_ptr_array_new_with_free_func(g_free);
        f->library = g_hash_table_new(g_str_hash, g_str_equal);
        if (data != NULL) {
                g_autofree char *db = NULL;
                f->tmpdir = g_dir_make_tmp("itk-exec-XXXXXX", NULL);
                db = g_build_filename(f->tmpdir, "history.db", NULL);
                f->store = itk_store_open(db, NULL);
                g_assert_nonnull(f->store);
        }
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
        test_release_holds();
        g_clear_object(&f->execution);
        g_ptr_array_unref(f->statuses);
        g_ptr_array_unref(f->steps);
        g_ptr_array_unref(f->logs);
        g_hash_table_unref(f->library);
        g_clear_pointer(&f->shared, itk_secret_set_unref);
        g_free(f->finished_status);
        g_clear_pointer(&f->store, itk_store_free);
        if (f->tmpdir != NULL) {
                g_autofree char *db = g_build_filename(f->tmpdir, "history.db", NULL);
                g_autofree char *wal = g_strconcat(db, "-wal", NULL);
                g_autofree char *shm = g_strconcat(db, "-shm", NULL);
                g_unlink(db);
                g_unlink(wal);
                g_unlink(shm);
                g_rmdir(f->tmpdir);
                g_free(f->tmpdir);
        }
        /* Drain sources the run left (none should fire). */
        while (g_main_context_iteration(NULL, FALSE))
                ;
}

static ItkExecution *
fixture_create(Fixture *f, const char *yaml, gboolean debug)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook =
                itk_playbook_new_from_data(yaml, -1, "test.yaml", NULL, &error);
        g_autoptr(JsonObject) given = json_object_new();
        g_autoptr(JsonObject) bound = NULL;
        ItkExecutionConfig config = { 0 };

        g_assert_no_error(error);
        bound = itk_playbook_bind_parameters(playbook, given, &error);
        g_assert_no_error(error);
        config.playbook = playbook;
        config.parameters = bound;
        config.store = f->store;
        config.debug_mode = debug;
        config.resolve = resolve_cb;
        config.resolve_data = f;
        config.shared_secrets = f->shared;
        f->execution = itk_execution_new(&config, &error);
        g_assert_no_error(error);
        g_signal_connect(f->execution, "status-changed", G_CALLBACK(status_changed_cb), f);
        g_signal_connect(f->execution, "step-changed", G_CALLBACK(step_changed_cb), f);
        g_signal_connect(f->execution, "log", G_CALLBACK(log_cb), f);
        g_signal_connect(f->execution, "finished", G_CALLBACK(finished_cb), f);
        return f->execution;
}

static gboolean
timeout_cb(gpointer user_data)
{
        *(gboolean *)user_data = TRUE;
        return G_SOURCE_REMOVE;
}

/* Iterates the loop until @pred holds; fails the test after @msec. */
#define WAIT_UNTIL(pred, msec)                                                                     \
        do {                                                                                       \
                gboolean expired_ = FALSE;                                                         \
                guint id_ = g_timeout_add(msec, timeout_cb, &expired_);                            \
                while (!(pred) && !expired_)                                                       \
                        g_main_context_iteration(NULL, TRUE);                                      \
                if (!expired_)                                                                     \
                        g_source_remove(id_);                                                      \
                g_assert_true(pred);                                                               \
        } while (0)

/* Iterates the loop for @msec, to show that something does NOT happen. */
static void
run_for(guint msec)
{
        gboolean expired = FALSE;
        g_timeout_add(msec, timeout_cb, &expired);
        while (!expired)
                g_main_context_iteration(NULL, TRUE);
}

static gboolean
has_step(Fixture *f, const char *entry)
{
        for (guint i = 0; i < f->steps->len; i++)
                if (g_str_equal(g_ptr_array_index(f->steps, i), entry))
                        return TRUE;
        return FALSE;
}

#define STATUS(f) itk_status_to_string(itk_execution_get_status((f)->execution))

static const char *three_steps =
        "name: T\n"
        "version: 1\n"
        "steps:\n"
        "  - {id: a, name: A, type: utility.log, parameters: {message: one}}\n"
        "  - {id: b, name: B, type: test.hold}\n"
        "  - {id: c, name: C, type: utility.log, parameters: {message: three}}\n";

static const char *sleep_steps =
        "name: S\n"
        "version: 1\n"
        "steps:\n"
        "  - {id: nap, name: Nap, type: utility.sleep, parameters: {seconds: 0.3}}\n"
        "  - {id: after, name: After, type: utility.log, parameters: {message: done}}\n";

/* --- tests ---------------------------------------------------------------------------- */

static void
test_complete(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        ItkExecution *e = fixture_create(f, three_steps, FALSE);

        g_assert_cmpstr(STATUS(f), ==, "pending");
        g_assert_true(itk_execution_start(e, &error));
        /* Start only schedules: the transition comes from the loop, after the reply. */
        g_assert_cmpstr(STATUS(f), ==, "pending");
        g_assert_cmpuint(f->statuses->len, ==, 0);
        WAIT_UNTIL(holds->len == 1, 2000);
        g_assert_cmpint(itk_execution_get_current_step(e), ==, 1);
        g_assert_cmpstr(itk_execution_get_current_step_id(e), ==, "b");
        test_release_holds();
        WAIT_UNTIL(f->finished == 1, 2000);
        g_assert_cmpstr(f->finished_status, ==, "completed");
        g_assert_cmpuint(f->statuses->len, ==, 2);
        g_assert_cmpstr(g_ptr_array_index(f->statuses, 0), ==, "pending>running");
        g_assert_cmpstr(g_ptr_array_index(f->statuses, 1), ==, "running>completed");
        g_assert_true(has_step(f, "c:completed"));
        g_assert_cmpfloat(itk_execution_get_progress(e), ==, 1.0);
        g_assert_cmpint(itk_execution_get_current_step(e), ==, -1);
        /* Terminal is terminal. */
        g_assert_false(itk_execution_resume(e, &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_NOT_RUNNING);
        g_clear_error(&error);
        g_assert_false(itk_execution_start(e, &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_NOT_RUNNING);
        g_assert_false(f->signal_after_finished);
}

static void
test_pending_methods(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        ItkExecution *e = fixture_create(f, three_steps, FALSE);
        gboolean (*invalid[])(ItkExecution *, GError **) = {
                itk_execution_pause,
                itk_execution_resume,
                itk_execution_skip,
                itk_execution_skip_back,
        };

        for (guint i = 0; i < G_N_ELEMENTS(invalid); i++) {
                g_assert_false(invalid[i](e, &error));
                g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_STATE);
                g_clear_error(&error);
        }
        /* Cancel of a pending run: cancelled at once, no step ran. */
        g_assert_true(itk_execution_cancel(e, &error));
        g_assert_cmpstr(STATUS(f), ==, "cancelled");
        g_assert_cmpuint(f->finished, ==, 1);
        g_assert_cmpuint(f->steps->len, ==, 0);
        g_assert_false(itk_execution_cancel(e, &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_NOT_RUNNING);
}

static void
test_cancel_after_start(Fixture *f, gconstpointer data)
{
        ItkExecution *e = fixture_create(f, three_steps, FALSE);

        /* Cancel right after Start, before the loop ran the first step. */
        g_assert_true(itk_execution_start(e, NULL));
        g_assert_true(itk_execution_cancel(e, NULL));
        g_assert_cmpstr(STATUS(f), ==, "cancelled");
        run_for(100);
        g_assert_cmpuint(f->finished, ==, 1);
        g_assert_cmpuint(f->steps->len, ==, 0);
        g_assert_false(f->signal_after_finished);
}

static void
test_cancel_running(Fixture *f, gconstpointer data)
{
        ItkExecution *e = fixture_create(f, three_steps, FALSE);

        itk_execution_start(e, NULL);
        WAIT_UNTIL(holds->len == 1, 2000);
        g_assert_true(itk_execution_cancel(e, NULL));
        /* Repeated Cancel while stopping succeeds and does nothing more. */
        g_assert_true(itk_execution_cancel(e, NULL));
        WAIT_UNTIL(f->finished == 1, 2000);
        g_assert_cmpstr(f->finished_status, ==, "cancelled");
        g_assert_true(has_step(f, "b:cancelled"));
        g_assert_false(has_step(f, "c:running"));
        run_for(50);
        g_assert_cmpuint(f->finished, ==, 1);
        g_assert_false(f->signal_after_finished);
}

/* The engine's Cancel watchdog: a handler that ignores its cancellable does
 * not hold the run; it ends cancelled, the journal names the step type, and
 * the late result changes nothing. */
static void
test_cancel_watchdog(Fixture *f, gconstpointer data)
{
        ItkExecution *e = fixture_create(f,
                                         "name: D\n"
                                         "version: 1\n"
                                         "steps:\n"
                                         "  - {id: deaf, name: Deaf, type: test.deaf}\n"
                                         "  - {id: after, name: After, type: utility.log, "
                                         "parameters: {message: never}}\n",
                                         FALSE);
        GTask *task;

        itk_execution_start(e, NULL);
        WAIT_UNTIL(deaf->len == 1, 2000);
        journal = g_ptr_array_new_with_free_func(g_free);
        g_assert_true(itk_execution_cancel(e, NULL));
        WAIT_UNTIL(f->finished == 1, 3000);
        /* The journal names the step and its type. */
        g_assert_cmpuint(journal->len, ==, 1);
        g_assert_true(g_pattern_match_simple(
                "*step 'deaf' (type test.deaf) did not return within*Cancel*",
                g_ptr_array_index(journal, 0)));
        g_clear_pointer(&journal, g_ptr_array_unref);
        g_assert_cmpstr(f->finished_status, ==, "cancelled");
        g_assert_cmpstr(STATUS(f), ==, "cancelled");
        g_assert_true(has_step(f, "deaf:cancelled"));

        /* The handler returns at last, with a result: it is dropped. */
        task = g_ptr_array_steal_index(deaf, 0);
        g_task_return_pointer(task, json_from_string("{\"late\": true}", NULL),
                              (GDestroyNotify)json_node_unref);
        g_object_unref(task);
        run_for(50);
        g_assert_cmpuint(f->finished, ==, 1);
        g_assert_cmpstr(STATUS(f), ==, "cancelled");
        g_assert_false(has_step(f, "deaf:completed"));
        g_assert_false(has_step(f, "after:running"));
        g_assert_false(f->signal_after_finished);
}

static void
test_pause_pausable(Fixture *f, gconstpointer data)
{
        ItkExecution *e = fixture_create(f, sleep_steps, FALSE);

        itk_execution_start(e, NULL);
        WAIT_UNTIL(has_step(f, "nap:running"), 2000);
        g_assert_true(itk_execution_pause(e, NULL));
        /* A pausable step pauses at once. */
        g_assert_cmpstr(STATUS(f), ==, "paused");
        g_assert_false(itk_execution_get_pause_requested(e));
        g_assert_true(itk_execution_pause(e, NULL)); /* no-op */
        run_for(600);
        g_assert_false(has_step(f, "nap:completed"));
        g_assert_true(itk_execution_resume(e, NULL));
        g_assert_cmpstr(STATUS(f), ==, "running");
        WAIT_UNTIL(f->finished == 1, 3000);
        g_assert_cmpstr(f->finished_status, ==, "completed");
}

static void
test_pause_at_boundary(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        ItkExecution *e = fixture_create(f, three_steps, FALSE);

        itk_execution_start(e, NULL);
        WAIT_UNTIL(holds->len == 1, 2000);
        g_assert_true(itk_execution_pause(e, NULL));
        g_assert_cmpstr(STATUS(f), ==, "running");
        g_assert_true(itk_execution_get_pause_requested(e));
        /* Resume while running clears the request. */
        g_assert_true(itk_execution_resume(e, NULL));
        g_assert_false(itk_execution_get_pause_requested(e));
        g_assert_true(itk_execution_pause(e, NULL));
        test_release_holds();
        WAIT_UNTIL(itk_execution_get_status(e) == ITK_STATUS_PAUSED, 2000);
        g_assert_true(has_step(f, "b:completed"));
        g_assert_false(has_step(f, "c:running"));
        g_assert_false(itk_execution_get_pause_requested(e));
        g_assert_cmpstr(itk_execution_get_current_step_id(e), ==, "c");
        /* Start is refused while paused. */
        g_assert_false(itk_execution_start(e, &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_STATE);
        itk_execution_resume(e, NULL);
        WAIT_UNTIL(f->finished == 1, 2000);
        g_assert_cmpstr(f->finished_status, ==, "completed");
}

static void
test_cancel_paused(Fixture *f, gconstpointer data)
{
        ItkExecution *e = fixture_create(f, sleep_steps, FALSE);

        itk_execution_start(e, NULL);
        WAIT_UNTIL(has_step(f, "nap:running"), 2000);
        itk_execution_pause(e, NULL);
        g_assert_true(itk_execution_cancel(e, NULL));
        WAIT_UNTIL(f->finished == 1, 2000);
        g_assert_cmpstr(f->finished_status, ==, "cancelled");
        g_assert_cmpstr(g_ptr_array_index(f->statuses, f->statuses->len - 1), ==,
                        "paused>cancelled");
}

static void
test_skip_running(Fixture *f, gconstpointer data)
{
        ItkExecution *e = fixture_create(f, three_steps, FALSE);

        itk_execution_start(e, NULL);
        WAIT_UNTIL(holds->len == 1, 2000);
        g_assert_true(itk_execution_skip(e, NULL));
        WAIT_UNTIL(f->finished == 1, 2000);
        g_assert_true(has_step(f, "b:skipped"));
        g_assert_true(has_step(f, "c:completed"));
        g_assert_cmpstr(f->finished_status, ==, "completed");
}

static void
test_skip_paused(Fixture *f, gconstpointer data)
{
        ItkExecution *e = fixture_create(f, sleep_steps, FALSE);

        itk_execution_start(e, NULL);
        WAIT_UNTIL(has_step(f, "nap:running"), 2000);
        itk_execution_pause(e, NULL);
        g_assert_true(itk_execution_skip(e, NULL));
        WAIT_UNTIL(has_step(f, "nap:skipped"), 2000);
        /* Stays paused, cursor on the next step. */
        run_for(50);
        g_assert_cmpstr(STATUS(f), ==, "paused");
        g_assert_cmpstr(itk_execution_get_current_step_id(e), ==, "after");
        g_assert_true(itk_execution_skip(e, NULL));
        g_assert_true(has_step(f, "after:skipped"));
        g_assert_cmpstr(STATUS(f), ==, "paused");
        itk_execution_resume(e, NULL);
        WAIT_UNTIL(f->finished == 1, 2000);
        g_assert_cmpstr(f->finished_status, ==, "completed");
}

static void
test_skip_back(Fixture *f, gconstpointer data)
{
        ItkExecution *e = fixture_create(f, three_steps, FALSE);
        guint a_runs = 0;

        itk_execution_start(e, NULL);
        WAIT_UNTIL(holds->len == 1, 2000);
        g_assert_true(itk_execution_skip_back(e, NULL));
        /* The hold is abandoned, a and b reset, a runs again. */
        WAIT_UNTIL(holds->len == 1 && has_step(f, "b:pending"), 2000);
        for (guint i = 0; i < f->steps->len; i++)
                if (g_str_equal(g_ptr_array_index(f->steps, i), "a:completed"))
                        a_runs++;
        g_assert_cmpuint(a_runs, ==, 2);
        /* Paused at a boundary: SkipBack moves the cursor and stays paused. */
        itk_execution_pause(e, NULL);
        test_release_holds();
        WAIT_UNTIL(itk_execution_get_status(e) == ITK_STATUS_PAUSED, 2000);
        g_assert_cmpstr(itk_execution_get_current_step_id(e), ==, "c");
        g_assert_true(itk_execution_skip_back(e, NULL));
        g_assert_cmpstr(STATUS(f), ==, "paused");
        g_assert_cmpstr(itk_execution_get_current_step_id(e), ==, "b");
        itk_execution_resume(e, NULL);
        WAIT_UNTIL(holds->len == 1, 2000);
        test_release_holds();
        WAIT_UNTIL(f->finished == 1, 2000);
        g_assert_cmpstr(f->finished_status, ==, "completed");
}

static void
test_debug_mode(Fixture *f, gconstpointer data)
{
        const char *yaml = "name: D\nversion: 1\nsteps:\n"
                           "  - {id: a, name: A, type: utility.log, parameters: {message: x}}\n"
                           "  - {id: f, name: F, type: test.fail, retry_count: 3, retry_delay: 0}\n"
                           "  - {id: z, name: Z, type: utility.log, parameters: {message: y}}\n";
        ItkExecution *e = fixture_create(f, yaml, TRUE);

        itk_execution_start(e, NULL);
        /* Pauses before the first step. */
        WAIT_UNTIL(itk_execution_get_status(e) == ITK_STATUS_PAUSED, 2000);
        g_assert_false(has_step(f, "a:running"));
        itk_execution_resume(e, NULL);
        WAIT_UNTIL(has_step(f, "a:completed") && itk_execution_get_status(e) == ITK_STATUS_PAUSED,
                   2000);
        g_assert_false(has_step(f, "f:running"));
        itk_execution_resume(e, NULL);
        /* The failure pauses the run: no retries, no on_failure. */
        WAIT_UNTIL(has_step(f, "f:failed"), 2000);
        WAIT_UNTIL(itk_execution_get_status(e) == ITK_STATUS_PAUSED, 2000);
        g_assert_cmpstr(itk_execution_get_current_step_id(e), ==, "f");
        /* Turning debug off does not resume. */
        g_assert_true(itk_execution_set_debug_mode(e, FALSE, NULL));
        run_for(50);
        g_assert_cmpstr(STATUS(f), ==, "paused");
        /* Skip skips the failed step; resume finishes the run. */
        g_assert_true(itk_execution_skip(e, NULL));
        g_assert_true(has_step(f, "f:skipped"));
        itk_execution_resume(e, NULL);
        WAIT_UNTIL(f->finished == 1, 2000);
        g_assert_cmpstr(f->finished_status, ==, "completed");
}

static void
test_retry_then_success(Fixture *f, gconstpointer data)
{
        const char *yaml =
                "name: R\nversion: 1\nsteps:\n"
                "  - {id: v, name: V, type: utility.set_variable, parameters: {name: failures, "
                "value: 2}}\n"
                "  - {id: f, name: F, type: test.fail, retry_count: 2, retry_delay: 0.05}\n";
        ItkExecution *e = fixture_create(f, yaml, FALSE);
        guint retries = 0;

        itk_execution_start(e, NULL);
        WAIT_UNTIL(f->finished == 1, 3000);
        g_assert_cmpstr(f->finished_status, ==, "completed");
        for (guint i = 0; i < f->logs->len; i++)
                if (strstr(g_ptr_array_index(f->logs, i), "retrying") != NULL)
                        retries++;
        g_assert_cmpuint(retries, ==, 2);
}

static void
test_cancel_retry_delay(Fixture *f, gconstpointer data)
{
        const char *yaml =
                "name: R\nversion: 1\nsteps:\n"
                "  - {id: f, name: F, type: test.fail, retry_count: 5, retry_delay: 60}\n";
        ItkExecution *e = fixture_create(f, yaml, FALSE);

        itk_execution_start(e, NULL);
        WAIT_UNTIL(f->logs->len == 1, 2000);
        /* In the 60 s retry delay: Pause is immediate, Cancel is immediate. */
        g_assert_true(itk_execution_pause(e, NULL));
        g_assert_cmpstr(STATUS(f), ==, "paused");
        itk_execution_resume(e, NULL);
        g_assert_true(itk_execution_cancel(e, NULL));
        g_assert_cmpstr(STATUS(f), ==, "cancelled");
        g_assert_cmpuint(f->finished, ==, 1);
        g_assert_true(has_step(f, "f:cancelled"));
}

static void
test_on_failure(Fixture *f, gconstpointer data)
{
        const char *yaml =
                "name: F\nversion: 1\nsteps:\n"
                "  - {id: soft, name: Soft, type: test.fail, on_failure: continue}\n"
                "  - {id: hard, name: Hard, type: test.fail, on_failure: rollback}\n"
                "  - {id: never, name: Never, type: utility.log, parameters: {message: no}}\n"
                "rollback:\n"
                "  - {id: undo, name: Undo, type: utility.log, parameters: {message: undo}}\n";
        ItkExecution *e = fixture_create(f, yaml, FALSE);

        itk_execution_start(e, NULL);
        WAIT_UNTIL(f->finished == 1, 3000);
        g_assert_cmpstr(f->finished_status, ==, "failed");
        g_assert_true(has_step(f, "soft:failed"));
        g_assert_true(has_step(f, "undo:completed"));
        g_assert_false(has_step(f, "never:running"));
        g_assert_cmpstr(itk_execution_get_error(e), ==, "Step 'hard' failed: deliberate failure");
}

static void
test_continue_completes(Fixture *f, gconstpointer data)
{
        const char *yaml = "name: F\nversion: 1\nsteps:\n"
                           "  - {id: soft, name: Soft, type: test.fail, on_failure: continue}\n"
                           "  - {id: ok, name: Ok, type: utility.log, parameters: {message: ok}}\n";
        ItkExecution *e = fixture_create(f, yaml, FALSE);
        g_autoptr(GVariant) steps = NULL;
        g_autoptr(GVariant) first = NULL;
        const char *status;

        itk_execution_start(e, NULL);
        WAIT_UNTIL(f->finished == 1, 3000);
        /* Only continue'd failures: completed, the failed step stays visible. */
        g_assert_cmpstr(f->finished_status, ==, "completed");
        steps = g_variant_ref_sink(itk_execution_get_steps(e));
        first = g_variant_get_child_value(steps, 0);
        g_assert_true(g_variant_lookup(first, "status", "&s", &status));
        g_assert_cmpstr(status, ==, "failed");
}

static void
test_timeout(Fixture *f, gconstpointer data)
{
        const char *yaml = "name: T\nversion: 1\nsteps:\n"
                           "  - {id: h, name: H, type: test.hold, timeout: 0.1}\n";
        ItkExecution *e = fixture_create(f, yaml, FALSE);

        itk_execution_start(e, NULL);
        WAIT_UNTIL(f->finished == 1, 3000);
        g_assert_cmpstr(f->finished_status, ==, "failed");
        g_assert_cmpstr(itk_execution_get_error(e), ==, "Step 'h' failed: timed out after 0.1 s");
}

static const char *child_yaml =
        "name: Child\nversion: 1\n"
        "parameters:\n  - {name: who, type: string}\n"
        "steps:\n"
        "  - {id: greet, name: Greet, type: utility.log, parameters: {message: 'hi {{ who }}'}}\n"
        "  - {id: wait, name: Wait, type: test.hold}\n";

static void
test_nested(Fixture *f, gconstpointer data)
{
        const char *yaml =
                "name: P\nversion: 1\nsteps:\n"
                "  - {id: run, name: Run, type: playbook.run, parameters: {playbook: child.yaml, "
                "who: you}}\n"
                "  - {id: end, name: End, type: utility.log, parameters: {message: end}}\n";
        ItkExecution *e;
        g_autoptr(GVariant) steps = NULL;
        g_autoptr(GVariant) run = NULL;
        g_autoptr(GVariant) children = NULL;

        g_hash_table_insert(f->library, "child.yaml", (gpointer)child_yaml);
        e = fixture_create(f, yaml, FALSE);
        itk_execution_start(e, NULL);
        WAIT_UNTIL(holds->len == 1, 2000);
        g_assert_true(has_step(f, "run/greet:completed"));
        g_assert_cmpstr(itk_execution_get_current_step_id(e), ==, "run/wait");
        g_assert_cmpint(itk_execution_get_current_step(e), ==, 0);
        /* Control reaches the nested step. */
        g_assert_true(itk_execution_skip(e, NULL));
        WAIT_UNTIL(f->finished == 1, 2000);
        g_assert_true(has_step(f, "run/wait:skipped"));
        g_assert_true(has_step(f, "run:completed"));
        g_assert_cmpstr(f->finished_status, ==, "completed");
        steps = g_variant_ref_sink(itk_execution_get_steps(e));
        run = g_variant_get_child_value(steps, 0);
        children = g_variant_lookup_value(run, "children", G_VARIANT_TYPE("aa{sv}"));
        g_assert_cmpuint(g_variant_n_children(children), ==, 2);
}

static void
test_nested_cancel(Fixture *f, gconstpointer data)
{
        const char *yaml = "name: P\nversion: 1\nsteps:\n"
                           "  - {id: run, name: Run, type: playbook.run, parameters: {playbook: "
                           "child.yaml, who: you}}\n";
        ItkExecution *e;

        g_hash_table_insert(f->library, "child.yaml", (gpointer)child_yaml);
        e = fixture_create(f, yaml, FALSE);
        itk_execution_start(e, NULL);
        WAIT_UNTIL(holds->len == 1, 2000);
        itk_execution_cancel(e, NULL);
        WAIT_UNTIL(f->finished == 1, 2000);
        g_assert_cmpstr(f->finished_status, ==, "cancelled");
        g_assert_true(has_step(f, "run/wait:cancelled"));
        g_assert_true(has_step(f, "run:cancelled"));
}

static void
test_nested_failure(Fixture *f, gconstpointer data)
{
        const char *bad_child =
                "name: Bad\nversion: 1\nsteps:\n  - {id: boom, name: Boom, type: test.fail}\n";
        const char *yaml =
                "name: P\nversion: 1\nsteps:\n"
                "  - {id: run, name: Run, type: playbook.run, parameters: {playbook: bad.yaml}}\n";
        ItkExecution *e;

        g_hash_table_insert(f->library, "bad.yaml", (gpointer)bad_child);
        e = fixture_create(f, yaml, FALSE);
        itk_execution_start(e, NULL);
        WAIT_UNTIL(f->finished == 1, 2000);
        g_assert_cmpstr(f->finished_status, ==, "failed");
        g_assert_cmpstr(itk_execution_get_error(e), ==,
                        "Step 'run' failed: nested playbook 'bad.yaml' failed: Step 'boom' failed: "
                        "deliberate failure");
}

static void
test_secret_redacted(Fixture *f, gconstpointer data)
{
        const char *yaml =
                "name: S\nversion: 1\n"
                "parameters:\n  - {name: password, type: string, default: hunter2secret}\n"
                "steps:\n"
                "  - {id: say, name: Say, type: utility.log, parameters: {message: 'pw={{ password "
                "}}'}}\n"
                "  - {id: boom, name: Boom, type: utility.sleep, parameters: {seconds: '{{ "
                "password }}'}}\n";
        ItkExecution *e = fixture_create(f, yaml, FALSE);

        itk_execution_start(e, NULL);
        WAIT_UNTIL(f->finished == 1, 2000);
        g_assert_cmpuint(f->logs->len, >=, 1);
        for (guint i = 0; i < f->logs->len; i++)
                g_assert_null(strstr(g_ptr_array_index(f->logs, i), "hunter2secret"));
        g_assert_null(strstr(itk_execution_get_error(e), "hunter2secret"));
}

/* Stored secrets the playbook never references (it has them by other ways,
 * e.g. a gateway echoing one) are masked in every form, including one set
 * while the run is live, and one deleted from the store meanwhile. */
static void
test_stored_secret_redacted(Fixture *f, gconstpointer data)
{
        /* U3RyMG5nU3RvcmVkUGFzcw== is base64("Str0ngStoredPass"), and
         * YWRtaW46U3RyMG5nU3RvcmVkUGFzcw== that of "admin:Str0ngStoredPass". */
        const char *yaml = "name: S\nversion: 1\n"
                           "steps:\n"
                           "  - {id: plain, name: P, type: utility.log, parameters: {message: "
                           "'pw=Str0ngStoredPass'}}\n"
                           "  - {id: b64, name: B, type: utility.log, parameters: {message: "
                           "'b64=U3RyMG5nU3RvcmVkUGFzcw=='}}\n"
                           "  - {id: basic, name: H, type: utility.log, parameters: {message: "
                           "'Authorization: Basic YWRtaW46U3RyMG5nU3RvcmVkUGFzcw=='}}\n"
                           "  - {id: url, name: U, type: utility.log, parameters: {message: "
                           "'q=Str0ng%53tored%50ass&x'}}\n"
                           "  - {id: hold, name: Hold, type: test.hold}\n"
                           "  - {id: later, name: L, type: utility.log, parameters: {message: "
                           "'old=Str0ngStoredPass new=Fresh+Secret%2f9'}}\n"
                           "  - {id: boom, name: Boom, type: utility.sleep, parameters: {seconds: "
                           "'Fresh Secret/9'}}\n";
        const char *first[] = { "Str0ngStoredPass", NULL };
        const char *second[] = { "Fresh Secret/9", NULL };
        g_autoptr(ItkSecretSet) replaced = itk_secret_set_new(second);
        ItkExecution *e;

        f->shared = itk_secret_set_new(first);
        e = fixture_create(f, yaml, FALSE);
        itk_execution_start(e, NULL);
        WAIT_UNTIL(holds->len == 1, 2000);
        /* The store changed: a new secret, the old one deleted. */
        itk_execution_set_shared_secrets(e, replaced);
        test_release_holds();
        WAIT_UNTIL(f->finished == 1, 2000);
        g_assert_cmpuint(f->logs->len, >=, 5);
        for (guint i = 0; i < f->logs->len; i++) {
                const char *line = g_ptr_array_index(f->logs, i);
                g_assert_null(strstr(line, "Str0ng"));
                g_assert_null(strstr(line, "U3RyMG5nU3RvcmVkUGFzcw"));
                g_assert_null(strstr(line, "StoredPass"));
                g_assert_null(strstr(line, "Fresh"));
                g_assert_null(strstr(line, "Secret"));
        }
        g_assert_nonnull(strstr(g_ptr_array_index(f->logs, 0), "pw=" ITK_REDACTED));
        g_assert_nonnull(strstr(g_ptr_array_index(f->logs, 3), "q=" ITK_REDACTED "&x"));
        g_assert_cmpstr(f->finished_status, ==, "failed");
        g_assert_null(strstr(itk_execution_get_error(e), "Fresh"));
}

static void
test_history_committed(Fixture *f, gconstpointer data)
{
        ItkExecution *e = fixture_create(f, three_steps, FALSE);
        g_autoptr(GVariant) steps = NULL;

        /* status_changed_cb asserts the store agrees at every announcement. */
        itk_execution_start(e, NULL);
        WAIT_UNTIL(holds->len == 1, 2000);
        test_release_holds();
        WAIT_UNTIL(f->finished == 1, 2000);
        steps = itk_store_get_steps(f->store, itk_execution_get_id(e), NULL);
        g_assert_nonnull(steps);
        g_assert_cmpuint(g_variant_n_children(steps), ==, 3);
        g_variant_unref(steps);
        steps = NULL;
        g_assert_cmpuint(f->statuses->len, ==, 2);
}

/* --- script output under load -------------------------------------------------------- */

/* The numeric lines of @lines (a script's `seq`), which must be 1..@n in order. */
static void
assert_numbers_in_order(GPtrArray *lines, guint n)
{
        guint next = 1;

        for (guint i = 0; i < lines->len; i++) {
                const char *line = g_ptr_array_index(lines, i);
                g_autofree char *expected = NULL;

                if (!g_ascii_isdigit(line[0]))
                        continue;
                expected = g_strdup_printf("%u", next);
                g_assert_cmpstr(line, ==, expected);
                next++;
        }
        g_assert_cmpuint(next - 1, ==, n);
}

/* Every line of a chatty script reaches the Log signals and the store, in
 * order (batched per read: one transaction per batch). */
static void
test_script_log_all_lines(Fixture *f, gconstpointer data)
{
        const char *yaml = "name: Chatty\nversion: 1\n"
                           "steps:\n"
                           "  - {id: chatty, name: C, type: utility.shell, parameters: {command: "
                           "'seq 1 50000'}}\n";
        ItkExecution *e = fixture_create(f, yaml, FALSE);
        g_autoptr(GVariant) stored = NULL;
        g_autoptr(GPtrArray) messages = g_ptr_array_new_with_free_func(g_free);
        GVariantIter iter;
        const char *message;

        itk_execution_start(e, NULL);
        WAIT_UNTIL(f->finished == 1, 60000);
        g_assert_cmpstr(f->finished_status, ==, "completed");
        assert_numbers_in_order(f->logs, 50000);
        stored = itk_store_get_log(f->store, itk_execution_get_id(e), 0, NULL);
        g_assert_nonnull(stored);
        g_variant_iter_init(&iter, stored);
        while (g_variant_iter_next(&iter, "(tu&s&s)", NULL, NULL, NULL, &message))
                g_ptr_array_add(messages, g_strdup(message));
        assert_numbers_in_order(messages, 50000);
}

/* A secret the script writes in two parts, a read apart: the line is
 * masked whole, in the signals and the store. */
static void
test_script_secret_split(Fixture *f, gconstpointer data)
{
        const char *yaml =
                "name: Split\nversion: 1\n"
                "parameters:\n  - {name: password, type: string, default: Split-Secret-4711}\n"
                "steps:\n"
                "  - id: say\n    name: Say\n    type: utility.python\n    parameters:\n"
                "      script: |\n"
                "        import sys, time\n"
                "        s = '{{ password }}'\n"
                "        sys.stdout.write('pw=' + s[:8])\n"
                "        sys.stdout.flush()\n"
                "        time.sleep(0.3)\n"
                "        sys.stdout.write(s[8:] + ' end\\n')\n"
                "        sys.stdout.flush()\n";
        ItkExecution *e = fixture_create(f, yaml, FALSE);
        g_autoptr(GVariant) stored = NULL;
        gboolean seen = FALSE;
        GVariantIter iter;
        const char *message;

        itk_execution_start(e, NULL);
        WAIT_UNTIL(f->finished == 1, 30000);
        g_assert_cmpstr(f->finished_status, ==, "completed");
        for (guint i = 0; i < f->logs->len; i++) {
                const char *line = g_ptr_array_index(f->logs, i);
                g_assert_null(strstr(line, "Split"));
                g_assert_null(strstr(line, "4711"));
                seen |= g_str_equal(line, "pw=" ITK_REDACTED " end");
        }
        g_assert_true(seen);
        stored = itk_store_get_log(f->store, itk_execution_get_id(e), 0, NULL);
        g_variant_iter_init(&iter, stored);
        while (g_variant_iter_next(&iter, "(tu&s&s)", NULL, NULL, NULL, &message)) {
                g_assert_null(strstr(message, "Split"));
                g_assert_null(strstr(message, "4711"));
        }
}

static void
count_finished_cb(ItkExecution *e, int status, const char *error, guint *finished)
{
        (*finished)++;
}

static void
count_running_step_cb(ItkExecution *e, int index, const char *path, int status, const char *message,
                      guint *running)
{
        if (status == ITK_STEP_RUNNING)
                (*running)++;
}

/* A script printing without end holds up neither another run's first step
 * (the engine's idles) nor its Cancel: that run starts, then ends cancelled,
 * while the chatty one is still printing. */
static void
test_cancel_while_chatty(Fixture *f, gconstpointer data)
{
        const char *chatty = "name: Chatty\nversion: 1\n"
                             "steps:\n"
                             "  - {id: chatty, name: C, type: utility.shell, parameters: {command: "
                             "'i=0; while :; do i=$((i+1)); echo line $i; done'}}\n";
        const char *sleeper = "name: Sleeper\nversion: 1\n"
                              "steps:\n"
                              "  - {id: nap, name: N, type: utility.sleep, parameters: {seconds: "
                              "600}}\n";
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook =
                itk_playbook_new_from_data(sleeper, -1, "s.yaml", NULL, &error);
        g_autoptr(JsonObject) given = json_object_new();
        g_autoptr(JsonObject) bound = NULL;
        g_autoptr(ItkExecution) other = NULL;
        ItkExecutionConfig config = { 0 };
        ItkExecution *e = fixture_create(f, chatty, FALSE);
        guint other_finished = 0;
        guint other_running = 0;
        guint logged;

        g_assert_no_error(error);
        bound = itk_playbook_bind_parameters(playbook, given, &error);
        g_assert_no_error(error);
        config.playbook = playbook;
        config.parameters = bound;
        config.store = f->store;
        other = itk_execution_new(&config, &error);
        g_assert_no_error(error);
        g_signal_connect(other, "finished", G_CALLBACK(count_finished_cb), &other_finished);
        g_signal_connect(other, "step-changed", G_CALLBACK(count_running_step_cb), &other_running);

        itk_execution_start(e, NULL);
        WAIT_UNTIL(f->logs->len > 5000, 30000);
        itk_execution_start(other, NULL);
        WAIT_UNTIL(other_running == 1, 30000);
        logged = f->logs->len;
        g_assert_true(itk_execution_cancel(other, NULL));
        WAIT_UNTIL(other_finished == 1, 30000);
        g_assert_cmpstr(itk_status_to_string(itk_execution_get_status(other)), ==, "cancelled");
        /* The chatty run went on meanwhile (it never ends by itself). */
        g_assert_cmpuint(f->finished, ==, 0);
        g_assert_cmpstr(STATUS(f), ==, "running");
        WAIT_UNTIL(f->logs->len > logged + 1000, 30000);
        g_assert_true(itk_execution_cancel(e, NULL));
        WAIT_UNTIL(f->finished == 1, 30000);
        g_assert_cmpstr(f->finished_status, ==, "cancelled");
        g_assert_false(f->signal_after_finished);
}

/* --- coalesced properties ----------------------------------------------------------- */

typedef struct {
        GPtrArray *seen; /* "step:ID:STATUS", "props:CURRENT_STEP", "loop" */
} PropsWatch;

static gboolean
loop_mark_cb(gpointer user_data)
{
        PropsWatch *w = user_data;

        g_ptr_array_add(w->seen, g_strdup("loop"));
        return G_SOURCE_REMOVE;
}

static void
watch_step_cb(ItkExecution *e, int index, const char *path, int status, const char *message,
              PropsWatch *w)
{
        g_ptr_array_add(w->seen,
                        g_strdup_printf("step:%s:%s", path, itk_step_status_to_string(status)));
        /* Runs at the loop's next turn: before any coalescing timer could. */
        if (g_str_equal(path, "b") && status == ITK_STEP_RUNNING)
                g_idle_add_full(G_PRIORITY_HIGH, loop_mark_cb, w, NULL);
}

static void
watch_props_cb(ItkExecution *e, guint props, PropsWatch *w)
{
        if (props & ITK_EXECUTION_PROP_CURRENT_STEP)
                g_ptr_array_add(w->seen,
                                g_strdup_printf("props:%d", itk_execution_get_current_step(e)));
}

static guint
index_of(GPtrArray *seen, const char *entry)
{
        guint index = G_MAXUINT;

        g_assert_true(g_ptr_array_find_with_equal_func(seen, entry, g_str_equal, &index));
        return index;
}

/* A step change after a quiet period is announced at once, right behind its
 * StepChanged (leading edge), not a coalescing period later. */
static void
test_properties_leading_edge(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func(g_free);
        PropsWatch w = { seen };
        ItkExecution *e = fixture_create(f,
                                         "name: T\nversion: 1\nsteps:\n"
                                         "  - {id: a, name: A, type: test.hold}\n"
                                         "  - {id: b, name: B, type: test.hold}\n",
                                         FALSE);

        g_signal_connect(e, "step-changed", G_CALLBACK(watch_step_cb), &w);
        g_signal_connect(e, "properties-changed", G_CALLBACK(watch_props_cb), &w);
        g_assert_true(itk_execution_start(e, &error));
        WAIT_UNTIL(holds->len == 1, 2000);
        run_for(120); /* quiet for more than a period */
        test_release_holds();
        WAIT_UNTIL(holds->len == 1, 2000);
        WAIT_UNTIL(g_ptr_array_find_with_equal_func(seen, "loop", g_str_equal, NULL), 2000);
        g_assert_cmpuint(index_of(seen, "step:b:running"), <, index_of(seen, "props:1"));
        g_assert_cmpuint(index_of(seen, "props:1"), <, index_of(seen, "loop"));
        test_release_holds();
        WAIT_UNTIL(f->finished == 1, 2000);
}

/* A fast run still announces CurrentStep at most once per period. */
static void
test_properties_rate(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) seen = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GString) yaml = g_string_new("name: T\nversion: 1\nsteps:\n");
        PropsWatch w = { seen };
        ItkExecution *e;
        gint64 start, elapsed_ms;
        guint announced = 0;

        for (int i = 0; i < 300; i++)
                g_string_append_printf(yaml,
                                       "  - {id: s%d, name: S, type: utility.log, "
                                       "parameters: {message: m}}\n",
                                       i);
        e = fixture_create(f, yaml->str, FALSE);
        g_signal_connect(e, "properties-changed", G_CALLBACK(watch_props_cb), &w);
        start = g_get_monotonic_time();
        g_assert_true(itk_execution_start(e, &error));
        WAIT_UNTIL(f->finished == 1, 10000);
        elapsed_ms = (g_get_monotonic_time() - start) / 1000;
        for (guint i = 0; i < seen->len; i++)
                if (g_str_has_prefix(g_ptr_array_index(seen, i), "props:"))
                        announced++;
        /* One at once, then at most one per 50 ms period, and the final one. */
        g_assert_cmpuint(announced, <=, 2 + elapsed_ms / 50 + 1);
        g_assert_cmpuint(f->steps->len, ==, 600);
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_log_set_writer_func(journal_writer, NULL, NULL);
        holds = g_ptr_array_new();
        deaf = g_ptr_array_new();
        itk_step_registry_ensure();
        itk_step_registry_register(&test_hold);
        itk_step_registry_register(&test_fail);
        itk_step_registry_register(&test_deaf);

#define ADD(name, func, data) g_test_add(name, Fixture, data, fixture_setup, func, fixture_teardown)
        ADD("/execution/complete", test_complete, NULL);
        ADD("/execution/properties-leading-edge", test_properties_leading_edge, NULL);
        ADD("/execution/properties-rate", test_properties_rate, NULL);
        ADD("/execution/pending-methods", test_pending_methods, NULL);
        ADD("/execution/cancel-after-start", test_cancel_after_start, NULL);
        ADD("/execution/cancel-running", test_cancel_running, NULL);
        ADD("/execution/cancel-watchdog", test_cancel_watchdog, NULL);
        ADD("/execution/cancel-watchdog-stored", test_cancel_watchdog, "store");
        ADD("/execution/cancel-paused", test_cancel_paused, NULL);
        ADD("/execution/pause-pausable", test_pause_pausable, NULL);
        ADD("/execution/pause-at-boundary", test_pause_at_boundary, NULL);
        ADD("/execution/skip-running", test_skip_running, NULL);
        ADD("/execution/skip-paused", test_skip_paused, NULL);
        ADD("/execution/skip-back", test_skip_back, NULL);
        ADD("/execution/debug-mode", test_debug_mode, NULL);
        ADD("/execution/retry-then-success", test_retry_then_success, NULL);
        ADD("/execution/cancel-retry-delay", test_cancel_retry_delay, NULL);
        ADD("/execution/on-failure", test_on_failure, NULL);
        ADD("/execution/continue-completes", test_continue_completes, NULL);
        ADD("/execution/timeout", test_timeout, NULL);
        ADD("/execution/nested", test_nested, NULL);
        ADD("/execution/nested-cancel", test_nested_cancel, NULL);
        ADD("/execution/nested-failure", test_nested_failure, NULL);
        ADD("/execution/secret-redacted", test_secret_redacted, NULL);
        ADD("/execution/stored-secret-redacted", test_stored_secret_redacted, NULL);
        ADD("/execution/history-committed", test_history_committed, "store");
        ADD("/execution/script-log-all-lines", test_script_log_all_lines, "store");
        ADD("/execution/script-secret-split", test_script_secret_split, "store");
        ADD("/execution/cancel-while-chatty", test_cancel_while_chatty, "store");
#undef ADD
        return g_test_run();
}
