/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The browser.* steps against real headless Chromium and the gateway
 * simulator's login page: each step type, Cancel/Pause during waits, a
 * crashed browser, a missing one, secrets in fill, screenshots, and the
 * CDP pipe landing on fds 3 and 4. Skips (77) without /usr/bin/chromium. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "itk-browser.h"
#include "itk-error.h"
#include "itk-execution.h"
#include "itk-store.h"
#include "itk-playbook.h"
#include "itk-step.h"
#include "itk-test-util.h"
#include "itk-timer.h"

#define PASSWORD "password"
/* Not a word of the page or the selectors, so any match is a leak. */
#define SECRET "Hunter2-s3cr3t"
/* A step never takes this long here; the guard only stops a hung test. */
#define GUARD_MS 60000
/* Cancel completes within milliseconds (DESIGN.md §5); generous for ASan. */
#define CANCEL_BUDGET_USEC (150 * G_TIME_SPAN_MILLISECOND)

static ItkTestSim *sim;

typedef struct {
        ItkTimerGroup *timers;
        ItkStepSessions *sessions;
        JsonObject *variables;
        GPtrArray *log;
        char *dir;
        const char *secret;
} Run;

typedef struct {
        gboolean done;
        JsonNode *output;
        GError *error;
        gint64 done_at;
} Result;

static void
result_clear(Result *r)
{
        g_clear_pointer(&r->output, json_node_unref);
        g_clear_error(&r->error);
        r->done = FALSE;
}

static void
run_log_cb(gpointer user_data, ItkLogPriority priority, const char *step_id, const char *message)
{
        Run *run = user_data;

        (void)priority;
        (void)step_id;
        g_ptr_array_add(run->log, g_strdup(message));
}

static gboolean
run_is_secret_cb(gpointer data, const char *value)
{
        Run *run = data;

        return run->secret != NULL && strstr(value, run->secret) != NULL;
}

static Run *
run_new(void)
{
        Run *run = g_new0(Run, 1);

        run->timers = itk_timer_group_new();
        run->sessions = itk_step_sessions_new();
        run->variables = json_object_new();
        run->log = g_ptr_array_new_with_free_func(g_free);
        run->dir = g_dir_make_tmp("itk-browser-run-XXXXXX", NULL);
        return run;
}

static void
run_free(Run *run)
{
        g_autofree char *command = g_strdup_printf("rm -rf '%s'", run->dir);

        itk_step_sessions_free(run->sessions);
        itk_timer_group_free(run->timers);
        json_object_unref(run->variables);
        g_ptr_array_unref(run->log);
        g_spawn_command_line_sync(command, NULL, NULL, NULL, NULL);
        g_free(run->dir);
        g_free(run);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Run, run_free)

static void
step_done_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Result *r = user_data;

        (void)source;
        r->output = itk_step_run_finish(result, &r->error);
        r->done = TRUE;
        r->done_at = g_get_monotonic_time();
}

static ItkStepContext *
run_context(Run *run)
{
        ItkStepContext *ctx = itk_step_context_new("step1");

        itk_step_context_set_log_func(ctx, run_log_cb, run);
        itk_step_context_set_variables(ctx, run->variables);
        itk_step_context_set_timer_group(ctx, run->timers);
        itk_step_context_set_work_dir(ctx, run->dir);
        itk_step_context_set_sessions(ctx, run->sessions);
        itk_step_context_set_secret_func(ctx, run_is_secret_cb, run);
        return ctx;
}

static void
step_start(Run *run, const char *type, const char *json, GCancellable *cancellable, Result *r)
{
        g_autoptr(JsonNode) params = json_from_string(json, NULL);
        g_autoptr(ItkStepContext) ctx = run_context(run);
        g_autoptr(GError) error = NULL;
        const ItkStepHandler *handler = itk_step_registry_resolve(type, &error);

        g_assert_no_error(error);
        g_assert_nonnull(params);
        result_clear(r);
        handler->run(ctx, json_node_get_object(params), cancellable, step_done_cb, r);
}

static gboolean
flag_cb(gpointer data)
{
        *(gboolean *)data = TRUE;
        return G_SOURCE_REMOVE;
}

static void
wait_result(Result *r)
{
        gboolean guard = FALSE;
        guint id = g_timeout_add(GUARD_MS, flag_cb, &guard);

        while (!r->done && !guard)
                g_main_context_iteration(NULL, TRUE);
        g_assert_true(r->done);
        g_source_remove(id);
}

