/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pausable timers: the base of every wait that Pause must freeze. */
#include "itk-timer.h"

static void
fired_cb(gpointer user_data)
{
        (*(guint *)user_data)++;
}

static gboolean
quit_cb(gpointer user_data)
{
        *(gboolean *)user_data = TRUE;
        return G_SOURCE_REMOVE;
}

static void
run_for(guint msec)
{
        gboolean done = FALSE;
        g_timeout_add(msec, quit_cb, &done);
        while (!done)
                g_main_context_iteration(NULL, TRUE);
}

static void
test_timer_fires(void)
{
        g_autoptr(ItkTimerGroup) group = itk_timer_group_new();
        guint fired = 0;
        g_autoptr(ItkTimer) timer = itk_timer_new(group, 20, fired_cb, &fired);

        run_for(100);
        g_assert_cmpuint(fired, ==, 1);
        g_assert_cmpuint(itk_timer_get_remaining(timer), ==, 0);
}

/* A huge duration is clamped to the documented maximum: before, its deadline
 * overflowed (UBSan) and the timer fired at once. */
static void
test_timer_huge_is_clamped(void)
{
        g_autoptr(ItkTimerGroup) group = itk_timer_group_new();
        guint fired = 0;
        g_autoptr(ItkTimer) timer = itk_timer_new(group, G_MAXUINT64 / 100, fired_cb, &fired);

        run_for(50);
        g_assert_cmpuint(fired, ==, 0);
        g_assert_cmpuint(itk_timer_get_remaining(timer), <=, ITK_TIMER_MAX_MSEC);
        g_assert_cmpuint(itk_timer_get_remaining(timer), >, ITK_TIMER_MAX_MSEC - 1000);
        /* Frozen and thawed, it still holds (remaining_us round trip). */
        itk_timer_group_pause(group);
        itk_timer_group_resume(group);
        run_for(20);
        g_assert_cmpuint(fired, ==, 0);
}

static void
test_timer_pause_keeps_remaining(void)
{
        g_autoptr(ItkTimerGroup) group = itk_timer_group_new();
        guint fired = 0;
        g_autoptr(ItkTimer) timer = itk_timer_new(group, 150, fired_cb, &fired);
        guint64 left;

        run_for(50);
        itk_timer_group_pause(group);
        g_assert_true(itk_timer_group_is_paused(group));
        left = itk_timer_get_remaining(timer);
        g_assert_cmpuint(left, <=, 100);
        g_assert_cmpuint(left, >, 0);
        /* Frozen: nothing fires, the remaining time does not shrink. */
        run_for(250);
        g_assert_cmpuint(fired, ==, 0);
        g_assert_cmpuint(itk_timer_get_remaining(timer), ==, left);
        itk_timer_group_resume(group);
        run_for(left + 100);
        g_assert_cmpuint(fired, ==, 1);
}

static void
test_timer_added_while_paused(void)
{
        g_autoptr(ItkTimerGroup) group = itk_timer_group_new();
        guint fired = 0;
        g_autoptr(ItkTimer) timer = NULL;

        itk_timer_group_pause(group);
        timer = itk_timer_new(group, 10, fired_cb, &fired);
        run_for(60);
        g_assert_cmpuint(fired, ==, 0);
        itk_timer_group_resume(group);
        run_for(60);
        g_assert_cmpuint(fired, ==, 1);
}

static void
free_self_cb(gpointer user_data)
{
        ItkTimer **timer = user_data;
        g_clear_pointer(timer, itk_timer_free);
}

static void
test_timer_free_in_callback(void)
{
        g_autoptr(ItkTimerGroup) group = itk_timer_group_new();
        ItkTimer *timer = NULL;

        timer = itk_timer_new(group, 5, free_self_cb, &timer);
        run_for(50);
        g_assert_null(timer);
}

static void
test_timer_group_free_first(void)
{
        ItkTimerGroup *group = itk_timer_group_new();
        guint fired = 0;
        ItkTimer *timer = itk_timer_new(group, 10, fired_cb, &fired);

        /* A group freed before its timers disarms them; freeing them later is safe. */
        itk_timer_group_free(group);
        run_for(40);
        g_assert_cmpuint(fired, ==, 0);
        itk_timer_free(timer);
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/timer/fires", test_timer_fires);
        g_test_add_func("/timer/huge-is-clamped", test_timer_huge_is_clamped);
        g_test_add_func("/timer/pause-keeps-remaining", test_timer_pause_keeps_remaining);
        g_test_add_func("/timer/added-while-paused", test_timer_added_while_paused);
        g_test_add_func("/timer/free-in-callback", test_timer_free_in_callback);
        g_test_add_func("/timer/group-free-first", test_timer_group_free_first);
        return g_test_run();
}
