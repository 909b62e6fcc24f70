/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "itk-code-template.h"
#include "itk-error.h"
#include "itk-execution.h"
#include "itk-playbook.h"
#include "itk-step.h"
#include "itk-yaml.h"

/* --- helpers ------------------------------------------------------------------------- */

static JsonObject *
object_from_json(const char *json)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = json_from_string(json, &error);

        g_assert_no_error(error);
        g_assert_true(JSON_NODE_HOLDS_OBJECT(node));
        return json_object_ref(json_node_get_object(node));
}

/* @text rendered with the parameters @params_json; NULL with @error. */
static char *
render(ItkCodeLanguage language, const char *text, const char *params_json, GError **error)
{
        g_autoptr(JsonObject) params = object_from_json(params_json);
        ItkTemplateScope scope = { .parameters = params };

        return itk_code_template_render_text(&scope, language, text, error);
}

static void
assert_renders(ItkCodeLanguage language, const char *text, const char *params_json,
               const char *expected)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *out = render(language, text, params_json, &error);

        g_assert_no_error(error);
        g_assert_cmpstr(out, ==, expected);
}

/* The reference stands in a refused spot: check and render both say so. */
static void
assert_refused(ItkCodeLanguage language, const char *text, const char *phrase)
{
        g_autoptr(GPtrArray) problems = itk_code_template_check(language, text);
        g_autoptr(GError) error = NULL;
        g_autofree char *out = render(language, text, "{\"x\": \"v\"}", &error);

        if (problems->len == 0)
                g_error("not refused: %s", text);
        if (strstr(((ItkCodeProblem *)problems->pdata[0])->message, phrase) == NULL)
                g_error("%s: refused as '%s', not '%s'", text,
                        ((ItkCodeProblem *)problems->pdata[0])->message, phrase);
        g_assert_null(out);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_REFERENCE);
        g_assert_nonnull(strstr(error->message, phrase));
}

#define SH ITK_CODE_LANGUAGE_SHELL
#define PY ITK_CODE_LANGUAGE_PYTHON

/* --- which parameters are code -------------------------------------------------------- */

static void
test_language_for(void)
{
        g_assert_cmpint(itk_code_language_for("utility.shell", "command"), ==, SH);
        g_assert_cmpint(itk_code_language_for("utility.python", "script"), ==, PY);
        g_assert_cmpint(itk_code_language_for("utility.python", "code"), ==, PY);
        /* No shell parses argv elements or env values. */
        g_assert_cmpint(itk_code_language_for("utility.shell", "argv"), ==, ITK_CODE_LANGUAGE_NONE);
        g_assert_cmpint(itk_code_language_for("utility.shell", "env"), ==, ITK_CODE_LANGUAGE_NONE);
        g_assert_cmpint(itk_code_language_for("utility.log", "message"), ==,
                        ITK_CODE_LANGUAGE_NONE);
}

/* --- shell ------------------------------------------------------------------------------ */

static void
test_shell_bare(void)
{
        assert_renders(SH, "echo {{ x }}", "{\"x\": \"a b\"}", "echo 'a b'");
        assert_renders(SH, "echo {{ x }}", "{\"x\": \"$(touch C)\"}", "echo '$(touch C)'");
        assert_renders(SH, "echo {{ x }}", "{\"x\": \"it's\"}", "echo 'it'\\''s'");
        assert_renders(SH, "echo {{ x }}", "{\"x\": \"\"}", "echo ''");
        assert_renders(SH, "echo pre{{ x }}.txt", "{\"x\": \"; rm\"}", "echo pre'; rm'.txt");
        assert_renders(SH, "echo {{ n }}", "{\"n\": 42}", "echo '42'");
        /* --opt=value is a value, not an assignment. */
        assert_renders(SH, "cmd --opt={{ x }}", "{\"x\": \"`id`\"}", "cmd --opt='`id`'");
        assert_renders(SH, "a=1 b={{ x }} cmd", "{\"x\": \"a b\"}", "a=1 b='a b' cmd");
}

static void
test_shell_single_quoted(void)
{
        assert_renders(SH, "echo 'a{{ x }}b'", "{\"x\": \"'; touch C; '\"}",
                       "echo 'a'\\''; touch C; '\\''b'");
        assert_renders(SH, "echo '{{ x }}'", "{\"x\": \"$HOME \\\" \\\\\"}", "echo '$HOME \" \\'");
}

static void
test_shell_double_quoted(void)
{
        assert_renders(SH, "echo \"a {{ x }} b\"", "{\"x\": \"$(id) `id` \\\" \\\\ '\"}",
                       "echo \"a \\$(id) \\`id\\` \\\" \\\\ ' b\"");
        assert_renders(SH, "echo \"{{ x }}\"", "{\"x\": \"l1\\nl2\"}", "echo \"l1\nl2\"");
}

static void
test_shell_substitution(void)
{
        /* Inside $(...) within "...", a bare word again. */
        assert_renders(SH, "echo \"$(echo {{ x }})\"", "{\"x\": \"a; b\"}",
                       "echo \"$(echo 'a; b')\"");
        assert_renders(SH, "echo \"$(echo \"{{ x }}\")\"", "{\"x\": \"$y\"}",
                       "echo \"$(echo \"\\$y\")\"");
        assert_renders(SH, "echo $(printf '%s' ')' {{ x }})", "{\"x\": \"a b\"}",
                       "echo $(printf '%s' ')' 'a b')");
        /* Backquotes: the word, then escaped once more for the backquotes. */
        assert_renders(SH, "echo `echo {{ x }}`", "{\"x\": \"$a`b\\\\\"}",
                       "echo `echo '\\$a\\`b\\\\'`");
        assert_renders(SH, "echo `echo \"{{ x }}\"`", "{\"x\": \"$a\"}",
                       "echo `echo \"\\\\\\$a\"`");
        /* After the substitution the outer context comes back. */
        assert_renders(SH, "echo \"$(echo hi) {{ x }}\"", "{\"x\": \"$a\"}",
                       "echo \"$(echo hi) \\$a\"");
        /* A comment inside $(...) hides its ')'. */
        assert_renders(SH, "x=$(echo a # )\n) && echo {{ x }}", "{\"x\": \"a b\"}",
                       "x=$(echo a # )\n) && echo 'a b'");
}

