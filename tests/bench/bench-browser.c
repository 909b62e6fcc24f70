/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-browser: the browser steps in process (the engine the daemon runs),
 * against real headless Chromium and the gateway simulator's login page.
 * Prints JSON: cancel latency of a browser.wait that never matches, the
 * first browser step of a run cold and warm, the login cycle (median) next
 * to playwright-core doing the same with the same Chromium, memory per run
 * with 10 concurrent runs, and 20 concurrent runs to completion.
 * Exits 77 without /usr/bin/chromium. Build with --buildtype=release. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "itk-browser.h"
#include "itk-step.h"
#include "itk-test-util.h"
#include "itk-timer.h"

static ItkTestSim *sim;

typedef struct {
        ItkTimerGroup *timers;
        ItkStepSessions *sessions;
        JsonObject *variables;
        char *dir;
        /* a script of steps */
        const char *const *script;
        guint next;
        gboolean done;
        gboolean failed;
        char *error;
        gint64 started, finished;
} Run;

static Run *
run_new(void)
{
        Run *run = g_new0(Run, 1);

        run->timers = itk_timer_group_new();
        run->sessions = itk_step_sessions_new();
        run->variables = json_object_new();
        run->dir = g_dir_make_tmp("itk-bench-browser-XXXXXX", NULL);
        return run;
}

static void
run_free(Run *run)
{
        g_autofree char *command = g_strdup_printf("rm -rf '%s'", run->dir);

        itk_step_sessions_free(run->sessions);
        itk_timer_group_free(run->timers);
        json_object_unref(run->variables);
        g_spawn_command_line_sync(command, NULL, NULL, NULL, NULL);
        g_free(run->dir);
        g_free(run->error);
        g_free(run);
}

static void
iterate_until(gboolean *flag)
{
        while (!*flag)
                g_main_context_iteration(NULL, TRUE);
}

static gboolean
flag_cb(gpointer data)
{
        *(gboolean *)data = TRUE;
        return G_SOURCE_REMOVE;
}

static void
spin_ms(guint ms)
{
        gboolean over = FALSE;

        g_timeout_add(ms, flag_cb, &over);
        iterate_until(&over);
}

static void run_next(Run *run);

static void
script_step_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Run *run = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) output = itk_step_run_finish(result, &error);

        (void)source;
        if (output == NULL) {
                run->failed = TRUE;
                run->error = g_strdup(error->message);
                run->done = TRUE;
                run->finished = g_get_monotonic_time();
                return;
        }
        run_next(run);
}

static void
run_step(Run *run, const char *type, const char *json, GCancellable *cancellable,
         GAsyncReadyCallback callback, gpointer user_data)
{
        g_autoptr(JsonNode) params = json_from_string(json, NULL);
        g_autoptr(ItkStepContext) ctx = itk_step_context_new("bench");
        const ItkStepHandler *handler = itk_step_registry_resolve(type, NULL);

        itk_step_context_set_timer_group(ctx, run->timers);
        itk_step_context_set_variables(ctx, run->variables);
        itk_step_context_set_work_dir(ctx, run->dir);
        itk_step_context_set_sessions(ctx, run->sessions);
        handler->run(ctx, json_node_get_object(params), cancellable, callback, user_data);
}

/* script: type, json, type, json, ..., NULL */
static void
run_next(Run *run)
{
        const char *type = run->script[run->next];

        if (type == NULL) {
                run->done = TRUE;
                run->finished = g_get_monotonic_time();
                return;
        }
        run->next += 2;
        run_step(run, type, run->script[run->next - 1], NULL, script_step_cb, run);
}

static void
run_script(Run *run, const char *const *script)
{
        run->script = script;
        run->next = 0;
        run->done = FALSE;
        run->started = g_get_monotonic_time();
        run_next(run);
}

static char *login_url;
static char *login_json;
static const char *login_cycle[11];

static void
init_scripts(void)
{
        login_url = g_strconcat(sim->url, "/web/login?username=admin", NULL);
        login_json = g_strdup_printf("{\"url\": \"%s\"}", login_url);
        login_cycle[0] = "browser.navigate";
        login_cycle[1] = login_json;
        login_cycle[2] = "browser.fill";
        login_cycle[3] = "{\"selector\": \"#username\", \"value\": \"admin\"}";
        login_cycle[4] = "browser.fill";
        login_cycle[5] = "{\"selector\": \"#password\", \"value\": \"password\"}";
        login_cycle[6] = "browser.click";
        login_cycle[7] = "{\"selector\": \"button.submit-button\"}";
        login_cycle[8] = "browser.verify";
        login_cycle[9] = "{\"selector\": \".home-page\", \"timeout\": 10000}";
        login_cycle[10] = NULL;
}

