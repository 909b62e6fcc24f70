/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <math.h>
#include <string.h>

#include <glib/gstdio.h>

#include "itk-error.h"
#include "itk-playbook.h"
#include "itk-step.h"
#include "itk-yaml.h"

/* Step types registered by this test, so most cases do not depend on which
 * real handlers exist: test.noop (no required parameter) and test.needs
 * (requires `message` and one of `script`/`code`). */
static const char *const test_needs_required[] = { "message", "script|code", NULL };

static void
test_run_cb(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
            GAsyncReadyCallback callback, gpointer user_data)
{
        g_autoptr(GTask) task = itk_step_task_new(ctx, cancellable, callback, user_data);
        g_task_return_pointer(task, json_node_init_object(json_node_alloc(), json_object_new()),
                              (GDestroyNotify)json_node_unref);
}

static const ItkStepHandler test_noop_handler = { .type = "test.noop", .run = test_run_cb };
static const ItkStepHandler test_needs_handler = { .type = "test.needs",
                                                   .run = test_run_cb,
                                                   .required = test_needs_required };
static const char *const test_run_required[] = { "playbook", NULL };
/* Only when the real playbook.run handler is not built in. */
static const ItkStepHandler test_playbook_run_handler = { .type = "playbook.run",
                                                          .run = test_run_cb,
                                                          .required = test_run_required };

/* --- helpers --------------------------------------------------------------- */

static ItkPlaybook *
load(const char *yaml, GPtrArray *diagnostics, GError **error)
{
        return itk_playbook_new_from_data(yaml, -1, "test.yaml", diagnostics, error);
}

static ItkPlaybook *
load_ok(const char *yaml)
{
        g_autoptr(GError) error = NULL;
        ItkPlaybook *playbook = load(yaml, NULL, &error);

        g_assert_no_error(error);
        g_assert_nonnull(playbook);
        return playbook;
}

static const ItkDiagnostic *
find_diagnostic(GPtrArray *diagnostics, ItkDiagnosticSeverity severity, const char *needle)
{
        for (guint i = 0; i < diagnostics->len; i++) {
                const ItkDiagnostic *d = g_ptr_array_index(diagnostics, i);
                if (d->severity == severity && strstr(d->message, needle) != NULL)
                        return d;
        }
        return NULL;
}

static guint
count_diagnostics(GPtrArray *diagnostics, ItkDiagnosticSeverity severity)
{
        guint n = 0;

        for (guint i = 0; i < diagnostics->len; i++)
                n += ((const ItkDiagnostic *)g_ptr_array_index(diagnostics, i))->severity ==
                     severity;
        return n;
}

/* The load fails with INVALID_PLAYBOOK, an error diagnostic holding @needle
 * sits at @line/@column, and a single error makes the GError message
 * exactly "line L, column C: <message>". */
static void
assert_load_error(const char *yaml, const char *needle, int line, int column)
{
        g_autoptr(GPtrArray) diagnostics =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook = load(yaml, diagnostics, &error);
        const ItkDiagnostic *d;

        g_assert_null(playbook);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK);
        g_test_message("expecting %d:%d %s; got: %s", line, column, needle, error->message);
        d = find_diagnostic(diagnostics, ITK_DIAGNOSTIC_ERROR, needle);
        if (d == NULL)
                g_error("no error diagnostic with '%s'; got: %s", needle, error->message);
        g_assert_cmpint(d->line, ==, line);
        g_assert_cmpint(d->column, ==, column);
        if (count_diagnostics(diagnostics, ITK_DIAGNOSTIC_ERROR) == 1) {
                g_autofree char *expected = itk_diagnostic_to_string(d);
                g_assert_cmpstr(error->message, ==, expected);
        }
}

static ItkYamlNode *
yaml_ok(const char *text)
{
        g_autoptr(GError) error = NULL;
        ItkYamlNode *node = itk_yaml_parse(text, -1, NULL, &error);

        g_assert_no_error(error);
        g_assert_nonnull(node);
        return node;
}

static JsonNode *
yaml_json(const char *text)
{
        g_autoptr(ItkYamlNode) node = yaml_ok(text);
        g_autoptr(GError) error = NULL;
        JsonNode *json = itk_yaml_node_to_json(node, &error);

        g_assert_no_error(error);
        g_assert_nonnull(json);
        return json;
}

static char *
json_text(JsonNode *node)
{
        return json_to_string(node, FALSE);
}

/* "value: <scalar>" read as PyYAML would, as compact JSON of the value. */
static char *
scalar_json(const char *scalar)
{
        g_autofree char *doc = g_strdup_printf("value: %s\n", scalar);
        g_autoptr(JsonNode) root = yaml_json(doc);
        JsonNode *value = json_object_get_member(json_node_get_object(root), "value");

        return json_text(value);
}

#define MINIMAL_HEAD "name: Test\nversion: 1\n"

/* --- YAML layer ------------------------------------------------------------- */

static void
test_yaml_syntax_error_position(void)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkYamlNode) node = NULL;
        int line, column;
        const char *message;

        /* A second ':' on a line: libyaml's scanner error, at the second colon. */
        node = itk_yaml_parse("name: x\nversion: 1\nsteps: a: b\n", -1, NULL, &error);
        g_assert_null(node);
        g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
        g_assert_true(g_str_has_prefix(error->message, "line 3, column 9: "));
        g_assert_nonnull(strstr(error->message, "mapping values are not allowed"));
        message = itk_yaml_error_get_position(error, &line, &column);
        g_assert_cmpint(line, ==, 3);
        g_assert_cmpint(column, ==, 9);
        g_assert_true(g_str_has_prefix(message, "mapping values are not allowed"));
        g_clear_error(&error);

        /* Unclosed flow sequence: the problem and where the sequence began. */
        node = itk_yaml_parse("a: [1, 2\nb: 3\n", -1, NULL, &error);
        g_assert_null(node);
        g_assert_true(g_str_has_prefix(error->message, "line "));
        g_assert_nonnull(strstr(error->message, "line 1, column 4"));
        g_clear_error(&error);

        /* Invalid UTF-8 is a reader error with a byte offset turned into a position. */
        node = itk_yaml_parse("a: 1\nb: \xff\n", -1, NULL, &error);
        g_assert_null(node);
        g_assert_true(g_str_has_prefix(error->message, "line 2, column 4: "));
        g_clear_error(&error);

        /* Bad indentation of a block sequence entry. */
        node = itk_yaml_parse("steps:\n  - id: a\n - id: b\n", -1, NULL, &error);
        g_assert_null(node);
        g_assert_true(g_str_has_prefix(error->message, "line 3, column 2: "));
}

static void
test_yaml_tree(void)
{
        g_autoptr(ItkYamlNode) root =
                yaml_ok("# comment\nname: 'quoted'\nlist:\n  - plain\n  - |\n    block\n");
        ItkYamlNode *node;

        g_assert_cmpint(root->kind, ==, ITK_YAML_MAPPING);
        g_assert_cmpuint(itk_yaml_node_get_size(root), ==, 2);
        g_assert_cmpint(root->line, ==, 2);
        g_assert_cmpint(root->column, ==, 1);

        node = itk_yaml_node_lookup(root, "name");
        g_assert_nonnull(node);
        g_assert_cmpint(node->kind, ==, ITK_YAML_SCALAR);
        g_assert_cmpstr(node->text, ==, "quoted");
        g_assert_false(node->plain);
        g_assert_cmpint(node->line, ==, 2);
        g_assert_cmpint(node->column, ==, 7);

        node = itk_yaml_node_lookup(root, "list");
        g_assert_cmpint(node->kind, ==, ITK_YAML_SEQUENCE);
        g_assert_cmpuint(itk_yaml_node_get_size(node), ==, 2);
        g_assert_true(itk_yaml_node_get_item(node, 0)->plain);
        g_assert_cmpint(itk_yaml_node_get_item(node, 0)->line, ==, 4);
        g_assert_cmpint(itk_yaml_node_get_item(node, 0)->column, ==, 5);
        g_assert_false(itk_yaml_node_get_item(node, 1)->plain);
        g_assert_cmpstr(itk_yaml_node_get_item(node, 1)->text, ==, "block\n");
        g_assert_null(itk_yaml_node_lookup(root, "missing"));

        /* Tags are kept, resolved to their full form. */
        g_clear_pointer(&root, itk_yaml_node_unref);
        root = yaml_ok("a: !!str 12\n");
        g_assert_cmpstr(itk_yaml_node_lookup(root, "a")->tag, ==, "tag:yaml.org,2002:str");

        /* An empty stream is a null document, as PyYAML reads it. */
        g_clear_pointer(&root, itk_yaml_node_unref);
        root = yaml_ok("# nothing\n");
        g_assert_cmpint(root->kind, ==, ITK_YAML_SCALAR);
        g_assert_true(itk_yaml_node_is_null(root));

        /* Duplicate keys: lookup gives the last, as PyYAML keeps it. */
        g_clear_pointer(&root, itk_yaml_node_unref);
        root = yaml_ok("a: 1\na: 2\n");
        g_assert_cmpstr(itk_yaml_node_lookup(root, "a")->text, ==, "2");
}

typedef struct {
        const char *scalar;
        const char *json; /* compact JSON of the resolved value */
} ResolveCase;

static void
test_yaml_resolve_pyyaml(void)
{
        /* Each expectation is what PyYAML's safe_load gives (checked against
         * PyYAML 6), except the YAML 1.2 forms 0o17 and 1e3 marked below. */
        static const ResolveCase cases[] = {
                { "", "null" },
                { "~", "null" },
                { "null", "null" },
                { "Null", "null" },
                { "NULL", "null" },
                { "nULL", "\"nULL\"" },
                { "true", "true" },
                { "True", "true" },
                { "TRUE", "true" },
                { "yes", "true" },
                { "Yes", "true" },
                { "on", "true" },
                { "ON", "true" },
                { "false", "false" },
                { "No", "false" },
                { "off", "false" },
                { "OFF", "false" },
                { "y", "\"y\"" },
                { "n", "\"n\"" },
                { "tRUE", "\"tRUE\"" },
                { "12", "12" },
                { "+12", "12" },
                { "-12", "-12" },
                { "-0", "0" },
                { "1_000", "1000" },
                { "0x1F", "31" },
                { "0x1_F", "31" },
                { "-0x10", "-16" },
                { "0b101", "5" },
                { "017", "15" },
                { "0o17", "15" }, /* YAML 1.2; PyYAML: text */
                { "08", "\"08\"" },
                { "190:20:30", "685230" },
                { "1:70", "\"1:70\"" },
                { "9223372036854775807", "9223372036854775807" },
                { "-9223372036854775808", "-9223372036854775808" },
                { "1.5", "1.5" },
                { "1.", "1.0" },
                { ".5", "0.5" },
                { "-1_0.5", "-10.5" },
                { "1.0e+3", "1000.0" },
                { "1e3", "1000.0" },  /* YAML 1.2; PyYAML: text */
                { "2.5E-1", "0.25" }, /* YAML 1.2 form of the exponent */
                { "+.5", "\"+.5\"" },
                { "1_", "1" },
                { "_1", "\"_1\"" },
                { "0x_", "\"0x_\"" },
                { "2025-11-17", "\"2025-11-17\"" },
                { "1.0.0", "\"1.0.0\"" },
                { "'yes'", "\"yes\"" },
                { "\"12\"", "\"12\"" },
                { "\"null\"", "\"null\"" },
                { "!!str 12", "\"12\"" },
                { "!!str yes", "\"yes\"" },
                { "!!int \"12\"", "12" },
                { "!!float 1", "1.0" },
                { "!!bool \"on\"", "true" },
                { "!!null whatever", "null" },
                { "! 12", "\"12\"" },
                { "hello world", "\"hello world\"" },
        };

        for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *got = scalar_json(cases[i].scalar);
                g_test_message("%s -> %s", cases[i].scalar, got);
                g_assert_cmpstr(got, ==, cases[i].json);
        }
}

