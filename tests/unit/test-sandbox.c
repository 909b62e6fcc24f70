/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>

#include "itk-error.h"
#include "itk-sandbox.h"
#include "itk-script.h"

#define SECRET_CREDENTIAL "credential-secret-4f1c"
#define SECRET_OTHER_RUN "other-run-secret-9a2e"

/* A daemon's state directory in miniature: a credential store and two run
 * folders. Not under /tmp: the sandbox's own /tmp would hide it anyway and
 * the tests would prove nothing about hiding the state directory. */
typedef struct {
        char *root;
        char *state;
        char *credentials;
        char *run;       /* the script's own run folder */
        char *other_run; /* another run's folder, with a secret in it */
        char *other_secret;
} Layout;

static void
layout_free(Layout *l)
{
        g_autofree char *command = g_strdup_printf("rm -rf '%s'", l->root);

        g_assert_true(g_spawn_command_line_sync(command, NULL, NULL, NULL, NULL));
        g_free(l->root);
        g_free(l->state);
        g_free(l->credentials);
        g_free(l->run);
        g_free(l->other_run);
        g_free(l->other_secret);
        g_free(l);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Layout, layout_free)

static Layout *
layout_new(void)
{
        g_autofree char *cwd = g_get_current_dir();
        const char *scratch = g_getenv("ITK_TEST_SCRATCH");
        g_autoptr(GError) error = NULL;
        Layout *l = g_new0(Layout, 1);

        l->root = g_build_filename(scratch != NULL ? scratch : cwd, "sandbox-XXXXXX", NULL);
        g_assert_nonnull(g_mkdtemp(l->root));
        l->state = g_build_filename(l->root, "state", NULL);
        l->credentials = g_build_filename(l->state, "credentials.json", NULL);
        l->run = g_build_filename(l->state, "runs", "aaaa", NULL);
        l->other_run = g_build_filename(l->state, "runs", "bbbb", NULL);
        l->other_secret = g_build_filename(l->other_run, "secret.txt", NULL);
        g_assert_cmpint(g_mkdir_with_parents(l->run, 0700), ==, 0);
        g_assert_cmpint(g_mkdir_with_parents(l->other_run, 0700), ==, 0);
        g_file_set_contents(l->credentials, SECRET_CREDENTIAL, -1, &error);
        g_assert_no_error(error);
        g_file_set_contents(l->other_secret, SECRET_OTHER_RUN, -1, &error);
        g_assert_no_error(error);
        return l;
}

/* The daemon's template for this layout, plus the run's folder. */
static ItkSandbox *
layout_sandbox(Layout *l)
{
        ItkSandbox *sandbox = itk_sandbox_new();

        itk_sandbox_hide(sandbox, l->state);
        itk_sandbox_bind(sandbox, l->run, TRUE);
        return sandbox;
}

/* Skips the test where bubblewrap cannot work (no user namespaces). */
static gboolean
require_bwrap(void)
{
        g_autoptr(ItkSandbox) sandbox = itk_sandbox_new();
        g_autoptr(GError) error = NULL;

        if (itk_sandbox_check(sandbox, &error))
                return TRUE;
        g_test_skip(error->message);
        return FALSE;
}

/* --- running a script ------------------------------------------------------ */

typedef struct {
        GMainLoop *loop;
        gboolean done;
        GError *error;
        GPtrArray *lines;
} Run;

static void
run_line_cb(ItkScript *script, ItkScriptStream stream, const char *line, gboolean truncated,
            gpointer user_data)
{
        Run *run = user_data;

        g_ptr_array_add(run->lines, g_strdup(line));
        g_main_loop_quit(run->loop);
}

static void
run_done_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Run *run = user_data;

        itk_script_run_finish(NULL, result, &run->error);
        run->done = TRUE;
        g_main_loop_quit(run->loop);
}

static gboolean
run_timeout_cb(gpointer user_data)
{
        g_error("the script did not finish in time");
        return G_SOURCE_REMOVE;
}

static gboolean
run_has_line(Run *run, const char *text)
{
        for (guint i = 0; i < run->lines->len; i++) {
                if (strstr(run->lines->pdata[i], text) != NULL)
                        return TRUE;
        }
        return FALSE;
}

