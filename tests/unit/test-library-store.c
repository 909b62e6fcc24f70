/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The writable local library: id rules, atomic and ordered writes, and the
 * manager's refusals (invalid playbooks, read-only folders). */
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "itk-error.h"
#include "itk-library-store.h"
#include "itk-limits.h"
#include "itk-manager.h"

#define GOOD                                                                                       \
        "name: Good\nversion: '1.0'\nsteps:\n  - id: a\n    name: A\n    type: utility.log\n"      \
        "    parameters:\n      message: hi\n"

static void
remove_tree(const char *path)
{
        g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
        const char *name;

        while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
                g_autofree char *child = g_build_filename(path, name, NULL);
                if (g_file_test(child, G_FILE_TEST_IS_DIR))
                        remove_tree(child);
                else
                        g_unlink(child);
        }
        g_rmdir(path);
}

static char *
make_tmp(void)
{
        g_autoptr(GError) error = NULL;
        char *dir = g_dir_make_tmp("itk-library-XXXXXX", &error);

        g_assert_no_error(error);
        return dir;
}

static guint
count_files(const char *path)
{
        g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
        guint n = 0;

        while (dir != NULL && g_dir_read_name(dir) != NULL)
                n++;
        return n;
}

typedef struct {
        guint done;
        guint *order;
        guint position;
        gboolean ok;
        GError *error;
        GVariant *diagnostics;
} Result;

static void
result_clear(Result *r)
{
        g_clear_error(&r->error);
        g_clear_pointer(&r->diagnostics, g_variant_unref);
        memset(r, 0, sizeof *r);
}

static void
store_save_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
        Result *r = user_data;

        r->ok = itk_library_store_save_finish(res, &r->error);
        r->done++;
        if (r->order != NULL)
                r->position = ++*r->order;
}

static void
store_delete_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
        Result *r = user_data;

        r->ok = itk_library_store_delete_finish(res, &r->error);
        r->done++;
}

static void
wait_for(Result *r)
{
        while (!r->done)
                g_main_context_iteration(NULL, TRUE);
}

static void
test_ids(void)
{
        static const char *const good[] = { "a.yaml", "x/y.yaml", "a-b_c.d.yaml",
                                            "1/2/3/4/five.yaml" };
        static const struct {
                const char *id, *why;
        } bad[] = {
                { "", "empty" },
                { "/etc/x.yaml", "relative" },
                { "../x.yaml", ".." },
                { "a/../x.yaml", ".." },
                { "a/./x.yaml", ".." },
                { ".x.yaml", "hidden" },
                { "a/.x/b.yaml", "hidden" },
                { "a//b.yaml", "empty" },
                { "x.yml", ".yaml" },
                { "x.txt", ".yaml" },
                { ".yaml", "hidden" },
                { "a/.yaml", "hidden" },
                { "a b.yaml", "letters" },
                { "a\\b.yaml", "letters" },
                { "é.yaml", "letters" },
                { "1/2/3/4/5/six.yaml", "deep" },
        };
        g_autofree char *long_id = NULL;
        GString *s = g_string_new(NULL);

        for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
                g_autoptr(GError) error = NULL;
                g_assert_true(itk_library_store_check_id(good[i], &error));
                g_assert_no_error(error);
        }
        for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autoptr(GError) error = NULL;
                g_test_message("id '%s'", bad[i].id);
                g_assert_false(itk_library_store_check_id(bad[i].id, &error));
                g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
                g_assert_nonnull(strstr(error->message, bad[i].why));
        }
        while (s->len <= ITK_LIMIT_NAME_LENGTH)
                g_string_append_c(s, 'x');
        g_string_append(s, ".yaml");
        long_id = g_string_free(s, FALSE);
        {
                g_autoptr(GError) error = NULL;
                g_assert_false(itk_library_store_check_id(long_id, &error));
                g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
                g_assert_nonnull(strstr(error->message, "limit"));
        }
}