static void
test_yaml_resolve_special(void)
{
        g_autoptr(JsonNode) root =
                yaml_json("a: .inf\nb: -.Inf\nc: .NaN\nd: 18446744073709551616\n");
        JsonObject *object = json_node_get_object(root);

        g_assert_true(isinf(json_object_get_double_member(object, "a")));
        g_assert_cmpfloat(json_object_get_double_member(object, "a"), >, 0);
        g_assert_cmpfloat(json_object_get_double_member(object, "b"), <, 0);
        g_assert_true(isnan(json_object_get_double_member(object, "c")));
        /* Beyond 64 bits: a float, not a wrapped integer. */
        g_assert_cmpint(json_node_get_value_type(json_object_get_member(object, "d")), ==,
                        G_TYPE_DOUBLE);
        g_assert_cmpfloat(json_object_get_double_member(object, "d"), ==, 18446744073709551616.0);
}

static void
test_yaml_to_json_errors(void)
{
        static const struct {
                const char *yaml;
                const char *prefix;
        } cases[] = {
                { "a: 1\nb: !foo x\n", "line 2, column 4: unsupported tag '!foo'" },
                { "a: !!int abc\n", "line 1, column 4: 'abc' is not a valid !!int" },
                { "a: !!bool maybe\n", "line 1, column 4: 'maybe' is not a valid !!bool" },
                { "? [a, b]\n: c\n", "line 1, column 3: a mapping key must be a scalar" },
                { "a: \"x\\0y\"\n", "line 1, column 4: text must not contain NUL" },
                { "a: !!map [1]\n", "line 1, column 4: unsupported tag" },
        };

        for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(ItkYamlNode) node = yaml_ok(cases[i].yaml);
                g_autoptr(GError) error = NULL;
                g_autoptr(JsonNode) json = itk_yaml_node_to_json(node, &error);

                g_assert_null(json);
                g_assert_nonnull(error);
                g_test_message("%s", error->message);
                g_assert_true(g_str_has_prefix(error->message, cases[i].prefix));
        }
}

static void
test_yaml_aliases(void)
{
        g_autoptr(JsonNode) root = yaml_json("base: &b {x: 1, y: 2}\n"
                                             "copy: *b\n"
                                             "list: &l [1, *b]\n"
                                             "again: *l\n"
                                             "merged:\n"
                                             "  <<: *b\n"
                                             "  y: 3\n"
                                             "  z: 4\n"
                                             "multi:\n"
                                             "  <<: [{x: first}, {x: second, w: 5}]\n"
                                             "quoted:\n"
                                             "  '<<': literal\n"
                                             "redefined: &b 7\n"
                                             "after: *b\n");
        g_autofree char *copy = NULL;
        g_autofree char *again = NULL;
        g_autofree char *merged = NULL;
        g_autofree char *multi = NULL;
        g_autofree char *quoted = NULL;
        JsonObject *object = json_node_get_object(root);

        copy = json_text(json_object_get_member(object, "copy"));
        g_assert_cmpstr(copy, ==, "{\"x\":1,\"y\":2}");
        again = json_text(json_object_get_member(object, "again"));
        g_assert_cmpstr(again, ==, "[1,{\"x\":1,\"y\":2}]");
        /* The mapping's own keys override merged ones. */
        merged = json_text(json_object_get_member(object, "merged"));
        g_assert_cmpstr(merged, ==, "{\"x\":1,\"y\":3,\"z\":4}");
        /* In a merge list the earlier mapping wins (PyYAML). */
        multi = json_text(json_object_get_member(object, "multi"));
        g_assert_cmpstr(multi, ==, "{\"x\":\"first\",\"w\":5}");
        /* Only a plain << is a merge key. */
        quoted = json_text(json_object_get_member(object, "quoted"));
        g_assert_cmpstr(quoted, ==, "{\"<<\":\"literal\"}");
        /* A redefined anchor applies to later aliases. */
        g_assert_cmpint(json_object_get_int_member(object, "after"), ==, 7);
}

static void
test_yaml_alias_errors(void)
{
        static const struct {
                const char *yaml;
                const char *prefix;
        } cases[] = {
                { "a: 1\nb: *nope\n", "line 2, column 4: unknown alias '*nope'" },
                { "a: &x [1, *x]\n", "line 1, column 11: alias '*x' refers to a collection" },
                { "a: &x {b: *x}\n", "line 1, column 11: alias '*x' refers to a collection" },
                { "a:\n  <<: 5\n", "line 2, column 7: a merge key '<<' needs a mapping" },
                { "a:\n  <<: [{b: 1}, 2]\n", "line 2, column 16: a merge key '<<' needs" },
        };

        for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(ItkYamlNode) node = itk_yaml_parse(cases[i].yaml, -1, NULL, &error);

                g_assert_null(node);
                g_assert_nonnull(error);
                g_test_message("%s", error->message);
                g_assert_true(g_str_has_prefix(error->message, cases[i].prefix));
        }
}

/* The classic "billion laughs": 10 aliases per level, 9 levels. */
static char *
alias_bomb(void)
{
        GString *text = g_string_new("a0: &a0 [lol]\n");

        for (guint level = 1; level <= 9; level++) {
                g_string_append_printf(text, "a%u: &a%u [", level, level);
                for (guint i = 0; i < 10; i++)
                        g_string_append_printf(text, "%s*a%u", i > 0 ? ", " : "", level - 1);
                g_string_append(text, "]\n");
        }
        return g_string_free(text, FALSE);
}

static void
test_yaml_alias_bomb(void)
{
        g_autofree char *bomb = alias_bomb();
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkYamlNode) node = NULL;
        gint64 start = g_get_monotonic_time();

        node = itk_yaml_parse(bomb, -1, NULL, &error);
        g_assert_null(node);
        g_assert_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE);
        g_assert_nonnull(strstr(error->message, "more than 200000 nodes"));
        /* Level 5 expands to 211,111 nodes: the bound trips there, on line 6. */
        g_assert_true(g_str_has_prefix(error->message, "line 6, "));
        /* Refused by counting, not by expanding: well under a second even
         * under a sanitizer. */
        g_assert_cmpint(g_get_monotonic_time() - start, <, G_USEC_PER_SEC);
}

static void
test_yaml_aliases_within_budget(void)
{
        /* 5 levels of 10 = 100,000 nodes expanded: legal and kept shared. */
        g_autoptr(GString) text = g_string_new("a0: &a0 [lol]\n");
        g_autoptr(ItkYamlNode) node = NULL;
        g_autoptr(JsonNode) json = NULL;
        g_autoptr(GError) error = NULL;
        JsonNode *level;

        for (guint level_n = 1; level_n <= 4; level_n++) {
                g_string_append_printf(text, "a%u: &a%u [", level_n, level_n);
                for (guint i = 0; i < 10; i++)
                        g_string_append_printf(text, "%s*a%u", i > 0 ? ", " : "", level_n - 1);
                g_string_append(text, "]\n");
        }
        node = itk_yaml_parse(text->str, -1, NULL, &error);
        g_assert_no_error(error);
        json = itk_yaml_node_to_json(node, &error);
        g_assert_no_error(error);
        level = json_object_get_member(json_node_get_object(json), "a4");
        g_assert_cmpuint(json_array_get_length(json_node_get_array(level)), ==, 10);
        /* Shared, not copied: the alias in a1 is the very node a0 anchors. */
        g_assert_true(itk_yaml_node_get_item(itk_yaml_node_lookup(node, "a1"), 3) ==
                      itk_yaml_node_lookup(node, "a0"));
}

static void
test_yaml_deep_nesting(void)
{
        g_autoptr(GString) open = g_string_new(NULL);
        g_autoptr(GString) closed = NULL;
        g_autoptr(GString) deep_alias = g_string_new(NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkYamlNode) node = NULL;

        for (guint i = 0; i < 10000; i++)
                g_string_append_c(open, '[');
        node = itk_yaml_parse(open->str, -1, NULL, &error);
        g_assert_null(node);
        g_assert_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE);
        /* The 65th '[' is refused. */
        g_assert_true(g_str_has_prefix(error->message, "line 1, column 65: collections are "
                                                       "nested more than 64 deep"));
        g_clear_error(&error);

        closed = g_string_new(open->str);
        for (guint i = 0; i < 10000; i++)
                g_string_append_c(closed, ']');
        node = itk_yaml_parse(closed->str, -1, NULL, &error);
        g_assert_null(node);
        g_assert_nonnull(strstr(error->message, "nested more than 64 deep"));
        g_clear_error(&error);

        /* Exactly 64 levels are fine. */
        g_string_truncate(closed, 0);
        for (guint i = 0; i < 64; i++)
                g_string_append_c(closed, '[');
        for (guint i = 0; i < 64; i++)
                g_string_append_c(closed, ']');
        node = itk_yaml_parse(closed->str, -1, NULL, &error);
        g_assert_no_error(error);
        g_clear_pointer(&node, itk_yaml_node_unref);

        /* Depth through an alias counts the anchored collection's own depth:
         * 40 levels anchored, used inside 40 more. */
        g_string_append(deep_alias, "a: &x ");
        for (guint i = 0; i < 40; i++)
                g_string_append_c(deep_alias, '[');
        for (guint i = 0; i < 40; i++)
                g_string_append_c(deep_alias, ']');
        g_string_append(deep_alias, "\nb: ");
        for (guint i = 0; i < 40; i++)
                g_string_append_c(deep_alias, '[');
        g_string_append(deep_alias, "*x");
        for (guint i = 0; i < 40; i++)
                g_string_append_c(deep_alias, ']');
        g_string_append_c(deep_alias, '\n');
        node = itk_yaml_parse(deep_alias->str, -1, NULL, &error);
        g_assert_null(node);
        g_assert_true(g_str_has_prefix(error->message, "line 2, column 44: "));
        g_assert_nonnull(strstr(error->message, "aliases expanded"));
}

