/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* itk-bench-bridge: WebSocket fan-out latency of ignition-toolkit-bridge.
 *
 * Starts a private bus, ignition-toolkitd and the bridge, connects N WebSocket
 * clients (this process: one epoll thread, or libsoup on the main loop), runs a
 * playbook of utility.log (or paced utility.sleep) steps --runs times, one
 * after the other, and measures, for every StatusChanged and StepChanged, the
 * time from the signal's arrival at a direct D-Bus client in this process
 * (timestamped in GDBus's worker thread, as it comes off the socket) to its
 * receipt by each WebSocket client. Prints JSON: latency percentiles over all
 * the runs and each run's p99, what was delivered, the bridge's memory and the
 * CPU used. "before_reference" counts receipts that beat the reference thread
 * (both are on the same busy cores); they count as 0 ms. The default, 30 steps
 * ten times, is a fast playbook the size of the largest of the old tool's. */
#define _GNU_SOURCE /* memmem */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef ITK_BENCH_DBUS_CONFIG
#define ITK_BENCH_DBUS_CONFIG "tests/integration/dbus-test.conf"
#endif

typedef struct {
        /* Reference times, written by the GDBus worker thread. */
        GMutex lock;
        GHashTable *reference; /* "status:running" / "step:3:completed" -> gint64 usec */
        gint64 first_reference, last_reference;
        double emit_ms_total; /* over the runs done */

        GMainLoop *loop;
        GDBusConnection *bus;
        SoupSession *session;
        GPtrArray *clients;
        GArray *receipts;  /* Receipt */
        GArray *latencies; /* gint64 usec */
        gint connected;    /* atomic: raw clients count in their reader thread */
        gint snapshots;    /* atomic */
        gint finished;     /* atomic */
        guint failed;
        guint missing;
        guint early; /* received over the WebSocket before the reference */
        guint events;
        guint frames;
        guint64 bytes;
        GMutex frames_lock; /* frames_in and arena: the reader thread appends */
        GArray *frames_in;  /* Frame: parsed after the run */
        GPtrArray *arena;   /* FrameChunk: the frames' bytes, kept until the run ends */
        guint arena_current;
        guint8 *scratch; /* raw clients: what one recv() returns */
        char *execution_hex;
        int want_clients;
        int epoll_fd;    /* raw clients */
        GThread *reader; /* raw clients */
        gint stop_reader;

} Bench;

typedef struct {
        GQuark key;
        gint64 usec;
} Receipt;

typedef struct {
        Bench *bench;
        SoupWebsocketConnection *conn; /* libsoup clients */
        GSocketConnection *connection; /* raw clients */
        GByteArray *in;                /* raw clients: bytes not parsed yet */
        gboolean upgraded;
        gboolean finished;
} Client;

/* A frame as received: when, by whom, and its bytes (in the arena). */
typedef struct {
        Client *client;
        gint64 usec;
        const char *data;
        gsize size;
} Frame;

/* The frames of a run are copied into large chunks whose pages are touched
 * before the run, so receiving costs a memcpy and not a malloc and page
 * faults per frame, which on two cores would be counted against the bridge. */
#define FRAME_CHUNK_SIZE (16u << 20)
#define FRAME_CHUNKS_PREFAULTED 4
#define SCRATCH_SIZE (1u << 20)

typedef struct {
        gsize used, size;
        guint8 data[];
} FrameChunk;

static FrameChunk *
frame_chunk_new(gsize size)
{
        FrameChunk *chunk = g_malloc(sizeof(FrameChunk) + size);

        /* Touch every page now rather than in the middle of a run. */
        memset(chunk->data, 0xa5, size);
        chunk->used = 0;
        chunk->size = size;
        return chunk;
}

/* Chunks are used in order; a frame that does not fit in what is left of
 * the current one goes to the next (a new one when the pre-faulted are used). */
static const char *
arena_store(GPtrArray *arena, guint *current, const void *data, gsize size)
{
        FrameChunk *chunk;
        guint8 *at;

        for (;;) {
                if (*current == arena->len)
                        g_ptr_array_add(arena, frame_chunk_new(MAX(size, FRAME_CHUNK_SIZE)));
                chunk = g_ptr_array_index(arena, *current);
                if (chunk->size - chunk->used >= size)
                        break;
                ++*current;
        }
        at = chunk->data + chunk->used;
        memcpy(at, data, size);
        chunk->used += size;
        return (const char *)at;
}

static gboolean
fail_timeout_cb(gpointer user_data)
{
        g_printerr("itk-bench-bridge: timed out\n");
        exit(1);
}

/* @poll: the condition is not an event of this loop, so do not block on it. */
static void
run_until(Bench *bench, gboolean (*done)(Bench *), guint seconds, gboolean poll)
{
        guint id = g_timeout_add_seconds(seconds, fail_timeout_cb, NULL);

        while (!done(bench))
                g_main_context_iteration(NULL, !poll);
        g_source_remove(id);
}

/* --- processes ------------------------------------------------------------------ */

static char *
read_first_line(GSubprocess *proc)
{
        GInputStream *out = g_subprocess_get_stdout_pipe(proc);
        g_autoptr(GDataInputStream) data = g_data_input_stream_new(out);
        g_autoptr(GError) error = NULL;
        char *line;

        /* Not closing the pipe: the child keeps writing to it. */
        g_filter_input_stream_set_close_base_stream(G_FILTER_INPUT_STREAM(data), FALSE);
        line = g_data_input_stream_read_line(data, NULL, NULL, &error);
        if (line == NULL) {
                g_printerr("itk-bench-bridge: child exited early: %s\n",
                           error != NULL ? error->message : "end of output");
                exit(1);
        }
        return line;
}

static void
die_with_parent(gpointer user_data)
{
        prctl(PR_SET_PDEATHSIG, SIGTERM);
}

/* The children go when the bench does, even when it exits on a failure. */
static GSubprocess *
spawn(GSubprocessFlags flags, GError **error, const char *const *argv)
{
        g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(flags);

        g_subprocess_launcher_set_child_setup(launcher, die_with_parent, NULL, NULL);
        return g_subprocess_launcher_spawnv(launcher, argv, error);
}

static void
stop(GSubprocess *proc)
{
        if (proc == NULL)
                return;
        g_subprocess_send_signal(proc, SIGTERM);
        g_subprocess_wait(proc, NULL, NULL);
}

static long
proc_status_kb(GSubprocess *proc, const char *field)
{
        g_autofree char *path =
                g_strdup_printf("/proc/%s/status", g_subprocess_get_identifier(proc));
        g_autofree char *text = NULL;
        const char *p;

        if (!g_file_get_contents(path, &text, NULL, NULL))
                return -1;
        p = strstr(text, field);
        if (p == NULL)
                return -1;
        return strtol(p + strlen(field) + 1, NULL, 10);
}

/* utime + stime of a process, in seconds. */
static double
proc_cpu_seconds(const char *pid)
{
        g_autofree char *path = g_strdup_printf("/proc/%s/stat", pid);
        g_autofree char *text = NULL;
        g_auto(GStrv) fields = NULL;
        const char *p;

        if (!g_file_get_contents(path, &text, NULL, NULL))
                return -1;
        /* After the command name in parentheses: state is field 3, utime 14, stime 15. */
        p = strrchr(text, ')');
        if (p == NULL)
                return -1;
        fields = g_strsplit(p + 2, " ", -1);
        if (g_strv_length(fields) < 13)
                return -1;
        return (g_ascii_strtod(fields[11], NULL) + g_ascii_strtod(fields[12], NULL)) /
               sysconf(_SC_CLK_TCK);
}

/* --- the reference: a direct D-Bus client ---------------------------------------- */

static GDBusMessage *
filter_cb(GDBusConnection *conn, GDBusMessage *message, gboolean incoming, gpointer user_data)
{
        Bench *bench = user_data;
        const char *member;
        GVariant *body;
        char *key = NULL;
        gint64 now;

        if (!incoming || g_dbus_message_get_message_type(message) != G_DBUS_MESSAGE_TYPE_SIGNAL)
                return message;
        now = g_get_monotonic_time();
        member = g_dbus_message_get_member(message);
        body = g_dbus_message_get_body(message);
        if (g_strcmp0(member, "StatusChanged") == 0 &&
            g_variant_is_of_type(body, G_VARIANT_TYPE("(ss)"))) {
                const char *status;

                g_variant_get(body, "(&ss)", &status, NULL);
                key = g_strdup_printf("status:%s", status);
        } else if (g_strcmp0(member, "StepChanged") == 0 &&
                   g_variant_is_of_type(body, G_VARIANT_TYPE("(isss)"))) {
                const char *status;
                gint32 index;

                g_variant_get(body, "(is&ss)", &index, NULL, &status, NULL);
                key = g_strdup_printf("step:%d:%s", index, status);
        }
        if (key != NULL) {
                g_mutex_lock(&bench->lock);
                g_hash_table_replace(bench->reference, key, g_memdup2(&now, sizeof(now)));
                if (bench->first_reference == 0)
                        bench->first_reference = now;
                bench->last_reference = now;
                g_mutex_unlock(&bench->lock);
        }
        return message;
}

static void
ignore_signal_cb(GDBusConnection *conn, const char *sender, const char *path, const char *iface,
                 const char *signal, GVariant *params, gpointer user_data)
{
}

/* --- WebSocket clients ----------------------------------------------------------- */

/* The bridge's JSON is compact and flat for these events: a scan is enough
 * and keeps the client side cheap, so the numbers are the bridge's. */
static gboolean
field_string(const char *text, const char *name, char *out, gsize size)
{
        g_autofree char *pattern = g_strdup_printf("\"%s\":\"", name);
        const char *p = strstr(text, pattern);
        const char *end;

        if (p == NULL)
                return FALSE;
        p += strlen(pattern);
        end = strchr(p, '"');
        if (end == NULL || (gsize)(end - p) >= size)
                return FALSE;
        memcpy(out, p, end - p);
        out[end - p] = '\0';
        return TRUE;
}

static void handle_event(Client *client, const char *text, gint64 now);

/* Receipt is the moment the frame is handed to the client. Parsing waits
 * until the run is over: 500 clients share this one process, and their JSON
 * work done here would delay the frames still queued for the others and be
 * counted against the bridge. Only the end of the run is looked for now. */
static void
frame_received(Client *client, gint64 now, const char *data, gsize size)
{
        Bench *bench = client->bench;
        Frame frame = { client, now, NULL, size };
        gsize tail;
        static const char finished[] = "{\"type\":\"finished\"";
        static const char snapshot[] = "{\"type\":\"snapshot\"";

        bench->frames++;
        bench->bytes += size;
        if (size >= sizeof(snapshot) - 1 && memcmp(data, snapshot, sizeof(snapshot) - 1) == 0) {
                g_atomic_int_inc(&bench->snapshots);
                g_main_context_wakeup(NULL);
                return;
        }
        g_mutex_lock(&bench->frames_lock);
        frame.data = arena_store(bench->arena, &bench->arena_current, data, size);
        g_array_append_val(bench->frames_in, frame);
        g_mutex_unlock(&bench->frames_lock);
        /* Finished is the execution's last signal: it ends its frame. */
        tail = size > 512 ? size - 512 : 0;
        if (!client->finished &&
            memmem(data + tail, size - tail, finished, sizeof(finished) - 1) != NULL) {
                client->finished = TRUE;
                g_atomic_int_inc(&bench->finished);
                g_main_context_wakeup(NULL);
        }
}

static void
message_cb(SoupWebsocketConnection *conn, gint type, GBytes *message, gpointer user_data)
{
        gsize size;
        const char *data = g_bytes_get_data(message, &size);

        frame_received(user_data, g_get_monotonic_time(), data, size);
}

/* --- raw clients -------------------------------------------------------------------
 *
 * libsoup's client reads a frame 1 KB per read() and checks its UTF-8 byte by
 * byte. 500 of them in this one process, on the same two cores as the bridge,
 * spend more CPU on a fast playbook than the bridge does, and the latency
 * measured would be the bench's own. The bridge's real clients are browsers,
 * each on a machine of its own, reading in large chunks. So by default each
 * client here is a socket read 64 KB at a time, with the framing of RFC 6455
 * section 5.2 (a server never masks, the bridge never fragments);
 * --libsoup-clients measures with libsoup's client instead. */

static void
raw_fail(Client *client, const char *what)
{
        g_printerr("itk-bench-bridge: WebSocket client: %s\n", what);
        exit(1);
}

/* Parses the complete frames at the start of @data; returns the bytes used. */
static gsize
raw_parse_frames(Client *client, const guint8 *data, gsize len, gint64 now)
{
        gsize at = 0;

        while (len - at >= 2) {
                guint8 opcode = data[at] & 0x0f;
                guint64 payload = data[at + 1] & 0x7f;
                gsize header = 2;

                if (!(data[at] & 0x80) || (data[at + 1] & 0x80))
                        raw_fail(client, "a fragmented or masked frame from the server");
                if (payload == 126) {
                        if (len - at < 4)
                                break;
                        payload = (guint64)data[at + 2] << 8 | data[at + 3];
                        header = 4;
                } else if (payload == 127) {
                        if (len - at < 10)
                                break;
                        payload = 0;
                        for (int i = 0; i < 8; i++)
                                payload = payload << 8 | data[at + 2 + i];
                        header = 10;
                }
                if (len - at - header < payload)
                        break;
                if (opcode == 0x1)
                        frame_received(client, now, (const char *)data + at + header, payload);
                else if (opcode == 0x8) {
                        raw_fail(client, "closed by the bridge");
                }
                /* Pings (0x9) need no answer within a run. */
                at += header + payload;
        }
        return at;
}

/* Takes @data as read: frames are parsed where they lie, and only a
 * frame's incomplete tail is kept for the next read. */
static void
raw_consume(Client *client, const guint8 *data, gsize len, gint64 now)
{
        GByteArray *in = client->in;
        gsize used;

        if (in->len > 0 || !client->upgraded) {
                g_byte_array_append(in, data, len);
                data = in->data;
                len = in->len;
        }
        if (!client->upgraded) {
                const char *end = g_strstr_len((const char *)data, len, "\r\n\r\n");

                if (end == NULL)
                        return;
                if (len < 12 || memcmp(data, "HTTP/1.1 101", 12) != 0)
                        raw_fail(client, "the bridge refused the upgrade");
                g_byte_array_remove_range(in, 0, end + 4 - (const char *)data);
                client->upgraded = TRUE;
                g_atomic_int_inc(&client->bench->connected);
                data = in->data;
                len = in->len;
        }
        used = raw_parse_frames(client, data, len, now);
        if (data == in->data)
                g_byte_array_remove_range(in, 0, used);
        else if (used < len)
                g_byte_array_append(in, data + used, len - used);
}

static void
raw_read(Client *client)
{
        int fd = g_socket_get_fd(g_socket_connection_get_socket(client->connection));
        guint8 *scratch = client->bench->scratch;
        gint64 now = g_get_monotonic_time();

        for (;;) {
                gssize n = recv(fd, scratch, SCRATCH_SIZE, 0);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n <= 0)
                        raw_fail(client, n == 0 ? "end of stream" : g_strerror(errno));
                raw_consume(client, scratch, n, now);
                if ((gsize)n < SCRATCH_SIZE)
                        break;
        }
}

