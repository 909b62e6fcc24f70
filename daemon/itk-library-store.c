/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "itk-error.h"
#include "itk-library-store.h"
#include "itk-limits.h"

/* Folders below the library root; matches the depth ListPlaybooks scans. */
#define ITK_LIBRARY_MAX_FOLDERS 4

struct _ItkLibraryStore {
        char *dir;
        GThreadPool *pool; /* one thread: jobs run in the order they came */
};

typedef struct {
        GTask *task;
        char *path;
        char *source; /* NULL: delete */
} Job;

static void
job_free(Job *job)
{
        g_clear_object(&job->task);
        g_free(job->path);
        g_free(job->source);
        g_free(job);
}

gboolean
itk_library_store_check_id(const char *id, GError **error)
{
        g_auto(GStrv) parts = NULL;
        guint n;

        if (id == NULL || *id == '\0') {
                g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "the playbook id is empty");
                return FALSE;
        }
        if (strlen(id) > ITK_LIMIT_NAME_LENGTH) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                            "the playbook id is %zu bytes long (the limit is %d)", strlen(id),
                            ITK_LIMIT_NAME_LENGTH);
                return FALSE;
        }
        if (id[0] == '/') {
                g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "the playbook id must be a relative path, not an absolute one");
                return FALSE;
        }
        if (!g_str_has_suffix(id, ".yaml")) {
                g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "the playbook id must end in \".yaml\"");
                return FALSE;
        }
        for (const char *p = id; *p != '\0'; p++) {
                if (!g_ascii_isalnum(*p) && *p != '_' && *p != '.' && *p != '-' && *p != '/') {
                        g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                            "the playbook id may hold only letters, digits, "
                                            "'_', '.', '-' and '/'");
                        return FALSE;
                }
        }
        parts = g_strsplit(id, "/", -1);
        n = g_strv_length(parts);
        if (n > ITK_LIBRARY_MAX_FOLDERS + 1) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                            "the playbook id is more than %d folders deep",
                            ITK_LIBRARY_MAX_FOLDERS);
                return FALSE;
        }
        for (guint i = 0; i < n; i++) {
                if (g_str_equal(parts[i], "..") || g_str_equal(parts[i], ".")) {
                        g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                            "the playbook id may not hold \".\" or \"..\"");
                        return FALSE;
                }
                if (*parts[i] == '\0' || *parts[i] == '.') {
                        g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                            "the playbook id has an empty or hidden "
                                            "(dot) component");
                        return FALSE;
                }
        }
        if (g_str_equal(parts[n - 1], ".yaml")) {
                g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "the playbook id needs a name before \".yaml\"");
                return FALSE;
        }
        return TRUE;
}

static gboolean
fsync_dir(const char *dir, GError **error)
{
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int errsv;

        if (fd < 0 || fsync(fd) != 0) {
                errsv = errno;
                if (fd >= 0)
                        close(fd);
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED, "cannot sync %s: %s", dir,
                            g_strerror(errsv));
                return FALSE;
        }
        close(fd);
        return TRUE;
}

/* Worker thread: plain blocking I/O is fine here. */
static gboolean
job_save(Job *job, GError **error)
{
        g_autofree char *dir = g_path_get_dirname(job->path);
        g_autoptr(GError) local = NULL;

        if (g_mkdir_with_parents(dir, 0755) != 0) {
                int errsv = errno;
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED, "cannot create %s: %s", dir,
                            g_strerror(errsv));
                return FALSE;
        }
        /* CONSISTENT|DURABLE: temp file beside it, fsync, rename. */
        if (!g_file_set_contents_full(job->path, job->source, -1,
                                      G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                      0644, &local)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED, "cannot save the playbook: %s",
                            local->message);
                return FALSE;
        }
        /* The rename itself is durable only once the folder is synced. */
        return fsync_dir(dir, error);
}

static gboolean
job_delete(Job *job, GError **error)
{
        g_autofree char *dir = g_path_get_dirname(job->path);

        if (g_unlink(job->path) != 0) {
                int errsv = errno;
                if (errsv == ENOENT)
                        g_set_error_literal(error, ITK_ERROR, ITK_ERROR_NO_SUCH_PLAYBOOK,
                                            "no such playbook in the local library");
                else
                        g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                                    "cannot delete the playbook: %s", g_strerror(errsv));
                return FALSE;
        }
        return fsync_dir(dir, error);
}

static void
job_run(gpointer data, gpointer user_data)
{
        Job *job = data;
        g_autoptr(GError) error = NULL;
        gboolean ok = job->source != NULL ? job_save(job, &error) : job_delete(job, &error);

        /* GTask delivers the result on the caller's main context. */
        if (ok)
                g_task_return_boolean(job->task, TRUE);
        else
                g_task_return_error(job->task, g_steal_pointer(&error));
        job_free(job);
}

ItkLibraryStore *
itk_library_store_new(const char *dir)
{
        ItkLibraryStore *self = g_new0(ItkLibraryStore, 1);

        self->dir = g_strdup(dir);
        self->pool = g_thread_pool_new(job_run, self, 1, FALSE, NULL);
        return self;
}

void
itk_library_store_free(ItkLibraryStore *self)
{
        if (self == NULL)
                return;
        /* Finishes the writes already asked for: a save replied to is on disk. */
        g_thread_pool_free(self->pool, FALSE, TRUE);
        g_free(self->dir);
        g_free(self);
}

const char *
itk_library_store_get_dir(ItkLibraryStore *self)
{
        return self->dir;
}

static void
itk_library_store_push(ItkLibraryStore *self, const char *id, const char *source,
                       gpointer source_tag, GAsyncReadyCallback callback, gpointer user_data)
{
        GTask *task = g_task_new(NULL, NULL, callback, user_data);
        g_autoptr(GError) error = NULL;
        Job *job;

        g_task_set_source_tag(task, source_tag);
        if (!itk_library_store_check_id(id, &error)) {
                g_task_return_error(task, g_steal_pointer(&error));
                g_object_unref(task);
                return;
        }
        if (source != NULL && strlen(source) > ITK_LIMIT_SOURCE_BYTES) {
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK,
                                        "playbook source is %zu bytes; the limit is %d",
                                        strlen(source), ITK_LIMIT_SOURCE_BYTES);
                g_object_unref(task);
                return;
        }
        job = g_new0(Job, 1);
        job->task = task;
        job->path = g_build_filename(self->dir, id, NULL);
        job->source = g_strdup(source);
        g_thread_pool_push(self->pool, job, NULL);
}

void
itk_library_store_save_async(ItkLibraryStore *self, const char *id, const char *source,
                             GAsyncReadyCallback callback, gpointer user_data)
{
        g_return_if_fail(source != NULL);
        itk_library_store_push(self, id, source, itk_library_store_save_async, callback, user_data);
}

gboolean
itk_library_store_save_finish(GAsyncResult *result, GError **error)
{
        return g_task_propagate_boolean(G_TASK(result), error);
}

void
itk_library_store_delete_async(ItkLibraryStore *self, const char *id, GAsyncReadyCallback callback,
                               gpointer user_data)
{
        itk_library_store_push(self, id, NULL, itk_library_store_delete_async, callback, user_data);
}

gboolean
itk_library_store_delete_finish(GAsyncResult *result, GError **error)
{
        return g_task_propagate_boolean(G_TASK(result), error);
}