static void
test_save_atomic(void)
{
        g_autofree char *root = make_tmp();
        g_autofree char *dir = g_build_filename(root, "local", NULL);
        g_autoptr(ItkLibraryStore) store = itk_library_store_new(dir);
        g_autofree char *path = g_build_filename(dir, "sub", "p.yaml", NULL);
        g_autofree char *sub = g_path_get_dirname(path);
        g_autofree char *text = NULL;
        Result r = { 0 };
        struct stat before, after;
        char buf[64] = { 0 };
        int fd;

        /* The folders are made as needed. */
        itk_library_store_save_async(store, "sub/p.yaml", "first version\n", store_save_cb, &r);
        wait_for(&r);
        g_assert_no_error(r.error);
        g_assert_true(r.ok);
        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        g_assert_cmpstr(text, ==, "first version\n");
        g_assert_cmpint(g_stat(path, &before), ==, 0);
        g_assert_cmpint(before.st_mode & 0777, ==, 0644);

        /* A reader holding the old file keeps reading the old text: the new
         * one was written beside it and renamed over it, never in place. */
        fd = open(path, O_RDONLY | O_CLOEXEC);
        g_assert_cmpint(fd, >=, 0);
        result_clear(&r);
        itk_library_store_save_async(store, "sub/p.yaml", "second\n", store_save_cb, &r);
        wait_for(&r);
        g_assert_true(r.ok);
        g_assert_cmpint(pread(fd, buf, sizeof buf - 1, 0), ==, strlen("first version\n"));
        g_assert_cmpstr(buf, ==, "first version\n");
        close(fd);
        g_assert_cmpint(g_stat(path, &after), ==, 0);
        g_assert_cmpuint(before.st_ino, !=, after.st_ino);
        g_clear_pointer(&text, g_free);
        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        g_assert_cmpstr(text, ==, "second\n");
        /* No temporary file left behind. */
        g_assert_cmpuint(count_files(sub), ==, 1);

        /* A bad id never reaches the disk. */
        result_clear(&r);
        itk_library_store_save_async(store, "../escape.yaml", "x", store_save_cb, &r);
        wait_for(&r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
        g_assert_cmpuint(count_files(root), ==, 1);

        result_clear(&r);
        itk_library_store_delete_async(store, "sub/p.yaml", store_delete_cb, &r);
        wait_for(&r);
        g_assert_true(r.ok);
        g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
        result_clear(&r);
        itk_library_store_delete_async(store, "sub/p.yaml", store_delete_cb, &r);
        wait_for(&r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_NO_SUCH_PLAYBOOK);
        result_clear(&r);
        g_clear_pointer(&store, itk_library_store_free);
        remove_tree(root);
}

/* Saves complete, and land, in the order they were asked for. */
static void
test_save_order(void)
{
        g_autofree char *root = make_tmp();
        g_autoptr(ItkLibraryStore) store = itk_library_store_new(root);
        g_autofree char *path = g_build_filename(root, "same.yaml", NULL);
        g_autofree char *text = NULL;
        Result results[40] = { 0 };
        guint order = 0;

        for (guint i = 0; i < G_N_ELEMENTS(results); i++) {
                g_autofree char *body = g_strdup_printf("version %u\n", i);
                results[i].order = &order;
                itk_library_store_save_async(store, "same.yaml", body, store_save_cb, &results[i]);
        }
        for (guint i = 0; i < G_N_ELEMENTS(results); i++)
                wait_for(&results[i]);
        for (guint i = 0; i < G_N_ELEMENTS(results); i++) {
                g_assert_true(results[i].ok);
                g_assert_cmpuint(results[i].position, ==, i + 1);
        }
        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        g_assert_cmpstr(text, ==, "version 39\n");
        g_assert_cmpuint(count_files(root), ==, 1);
        g_clear_pointer(&store, itk_library_store_free);
        remove_tree(root);
}

static void
manager_save_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
        Result *r = user_data;

        r->diagnostics = itk_manager_save_playbook_finish(ITK_MANAGER(source), res, &r->error);
        r->ok = r->diagnostics != NULL;
        r->done++;
}

static void
manager_delete_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
        Result *r = user_data;

        r->ok = itk_manager_delete_playbook_finish(ITK_MANAGER(source), res, &r->error);
        r->done++;
}

