/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-history: read latency of a big history, printed as JSON.
 *
 *   history    GetHistory(50) and GetHistoryPage (first page, a deep page
 *              reached by its cursor, by status, by playbook, a time window,
 *              a text search) with --runs stored runs (100,000);
 *   starting   ListExecutions and GetHistory(50) while --starts runs (500)
 *              are started as fast as the daemon takes them;
 *   pruning    GetHistory(50) while the daemon prunes the history down to
 *              HistoryMaxRuns=10000, and how long that takes.
 *
 * The store is filled through the store API in one transaction (seconds),
 * not by running playbooks; the daemon then runs on a private bus. Targets
 * are reported next to the numbers; only errors make the exit status
 * non-zero. --quick: small numbers, for `meson test`.
 */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "itk-store.h"

#define TARGET_P99_MS 20.0
#define NAME "org.ignition.Toolkit"
#define PATH "/org/ignition/Toolkit"
#define MANAGER "org.ignition.Toolkit.Manager"
#define N_PLAYBOOKS 20
#define PRUNE_KEEP 10000

static char *opt_daemon;
static char *opt_dbus_config;
static int opt_runs = 100000;
static int opt_starts = 500;
static int opt_samples = 300;
static gboolean opt_quick;

typedef struct {
        GPtrArray *argv;
        GSubprocess *bus;
        GSubprocess *daemon;
        char *address;
        char *dir;
        char *state_dir;
        char *config_dir;
} Bench;

static double
now_ms(void)
{
        return (double)g_get_monotonic_time() / 1000.0;
}

static double
loadavg(void)
{
        g_autofree char *text = NULL;

        if (!g_file_get_contents("/proc/loadavg", &text, NULL, NULL))
                return -1;
        return g_ascii_strtod(text, NULL);
}

static int
compare_double(gconstpointer a, gconstpointer b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* {"calls":N,"p50_ms":..,"p99_ms":..,"max_ms":..,"target_p99_ms":20,"pass":b} */
static void
append_latencies_target(GString *json, const char *name, GArray *ms, double target)
{
        double p50 = 0, p99 = 0, max = 0;

        g_array_sort(ms, compare_double);
        if (ms->len > 0) {
                p50 = g_array_index(ms, double, (ms->len - 1) / 2);
                p99 = g_array_index(ms, double, (guint)ceil(ms->len * 0.99) - 1);
                max = g_array_index(ms, double, ms->len - 1);
        }
        g_string_append_printf(json,
                               "\"%s\":{\"calls\":%u,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
                               "\"max_ms\":%.3f",
                               name, ms->len, p50, p99, max);
        /* No target: reported for information (a page of 1000 runs). */
        if (target > 0)
                g_string_append_printf(json, ",\"target_p99_ms\":%.1f,\"pass\":%s", target,
                                       ms->len > 0 && p99 < target ? "true" : "false");
        g_string_append(json, "}");
}

static void
append_latencies(GString *json, const char *name, GArray *ms)
{
        append_latencies_target(json, name, ms, TARGET_P99_MS);
}

static void
populate(const char *db, int runs)
{
        static const char *const statuses[] = { "completed", "completed", "failed", "cancelled" };
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkStore) store = itk_store_open(db, &error);
        gint64 now = g_get_real_time();
        /* Spread over the last 60 days, oldest first. */
        gint64 span = (gint64)60 * 86400 * G_USEC_PER_SEC;

        if (store == NULL)
                g_error("%s", error->message);
        if (!itk_store_begin(store, &error))
                g_error("%s", error->message);
        for (int i = 0; i < runs; i++) {
                g_autofree char *id = g_strdup_printf("00000000-0000-4000-8000-%012x", i + 1);
                g_autofree char *book =
                        g_strdup_printf("bench/playbook-%02d.yaml", i % N_PLAYBOOKS);
                const char *status = statuses[i % G_N_ELEMENTS(statuses)];
                gint64 created = now - span + span / runs * i;
                ItkExecutionRecord run = {
                        .id = id,
                        .playbook = book,
                        .playbook_name = "Bench playbook",
                        .playbook_version = "1.0",
                        .domain = "gateway",
                        .status = status,
                        .error = g_str_equal(status, "failed") ? "Step 'login' failed: HTTP 401"
                                                               : "",
                        .parameters_json = "{\"gateway_url\":\"http://gw:8088\"}",
                        .created_at = created,
                        .started_at = created + 1000,
                        .finished_at = created + 2000000,
                        .started_by_uid = 1000,
                        .total_steps = 2,
                        .current_step = 1,
                        .progress = 1.0,
                };
                ItkStepRecord step = {
                        .execution_id = id,
                        .name = "Step",
                        .type = "utility.log",
                        .status = "completed",
                        .started_at = created + 1000,
                        .finished_at = created + 2000,
                };

                if (!itk_store_insert_execution(store, &run, &error))
                        g_error("%s", error->message);
                for (int s = 0; s < 2; s++) {
                        char path[8];
                        g_snprintf(path, sizeof path, "s%d", s);
                        step.step_path = path;
                        step.position = s;
                        step.index = s;
                        if (!itk_store_put_step(store, &step, &error) ||
                            !itk_store_append_log(store, id, created + s, 6, path,
                                                  "a line of the bench's log", &error))
                                g_error("%s", error->message);
                }
        }
        if (!itk_store_commit(store, &error))
                g_error("%s", error->message);
}

