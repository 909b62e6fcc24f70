/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <math.h>

#include "itk-error.h"
#include "itk-value.h"

static JsonNode *
parse(const char *json)
{
        g_autoptr(GError) error = NULL;
        JsonNode *node = json_from_string(json, &error);

        g_assert_no_error(error);
        g_assert_nonnull(node);
        return node;
}

static void
assert_json(JsonNode *node, const char *expected)
{
        g_autofree char *text = itk_value_to_json(node);

        g_assert_cmpstr(text, ==, expected);
}

/* Converts @value (floating or not) and checks the compact JSON. */
static void
assert_from_variant(GVariant *value, const char *expected)
{
        g_autoptr(GVariant) owned = g_variant_ref_sink(value);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = itk_value_from_variant(owned, &error);

        g_assert_no_error(error);
        g_assert_nonnull(node);
        assert_json(node, expected);
}

static void
test_value_from_variant_basic(void)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = NULL;
        g_autoptr(GVariant) boolean = g_variant_ref_sink(g_variant_new_boolean(TRUE));
        g_autoptr(GVariant) dbl = g_variant_ref_sink(g_variant_new_double(2.0));

        /* Every integer width becomes a JSON integer, at its extremes too. */
        assert_from_variant(g_variant_new_byte(255), "255");
        assert_from_variant(g_variant_new_int16(G_MININT16), "-32768");
        assert_from_variant(g_variant_new_uint16(G_MAXUINT16), "65535");
        assert_from_variant(g_variant_new_int32(G_MININT32), "-2147483648");
        assert_from_variant(g_variant_new_uint32(G_MAXUINT32), "4294967295");
        assert_from_variant(g_variant_new_int64(G_MININT64), "-9223372036854775808");
        assert_from_variant(g_variant_new_uint64(G_MAXINT64), "9223372036854775807");
        assert_from_variant(g_variant_new_double(1.5), "1.5");
        assert_from_variant(g_variant_new_boolean(FALSE), "false");
        assert_from_variant(g_variant_new_string("a\"b"), "\"a\\\"b\"");
        assert_from_variant(g_variant_new_object_path("/org/ignition/Toolkit"),
                            "\"/org/ignition/Toolkit\"");
        assert_from_variant(g_variant_new_signature("a{sv}"), "\"a{sv}\"");

        /* Node types, not only their text. */
        node = itk_value_from_variant(boolean, &error);
        g_assert_no_error(error);
        g_assert_cmpint(json_node_get_value_type(node), ==, G_TYPE_BOOLEAN);
        g_assert_true(json_node_get_boolean(node));
        g_clear_pointer(&node, json_node_unref);
        node = itk_value_from_variant(dbl, &error);
        g_assert_no_error(error);
        g_assert_cmpint(json_node_get_value_type(node), ==, G_TYPE_DOUBLE);
        g_assert_cmpfloat(json_node_get_double(node), ==, 2.0);
}

static void
test_value_from_variant_containers(void)
{
        GVariantBuilder builder;
        GVariantBuilder inner;

        /* "v" is unwrapped at any depth. */
        assert_from_variant(g_variant_new_variant(g_variant_new_variant(g_variant_new_int32(7))),
                            "7");

        assert_from_variant(g_variant_new_parsed("@as ['a', 'b']"), "[\"a\",\"b\"]");
        assert_from_variant(g_variant_new_parsed("@as []"), "[]");
        assert_from_variant(g_variant_new_parsed("@av [<1>, <'x'>, <[<true>]>]"),
                            "[1,\"x\",[true]]");
        assert_from_variant(g_variant_new_parsed("@ay [1, 2]"), "[1,2]");
        assert_from_variant(g_variant_new_parsed("@a{ss} {'k': 'v'}"), "{\"k\":\"v\"}");
        assert_from_variant(g_variant_new_parsed("@aas [['a'], []]"), "[[\"a\"],[]]");

        /* a{sv} with nested a{sv}, av and aa{sv}. */
        g_variant_builder_init(&builder, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&builder, "{sv}", "n", g_variant_new_uint32(3));
        g_variant_builder_add(&builder, "{sv}", "nested",
                              g_variant_new_parsed("@a{sv} {'x': <@x 1>, 'y': <'z'>}"));
        g_variant_builder_add(&builder, "{sv}", "list", g_variant_new_parsed("[<1.5>, <'a'>]"));
        g_variant_builder_init(&inner, G_VARIANT_TYPE("aa{sv}"));
        g_variant_builder_add_parsed(&inner, "{'id': <'s1'>}");
        g_variant_builder_add_parsed(&inner, "@a{sv} {}");
        g_variant_builder_add(&builder, "{sv}", "steps", g_variant_builder_end(&inner));
        assert_from_variant(g_variant_builder_end(&builder),
                            "{\"n\":3,\"nested\":{\"x\":1,\"y\":\"z\"},\"list\":[1.5,\"a\"],"
                            "\"steps\":[{\"id\":\"s1\"},{}]}");
}