static void
test_shell_refused(void)
{
        assert_refused(SH, "echo hi # {{ x }}", "inside a comment");
        assert_refused(SH, "cat <<EOF\n{{ x }}\nEOF\n", "here-document");
        assert_refused(SH, "cat <<'EOF'\n{{ x }}\nEOF\n", "here-document");
        assert_refused(SH, "cat <<-EOF\n\t{{ x }}\n\tEOF\n", "here-document");
        assert_refused(SH, "cat <<{{ x }}\nhi\n", "here-document delimiter");
        assert_refused(SH, "echo $'{{ x }}'", "$'...'");
        assert_refused(SH, "echo ${{{ x }}}", "${...}");
        assert_refused(SH, "echo ${y:-{{ x }}}", "${...}");
        assert_refused(SH, "echo $(( {{ x }} + 1 ))", "$((...))");
        assert_refused(SH, "echo $y{{ x }}", "variable name");
        assert_refused(SH, "echo \"$y{{ x }}\"", "variable name");
        assert_refused(SH, "echo ${{ x }}", "right after '$'");
        assert_refused(SH, "{{ x }}=1 cmd", "assignment");
        assert_refused(SH, "pre{{ x }}=1 cmd", "assignment");
        assert_refused(SH, "echo \\{{ x }}", "backslash");
        assert_refused(SH, "echo \"\\{{ x }}\"", "backslash");
        assert_refused(SH, "echo \"`echo {{ x }}`\"", "use $(...)");
        assert_refused(SH, "echo 'unterminated {{ x }}", "unterminated");
        assert_refused(SH, "echo $(echo {{ x }}", "unterminated");
        assert_refused(SH, "echo \"{{ x }}", "unterminated");
        /* Where bash and dash read $'...' differently, nothing after it. */
        assert_refused(SH, "echo $'a\\' b' {{ x }}", "$'...' holding a backslash");
        assert_refused(SH, "echo $(case a in a) echo ;; esac) {{ x }}", "'case'");
        /* bash runs a[$(cmd)] in arithmetic, even from a quoted value. */
        assert_refused(SH, "(( {{ x }} ))", "$((...))");
        assert_refused(SH, "echo $[ {{ x }} ]", "$((...))");
        /* Found by the template property test: dash reads $[' as a quote. */
        assert_refused(SH, "$[' ]'\n{{ x }}\n", "$[...] holding quotes");
        assert_refused(SH, "[[ {{ x }} -eq 1 ]]", "'[['");
        assert_refused(SH, "let \"{{ x }}\"", "'let'");
        /* Found by the template property test under bash. */
        assert_refused(SH, "a=(x y('\n{{ x }}\n'", "bash array");
        assert_refused(SH, "echo \"${y:-\"}\"}\" {{ x }}", "${...} holding quotes");
        /* After a here-document the command goes on, and so do references. */
        assert_renders(SH, "cat <<EOF\nbody\nEOF\necho {{ x }}", "{\"x\": \"a b\"}",
                       "cat <<EOF\nbody\nEOF\necho 'a b'");
        /* Not a comment: '#' inside a word. */
        assert_renders(SH, "echo a#{{ x }}", "{\"x\": \"b c\"}", "echo a#'b c'");
}

static void
test_shell_nul(void)
{
        g_autoptr(GString) out = g_string_new(NULL);
        g_autoptr(GError) error = NULL;

        g_assert_false(itk_code_escape_shell(out, ITK_SHELL_BARE, FALSE, "a\0b", 3, &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_REFERENCE);
        g_assert_nonnull(strstr(error->message, "NUL"));
}

static void
test_shell_position(void)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *out = render(SH, "echo a\n# é {{ x }}\n", "{\"x\": 1}", &error);
        g_autoptr(GPtrArray) problems = itk_code_template_check(SH, "echo a\n# é {{ x }}\n");

        g_assert_null(out);
        g_assert_nonnull(strstr(error->message, "line 2, column 5"));
        g_assert_cmpuint(problems->len, ==, 1);
        g_assert_cmpuint(((ItkCodeProblem *)problems->pdata[0])->offset, ==, 12);
}

/* --- python ------------------------------------------------------------------------------ */

static void
test_python_strings(void)
{
        assert_renders(PY, "a = '{{ x }}'", "{\"x\": \"it's \\\"q\\\" \\\\ \\n\"}",
                       "a = 'it\\'s \\\"q\\\" \\\\ \\n'");
        assert_renders(PY, "a = \"{{ x }}\"", "{\"x\": \"\\\"); import os; (\\\"\"}",
                       "a = \"\\\"); import os; (\\\"\"");
        assert_renders(PY, "a = '''{{ x }}'''", "{\"x\": \"'''\"}", "a = '''\\'\\'\\''''");
        assert_renders(PY, "a = \"\"\"{{ x }}\"\"\"", "{\"x\": \"a\\r\\nb\\u0001\"}",
                       "a = \"\"\"a\\r\\nb\\x01\"\"\"");
        assert_renders(PY, "a = u'{{ x }}'", "{\"x\": \"é\"}", "a = u'é'");
        assert_renders(PY, "a = b'{{ x }}'", "{\"x\": \"é'\"}", "a = b'\\xc3\\xa9\\''");
        assert_renders(PY, "a = f'{v} {{ x }} {{'", "{\"x\": \"{y}\"}", "a = f'{v} {{y}} {{'");
        /* Raw: as it is when a raw literal reads it the same, else closed,
         * an escaped literal, reopened. */
        assert_renders(PY, "a = r'\\d{{ x }}\\w'", "{\"x\": \"C:/a b\"}", "a = r'\\dC:/a b\\w'");
        assert_renders(PY, "a = r'\\d{{ x }}\\w'", "{\"x\": \"'\\\\\"}",
                       "a = r'\\d' '\\'\\\\' r'\\w'");
        assert_renders(PY, "a = rb\"\"\"{{ x }}\"\"\"", "{\"x\": \"é\"}",
                       "a = rb\"\"\"\"\"\" b\"\\xc3\\xa9\" rb\"\"\"\"\"\"");
        assert_renders(PY, "a = Rf'{v}{{ x }}'", "{\"x\": \"{\"}", "a = Rf'{v}{{'");
        assert_renders(PY, "a = Rf'{v}{{ x }}'", "{\"x\": \"'{\"}", "a = Rf'{v}' '\\'{' Rf''");
        /* Non-string values inside a string: their text. */
        assert_renders(PY, "a = '{{ n }} {{ b }}'", "{\"n\": 3, \"b\": true}", "a = '3 true'");
}

