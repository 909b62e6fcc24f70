/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The gateway.* step types: what validation needs (names, required
 * parameters, which ones wait and so pause). Their implementation, and
 * libsoup with it, is the module itk-step-gateway, loaded on the first
 * gateway step (itk_step_registry_resolve()). */
#include "config.h"
#include "itk-step.h"

static const char *const req_file[] = { "file|file_path|path", NULL };
static const char *const req_project[] = { "project_name|project|name", NULL };
static const char *const req_module[] = { "module_id|module_name", NULL };
static const char *const req_uninstall[] = { "module_id|module", NULL };

#define GATEWAY(type, pausable, required)                                                          \
        {                                                                                          \
                type, NULL, pausable, required, NULL, "gateway"                                    \
        }

/* Mutable: the module fills in the run functions. */
static ItkStepHandler gateway_handlers[] = {
        GATEWAY("gateway.login", FALSE, NULL),
        GATEWAY("gateway.logout", FALSE, NULL),
        GATEWAY("gateway.ping", FALSE, NULL),
        GATEWAY("gateway.get_info", FALSE, NULL),
        GATEWAY("gateway.get_health", FALSE, NULL),
        GATEWAY("gateway.list_modules", FALSE, NULL),
        GATEWAY("gateway.upload_module", FALSE, req_file),
        GATEWAY("gateway.wait_for_module_installation", TRUE, req_module),
        GATEWAY("gateway.uninstall_module", FALSE, req_uninstall),
        GATEWAY("gateway.list_projects", FALSE, NULL),
        GATEWAY("gateway.get_project", FALSE, req_project),
        GATEWAY("gateway.export_project", FALSE, req_project),
        GATEWAY("gateway.import_project", FALSE, req_file),
        GATEWAY("gateway.scan_projects", FALSE, NULL),
        GATEWAY("gateway.restart", TRUE, NULL),
        GATEWAY("gateway.wait_for_ready", TRUE, NULL),
        GATEWAY("gateway.backup", FALSE, NULL),
        GATEWAY("gateway.restore", FALSE, req_file),
};

static const char *const gateway_prefixes[] = { "gateway.", NULL };

static const ItkStepProvider gateway_provider = {
        .name = "gateway",
        .prefixes = gateway_prefixes,
        .handlers = gateway_handlers,
        .n_handlers = G_N_ELEMENTS(gateway_handlers),
};

void
itk_step_gateway_register(void)
{
#if !ITK_HAVE_SOUP
        /* Built without libsoup: known types, "not supported yet". */
        for (guint i = 0; i < G_N_ELEMENTS(gateway_handlers); i++)
                gateway_handlers[i].module = NULL;
#endif
        itk_step_registry_register_provider(&gateway_provider);
}
