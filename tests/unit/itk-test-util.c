/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include "itk-test-util.h"

ItkTestDir *
itk_test_dir_new(const char *prefix, const char *file)
{
        g_autoptr(GError) error = NULL;
        ItkTestDir *td = g_new0(ItkTestDir, 1);

        td->dir = g_dir_make_tmp(prefix, &error);
        g_assert_no_error(error);
        td->path = g_build_filename(td->dir, file, NULL);
        return td;
}

void
itk_test_dir_free(ItkTestDir *td)
{
        g_autoptr(GDir) dir = g_dir_open(td->dir, 0, NULL);
        const char *name;

        while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
                g_autofree char *file = g_build_filename(td->dir, name, NULL);
                g_unlink(file);
        }
        g_rmdir(td->dir);
        g_free(td->dir);
        g_free(td->path);
        g_free(td);
}

static void
itk_test_sim_child_setup(gpointer user_data)
{
        /* A crashed test must not leave a simulator behind. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
}

ItkTestSim *
itk_test_sim_start(const char *const *extra)
{
        g_autoptr(GSubprocessLauncher) launcher =
                g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_autoptr(GDataInputStream) data = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *line = NULL;
        const char *bin = g_getenv("ITK_GATEWAY_SIM");
        ItkTestSim *sim = g_new0(ItkTestSim, 1);

        g_assert_nonnull(bin);
        g_ptr_array_add(argv, (gpointer)bin);
        g_ptr_array_add(argv, "--port=0");
        g_ptr_array_add(argv, "--token=" ITK_TEST_SIM_TOKEN);
        g_ptr_array_add(argv, "--readonly-token=" ITK_TEST_SIM_RO_TOKEN);
        g_ptr_array_add(argv, "--restart-delay=100");
        g_ptr_array_add(argv, "--startup-time=400");
        for (guint i = 0; extra != NULL && extra[i] != NULL; i++)
                g_ptr_array_add(argv, (gpointer)extra[i]);
        g_ptr_array_add(argv, NULL);
        g_subprocess_launcher_set_child_setup(launcher, itk_test_sim_child_setup, NULL, NULL);
        sim->proc =
                g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, &error);
        g_assert_no_error(error);
        data = g_data_input_stream_new(g_subprocess_get_stdout_pipe(sim->proc));
        line = g_data_input_stream_read_line_utf8(data, NULL, NULL, &error);
        g_assert_no_error(error);
        g_assert_true(g_str_has_prefix(line, "listening on http://127.0.0.1:"));
        sim->url = g_strdup(line + strlen("listening on "));
        return sim;
}

void
itk_test_sim_stop(ItkTestSim *sim)
{
        g_subprocess_send_signal(sim->proc, SIGTERM);
        g_subprocess_wait(sim->proc, NULL, NULL);
        g_object_unref(sim->proc);
        g_free(sim->url);
        g_free(sim);
}