static void
spin_ms(guint ms)
{
        gboolean over = FALSE;

        g_timeout_add(ms, flag_cb, &over);
        while (!over)
                g_main_context_iteration(NULL, TRUE);
}

/* Runs one step to its end; asserts success unless @expect_error. */
static JsonObject *
step(Run *run, const char *type, const char *json, Result *r)
{
        step_start(run, type, json, NULL, r);
        wait_result(r);
        if (r->error != NULL)
                g_printerr("%s failed: %s\n", type, r->error->message);
        g_assert_no_error(r->error);
        return json_node_get_object(r->output);
}

static char *
sim_url(const char *path)
{
        return g_strconcat(sim->url, path, NULL);
}

static void
navigate(Run *run, const char *url, Result *r)
{
        g_autofree char *json = g_strdup_printf("{\"url\": \"%s\"}", url);

        step(run, "browser.navigate", json, r);
}

/* data: pages make the dynamic cases self-contained. */
#define DELAYED_PAGE                                                                               \
        "data:text/html,<body><script>setTimeout(function(){var p=document.createElement('p');"    \
        "p.id='later';p.textContent='here';document.body.appendChild(p);},%d)</script></body>"

static void
test_login(void)
{
        g_autoptr(Run) run = run_new();
        g_autofree char *login = sim_url("/web/login?username=admin");
        Result r = { 0 };
        JsonObject *out;

        navigate(run, login, &r);
        g_assert_cmpstr(json_object_get_string_member(json_node_get_object(r.output), "url"), ==,
                        login);
        step(run, "browser.verify", "{\"selector\": \"form.login-form\"}", &r);
        step(run, "browser.verify_text", "{\"selector\": \"h1\", \"text\": \"log in\"}", &r);
        step(run, "browser.verify_text",
             "{\"selector\": \"h1\", \"text\": \"Log In\", \"match\": \"exact\"}", &r);
        step(run, "browser.verify_attribute",
             "{\"selector\": \"#password\", \"attribute\": \"type\", \"value\": \"password\"}", &r);
        step(run, "browser.verify_state", "{\"selector\": \"#username\", \"state\": \"enabled\"}",
             &r);
        step(run, "browser.fill", "{\"selector\": \"#username\", \"value\": \"admin\"}", &r);
        step(run, "browser.fill", "{\"selector\": \"#password\", \"value\": \"" PASSWORD "\"}", &r);
        step(run, "browser.click", "{\"selector\": \"button.submit-button\"}", &r);
        out = step(run, "browser.wait", "{\"selector\": \".home-page\", \"timeout\": 10000}", &r);
        g_assert_true(json_object_get_boolean_member(out, "found"));
        step(run, "browser.verify", "{\"selector\": \"text=Welcome to Ignition\"}", &r);
        step(run, "browser.verify", "{\"selector\": \".login-form\", \"exists\": false}", &r);

        /* A failed verification names what it expected and what the page
         * showed, once its timeout ran out. */
        step_start(run, "browser.verify_text",
                   "{\"selector\": \"h1\", \"text\": \"nope\", \"timeout\": 300}", NULL, &r);
        wait_result(&r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_FAILED);
        g_assert_nonnull(strstr(r.error->message, "timed out after 300 ms"));
        g_assert_nonnull(strstr(r.error->message, "to contain \"nope\""));
        g_assert_nonnull(strstr(r.error->message, "Welcome to Ignition"));
        result_clear(&r);
}

/* As Playwright's assertions, verify_text and verify_attribute look again
 * until their timeout: a page still updating passes once it is done. */
#define CHANGING_PAGE                                                                              \
        "data:text/html,<h1 id=t data-state=loading>Loading</h1><script>setTimeout(function(){"    \
        "var h=document.getElementById('t');h.textContent='Ready';h.dataset.state='done';},400)"   \
        "</script>"

static void
test_verify_retries(void)
{
        g_autoptr(Run) run = run_new();
        Result r = { 0 };
        JsonObject *out;

        navigate(run, CHANGING_PAGE, &r);
        out = step(run, "browser.verify_text",
                   "{\"selector\": \"#t\", \"text\": \"Ready\", \"match\": \"exact\"}", &r);
        g_assert_cmpstr(json_object_get_string_member(out, "text"), ==, "Ready");
        navigate(run, CHANGING_PAGE, &r);
        out = step(run, "browser.verify_attribute",
                   "{\"selector\": \"#t\", \"attribute\": \"data-state\", \"value\": \"done\"}",
                   &r);
        g_assert_cmpstr(json_object_get_string_member(out, "value"), ==, "done");
}

