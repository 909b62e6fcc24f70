/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ignitionctl playbook save|delete: the daemon's local library. The daemon
 * validates and writes; this only reads the file the caller names (which the
 * daemon, running as its own user, may not be able to read). */
#include <gio/gio.h>
#include <gio/gunixinputstream.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "itk-limits.h"

/* FILE or standard input ("-"), refused past the daemon's size limit. */
static char *
ctl_library_read(const char *file, GError **error)
{
        g_autoptr(GInputStream) stream = NULL;
        g_autofree char *buffer = g_malloc(ITK_LIMIT_SOURCE_BYTES + 2);
        gsize n = 0;

        if (g_str_equal(file, "-")) {
                stream = G_INPUT_STREAM(g_unix_input_stream_new(0, FALSE));
        } else {
                g_autoptr(GFile) gfile = g_file_new_for_commandline_arg(file);
                stream = G_INPUT_STREAM(g_file_read(gfile, NULL, error));
                if (stream == NULL)
                        return NULL;
        }
        if (!g_input_stream_read_all(stream, buffer, ITK_LIMIT_SOURCE_BYTES + 1, &n, NULL, error))
                return NULL;
        if (n > ITK_LIMIT_SOURCE_BYTES) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                            "larger than the %d bytes a playbook may have", ITK_LIMIT_SOURCE_BYTES);
                return NULL;
        }
        if (memchr(buffer, '\0', n) != NULL || !g_utf8_validate(buffer, (gssize)n, NULL)) {
                g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "not UTF-8 text");
                return NULL;
        }
        buffer[n] = '\0';
        return g_steal_pointer(&buffer);
}

static int
ctl_library_save(CtlContext *ctx, const char *id, const char *file)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autofree char *what = g_strdup_printf("cannot save playbook %s", id);
        g_autoptr(GError) error = NULL;
        g_autofree char *source = ctl_library_read(file, &error);
        g_autoptr(JsonNode) diagnostics = NULL;
        int r;

        if (source == NULL) {
                ctl_error("cannot read %s: %s", file, error->message);
                return CTL_EXIT_NOINPUT;
        }
        r = ctl_call_manager(ctx, "SavePlaybook", &reply, what, "ss", id, source);
        if (r != 0)
                return r;
        diagnostics = ctl_json_read_reply(reply, &r);
        if (diagnostics == NULL || !JSON_NODE_HOLDS_ARRAY(diagnostics)) {
                ctl_error("cannot read the reply: %s", g_strerror(-r));
                return CTL_EXIT_FAILURE;
        }
        if (ctx->json) {
                ctl_json_print(ctx, diagnostics);
                return 0;
        }
        /* Saved playbooks have no errors; warnings are worth showing. */
        for (guint i = 0; i < json_array_get_length(json_node_get_array(diagnostics)); i++) {
                JsonObject *d = json_array_get_object_element(json_node_get_array(diagnostics), i);

                printf("%s:%" G_GINT64_FORMAT ":%" G_GINT64_FORMAT ": %s: %s\n", file,
                       ctl_json_get_int(d, "line", 0), ctl_json_get_int(d, "column", 0),
                       ctl_json_get_string(d, "severity"), ctl_json_get_string(d, "message"));
        }
        if (!ctx->quiet)
                printf("Saved playbook %s to the local library.\n", id);
        return 0;
}

static int
ctl_library_delete(CtlContext *ctx, const char *id)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autofree char *what = g_strdup_printf("cannot delete playbook %s", id);
        int r;

        r = ctl_call_manager(ctx, "DeletePlaybook", &reply, what, "s", id);
        if (r != 0)
                return r;
        if (!ctx->quiet)
                printf("Deleted playbook %s from the local library.\n", id);
        return 0;
}

int
ctl_verb_playbook(CtlContext *ctx, int argc, char **argv)
{
        const char *action = argv[1];

        if (g_str_equal(action, "save")) {
                if (argc != 4) {
                        ctl_error("playbook save takes an ID and a FILE (or - for standard input)");
                        return CTL_EXIT_USAGE;
                }
                return ctl_library_save(ctx, argv[2], argv[3]);
        }
        if (g_str_equal(action, "delete")) {
                if (argc != 3) {
                        ctl_error("playbook delete takes an ID");
                        return CTL_EXIT_USAGE;
                }
                return ctl_library_delete(ctx, argv[2]);
        }
        ctl_error("playbook takes save or delete, not '%s'", action);
        return CTL_EXIT_USAGE;
}