static void
test_python_expression(void)
{
        assert_renders(PY, "a = {{ x }}", "{\"x\": \"s'\\n\"}", "a = 's\\'\\n'");
        assert_renders(PY, "a = {{ x }}", "{\"x\": 12}", "a = 12");
        assert_renders(PY, "a = 2 ** {{ x }}", "{\"x\": -2}", "a = 2 ** (-2)");
        assert_renders(PY, "a = {{ x }}", "{\"x\": 1.5}", "a = 1.5");
        assert_renders(PY, "a = {{ x }}", "{\"x\": 0.1}", "a = 0.1");
        assert_renders(PY, "a = {{ x }}", "{\"x\": 1e300}", "a = 1e+300");
        assert_renders(PY, "a = {{ x }}", "{\"x\": true}", "a = True");
        assert_renders(PY, "a = {{ x }}", "{\"x\": null}", "a = None");
        assert_renders(PY, "a = {{ x }}", "{\"x\": [1, \"a\", [false, null]]}",
                       "a = [1, 'a', [False, None]]");
        assert_renders(PY, "a = {{ x }}", "{\"x\": {\"k'\": {\"n\": -1}}}",
                       "a = {'k\\'': {'n': (-1)}}");
        assert_renders(PY, "a = {{ x }}.upper()", "{\"x\": \"s\"}", "a = 's'.upper()");
        {
                g_autoptr(GString) out = g_string_new(NULL);
                g_autoptr(JsonNode) nan = json_node_init_double(json_node_alloc(), NAN);
                g_autoptr(JsonNode) inf = json_node_init_double(json_node_alloc(), -INFINITY);
                g_autoptr(JsonNode) whole = json_node_init_double(json_node_alloc(), 2.0);

                g_assert_true(itk_code_python_literal(out, nan, NULL));
                g_string_append_c(out, ' ');
                g_assert_true(itk_code_python_literal(out, inf, NULL));
                g_string_append_c(out, ' ');
                g_assert_true(itk_code_python_literal(out, whole, NULL));
                g_assert_cmpstr(out->str, ==, "float('nan') float('-inf') 2.0");
        }
}

static void
test_python_comment(void)
{
        assert_renders(PY, "# see {{ x }}\nprint(1)", "{\"x\": \"a\\nimport os\\rb\"}",
                       "# see a\\nimport os\\rb\nprint(1)");
}

static void
test_python_refused(void)
{
        assert_refused(PY, "a = f'{ {{ x }} }'", "f-string replacement field");
        assert_refused(PY, "a = f'{{{ x }}}'", "f-string replacement field");
        assert_refused(PY, "a = '\\{{ x }}'", "backslash");
        assert_refused(PY, "a = r'\\{{ x }}'", "backslash");
        assert_refused(PY, "a = name{{ x }}", "joined");
        assert_refused(PY, "a = {{ x }}1", "joined");
        assert_refused(PY, "a = 1.{{ x }}", "joined");
        assert_refused(PY, "a = {{ x }}.5", "joined");
        assert_refused(PY, "a = {{ x }}{{ x }}", "joined");
}

static void
test_python_invalid_utf8(void)
{
        g_autoptr(JsonObject) params = json_object_new();
        ItkTemplateScope scope = { .parameters = params };
        g_autoptr(GError) error = NULL;
        g_autofree char *out = NULL;

        json_object_set_string_member(params, "x", "\xff");
        out = itk_code_template_render_text(&scope, PY, "a = '{{ x }}'", &error);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_REFERENCE);
        g_assert_nonnull(strstr(error->message, "UTF-8"));
        g_clear_error(&error);
        g_free(out);
        /* bytes take any byte. */
        out = itk_code_template_render_text(&scope, PY, "a = b'{{ x }}'", &error);
        g_assert_no_error(error);
        g_assert_cmpstr(out, ==, "a = b'\\xff'");
}

static void
test_render_params(void)
{
        g_autoptr(JsonObject) values = object_from_json("{\"x\": \"$(id)\"}");
        ItkTemplateScope scope = { .parameters = values };
        g_autoptr(JsonObject) params =
                object_from_json("{\"command\": \"echo {{ x }}\", \"env\": {\"A\": \"{{ x }}\"}, "
                                 "\"argv\": [\"echo\", \"{{ x }}\"]}");
        g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), params);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) out =
                itk_code_template_render_params(&scope, "utility.shell", node, &error);
        JsonObject *o;

        g_assert_no_error(error);
        o = json_node_get_object(out);
        g_assert_cmpstr(json_object_get_string_member(o, "command"), ==, "echo '$(id)'");
        /* Plain where no shell parses the text. */
        g_assert_cmpstr(json_object_get_string_member(json_object_get_object_member(o, "env"), "A"),
                        ==, "$(id)");
        g_assert_cmpstr(json_array_get_string_element(json_object_get_array_member(o, "argv"), 1),
                        ==, "$(id)");
        /* Resolution errors keep their message. */
        {
                g_autoptr(JsonObject) p2 = object_from_json("{\"command\": \"echo {{ y }}\"}");
                g_autoptr(JsonNode) n2 = json_node_init_object(json_node_alloc(), p2);
                g_autoptr(JsonNode) o2 =
                        itk_code_template_render_params(&scope, "utility.shell", n2, &error);
                g_assert_null(o2);
                g_assert_error(error, ITK_ERROR, ITK_ERROR_REFERENCE);
                g_assert_cmpstr(error->message, ==, "unknown parameter 'y'");
        }
}

static JsonObject *
secret_credential_cb(const char *name, gpointer user_data, GError **error)
{
        JsonObject *o = json_object_new();
        json_object_set_string_member(o, "password", "p'w");
        return o;
}

