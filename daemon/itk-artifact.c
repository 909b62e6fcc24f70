/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "itk-artifact.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "itk-error.h"

#define NAME_MAX_BYTES 1024
#define COMPONENT_MAX_BYTES 255
#define HASH_CHUNK (64 * 1024)

gboolean
itk_artifact_name_is_valid(const char *name, GError **error)
{
        g_auto(GStrv) parts = NULL;
        gsize length;

        if (name == NULL || *name == '\0') {
                g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "the artifact name is empty");
                return FALSE;
        }
        length = strlen(name);
        if (length > NAME_MAX_BYTES) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                            "the artifact name is %zu bytes; the limit is %d", length,
                            NAME_MAX_BYTES);
                return FALSE;
        }
        if (!g_utf8_validate(name, -1, NULL)) {
                g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "the artifact name is not UTF-8");
                return FALSE;
        }
        for (const char *p = name; *p != '\0'; p++)
                if ((guchar)*p < 0x20 || *p == 0x7f) {
                        g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                            "the artifact name holds a control character");
                        return FALSE;
                }
        if (name[0] == '/') {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                            "artifact name '%s' is an absolute path; names are relative to the "
                            "run's folder",
                            name);
                return FALSE;
        }
        parts = g_strsplit(name, "/", -1);
        for (guint i = 0; parts[i] != NULL; i++) {
                if (parts[i][0] == '\0' || g_str_equal(parts[i], ".") ||
                    g_str_equal(parts[i], "..")) {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "artifact name '%s' has an empty, '.' or '..' component", name);
                        return FALSE;
                }
                if (strlen(parts[i]) > COMPONENT_MAX_BYTES) {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "a component of the artifact name is longer than %d bytes",
                                    COMPONENT_MAX_BYTES);
                        return FALSE;
                }
        }
        return TRUE;
}

char *
itk_artifact_name_for_path(const char *run_dir, const char *path)
{
        g_autofree char *dir = NULL;
        g_autofree char *file = NULL;
        gsize dir_length;

        if (run_dir == NULL || path == NULL || !g_path_is_absolute(run_dir))
                return NULL;
        dir = g_canonicalize_filename(run_dir, NULL);
        file = g_canonicalize_filename(path, run_dir);
        dir_length = strlen(dir);
        if (strncmp(file, dir, dir_length) != 0 || file[dir_length] != '/' ||
            file[dir_length + 1] == '\0')
                return NULL;
        if (!itk_artifact_name_is_valid(file + dir_length + 1, NULL))
                return NULL;
        return g_strdup(file + dir_length + 1);
}

const char *
itk_artifact_content_type(const char *name)
{
        static const struct {
                const char *suffix;
                const char *type;
        } types[] = {
                { ".png", "image/png" },        { ".jpg", "image/jpeg" },
                { ".jpeg", "image/jpeg" },      { ".gif", "image/gif" },
                { ".webp", "image/webp" },      { ".pdf", "application/pdf" },
                { ".zip", "application/zip" },  { ".gwbk", "application/zip" },
                { ".modl", "application/zip" }, { ".json", "application/json" },
                { ".txt", "text/plain" },       { ".log", "text/plain" },
                { ".csv", "text/csv" },         { ".xml", "application/xml" },
                { ".gz", "application/gzip" },  { ".tar", "application/x-tar" },
        };
        g_autofree char *lower = g_ascii_strdown(name != NULL ? name : "", -1);

        for (guint i = 0; i < G_N_ELEMENTS(types); i++)
                if (g_str_has_suffix(lower, types[i].suffix))
                        return types[i].type;
        return "application/octet-stream";
}

static int
itk_artifact_fail_errno(const char *name, int errsv, GError **error)
{
        if (errsv == ELOOP || errsv == ENOTDIR)
                g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_ARTIFACT,
                            "artifact '%s' is not a file of the run's folder (a link or "
                            "not a folder on the way)",
                            name);
        else
                g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_ARTIFACT,
                            "cannot open artifact '%s': %s", name, g_strerror(errsv));
        return -1;
}

