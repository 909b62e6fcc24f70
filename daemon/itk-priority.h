/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * The daemon may run at a negative nice value (the unit's Nice=), so that its
 * main loop (cancel, signals, the store) is scheduled ahead of ordinary jobs.
 * Threads inherit it; whatever it runs (scripts, Chromium, probes, rm) must
 * not: every spawn calls itk_priority_reset_child() in its child setup.
 */

/* Between fork and exec: back to nice 0 when the parent's is negative.
 * Async-signal-safe; a higher nice value is left alone. */
void itk_priority_reset_child(void);

/* As a GSpawnChildSetupFunc, for spawns that need nothing else. */
void itk_priority_child_setup(gpointer user_data);

/* The daemon's nice value at start (0 when unknown). */
int itk_priority_get_nice(void);

/* At start-up, when the nice value is negative: does a child really get
 * back to 0 (a system call filter may refuse setpriority)? FALSE with
 * @error saying why otherwise. Forks once; call before the main loop. */
gboolean itk_priority_check_children(GError **error);

G_END_DECLS