static void
test_yaml_documents(void)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkYamlNode) node = NULL;

        node = itk_yaml_parse("a: 1\n---\nb: 2\n", -1, NULL, &error);
        g_assert_null(node);
        g_assert_true(g_str_has_prefix(error->message, "line 2, column 1: only one document"));
        g_clear_error(&error);

        /* An explicit start and end marker around one document is fine. */
        node = itk_yaml_parse("---\na: 1\n...\n", -1, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(itk_yaml_node_lookup(node, "a")->text, ==, "1");
}

static void
test_yaml_size_limit(void)
{
        ItkYamlLimits limits = { .max_size = 10, .max_depth = 4, .max_nodes = 5 };
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkYamlNode) node = NULL;

        node = itk_yaml_parse("a: 1234567890\n", -1, &limits, &error);
        g_assert_null(node);
        g_assert_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE);
        g_clear_error(&error);

        /* The node bound counts every scalar and collection: 1 + 2 * 3 > 5. */
        limits.max_size = 100;
        node = itk_yaml_parse("{a: 1, b: 2, c: 3}", -1, &limits, &error);
        g_assert_null(node);
        g_assert_nonnull(strstr(error->message, "more than 5 nodes"));
        g_clear_error(&error);
        node = itk_yaml_parse("{a: 1, b: 2}", -1, &limits, &error);
        g_assert_no_error(error);
}

/* --- loading ------------------------------------------------------------------ */

static void
test_playbook_minimal_defaults(void)
{
        g_autoptr(ItkPlaybook) playbook = load_ok("name: Minimal\n"
                                                  "version: 1.0\n"
                                                  "steps:\n"
                                                  "  - id: s1\n"
                                                  "    name: Step one\n"
                                                  "    type: test.noop\n");
        const ItkStepDef *step;

        g_assert_cmpstr(playbook->id, ==, "test.yaml");
        g_assert_cmpstr(playbook->name, ==, "Minimal");
        /* Kept as text, not turned into the float 1. */
        g_assert_cmpstr(playbook->version, ==, "1.0");
        g_assert_null(playbook->path);
        g_assert_null(itk_playbook_get_dir(playbook));
        g_assert_null(playbook->description);
        g_assert_null(playbook->domain);
        g_assert_null(playbook->metadata);
        g_assert_false(playbook->verified);
        g_assert_nonnull(strstr(playbook->source, "name: Minimal"));
        g_assert_cmpuint(playbook->parameters->len, ==, 0);
        g_assert_cmpuint(playbook->rollback->len, ==, 0);
        g_assert_cmpuint(playbook->steps->len, ==, 1);

        step = g_ptr_array_index(playbook->steps, 0);
        g_assert_cmpstr(step->id, ==, "s1");
        g_assert_cmpstr(step->name, ==, "Step one");
        g_assert_cmpstr(step->type, ==, "test.noop");
        g_assert_cmpfloat(step->timeout, ==, 300);
        g_assert_cmpuint(step->retry_count, ==, 0);
        g_assert_cmpfloat(step->retry_delay, ==, 5);
        g_assert_cmpint(step->on_failure, ==, ITK_ON_FAILURE_ABORT);
        g_assert_true(JSON_NODE_HOLDS_OBJECT(step->parameters));
        g_assert_cmpuint(json_object_get_size(json_node_get_object(step->parameters)), ==, 0);
        g_assert_cmpint(step->line, ==, 4);
        g_assert_cmpint(step->column, ==, 5);

        g_assert_cmpint(itk_playbook_find_step(playbook, "s1"), ==, 0);
        g_assert_cmpint(itk_playbook_find_step(playbook, "s2"), ==, -1);
}

static void
test_playbook_full(void)
{
        g_autoptr(GPtrArray) diagnostics =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook = NULL;
        const ItkParamDef *def;
        const ItkStepDef *step;
        JsonObject *params;

        playbook = load("name: Full\n"
                        "version: \"2.1\"\n"
                        "description: Everything\n"
                        "domain: gateway\n"
                        "group: Tests\n"
                        "verified: yes\n"
                        "parameters:\n"
                        "  - name: url\n"
                        "    type: string\n"
                        "    description: The URL\n"
                        "  - name: port\n"
                        "    type: integer\n"
                        "    required: no\n"
                        "    default: \"8088\"\n"
                        "  - name: ratio\n"
                        "    type: float\n"
                        "    default: 1\n"
                        "  - name: flag\n"
                        "    type: boolean\n"
                        "    default: on\n"
                        "  - name: tags\n"
                        "    type: list\n"
                        "    default: [a, b]\n"
                        "  - name: extra\n"
                        "    type: dict\n"
                        "    default: '{\"k\": 1}'\n"
                        "  - name: label\n"
                        "    type: string\n"
                        "    default: 1.10\n"
                        "  - name: module\n"
                        "    type: file\n"
                        "  - name: gw\n"
                        "    type: credential\n"
                        "steps:\n"
                        "  - id: first\n"
                        "    name: First\n"
                        "    type: test.needs\n"
                        "    parameters:\n"
                        "      message: 'Hello {{ url }} {{ parameter.port }}'\n"
                        "      code: print(1)\n"
                        "      nested: {list: ['{{ step.second.key }}']}\n"
                        "    timeout: 2.5\n"
                        "    retry_count: 3\n"
                        "    retry_delay: 0\n"
                        "    on_failure: rollback\n"
                        "  - id: second\n"
                        "    name: Second\n"
                        "    type: test.noop\n"
                        "    timeout: '30'\n"
                        "    on_failure: continue\n"
                        "rollback:\n"
                        "  - id: undo\n"
                        "    name: Undo\n"
                        "    type: test.noop\n"
                        "    parameters:\n"
                        "      what: '{{ step.first }}'\n"
                        "      user: '{{ credential.gw.username }}'\n"
                        "      css: '{{ color: red; }}'\n"
                        "metadata:\n"
                        "  author: me\n"
                        "  tags: [x, y]\n",
                        diagnostics, &error);
        g_assert_no_error(error);
        g_assert_nonnull(playbook);
        /* A valid playbook has no diagnostics at all. */
        for (guint i = 0; i < diagnostics->len; i++)
                g_test_message("%s", ((ItkDiagnostic *)diagnostics->pdata[i])->message);
        g_assert_cmpuint(diagnostics->len, ==, 0);

        g_assert_cmpstr(playbook->version, ==, "2.1");
        g_assert_cmpstr(playbook->description, ==, "Everything");
        g_assert_cmpstr(playbook->domain, ==, "gateway");
        g_assert_cmpstr(playbook->group, ==, "Tests");
        g_assert_true(playbook->verified);
        g_assert_true(JSON_NODE_HOLDS_OBJECT(playbook->metadata));
        g_assert_cmpstr(
                json_object_get_string_member(json_node_get_object(playbook->metadata), "author"),
                ==, "me");

        g_assert_cmpuint(playbook->parameters->len, ==, 9);
        def = itk_playbook_lookup_param(playbook, "url");
        g_assert_cmpint(def->type, ==, ITK_PARAM_STRING);
        g_assert_true(def->required);
        g_assert_null(def->default_value);
        g_assert_cmpstr(def->description, ==, "The URL");
        def = itk_playbook_lookup_param(playbook, "port");
        g_assert_false(def->required);
        /* A quoted "8088" default for an integer is converted like a given value. */
        g_assert_cmpint(json_node_get_int(def->default_value), ==, 8088);
        def = itk_playbook_lookup_param(playbook, "ratio");
        g_assert_cmpint(json_node_get_value_type(def->default_value), ==, G_TYPE_DOUBLE);
        g_assert_cmpfloat(json_node_get_double(def->default_value), ==, 1.0);
        def = itk_playbook_lookup_param(playbook, "flag");
        g_assert_true(json_node_get_boolean(def->default_value));
        def = itk_playbook_lookup_param(playbook, "tags");
        g_assert_cmpuint(json_array_get_length(json_node_get_array(def->default_value)), ==, 2);
        def = itk_playbook_lookup_param(playbook, "extra");
        g_assert_cmpint(json_object_get_int_member(json_node_get_object(def->default_value), "k"),
                        ==, 1);
        /* A text parameter keeps the YAML text of its default. */
        def = itk_playbook_lookup_param(playbook, "label");
        g_assert_cmpstr(json_node_get_string(def->default_value), ==, "1.10");
        g_assert_cmpint(itk_playbook_lookup_param(playbook, "module")->type, ==, ITK_PARAM_FILE);
        g_assert_cmpint(itk_playbook_lookup_param(playbook, "gw")->type, ==, ITK_PARAM_CREDENTIAL);
        g_assert_null(itk_playbook_lookup_param(playbook, "nope"));

        step = g_ptr_array_index(playbook->steps, 0);
        g_assert_cmpfloat(step->timeout, ==, 2.5);
        g_assert_cmpuint(step->retry_count, ==, 3);
        g_assert_cmpfloat(step->retry_delay, ==, 0);
        g_assert_cmpint(step->on_failure, ==, ITK_ON_FAILURE_ROLLBACK);
        params = json_node_get_object(step->parameters);
        g_assert_cmpstr(json_object_get_string_member(params, "message"), ==,
                        "Hello {{ url }} {{ parameter.port }}");
        step = g_ptr_array_index(playbook->steps, 1);
        g_assert_cmpfloat(step->timeout, ==, 30);
        g_assert_cmpint(step->on_failure, ==, ITK_ON_FAILURE_CONTINUE);
        g_assert_cmpuint(playbook->rollback->len, ==, 1);
        step = g_ptr_array_index(playbook->rollback, 0);
        g_assert_cmpstr(step->id, ==, "undo");
        /* Rollback steps are not main steps. */
        g_assert_cmpint(itk_playbook_find_step(playbook, "undo"), ==, -1);
}

static void
test_playbook_version_text(void)
{
        static const struct {
                const char *yaml;
                const char *version;
        } cases[] = {
                { "1.0", "1.0" },   { "1.10", "1.10" },     { "2", "2" },
                { "'1.0'", "1.0" }, { "4.0-ui", "4.0-ui" }, { "0x10", "0x10" },
        };

        for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *yaml = g_strdup_printf("name: V\nversion: %s\nsteps:\n"
                                                        "  - {id: a, name: A, type: test.noop}\n",
                                                        cases[i].yaml);
                g_autoptr(ItkPlaybook) playbook = load_ok(yaml);
                g_assert_cmpstr(playbook->version, ==, cases[i].version);
        }
}