int
itk_artifact_open(const char *run_dir, const char *name, GError **error)
{
        g_auto(GStrv) parts = NULL;
        int dir_fd, fd;
        guint n;
        struct stat st;

        if (!itk_artifact_name_is_valid(name, error))
                return -1;
        if (run_dir == NULL) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_ARTIFACT,
                            "the run has no folder, so no artifact '%s'", name);
                return -1;
        }
        dir_fd = open(run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return itk_artifact_fail_errno(name, errno, error);
        parts = g_strsplit(name, "/", -1);
        n = g_strv_length(parts);
        /* One component at a time: O_NOFOLLOW only guards the last one of a path. */
        for (guint i = 0; i + 1 < n; i++) {
                int next =
                        openat(dir_fd, parts[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                int errsv = errno;

                close(dir_fd);
                if (next < 0)
                        return itk_artifact_fail_errno(name, errsv, error);
                dir_fd = next;
        }
        fd = openat(dir_fd, parts[n - 1],
                    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                int errsv = errno;
                close(dir_fd);
                return itk_artifact_fail_errno(name, errsv, error);
        }
        close(dir_fd);
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_ARTIFACT,
                            "artifact '%s' is not a regular file", name);
                return -1;
        }
        /* A hard link swapped in by a script of the run would name a file
         * outside the folder without being a symlink. */
        if (st.st_nlink != 1) {
                close(fd);
                g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_ARTIFACT,
                            "artifact '%s' has other links to it: not served", name);
                return -1;
        }
        /* O_NONBLOCK only kept a FIFO from blocking the open. */
        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
                int errsv = errno;
                close(fd);
                return itk_artifact_fail_errno(name, errsv, error);
        }
        return fd;
}

/* --- inspection, in a worker thread ---------------------------------------------------- */

typedef struct {
        char *run_dir;
        char *name;
        guint64 size;
        char *sha256;
} Inspection;

static void
inspection_free(gpointer data)
{
        Inspection *inspection = data;

        g_free(inspection->run_dir);
        g_free(inspection->name);
        g_free(inspection->sha256);
        g_free(inspection);
}

static void
inspect_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
        Inspection *inspection = task_data;
        g_autoptr(GChecksum) checksum = g_checksum_new(G_CHECKSUM_SHA256);
        g_autofree guchar *buffer = g_malloc(HASH_CHUNK);
        GError *error = NULL;
        guint64 size = 0;
        int fd;

        (void)source;
        fd = itk_artifact_open(inspection->run_dir, inspection->name, &error);
        if (fd < 0) {
                g_task_return_error(task, error);
                return;
        }
        for (;;) {
                ssize_t n = read(fd, buffer, HASH_CHUNK);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int errsv = errno;
                        close(fd);
                        g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_FAILED,
                                                "cannot read artifact '%s': %s", inspection->name,
                                                g_strerror(errsv));
                        return;
                }
                if (n == 0)
                        break;
                if (g_cancellable_set_error_if_cancelled(cancellable, &error)) {
                        close(fd);
                        g_task_return_error(task, error);
                        return;
                }
                g_checksum_update(checksum, buffer, n);
                size += (guint64)n;
        }
        close(fd);
        inspection->size = size;
        inspection->sha256 = g_strdup(g_checksum_get_string(checksum));
        g_task_return_boolean(task, TRUE);
}

void
itk_artifact_inspect_async(const char *run_dir, const char *name, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data)
{
        g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
        Inspection *inspection = g_new0(Inspection, 1);

        inspection->run_dir = g_strdup(run_dir);
        inspection->name = g_strdup(name);
        g_task_set_source_tag(task, itk_artifact_inspect_async);
        g_task_set_task_data(task, inspection, inspection_free);
        g_task_run_in_thread(task, inspect_thread);
}

gboolean
itk_artifact_inspect_finish(GAsyncResult *result, guint64 *size, char **sha256, GError **error)
{
        Inspection *inspection;

        g_return_val_if_fail(g_task_is_valid(result, NULL), FALSE);
        if (!g_task_propagate_boolean(G_TASK(result), error))
                return FALSE;
        inspection = g_task_get_task_data(G_TASK(result));
        if (size != NULL)
                *size = inspection->size;
        if (sha256 != NULL)
                *sha256 = g_strdup(inspection->sha256);
        return TRUE;
}
