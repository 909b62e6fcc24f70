/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Installs the browser's live view backend (screencast, input); the browser
 * module does so when it loads. */
void itk_step_browser_live_register(void);

G_END_DECLS
