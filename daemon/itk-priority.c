/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itk-error.h"
#include "itk-priority.h"

void
itk_priority_reset_child(void)
{
        int saved_errno = errno;
        int nice;

        /* getpriority() may return -1 as a value: errno tells. */
        errno = 0;
        nice = getpriority(PRIO_PROCESS, 0);
        /* Raising one's own nice value needs no privilege (only lowering
         * does), so this works for the unprivileged service too. */
        if (errno == 0 && nice < 0)
                (void)setpriority(PRIO_PROCESS, 0, 0);
        errno = saved_errno;
}

void
itk_priority_child_setup(gpointer user_data)
{
        itk_priority_reset_child();
}

int
itk_priority_get_nice(void)
{
        int nice;

        errno = 0;
        nice = getpriority(PRIO_PROCESS, 0);
        return errno == 0 ? nice : 0;
}

gboolean
itk_priority_check_children(GError **error)
{
        int nice = itk_priority_get_nice();
        int status = 0;
        pid_t pid;

        if (nice >= 0)
                return TRUE;
        pid = fork();
        if (pid < 0) {
                int saved = errno;
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                            "Cannot check the priority of child processes: fork: %s",
                            g_strerror(saved));
                return FALSE;
        }
        if (pid == 0) {
                itk_priority_reset_child();
                _exit(itk_priority_get_nice() >= 0 ? 0 : 1);
        }
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                            "The daemon runs at nice %d but cannot put the processes it starts "
                            "back to nice 0 (setpriority refused: is it missing from the "
                            "unit's SystemCallFilter=?); scripts and browsers will run at nice %d",
                            nice, nice);
                return FALSE;
        }
        return TRUE;
}
