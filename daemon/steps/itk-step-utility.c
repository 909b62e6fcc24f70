/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <math.h>
#include <string.h>

#include "itk-error.h"
#include "itk-sandbox.h"
#include "itk-script.h"
#include "itk-step.h"
#include "itk-value.h"

/* --- parameters ------------------------------------------------------------ */

static const char *
itk_utility_describe_node(JsonNode *node)
{
        switch (JSON_NODE_TYPE(node)) {
        case JSON_NODE_OBJECT:
                return "a mapping";
        case JSON_NODE_ARRAY:
                return "a list";
        case JSON_NODE_NULL:
                return "null";
        case JSON_NODE_VALUE:
                break;
        }
        switch (json_node_get_value_type(node)) {
        case G_TYPE_BOOLEAN:
                return "a boolean";
        case G_TYPE_STRING:
                return "text";
        default:
                return "a number";
        }
}

static gboolean
itk_utility_node_is_string(JsonNode *node)
{
        return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING;
}

static gboolean
itk_utility_node_is_number(JsonNode *node)
{
        GType type;

        if (!JSON_NODE_HOLDS_VALUE(node))
                return FALSE;
        type = json_node_get_value_type(node);
        return type == G_TYPE_INT64 || type == G_TYPE_DOUBLE;
}

/* A text parameter: NULL with @error when present with another type, or
 * missing and @required. Missing and optional: NULL without error. */
static const char *
itk_utility_get_string(JsonObject *params, const char *name, gboolean required, GError **error)
{
        JsonNode *node = json_object_get_member(params, name);

        if (node == NULL) {
                if (required)
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                                    "parameter '%s' is required", name);
                return NULL;
        }
        if (!itk_utility_node_is_string(node)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                            "parameter '%s' must be text, not %s", name,
                            itk_utility_describe_node(node));
                return NULL;
        }
        return json_node_get_string(node);
}

/* Letters, digits and '_', as references ({{ variable.x }}) can name them. */
static gboolean
itk_utility_is_variable_name(const char *name)
{
        if (name == NULL || *name == '\0')
                return FALSE;
        for (const char *p = name; *p != '\0'; p++) {
                if (!g_ascii_isalnum(*p) && *p != '_')
                        return FALSE;
        }
        return TRUE;
}

static gboolean
itk_utility_has_either(JsonObject *params, const char *a, const char *b, GError **error)
{
        gboolean has_a = json_object_has_member(params, a);
        gboolean has_b = json_object_has_member(params, b);

        if (has_a && has_b) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                            "parameters '%s' and '%s' exclude each other", a, b);
                return FALSE;
        }
        if (!has_a && !has_b) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                            "parameter '%s' or '%s' is required", a, b);
                return FALSE;
        }
        return TRUE;
}

static JsonNode *
itk_utility_node_new_number(double value)
{
        JsonNode *node = json_node_alloc();

        /* Whole numbers stay integers: `seconds: 2` reports 2, not 2.0. */
        if (value == floor(value) && fabs(value) < 9007199254740992.0)
                json_node_init_int(node, (gint64)value);
        else
                json_node_init_double(node, value);
        return node;
}

/* Both complete @task and drop the handler's reference. Called from the
 * handler's start, GTask still completes from a later main-loop iteration. */
static void
itk_utility_return_error(GTask *task, GError *error)
{
        g_task_return_error(task, error);
        g_object_unref(task);
}

static void
itk_utility_return_object(GTask *task, JsonObject *object)
{
        JsonNode *node = json_node_alloc();

        json_node_init_object(node, object);
        g_task_return_pointer(task, node, (GDestroyNotify)json_node_unref);
        g_object_unref(task);
}

/* --- utility.sleep ----------------------------------------------------------- */