/* The raw clients' loop: epoll wakes it for the sockets that have data, where
 * a GLib loop would poll all 500 each time. */
static gpointer
raw_reader_thread(gpointer user_data)
{
        Bench *bench = user_data;
        struct epoll_event events[64];

        while (!g_atomic_int_get(&bench->stop_reader)) {
                int n = epoll_wait(bench->epoll_fd, events, G_N_ELEMENTS(events), 50);

                if (n < 0 && errno != EINTR) {
                        g_printerr("itk-bench-bridge: epoll_wait: %s\n", g_strerror(errno));
                        exit(1);
                }
                for (int i = 0; i < n; i++)
                        raw_read(events[i].data.ptr);
        }
        return NULL;
}

static void
raw_connect(Client *client, guint port, const char *token)
{
        g_autoptr(GSocketClient) connector = g_socket_client_new();
        g_autoptr(GSocketConnection) connection = NULL;
        g_autoptr(GError) error = NULL;
        GSocket *socket;
        g_autofree char *request = g_strdup_printf(
                "GET /ws/executions?access_token=%s HTTP/1.1\r\n"
                "Host: 127.0.0.1:%u\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: aXRrLWJlbmNoLWJyaWRnZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                token, port);

        connection = g_socket_client_connect_to_host(connector, "127.0.0.1", port, NULL, &error);
        if (connection == NULL)
                raw_fail(client, error->message);
        client->connection = g_steal_pointer(&connection);
        socket = g_socket_connection_get_socket(client->connection);
        if (g_socket_send(socket, request, strlen(request), NULL, &error) < 0)
                raw_fail(client, error->message);
        g_socket_set_blocking(socket, FALSE);
        client->in = g_byte_array_new();
        {
                struct epoll_event event = { .events = EPOLLIN, .data.ptr = client };

                if (epoll_ctl(client->bench->epoll_fd, EPOLL_CTL_ADD, g_socket_get_fd(socket),
                              &event) < 0)
                        raw_fail(client, g_strerror(errno));
        }
}

static void
parse_frame(Frame *frame)
{
        g_autofree char *text = g_strndup(frame->data, frame->size);
        const char *batch = "{\"type\":\"batch\",\"events\":[";

        if (!g_str_has_prefix(text, batch)) {
                handle_event(frame->client, text, frame->usec);
                return;
        }
        /* A batch of flat event objects: cut it at each event's start. */
        for (char *event = strstr(text + strlen(batch), "{\"type\":\""); event != NULL;) {
                char *next = strstr(event + 1, "{\"type\":\"");
                if (next != NULL)
                        next[-1] = '\0';
                handle_event(frame->client, event, frame->usec);
                if (next != NULL)
                        next[-1] = ',';
                event = next;
        }
}

static void
handle_event(Client *client, const char *text, gint64 now)
{
        Bench *bench = client->bench;
        char kind[32], status[32], key[96];
        Receipt sample;

        if (!field_string(text, "type", kind, sizeof(kind)))
                return;
        if (g_str_equal(kind, "status") && field_string(text, "status", status, sizeof(status))) {
                g_snprintf(key, sizeof(key), "status:%s", status);
        } else if (g_str_equal(kind, "step") &&
                   field_string(text, "status", status, sizeof(status))) {
                const char *index = strstr(text, "\"index\":");

                if (index == NULL)
                        return;
                g_snprintf(key, sizeof(key), "step:%ld:%s", strtol(index + 8, NULL, 10), status);
        } else {
                return;
        }
        bench->events++;
        /* Matched after the run: under load the reference thread may be
         * scheduled after this one. */
        sample.key = g_quark_from_string(key);
        sample.usec = now;
        g_array_append_val(bench->receipts, sample);
}

static void
connected_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
        Client *client = user_data;
        g_autoptr(GError) error = NULL;

        client->conn = soup_session_websocket_connect_finish(SOUP_SESSION(source), res, &error);
        if (client->conn == NULL) {
                g_printerr("itk-bench-bridge: connect: %s\n", error->message);
                client->bench->failed++;
                return;
        }
        soup_websocket_connection_set_max_incoming_payload_size(client->conn, 0);
        g_signal_connect(client->conn, "message", G_CALLBACK(message_cb), client);
        g_atomic_int_inc(&client->bench->connected);
}

