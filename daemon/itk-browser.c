/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define _GNU_SOURCE /* unshare(2) */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib/gstdio.h>

#include "itk-browser.h"
#include "itk-error.h"
#include "itk-priority.h"
#include "itk-sandbox.h"

typedef enum {
        BROWSER_STOPPED,
        BROWSER_STARTING,
        BROWSER_RUNNING,
} BrowserState;

struct _ItkBrowser {
        char *binary;
        char *data_dir;
        char *profile_dir;
        char *download_root;
        gboolean own_data_dir; /* a temporary folder we remove */
        guint idle_timeout;
        char *agent_source;

        BrowserState state;
        GSubprocess *process;
        GPid pid;
        ItkCdp *cdp;
        GCancellable *generation; /* cancelled when this browser instance ends */
        guint idle_id;
        guint refill_id; /* the spare is made again a moment after one is handed out */
        guint n_starts;

        GQueue waiters; /* GTask* wanting a page */
        guint making;   /* pages being made */
        ItkBrowserPage *spare;
        GHashTable *pages; /* ItkBrowserPage* in use (set) */
};

struct _ItkBrowserPage {
        ItkBrowser *browser; /* NULL once its browser is gone */
        ItkCdp *cdp;
        char *context_id;
        char *target_id;
        char *session_id;
        guint handler_id;
        char *dead;           /* why it can no longer be used */
        gint64 world_id;      /* 0: none yet */
        GQueue world_waiters; /* GTask* */
        char *download_dir;
        ItkBrowserDownloadFunc download_func;
        gpointer download_data;
        GDestroyNotify download_destroy;
        GHashTable *downloads; /* guid -> suggested file name */
};

static void itk_browser_page_free(ItkBrowserPage *page);
static void itk_browser_page_fail_world_waiters(ItkBrowserPage *page, const char *message);
static void itk_browser_pump(ItkBrowser *self);
static void itk_browser_update_idle(ItkBrowser *self);
static void new_page_return(ItkBrowser *self, GTask *task, ItkBrowserPage *page);

/* --- configuration ------------------------------------------------------------ */

/* Takes @dir. */
static void
itk_browser_set_data_dir(ItkBrowser *self, char *dir)
{
        self->data_dir = dir;
        self->profile_dir = g_build_filename(self->data_dir, "profile", NULL);
        self->download_root = g_build_filename(self->data_dir, "downloads", NULL);
}

ItkBrowser *
itk_browser_new(const char *binary, const char *data_dir, guint idle_timeout_sec)
{
        ItkBrowser *self = g_new0(ItkBrowser, 1);

        if (binary == NULL || *binary == '\0')
                binary = itk_browser_config_get_binary();
        self->binary = g_strdup(binary);
        /* Without a state directory, a temporary folder made at first start. */
        if (data_dir != NULL)
                itk_browser_set_data_dir(self, g_build_filename(data_dir, "browser", NULL));
        self->idle_timeout = idle_timeout_sec;
        self->pages = g_hash_table_new(g_direct_hash, g_direct_equal);
        g_queue_init(&self->waiters);
        return self;
}

static ItkBrowser *default_browser;

ItkBrowser *
itk_browser_get_default(void)
{
        if (default_browser == NULL)
                default_browser = itk_browser_new(itk_browser_config_get_binary(),
                                                  itk_browser_config_get_data_dir(),
                                                  itk_browser_config_get_idle_timeout());
        return default_browser;
}

gboolean
itk_browser_check_available(ItkBrowser *self, GError **error)
{
        return itk_browser_check_binary(self->binary, error);
}

void
itk_browser_set_agent_source(ItkBrowser *self, const char *source)
{
        g_free(self->agent_source);
        self->agent_source = g_strdup(source);
}

GPid
itk_browser_get_pid(ItkBrowser *self)
{
        return self->state != BROWSER_STOPPED ? self->pid : 0;
}

guint
itk_browser_get_n_pages(ItkBrowser *self)
{
        return g_hash_table_size(self->pages);
}

guint
itk_browser_get_n_starts(ItkBrowser *self)
{
        return self->n_starts;
}

/* --- the process ------------------------------------------------------------------ */

static void
itk_browser_child_setup(gpointer user_data)
{
        (void)user_data;
        /* Its own process group: stopping it kills the renderers too. */
        setpgid(0, 0);
        /* Nothing outlives the daemon, even killed (the sandbox's
         * --die-with-parent does the same when there is one). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* Chromium runs at nice 0, not at the daemon's boost. */
        itk_priority_reset_child();
}

/* Moves @fd above the range take_fd targets, so that the source of each
 * remapping is never its target (dup2(fd, fd) would keep FD_CLOEXEC set,
 * BROWSER.md) and never another remapping's target. */