static void
test_keyboard_and_discover(void)
{
        g_autoptr(Run) run = run_new();
        g_autofree char *login = sim_url("/web/login?username=admin");
        Result r = { 0 };
        JsonObject *out;
        JsonArray *inventory;

        navigate(run, login, &r);
        /* The deep link filled the username in: empty it, then type it. */
        step(run, "browser.fill", "{\"selector\": \"#username\", \"value\": \"\"}", &r);
        step(run, "browser.click", "{\"selector\": \"#username\"}", &r);
        step(run, "browser.keyboard", "{\"text\": \"adm\"}", &r);
        step(run, "browser.keyboard", "{\"key\": \"i\"}", &r);
        step(run, "browser.keyboard", "{\"key\": \"n\"}", &r);
        step(run, "browser.verify_attribute",
             "{\"selector\": \"#username\", \"attribute\": \"id\", \"value\": \"username\"}", &r);
        out = step(run, "perspective.discover_page", "{\"types\": [\"input\", \"button\"]}", &r);
        g_assert_cmpint(json_object_get_int_member(out, "count"), >=, 3);
        g_assert_true(json_object_has_member(out, "timestamp"));
        inventory = json_object_get_array_member(out, "inventory");
        g_assert_cmpuint(json_array_get_length(inventory), ==,
                         (guint)json_object_get_int_member(out, "count"));
        /* Enter submits the form as a user would. */
        step(run, "browser.click", "{\"selector\": \"#password\"}", &r);
        step(run, "browser.keyboard", "{\"text\": \"" PASSWORD "\"}", &r);
        step(run, "browser.keyboard", "{\"key\": \"Enter\"}", &r);
        step(run, "browser.wait", "{\"selector\": \".home-page\", \"timeout\": 10000}", &r);
}

static void
test_screenshot(void)
{
        g_autoptr(Run) run = run_new();
        g_autofree char *login = sim_url("/web/login?username=admin");
        g_autofree char *path = NULL;
        g_autofree char *data = NULL;
        g_autofree char *sha = NULL;
        gsize length = 0;
        Result r = { 0 };
        JsonObject *out;

        navigate(run, login, &r);
        /* Whatever the path says, the file lands in the run's folder. */
        out = step(run, "browser.screenshot", "{\"path\": \"../../etc/shot\", \"full_page\": true}",
                   &r);
        g_assert_cmpstr(json_object_get_string_member(out, "name"), ==, "shot.png");
        path = g_build_filename(run->dir, "shot.png", NULL);
        g_assert_cmpstr(json_object_get_string_member(out, "path"), ==, path);
        g_assert_true(g_file_get_contents(path, &data, &length, NULL));
        g_assert_cmpint(length, >, 100);
        g_assert_cmpint(json_object_get_int_member(out, "size"), ==, (gint64)length);
        g_assert_true(memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0);
        sha = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, length);
        g_assert_cmpstr(json_object_get_string_member(out, "sha256"), ==, sha);
        out = step(run, "browser.screenshot", "{}", &r);
        g_assert_cmpstr(json_object_get_string_member(out, "name"), ==, "step1.png");
}

