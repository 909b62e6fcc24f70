/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <unistd.h>

#include "itk-error.h"
#include "itk-priority.h"
#include "itk-sandbox.h"

/* What the admin reads when confinement is impossible: the package and
 * the opt-out, in one place. */
#define ITK_SANDBOX_HINT                                                                           \
        "install the Debian package 'bubblewrap', or run scripts unconfined with "                 \
        "[Sandbox] Enabled=false in toolkit.conf"

typedef struct {
        char *path;
        gboolean writable;
} ItkSandboxBind;

struct _ItkSandbox {
        gboolean enabled;
        char *bwrap;
        GPtrArray *hidden; /* char* */
        GPtrArray *binds;  /* ItkSandboxBind* */
        GPtrArray *env;    /* name, value, name, value, ... */
        char *cwd;
};

/* The probe's verdict per bubblewrap binary, for the whole process. */
typedef enum {
        ITK_SANDBOX_PROBE_RUNNING,
        ITK_SANDBOX_PROBE_OK,
        ITK_SANDBOX_PROBE_FAILED,
} ItkSandboxProbeState;

typedef struct {
        ItkSandboxProbeState state;
        char *message;      /* FAILED: why */
        GPtrArray *waiters; /* ItkSandboxWaiter*, while RUNNING */
} ItkSandboxProbe;

/* A caller of itk_sandbox_check_async() waiting for a running probe; it
 * leaves at once when its cancellable fires. */
typedef struct {
        GTask *task;
        GSource *cancel_source;
        ItkSandboxProbe *probe; /* borrowed: probes live as long as the process */
} ItkSandboxWaiter;

static GHashTable *probes; /* bwrap as configured -> ItkSandboxProbe* */
static ItkSandbox *default_sandbox;

static void
itk_sandbox_bind_free(ItkSandboxBind *bind)
{
        g_free(bind->path);
        g_free(bind);
}

ItkSandbox *
itk_sandbox_new(void)
{
        ItkSandbox *self = g_new0(ItkSandbox, 1);

        self->enabled = TRUE;
        self->bwrap = g_strdup("bwrap");
        self->hidden = g_ptr_array_new_with_free_func(g_free);
        self->binds = g_ptr_array_new_with_free_func((GDestroyNotify)itk_sandbox_bind_free);
        self->env = g_ptr_array_new_with_free_func(g_free);
        return self;
}

ItkSandbox *
itk_sandbox_copy(const ItkSandbox *self)
{
        ItkSandbox *copy;

        g_return_val_if_fail(self != NULL, NULL);
        copy = itk_sandbox_new();
        copy->enabled = self->enabled;
        itk_sandbox_set_bwrap(copy, self->bwrap);
        for (guint i = 0; i < self->hidden->len; i++)
                g_ptr_array_add(copy->hidden, g_strdup(self->hidden->pdata[i]));
        for (guint i = 0; i < self->binds->len; i++) {
                const ItkSandboxBind *bind = self->binds->pdata[i];
                itk_sandbox_bind(copy, bind->path, bind->writable);
        }
        for (guint i = 0; i < self->env->len; i++)
                g_ptr_array_add(copy->env, g_strdup(self->env->pdata[i]));
        copy->cwd = g_strdup(self->cwd);
        return copy;
}

void
itk_sandbox_free(ItkSandbox *self)
{
        if (self == NULL)
                return;
        g_free(self->bwrap);
        g_ptr_array_unref(self->hidden);
        g_ptr_array_unref(self->binds);
        g_ptr_array_unref(self->env);
        g_free(self->cwd);
        g_free(self);
}

void
itk_sandbox_set_enabled(ItkSandbox *self, gboolean enabled)
{
        g_return_if_fail(self != NULL);
        self->enabled = enabled;
}

gboolean
itk_sandbox_get_enabled(const ItkSandbox *self)
{
        g_return_val_if_fail(self != NULL, FALSE);
        return self->enabled;
}