static int
itk_browser_fd_out_of_the_way(int fd)
{
        int moved = fcntl(fd, F_DUPFD_CLOEXEC, 10);

        close(fd);
        return moved;
}

GSubprocess *
itk_browser_spawn(const char *const *argv, int *to_browser, int *from_browser, GError **error)
{
        g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
                g_getenv("ITK_BROWSER_DEBUG") != NULL
                        ? G_SUBPROCESS_FLAGS_NONE
                        : G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
        int requests[2], replies[2];
        GSubprocess *process;

        if (!g_unix_open_pipe(requests, FD_CLOEXEC, error))
                return NULL;
        if (!g_unix_open_pipe(replies, FD_CLOEXEC, error)) {
                close(requests[0]);
                close(requests[1]);
                return NULL;
        }
        requests[0] = itk_browser_fd_out_of_the_way(requests[0]);
        replies[1] = itk_browser_fd_out_of_the_way(replies[1]);
        if (requests[0] < 0 || replies[1] < 0) {
                int saved = errno;
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved),
                            "cannot prepare the browser pipe: %s", g_strerror(saved));
                for (guint i = 0; i < 2; i++) {
                        if (requests[i] >= 0)
                                close(requests[i]);
                        if (replies[i] >= 0)
                                close(replies[i]);
                }
                return NULL;
        }
        g_subprocess_launcher_take_fd(launcher, requests[0], 3);
        g_subprocess_launcher_take_fd(launcher, replies[1], 4);
        /* Chromium otherwise tries our bus, and the session's, forever. */
        g_subprocess_launcher_setenv(launcher, "DBUS_SESSION_BUS_ADDRESS", "disabled:", TRUE);
        g_subprocess_launcher_set_child_setup(launcher, itk_browser_child_setup, NULL, NULL);
        process = g_subprocess_launcher_spawnv(launcher, argv, error);
        if (process == NULL) {
                close(requests[1]);
                close(replies[0]);
                return NULL;
        }
        *to_browser = requests[1];
        *from_browser = replies[0];
        return process;
}

/* Can Chromium's own sandbox work here? It refuses to run as root, and it
 * needs a user namespace in which it may chroot(2), which the hardened
 * unit's system call filter refuses (docs/browser.md). Probed once with a
 * child that tries exactly that; a few milliseconds on the first start. */
static gboolean
itk_browser_own_sandbox_works(void)
{
        static int works = -1;
        pid_t pid;
        int status = 0;

        if (works >= 0)
                return works;
        if (geteuid() == 0)
                return works = FALSE;
        pid = fork();
        if (pid == 0) {
                if (unshare(CLONE_NEWUSER) != 0)
                        _exit(1);
                _exit(chroot("/") == 0 ? 0 : 2);
        }
        works = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
                WEXITSTATUS(status) == 0;
        return works;
}

static GStrv
itk_browser_argv(ItkBrowser *self, GError **error)
{
        g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
        g_auto(GStrv) argv = NULL;
        const ItkSandbox *template = itk_sandbox_get_default();
        g_autoptr(ItkSandbox) sandbox = NULL;
        g_autofree char *profile = g_strdup_printf("--user-data-dir=%s", self->profile_dir);

        g_strv_builder_add(builder, self->binary);
        g_strv_builder_add(builder, "--headless=new");
        g_strv_builder_add(builder, profile);
        g_strv_builder_add_many(builder, "--no-first-run", "--no-default-browser-check",
                                "--disable-gpu", "--remote-debugging-pipe",
                                /* No network here: without these Chromium keeps
                                 * trying (and logging) connections of its own. */
                                "--disable-background-networking", "--disable-component-update",
                                "--disable-sync", "--disable-quic", NULL);
        /* Chromium's own sandbox refuses to run as root and needs user
         * namespaces; without it, ours (bubblewrap) still confines it
         * (docs/browser.md). */
        if (!itk_browser_own_sandbox_works())
                g_strv_builder_add(builder, "--no-sandbox");
        g_strv_builder_add(builder, "about:blank");
        argv = g_strv_builder_end(builder);
        if (template == NULL)
                return g_steal_pointer(&argv);
        /* The state directory stays hidden; only the browser's own folders
         * come back, writable. */
        sandbox = itk_sandbox_copy(template);
        itk_sandbox_bind(sandbox, self->profile_dir, TRUE);
        itk_sandbox_bind(sandbox, self->download_root, TRUE);
        return itk_sandbox_wrap_argv(sandbox, (const char *const *)argv, error);
}

static void
itk_browser_fail_waiters(ItkBrowser *self, const char *message)
{
        GTask *task;

        while ((task = g_queue_peek_head(&self->waiters)) != NULL) {
                new_page_return(self, task, NULL);
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_FAILED, "%s", message);
                g_object_unref(task);
        }
}

/* The browser instance is gone (exited, crashed, stopped): everything that
 * used it fails with @message; the next request starts a new one. */
