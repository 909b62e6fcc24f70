/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "itk-input-files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>
#include <glib/gstdio.h>

#include "itk-error.h"

#define NAME_MAX_BYTES 255
#define COPY_CHUNK (64 * 1024)

typedef struct {
        ItkInputFiles *owner; /* borrowed: entries die with it */
        char *token;
        char *name;
        char *sha256;
        guint64 size;
        guint32 uid;
        guint expiry_id;
} Staged;

struct _ItkInputFiles {
        GObject parent_instance;
        char *staging_dir;
        char **host_dirs;
        guint64 max_bytes;
        guint expiry_sec;
        GHashTable *staged;    /* token -> Staged */
        GHashTable *in_flight; /* uid -> count of copies still running */
};

G_DEFINE_FINAL_TYPE(ItkInputFiles, itk_input_files, G_TYPE_OBJECT)

static char *
itk_input_files_staged_path(ItkInputFiles *self, const char *token)
{
        return g_build_filename(self->staging_dir, token, NULL);
}

static void
staged_free(Staged *staged)
{
        g_clear_handle_id(&staged->expiry_id, g_source_remove);
        g_free(staged->token);
        g_free(staged->name);
        g_free(staged->sha256);
        g_free(staged);
}

static gboolean
staged_expired_cb(gpointer user_data)
{
        Staged *staged = user_data;
        ItkInputFiles *self = staged->owner;
        g_autofree char *path = itk_input_files_staged_path(self, staged->token);

        staged->expiry_id = 0;
        g_message("staged input file %s expired unused", staged->name);
        (void)g_unlink(path);
        g_hash_table_remove(self->staged, staged->token);
        return G_SOURCE_REMOVE;
}

static void
itk_input_files_finalize(GObject *object)
{
        ItkInputFiles *self = ITK_INPUT_FILES(object);

        g_hash_table_unref(self->staged);
        g_hash_table_unref(self->in_flight);
        g_free(self->staging_dir);
        g_strfreev(self->host_dirs);
        G_OBJECT_CLASS(itk_input_files_parent_class)->finalize(object);
}

static void
itk_input_files_class_init(ItkInputFilesClass *klass)
{
        G_OBJECT_CLASS(klass)->finalize = itk_input_files_finalize;
}

static void
itk_input_files_init(ItkInputFiles *self)
{
        self->staged =
                g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)staged_free);
        self->in_flight = g_hash_table_new(g_direct_hash, g_direct_equal);
}

ItkInputFiles *
itk_input_files_new(const char *state_dir, guint64 max_bytes, guint expiry_sec,
                    const char *const *host_dirs, GError **error)
{
        g_autoptr(ItkInputFiles) self = g_object_new(ITK_TYPE_INPUT_FILES, NULL);
        g_autoptr(GPtrArray) dirs = g_ptr_array_new();
        g_autoptr(GDir) dir = NULL;
        const char *entry;

        self->staging_dir = g_build_filename(state_dir, "inputs", NULL);
        self->max_bytes = max_bytes > 0 ? max_bytes : ITK_INPUT_FILES_DEFAULT_MAX_BYTES;
        self->expiry_sec = expiry_sec > 0 ? expiry_sec : ITK_INPUT_FILES_DEFAULT_EXPIRY_SEC;
        for (guint i = 0; host_dirs != NULL && host_dirs[i] != NULL; i++) {
                if (*host_dirs[i] == '\0')
                        continue;
                if (!g_path_is_absolute(host_dirs[i])) {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "InputFileDirectories: '%s' is not an absolute path",
                                    host_dirs[i]);
                        return NULL;
                }
                g_ptr_array_add(dirs, g_strdup(host_dirs[i]));
        }
        g_ptr_array_add(dirs, NULL);
        self->host_dirs = (char **)g_ptr_array_steal(dirs, NULL);

        if (g_mkdir_with_parents(self->staging_dir, 0700) != 0) {
                int errsv = errno;
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED, "cannot create %s: %s",
                            self->staging_dir, g_strerror(errsv));
                return NULL;
        }
        /* Left by an earlier daemon: their tokens died with it. */
        dir = g_dir_open(self->staging_dir, 0, NULL);
        while (dir != NULL && (entry = g_dir_read_name(dir)) != NULL) {
                g_autofree char *path = g_build_filename(self->staging_dir, entry, NULL);
                (void)g_unlink(path);
        }
        return g_steal_pointer(&self);
}