void
itk_sandbox_set_bwrap(ItkSandbox *self, const char *path)
{
        g_return_if_fail(self != NULL);
        g_return_if_fail(path != NULL && *path != '\0');
        g_free(self->bwrap);
        self->bwrap = g_strdup(path);
}

const char *
itk_sandbox_get_bwrap(const ItkSandbox *self)
{
        g_return_val_if_fail(self != NULL, NULL);
        return self->bwrap;
}

void
itk_sandbox_hide(ItkSandbox *self, const char *path)
{
        g_return_if_fail(self != NULL);
        g_return_if_fail(path != NULL && g_path_is_absolute(path));
        g_ptr_array_add(self->hidden, g_canonicalize_filename(path, NULL));
}

void
itk_sandbox_bind(ItkSandbox *self, const char *path, gboolean writable)
{
        ItkSandboxBind *bind;

        g_return_if_fail(self != NULL);
        g_return_if_fail(path != NULL && g_path_is_absolute(path));
        bind = g_new0(ItkSandboxBind, 1);
        bind->path = g_canonicalize_filename(path, NULL);
        bind->writable = writable;
        g_ptr_array_add(self->binds, bind);
}

void
itk_sandbox_setenv(ItkSandbox *self, const char *name, const char *value)
{
        g_return_if_fail(self != NULL);
        g_return_if_fail(name != NULL && value != NULL);
        g_ptr_array_add(self->env, g_strdup(name));
        g_ptr_array_add(self->env, g_strdup(value));
}

void
itk_sandbox_set_cwd(ItkSandbox *self, const char *cwd)
{
        g_return_if_fail(self != NULL);
        g_free(self->cwd);
        self->cwd = cwd != NULL ? g_canonicalize_filename(cwd, NULL) : NULL;
}

/* --- the probe ----------------------------------------------------------- */

static ItkSandboxProbe *
itk_sandbox_probe_lookup(const char *bwrap)
{
        if (probes == NULL)
                return NULL;
        return g_hash_table_lookup(probes, bwrap);
}

static void
itk_sandbox_waiter_free(ItkSandboxWaiter *waiter)
{
        if (waiter->cancel_source != NULL) {
                g_source_destroy(waiter->cancel_source);
                g_source_unref(waiter->cancel_source);
        }
        g_clear_object(&waiter->task);
        g_free(waiter);
}

static void
itk_sandbox_probe_free(ItkSandboxProbe *probe)
{
        g_free(probe->message);
        if (probe->waiters != NULL)
                g_ptr_array_unref(probe->waiters);
        g_free(probe);
}

static ItkSandboxProbe *
itk_sandbox_probe_insert(const char *bwrap)
{
        ItkSandboxProbe *probe = g_new0(ItkSandboxProbe, 1);

        if (probes == NULL)
                probes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                               (GDestroyNotify)itk_sandbox_probe_free);
        probe->state = ITK_SANDBOX_PROBE_RUNNING;
        probe->waiters = g_ptr_array_new_with_free_func((GDestroyNotify)itk_sandbox_waiter_free);
        g_hash_table_replace(probes, g_strdup(bwrap), probe);
        return probe;
}

static gboolean
itk_sandbox_probe_result(ItkSandboxProbe *probe, GError **error)
{
        if (probe->state == ITK_SANDBOX_PROBE_OK)
                return TRUE;
        g_set_error(error, ITK_ERROR, ITK_ERROR_NOT_SUPPORTED, "%s", probe->message);
        return FALSE;
}

/* The smallest sandbox with every namespace and mount the real ones use:
 * if this runs `true`, scripts can run. */
static GStrv
itk_sandbox_probe_argv(const char *bwrap)
{
        g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
        const char *const args[] = { "--unshare-pid",
                                     "--die-with-parent",
                                     "--new-session",
                                     "--ro-bind",
                                     "/",
                                     "/",
                                     "--dev",
                                     "/dev",
                                     "--proc",
                                     "/proc",
                                     "--tmpfs",
                                     "/tmp",
                                     NULL };

        g_strv_builder_add(builder, bwrap);
        g_strv_builder_addv(builder, (const char **)args);
        if (geteuid() == 0)
                g_strv_builder_addv(builder, (const char *[]){ "--cap-drop", "ALL", NULL });
        g_strv_builder_addv(builder, (const char *[]){ "true", NULL });
        return g_strv_builder_end(builder);
}

