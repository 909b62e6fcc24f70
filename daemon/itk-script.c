/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib-unix.h>
#include <gio/gunixoutputstream.h>

#include "itk-priority.h"
#include "itk-script.h"

/* One read from a pipe; also the most a run keeps read but not yet handled
 * per stream, which a cancel still delivers. */
#define READ_CHUNK (4 * 1024)
/* Lines handled per main-loop iteration and stream: a chatty script gets
 * this much, then the other sources of the loop (another run's Cancel) get
 * their turn. While lines wait, the pipe is not read: the script blocks on a
 * full pipe instead of the daemon buffering without bound. */
#define LINES_PER_DISPATCH 128
/* ...and at most about ITK_SCRIPT_BATCH_BUDGET_USEC: storing a line costs
 * more on a slow disk or a busy machine, and a Cancel of another run waits
 * for the batch in progress. */
/* Below everything else of the loop, idles included (the engine moves from
 * step to step in idles): a bus message, a timer or another run's next step
 * goes first, and output is read when nothing else is ready. */
#define READ_PRIORITY G_PRIORITY_LOW
#define N_READERS 3

typedef struct _ItkScriptRun ItkScriptRun;

typedef struct {
        ItkScriptRun *run; /* borrowed: the run owns its readers */
        ItkScriptStream stream;
        int fd;         /* the parent's end, non-blocking; -1 once closed */
        GSource *watch; /* while open */
        gpointer fd_tag;
        GString *line;
        gsize max_line;
        gboolean overflow;   /* dropping the rest of an over-long line */
        gsize pending_start; /* read but not yet handled: buffer[start, start+len) */
        gsize pending_len;
        guint8 buffer[READ_CHUNK];
} ItkScriptReader;

/* The state of one run, shared by the pending operations, so that the
 * ItkScript itself can be finalized while the process runs (then it is
 * killed and only reaped). */
struct _ItkScriptRun {
        ItkScript *script; /* borrowed; NULL once the script was finalized */
        GTask *task;       /* until returned */
        GPid pid;
        GCancellable *cancellable;
        gulong cancel_id;
        GCancellable *io_cancellable; /* stops the stdin writer */
        ItkScriptReader *readers[N_READERS];
        guint open_readers;
        GOutputStream *stdin_stream;
        gboolean exited;
        gboolean killed;
        gboolean returned;
        gboolean contained; /* under bubblewrap: pid is bwrap, its child the namespace's init */
        int exit_status;
        int term_signal;
        GString *output;
        gboolean output_truncated;
        GQueue stderr_tail; /* char*, the last lines */
        ItkScriptLineFunc line_func;
        gpointer line_data;
        ItkScriptLineFunc side_func;
        gpointer side_data;
        ItkScriptBatchFunc batch_func;
        gpointer batch_data;
};

struct _ItkScript {
        GObject parent_instance;
        GStrv argv;
        char *cwd;
        GPtrArray *env; /* name, value, name, value, ... */
        GBytes *input;
        gsize max_line_length;
        ItkScriptLineFunc line_func;
        gpointer line_data;
        ItkScriptLineFunc side_func;
        gpointer side_data;
        ItkScriptBatchFunc batch_func;
        gpointer batch_data;
        ItkScriptRun *run;
        char *output; /* valid UTF-8 copy of run->output, made on demand */
        ItkSandbox *sandbox;
};

G_DEFINE_TYPE(ItkScript, itk_script, G_TYPE_OBJECT)

/* --- run state ------------------------------------------------------------- */

static void
itk_script_reader_free(ItkScriptReader *reader)
{
        /* Closed before: the open watch holds a reference to the run. */
        g_assert(reader->watch == NULL);
        if (reader->fd >= 0)
                close(reader->fd);
        g_string_free(reader->line, TRUE);
        g_free(reader);
}

