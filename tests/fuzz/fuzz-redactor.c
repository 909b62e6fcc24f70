/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target for secret masking: the input is up to 8 secrets, one a
 * line, then a line "--", then the text. Half the secrets are the run's
 * own, half the shared set. Whatever the input, the masked text holds no
 * secret (those with a '*' aside: the mask itself could complete them). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "itk-redactor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        g_autofree char *input = NULL;
        g_autoptr(ItkRedactor) redactor = itk_redactor_new();
        g_autoptr(ItkSecretSet) set = NULL;
        g_autoptr(GPtrArray) shared = g_ptr_array_new();
        g_autofree char *out = NULL;
        g_auto(GStrv) secrets = NULL;
        char *separator;

        if (size > 64 * 1024)
                return 0;
        input = g_strndup((const char *)data, size);
        separator = strstr(input, "\n--\n");
        if (separator == NULL)
                return 0;
        *separator = '\0';
        secrets = g_strsplit(input, "\n", 8);
        for (guint i = 0; secrets[i] != NULL; i++) {
                if (i % 2 == 0)
                        itk_redactor_add_secret(redactor, secrets[i]);
                else
                        g_ptr_array_add(shared, secrets[i]);
        }
        g_ptr_array_add(shared, NULL);
        set = itk_secret_set_new((const char *const *)shared->pdata);
        itk_redactor_set_shared(redactor, set);
        out = itk_redactor_apply(redactor, separator + 4);
        for (guint i = 0; secrets[i] != NULL; i++) {
                if (*secrets[i] == '\0' || strchr(secrets[i], '*') != NULL)
                        continue;
                if (strstr(out, secrets[i]) != NULL)
                        __builtin_trap();
        }
        return 0;
}