static void
write_config(Bench *b, guint max_runs, guint interval)
{
        g_autofree char *conf = g_build_filename(b->config_dir, "toolkit.conf", NULL);
        g_autofree char *text = g_strdup_printf(
                "[Daemon]\nMaxConcurrentExecutions=100000\nHistoryMaxAgeDays=0\n"
                "HistoryMaxRuns=%u\nHistoryPruneIntervalSeconds=%u\n[Sandbox]\nEnabled=false\n",
                max_runs, interval);
        g_autoptr(GError) error = NULL;

        if (!g_file_set_contents(conf, text, -1, &error))
                g_error("%s", error->message);
}

static void
start_bus(Bench *b)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GDataInputStream) out = NULL;
        g_autofree char *config = g_strdup_printf("--config-file=%s", opt_dbus_config);

        b->bus = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, "dbus-daemon", config,
                                  "--print-address=1", "--nofork", NULL);
        if (b->bus == NULL)
                g_error("dbus-daemon: %s", error->message);
        out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(b->bus));
        b->address = g_data_input_stream_read_line(out, NULL, NULL, &error);
        if (b->address == NULL)
                g_error("dbus-daemon gave no address");
}

static GDBusConnection *
connect_bus(Bench *b)
{
        g_autoptr(GError) error = NULL;
        GDBusConnection *c = g_dbus_connection_new_for_address_sync(
                b->address,
                G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                        G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                NULL, NULL, &error);

        if (c == NULL)
                g_error("cannot connect to the bench bus: %s", error->message);
        return c;
}

static void
start_daemon(Bench *b, GDBusConnection *c)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *bus = g_strdup_printf("--bus-address=%s", b->address);
        g_autofree char *state = g_strdup_printf("--state-dir=%s", b->state_dir);
        g_autofree char *config = g_strdup_printf("--config-dir=%s", b->config_dir);
        gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

        b->daemon = g_subprocess_new(G_SUBPROCESS_FLAGS_NONE, &error, opt_daemon, bus, state,
                                     config, "--retention=600", NULL);
        if (b->daemon == NULL)
                g_error("%s: %s", opt_daemon, error->message);
        for (;;) {
                g_autoptr(GVariant) owned = g_dbus_connection_call_sync(
                        c, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                        "NameHasOwner", g_variant_new("(s)", NAME), G_VARIANT_TYPE("(b)"), 0, -1,
                        NULL, NULL);
                gboolean yes = FALSE;

                if (owned != NULL)
                        g_variant_get(owned, "(b)", &yes);
                if (yes)
                        return;
                if (g_get_monotonic_time() > deadline)
                        g_error("the daemon did not take its name");
                g_usleep(20000);
        }
}

static void
stop_daemon(Bench *b)
{
        g_subprocess_send_signal(b->daemon, SIGTERM);
        g_subprocess_wait(b->daemon, NULL, NULL);
        g_clear_object(&b->daemon);
}