static void
itk_sandbox_probe_set(const char *bwrap, ItkSandboxProbe *probe, const char *failure)
{
        g_autoptr(GPtrArray) waiters = g_steal_pointer(&probe->waiters);

        probe->state = failure == NULL ? ITK_SANDBOX_PROBE_OK : ITK_SANDBOX_PROBE_FAILED;
        if (failure != NULL)
                probe->message = g_strdup_printf("scripts cannot be confined: %s (%s); %s", failure,
                                                 bwrap, ITK_SANDBOX_HINT);
        for (guint i = 0; waiters != NULL && i < waiters->len; i++) {
                ItkSandboxWaiter *waiter = waiters->pdata[i];
                GTask *task = waiter->task;
                GError *error = NULL;

                if (itk_sandbox_probe_result(probe, &error))
                        g_task_return_boolean(task, TRUE);
                else
                        g_task_return_error(task, error);
        }
}

/* Why the probe's process failed, from its exit and stderr. */
static char *
itk_sandbox_probe_describe(gboolean spawned, const GError *spawn_error, int wait_status,
                           const char *err)
{
        g_autofree char *text = NULL;

        if (!spawned)
                return g_strdup_printf("bubblewrap cannot be started: %s", spawn_error->message);
        if (g_spawn_check_wait_status(wait_status, NULL))
                return NULL;
        text = g_strstrip(g_strdup(err != NULL ? err : ""));
        if (*text == '\0')
                return g_strdup("bubblewrap failed to create its namespaces");
        return g_strdup_printf("bubblewrap failed to create its namespaces: %s", text);
}

gboolean
itk_sandbox_check(ItkSandbox *self, GError **error)
{
        g_autoptr(GError) spawn_error = NULL;
        g_autofree char *err = NULL;
        g_autofree char *failure = NULL;
        g_auto(GStrv) argv = NULL;
        ItkSandboxProbe *probe;
        gboolean spawned;
        int wait_status = 0;

        g_return_val_if_fail(self != NULL, FALSE);
        if (!self->enabled)
                return TRUE;
        probe = itk_sandbox_probe_lookup(self->bwrap);
        if (probe != NULL && probe->state != ITK_SANDBOX_PROBE_RUNNING)
                return itk_sandbox_probe_result(probe, error);
        /* Not probed yet, or an asynchronous probe still runs: this caller
         * cannot wait for it, so it probes now (once per process). */
        argv = itk_sandbox_probe_argv(self->bwrap);
        spawned = g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                               itk_priority_child_setup, NULL, NULL, &err, &wait_status,
                               &spawn_error);
        failure = itk_sandbox_probe_describe(spawned, spawn_error, wait_status, err);
        if (probe == NULL)
                probe = itk_sandbox_probe_insert(self->bwrap);
        itk_sandbox_probe_set(self->bwrap, probe, failure);
        return itk_sandbox_probe_result(probe, error);
}

static gboolean
itk_sandbox_waiter_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
        ItkSandboxWaiter *waiter = user_data;
        GTask *task = g_object_ref(waiter->task);

        /* Frees the waiter and this source with it. */
        g_ptr_array_remove(waiter->probe->waiters, waiter);
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                "cancelled while probing the sandbox");
        g_object_unref(task);
        return G_SOURCE_REMOVE;
}