static void
test_cancel_wait(void)
{
        g_autoptr(Run) run = run_new();
        g_autoptr(GCancellable) cancellable = g_cancellable_new();
        g_autofree char *login = sim_url("/web/login?username=admin");
        Result r = { 0 };
        gint64 cancelled_at;

        navigate(run, login, &r);
        step_start(run, "browser.wait", "{\"selector\": \"#never\", \"timeout\": 30000}",
                   cancellable, &r);
        spin_ms(300);
        g_assert_false(r.done);
        cancelled_at = g_get_monotonic_time();
        g_cancellable_cancel(cancellable);
        wait_result(&r);
        g_assert_error(r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        g_assert_cmpint(r.done_at - cancelled_at, <, CANCEL_BUDGET_USEC);
        /* The page is still usable by the next step (Skip goes on). */
        step(run, "browser.verify", "{\"selector\": \"#username\"}", &r);
}

static void
test_pause_freezes_clock(void)
{
        g_autoptr(Run) run = run_new();
        g_autofree char *login = sim_url("/web/login?username=admin");
        Result r = { 0 };

        navigate(run, login, &r);
        step_start(run, "browser.wait", "{\"selector\": \"#never\", \"timeout\": 400}", NULL, &r);
        spin_ms(100);
        itk_timer_group_pause(run->timers);
        spin_ms(800);
        /* Paused: the 400 ms have not run out. */
        g_assert_false(r.done);
        itk_timer_group_resume(run->timers);
        wait_result(&r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_FAILED);
        g_assert_nonnull(strstr(r.error->message, "timed out after 400 ms"));
        g_assert_nonnull(strstr(r.error->message, "#never"));
        result_clear(&r);
}

static void
test_satisfied_while_paused(void)
{
        g_autoptr(Run) run = run_new();
        g_autofree char *page = g_strdup_printf(DELAYED_PAGE, 200);
        Result r = { 0 };

        navigate(run, page, &r);
        step_start(run, "browser.wait", "{\"selector\": \"#later\", \"timeout\": 5000}", NULL, &r);
        itk_timer_group_pause(run->timers);
        spin_ms(800);
        /* The element is there, but the run is paused: not done yet. */
        g_assert_false(r.done);
        itk_timer_group_resume(run->timers);
        wait_result(&r);
        g_assert_no_error(r.error);
        result_clear(&r);
        /* And a wait that appears later resolves without a poll. */
        g_free(page);
        page = g_strdup_printf(DELAYED_PAGE, 300);
        navigate(run, page, &r);
        step(run, "browser.click", "{\"selector\": \"text=here\"}", &r);
}

static void
test_fill_secret(void)
{
        g_autoptr(Run) run = run_new();
        g_autofree char *login = sim_url("/web/login?username=admin");
        g_autofree char *text = NULL;
        Result r = { 0 };
        JsonObject *out;

        run->secret = SECRET;
        navigate(run, login, &r);
        out = step(run, "browser.fill", "{\"selector\": \"#password\", \"value\": \"" SECRET "\"}",
                   &r);
        text = json_to_string(r.output, FALSE);
        g_assert_null(strstr(text, SECRET));
        g_assert_true(json_object_get_boolean_member(out, "secret"));
        for (guint i = 0; i < run->log->len; i++)
                g_assert_null(strstr(g_ptr_array_index(run->log, i), SECRET));
        /* A failure does not show it either. */
        step_start(run, "browser.fill",
                   "{\"selector\": \"#missing\", \"value\": \"" SECRET "\", \"timeout\": 200}",
                   NULL, &r);
        wait_result(&r);
        g_assert_nonnull(r.error);
        g_assert_null(strstr(r.error->message, SECRET));
        result_clear(&r);
}

static void
test_crash(void)
{
        g_autoptr(Run) run = run_new();
        g_autoptr(Run) next = run_new();
        g_autofree char *login = sim_url("/web/login?username=admin");
        ItkBrowser *browser = itk_browser_get_default();
        guint starts;
        Result r = { 0 };

        navigate(run, login, &r);
        starts = itk_browser_get_n_starts(browser);
        g_assert_cmpint(itk_browser_get_pid(browser), >, 0);
        step_start(run, "browser.wait", "{\"selector\": \"#never\", \"timeout\": 20000}", NULL, &r);
        spin_ms(200);
        kill(-itk_browser_get_pid(browser), SIGKILL);
        wait_result(&r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_FAILED);
        g_assert_nonnull(strstr(r.error->message, "browser"));
        g_printerr("crash error: %s\n", r.error->message);
        result_clear(&r);
        /* The same run's next step fails too, with the reason. */
        step_start(run, "browser.verify", "{\"selector\": \"body\"}", NULL, &r);
        wait_result(&r);
        g_assert_nonnull(r.error);
        result_clear(&r);
        /* The next run gets a fresh browser. */
        navigate(next, login, &r);
        step(next, "browser.verify", "{\"selector\": \"#username\"}", &r);
        g_assert_cmpuint(itk_browser_get_n_starts(browser), ==, starts + 1);
}

static void
test_missing_chromium(void)
{
        g_autoptr(ItkBrowser) browser = itk_browser_new("/nonexistent/chromium", NULL, 5);
        g_autoptr(GError) error = NULL;

        g_assert_false(itk_browser_check_available(browser, &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_NOT_SUPPORTED);
        g_assert_nonnull(strstr(error->message, "'chromium'"));
        g_assert_nonnull(strstr(error->message, "/nonexistent/chromium"));
}

/* Run as its own test with ITK_CHROMIUM pointing nowhere. */
static void
test_missing_chromium_validation(void)
{
        g_autoptr(GPtrArray) diagnostics =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(Run) run = run_new();
        g_autoptr(ItkPlaybook) playbook = NULL;
        Result r = { 0 };

        if (g_strcmp0(g_getenv("ITK_CHROMIUM"), "/nonexistent/chromium") != 0) {
                g_test_skip("needs ITK_CHROMIUM=/nonexistent/chromium");
                return;
        }
        playbook =
                itk_playbook_new_from_data("name: x\nversion: 1\nsteps:\n  - id: a\n    name: A\n"
                                           "    type: browser.navigate\n"
                                           "    parameters: {url: about:blank}\n",
                                           -1, NULL, diagnostics, &error);
        g_assert_null(playbook);
        g_assert_cmpuint(diagnostics->len, ==, 1);
        g_assert_nonnull(strstr(((ItkDiagnostic *)g_ptr_array_index(diagnostics, 0))->message,
                                "install the Debian package 'chromium'"));
        step_start(run, "browser.navigate", "{\"url\": \"about:blank\"}", NULL, &r);
        wait_result(&r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_NOT_SUPPORTED);
        g_assert_nonnull(strstr(r.error->message, "'chromium'"));
        result_clear(&r);
}

static void
test_selector_validation(void)
{
        g_autoptr(GPtrArray) diagnostics =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook = NULL;
        ItkDiagnostic *d;

        playbook =
                itk_playbook_new_from_data("name: x\nversion: 1\nsteps:\n  - id: a\n    name: A\n"
                                           "    type: browser.click\n"
                                           "    parameters:\n"
                                           "      selector: \"div[x >> y\"\n",
                                           -1, NULL, diagnostics, &error);
        g_assert_null(playbook);
        g_assert_cmpuint(diagnostics->len, ==, 1);
        d = g_ptr_array_index(diagnostics, 0);
        g_assert_cmpint(d->line, ==, 8);
        /* Inside the quoted value, which spans columns 17 to 28 (the exact
         * column is the validator's: at the '[' or the end). */
        g_assert_cmpint(d->column, >=, 18);
        g_assert_cmpint(d->column, <=, 28);
        g_assert_nonnull(strstr(d->message, "selector"));
        g_ptr_array_set_size(diagnostics, 0);
        g_clear_error(&error);
        g_clear_pointer(&playbook, itk_playbook_unref);
        playbook =
                itk_playbook_new_from_data("name: x\nversion: 1\nsteps:\n  - id: a\n    name: A\n"
                                           "    type: browser.wait\n"
                                           "    parameters: {selector: '#x', timeout: soon, "
                                           "state: sideways}\n",
                                           -1, NULL, diagnostics, &error);
        g_assert_null(playbook);
        g_assert_cmpuint(diagnostics->len, >=, 1);
        g_assert_nonnull(
                strstr(((ItkDiagnostic *)g_ptr_array_index(diagnostics, 0))->message, "timeout"));
}

static void
cdp_reply_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Result *r = user_data;
        JsonObject *reply = itk_cdp_call_finish(NULL, result, &r->error);

        (void)source;
        if (reply != NULL) {
                r->output = json_node_new(JSON_NODE_OBJECT);
                json_node_take_object(r->output, reply);
        }
        r->done = TRUE;
}

static void
process_waited_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Result *r = user_data;

        g_subprocess_wait_finish(G_SUBPROCESS(source), result, NULL);
        r->done = TRUE;
}

