/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "itk-error.h"
#include "itk-sandbox.h"
#include "itk-script.h"
#include "itk-step.h"
#include "itk-timer.h"

/* Cancelling must complete the step within milliseconds (DESIGN.md §5);
 * generous for a loaded machine and the sanitizers. */
#define CANCEL_BUDGET_USEC (100 * G_TIME_SPAN_MILLISECOND)
/* Starting python3 through a pyenv shim takes a few hundred ms. */
#define START_TIMEOUT_MS 15000

typedef struct {
        ItkLogPriority priority;
        char *message;
} LogLine;

static void
log_line_free(LogLine *line)
{
        g_free(line->message);
        g_free(line);
}

typedef struct {
        GMainLoop *loop;
        ItkTimerGroup *timers;
        JsonObject *variables;
        ItkStepContext *ctx;
        GPtrArray *log; /* LogLine* */
        GCancellable *cancellable;
        gboolean done;
        gboolean timed_out;
        JsonNode *output;
        GError *error;
        gint64 done_at;
        const char *wait_text;
        char *tmpdir;
} Fixture;

static void
fixture_free(Fixture *f)
{
        g_main_loop_unref(f->loop);
        itk_step_context_unref(f->ctx);
        itk_timer_group_free(f->timers);
        json_object_unref(f->variables);
        g_ptr_array_unref(f->log);
        g_object_unref(f->cancellable);
        g_clear_pointer(&f->output, json_node_unref);
        g_clear_error(&f->error);
        if (f->tmpdir != NULL) {
                g_autofree char *command = g_strdup_printf("rm -rf '%s'", f->tmpdir);
                g_assert_true(g_spawn_command_line_sync(command, NULL, NULL, NULL, NULL));
                g_free(f->tmpdir);
        }
        g_free(f);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Fixture, fixture_free)

static void
fixture_log_cb(gpointer user_data, ItkLogPriority priority, const char *step_id,
               const char *message)
{
        Fixture *f = user_data;
        LogLine *line = g_new0(LogLine, 1);

        g_assert_cmpstr(step_id, ==, "step1");
        /* Nothing is logged for a step after it completed. */
        g_assert_false(f->done);
        line->priority = priority;
        line->message = g_strdup(message);
        g_ptr_array_add(f->log, line);
        /* Lets fixture_run_until() look at its condition again. */
        g_main_loop_quit(f->loop);
}

static Fixture *
fixture_new(void)
{
        Fixture *f = g_new0(Fixture, 1);

        f->loop = g_main_loop_new(NULL, FALSE);
        f->timers = itk_timer_group_new();
        f->variables = json_object_new();
        f->log = g_ptr_array_new_with_free_func((GDestroyNotify)log_line_free);
        f->cancellable = g_cancellable_new();
        f->ctx = itk_step_context_new("step1");
        itk_step_context_set_log_func(f->ctx, fixture_log_cb, f);
        itk_step_context_set_variables(f->ctx, f->variables);
        itk_step_context_set_timer_group(f->ctx, f->timers);
        return f;
}

/* A fresh directory, also set as the context's work dir. */
static const char *
fixture_tmpdir(Fixture *f)
{
        g_autoptr(GError) error = NULL;

        if (f->tmpdir == NULL) {
                f->tmpdir = g_dir_make_tmp("itk-test-utility-XXXXXX", &error);
                g_assert_no_error(error);
                itk_step_context_set_work_dir(f->ctx, f->tmpdir);
        }
        return f->tmpdir;
}

static void
fixture_step_done_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Fixture *f = user_data;

        g_assert_false(f->done);
        f->output = itk_step_run_finish(result, &f->error);
        g_assert_true((f->output == NULL) != (f->error == NULL));
        f->done = TRUE;
        f->done_at = g_get_monotonic_time();
        g_main_loop_quit(f->loop);
}

static void
fixture_start_object(Fixture *f, const char *type, JsonObject *params)
{
        const ItkStepHandler *handler = itk_step_registry_lookup(type);

        g_assert_nonnull(handler);
        g_assert_nonnull(handler->run);
        handler->run(f->ctx, params, f->cancellable, fixture_step_done_cb, f);
}

static JsonObject *
parse_object(const char *json)
{
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(GError) error = NULL;

        json_parser_load_from_data(parser, json, -1, &error);
        g_assert_no_error(error);
        g_assert_true(JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)));
        return json_object_ref(json_node_get_object(json_parser_get_root(parser)));
}

static void
fixture_start(Fixture *f, const char *type, const char *params_json)
{
        g_autoptr(JsonObject) params = parse_object(params_json);

        fixture_start_object(f, type, params);
}

/* Parameters {"<name>": @text}, for texts awkward to write as JSON. */
static void
fixture_start_text(Fixture *f, const char *type, const char *name, const char *text)
{
        g_autoptr(JsonObject) params = json_object_new();

        json_object_set_string_member(params, name, text);
        fixture_start_object(f, type, params);
}

typedef gboolean (*Condition)(Fixture *f);

static gboolean
fixture_timeout_cb(gpointer user_data)
{
        Fixture *f = user_data;

        f->timed_out = TRUE;
        g_main_loop_quit(f->loop);
        return G_SOURCE_REMOVE;
}

/* Runs the main loop until @cond holds or @timeout_ms passed. */
static gboolean
fixture_run_until(Fixture *f, Condition cond, guint timeout_ms)
{
        guint timeout_id;

        f->timed_out = FALSE;
        timeout_id = g_timeout_add(timeout_ms, fixture_timeout_cb, f);
        while (!cond(f) && !f->timed_out)
                g_main_loop_run(f->loop);
        if (!f->timed_out)
                g_source_remove(timeout_id);
        return cond(f);
}

static gboolean
is_done(Fixture *f)
{
        return f->done;
}

static LogLine *
fixture_find_log(Fixture *f, const char *text)
{
        for (guint i = 0; i < f->log->len; i++) {
                LogLine *line = g_ptr_array_index(f->log, i);
                if (strstr(line->message, text) != NULL)
                        return line;
        }
        return NULL;
}

static gboolean
has_wait_text(Fixture *f)
{
        return fixture_find_log(f, f->wait_text) != NULL;
}

static void
fixture_wait_for_log(Fixture *f, const char *text)
{
        f->wait_text = text;
        g_assert_true(fixture_run_until(f, has_wait_text, START_TIMEOUT_MS));
}

/* Runs the step to completion and checks it succeeded. */
static JsonObject *
fixture_finish_ok(Fixture *f)
{
        g_assert_true(fixture_run_until(f, is_done, 30000));
        g_assert_no_error(f->error);
        g_assert_true(JSON_NODE_HOLDS_OBJECT(f->output));
        return json_node_get_object(f->output);
}

/* Runs the step to completion and checks it failed with @domain/@code and a
 * message containing @text. */