guint64
itk_input_files_get_max_bytes(ItkInputFiles *self)
{
        return self->max_bytes;
}

gboolean
itk_input_files_name_is_valid(const char *name, GError **error)
{
        gsize length = name != NULL ? strlen(name) : 0;

        if (length == 0) {
                g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "the file name is empty");
                return FALSE;
        }
        if (length > NAME_MAX_BYTES) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                            "the file name is %zu bytes; the limit is %d", length, NAME_MAX_BYTES);
                return FALSE;
        }
        if (!g_utf8_validate(name, -1, NULL)) {
                g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "the file name is not UTF-8");
                return FALSE;
        }
        for (const char *p = name; *p != '\0'; p++) {
                if ((guchar)*p < 0x20 || *p == 0x7f) {
                        g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                            "the file name holds a control character");
                        return FALSE;
                }
                if (*p == '/') {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "file name '%s' holds a '/': give a name, not a path", name);
                        return FALSE;
                }
        }
        if (name[0] == '.') {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                            "file name '%s' starts with '.'", name);
                return FALSE;
        }
        return TRUE;
}

/* --- the copy ------------------------------------------------------------------ */

/* The bytes are copied chunk by chunk from the main loop: reading a pipe
 * waits on a poll source (a client that stalls holds no thread), writing the
 * staging file and reading a regular file go through GIO's short thread
 * jobs. Opening the files is one worker job. */
typedef struct {
        guint32 uid;
        char *name;
        char *directory; /* host copies */
        char *relative;  /* host copies */
        int in_fd;       /* until the input stream takes it */
        int out_fd;      /* until the output stream takes it */
        char *token;
        char *path; /* the staging file */
        guint64 max_bytes;
        guint64 size;
        char *sha256;
        GInputStream *in;
        GOutputStream *out;
        GChecksum *checksum;
        GBytes *chunk;
        GCancellable *cancellable; /* cancelled by the idle timer */
        guint idle_id;
        gboolean idle_expired;
        gboolean created; /* the staging file exists */
} StageJob;

static void
stage_job_free(StageJob *job)
{
        g_clear_handle_id(&job->idle_id, g_source_remove);
        if (job->in_fd >= 0)
                close(job->in_fd);
        if (job->out_fd >= 0)
                close(job->out_fd);
        g_clear_object(&job->in);
        g_clear_object(&job->out);
        g_clear_pointer(&job->checksum, g_checksum_free);
        g_clear_pointer(&job->chunk, g_bytes_unref);
        g_clear_object(&job->cancellable);
        g_free(job->name);
        g_free(job->directory);
        g_free(job->relative);
        g_free(job->token);
        g_free(job->path);
        g_free(job->sha256);
        g_free(job);
}

/* Opens @relative beneath @directory one component at a time, never
 * following a link, and only a regular file at the end. */
static int
open_host_file(const char *directory, const char *relative, GError **error)
{
        g_auto(GStrv) parts = NULL;
        int dir_fd, fd;
        struct stat st;

        if (relative == NULL || *relative == '\0' || relative[0] == '/' ||
            strlen(relative) > 1024 || !g_utf8_validate(relative, -1, NULL)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                            "the file name must be a path relative to the input folder");
                return -1;
        }
        parts = g_strsplit(relative, "/", -1);
        for (guint i = 0; parts[i] != NULL; i++) {
                if (parts[i][0] == '\0' || parts[i][0] == '.' ||
                    !itk_input_files_name_is_valid(parts[i], NULL)) {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "'%s' has an empty, hidden, '.' or '..' component", relative);
                        return -1;
                }
        }
        /* The configured folder itself is the admin's choice, links and all. */
        dir_fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0) {
                int errsv = errno;
                g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_INPUT_FILE,
                            "cannot open the input folder %s: %s", directory, g_strerror(errsv));
                return -1;
        }
        for (guint i = 0; parts[i] != NULL; i++) {
                gboolean last = parts[i + 1] == NULL;
                int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (last ? O_NONBLOCK : O_DIRECTORY);

                fd = openat(dir_fd, parts[i], flags);
                close(dir_fd);
                if (fd < 0) {
                        int errsv = errno;
                        g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_INPUT_FILE,
                                    "no file '%s' in %s%s", relative, directory,
                                    errsv == ELOOP || errsv == ENOTDIR ? " (links are not followed)"
                                                                       : "");
                        return -1;
                }
                dir_fd = fd;
        }
        fd = dir_fd;
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_INPUT_FILE,
                            "'%s' in %s is not a regular file", relative, directory);
                return -1;
        }
        return fd;
}