static gboolean
listed_local(ItkManager *manager, const char *id, gboolean *local)
{
        g_autoptr(GVariant) list = g_variant_ref_sink(itk_manager_list_playbooks(manager));
        GVariantIter iter;
        GVariant *entry;

        g_variant_iter_init(&iter, list);
        while ((entry = g_variant_iter_next_value(&iter)) != NULL) {
                const char *found = NULL;
                gboolean is_local = FALSE;

                g_variant_lookup(entry, "id", "&s", &found);
                g_variant_lookup(entry, "local", "b", &is_local);
                if (g_strcmp0(found, id) == 0) {
                        *local = is_local;
                        g_variant_unref(entry);
                        return TRUE;
                }
                g_variant_unref(entry);
        }
        return FALSE;
}

static void
test_manager(void)
{
        g_autofree char *root = make_tmp();
        g_autofree char *state = g_build_filename(root, "state", NULL);
        g_autofree char *shipped = g_build_filename(root, "shipped", NULL);
        g_autofree char *shipped_file = g_build_filename(shipped, "ro.yaml", NULL);
        g_autofree char *local_dir = g_build_filename(state, "playbooks", "local", NULL);
        const char *dirs[] = { shipped, NULL };
        ItkManagerConfig config = { .state_dir = state, .playbook_dirs = dirs };
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkManager) manager = NULL;
        g_autoptr(GVariant) got = NULL;
        Result r = { 0 };
        gboolean local = FALSE;

        g_assert_cmpint(g_mkdir_with_parents(shipped, 0755), ==, 0);
        g_assert_true(g_file_set_contents(shipped_file, GOOD, -1, NULL));
        manager = itk_manager_new(&config, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(itk_manager_get_local_playbook_dir(manager), ==, local_dir);

        g_assert_true(listed_local(manager, "ro.yaml", &local));
        g_assert_false(local);

        /* An invalid playbook is refused with where it is wrong; nothing written. */
        itk_manager_save_playbook_async(manager, "bad.yaml", "name: x\nsteps: [\n", manager_save_cb,
                                        &r);
        wait_for(&r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK);
        g_assert_nonnull(strstr(r.error->message, "line "));
        g_assert_cmpuint(count_files(local_dir), ==, 0);
        result_clear(&r);

        /* Shipped playbooks are read-only, for saving and deleting. */
        itk_manager_save_playbook_async(manager, "ro.yaml", GOOD, manager_save_cb, &r);
        wait_for(&r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_ACCESS_DENIED);
        g_assert_nonnull(strstr(r.error->message, "read-only"));
        result_clear(&r);
        itk_manager_delete_playbook_async(manager, "ro.yaml", manager_delete_cb, &r);
        wait_for(&r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_ACCESS_DENIED);
        g_assert_true(g_file_test(shipped_file, G_FILE_TEST_EXISTS));
        result_clear(&r);

        /* A valid one lands in the local folder and is listed as local. */
        itk_manager_save_playbook_async(manager, "mine.yaml", GOOD, manager_save_cb, &r);
        wait_for(&r);
        g_assert_no_error(r.error);
        g_assert_true(g_variant_is_of_type(r.diagnostics, G_VARIANT_TYPE("aa{sv}")));
        result_clear(&r);
        g_assert_true(listed_local(manager, "mine.yaml", &local));
        g_assert_true(local);
        got = itk_manager_get_playbook(manager, "mine.yaml", &error);
        g_assert_no_error(error);
        {
                const char *source = NULL;
                g_assert_true(g_variant_lookup(got, "source", "&s", &source));
                g_assert_cmpstr(source, ==, GOOD);
        }

        itk_manager_delete_playbook_async(manager, "mine.yaml", manager_delete_cb, &r);
        wait_for(&r);
        g_assert_no_error(r.error);
        result_clear(&r);
        g_assert_false(listed_local(manager, "mine.yaml", &local));
        itk_manager_delete_playbook_async(manager, "mine.yaml", manager_delete_cb, &r);
        wait_for(&r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_NO_SUCH_PLAYBOOK);
        result_clear(&r);

        g_clear_object(&manager);
        remove_tree(root);
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/library-store/ids", test_ids);
        g_test_add_func("/library-store/save-atomic", test_save_atomic);
        g_test_add_func("/library-store/save-order", test_save_order);
        g_test_add_func("/library-store/manager", test_manager);
        return g_test_run();
}