static gboolean
itk_utility_parse_seconds(JsonObject *params, double *seconds, GError **error)
{
        JsonNode *node = json_object_get_member(params, "seconds");
        double value;

        if (node == NULL) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                            "parameter 'seconds' is required");
                return FALSE;
        }
        if (itk_utility_node_is_number(node)) {
                value = json_node_get_double(node);
        } else if (itk_utility_node_is_string(node)) {
                g_autofree char *text = g_strstrip(g_strdup(json_node_get_string(node)));
                char *end = NULL;

                value = g_ascii_strtod(text, &end);
                if (*text == '\0' || end == NULL || *end != '\0') {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                                    "parameter 'seconds' must be a number, not '%s'",
                                    json_node_get_string(node));
                        return FALSE;
                }
        } else {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                            "parameter 'seconds' must be a number, not %s",
                            itk_utility_describe_node(node));
                return FALSE;
        }
        /* The documented cap also keeps the timer's deadline from overflowing. */
        if (!isfinite(value) || value < 0 || value > ITK_DURATION_MAX_SECONDS) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                            "parameter 'seconds' must be a number of seconds from 0 to at most "
                            "%d (30 days), not %g",
                            ITK_DURATION_MAX_SECONDS, value);
                return FALSE;
        }
        *seconds = value;
        return TRUE;
}

typedef struct {
        GTask *task;
        double seconds;
} ItkUtilitySleep;

static void
itk_utility_sleep_done_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkUtilitySleep *data = user_data;
        GTask *task = data->task;
        ItkStepContext *ctx = g_task_get_task_data(task);
        g_autoptr(GError) error = NULL;
        JsonObject *output;
        double seconds = data->seconds;

        g_free(data);
        if (!itk_step_context_sleep_finish(ctx, result, &error)) {
                itk_utility_return_error(task, g_steal_pointer(&error));
                return;
        }
        output = json_object_new();
        json_object_set_member(output, "slept", itk_utility_node_new_number(seconds));
        itk_utility_return_object(task, output);
}

static void
itk_utility_sleep_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                      GAsyncReadyCallback callback, gpointer user_data)
{
        GTask *task = itk_step_task_new(ctx, cancellable, callback, user_data);
        g_autoptr(GError) error = NULL;
        ItkUtilitySleep *data;
        double seconds;

        g_task_set_source_tag(task, itk_utility_sleep_run);
        if (!itk_utility_parse_seconds(params, &seconds, &error)) {
                itk_utility_return_error(task, g_steal_pointer(&error));
                return;
        }
        data = g_new0(ItkUtilitySleep, 1);
        data->task = task;
        data->seconds = seconds;
        /* Only the context's timers: Pause freezes them. */
        itk_step_context_sleep_async(ctx, (guint64)llround(seconds * 1000.0), cancellable,
                                     itk_utility_sleep_done_cb, data);
}

/* --- utility.log ------------------------------------------------------------- */

static JsonNode *
itk_utility_log_sync(ItkStepContext *ctx, JsonObject *params, GError **error_out)
{
        static const struct {
                const char *name;
                ItkLogPriority priority;
        } levels[] = {
                { "debug", ITK_LOG_DEBUG },
                { "info", ITK_LOG_INFO },
                { "warning", ITK_LOG_WARNING },
                { "error", ITK_LOG_ERR },
        };
        g_autoptr(GError) error = NULL;
        g_autofree char *message = NULL;
        const char *level;
        JsonNode *node;
        JsonObject *output;
        guint i;

        node = json_object_get_member(params, "message");
        if (node == NULL) {
                g_propagate_error(error_out, g_error_new(ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                                                         "parameter 'message' is required"));
                return NULL;
        }
        if (JSON_NODE_HOLDS_OBJECT(node) || JSON_NODE_HOLDS_ARRAY(node)) {
                g_propagate_error(error_out, g_error_new(ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                                                         "parameter 'message' must be text, not %s",
                                                         itk_utility_describe_node(node)));
                return NULL;
        }
        /* A message that is exactly one reference may be a number or a boolean. */
        message = itk_value_to_text(node);

        level = itk_utility_get_string(params, "level", FALSE, &error);
        if (error != NULL) {
                g_propagate_error(error_out, g_steal_pointer(&error));
                return NULL;
        }
        if (level == NULL)
                level = "info";
        for (i = 0; i < G_N_ELEMENTS(levels); i++) {
                if (g_ascii_strcasecmp(level, levels[i].name) == 0)
                        break;
        }
        if (i == G_N_ELEMENTS(levels)) {
                g_propagate_error(error_out,
                                  g_error_new(ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                                              "parameter 'level' must be one of debug, info, "
                                              "warning, error, not '%s'",
                                              level));
                return NULL;
        }
        itk_step_context_log(ctx, levels[i].priority, message);
        output = json_object_new();
        json_object_set_boolean_member(output, "logged", TRUE);
        json_object_set_string_member(output, "level", levels[i].name);
        return json_node_init_object(json_node_alloc(), output);
}