static void
fixture_finish_error(Fixture *f, GQuark domain, int code, const char *text)
{
        g_assert_true(fixture_run_until(f, is_done, 30000));
        g_assert_error(f->error, domain, code);
        if (text != NULL && strstr(f->error->message, text) == NULL)
                g_error("error message '%s' lacks '%s'", f->error->message, text);
}

/* Cancels and checks the step completed CANCELLED within the budget. */
static void
fixture_cancel_quickly(Fixture *f)
{
        gint64 start;

        g_assert_false(f->done);
        start = g_get_monotonic_time();
        g_cancellable_cancel(f->cancellable);
        g_assert_true(fixture_run_until(f, is_done, 5000));
        g_assert_error(f->error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        g_assert_cmpint(f->done_at - start, <, CANCEL_BUDGET_USEC);
}

static guint
fixture_count_log(Fixture *f, ItkLogPriority priority)
{
        guint n = 0;

        for (guint i = 0; i < f->log->len; i++)
                n += ((LogLine *)g_ptr_array_index(f->log, i))->priority == priority;
        return n;
}

/* The number after @prefix in the log. */
static GPid
fixture_log_number(Fixture *f, const char *prefix)
{
        LogLine *line = fixture_find_log(f, prefix);

        g_assert_nonnull(line);
        return (GPid)g_ascii_strtoll(strstr(line->message, prefix) + strlen(prefix), NULL, 10);
}

/* Gone, or dead and waiting for a reaper (an orphan's reaper is pid 1,
 * which may be slow or absent in a container). */
static gboolean
process_is_dead(GPid pid)
{
        g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);
        g_autofree char *stat = NULL;
        const char *state;

        if (kill(pid, 0) < 0 && errno == ESRCH)
                return TRUE;
        if (!g_file_get_contents(path, &stat, NULL, NULL))
                return TRUE;
        state = strrchr(stat, ')');
        return state != NULL && (state[2] == 'Z' || state[2] == 'X');
}

static void
assert_process_dies(GPid pid)
{
        gint64 deadline = g_get_monotonic_time() + 2 * G_TIME_SPAN_SECOND;

        g_assert_cmpint(pid, >, 0);
        while (!process_is_dead(pid) && g_get_monotonic_time() < deadline)
                g_usleep(5 * G_TIME_SPAN_MILLISECOND);
        if (!process_is_dead(pid))
                g_error("process %d survived the cancellation", (int)pid);
}

static gboolean
pid_gone(GPid pid)
{
        return kill(pid, 0) < 0 && errno == ESRCH;
}

static gboolean
fixture_reaped_cb(gpointer user_data)
{
        *(gboolean *)user_data = TRUE;
        return G_SOURCE_REMOVE;
}

/* Runs the loop (the script's child watch reaps there) until @pid, a child
 * of ours, is gone: not even a zombie. Bounded, against a hang. */
static void
fixture_wait_reaped(Fixture *f, GPid pid)
{
        gint64 deadline = g_get_monotonic_time() + 10 * G_TIME_SPAN_SECOND;

        while (!pid_gone(pid) && g_get_monotonic_time() < deadline) {
                gboolean tick = FALSE;

                g_timeout_add(5, fixture_reaped_cb, &tick);
                while (!tick)
                        g_main_context_iteration(NULL, TRUE);
        }
        if (!pid_gone(pid))
                g_error("process %d was not reaped after the cancellation", (int)pid);
}

static const char *
member_string(JsonObject *object, const char *name)
{
        JsonNode *node = json_object_get_member(object, name);

        if (node == NULL)
                g_error("no member '%s'", name);
        g_assert_cmpint(json_node_get_value_type(node), ==, G_TYPE_STRING);
        return json_node_get_string(node);
}

/* --- utility.sleep ------------------------------------------------------------ */

static void
test_sleep(void)
{
        g_autoptr(Fixture) f = fixture_new();
        gint64 start = g_get_monotonic_time();
        JsonObject *output;

        fixture_start(f, "utility.sleep", "{\"seconds\": 0.05}");
        output = fixture_finish_ok(f);
        /* It really waited, and reports what it was asked. */
        g_assert_cmpint(f->done_at - start, >=, 49 * G_TIME_SPAN_MILLISECOND);
        g_assert_cmpfloat(json_object_get_double_member(output, "slept"), ==, 0.05);
}

static void
test_sleep_text(void)
{
        g_autoptr(Fixture) f = fixture_new();
        JsonObject *output;

        /* Numeric text, as a template renders it; whole numbers stay whole. */
        fixture_start(f, "utility.sleep", "{\"seconds\": \" 0 \"}");
        output = fixture_finish_ok(f);
        g_assert_cmpint(json_node_get_value_type(json_object_get_member(output, "slept")), ==,
                        G_TYPE_INT64);
        g_assert_cmpint(json_object_get_int_member(output, "slept"), ==, 0);
}

static void
test_sleep_pausable(void)
{
        g_autoptr(Fixture) f = fixture_new();
        const ItkStepHandler *handler = itk_step_registry_lookup("utility.sleep");

        g_assert_true(handler->pausable);
        fixture_start(f, "utility.sleep", "{\"seconds\": 0.1}");
        itk_timer_group_pause(f->timers);
        /* Frozen: three times its duration goes by without completion. */
        g_assert_false(fixture_run_until(f, is_done, 300));
        itk_timer_group_resume(f->timers);
        fixture_finish_ok(f);
}

static void
test_sleep_cancel(void)
{
        g_autoptr(Fixture) f = fixture_new();

        fixture_start(f, "utility.sleep", "{\"seconds\": 10}");
        g_assert_false(fixture_run_until(f, is_done, 20));
        fixture_cancel_quickly(f);
}

static void
test_sleep_bad_seconds(void)
{
        static const char *const bad[] = {
                "{\"seconds\": [1]}",
                "{\"seconds\": \"abc\"}",
                "{\"seconds\": -1}",
                "{\"seconds\": \"nan\"}",
                "{\"seconds\": \"\"}",
                "{\"seconds\": true}",
                "{\"seconds\": 1e300}",
                "{}",
                /* Over the 30-day cap: this one used to overflow the timer and end at once. */
                "{\"seconds\": 9e15}",
                "{\"seconds\": 2592001}",
        };

        for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autoptr(Fixture) f = fixture_new();

                g_test_message("%s", bad[i]);
                fixture_start(f, "utility.sleep", bad[i]);
                fixture_finish_error(f, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS, "'seconds'");
        }
}

/* Exactly the cap is accepted and really waits. */
static void
test_sleep_at_cap(void)
{
        g_autoptr(Fixture) f = fixture_new();

        fixture_start(f, "utility.sleep", "{\"seconds\": 2592000}");
        g_assert_false(fixture_run_until(f, is_done, 30));
        fixture_cancel_quickly(f);
}

/* --- utility.log ---------------------------------------------------------------- */

