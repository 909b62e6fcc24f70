/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Artifacts: names never reach outside the run's folder, links are not
 * followed, the SHA-256 is the file's, and the store keeps the list with the
 * run (and drops it with the run). */
#define _XOPEN_SOURCE 700
#include <fcntl.h>
#include <ftw.h>
#include <glib.h>
#include <stdio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "itk-artifact.h"
#include "itk-error.h"
#include "itk-store.h"
#include "itk-test-util.h"

#define ID1 "00000000-0000-4000-8000-0000000000a1"

static int
remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

/* The run folder and all in it (links themselves, not what they point at). */
static void
remove_tree(const char *dir)
{
        nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void
write_file(const char *dir, const char *name, const char *contents, gssize length)
{
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autoptr(GError) error = NULL;

        g_file_set_contents(path, contents, length, &error);
        g_assert_no_error(error);
}

static void
test_names(void)
{
        const char *good[] = { "shot.png", "sub/dir/b.gwbk", "a..b", ".hidden", "é.png" };
        const char *bad[] = { "",     "/etc/passwd", "..",   "../x", "a/../b", "a/./b",   "./a",
                              "a//b", "a/",          "x\ny", "\x7f", "a/..",   "\xff.png" };

        for (guint i = 0; i < G_N_ELEMENTS(good); i++) {
                g_autoptr(GError) error = NULL;
                g_assert_true(itk_artifact_name_is_valid(good[i], &error));
                g_assert_no_error(error);
        }
        for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autoptr(GError) error = NULL;
                g_assert_false(itk_artifact_name_is_valid(bad[i], &error));
                g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
                g_assert_nonnull(strstr(error->message, "artifact name"));
        }
        {
                g_autofree char *longest = g_strnfill(1025, 'a');
                g_autoptr(GError) error = NULL;
                g_assert_false(itk_artifact_name_is_valid(longest, &error));
                g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
        }
}

static void
test_name_for_path(void)
{
        struct {
                const char *path;
                const char *name; /* NULL: not beneath */
        } cases[] = {
                { "/state/runs/ab/shot.png", "shot.png" },
                { "/state/runs/ab/sub/b.gwbk", "sub/b.gwbk" },
                { "/state/runs/ab/./sub//b.gwbk", "sub/b.gwbk" },
                { "/state/runs/ab/../cd/x.png", NULL },
                { "/state/runs/abc/x.png", NULL },
                { "/state/runs/ab", NULL },
                { "/state/runs/ab/", NULL },
                { "/etc/passwd", NULL },
                { "rel.png", "rel.png" },
                { "../ab2/x.png", NULL },
        };

        for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *name = itk_artifact_name_for_path("/state/runs/ab", cases[i].path);
                g_assert_cmpstr(name, ==, cases[i].name);
        }
        g_assert_null(itk_artifact_name_for_path("relative/dir", "relative/dir/x"));
}

static void
test_content_types(void)
{
        g_assert_cmpstr(itk_artifact_content_type("a.png"), ==, "image/png");
        g_assert_cmpstr(itk_artifact_content_type("A.JPG"), ==, "image/jpeg");
        g_assert_cmpstr(itk_artifact_content_type("b.gwbk"), ==, "application/zip");
        g_assert_cmpstr(itk_artifact_content_type("p.zip"), ==, "application/zip");
        /* A page a run saved is not served as one of the bridge's own. */
        g_assert_cmpstr(itk_artifact_content_type("page.html"), ==, "application/octet-stream");
        g_assert_cmpstr(itk_artifact_content_type("noext"), ==, "application/octet-stream");
}