static void
assert_from_variant_fails(const char *text, const char *message)
{
        g_autoptr(GVariant) value = g_variant_ref_sink(g_variant_new_parsed(text));
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = itk_value_from_variant(value, &error);

        g_assert_null(node);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
        g_assert_cmpstr(error->message, ==, message);
}

static void
test_value_from_variant_unsupported(void)
{
        g_autoptr(GVariant) handle = g_variant_ref_sink(g_variant_new_handle(3));
        g_autoptr(GVariant) nan = g_variant_ref_sink(g_variant_new_double(NAN));
        g_autoptr(GVariant) big = g_variant_ref_sink(g_variant_new_uint64(G_MAXUINT64));
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = NULL;

        node = itk_value_from_variant(handle, &error);
        g_assert_null(node);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
        g_assert_cmpstr(error->message, ==, "unsupported value type 'h'");
        g_clear_error(&error);

        assert_from_variant_fails("@mi 5", "unsupported value type 'mi'");
        assert_from_variant_fails("(1, 'a')", "unsupported value type '(is)'");
        assert_from_variant_fails("@a{is} {1: 'a'}", "unsupported value type 'a{is}'");
        /* Refused by type even when empty, and named inside its container. */
        assert_from_variant_fails("@ah []", "unsupported value type 'h' in 'ah'");
        assert_from_variant_fails("@a{smi} {}", "unsupported value type 'mi' in 'a{smi}'");
        /* Inside a "v", found when the content is met. */
        assert_from_variant_fails("@av [<1>, <@mi nothing>]", "unsupported value type 'mi'");

        node = itk_value_from_variant(nan, &error);
        g_assert_null(node);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
        g_clear_error(&error);
        node = itk_value_from_variant(big, &error);
        g_assert_null(node);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
        g_assert_nonnull(strstr(error->message, "18446744073709551615"));
}

static void
test_value_object_from_variant(void)
{
        g_autoptr(GVariant) dict =
                g_variant_ref_sink(g_variant_new_parsed("{'a': <1>, 'b': <'x'>}"));
        g_autoptr(GVariant) wrapped = g_variant_ref_sink(g_variant_new_variant(dict));
        g_autoptr(GVariant) list = g_variant_ref_sink(g_variant_new_parsed("['a']"));
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) object = NULL;

        object = itk_value_object_from_variant(dict, &error);
        g_assert_no_error(error);
        g_assert_cmpint(json_object_get_int_member(object, "a"), ==, 1);
        g_assert_cmpstr(json_object_get_string_member(object, "b"), ==, "x");
        g_clear_pointer(&object, json_object_unref);

        object = itk_value_object_from_variant(wrapped, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(json_object_get_size(object), ==, 2);
        g_clear_pointer(&object, json_object_unref);

        object = itk_value_object_from_variant(list, &error);
        g_assert_null(object);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
        g_assert_nonnull(strstr(error->message, "'as'"));
}

static void
assert_to_variant(const char *json, const char *expected_type, const char *expected_text)
{
        g_autoptr(JsonNode) node = parse(json);
        g_autoptr(GVariant) value = g_variant_ref_sink(itk_value_to_variant(node));
        g_autofree char *text = g_variant_print(value, TRUE);

        g_assert_cmpstr(g_variant_get_type_string(value), ==, expected_type);
        g_assert_cmpstr(text, ==, expected_text);
}

static void
test_value_to_variant(void)
{
        g_autoptr(GVariant) from_null = NULL;

        assert_to_variant("true", "b", "true");
        assert_to_variant("42", "x", "int64 42");
        assert_to_variant("-1", "x", "int64 -1");
        assert_to_variant("2.0", "d", "2.0");
        assert_to_variant("\"s\"", "s", "'s'");
        assert_to_variant("[1, \"a\"]", "av", "[<int64 1>, <'a'>]");
        assert_to_variant("{\"k\": {\"n\": [true]}}", "a{sv}", "{'k': <{'n': <[<true>]>}>}");
        /* null has no D-Bus form: an empty av, inside containers too. */
        assert_to_variant("null", "av", "@av []");
        assert_to_variant("{\"k\": null}", "a{sv}", "{'k': <@av []>}");

        from_null = g_variant_ref_sink(itk_value_to_variant(NULL));
        g_assert_cmpstr(g_variant_get_type_string(from_null), ==, "av");
}

