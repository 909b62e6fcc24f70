/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ItkScript under load and cancel: the run is cancelled once the kill is
 * sent (reaping follows), output is handled in bounded batches, and nothing
 * is delivered after the cancel but what was read before it. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "itk-script.h"

typedef struct {
        GPtrArray *lines; /* char* */
        gboolean done;
        GError *error;
        GPid pid;
        gboolean alive_at_done; /* kill(pid, 0) succeeded when the run returned */
        gboolean in_batch;
        guint batches;
        guint batch_lines;
        guint max_batch_lines;
        guint lines_outside_batch;
        gint64 line_cost_usec; /* each line takes this long to handle */
} Run;

static void
run_clear(Run *run)
{
        g_ptr_array_unref(run->lines);
        g_clear_error(&run->error);
}

static void
line_cb(ItkScript *script, ItkScriptStream stream, const char *line, gboolean truncated,
        gpointer user_data)
{
        Run *run = user_data;

        /* Nothing after the run returned (the step is gone by then). */
        g_assert_false(run->done);
        if (!run->in_batch)
                run->lines_outside_batch++;
        run->batch_lines++;
        g_ptr_array_add(run->lines, g_strdup(line));
        /* A slow consumer (a store on a busy disk): the time is spent, as
         * storing it would; no sleep, the loop is not left. */
        if (run->line_cost_usec > 0) {
                gint64 until = g_get_monotonic_time() + run->line_cost_usec;
                while (g_get_monotonic_time() < until)
                        ;
        }
}

static void
batch_cb(ItkScript *script, gboolean begin, gpointer user_data)
{
        Run *run = user_data;

        g_assert_false(run->done);
        /* Pairs, never nested. */
        g_assert_cmpint(run->in_batch, !=, begin);
        run->in_batch = begin;
        if (begin) {
                run->batch_lines = 0;
                run->batches++;
        } else {
                run->max_batch_lines = MAX(run->max_batch_lines, run->batch_lines);
        }
}

static void
done_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Run *run = user_data;

        (void)itk_script_run_finish(NULL, result, &run->error);
        run->alive_at_done = run->pid > 0 && kill(run->pid, 0) == 0;
        run->done = TRUE;
}

static ItkScript *
run_start(Run *run, const char *command, GCancellable *cancellable)
{
        ItkScript *script = itk_script_new((const char *[]){ "sh", "-c", command, NULL });

        memset(run, 0, sizeof(*run));
        run->lines = g_ptr_array_new_with_free_func(g_free);
        itk_script_set_line_func(script, line_cb, run);
        itk_script_set_batch_func(script, batch_cb, run);
        itk_script_run_async(script, cancellable, done_cb, run);
        run->pid = itk_script_get_pid(script);
        g_assert_cmpint(run->pid, >, 0);
        return script;
}

static gboolean
expired_cb(gpointer user_data)
{
        *(gboolean *)user_data = TRUE;
        return G_SOURCE_REMOVE;
}

/* Iterates the loop until @pred holds; a generous bound against a hang, not
 * a speed check. */
#define WAIT_UNTIL(pred)                                                                           \
        do {                                                                                       \
                gboolean expired_ = FALSE;                                                         \
                guint id_ = g_timeout_add_seconds(60, expired_cb, &expired_);                      \
                while (!(pred) && !expired_)                                                       \
                        g_main_context_iteration(NULL, TRUE);                                      \
                if (!expired_)                                                                     \
                        g_source_remove(id_);                                                      \
                g_assert_true(pred);                                                               \
        } while (0)

static gboolean
has_line(Run *run, const char *prefix)
{
        for (guint i = 0; i < run->lines->len; i++) {
                if (g_str_has_prefix(g_ptr_array_index(run->lines, i), prefix))
                        return TRUE;
        }
        return FALSE;
}

static guint
count_fds(void)
{
        g_autoptr(GDir) dir = g_dir_open("/proc/self/fd", 0, NULL);
        guint n = 0;

        g_assert_nonnull(dir);
        while (g_dir_read_name(dir) != NULL)
                n++;
        return n;
}

static gboolean
pid_gone(GPid pid)
{
        return kill(pid, 0) < 0 && errno == ESRCH;
}

static gboolean
tick_cb(gpointer user_data)
{
        return G_SOURCE_CONTINUE;
}

/* The script ignores SIGTERM and a child of it, in a session of its own
 * (out of reach of the group kill), holds stdout open. The run is cancelled
 * without waiting for the pipes nor for the reap; the reap comes later and
 * leaves neither zombie nor descriptor. */
