/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "itk-retention.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <string.h>
#include <unistd.h>

#define ITK_RETENTION_INTERVAL_DEFAULT 3600
/* The first pass waits a little: start-up has more urgent work. */
#define ITK_RETENTION_FIRST_DELAY 10
#define ITK_RETENTION_TREE_DEPTH 64

struct _ItkRetention {
        gatomicrefcount ref; /* folder tasks hold one */
        ItkStore *store;     /* NULL once freed by its owner */
        char *runs_dir;
        ItkRetentionConfig config;
        GCancellable *cancellable;
        guint timer_id;
        guint idle_id;
        ItkStorePrune *prune; /* the pass going on, or NULL */
        guint tasks_pending;
        guint n_removed;
};

static ItkRetention *
itk_retention_ref(ItkRetention *self)
{
        g_atomic_ref_count_inc(&self->ref);
        return self;
}

static void
itk_retention_unref(ItkRetention *self)
{
        if (!g_atomic_ref_count_dec(&self->ref))
                return;
        g_clear_object(&self->cancellable);
        g_free(self->runs_dir);
        g_free(self);
}

/* Removes @name under @dir_fd and everything in it, never following a
 * symbolic link: a script may have left one pointing anywhere. */
static void
itk_retention_remove_tree(int dir_fd, const char *name, guint depth, GCancellable *cancellable)
{
        DIR *dir;
        struct dirent *entry;
        int fd;

        if (unlinkat(dir_fd, name, 0) == 0 || errno == ENOENT)
                return;
        if (depth >= ITK_RETENTION_TREE_DEPTH || g_cancellable_is_cancelled(cancellable))
                return;
        fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return;
        dir = fdopendir(fd);
        if (dir == NULL) {
                close(fd);
                return;
        }
        while ((entry = readdir(dir)) != NULL) {
                if (g_str_equal(entry->d_name, ".") || g_str_equal(entry->d_name, ".."))
                        continue;
                itk_retention_remove_tree(dirfd(dir), entry->d_name, depth + 1, cancellable);
        }
        closedir(dir);
        if (unlinkat(dir_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                g_debug("cannot remove a pruned run's folder %s: %s", name, g_strerror(errno));
}

typedef struct {
        char *runs_dir;
        GPtrArray *names; /* folder names: 32 hex digits */
} ItkRetentionFolders;

static void
itk_retention_folders_free(ItkRetentionFolders *folders)
{
        g_free(folders->runs_dir);
        g_ptr_array_unref(folders->names);
        g_free(folders);
}

static void
itk_retention_folders_thread(GTask *task, gpointer source, gpointer task_data,
                             GCancellable *cancellable)
{
        ItkRetentionFolders *folders = task_data;
        int runs_fd = open(folders->runs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (runs_fd >= 0) {
                for (guint i = 0; i < folders->names->len; i++) {
                        if (g_cancellable_is_cancelled(cancellable))
                                break;
                        itk_retention_remove_tree(runs_fd, g_ptr_array_index(folders->names, i), 0,
                                                  cancellable);
                }
                close(runs_fd);
        }
        g_task_return_boolean(task, TRUE);
}

static void
itk_retention_pass_finish(ItkRetention *self)
{
        if (self->prune != NULL || self->tasks_pending > 0)
                return;
        if (self->n_removed > 0)
                g_message("history retention: %u run(s) pruned", self->n_removed);
        if (self->config.pass_done != NULL)
                self->config.pass_done(self->n_removed, self->config.pass_done_data);
}

static void
itk_retention_folders_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkRetention *self = user_data;

        self->tasks_pending--;
        if (self->store != NULL)
                itk_retention_pass_finish(self);
        itk_retention_unref(self);
}

/* A run's folder is named by the 32 hex digits of its id; anything else in
 * the id column (a hand-edited file) names no folder. */
static char *
itk_retention_folder_name(const char *id)
{
        GString *hex = g_string_new(NULL);

        for (const char *p = id; *p != '\0'; p++) {
                if (*p == '-')
                        continue;
                if (!g_ascii_isxdigit(*p)) {
                        g_string_free(hex, TRUE);
                        return NULL;
                }
                g_string_append_c(hex, g_ascii_tolower(*p));
        }
        if (hex->len != 32) {
                g_string_free(hex, TRUE);
                return NULL;
        }
        return g_string_free(hex, FALSE);
}

static void
itk_retention_remove_folders(ItkRetention *self, GPtrArray *ids)
{
        g_autoptr(GTask) task = NULL;
        ItkRetentionFolders *folders = g_new0(ItkRetentionFolders, 1);

        folders->runs_dir = g_strdup(self->runs_dir);
        folders->names = g_ptr_array_new_with_free_func(g_free);
        for (guint i = 0; i < ids->len; i++) {
                char *name = itk_retention_folder_name(g_ptr_array_index(ids, i));
                if (name != NULL)
                        g_ptr_array_add(folders->names, name);
        }
        self->tasks_pending++;
        task = g_task_new(NULL, self->cancellable, itk_retention_folders_done,
                          itk_retention_ref(self));
        g_task_set_task_data(task, folders, (GDestroyNotify)itk_retention_folders_free);
        g_task_run_in_thread(task, itk_retention_folders_thread);
}

static gboolean
itk_retention_step_cb(gpointer user_data)
{
        ItkRetention *self = user_data;
        g_autoptr(GPtrArray) removed = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;
        gboolean done = FALSE;

        if (!itk_store_prune_step(self->prune, self->config.keep, self->config.keep_data, removed,
                                  &done, &error)) {
                /* Retried at the next interval. */
                g_warning("history retention: %s", error->message);
                done = TRUE;
        }
        self->n_removed += removed->len;
        if (removed->len > 0 && self->runs_dir != NULL)
                itk_retention_remove_folders(self, removed);
        if (!done)
                return G_SOURCE_CONTINUE;
        self->idle_id = 0;
        g_clear_pointer(&self->prune, itk_store_prune_free);
        itk_retention_pass_finish(self);
        return G_SOURCE_REMOVE;
}

void
itk_retention_run_now(ItkRetention *self)
{
        g_autoptr(GError) error = NULL;
        ItkStorePrunePolicy policy = {
                .max_runs = self->config.max_runs,
                .batch_runs = self->config.batch_runs,
                .batch_lines = self->config.batch_lines,
        };

        if (self->prune != NULL || self->tasks_pending > 0)
                return;
        if (self->config.max_age_days != 0)
                policy.created_before =
                        g_get_real_time() - (gint64)self->config.max_age_days * G_TIME_SPAN_DAY;
        self->n_removed = 0;
        self->prune = itk_store_prune_new(self->store, &policy, &error);
        if (self->prune == NULL) {
                g_warning("history retention: %s", error->message);
                return;
        }
        /* Low priority: bus calls and runs go first, a batch fits between. */
        self->idle_id = g_idle_add_full(G_PRIORITY_LOW, itk_retention_step_cb, self, NULL);
}

static gboolean
itk_retention_timer_cb(gpointer user_data)
{
        ItkRetention *self = user_data;

        itk_retention_run_now(self);
        return G_SOURCE_CONTINUE;
}

static gboolean
itk_retention_first_cb(gpointer user_data)
{
        ItkRetention *self = user_data;
        guint interval = self->config.interval_sec != 0 ? self->config.interval_sec
                                                        : ITK_RETENTION_INTERVAL_DEFAULT;

        itk_retention_run_now(self);
        self->timer_id = g_timeout_add_seconds(interval, itk_retention_timer_cb, self);
        return G_SOURCE_REMOVE;
}

ItkRetention *
itk_retention_new(ItkStore *store, const char *runs_dir, const ItkRetentionConfig *config)
{
        ItkRetention *self = g_new0(ItkRetention, 1);
        guint interval =
                config->interval_sec != 0 ? config->interval_sec : ITK_RETENTION_INTERVAL_DEFAULT;

        g_atomic_ref_count_init(&self->ref);
        self->store = store;
        self->runs_dir = g_strdup(runs_dir);
        self->config = *config;
        self->cancellable = g_cancellable_new();
        if (config->max_age_days != 0 || config->max_runs != 0)
                self->timer_id = g_timeout_add_seconds(MIN(interval, ITK_RETENTION_FIRST_DELAY),
                                                       itk_retention_first_cb, self);
        return self;
}

void
itk_retention_free(ItkRetention *self)
{
        if (self == NULL)
                return;
        g_cancellable_cancel(self->cancellable);
        g_clear_handle_id(&self->timer_id, g_source_remove);
        g_clear_handle_id(&self->idle_id, g_source_remove);
        g_clear_pointer(&self->prune, itk_store_prune_free);
        self->store = NULL;
        itk_retention_unref(self);
}