static void
run_init(Run *run)
{
        run->loop = g_main_loop_new(NULL, FALSE);
        run->lines = g_ptr_array_new_with_free_func(g_free);
}

static void
run_clear(Run *run)
{
        g_main_loop_unref(run->loop);
        g_ptr_array_unref(run->lines);
        g_clear_error(&run->error);
}

/* Runs @argv in @sandbox with @cwd to its end; the exit status. */
static int
run_script(Run *run, ItkSandbox *sandbox, const char *const *argv, const char *cwd)
{
        g_autoptr(ItkScript) script = itk_script_new(argv);
        guint timeout = g_timeout_add_seconds(30, run_timeout_cb, NULL);

        itk_script_set_sandbox(script, sandbox);
        itk_script_set_cwd(script, cwd);
        itk_script_set_line_func(script, run_line_cb, run);
        itk_script_run_async(script, NULL, run_done_cb, run);
        while (!run->done)
                g_main_loop_run(run->loop);
        g_source_remove(timeout);
        g_assert_no_error(run->error);
        return itk_script_get_exit_status(script);
}

/* --- the command line ------------------------------------------------------ */

static gboolean
strv_has_sequence(char **strv, const char *a, const char *b)
{
        for (guint i = 0; strv[i] != NULL && strv[i + 1] != NULL; i++) {
                if (g_str_equal(strv[i], a) && g_str_equal(strv[i + 1], b))
                        return TRUE;
        }
        return FALSE;
}

static guint
strv_index(char **strv, const char *a, const char *b)
{
        for (guint i = 0; strv[i] != NULL && strv[i + 1] != NULL; i++) {
                if (g_str_equal(strv[i], a) && g_str_equal(strv[i + 1], b))
                        return i;
        }
        g_error("'%s %s' is missing", a, b);
        return 0;
}

static void
test_disabled_is_unchanged(void)
{
        g_autoptr(ItkSandbox) sandbox = itk_sandbox_new();
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) argv = NULL;
        const char *const command[] = { "sh", "-c", "true", NULL };

        itk_sandbox_set_enabled(sandbox, FALSE);
        /* Even with a bubblewrap that does not exist: the opt-out needs none. */
        itk_sandbox_set_bwrap(sandbox, "/nonexistent/bwrap");
        g_assert_true(itk_sandbox_check(sandbox, &error));
        argv = itk_sandbox_wrap_argv(sandbox, command, &error);
        g_assert_no_error(error);
        g_assert_true(g_strv_equal((const char *const *)argv, command));
}

static void
test_command_line(void)
{
        g_autoptr(Layout) l = layout_new();
        g_autoptr(ItkSandbox) sandbox = NULL;
        g_autoptr(ItkSandbox) copy = NULL;
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) argv = NULL;
        const char *const command[] = { "-looks-like-an-option", NULL };
        guint n;

        if (!require_bwrap())
                return;
        sandbox = layout_sandbox(l);
        itk_sandbox_setenv(sandbox, "ITK_X", "1");
        itk_sandbox_set_cwd(sandbox, l->run);
        copy = itk_sandbox_copy(sandbox);
        argv = itk_sandbox_wrap_argv(copy, command, &error);
        g_assert_no_error(error);
        n = g_strv_length(argv);
        g_assert_cmpstr(argv[0], ==, "bwrap");
        g_assert_true(g_strv_contains((const char *const *)argv, "--unshare-pid"));
        g_assert_true(g_strv_contains((const char *const *)argv, "--die-with-parent"));
        g_assert_true(g_strv_contains((const char *const *)argv, "--new-session"));
        g_assert_false(g_strv_contains((const char *const *)argv, "--unshare-net"));
        g_assert_true(strv_has_sequence(argv, "--dev", "/dev"));
        g_assert_true(strv_has_sequence(argv, "--proc", "/proc"));
        g_assert_true(strv_has_sequence(argv, "--tmpfs", "/tmp"));
        g_assert_true(strv_has_sequence(argv, "--tmpfs", "/dev/shm"));
        g_assert_true(strv_has_sequence(argv, "--chdir", l->run));
        g_assert_true(strv_has_sequence(argv, "ITK_X", "1"));
        /* The run's folder comes back after its parent was hidden. */
        g_assert_cmpuint(strv_index(argv, "--ro-bind", "/"), <,
                         strv_index(argv, "--tmpfs", l->state));
        g_assert_cmpuint(strv_index(argv, "--tmpfs", l->state), <,
                         strv_index(argv, "--bind", l->run));
        if (geteuid() == 0)
                g_assert_true(strv_has_sequence(argv, "--cap-drop", "ALL"));
        /* The command is never read as an option of bwrap's. */
        g_assert_cmpstr(argv[n - 2], ==, "--");
        g_assert_cmpstr(argv[n - 1], ==, command[0]);
}