static void
test_playbook_pyyaml_booleans(void)
{
        static const struct {
                const char *text;
                gboolean value;
        } cases[] = {
                { "yes", TRUE },  { "Yes", TRUE },  { "YES", TRUE },    { "on", TRUE },
                { "On", TRUE },   { "True", TRUE }, { "no", FALSE },    { "No", FALSE },
                { "off", FALSE }, { "OFF", FALSE }, { "False", FALSE }, { "false", FALSE },
        };

        for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *yaml =
                        g_strdup_printf("name: B\nversion: 1\nverified: %s\nparameters:\n"
                                        "  - {name: p, type: boolean, required: %s, default: %s}\n"
                                        "steps:\n  - {id: a, name: A, type: test.noop}\n",
                                        cases[i].text, cases[i].text, cases[i].text);
                g_autoptr(ItkPlaybook) playbook = load_ok(yaml);
                const ItkParamDef *def = itk_playbook_lookup_param(playbook, "p");

                g_test_message("%s", cases[i].text);
                g_assert_cmpint(playbook->verified, ==, cases[i].value);
                g_assert_cmpint(def->required, ==, cases[i].value);
                g_assert_cmpint(json_node_get_boolean(def->default_value), ==, cases[i].value);
        }

        /* Not booleans for PyYAML either: y, n and quoted words. */
        assert_load_error("name: B\nversion: 1\nverified: y\nsteps:\n"
                          "  - {id: a, name: A, type: test.noop}\n",
                          "'verified' must be true or false, not string", 3, 11);
        assert_load_error("name: B\nversion: 1\nverified: 'yes'\nsteps:\n"
                          "  - {id: a, name: A, type: test.noop}\n",
                          "'verified' must be true or false", 3, 11);
}

static void
test_playbook_malformed_yaml(void)
{
        assert_load_error("name: x\nversion: 1\nsteps:\n  - id: a\n    name: b: c\n",
                          "mapping values are not allowed", 5, 12);
        assert_load_error("name: [unclosed\nversion: 1\n", "did not find expected", 2, 8);
        assert_load_error("name: \"open\nversion: 1\n", "unexpected end of stream", 3, 1);
        assert_load_error("\tname: x\n", "found character that cannot start any token", 1, 1);
}

static void
test_playbook_not_a_mapping(void)
{
        assert_load_error("", "the document is empty", 1, 1);
        assert_load_error("- a\n- b\n", "a playbook must be a mapping", 1, 1);
        assert_load_error("just text\n", "a playbook must be a mapping", 1, 1);
}

static void
test_playbook_missing_fields(void)
{
        assert_load_error("version: 1\nsteps:\n  - {id: a, name: A, type: test.noop}\n",
                          "missing 'name'", 1, 1);
        assert_load_error("name: X\nsteps:\n  - {id: a, name: A, type: test.noop}\n",
                          "missing 'version'", 1, 1);
        assert_load_error("name: ''\nversion: 1\nsteps:\n  - {id: a, name: A, type: test.noop}\n",
                          "'name' must not be empty", 1, 7);
        assert_load_error("name: X\nversion:\nsteps:\n  - {id: a, name: A, type: test.noop}\n",
                          "'version' must not be empty", 2, 9);
        assert_load_error("name: [X]\nversion: 1\nsteps:\n  - {id: a, name: A, type: test.noop}\n",
                          "'name' must be text, not a list", 1, 7);
        assert_load_error(MINIMAL_HEAD, "missing 'steps'", 1, 1);
        assert_load_error(MINIMAL_HEAD "steps: []\n", "'steps' must not be empty", 3, 8);
        assert_load_error(MINIMAL_HEAD "steps:\n", "'steps' must not be empty", 3, 7);
        assert_load_error(MINIMAL_HEAD "steps: {a: 1}\n", "'steps' must be a list of steps", 3, 8);
        assert_load_error(MINIMAL_HEAD "steps:\n  - name: A\n    type: test.noop\n",
                          "step 1: missing 'id'", 4, 5);
        assert_load_error(MINIMAL_HEAD "steps:\n  - {id: a, name: A, type: test.noop}\n"
                                       "  - {name: B, type: test.noop}\n",
                          "step 2: missing 'id'", 5, 5);
        assert_load_error(MINIMAL_HEAD "steps:\n  - {id: a, type: test.noop}\n",
                          "step 'a': missing 'name'", 4, 5);
        assert_load_error(MINIMAL_HEAD "steps:\n  - {id: a, name: A}\n", "step 'a': missing 'type'",
                          4, 5);
        assert_load_error(MINIMAL_HEAD "steps:\n  - just-a-string\n",
                          "step 1: a step must be a mapping", 4, 5);
        assert_load_error(MINIMAL_HEAD "steps:\n  - {id: a, name: A, type: test.noop}\n"
                                       "rollback:\n  - {name: R, type: test.noop}\n",
                          "rollback step 1: missing 'id'", 6, 5);
}

static void
test_playbook_duplicate_ids(void)
{
        g_autoptr(GPtrArray) diagnostics =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook = NULL;
        const ItkDiagnostic *d;

        assert_load_error(MINIMAL_HEAD "steps:\n"
                                       "  - id: a\n    name: A\n    type: test.noop\n"
                                       "  - id: a\n    name: B\n    type: test.noop\n",
                          "duplicate step id 'a' (first used at line 4, column 9)", 7, 9);
        /* Across steps and rollback. */
        playbook = load(MINIMAL_HEAD "steps:\n"
                                     "  - {id: a, name: A, type: test.noop}\n"
                                     "rollback:\n"
                                     "  - {id: a, name: R, type: test.noop}\n",
                        diagnostics, &error);
        g_assert_null(playbook);
        d = find_diagnostic(diagnostics, ITK_DIAGNOSTIC_ERROR, "duplicate step id 'a'");
        g_assert_nonnull(d);
        g_assert_cmpint(d->line, ==, 6);
        g_assert_cmpstr(d->step_id, ==, "a");
}

static void
test_playbook_step_types(void)
{
        g_autoptr(GPtrArray) diagnostics =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook = NULL;
        const ItkDiagnostic *d;

        assert_load_error(MINIMAL_HEAD "steps:\n  - id: s\n    name: S\n    type: utility.nope\n",
                          "step 's': unknown step type 'utility.nope'", 6, 11);

        /* A family of later work: named with the step, error code still INVALID_PLAYBOOK. */
        playbook = load(MINIMAL_HEAD "steps:\n"
                                     "  - id: step3_navigate_home\n"
                                     "    name: Home\n"
                                     "    type: fat.generate_report\n"
                                     "    parameters: {url: 'http://x'}\n",
                        diagnostics, &error);
        g_assert_null(playbook);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK);
        g_assert_cmpstr(error->message, ==,
                        "line 6, column 11: step 'step3_navigate_home': step type "
                        "'fat.generate_report' is not supported yet");
        d = find_diagnostic(diagnostics, ITK_DIAGNOSTIC_ERROR, "not supported yet");
        g_assert_cmpstr(d->step_id, ==, "step3_navigate_home");

        for (guint i = 0; i < 5; i++) {
                static const char *const types[] = { "designer.open_view", "fat.report",
                                                     "designer.launch", "fat.summary",
                                                     "fat.run_tests" };
                g_autofree char *yaml = g_strdup_printf(
                        MINIMAL_HEAD "steps:\n  - {id: s%u, name: S, type: %s}\n", i, types[i]);
                g_autofree char *needle = g_strdup_printf(
                        "step 's%u': step type '%s' is not supported yet", i, types[i]);
                assert_load_error(yaml, needle, 4, 29);
        }
}

static void
test_playbook_handler_parameters(void)
{
        g_autoptr(GPtrArray) diagnostics =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook = NULL;

        /* Both required entries missing: two errors, one message each. */
        playbook = load(MINIMAL_HEAD "steps:\n  - id: s\n    name: S\n    type: test.needs\n",
                        diagnostics, &error);
        g_assert_null(playbook);
        g_assert_nonnull(find_diagnostic(diagnostics, ITK_DIAGNOSTIC_ERROR,
                                         "step 's': missing required parameter 'message'"));
        g_assert_nonnull(find_diagnostic(diagnostics, ITK_DIAGNOSTIC_ERROR,
                                         "step 's': missing required parameter 'script' or "
                                         "'code'"));
        g_assert_cmpstr(error->message, ==,
                        "line 4, column 5: step 's': missing required parameter 'message' (and 1 "
                        "more problem)");

        /* "script|code": either satisfies it; a null value does not. */
        g_clear_pointer(&playbook, itk_playbook_unref);
        playbook = load_ok(MINIMAL_HEAD "steps:\n  - id: s\n    name: S\n    type: test.needs\n"
                                        "    parameters: {message: hi, script: x}\n");
        g_clear_pointer(&playbook, itk_playbook_unref);
        assert_load_error(MINIMAL_HEAD "steps:\n  - id: s\n    name: S\n    type: test.needs\n"
                                       "    parameters: {message: hi, code: ~}\n",
                          "missing required parameter 'script' or 'code'", 4, 5);

        /* playbook.run needs its target. */
        assert_load_error(MINIMAL_HEAD "steps:\n  - id: s\n    name: S\n    type: playbook.run\n",
                          "step 's': missing required parameter 'playbook'", 4, 5);
        assert_load_error(MINIMAL_HEAD "steps:\n  - id: s\n    name: S\n    type: playbook.run\n"
                                       "    parameters: {playbook: [a]}\n",
                          "step 's': parameter 'playbook' must be a playbook id", 4, 5);
        assert_load_error(MINIMAL_HEAD "steps:\n  - id: s\n    name: S\n    type: test.noop\n"
                                       "    parameters: [a, b]\n",
                          "step 's': 'parameters' must be a mapping, not a list", 7, 17);

        /* The handler also lists `playbook` as required: reported once, not twice. */
        g_ptr_array_set_size(diagnostics, 0);
        g_clear_error(&error);
        playbook = load(MINIMAL_HEAD "steps:\n  - id: s\n    name: S\n    type: playbook.run\n",
                        diagnostics, &error);
        g_assert_null(playbook);
        g_assert_cmpuint(count_diagnostics(diagnostics, ITK_DIAGNOSTIC_ERROR), ==, 1);
}

