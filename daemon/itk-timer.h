/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Pausable one-shot timers. Every wait of an execution (sleep steps, retry
 * delays, step timeouts, gateway polls) is an ItkTimer in the execution's
 * ItkTimerGroup, so Pause freezes all of them at once and Resume thaws them
 * with the time that was left. Timers are GSources on the thread-default
 * main context; nothing here blocks. */

/* The longest duration anything accepts, in seconds: 30 days. Step `timeout`,
 * `retry_delay`, `utility.sleep` `seconds`, gateway waits and timeout
 * overrides are validated against it; timers clamp to it, so a deadline
 * (monotonic µs) can never overflow. */
#define ITK_DURATION_MAX_SECONDS (30 * 24 * 3600)
#define ITK_TIMER_MAX_MSEC ((guint64)ITK_DURATION_MAX_SECONDS * 1000)

typedef struct _ItkTimerGroup ItkTimerGroup;
typedef struct _ItkTimer ItkTimer;

typedef void (*ItkTimerFunc)(gpointer user_data);

ItkTimerGroup *itk_timer_group_new(void);
/* Destroys the group's timers without firing them. */
void itk_timer_group_free(ItkTimerGroup *group);
void itk_timer_group_pause(ItkTimerGroup *group);
void itk_timer_group_resume(ItkTimerGroup *group);
gboolean itk_timer_group_is_paused(ItkTimerGroup *group);

/* Fires @func once after @msec of unpaused time. The timer is owned by the
 * caller: free it with itk_timer_free() (safe from inside @func, and after
 * it fired). A timer added to a paused group starts frozen. @msec beyond
 * ITK_TIMER_MAX_MSEC is clamped to it (callers validate first). */
ItkTimer *itk_timer_new(ItkTimerGroup *group, guint64 msec, ItkTimerFunc func, gpointer user_data);
void itk_timer_free(ItkTimer *timer);
/* Milliseconds of unpaused time left. */
guint64 itk_timer_get_remaining(ItkTimer *timer);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkTimerGroup, itk_timer_group_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkTimer, itk_timer_free)

G_END_DECLS