static void
itk_sandbox_probe_wait(ItkSandboxProbe *probe, GTask *task)
{
        ItkSandboxWaiter *waiter = g_new0(ItkSandboxWaiter, 1);
        GCancellable *cancellable = g_task_get_cancellable(task);

        waiter->task = task;
        waiter->probe = probe;
        if (cancellable != NULL) {
                waiter->cancel_source = g_cancellable_source_new(cancellable);
                g_source_set_callback(waiter->cancel_source,
                                      G_SOURCE_FUNC(itk_sandbox_waiter_cancelled_cb), waiter, NULL);
                g_source_set_static_name(waiter->cancel_source, "itk-sandbox-probe-wait");
                g_source_attach(waiter->cancel_source, g_main_context_get_thread_default());
        }
        g_ptr_array_add(probe->waiters, waiter);
}

static void
itk_sandbox_probe_done_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autofree char *bwrap = user_data;
        GSubprocess *proc = G_SUBPROCESS(source);
        g_autoptr(GError) error = NULL;
        g_autofree char *err = NULL;
        g_autofree char *failure = NULL;
        ItkSandboxProbe *probe = itk_sandbox_probe_lookup(bwrap);

        if (!g_subprocess_communicate_utf8_finish(proc, result, NULL, &err, &error)) {
                failure = g_strdup_printf("bubblewrap probe failed: %s", error->message);
        } else {
                failure =
                        itk_sandbox_probe_describe(TRUE, NULL, g_subprocess_get_status(proc), err);
        }
        /* A synchronous check may have settled it meanwhile. */
        if (probe != NULL && probe->state == ITK_SANDBOX_PROBE_RUNNING)
                itk_sandbox_probe_set(bwrap, probe, failure);
}

void
itk_sandbox_check_async(ItkSandbox *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                        gpointer user_data)
{
        g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
        g_autoptr(GSubprocessLauncher) launcher = NULL;
        g_autoptr(GSubprocess) proc = NULL;
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) argv = NULL;
        ItkSandboxProbe *probe;

        g_return_if_fail(self != NULL);
        g_task_set_source_tag(task, itk_sandbox_check_async);
        if (!self->enabled) {
                g_task_return_boolean(task, TRUE);
                return;
        }
        probe = itk_sandbox_probe_lookup(self->bwrap);
        if (probe != NULL && probe->state != ITK_SANDBOX_PROBE_RUNNING) {
                if (itk_sandbox_probe_result(probe, &error))
                        g_task_return_boolean(task, TRUE);
                else
                        g_task_return_error(task, g_steal_pointer(&error));
                return;
        }
        if (probe != NULL) {
                itk_sandbox_probe_wait(probe, g_steal_pointer(&task));
                return;
        }
        probe = itk_sandbox_probe_insert(self->bwrap);
        itk_sandbox_probe_wait(probe, g_steal_pointer(&task));
        argv = itk_sandbox_probe_argv(self->bwrap);
        launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                             G_SUBPROCESS_FLAGS_STDERR_PIPE);
        g_subprocess_launcher_set_child_setup(launcher, itk_priority_child_setup, NULL, NULL);
        proc = g_subprocess_launcher_spawnv(launcher, (const char *const *)argv, &error);
        if (proc == NULL) {
                g_autofree char *failure = itk_sandbox_probe_describe(FALSE, error, 0, NULL);
                itk_sandbox_probe_set(self->bwrap, probe, failure);
                return;
        }
        /* Not cancellable: the verdict serves every later caller. */
        g_subprocess_communicate_utf8_async(proc, NULL, NULL, itk_sandbox_probe_done_cb,
                                            g_strdup(self->bwrap));
}

gboolean
itk_sandbox_check_finish(GAsyncResult *result, GError **error)
{
        g_return_val_if_fail(g_task_is_valid(result, NULL), FALSE);
        return g_task_propagate_boolean(G_TASK(result), error);
}

/* --- the command line ------------------------------------------------------ */

