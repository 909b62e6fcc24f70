/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* bench-redactor: the cost of masking every stored secret, printed as JSON:
 * building the store's set, and masking log lines of several lengths with
 * many secrets (none of which occurs, the common case, and some that do).
 * `--quick` makes it a smoke test. */
#include <stdio.h>
#include <string.h>

#include "itk-redactor.h"

/* Best of 5: the machine is shared, and noise only ever adds time. */
static double
bench_mask(ItkRedactor *redactor, const char *line, guint rounds)
{
        double best = G_MAXDOUBLE;

        for (guint k = 0; k < 5; k++) {
                gint64 start = g_get_monotonic_time();
                for (guint i = 0; i < rounds; i++)
                        g_free(itk_redactor_apply(redactor, line));
                best = MIN(best, (double)(g_get_monotonic_time() - start) * 1000.0 / rounds);
        }
        return best; /* ns per line */
}

/* The baseline the automaton replaces: one strstr() per secret, plain
 * forms only (the encoded forms would multiply it by about ten). */
static double
bench_naive(GPtrArray *secrets, const char *line, guint rounds)
{
        gint64 start = g_get_monotonic_time();
        guint found = 0;

        for (guint i = 0; i < rounds; i++)
                for (guint j = 0; j + 1 < secrets->len; j++)
                        found += strstr(line, g_ptr_array_index(secrets, j)) != NULL;
        g_assert(found < G_MAXUINT);
        return (double)(g_get_monotonic_time() - start) * 1000.0 / rounds;
}

int
main(int argc, char **argv)
{
        gboolean quick = argc > 1 && g_str_equal(argv[1], "--quick");
        const guint counts[] = { 10, 200, 2000 };
        const gsize lengths[] = { 120, 4096, 262144 };
        gboolean first = TRUE;

        printf("{\"redactor\": [");
        for (guint c = 0; c < G_N_ELEMENTS(counts); c++) {
                g_autoptr(GPtrArray) secrets = g_ptr_array_new_with_free_func(g_free);
                g_autoptr(ItkSecretSet) set = NULL;
                g_autoptr(ItkRedactor) redactor = itk_redactor_new();
                gint64 start;
                double build_ms;

                for (guint i = 0; i < counts[c]; i++)
                        g_ptr_array_add(secrets,
                                        g_strdup_printf("Pw-%08x-%u!x", g_random_int(), i));
                g_ptr_array_add(secrets, NULL);
                build_ms = G_MAXDOUBLE;
                for (guint k = 0; k < 3; k++) {
                        g_clear_pointer(&set, itk_secret_set_unref);
                        start = g_get_monotonic_time();
                        set = itk_secret_set_new((const char *const *)secrets->pdata);
                        build_ms = MIN(build_ms, (double)(g_get_monotonic_time() - start) / 1000.0);
                }
                itk_redactor_set_shared(redactor, set);
                for (guint l = 0; l < G_N_ELEMENTS(lengths); l++) {
                        g_autoptr(GString) clean = g_string_new(NULL);
                        g_autoptr(GString) dirty = NULL;
                        guint rounds = quick ? 1 : (guint)MAX(4, 2000000 / lengths[l]);

                        while (clean->len < lengths[l])
                                g_string_append(clean, "step 12 ok: wrote 4096 bytes to "
                                                       "/var/lib/x?a=1&b=%2F+c; Basic dXNlcg== ");
                        g_string_truncate(clean, lengths[l]);
                        dirty = g_string_new(clean->str);
                        g_string_append(dirty, g_ptr_array_index(secrets, 0));
                        g_string_append(dirty, " ");
                        g_string_append(dirty, g_ptr_array_index(secrets, counts[c] - 1));
                        printf("%s\n  {\"secrets\": %u, \"build_ms\": %.2f, \"line_bytes\": %zu, "
                               "\"ns_per_line_clean\": %.0f, \"ns_per_line_with_secrets\": %.0f, "
                               "\"ns_per_line_naive_strstr_plain_only\": %.0f}",
                               first ? "" : ",", counts[c], build_ms, lengths[l],
                               bench_mask(redactor, clean->str, rounds),
                               bench_mask(redactor, dirty->str, rounds),
                               bench_naive(secrets, clean->str, MAX(rounds / 16, 1)));
                        first = FALSE;
                }
        }
        printf("\n]}\n");
        return 0;
}
