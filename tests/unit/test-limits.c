/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Input bounds (daemon/itk-limits.h, docs/limits.md): each is refused with
 * an error naming the bound, and refused by counting before the work it
 * bounds. Nothing here is timed: "stops early" is shown by where the error
 * points (the first alias past the budget) and by what was not built. */
#include <string.h>

#include "itk-error.h"
#include "itk-limits.h"
#include "itk-playbook.h"
#include "itk-value.h"
#include "itk-yaml.h"

/* A byte-multiplying alias bomb under the node budget: one scalar of
 * @scalar_bytes, then @levels lists of ten aliases to the level below.
 * Levels of 100 KiB: level 3 alone re-emits 1000 x 100 KiB = 100 MiB
 * from ~1,111 nodes, far under ITK_LIMIT_YAML_NODES. Under "metadata" so
 * that the playbook loader converts it to JSON (where main multiplied the
 * bytes for real). */
static char *
byte_bomb(gsize scalar_bytes, guint levels)
{
        GString *text = g_string_new(
                "name: bomb\nversion: '1'\n"
                "steps: [{id: s, name: S, type: utility.log, parameters: {message: m}}]\n"
                "metadata:\n  l0: &l0 ");

        g_string_append_c(text, '"');
        for (gsize i = 0; i < scalar_bytes; i++)
                g_string_append_c(text, 'x');
        g_string_append(text, "\"\n");
        for (guint level = 1; level <= levels; level++) {
                g_string_append_printf(text, "  l%u: &l%u [", level, level);
                for (guint i = 0; i < 10; i++)
                        g_string_append_printf(text, "%s*l%u", i > 0 ? ", " : "", level - 1);
                g_string_append(text, "]\n");
        }
        return g_string_free(text, FALSE);
}

static void
test_yaml_byte_bomb(void)
{
        /* 100 KiB source; would expand to 10^4 x 100 KiB ~ 1 GiB. */
        g_autofree char *bomb = byte_bomb(100 * 1024, 4);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkYamlNode) node = NULL;

        g_assert_cmpuint(strlen(bomb), <, ITK_LIMIT_SOURCE_BYTES);
        node = itk_yaml_parse(bomb, -1, NULL, &error);
        g_assert_null(node);
        g_test_message("%s", error->message);
        g_assert_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE);
        g_assert_nonnull(
                strstr(error->message, "expands to more than 16 MiB through YAML aliases"));
        g_assert_nonnull(strstr(error->message, "the limit is 16777216 bytes"));
        /* Levels 0-2 hold 11.4 MB expanded; level 3's first alias would add
         * 10 MB more: refused there, at line 8, column 12, before the copy. */
        g_assert_true(g_str_has_prefix(error->message, "line 8, column 12: "));
        g_assert_nonnull(strstr(error->message, "alias '*l2'"));
}

static void
test_playbook_byte_bomb(void)
{
        g_autofree char *bomb = byte_bomb(100 * 1024, 4);
        g_autoptr(GPtrArray) diagnostics =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook = NULL;
        const ItkDiagnostic *d;

        playbook = itk_playbook_new_from_data(bomb, -1, "bomb.yaml", diagnostics, &error);
        g_assert_null(playbook);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK);
        g_assert_cmpuint(diagnostics->len, ==, 1);
        d = diagnostics->pdata[0];
        g_assert_cmpint(d->line, ==, 8);
        g_assert_cmpint(d->column, ==, 12);
        g_assert_nonnull(strstr(d->message, "expands to more than 16 MiB through YAML aliases"));
}

/* The loader stops at the budget: with a budget of 1000 bytes and a
 * 300-byte scalar, the third alias (the fourth copy) is the one refused,
 * and nothing after it is read. */
static void
test_yaml_byte_budget_stops_at_the_alias(void)
{
        const ItkYamlLimits limits = {
                .max_size = 1 << 20, .max_depth = 8, .max_nodes = 1000, .max_bytes = 1000
        };
        g_autoptr(GString) text = g_string_new("a: &a \"");
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkYamlNode) node = NULL;

        for (guint i = 0; i < 300; i++)
                g_string_append_c(text, 'y');
        g_string_append(text, "\"\nb: [*a, *a, *a, *a, *a]\nc: [unclosed\n");
        node = itk_yaml_parse(text->str, -1, &limits, &error);
        g_assert_null(node);
        g_test_message("%s", error->message);
        g_assert_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE);
        /* Keys count too: "a" and "b" are 2 bytes, the scalar 300, then
         * 300 + 300 fit (902) and the third alias at column 13 does not.
         * The syntax error on line 3 is never reached. */
        g_assert_true(g_str_has_prefix(error->message, "line 2, column 13: "));
        g_assert_nonnull(strstr(error->message, "alias '*a' repeats 300 bytes of text, 902 were"));
        g_assert_nonnull(strstr(error->message, "(the limit is 1000 bytes)"));
}