static void
test_log_levels(void)
{
        static const struct {
                const char *params;
                ItkLogPriority priority;
                const char *level;
        } cases[] = {
                { "{\"message\": \"m\", \"level\": \"debug\"}", ITK_LOG_DEBUG, "debug" },
                { "{\"message\": \"m\", \"level\": \"info\"}", ITK_LOG_INFO, "info" },
                { "{\"message\": \"m\", \"level\": \"WARNING\"}", ITK_LOG_WARNING, "warning" },
                { "{\"message\": \"m\", \"level\": \"error\"}", ITK_LOG_ERR, "error" },
                { "{\"message\": \"m\"}", ITK_LOG_INFO, "info" },
        };

        for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(Fixture) f = fixture_new();
                JsonObject *output;
                LogLine *line;

                fixture_start(f, "utility.log", cases[i].params);
                output = fixture_finish_ok(f);
                g_assert_true(json_object_get_boolean_member(output, "logged"));
                g_assert_cmpstr(member_string(output, "level"), ==, cases[i].level);
                g_assert_cmpuint(f->log->len, ==, 1);
                line = g_ptr_array_index(f->log, 0);
                g_assert_cmpint(line->priority, ==, cases[i].priority);
                g_assert_cmpstr(line->message, ==, "m");
        }
}

static void
test_log_number(void)
{
        g_autoptr(Fixture) f = fixture_new();

        /* A message that was one {{ }} reference to a number. */
        fixture_start(f, "utility.log", "{\"message\": 42}");
        fixture_finish_ok(f);
        g_assert_cmpstr(((LogLine *)g_ptr_array_index(f->log, 0))->message, ==, "42");
}

static void
test_log_bad(void)
{
        static const struct {
                const char *params;
                const char *name;
        } cases[] = {
                { "{\"message\": \"m\", \"level\": \"loud\"}", "'level'" },
                { "{\"message\": \"m\", \"level\": 3}", "'level'" },
                { "{\"message\": [\"m\"]}", "'message'" },
                { "{}", "'message'" },
        };

        for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(Fixture) f = fixture_new();

                fixture_start(f, "utility.log", cases[i].params);
                fixture_finish_error(f, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS, cases[i].name);
                g_assert_cmpuint(f->log->len, ==, 0);
        }
}

/* --- utility.set_variable --------------------------------------------------------- */

static void
test_set_variable(void)
{
        g_autoptr(Fixture) f = fixture_new();
        g_autoptr(JsonObject) expected = parse_object("{\"a\": [1, \"two\", null]}");
        JsonObject *output;
        JsonNode *value;

        fixture_start(f, "utility.set_variable",
                      "{\"name\": \"x\", \"value\": {\"a\": [1, \"two\", null]}}");
        output = fixture_finish_ok(f);
        value = json_object_get_member(f->variables, "x");
        g_assert_nonnull(value);
        g_assert_true(json_object_equal(json_node_get_object(value), expected));
        g_assert_cmpstr(member_string(output, "variable"), ==, "x");
        g_assert_true(json_object_equal(
                json_node_get_object(json_object_get_member(output, "value")), expected));
}

static void
test_set_variable_bad(void)
{
        static const char *const bad[] = {
                "{\"value\": 1}",
                "{\"name\": 5, \"value\": 1}",
                "{\"name\": \"not a name\", \"value\": 1}",
                "{\"name\": \"\", \"value\": 1}",
        };

        for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autoptr(Fixture) f = fixture_new();

                fixture_start(f, "utility.set_variable", bad[i]);
                fixture_finish_error(f, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS, "'name'");
                g_assert_cmpuint(json_object_get_size(f->variables), ==, 0);
        }
}

/* --- utility.python ---------------------------------------------------------------- */

static void
test_python_outputs(void)
{
        g_autoptr(Fixture) f = fixture_new();
        JsonObject *output;
        LogLine *line;

        fixture_start_text(f, "utility.python", "script",
                           "print('RESULT=  hello world  ')\n"
                           "print('plain line')\n"
                           "print('COUNT=3')\n"
                           "print('not a key=1')\n"
                           "print('9X=1')\n"
                           "print('COUNT=4')\n"
                           "print('exit_code=99')\n");
        output = fixture_finish_ok(f);
        g_assert_cmpstr(member_string(output, "RESULT"), ==, "hello world");
        /* The last one wins. */
        g_assert_cmpstr(member_string(output, "COUNT"), ==, "4");
        g_assert_false(json_object_has_member(output, "not a key"));
        g_assert_false(json_object_has_member(output, "9X"));
        g_assert_cmpstr(member_string(output, "_output"), ==,
                        "RESULT=  hello world  \nplain line\nCOUNT=3\nnot a key=1\n9X=1\n"
                        "COUNT=4\nexit_code=99\n");
        /* The real exit code, not a printed one. */
        g_assert_cmpint(json_object_get_int_member(output, "exit_code"), ==, 0);
        line = fixture_find_log(f, "plain line");
        g_assert_nonnull(line);
        g_assert_cmpint(line->priority, ==, ITK_LOG_INFO);
}

static void
test_python_code_synonym(void)
{
        g_autoptr(Fixture) f = fixture_new();

        fixture_start(f, "utility.python", "{\"code\": \"print('A=1')\"}");
        g_assert_cmpstr(member_string(fixture_finish_ok(f), "A"), ==, "1");
}

static void
test_python_variables(void)
{
        g_autoptr(Fixture) f = fixture_new();
        g_autoptr(JsonObject) expected = parse_object("{\"k\": [1, 5, null, true]}");
        JsonObject *output;

        json_object_set_string_member(f->variables, "greeting", "hi");
        json_object_set_int_member(f->variables, "n", 5);
        fixture_start_text(f, "utility.python", "script",
                           "g = get_variable('greeting')\n"
                           "set_variable('out', g + '!')\n"
                           "set_variable('obj', {'k': [1, get_variable('n'), None, True]})\n"
                           "set_variable('greeting', 'bye')\n"
                           "print('AFTER=' + get_variable('greeting'))\n"
                           "print('MISSING=' + get_variable('nope', 'dflt'))\n"
                           "print('NONE=' + repr(get_variable('nope')))\n");
        output = fixture_finish_ok(f);
        /* Initial variables are visible, set ones are visible to the script at
         * once and land in the context. */
        g_assert_cmpstr(member_string(output, "AFTER"), ==, "bye");
        g_assert_cmpstr(member_string(output, "MISSING"), ==, "dflt");
        g_assert_cmpstr(member_string(output, "NONE"), ==, "None");
        g_assert_cmpstr(json_object_get_string_member(f->variables, "out"), ==, "hi!");
        g_assert_cmpstr(json_object_get_string_member(f->variables, "greeting"), ==, "bye");
        g_assert_true(
                json_object_equal(json_object_get_object_member(f->variables, "obj"), expected));
        /* Variables travel on the side channel, never in the output. */
        g_assert_null(strstr(member_string(output, "_output"), "hi!"));
}