/* Worker thread: opens the source (host copies) and creates the staging file. */
static void
prepare_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
        StageJob *job = task_data;
        g_autoptr(GError) error = NULL;

        if (job->directory != NULL) {
                job->in_fd = open_host_file(job->directory, job->relative, &error);
                if (job->in_fd < 0) {
                        g_task_return_error(task, g_steal_pointer(&error));
                        return;
                }
        }
        job->out_fd = open(job->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (job->out_fd < 0) {
                int errsv = errno;
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_FAILED,
                                        "cannot create a staging file: %s", g_strerror(errsv));
                return;
        }
        job->created = TRUE;
        g_task_return_boolean(task, TRUE);
}

/* Ends the copy of @task (owned) with @error (taken). */
static void
stage_fail(GTask *task, GError *error)
{
        StageJob *job = g_task_get_task_data(task);

        g_clear_handle_id(&job->idle_id, g_source_remove);
        if (job->idle_expired && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
                g_clear_error(&error);
                g_set_error(&error, ITK_ERROR, ITK_ERROR_TIMED_OUT,
                            "no data came for %d seconds; the upload was given up",
                            ITK_INPUT_FILES_IDLE_SEC);
        }
        g_clear_object(&job->in);
        g_clear_object(&job->out);
        if (job->created)
                (void)g_unlink(job->path);
        g_task_return_error(task, error);
        g_object_unref(task);
}

static gboolean
stage_idle_cb(gpointer user_data)
{
        StageJob *job = user_data;

        job->idle_id = 0;
        job->idle_expired = TRUE;
        g_cancellable_cancel(job->cancellable);
        return G_SOURCE_REMOVE;
}

static void stage_read_next(GTask *task);

static void
stage_written_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        GTask *task = user_data;
        StageJob *job = g_task_get_task_data(task);
        GError *error = NULL;

        if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), result, NULL, &error)) {
                g_prefix_error(&error, "cannot store the file: ");
                stage_fail(task, error);
                return;
        }
        g_clear_pointer(&job->chunk, g_bytes_unref);
        stage_read_next(task);
}

static void
stage_read_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        GTask *task = user_data;
        StageJob *job = g_task_get_task_data(task);
        GError *error = NULL;
        GBytes *chunk = g_input_stream_read_bytes_finish(G_INPUT_STREAM(source), result, &error);
        gsize size;

        if (chunk == NULL) {
                if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                        g_prefix_error(&error, "cannot read the file: ");
                stage_fail(task, error);
                return;
        }
        size = g_bytes_get_size(chunk);
        if (size == 0) {
                g_bytes_unref(chunk);
                g_clear_handle_id(&job->idle_id, g_source_remove);
                job->sha256 = g_strdup(g_checksum_get_string(job->checksum));
                /* Closing a GUnix stream is close(2): nothing to wait for. */
                g_output_stream_close(job->out, NULL, NULL);
                g_input_stream_close(job->in, NULL, NULL);
                g_task_return_boolean(task, TRUE);
                g_object_unref(task);
                return;
        }
        if (size > job->max_bytes - job->size) {
                g_bytes_unref(chunk);
                stage_fail(task,
                           g_error_new(ITK_ERROR, ITK_ERROR_LIMITS_EXCEEDED,
                                       "the file is larger than the limit of %" G_GUINT64_FORMAT
                                       " bytes (MaxInputFileBytes)",
                                       job->max_bytes));
                return;
        }
        g_clear_handle_id(&job->idle_id, g_source_remove);
        job->idle_id = g_timeout_add_seconds(ITK_INPUT_FILES_IDLE_SEC, stage_idle_cb, job);
        g_checksum_update(job->checksum, g_bytes_get_data(chunk, NULL), size);
        job->size += size;
        job->chunk = chunk;
        g_output_stream_write_all_async(job->out, g_bytes_get_data(chunk, NULL), size,
                                        G_PRIORITY_DEFAULT, job->cancellable, stage_written_cb,
                                        task);
}