static GVariant *
call(GDBusConnection *c, const char *method, GVariant *args, const char *reply_type)
{
        g_autoptr(GError) error = NULL;
        GVariant *reply =
                g_dbus_connection_call_sync(c, NAME, PATH, MANAGER, method, args,
                                            G_VARIANT_TYPE(reply_type), 0, 60000, NULL, &error);

        if (reply == NULL)
                g_error("%s: %s", method, error->message);
        return reply;
}

static double
timed(GDBusConnection *c, const char *method, GVariant *args, const char *reply_type, guint *n_runs)
{
        double t0 = now_ms();
        g_autoptr(GVariant) reply = call(c, method, args, reply_type);
        double t = now_ms() - t0;

        if (n_runs != NULL) {
                g_autoptr(GVariant) first = g_variant_get_child_value(reply, 0);
                *n_runs = (guint)g_variant_n_children(first);
        }
        return t;
}

static GVariant *
filter(const char *key, GVariant *value)
{
        GVariantBuilder builder;

        g_variant_builder_init(&builder, G_VARIANT_TYPE_VARDICT);
        if (key != NULL)
                g_variant_builder_add(&builder, "{sv}", key, value);
        return g_variant_builder_end(&builder);
}

/* The cursor of the page @depth pages of 50 deep. */
static char *
deep_cursor(GDBusConnection *c, guint depth)
{
        char *cursor = g_strdup("");

        for (guint i = 0; i < depth; i++) {
                g_autoptr(GVariant) reply = call(
                        c, "GetHistoryPage",
                        g_variant_new("(@a{sv}us)", filter(NULL, NULL), 50, cursor), "(aa{sv}s)");
                g_free(cursor);
                g_variant_get_child(reply, 1, "s", &cursor);
        }
        return cursor;
}

static void
section_history(Bench *b, GDBusConnection *c, GString *json)
{
        g_autofree char *deep = deep_cursor(c, opt_quick ? 5 : 1000);
        gint64 now = g_get_real_time();
        struct {
                const char *name;
                const char *method;
                GVariant *args;
                const char *type;
        } cases[] = {
                { "get_history_50", "GetHistory", g_variant_new("(us)", 50, ""), "(aa{sv})" },
                { "page_first_50", "GetHistoryPage",
                  g_variant_new("(@a{sv}us)", filter(NULL, NULL), 50, ""), "(aa{sv}s)" },
                { "page_deep_50", "GetHistoryPage",
                  g_variant_new("(@a{sv}us)", filter(NULL, NULL), 50, deep), "(aa{sv}s)" },
                { "page_status_50", "GetHistoryPage",
                  g_variant_new("(@a{sv}us)", filter("status", g_variant_new_string("failed")), 50,
                                ""),
                  "(aa{sv}s)" },
                { "page_playbook_50", "GetHistoryPage",
                  g_variant_new("(@a{sv}us)",
                                filter("playbook", g_variant_new_string("bench/playbook-07.yaml")),
                                50, ""),
                  "(aa{sv}s)" },
                { "page_window_50", "GetHistoryPage",
                  g_variant_new("(@a{sv}us)",
                                filter("until", g_variant_new_int64(now - (gint64)30 * 86400 *
                                                                                  G_USEC_PER_SEC)),
                                50, ""),
                  "(aa{sv}s)" },
                { "page_text_50", "GetHistoryPage",
                  g_variant_new("(@a{sv}us)", filter("text", g_variant_new_string("HTTP 401")), 50,
                                ""),
                  "(aa{sv}s)" },
                { "page_1000", "GetHistoryPage",
                  g_variant_new("(@a{sv}us)", filter(NULL, NULL), 1000, ""), "(aa{sv}s)" },
        };

        g_string_append_printf(json, "\"history\":{\"stored_runs\":%d,", opt_runs);
        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GArray) ms = g_array_new(FALSE, FALSE, sizeof(double));
                g_autoptr(GVariant) args = g_variant_ref_sink(cases[i].args);
                guint n = 0;
                /* Warm the page cache and the statement first. */
                timed(c, cases[i].method, args, cases[i].type, &n);
                for (int s = 0; s < opt_samples; s++) {
                        double t = timed(c, cases[i].method, args, cases[i].type, NULL);
                        g_array_append_val(ms, t);
                }
                if (n == 0)
                        g_error("%s returned no runs", cases[i].name);
                append_latencies_target(json, cases[i].name, ms,
                                        g_str_equal(cases[i].name, "page_1000") ? 0
                                                                                : TARGET_P99_MS);
                g_string_append(json, ",");
        }
        g_string_truncate(json, json->len - 1);
        g_string_append(json, "}");
}