static void
test_cancel_without_reap(void)
{
        g_autoptr(GCancellable) cancellable = g_cancellable_new();
        g_autoptr(ItkScript) script = NULL;
        guint fds_before;
        guint tick;
        GPid escaped;
        Run run;

        /* GLib opens its own descriptors on first use (the context's wakeup):
         * counted after one run to completion. */
        script = run_start(&run, "true", NULL);
        WAIT_UNTIL(run.done);
        g_clear_object(&script);
        run_clear(&run);
        fds_before = count_fds();

        script = run_start(&run,
                           "trap '' TERM\n"
                           "setsid sh -c 'echo ESCAPED=$$; exec sleep 60' &\n"
                           "sh -c 'trap \"\" TERM; exec sleep 60' &\n"
                           "wait\n",
                           cancellable);
        WAIT_UNTIL(has_line(&run, "ESCAPED="));
        escaped = (GPid)g_ascii_strtoll(
                (const char *)g_ptr_array_index(run.lines, 0) + strlen("ESCAPED="), NULL, 10);
        g_assert_cmpint(escaped, >, 0);

        g_cancellable_cancel(cancellable);
        WAIT_UNTIL(run.done);
        g_assert_error(run.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        /* Returned before the child watch reaped the shell... */
        g_assert_true(run.alive_at_done);
        /* ...and while the escapee still holds the pipe's other end. */
        g_assert_true(kill(escaped, 0) == 0);

        /* The reap follows; the script object may go first. */
        g_clear_object(&script);
        tick = g_timeout_add(5, tick_cb, NULL);
        WAIT_UNTIL(pid_gone(run.pid));
        g_source_remove(tick);
        /* The pipes were closed at the cancel, the child watch's pidfd at the
         * reap: nothing leaked, although the escapee lives on. */
        g_assert_cmpuint(count_fds(), ==, fds_before);
        (void)kill(escaped, SIGKILL);
        run_clear(&run);
}

/* A line already read when the cancel comes is delivered, even without its
 * newline; nothing comes after the run returned (line_cb checks). */
static void
test_cancel_delivers_read(void)
{
        g_autoptr(GCancellable) cancellable = g_cancellable_new();
        g_autoptr(ItkScript) script = NULL;
        Run run;

        /* One write: the partial line is read with the first one. */
        script = run_start(&run, "printf 'first\\npartial-line'; exec sleep 60", cancellable);
        WAIT_UNTIL(has_line(&run, "first"));
        g_assert_false(run.done);
        g_cancellable_cancel(cancellable);
        WAIT_UNTIL(run.done);
        g_assert_error(run.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        g_assert_cmpuint(run.lines->len, ==, 2);
        g_assert_cmpstr(g_ptr_array_index(run.lines, 1), ==, "partial-line");
        g_assert_cmpuint(run.lines_outside_batch, ==, 0);
        g_assert_false(run.in_batch);
        run_clear(&run);
}

/* A chatty script: every line arrives, in order, inside batches of bounded
 * size (the loop is never held by one long burst). */
static void
test_chatty_batches(void)
{
        g_autoptr(ItkScript) script = NULL;
        const guint n = 200000;
        Run run;

        script = run_start(&run, "seq 1 200000", NULL);
        WAIT_UNTIL(run.done);
        g_assert_no_error(run.error);
        g_assert_cmpint(itk_script_get_exit_status(script), ==, 0);
        g_assert_cmpuint(run.lines->len, ==, n);
        for (guint i = 0; i < n; i++) {
                g_autofree char *expected = g_strdup_printf("%u", i + 1);
                g_assert_cmpstr(g_ptr_array_index(run.lines, i), ==, expected);
        }
        g_assert_cmpuint(run.lines_outside_batch, ==, 0);
        g_assert_false(run.in_batch);
        /* Many batches, none of them unbounded. */
        g_assert_cmpuint(run.batches, >=, n / 1000);
        g_assert_cmpuint(run.max_batch_lines, <=, 1000);
        run_clear(&run);
}

/* Lines slow to handle: a batch ends on its time budget, long before its
 * line bound, so another run's Cancel waits for a few lines, not 128. */
static void
test_slow_lines_batch_budget(void)
{
        g_autoptr(ItkScript) script = NULL;
        const guint n = 300;
        Run run;

        script = run_start(&run, "seq 1 300", NULL);
        run.line_cost_usec = ITK_SCRIPT_BATCH_BUDGET_USEC / 4 + 1;
        WAIT_UNTIL(run.done);
        g_assert_no_error(run.error);
        g_assert_cmpuint(run.lines->len, ==, n);
        for (guint i = 0; i < n; i++) {
                g_autofree char *expected = g_strdup_printf("%u", i + 1);
                g_assert_cmpstr(g_ptr_array_index(run.lines, i), ==, expected);
        }
        g_assert_cmpuint(run.lines_outside_batch, ==, 0);
        /* Four lines exceed the budget: a batch ends at its first check. */
        g_assert_cmpuint(run.max_batch_lines, <=, ITK_SCRIPT_BATCH_CHECK_LINES);
        g_assert_cmpuint(run.batches, >=, n / ITK_SCRIPT_BATCH_CHECK_LINES);
        run_clear(&run);
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/script/cancel-without-reap", test_cancel_without_reap);
        g_test_add_func("/script/cancel-delivers-read", test_cancel_delivers_read);
        g_test_add_func("/script/chatty-batches", test_chatty_batches);
        g_test_add_func("/script/slow-lines-batch-budget", test_slow_lines_batch_budget);
        return g_test_run();
}