static void
test_playbook_wrong_field_types(void)
{
        static const struct {
                const char *field;
                const char *needle;
                int column;
        } cases[] = {
                { "timeout: abc", "'timeout' must be a number of seconds above 0", 14 },
                { "timeout: \"abc\"", "not 'abc'", 14 },
                { "timeout: 0", "'timeout' must be a number of seconds above 0", 14 },
                { "timeout: -5", "not -5", 14 },
                { "timeout: .nan", "'timeout' must be a number", 14 },
                { "timeout: [1]", "not list", 14 },
                { "timeout: 1e9", "at most 2592000", 14 },
                { "retry_count: 1.5", "'retry_count' must be a whole number from 0 to 1000", 18 },
                { "retry_count: -1", "not -1", 18 },
                { "retry_count: many", "not 'many'", 18 },
                { "retry_delay: -1", "'retry_delay' must be a number of seconds from 0", 18 },
                { "on_failure: explode",
                  "'on_failure' must be abort, continue or rollback, not 'explode'", 17 },
                { "on_failure: {a: 1}", "'on_failure' must be text, not a mapping", 17 },
                { "id: [x]", "step 1: 'id' must be text, not a list", 9 },
        };

        for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *yaml = g_strdup_printf(
                        MINIMAL_HEAD "steps:\n  - name: S\n    type: test.noop\n"
                                     "%s    %s\n",
                        g_str_has_prefix(cases[i].field, "id:") ? "" : "    id: s\n",
                        cases[i].field);
                g_test_message("%s", cases[i].field);
                assert_load_error(yaml, cases[i].needle,
                                  g_str_has_prefix(cases[i].field, "id:") ? 6 : 7, cases[i].column);
        }

        assert_load_error(MINIMAL_HEAD
                          "metadata: [a]\nsteps:\n  - {id: a, name: A, type: test.noop}\n",
                          "'metadata' must be a mapping, not a list", 3, 11);
        assert_load_error(MINIMAL_HEAD "parameters: {a: 1}\nsteps:\n"
                                       "  - {id: a, name: A, type: test.noop}\n",
                          "'parameters' must be a list of parameter definitions", 3, 13);
        assert_load_error(MINIMAL_HEAD "rollback: yes\nsteps:\n"
                                       "  - {id: a, name: A, type: test.noop}\n",
                          "'rollback' must be a list of steps", 3, 11);
}

static void
test_playbook_parameter_definitions(void)
{
#define STEPS "steps:\n  - {id: a, name: A, type: test.noop}\n"
        assert_load_error(MINIMAL_HEAD "parameters:\n  - name: p\n    type: number\n" STEPS,
                          "parameter 'p': unknown type 'number' (expected string, integer", 5, 11);
        assert_load_error(MINIMAL_HEAD "parameters:\n  - type: string\n" STEPS,
                          "parameter 1: missing 'name'", 4, 5);
        assert_load_error(MINIMAL_HEAD "parameters:\n  - name: p\n" STEPS,
                          "parameter 'p': missing 'type'", 4, 5);
        assert_load_error(MINIMAL_HEAD "parameters:\n  - just-text\n" STEPS,
                          "parameter 1 must be a mapping", 4, 5);
        assert_load_error(MINIMAL_HEAD "parameters:\n  - {name: p, type: string}\n"
                                       "  - {name: p, type: integer}\n" STEPS,
                          "duplicate parameter 'p'", 5, 12);
        assert_load_error(MINIMAL_HEAD
                          "parameters:\n  - {name: p, type: integer, default: abc}\n" STEPS,
                          "parameter 'p': the default must be integer, not string", 4, 39);
        assert_load_error(MINIMAL_HEAD
                          "parameters:\n  - {name: p, type: integer, default: 1.5}\n" STEPS,
                          "the default must be integer, not float", 4, 39);
        assert_load_error(MINIMAL_HEAD
                          "parameters:\n  - {name: p, type: boolean, default: 1}\n" STEPS,
                          "the default must be boolean, not integer", 4, 39);
        assert_load_error(MINIMAL_HEAD
                          "parameters:\n  - {name: p, type: list, default: {a: 1}}\n" STEPS,
                          "the default must be list, not dict", 4, 36);
        assert_load_error(MINIMAL_HEAD
                          "parameters:\n  - {name: p, type: dict, default: '[1]'}\n" STEPS,
                          "the default must be dict, not string", 4, 36);
        assert_load_error(MINIMAL_HEAD
                          "parameters:\n  - {name: p, type: string, default: [1]}\n" STEPS,
                          "the default must be string, not list", 4, 38);
        assert_load_error(MINIMAL_HEAD
                          "parameters:\n  - {name: p, type: string, required: 1}\n" STEPS,
                          "'required' must be true or false, not integer", 4, 39);
#undef STEPS
}

static void
test_playbook_warnings(void)
{
        g_autoptr(GPtrArray) diagnostics =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook = NULL;
        const ItkDiagnostic *d;

        playbook = load("name: W\n"
                        "version: 1\n"
                        "domain: kitchen\n"
                        "author: someone\n"
                        "parameters:\n"
                        "  - {name: my-param, type: string, required: false, colour: red}\n"
                        "steps:\n"
                        "  - id: a\n"
                        "    name: A\n"
                        "    type: test.noop\n"
                        "    description: not a step key\n"
                        "    on_failure: rollback\n"
                        "    parameters:\n"
                        "      timeout: 30\n"
                        "      retry_count: 2\n"
                        "  - id: b\n"
                        "    name: B\n"
                        "    name: B2\n"
                        "    type: test.noop\n",
                        diagnostics, &error);
        g_assert_no_error(error);
        g_assert_nonnull(playbook);
        g_assert_cmpuint(count_diagnostics(diagnostics, ITK_DIAGNOSTIC_ERROR), ==, 0);

        d = find_diagnostic(diagnostics, ITK_DIAGNOSTIC_WARNING,
                            "domain 'kitchen' is not one of gateway, perspective, designer");
        g_assert_nonnull(d);
        g_assert_cmpint(d->line, ==, 3);
        d = find_diagnostic(diagnostics, ITK_DIAGNOSTIC_WARNING,
                            "unknown key 'author' in the playbook is ignored");
        g_assert_nonnull(d);
        g_assert_cmpint(d->line, ==, 4);
        g_assert_cmpint(d->column, ==, 1);
        g_assert_nonnull(find_diagnostic(diagnostics, ITK_DIAGNOSTIC_WARNING,
                                         "unknown key 'colour' in parameter 'my-param'"));
        g_assert_nonnull(find_diagnostic(diagnostics, ITK_DIAGNOSTIC_WARNING,
                                         "parameter 'my-param': the name cannot be used in {{ }}"));
        d = find_diagnostic(diagnostics, ITK_DIAGNOSTIC_WARNING,
                            "unknown key 'description' in step 'a'");
        g_assert_nonnull(d);
        g_assert_cmpstr(d->step_id, ==, "a");
        d = find_diagnostic(diagnostics, ITK_DIAGNOSTIC_WARNING,
                            "step 'a': 'timeout' inside 'parameters' goes to the handler");
        g_assert_nonnull(d);
        g_assert_cmpint(d->line, ==, 14);
        g_assert_cmpint(d->column, ==, 16);
        g_assert_nonnull(find_diagnostic(diagnostics, ITK_DIAGNOSTIC_WARNING,
                                         "'retry_count' inside 'parameters'"));
        g_assert_nonnull(find_diagnostic(diagnostics, ITK_DIAGNOSTIC_WARNING,
                                         "'on_failure: rollback' but the playbook has no "
                                         "rollback steps"));
        d = find_diagnostic(diagnostics, ITK_DIAGNOSTIC_WARNING, "duplicate key 'name'");
        g_assert_nonnull(d);
        g_assert_cmpint(d->line, ==, 18);
        /* PyYAML's rule: the last of duplicate keys is used. */
        g_assert_cmpstr(((ItkStepDef *)playbook->steps->pdata[1])->name, ==, "B2");
        /* Sorted by position. */
        for (guint i = 1; i < diagnostics->len; i++) {
                const ItkDiagnostic *a = diagnostics->pdata[i - 1];
                const ItkDiagnostic *b = diagnostics->pdata[i];
                g_assert_true(a->line < b->line || (a->line == b->line && a->column <= b->column));
        }
}

static void
test_playbook_browser_timeout_no_warning(void)
{
        g_autoptr(GPtrArray) diagnostics =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook = NULL;

        /* Browser handler timeouts are milliseconds and belong there: no note. */
        playbook = load(MINIMAL_HEAD "steps:\n  - id: c\n    name: C\n    type: browser.click\n"
                                     "    parameters: {selector: '#x', timeout: 30000}\n",
                        diagnostics, &error);
        g_assert_no_error(error);
        g_assert_nonnull(playbook);
        g_assert_null(find_diagnostic(diagnostics, ITK_DIAGNOSTIC_WARNING, "'timeout' inside"));
}

static void
test_playbook_references(void)
{
        g_autoptr(GPtrArray) diagnostics =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook = NULL;

        assert_load_error(MINIMAL_HEAD "steps:\n"
                                       "  - id: a\n    name: A\n    type: test.noop\n"
                                       "    parameters:\n      msg: 'x {{ step.nope.out }} y'\n",
                          "step 'a': '{{ step.nope.out }}' refers to no step of this playbook", 8,
                          12);
        assert_load_error(MINIMAL_HEAD "steps:\n"
                                       "  - id: a\n    name: A\n    type: test.noop\n"
                                       "    parameters:\n      list: [ok, '{{ foo.bar }}']\n",
                          "step 'a': unknown reference kind 'foo' in '{{ foo.bar }}'", 8, 18);
        assert_load_error(MINIMAL_HEAD "steps:\n"
                                       "  - id: a\n    name: A\n    type: test.noop\n"
                                       "    parameters:\n      m: {k: '{{ credential.gw }}'}\n",
                          "needs a field", 8, 14);
        assert_load_error(MINIMAL_HEAD "steps:\n"
                                       "  - id: a\n    name: A\n    type: test.noop\n"
                                       "    parameters:\n      m: '{{ credential.gw.secret }}'\n",
                          "unknown credential field 'secret'", 8, 10);

        /* Unquoted, "{{ x }}" is YAML flow syntax, for PyYAML too: a hint says so. */
        assert_load_error(MINIMAL_HEAD "steps:\n"
                                       "  - id: a\n    name: A\n    type: test.noop\n"
                                       "    parameters:\n      msg: {{ step.a }}\n",
                          "a mapping key must be a scalar, not a mapping (quote text that "
                          "starts with '{{')",
                          8, 13);

        /* Keys are not rendered, so a reference-like key is not checked; later
         * steps may be named; rollback may name main steps. */
        playbook = load(MINIMAL_HEAD "steps:\n"
                                     "  - id: a\n    name: A\n    type: test.noop\n"
                                     "    parameters:\n"
                                     "      '{{ step.nope }}': '{{ step.b.x }} {{ name }}'\n"
                                     "      css: 'a {{ color: red; }}'\n"
                                     "      four: '{{ a.b.c.d }}'\n"
                                     "  - {id: b, name: B, type: test.noop}\n"
                                     "rollback:\n"
                                     "  - id: r\n    name: R\n    type: test.noop\n"
                                     "    parameters: {v: '{{ step.a }}'}\n",
                        diagnostics, &error);
        g_assert_no_error(error);
        g_assert_nonnull(playbook);
        g_assert_cmpuint(count_diagnostics(diagnostics, ITK_DIAGNOSTIC_ERROR), ==, 0);
}

