/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* itk_priority_reset_child(): a child of a daemon at a negative nice value
 * goes back to 0; a positive value is left alone. Each case runs in a forked
 * child, so the test process keeps its own nice value. */
#include <errno.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itk-priority.h"

/* Forks; the child sets @start, resets, and exits with its nice value + 20. */
static int
nice_after_reset(int start)
{
        int status = 0;
        pid_t pid = fork();

        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                if (setpriority(PRIO_PROCESS, 0, start) < 0)
                        _exit(100);
                itk_priority_reset_child();
                _exit(itk_priority_get_nice() + 20);
        }
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), !=, 100);
        return WEXITSTATUS(status) - 20;
}

static gboolean
can_lower_nice(void)
{
        int status = 0;
        pid_t pid = fork();

        if (pid == 0)
                _exit(setpriority(PRIO_PROCESS, 0, -5) == 0 ? 0 : 1);
        return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
               WEXITSTATUS(status) == 0;
}

static void
test_negative_goes_to_zero(void)
{
        if (!can_lower_nice()) {
                g_test_skip("cannot set a negative nice value here (not root)");
                return;
        }
        g_assert_cmpint(nice_after_reset(-5), ==, 0);
        g_assert_cmpint(nice_after_reset(-20), ==, 0);
}

static void
test_positive_left_alone(void)
{
        g_assert_cmpint(nice_after_reset(0), ==, 0);
        g_assert_cmpint(nice_after_reset(7), ==, 7);
}

static void
test_check_children(void)
{
        int status = 0;
        pid_t pid;

        if (!can_lower_nice()) {
                g_test_skip("cannot set a negative nice value here (not root)");
                return;
        }
        /* A daemon at -5 with no system call filter: its children get back to 0. */
        pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                if (setpriority(PRIO_PROCESS, 0, -5) < 0)
                        _exit(2);
                _exit(itk_priority_check_children(NULL) ? 0 : 1);
        }
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/priority/negative-goes-to-zero", test_negative_goes_to_zero);
        g_test_add_func("/priority/positive-left-alone", test_positive_left_alone);
        g_test_add_func("/priority/check-children", test_check_children);
        return g_test_run();
}
