/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The selector dialect of the browser steps (BROWSER.md, AGENT-API.md):
 * CSS with comma lists and :has-text("x"), text=..., quoted text, css=...,
 * and A >> B chains. Checks the structure the page agent's validate() checks
 * (balance, quotes, empty parts, combinators, :has-text arguments); the CSS
 * details are the browser's to judge when the selector runs.
 *
 * FALSE with ITK_ERROR_INVALID_PLAYBOOK and the 0-based byte offset of the
 * problem in *@error_offset (may be NULL). */
gboolean itk_selector_validate(const char *selector, gsize *error_offset, GError **error);

G_END_DECLS