static void
test_playbook_many_problems(void)
{
        g_autoptr(GPtrArray) diagnostics =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook = NULL;
        const ItkDiagnostic *first;

        /* The diagnostics array is appended to, not replaced. */
        g_ptr_array_add(diagnostics, g_new0(ItkDiagnostic, 1));
        ((ItkDiagnostic *)diagnostics->pdata[0])->severity = ITK_DIAGNOSTIC_WARNING;
        ((ItkDiagnostic *)diagnostics->pdata[0])->message = g_strdup("caller's own");

        playbook = load("version: 1\n"
                        "steps:\n"
                        "  - id: a\n    name: A\n    type: nope.nope\n    timeout: x\n"
                        "  - id: a\n    name: A\n    type: test.noop\n",
                        diagnostics, &error);
        g_assert_null(playbook);
        g_assert_cmpstr(((ItkDiagnostic *)diagnostics->pdata[0])->message, ==, "caller's own");
        /* missing name, unknown type, bad timeout, duplicate id. */
        g_assert_cmpuint(count_diagnostics(diagnostics, ITK_DIAGNOSTIC_ERROR), ==, 4);
        first = diagnostics->pdata[1];
        g_assert_cmpstr(first->message, ==, "missing 'name'");
        g_assert_cmpstr(error->message, ==,
                        "line 1, column 1: missing 'name' (and 3 more problems)");
}

static void
test_playbook_aliases(void)
{
        g_autoptr(ItkPlaybook) playbook = NULL;
        const ItkStepDef *step;

        /* Anchors, aliases and merge keys are legal YAML and old playbooks may use them. */
        playbook = load_ok("name: Aliases\n"
                           "version: 1\n"
                           "x-common: &common {timeout: 10, on_failure: continue}\n"
                           "x-params: &params {message: shared}\n"
                           "steps:\n"
                           "  - <<: *common\n"
                           "    id: a\n"
                           "    name: A\n"
                           "    type: test.noop\n"
                           "    parameters: *params\n"
                           "  - <<: *common\n"
                           "    id: b\n"
                           "    name: B\n"
                           "    type: test.noop\n"
                           "    timeout: 20\n"
                           "    parameters: *params\n");
        step = g_ptr_array_index(playbook->steps, 0);
        g_assert_cmpfloat(step->timeout, ==, 10);
        g_assert_cmpint(step->on_failure, ==, ITK_ON_FAILURE_CONTINUE);
        g_assert_cmpstr(
                json_object_get_string_member(json_node_get_object(step->parameters), "message"),
                ==, "shared");
        step = g_ptr_array_index(playbook->steps, 1);
        g_assert_cmpfloat(step->timeout, ==, 20);
        g_assert_cmpint(step->on_failure, ==, ITK_ON_FAILURE_CONTINUE);
}

static void
test_playbook_bounds(void)
{
        g_autoptr(GString) big = g_string_new(MINIMAL_HEAD "steps:\n"
                                                           "  - {id: a, name: A, type: test.noop}\n"
                                                           "# ");
        g_autoptr(GString) deep = g_string_new("name: x\nversion: 1\nsteps: ");
        g_autofree char *bomb = alias_bomb();
        g_autoptr(GPtrArray) diagnostics =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook = NULL;
        const ItkDiagnostic *d;
        gint64 start;

        /* Over 1 MiB: refused before parsing, without a position. */
        while (big->len <= ITK_PLAYBOOK_MAX_SIZE)
                g_string_append(big, "padding padding padding padding padding padding padding\n# ");
        playbook = load(big->str, diagnostics, &error);
        g_assert_null(playbook);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK);
        g_assert_cmpstr(error->message, ==, "the playbook is larger than 1048576 bytes");
        d = diagnostics->pdata[0];
        g_assert_cmpint(d->line, ==, 0);
        g_assert_cmpint(d->column, ==, 0);
        g_clear_error(&error);

        /* Exactly at the limit is accepted (a comment pads it). */
        g_string_truncate(big, ITK_PLAYBOOK_MAX_SIZE - 1);
        g_string_append_c(big, '\n');
        g_assert_cmpuint(big->len, ==, ITK_PLAYBOOK_MAX_SIZE);
        playbook = load(big->str, NULL, &error);
        g_assert_no_error(error);
        g_assert_nonnull(playbook);
        g_clear_pointer(&playbook, itk_playbook_unref);

        /* Alias bomb: refused fast. */
        start = g_get_monotonic_time();
        playbook = load(bomb, NULL, &error);
        g_assert_null(playbook);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK);
        g_assert_nonnull(strstr(error->message, "more than 200000 nodes"));
        g_assert_cmpint(g_get_monotonic_time() - start, <, G_USEC_PER_SEC);
        g_clear_error(&error);

        /* 10,000 nested flow sequences: an error, not a crash. The top-level
         * mapping is the first level, so the 64th '[' is refused. */
        for (guint i = 0; i < 10000; i++)
                g_string_append_c(deep, '[');
        playbook = load(deep->str, NULL, &error);
        g_assert_null(playbook);
        g_assert_cmpstr(error->message, ==,
                        "line 3, column 71: collections are nested more than 64 deep");
        g_clear_error(&error);

        /* More than one document. */
        assert_load_error(MINIMAL_HEAD "steps:\n  - {id: a, name: A, type: test.noop}\n"
                                       "---\n" MINIMAL_HEAD,
                          "only one document is allowed", 5, 1);

        /* Embedded NUL with an explicit length: a reader error, not a truncation. */
        playbook = itk_playbook_new_from_data("name: a\0b\nversion: 1\n", 22, NULL, NULL, &error);
        g_assert_null(playbook);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK);
        g_assert_true(g_str_has_prefix(error->message, "line 1, column 8: "));
}

static void
test_playbook_from_file(void)
{
        g_autofree char *dir = g_dir_make_tmp("itk-test-playbook-XXXXXX", NULL);
        g_autofree char *path = g_build_filename(dir, "pb.yaml", NULL);
        g_autofree char *missing = g_build_filename(dir, "missing.yaml", NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook = NULL;

        g_assert_true(g_file_set_contents(path,
                                          MINIMAL_HEAD "steps:\n"
                                                       "  - {id: a, name: A, type: test.noop}\n",
                                          -1, &error));
        playbook = itk_playbook_new_from_file(path, "lib/pb.yaml", NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(playbook->id, ==, "lib/pb.yaml");
        g_assert_cmpstr(playbook->path, ==, path);
        g_assert_cmpstr(itk_playbook_get_dir(playbook), ==, dir);
        g_clear_pointer(&playbook, itk_playbook_unref);

        playbook = itk_playbook_new_from_file(missing, NULL, NULL, &error);
        g_assert_null(playbook);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_PLAYBOOK);
        g_clear_error(&error);

        /* An over-sized file is read only up to the bound, then refused. */
        {
                g_autofree char *content = g_malloc(3 * ITK_PLAYBOOK_MAX_SIZE);
                memset(content, '#', 3 * ITK_PLAYBOOK_MAX_SIZE);
                g_assert_true(g_file_set_contents(path, content, 3 * ITK_PLAYBOOK_MAX_SIZE, NULL));
        }
        playbook = itk_playbook_new_from_file(path, NULL, NULL, &error);
        g_assert_null(playbook);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK);
        g_assert_nonnull(strstr(error->message, "larger than"));

        g_unlink(path);
        g_rmdir(dir);
}

/* --- parameters --------------------------------------------------------------- */

static ItkPlaybook *
params_playbook(void)
{
        return load_ok("name: P\nversion: 1\n"
                       "parameters:\n"
                       "  - {name: url, type: string}\n"
                       "  - {name: port, type: integer, default: 8088}\n"
                       "  - {name: count, type: integer}\n"
                       "  - {name: ratio, type: float, required: false}\n"
                       "  - {name: flag, type: boolean, default: false}\n"
                       "  - {name: module, type: file, required: false}\n"
                       "  - {name: gw, type: credential, required: false}\n"
                       "  - {name: tags, type: list, required: false}\n"
                       "  - {name: extra, type: dict, required: false}\n"
                       "steps:\n  - {id: a, name: A, type: test.noop}\n");
}

static JsonObject *
object_from_json(const char *json)
{
        g_autoptr(JsonNode) node = json_from_string(json, NULL);

        g_assert_nonnull(node);
        return json_object_ref(json_node_get_object(node));
}

static char *
bind_to_json(ItkPlaybook *playbook, const char *given_json, GError **error)
{
        g_autoptr(JsonObject) given = object_from_json(given_json);
        g_autoptr(JsonObject) bound = itk_playbook_bind_parameters(playbook, given, error);
        g_autoptr(JsonNode) node = NULL;

        if (bound == NULL)
                return NULL;
        node = json_node_init_object(json_node_alloc(), bound);
        return json_text(node);
}