static void
test_yaml_byte_budget_within(void)
{
        /* 10 x 100 KiB = 1 MiB through aliases: legal, and shared. */
        g_autofree char *text = byte_bomb(100 * 1024, 1);
        g_autoptr(GPtrArray) diagnostics =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook = NULL;
        JsonArray *level;

        playbook = itk_playbook_new_from_data(text, -1, "ok.yaml", diagnostics, &error);
        g_assert_no_error(error);
        g_assert_nonnull(playbook->metadata);
        level = json_object_get_array_member(json_node_get_object(playbook->metadata), "l1");
        g_assert_cmpuint(json_array_get_length(level), ==, 10);
        g_assert_cmpuint(strlen(json_array_get_string_element(level, 9)), ==, 100 * 1024);
}

/* The classic node bomb ("billion laughs"): refused at the alias that
 * crosses the node budget, naming it and the counts. */
static void
test_yaml_node_bomb(void)
{
        g_autoptr(GString) text = g_string_new("a0: &a0 [lol]\n");
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkYamlNode) node = NULL;

        for (guint level = 1; level <= 9; level++) {
                g_string_append_printf(text, "a%u: &a%u [", level, level);
                for (guint i = 0; i < 10; i++)
                        g_string_append_printf(text, "%s*a%u", i > 0 ? ", " : "", level - 1);
                g_string_append(text, "]\n");
        }
        node = itk_yaml_parse(text->str, -1, NULL, &error);
        g_assert_null(node);
        g_test_message("%s", error->message);
        g_assert_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE);
        g_assert_true(g_str_has_prefix(error->message, "line 6, column "));
        g_assert_nonnull(strstr(error->message, "more than 200000 nodes (aliases expanded): "
                                                "alias '*a4' repeats 21111 nodes"));
}

/* The other YAML bounds name themselves and the value. */
static void
test_yaml_other_bounds(void)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkYamlNode) node = NULL;
        g_autoptr(GString) deep = g_string_new(NULL);
        g_autofree char *big = g_malloc(ITK_LIMIT_SOURCE_BYTES + 2);

        memset(big, '#', ITK_LIMIT_SOURCE_BYTES + 1);
        big[ITK_LIMIT_SOURCE_BYTES + 1] = '\0';
        node = itk_yaml_parse(big, -1, NULL, &error);
        g_assert_null(node);
        g_test_message("%s", error->message);
        g_assert_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE);
        g_assert_cmpstr(error->message, ==,
                        "the document is 1048577 bytes, larger than the limit of 1048576 bytes");
        g_clear_error(&error);

        for (guint i = 0; i <= ITK_LIMIT_YAML_DEPTH; i++)
                g_string_append_c(deep, '[');
        node = itk_yaml_parse(deep->str, -1, NULL, &error);
        g_assert_null(node);
        g_test_message("%s", error->message);
        g_assert_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE);
        g_assert_nonnull(strstr(error->message, "nested more than 64 deep"));
}

/* 190,000 steps that each break three rules: the first 1000 problems are
 * kept and the rest counted in one more, so ValidatePlaybook's reply stays
 * small whatever the source. */
static void
test_playbook_diagnostics_bound(void)
{
        g_autoptr(GString) text = g_string_new("name: x\nversion: 1\nsteps:\n");
        g_autoptr(GPtrArray) diagnostics =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook = NULL;
        const ItkDiagnostic *last;

        for (guint i = 0; i < 190000; i++)
                g_string_append(text, "- {}\n");
        g_assert_cmpuint(text->len, <=, ITK_LIMIT_SOURCE_BYTES);
        playbook = itk_playbook_new_from_data(text->str, -1, "many.yaml", diagnostics, &error);
        g_assert_null(playbook);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK);
        g_assert_nonnull(strstr(error->message, "(and 569999 more problems)"));
        g_assert_cmpuint(diagnostics->len, ==, ITK_LIMIT_DIAGNOSTICS + 1);
        last = diagnostics->pdata[ITK_LIMIT_DIAGNOSTICS];
        g_assert_cmpint(last->severity, ==, ITK_DIAGNOSTIC_ERROR);
        g_assert_cmpstr(last->message, ==,
                        "569000 more problems (569000 errors) not listed: only the first 1000 are");
}

