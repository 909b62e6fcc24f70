/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* An execution's Status (org.ignition.Toolkit.Execution). */
typedef enum {
        ITK_RUN_STATUS_UNKNOWN,
        ITK_RUN_STATUS_PENDING,
        ITK_RUN_STATUS_RUNNING,
        ITK_RUN_STATUS_PAUSED,
        ITK_RUN_STATUS_COMPLETED,
        ITK_RUN_STATUS_FAILED,
        ITK_RUN_STATUS_CANCELLED,
} ItkRunStatus;

/* A step's status (GetSteps, StepChanged). */
typedef enum {
        ITK_STEP_STATUS_UNKNOWN,
        ITK_STEP_STATUS_PENDING,
        ITK_STEP_STATUS_RUNNING,
        ITK_STEP_STATUS_COMPLETED,
        ITK_STEP_STATUS_FAILED,
        ITK_STEP_STATUS_SKIPPED,
        ITK_STEP_STATUS_CANCELLED,
} ItkStepStatus;

/* The control methods of an execution, as a bit set. */
typedef enum {
        ITK_RUN_CONTROL_START = 1 << 0,
        ITK_RUN_CONTROL_CANCEL = 1 << 1,
        ITK_RUN_CONTROL_PAUSE = 1 << 2,
        ITK_RUN_CONTROL_RESUME = 1 << 3,
        ITK_RUN_CONTROL_SKIP = 1 << 4,
        ITK_RUN_CONTROL_SKIP_BACK = 1 << 5,
        ITK_RUN_CONTROL_DEBUG = 1 << 6,
} ItkRunControls;

ItkRunStatus itk_run_status_from_string(const char *text);
const char *itk_run_status_to_string(ItkRunStatus status);
gboolean itk_run_status_is_terminal(ItkRunStatus status);
/* The controls that are not an error in @status (the contract's control
 * semantics table): what a UI should offer. */
ItkRunControls itk_run_status_controls(ItkRunStatus status, gboolean pause_requested);

ItkStepStatus itk_step_status_from_string(const char *text);
const char *itk_step_status_to_string(ItkStepStatus status);

G_END_DECLS