static void
collect_secret_cb(const char *secret, gpointer user_data)
{
        g_ptr_array_add(user_data, g_strdup(secret));
}

static void
test_secret_escaped_form(void)
{
        g_autoptr(GPtrArray) secrets = g_ptr_array_new_with_free_func(g_free);
        ItkTemplateScope scope = {
                .credential_lookup = secret_credential_cb,
                .secret_used = collect_secret_cb,
                .secret_data = secrets,
        };
        g_autoptr(GError) error = NULL;
        g_autofree char *out = itk_code_template_render_text(
                &scope, SH, "echo {{ credential.c.password }}", &error);

        g_assert_no_error(error);
        g_assert_cmpstr(out, ==, "echo 'p'\\''w'");
        /* The redactor learns the value and the form it has in the code. */
        g_assert_true(g_ptr_array_find_with_equal_func(secrets, "p'w", g_str_equal, NULL));
        g_assert_true(g_ptr_array_find_with_equal_func(secrets, "'p'\\''w'", g_str_equal, NULL));
}

/* --- compat playbooks: ordinary values give the old program text ------------------------- */

static JsonObject *
compat_credential_cb(const char *name, gpointer user_data, GError **error)
{
        JsonObject *o = json_object_new();
        json_object_set_string_member(o, "username", "user1");
        json_object_set_string_member(o, "password", "pass1");
        json_object_set_string_member(o, "gateway_url", "http://localhost:8088");
        json_object_set_string_member(o, "api_token", "tok1");
        json_object_set_string_member(o, "description", "d1");
        return o;
}

static void
test_compat_playbooks(void)
{
        const char *root = g_getenv("ITK_COMPAT_PLAYBOOKS");
        const char *dirs[] = { "builtin", "gateway", "perspective", "designer" };
        guint scripts = 0;

        if (root == NULL || !g_file_test(root, G_FILE_TEST_IS_DIR)) {
                g_test_skip("ITK_COMPAT_PLAYBOOKS is not a folder");
                return;
        }
        for (guint d = 0; d < G_N_ELEMENTS(dirs); d++) {
                g_autofree char *dir_path = g_build_filename(root, dirs[d], NULL);
                g_autoptr(GDir) dir = g_dir_open(dir_path, 0, NULL);
                const char *file;

                while (dir != NULL && (file = g_dir_read_name(dir)) != NULL) {
                        g_autofree char *path = g_build_filename(dir_path, file, NULL);
                        g_autofree char *yaml = NULL;
                        g_autoptr(ItkYamlNode) tree = NULL;
                        g_autoptr(JsonNode) doc = NULL;
                        g_autoptr(GPtrArray) steps = g_ptr_array_new();

                        if (!g_str_has_suffix(file, ".yaml"))
                                continue;
                        /* Read as YAML, not as playbooks: steps of families not
                         * built yet must not hide their scripts. */
                        g_assert_true(g_file_get_contents(path, &yaml, NULL, NULL));
                        tree = itk_yaml_parse(yaml, -1, NULL, NULL);
                        if (tree == NULL)
                                continue;
                        doc = itk_yaml_node_to_json(tree, NULL);
                        if (doc == NULL || !JSON_NODE_HOLDS_OBJECT(doc))
                                continue;
                        for (const char *const *list =
                                     (const char *const[]){ "steps", "rollback", NULL };
                             *list != NULL; list++) {
                                JsonNode *n =
                                        json_object_get_member(json_node_get_object(doc), *list);
                                if (n == NULL || !JSON_NODE_HOLDS_ARRAY(n))
                                        continue;
                                for (guint k = 0; k < json_array_get_length(json_node_get_array(n));
                                     k++) {
                                        JsonNode *item =
                                                json_array_get_element(json_node_get_array(n), k);
                                        if (JSON_NODE_HOLDS_OBJECT(item))
                                                g_ptr_array_add(steps, json_node_get_object(item));
                                }
                        }
                        for (guint i = 0; i < steps->len; i++) {
                                JsonObject *step_object = steps->pdata[i];
                                JsonNode *step_params =
                                        json_object_get_member(step_object, "parameters");
                                const char *step_type = json_object_get_string_member_with_default(
                                        step_object, "type", "");
                                g_autoptr(JsonObject) params = json_object_new();
                                g_autoptr(JsonObject) variables = json_object_new();
                                g_autoptr(GHashTable) outputs =
                                        g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                              (GDestroyNotify)json_node_unref);
                                g_autoptr(GPtrArray) refs = NULL;
                                g_autoptr(JsonNode) plain = NULL;
                                g_autoptr(JsonNode) code = NULL;
                                g_autoptr(GError) error = NULL;
                                ItkTemplateScope scope = { 0 };
                                JsonObject *given;

                                if (g_strcmp0(step_type, "utility.python") != 0 ||
                                    step_params == NULL || !JSON_NODE_HOLDS_OBJECT(step_params))
                                        continue;
                                given = json_node_get_object(step_params);
                                refs = itk_template_collect(step_params);
                                for (guint r = 0; r < refs->len; r++) {
                                        const ItkRef *ref = refs->pdata[r];
                                        g_autofree char *value =
                                                g_strdup_printf("ordinary value %u/x.y-z", r);
                                        JsonObject *target = ref->kind == ITK_REF_PARAMETER ? params
                                                             : ref->kind == ITK_REF_VARIABLE
                                                                     ? variables
                                                                     : NULL;
                                        if (target != NULL && ref->field == NULL)
                                                json_object_set_string_member(target, ref->name,
                                                                              value);
                                        else if (target != NULL) {
                                                /* {{ parameter.x.key }}: an object. */
                                                if (!json_object_has_member(target, ref->name) ||
                                                    !JSON_NODE_HOLDS_OBJECT(json_object_get_member(
                                                            target, ref->name)))
                                                        json_object_set_object_member(
                                                                target, ref->name,
                                                                json_object_new());
                                                json_object_set_string_member(
                                                        json_object_get_object_member(target,
                                                                                      ref->name),
                                                        ref->field, value);
                                        } else if (ref->kind == ITK_REF_STEP) {
                                                g_autoptr(JsonObject) o = json_object_new();
                                                if (ref->field != NULL)
                                                        json_object_set_string_member(o, ref->field,
                                                                                      value);
                                                g_hash_table_replace(outputs, g_strdup(ref->name),
                                                                     json_node_init_object(
                                                                             json_node_alloc(), o));
                                        }
                                }
                                scope.parameters = params;
                                scope.variables = variables;
                                scope.step_outputs = outputs;
                                scope.credential_lookup = compat_credential_cb;
                                plain = itk_template_render(&scope, step_params, &error);
                                g_assert_no_error(error);
                                code = itk_code_template_render_params(&scope, step_type,
                                                                       step_params, &error);
                                if (error != NULL)
                                        g_error("%s step %u: %s", file, i, error->message);
                                for (const char *const *name =
                                             (const char *const[]){ "script", "code", NULL };
                                     *name != NULL; name++) {
                                        if (!json_object_has_member(given, *name))
                                                continue;
                                        g_assert_cmpstr(
                                                json_object_get_string_member(
                                                        json_node_get_object(code), *name),
                                                ==,
                                                json_object_get_string_member(
                                                        json_node_get_object(plain), *name));
                                        scripts++;
                                }
                        }
                }
        }
        g_test_message("%u compat python scripts render the same program text", scripts);
        g_assert_cmpuint(scripts, >, 10);
}

