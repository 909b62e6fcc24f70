/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "itk-app.h"

G_BEGIN_DECLS

/* ITK_GTK_TEST=1: a D-Bus interface on the daemon's bus that drives the
 * widgets as a user would and reports what they show (tests/gtk). */
void itk_test_hook_export(GDBusConnection *bus);
void itk_test_hook_emit(const char *signal, GVariant *params);
void itk_test_hook_window_shown(GtkWindow *window);

G_END_DECLS
