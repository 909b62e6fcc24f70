/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Input files (the engine side): names, the size limit counted while
 * copying, a fifo in an input folder refused without blocking, typed paths
 * and foreign tokens refused naming the parameter, and a claim that moves
 * the file under inputs/PARAM/ in the run's folder. */
#define _XOPEN_SOURCE 700
#include <fcntl.h>
#include <ftw.h>
#include <glib.h>
#include <stdio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "itk-error.h"
#include "itk-input-files.h"
#include "itk-test-util.h"

static int
remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static void
remove_tree(const char *dir)
{
        nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

static char *
make_temp_dir(void)
{
        g_autoptr(GError) error = NULL;
        char *dir = g_dir_make_tmp("itk-inputs-XXXXXX", &error);

        g_assert_no_error(error);
        return dir;
}

typedef struct {
        GMainLoop *loop;
        gboolean ok;
        char *token;
        guint64 size;
        char *sha256;
        GError *error;
} Staged;

static void
staged_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Staged *s = user_data;

        s->ok = itk_input_files_stage_finish(ITK_INPUT_FILES(source), result, &s->token, &s->size,
                                             &s->sha256, &s->error);
        g_main_loop_quit(s->loop);
}

static void
staged_clear(Staged *s)
{
        g_clear_pointer(&s->loop, g_main_loop_unref);
        g_clear_pointer(&s->token, g_free);
        g_clear_pointer(&s->sha256, g_free);
        g_clear_error(&s->error);
}

/* Stages @length bytes of @data written through a pipe by a thread. */
static gpointer
feed_thread(gpointer data)
{
        int fd = GPOINTER_TO_INT(g_object_get_data(data, "fd"));
        GBytes *bytes = g_object_get_data(data, "bytes");
        gsize length;
        const char *p = g_bytes_get_data(bytes, &length);

        while (length > 0) {
                ssize_t n = write(fd, p, length);
                if (n <= 0)
                        break;
                p += n;
                length -= (gsize)n;
        }
        close(fd);
        return NULL;
}

static void
stage_bytes(ItkInputFiles *files, const char *name, GBytes *bytes, Staged *s)
{
        int pipefd[2];
        g_autoptr(GObject) holder = g_object_new(G_TYPE_OBJECT, NULL);
        GThread *thread;

        g_assert_no_errno(pipe(pipefd));
        g_object_set_data(holder, "fd", GINT_TO_POINTER(pipefd[1]));
        g_object_set_data(holder, "bytes", bytes);
        thread = g_thread_new("feed", feed_thread, holder);
        s->loop = g_main_loop_new(NULL, FALSE);
        itk_input_files_stage_fd_async(files, 1000, name, pipefd[0], NULL, staged_cb, s);
        g_main_loop_run(s->loop);
        g_thread_join(thread);
}

static void
test_names(void)
{
        const char *good[] = { "a.modl", "Module 1.2 (signed).modl", "é.gwbk", NULL };
        const char *bad[] = { "", ".hidden", "..", "a/b", "/etc/passwd", "x\ny", "t\tab", NULL };
        g_autofree char *long_name = g_strnfill(256, 'n');

        for (guint i = 0; good[i] != NULL; i++)
                g_assert_true(itk_input_files_name_is_valid(good[i], NULL));
        for (guint i = 0; bad[i] != NULL; i++) {
                g_autoptr(GError) error = NULL;
                g_assert_false(itk_input_files_name_is_valid(bad[i], &error));
                g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
        }
        g_assert_false(itk_input_files_name_is_valid(long_name, NULL));
}

static void
test_new(void)
{
        g_autofree char *state = make_temp_dir();
        g_autofree char *inputs = g_build_filename(state, "inputs", NULL);
        g_autofree char *leftover = g_build_filename(inputs, "0123", NULL);
        const char *relative[] = { "relative/dir", NULL };
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkInputFiles) files = NULL;
        struct stat st;

        files = itk_input_files_new(state, 0, 0, relative, &error);
        g_assert_null(files);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
        g_assert_nonnull(strstr(error->message, "not an absolute path"));
        g_clear_error(&error);

        g_assert_no_errno(g_mkdir_with_parents(inputs, 0700));
        g_assert_true(g_file_set_contents(leftover, "old", -1, NULL));
        files = itk_input_files_new(state, 0, 0, NULL, &error);
        g_assert_no_error(error);
        /* A token does not outlive its daemon; the defaults apply. */
        g_assert_false(g_file_test(leftover, G_FILE_TEST_EXISTS));
        g_assert_cmpuint(itk_input_files_get_max_bytes(files), ==,
                         ITK_INPUT_FILES_DEFAULT_MAX_BYTES);
        g_assert_no_errno(stat(inputs, &st));
        g_assert_cmpint(st.st_mode & 0777, ==, 0700);
        remove_tree(state);
}