static void
itk_browser_lost(ItkBrowser *self, const char *message)
{
        GHashTableIter iter;
        ItkBrowserPage *page;

        if (self->state == BROWSER_STOPPED)
                return;
        self->state = BROWSER_STOPPED;
        g_cancellable_cancel(self->generation);
        g_clear_object(&self->generation);
        g_clear_handle_id(&self->idle_id, g_source_remove);
        g_clear_handle_id(&self->refill_id, g_source_remove);
        if (self->pid > 0)
                kill(-self->pid, SIGKILL);
        g_clear_object(&self->process);
        self->pid = 0;
        g_clear_pointer(&self->spare, itk_browser_page_free);
        g_hash_table_iter_init(&iter, self->pages);
        while (g_hash_table_iter_next(&iter, (gpointer *)&page, NULL)) {
                if (page->dead == NULL)
                        page->dead = g_strdup(message);
                page->browser = NULL;
                /* Waiting for a world that will never come. */
                itk_browser_page_fail_world_waiters(page, message);
        }
        g_hash_table_remove_all(self->pages);
        if (self->cdp != NULL) {
                itk_cdp_set_closed_func(self->cdp, NULL, NULL);
                itk_cdp_close(self->cdp, message);
                g_clear_pointer(&self->cdp, itk_cdp_unref);
        }
        self->making = 0;
        itk_browser_fail_waiters(self, message);
}

typedef struct {
        ItkBrowser *browser;
        GCancellable *generation;
} ExitData;

static void
itk_browser_exited_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ExitData *data = user_data;
        GSubprocess *process = G_SUBPROCESS(source);
        g_autofree char *message = NULL;

        g_subprocess_wait_finish(process, result, NULL);
        if (!g_cancellable_is_cancelled(data->generation)) {
                if (g_subprocess_get_if_signaled(process))
                        message = g_strdup_printf("the browser (Chromium) crashed (signal %d)",
                                                  g_subprocess_get_term_sig(process));
                else
                        message = g_strdup_printf("the browser (Chromium) exited (status %d)",
                                                  g_subprocess_get_exit_status(process));
                itk_browser_lost(data->browser, message);
        }
        g_object_unref(data->generation);
        g_free(data);
}

static void
itk_browser_cdp_closed_cb(ItkCdp *cdp, const GError *error, gpointer user_data)
{
        ItkBrowser *self = user_data;
        g_autofree char *message =
                g_strdup_printf("the browser (Chromium) crashed or exited (%s)", error->message);

        (void)cdp;
        itk_browser_lost(self, message);
}

static void
itk_browser_version_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkBrowser *self = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) reply = itk_cdp_call_finish(NULL, result, &error);

        (void)source;

        if (reply == NULL) {
                if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
                        g_autofree char *message =
                                g_strdup_printf("the browser did not start: %s", error->message);
                        itk_browser_lost(self, message);
                }
                return;
        }
        self->state = BROWSER_RUNNING;
        itk_browser_pump(self);
}

static gboolean
itk_browser_start(ItkBrowser *self, GError **error)
{
        g_auto(GStrv) argv = NULL;
        g_autoptr(GSubprocess) process = NULL;
        ExitData *exit_data;
        int to_browser = -1, from_browser = -1;

        if (!itk_browser_check_available(self, error))
                return FALSE;
        if (self->data_dir == NULL) {
                char *dir = g_dir_make_tmp("itk-browser-XXXXXX", error);
                if (dir == NULL)
                        return FALSE;
                self->own_data_dir = TRUE;
                itk_browser_set_data_dir(self, dir);
        }
        if (g_mkdir_with_parents(self->profile_dir, 0700) < 0 ||
            g_mkdir_with_parents(self->download_root, 0700) < 0) {
                int saved = errno;
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                            "cannot create the browser's folder %s: %s", self->data_dir,
                            g_strerror(saved));
                return FALSE;
        }
        argv = itk_browser_argv(self, error);
        if (argv == NULL)
                return FALSE;
        process = itk_browser_spawn((const char *const *)argv, &to_browser, &from_browser, error);
        if (process == NULL)
                return FALSE;
        self->n_starts++;
        self->process = g_steal_pointer(&process);
        self->pid = (GPid)g_ascii_strtoll(g_subprocess_get_identifier(self->process), NULL, 10);
        self->generation = g_cancellable_new();
        self->cdp = itk_cdp_new(from_browser, to_browser);
        itk_cdp_set_closed_func(self->cdp, itk_browser_cdp_closed_cb, self);
        self->state = BROWSER_STARTING;
        exit_data = g_new0(ExitData, 1);
        exit_data->browser = self;
        exit_data->generation = g_object_ref(self->generation);
        g_subprocess_wait_async(self->process, NULL, itk_browser_exited_cb, exit_data);
        itk_cdp_call_async(self->cdp, NULL, "Browser.getVersion", NULL, self->generation,
                           itk_browser_version_cb, self);
        return TRUE;
}