static void
check_missing_error(const GError *error)
{
        g_assert_error(error, ITK_ERROR, ITK_ERROR_NOT_SUPPORTED);
        /* The admin learns what to install and how to opt out. */
        g_assert_nonnull(strstr(error->message, "bubblewrap"));
        g_assert_nonnull(strstr(error->message, "Enabled=false"));
}

static void
check_async_done_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        GError **error = user_data;

        g_assert_false(itk_sandbox_check_finish(result, error));
        g_assert_nonnull(*error);
}

static void
test_missing_bwrap(void)
{
        g_autoptr(ItkSandbox) sandbox = itk_sandbox_new();
        g_autoptr(ItkSandbox) other = itk_sandbox_new();
        g_autoptr(GError) error = NULL;
        g_autoptr(GError) async_error = NULL;
        g_auto(GStrv) argv = NULL;
        const char *const command[] = { "true", NULL };

        /* Asynchronously first, as the daemon does at start. */
        itk_sandbox_set_bwrap(other, "/nonexistent/bwrap-async");
        itk_sandbox_check_async(other, NULL, check_async_done_cb, &async_error);
        while (async_error == NULL)
                g_main_context_iteration(NULL, TRUE);
        check_missing_error(async_error);

        itk_sandbox_set_bwrap(sandbox, "/nonexistent/bwrap");
        g_assert_false(itk_sandbox_check(sandbox, &error));
        check_missing_error(error);
        g_clear_error(&error);
        argv = itk_sandbox_wrap_argv(sandbox, command, &error);
        g_assert_null(argv);
        check_missing_error(error);
}

static void
test_missing_bwrap_script(void)
{
        g_autoptr(ItkSandbox) sandbox = itk_sandbox_new();
        const char *const command[] = { "true", NULL };
        g_autoptr(ItkScript) script = itk_script_new(command);
        Run run = { 0 };

        /* A script never runs unconfined because confinement is impossible. */
        run_init(&run);
        itk_sandbox_set_bwrap(sandbox, "/nonexistent/bwrap-script");
        itk_script_set_sandbox(script, sandbox);
        itk_script_run_async(script, NULL, run_done_cb, &run);
        while (!run.done)
                g_main_loop_run(run.loop);
        check_missing_error(run.error);
        g_assert_cmpint(itk_script_get_pid(script), ==, 0);
        run_clear(&run);
}

/* --- what a confined script can see ----------------------------------------- */

static void
test_shell_confined(void)
{
        g_autoptr(Layout) l = layout_new();
        g_autoptr(ItkSandbox) sandbox = NULL;
        g_autofree char *command = NULL;
        g_autofree char *written_path = NULL;
        g_autofree char *written = NULL;
        Run run = { 0 };

        if (!require_bwrap())
                return;
        sandbox = layout_sandbox(l);
        command = g_strdup_printf("cat '%s' '%s' 2>&1; grep -r secret '%s' 2>&1;"
                                  "echo mine > '%s/written' && echo WROTE;"
                                  "echo other > '%s/planted' 2>/dev/null || echo DENIED;"
                                  "echo CWD=$(pwd)",
                                  l->credentials, l->other_secret, l->state, l->run, l->other_run);
        run_init(&run);
        g_assert_cmpint(
                run_script(&run, sandbox, (const char *[]){ "sh", "-c", command, NULL }, l->run),
                ==, 0);
        g_assert_false(run_has_line(&run, SECRET_CREDENTIAL));
        g_assert_false(run_has_line(&run, SECRET_OTHER_RUN));
        g_assert_true(run_has_line(&run, "WROTE"));
        g_assert_true(run_has_line(&run, "DENIED"));
        g_assert_true(run_has_line(&run, l->run));
        /* Written where the daemon reads the run's files. */
        written_path = g_build_filename(l->run, "written", NULL);
        g_assert_true(g_file_get_contents(written_path, &written, NULL, NULL));
        g_assert_cmpstr(written, ==, "mine\n");
        run_clear(&run);
}