static void
page_ready_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Result *r = user_data;
        ItkBrowserPage *page = itk_browser_new_page_finish(NULL, result, &r->error);

        (void)source;
        if (page != NULL) {
                r->output = json_node_new(JSON_NODE_NULL);
                itk_browser_page_close(page);
        }
        r->done = TRUE;
}

/* With no page in use for the idle timeout, Chromium exits. */
static void
test_idle_exit(void)
{
        g_autoptr(ItkBrowser) browser = itk_browser_new(NULL, NULL, 1);
        Result r = { 0 };

        itk_browser_new_page_async(browser, NULL, page_ready_cb, &r);
        wait_result(&r);
        g_assert_no_error(r.error);
        result_clear(&r);
        g_assert_cmpint(itk_browser_get_pid(browser), >, 0);
        g_assert_cmpuint(itk_browser_get_n_pages(browser), ==, 0);
        /* 1 s after the spare page is made (a moment after the first). */
        spin_ms(1000);
        g_assert_cmpint(itk_browser_get_pid(browser), >, 0);
        for (guint i = 0; i < 100 && itk_browser_get_pid(browser) != 0; i++)
                spin_ms(100);
        g_assert_cmpint(itk_browser_get_pid(browser), ==, 0);
        /* And comes back on demand. */
        itk_browser_new_page_async(browser, NULL, page_ready_cb, &r);
        wait_result(&r);
        g_assert_no_error(r.error);
        result_clear(&r);
        g_assert_cmpuint(itk_browser_get_n_starts(browser), ==, 2);
}

