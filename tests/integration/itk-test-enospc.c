/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Test-only LD_PRELOAD shim: while the file named by $ITK_TEST_ENOSPC_FLAG
 * exists, writes to the history store's files (names containing
 * "history.db") fail with ENOSPC, as on a full disk; SQLite then reports
 * SQLITE_FULL. Removing the file makes the disk "free" again. Only the
 * integration tests load it; nothing else is intercepted. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int
itk_test_disk_full(int fd)
{
        const char *flag = getenv("ITK_TEST_ENOSPC_FLAG");
        char link[64];
        char target[PATH_MAX];
        ssize_t n;

        if (flag == NULL || access(flag, F_OK) != 0)
                return 0;
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        n = readlink(link, target, sizeof(target) - 1);
        if (n < 0)
                return 0;
        target[n] = '\0';
        return strstr(target, "history.db") != NULL;
}

ssize_t
pwrite64(int fd, const void *buf, size_t count, off64_t offset)
{
        static ssize_t (*real)(int, const void *, size_t, off64_t);

        if (itk_test_disk_full(fd)) {
                errno = ENOSPC;
                return -1;
        }
        if (real == NULL)
                real = (ssize_t(*)(int, const void *, size_t, off64_t))dlsym(RTLD_NEXT, "pwrite64");
        return real(fd, buf, count, offset);
}

ssize_t
write(int fd, const void *buf, size_t count)
{
        static ssize_t (*real)(int, const void *, size_t);

        if (itk_test_disk_full(fd)) {
                errno = ENOSPC;
                return -1;
        }
        if (real == NULL)
                real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
        return real(fd, buf, count);
}