static void
stage_read_next(GTask *task)
{
        StageJob *job = g_task_get_task_data(task);

        g_input_stream_read_bytes_async(job->in, COPY_CHUNK, G_PRIORITY_DEFAULT, job->cancellable,
                                        stage_read_cb, task);
}

static void
stage_prepared_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        GTask *task = user_data;
        StageJob *job = g_task_get_task_data(task);
        GError *error = NULL;

        if (!g_task_propagate_boolean(G_TASK(result), &error)) {
                stage_fail(task, error);
                return;
        }
        job->in = g_unix_input_stream_new(job->in_fd, TRUE);
        job->in_fd = -1;
        job->out = g_unix_output_stream_new(job->out_fd, TRUE);
        job->out_fd = -1;
        job->checksum = g_checksum_new(G_CHECKSUM_SHA256);
        job->idle_id = g_timeout_add_seconds(ITK_INPUT_FILES_IDLE_SEC, stage_idle_cb, job);
        stage_read_next(task);
}

static void
in_flight_add(ItkInputFiles *self, guint32 uid, int delta)
{
        gpointer key = GUINT_TO_POINTER(uid);
        int count = GPOINTER_TO_INT(g_hash_table_lookup(self->in_flight, key)) + delta;

        if (count > 0)
                g_hash_table_insert(self->in_flight, key, GINT_TO_POINTER(count));
        else
                g_hash_table_remove(self->in_flight, key);
}

static guint
count_for_uid(ItkInputFiles *self, guint32 uid)
{
        GHashTableIter iter;
        gpointer value;
        guint count = GPOINTER_TO_INT(g_hash_table_lookup(self->in_flight, GUINT_TO_POINTER(uid)));

        g_hash_table_iter_init(&iter, self->staged);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                if (((Staged *)value)->uid == uid)
                        count++;
        return count;
}

static void
stage_start(ItkInputFiles *self, StageJob *job, GCancellable *cancellable,
            GAsyncReadyCallback callback, gpointer user_data)
{
        g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
        g_autoptr(GError) error = NULL;

        g_task_set_source_tag(task, stage_start);
        g_task_set_task_data(task, job, (GDestroyNotify)stage_job_free);
        if (!itk_input_files_name_is_valid(job->name, &error)) {
                g_task_return_error(task, g_steal_pointer(&error));
                return;
        }
        if (count_for_uid(self, job->uid) >= ITK_INPUT_FILES_MAX_PER_UID) {
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_LIMITS_EXCEEDED,
                                        "%d files are staged and unused already (the limit); "
                                        "start a run with them or wait until they expire",
                                        ITK_INPUT_FILES_MAX_PER_UID);
                return;
        }
        job->max_bytes = self->max_bytes;
        job->token = g_uuid_string_random();
        /* 32 hex digits, as run ids. */
        {
                char *w = job->token;
                for (const char *r = job->token; *r != '\0'; r++)
                        if (*r != '-')
                                *w++ = *r;
                *w = '\0';
        }
        job->path = itk_input_files_staged_path(self, job->token);
        job->cancellable = g_cancellable_new();
        in_flight_add(self, job->uid, +1);
        {
                /* The copy holds @task until it returns it. */
                g_autoptr(GTask) prepare =
                        g_task_new(NULL, job->cancellable, stage_prepared_cb, g_object_ref(task));
                g_task_set_task_data(prepare, job, NULL);
                g_task_run_in_thread(prepare, prepare_thread);
        }
}

void
itk_input_files_stage_fd_async(ItkInputFiles *self, guint32 uid, const char *name, int fd,
                               GCancellable *cancellable, GAsyncReadyCallback callback,
                               gpointer user_data)
{
        StageJob *job = g_new0(StageJob, 1);

        job->uid = uid;
        job->name = g_strdup(name);
        job->in_fd = fd;
        job->out_fd = -1;
        stage_start(self, job, cancellable, callback, user_data);
}