static gboolean
all_connected(Bench *bench)
{
        gint connected = g_atomic_int_get(&bench->connected);

        return (guint)connected + bench->failed >= (guint)bench->want_clients &&
               g_atomic_int_get(&bench->snapshots) >= connected;
}

static gboolean
all_finished(Bench *bench)
{
        return g_atomic_int_get(&bench->finished) >= g_atomic_int_get(&bench->connected);
}

static gboolean
started(Bench *bench)
{
        return bench->execution_hex != NULL;
}

static void
start_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
        Bench *bench = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply =
                g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
        const char *path;

        if (reply == NULL) {
                g_printerr("itk-bench-bridge: StartExecution: %s\n", error->message);
                exit(1);
        }
        g_variant_get(reply, "(&o)", &path);
        bench->execution_hex = g_strdup(strrchr(path, '/') + 1);
}

static gboolean
name_present(Bench *bench)
{
        g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
                bench->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                "NameHasOwner", g_variant_new("(s)", "org.ignition.Toolkit"), G_VARIANT_TYPE("(b)"),
                G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
        gboolean has = FALSE;

        if (reply != NULL)
                g_variant_get(reply, "(b)", &has);
        if (!has)
                g_usleep(20000); /* a bench tool waiting for its child; not product code */
        return has;
}

