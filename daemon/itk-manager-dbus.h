/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "itk-authority.h"
#include "itk-manager.h"

G_BEGIN_DECLS

/* Publishes @manager at /org/ignition/Toolkit (Manager + ObjectManager) and
 * its executions below it; keeps the bus objects in step with the engine. */
int itk_manager_dbus_register(sd_bus *bus, ItkManager *manager, ItkAuthority *authority);

/* itk-execution-dbus.c */
int itk_execution_dbus_register(sd_bus *bus, ItkManager *manager, ItkAuthority *authority);
char *itk_execution_dbus_path(ItkExecution *execution);
/* Mirrors the execution's signals on the bus and emits InterfacesAdded. */
void itk_execution_dbus_export(sd_bus *bus, ItkExecution *execution);
/* Emits InterfacesRemoved and stops mirroring. */
void itk_execution_dbus_unexport(sd_bus *bus, ItkExecution *execution);

G_END_DECLS