static void
test_python_variable_arrives_live(void)
{
        g_autoptr(Fixture) f = fixture_new();

        fixture_start_text(f, "utility.python", "script",
                           "import sys\n"
                           "set_variable('early', 1)\n"
                           "print('MARK-AFTER-SET', flush=True)\n"
                           "time.sleep(10)\n");
        fixture_wait_for_log(f, "MARK-AFTER-SET");
        /* Applied as it arrived, not at the end of the step. */
        g_assert_true(json_object_has_member(f->variables, "early"));
        g_assert_cmpint(json_object_get_int_member(f->variables, "early"), ==, 1);
        fixture_cancel_quickly(f);
}

static void
test_python_namespace(void)
{
        g_autoptr(Fixture) f = fixture_new();
        const char *dir = fixture_tmpdir(f);
        JsonObject *output;

        fixture_start_text(
                f, "utility.python", "script",
                "p = Path(os.getcwd()) / 'm.modl'\n"
                "with zipfile.ZipFile(p, 'w') as zf:\n"
                "    zf.writestr('module.xml', '<m><module><name>Sim</name></module></m>')\n"
                "with zipfile.ZipFile(p) as zf:\n"
                "    root = ET.fromstring(zf.read('module.xml').decode())\n"
                "print('NAME=' + root.find('module').find('name').text)\n"
                "print('JSON=' + json.dumps({'a': 1}))\n"
                "r = subprocess.run(['echo', 'sub'], capture_output=True, text=True)\n"
                "print('SUB=' + r.stdout)\n"
                "print('TIME=' + str(time.time() > 0))\n"
                "print('CWD=' + os.getcwd())\n"
                "print('MAIN=' + __name__)\n"
                "import sys\n"
                "print('STDIN=%d' % len(sys.stdin.read()))\n");
        output = fixture_finish_ok(f);
        g_assert_cmpstr(member_string(output, "NAME"), ==, "Sim");
        g_assert_cmpstr(member_string(output, "JSON"), ==, "{\"a\": 1}");
        g_assert_cmpstr(member_string(output, "SUB"), ==, "sub");
        g_assert_cmpstr(member_string(output, "TIME"), ==, "True");
        /* Runs in the work dir. */
        g_assert_cmpstr(member_string(output, "CWD"), ==, dir);
        g_assert_cmpstr(member_string(output, "MAIN"), ==, "__main__");
        /* The wrapper consumed its input and left /dev/null. */
        g_assert_cmpstr(member_string(output, "STDIN"), ==, "0");
}

static void
test_python_exception(void)
{
        g_autoptr(Fixture) f = fixture_new();
        LogLine *line;

        fixture_start_text(f, "utility.python", "script",
                           "print('before')\n"
                           "def inner():\n"
                           "    raise ValueError('boom here')\n"
                           "inner()\n");
        fixture_finish_error(f, ITK_ERROR, ITK_ERROR_FAILED, "python script exited with status 1");
        /* The traceback tail names the script's lines, not the wrapper. */
        g_assert_nonnull(strstr(f->error->message, "ValueError: boom here"));
        g_assert_nonnull(strstr(f->error->message, "File \"<playbook script>\", line 3"));
        g_assert_null(strstr(f->error->message, "_itk_main"));
        line = fixture_find_log(f, "ValueError: boom here");
        g_assert_nonnull(line);
        g_assert_cmpint(line->priority, ==, ITK_LOG_WARNING);
        g_assert_nonnull(fixture_find_log(f, "before"));
}

static void
test_python_syntax_error(void)
{
        g_autoptr(Fixture) f = fixture_new();

        fixture_start_text(f, "utility.python", "script", "x = (\n");
        fixture_finish_error(f, ITK_ERROR, ITK_ERROR_FAILED, "SyntaxError");
        g_assert_nonnull(strstr(f->error->message, "<playbook script>"));
}

static void
test_python_exit_status(void)
{
        g_autoptr(Fixture) f = fixture_new();
        g_autoptr(Fixture) f0 = fixture_new();

        fixture_start_text(f, "utility.python", "script",
                           "import sys\nprint('why', file=sys.stderr)\nsys.exit(3)\n");
        fixture_finish_error(f, ITK_ERROR, ITK_ERROR_FAILED,
                             "python script exited with status 3: why");

        /* sys.exit(0) is a success. */
        fixture_start_text(f0, "utility.python", "script", "import sys\nsys.exit(0)\n");
        g_assert_cmpint(json_object_get_int_member(fixture_finish_ok(f0), "exit_code"), ==, 0);
}

static void
test_python_no_interpreter(void)
{
        g_autoptr(Fixture) f = fixture_new();

        itk_step_context_set_python(f->ctx, "/nonexistent/python3");
        fixture_start(f, "utility.python", "{\"script\": \"pass\"}");
        fixture_finish_error(f, ITK_ERROR, ITK_ERROR_FAILED, "could not start the python script");
}

static void
test_python_stderr_live(void)
{
        g_autoptr(Fixture) f = fixture_new();
        LogLine *line;

        fixture_start_text(f, "utility.python", "script",
                           "import sys\n"
                           "print('first line', file=sys.stderr, flush=True)\n"
                           "time.sleep(10)\n");
        /* Logged while the script still runs. */
        fixture_wait_for_log(f, "first line");
        g_assert_false(f->done);
        line = fixture_find_log(f, "first line");
        g_assert_cmpint(line->priority, ==, ITK_LOG_WARNING);
        fixture_cancel_quickly(f);
}

static void
test_python_cancel_busy(void)
{
        g_autoptr(Fixture) f = fixture_new();
        GPid pid;

        fixture_start_text(f, "utility.python", "script",
                           "print('PID=%d' % os.getpid(), flush=True)\n"
                           "while True:\n"
                           "    pass\n");
        fixture_wait_for_log(f, "PID=");
        pid = fixture_log_number(f, "PID=");
        /* The pid the handler started is the one running the script. */
        g_assert_cmpint(fixture_log_number(f, "(pid "), ==, pid);
        fixture_cancel_quickly(f);
        /* Reaped after the step completed (the kill was sent): no zombie. */
        fixture_wait_reaped(f, pid);
}

/* --- utility.shell --------------------------------------------------------------- */

static void
test_shell_cancel_group(void)
{
        g_autoptr(Fixture) f = fixture_new();
        GPid shell;
        GPid grandchild;

        /* The grandchild ignores SIGTERM and the shell waits for it: only
         * SIGKILL to the whole group ends both. */
        fixture_start_text(f, "utility.shell", "command",
                           "echo SHELL=$$\n"
                           "sh -c 'trap \"\" TERM; echo GRANDCHILD=$$; exec sleep 1000' &\n"
                           "wait\n");
        fixture_wait_for_log(f, "GRANDCHILD=");
        shell = fixture_log_number(f, "SHELL=");
        grandchild = fixture_log_number(f, "GRANDCHILD=");
        g_assert_cmpint(shell, !=, grandchild);
        g_assert_cmpint(kill(grandchild, 0), ==, 0);
        fixture_cancel_quickly(f);
        fixture_wait_reaped(f, shell);
        assert_process_dies(grandchild);
}

