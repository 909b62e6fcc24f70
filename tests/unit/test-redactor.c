/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "itk-redactor.h"
#include "itk-script.h"
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

        /* No secret at all. */
        itk_redactor_add_secret(redactor, NULL);
        itk_redactor_add_secret(redactor, "");
        g_assert_true(itk_redactor_is_empty(redactor));
}

/* The short-secret rule (docs/security.md): a secret of 1 to 3 bytes is
 * masked in the runs that reference it (their own choice), never store-wide,
 * where it would mask every "abc" of every run. */
static void
test_redactor_short(void)
{
        g_autoptr(ItkRedactor) redactor = itk_redactor_new();

        itk_redactor_add_secret(redactor, "abc");
        g_assert_false(itk_redactor_is_empty(redactor));
        assert_redacts(redactor, "x abc y", "x " ITK_REDACTED " y");
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

static void
test_redactor_base64(void)
{
        g_autoptr(ItkRedactor) redactor = itk_redactor_new();

        /* "s3cret?Pass>" has '+' and '/' in base64: both alphabets. */
        itk_redactor_add_secret(redactor, "s3cret?Pass>");
        /* Standalone, padded or not, standard and URL-safe. */
        assert_redacts(redactor, "a czNjcmV0P1Bhc3M+ b", "a " ITK_REDACTED " b");
        assert_redacts(redactor, "a czNjcmV0P1Bhc3M- b", "a " ITK_REDACTED " b");
        itk_redactor_add_secret(redactor, "hunter2!");
        assert_redacts(redactor, "[aHVudGVyMiE=]", "[" ITK_REDACTED "]");
        assert_redacts(redactor, "[aHVudGVyMiE]", "[" ITK_REDACTED "]");
}

/* A secret inside a longer base64 text, at each of the three alignments:
 * what depends on the secret alone is masked, so no run of its characters
 * is left. */
static void
test_redactor_base64_embedded(void)
{
        g_autoptr(ItkRedactor) redactor = itk_redactor_new();
        const char *prefixes[] = { "", "a", "ab", "admin:", "admin2:", "admin23:" };

        itk_redactor_add_secret(redactor, "Tr0ub4dor&3xyz");
        for (guint i = 0; i < G_N_ELEMENTS(prefixes); i++) {
                for (guint j = 0; j < 3; j++) {
                        const char *suffixes[] = { "", "!", "!?" };
                        g_autofree char *plain =
                                g_strconcat(prefixes[i], "Tr0ub4dor&3xyz", suffixes[j], NULL);
                        g_autofree char *std = g_base64_encode((guchar *)plain, strlen(plain));
                        g_autofree char *url = g_strdup(std);
                        g_autofree char *text = NULL;
                        g_autofree char *out = NULL;
                        gsize off = strlen(prefixes[i]);
                        gsize first = (8 * off + 5) / 6, end = (8 * off + 8 * 14) / 6;

                        g_strdelimit(url, "+", '-');
                        g_strdelimit(url, "/", '_');
                        text = g_strdup_printf("Basic %s url=%s", std, url);
                        out = itk_redactor_apply(redactor, text);
                        /* The characters made of the secret's bits alone
                         * (std[first, end)): no 4 in a row survive, in
                         * either alphabet. */
                        for (gsize k = first; k + 4 <= end; k++) {
                                g_autofree char *piece = g_strndup(std + k, 4);
                                g_autofree char *url_piece = g_strndup(url + k, 4);
                                g_assert_null(strstr(out, piece));
                                g_assert_null(strstr(out, url_piece));
                        }
                }
        }
}

static void
test_redactor_url_encoded(void)
{
        g_autoptr(ItkRedactor) redactor = itk_redactor_new();

        itk_redactor_add_secret(redactor, "p@ss w/rd&1");
        /* Upper and lower hex, '+' or %20 for space, any subset escaped. */
        assert_redacts(redactor, "u=x&p=p%40ss%20w%2Frd%261&z", "u=x&p=" ITK_REDACTED "&z");
        assert_redacts(redactor, "p=p%40ss+w%2frd%261", "p=" ITK_REDACTED);
        assert_redacts(redactor, "p=p@ss+w/rd%26%31.", "p=" ITK_REDACTED ".");
        assert_redacts(redactor, "%70%40%73%73%20%77%2f%72%64%26%31", ITK_REDACTED);
        /* Not a match: one byte differs once decoded. */
        assert_redacts(redactor, "p%40ss%20w%2Frd%262", "p%40ss%20w%2Frd%262");
        /* A '+' that is only a plus is left alone. */
        assert_redacts(redactor, "1+1=2 100%", "1+1=2 100%");
}

/* Secrets of the store masked in a run that never referenced them; a set
 * swapped in later masks the new ones and keeps the deleted ones. */
static void
test_redactor_shared(void)
{
        g_autoptr(ItkRedactor) redactor = itk_redactor_new();
        const char *first[] = { "stored-one", "stored-two", NULL };
        const char *second[] = { "stored-two", "stored-three", NULL };
        g_autoptr(ItkSecretSet) a = itk_secret_set_new(first);
        g_autoptr(ItkSecretSet) b = itk_secret_set_new(second);
        g_autoptr(ItkRedactor) fresh = itk_redactor_new();

        itk_redactor_add_secret(redactor, "own-secret");
        itk_redactor_set_shared(redactor, a);
        assert_redacts(redactor, "stored-one own-secret stored-three",
                       ITK_REDACTED " " ITK_REDACTED " stored-three");
        itk_redactor_set_shared(redactor, b);
        assert_redacts(redactor, "stored-one stored-two stored-three",
                       ITK_REDACTED " " ITK_REDACTED " " ITK_REDACTED);
        /* A run started after the deletion does not mask it. */
        itk_redactor_set_shared(fresh, b);
        assert_redacts(fresh, "stored-one", "stored-one");
        /* Even an emptied store keeps what this run could see masked. */
        itk_redactor_set_shared(fresh, NULL);
        assert_redacts(fresh, "stored-three", ITK_REDACTED);
}

/* Many secrets, overlapping prefixes and suffixes: the automaton finds
 * exactly what a naive search finds. */
static void
test_redactor_many(void)
{
        g_autoptr(GPtrArray) secrets = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(ItkSecretSet) set = NULL;
        g_autoptr(ItkRedactor) redactor = itk_redactor_new();
        g_autoptr(GString) text = g_string_new(NULL);
        g_autofree char *out = NULL;
        GRand *rand = g_rand_new_with_seed(42);

        for (guint i = 0; i < 2000; i++)
                g_ptr_array_add(secrets, g_strdup_printf("sec%05u-%c%c", i * 7919 % 100000,
                                                         'a' + i % 26, 'a' + i / 26 % 26));
        g_ptr_array_add(secrets, NULL);
        set = itk_secret_set_new((const char *const *)secrets->pdata);
        itk_redactor_set_shared(redactor, set);
        for (guint i = 0; i < 300; i++) {
                const char *secret = g_ptr_array_index(secrets, g_rand_int_range(rand, 0, 2000));
                g_string_append_printf(text, "line %u sec%05u-zz ", i, i);
                if (i % 3 == 0)
                        g_string_append(text, secret);
        }
        out = itk_redactor_apply(redactor, text->str);
        for (guint i = 0; i < 2000; i++)
                g_assert_null(strstr(out, g_ptr_array_index(secrets, i)));
        g_assert_nonnull(strstr(out, "line 299 sec00299-zz"));
        g_rand_free(rand);
}

/* The old masking, byte by byte: the reference the automaton must match. */
static char *
naive_mask(const char *const *secrets, const char *text)
{
        gsize len = strlen(text);
        g_autofree guint8 *covered = g_malloc0(len + 1);
        GString *out = g_string_new(NULL);

        for (guint i = 0; secrets[i] != NULL; i++)
                for (const char *p = text; (p = strstr(p, secrets[i])) != NULL; p++)
                        memset(covered + (p - text), 1, strlen(secrets[i]));
        for (gsize i = 0; i < len;) {
                if (!covered[i]) {
                        g_string_append_c(out, text[i++]);
                        continue;
                }
                while (i < len && covered[i])
                        i++;
                g_string_append(out, ITK_REDACTED);
        }
        return g_string_free(out, FALSE);
}

/* Random secrets and texts over a tiny alphabet (no base64 or URL
 * characters, so only the plain forms can match): overlapping, nested and
 * repeated secrets are masked exactly as the byte-by-byte search does. */
static void
test_redactor_differential(void)
{
        GRand *rand = g_rand_new_with_seed(7);
        const char alphabet[] = "!#$";

        for (guint round = 0; round < 300; round++) {
                g_autoptr(GPtrArray) secrets = g_ptr_array_new_with_free_func(g_free);
                g_autoptr(ItkRedactor) redactor = itk_redactor_new();
                g_autoptr(ItkSecretSet) set = NULL;
                g_autofree char *text = g_malloc0(121);
                g_autofree char *expected = NULL;
                g_autofree char *out = NULL;
                guint n = (guint)g_rand_int_range(rand, 1, 8);

                for (guint i = 0; i < n; i++) {
                        guint len = (guint)g_rand_int_range(rand, 2, 7);
                        char *secret = g_malloc0(len + 1);
                        for (guint k = 0; k < len; k++)
                                secret[k] = alphabet[g_rand_int_range(rand, 0, 3)];
                        g_ptr_array_add(secrets, secret);
                }
                for (guint k = 0; k < 120; k++)
                        text[k] = alphabet[g_rand_int_range(rand, 0, 3)];
                g_ptr_array_add(secrets, NULL);
                /* Half in the shared set, half the run's own. */
                set = itk_secret_set_new((const char *const *)secrets->pdata + n / 2);
                itk_redactor_set_shared(redactor, set);
                for (guint i = 0; i < n / 2; i++)
                        itk_redactor_add_secret(redactor, g_ptr_array_index(secrets, i));
                expected = naive_mask((const char *const *)secrets->pdata, text);
                out = itk_redactor_apply(redactor, text);
                g_assert_cmpstr(out, ==, expected);
        }
        g_rand_free(rand);
}

/* A script line cut by the reader may end in the first bytes of a secret
 * whose rest was dropped: that end is masked, whatever its length. */
static void
test_redactor_cut(void)
{
        g_autoptr(ItkRedactor) redactor = itk_redactor_new();
        const char *stored[] = { "SharedSecretValue", NULL };
        g_autoptr(ItkSecretSet) set = itk_secret_set_new(stored);
        g_autofree char *line = NULL;
        g_autofree char *output = NULL;
        g_autofree char *whole = NULL;
        g_autofree char *untouched = NULL;

        itk_redactor_add_secret(redactor, "OwnPassw0rd!");
        itk_redactor_set_shared(redactor, set);

        line = itk_redactor_apply(redactor, "token=OwnPas" ITK_SCRIPT_LINE_TRUNCATED);
        g_assert_cmpstr(line, ==, "token=" ITK_REDACTED ITK_SCRIPT_LINE_TRUNCATED);
        output = itk_redactor_apply(redactor, "a\nb SharedSec" ITK_SCRIPT_OUTPUT_TRUNCATED);
        g_assert_cmpstr(output, ==, "a\nb " ITK_REDACTED ITK_SCRIPT_OUTPUT_TRUNCATED);
        /* A whole secret right before the cut, and a second one starting. */
        whole = itk_redactor_apply(redactor, "OwnPassw0rd!Sh" ITK_SCRIPT_LINE_TRUNCATED);
        g_assert_cmpstr(whole, ==, ITK_REDACTED ITK_SCRIPT_LINE_TRUNCATED);
        /* Without the marker the text was not cut: its end is left alone. */
        untouched = itk_redactor_apply(redactor, "token=OwnPas");
        g_assert_cmpstr(untouched, ==, "token=OwnPas");
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/redactor/empty", test_redactor_empty);
        g_test_add_func("/redactor/short", test_redactor_short);
        g_test_add_func("/redactor/basic", test_redactor_basic);
        g_test_add_func("/redactor/base64", test_redactor_base64);
        g_test_add_func("/redactor/base64-embedded", test_redactor_base64_embedded);
        g_test_add_func("/redactor/url-encoded", test_redactor_url_encoded);
        g_test_add_func("/redactor/shared", test_redactor_shared);
        g_test_add_func("/redactor/many", test_redactor_many);
        g_test_add_func("/redactor/differential", test_redactor_differential);
        g_test_add_func("/redactor/overlapping", test_redactor_overlapping);
        g_test_add_func("/redactor/utf8-and-escaped", test_redactor_utf8_and_escaped);
        g_test_add_func("/redactor/json", test_redactor_json);
        g_test_add_func("/redactor/cut", test_redactor_cut);
        return g_test_run();
}