static void
itk_script_run_clear(ItkScriptRun *run)
{
        g_assert(run->task == NULL);
        for (guint i = 0; i < N_READERS; i++)
                g_clear_pointer(&run->readers[i], itk_script_reader_free);
        g_clear_object(&run->cancellable);
        g_clear_object(&run->io_cancellable);
        g_clear_object(&run->stdin_stream);
        g_string_free(run->output, TRUE);
        g_queue_clear_full(&run->stderr_tail, g_free);
}

static ItkScriptRun *
itk_script_run_ref(ItkScriptRun *run)
{
        return g_rc_box_acquire(run);
}

static void
itk_script_run_unref(ItkScriptRun *run)
{
        g_rc_box_release_full(run, (GDestroyNotify)itk_script_run_clear);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkScriptRun, itk_script_run_unref)

static void
itk_script_run_return(ItkScriptRun *run, GError *error)
{
        g_autoptr(GTask) task = g_steal_pointer(&run->task);

        g_assert(!run->returned);
        run->returned = TRUE;
        /* Not from inside the cancelled handler: every return happens from a
         * callback or an idle, so disconnecting cannot deadlock. */
        if (run->cancel_id != 0)
                g_cancellable_disconnect(run->cancellable, run->cancel_id);
        run->cancel_id = 0;
        g_cancellable_cancel(run->io_cancellable);
        if (error != NULL)
                g_task_return_error(task, error);
        else
                g_task_return_boolean(task, TRUE);
}

static gboolean
itk_script_run_return_cancelled_cb(gpointer user_data)
{
        ItkScriptRun *run = user_data;

        if (!run->returned)
                itk_script_run_return(run, g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                               "the process was cancelled"));
        return G_SOURCE_REMOVE;
}

/* bwrap's child is PID 1 of the script's namespace, in a session of its own
 * (--new-session), so the group kill misses it: it dies of bwrap's death
 * (--die-with-parent), and the kernel then kills the rest of the namespace.
 * Killing it directly skips that step: once it is sent, nothing of the
 * script can run on, and the kernel empties the namespace (that init is
 * reaped by whoever inherits it). Called before bwrap is killed, so that its
 * child cannot have been reaped and its pid reused. */
static void
itk_script_run_kill_namespace(ItkScriptRun *run)
{
        g_autofree char *path =
                g_strdup_printf("/proc/%d/task/%d/children", (int)run->pid, (int)run->pid);
        g_autofree char *children = NULL;
        gint64 init;
        int pidfd;

        /* Not there (no CONFIG_PROC_CHILDREN, or bwrap has not forked yet):
         * the kernel still empties the namespace once bwrap died. */
        if (!g_file_get_contents(path, &children, NULL, NULL))
                return;
        init = g_ascii_strtoll(children, NULL, 10);
        if (init <= 0 || init > G_MAXINT)
                return;
        pidfd = pidfd_open((pid_t)init, 0);
        if (pidfd < 0)
                return;
        (void)pidfd_send_signal(pidfd, SIGKILL, NULL, 0);
        close(pidfd);
}

static void
itk_script_run_batch(ItkScriptRun *run, gboolean begin)
{
        if (run->batch_func != NULL && run->script != NULL)
                run->batch_func(run->script, begin, run->batch_data);
}

static void
itk_script_run_deliver(ItkScriptRun *run, ItkScriptReader *reader)
{
        GString *line = reader->line;
        g_autofree char *text = NULL;
        gboolean truncated = reader->overflow;

        if (!truncated && line->len > 0 && line->str[line->len - 1] == '\r')
                g_string_truncate(line, line->len - 1);
        text = g_utf8_make_valid(line->str, (gssize)line->len);
        if (truncated) {
                char *marked = g_strconcat(text, ITK_SCRIPT_LINE_TRUNCATED, NULL);
                g_free(text);
                text = marked;
        }
        g_string_truncate(line, 0);
        reader->overflow = FALSE;

        if (reader->stream == ITK_SCRIPT_STREAM_STDERR) {
                g_queue_push_tail(&run->stderr_tail, g_strdup(text));
                while (run->stderr_tail.length > ITK_SCRIPT_STDERR_TAIL_LINES)
                        g_free(g_queue_pop_head(&run->stderr_tail));
        }
        if (run->returned || run->script == NULL)
                return;
        if (reader->stream == ITK_SCRIPT_STREAM_SIDE_CHANNEL) {
                if (run->side_func != NULL)
                        run->side_func(run->script, reader->stream, text, truncated,
                                       run->side_data);
        } else if (run->line_func != NULL) {
                run->line_func(run->script, reader->stream, text, truncated, run->line_data);
        }
}