static void
test_shell_cancel_escaped_grandchild(void)
{
        g_autoptr(Fixture) f = fixture_new();
        GPid escaped;

        /* A grandchild in its own session keeps stdout open: cancellation must
         * not wait for the pipes. */
        fixture_start_text(f, "utility.shell", "command",
                           "setsid sh -c 'echo ESCAPED=$$; exec sleep 3' &\n"
                           "wait\n");
        fixture_wait_for_log(f, "ESCAPED=");
        escaped = fixture_log_number(f, "ESCAPED=");
        fixture_cancel_quickly(f);
        g_assert_cmpint(kill(escaped, 0), ==, 0);
        (void)kill(escaped, SIGKILL);
}

static void
test_shell_argv_env_cwd(void)
{
        g_autoptr(Fixture) f = fixture_new();
        g_autofree char *sub = g_build_filename(fixture_tmpdir(f), "sub", NULL);
        JsonObject *output;

        g_assert_cmpint(g_mkdir(sub, 0700), ==, 0);
        fixture_start(
                f, "utility.shell",
                "{\"argv\": [\"sh\", \"-c\","
                " \"echo DIR=$(pwd); echo FOO=$FOO; echo NUM=$NUM; printf '%s\\\\n' \\\"$@\\\"\","
                " \"sh\", \"ARG=$HOME x\", \"B=two words\"],"
                " \"env\": {\"FOO\": \"bar baz\", \"NUM\": 42},"
                " \"cwd\": \"sub\"}");
        output = fixture_finish_ok(f);
        /* A relative cwd is inside the work dir. */
        g_assert_cmpstr(member_string(output, "DIR"), ==, sub);
        g_assert_cmpstr(member_string(output, "FOO"), ==, "bar baz");
        g_assert_cmpstr(member_string(output, "NUM"), ==, "42");
        /* argv elements reach the program verbatim, no shell expansion. */
        g_assert_cmpstr(member_string(output, "ARG"), ==, "$HOME x");
        g_assert_cmpstr(member_string(output, "B"), ==, "two words");
}

static void
test_shell_absolute_cwd(void)
{
        g_autoptr(Fixture) f = fixture_new();

        fixture_start(f, "utility.shell", "{\"command\": \"echo DIR=$(pwd)\", \"cwd\": \"/\"}");
        g_assert_cmpstr(member_string(fixture_finish_ok(f), "DIR"), ==, "/");
}

static void
test_shell_failure(void)
{
        g_autoptr(Fixture) f = fixture_new();
        g_autoptr(Fixture) f2 = fixture_new();
        g_autoptr(Fixture) f3 = fixture_new();
        g_autoptr(GString) script = g_string_new(NULL);

        fixture_start(f, "utility.shell", "{\"command\": \"echo oops >&2; exit 4\"}");
        fixture_finish_error(f, ITK_ERROR, ITK_ERROR_FAILED, "command exited with status 4: oops");

        fixture_start(f2, "utility.shell", "{\"command\": \"kill -TERM $$\"}");
        fixture_finish_error(f2, ITK_ERROR, ITK_ERROR_FAILED, "command killed by signal 15");

        /* Only the last 20 lines of stderr make the message. */
        for (guint i = 1; i <= 30; i++)
                g_string_append_printf(script, "echo err%02u >&2\n", i);
        g_string_append(script, "exit 1\n");
        fixture_start_text(f3, "utility.shell", "command", script->str);
        fixture_finish_error(f3, ITK_ERROR, ITK_ERROR_FAILED, "err11\nerr12");
        g_assert_null(strstr(f3->error->message, "err10"));
        g_assert_nonnull(strstr(f3->error->message, "err30"));
}

static void
test_shell_no_such_program(void)
{
        g_autoptr(Fixture) f = fixture_new();

        fixture_start(f, "utility.shell", "{\"argv\": [\"/nonexistent/program\"]}");
        fixture_finish_error(f, ITK_ERROR, ITK_ERROR_FAILED, "could not start the command");
}

static void
test_output_line_bound(void)
{
        g_autoptr(Fixture) f = fixture_new();
        JsonObject *output;
        LogLine *last;

        /* The daemon's bound is ITK_STEP_MAX_SCRIPT_LOG_LINES; a smaller one
         * shows the behaviour quickly. */
        itk_step_context_set_script_log_lines(f->ctx, 5000);
        fixture_start(f, "utility.shell", "{\"command\": \"seq 1 10000; echo LAST=yes\"}");
        output = fixture_finish_ok(f);
        /* 5000 lines logged, then one notice, then silence. */
        g_assert_cmpuint(fixture_count_log(f, ITK_LOG_INFO), ==, 5000);
        last = g_ptr_array_index(f->log, f->log->len - 1);
        g_assert_cmpint(last->priority, ==, ITK_LOG_WARNING);
        g_assert_nonnull(strstr(last->message, "output truncated"));
        for (guint i = f->log->len; i > 0; i--) {
                LogLine *line = g_ptr_array_index(f->log, i - 1);
                if (line->priority == ITK_LOG_INFO) {
                        g_assert_cmpstr(line->message, ==, "5000");
                        break;
                }
        }
        /* The capture and the outputs are not bounded by the log. */
        g_assert_true(g_str_has_suffix(member_string(output, "_output"), "\n10000\nLAST=yes\n"));
        g_assert_cmpstr(member_string(output, "LAST"), ==, "yes");
}

static void
test_output_long_line(void)
{
        g_autoptr(Fixture) f = fixture_new();
        JsonObject *output;
        LogLine *line;

        fixture_start(f, "utility.shell",
                      "{\"command\": \"head -c 10000 /dev/zero | tr '\\\\0' x; echo;"
                      " printf 'BIG='; head -c 5000 /dev/zero | tr '\\\\0' y; echo; echo END=1\"}");
        output = fixture_finish_ok(f);
        line = fixture_find_log(f, "xxxx");
        g_assert_nonnull(line);
        /* Cut at 4 KiB with a marker. */
        g_assert_cmpuint(strlen(line->message), ==,
                         ITK_SCRIPT_MAX_LINE_LENGTH + strlen(ITK_SCRIPT_LINE_TRUNCATED));
        g_assert_true(g_str_has_suffix(line->message, ITK_SCRIPT_LINE_TRUNCATED));
        /* A cut KEY=value is dropped rather than wrong, and said so. */
        g_assert_false(json_object_has_member(output, "BIG"));
        g_assert_nonnull(fixture_find_log(f, "output 'BIG' dropped"));
        /* The lines after it are whole. */
        g_assert_cmpstr(member_string(output, "END"), ==, "1");
        g_assert_cmpuint(strlen(member_string(output, "_output")), ==, 10000 + 1 + 5004 + 1 + 6);
}

