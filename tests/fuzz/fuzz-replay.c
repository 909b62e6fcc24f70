/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs a fuzz target's entry point over files without libFuzzer, so the
 * seed corpus (and any crash found earlier) replays in every `meson test`. */
#include <glib.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
replay_path(const char *path, guint *count)
{
        g_autofree char *contents = NULL;
        gsize length;

        if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
                g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
                const char *name;
                while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
                        g_autofree char *child = g_build_filename(path, name, NULL);
                        replay_path(child, count);
                }
                return;
        }
        if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
                /* An optional corpus (../shared/compat) absent in a clean clone. */
                g_print("# corpus %s is absent, not replayed\n", path);
                return;
        }
        if (!g_file_get_contents(path, &contents, &length, NULL))
                return;
        LLVMFuzzerTestOneInput((const uint8_t *)contents, length);
        (*count)++;
}

int
main(int argc, char **argv)
{
        guint count = 0;

        for (int i = 1; i < argc; i++)
                replay_path(argv[i], &count);
        g_print("1..1\nok 1 - replayed %u inputs\n", count);
        return count > 0 ? 0 : 1;
}
