/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "itk-manager.h"

G_BEGIN_DECLS

/* Logs what happens to executions at the daemon's edge, with journald
 * fields EXECUTION_ID=, STEP_ID= and PLAYBOOK= (GLib's structured log writer
 * sends them to the journal under systemd and prints MESSAGE to stderr
 * otherwise): runs starting and ending at info, failed steps at warning,
 * step log lines at debug. Everything is already redacted by the engine. */
void itk_journal_attach(ItkManager *manager);

G_END_DECLS