static void
test_output_capture_bound(void)
{
        g_autoptr(Fixture) f = fixture_new();
        const char *text;

        fixture_start(f, "utility.shell", "{\"command\": \"seq 1 300000; echo TAIL=seen\"}");
        text = member_string(fixture_finish_ok(f), "_output");
        /* The head is kept, up to 1 MiB, and the cut is marked. */
        g_assert_true(g_str_has_prefix(text, "1\n2\n3\n"));
        g_assert_true(g_str_has_suffix(text, ITK_SCRIPT_OUTPUT_TRUNCATED));
        g_assert_cmpuint(strlen(text), ==,
                         ITK_SCRIPT_MAX_OUTPUT + strlen(ITK_SCRIPT_OUTPUT_TRUNCATED));
        /* Outputs come from every line, not from the capture. */
        g_assert_cmpstr(member_string(json_node_get_object(f->output), "TAIL"), ==, "seen");
}

static void
test_output_invalid_utf8(void)
{
        g_autoptr(Fixture) f = fixture_new();
        JsonObject *output;

        fixture_start(f, "utility.shell", "{\"command\": \"printf 'A=\\\\377ok\\\\r\\\\n'\"}");
        output = fixture_finish_ok(f);
        /* Replaced, so the text is valid for D-Bus and JSON; CRLF ends a line. */
        g_assert_true(g_utf8_validate(member_string(output, "_output"), -1, NULL));
        g_assert_cmpstr(member_string(output, "A"), ==, "\357\277\275ok");
}

static void
test_bad_parameters(void)
{
        static const struct {
                const char *type;
                const char *params;
                const char *name;
        } cases[] = {
                { "utility.python", "{}", "'script'" },
                { "utility.python", "{\"script\": 5}", "'script'" },
                { "utility.python", "{\"code\": [\"x\"]}", "'code'" },
                { "utility.python", "{\"script\": \"pass\", \"code\": \"pass\"}", "'code'" },
                { "utility.shell", "{}", "'command'" },
                { "utility.shell", "{\"command\": [\"ls\"]}", "'command'" },
                { "utility.shell", "{\"argv\": \"ls -l\"}", "'argv'" },
                { "utility.shell", "{\"argv\": [\"ls\", 1]}", "'argv'" },
                { "utility.shell", "{\"argv\": []}", "'argv'" },
                { "utility.shell", "{\"command\": \"true\", \"argv\": [\"true\"]}", "'argv'" },
                { "utility.shell", "{\"command\": \"true\", \"env\": \"A=1\"}", "'env'" },
                { "utility.shell", "{\"command\": \"true\", \"env\": [\"A=1\"]}", "'env'" },
                { "utility.shell", "{\"command\": \"true\", \"env\": {\"A=B\": \"1\"}}", "'env'" },
                { "utility.shell", "{\"command\": \"true\", \"cwd\": 5}", "'cwd'" },
        };

        for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(Fixture) f = fixture_new();

                g_test_message("%s %s", cases[i].type, cases[i].params);
                fixture_start(f, cases[i].type, cases[i].params);
                fixture_finish_error(f, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS, cases[i].name);
        }
}

static void
test_registry(void)
{
        static const struct {
                const char *type;
                const char *required;
                gboolean pausable;
        } cases[] = {
                { "utility.sleep", "seconds", TRUE },
                { "utility.log", "message", FALSE },
                { "utility.set_variable", "name", FALSE },
                { "utility.python", "script|code", FALSE },
                { "utility.shell", "command|argv", FALSE },
        };

        for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
                const ItkStepHandler *handler = itk_step_registry_lookup(cases[i].type);

                g_assert_nonnull(handler);
                g_assert_true(itk_step_registry_check_type(cases[i].type, NULL));
                g_assert_cmpint(handler->pausable, ==, cases[i].pausable);
                g_assert_nonnull(handler->required);
                g_assert_cmpstr(handler->required[0], ==, cases[i].required);
                g_assert_null(handler->required[1]);
        }
}

/* --- ItkScript directly ------------------------------------------------------------ */

typedef struct {
        GMainLoop *loop;
        gboolean done;
        gboolean ready;
        GError *error;
} ScriptWait;

static void
script_line_cb(ItkScript *script, ItkScriptStream stream, const char *line, gboolean truncated,
               gpointer user_data)
{
        ScriptWait *wait = user_data;

        g_assert_false(wait->done);
        if (g_str_equal(line, "ready"))
                wait->ready = TRUE;
        g_main_loop_quit(wait->loop);
}

static void
script_done_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ScriptWait *wait = user_data;

        /* The script was dropped: no source object, and no use of it. */
        g_assert_null(source);
        g_assert_false(itk_script_run_finish(NULL, result, &wait->error));
        wait->done = TRUE;
        g_main_loop_quit(wait->loop);
}

static gboolean
script_wait_timeout_cb(gpointer user_data)
{
        g_main_loop_quit(user_data);
        return G_SOURCE_CONTINUE;
}

