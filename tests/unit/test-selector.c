/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "itk-error.h"
#include "itk-yaml.h"
#include "steps/browser/itk-selector.h"

/* The cases the page agent's e2e test checks too (tests/fixtures): the two
 * validators must agree on them, message and byte offset included. */
static JsonObject *
load_cases(JsonNode **out_root)
{
        const char *root_dir = g_getenv("ITK_SOURCE_ROOT");
        g_autofree char *path = g_build_filename(root_dir != NULL ? root_dir : ".", "tests",
                                                 "fixtures", "selector-cases.json", NULL);
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(GError) error = NULL;

        g_assert_true(json_parser_load_from_file(parser, path, &error));
        g_assert_no_error(error);
        *out_root = json_node_copy(json_parser_get_root(parser));
        return json_node_get_object(*out_root);
}

/* Every form of the dialect is accepted: a validator that refused one would
 * reject a playbook the old tool ran. */
static void
test_selector_valid_forms(void)
{
        g_autoptr(JsonNode) root = NULL;
        JsonArray *valid = json_object_get_array_member(load_cases(&root), "valid");

        g_assert_cmpuint(json_array_get_length(valid), >, 20);
        for (guint i = 0; i < json_array_get_length(valid); i++) {
                const char *sel = json_array_get_string_element(valid, i);
                g_autoptr(GError) error = NULL;
                gsize offset = 999;

                g_test_message("%s", sel);
                g_assert_true(itk_selector_validate(sel, &offset, &error));
                g_assert_no_error(error);
                g_assert_cmpuint(offset, ==, 999);
        }
}

/* The offset points at the problem (a playbook's line:column comes from it)
 * and the message names it. */
static void
test_selector_invalid(void)
{
        g_autoptr(JsonNode) root = NULL;
        JsonArray *cases = json_object_get_array_member(load_cases(&root), "invalid");

        g_assert_cmpuint(json_array_get_length(cases), >, 20);
        for (guint i = 0; i < json_array_get_length(cases); i++) {
                JsonObject *c = json_array_get_object_element(cases, i);
                const char *sel = json_object_get_string_member(c, "selector");
                g_autoptr(GError) error = NULL;
                gsize offset = 999;

                g_test_message("%s", sel);
                g_assert_false(itk_selector_validate(sel, &offset, &error));
                g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK);
                g_assert_cmpstr(error->message, ==, json_object_get_string_member(c, "message"));
                g_assert_cmpuint(offset, ==, (gsize)json_object_get_int_member(c, "offset"));
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
