/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The old tool's families that are later work here: fat.* (test reports)
 * and designer.* (desktop Designer automation). Declared so that a playbook
 * using them validates with "step type 'x' is not supported yet" instead
 * of "unknown step type". */
#include "itk-step.h"

static const char *const later_prefixes[] = { "fat.", "designer.", NULL };

static const ItkStepProvider later_provider = {
        .name = "later",
        .prefixes = later_prefixes,
        .later = TRUE,
};

void
itk_step_later_register(void)
{
        itk_step_registry_register_provider(&later_provider);
}