static void
test_python_confined(void)
{
        g_autoptr(Layout) l = layout_new();
        g_autoptr(ItkSandbox) sandbox = NULL;
        g_autofree char *script = NULL;
        g_autofree char *q_credentials = g_shell_quote(l->credentials);
        g_autofree char *q_secret = g_shell_quote(l->other_secret);
        g_autofree char *q_run = g_shell_quote(l->run);
        Run run = { 0 };

        if (!require_bwrap())
                return;
        sandbox = layout_sandbox(l);
        /* Shell-quoted plain paths are Python literals too. */
        script = g_strdup_printf("import os\n"
                                 "for p in [%s, %s]:\n"
                                 "    try:\n"
                                 "        print('READ', open(p).read())\n"
                                 "    except OSError as e:\n"
                                 "        print('DENIED', e.errno)\n"
                                 "open(os.path.join(%s, 'py.txt'), 'w').write('ok')\n"
                                 "print('WROTE')\n",
                                 q_credentials, q_secret, q_run);
        run_init(&run);
        g_assert_cmpint(run_script(&run, sandbox, (const char *[]){ "python3", "-c", script, NULL },
                                   l->run),
                        ==, 0);
        g_assert_false(run_has_line(&run, "READ"));
        g_assert_false(run_has_line(&run, SECRET_CREDENTIAL));
        g_assert_true(run_has_line(&run, "DENIED"));
        g_assert_true(run_has_line(&run, "WROTE"));
        run_clear(&run);
}

static void
test_network_kept(void)
{
        g_autoptr(Layout) l = layout_new();
        g_autoptr(ItkSandbox) sandbox = NULL;
        g_autoptr(GSocket) listener = NULL;
        g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
        g_autoptr(GSocketAddress) address = g_inet_socket_address_new(loopback, 0);
        g_autoptr(GSocketAddress) bound = NULL;
        g_autoptr(GSocket) accepted = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *script = NULL;
        char buffer[16] = { 0 };
        Run run = { 0 };

        if (!require_bwrap())
                return;
        listener = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                &error);
        g_assert_no_error(error);
        g_assert_true(g_socket_bind(listener, address, TRUE, &error));
        g_assert_true(g_socket_listen(listener, &error));
        bound = g_socket_get_local_address(listener, &error);
        g_assert_no_error(error);
        sandbox = layout_sandbox(l);
        /* The backlog completes the handshake; the test reads after. */
        script = g_strdup_printf("import socket\n"
                                 "s = socket.create_connection(('127.0.0.1', %u))\n"
                                 "s.sendall(b'hello')\n"
                                 "s.close()\n"
                                 "print('CONNECTED')\n",
                                 g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound)));
        run_init(&run);
        g_assert_cmpint(run_script(&run, sandbox, (const char *[]){ "python3", "-c", script, NULL },
                                   l->run),
                        ==, 0);
        g_assert_true(run_has_line(&run, "CONNECTED"));
        accepted = g_socket_accept(listener, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpint(g_socket_receive(accepted, buffer, sizeof(buffer) - 1, NULL, &error), ==,
                        5);
        g_assert_cmpstr(buffer, ==, "hello");
        run_clear(&run);
}

/* --- cancel ------------------------------------------------------------------- */

/* Live (not zombie) processes whose command line holds @marker. */
static guint
count_marked_processes(const char *marker)
{
        g_autoptr(GDir) dir = g_dir_open("/proc", 0, NULL);
        const char *name;
        guint n = 0;

        g_assert_nonnull(dir);
        while ((name = g_dir_read_name(dir)) != NULL) {
                g_autofree char *cmdline_path = NULL;
                g_autofree char *stat_path = NULL;
                g_autofree char *cmdline = NULL;
                g_autofree char *stat = NULL;
                const char *state;
                gsize len;

                if (!g_ascii_isdigit(name[0]))
                        continue;
                cmdline_path = g_build_filename("/proc", name, "cmdline", NULL);
                stat_path = g_build_filename("/proc", name, "stat", NULL);
                if (!g_file_get_contents(cmdline_path, &cmdline, &len, NULL) || len == 0)
                        continue;
                for (gsize i = 0; i + 1 < len; i++) {
                        if (cmdline[i] == '\0')
                                cmdline[i] = ' ';
                }
                if (strstr(cmdline, marker) == NULL)
                        continue;
                if (!g_file_get_contents(stat_path, &stat, NULL, NULL))
                        continue;
                state = strrchr(stat, ')');
                if (state != NULL && (state[2] == 'Z' || state[2] == 'X'))
                        continue;
                n++;
        }
        return n;
}