void
itk_input_files_stage_host_async(ItkInputFiles *self, guint32 uid, const char *directory,
                                 const char *name, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data)
{
        StageJob *job = g_new0(StageJob, 1);
        const char *base;

        job->uid = uid;
        job->in_fd = -1;
        job->out_fd = -1;
        base = name != NULL ? strrchr(name, '/') : NULL;
        job->name = g_strdup(base != NULL ? base + 1 : name != NULL ? name : "");
        if (directory == NULL ||
            !g_strv_contains((const char *const *)self->host_dirs, directory)) {
                g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
                g_task_set_source_tag(task, stage_start);
                g_task_set_task_data(task, job, (GDestroyNotify)stage_job_free);
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                        "'%s' is not one of the input folders "
                                        "(toolkit.conf InputFileDirectories)",
                                        directory != NULL ? directory : "");
                return;
        }
        job->directory = g_strdup(directory);
        job->relative = g_strdup(name);
        stage_start(self, job, cancellable, callback, user_data);
}

gboolean
itk_input_files_stage_finish(ItkInputFiles *self, GAsyncResult *result, char **token, guint64 *size,
                             char **sha256, GError **error)
{
        GTask *task = G_TASK(result);
        StageJob *job = g_task_get_task_data(task);
        Staged *staged;

        g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
        /* Started jobs count as in flight until here. */
        if (job->token != NULL)
                in_flight_add(self, job->uid, -1);
        if (!g_task_propagate_boolean(task, error))
                return FALSE;
        staged = g_new0(Staged, 1);
        staged->owner = self;
        staged->token = g_strdup(job->token);
        staged->name = g_strdup(job->name);
        staged->sha256 = g_strdup(job->sha256);
        staged->size = job->size;
        staged->uid = job->uid;
        staged->expiry_id = g_timeout_add_seconds(self->expiry_sec, staged_expired_cb, staged);
        g_hash_table_insert(self->staged, staged->token, staged);
        *token = g_strdup(job->token);
        *size = job->size;
        *sha256 = g_strdup(job->sha256);
        return TRUE;
}

/* --- listing the host folders (worker thread) --------------------------------- */

typedef struct {
        char *directory;
        char *name;
        guint64 size;
        gint64 mtime;
} HostFile;

static void
host_file_free(HostFile *file)
{
        g_free(file->directory);
        g_free(file->name);
        g_free(file);
}

static void
list_dir(int dir_fd, const char *directory, const char *prefix, guint depth, GPtrArray *out)
{
        DIR *dir = fdopendir(dir_fd);
        struct dirent *entry;

        if (dir == NULL) {
                close(dir_fd);
                return;
        }
        while ((entry = readdir(dir)) != NULL && out->len < ITK_INPUT_FILES_LIST_MAX) {
                struct stat st;

                if (entry->d_name[0] == '.' || !itk_input_files_name_is_valid(entry->d_name, NULL))
                        continue;
                if (fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
                        continue;
                if (S_ISREG(st.st_mode)) {
                        HostFile *file = g_new0(HostFile, 1);
                        file->directory = g_strdup(directory);
                        file->name = *prefix != '\0' ? g_strconcat(prefix, "/", entry->d_name, NULL)
                                                     : g_strdup(entry->d_name);
                        file->size = (guint64)st.st_size;
                        file->mtime = (gint64)st.st_mtim.tv_sec * G_USEC_PER_SEC +
                                      st.st_mtim.tv_nsec / 1000;
                        g_ptr_array_add(out, file);
                } else if (S_ISDIR(st.st_mode) && depth + 1 < ITK_INPUT_FILES_LIST_DEPTH) {
                        int sub = openat(dirfd(dir), entry->d_name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        g_autofree char *sub_prefix =
                                *prefix != '\0' ? g_strconcat(prefix, "/", entry->d_name, NULL)
                                                : g_strdup(entry->d_name);
                        if (sub >= 0)
                                list_dir(sub, directory, sub_prefix, depth + 1, out);
                }
        }
        closedir(dir);
}

static int
host_file_compare(gconstpointer a, gconstpointer b)
{
        const HostFile *x = *(HostFile *const *)a;
        const HostFile *y = *(HostFile *const *)b;
        int c = strcmp(x->directory, y->directory);

        return c != 0 ? c : strcmp(x->name, y->name);
}

static void
list_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
        char **dirs = task_data;
        g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func((GDestroyNotify)host_file_free);
        GVariantBuilder builder;

        for (guint i = 0; dirs[i] != NULL; i++) {
                int fd = open(dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd >= 0)
                        list_dir(fd, dirs[i], "", 0, files);
        }
        g_ptr_array_sort(files, host_file_compare);
        g_variant_builder_init(&builder, G_VARIANT_TYPE("aa{sv}"));
        for (guint i = 0; i < files->len; i++) {
                HostFile *file = g_ptr_array_index(files, i);
                g_variant_builder_open(&builder, G_VARIANT_TYPE("a{sv}"));
                g_variant_builder_add(&builder, "{sv}", "directory",
                                      g_variant_new_string(file->directory));
                g_variant_builder_add(&builder, "{sv}", "name", g_variant_new_string(file->name));
                g_variant_builder_add(&builder, "{sv}", "size", g_variant_new_uint64(file->size));
                g_variant_builder_add(&builder, "{sv}", "modified-at",
                                      g_variant_new_int64(file->mtime));
                g_variant_builder_close(&builder);
        }
        g_task_return_pointer(task, g_variant_ref_sink(g_variant_builder_end(&builder)),
                              (GDestroyNotify)g_variant_unref);
}

void
itk_input_files_list_host_async(ItkInputFiles *self, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data)
{
        g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);

        g_task_set_task_data(task, g_strdupv(self->host_dirs), (GDestroyNotify)g_strfreev);
        g_task_run_in_thread(task, list_thread);
}