void
itk_browser_stop(ItkBrowser *self)
{
        itk_browser_lost(self, "the browser was stopped");
}

void
itk_browser_free(ItkBrowser *self)
{
        if (self == NULL)
                return;
        itk_browser_stop(self);
        g_hash_table_unref(self->pages);
        if (self->own_data_dir && self->data_dir != NULL) {
                /* Only our own temporary folder, never a configured one. */
                const char *argv[] = { "rm", "-rf", "--", self->data_dir, NULL };

                (void)g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH,
                                   itk_priority_child_setup, NULL, NULL, NULL, NULL, NULL);
        }
        g_free(self->binary);
        g_free(self->data_dir);
        g_free(self->profile_dir);
        g_free(self->download_root);
        g_free(self->agent_source);
        if (self == default_browser)
                default_browser = NULL;
        g_free(self);
}

/* --- idle exit -------------------------------------------------------------------- */

static gboolean
itk_browser_idle_cb(gpointer user_data)
{
        ItkBrowser *self = user_data;

        self->idle_id = 0;
        itk_browser_lost(self, "the browser exited after being idle");
        return G_SOURCE_REMOVE;
}

static void
itk_browser_update_idle(ItkBrowser *self)
{
        gboolean idle = self->state != BROWSER_STOPPED && g_hash_table_size(self->pages) == 0 &&
                        g_queue_is_empty(&self->waiters) && self->making == 0 &&
                        self->refill_id == 0;

        if (!idle) {
                g_clear_handle_id(&self->idle_id, g_source_remove);
        } else if (self->idle_id == 0) {
                self->idle_id =
                        g_timeout_add_seconds(self->idle_timeout, itk_browser_idle_cb, self);
        }
}

/* --- pages ------------------------------------------------------------------------------ */

static void world_wait_detach(GTask *task);

static void
itk_browser_page_fail_world_waiters(ItkBrowserPage *page, const char *message)
{
        while (!g_queue_is_empty(&page->world_waiters)) {
                GTask *task = g_queue_peek_head(&page->world_waiters);
                world_wait_detach(task);
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_FAILED, "%s", message);
                g_object_unref(task);
        }
}

static void
itk_browser_page_free(ItkBrowserPage *page)
{
        if (page == NULL)
                return;
        itk_browser_page_fail_world_waiters(page, "the browser page was closed");
        if (page->cdp != NULL) {
                if (page->handler_id != 0)
                        itk_cdp_remove_handler(page->cdp, page->handler_id);
                if (page->context_id != NULL && !itk_cdp_is_closed(page->cdp)) {
                        JsonObject *params = json_object_new();
                        json_object_set_string_member(params, "browserContextId", page->context_id);
                        itk_cdp_send(page->cdp, NULL, "Target.disposeBrowserContext", params);
                }
                itk_cdp_unref(page->cdp);
        }
        g_free(page->context_id);
        g_free(page->target_id);
        g_free(page->session_id);
        g_free(page->dead);
        g_free(page->download_dir);
        if (page->download_destroy != NULL)
                page->download_destroy(page->download_data);
        g_clear_pointer(&page->downloads, g_hash_table_unref);
        g_free(page);
}

void
itk_browser_page_close(ItkBrowserPage *page)
{
        ItkBrowser *self;

        if (page == NULL)
                return;
        self = page->browser;
        if (self != NULL)
                g_hash_table_remove(self->pages, page);
        itk_browser_page_free(page);
        if (self != NULL)
                itk_browser_update_idle(self);
}

ItkCdp *
itk_browser_page_get_cdp(ItkBrowserPage *page)
{
        return page->cdp;
}

const char *
itk_browser_page_get_session_id(ItkBrowserPage *page)
{
        return page->session_id;
}

const char *
itk_browser_page_get_frame_id(ItkBrowserPage *page)
{
        return page->target_id; /* the main frame's id is its target's */
}

gboolean
itk_browser_page_check(ItkBrowserPage *page, GError **error)
{
        if (page->dead == NULL)
                return TRUE;
        g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED, "%s", page->dead);
        return FALSE;
}

void
itk_browser_page_set_download_dir(ItkBrowserPage *page, const char *dir)
{
        g_free(page->download_dir);
        page->download_dir = g_strdup(dir);
}

void
itk_browser_page_set_download_func(ItkBrowserPage *page, ItkBrowserDownloadFunc func, gpointer data,
                                   GDestroyNotify destroy)
{
        if (page->download_destroy != NULL)
                page->download_destroy(page->download_data);
        page->download_func = func;
        page->download_data = data;
        page->download_destroy = destroy;
}

