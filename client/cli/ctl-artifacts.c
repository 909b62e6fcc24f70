/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ignitionctl artifacts and artifact: the files a run's steps wrote (screenshots,
 * backups, exports), listed and fetched as read-only descriptors from the daemon. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

static int
ctl_artifacts_list(CtlContext *ctx, const char *id, JsonNode **ret)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autofree char *what = g_strdup_printf("cannot list the artifacts of %s", id);
        g_autoptr(JsonNode) artifacts = NULL;
        int r;

        r = ctl_call_manager(ctx, "ListHistoryArtifacts", &reply, what, "s", id);
        if (r != 0)
                return r;
        artifacts = ctl_json_read_reply(reply, &r);
        if (artifacts == NULL || !JSON_NODE_HOLDS_ARRAY(artifacts)) {
                ctl_error("%s: %s", what, g_strerror(r < 0 ? -r : EBADMSG));
                return CTL_EXIT_FAILURE;
        }
        *ret = g_steal_pointer(&artifacts);
        return 0;
}

static char *
ctl_artifacts_format_size(gint64 size)
{
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
        double value = (double)size;
        guint unit = 0;

        if (size < 1024)
                return g_strdup_printf("%" G_GINT64_FORMAT " B", size);
        value /= 1024;
        while (value >= 1024 && unit + 1 < G_N_ELEMENTS(units)) {
                value /= 1024;
                unit++;
        }
        return g_strdup_printf("%.1f %s", value, units[unit]);
}

int
ctl_verb_artifacts(CtlContext *ctx, int argc, char **argv)
{
        g_autoptr(JsonNode) artifacts = NULL;
        g_autoptr(CtlTable) table = NULL;
        g_autofree char *id = NULL;
        JsonArray *array;
        int r;

        r = ctl_resolve_execution(ctx, argv[1], &id, NULL);
        if (r != 0)
                return r;
        r = ctl_artifacts_list(ctx, id, &artifacts);
        if (r != 0)
                return r;
        if (ctx->json) {
                ctl_json_print(ctx, artifacts);
                return 0;
        }
        array = json_node_get_array(artifacts);
        table = ctl_table_new("NAME", "STEP", "SIZE", "TYPE", "SHA256", NULL);
        for (guint i = 0; i < json_array_get_length(array); i++) {
                JsonObject *a = json_array_get_object_element(array, i);
                g_autofree char *size = ctl_artifacts_format_size(ctl_json_get_int(a, "size", 0));

                ctl_table_add_row(table, ctl_json_get_string(a, "name"),
                                  ctl_json_get_string(a, "step"), size,
                                  ctl_json_get_string(a, "content-type"),
                                  ctl_json_get_string(a, "sha256"), NULL);
        }
        if (ctl_table_get_rows(table) > 0)
                ctl_table_print(ctx, table);
        if (!ctx->quiet)
                printf("%s%u artifacts listed.\n", ctl_table_get_rows(table) > 0 ? "\n" : "",
                       ctl_table_get_rows(table));
        return 0;
}

static gboolean
ctl_artifacts_write_all(int fd, const guint8 *data, gsize length)
{
        while (length > 0) {
                ssize_t n = write(fd, data, length);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return FALSE;
                data += n;
                length -= (gsize)n;
        }
        return TRUE;
}

/* The listed SHA-256 of @name, NULL when not listed. */
static const char *
ctl_artifacts_listed_sha256(JsonNode *artifacts, const char *name)
{
        JsonArray *array = json_node_get_array(artifacts);

        for (guint i = 0; i < json_array_get_length(array); i++) {
                JsonObject *a = json_array_get_object_element(array, i);
                if (g_strcmp0(ctl_json_get_string(a, "name"), name) == 0)
                        return ctl_json_get_string(a, "sha256");
        }
        return NULL;
}

int
ctl_verb_artifact(CtlContext *ctx, int argc, char **argv)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(JsonNode) artifacts = NULL;
        g_autoptr(GChecksum) checksum = g_checksum_new(G_CHECKSUM_SHA256);
        g_autofree char *id = NULL;
        g_autofree char *what = NULL;
        g_autofree char *tmp_path = NULL;
        g_autofree guint8 *buffer = NULL;
        const char *name = argv[2];
        const char *listed;
        int in_fd = -1, out_fd = STDOUT_FILENO;
        int r;

        r = ctl_resolve_execution(ctx, argv[1], &id, NULL);
        if (r != 0)
                return r;
        r = ctl_artifacts_list(ctx, id, &artifacts);
        if (r != 0)
                return r;
        what = g_strdup_printf("cannot open artifact '%s' of %s", name, id);
        r = ctl_call_manager(ctx, "OpenHistoryArtifact", &reply, what, "ss", id, name);
        if (r != 0)
                return r;
        r = sd_bus_message_read(reply, "h", &in_fd);
        if (r < 0) {
                ctl_error("%s: %s", what, g_strerror(-r));
                return CTL_EXIT_FAILURE;
        }
        r = 0;
        if (ctx->output != NULL && !g_str_equal(ctx->output, "-")) {
                g_autofree char *dir = g_path_get_dirname(ctx->output);
                g_autofree char *base = g_path_get_basename(ctx->output);
                g_autofree char *tmp_name = g_strdup_printf(".%s.XXXXXX", base);

                /* Written aside and renamed: FILE is whole or untouched. */
                tmp_path = g_build_filename(dir, tmp_name, NULL);
                out_fd = g_mkstemp_full(tmp_path, O_WRONLY | O_CLOEXEC, 0666 & ~0022);
                if (out_fd < 0) {
                        ctl_error("cannot write %s: %s", ctx->output, g_strerror(errno));
                        return CTL_EXIT_FAILURE;
                }
        }
        buffer = g_malloc(64 * 1024);
        for (;;) {
                ssize_t n = read(in_fd, buffer, 64 * 1024);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 || (n > 0 && !ctl_artifacts_write_all(out_fd, buffer, (gsize)n))) {
                        ctl_error("cannot copy artifact '%s': %s", name, g_strerror(errno));
                        r = CTL_EXIT_FAILURE;
                        break;
                }
                if (n == 0)
                        break;
                g_checksum_update(checksum, buffer, n);
        }
        listed = ctl_artifacts_listed_sha256(artifacts, name);
        if (r == 0 && listed != NULL && g_strcmp0(listed, g_checksum_get_string(checksum)) != 0) {
                ctl_error("artifact '%s' changed since it was written (SHA-256 %s, listed %s)",
                          name, g_checksum_get_string(checksum), listed);
                r = CTL_EXIT_FAILURE;
        }
        if (tmp_path != NULL) {
                if (close(out_fd) < 0 && r == 0) {
                        ctl_error("cannot write %s: %s", ctx->output, g_strerror(errno));
                        r = CTL_EXIT_FAILURE;
                }
                if (r == 0 && rename(tmp_path, ctx->output) < 0) {
                        ctl_error("cannot write %s: %s", ctx->output, g_strerror(errno));
                        r = CTL_EXIT_FAILURE;
                }
                if (r != 0)
                        unlink(tmp_path);
        } else if (fflush(stdout) != 0) {
                r = CTL_EXIT_FAILURE;
        }
        if (r == 0 && tmp_path != NULL && !ctx->quiet)
                fprintf(stderr, "Saved %s (SHA-256 %s).\n", ctx->output,
                        g_checksum_get_string(checksum));
        return r;
}
