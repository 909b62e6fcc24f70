/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "itk-run-status.h"

static const char *const run_names[] = {
        [ITK_RUN_STATUS_UNKNOWN] = "unknown",     [ITK_RUN_STATUS_PENDING] = "pending",
        [ITK_RUN_STATUS_RUNNING] = "running",     [ITK_RUN_STATUS_PAUSED] = "paused",
        [ITK_RUN_STATUS_COMPLETED] = "completed", [ITK_RUN_STATUS_FAILED] = "failed",
        [ITK_RUN_STATUS_CANCELLED] = "cancelled",
};

static const char *const step_names[] = {
        [ITK_STEP_STATUS_UNKNOWN] = "unknown",     [ITK_STEP_STATUS_PENDING] = "pending",
        [ITK_STEP_STATUS_RUNNING] = "running",     [ITK_STEP_STATUS_COMPLETED] = "completed",
        [ITK_STEP_STATUS_FAILED] = "failed",       [ITK_STEP_STATUS_SKIPPED] = "skipped",
        [ITK_STEP_STATUS_CANCELLED] = "cancelled",
};

ItkRunStatus
itk_run_status_from_string(const char *text)
{
        for (guint i = 1; text != NULL && i < G_N_ELEMENTS(run_names); i++)
                if (g_str_equal(text, run_names[i]))
                        return (ItkRunStatus)i;
        return ITK_RUN_STATUS_UNKNOWN;
}

const char *
itk_run_status_to_string(ItkRunStatus status)
{
        return (guint)status < G_N_ELEMENTS(run_names) ? run_names[status] : "unknown";
}

gboolean
itk_run_status_is_terminal(ItkRunStatus status)
{
        return status == ITK_RUN_STATUS_COMPLETED || status == ITK_RUN_STATUS_FAILED ||
               status == ITK_RUN_STATUS_CANCELLED;
}

ItkRunControls
itk_run_status_controls(ItkRunStatus status, gboolean pause_requested)
{
        switch (status) {
        case ITK_RUN_STATUS_PENDING:
                return ITK_RUN_CONTROL_START | ITK_RUN_CONTROL_CANCEL | ITK_RUN_CONTROL_DEBUG;
        case ITK_RUN_STATUS_RUNNING:
                /* Resume on a running run only clears PauseRequested. */
                return ITK_RUN_CONTROL_CANCEL |
                       (pause_requested ? ITK_RUN_CONTROL_RESUME : ITK_RUN_CONTROL_PAUSE) |
                       ITK_RUN_CONTROL_SKIP | ITK_RUN_CONTROL_SKIP_BACK | ITK_RUN_CONTROL_DEBUG;
        case ITK_RUN_STATUS_PAUSED:
                return ITK_RUN_CONTROL_CANCEL | ITK_RUN_CONTROL_RESUME | ITK_RUN_CONTROL_SKIP |
                       ITK_RUN_CONTROL_SKIP_BACK | ITK_RUN_CONTROL_DEBUG;
        case ITK_RUN_STATUS_UNKNOWN:
        case ITK_RUN_STATUS_COMPLETED:
        case ITK_RUN_STATUS_FAILED:
        case ITK_RUN_STATUS_CANCELLED:
        default:
                return 0;
        }
}

ItkStepStatus
itk_step_status_from_string(const char *text)
{
        for (guint i = 1; text != NULL && i < G_N_ELEMENTS(step_names); i++)
                if (g_str_equal(text, step_names[i]))
                        return (ItkStepStatus)i;
        return ITK_STEP_STATUS_UNKNOWN;
}

const char *
itk_step_status_to_string(ItkStepStatus status)
{
        return (guint)status < G_N_ELEMENTS(step_names) ? step_names[status] : "unknown";
}