static void
test_value_round_trip(void)
{
        const char *json = "{\"s\":\"text\",\"i\":-7,\"big\":9007199254740993,\"d\":0.1,"
                           "\"d2\":2.0,\"b\":false,\"l\":[1,[2,{\"x\":\"y\"}],\"z\"],"
                           "\"o\":{\"inner\":{\"deep\":[]}},\"e\":{}}";
        g_autoptr(JsonNode) node = parse(json);
        g_autoptr(GVariant) value = g_variant_ref_sink(itk_value_to_variant(node));
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) back = itk_value_from_variant(value, &error);
        g_autoptr(GVariant) again = NULL;

        g_assert_no_error(error);
        /* Same values and same number types (2.0 stays a double). */
        g_assert_true(json_node_equal(node, back));
        g_assert_cmpint(
                json_node_get_value_type(json_object_get_member(json_node_get_object(back), "d2")),
                ==, G_TYPE_DOUBLE);
        assert_json(back, json);

        /* And GVariant -> JSON -> GVariant gives the same variant. */
        again = g_variant_ref_sink(itk_value_to_variant(back));
        g_assert_true(g_variant_equal(value, again));
}

static void
assert_text(JsonNode *node, const char *expected)
{
        g_autofree char *text = itk_value_to_text(node);

        g_assert_cmpstr(text, ==, expected);
}

static void
assert_double_text(double value, const char *expected)
{
        g_autoptr(JsonNode) node = json_node_init_double(json_node_alloc(), value);

        assert_text(node, expected);
}

static void
test_value_to_text(void)
{
        g_autoptr(JsonNode) string = parse("\"a \\\"quoted\\\" {{ x }}\"");
        g_autoptr(JsonNode) integer = parse("-12345678901");
        g_autoptr(JsonNode) yes = parse("true");
        g_autoptr(JsonNode) null = parse("null");
        g_autoptr(JsonNode) list = parse("[1, \"a\", 2.0, null, {\"k\": \"v\\n\"}]");
        g_autoptr(JsonNode) object = parse("{\"a\": {\"b\": [true]}}");

        assert_text(string, "a \"quoted\" {{ x }}");
        assert_text(integer, "-12345678901");
        assert_text(yes, "true");
        assert_text(null, "");
        assert_text(NULL, "");
        assert_text(list, "[1,\"a\",2.0,null,{\"k\":\"v\\n\"}]");
        assert_text(object, "{\"a\":{\"b\":[true]}}");

        /* Doubles as Python's str() writes them. */
        assert_double_text(2.0, "2.0");
        assert_double_text(1.5, "1.5");
        assert_double_text(0.1, "0.1");
        assert_double_text(0.0, "0.0");
        assert_double_text(-0.0, "-0.0");
        assert_double_text(100.0, "100.0");
        assert_double_text(12345.678, "12345.678");
        assert_double_text(1.0 / 3.0, "0.3333333333333333");
        assert_double_text(0.1 + 0.2, "0.30000000000000004");
        assert_double_text(1e-7, "1e-07");
        assert_double_text(0.0001, "0.0001");
        assert_double_text(0.00001, "1e-05");
        assert_double_text(-2.5e-10, "-2.5e-10");
        assert_double_text(1e15, "1000000000000000.0");
        assert_double_text(1e16, "1e+16");
        assert_double_text(1234567890123456.7, "1234567890123456.8");
        assert_double_text(123456789012345678.0, "1.2345678901234568e+17");
        assert_double_text(1e22, "1e+22");
        assert_double_text(5e-324, "5e-324");
        assert_double_text(1.7976931348623157e308, "1.7976931348623157e+308");
        assert_double_text(NAN, "nan");
        assert_double_text(-INFINITY, "-inf");
}

static void
test_value_to_json(void)
{
        g_autoptr(JsonNode) node =
                parse("{\"ctl\": \"\\u0001\\t\\\\/\", \"u\": \"\\u00e9\", \"d\": [2.0, 1e-7]}");
        g_autoptr(JsonNode) nan = json_node_init_double(json_node_alloc(), NAN);
        g_autofree char *text = itk_value_to_json(node);
        g_autoptr(JsonNode) back = parse(text);

        g_assert_cmpstr(text, ==, "{\"ctl\":\"\\u0001\\t\\\\/\",\"u\":\"é\",\"d\":[2.0,1e-07]}");
        /* What we write reads back as the same values and types. */
        g_assert_true(json_node_equal(node, back));
        assert_json(NULL, "null");
        /* JSON has no NaN: stays valid JSON. */
        assert_json(nan, "null");
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/value/from-variant/basic", test_value_from_variant_basic);
        g_test_add_func("/value/from-variant/containers", test_value_from_variant_containers);
        g_test_add_func("/value/from-variant/unsupported", test_value_from_variant_unsupported);
        g_test_add_func("/value/object-from-variant", test_value_object_from_variant);
        g_test_add_func("/value/to-variant", test_value_to_variant);
        g_test_add_func("/value/round-trip", test_value_round_trip);
        g_test_add_func("/value/to-text", test_value_to_text);
        g_test_add_func("/value/to-json", test_value_to_json);
        return g_test_run();
}