/* file_upload sets the file of a (hidden) file input. */
static void
test_file_upload(void)
{
        g_autoptr(Run) run = run_new();
        g_autofree char *file = g_build_filename(run->dir, "module.modl", NULL);
        Result r = { 0 };
        JsonObject *out;

        g_assert_true(g_file_set_contents(file, "PK", -1, NULL));
        navigate(run,
                 "data:text/html,<input id=f type=file style=display:none "
                 "onchange=n.textContent=this.files[0].name><p id=n>none</p>",
                 &r);
        /* Relative to the run's folder when the playbook has none. */
        out = step(run, "browser.file_upload",
                   "{\"selector\": \"#f\", \"file_path\": \"module.modl\"}", &r);
        g_assert_cmpstr(json_object_get_string_member(out, "file"), ==, file);
        step(run, "browser.verify_text", "{\"selector\": \"#n\", \"text\": \"module.modl\"}", &r);
        /* A missing file is a clear failure. */
        step_start(run, "browser.file_upload",
                   "{\"selector\": \"#f\", \"file_path\": \"nope.modl\"}", NULL, &r);
        wait_result(&r);
        g_assert_nonnull(r.error);
        g_assert_nonnull(strstr(r.error->message, "not found"));
        result_clear(&r);
}

/* A page's download lands in the run's folder under its own name. */
static void
test_download(void)
{
        g_autoptr(Run) run = run_new();
        g_autofree char *path = NULL;
        g_autofree char *data = NULL;
        Result r = { 0 };

        navigate(run,
                 "data:text/html,<a id=d download=hello.txt href='data:text/plain,hello'>get</a>",
                 &r);
        step(run, "browser.click", "{\"selector\": \"#d\"}", &r);
        path = g_build_filename(run->dir, "hello.txt", NULL);
        for (guint i = 0; i < 100 && !g_file_test(path, G_FILE_TEST_EXISTS); i++)
                spin_ms(50);
        g_assert_true(g_file_get_contents(path, &data, NULL, NULL));
        g_assert_cmpstr(data, ==, "hello");
}

/* --- inside an execution --------------------------------------------------------- */

static JsonObject *
credential_cb(const char *name, gpointer user_data, GError **error)
{
        JsonObject *credential = json_object_new();

        (void)user_data;
        if (g_strcmp0(name, "web") != 0) {
                json_object_unref(credential);
                g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_CREDENTIAL, "no %s", name);
                return NULL;
        }
        json_object_set_string_member(credential, "username", "admin");
        json_object_set_string_member(credential, "password", SECRET);
        return credential;
}

static gboolean
wait_step_running(ItkExecution *e)
{
        return itk_execution_get_current_step(e) == 3 &&
               itk_execution_get_status(e) == ITK_STATUS_RUNNING;
}

static void
assert_no_secret_in_variant(GVariant *value)
{
        g_autofree char *text = g_variant_print(value, FALSE);

        g_assert_null(strstr(text, SECRET));
}

static void
iterate_until(gboolean (*pred)(ItkExecution *e), ItkExecution *e)
{
        gboolean guard = FALSE;
        guint id = g_timeout_add(GUARD_MS, flag_cb, &guard);

        while (!pred(e) && !guard)
                g_main_context_iteration(NULL, TRUE);
        g_assert_true(pred(e));
        g_source_remove(id);
}

static gboolean
is_terminal(ItkExecution *e)
{
        return itk_status_is_terminal(itk_execution_get_status(e));
}

/* Skip during a wait goes on with the same page; Cancel during one ends the
 * run at once; the password of a credential is nowhere; the run's browser
 * context closes with it. */
