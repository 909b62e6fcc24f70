/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "itk-redactor.h"
#include "itk-value.h"

static void
assert_redacts(ItkRedactor *redactor, const char *text, const char *expected)
{
        g_autofree char *out = itk_redactor_apply(redactor, text);

        g_assert_cmpstr(out, ==, expected);
}

static void
test_redactor_empty(void)
{
        g_autoptr(ItkRedactor) redactor = itk_redactor_new();
        g_autofree char *out = NULL;
        const char *text = "nothing to hide";

        g_assert_true(itk_redactor_is_empty(redactor));
        out = itk_redactor_apply(redactor, text);
        g_assert_cmpstr(out, ==, text);
        /* A copy the caller owns, not the input. */
        g_assert_true(out != text);
        g_assert_null(itk_redactor_apply(redactor, NULL));

        /* Too short to be a secret, or none at all. */
        itk_redactor_add_secret(redactor, NULL);
        itk_redactor_add_secret(redactor, "");
        itk_redactor_add_secret(redactor, "abc");
        g_assert_true(itk_redactor_is_empty(redactor));
        assert_redacts(redactor, "abc abc", "abc abc");
}

static void
test_redactor_basic(void)
{
        g_autoptr(ItkRedactor) redactor = itk_redactor_new();

        itk_redactor_add_secret(redactor, "hunter2!");
        itk_redactor_add_secret(redactor, "hunter2!"); /* twice is harmless */
        itk_redactor_add_secret(redactor, "abcd");     /* exactly the minimum length */
        g_assert_false(itk_redactor_is_empty(redactor));

        assert_redacts(redactor, "login admin/hunter2! failed; retry hunter2!",
                       "login admin/" ITK_REDACTED " failed; retry " ITK_REDACTED);
        assert_redacts(redactor, "hunter2!", ITK_REDACTED);
        assert_redacts(redactor, "xabcdx", "x" ITK_REDACTED "x");
        assert_redacts(redactor, "hunter2 abc", "hunter2 abc");
        assert_redacts(redactor, "", "");
        g_assert_null(itk_redactor_apply(redactor, NULL));
}

static void
test_redactor_overlapping(void)
{
        g_autoptr(ItkRedactor) redactor = itk_redactor_new();
        g_autoptr(ItkRedactor) repeat = itk_redactor_new();

        /* One secret inside another: the longer one is masked whole, no
         * "pass" fragment and no double mask. */
        itk_redactor_add_secret(redactor, "pass");
        itk_redactor_add_secret(redactor, "password123");
        assert_redacts(redactor, "pw=password123 p=pass", "pw=" ITK_REDACTED " p=" ITK_REDACTED);

        /* Two secrets sharing bytes in the text: nothing of either is left. */
        itk_redactor_add_secret(redactor, "abcdef");
        itk_redactor_add_secret(redactor, "defghi");
        assert_redacts(redactor, "[abcdefghi]", "[" ITK_REDACTED "]");
        assert_redacts(redactor, "[defghiabcdef]", "[" ITK_REDACTED "]");

        /* A secret overlapping itself. */
        itk_redactor_add_secret(repeat, "aaaa");
        assert_redacts(repeat, "baaaaab", "b" ITK_REDACTED "b");
}

static void
test_redactor_utf8_and_escaped(void)
{
        g_autoptr(ItkRedactor) redactor = itk_redactor_new();
        g_autoptr(JsonObject) object = json_object_new();
        g_autoptr(JsonNode) node = NULL;
        g_autofree char *json = NULL;
        g_autofree char *out = NULL;

        itk_redactor_add_secret(redactor, "pässwörd");
        assert_redacts(redactor, "é pässwörd é", "é " ITK_REDACTED " é");

        /* A secret with a quote, inside JSON text, is masked in its escaped form. */
        itk_redactor_add_secret(redactor, "se\"cr\\et");
        json_object_set_string_member(object, "password", "se\"cr\\et");
        node = json_node_init_object(json_node_alloc(), object);
        json = itk_value_to_json(node);
        g_assert_cmpstr(json, ==, "{\"password\":\"se\\\"cr\\\\et\"}");
        out = itk_redactor_apply(redactor, json);
        g_assert_cmpstr(out, ==, "{\"password\":\"" ITK_REDACTED "\"}");
        assert_redacts(redactor, "raw se\"cr\\et", "raw " ITK_REDACTED);
}

static void
test_redactor_json(void)
{
        g_autoptr(ItkRedactor) redactor = itk_redactor_new();
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node =
                json_from_string("{\"user\": \"admin\", \"out\": \"token=tok-9999 ok\","
                                 "\"tok-9999\": {\"list\": [\"tok-9999\", 5, 1.5, true, null]}}",
                                 &error);
        g_autofree char *before = NULL;
        g_autoptr(JsonNode) masked = NULL;
        g_autoptr(JsonNode) copy = NULL;
        g_autofree char *json = NULL;
        g_autofree char *after = NULL;

        g_assert_no_error(error);
        before = itk_value_to_json(node);

        /* Nothing to mask yet: an equal copy. */
        copy = itk_redactor_apply_json(redactor, node);
        g_assert_true(copy != node);
        g_assert_true(json_node_equal(copy, node));

        itk_redactor_add_secret(redactor, "tok-9999");
        masked = itk_redactor_apply_json(redactor, node);
        json = itk_value_to_json(masked);
        /* Values and keys, at every depth; other types untouched. */
        g_assert_cmpstr(json, ==,
                        "{\"user\":\"admin\",\"out\":\"token=" ITK_REDACTED " ok\","
                        "\"" ITK_REDACTED "\":{\"list\":[\"" ITK_REDACTED "\",5,1.5,true,null]}}");
        /* The input is left as it was. */
        after = itk_value_to_json(node);
        g_assert_cmpstr(after, ==, before);
        g_assert_null(itk_redactor_apply_json(redactor, NULL));
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/redactor/empty", test_redactor_empty);
        g_test_add_func("/redactor/basic", test_redactor_basic);
        g_test_add_func("/redactor/overlapping", test_redactor_overlapping);
        g_test_add_func("/redactor/utf8-and-escaped", test_redactor_utf8_and_escaped);
        g_test_add_func("/redactor/json", test_redactor_json);
        return g_test_run();
}