/* --- values from callers ------------------------------------------------------ */

static GVariant *
nested_av(guint levels)
{
        GVariant *value = g_variant_new_string("leaf");

        for (guint i = 0; i < levels; i++)
                value = g_variant_new_variant(value);
        return g_variant_ref_sink(value);
}

static void
test_value_budget_depth(void)
{
        ItkValueBudget budget = ITK_VALUE_BUDGET_INIT("parameters");
        g_autoptr(GVariant) ok = nested_av(ITK_LIMIT_VALUE_DEPTH);
        g_autoptr(GVariant) deep = nested_av(1000);
        g_autoptr(GError) error = NULL;

        g_assert_true(itk_value_budget_check_variant(&budget, ok, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(budget.depth, ==, 0);

        budget = (ItkValueBudget)ITK_VALUE_BUDGET_INIT("parameters");
        g_assert_false(itk_value_budget_check_variant(&budget, deep, &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
        g_assert_cmpstr(error->message, ==,
                        "parameters nest containers more than 32 deep (the limit is 32)");
        /* Stopped at the bound: 33 containers entered, not 1000. */
        g_assert_cmpuint(budget.values, ==, ITK_LIMIT_VALUE_DEPTH + 1);
}

static void
test_value_budget_count(void)
{
        ItkValueBudget budget = ITK_VALUE_BUDGET_INIT("parameters");
        g_autoptr(GVariantBuilder) builder = g_variant_builder_new(G_VARIANT_TYPE("as"));
        g_autoptr(GVariant) many = NULL;
        g_autoptr(GError) error = NULL;

        for (guint i = 0; i < 2 * ITK_LIMIT_VALUE_COUNT; i++)
                g_variant_builder_add(builder, "s", "");
        many = g_variant_ref_sink(g_variant_builder_end(builder));
        g_assert_false(itk_value_budget_check_variant(&budget, many, &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
        g_assert_cmpstr(error->message, ==,
                        "parameters hold more than 65536 values (the limit is 65536)");
        g_assert_cmpuint(budget.values, ==, ITK_LIMIT_VALUE_COUNT);
}

static void
test_value_budget_strings(void)
{
        ItkValueBudget budget = ITK_VALUE_BUDGET_INIT("parameters");
        g_autoptr(GError) error = NULL;

        /* One string over its own bound. */
        g_assert_true(itk_value_budget_add(&budget, ITK_LIMIT_STRING_BYTES, &error));
        g_assert_false(itk_value_budget_add(&budget, ITK_LIMIT_STRING_BYTES + 1, &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
        g_assert_cmpstr(error->message, ==,
                        "parameters hold a string of 1048577 bytes (the limit is 1048576 bytes)");
        g_clear_error(&error);

        /* Many strings, each legal, over the total. */
        g_assert_true(itk_value_budget_add(&budget, ITK_LIMIT_STRING_BYTES, &error));
        g_assert_true(itk_value_budget_add(&budget, ITK_LIMIT_STRING_BYTES, &error));
        g_assert_true(itk_value_budget_add(&budget, ITK_LIMIT_STRING_BYTES, &error));
        g_assert_false(itk_value_budget_add(&budget, 1, &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
        g_assert_cmpstr(error->message, ==,
                        "parameters hold more than 4194304 bytes of text (the limit is 4194304 "
                        "bytes)");
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/limits/yaml/byte-bomb", test_yaml_byte_bomb);
        g_test_add_func("/limits/yaml/byte-budget-stops-at-the-alias",
                        test_yaml_byte_budget_stops_at_the_alias);
        g_test_add_func("/limits/yaml/byte-budget-within", test_yaml_byte_budget_within);
        g_test_add_func("/limits/yaml/node-bomb", test_yaml_node_bomb);
        g_test_add_func("/limits/yaml/other-bounds", test_yaml_other_bounds);
        g_test_add_func("/limits/playbook/byte-bomb", test_playbook_byte_bomb);
        g_test_add_func("/limits/playbook/diagnostics", test_playbook_diagnostics_bound);
        g_test_add_func("/limits/value/depth", test_value_budget_depth);
        g_test_add_func("/limits/value/count", test_value_budget_count);
        g_test_add_func("/limits/value/strings", test_value_budget_strings);
        return g_test_run();
}
