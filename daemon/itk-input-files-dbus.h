/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "itk-authority.h"
#include "itk-manager.h"

G_BEGIN_DECLS

void itk_input_files_dbus_set_authority(ItkAuthority *authority);
/* The handler of Manager.StageInputFile, StageHostFile and ListInputFiles
 * (userdata: the ItkManager). */
int itk_input_files_dbus_method(sd_bus_message *m, void *userdata, sd_bus_error *error);

G_END_DECLS