static void
itk_browser_page_set_world(ItkBrowserPage *page, gint64 id)
{
        page->world_id = id;
        while (id != 0 && !g_queue_is_empty(&page->world_waiters)) {
                GTask *task = g_queue_peek_head(&page->world_waiters);
                world_wait_detach(task);
                g_task_return_int(task, id);
                g_object_unref(task);
        }
}

void
itk_browser_page_forget_world(ItkBrowserPage *page, gint64 id)
{
        if (page->world_id == id)
                page->world_id = 0;
}

typedef struct {
        ItkBrowserPage *page; /* NULL once it left the page's queue */
        GCancellable *cancellable;
        gulong cancel_id;
} WorldWait;

static void
world_wait_free(WorldWait *wait)
{
        g_clear_object(&wait->cancellable);
        g_free(wait);
}

/* Takes @task out of its page's queue and returns it (transfer of the
 * queue's reference to the caller). */
static void
world_wait_detach(GTask *task)
{
        WorldWait *wait = g_task_get_task_data(task);

        if (wait->page != NULL)
                g_queue_remove(&wait->page->world_waiters, task);
        wait->page = NULL;
        if (wait->cancel_id != 0)
                g_cancellable_disconnect(wait->cancellable, wait->cancel_id);
        wait->cancel_id = 0;
}

static gboolean
world_cancelled_idle_cb(gpointer user_data)
{
        GTask *task = user_data;
        WorldWait *wait = g_task_get_task_data(task);

        if (wait->page != NULL) {
                world_wait_detach(task);
                g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
                g_object_unref(task); /* the queue's */
        }
        return G_SOURCE_REMOVE;
}

static void
world_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
        (void)cancellable;
        g_idle_add_full(G_PRIORITY_HIGH, world_cancelled_idle_cb, g_object_ref(user_data),
                        g_object_unref);
}

void
itk_browser_page_get_world_async(ItkBrowserPage *page, GCancellable *cancellable,
                                 GAsyncReadyCallback callback, gpointer user_data)
{
        g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
        g_autoptr(GError) error = NULL;
        WorldWait *wait;

        g_task_set_check_cancellable(task, FALSE);
        if (!itk_browser_page_check(page, &error)) {
                g_task_return_error(task, g_steal_pointer(&error));
                return;
        }
        if (page->world_id != 0) {
                g_task_return_int(task, page->world_id);
                return;
        }
        if (g_task_return_error_if_cancelled(task))
                return;
        wait = g_new0(WorldWait, 1);
        wait->page = page;
        g_task_set_task_data(task, wait, (GDestroyNotify)world_wait_free);
        g_queue_push_tail(&page->world_waiters, g_object_ref(task));
        if (cancellable != NULL) {
                wait->cancellable = g_object_ref(cancellable);
                wait->cancel_id = g_cancellable_connect(cancellable, G_CALLBACK(world_cancelled_cb),
                                                        task, NULL);
        }
}

gint64
itk_browser_page_get_world_finish(ItkBrowserPage *page, GAsyncResult *result, GError **error)
{
        (void)page;
        return g_task_propagate_int(G_TASK(result), error);
}

/* --- making pages ------------------------------------------------------------------- */

static const char *
member_string(JsonObject *object, const char *name)
{
        JsonNode *node = object != NULL ? json_object_get_member(object, name) : NULL;

        return node != NULL && JSON_NODE_HOLDS_VALUE(node) &&
                               json_node_get_value_type(node) == G_TYPE_STRING
                       ? json_node_get_string(node)
                       : NULL;
}

static void
itk_browser_page_mark_dead(ItkBrowserPage *page, const char *message)
{
        if (page->dead == NULL)
                page->dead = g_strdup(message);
        itk_browser_page_fail_world_waiters(page, message);
}

static void
itk_browser_page_download(ItkBrowserPage *page, const char *method, JsonObject *params)
{
        const char *guid = member_string(params, "guid");

        if (guid == NULL)
                return;
        if (g_strcmp0(method, "Browser.downloadWillBegin") == 0) {
                const char *name = member_string(params, "suggestedFilename");
                g_autofree char *base = g_path_get_basename(name != NULL ? name : "download");
                if (page->downloads == NULL)
                        page->downloads =
                                g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
                g_hash_table_insert(page->downloads, g_strdup(guid), g_steal_pointer(&base));
        } else if (page->downloads != NULL && g_hash_table_contains(page->downloads, guid) &&
                   g_strcmp0(member_string(params, "state"), "completed") == 0 &&
                   page->browser != NULL && page->download_dir != NULL) {
                /* Chromium saved it as <guid> in its own folder (the only one it
                 * may write); the run's folder gets it under its real name. */
                const char *name = g_hash_table_lookup(page->downloads, guid);
                g_autofree char *from = g_build_filename(page->browser->download_root,
                                                         page->context_id, guid, NULL);
                g_autofree char *to = g_build_filename(
                        page->download_dir,
                        g_strcmp0(name, ".") == 0 || g_strcmp0(name, "/") == 0 ? "download" : name,
                        NULL);
                if (g_rename(from, to) < 0)
                        g_debug("cannot move the download %s to %s: %s", from, to,
                                g_strerror(errno));
                else if (page->download_func != NULL)
                        page->download_func(page->download_data, to);
                g_hash_table_remove(page->downloads, guid);
        }
}