typedef struct {
        Bench *bench;
        int started;
        gint done; /* atomic */
} Starter;

static gpointer
starter_thread(gpointer data)
{
        Starter *s = data;
        g_autoptr(GDBusConnection) c = connect_bus(s->bench);
        const char *source = "name: bench\nversion: '1'\nsteps:\n"
                             "  - id: wait\n    name: Wait\n    type: utility.sleep\n"
                             "    parameters: {seconds: 600}\n";

        for (int i = 0; i < opt_starts; i++) {
                GVariantBuilder options;
                g_autoptr(GVariant) reply = NULL;

                g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
                g_variant_builder_add(&options, "{sv}", "source", g_variant_new_string(source));
                reply = call(c, "StartExecution",
                             g_variant_new("(sa{sv}@a{sv})", "bench-start", NULL,
                                           g_variant_builder_end(&options)),
                             "(o)");
                s->started++;
        }
        g_atomic_int_set(&s->done, 1);
        return NULL;
}

static void
section_starting(Bench *b, GDBusConnection *c, GString *json)
{
        g_autoptr(GArray) list_ms = g_array_new(FALSE, FALSE, sizeof(double));
        g_autoptr(GArray) history_ms = g_array_new(FALSE, FALSE, sizeof(double));
        Starter starter = { .bench = b };
        GThread *thread;
        double t0 = now_ms(), seconds;
        guint listed = 0;

        thread = g_thread_new("starter", starter_thread, &starter);
        while (!g_atomic_int_get(&starter.done)) {
                double t = timed(c, "ListExecutions", NULL, "(a(osssuu))", &listed);
                g_array_append_val(list_ms, t);
                t = timed(c, "GetHistory", g_variant_new("(us)", 50, ""), "(aa{sv})", NULL);
                g_array_append_val(history_ms, t);
        }
        g_thread_join(thread);
        seconds = (now_ms() - t0) / 1000.0;
        timed(c, "ListExecutions", NULL, "(a(osssuu))", &listed);
        g_string_append_printf(json,
                               "\"starting\":{\"starts\":%d,\"seconds\":%.3f,\"listed_after\":%u,",
                               starter.started, seconds, listed);
        append_latencies(json, "list_executions", list_ms);
        g_string_append(json, ",");
        append_latencies(json, "get_history_50", history_ms);
        g_string_append(json, "}");
}

/* What is in the file, read beside the daemon (WAL readers do not block it). */
static gint64
count_runs(Bench *b)
{
        g_autofree char *db = g_build_filename(b->state_dir, "history.db", NULL);
        sqlite3 *conn = NULL;
        sqlite3_stmt *stmt = NULL;
        gint64 n = -1;

        if (sqlite3_open_v2(db, &conn, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(conn, "SELECT count(*) FROM executions", -1, &stmt, NULL) ==
                    SQLITE_OK &&
            sqlite3_step(stmt) == SQLITE_ROW)
                n = sqlite3_column_int64(stmt, 0);
        sqlite3_finalize(stmt);
        sqlite3_close(conn);
        return n;
}

static void
section_pruning(Bench *b, GDBusConnection *c, GString *json)
{
        g_autoptr(GArray) ms = g_array_new(FALSE, FALSE, sizeof(double));
        guint keep = opt_quick ? 100 : PRUNE_KEEP;
        gint64 from = count_runs(b);
        gboolean pruned = FALSE;
        double t0, seconds;

        stop_daemon(b);
        write_config(b, keep, 1);
        start_daemon(b, c);
        t0 = now_ms();
        /* The first pass starts a second after start-up. */
        while (!pruned && now_ms() - t0 < 600000) {
                double t = timed(c, "GetHistory", g_variant_new("(us)", 50, ""), "(aa{sv})", NULL);
                g_array_append_val(ms, t);
                if (ms->len % 20 == 0)
                        pruned = count_runs(b) <= keep;
        }
        seconds = (now_ms() - t0) / 1000.0;
        g_string_append_printf(json,
                               "\"pruning\":{\"from_runs\":%" G_GINT64_FORMAT
                               ",\"to_runs\":%u,\"done\":%s,\"seconds\":%.3f,",
                               from, keep, pruned ? "true" : "false", seconds);
        append_latencies(json, "get_history_50_while_pruning", ms);
        g_string_append(json, "}");
        if (!pruned)
                g_error("the history was not pruned within 10 minutes");
}

static void
remove_tree(const char *path)
{
        g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
        const char *name;

        while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
                g_autofree char *child = g_build_filename(path, name, NULL);
                if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
                    !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
                        remove_tree(child);
                else
                        g_unlink(child);
        }
        g_rmdir(path);
}