static void
run_execution(gboolean cancel)
{
        g_autofree char *yaml = g_strdup_printf(
                "name: login\nversion: 1\nsteps:\n"
                "  - {id: open, name: Open, type: browser.navigate, parameters: {url: "
                "'%s/web/login?username=admin'}}\n"
                "  - {id: user, name: User, type: browser.fill, parameters: {selector: "
                "'#username', "
                "value: admin}}\n"
                "  - {id: pass, name: Pass, type: browser.fill, parameters: {selector: "
                "'#password', "
                "value: '{{ credential.web.password }}'}}\n"
                "  - {id: hang, name: Hang, type: browser.wait, parameters: {selector: '#never', "
                "timeout: 30000}}\n"
                "  - {id: still, name: Still, type: browser.verify_attribute, parameters: "
                "{selector: '#username', attribute: id, value: username}}\n",
                sim->url);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook =
                itk_playbook_new_from_data(yaml, -1, "t.yaml", NULL, &error);
        g_autoptr(JsonObject) given = json_object_new();
        g_autoptr(JsonObject) bound = NULL;
        g_autoptr(ItkExecution) e = NULL;
        g_autoptr(Run) run = run_new(); /* for its folder */
        g_autofree char *db = g_build_filename(run->dir, "history.db", NULL);
        g_autoptr(ItkStore) store = itk_store_open(db, &error);
        g_autoptr(GVariant) steps = NULL;
        g_autoptr(GVariant) log = NULL;
        ItkExecutionConfig config = { 0 };
        ItkBrowser *browser = itk_browser_get_default();
        gint64 cancelled_at;

        g_assert_no_error(error);
        bound = itk_playbook_bind_parameters(playbook, given, &error);
        g_assert_no_error(error);
        config.playbook = playbook;
        config.parameters = bound;
        config.store = store;
        config.work_dir = run->dir;
        config.credential_lookup = credential_cb;
        e = itk_execution_new(&config, &error);
        g_assert_no_error(error);
        g_assert_true(itk_execution_start(e, &error));
        iterate_until(wait_step_running, e);
        spin_ms(200);
        g_assert_true(wait_step_running(e));
        g_assert_cmpuint(itk_browser_get_n_pages(browser), >=, 1);
        cancelled_at = g_get_monotonic_time();
        if (cancel)
                g_assert_true(itk_execution_cancel(e, &error));
        else
                g_assert_true(itk_execution_skip(e, &error));
        g_assert_no_error(error);
        iterate_until(is_terminal, e);
        if (cancel) {
                g_assert_cmpint(itk_execution_get_status(e), ==, ITK_STATUS_CANCELLED);
                g_assert_cmpint(g_get_monotonic_time() - cancelled_at, <, CANCEL_BUDGET_USEC);
        } else {
                g_assert_cmpint(itk_execution_get_status(e), ==, ITK_STATUS_COMPLETED);
        }
        /* The run's context is gone with it. */
        g_assert_cmpuint(itk_browser_get_n_pages(browser), ==, 0);

        steps = g_variant_ref_sink(itk_execution_get_steps(e));
        assert_no_secret_in_variant(steps);
        log = itk_execution_get_log(e, 1000, &error);
        g_assert_no_error(error);
        assert_no_secret_in_variant(log);
        g_clear_pointer(&steps, g_variant_unref);
        g_clear_pointer(&log, g_variant_unref);
        steps = itk_store_get_steps(store, itk_execution_get_id(e), &error);
        g_assert_no_error(error);
        assert_no_secret_in_variant(steps);
        log = itk_store_get_log(store, itk_execution_get_id(e), 1000, &error);
        g_assert_no_error(error);
        assert_no_secret_in_variant(log);
}

static void
test_execution_skip(void)
{
        run_execution(FALSE);
}

static void
test_execution_cancel(void)
{
        run_execution(TRUE);
}

/* The CDP pipe's child ends landing on fds 3 and 4 themselves (BROWSER.md):
 * run in a fresh process whose fds 3..6 are free, so that the request
 * pipe is [3, 4] (the child's read end already on 3) and the reply pipe
 * [5, 6] (the child's write end going to 4, our own request end). */