/* Splits the reader's pending bytes into lines, at most @max_lines of them
 * and within the batch budget (0: all, with no budget either); what is left
 * stays pending. Stops when a line callback closed the reader (it killed
 * the run, which delivered the rest itself). */
static void
itk_script_reader_handle(ItkScriptReader *reader, guint max_lines)
{
        gint64 deadline =
                max_lines != 0 ? g_get_monotonic_time() + ITK_SCRIPT_BATCH_BUDGET_USEC : 0;
        guint lines = 0;

        while (reader->pending_len > 0 && (max_lines == 0 || lines < max_lines)) {
                const guint8 *data = reader->buffer + reader->pending_start;
                const guint8 *newline = memchr(data, '\n', reader->pending_len);
                gsize segment = newline != NULL ? (gsize)(newline - data) : reader->pending_len;

                if (!reader->overflow) {
                        gsize room = reader->max_line - reader->line->len;
                        g_string_append_len(reader->line, (const char *)data,
                                            (gssize)MIN(room, segment));
                        reader->overflow = segment > room;
                }
                if (newline == NULL) {
                        reader->pending_len = 0;
                        break;
                }
                reader->pending_start += segment + 1;
                reader->pending_len -= segment + 1;
                lines++;
                itk_script_run_deliver(reader->run, reader);
                if (reader->watch == NULL && max_lines != 0)
                        break;
                if (deadline != 0 && lines % ITK_SCRIPT_BATCH_CHECK_LINES == 0 &&
                    g_get_monotonic_time() >= deadline)
                        break;
        }
}

/* Stops reading: closes the parent's end (a killed writer is gone, and one
 * that escaped gets EPIPE instead of holding a descriptor of the daemon). */
static void
itk_script_reader_close(ItkScriptReader *reader)
{
        GSource *watch = g_steal_pointer(&reader->watch);

        reader->pending_len = 0;
        if (reader->fd >= 0) {
                close(reader->fd);
                reader->fd = -1;
        }
        if (watch != NULL) {
                reader->run->open_readers--;
                /* Its reference to the run goes after the current dispatch. */
                g_source_destroy(watch);
                g_source_unref(watch);
        }
}

/* Kills every process of the script and stops delivering lines. What was
 * already read is delivered first (one batch): the lines the script wrote
 * before it was killed. The run returns G_IO_ERROR_CANCELLED at once (from
 * an idle, never inside the cancelled handler): SIGKILL has been sent to
 * everything it owns, so it can do nothing more. Reaping follows, by the
 * child watch, without holding the run. Safe to call from a
 * GCancellable::cancelled handler. */
static void
itk_script_run_kill(ItkScriptRun *run)
{
        gboolean batch = FALSE;

        if (run->killed || run->returned)
                return;
        run->killed = TRUE;
        if (run->pid > 0) {
                if (run->contained && !run->exited)
                        itk_script_run_kill_namespace(run);
                /* The group outlives its leader while members remain (they may
                 * hold the pipes), and the kernel does not reuse its number
                 * meanwhile. The leader is killed by pid too, in case it
                 * changed its group, but only until it was reaped. */
                (void)kill(-run->pid, SIGKILL);
                if (!run->exited)
                        (void)kill(run->pid, SIGKILL);
        }
        for (guint i = 0; i < N_READERS; i++) {
                ItkScriptReader *reader = run->readers[i];

                if (reader == NULL ||
                    (reader->pending_len == 0 && reader->line->len == 0 && !reader->overflow))
                        continue;
                if (!batch)
                        itk_script_run_batch(run, TRUE);
                batch = TRUE;
                itk_script_reader_handle(reader, 0);
                if (reader->line->len > 0 || reader->overflow)
                        itk_script_run_deliver(run, reader);
        }
        if (batch)
                itk_script_run_batch(run, FALSE);
        for (guint i = 0; i < N_READERS; i++) {
                if (run->readers[i] != NULL)
                        itk_script_reader_close(run->readers[i]);
        }
        g_cancellable_cancel(run->io_cancellable);
        g_idle_add_full(G_PRIORITY_HIGH, itk_script_run_return_cancelled_cb,
                        itk_script_run_ref(run), (GDestroyNotify)itk_script_run_unref);
}