/* --- property test: real /bin/sh and python3 ------------------------------------------ */

static const char *const metachars[] = {
        "$",
        "`",
        "'",
        "\"",
        "\\",
        "\n",
        "\r",
        "\t",
        " ",
        ";",
        "&",
        "|",
        "<",
        ">",
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        "*",
        "?",
        "~",
        "#",
        "!",
        "%",
        "=",
        "^",
        ",",
        ".",
        ":",
        "-",
        "$(",
        "${",
        "$'",
        "'''",
        "\"\"\"",
        "{{",
        "}}",
        "é",
        "\xe2\x80\xa8",
        "日本",
        "\U0001F600",
        "\x01",
        "\x7f",
        "\\n",
        "\\'",
        "x",
        "0",
        "\\\\",
        "$((1))",
        "`id`",
        "{{ x }}",
        "\f",
        "\v",
};

/* @template with every @token replaced by @with. */
static char *
subst(const char *template, const char *token, const char *with)
{
        g_auto(GStrv) parts = g_strsplit(template, token, -1);
        return g_strjoinv(with, parts);
}

static char *
random_value(GRand *rand, const char *canary)
{
        GString *s = g_string_new(NULL);
        guint kind = g_rand_int_range(rand, 0, 20);

        if (kind == 0)
                return g_string_free(s, FALSE); /* empty */
        if (kind == 1) {
                /* An injection attempt. */
                static const char *const forms[] = {
                        "$(touch @)",
                        "`touch @`",
                        "'; touch @; '",
                        "\"; touch @; \"",
                        "'''); open('@','w'); ('''",
                        "\"); open('@','w'); (\"",
                        "\"\"\"); open('@','w'); (\"\"\"",
                        "\\'); open('@','w'); #",
                        "{__import__('os').system('touch @')}",
                        "\n__import__('os').system('touch @')\n",
                };
                g_string_free(s, TRUE);
                return subst(forms[g_rand_int_range(rand, 0, G_N_ELEMENTS(forms))], "@", canary);
        }
        if (kind == 2) {
                /* Long. */
                guint n = g_rand_int_range(rand, 300, 1500);
                for (guint i = 0; i < n; i++)
                        g_string_append(
                                s, metachars[g_rand_int_range(rand, 0, G_N_ELEMENTS(metachars))]);
                return g_string_free(s, FALSE);
        }
        for (guint i = 0, n = g_rand_int_range(rand, 1, 12); i < n; i++)
                g_string_append(s, metachars[g_rand_int_range(rand, 0, G_N_ELEMENTS(metachars))]);
        return g_string_free(s, FALSE);
}

/* One line per context: prints the value as a hex dump. The reference is
 * {{ vN }}; the templates must keep the value byte for byte. */
/* Each prints its value and an RS (\036), which no value holds: printf is a
 * builtin, so the whole batch is one process. */
static const char *const shell_contexts[] = {
        "printf '%s\\036' @REF@",
        "printf '%s\\036' 'pre@REF@post'",
        "printf '%s\\036' \"pre@REF@post\"",
        "printf '%s\\036' \"$(printf '%s' @REF@)x\"",
        "v=`printf '%s' \"@REF@\"`; printf '%s\\036' \"${v}x\"",
        "printf '%s\\036' \"$(printf '%s' \"@REF@\")x\"",
};
static const char *const shell_wrap[][2] = {
        { "", "" }, { "pre", "post" }, { "pre", "post" }, { "", "x" }, { "", "x" }, { "", "x" },
};

static const char *const python_contexts[] = {
        "_p(@REF@)",
        "_p('@REF@')",
        "_p(\"@REF@\")",
        "_p('''@REF@''')",
        "_p(\"\"\"@REF@\"\"\")",
        "_p(u'@REF@')",
        "_p(f'@REF@')",
        "_p(r'@REF@')",
        "_p(fr\"\"\"@REF@\"\"\")",
        "_p(b'@REF@'.decode('utf-8'))",
        "_p(rb'@REF@'.decode('utf-8'))",
};

static void
hex_append(GString *out, const char *s)
{
        for (const guchar *p = (const guchar *)s; *p != '\0'; p++)
                g_string_append_printf(out, "%02x", *p);
}

static char *
run_capture(const char *const *argv, const char *stdin_text, const char *env_name,
            const char *env_value, const char *cwd)
{
        g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
                G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                G_SUBPROCESS_FLAGS_STDERR_MERGE);
        g_autoptr(GSubprocess) proc = NULL;
        g_autoptr(GError) error = NULL;
        char *out = NULL;

        g_subprocess_launcher_set_cwd(launcher, cwd);
        if (env_name != NULL)
                g_subprocess_launcher_setenv(launcher, env_name, env_value, TRUE);
        proc = g_subprocess_launcher_spawnv(launcher, argv, &error);
        g_assert_no_error(error);
        g_subprocess_communicate_utf8(proc, stdin_text, NULL, &out, NULL, &error);
        g_assert_no_error(error);
        return out;
}