static void
test_script_finalize_kills(void)
{
        const char *argv[] = { "sh", "-c", "echo ready; exec sleep 1000", NULL };
        ScriptWait wait = { .loop = g_main_loop_new(NULL, FALSE) };
        ItkScript *script = itk_script_new(argv);
        guint tick = g_timeout_add(100, script_wait_timeout_cb, wait.loop);
        gint64 deadline = g_get_monotonic_time() + 10 * G_TIME_SPAN_SECOND;
        GPid pid;

        g_assert_cmpint(itk_script_get_pid(script), ==, 0);
        itk_script_set_line_func(script, script_line_cb, &wait);
        itk_script_run_async(script, NULL, script_done_cb, &wait);
        pid = itk_script_get_pid(script);
        g_assert_cmpint(pid, >, 0);
        while (!wait.ready && g_get_monotonic_time() < deadline)
                g_main_loop_run(wait.loop);
        g_assert_true(wait.ready);
        /* Dropping a running script kills it; the run still completes. */
        g_object_unref(script);
        while (!wait.done && g_get_monotonic_time() < deadline)
                g_main_loop_run(wait.loop);
        g_assert_true(wait.done);
        g_assert_error(wait.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        /* The reap follows the kill, by the run the script left behind. */
        while (!pid_gone(pid) && g_get_monotonic_time() < deadline)
                g_main_loop_run(wait.loop);
        g_assert_true(pid_gone(pid));
        g_source_remove(tick);
        g_clear_error(&wait.error);
        g_main_loop_unref(wait.loop);
}

/* --- the sandbox (DESIGN.md §5) ------------------------------------------------- */

#define SECRET_CREDENTIAL "credential-secret-77d1"
#define SECRET_OTHER_RUN "other-run-secret-20b4"

/* A state directory outside /tmp (the sandbox's own /tmp would hide one
 * there anyway), with a credential store and another run's folder; the
 * step's work dir is this run's folder and the default sandbox hides the
 * state directory, as the daemon sets it up. */
typedef struct {
        char *root;
        char *state;
        char *credentials;
        char *run;
        char *other_secret;
} Confined;

static void
confined_free(Confined *c)
{
        g_autofree char *command = g_strdup_printf("rm -rf '%s'", c->root);

        itk_sandbox_set_default(NULL);
        g_assert_true(g_spawn_command_line_sync(command, NULL, NULL, NULL, NULL));
        g_free(c->root);
        g_free(c->state);
        g_free(c->credentials);
        g_free(c->run);
        g_free(c->other_secret);
        g_free(c);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Confined, confined_free)

/* NULL (test skipped) where bubblewrap cannot work here. */
static Confined *
confined_new(Fixture *f, const char *bwrap, gboolean enabled)
{
        g_autofree char *cwd = g_get_current_dir();
        const char *scratch = g_getenv("ITK_TEST_SCRATCH");
        g_autoptr(GKeyFile) config = g_key_file_new();
        g_autoptr(GError) error = NULL;
        g_autofree char *other_run = NULL;
        Confined *c;

        g_key_file_set_boolean(config, "Sandbox", "Enabled", enabled);
        if (bwrap != NULL)
                g_key_file_set_string(config, "Sandbox", "Bubblewrap", bwrap);
        c = g_new0(Confined, 1);
        c->root = g_build_filename(scratch != NULL ? scratch : cwd, "utility-XXXXXX", NULL);
        g_assert_nonnull(g_mkdtemp(c->root));
        c->state = g_build_filename(c->root, "state", NULL);
        c->credentials = g_build_filename(c->state, "credentials.json", NULL);
        c->run = g_build_filename(c->state, "runs", "aaaa", NULL);
        other_run = g_build_filename(c->state, "runs", "bbbb", NULL);
        c->other_secret = g_build_filename(other_run, "secret.txt", NULL);
        g_assert_cmpint(g_mkdir_with_parents(c->run, 0700), ==, 0);
        g_assert_cmpint(g_mkdir_with_parents(other_run, 0700), ==, 0);
        g_file_set_contents(c->credentials, SECRET_CREDENTIAL, -1, &error);
        g_assert_no_error(error);
        g_file_set_contents(c->other_secret, SECRET_OTHER_RUN, -1, &error);
        g_assert_no_error(error);
        itk_step_context_set_work_dir(f->ctx, c->run);
        itk_sandbox_set_default(itk_sandbox_new_from_config(config, c->state, &error));
        g_assert_no_error(error);
        if (bwrap == NULL && enabled &&
            !itk_sandbox_check((ItkSandbox *)itk_sandbox_get_default(), &error)) {
                g_test_skip(error->message);
                confined_free(c);
                return NULL;
        }
        return c;
}

static void
test_sandbox_python(void)
{
        g_autoptr(Fixture) f = fixture_new();
        g_autoptr(Confined) c = confined_new(f, NULL, TRUE);
        g_autofree char *script = NULL;
        g_autofree char *q_credentials = NULL;
        g_autofree char *q_secret = NULL;
        g_autofree char *written = NULL;
        g_autofree char *written_path = NULL;
        JsonObject *output;

        if (c == NULL)
                return;
        q_credentials = g_shell_quote(c->credentials);
        q_secret = g_shell_quote(c->other_secret);
        script = g_strdup_printf("for p in [%s, %s]:\n"
                                 "    try:\n"
                                 "        print('READ', open(p).read())\n"
                                 "    except OSError:\n"
                                 "        print('DENIED')\n"
                                 "Path('mine.txt').write_text('mine')\n"
                                 "set_variable('through_fd3', 'yes')\n",
                                 q_credentials, q_secret);
        fixture_start_text(f, "utility.python", "script", script);
        output = fixture_finish_ok(f);
        g_assert_null(strstr(member_string(output, "_output"), "READ"));
        g_assert_null(fixture_find_log(f, SECRET_CREDENTIAL));
        g_assert_null(fixture_find_log(f, SECRET_OTHER_RUN));
        g_assert_nonnull(strstr(member_string(output, "_output"), "DENIED\nDENIED"));
        /* Its own run folder is its cwd and writable. */
        written_path = g_build_filename(c->run, "mine.txt", NULL);
        g_assert_true(g_file_get_contents(written_path, &written, NULL, NULL));
        g_assert_cmpstr(written, ==, "mine");
        /* The side channel (fd 3) crosses the sandbox. */
        g_assert_cmpstr(json_node_get_string(json_object_get_member(f->variables, "through_fd3")),
                        ==, "yes");
}

static void
test_sandbox_shell(void)
{
        g_autoptr(Fixture) f = fixture_new();
        g_autoptr(Confined) c = confined_new(f, NULL, TRUE);
        g_autoptr(GSocket) listener = NULL;
        g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
        g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, 0);
        g_autoptr(GSocketAddress) bound = NULL;
        g_autoptr(GSocket) accepted = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *command = NULL;
        JsonObject *output;

        if (c == NULL)
                return;
        listener = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                &error);
        g_assert_no_error(error);
        g_assert_true(g_socket_bind(listener, address, TRUE, &error));
        g_assert_true(g_socket_listen(listener, &error));
        bound = g_socket_get_local_address(listener, &error);
        g_assert_no_error(error);
        command = g_strdup_printf(
                "grep -r secret '%s' && echo LEAKED;"
                "cat '%s' || echo DENIED;"
                "echo mine > mine.txt && echo WROTE;"
                "python3 -c \"import socket; socket.create_connection(('127.0.0.1', %u)); "
                "print('CONNECTED')\"",
                c->state, c->other_secret,
                g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound)));
        fixture_start_text(f, "utility.shell", "command", command);
        output = fixture_finish_ok(f);
        g_assert_null(fixture_find_log(f, "LEAKED"));
        g_assert_null(fixture_find_log(f, SECRET_CREDENTIAL));
        g_assert_nonnull(fixture_find_log(f, "DENIED"));
        g_assert_nonnull(fixture_find_log(f, "WROTE"));
        /* The network is kept: gateways are reached from scripts. */
        g_assert_nonnull(strstr(member_string(output, "_output"), "CONNECTED"));
        accepted = g_socket_accept(listener, NULL, &error);
        g_assert_no_error(error);
}

/* Live processes whose command line holds @marker. */
static guint
count_marked_processes(const char *marker)
{
        g_autoptr(GDir) dir = g_dir_open("/proc", 0, NULL);
        const char *name;
        guint n = 0;

        while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
                g_autofree char *path = NULL;
                g_autofree char *cmdline = NULL;
                gsize len;

                if (!g_ascii_isdigit(name[0]))
                        continue;
                path = g_build_filename("/proc", name, "cmdline", NULL);
                if (!g_file_get_contents(path, &cmdline, &len, NULL) || len == 0)
                        continue;
                for (gsize i = 0; i + 1 < len; i++) {
                        if (cmdline[i] == '\0')
                                cmdline[i] = ' ';
                }
                if (strstr(cmdline, marker) != NULL &&
                    !process_is_dead((GPid)g_ascii_strtoll(name, NULL, 10)))
                        n++;
        }
        return n;
}