static int
compare_int64(gconstpointer a, gconstpointer b)
{
        gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;

        return (x > y) - (x < y);
}

static double
percentile_ms(GArray *sorted, double p)
{
        guint i;

        if (sorted->len == 0)
                return 0;
        i = (guint)(p * (sorted->len - 1) + 0.5);
        return g_array_index(sorted, gint64, i) / 1000.0;
}

/* @pace_ms > 0: utility.sleep steps of that length instead of utility.log, so
 * the event rate stays below what the fan-out can carry. */
static char *
write_playbook(guint steps, int pace_ms)
{
        GString *s = g_string_new("name: Bridge bench\nversion: \"1.0\"\nsteps:\n");

        for (guint i = 0; i < steps; i++) {
                if (pace_ms > 0)
                        g_string_append_printf(s,
                                               "  - id: s%u\n    name: Step %u\n"
                                               "    type: utility.sleep\n    parameters:\n"
                                               "      seconds: %g\n",
                                               i, i, pace_ms / 1000.0);
                else
                        g_string_append_printf(s,
                                               "  - id: s%u\n    name: Step %u\n"
                                               "    type: utility.log\n    parameters:\n"
                                               "      message: \"step %u\"\n",
                                               i, i, i);
        }
        return g_string_free(s, FALSE);
}