#define PROPERTY_RUNS 40
#define PROPERTY_VALUES 200

static void
test_property(void)
{
        const char *seed_env = g_getenv("ITK_PROPERTY_SEED");
        guint32 seed = seed_env != NULL ? (guint32)g_ascii_strtoull(seed_env, NULL, 10)
                                        : (guint32)g_random_int();
        g_autoptr(GRand) rand = g_rand_new_with_seed(seed);
        g_autofree char *dir = g_dir_make_tmp("itk-code-prop-XXXXXX", NULL);
        g_autofree char *canary = g_build_filename(dir, "CANARY", NULL);
        guint cases = 0;

        g_test_message("property seed %u (set ITK_PROPERTY_SEED to replay)", seed);
        for (guint run = 0; run < PROPERTY_RUNS; run++) {
                gboolean shell = run % 2 == 0;
                g_autoptr(JsonObject) params = json_object_new();
                ItkTemplateScope scope = { .parameters = params };
                g_autoptr(GString) text = g_string_new(NULL);
                g_autoptr(GString) expected = g_string_new(NULL);
                g_autoptr(GError) error = NULL;
                g_autofree char *program = NULL;
                g_autofree char *output = NULL;
                guint n_contexts =
                        shell ? G_N_ELEMENTS(shell_contexts) : G_N_ELEMENTS(python_contexts);

                if (!shell)
                        g_string_append(text, "import sys\n"
                                              "def _p(v):\n"
                                              "    b = v.encode('utf-8', 'surrogateescape') "
                                              "if isinstance(v, str) else v\n"
                                              "    sys.stdout.write(b.hex() + '\\n')\n");
                for (guint i = 0; i < PROPERTY_VALUES; i++) {
                        g_autofree char *name = g_strdup_printf("v%u", i);
                        g_autofree char *value = random_value(rand, canary);
                        guint context = g_rand_int_range(rand, 0, n_contexts);

                        json_object_set_string_member(params, name, value);
                        g_autofree char *ref = g_strdup_printf("{{ %s }}", name);
                        g_autofree char *line =
                                subst(shell ? shell_contexts[context] : python_contexts[context],
                                      "@REF@", ref);

                        g_string_append(text, line);
                        g_string_append_c(text, '\n');
                        if (shell) {
                                /* $(...) and `...` drop trailing newlines. */
                                g_autofree char *v = g_strdup(value);
                                if (context >= 3) {
                                        gsize len = strlen(v);
                                        while (len > 0 && v[len - 1] == '\n')
                                                v[--len] = '\0';
                                }
                                g_string_append(expected, shell_wrap[context][0]);
                                g_string_append(expected, v);
                                g_string_append(expected, shell_wrap[context][1]);
                                g_string_append_c(expected, '\036');
                        } else {
                                hex_append(expected, value);
                                g_string_append_c(expected, '\n');
                        }
                        cases++;
                }
                program = itk_code_template_render_text(
                        &scope, shell ? ITK_CODE_LANGUAGE_SHELL : ITK_CODE_LANGUAGE_PYTHON,
                        text->str, &error);
                g_assert_no_error(error);
                if (shell) {
                        /* As utility.shell runs it: eval of the text. */
                        const char *sh = g_getenv("ITK_PROPERTY_SH");
                        const char *argv[] = { sh != NULL ? sh : "/bin/sh", "-c",
                                               "c=$ITK_SHELL_COMMAND; unset ITK_SHELL_COMMAND; "
                                               "eval \"$c\"",
                                               NULL };
                        output = run_capture(argv, NULL, "ITK_SHELL_COMMAND", program, dir);
                } else {
                        const char *argv[] = { "python3", "-", NULL };
                        output = run_capture(argv, program, NULL, NULL, dir);
                }
                if (g_strcmp0(output, expected->str) != 0) {
                        g_autofree char *path = g_build_filename(dir, "failed-program", NULL);
                        g_file_set_contents(path, program, -1, NULL);
                        g_error("seed %u run %u: output differs (program kept in %s)\n"
                                "got:\n%s\nexpected:\n%s",
                                seed, run, path, output, expected->str);
                }
                g_assert_false(g_file_test(canary, G_FILE_TEST_EXISTS));
        }
        g_test_message("%u property cases through /bin/sh and python3", cases);
        g_rmdir(dir);
}

/* --- validation: refused spots are diagnostics at their line and column -------------- */

static void
test_validate(void)
{
        static const char *const yaml = "name: v\n"
                                        "version: '1'\n"
                                        "parameters:\n"
                                        "  - name: x\n"
                                        "    type: string\n"
                                        "steps:\n"
                                        "  - id: sh\n"
                                        "    name: sh\n"
                                        "    type: utility.shell\n"
                                        "    parameters:\n"
                                        "      command: |\n"
                                        "        echo {{ x }}\n"
                                        "        # note {{ x }}\n"
                                        "      env:\n"
                                        "        A: '# {{ x }}'\n"
                                        "  - id: py\n"
                                        "    name: py\n"
                                        "    type: utility.python\n"
                                        "    parameters:\n"
                                        "      script: \"print(f'{ {{ x }} }')\"\n";
        g_autoptr(GPtrArray) diagnostics =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook =
                itk_playbook_new_from_data(yaml, -1, "v.yaml", diagnostics, &error);
        guint found = 0;

        g_assert_null(playbook);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK);
        for (guint i = 0; i < diagnostics->len; i++) {
                const ItkDiagnostic *d = diagnostics->pdata[i];
                if (strstr(d->message, "inside a comment") != NULL) {
                        /* The reference itself, not the block scalar. */
                        g_assert_cmpint(d->line, ==, 13);
                        g_assert_cmpint(d->column, ==, 16);
                        g_assert_cmpstr(d->step_id, ==, "sh");
                        g_assert_nonnull(strstr(d->message, "parameter 'command'"));
                        found++;
                } else if (strstr(d->message, "f-string replacement field") != NULL) {
                        g_assert_cmpint(d->line, ==, 20);
                        g_assert_cmpint(d->column, ==, 26);
                        found++;
                } else {
                        g_error("unexpected diagnostic: %s", d->message);
                }
        }
        /* env is not code: '# {{ x }}' there is fine. */
        g_assert_cmpuint(found, ==, 2);
}