static void
itk_browser_page_event_cb(ItkCdp *cdp, const char *session_id, const char *method,
                          JsonObject *params, gpointer user_data)
{
        ItkBrowserPage *page = user_data;

        (void)cdp;
        if (session_id == NULL) {
                /* Browser-level events about this page. */
                if (g_strcmp0(method, "Target.detachedFromTarget") == 0 &&
                    g_strcmp0(member_string(params, "sessionId"), page->session_id) == 0)
                        itk_browser_page_mark_dead(page, "the browser page was closed");
                else if (g_str_has_prefix(method, "Browser.download"))
                        itk_browser_page_download(page, method, params);
                return;
        }
        if (g_strcmp0(session_id, page->session_id) != 0)
                return;
        if (g_strcmp0(method, "Runtime.executionContextCreated") == 0) {
                JsonObject *context = itk_json_object_member(params, "context");
                JsonObject *aux = context != NULL && json_object_has_member(context, "auxData")
                                          ? itk_json_object_member(context, "auxData")
                                          : NULL;
                if (g_strcmp0(member_string(context, "name"), "itk") == 0 &&
                    g_strcmp0(member_string(aux, "frameId"), page->target_id) == 0)
                        itk_browser_page_set_world(
                                page, json_object_get_int_member_with_default(context, "id", 0));
        } else if (g_strcmp0(method, "Runtime.executionContextDestroyed") == 0) {
                itk_browser_page_forget_world(page, json_object_get_int_member_with_default(
                                                            params, "executionContextId", -1));
        } else if (g_strcmp0(method, "Runtime.executionContextsCleared") == 0) {
                page->world_id = 0;
        } else if (g_strcmp0(method, "Inspector.targetCrashed") == 0) {
                itk_browser_page_mark_dead(page, "the browser page crashed");
        }
}

typedef struct {
        ItkBrowser *browser;
        GCancellable *generation;
        ItkBrowserPage *page;
        guint outstanding;
        char *error;
} MakeOp;

static void
make_op_free(MakeOp *op)
{
        g_clear_object(&op->generation);
        g_clear_pointer(&op->page, itk_browser_page_free);
        g_free(op->error);
        g_free(op);
}

static void itk_browser_page_made(MakeOp *op);

/* FALSE when the browser this op belongs to is gone; @op is freed by the
 * last of the calls in flight (several setup calls share it). */
static gboolean
make_op_check(MakeOp *op, JsonObject *reply, GError *error)
{
        if (g_cancellable_is_cancelled(op->generation)) {
                if (op->outstanding == 0 || --op->outstanding == 0)
                        make_op_free(op);
                return FALSE;
        }
        if (reply == NULL && op->error == NULL)
                op->error = g_strdup_printf("cannot open a browser page: %s", error->message);
        return TRUE;
}

static void
make_setup_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        MakeOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) reply = itk_cdp_call_finish(NULL, result, &error);

        (void)source;
        if (!make_op_check(op, reply, error))
                return;
        if (--op->outstanding == 0)
                itk_browser_page_made(op);
}

static void
make_world_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        MakeOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) reply = itk_cdp_call_finish(NULL, result, &error);
        JsonObject *params;

        (void)source;
        if (!make_op_check(op, reply, error))
                return;
        if (reply != NULL && op->browser->agent_source != NULL) {
                gint64 id = json_object_get_int_member_with_default(reply, "executionContextId", 0);
                params = json_object_new();
                json_object_set_string_member(params, "expression", op->browser->agent_source);
                json_object_set_int_member(params, "contextId", id);
                op->outstanding++;
                itk_cdp_call_async(op->page->cdp, op->page->session_id, "Runtime.evaluate", params,
                                   op->generation, make_setup_cb, op);
        }
        if (--op->outstanding == 0)
                itk_browser_page_made(op);
}

static void
make_call(MakeOp *op, const char *method, JsonObject *params, GAsyncReadyCallback callback)
{
        op->outstanding++;
        itk_cdp_call_async(op->page->cdp, op->page->session_id, method, params, op->generation,
                           callback != NULL ? callback : make_setup_cb, op);
}