/* Matches one run's receipts with the reference times and adds their
 * latencies; leaves the bench ready for the next run. Frames of the next
 * run cannot arrive yet, but late ones of this run may, so the arena is only
 * rewound when nothing was added to it meanwhile. */
static void
collect_run(Bench *bench, GArray *run_p99)
{
        g_autoptr(GArray) run = g_array_new(FALSE, FALSE, sizeof(gint64));
        g_autoptr(GArray) frames = NULL;
        double p99;

        g_mutex_lock(&bench->frames_lock);
        frames = g_steal_pointer(&bench->frames_in);
        bench->frames_in = g_array_new(FALSE, FALSE, sizeof(Frame));
        g_mutex_unlock(&bench->frames_lock);
        for (guint i = 0; i < frames->len; i++)
                parse_frame(&g_array_index(frames, Frame, i));
        g_mutex_lock(&bench->frames_lock);
        if (bench->frames_in->len == 0) {
                for (guint i = 0; i < bench->arena->len; i++)
                        ((FrameChunk *)g_ptr_array_index(bench->arena, i))->used = 0;
                bench->arena_current = 0;
        }
        g_mutex_unlock(&bench->frames_lock);

        /* Let the last reference signals be recorded, then match. */
        g_usleep(100000);
        g_mutex_lock(&bench->lock);
        for (guint i = 0; i < bench->receipts->len; i++) {
                Receipt *r = &g_array_index(bench->receipts, Receipt, i);
                gint64 *reference =
                        g_hash_table_lookup(bench->reference, g_quark_to_string(r->key));
                gint64 latency;

                if (reference == NULL) {
                        bench->missing++;
                        continue;
                }
                latency = MAX(r->usec - *reference, 0);
                if (g_getenv("ITK_BENCH_DEBUG") != NULL)
                        g_printerr("%s ref %" G_GINT64_FORMAT " got %" G_GINT64_FORMAT "\n",
                                   g_quark_to_string(r->key), *reference, r->usec);
                if (r->usec < *reference)
                        bench->early++;
                g_array_append_val(run, latency);
        }
        bench->emit_ms_total += (bench->last_reference - bench->first_reference) / 1000.0;
        g_hash_table_remove_all(bench->reference);
        bench->first_reference = bench->last_reference = 0;
        g_mutex_unlock(&bench->lock);
        g_array_set_size(bench->receipts, 0);

        g_array_append_vals(bench->latencies, run->data, run->len);
        g_array_sort(run, compare_int64);
        p99 = percentile_ms(run, 0.99);
        g_array_append_val(run_p99, p99);

        g_clear_pointer(&bench->execution_hex, g_free);
        for (guint i = 0; i < bench->clients->len; i++)
                ((Client *)g_ptr_array_index(bench->clients, i))->finished = FALSE;
        g_atomic_int_set(&bench->finished, 0);
}

