/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "itk-error.h"
#include "itk-yaml.h"
#include "steps/browser/itk-selector.h"

/* Every form of the dialect is accepted: a validator that refused one would
 * reject a playbook the old tool ran. */
static void
test_selector_valid_forms(void)
{
        static const char *const valid[] = {
                "button",
                "nav > a.login-link",
                "label + input",
                "h1 ~ form",
                "a[href*='login']",
                "input[placeholder*='username' i]",
                "input[placeholder*=\"a,b >> c\"]",
                "#u, #p, nav",
                "text=Login",
                "text=  spaced words ",
                "text='CONTINUE'",
                "text=\"Login\"",
                "\"Login\"",
                "'Login'",
                "css=nav a",
                "button:has-text(\"Install or Upgrade Module\")",
                "button:has-text('x(y)')",
                "li:has-text(Uninstall)",
                "label:has-text(\"I accept\"):not(:has-text(\"certificate\"))",
                "button:not([disabled])",
                "div:is(.a, .b) > span",
                "nav >> text=Login",
                "main >> .buttons >> button:has-text(\"Reset\")",
                "a\\>b",
                "[data-x=\"]\"]",
                "é.class",
                "body",
        };

        for (gsize i = 0; i < G_N_ELEMENTS(valid); i++) {
                g_autoptr(GError) error = NULL;
                gsize offset = 999;

                g_assert_true(itk_selector_validate(valid[i], &offset, &error));
                g_assert_no_error(error);
                g_assert_cmpuint(offset, ==, 999);
        }
}

/* The offset points at the problem (a playbook's line:column comes from it)
 * and the message names it; the same table as the page agent's test. */
static void
test_selector_invalid(void)
{
        static const struct {
                const char *selector;
                gsize offset;
                const char *message;
        } cases[] = {
                { "button[", 6, "unbalanced '[' in selector" },
                { "a >> ", 5, "empty selector after '>>'" },
                { ">> a", 0, "empty selector before '>>'" },
                { "a >>  >> b", 6, "empty selector after '>>'" },
                { "div:has-text(\"x\"", 12, "unbalanced '(' in selector" },
                { "text=\"abc", 5, "unterminated double quote in selector" },
                { "a[title='x]", 8, "unterminated single quote in selector" },
                { "a, , b", 3, "empty selector in ',' list" },
                { "a,", 2, "empty selector in ',' list" },
                { "text=", 5, "empty text after 'text='" },
                { "text=   ", 5, "empty text after 'text='" },
                { "css=", 4, "empty selector after 'css='" },
                { "div >", 5, "selector ends with '>'" },
                { "> div", 0, "selector starts with '>'" },
                { "a > + b", 4, "two combinators in a row ('>' and '+')" },
                { "a]", 1, "unbalanced ']' in selector" },
                { "a(]", 2, "unbalanced ']' in selector" },
                { "div:has-text()", 13, "empty argument of :has-text()" },
                { "div:has-text(  )", 13, "empty argument of :has-text()" },
                { "div:not(:has-text(\"a\") .b)", 3,
                  ":not(:has-text()) must hold only :has-text()" },
                { "div:is(:has-text(\"a\"))", 6,
                  ":has-text() is not supported inside this pseudo-class" },
                { "é[", 2, "unbalanced '[' in selector" },
                { "", 0, "empty selector" },
                { "   ", 0, "empty selector" },
        };

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GError) error = NULL;
                gsize offset = 999;

                g_test_message("%s", cases[i].selector);
                g_assert_false(itk_selector_validate(cases[i].selector, &offset, &error));
                g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK);
                g_assert_cmpstr(error->message, ==, cases[i].message);
                g_assert_cmpuint(offset, ==, cases[i].offset);
        }

        /* NULL offset pointer and invalid UTF-8 are fine too. */
        {
                g_autoptr(GError) error = NULL;
                g_assert_false(itk_selector_validate("a >>", NULL, &error));
                g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK);
        }
        {
                g_autoptr(GError) error = NULL;
                g_assert_false(itk_selector_validate("a\xff", NULL, &error));
                g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK);
        }
}

static void
collect_selectors(JsonNode *steps, GPtrArray *out)
{
        if (steps == NULL || !JSON_NODE_HOLDS_ARRAY(steps))
                return;
        for (guint i = 0; i < json_array_get_length(json_node_get_array(steps)); i++) {
                JsonNode *step = json_array_get_element(json_node_get_array(steps), i);
                JsonObject *params;
                JsonNode *sel;

                if (!JSON_NODE_HOLDS_OBJECT(step) ||
                    !json_object_has_member(json_node_get_object(step), "parameters"))
                        continue;
                params = json_object_get_object_member(json_node_get_object(step), "parameters");
                sel = params != NULL ? json_object_get_member(params, "selector") : NULL;
                if (sel != NULL && JSON_NODE_HOLDS_VALUE(sel) &&
                    json_node_get_value_type(sel) == G_TYPE_STRING &&
                    strstr(json_node_get_string(sel), "{{") == NULL)
                        g_ptr_array_add(out, g_strdup(json_node_get_string(sel)));
        }
}

/* Every selector of the old tool's 26 playbooks validates. */
static void
test_selector_compat_playbooks(void)
{
        const char *dir = g_getenv("ITK_COMPAT_PLAYBOOKS");
        static const char *const groups[] = { "builtin", "designer", "gateway", "perspective" };
        g_autoptr(GPtrArray) selectors = g_ptr_array_new_with_free_func(g_free);
        guint files = 0;

        if (dir == NULL || !g_file_test(dir, G_FILE_TEST_IS_DIR)) {
                g_test_skip("ITK_COMPAT_PLAYBOOKS is not set or missing");
                return;
        }
        for (gsize g = 0; g < G_N_ELEMENTS(groups); g++) {
                g_autofree char *sub = g_build_filename(dir, groups[g], NULL);
                g_autoptr(GDir) d = g_dir_open(sub, 0, NULL);
                const char *name;

                while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
                        g_autofree char *path = NULL;
                        g_autofree char *data = NULL;
                        g_autoptr(GError) error = NULL;
                        g_autoptr(ItkYamlNode) root = NULL;
                        g_autoptr(JsonNode) json = NULL;
                        JsonObject *o;

                        if (!g_str_has_suffix(name, ".yaml"))
                                continue;
                        path = g_build_filename(sub, name, NULL);
                        g_assert_true(g_file_get_contents(path, &data, NULL, &error));
                        root = itk_yaml_parse(data, -1, NULL, &error);
                        g_assert_no_error(error);
                        json = itk_yaml_node_to_json(root, &error);
                        g_assert_no_error(error);
                        o = json_node_get_object(json);
                        collect_selectors(json_object_get_member(o, "steps"), selectors);
                        collect_selectors(json_object_get_member(o, "rollback"), selectors);
                        files++;
                }
        }
        g_assert_cmpuint(files, ==, 26);
        g_assert_cmpuint(selectors->len, >=, 41);
        for (guint i = 0; i < selectors->len; i++) {
                const char *sel = g_ptr_array_index(selectors, i);
                g_autoptr(GError) error = NULL;
                gsize offset = 0;

                if (!itk_selector_validate(sel, &offset, &error))
                        g_error("'%s' refused at %" G_GSIZE_FORMAT ": %s", sel, offset,
                                error->message);
        }
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/selector/valid-forms", test_selector_valid_forms);
        g_test_add_func("/selector/invalid", test_selector_invalid);
        g_test_add_func("/selector/compat-playbooks", test_selector_compat_playbooks);
        return g_test_run();
}
