/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Scaffolding shared by the unit tests. */

/* A private directory, removed with the files in it; @path is DIR/@file. */
typedef struct {
        char *dir;
        char *path;
} ItkTestDir;

ItkTestDir *itk_test_dir_new(const char *prefix, const char *file);
void itk_test_dir_free(ItkTestDir *td);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkTestDir, itk_test_dir_free)

/* The gateway simulator ($ITK_GATEWAY_SIM) on a free loopback port with a
 * full-access token ITK_TEST_SIM_TOKEN, a read-only one ITK_TEST_SIM_RO_TOKEN
 * and short restarts, plus @extra arguments; killed with the test. */
#define ITK_TEST_SIM_KEY "q3Jt0sK8v2m5Yc1xW9pZ4LhN7eR6uA0dF2gH5jK8lMw"
#define ITK_TEST_SIM_TOKEN "itk:" ITK_TEST_SIM_KEY
#define ITK_TEST_SIM_RO_TOKEN "ro:readonlykey"

typedef struct {
        GSubprocess *proc;
        char *url;
} ItkTestSim;

ItkTestSim *itk_test_sim_start(const char *const *extra);
void itk_test_sim_stop(ItkTestSim *sim);

G_END_DECLS
