/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The gateway.* step types. Until the gateway client lands they validate
 * as "not supported yet", naming the step. */
#include "itk-step.h"

static const char *const gateway_types[] = {
        "gateway.login",          "gateway.logout",
        "gateway.ping",           "gateway.get_info",
        "gateway.get_health",     "gateway.list_modules",
        "gateway.upload_module",  "gateway.wait_for_module_installation",
        "gateway.uninstall_module", "gateway.list_projects",
        "gateway.get_project",    "gateway.export_project",
        "gateway.import_project", "gateway.scan_projects",
        "gateway.restart",        "gateway.wait_for_ready",
        "gateway.backup",         "gateway.restore",
        NULL,
};

void
itk_step_gateway_register(void)
{
        static ItkStepHandler handlers[G_N_ELEMENTS(gateway_types)];

        for (guint i = 0; gateway_types[i] != NULL; i++) {
                handlers[i].type = gateway_types[i];
                itk_step_registry_register(&handlers[i]);
        }
}