static int
fds_child_main(void)
{
        const char *bin = g_getenv("ITK_CHROMIUM") != NULL ? g_getenv("ITK_CHROMIUM")
                                                           : ITK_BROWSER_DEFAULT_BINARY;
        g_autofree char *profile = g_dir_make_tmp("itk-fds-XXXXXX", NULL);
        g_autofree char *profile_arg = g_strdup_printf("--user-data-dir=%s", profile);
        g_autofree char *command = g_strdup_printf("rm -rf '%s'", profile);
        const char *argv[] = { bin,
                               "--headless=new",
                               profile_arg,
                               "--no-first-run",
                               "--disable-gpu",
                               "--remote-debugging-pipe",
                               "--disable-background-networking",
                               geteuid() == 0 ? "--no-sandbox" : "--no-first-run",
                               "about:blank",
                               NULL };
        g_autoptr(GSubprocess) process = NULL;
        g_autoptr(ItkCdp) cdp = NULL;
        g_autoptr(GError) error = NULL;
        int to = -1, from = -1;
        Result r = { 0 };

        for (int fd = 3; fd <= 6; fd++)
                if (fcntl(fd, F_GETFD) >= 0) {
                        g_printerr("fd %d is open; cannot test the fds 3 and 4 case\n", fd);
                        return 77;
                }
        process = itk_browser_spawn(argv, &to, &from, &error);
        g_assert_no_error(error);
        /* Chromium saw its pipe on 3 and 4: it answers. */
        cdp = itk_cdp_new(from, to);
        itk_cdp_call_async(cdp, NULL, "Browser.getVersion", NULL, NULL, cdp_reply_cb, &r);
        wait_result(&r);
        g_assert_no_error(r.error);
        g_assert_nonnull(json_object_get_string_member(json_node_get_object(r.output), "product"));
        result_clear(&r);
        itk_cdp_close(cdp, "done");
        /* The whole group: /usr/bin/chromium is a wrapper script. */
        kill(-(pid_t)g_ascii_strtoll(g_subprocess_get_identifier(process), NULL, 10), SIGKILL);
        g_subprocess_wait_async(process, NULL, process_waited_cb, &r);
        wait_result(&r);
        g_spawn_command_line_sync(command, NULL, NULL, NULL, NULL);
        return 0;
}

static const char *self_path;

static void
test_pipe_fds_3_and_4(void)
{
        /* GSubprocess closes every fd above 2 in the child. */
        g_autoptr(GSubprocess) child =
                g_subprocess_new(G_SUBPROCESS_FLAGS_NONE, NULL, self_path, "--fds-child", NULL);
        g_autoptr(GError) error = NULL;

        g_assert_nonnull(child);
        g_subprocess_wait(child, NULL, &error);
        g_assert_no_error(error);
        if (g_subprocess_get_if_exited(child) && g_subprocess_get_exit_status(child) == 77) {
                g_test_skip("fds 3..6 not free in the child");
                return;
        }
        g_assert_true(g_subprocess_get_successful(child));
}

int
main(int argc, char **argv)
{
        const char *bin = g_getenv("ITK_CHROMIUM");
        int status;

        if (argc == 2 && g_strcmp0(argv[1], "--fds-child") == 0)
                return fds_child_main();
        self_path = argv[0];
        g_test_init(&argc, &argv, NULL);
        if (!g_file_test(ITK_BROWSER_DEFAULT_BINARY, G_FILE_TEST_IS_EXECUTABLE)) {
                g_print("1..0 # SKIP %s is not installed (Debian package chromium)\n",
                        ITK_BROWSER_DEFAULT_BINARY);
                return 77;
        }
        (void)bin;
        g_test_add_func("/browser/missing-chromium", test_missing_chromium);
        g_test_add_func("/browser/missing-chromium-validation", test_missing_chromium_validation);
        g_test_add_func("/browser/selector-validation", test_selector_validation);
        g_test_add_func("/browser/pipe-fds-3-and-4", test_pipe_fds_3_and_4);
        g_test_add_func("/browser/login", test_login);
        g_test_add_func("/browser/verify-retries", test_verify_retries);
        g_test_add_func("/browser/keyboard-and-discover", test_keyboard_and_discover);
        g_test_add_func("/browser/screenshot", test_screenshot);
        g_test_add_func("/browser/cancel-wait", test_cancel_wait);
        g_test_add_func("/browser/pause-freezes-clock", test_pause_freezes_clock);
        g_test_add_func("/browser/satisfied-while-paused", test_satisfied_while_paused);
        g_test_add_func("/browser/fill-secret", test_fill_secret);
        g_test_add_func("/browser/execution-skip", test_execution_skip);
        g_test_add_func("/browser/execution-cancel", test_execution_cancel);
        g_test_add_func("/browser/file-upload", test_file_upload);
        g_test_add_func("/browser/download", test_download);
        g_test_add_func("/browser/crash", test_crash);
        g_test_add_func("/browser/idle-exit", test_idle_exit);
        /* Linked in, not loaded as the daemon does. */
        itk_step_browser_module_init();
        sim = itk_test_sim_start(NULL);
        status = g_test_run();
        itk_browser_free(itk_browser_get_default());
        itk_test_sim_stop(sim);
        return status;
}