static void
itk_script_run_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
        itk_script_run_kill(user_data);
}

static void
itk_script_run_maybe_complete(ItkScriptRun *run)
{
        if (run->returned || run->killed || !run->exited || run->open_readers > 0)
                return;
        itk_script_run_return(run, NULL);
}

/* One read per dispatch, handled LINES_PER_DISPATCH lines at a time in one
 * batch (one store transaction for the execution log); while lines remain,
 * the pipe is not polled and the watch dispatches again on the next
 * iteration, after the sources of higher priority. */
static gboolean
itk_script_reader_ready_cb(gpointer user_data)
{
        ItkScriptReader *reader = user_data;
        g_autoptr(ItkScriptRun) run = itk_script_run_ref(reader->run);

        if (reader->pending_len == 0) {
                gssize n = read(reader->fd, reader->buffer, sizeof(reader->buffer));

                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        return G_SOURCE_CONTINUE;
                if (n <= 0) {
                        /* EOF or a read error: the stream ends with its last line. */
                        if (reader->line->len > 0 || reader->overflow) {
                                itk_script_run_batch(run, TRUE);
                                itk_script_run_deliver(run, reader);
                                itk_script_run_batch(run, FALSE);
                        }
                        if (reader->watch != NULL)
                                itk_script_reader_close(reader);
                        itk_script_run_maybe_complete(run);
                        return G_SOURCE_REMOVE;
                }
                if (reader->stream == ITK_SCRIPT_STREAM_STDOUT && !run->output_truncated) {
                        gsize room = ITK_SCRIPT_MAX_OUTPUT - run->output->len;
                        g_string_append_len(run->output, (const char *)reader->buffer,
                                            (gssize)MIN(room, (gsize)n));
                        run->output_truncated = (gsize)n > room;
                }
                reader->pending_start = 0;
                reader->pending_len = (gsize)n;
        }
        itk_script_run_batch(run, TRUE);
        itk_script_reader_handle(reader, LINES_PER_DISPATCH);
        itk_script_run_batch(run, FALSE);
        /* A line callback may have killed the run, which closed the reader. */
        if (reader->watch == NULL)
                return G_SOURCE_REMOVE;
        if (reader->pending_len > 0) {
                g_source_modify_unix_fd(reader->watch, reader->fd_tag, 0);
                g_source_set_ready_time(reader->watch, 0);
        } else {
                g_source_modify_unix_fd(reader->watch, reader->fd_tag, G_IO_IN);
                g_source_set_ready_time(reader->watch, -1);
        }
        return G_SOURCE_CONTINUE;
}

static void
itk_script_reader_unref_run(gpointer user_data)
{
        ItkScriptReader *reader = user_data;

        itk_script_run_unref(reader->run);
}

static gboolean
itk_script_reader_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
        return callback(user_data);
}

/* Ready when its fd polls readable or its ready time (set while lines wait)
 * has come: GLib checks both when check is NULL. */
static GSourceFuncs itk_script_reader_funcs = {
        .dispatch = itk_script_reader_dispatch,
};

