/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "itk-app.h"

G_BEGIN_DECLS

/* The shortcuts window (win.show-help-overlay, Ctrl+?). */
GtkShortcutsWindow *itk_shortcuts_window_new(void);

G_END_DECLS