static void
make_attached_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        MakeOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) reply = itk_cdp_call_finish(NULL, result, &error);
        ItkBrowserPage *page = op->page;
        JsonObject *params;

        (void)source;
        if (!make_op_check(op, reply, error))
                return;
        if (reply == NULL) {
                itk_browser_page_made(op);
                return;
        }
        page->session_id = g_strdup(member_string(reply, "sessionId"));
        page->handler_id = itk_cdp_add_handler(page->cdp, NULL, itk_browser_page_event_cb, page);

        /* All at once: Chromium answers them in order, one round trip. */
        op->outstanding++; /* held until every call is sent */
        make_call(op, "Page.enable", NULL, NULL);
        make_call(op, "Runtime.enable", NULL, NULL);
        params = json_object_new();
        json_object_set_boolean_member(params, "enabled", TRUE);
        make_call(op, "Page.setLifecycleEventsEnabled", params, NULL);
        params = json_object_new();
        json_object_set_boolean_member(params, "ignore", TRUE);
        make_call(op, "Security.setIgnoreCertificateErrors", params, NULL);
        params = json_object_new();
        json_object_set_int_member(params, "width", 1920);
        json_object_set_int_member(params, "height", 1080);
        json_object_set_int_member(params, "deviceScaleFactor", 1);
        json_object_set_boolean_member(params, "mobile", FALSE);
        make_call(op, "Emulation.setDeviceMetricsOverride", params, NULL);
        if (op->browser->agent_source != NULL) {
                params = json_object_new();
                json_object_set_string_member(params, "source", op->browser->agent_source);
                json_object_set_string_member(params, "worldName", "itk");
                make_call(op, "Page.addScriptToEvaluateOnNewDocument", params, NULL);
                params = json_object_new();
                json_object_set_string_member(params, "frameId", page->target_id);
                json_object_set_string_member(params, "worldName", "itk");
                make_call(op, "Page.createIsolatedWorld", params, make_world_cb);
        }
        if (--op->outstanding == 0)
                itk_browser_page_made(op);
}

static void
make_target_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        MakeOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) reply = itk_cdp_call_finish(NULL, result, &error);
        JsonObject *params;

        (void)source;
        if (!make_op_check(op, reply, error))
                return;
        if (reply == NULL) {
                itk_browser_page_made(op);
                return;
        }
        op->page->target_id = g_strdup(member_string(reply, "targetId"));
        params = json_object_new();
        json_object_set_string_member(params, "targetId", op->page->target_id);
        json_object_set_boolean_member(params, "flatten", TRUE);
        itk_cdp_call_async(op->page->cdp, NULL, "Target.attachToTarget", params, op->generation,
                           make_attached_cb, op);
}

static void
make_context_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        MakeOp *op = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) reply = itk_cdp_call_finish(NULL, result, &error);
        g_autofree char *downloads = NULL;
        JsonObject *params;

        (void)source;
        if (!make_op_check(op, reply, error))
                return;
        if (reply == NULL) {
                itk_browser_page_made(op);
                return;
        }
        op->page->context_id = g_strdup(member_string(reply, "browserContextId"));
        /* Downloads: saved as their guid in this context's folder, moved to
         * the run's folder when complete. */
        downloads = g_build_filename(op->browser->download_root, op->page->context_id, NULL);
        g_mkdir_with_parents(downloads, 0700);
        params = json_object_new();
        json_object_set_string_member(params, "behavior", "allowAndName");
        json_object_set_string_member(params, "browserContextId", op->page->context_id);
        json_object_set_string_member(params, "downloadPath", downloads);
        json_object_set_boolean_member(params, "eventsEnabled", TRUE);
        itk_cdp_send(op->page->cdp, NULL, "Browser.setDownloadBehavior", params);
        params = json_object_new();
        json_object_set_string_member(params, "url", "about:blank");
        json_object_set_string_member(params, "browserContextId", op->page->context_id);
        itk_cdp_call_async(op->page->cdp, NULL, "Target.createTarget", params, op->generation,
                           make_target_cb, op);
}

static void
itk_browser_make_page(ItkBrowser *self)
{
        MakeOp *op = g_new0(MakeOp, 1);

        op->browser = self;
        op->generation = g_object_ref(self->generation);
        op->page = g_new0(ItkBrowserPage, 1);
        op->page->browser = self;
        op->page->cdp = itk_cdp_ref(self->cdp);
        g_queue_init(&op->page->world_waiters);
        self->making++;
        itk_cdp_call_async(self->cdp, NULL, "Target.createBrowserContext", NULL, op->generation,
                           make_context_cb, op);
}

static void new_page_return(ItkBrowser *self, GTask *task, ItkBrowserPage *page);