int
main(int argc, char **argv)
{
        GOptionEntry entries[] = {
                { "daemon", 0, 0, G_OPTION_ARG_FILENAME, &opt_daemon, "ignition-toolkitd", "PATH" },
                { "dbus-config", 0, 0, G_OPTION_ARG_FILENAME, &opt_dbus_config,
                  "dbus-daemon configuration", "FILE" },
                { "runs", 0, 0, G_OPTION_ARG_INT, &opt_runs, "stored runs (100000)", "N" },
                { "starts", 0, 0, G_OPTION_ARG_INT, &opt_starts, "runs started (500)", "N" },
                { "samples", 0, 0, G_OPTION_ARG_INT, &opt_samples, "calls per case (300)", "N" },
                { "quick", 0, 0, G_OPTION_ARG_NONE, &opt_quick, "small numbers (meson test)",
                  NULL },
                {},
        };
        g_autoptr(GOptionContext) context = g_option_context_new("- history read latency");
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusConnection) c = NULL;
        g_autoptr(GString) json = g_string_new("{");
        g_autofree char *db = NULL;
        Bench b = { 0 };
        double load_start = loadavg();
        double t0;

        g_option_context_add_main_entries(context, entries, NULL);
        if (!g_option_context_parse(context, &argc, &argv, &error)) {
                g_printerr("bench-history: %s\n", error->message);
                return 2;
        }
        if (opt_daemon == NULL || opt_dbus_config == NULL) {
                g_printerr("bench-history: --daemon and --dbus-config are needed\n");
                return 2;
        }
        if (opt_quick) {
                opt_runs = 2000;
                opt_starts = 20;
                opt_samples = 20;
        }
        b.dir = g_dir_make_tmp("itk-bench-history-XXXXXX", &error);
        if (b.dir == NULL)
                g_error("%s", error->message);
        b.state_dir = g_build_filename(b.dir, "state", NULL);
        b.config_dir = g_build_filename(b.dir, "config", NULL);
        g_mkdir_with_parents(b.state_dir, 0700);
        g_mkdir_with_parents(b.config_dir, 0700);
        db = g_build_filename(b.state_dir, "history.db", NULL);

        t0 = now_ms();
        populate(db, opt_runs);
        g_string_append_printf(json, "\"populate\":{\"runs\":%d,\"seconds\":%.3f},", opt_runs,
                               (now_ms() - t0) / 1000.0);
        write_config(&b, 0, 3600);
        start_bus(&b);
        c = connect_bus(&b);
        start_daemon(&b, c);

        section_history(&b, c, json);
        g_string_append(json, ",");
        section_starting(&b, c, json);
        g_string_append(json, ",");
        section_pruning(&b, c, json);
        g_string_append_printf(json, ",\"loadavg_start\":%.2f,\"loadavg_end\":%.2f}\n", load_start,
                               loadavg());
        fputs(json->str, stdout);

        stop_daemon(&b);
        g_subprocess_send_signal(b.bus, SIGTERM);
        g_subprocess_wait(b.bus, NULL, NULL);
        g_clear_object(&b.bus);
        remove_tree(b.dir);
        g_free(b.address);
        g_free(b.dir);
        g_free(b.state_dir);
        g_free(b.config_dir);
        return 0;
}