/* The GTask form of itk_utility_log_sync(), for callers that want an operation. */
static void
itk_utility_log_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                    GAsyncReadyCallback callback, gpointer user_data)
{
        g_autoptr(GTask) task = itk_step_task_new(ctx, cancellable, callback, user_data);
        GError *error = NULL;
        JsonNode *output = itk_utility_log_sync(ctx, params, &error);

        if (output != NULL)
                g_task_return_pointer(task, output, (GDestroyNotify)json_node_unref);
        else
                g_task_return_error(task, error);
}

/* --- utility.set_variable ---------------------------------------------------- */

static JsonNode *
itk_utility_set_variable_sync(ItkStepContext *ctx, JsonObject *params, GError **error_out)
{
        g_autoptr(GError) error = NULL;
        const char *name;
        JsonNode *value;
        JsonObject *output;

        name = itk_utility_get_string(params, "name", TRUE, &error);
        if (name == NULL) {
                g_propagate_error(error_out, g_steal_pointer(&error));
                return NULL;
        }
        if (!itk_utility_is_variable_name(name)) {
                g_propagate_error(error_out,
                                  g_error_new(ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                                              "parameter 'name' must be a variable name (letters, "
                                              "digits and '_'), not '%s'",
                                              name));
                return NULL;
        }
        value = json_object_get_member(params, "value");
        if (value == NULL)
                value = json_node_new(JSON_NODE_NULL);
        else
                value = json_node_copy(value);
        itk_step_context_set_variable(ctx, name, json_node_copy(value));
        output = json_object_new();
        json_object_set_string_member(output, "variable", name);
        json_object_set_member(output, "value", value);
        return json_node_init_object(json_node_alloc(), output);
}

/* The GTask form of itk_utility_set_variable_sync(), for callers that want an operation. */
static void
itk_utility_set_variable_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data)
{
        g_autoptr(GTask) task = itk_step_task_new(ctx, cancellable, callback, user_data);
        GError *error = NULL;
        JsonNode *output = itk_utility_set_variable_sync(ctx, params, &error);

        if (output != NULL)
                g_task_return_pointer(task, output, (GDestroyNotify)json_node_unref);
        else
                g_task_return_error(task, error);
}

/* --- scripts: utility.python and utility.shell --------------------------------- */

typedef struct {
        GTask *task;
        ItkStepContext *ctx; /* the task's data */
        ItkScript *script;
        const char *what; /* "python script", "command": for messages */
        JsonObject *outputs;
        guint lines_logged;
} ItkUtilityScript;

static void
itk_utility_script_free(ItkUtilityScript *step)
{
        g_clear_object(&step->script);
        g_clear_pointer(&step->outputs, json_object_unref);
        g_free(step);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkUtilityScript, itk_utility_script_free)

/* KEY=value, KEY matching [A-Za-z_][A-Za-z0-9_]*: the length of KEY, or 0. */
static gsize
itk_utility_output_key_length(const char *line)
{
        gsize i = 0;

        if (!g_ascii_isalpha(line[0]) && line[0] != '_')
                return 0;
        while (g_ascii_isalnum(line[i]) || line[i] == '_')
                i++;
        return line[i] == '=' ? i : 0;
}

static void
itk_utility_script_parse_output(ItkUtilityScript *step, const char *line, gboolean truncated)
{
        gsize key_length = itk_utility_output_key_length(line);
        g_autofree char *key = NULL;
        g_autofree char *value = NULL;

        if (key_length == 0)
                return;
        key = g_strndup(line, key_length);
        if (truncated) {
                /* A cut value would be silently wrong; a missing one is reported
                 * where it is used. */
                json_object_remove_member(step->outputs, key);
                itk_step_context_logf(step->ctx, ITK_LOG_WARNING,
                                      "output '%s' dropped: its line is longer than %u bytes", key,
                                      (guint)ITK_SCRIPT_MAX_LINE_LENGTH);
                return;
        }
        value = g_strstrip(g_strdup(line + key_length + 1));
        json_object_set_string_member(step->outputs, key, value);
}

