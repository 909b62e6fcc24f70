/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* playbook.run: the nested run happens inside the parent execution (frames
 * in itk-execution.c), so its steps answer to the parent's Pause, Skip and
 * Cancel. The handler is registered for validation; the engine never calls
 * its run function. */
#include "itk-error.h"
#include "itk-step.h"

static void
itk_step_playbook_run(ItkStepContext *ctx, JsonObject *params, GCancellable *cancellable,
                      GAsyncReadyCallback callback, gpointer user_data)
{
        g_autoptr(GTask) task = itk_step_task_new(ctx, cancellable, callback, user_data);

        g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_FAILED,
                                "playbook.run only runs inside an execution");
}

static const char *const playbook_run_required[] = { "playbook", NULL };

static ItkStepHandler playbook_handlers[] = { {
        .type = "playbook.run",
        .run = itk_step_playbook_run,
        .pausable = FALSE,
        .required = playbook_run_required,
} };

static const char *const playbook_prefixes[] = { "playbook.", NULL };

static const ItkStepProvider playbook_provider = {
        .name = "playbook",
        .prefixes = playbook_prefixes,
        .handlers = playbook_handlers,
        .n_handlers = G_N_ELEMENTS(playbook_handlers),
};

void
itk_step_playbook_register(void)
{
        itk_step_registry_register_provider(&playbook_provider);
}