static void
test_open_refuses_escapes(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-artifact-XXXXXX", "run");
        g_autofree char *outside = g_build_filename(td->dir, "outside.txt", NULL);
        g_autofree char *sub = g_build_filename(td->path, "sub", NULL);
        g_autofree char *link = g_build_filename(td->path, "link.png", NULL);
        g_autofree char *dirlink = g_build_filename(td->path, "dirlink", NULL);
        g_autofree char *fifo = g_build_filename(td->path, "fifo", NULL);
        char buffer[64];
        ssize_t n;
        int fd;

        g_assert_cmpint(g_mkdir_with_parents(sub, 0700), ==, 0);
        write_file(td->dir, "outside.txt", "secret outside", -1);
        write_file(td->path, "shot.png", "png bytes", -1);
        write_file(sub, "b.gwbk", "backup", -1);
        g_assert_cmpint(symlink(outside, link), ==, 0);
        g_assert_cmpint(symlink(td->dir, dirlink), ==, 0);
        g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
        {
                g_autofree char *hard = g_build_filename(td->path, "hard.txt", NULL);
                g_assert_cmpint(linkat(AT_FDCWD, outside, AT_FDCWD, hard, 0), ==, 0);
        }

        fd = itk_artifact_open(td->path, "shot.png", NULL);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(fcntl(fd, F_GETFL) & O_ACCMODE, ==, O_RDONLY);
        g_assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        n = read(fd, buffer, sizeof buffer);
        g_assert_cmpint(n, ==, 9);
        g_assert_cmpmem(buffer, 9, "png bytes", 9);
        g_assert_cmpint(write(fd, "x", 1), ==, -1);
        close(fd);

        fd = itk_artifact_open(td->path, "sub/b.gwbk", NULL);
        g_assert_cmpint(fd, >=, 0);
        close(fd);

        {
                const char *refused[] = { "link.png", "dirlink/outside.txt", "fifo",
                                          "sub",      "missing.png",         "sub/missing" };
                for (guint i = 0; i < G_N_ELEMENTS(refused); i++) {
                        g_autoptr(GError) error = NULL;
                        g_assert_cmpint(itk_artifact_open(td->path, refused[i], &error), ==, -1);
                        g_assert_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_ARTIFACT);
                }
        }
        {
                const char *invalid[] = { "../outside.txt", "/etc/passwd", "sub/../shot.png" };
                for (guint i = 0; i < G_N_ELEMENTS(invalid); i++) {
                        g_autoptr(GError) error = NULL;
                        g_assert_cmpint(itk_artifact_open(td->path, invalid[i], &error), ==, -1);
                        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
                }
        }
        remove_tree(td->path);
        g_unlink(outside);
}

static void
inspected_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        GAsyncResult **out = user_data;

        (void)source;
        *out = g_object_ref(result);
}

static gboolean
inspect(const char *dir, const char *name, guint64 *size, char **sha256, GError **error)
{
        g_autoptr(GAsyncResult) result = NULL;

        itk_artifact_inspect_async(dir, name, NULL, inspected_cb, &result);
        while (result == NULL)
                g_main_context_iteration(NULL, TRUE);
        return itk_artifact_inspect_finish(result, size, sha256, error);
}