GStrv
itk_sandbox_wrap_argv(ItkSandbox *self, const char *const *argv, GError **error)
{
        g_autoptr(GStrvBuilder) builder = NULL;

        g_return_val_if_fail(self != NULL, NULL);
        g_return_val_if_fail(argv != NULL && argv[0] != NULL, NULL);
        if (!self->enabled)
                return g_strdupv((char **)argv);
        if (!itk_sandbox_check(self, error))
                return NULL;

        builder = g_strv_builder_new();
        g_strv_builder_add_many(builder, self->bwrap,
                                /* Killing bwrap kills all inside, setsid or not. */
                                "--unshare-pid", "--die-with-parent",
                                /* No TIOCSTI into a terminal of the daemon's. */
                                "--new-session", "--ro-bind", "/", "/", "--dev", "/dev", "--proc",
                                "/proc", "--tmpfs", "/tmp", "--tmpfs", "/dev/shm", NULL);
        /* Root keeps every capability inside unless told: drop them, so the
         * tmpfs over the state directory cannot be unmounted. */
        if (geteuid() == 0)
                g_strv_builder_add_many(builder, "--cap-drop", "ALL", NULL);
        for (guint i = 0; i < self->hidden->len; i++) {
                const char *path = self->hidden->pdata[i];

                /* Nothing to hide, and no mount point to make in a read-only
                 * tree. */
                if (!g_file_test(path, G_FILE_TEST_IS_DIR))
                        continue;
                g_strv_builder_add_many(builder, "--tmpfs", path, NULL);
        }
        for (guint i = 0; i < self->binds->len; i++) {
                const ItkSandboxBind *bind = self->binds->pdata[i];

                g_strv_builder_add_many(builder, bind->writable ? "--bind" : "--ro-bind",
                                        bind->path, bind->path, NULL);
        }
        for (guint i = 0; i + 1 < self->env->len; i += 2)
                g_strv_builder_add_many(builder, "--setenv", self->env->pdata[i],
                                        self->env->pdata[i + 1], NULL);
        if (self->cwd != NULL)
                g_strv_builder_add_many(builder, "--chdir", self->cwd, NULL);
        /* Ends bwrap's options: a command starting with '-' stays a command. */
        g_strv_builder_add(builder, "--");
        g_strv_builder_addv(builder, (const char **)argv);
        return g_strv_builder_end(builder);
}

void
itk_sandbox_set_default(ItkSandbox *sandbox)
{
        g_clear_pointer(&default_sandbox, itk_sandbox_free);
        default_sandbox = sandbox;
}

const ItkSandbox *
itk_sandbox_get_default(void)
{
        return default_sandbox;
}

ItkSandbox *
itk_sandbox_new_from_config(GKeyFile *config, const char *state_dir, GError **error)
{
        g_autoptr(ItkSandbox) sandbox = itk_sandbox_new();
        g_autoptr(GError) local_error = NULL;
        g_autofree char *bwrap = NULL;
        gboolean enabled;

        g_return_val_if_fail(config != NULL && state_dir != NULL, NULL);
        enabled = g_key_file_get_boolean(config, "Sandbox", "Enabled", &local_error);
        if (local_error != NULL) {
                if (!g_error_matches(local_error, G_KEY_FILE_ERROR,
                                     G_KEY_FILE_ERROR_KEY_NOT_FOUND) &&
                    !g_error_matches(local_error, G_KEY_FILE_ERROR,
                                     G_KEY_FILE_ERROR_GROUP_NOT_FOUND)) {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "[Sandbox] Enabled= must be true or false: %s",
                                    local_error->message);
                        return NULL;
                }
                enabled = TRUE;
        }
        itk_sandbox_set_enabled(sandbox, enabled);
        bwrap = g_key_file_get_string(config, "Sandbox", "Bubblewrap", NULL);
        if (bwrap != NULL && *g_strstrip(bwrap) != '\0')
                itk_sandbox_set_bwrap(sandbox, bwrap);
        /* Credentials, history and every run's folder. */
        if (g_path_is_absolute(state_dir)) {
                itk_sandbox_hide(sandbox, state_dir);
        } else {
                g_autofree char *absolute = g_canonicalize_filename(state_dir, NULL);
                itk_sandbox_hide(sandbox, absolute);
        }
        return g_steal_pointer(&sandbox);
}