static void
test_sandbox_cancel_kills_all(void)
{
        g_autoptr(Fixture) f = fixture_new();
        g_autoptr(Confined) c = confined_new(f, NULL, TRUE);
        g_autofree char *marker = g_strdup_printf("1000.%u", g_random_int_range(1, 999999));
        g_autofree char *command = NULL;
        g_autofree char *pids_path = NULL;
        g_autofree char *pids = NULL;
        gint64 deadline;

        if (c == NULL)
                return;
        /* A child in its own session and a double-forked orphan; their pids
         * (in the sandbox's namespace) recorded in the run folder. */
        command = g_strdup_printf("setsid sh -c 'exec sleep %s' & echo $! >> pids\n"
                                  "sh -c 'sleep %s & echo $! >> pids'\n"
                                  "echo READY\n"
                                  "wait\n",
                                  marker, marker);
        fixture_start_text(f, "utility.shell", "command", command);
        fixture_wait_for_log(f, "READY");
        pids_path = g_build_filename(c->run, "pids", NULL);
        g_assert_true(g_file_get_contents(pids_path, &pids, NULL, NULL));
        deadline = g_get_monotonic_time() + 5 * G_TIME_SPAN_SECOND;
        while (count_marked_processes(marker) < 2 && g_get_monotonic_time() < deadline)
                g_usleep(10 * G_TIME_SPAN_MILLISECOND);
        g_assert_cmpuint(count_marked_processes(marker), ==, 2);

        fixture_cancel_quickly(f);
        /* The kernel empties the PID namespace once bwrap died; bounded. */
        deadline = g_get_monotonic_time() + 5 * G_TIME_SPAN_SECOND;
        while (count_marked_processes(marker) > 0 && g_get_monotonic_time() < deadline)
                g_usleep(10 * G_TIME_SPAN_MILLISECOND);
        if (count_marked_processes(marker) > 0)
                g_error("processes of a cancelled script survived (pids inside: %s)", pids);
}

static void
test_sandbox_missing_bwrap(void)
{
        g_autoptr(Fixture) f = fixture_new();
        g_autoptr(Confined) c = confined_new(f, "/nonexistent/bwrap-step", TRUE);

        /* Never unconfined because confinement is impossible. */
        fixture_start_text(f, "utility.shell", "command", "echo RAN");
        fixture_finish_error(f, ITK_ERROR, ITK_ERROR_FAILED, "bubblewrap");
        g_assert_nonnull(strstr(f->error->message, "Enabled=false"));
        g_assert_null(fixture_find_log(f, "RAN"));
}

static void
test_sandbox_disabled(void)
{
        g_autoptr(Fixture) f = fixture_new();
        g_autoptr(Confined) c = confined_new(f, "/nonexistent/bwrap-disabled", FALSE);
        g_autofree char *command = g_strdup_printf("cat '%s'", c->credentials);

        /* The admin's opt-out: unconfined, as the journal warned at start. */
        fixture_start_text(f, "utility.shell", "command", command);
        fixture_finish_ok(f);
        g_assert_nonnull(fixture_find_log(f, SECRET_CREDENTIAL));
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/step-utility/registry", test_registry);
        g_test_add_func("/step-utility/sleep/completes", test_sleep);
        g_test_add_func("/step-utility/sleep/text", test_sleep_text);
        g_test_add_func("/step-utility/sleep/pausable", test_sleep_pausable);
        g_test_add_func("/step-utility/sleep/cancel", test_sleep_cancel);
        g_test_add_func("/step-utility/sleep/bad-seconds", test_sleep_bad_seconds);
        g_test_add_func("/step-utility/sleep/at-cap", test_sleep_at_cap);
        g_test_add_func("/step-utility/log/levels", test_log_levels);
        g_test_add_func("/step-utility/log/number", test_log_number);
        g_test_add_func("/step-utility/log/bad", test_log_bad);
        g_test_add_func("/step-utility/set-variable/set", test_set_variable);
        g_test_add_func("/step-utility/set-variable/bad", test_set_variable_bad);
        g_test_add_func("/step-utility/python/outputs", test_python_outputs);
        g_test_add_func("/step-utility/python/code-synonym", test_python_code_synonym);
        g_test_add_func("/step-utility/python/variables", test_python_variables);
        g_test_add_func("/step-utility/python/variable-arrives-live",
                        test_python_variable_arrives_live);
        g_test_add_func("/step-utility/python/namespace", test_python_namespace);
        g_test_add_func("/step-utility/python/exception", test_python_exception);
        g_test_add_func("/step-utility/python/syntax-error", test_python_syntax_error);
        g_test_add_func("/step-utility/python/exit-status", test_python_exit_status);
        g_test_add_func("/step-utility/python/no-interpreter", test_python_no_interpreter);
        g_test_add_func("/step-utility/python/stderr-live", test_python_stderr_live);
        g_test_add_func("/step-utility/python/cancel-busy", test_python_cancel_busy);
        g_test_add_func("/step-utility/shell/cancel-group", test_shell_cancel_group);
        g_test_add_func("/step-utility/shell/cancel-escaped", test_shell_cancel_escaped_grandchild);
        g_test_add_func("/step-utility/shell/argv-env-cwd", test_shell_argv_env_cwd);
        g_test_add_func("/step-utility/shell/absolute-cwd", test_shell_absolute_cwd);
        g_test_add_func("/step-utility/shell/failure", test_shell_failure);
        g_test_add_func("/step-utility/shell/no-such-program", test_shell_no_such_program);
        g_test_add_func("/step-utility/output/line-bound", test_output_line_bound);
        g_test_add_func("/step-utility/output/long-line", test_output_long_line);
        g_test_add_func("/step-utility/output/capture-bound", test_output_capture_bound);
        g_test_add_func("/step-utility/output/invalid-utf8", test_output_invalid_utf8);
        g_test_add_func("/step-utility/bad-parameters", test_bad_parameters);
        g_test_add_func("/step-utility/script/finalize-kills", test_script_finalize_kills);
        g_test_add_func("/step-utility/sandbox/python", test_sandbox_python);
        g_test_add_func("/step-utility/sandbox/shell", test_sandbox_shell);
        g_test_add_func("/step-utility/sandbox/cancel-kills-all", test_sandbox_cancel_kills_all);
        g_test_add_func("/step-utility/sandbox/missing-bwrap", test_sandbox_missing_bwrap);
        g_test_add_func("/step-utility/sandbox/disabled", test_sandbox_disabled);

        return g_test_run();
}