static void
test_inspect_sha256(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-artifact-XXXXXX", "run");
        g_autoptr(GError) error = NULL;
        g_autofree char *sha = NULL;
        g_autofree char *big = NULL;
        g_autofree char *expected = NULL;
        g_autofree char *link = g_build_filename(td->path, "link", NULL);
        const gsize big_size = 3 * 64 * 1024 + 17; /* several read chunks */
        guint64 size = 0;

        g_assert_cmpint(g_mkdir_with_parents(td->path, 0700), ==, 0);
        write_file(td->path, "abc.txt", "abc", 3);
        g_assert_true(inspect(td->path, "abc.txt", &size, &sha, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(size, ==, 3);
        /* FIPS 180-2's example. */
        g_assert_cmpstr(sha, ==,
                        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        g_clear_pointer(&sha, g_free);

        big = g_malloc(big_size);
        for (gsize i = 0; i < big_size; i++)
                big[i] = (char)(i * 7 + 3);
        write_file(td->path, "big.bin", big, (gssize)big_size);
        expected = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)big, big_size);
        g_assert_true(inspect(td->path, "big.bin", &size, &sha, &error));
        g_assert_cmpuint(size, ==, big_size);
        g_assert_cmpstr(sha, ==, expected);

        g_assert_cmpint(symlink("/etc/hostname", link), ==, 0);
        g_assert_false(inspect(td->path, "link", NULL, NULL, &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_ARTIFACT);
        remove_tree(td->path);
}

static void
test_store_rows(void)
{
        g_autoptr(ItkTestDir) td = itk_test_dir_new("itk-artifact-store-XXXXXX", "history.db");
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkStore) store = itk_store_open(td->path, &error);
        g_autoptr(GVariant) list = NULL;
        const char *name = NULL, *type = NULL, *sha = NULL, *step = NULL;
        guint64 size = 0;
        ItkExecutionRecord run = {
                .id = ID1,
                .playbook = "p",
                .status = "running",
                .created_at = 1,
        };
        ItkArtifactRecord artifact = {
                .execution_id = ID1,
                .name = "shot.png",
                .step_id = "shot",
                .size = 9,
                .content_type = "image/png",
                .sha256 = "00ff",
                .created_at = 5,
        };
        ItkArtifactRecord orphan = artifact;

        g_assert_no_error(error);
        /* No run, no row. */
        orphan.execution_id = "00000000-0000-4000-8000-0000000000ff";
        g_assert_false(itk_store_put_artifact(store, &orphan, &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_EXECUTION);
        g_clear_error(&error);
        g_assert_null(itk_store_list_artifacts(store, orphan.execution_id, &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_EXECUTION);
        g_clear_error(&error);

        g_assert_true(itk_store_insert_execution(store, &run, &error));
        list = itk_store_list_artifacts(store, ID1, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(g_variant_n_children(list), ==, 0);
        g_clear_pointer(&list, g_variant_unref);

        g_assert_true(itk_store_put_artifact(store, &artifact, &error));
        /* Written again: replaced, not doubled. */
        artifact.size = 10;
        g_assert_true(itk_store_put_artifact(store, &artifact, &error));
        g_assert_no_error(error);
        list = itk_store_list_artifacts(store, ID1, &error);
        g_assert_cmpuint(g_variant_n_children(list), ==, 1);
        {
                g_autoptr(GVariant) first = g_variant_get_child_value(list, 0);
                g_assert_true(g_variant_lookup(first, "name", "&s", &name));
                g_assert_true(g_variant_lookup(first, "step", "&s", &step));
                g_assert_true(g_variant_lookup(first, "size", "t", &size));
                g_assert_true(g_variant_lookup(first, "content-type", "&s", &type));
                g_assert_true(g_variant_lookup(first, "sha256", "&s", &sha));
                g_assert_cmpstr(name, ==, "shot.png");
                g_assert_cmpstr(step, ==, "shot");
                g_assert_cmpuint(size, ==, 10);
                g_assert_cmpstr(type, ==, "image/png");
                g_assert_cmpstr(sha, ==, "00ff");
        }
        g_clear_pointer(&list, g_variant_unref);

        /* The rows go with the run. */
        g_assert_true(itk_store_delete_execution(store, ID1, &error));
        g_assert_true(itk_store_insert_execution(store, &run, &error));
        list = itk_store_list_artifacts(store, ID1, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(g_variant_n_children(list), ==, 0);
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/artifact/names", test_names);
        g_test_add_func("/artifact/name-for-path", test_name_for_path);
        g_test_add_func("/artifact/content-types", test_content_types);
        g_test_add_func("/artifact/open-refuses-escapes", test_open_refuses_escapes);
        g_test_add_func("/artifact/inspect-sha256", test_inspect_sha256);
        g_test_add_func("/artifact/store-rows", test_store_rows);
        return g_test_run();
}