static void
itk_script_reader_start(ItkScriptReader *reader)
{
        /* Its own source, not g_unix_fd_source_new(): the dispatch switches
         * polling off while lines wait, which needs the fd's tag. */
        reader->watch = g_source_new(&itk_script_reader_funcs, sizeof(GSource));
        reader->fd_tag = g_source_add_unix_fd(reader->watch, reader->fd, G_IO_IN);
        g_source_set_callback(reader->watch, itk_script_reader_ready_cb, reader,
                              itk_script_reader_unref_run);
        itk_script_run_ref(reader->run);
        g_source_set_priority(reader->watch, READ_PRIORITY);
        g_source_set_static_name(reader->watch, "itk-script-output");
        g_source_attach(reader->watch, g_main_context_get_thread_default());
        reader->run->open_readers++;
}

static void
itk_script_run_child_exited_cb(GPid pid, int wait_status, gpointer user_data)
{
        /* The source holds a reference to the run throughout the dispatch. */
        ItkScriptRun *run = user_data;

        g_spawn_close_pid(pid);
        run->exited = TRUE;
        if (WIFSIGNALED(wait_status)) {
                run->term_signal = WTERMSIG(wait_status);
                run->exit_status = -1;
        } else {
                run->exit_status = WEXITSTATUS(wait_status);
        }
        /* A killed run returned when the kill was sent; this only reaped it. */
        if (run->killed)
                return;
        itk_script_run_maybe_complete(run);
}

static void
itk_script_run_stdin_written_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkScriptRun *run = user_data;

        /* A child that exits without reading its input is not an error of ours;
         * its exit status tells. */
        (void)g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), result, NULL, NULL);
        g_output_stream_close(G_OUTPUT_STREAM(source), NULL, NULL);
        /* The write held a reference to the run. */
        itk_script_run_unref(run);
}

/* --- child side ------------------------------------------------------------ */

/* Runs in the child between fork and exec: async-signal-safe calls only. */
static void
itk_script_child_setup(gpointer user_data)
{
        struct sigaction action = { .sa_handler = SIG_DFL };
        sigset_t none;

        /* Its own process group, so that cancelling kills its children too. */
        (void)setpgid(0, 0);
        /* Ignored signals and the blocked mask survive exec; the daemon's
         * (SIGPIPE ignored, signals blocked for signalfd) must not leak. */
        for (int sig = 1; sig < NSIG; sig++) {
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void)sigaction(sig, &action, NULL);
        }
        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        /* The daemon's scheduling boost is for its own loop, not scripts. */
        itk_priority_reset_child();
}

/* A pipe whose parent end is non-blocking; both ends close-on-exec (the
 * spawn dups the child's end into place). */
static gboolean
itk_script_open_pipe(int fds[2], gboolean parent_reads, GError **error)
{
        if (!g_unix_open_pipe(fds, FD_CLOEXEC, error))
                return FALSE;
        if (!g_unix_set_fd_nonblocking(fds[parent_reads ? 0 : 1], TRUE, error)) {
                close(fds[0]);
                close(fds[1]);
                return FALSE;
        }
        return TRUE;
}

static ItkScriptReader *
itk_script_reader_new(ItkScriptRun *run, ItkScriptStream stream, int fd, gsize max_line)
{
        ItkScriptReader *reader = g_new0(ItkScriptReader, 1);

        reader->run = run;
        reader->stream = stream;
        reader->fd = fd;
        reader->line = g_string_new(NULL);
        reader->max_line = max_line;
        return reader;
}

/* Creates the pipes: the child's ends go to @child_fds (stdin, stdout,
 * stderr, fd 3; -1 when unused), the parent's ends to @run. The parent end of
 * the first pipe takes the lowest free descriptor, so no child end is 3,
 * which the side channel's end is moved to. */
