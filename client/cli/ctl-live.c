/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ignitionctl live: the current frame of a run's browser (OpenLiveView,
 * docs/live-view.md), saved as a JPEG or described. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

/* How long to wait for the first frame of a page. */
#define CTL_LIVE_TIMEOUT_MSEC 30000
#define CTL_LIVE_MAX_HEADER 4096
#define CTL_LIVE_MAX_PAYLOAD (64u << 20)

/* Reads exactly @size bytes before @deadline (monotonic usec). 0, or -errno
 * (-ETIMEDOUT, -EPIPE at end of stream). */
static int
ctl_live_read(int fd, void *buf, size_t size, guint64 deadline)
{
        size_t done = 0;

        while (done < size) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                guint64 now = ctl_now_monotonic();
                ssize_t n;
                int r;

                if (now >= deadline)
                        return -ETIMEDOUT;
                r = poll(&pfd, 1, (int)((deadline - now + 999) / 1000));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        return -ETIMEDOUT;
                n = read(fd, (char *)buf + done, size - done);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EPIPE;
                done += (size_t)n;
        }
        return 0;
}

/* The next message: its header and payload. */
static int
ctl_live_next(int fd, guint64 deadline, JsonObject **ret_header, GBytes **ret_payload)
{
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autofree char *header = NULL;
        g_autofree guint8 *payload = NULL;
        guint32 prefix[2];
        guint32 hlen, plen;
        JsonNode *root;
        int r;

        r = ctl_live_read(fd, prefix, sizeof(prefix), deadline);
        if (r < 0)
                return r;
        hlen = GUINT32_FROM_BE(prefix[0]);
        plen = GUINT32_FROM_BE(prefix[1]);
        if (hlen == 0 || hlen > CTL_LIVE_MAX_HEADER || plen > CTL_LIVE_MAX_PAYLOAD)
                return -EBADMSG;
        header = g_malloc(hlen);
        payload = g_malloc(plen > 0 ? plen : 1);
        r = ctl_live_read(fd, header, hlen, deadline);
        if (r >= 0)
                r = ctl_live_read(fd, payload, plen, deadline);
        if (r < 0)
                return r;
        if (!json_parser_load_from_data(parser, header, hlen, NULL) ||
            (root = json_parser_get_root(parser)) == NULL || !JSON_NODE_HOLDS_OBJECT(root))
                return -EBADMSG;
        *ret_header = json_object_ref(json_node_get_object(root));
        *ret_payload = g_bytes_new_take(g_steal_pointer(&payload), plen);
        return 0;
}

static int
ctl_live_save(const char *file, GBytes *jpeg)
{
        g_autoptr(GError) error = NULL;
        gsize size;
        const char *data = g_bytes_get_data(jpeg, &size);

        if (g_str_equal(file, "-")) {
                if (fwrite(data, 1, size, stdout) != size || fflush(stdout) != 0) {
                        ctl_error("cannot write the frame to standard output: %s",
                                  g_strerror(errno));
                        return CTL_EXIT_FAILURE;
                }
                return 0;
        }
        /* Written to a temporary file and renamed: never half a picture. */
        if (!g_file_set_contents(file, data, (gssize)size, &error)) {
                ctl_error("cannot save the frame: %s", error->message);
                return CTL_EXIT_FAILURE;
        }
        return 0;
}

static void
ctl_live_print_info(CtlContext *ctx, JsonObject *header, gsize jpeg_size, FILE *out)
{
        g_autofree char *when = NULL;

        if (ctx->json) {
                g_autoptr(JsonObject) copy = json_object_new();
                g_autoptr(JsonNode) node = NULL;
                g_autoptr(GList) members = json_object_get_members(header);

                for (GList *l = members; l != NULL; l = l->next)
                        json_object_set_member(
                                copy, l->data,
                                json_node_copy(json_object_get_member(header, l->data)));
                json_object_set_int_member(copy, "size", (gint64)jpeg_size);
                node = json_node_init_object(json_node_alloc(), copy);
                ctl_json_print(ctx, node);
                return;
        }
        when = ctl_format_timestamp((guint64)ctl_json_get_int(header, "timestamp", 0));
        fprintf(out, "URL:      %s\n", ctl_json_get_string(header, "url"));
        fprintf(out, "Step:     %s\n",
                *ctl_json_get_string(header, "step") != '\0' ? ctl_json_get_string(header, "step")
                                                             : "-");
        fprintf(out, "Size:     %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " (JPEG, %zu bytes)\n",
                ctl_json_get_int(header, "width", 0), ctl_json_get_int(header, "height", 0),
                (size_t)jpeg_size);
        fprintf(out, "Taken:    %s\n", when);
        fprintf(out, "Frame:    %" G_GINT64_FORMAT "\n", ctl_json_get_int(header, "sequence", 0));
}