static void
itk_utility_script_line_cb(ItkScript *script, ItkScriptStream stream, const char *line,
                           gboolean truncated, gpointer user_data)
{
        ItkUtilityScript *step = user_data;

        if (stream == ITK_SCRIPT_STREAM_STDOUT)
                itk_utility_script_parse_output(step, line, truncated);

        /* Lines of script output sent to the execution log per step; the rest
         * is still captured for `_output` and KEY=value outputs, but not
         * logged: a bound on one step's share of the history, well above what
         * scripts print (the benchmark's chatty script prints 200,000). */
        guint max_logged = itk_step_context_get_script_log_lines(step->ctx);

        if (step->lines_logged < max_logged) {
                itk_step_context_log(
                        step->ctx,
                        stream == ITK_SCRIPT_STREAM_STDOUT ? ITK_LOG_INFO : ITK_LOG_WARNING, line);
                step->lines_logged++;
        } else if (step->lines_logged == max_logged) {
                itk_step_context_logf(step->ctx, ITK_LOG_WARNING,
                                      "output truncated: more than %u lines, the rest is not "
                                      "logged",
                                      max_logged);
                step->lines_logged++;
        }
}

/* One read of the script's output: its lines go to the store in one
 * transaction. */
static void
itk_utility_script_batch_cb(ItkScript *script, gboolean begin, gpointer user_data)
{
        ItkUtilityScript *step = user_data;

        itk_step_context_log_batch(step->ctx, begin);
}

/* One JSON document per line from the python wrapper's set_variable(). */
static void
itk_utility_script_side_channel_cb(ItkScript *script, ItkScriptStream stream, const char *line,
                                   gboolean truncated, gpointer user_data)
{
        ItkUtilityScript *step = user_data;
        g_autoptr(JsonParser) parser = NULL;
        g_autoptr(GError) error = NULL;
        JsonObject *object;
        JsonNode *root;
        JsonNode *name_node;
        JsonNode *value;
        const char *name;

        if (truncated) {
                itk_step_context_logf(step->ctx, ITK_LOG_WARNING,
                                      "set_variable() ignored: the value is larger than %u bytes",
                                      (guint)ITK_SCRIPT_MAX_SIDE_LINE_LENGTH);
                return;
        }
        parser = json_parser_new();
        if (!json_parser_load_from_data(parser, line, -1, &error)) {
                itk_step_context_logf(step->ctx, ITK_LOG_WARNING,
                                      "set_variable() ignored: invalid JSON: %s", error->message);
                return;
        }
        root = json_parser_get_root(parser);
        object = root != NULL && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
        name_node = object != NULL ? json_object_get_member(object, "name") : NULL;
        value = object != NULL ? json_object_get_member(object, "value") : NULL;
        if (value == NULL || name_node == NULL || !itk_utility_node_is_string(name_node)) {
                itk_step_context_log(step->ctx, ITK_LOG_WARNING,
                                     "set_variable() ignored: malformed request");
                return;
        }
        name = json_node_get_string(name_node);
        if (!itk_utility_is_variable_name(name)) {
                itk_step_context_logf(step->ctx, ITK_LOG_WARNING,
                                      "set_variable() ignored: '%s' is not a variable name "
                                      "(letters, digits and '_')",
                                      name);
                return;
        }
        itk_step_context_set_variable(step->ctx, name, json_node_copy(value));
        itk_step_context_logf(step->ctx, ITK_LOG_DEBUG, "variable '%s' set", name);
}

static void
itk_utility_script_done_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(ItkUtilityScript) step = user_data;
        GTask *task = g_steal_pointer(&step->task);
        g_autoptr(GError) error = NULL;
        g_autofree char *tail = NULL;
        g_autofree char *failure = NULL;
        JsonObject *output;
        int status;
        int sig;

        if (!itk_script_run_finish(step->script, result, &error)) {
                /* Cancellation stays as it is: the execution decides what it meant. */
                if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
                        GError *failed = g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                                     "could not start the %s: %s", step->what,
                                                     error->message);
                        g_clear_error(&error);
                        error = failed;
                }
                itk_utility_return_error(task, g_steal_pointer(&error));
                return;
        }

        status = itk_script_get_exit_status(step->script);
        sig = itk_script_get_term_signal(step->script);
        tail = itk_script_dup_stderr_tail(step->script);
        if (sig != 0)
                failure = g_strdup_printf("%s killed by signal %d (%s)", step->what, sig,
                                          g_strsignal(sig));
        else if (status != 0)
                failure = g_strdup_printf("%s exited with status %d", step->what, status);
        if (failure != NULL) {
                itk_utility_return_error(task, g_error_new(ITK_ERROR, ITK_ERROR_FAILED, "%s%s%s",
                                                           failure, tail != NULL ? ": " : "",
                                                           tail != NULL ? tail : ""));
                return;
        }

        output = g_steal_pointer(&step->outputs);
        /* Set last, so that a KEY=value line cannot replace them. */
        json_object_set_string_member(output, "_output", itk_script_get_output(step->script));
        json_object_set_int_member(output, "exit_code", status);
        itk_utility_return_object(task, output);
}