static void
test_bind_defaults_and_conversions(void)
{
        g_autoptr(ItkPlaybook) playbook = params_playbook();
        g_autoptr(GError) error = NULL;
        g_autofree char *bound = NULL;

        /* Defaults fill in, optional ones without a default are null,
         * undeclared values are kept as they are. */
        bound = bind_to_json(playbook, "{\"url\": \"http://gw\", \"count\": 2, \"other\": [1]}",
                             &error);
        g_assert_no_error(error);
        g_assert_cmpstr(bound, ==,
                        "{\"url\":\"http://gw\",\"port\":8088,\"count\":2,\"ratio\":null,"
                        "\"flag\":false,\"module\":null,\"gw\":null,\"tags\":null,"
                        "\"extra\":null,\"other\":[1]}");
        g_clear_pointer(&bound, g_free);

        /* Unambiguous text from a form or command line is converted. */
        bound = bind_to_json(playbook,
                             "{\"url\": 42, \"port\": \" 30 \", \"count\": 7.0, \"ratio\": \"2.5\","
                             " \"flag\": \"TRUE\", \"module\": \"/tmp/m.modl\", \"gw\": \"prod\","
                             " \"tags\": \"[1, \\\"a\\\"]\", \"extra\": \"{\\\"k\\\": null}\"}",
                             &error);
        g_assert_no_error(error);
        g_assert_cmpstr(bound, ==,
                        "{\"url\":\"42\",\"port\":30,\"count\":7,\"ratio\":2.5,\"flag\":true,"
                        "\"module\":\"/tmp/m.modl\",\"gw\":\"prod\",\"tags\":[1,\"a\"],"
                        "\"extra\":{\"k\":null}}");
        g_clear_pointer(&bound, g_free);

        /* Integers are fine for a float; a given null counts as absent. */
        bound = bind_to_json(
                playbook, "{\"url\": \"u\", \"count\": 1, \"ratio\": 3, \"port\": null}", &error);
        g_assert_no_error(error);
        g_assert_nonnull(strstr(bound, "\"ratio\":3.0"));
        g_assert_nonnull(strstr(bound, "\"port\":8088"));
        g_clear_pointer(&bound, g_free);

        /* No given object at all: only the required ones are missing. */
        g_assert_null(itk_playbook_bind_parameters(playbook, NULL, &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS);
        g_assert_cmpstr(error->message, ==, "missing required parameters: url, count");
}

static void
test_bind_errors(void)
{
        static const struct {
                const char *given;
                const char *message;
        } cases[] = {
                { "{\"count\": 1}", "missing required parameter: url" },
                { "{}", "missing required parameters: url, count" },
                { "{\"url\": \"u\", \"count\": \"hunter2\"}",
                  "parameter 'count' expects integer, got string (not a valid integer)" },
                { "{\"url\": \"u\", \"count\": 1.5}",
                  "parameter 'count' expects integer, got float" },
                { "{\"url\": \"u\", \"count\": true}",
                  "parameter 'count' expects integer, got boolean" },
                { "{\"url\": [1], \"count\": 1}", "parameter 'url' expects string, got list" },
                { "{\"url\": \"u\", \"count\": 1, \"flag\": \"yes\"}",
                  "parameter 'flag' expects boolean, got string (not a valid boolean)" },
                { "{\"url\": \"u\", \"count\": 1, \"flag\": 1}",
                  "parameter 'flag' expects boolean, got integer" },
                { "{\"url\": \"u\", \"count\": 1, \"ratio\": \"nan\"}",
                  "parameter 'ratio' expects float, got string (not a valid float)" },
                { "{\"url\": \"u\", \"count\": 1, \"module\": 5}",
                  "parameter 'module' expects file, got integer" },
                { "{\"url\": \"u\", \"count\": 1, \"gw\": {\"a\": 1}}",
                  "parameter 'gw' expects credential, got dict" },
                { "{\"url\": \"u\", \"count\": 1, \"tags\": \"{}\"}",
                  "parameter 'tags' expects list, got string (not JSON text of a list)" },
                { "{\"url\": \"u\", \"count\": 1, \"extra\": \"[1]\"}",
                  "parameter 'extra' expects dict, got string (not JSON text of a dict)" },
                { "{\"url\": \"u\", \"count\": 1, \"extra\": [1]}",
                  "parameter 'extra' expects dict, got list" },
                /* Everything at once, in one message. */
                { "{\"port\": \"x\", \"flag\": []}",
                  "missing required parameters: url, count; parameter 'port' expects integer, "
                  "got string (not a valid integer); parameter 'flag' expects boolean, got list" },
        };
        g_autoptr(ItkPlaybook) playbook = params_playbook();

        for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GError) error = NULL;
                g_autofree char *bound = bind_to_json(playbook, cases[i].given, &error);

                g_test_message("%s", cases[i].given);
                g_assert_null(bound);
                g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS);
                g_assert_cmpstr(error->message, ==, cases[i].message);
                /* The value itself never appears: it may be a secret. */
                g_assert_null(strstr(error->message, "hunter2"));
        }
}

static void
test_bind_deep_json_text(void)
{
        g_autoptr(ItkPlaybook) playbook = params_playbook();
        g_autoptr(GString) deep = g_string_new(NULL);
        g_autoptr(JsonObject) given = json_object_new();
        g_autoptr(JsonObject) bound = NULL;
        g_autoptr(GError) error = NULL;

        /* JSON text nested past the YAML bound is refused, not parsed recursively. */
        for (guint i = 0; i < 100000; i++)
                g_string_append_c(deep, '[');
        for (guint i = 0; i < 100000; i++)
                g_string_append_c(deep, ']');
        json_object_set_string_member(given, "url", "u");
        json_object_set_int_member(given, "count", 1);
        json_object_set_string_member(given, "tags", deep->str);
        bound = itk_playbook_bind_parameters(playbook, given, &error);
        g_assert_null(bound);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS);
        g_assert_nonnull(strstr(error->message, "parameter 'tags' expects list"));
}

/* --- nesting ------------------------------------------------------------------- */

typedef struct {
        GHashTable *sources; /* id -> YAML text */
        guint calls;
} Library;

static ItkPlaybook *
library_resolve_cb(const char *id, gpointer user_data, GError **error)
{
        Library *library = user_data;
        const char *source = g_hash_table_lookup(library->sources, id);

        library->calls++;
        if (source == NULL) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_PLAYBOOK, "no playbook '%s'", id);
                return NULL;
        }
        return itk_playbook_new_from_data(source, -1, id, NULL, error);
}

/* A playbook whose steps run each of @targets (NULL-terminated). */
static char *
runner_source(const char *const *targets, const char *rollback_target)
{
        GString *text = g_string_new("name: Runner\nversion: 1\nsteps:\n"
                                     "  - {id: first, name: First, type: test.noop}\n");

        for (guint i = 0; targets != NULL && targets[i] != NULL; i++)
                g_string_append_printf(text,
                                       "  - id: run%u\n    name: Run\n    type: playbook.run\n"
                                       "    parameters: {playbook: '%s'}\n",
                                       i, targets[i]);
        if (rollback_target != NULL)
                g_string_append_printf(text,
                                       "rollback:\n  - id: undo\n    name: Undo\n"
                                       "    type: playbook.run\n"
                                       "    parameters: {playbook: '%s'}\n",
                                       rollback_target);
        return g_string_free(text, FALSE);
}

static void
library_add(Library *library, const char *id, const char *const *targets,
            const char *rollback_target)
{
        g_hash_table_replace(library->sources, g_strdup(id),
                             runner_source(targets, rollback_target));
}

static gboolean
check_nesting(Library *library, const char *id, GError **error)
{
        g_autoptr(ItkPlaybook) playbook = itk_playbook_new_from_data(
                g_hash_table_lookup(library->sources, id), -1, id, NULL, error);

        g_assert_nonnull(playbook);
        return itk_playbook_check_nesting(playbook, library_resolve_cb, library, error);
}

static void
test_nesting(void)
{
        Library library = { .sources = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                             g_free) };
        g_autoptr(GError) error = NULL;

        library_add(&library, "leaf.yaml", NULL, NULL);
        library_add(&library, "d.yaml", (const char *const[]){ "leaf.yaml", NULL }, NULL);
        library_add(&library, "c.yaml", (const char *const[]){ "d.yaml", NULL }, NULL);
        library_add(&library, "b.yaml", (const char *const[]){ "c.yaml", "leaf.yaml", NULL }, NULL);
        library_add(&library, "a.yaml", (const char *const[]){ "b.yaml", NULL }, NULL);

        /* Depth 3 (c -> d -> leaf below c) is the most allowed. */
        g_assert_true(check_nesting(&library, "c.yaml", &error));
        g_assert_no_error(error);
        g_assert_true(check_nesting(&library, "b.yaml", &error));
        g_assert_no_error(error);
        /* a -> b -> c -> d -> leaf: four levels below a. */
        g_assert_false(check_nesting(&library, "a.yaml", &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK);
        g_assert_cmpstr(error->message, ==,
                        "step 'run0' of 'd.yaml': playbooks are nested more than 3 deep: "
                        "a.yaml -> b.yaml -> c.yaml -> d.yaml -> leaf.yaml");
        g_clear_error(&error);

        /* A cycle, with its chain. */
        library_add(&library, "x.yaml", (const char *const[]){ "y.yaml", NULL }, NULL);
        library_add(&library, "y.yaml", (const char *const[]){ "leaf.yaml", "x.yaml", NULL }, NULL);
        g_assert_false(check_nesting(&library, "x.yaml", &error));
        g_assert_cmpstr(error->message, ==,
                        "step 'run1' of 'y.yaml': playbook 'x.yaml' runs itself: "
                        "x.yaml -> y.yaml -> x.yaml");
        g_clear_error(&error);

        /* A playbook that runs itself directly. */
        library_add(&library, "self.yaml", (const char *const[]){ "self.yaml", NULL }, NULL);
        g_assert_false(check_nesting(&library, "self.yaml", &error));
        g_assert_cmpstr(error->message, ==,
                        "step 'run0': playbook 'self.yaml' runs itself: self.yaml -> self.yaml");
        g_clear_error(&error);

        /* Rollback steps count too. */
        library_add(&library, "r.yaml", NULL, "s.yaml");
        library_add(&library, "s.yaml", NULL, "r.yaml");
        g_assert_false(check_nesting(&library, "r.yaml", &error));
        g_assert_cmpstr(error->message, ==,
                        "step 'undo' of 's.yaml': playbook 'r.yaml' runs itself: "
                        "r.yaml -> s.yaml -> r.yaml");
        g_clear_error(&error);

        /* A target that does not resolve names the step. */
        library_add(&library, "broken.yaml", (const char *const[]){ "missing.yaml", NULL }, NULL);
        g_assert_false(check_nesting(&library, "broken.yaml", &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK);
        g_assert_cmpstr(error->message, ==,
                        "step 'run0': cannot load playbook 'missing.yaml': no playbook "
                        "'missing.yaml'");
        g_clear_error(&error);

        /* Templated targets are only known at run time: not resolved here. */
        library_add(&library, "t.yaml",
                    (const char *const[]){ "{{ parameter.child }}", "{{ step.first.x }}", NULL },
                    NULL);
        library.calls = 0;
        g_assert_true(check_nesting(&library, "t.yaml", &error));
        g_assert_no_error(error);
        g_assert_cmpuint(library.calls, ==, 0);

        g_hash_table_unref(library.sources);
}

/* --- the old tool's playbooks --------------------------------------------------- */

/* browser.* and perspective.* validate since they run (issue 10). */
static const char *const later_families[] = { "fat.", "designer.", NULL };

static gboolean
is_later_family(const char *type)
{
        for (guint i = 0; later_families[i] != NULL; i++)
                if (g_str_has_prefix(type, later_families[i]))
                        return TRUE;
        return FALSE;
}

/* Step ids whose type is of a later family, read from the file itself. */
static GHashTable *
unsupported_steps_of(const char *source)
{
        g_autoptr(ItkYamlNode) root = yaml_ok(source);
        GHashTable *ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        static const char *const lists[] = { "steps", "rollback" };

        for (guint l = 0; l < G_N_ELEMENTS(lists); l++) {
                ItkYamlNode *steps = itk_yaml_node_lookup(root, lists[l]);
                for (guint i = 0; steps != NULL && i < itk_yaml_node_get_size(steps); i++) {
                        ItkYamlNode *step = itk_yaml_node_get_item(steps, i);
                        ItkYamlNode *id = itk_yaml_node_lookup(step, "id");
                        ItkYamlNode *type = itk_yaml_node_lookup(step, "type");

                        g_assert_nonnull(id);
                        g_assert_nonnull(type);
                        if (is_later_family(type->text))
                                g_hash_table_insert(ids, g_strdup(id->text), g_strdup(type->text));
                }
        }
        return ids;
}

static void
collect_yaml_files(const char *dir, const char *prefix, GPtrArray *out)
{
        g_autoptr(GDir) handle = g_dir_open(dir, 0, NULL);
        const char *name;

        g_assert_nonnull(handle);
        while ((name = g_dir_read_name(handle)) != NULL) {
                g_autofree char *path = g_build_filename(dir, name, NULL);
                g_autofree char *rel =
                        prefix != NULL ? g_build_filename(prefix, name, NULL) : g_strdup(name);
                if (g_file_test(path, G_FILE_TEST_IS_DIR))
                        collect_yaml_files(path, rel, out);
                else if (g_str_has_suffix(name, ".yaml") || g_str_has_suffix(name, ".yml"))
                        g_ptr_array_add(out, g_steal_pointer(&rel));
        }
}

static gint
compare_paths(gconstpointer a, gconstpointer b)
{
        return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

static void
test_compat_playbooks(void)
{
        /* The old tool's playbooks whose steps are all utility.* or playbook.run. */
        const char *root = g_getenv("ITK_COMPAT_PLAYBOOKS");
        g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) clean = g_ptr_array_new_with_free_func(g_free);

        if (root == NULL || !g_file_test(root, G_FILE_TEST_IS_DIR)) {
                /* Not part of this repository: a clean clone has none. */
                g_autofree char *why =
                        g_strdup_printf("no compat playbooks at %s (set ITK_COMPAT_PLAYBOOKS)",
                                        root != NULL ? root : "(unset)");
                g_test_skip(why);
                return;
        }
        collect_yaml_files(root, NULL, files);
        g_ptr_array_sort(files, compare_paths);
        g_assert_cmpuint(files->len, >=, 26);

        for (guint i = 0; i < files->len; i++) {
                const char *rel = files->pdata[i];
                g_autofree char *path = g_build_filename(root, rel, NULL);
                g_autofree char *source = NULL;
                g_autoptr(GHashTable) unsupported = NULL;
                g_autoptr(GHashTable) reported = g_hash_table_new(g_str_hash, g_str_equal);
                g_autoptr(GPtrArray) diagnostics =
                        g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
                g_autoptr(GError) error = NULL;
                g_autoptr(ItkPlaybook) playbook = NULL;

                g_test_message("%s", rel);
                g_assert_true(g_file_get_contents(path, &source, NULL, NULL));
                unsupported = unsupported_steps_of(source);
                playbook = itk_playbook_new_from_file(path, rel, diagnostics, &error);

                for (guint j = 0; j < diagnostics->len; j++) {
                        const ItkDiagnostic *d = diagnostics->pdata[j];
                        g_autofree char *expected = NULL;
                        const char *type;

                        g_test_message("  %d:%d %s: %s", d->line, d->column,
                                       d->severity == ITK_DIAGNOSTIC_ERROR ? "error" : "warning",
                                       d->message);
                        if (d->severity != ITK_DIAGNOSTIC_ERROR)
                                continue;
                        /* The only acceptable error: a later family's step, named. */
                        g_assert_nonnull(d->step_id);
                        type = g_hash_table_lookup(unsupported, d->step_id);
                        g_assert_nonnull(type);
                        expected = g_strdup_printf("step '%s': step type '%s' is not supported yet",
                                                   d->step_id, type);
                        g_assert_cmpstr(d->message, ==, expected);
                        g_assert_cmpint(d->line, >, 0);
                        g_hash_table_add(reported, d->step_id);
                }
                /* Every such step is reported. */
                g_assert_cmpuint(g_hash_table_size(reported), ==, g_hash_table_size(unsupported));

                if (g_hash_table_size(unsupported) == 0) {
                        g_assert_no_error(error);
                        g_assert_nonnull(playbook);
                        g_assert_nonnull(playbook->name);
                        g_assert_nonnull(playbook->version);
                        g_assert_cmpuint(playbook->steps->len, >, 0);
                        g_ptr_array_add(clean, g_strdup(rel));
                } else {
                        g_assert_null(playbook);
                        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK);
                        g_assert_nonnull(strstr(error->message, "is not supported yet"));
                }
        }

        /* With the browser steps, every shipped playbook of the old tool validates. */
        g_assert_cmpuint(clean->len, ==, files->len);
}