int
ctl_verb_live(CtlContext *ctx, int argc, char **argv)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(JsonObject) header = NULL;
        g_autoptr(GBytes) payload = NULL;
        g_autofree char *id = NULL;
        g_autofree char *path = NULL;
        guint64 deadline;
        sd_bus *bus;
        int fd = -1, view_fd, r;

        if (ctx->output == NULL && !ctx->info) {
                ctl_error("live needs -o FILE.jpg (save the frame) or --info (describe it)");
                return CTL_EXIT_USAGE;
        }
        if (ctx->output != NULL && g_str_equal(ctx->output, "-") && ctx->info) {
                ctl_error("live -o - writes the JPEG to standard output: --info cannot go there "
                          "too");
                return CTL_EXIT_USAGE;
        }
        r = ctl_resolve_execution(ctx, argv[1], &id, &path);
        if (r != 0)
                return r;
        if (path == NULL) {
                ctl_error("execution %s has ended: its browser is closed", id);
                return CTL_EXIT_FAILURE;
        }
        r = ctl_get_bus(ctx, &bus);
        if (r != 0)
                return r;
        r = sd_bus_call_method(bus, CTL_BUS_NAME, path, CTL_EXECUTION_IFACE, "OpenLiveView", &error,
                               &reply, "a{sv}", 0);
        if (r < 0)
                return ctl_bus_error(ctx, &error, r, "cannot watch execution %s", id);
        r = sd_bus_message_read(reply, "h", &view_fd);
        if (r >= 0) {
                /* The message owns its fd. */
                fd = fcntl(view_fd, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        r = -errno;
        }
        if (r < 0) {
                ctl_error("cannot read the live view of %s: %s", id, g_strerror(-r));
                return CTL_EXIT_FAILURE;
        }
        deadline = ctl_now_monotonic() + CTL_LIVE_TIMEOUT_MSEC * 1000ull;
        for (;;) {
                const char *type, *state;

                g_clear_pointer(&header, json_object_unref);
                g_clear_pointer(&payload, g_bytes_unref);
                r = ctl_live_next(fd, deadline, &header, &payload);
                if (r < 0)
                        break;
                type = ctl_json_get_string(header, "type");
                if (g_str_equal(type, "frame"))
                        break;
                state = ctl_json_get_string(header, "state");
                /* "waiting": the page's first frame is coming. */
                if (g_str_equal(state, "no-browser") || g_str_equal(state, "closed")) {
                        ctl_error("execution %s: %s", id, ctl_json_get_string(header, "message"));
                        close(fd);
                        return CTL_EXIT_FAILURE;
                }
        }
        close(fd);
        if (r == -ETIMEDOUT) {
                ctl_error("execution %s: no frame of its page within %d s", id,
                          CTL_LIVE_TIMEOUT_MSEC / 1000);
                return CTL_EXIT_FAILURE;
        }
        if (r == -EPIPE) {
                ctl_error("execution %s ended before a frame came", id);
                return CTL_EXIT_FAILURE;
        }
        if (r < 0) {
                ctl_error("cannot read the live view of %s: %s", id,
                          r == -EBADMSG ? "malformed message" : g_strerror(-r));
                return CTL_EXIT_FAILURE;
        }
        if (ctx->output != NULL) {
                r = ctl_live_save(ctx->output, payload);
                if (r != 0)
                        return r;
        }
        if (ctx->info)
                ctl_live_print_info(ctx, header, g_bytes_get_size(payload), stdout);
        else if (!ctx->quiet && !g_str_equal(ctx->output, "-"))
                printf("%s (%s)\n", ctx->output, ctl_json_get_string(header, "url"));
        return 0;
}