static gboolean
itk_script_setup_pipes(ItkScript *self, ItkScriptRun *run, int child_fds[4], GError **error)
{
        static const ItkScriptStream streams[N_READERS] = {
                ITK_SCRIPT_STREAM_STDOUT,
                ITK_SCRIPT_STREAM_STDERR,
                ITK_SCRIPT_STREAM_SIDE_CHANNEL,
        };

        for (guint i = 0; i < N_READERS; i++) {
                int fds[2];

                if (streams[i] == ITK_SCRIPT_STREAM_SIDE_CHANNEL && self->side_func == NULL)
                        continue;
                if (!itk_script_open_pipe(fds, TRUE, error))
                        return FALSE;
                child_fds[i + 1] = fds[1];
                run->readers[i] = itk_script_reader_new(run, streams[i], fds[0],
                                                        streams[i] == ITK_SCRIPT_STREAM_SIDE_CHANNEL
                                                                ? ITK_SCRIPT_MAX_SIDE_LINE_LENGTH
                                                                : self->max_line_length);
        }
        if (self->input != NULL) {
                int fds[2];

                if (!itk_script_open_pipe(fds, FALSE, error))
                        return FALSE;
                child_fds[0] = fds[0];
                run->stdin_stream = g_unix_output_stream_new(fds[1], TRUE);
        }
        return TRUE;
}

/* --- public ---------------------------------------------------------------- */

void
itk_script_run_async(ItkScript *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                     gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) envp = NULL;
        g_auto(GStrv) argv = NULL;
        int child_fds[4] = { -1, -1, -1, -1 };
        const int target_fd = 3;
        GSource *watch;
        ItkScriptRun *run;
        gboolean spawned = FALSE;

        g_return_if_fail(ITK_IS_SCRIPT(self));
        g_return_if_fail(self->run == NULL);

        run = g_rc_box_new0(ItkScriptRun);
        run->script = self;
        /* The run must not keep the script alive: finalizing it kills the
         * process. */
        /* Not given @cancellable: a cancelled task returns from yet another
         * idle, and a cancelled run returns as soon as its kill was sent. */
        run->task = g_task_new(NULL, NULL, callback, user_data);
        g_task_set_source_tag(run->task, itk_script_run_async);
        g_task_set_check_cancellable(run->task, FALSE);
        run->io_cancellable = g_cancellable_new();
        run->contained = self->sandbox != NULL && itk_sandbox_get_enabled(self->sandbox);
        run->output = g_string_new(NULL);
        g_queue_init(&run->stderr_tail);
        run->line_func = self->line_func;
        run->line_data = self->line_data;
        run->side_func = self->side_func;
        run->side_data = self->side_data;
        run->batch_func = self->batch_func;
        run->batch_data = self->batch_data;
        self->run = run;

        if (g_cancellable_is_cancelled(cancellable)) {
                itk_script_run_kill(run);
                return;
        }

        if (self->sandbox != NULL) {
                g_autoptr(ItkSandbox) sandbox = itk_sandbox_copy(self->sandbox);

                if (self->cwd != NULL)
                        itk_sandbox_set_cwd(sandbox, self->cwd);
                argv = itk_sandbox_wrap_argv(sandbox, (const char *const *)self->argv, &error);
                if (argv == NULL) {
                        itk_script_run_return(run, g_steal_pointer(&error));
                        return;
                }
        } else {
                argv = g_strdupv(self->argv);
        }
        /* bubblewrap passes its environment and inherited descriptors (the
         * side channel's fd 3) on to the process inside. */
        envp = g_get_environ();
        for (guint i = 0; i + 1 < self->env->len; i += 2)
                envp = g_environ_setenv(envp, self->env->pdata[i], self->env->pdata[i + 1], TRUE);
        /* Not GSubprocess: it forgets the pid once its worker thread reaped
         * the child, and a quick child leaves no group to kill. stdin is
         * /dev/null unless a pipe is given. */
        if (itk_script_setup_pipes(self, run, child_fds, &error))
                spawned = g_spawn_async_with_pipes_and_fds(
                        self->cwd, (const char *const *)argv, (const char *const *)envp,
                        G_SPAWN_SEARCH_PATH | G_SPAWN_SEARCH_PATH_FROM_ENVP |
                                G_SPAWN_DO_NOT_REAP_CHILD,
                        itk_script_child_setup, NULL, child_fds[0], child_fds[1], child_fds[2],
                        child_fds[3] >= 0 ? &child_fds[3] : NULL, &target_fd,
                        child_fds[3] >= 0 ? 1 : 0, &run->pid, NULL, NULL, NULL, &error);
        /* Closes the child's ends here, so EOF comes when the child's copies go. */
        for (guint i = 0; i < G_N_ELEMENTS(child_fds); i++) {
                if (child_fds[i] >= 0)
                        close(child_fds[i]);
        }
        if (!spawned) {
                run->pid = 0;
                itk_script_run_return(run, g_steal_pointer(&error));
                return;
        }

        /* The spawn returns once the child exec'd, so it already leads its own
         * group. Reaped by the watch; GLib does the waitpid(). */
        watch = g_child_watch_source_new(run->pid);
        g_source_set_callback(watch, (GSourceFunc)(void (*)(void))itk_script_run_child_exited_cb,
                              itk_script_run_ref(run), (GDestroyNotify)itk_script_run_unref);
        g_source_set_static_name(watch, "itk-script-child");
        g_source_attach(watch, g_main_context_get_thread_default());
        g_source_unref(watch);
        for (guint i = 0; i < N_READERS; i++) {
                if (run->readers[i] == NULL)
                        continue;
                itk_script_reader_start(run->readers[i]);
        }
        if (run->stdin_stream != NULL)
                g_output_stream_write_all_async(
                        run->stdin_stream, g_bytes_get_data(self->input, NULL),
                        g_bytes_get_size(self->input), G_PRIORITY_DEFAULT, run->io_cancellable,
                        itk_script_run_stdin_written_cb, itk_script_run_ref(run));
        if (cancellable != NULL) {
                run->cancellable = g_object_ref(cancellable);
                run->cancel_id = g_cancellable_connect(
                        cancellable, G_CALLBACK(itk_script_run_cancelled_cb),
                        itk_script_run_ref(run), (GDestroyNotify)itk_script_run_unref);
        }
}