static void
itk_utility_script_run(ItkUtilityScript *step)
{
        itk_script_run_async(step->script, g_task_get_cancellable(step->task),
                             itk_utility_script_done_cb, step);
        if (itk_script_get_pid(step->script) > 0)
                itk_step_context_logf(step->ctx, ITK_LOG_DEBUG, "started the %s (pid %d)",
                                      step->what, (int)itk_script_get_pid(step->script));
}

static void
itk_utility_script_checked_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkUtilityScript *step = user_data;
        g_autoptr(GError) error = NULL;

        if (!itk_sandbox_check_finish(result, &error)) {
                GTask *task = g_steal_pointer(&step->task);

                /* The sandbox's message names the package and the opt-out. */
                if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
                        GError *failed = g_error_new(ITK_ERROR, ITK_ERROR_FAILED,
                                                     "could not start the %s: %s", step->what,
                                                     error->message);
                        g_clear_error(&error);
                        error = failed;
                }
                itk_utility_script_free(step);
                itk_utility_return_error(task, g_steal_pointer(&error));
                return;
        }
        itk_utility_script_run(step);
}

/* Takes @script; completes @task. Confined by the daemon's sandbox when
 * one is set (DESIGN.md §5): the run's folder is the only writable place. */
static void
itk_utility_script_start(GTask *task, ItkScript *script, const char *what, gboolean side_channel)
{
        ItkUtilityScript *step = g_new0(ItkUtilityScript, 1);
        const ItkSandbox *template = itk_sandbox_get_default();
        g_autoptr(ItkSandbox) sandbox = NULL;

        step->task = task;
        step->ctx = g_task_get_task_data(task);
        step->script = script;
        step->what = what;
        step->outputs = json_object_new();
        itk_script_set_line_func(script, itk_utility_script_line_cb, step);
        itk_script_set_batch_func(script, itk_utility_script_batch_cb, step);
        if (side_channel)
                itk_script_set_side_channel_func(script, itk_utility_script_side_channel_cb, step);
        if (template == NULL || !itk_sandbox_get_enabled(template)) {
                itk_utility_script_run(step);
                return;
        }
        sandbox = itk_sandbox_copy(template);
        itk_sandbox_bind(sandbox, itk_step_context_get_work_dir(step->ctx), TRUE);
        itk_script_set_sandbox(script, sandbox);
        /* Cached after the daemon's probe at start; never blocks the loop. */
        itk_sandbox_check_async(sandbox, g_task_get_cancellable(task),
                                itk_utility_script_checked_cb, step);
}

/* Runs inside the interpreter as `python3 -u -c WRAPPER`: reads the script and
 * the variables as one JSON document from stdin, then gives the script the
 * namespace of the old tool. set_variable() writes one JSON line to fd 3. */