static int
cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double
percentile(GArray *values, double p)
{
        guint index;

        g_array_sort(values, cmp_double);
        index = (guint)(p * (values->len - 1) + 0.5);
        return g_array_index(values, double, index);
}

static gboolean
run_and_wait(Run *run, const char *const *script)
{
        run_script(run, script);
        iterate_until(&run->done);
        if (run->failed)
                g_printerr("bench-browser: a step failed: %s\n", run->error);
        return !run->failed;
}

typedef struct {
        gboolean done;
        gint64 at;
} Done;

static void
cancel_done_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Done *d = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) output = itk_step_run_finish(result, &error);

        (void)source;
        d->done = TRUE;
        d->at = g_get_monotonic_time();
}

static void
bench_cancel(GString *json, guint n)
{
        Run *run = run_new();
        const char *const open[] = { "browser.navigate", login_json, NULL };
        g_autoptr(GArray) values = g_array_new(FALSE, FALSE, sizeof(double));

        run_and_wait(run, open);
        for (guint i = 0; i < n; i++) {
                g_autoptr(GCancellable) cancellable = g_cancellable_new();
                Done d = { 0 };
                gint64 t0;
                double ms;
                run_step(run, "browser.wait", "{\"selector\": \"#never\", \"timeout\": 30000}",
                         cancellable, cancel_done_cb, &d);
                spin_ms(20);
                t0 = g_get_monotonic_time();
                g_cancellable_cancel(cancellable);
                iterate_until(&d.done);
                ms = (double)(d.at - t0) / 1000.0;
                g_array_append_val(values, ms);
        }
        g_string_append_printf(json,
                               "  \"cancel_wait_ms\": {\"n\": %u, \"p50\": %.3f, \"p99\": %.3f, "
                               "\"max\": %.3f},\n",
                               n, percentile(values, 0.5), percentile(values, 0.99),
                               percentile(values, 1.0));
        run_free(run);
}

static double
first_step_ms(void)
{
        Run *run = run_new();
        const char *const open[] = { "browser.navigate", login_json, NULL };
        double ms;

        run_and_wait(run, open);
        ms = (double)(run->finished - run->started) / 1000.0;
        run_free(run);
        return ms;
}

static void
bench_first_step(GString *json, guint n)
{
        g_autoptr(GArray) cold = g_array_new(FALSE, FALSE, sizeof(double));
        g_autoptr(GArray) warm = g_array_new(FALSE, FALSE, sizeof(double));
        ItkBrowser *browser = itk_browser_get_default();

        for (guint i = 0; i < n; i++) {
                double ms;
                itk_browser_stop(browser);
                spin_ms(200);
                ms = first_step_ms();
                g_array_append_val(cold, ms);
                /* The spare page is made right after; a run a moment later finds it. */
                spin_ms(500);
                ms = first_step_ms();
                g_array_append_val(warm, ms);
        }
        g_string_append_printf(
                json,
                "  \"first_step_cold_ms\": {\"n\": %u, \"p50\": %.1f, \"max\": %.1f},\n"
                "  \"first_step_warm_ms\": {\"n\": %u, \"p50\": %.1f, \"max\": %.1f},\n",
                n, percentile(cold, 0.5), percentile(cold, 1.0), n, percentile(warm, 0.5),
                percentile(warm, 1.0));
}

static double
bench_cycle(GString *json, guint n)
{
        Run *run = run_new();
        g_autoptr(GArray) values = g_array_new(FALSE, FALSE, sizeof(double));
        double median;

        run_and_wait(run, login_cycle); /* warm up */
        for (guint i = 0; i < n; i++) {
                double ms;
                if (!run_and_wait(run, login_cycle))
                        break;
                ms = (double)(run->finished - run->started) / 1000.0;
                g_array_append_val(values, ms);
        }
        median = values->len > 0 ? percentile(values, 0.5) : -1;
        g_string_append_printf(json, "  \"login_cycle_ms\": {\"n\": %u, \"median\": %.1f},\n",
                               values->len, median);
        run_free(run);
        return median;
}

/* kB of proportional set size of @pid (smaps_rollup). */
static guint64
pss_kb(int pid)
{
        g_autofree char *path = g_strdup_printf("/proc/%d/smaps_rollup", pid);
        g_autofree char *text = NULL;
        const char *line;

        if (!g_file_get_contents(path, &text, NULL, NULL))
                return 0;
        line = strstr(text, "\nPss:");
        return line != NULL ? g_ascii_strtoull(line + 5, NULL, 10) : 0;
}

