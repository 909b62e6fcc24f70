/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the playbook loader on arbitrary bytes, then what a
 * caller does with a playbook that loaded (bind parameters, check nesting). */
#include <stdint.h>
#include <stddef.h>

#include "itk-playbook.h"
#include "itk-step.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every target resolves to the playbook itself, so nesting checks walk
 * (and refuse) a cycle without reading any file. */
static ItkPlaybook *
fuzz_resolve_cb(const char *id, gpointer user_data, GError **error)
{
        return itk_playbook_ref(user_data);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        g_autoptr(GPtrArray) diagnostics =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(ItkPlaybook) playbook = NULL;
        g_autoptr(GError) error = NULL;

        if (size > ITK_PLAYBOOK_MAX_SIZE + 1)
                return 0;

        playbook = itk_playbook_new_from_data((const char *)data, (gssize)size, "fuzz.yaml",
                                              diagnostics, &error);
        /* Exactly one outcome: a playbook, or an error with at least one diagnostic. */
        g_assert((playbook == NULL) == (error != NULL));
        g_assert(playbook != NULL || diagnostics->len > 0);

        for (guint i = 0; i < diagnostics->len; i++) {
                g_autofree char *text = itk_diagnostic_to_string(diagnostics->pdata[i]);
                g_assert(text != NULL);
        }

        if (playbook != NULL) {
                g_autoptr(JsonObject) given = json_object_new();
                g_autoptr(JsonObject) bound = NULL;
                g_autoptr(GError) bind_error = NULL;
                g_autoptr(GError) nesting_error = NULL;

                bound = itk_playbook_bind_parameters(playbook, given, &bind_error);
                g_assert((bound == NULL) == (bind_error != NULL));
                itk_playbook_check_nesting(playbook, fuzz_resolve_cb, playbook, &nesting_error);
                for (guint i = 0; i < playbook->steps->len; i++) {
                        const ItkStepDef *step = g_ptr_array_index(playbook->steps, i);
                        g_assert(itk_playbook_find_step(playbook, step->id) == (int)i);
                }
        }
        return 0;
}
