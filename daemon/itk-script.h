/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "itk-sandbox.h"

G_BEGIN_DECLS

/* ItkScript runs one subprocess asynchronously, for utility.python and
 * utility.shell: its own process group, stdin from a buffer or /dev/null,
 * stdout and stderr read line by line as they arrive (no threads), an optional
 * side channel on fd 3, a bounded capture of stdout, and the last lines of
 * stderr for the failure message.
 *
 * The run completes when the process has exited and every pipe reached EOF,
 * so no line is delivered after completion. Output is read a pipe-read at a
 * time, at most a few hundred lines per main-loop iteration (each such batch
 * bracketed by the batch func, so a log can store it in one transaction);
 * while lines wait, the pipe is not read, so a chatty script blocks on its
 * full pipe rather than the daemon buffering without bound.
 *
 * Cancelling (or finalizing the script while it runs) delivers the lines
 * already read, sends SIGKILL to the whole process group (for a sandboxed
 * run, itk_script_set_sandbox(), also to the init of its PID namespace, which
 * takes every process inside with it), closes the pipes and completes with
 * G_IO_ERROR_CANCELLED at once: the script can do nothing more. Reaping
 * follows without holding the run, and nothing the script wrote after the
 * kill is delivered. */

#define ITK_TYPE_SCRIPT (itk_script_get_type())
G_DECLARE_FINAL_TYPE(ItkScript, itk_script, ITK, SCRIPT, GObject)

/* Lines longer than this are cut, and ITK_SCRIPT_LINE_TRUNCATED appended. */
#define ITK_SCRIPT_MAX_LINE_LENGTH (4 * 1024)
/* Side-channel lines carry JSON values, so they may be longer. */
#define ITK_SCRIPT_MAX_SIDE_LINE_LENGTH (1024 * 1024)
/* Head of stdout kept for itk_script_get_output(). */
#define ITK_SCRIPT_MAX_OUTPUT (1024 * 1024)
/* Lines of stderr kept for itk_script_dup_stderr_tail(). */
#define ITK_SCRIPT_STDERR_TAIL_LINES 20

#define ITK_SCRIPT_LINE_TRUNCATED " [line truncated]"
/* A batch of delivered lines (see itk_script_set_batch_func()) ends once it
 * took this long, checked every ITK_SCRIPT_BATCH_CHECK_LINES lines: the rest
 * waits for the next main-loop iteration, after another run's Cancel. */
#define ITK_SCRIPT_BATCH_BUDGET_USEC 500
#define ITK_SCRIPT_BATCH_CHECK_LINES 8
#define ITK_SCRIPT_OUTPUT_TRUNCATED "\n[output truncated]"

typedef enum {
        ITK_SCRIPT_STREAM_STDOUT,
        ITK_SCRIPT_STREAM_STDERR,
        ITK_SCRIPT_STREAM_SIDE_CHANNEL,
} ItkScriptStream;

/* One line without its newline (nor a trailing "\r"), valid UTF-8 (invalid
 * bytes replaced). @truncated: the line was longer than the limit; @line is
 * its head followed by ITK_SCRIPT_LINE_TRUNCATED. */
typedef void (*ItkScriptLineFunc)(ItkScript *script, ItkScriptStream stream, const char *line,
                                  gboolean truncated, gpointer user_data);

/* Called with @begin TRUE before the lines of one batch (one read, or part
 * of it) and FALSE after them; nothing else is delivered in between. */
typedef void (*ItkScriptBatchFunc)(ItkScript *script, gboolean begin, gpointer user_data);

/* @argv[0] is looked up in PATH. */
ItkScript *itk_script_new(const char *const *argv);

/* Configuration, before itk_script_run_async(). */
void itk_script_set_cwd(ItkScript *self, const char *cwd);
/* The environment is inherited; this adds or overrides one entry. */
void itk_script_setenv(ItkScript *self, const char *name, const char *value);
/* Written to the child's stdin, which is then closed; without it stdin is
 * /dev/null. */
void itk_script_set_stdin(ItkScript *self, GBytes *input);
/* stdout and stderr lines; called from the main context as they arrive. */
void itk_script_set_line_func(ItkScript *self, ItkScriptLineFunc func, gpointer user_data);
/* Opens the side channel: a pipe the child finds as fd 3, whose lines go to
 * @func (stream ITK_SCRIPT_STREAM_SIDE_CHANNEL). */
void itk_script_set_side_channel_func(ItkScript *self, ItkScriptLineFunc func, gpointer user_data);
/* Brackets each batch of lines (stdout, stderr and side channel alike). */
void itk_script_set_batch_func(ItkScript *self, ItkScriptBatchFunc func, gpointer user_data);
void itk_script_set_max_line_length(ItkScript *self, gsize max);
/* Runs the process inside a copy of @sandbox (NULL: unconfined), with the
 * cwd as its --chdir. The pid is then bubblewrap's, leading the group;
 * killing it ends every process inside (its own PID namespace). Starting
 * fails with the sandbox's error when it cannot confine. */
void itk_script_set_sandbox(ItkScript *self, const ItkSandbox *sandbox);

/* Runs the process once. Completes with TRUE whatever the exit status (see
 * the getters), or FALSE with the spawn error or G_IO_ERROR_CANCELLED. The
 * run does not keep @self alive: the callback's source object is NULL, and
 * finish accepts a NULL @self for a script finalized while running. */
void itk_script_run_async(ItkScript *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data);
gboolean itk_script_run_finish(ItkScript *self, GAsyncResult *result, GError **error);

/* The child's pid (also its process group), 0 before it was started. */
GPid itk_script_get_pid(ItkScript *self);
/* After completion: the exit status, or -1 when killed by a signal. */
int itk_script_get_exit_status(ItkScript *self);
/* After completion: the signal that killed the process, or 0. */
int itk_script_get_term_signal(ItkScript *self);
/* The head of stdout (valid UTF-8), ending with ITK_SCRIPT_OUTPUT_TRUNCATED
 * when more than ITK_SCRIPT_MAX_OUTPUT bytes were written. */
const char *itk_script_get_output(ItkScript *self);
gboolean itk_script_get_output_truncated(ItkScript *self);
/* The last ITK_SCRIPT_STDERR_TAIL_LINES lines of stderr joined with "\n",
 * or NULL when nothing was written to stderr. */
char *itk_script_dup_stderr_tail(ItkScript *self);

G_END_DECLS