int
main(int argc, char **argv)
{
        g_autofree char *daemon_path = NULL;
        g_autofree char *bridge_path = NULL;
        g_autofree char *dbus_config = NULL;
        gboolean quick = FALSE;
        gboolean libsoup_clients = FALSE;
        int clients = 500;
        int steps = 30;
        int pace_ms = 0;
        int runs = 10;
        g_autoptr(GArray) run_p99 = g_array_new(FALSE, FALSE, sizeof(double));
        g_autoptr(GString) run_p99_json = g_string_new("[");
        g_autoptr(GError) error = NULL;
        g_autoptr(GOptionContext) context = NULL;
        g_autofree char *tmp = NULL;
        g_autofree char *address = NULL;
        g_autofree char *listen_line = NULL;
        g_autofree char *token = NULL;
        g_autoptr(GSubprocess) bus_proc = NULL;
        g_autoptr(GSubprocess) daemon_proc = NULL;
        g_autoptr(GSubprocess) bridge_proc = NULL;
        Bench bench = { 0 };
        guint port;
        long rss_idle, rss_connected, rss_end, hwm;
        gint64 t_start, t_end = 0, run_us = 0;
        struct rlimit rl;
        double bridge_cpu, self_cpu;
        guint expected;
        int rc;
        const GOptionEntry entries[] = {
                { "daemon", 0, 0, G_OPTION_ARG_FILENAME, &daemon_path, "ignition-toolkitd",
                  "PATH" },
                { "bridge", 0, 0, G_OPTION_ARG_FILENAME, &bridge_path, "ignition-toolkit-bridge",
                  "PATH" },
                { "dbus-config", 0, 0, G_OPTION_ARG_FILENAME, &dbus_config,
                  "dbus-daemon configuration", "FILE" },
                { "clients", 0, 0, G_OPTION_ARG_INT, &clients, "WebSocket clients (500)", "N" },
                { "steps", 0, 0, G_OPTION_ARG_INT, &steps, "utility.log steps (30)", "N" },
                { "pace-ms", 0, 0, G_OPTION_ARG_INT, &pace_ms,
                  "Sleep steps of this length instead of log steps", "MS" },
                { "runs", 0, 0, G_OPTION_ARG_INT, &runs,
                  "Run the playbook this many times, one after the other (10)", "N" },
                { "libsoup-clients", 0, 0, G_OPTION_ARG_NONE, &libsoup_clients,
                  "Clients use libsoup's WebSocket client (costs this process more)", NULL },
                { "quick", 0, 0, G_OPTION_ARG_NONE, &quick, "A small run (CI)", NULL },
                { NULL },
        };

        context = g_option_context_new("- WebSocket fan-out benchmark of the bridge");
        g_option_context_add_main_entries(context, entries, NULL);
        if (!g_option_context_parse(context, &argc, &argv, &error) || daemon_path == NULL ||
            bridge_path == NULL) {
                g_printerr("%s\n",
                           error != NULL ? error->message : "--daemon and --bridge are required");
                return 2;
        }
        if (quick) {
                clients = 20;
                steps = 20;
                runs = 2;
        }
        if (clients < 1 || steps < 1 || runs < 1)
                return 2;
        /* Each client is a socket here and one in the bridge. */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
        bench.want_clients = clients;
        bench.reference = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        bench.latencies = g_array_new(FALSE, FALSE, sizeof(gint64));
        bench.receipts = g_array_new(FALSE, FALSE, sizeof(Receipt));
        bench.frames_in = g_array_new(FALSE, FALSE, sizeof(Frame));
        bench.arena = g_ptr_array_new_with_free_func(g_free);
        /* Touched here, by the snapshots' reads, before the run. */
        bench.scratch = g_malloc(SCRATCH_SIZE);
        bench.clients = g_ptr_array_new_with_free_func(g_free);
        g_mutex_init(&bench.lock);
        g_mutex_init(&bench.frames_lock);

        tmp = g_dir_make_tmp("itk-bench-bridge-XXXXXX", &error);
        g_assert_no_error(error);
        {
                g_autofree char *config = g_build_filename(tmp, "config", NULL);
                g_autofree char *library = g_build_filename(tmp, "library", NULL);
                g_autofree char *state = g_build_filename(tmp, "state", NULL);
                g_autofree char *bridge_state = g_build_filename(tmp, "bridge", NULL);
                g_autofree char *conf = g_build_filename(config, "toolkit.conf", NULL);
                g_autofree char *book = g_build_filename(library, "bench.yaml", NULL);
                g_autofree char *text = write_playbook((guint)steps, pace_ms);
                g_autofree char *token_path = g_build_filename(bridge_state, "bridge-token", NULL);
                g_autofree char *bus_arg = NULL;
                g_autofree char *config_arg = NULL;
                g_autofree char *state_arg = NULL;
                g_autofree char *library_arg = NULL;
                g_autofree char *bridge_state_arg = NULL;
                g_autofree char *dbus_config_arg = g_strdup_printf(
                        "--config-file=%s", dbus_config ? dbus_config : ITK_BENCH_DBUS_CONFIG);

                g_mkdir_with_parents(config, 0700);
                g_mkdir_with_parents(library, 0700);
                g_mkdir_with_parents(state, 0700);
                g_file_set_contents(conf, "[Daemon]\nMaxConcurrentExecutions=4\n", -1, NULL);
                g_file_set_contents(book, text, -1, NULL);

                bus_proc = spawn(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                                 &error,
                                 (const char *const[]){ "dbus-daemon", dbus_config_arg,
                                                        "--print-address=1", "--nofork", NULL });
                g_assert_no_error(error);
                address = read_first_line(bus_proc);
                bench.bus = g_dbus_connection_new_for_address_sync(
                        address,
                        G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                        NULL, NULL, &error);
                g_assert_no_error(error);
                g_dbus_connection_add_filter(bench.bus, filter_cb, &bench, NULL);
                g_dbus_connection_signal_subscribe(
                        bench.bus, NULL, "org.ignition.Toolkit.Execution", NULL, NULL, NULL,
                        G_DBUS_SIGNAL_FLAGS_NONE, ignore_signal_cb, NULL, NULL);

                bus_arg = g_strdup_printf("--bus-address=%s", address);
                config_arg = g_strdup_printf("--config-dir=%s", config);
                state_arg = g_strdup_printf("--state-dir=%s", state);
                library_arg = g_strdup_printf("--playbook-path=%s", library);
                daemon_proc = spawn(G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error,
                                    (const char *const[]){ daemon_path, bus_arg, config_arg,
                                                           state_arg, library_arg, NULL });
                g_assert_no_error(error);
                run_until(&bench, name_present, 30, TRUE);

                bridge_state_arg = g_strdup_printf("--state-dir=%s", bridge_state);
                bridge_proc =
                        spawn(G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error,
                              (const char *const[]){ bridge_path, bus_arg, "--listen=127.0.0.1:0",
                                                     bridge_state_arg, NULL });
                g_assert_no_error(error);
                listen_line = read_first_line(bridge_proc);
                if (sscanf(listen_line, "listening on http://127.0.0.1:%u/", &port) != 1) {
                        g_printerr("itk-bench-bridge: unexpected bridge output: %s\n", listen_line);
                        return 1;
                }
                g_file_get_contents(token_path, &token, NULL, &error);
                g_assert_no_error(error);
                g_strstrip(token);
        }
        rss_idle = proc_status_kb(bridge_proc, "VmRSS:");

        bench.session = soup_session_new_with_options("max-conns", clients + 10,
                                                      "max-conns-per-host", clients + 10, NULL);
        if (!libsoup_clients) {
                bench.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
                g_assert(bench.epoll_fd >= 0);
                bench.reader = g_thread_new("raw-clients", raw_reader_thread, &bench);
        }
        for (int i = 0; i < clients; i++) {
                Client *client = g_new0(Client, 1);

                client->bench = &bench;
                g_ptr_array_add(bench.clients, client);
                if (libsoup_clients) {
                        g_autofree char *url = g_strdup_printf(
                                "ws://127.0.0.1:%u/ws/executions?access_token=%s", port, token);
                        g_autoptr(SoupMessage) msg = soup_message_new("GET", url);

                        soup_session_websocket_connect_async(bench.session, msg, NULL, NULL,
                                                             G_PRIORITY_DEFAULT, NULL, connected_cb,
                                                             client);
                } else {
                        raw_connect(client, port, token);
                }
        }
        run_until(&bench, all_connected, 120, FALSE);
        if (bench.failed > 0)
                return 1;
        rss_connected = proc_status_kb(bridge_proc, "VmRSS:");
        /* After the last fork: a fork would make the touched pages copy-on-write. */
        for (int i = 0; i < FRAME_CHUNKS_PREFAULTED; i++)
                g_ptr_array_add(bench.arena, frame_chunk_new(FRAME_CHUNK_SIZE));
        /* For profiling the run alone: attach a profiler to the printed pid. */
        if (g_getenv("ITK_BENCH_SETTLE_SECONDS") != NULL) {
                g_printerr("itk-bench-bridge: bridge pid %s, connected; run starts in %s s\n",
                           g_subprocess_get_identifier(bridge_proc),
                           g_getenv("ITK_BENCH_SETTLE_SECONDS"));
                g_usleep(G_USEC_PER_SEC * atoi(g_getenv("ITK_BENCH_SETTLE_SECONDS")));
        }

        bridge_cpu = proc_cpu_seconds(g_subprocess_get_identifier(bridge_proc));
        self_cpu = proc_cpu_seconds("self");
        t_start = g_get_monotonic_time();
        for (int i = 0; i < runs; i++) {
                gint64 run_start = g_get_monotonic_time();

                g_dbus_connection_call(
                        bench.bus, "org.ignition.Toolkit", "/org/ignition/Toolkit",
                        "org.ignition.Toolkit.Manager", "StartExecution",
                        g_variant_new("(s@a{sv}@a{sv})", "bench.yaml",
                                      g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0),
                                      g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0)),
                        G_VARIANT_TYPE("(o)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, start_done_cb,
                        &bench);
                run_until(&bench, started, 30, FALSE);
                run_until(&bench, all_finished, 300, FALSE);
                t_end = g_get_monotonic_time();
                run_us += t_end - run_start;
                /* Outside the measured time but still in the CPU figures, once a run. */
                collect_run(&bench, run_p99);
        }
        if (g_getenv("ITK_BENCH_SETTLE_SECONDS") != NULL)
                g_printerr("itk-bench-bridge: runs from %.6f to %.6f (CLOCK_MONOTONIC, s)\n",
                           t_start / 1e6, t_end / 1e6);
        rss_end = proc_status_kb(bridge_proc, "VmRSS:");
        hwm = proc_status_kb(bridge_proc, "VmHWM:");
        bridge_cpu = proc_cpu_seconds(g_subprocess_get_identifier(bridge_proc)) - bridge_cpu;
        self_cpu = proc_cpu_seconds("self") - self_cpu;

        if (bench.reader != NULL) {
                g_atomic_int_set(&bench.stop_reader, 1);
                g_thread_join(g_steal_pointer(&bench.reader));
                close(bench.epoll_fd);
        }
        for (guint i = 0; i < run_p99->len; i++)
                g_string_append_printf(run_p99_json, "%s%.3f", i > 0 ? ", " : "",
                                       g_array_index(run_p99, double, i));
        g_string_append_c(run_p99_json, ']');
        g_array_sort(bench.latencies, compare_int64);
        g_print("{\"clients\": %u, \"steps\": %d, \"pace_ms\": %d, \"runs\": %d, "
                "\"events_received\": %u, \"frames\": %u, \"bytes\": %" G_GUINT64_FORMAT ", "
                "\"samples\": %u, \"unmatched\": %u, \"before_reference\": %u, "
                "\"run_ms\": %.1f, \"daemon_emit_ms\": %.1f, "
                "\"latency_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"max\": %.3f}, "
                "\"p99_per_run_ms\": %s, "
                "\"bridge_rss_kb\": {\"idle\": %ld, \"connected\": %ld, \"end\": %ld, "
                "\"peak\": %ld}, \"cpu_s\": {\"bridge\": %.2f, \"clients\": %.2f}, "
                "\"client\": \"%s\", \"target_p99_ms\": 20, \"p99_ok\": %s}\n",
                bench.connected, steps, pace_ms, runs, bench.events, bench.frames, bench.bytes,
                bench.latencies->len, bench.missing, bench.early, run_us / 1000.0 / runs,
                bench.emit_ms_total / runs, percentile_ms(bench.latencies, 0.50),
                percentile_ms(bench.latencies, 0.90), percentile_ms(bench.latencies, 0.99),
                percentile_ms(bench.latencies, 1.0), run_p99_json->str, rss_idle, rss_connected,
                rss_end, hwm, bridge_cpu, self_cpu, libsoup_clients ? "libsoup" : "raw",
                percentile_ms(bench.latencies, 0.99) < 20.0 ? "true" : "false");

        /* Each client gets each run's two status changes and two per step. */
        expected = (guint)bench.connected * runs * (2 + 2 * steps);
        rc = bench.events == expected && bench.missing == 0 ? 0 : 1;
        if (bench.events != expected)
                g_printerr("itk-bench-bridge: %u status and step events received, %u expected\n",
                           bench.events, expected);
        for (guint i = 0; i < bench.clients->len; i++) {
                Client *client = g_ptr_array_index(bench.clients, i);

                g_clear_object(&client->conn);
                g_clear_object(&client->connection);
                g_clear_pointer(&client->in, g_byte_array_unref);
        }
        stop(bridge_proc);
        stop(daemon_proc);
        stop(bus_proc);
        g_object_unref(bench.session);
        g_object_unref(bench.bus);
        g_free(bench.execution_hex);
        g_hash_table_unref(bench.reference);
        g_array_unref(bench.receipts);
        g_array_unref(bench.frames_in);
        g_ptr_array_unref(bench.arena);
        g_free(bench.scratch);
        g_array_unref(bench.latencies);
        g_ptr_array_unref(bench.clients);
        {
                const char *rm[] = { "rm", "-rf", tmp, NULL };

                g_spawn_sync(NULL, (char **)rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                             NULL, NULL);
        }
        return rc;
}