static void
itk_browser_page_made(MakeOp *op)
{
        ItkBrowser *self = op->browser;
        ItkBrowserPage *page = g_steal_pointer(&op->page);
        g_autofree char *error = g_steal_pointer(&op->error);

        make_op_free(op);
        self->making--;
        if (error != NULL) {
                itk_browser_page_free(page);
                /* Someone waiting gets the reason; a failed spare is just dropped. */
                if (!g_queue_is_empty(&self->waiters)) {
                        GTask *task = g_queue_peek_head(&self->waiters);
                        new_page_return(self, task, NULL);
                        g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_FAILED, "%s", error);
                        g_object_unref(task);
                }
                itk_browser_update_idle(self);
                return;
        }
        if (self->spare == NULL)
                self->spare = page;
        else
                itk_browser_page_free(page);
        itk_browser_pump(self);
}

/* --- handing pages out ---------------------------------------------------------- */

#define SPARE_REFILL_DELAY_MS 300

static gboolean
itk_browser_refill_cb(gpointer user_data)
{
        ItkBrowser *self = user_data;

        self->refill_id = 0;
        itk_browser_pump(self);
        return G_SOURCE_REMOVE;
}

typedef struct {
        ItkBrowser *browser; /* NULL once out of the queue */
        GCancellable *cancellable;
        gulong cancel_id;
} PageWait;

static void
page_wait_free(PageWait *wait)
{
        g_clear_object(&wait->cancellable);
        g_free(wait);
}

/* Takes @task out of the queue; the caller returns it and drops the
 * queue's reference. @page, when given, becomes the task's result. */
static void
new_page_return(ItkBrowser *self, GTask *task, ItkBrowserPage *page)
{
        PageWait *wait = g_task_get_task_data(task);

        g_queue_remove(&self->waiters, task);
        wait->browser = NULL;
        if (wait->cancel_id != 0)
                g_cancellable_disconnect(wait->cancellable, wait->cancel_id);
        wait->cancel_id = 0;
        if (page != NULL) {
                if (self->refill_id == 0)
                        self->refill_id =
                                g_timeout_add(SPARE_REFILL_DELAY_MS, itk_browser_refill_cb, self);
                g_hash_table_add(self->pages, page);
                g_task_return_pointer(task, page, NULL);
                g_object_unref(task);
        }
}

static void
itk_browser_pump(ItkBrowser *self)
{
        g_autoptr(GError) error = NULL;
        guint needed;

        if (self->state == BROWSER_STOPPED) {
                if (!g_queue_is_empty(&self->waiters) && !itk_browser_start(self, &error))
                        itk_browser_fail_waiters(self, error->message);
                return;
        }
        if (self->state == BROWSER_STARTING)
                return;
        while (self->spare != NULL && !g_queue_is_empty(&self->waiters)) {
                ItkBrowserPage *page = g_steal_pointer(&self->spare);
                new_page_return(self, g_queue_peek_head(&self->waiters), page);
        }
        /* The pages asked for first; the spare only when nobody waits and a
         * run's first step is not starting right now (two cores). */
        needed = g_queue_get_length(&self->waiters);
        if (needed == 0 && self->spare == NULL && self->refill_id == 0)
                needed = 1;
        while (self->making < needed)
                itk_browser_make_page(self);
        itk_browser_update_idle(self);
}

static gboolean
page_wait_cancelled_idle_cb(gpointer user_data)
{
        GTask *task = user_data;
        PageWait *wait = g_task_get_task_data(task);
        ItkBrowser *self = wait->browser;

        if (self != NULL) {
                new_page_return(self, task, NULL);
                g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
                g_object_unref(task);
                itk_browser_update_idle(self);
        }
        return G_SOURCE_REMOVE;
}

static void
page_wait_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
        (void)cancellable;
        g_idle_add_full(G_PRIORITY_HIGH, page_wait_cancelled_idle_cb, g_object_ref(user_data),
                        g_object_unref);
}

void
itk_browser_new_page_async(ItkBrowser *self, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data)
{
        GTask *task = g_task_new(NULL, cancellable, callback, user_data);
        PageWait *wait = g_new0(PageWait, 1);
        g_autoptr(GError) error = NULL;

        g_task_set_check_cancellable(task, FALSE);
        g_task_set_task_data(task, wait, (GDestroyNotify)page_wait_free);
        if (!itk_browser_check_available(self, &error)) {
                g_task_return_error(task, g_steal_pointer(&error));
                g_object_unref(task);
                return;
        }
        wait->browser = self;
        g_queue_push_tail(&self->waiters, task);
        if (cancellable != NULL) {
                wait->cancellable = g_object_ref(cancellable);
                wait->cancel_id = g_cancellable_connect(
                        cancellable, G_CALLBACK(page_wait_cancelled_cb), task, NULL);
        }
        itk_browser_pump(self);
}

ItkBrowserPage *
itk_browser_new_page_finish(ItkBrowser *self, GAsyncResult *result, GError **error)
{
        (void)self;
        return g_task_propagate_pointer(G_TASK(result), error);
}