/* The browser's process group, every process of it. */
static guint64
browser_pss_kb(void)
{
        GPid pgid = itk_browser_get_pid(itk_browser_get_default());
        g_autoptr(GDir) dir = g_dir_open("/proc", 0, NULL);
        const char *name;
        guint64 total = 0;

        if (pgid <= 0 || dir == NULL)
                return 0;
        while ((name = g_dir_read_name(dir)) != NULL) {
                int pid = atoi(name);
                if (pid > 0 && getpgid(pid) == pgid)
                        total += pss_kb(pid);
        }
        return total;
}

static void
bench_memory(GString *json, guint runs)
{
        g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func((GDestroyNotify)run_free);
        const char *const open[] = { "browser.navigate", login_json, NULL };
        guint64 self_before, browser_before, self_after, browser_after;

        spin_ms(1000);
        self_before = pss_kb(getpid());
        browser_before = browser_pss_kb();
        for (guint i = 0; i < runs; i++) {
                Run *run = run_new();
                g_ptr_array_add(all, run);
                run_script(run, open);
        }
        for (guint i = 0; i < runs; i++)
                iterate_until(&((Run *)all->pdata[i])->done);
        spin_ms(1000);
        self_after = pss_kb(getpid());
        browser_after = browser_pss_kb();
        g_string_append_printf(
                json,
                "  \"memory_kb\": {\"runs\": %u, \"daemon_before\": %" G_GUINT64_FORMAT
                ", \"chromium_before\": %" G_GUINT64_FORMAT ", \"daemon_after\": %" G_GUINT64_FORMAT
                ", \"chromium_after\": %" G_GUINT64_FORMAT ", \"per_run\": %" G_GUINT64_FORMAT
                "},\n",
                runs, self_before, browser_before, self_after, browser_after,
                ((self_after + browser_after) -
                 MIN(self_after + browser_after, self_before + browser_before)) /
                        runs);
}

static void
bench_concurrent(GString *json, guint runs)
{
        g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func((GDestroyNotify)run_free);
        gint64 t0 = g_get_monotonic_time();
        guint completed = 0;

        for (guint i = 0; i < runs; i++) {
                Run *run = run_new();
                g_ptr_array_add(all, run);
                run_script(run, login_cycle);
        }
        for (guint i = 0; i < runs; i++) {
                Run *run = all->pdata[i];
                iterate_until(&run->done);
                completed += !run->failed;
                if (run->failed)
                        g_printerr("bench-browser: run %u failed: %s\n", i, run->error);
        }
        g_string_append_printf(json,
                               "  \"concurrent_runs\": {\"runs\": %u, \"completed\": %u, "
                               "\"wall_ms\": %.0f},\n",
                               runs, completed, (double)(g_get_monotonic_time() - t0) / 1000.0);
}

/* The same cycle with playwright-core, when it is there. */
static void
bench_playwright(GString *json, guint n, const char *script)
{
        g_autofree char *out = NULL;
        g_autofree char *count = g_strdup_printf("%u", n);
        const char *argv[] = { "node", script, login_url, count, NULL };
        int status = 0;

        if (script == NULL ||
            !g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, NULL,
                          &status, NULL) ||
            !g_spawn_check_wait_status(status, NULL)) {
                g_string_append(json, "  \"playwright_login_cycle_ms\": null,\n");
                return;
        }
        g_strstrip(out);
        g_string_append_printf(json, "  \"playwright_login_cycle_ms\": %s,\n", out);
}

int
main(int argc, char **argv)
{
        gboolean quick = FALSE;
        const char *playwright = NULL;
        g_autoptr(GString) json = g_string_new("{\n");

        for (int i = 1; i < argc; i++) {
                if (g_strcmp0(argv[i], "--quick") == 0)
                        quick = TRUE;
                else if (g_str_has_prefix(argv[i], "--playwright="))
                        playwright = argv[i] + strlen("--playwright=");
        }
        if (!g_file_test(ITK_BROWSER_DEFAULT_BINARY, G_FILE_TEST_IS_EXECUTABLE)) {
                g_printerr("bench-browser: %s is not installed\n", ITK_BROWSER_DEFAULT_BINARY);
                return 77;
        }
        /* Linked in, not loaded as the daemon does. */
        itk_step_browser_module_init();
        sim = itk_test_sim_start(NULL);
        init_scripts();
        bench_cancel(json, quick ? 10 : 200);
        bench_first_step(json, quick ? 1 : 5);
        bench_cycle(json, quick ? 3 : 30);
        bench_playwright(json, quick ? 3 : 30, playwright);
        bench_memory(json, quick ? 3 : 10);
        bench_concurrent(json, quick ? 5 : 20);
        g_string_append_printf(json, "  \"chromium_starts\": %u\n}\n",
                               itk_browser_get_n_starts(itk_browser_get_default()));
        fputs(json->str, stdout);
        itk_browser_free(itk_browser_get_default());
        itk_test_sim_stop(sim);
        return 0;
}