static const char itk_utility_python_wrapper[] =
        "import json, os, sys, traceback\n"
        "def _itk_main():\n"
        "    doc = json.loads(sys.stdin.buffer.read().decode('utf-8'))\n"
        "    null = os.open(os.devnull, os.O_RDONLY)\n"
        "    os.dup2(null, 0)\n"
        "    os.close(null)\n"
        "    sys.stdin = open(0, 'r', closefd=False)\n"
        "    try:\n"
        "        os.set_inheritable(3, False)\n"
        "        side = os.fdopen(3, 'w', encoding='utf-8', buffering=1)\n"
        "    except OSError:\n"
        "        side = None\n"
        "    variables = dict(doc.get('variables') or {})\n"
        "    def set_variable(name, value):\n"
        "        line = json.dumps({'name': name, 'value': value}, default=str,\n"
        "                          allow_nan=False)\n"
        "        variables[name] = value\n"
        "        if side is not None:\n"
        "            side.write(line + '\\n')\n"
        "            side.flush()\n"
        "    def get_variable(name, default=None):\n"
        "        return variables.get(name, default)\n"
        "    import pathlib, subprocess, time, zipfile\n"
        "    import xml.etree.ElementTree as ET\n"
        "    namespace = {'__name__': '__main__', 'Path': pathlib.Path, 'zipfile': zipfile,\n"
        "                 'ET': ET, 'json': json, 'os': os, 'subprocess': subprocess,\n"
        "                 'time': time, 'set_variable': set_variable,\n"
        "                 'get_variable': get_variable}\n"
        "    try:\n"
        "        exec(compile(doc['script'], '<playbook script>', 'exec'), namespace)\n"
        "    except SystemExit:\n"
        "        raise\n"
        "    except BaseException as e:\n"
        "        tb = e.__traceback__.tb_next if e.__traceback__ is not None else None\n"
        "        traceback.print_exception(type(e), e, tb)\n"
        "        sys.exit(1)\n"
        "_itk_main()\n";

static void
itk_utility_python_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                       GAsyncReadyCallback callback, gpointer user_data)
{
        GTask *task = itk_step_task_new(ctx, cancellable, callback, user_data);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) doc = NULL;
        g_autoptr(JsonNode) root = NULL;
        g_autoptr(GBytes) input = NULL;
        JsonObject *variables = itk_step_context_get_variables(ctx);
        const char *argv[] = { itk_step_context_get_python(ctx), "-u", "-c",
                               itk_utility_python_wrapper, NULL };
        const char *name;
        const char *script_text;
        ItkScript *script;
        char *json;
        gsize json_len;

        g_task_set_source_tag(task, itk_utility_python_run);
        if (!itk_utility_has_either(params, "script", "code", &error)) {
                itk_utility_return_error(task, g_steal_pointer(&error));
                return;
        }
        name = json_object_has_member(params, "script") ? "script" : "code";
        script_text = itk_utility_get_string(params, name, TRUE, &error);
        if (script_text == NULL) {
                itk_utility_return_error(task, g_steal_pointer(&error));
                return;
        }

        doc = json_object_new();
        json_object_set_string_member(doc, "script", script_text);
        json_object_set_object_member(doc, "variables",
                                      variables != NULL ? json_object_ref(variables)
                                                        : json_object_new());
        root = json_node_init_object(json_node_alloc(), doc);
        json = json_to_string(root, FALSE);
        json_len = strlen(json);
        input = g_bytes_new_take(json, json_len);

        script = itk_script_new(argv);
        itk_script_set_cwd(script, itk_step_context_get_work_dir(ctx));
        itk_script_set_stdin(script, input);
        /* Whatever the daemon's locale, the output is read as UTF-8. */
        itk_script_setenv(script, "PYTHONIOENCODING", "utf-8");
        itk_utility_script_start(task, script, "python script", TRUE);
}