/* --- property test over random templates: what the scanner accepts is safe ------------ */

/* Fragments of code, joined at random: the scanner must either refuse a
 * reference or place it where the injection values below stay data. */
static const char *const shell_fragments[] = {
        "echo ",    " ",         "\"",    "'",   "$(",      ")",     "`",        "\\`",
        "\\",       ";",         "\n",    "#",   "<<EOF\n", "EOF\n", "<<-'E'\n", "\tE\n",
        "$'",       "${",        "}",     "$((", "))",      "a=",    "=",        "case a in a) ",
        " ;; esac", "$",         "x",     "(",   "|",       "&&",    "<",        ">/dev/null ",
        "[[ ",      " -eq 1 ]]", "let ",  "((",  "$[",      "]",     "a[",       "@REF@",
        "@REF@",    "@REF@",     "@REF@",
};
static const char *const python_fragments[] = {
        "x = ",   " ", "'",  "\"", "'''", "\"\"\"", "r",     "b",     "f",     "u",
        "{",      "}", "{{", "}}", "#",   "\n",     "\\",    "(",     ")",     ",",
        "print(", "1", ".",  "a",  "+",   "@REF@",  "@REF@", "@REF@", "@REF@",
};
static const char *const injections[] = {
        "$(touch @)",
        "`touch @`",
        "a[$(touch @)]",
        "'; touch @; '",
        "\"; touch @; \"",
        "\ntouch @\n",
        "\\\"; touch @; #",
        "'\"$(touch @)\"'",
        ")\ntouch @\n(",
        "\nEOF\ntouch @\n",
        "'''\nopen('@','w')\n'''",
        "\"\"\"\nopen('@','w')\n\"\"\"",
        "'); open('@','w'); ('",
        "\"); open('@','w'); (\"",
        "\nopen('@','w')\n",
        "{open('@','w')}",
        "\\'); open('@','w') #",
        "x\\",
        "\\",
        "'",
        "\"",
};

/* Runs every program of @programs in its own interpreter, from one python3. */
static void
run_batch(GPtrArray *programs, gboolean shell, const char *dir)
{
        static const char driver[] =
                "import json, os, subprocess, sys, warnings\n"
                "warnings.simplefilter('ignore')\n"
                "progs = json.load(sys.stdin)\n"
                "for p in progs:\n"
                "    if SHELL:\n"
                "        env = dict(os.environ, ITK_SHELL_COMMAND=p)\n"
                "        cmd = [os.environ.get('ITK_PROPERTY_SH', '/bin/sh'), '-c', "
                "'c=$ITK_SHELL_COMMAND; unset ITK_SHELL_COMMAND; "
                "eval \"$c\"']\n"
                "        try:\n"
                "            subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL,\n"
                "                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,\n"
                "                           timeout=5)\n"
                "        except subprocess.TimeoutExpired:\n"
                "            pass\n"
                "    else:\n"
                "        try:\n"
                "            code = compile(p, '<p>', 'exec')\n"
                "        except (SyntaxError, ValueError):\n"
                "            continue\n"
                "        try:\n"
                "            exec(code, {'print': lambda *a, **k: None})\n"
                "        except Exception:\n"
                "            pass\n";
        g_autoptr(JsonBuilder) builder = json_builder_new();
        g_autoptr(JsonNode) root = NULL;
        g_autofree char *json = NULL;
        g_autofree char *script = subst(driver, "SHELL", shell ? "True" : "False");
        const char *argv[] = { "python3", "-c", script, NULL };
        g_autofree char *out = NULL;

        json_builder_begin_array(builder);
        for (guint i = 0; i < programs->len; i++)
                json_builder_add_string_value(builder, programs->pdata[i]);
        json_builder_end_array(builder);
        root = json_builder_get_root(builder);
        json = json_to_string(root, FALSE);
        out = run_capture(argv, json, NULL, NULL, dir);
        g_assert_cmpstr(out, ==, "");
}

#define TEMPLATE_RUNS 4
#define TEMPLATES_PER_RUN 300