gboolean
itk_script_run_finish(ItkScript *self, GAsyncResult *result, GError **error)
{
        g_return_val_if_fail(g_task_is_valid(result, NULL), FALSE);
        g_return_val_if_fail(g_task_get_source_tag(G_TASK(result)) == itk_script_run_async, FALSE);
        return g_task_propagate_boolean(G_TASK(result), error);
}

ItkScript *
itk_script_new(const char *const *argv)
{
        ItkScript *self;

        g_return_val_if_fail(argv != NULL && argv[0] != NULL, NULL);
        self = g_object_new(ITK_TYPE_SCRIPT, NULL);
        self->argv = g_strdupv((char **)argv);
        return self;
}

void
itk_script_set_cwd(ItkScript *self, const char *cwd)
{
        g_return_if_fail(ITK_IS_SCRIPT(self));
        g_free(self->cwd);
        self->cwd = g_strdup(cwd);
}

void
itk_script_setenv(ItkScript *self, const char *name, const char *value)
{
        g_return_if_fail(ITK_IS_SCRIPT(self));
        g_return_if_fail(name != NULL && value != NULL);
        g_ptr_array_add(self->env, g_strdup(name));
        g_ptr_array_add(self->env, g_strdup(value));
}

void
itk_script_set_stdin(ItkScript *self, GBytes *input)
{
        g_return_if_fail(ITK_IS_SCRIPT(self));
        g_clear_pointer(&self->input, g_bytes_unref);
        if (input != NULL)
                self->input = g_bytes_ref(input);
}

void
itk_script_set_line_func(ItkScript *self, ItkScriptLineFunc func, gpointer user_data)
{
        g_return_if_fail(ITK_IS_SCRIPT(self));
        self->line_func = func;
        self->line_data = user_data;
}

void
itk_script_set_side_channel_func(ItkScript *self, ItkScriptLineFunc func, gpointer user_data)
{
        g_return_if_fail(ITK_IS_SCRIPT(self));
        self->side_func = func;
        self->side_data = user_data;
}

void
itk_script_set_batch_func(ItkScript *self, ItkScriptBatchFunc func, gpointer user_data)
{
        g_return_if_fail(ITK_IS_SCRIPT(self));
        self->batch_func = func;
        self->batch_data = user_data;
}