static gboolean
itk_utility_shell_setup(ItkStepContext *ctx, JsonObject *params, ItkScript **script_out,
                        GError **error)
{
        g_autoptr(ItkScript) script = NULL;
        g_autofree char *cwd = NULL;
        const char *shell_command = NULL;
        const char *cwd_param;
        JsonNode *env;

        if (!itk_utility_has_either(params, "command", "argv", error))
                return FALSE;
        if (json_object_has_member(params, "command")) {
                const char *command = itk_utility_get_string(params, "command", TRUE, error);
                /* The command travels in the environment, not in argv: a
                 * rendered command may hold a secret, and /proc/PID/cmdline is
                 * world-readable while /proc/PID/environ is not. */
                const char *argv[] = { "/bin/sh", "-c",
                                       "c=$ITK_SHELL_COMMAND; unset ITK_SHELL_COMMAND; eval \"$c\"",
                                       NULL };

                if (command == NULL)
                        return FALSE;
                script = itk_script_new(argv);
                shell_command = command;
        } else {
                JsonNode *node = json_object_get_member(params, "argv");
                JsonArray *array = JSON_NODE_HOLDS_ARRAY(node) ? json_node_get_array(node) : NULL;
                g_autoptr(GPtrArray) argv = g_ptr_array_new();

                for (guint i = 0; array != NULL && i < json_array_get_length(array); i++) {
                        JsonNode *element = json_array_get_element(array, i);
                        if (!itk_utility_node_is_string(element)) {
                                array = NULL;
                                break;
                        }
                        g_ptr_array_add(argv, (gpointer)json_node_get_string(element));
                }
                if (array == NULL || argv->len == 0 || *(const char *)argv->pdata[0] == '\0') {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                                    "parameter 'argv' must be a non-empty list of text");
                        return FALSE;
                }
                g_ptr_array_add(argv, NULL);
                script = itk_script_new((const char *const *)argv->pdata);
        }

        env = json_object_get_member(params, "env");
        if (env != NULL && !JSON_NODE_HOLDS_NULL(env)) {
                JsonObject *object = JSON_NODE_HOLDS_OBJECT(env) ? json_node_get_object(env) : NULL;
                g_autoptr(GList) names = NULL;

                if (object == NULL) {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                                    "parameter 'env' must be a mapping, not %s",
                                    itk_utility_describe_node(env));
                        return FALSE;
                }
                names = json_object_get_members(object);
                for (GList *l = names; l != NULL; l = l->next) {
                        const char *name = l->data;
                        g_autofree char *value = NULL;

                        if (*name == '\0' || strchr(name, '=') != NULL) {
                                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                                            "parameter 'env': '%s' is not a variable name", name);
                                return FALSE;
                        }
                        value = itk_value_to_text(json_object_get_member(object, name));
                        itk_script_setenv(script, name, value);
                }
        }

        cwd_param = itk_utility_get_string(params, "cwd", FALSE, error);
        if (cwd_param == NULL && json_object_has_member(params, "cwd"))
                return FALSE;
        /* Relative to the work dir, where the step runs by default. */
        if (cwd_param == NULL || *cwd_param == '\0')
                cwd = g_strdup(itk_step_context_get_work_dir(ctx));
        else if (g_path_is_absolute(cwd_param))
                cwd = g_strdup(cwd_param);
        else
                cwd = g_build_filename(itk_step_context_get_work_dir(ctx), cwd_param, NULL);
        itk_script_set_cwd(script, cwd);

        /* Last, so an `env` entry cannot replace it. */
        if (shell_command != NULL)
                itk_script_setenv(script, "ITK_SHELL_COMMAND", shell_command);
        *script_out = g_steal_pointer(&script);
        return TRUE;
}

static void
itk_utility_shell_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                      GAsyncReadyCallback callback, gpointer user_data)
{
        GTask *task = itk_step_task_new(ctx, cancellable, callback, user_data);
        g_autoptr(GError) error = NULL;
        ItkScript *script = NULL;

        g_task_set_source_tag(task, itk_utility_shell_run);
        if (!itk_utility_shell_setup(ctx, params, &script, &error)) {
                itk_utility_return_error(task, g_steal_pointer(&error));
                return;
        }
        itk_utility_script_start(task, script, "command", FALSE);
}

/* --- registration -------------------------------------------------------------- */

static const char *const sleep_required[] = { "seconds", NULL };
static const char *const log_required[] = { "message", NULL };
static const char *const set_variable_required[] = { "name", NULL };
static const char *const python_required[] = { "script|code", NULL };
static const char *const shell_required[] = { "command|argv", NULL };

static ItkStepHandler utility_handlers[] = {
        { "utility.sleep", itk_utility_sleep_run, TRUE, sleep_required },
        { "utility.log", itk_utility_log_run, FALSE, log_required, itk_utility_log_sync },
        { "utility.set_variable", itk_utility_set_variable_run, FALSE, set_variable_required,
          itk_utility_set_variable_sync },
        { "utility.python", itk_utility_python_run, FALSE, python_required },
        { "utility.shell", itk_utility_shell_run, FALSE, shell_required },
};

static const char *const utility_prefixes[] = { "utility.", NULL };

static const ItkStepProvider utility_provider = {
        .name = "utility",
        .prefixes = utility_prefixes,
        .handlers = utility_handlers,
        .n_handlers = G_N_ELEMENTS(utility_handlers),
};

void
itk_step_utility_register(void)
{
        itk_step_registry_register_provider(&utility_provider);
}