static void
test_property_templates(void)
{
        const char *seed_env = g_getenv("ITK_PROPERTY_SEED");
        guint32 seed = seed_env != NULL ? (guint32)g_ascii_strtoull(seed_env, NULL, 10)
                                        : (guint32)g_random_int();
        g_autoptr(GRand) rand = g_rand_new_with_seed(seed);
        g_autofree char *dir = g_dir_make_tmp("itk-code-tmpl-XXXXXX", NULL);
        g_autofree char *canary = g_build_filename(dir, "CANARY", NULL);
        guint scale = MAX(1, (guint)g_ascii_strtoull(g_getenv("ITK_PROPERTY_SCALE")
                                                             ? g_getenv("ITK_PROPERTY_SCALE")
                                                             : "1",
                                                     NULL, 10));
        guint accepted[2] = { 0, 0 };
        guint total[2] = { 0, 0 };

        g_test_message("template property seed %u (set ITK_PROPERTY_SEED to replay)", seed);
        /* ITK_PROPERTY_SCALE=N runs N times as many, to hunt. */
        for (guint run = 0; run < TEMPLATE_RUNS * scale; run++) {
                gboolean shell = run % 2 == 0;
                const char *const *fragments = shell ? shell_fragments : python_fragments;
                guint n_fragments =
                        shell ? G_N_ELEMENTS(shell_fragments) : G_N_ELEMENTS(python_fragments);
                g_autoptr(GPtrArray) programs = g_ptr_array_new_with_free_func(g_free);

                for (guint t = 0; t < TEMPLATES_PER_RUN; t++) {
                        g_autoptr(JsonObject) params = json_object_new();
                        ItkTemplateScope scope = { .parameters = params };
                        g_autoptr(GString) text = g_string_new(NULL);
                        g_autoptr(GError) error = NULL;
                        char *program;
                        guint refs = 0;

                        for (guint f = 0, n = g_rand_int_range(rand, 2, 14); f < n; f++) {
                                const char *fragment =
                                        fragments[g_rand_int_range(rand, 0, n_fragments)];
                                if (g_str_equal(fragment, "@REF@")) {
                                        g_autofree char *name = g_strdup_printf("v%u", refs++);
                                        g_autofree char *value =
                                                subst(injections[g_rand_int_range(
                                                              rand, 0, G_N_ELEMENTS(injections))],
                                                      "@", canary);
                                        g_string_append_printf(text, "{{ %s }}", name);
                                        json_object_set_string_member(params, name, value);
                                } else {
                                        g_string_append(text, fragment);
                                }
                        }
                        total[shell ? 0 : 1]++;
                        program = itk_code_template_render_text(
                                &scope, shell ? ITK_CODE_LANGUAGE_SHELL : ITK_CODE_LANGUAGE_PYTHON,
                                text->str, &error);
                        if (program == NULL)
                                continue;
                        if (refs > 0)
                                accepted[shell ? 0 : 1]++;
                        g_ptr_array_add(programs, program);
                }
                run_batch(programs, shell, dir);
                if (g_file_test(canary, G_FILE_TEST_EXISTS)) {
                        /* Find the culprit for the report. */
                        for (guint i = 0; i < programs->len; i++) {
                                g_autoptr(GPtrArray) one = g_ptr_array_new();
                                g_unlink(canary);
                                g_ptr_array_add(one, programs->pdata[i]);
                                run_batch(one, shell, dir);
                                if (g_file_test(canary, G_FILE_TEST_EXISTS))
                                        g_error("seed %u: this program ran injected code:\n%s",
                                                seed, (const char *)programs->pdata[i]);
                        }
                        g_error("seed %u: injected code ran", seed);
                }
        }
        g_test_message("%u of %u shell and %u of %u python random templates with references "
                       "accepted and run without the injection running",
                       accepted[0], total[0], accepted[1], total[1]);
        g_rmdir(dir);
}

/* --- demo/hello.yaml: the shipped playbook runs no injected code ------------------------- */

typedef struct {
        gboolean finished;
        char *status;
} HelloRun;

static void
hello_finished_cb(ItkExecution *e, int status, const char *error, HelloRun *run)
{
        run->finished = TRUE;
        run->status = g_strdup(itk_status_to_string(status));
}

static void
test_hello_injection(void)
{
        const char *root = g_getenv("ITK_SOURCE_ROOT");
        g_autofree char *path = NULL;
        g_autofree char *dir = g_dir_make_tmp("itk-hello-XXXXXX", NULL);
        g_autofree char *canary = g_build_filename(dir, "CANARY", NULL);
        const char *forms[] = {
                "$(touch @)",
                "`touch @`",
                "'; touch @; '",
                "\"); open('@', 'w'); (\"",
                "\\\"); open('@', 'w'); #",
                "\"\"\"); open('@', 'w'); (\"\"\"",
                "x\nopen('@', 'w')\n",
        };

        if (root == NULL) {
                g_test_skip("ITK_SOURCE_ROOT is not set");
                return;
        }
        path = g_build_filename(root, "data", "playbooks", "demo", "hello.yaml", NULL);
        for (guint i = 0; i < G_N_ELEMENTS(forms); i++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(ItkPlaybook) playbook =
                        itk_playbook_new_from_file(path, "demo/hello.yaml", NULL, &error);
                g_autoptr(JsonObject) given = json_object_new();
                g_autoptr(JsonObject) bound = NULL;
                g_autoptr(ItkExecution) execution = NULL;
                g_autofree char *site = subst(forms[i], "@", canary);
                ItkExecutionConfig config = { 0 };
                HelloRun run = { 0 };

                g_assert_no_error(error);
                json_object_set_string_member(given, "site", site);
                json_object_set_int_member(given, "pause_seconds", 0);
                bound = itk_playbook_bind_parameters(playbook, given, &error);
                g_assert_no_error(error);
                config.playbook = playbook;
                config.parameters = bound;
                config.work_dir = dir;
                execution = itk_execution_new(&config, &error);
                g_assert_no_error(error);
                g_signal_connect(execution, "finished", G_CALLBACK(hello_finished_cb), &run);
                g_assert_true(itk_execution_start(execution, &error));
                while (!run.finished)
                        g_main_context_iteration(NULL, TRUE);
                /* The value was data: the run completes and made no file. */
                g_assert_cmpstr(run.status, ==, "completed");
                g_assert_false(g_file_test(canary, G_FILE_TEST_EXISTS));
                g_free(run.status);
                while (g_main_context_iteration(NULL, FALSE))
                        ;
        }
        g_rmdir(dir);
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        itk_step_registry_ensure();

        g_test_add_func("/code-template/language-for", test_language_for);
        g_test_add_func("/code-template/shell/bare", test_shell_bare);
        g_test_add_func("/code-template/shell/single-quoted", test_shell_single_quoted);
        g_test_add_func("/code-template/shell/double-quoted", test_shell_double_quoted);
        g_test_add_func("/code-template/shell/substitution", test_shell_substitution);
        g_test_add_func("/code-template/shell/refused", test_shell_refused);
        g_test_add_func("/code-template/shell/nul", test_shell_nul);
        g_test_add_func("/code-template/shell/position", test_shell_position);
        g_test_add_func("/code-template/python/strings", test_python_strings);
        g_test_add_func("/code-template/python/expression", test_python_expression);
        g_test_add_func("/code-template/python/comment", test_python_comment);
        g_test_add_func("/code-template/python/refused", test_python_refused);
        g_test_add_func("/code-template/python/invalid-utf8", test_python_invalid_utf8);
        g_test_add_func("/code-template/render-params", test_render_params);
        g_test_add_func("/code-template/secret-escaped-form", test_secret_escaped_form);
        g_test_add_func("/code-template/validate", test_validate);
        g_test_add_func("/code-template/compat-playbooks", test_compat_playbooks);
        g_test_add_func("/code-template/property", test_property);
        g_test_add_func("/code-template/property-templates", test_property_templates);
        g_test_add_func("/code-template/hello-injection", test_hello_injection);
        return g_test_run();
}