void
itk_script_set_sandbox(ItkScript *self, const ItkSandbox *sandbox)
{
        g_return_if_fail(ITK_IS_SCRIPT(self));
        g_clear_pointer(&self->sandbox, itk_sandbox_free);
        if (sandbox != NULL)
                self->sandbox = itk_sandbox_copy(sandbox);
}

void
itk_script_set_max_line_length(ItkScript *self, gsize max)
{
        g_return_if_fail(ITK_IS_SCRIPT(self));
        g_return_if_fail(max > 0);
        self->max_line_length = max;
}

GPid
itk_script_get_pid(ItkScript *self)
{
        g_return_val_if_fail(ITK_IS_SCRIPT(self), 0);
        return self->run != NULL ? self->run->pid : 0;
}

int
itk_script_get_exit_status(ItkScript *self)
{
        g_return_val_if_fail(ITK_IS_SCRIPT(self), -1);
        return self->run != NULL && self->run->exited ? self->run->exit_status : -1;
}

int
itk_script_get_term_signal(ItkScript *self)
{
        g_return_val_if_fail(ITK_IS_SCRIPT(self), 0);
        return self->run != NULL ? self->run->term_signal : 0;
}

const char *
itk_script_get_output(ItkScript *self)
{
        g_return_val_if_fail(ITK_IS_SCRIPT(self), NULL);
        if (self->run == NULL)
                return "";
        if (self->output == NULL) {
                GString *output = self->run->output;
                self->output = g_utf8_make_valid(output->str, (gssize)output->len);
                if (self->run->output_truncated) {
                        char *marked = g_strconcat(self->output, ITK_SCRIPT_OUTPUT_TRUNCATED, NULL);
                        g_free(self->output);
                        self->output = marked;
                }
        }
        return self->output;
}

gboolean
itk_script_get_output_truncated(ItkScript *self)
{
        g_return_val_if_fail(ITK_IS_SCRIPT(self), FALSE);
        return self->run != NULL && self->run->output_truncated;
}

char *
itk_script_dup_stderr_tail(ItkScript *self)
{
        g_autoptr(GString) tail = NULL;

        g_return_val_if_fail(ITK_IS_SCRIPT(self), NULL);
        if (self->run == NULL || g_queue_is_empty(&self->run->stderr_tail))
                return NULL;
        tail = g_string_new(NULL);
        for (GList *l = self->run->stderr_tail.head; l != NULL; l = l->next) {
                if (tail->len > 0)
                        g_string_append_c(tail, '\n');
                g_string_append(tail, l->data);
        }
        return g_string_free(g_steal_pointer(&tail), FALSE);
}

static void
itk_script_finalize(GObject *object)
{
        ItkScript *self = ITK_SCRIPT(object);

        if (self->run != NULL) {
                /* Dropped while running: nobody will read its output any more. */
                self->run->script = NULL;
                itk_script_run_kill(self->run);
                itk_script_run_unref(self->run);
        }
        g_strfreev(self->argv);
        g_free(self->cwd);
        g_ptr_array_unref(self->env);
        g_clear_pointer(&self->input, g_bytes_unref);
        g_free(self->output);
        g_clear_pointer(&self->sandbox, itk_sandbox_free);
        G_OBJECT_CLASS(itk_script_parent_class)->finalize(object);
}

static void
itk_script_class_init(ItkScriptClass *klass)
{
        GObjectClass *object_class = G_OBJECT_CLASS(klass);
        struct sigaction action;

        object_class->finalize = itk_script_finalize;
        /* Writing to the stdin of a child that already exited must be an
         * EPIPE error, not a fatal signal (GSocket does the same); the child
         * setup restores the default in children. */
        if (sigaction(SIGPIPE, NULL, &action) == 0 && action.sa_handler == SIG_DFL)
                (void)signal(SIGPIPE, SIG_IGN);
}

static void
itk_script_init(ItkScript *self)
{
        self->env = g_ptr_array_new_with_free_func(g_free);
        self->max_line_length = ITK_SCRIPT_MAX_LINE_LENGTH;
}
