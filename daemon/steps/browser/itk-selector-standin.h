/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* STAND-IN for the selector helper's itk-selector.h (AGENT-API.md): the
 * declared signature, used only while that file does not exist. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean itk_selector_validate(const char *selector, gsize *error_offset, GError **error);

G_END_DECLS
