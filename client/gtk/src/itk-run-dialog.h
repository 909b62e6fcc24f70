/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "itk-app.h"

G_BEGIN_DECLS

/* The form built from a playbook's parameter schema; Start runs it and opens
 * its run window. */
GtkWindow *itk_run_dialog_new(GtkWindow *parent, GVariant *playbook);
gboolean itk_run_dialog_set_value(GtkWindow *dialog, const char *name, const char *value);
void itk_run_dialog_start(GtkWindow *dialog);
GtkWindow *itk_run_dialog_get_current(void);

G_END_DECLS