static void
test_compat_details(void)
{
        const char *root = g_getenv("ITK_COMPAT_PLAYBOOKS");
        g_autofree char *path = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook = NULL;
        const ItkParamDef *def;
        const ItkStepDef *step;

        if (root == NULL || !g_file_test(root, G_FILE_TEST_IS_DIR)) {
                /* Not part of this repository: a clean clone has none. */
                g_autofree char *why =
                        g_strdup_printf("no compat playbooks at %s (set ITK_COMPAT_PLAYBOOKS)",
                                        root != NULL ? root : "(unset)");
                g_test_skip(why);
                return;
        }
        path = g_build_filename(root, "perspective", "test_suite_master.yaml", NULL);
        playbook = itk_playbook_new_from_file(path, NULL, NULL, &error);
        g_assert_no_error(error);
        /* `version: "1.0"`, `verified: false`, defaults typed, steps in order. */
        g_assert_cmpstr(playbook->version, ==, "1.0");
        g_assert_false(playbook->verified);
        g_assert_cmpstr(playbook->domain, ==, "perspective");
        def = itk_playbook_lookup_param(playbook, "run_button_tests");
        g_assert_cmpint(def->type, ==, ITK_PARAM_BOOLEAN);
        g_assert_false(def->required);
        g_assert_true(json_node_get_boolean(def->default_value));
        step = g_ptr_array_index(playbook->steps, 1);
        g_assert_cmpstr(step->id, ==, "run_verification_playbook");
        g_assert_cmpstr(step->type, ==, "playbook.run");
        g_assert_cmpfloat(step->timeout, ==, 120);
        g_assert_cmpint(step->on_failure, ==, ITK_ON_FAILURE_CONTINUE);
        g_assert_true(JSON_NODE_HOLDS_OBJECT(playbook->metadata));
}

/* A gateway wait's `timeout` inside parameters is the deprecated name of
 * `wait_timeout`: the warning says so (and loading still succeeds). */
static void
test_gateway_wait_timeout_deprecated(void)
{
        g_autoptr(GPtrArray) diagnostics =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook = load("name: W\n"
                                               "version: '1'\n"
                                               "steps:\n"
                                               "  - id: w\n"
                                               "    name: Wait\n"
                                               "    type: gateway.wait_for_ready\n"
                                               "    parameters:\n"
                                               "      timeout: 30\n",
                                               diagnostics, &error);
        const ItkDiagnostic *d;

        g_assert_no_error(error);
        g_assert_nonnull(playbook);
        d = find_diagnostic(diagnostics, ITK_DIAGNOSTIC_WARNING,
                            "'timeout' inside 'parameters' is deprecated: write 'wait_timeout'");
        g_assert_nonnull(d);
        g_assert_cmpint(d->line, ==, 8);
}

int
main(int argc, char **argv)
{
        /* Validation asks whether Chromium is installed; any executable will do
         * here, so these results do not depend on the machine. */
        g_setenv("ITK_CHROMIUM", "/bin/sh", TRUE);
        g_test_init(&argc, &argv, NULL);

        itk_step_registry_ensure();
        itk_step_registry_register(&test_noop_handler);
        itk_step_registry_register(&test_needs_handler);
        if (itk_step_registry_lookup("playbook.run") == NULL)
                itk_step_registry_register(&test_playbook_run_handler);

        g_test_add_func("/yaml/syntax-error-position", test_yaml_syntax_error_position);
        g_test_add_func("/yaml/tree", test_yaml_tree);
        g_test_add_func("/yaml/resolve-pyyaml", test_yaml_resolve_pyyaml);
        g_test_add_func("/yaml/resolve-special", test_yaml_resolve_special);
        g_test_add_func("/yaml/to-json-errors", test_yaml_to_json_errors);
        g_test_add_func("/yaml/aliases", test_yaml_aliases);
        g_test_add_func("/yaml/alias-errors", test_yaml_alias_errors);
        g_test_add_func("/yaml/alias-bomb", test_yaml_alias_bomb);
        g_test_add_func("/yaml/aliases-within-budget", test_yaml_aliases_within_budget);
        g_test_add_func("/yaml/deep-nesting", test_yaml_deep_nesting);
        g_test_add_func("/yaml/documents", test_yaml_documents);
        g_test_add_func("/yaml/limits", test_yaml_size_limit);
        g_test_add_func("/playbook/minimal-defaults", test_playbook_minimal_defaults);
        g_test_add_func("/playbook/full", test_playbook_full);
        g_test_add_func("/playbook/version-text", test_playbook_version_text);
        g_test_add_func("/playbook/pyyaml-booleans", test_playbook_pyyaml_booleans);
        g_test_add_func("/playbook/malformed-yaml", test_playbook_malformed_yaml);
        g_test_add_func("/playbook/not-a-mapping", test_playbook_not_a_mapping);
        g_test_add_func("/playbook/missing-fields", test_playbook_missing_fields);
        g_test_add_func("/playbook/duplicate-ids", test_playbook_duplicate_ids);
        g_test_add_func("/playbook/step-types", test_playbook_step_types);
        g_test_add_func("/playbook/handler-parameters", test_playbook_handler_parameters);
        g_test_add_func("/playbook/wrong-field-types", test_playbook_wrong_field_types);
        g_test_add_func("/playbook/parameter-definitions", test_playbook_parameter_definitions);
        g_test_add_func("/playbook/warnings", test_playbook_warnings);
        g_test_add_func("/playbook/browser-timeout-no-warning",
                        test_playbook_browser_timeout_no_warning);
        g_test_add_func("/playbook/references", test_playbook_references);
        g_test_add_func("/playbook/many-problems", test_playbook_many_problems);
        g_test_add_func("/playbook/aliases", test_playbook_aliases);
        g_test_add_func("/playbook/bounds", test_playbook_bounds);
        g_test_add_func("/playbook/from-file", test_playbook_from_file);
        g_test_add_func("/playbook/bind/defaults-and-conversions",
                        test_bind_defaults_and_conversions);
        g_test_add_func("/playbook/bind/errors", test_bind_errors);
        g_test_add_func("/playbook/bind/deep-json-text", test_bind_deep_json_text);
        g_test_add_func("/playbook/nesting", test_nesting);
        g_test_add_func("/playbook/gateway-wait-timeout-deprecated",
                        test_gateway_wait_timeout_deprecated);
        g_test_add_func("/playbook/compat/all", test_compat_playbooks);
        g_test_add_func("/playbook/compat/details", test_compat_details);

        return g_test_run();
}
