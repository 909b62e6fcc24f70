/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The page agent (daemon/steps/browser/itk-page-agent.js, AGENT-API.md),
 * embedded at build time; NUL-terminated, static. */
const char *itk_step_browser_agent_source(void);

G_END_DECLS