GVariant *
itk_input_files_list_host_finish(ItkInputFiles *self, GAsyncResult *result, GError **error)
{
        g_return_val_if_fail(g_task_is_valid(result, self), NULL);
        return g_task_propagate_pointer(G_TASK(result), error);
}

/* --- handing a staged file to a run ----------------------------------------- */

static Staged *
itk_input_files_lookup(ItkInputFiles *self, guint32 uid, const char *param, const char *value,
                       GError **error)
{
        Staged *staged = NULL;

        if (value != NULL && g_str_has_prefix(value, ITK_INPUT_FILES_PREFIX)) {
                staged = g_hash_table_lookup(self->staged, value + strlen(ITK_INPUT_FILES_PREFIX));
                /* Someone else's token is as unknown as a made-up one. */
                if (staged == NULL || staged->uid != uid) {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                                    "parameter '%s': the staged file is unknown, used or expired; "
                                    "upload it again",
                                    param);
                        return NULL;
                }
                return staged;
        }
        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS,
                    "parameter '%s' is a file: upload it or choose it from the server's input "
                    "folders (StageInputFile/StageHostFile give \"staged:TOKEN\"); a typed path "
                    "is not accepted",
                    param);
        return NULL;
}

gboolean
itk_input_files_check(ItkInputFiles *self, guint32 uid, const char *param, const char *value,
                      GError **error)
{
        return itk_input_files_lookup(self, uid, param, value, error) != NULL;
}

char *
itk_input_files_claim(ItkInputFiles *self, guint32 uid, const char *param, const char *value,
                      const char *run_dir, char **log_line, GError **error)
{
        Staged *staged = itk_input_files_lookup(self, uid, param, value, error);
        g_autofree char *folder = NULL;
        g_autofree char *target = NULL;
        g_autofree char *source = NULL;
        g_autofree char *safe_param = g_strdup(param);

        if (staged == NULL)
                return NULL;
        /* The parameter's name as a folder: plain characters only. */
        for (char *p = safe_param; *p != '\0'; p++)
                if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-')
                        *p = '_';
        folder = g_build_filename(run_dir, "inputs", safe_param, NULL);
        if (g_mkdir_with_parents(folder, 0700) != 0) {
                int errsv = errno;
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                            "parameter '%s': cannot create %s: %s", param, folder,
                            g_strerror(errsv));
                return NULL;
        }
        target = g_build_filename(folder, staged->name, NULL);
        source = itk_input_files_staged_path(self, staged->token);
        /* The same file system (both under the state directory): a rename. */
        if (g_rename(source, target) != 0) {
                int errsv = errno;
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                            "parameter '%s': cannot move the staged file into the run: %s", param,
                            g_strerror(errsv));
                return NULL;
        }
        if (log_line != NULL)
                *log_line = g_strdup_printf("input file '%s': %s, %" G_GUINT64_FORMAT
                                            " bytes, sha256 %s",
                                            param, staged->name, staged->size, staged->sha256);
        g_hash_table_remove(self->staged, staged->token);
        return g_steal_pointer(&target);
}