/* The kernel tears the PID namespace down right after its init died; a test
 * may wait for that, bounded. */
static gboolean
wait_marked_gone(const char *marker)
{
        gint64 deadline = g_get_monotonic_time() + 5 * G_TIME_SPAN_SECOND;

        while (count_marked_processes(marker) > 0 && g_get_monotonic_time() < deadline)
                g_usleep(10 * G_TIME_SPAN_MILLISECOND);
        return count_marked_processes(marker) == 0;
}

static void
test_cancel_kills_escapees(void)
{
        g_autoptr(Layout) l = layout_new();
        g_autoptr(ItkSandbox) sandbox = NULL;
        g_autoptr(GCancellable) cancellable = g_cancellable_new();
        g_autoptr(ItkScript) script = NULL;
        g_autofree char *marker = g_strdup_printf("1000.%u", g_random_int_range(1, 999999));
        g_autofree char *command = NULL;
        g_autofree char *pids_path = NULL;
        g_autofree char *pids = NULL;
        g_auto(GStrv) pid_lines = NULL;
        Run run = { 0 };

        if (!require_bwrap())
                return;
        sandbox = layout_sandbox(l);
        /* One child in its own session, one orphaned by a double fork; the
         * pids (inside the namespace) are recorded in the run folder. */
        command = g_strdup_printf("setsid sh -c 'exec sleep %s' & echo $! >> pids\n"
                                  "sh -c 'sleep %s & echo $! >> pids'\n"
                                  "echo READY\n"
                                  "wait\n",
                                  marker, marker);
        script = itk_script_new((const char *[]){ "sh", "-c", command, NULL });
        run_init(&run);
        itk_script_set_sandbox(script, sandbox);
        itk_script_set_cwd(script, l->run);
        itk_script_set_line_func(script, run_line_cb, &run);
        itk_script_run_async(script, cancellable, run_done_cb, &run);
        while (!run_has_line(&run, "READY") && !run.done)
                g_main_loop_run(run.loop);
        g_assert_false(run.done);
        pids_path = g_build_filename(l->run, "pids", NULL);
        g_assert_true(g_file_get_contents(pids_path, &pids, NULL, NULL));
        pid_lines = g_strsplit(pids, "\n", -1);
        g_assert_cmpuint(g_strv_length(pid_lines), ==, 3);
        /* Both escaped the script's shell... */
        while (count_marked_processes(marker) < 2)
                g_usleep(10 * G_TIME_SPAN_MILLISECOND);

        g_cancellable_cancel(cancellable);
        while (!run.done)
                g_main_loop_run(run.loop);
        g_assert_error(run.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        /* ...and neither outlives the cancellation: the run reports it once
         * SIGKILL is sent (DESIGN.md §4), and the kernel empties the
         * namespace right after. */
        if (!wait_marked_gone(marker))
                g_error("%u processes of a cancelled script survived",
                        count_marked_processes(marker));
        run_clear(&run);
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/sandbox/disabled-is-unchanged", test_disabled_is_unchanged);
        g_test_add_func("/sandbox/command-line", test_command_line);
        g_test_add_func("/sandbox/missing-bwrap", test_missing_bwrap);
        g_test_add_func("/sandbox/missing-bwrap-script", test_missing_bwrap_script);
        g_test_add_func("/sandbox/shell-confined", test_shell_confined);
        g_test_add_func("/sandbox/python-confined", test_python_confined);
        g_test_add_func("/sandbox/network-kept", test_network_kept);
        g_test_add_func("/sandbox/cancel-kills-escapees", test_cancel_kills_escapees);
        return g_test_run();
}
