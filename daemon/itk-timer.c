/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "itk-timer.h"

struct _ItkTimerGroup {
        GList *timers; /* ItkTimer*, not owned */
        gboolean paused;
};

struct _ItkTimer {
        ItkTimerGroup *group; /* NULL once the group is gone */
        GList *link;
        GSource *source;      /* armed source, NULL while frozen or fired */
        gint64 deadline;      /* monotonic µs, valid while armed */
        guint64 remaining_us; /* valid while frozen */
        gboolean fired;
        ItkTimerFunc func;
        gpointer user_data;
};

static gboolean
itk_timer_dispatch_cb(gpointer user_data)
{
        ItkTimer *timer = user_data;

        g_clear_pointer(&timer->source, g_source_unref);
        timer->fired = TRUE;
        timer->remaining_us = 0;
        /* May free the timer. */
        timer->func(timer->user_data);
        return G_SOURCE_REMOVE;
}

static void
itk_timer_arm(ItkTimer *timer)
{
        timer->deadline = g_get_monotonic_time() + (gint64)timer->remaining_us;
        timer->source = g_timeout_source_new(0);
        /* Microsecond-precise ready time; g_timeout_source_new() rounds to ms. */
        g_source_set_ready_time(timer->source, timer->deadline);
        g_source_set_callback(timer->source, itk_timer_dispatch_cb, timer, NULL);
        g_source_set_static_name(timer->source, "itk-timer");
        g_source_attach(timer->source, g_main_context_get_thread_default());
}

static void
itk_timer_disarm(ItkTimer *timer)
{
        if (timer->source == NULL)
                return;
        gint64 left = timer->deadline - g_get_monotonic_time();
        timer->remaining_us = left > 0 ? (guint64)left : 0;
        g_source_destroy(timer->source);
        g_clear_pointer(&timer->source, g_source_unref);
}

ItkTimerGroup *
itk_timer_group_new(void)
{
        return g_new0(ItkTimerGroup, 1);
}

void
itk_timer_group_free(ItkTimerGroup *group)
{
        if (group == NULL)
                return;
        for (GList *l = group->timers; l != NULL; l = l->next) {
                ItkTimer *timer = l->data;
                itk_timer_disarm(timer);
                timer->group = NULL;
                timer->link = NULL;
        }
        g_list_free(group->timers);
        g_free(group);
}

void
itk_timer_group_pause(ItkTimerGroup *group)
{
        if (group->paused)
                return;
        group->paused = TRUE;
        for (GList *l = group->timers; l != NULL; l = l->next)
                itk_timer_disarm(l->data);
}

void
itk_timer_group_resume(ItkTimerGroup *group)
{
        if (!group->paused)
                return;
        group->paused = FALSE;
        for (GList *l = group->timers; l != NULL; l = l->next) {
                ItkTimer *timer = l->data;
                if (!timer->fired && timer->source == NULL)
                        itk_timer_arm(timer);
        }
}

gboolean
itk_timer_group_is_paused(ItkTimerGroup *group)
{
        return group->paused;
}

ItkTimer *
itk_timer_new(ItkTimerGroup *group, guint64 msec, ItkTimerFunc func, gpointer user_data)
{
        ItkTimer *timer = g_new0(ItkTimer, 1);

        g_return_val_if_fail(group != NULL, NULL);
        timer->group = group;
        timer->func = func;
        timer->user_data = user_data;
        timer->remaining_us = MIN(msec, ITK_TIMER_MAX_MSEC) * 1000;
        group->timers = g_list_prepend(group->timers, timer);
        timer->link = group->timers;
        if (!group->paused)
                itk_timer_arm(timer);
        return timer;
}

void
itk_timer_free(ItkTimer *timer)
{
        if (timer == NULL)
                return;
        if (timer->source != NULL) {
                g_source_destroy(timer->source);
                g_source_unref(timer->source);
        }
        if (timer->group != NULL)
                timer->group->timers = g_list_delete_link(timer->group->timers, timer->link);
        g_free(timer);
}

guint64
itk_timer_get_remaining(ItkTimer *timer)
{
        if (timer->fired)
                return 0;
        if (timer->source != NULL) {
                gint64 left = timer->deadline - g_get_monotonic_time();
                return left > 0 ? (guint64)left / 1000 : 0;
        }
        return timer->remaining_us / 1000;
}