static void
test_limit_and_claim(void)
{
        g_autofree char *state = make_temp_dir();
        g_autofree char *run = g_build_filename(state, "runs", "r1", NULL);
        g_autoptr(ItkInputFiles) files = itk_input_files_new(state, 1000, 60, NULL, NULL);
        g_autoptr(GBytes) fits = g_bytes_new_take(g_strnfill(1000, 'f'), 1000);
        g_autoptr(GBytes) over = g_bytes_new_take(g_strnfill(1001, 'o'), 1001);
        g_autoptr(GError) error = NULL;
        g_autofree char *value = NULL;
        g_autofree char *path = NULL;
        g_autofree char *line = NULL;
        g_autofree char *contents = NULL;
        g_autofree char *want = NULL;
        Staged s = { 0 };

        g_assert_no_errno(g_mkdir_with_parents(run, 0700));
        stage_bytes(files, "big.modl", over, &s);
        g_assert_false(s.ok);
        g_assert_error(s.error, ITK_ERROR, ITK_ERROR_LIMITS_EXCEEDED);
        g_assert_nonnull(strstr(s.error->message, "MaxInputFileBytes"));
        staged_clear(&s);

        stage_bytes(files, "ok.modl", fits, &s);
        g_assert_no_error(s.error);
        g_assert_true(s.ok);
        g_assert_cmpuint(s.size, ==, 1000);
        want = g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, fits);
        g_assert_cmpstr(s.sha256, ==, want);
        value = g_strconcat(ITK_INPUT_FILES_PREFIX, s.token, NULL);

        /* Only its owner's; a typed path is never taken. */
        g_assert_false(itk_input_files_check(files, 1001, "module", value, &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS);
        g_assert_nonnull(strstr(error->message, "parameter 'module'"));
        g_clear_error(&error);
        g_assert_false(itk_input_files_check(files, 1000, "module", "/etc/passwd", &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS);
        g_assert_nonnull(strstr(error->message, "typed path is not accepted"));
        g_assert_null(strstr(error->message, "/etc/passwd"));
        g_clear_error(&error);
        g_assert_true(itk_input_files_check(files, 1000, "module", value, NULL));

        /* The parameter's name is a folder: '/' and '.' cannot climb out. */
        path = itk_input_files_claim(files, 1000, "../a b", value, run, &line, &error);
        g_assert_no_error(error);
        g_assert_nonnull(path);
        g_assert_true(g_str_has_prefix(path, run));
        g_assert_true(g_str_has_suffix(path, "/inputs/___a_b/ok.modl"));
        g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
        g_assert_cmpuint(strlen(contents), ==, 1000);
        g_assert_nonnull(strstr(line, want));
        g_assert_nonnull(strstr(line, "1000 bytes"));
        /* Used once. */
        g_assert_false(itk_input_files_check(files, 1000, "module", value, NULL));
        staged_clear(&s);
        remove_tree(state);
}

static void
test_host_fifo_and_links(void)
{
        g_autofree char *state = make_temp_dir();
        g_autofree char *allowed = g_build_filename(state, "allowed", NULL);
        g_autofree char *fifo = g_build_filename(allowed, "pipe.modl", NULL);
        g_autofree char *link = g_build_filename(allowed, "link.modl", NULL);
        const char *dirs[] = { allowed, NULL };
        g_autoptr(ItkInputFiles) files = NULL;
        Staged s = { 0 };

        g_assert_no_errno(g_mkdir_with_parents(allowed, 0700));
        g_assert_no_errno(mkfifo(fifo, 0600));
        g_assert_no_errno(symlink("/etc/hostname", link));
        files = itk_input_files_new(state, 0, 0, dirs, NULL);

        /* A fifo would block a plain open(): refused as not a regular file. */
        s.loop = g_main_loop_new(NULL, FALSE);
        itk_input_files_stage_host_async(files, 0, allowed, "pipe.modl", NULL, staged_cb, &s);
        g_main_loop_run(s.loop);
        g_assert_error(s.error, ITK_ERROR, ITK_ERROR_NO_SUCH_INPUT_FILE);
        staged_clear(&s);

        s.loop = g_main_loop_new(NULL, FALSE);
        itk_input_files_stage_host_async(files, 0, allowed, "link.modl", NULL, staged_cb, &s);
        g_main_loop_run(s.loop);
        g_assert_error(s.error, ITK_ERROR, ITK_ERROR_NO_SUCH_INPUT_FILE);
        g_assert_nonnull(strstr(s.error->message, "links are not followed"));
        staged_clear(&s);
        remove_tree(state);
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/input-files/names", test_names);
        g_test_add_func("/input-files/new", test_new);
        g_test_add_func("/input-files/limit-and-claim", test_limit_and_claim);
        g_test_add_func("/input-files/host-fifo-and-links", test_host_fifo_and_links);
        return g_test_run();
}
