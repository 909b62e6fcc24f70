/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The gateway.* steps against the simulator (ITK_GATEWAY_SIM): each step,
 * the install sequence, failure paths, Cancel and Pause during waits, and
 * the shipped gateway playbooks run through an ItkExecution. */
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include "itk-test-util.h"
#include "itk-error.h"
#include "itk-execution.h"
#include "itk-gateway-client.h"
#include "itk-step.h"
#include "sim-zip.h"

#define KEY ITK_TEST_SIM_KEY
#define TOKEN ITK_TEST_SIM_TOKEN
#define RO_TOKEN ITK_TEST_SIM_RO_TOKEN
#define API "/data/api/v1"
/* Fast waits for the simulator's short restarts. */
#define FAST "\"min_wait\": 0.1, \"poll_interval\": 0.1"

static void
wait_done(gboolean *done)
{
        while (!*done)
                g_main_context_iteration(NULL, TRUE);
}

static gboolean
timeout_cb(gpointer user_data)
{
        *(gboolean *)user_data = TRUE;
        return G_SOURCE_REMOVE;
}

static void
run_for(guint msec)
{
        gboolean expired = FALSE;
        g_timeout_add(msec, timeout_cb, &expired);
        wait_done(&expired);
}

/* --- the simulator's control routes ------------------------------------------- */

typedef struct {
        gboolean done;
        JsonNode *node;
        GError *error;
        gint64 done_at;
} Result;

static void
result_clear(Result *r)
{
        g_clear_pointer(&r->node, json_node_unref);
        g_clear_error(&r->error);
        memset(r, 0, sizeof(*r));
}

static void
client_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Result *r = user_data;

        r->node = itk_gateway_client_request_finish(ITK_GATEWAY_CLIENT(source), result, NULL,
                                                    &r->error);
        r->done = TRUE;
}

/* A /sim/ route, or with @token an API call. */
static JsonNode *
sim_call(ItkTestSim *sim, const char *method, const char *path, const char *token)
{
        g_autoptr(ItkGatewayClient) client = itk_gateway_client_new(sim->url, token, NULL);
        ItkGatewayRequest req = { .method = method,
                                  .path = path,
                                  .flags = ITK_GATEWAY_REQUEST_NO_REFUSAL_CHECK };
        Result r = { 0 };

        itk_gateway_client_request_async(client, &req, NULL, client_cb, &r);
        wait_done(&r.done);
        g_assert_no_error(r.error);
        g_assert_nonnull(r.node);
        return r.node;
}

static JsonNode *
sim_control(ItkTestSim *sim, const char *method, const char *path)
{
        return sim_call(sim, method, path, NULL);
}

static gint64
sim_count(ItkTestSim *sim, const char *route)
{
        g_autoptr(JsonNode) state = sim_control(sim, "GET", "/sim/state");
        JsonObject *counts = json_object_get_object_member(json_node_get_object(state), "counts");
        return json_object_get_int_member_with_default(counts, route, 0);
}

/* --- running one step ------------------------------------------------------------ */

typedef struct {
        ItkTimerGroup *timers;
        char *dir;
        ItkTestSim *sim;
} Fixture;

static void
fixture_init(Fixture *f, const char *const *sim_args)
{
        f->timers = itk_timer_group_new();
        f->dir = g_dir_make_tmp("itk-stepgw-XXXXXX", NULL);
        f->sim = itk_test_sim_start(sim_args);
}

static void
rm_rf(const char *path)
{
        g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
        const char *name;

        while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
                g_autofree char *child = g_build_filename(path, name, NULL);
                if (g_file_test(child, G_FILE_TEST_IS_DIR))
                        rm_rf(child);
                else
                        g_unlink(child);
        }
        g_rmdir(path);
}

static void
fixture_clear(Fixture *f)
{
        itk_test_sim_stop(f->sim);
        rm_rf(f->dir);
        g_free(f->dir);
        itk_timer_group_free(f->timers);
        while (g_main_context_iteration(NULL, FALSE))
                ;
}

static ItkStepContext *
context_new(Fixture *f, const char *token)
{
        ItkStepContext *ctx = itk_step_context_new("gw");

        itk_step_context_set_timer_group(ctx, f->timers);
        itk_step_context_set_work_dir(ctx, f->dir);
        itk_step_context_set_playbook_dir(ctx, f->dir);
        itk_step_context_set_gateway_url(ctx, f->sim->url);
        itk_step_context_set_gateway_token(ctx, token);
        return ctx;
}

static void
step_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Result *r = user_data;

        r->node = itk_step_run_finish(result, &r->error);
        r->done = TRUE;
        r->done_at = g_get_monotonic_time();
}

static void
step_start(ItkStepContext *ctx, const char *type, const char *params_json,
           GCancellable *cancellable, Result *r)
{
        const ItkStepHandler *handler;
        g_autoptr(JsonNode) params = json_from_string(params_json ? params_json : "{}", NULL);

        itk_step_registry_ensure();
        handler = itk_step_registry_lookup(type);
        g_assert_nonnull(handler);
        g_assert_nonnull(handler->run);
        g_assert_nonnull(params);
        result_clear(r);
        handler->run(ctx, json_node_get_object(params), cancellable, step_cb, r);
}

/* Runs @type to completion with the full token. */
static void
run_step(Fixture *f, const char *type, const char *params_json, Result *r)
{
        g_autoptr(ItkStepContext) ctx = context_new(f, TOKEN);

        step_start(ctx, type, params_json, NULL, r);
        wait_done(&r->done);
}

static JsonObject *
output(Result *r)
{
        g_assert_no_error(r->error);
        g_assert_nonnull(r->node);
        g_assert_true(JSON_NODE_HOLDS_OBJECT(r->node));
        return json_node_get_object(r->node);
}

static void
write_bytes(const char *path, GBytes *bytes, gsize len)
{
        g_assert_true(g_file_set_contents(path, g_bytes_get_data(bytes, NULL),
                                          len ? len : g_bytes_get_size(bytes), NULL));
}

static GBytes *
make_modl(const char *id, const char *name, const char *version, const char *required)
{
        g_autoptr(ItkSimZipWriter) w = itk_sim_zip_writer_new();
        g_autofree char *xml = g_strdup_printf(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<modules>\n  <module>\n"
                "    <id>%s</id>\n    <name>%s</name>\n    <description>Test</description>\n"
                "    <version>%s</version>\n    <requiredignitionversion>%s"
                "</requiredignitionversion>\n    <license>license.html</license>\n"
                "  </module>\n</modules>\n",
                id, name, version, required);

        itk_sim_zip_writer_add(w, "module.xml", xml, strlen(xml), TRUE);
        itk_sim_zip_writer_add(w, "test.jar", "PK-not-really", 13, FALSE);
        itk_sim_zip_writer_add(w, "certificates.p7b", "cert", 4, FALSE);
        itk_sim_zip_writer_add(w, "license.html", "<p>EULA</p>", 11, TRUE);
        return itk_sim_zip_writer_finish(w);
}

/* --- tests ------------------------------------------------------------------------ */

static void
test_registry(void)
{
        const char *pausable[] = { "gateway.wait_for_ready", "gateway.restart",
                                   "gateway.wait_for_module_installation" };

        itk_step_registry_ensure();
        for (guint i = 0; i < G_N_ELEMENTS(pausable); i++)
                g_assert_true(itk_step_registry_lookup(pausable[i])->pausable);
        g_assert_false(itk_step_registry_lookup("gateway.ping")->pausable);
        g_assert_true(itk_step_registry_check_type("gateway.backup", NULL));
}

static void
test_read_steps(void)
{
        Fixture f = { 0 };
        Result r = { 0 };
        JsonObject *o;

        fixture_init(&f, NULL);
        run_step(&f, "gateway.ping", NULL, &r);
        o = output(&r);
        g_assert_cmpstr(json_object_get_string_member(o, "state"), ==, "RUNNING");
        g_assert_true(json_object_get_boolean_member(o, "ready"));

        run_step(&f, "gateway.get_info", NULL, &r);
        g_assert_true(g_str_has_prefix(json_object_get_string_member(output(&r), "ignitionVersion"),
                                       "8.3.6"));

        run_step(&f, "gateway.get_health", NULL, &r);
        o = output(&r);
        g_assert_cmpstr(json_object_get_string_member(o, "state"), ==, "RUNNING");
        g_assert_true(
                json_object_has_member(json_object_get_object_member(o, "overview"), "uptime"));

        run_step(&f, "gateway.list_modules", NULL, &r);
        o = output(&r);
        g_assert_cmpint(json_object_get_int_member(o, "count"), ==, 5);
        g_assert_cmpint(json_array_get_length(json_object_get_array_member(o, "modules")), ==, 5);
        g_assert_true(json_object_has_member(o, "quarantined"));

        run_step(&f, "gateway.list_projects", NULL, &r);
        g_assert_cmpint(json_object_get_int_member(output(&r), "count"), ==, 2);

        run_step(&f, "gateway.get_project", "{\"project_name\": \"demo\"}", &r);
        g_assert_cmpstr(json_object_get_string_member(output(&r), "name"), ==, "demo");

        run_step(&f, "gateway.get_project", "{\"project_name\": \"absent\"}", &r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_FAILED);
        g_assert_nonnull(strstr(r.error->message, "404"));

        run_step(&f, "gateway.scan_projects", NULL, &r);
        g_assert_true(json_object_get_boolean_member(output(&r), "scanned"));

        run_step(&f, "gateway.login", NULL, &r);
        o = output(&r);
        g_assert_true(json_object_get_boolean_member(o, "authenticated"));
        g_assert_nonnull(json_object_get_string_member(o, "note"));
        run_step(&f, "gateway.logout", NULL, &r);
        g_assert_true(json_object_get_boolean_member(output(&r), "authenticated"));

        /* The step's own url wins over the context's. */
        run_step(&f, "gateway.ping", "{\"gateway_url\": \"http://127.0.0.1:9\"}", &r);
        g_assert_nonnull(r.error);
        g_assert_nonnull(strstr(r.error->message, "127.0.0.1:9"));
        result_clear(&r);
        fixture_clear(&f);
}

static void
test_auth_failures(void)
{
        const char *args[] = { NULL };
        Fixture f = { 0 };
        Result r = { 0 };
        g_autoptr(ItkStepContext) bad = NULL;
        g_autoptr(ItkStepContext) ro = NULL;
        g_autoptr(ItkStepContext) none = NULL;

        fixture_init(&f, args);
        bad = context_new(&f, "itk:notthekeynotthekey");
        step_start(bad, "gateway.get_info", NULL, NULL, &r);
        wait_done(&r.done);
        g_assert_nonnull(r.error);
        g_assert_nonnull(strstr(r.error->message, "the API token is missing or unknown"));
        g_assert_null(strstr(r.error->message, "notthekey"));
        /* login checks the token the same way. */
        step_start(bad, "gateway.login", NULL, NULL, &r);
        wait_done(&r.done);
        g_assert_nonnull(strstr(r.error->message, "401"));

        ro = context_new(&f, RO_TOKEN);
        step_start(ro, "gateway.restart", NULL, NULL, &r);
        wait_done(&r.done);
        g_assert_nonnull(r.error);
        g_assert_nonnull(strstr(r.error->message, "not permitted to restart the gateway"));

        none = context_new(&f, NULL);
        step_start(none, "gateway.login", NULL, NULL, &r);
        wait_done(&r.done);
        g_assert_nonnull(strstr(r.error->message, "no gateway API token"));
        /* A step's own token parameter overrides the context's. */
        step_start(none, "gateway.get_info", "{\"token\": \"" TOKEN "\"}", NULL, &r);
        wait_done(&r.done);
        g_assert_no_error(r.error);
        result_clear(&r);
        fixture_clear(&f);
}

static void
test_uncommissioned(void)
{
        const char *args[] = { "--uncommissioned", NULL };
        Fixture f = { 0 };
        Result r = { 0 };

        fixture_init(&f, args);
        run_step(&f, "gateway.list_projects", NULL, &r);
        g_assert_nonnull(r.error);
        g_assert_nonnull(strstr(r.error->message, "gateway not commissioned"));
        /* Ping reports it; waiting for ready times out rather than passing. */
        run_step(&f, "gateway.ping", NULL, &r);
        g_assert_cmpstr(json_object_get_string_member(output(&r), "details"), ==, "COMMISSIONING");
        g_assert_false(json_object_get_boolean_member(output(&r), "ready"));
        run_step(&f, "gateway.wait_for_ready", "{\"wait_timeout\": 0.5, " FAST "}", &r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_TIMED_OUT);
        g_assert_nonnull(strstr(r.error->message, "COMMISSIONING"));
        result_clear(&r);
        fixture_clear(&f);
}

static void
log_cb(gpointer user_data, ItkLogPriority priority, const char *step_id, const char *message)
{
        GPtrArray *lines = user_data;

        g_ptr_array_add(lines, g_strdup_printf("%d %s", priority, message));
}

/* Gateway waits read `wait_timeout`; the old `timeout` inside parameters
 * still works with a note in the log; both are capped at 30 days. */
static void
test_wait_timeout_names(void)
{
        const char *args[] = { "--uncommissioned", NULL };
        Fixture f = { 0 };
        Result r = { 0 };
        g_autoptr(ItkStepContext) ctx = NULL;
        g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
        gint64 start;

        fixture_init(&f, args);
        ctx = context_new(&f, TOKEN);
        itk_step_context_set_log_func(ctx, log_cb, lines);

        step_start(ctx, "gateway.wait_for_ready", "{\"wait_timeout\": 0.3, " FAST "}", NULL, &r);
        wait_done(&r.done);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_TIMED_OUT);
        g_assert_cmpuint(lines->len, ==, 0);

        /* The old spelling: same budget, and a deprecation note. */
        step_start(ctx, "gateway.wait_for_ready", "{\"timeout\": 0.3, " FAST "}", NULL, &r);
        wait_done(&r.done);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_TIMED_OUT);
        g_assert_cmpuint(lines->len, ==, 1);
        g_assert_nonnull(strstr(lines->pdata[0], "deprecated: write 'wait_timeout'"));

        /* Both: wait_timeout decides (the other would wait 100 s). */
        start = g_get_monotonic_time();
        step_start(ctx, "gateway.wait_for_ready",
                   "{\"wait_timeout\": 0.3, \"timeout\": 100, " FAST "}", NULL, &r);
        wait_done(&r.done);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_TIMED_OUT);
        g_assert_cmpint(g_get_monotonic_time() - start, <, 10 * G_USEC_PER_SEC);

        /* Over the cap: refused, naming it. */
        step_start(ctx, "gateway.wait_for_ready", "{\"wait_timeout\": 2592001, " FAST "}", NULL,
                   &r);
        wait_done(&r.done);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS);
        g_assert_nonnull(strstr(r.error->message, "'wait_timeout'"));
        g_assert_nonnull(strstr(r.error->message, "2592000"));
        result_clear(&r);
        fixture_clear(&f);
}

static void
test_version_81(void)
{
        const char *args[] = { "--version=8.1.44", NULL };
        Fixture f = { 0 };
        Result r = { 0 };

        fixture_init(&f, args);
        run_step(&f, "gateway.ping", NULL, &r);
        g_assert_cmpstr(json_object_get_string_member(output(&r), "state"), ==, "RUNNING");
        run_step(&f, "gateway.wait_for_ready", "{" FAST "}", &r);
        g_assert_no_error(r.error);
        run_step(&f, "gateway.list_modules", NULL, &r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_NOT_SUPPORTED);
        g_assert_nonnull(strstr(r.error->message, "needs Ignition 8.3+"));
        result_clear(&r);
        fixture_clear(&f);
}

static void
test_restart(void)
{
        Fixture f = { 0 };
        Result r = { 0 };
        g_autoptr(JsonNode) state = NULL;
        JsonObject *o;

        fixture_init(&f, NULL);
        run_step(&f, "gateway.restart", "{\"wait_timeout\": 10, " FAST "}", &r);
        o = output(&r);
        g_assert_true(json_object_get_boolean_member(o, "restarted"));
        g_assert_cmpstr(json_object_get_string_member(o, "state"), ==, "RUNNING");
        g_assert_true(json_object_get_boolean_member(o, "went_down"));
        state = sim_control(f.sim, "GET", "/sim/state");
        g_assert_cmpint(json_object_get_int_member(json_node_get_object(state), "restartCount"), ==,
                        1);
        g_assert_cmpstr(json_object_get_string_member(json_node_get_object(state), "phase"), ==,
                        "RUNNING");

        /* Without waiting: returns at once, the gateway still restarting. */
        run_step(&f, "gateway.restart", "{\"wait_for_ready\": false}", &r);
        g_assert_false(json_object_has_member(output(&r), "state"));
        result_clear(&r);
        fixture_clear(&f);
}

static void
test_restart_never_returns(void)
{
        const char *args[] = { "--restart-never-returns", NULL };
        Fixture f = { 0 };
        Result r = { 0 };
        gint64 start = g_get_monotonic_time();

        fixture_init(&f, args);
        run_step(&f, "gateway.restart", "{\"wait_timeout\": 1, " FAST "}", &r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_TIMED_OUT);
        g_assert_nonnull(strstr(r.error->message, "did not become ready within 1 s"));
        g_assert_nonnull(strstr(r.error->message, "STARTING"));
        g_assert_cmpint(g_get_monotonic_time() - start, <, 5 * G_USEC_PER_SEC);
        result_clear(&r);
        fixture_clear(&f);
}

static void
test_wait_cancel_and_pause(void)
{
        const char *args[] = { "--restart-never-returns", NULL };
        Fixture f = { 0 };
        Result r = { 0 };
        g_autoptr(ItkStepContext) ctx = NULL;
        g_autoptr(GCancellable) cancellable = g_cancellable_new();
        g_autoptr(JsonNode) st = NULL;
        gint64 cancelled_at;

        fixture_init(&f, args);
        ctx = context_new(&f, TOKEN);
        st = sim_call(f.sim, "POST", API "/restart-tasks/restart?confirm=true", TOKEN);
        run_for(300); /* STARTING now, for good */

        /* Pause freezes the budget: 1.5 s of budget outlives 2 s paused. */
        step_start(ctx, "gateway.wait_for_ready", "{\"wait_timeout\": 1.5, " FAST "}", NULL, &r);
        run_for(200);
        itk_timer_group_pause(f.timers);
        run_for(2000);
        g_assert_false(r.done);
        itk_timer_group_resume(f.timers);
        g_clear_pointer(&st, json_node_unref);
        st = sim_control(f.sim, "POST", "/sim/restart-never-returns?on=0");
        wait_done(&r.done);
        /* The gateway came back within the remaining budget. */
        g_assert_no_error(r.error);
        g_assert_cmpstr(json_object_get_string_member(output(&r), "state"), ==, "RUNNING");

        /* Cancel mid-wait: CANCELLED within 100 ms. */
        g_clear_pointer(&st, json_node_unref);
        st = sim_control(f.sim, "POST", "/sim/restart-never-returns?on=1");
        g_clear_pointer(&st, json_node_unref);
        st = sim_call(f.sim, "POST", API "/restart-tasks/restart?confirm=true", TOKEN);
        run_for(300);
        step_start(ctx, "gateway.wait_for_ready", "{\"wait_timeout\": 30, " FAST "}", cancellable,
                   &r);
        run_for(350);
        g_assert_false(r.done);
        cancelled_at = g_get_monotonic_time();
        g_cancellable_cancel(cancellable);
        wait_done(&r.done);
        g_assert_error(r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        g_assert_cmpint(r.done_at - cancelled_at, <, 100000);
        result_clear(&r);
        fixture_clear(&f);
}

static void
test_hung_request_cancelled(void)
{
        const char *args[] = { "--fault=" API "/overview=hang", NULL };
        Fixture f = { 0 };
        Result r = { 0 };
        g_autoptr(ItkStepContext) ctx = NULL;
        g_autoptr(GCancellable) cancellable = g_cancellable_new();
        g_autoptr(JsonNode) st = NULL;
        gint64 cancelled_at;
        gint64 held = 1;

        fixture_init(&f, args);
        ctx = context_new(&f, TOKEN);
        step_start(ctx, "gateway.get_health", NULL, cancellable, &r);
        run_for(300);
        g_assert_false(r.done);
        cancelled_at = g_get_monotonic_time();
        g_cancellable_cancel(cancellable);
        wait_done(&r.done);
        g_assert_error(r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        g_assert_cmpint(r.done_at - cancelled_at, <, 100000);
        /* The request was abandoned: the connection closed under the sim. */
        for (guint i = 0; i < 50 && held != 0; i++) {
                g_clear_pointer(&st, json_node_unref);
                st = sim_control(f.sim, "GET", "/sim/state");
                held = json_object_get_int_member(json_node_get_object(st), "heldRequests");
                if (held != 0)
                        run_for(20);
        }
        g_assert_cmpint(held, ==, 0);
        result_clear(&r);
        fixture_clear(&f);
}

static void
test_dropped_connection(void)
{
        const char *args[] = { "--fault=" API "/projects/list=drop", NULL };
        Fixture f = { 0 };
        Result r = { 0 };

        fixture_init(&f, args);
        run_step(&f, "gateway.list_projects", NULL, &r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_FAILED);
        g_assert_nonnull(strstr(r.error->message, "could not reach the gateway"));
        g_assert_nonnull(strstr(r.error->message, "/projects/list"));
        result_clear(&r);
        fixture_clear(&f);
}

static void
test_module_install(void)
{
        Fixture f = { 0 };
        Result r = { 0 };
        g_autoptr(GBytes) modl = make_modl("com.example.test", "Test Module", "1.2.3", "8.3.0");
        g_autofree char *path = NULL;
        JsonObject *o;

        fixture_init(&f, NULL);
        path = g_build_filename(f.dir, "test.modl", NULL);
        write_bytes(path, modl, 0);
        /* Relative to the playbook's folder. */
        run_step(&f, "gateway.upload_module", "{\"file\": \"test.modl\"}", &r);
        o = output(&r);
        g_assert_cmpstr(json_object_get_string_member(o, "module_id"), ==, "com.example.test");
        g_assert_true(json_object_get_boolean_member(o, "installed"));
        g_assert_true(json_object_get_boolean_member(o, "cert_accepted"));
        g_assert_true(json_object_get_boolean_member(o, "license_accepted"));
        g_assert_cmpint(sim_count(f.sim, "POST " API "/modules/certificate"), ==, 1);
        g_assert_cmpint(sim_count(f.sim, "POST " API "/modules/eula"), ==, 1);

        /* INACTIVE until a restart: the wait times out before it. */
        run_step(&f, "gateway.wait_for_module_installation",
                 "{\"module_id\": \"com.example.test\", \"wait_timeout\": 0.4, \"poll_interval\": "
                 "0.1}",
                 &r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_TIMED_OUT);
        g_assert_nonnull(strstr(r.error->message, "INACTIVE"));

        run_step(&f, "gateway.restart", "{" FAST "}", &r);
        g_assert_no_error(r.error);
        run_step(&f, "gateway.wait_for_module_installation",
                 "{\"module_name\": \"Test Module\", \"wait_timeout\": 5, \"poll_interval\": 0.1}",
                 &r);
        o = output(&r);
        g_assert_cmpstr(json_object_get_string_member(o, "state"), ==, "ACTIVE");
        g_assert_cmpstr(json_object_get_string_member(o, "module_id"), ==, "com.example.test");

        run_step(&f, "gateway.uninstall_module", "{\"module_id\": \"com.example.test\"}", &r);
        g_assert_true(json_object_get_boolean_member(output(&r), "uninstalled"));
        run_step(&f, "gateway.uninstall_module", "{\"module_id\": \"com.example.none\"}", &r);
        g_assert_nonnull(r.error);
        g_assert_nonnull(strstr(r.error->message, "refused"));
        g_assert_nonnull(strstr(r.error->message, "com.example.none"));

        run_step(&f, "gateway.upload_module", "{\"file\": \"missing.modl\"}", &r);
        g_assert_nonnull(r.error);
        g_assert_nonnull(strstr(r.error->message, "missing.modl"));
        result_clear(&r);
        fixture_clear(&f);
}

static void
test_module_quarantined(void)
{
        Fixture f = { 0 };
        Result r = { 0 };
        g_autoptr(GBytes) modl = make_modl("com.example.new", "Too New", "2.0.0", "8.3.99");
        g_autofree char *path = NULL;

        fixture_init(&f, NULL);
        path = g_build_filename(f.dir, "new.modl", NULL);
        write_bytes(path, modl, 0);
        run_step(&f, "gateway.upload_module", "{\"file\": \"new.modl\"}", &r);
        g_assert_no_error(r.error);
        run_step(&f, "gateway.restart", "{" FAST "}", &r);
        g_assert_no_error(r.error);
        run_step(
                &f, "gateway.wait_for_module_installation",
                "{\"module_id\": \"com.example.new\", \"wait_timeout\": 5, \"poll_interval\": 0.1}",
                &r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_FAILED);
        g_assert_nonnull(strstr(r.error->message, "module com.example.new is quarantined"));
        result_clear(&r);
        fixture_clear(&f);
}

static void
test_projects_roundtrip(void)
{
        Fixture f = { 0 };
        Result r = { 0 };
        g_autofree char *zip = NULL;
        g_autofree char *cut = NULL;
        g_autofree char *contents = NULL;
        gsize len = 0;
        JsonObject *o;

        fixture_init(&f, NULL);
        run_step(&f, "gateway.export_project", "{\"project_name\": \"demo\", \"path\": \"d.zip\"}",
                 &r);
        o = output(&r);
        zip = g_build_filename(f.dir, "d.zip", NULL);
        g_assert_cmpstr(json_object_get_string_member(o, "path"), ==, zip);
        g_assert_true(g_file_get_contents(zip, &contents, &len, NULL));
        g_assert_cmpint(json_object_get_int_member(o, "size"), ==, len);

        /* Refused inside a 200: the project exists and overwrite is off. */
        run_step(&f, "gateway.import_project", "{\"file\": \"d.zip\", \"project_name\": \"demo\"}",
                 &r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_FAILED);
        g_assert_nonnull(strstr(r.error->message, "already exists"));
        run_step(&f, "gateway.import_project",
                 "{\"file\": \"d.zip\", \"project_name\": \"copy\", \"overwrite\": true}", &r);
        g_assert_true(json_object_get_boolean_member(output(&r), "imported"));
        run_step(&f, "gateway.get_project", "{\"project_name\": \"copy\"}", &r);
        g_assert_no_error(r.error);
        g_assert_cmpint(sim_count(f.sim, "POST " API "/projects/import/{name}"), ==, 2);

        /* A truncated archive never reaches the gateway. */
        cut = g_build_filename(f.dir, "cut.zip", NULL);
        g_assert_true(g_file_set_contents(cut, contents, len - 30, NULL));
        run_step(&f, "gateway.import_project", "{\"file\": \"cut.zip\", \"project_name\": \"cut\"}",
                 &r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_FAILED);
        g_assert_nonnull(strstr(r.error->message, "not a complete ZIP archive"));
        g_assert_cmpint(sim_count(f.sim, "POST " API "/projects/import/{name}"), ==, 2);
        result_clear(&r);
        fixture_clear(&f);
}

static void
test_backup_restore(void)
{
        Fixture f = { 0 };
        Result r = { 0 };
        g_autoptr(JsonNode) state = NULL;
        JsonObject *o;

        fixture_init(&f, NULL);
        run_step(&f, "gateway.backup", "{\"path\": \"gw.gwbk\", \"type\": \"roaming\"}", &r);
        o = output(&r);
        g_assert_cmpstr(json_object_get_string_member(o, "type"), ==, "roaming");
        g_assert_cmpint(json_object_get_int_member(o, "size"), >, 22);
        run_step(&f, "gateway.backup", "{\"type\": \"some\"}", &r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS);

        run_step(&f, "gateway.restore", "{\"file\": \"gw.gwbk\", \"wait_timeout\": 10, " FAST "}",
                 &r);
        o = output(&r);
        g_assert_true(json_object_get_boolean_member(o, "restored"));
        g_assert_cmpstr(json_object_get_string_member(o, "state"), ==, "RUNNING");
        state = sim_control(f.sim, "GET", "/sim/state");
        g_assert_nonnull(json_object_get_object_member(json_node_get_object(state), "lastRestore"));
        result_clear(&r);
        fixture_clear(&f);
}

/* --- the shipped playbooks through an ItkExecution --------------------------------------- */

typedef struct {
        gboolean finished;
        int status;
        char *error;
} RunResult;

static void
finished_cb(ItkExecution *e, int status, const char *error, RunResult *rr)
{
        rr->finished = TRUE;
        rr->status = status;
        rr->error = g_strdup(error);
}

static void
run_playbook(Fixture *f, const char *file, const char *params_json)
{
        g_autofree char *path = g_build_filename(g_getenv("ITK_SOURCE_ROOT"), "data", "playbooks",
                                                 "gateway", file, NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook = itk_playbook_new_from_file(path, file, NULL, &error);
        g_autoptr(JsonNode) given = json_from_string(params_json, NULL);
        g_autoptr(JsonObject) bound = NULL;
        g_autoptr(ItkExecution) execution = NULL;
        ItkExecutionConfig config = { 0 };
        RunResult rr = { 0 };

        g_assert_no_error(error);
        json_object_set_string_member(json_node_get_object(given), "gateway_url", f->sim->url);
        bound = itk_playbook_bind_parameters(playbook, json_node_get_object(given), &error);
        g_assert_no_error(error);
        config.playbook = playbook;
        config.parameters = bound;
        config.work_dir = f->dir;
        config.gateway_token = TOKEN;
        execution = itk_execution_new(&config, &error);
        g_assert_no_error(error);
        g_signal_connect(execution, "finished", G_CALLBACK(finished_cb), &rr);
        g_assert_true(itk_execution_start(execution, &error));
        g_assert_no_error(error);
        wait_done(&rr.finished);
        if (rr.status != ITK_STATUS_COMPLETED)
                g_test_message("%s: %s", file, rr.error);
        g_assert_cmpstr(itk_status_to_string(rr.status), ==, "completed");
        g_free(rr.error);
}

static void
test_playbooks(void)
{
        Fixture f = { 0 };
        g_autoptr(GBytes) v1 = make_modl("com.example.pb", "Playbook Module", "1.0.0", "8.3.0");
        g_autoptr(GBytes) v2 = make_modl("com.example.pb", "Playbook Module", "1.1.0", "8.3.0");
        g_autofree char *m1 = NULL;
        g_autofree char *m2 = NULL;
        g_autofree char *exported = NULL;
        g_autofree char *backup = NULL;
        g_autofree char *json = NULL;
        g_autoptr(JsonNode) state = NULL;

        fixture_init(&f, NULL);
        m1 = g_build_filename(f.dir, "v1.modl", NULL);
        m2 = g_build_filename(f.dir, "v2.modl", NULL);
        write_bytes(m1, v1, 0);
        write_bytes(m2, v2, 0);
        exported = g_build_filename(f.dir, "global.zip", NULL);
        backup = g_build_filename(f.dir, "gateway-backup.gwbk", NULL);

        run_playbook(&f, "health_check.yaml", "{}");
        json = g_strdup_printf("{\"module_file\": \"%s\", \"min_wait\": 0.1, "
                               "\"poll_interval\": 0.1}",
                               m1);
        run_playbook(&f, "module_install.yaml", json);
        g_free(json);
        json = g_strdup_printf("{\"module_file\": \"%s\", \"min_wait\": 0.1, "
                               "\"poll_interval\": 0.1}",
                               m2);
        run_playbook(&f, "module_upgrade.yaml", json);
        state = sim_control(f.sim, "GET", "/sim/state");
        {
                g_autofree char *dump = json_to_string(state, FALSE);
                g_assert_nonnull(strstr(dump, "\"1.1.0\""));
        }
        run_playbook(&f, "project_export.yaml", "{\"project_name\": \"global\"}");
        g_assert_true(g_file_test(exported, G_FILE_TEST_EXISTS));
        g_free(json);
        json = g_strdup_printf("{\"project_file\": \"%s\", \"project_name\": \"imported\"}",
                               exported);
        run_playbook(&f, "project_import.yaml", json);
        run_playbook(&f, "backup.yaml", "{}");
        g_assert_true(g_file_test(backup, G_FILE_TEST_EXISTS));
        g_free(json);
        json = g_strdup_printf("{\"backup_file\": \"%s\", \"min_wait\": 0.1, "
                               "\"poll_interval\": 0.1}",
                               backup);
        run_playbook(&f, "restore.yaml", json);
        fixture_clear(&f);
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        /* Linked in, not loaded as the daemon does. */
        itk_step_gateway_module_init();
        g_test_add_func("/step-gateway/registry", test_registry);
        g_test_add_func("/step-gateway/read-steps", test_read_steps);
        g_test_add_func("/step-gateway/auth-failures", test_auth_failures);
        g_test_add_func("/step-gateway/uncommissioned", test_uncommissioned);
        g_test_add_func("/step-gateway/wait-timeout-names", test_wait_timeout_names);
        g_test_add_func("/step-gateway/version-81", test_version_81);
        g_test_add_func("/step-gateway/restart", test_restart);
        g_test_add_func("/step-gateway/restart-never-returns", test_restart_never_returns);
        g_test_add_func("/step-gateway/wait-cancel-and-pause", test_wait_cancel_and_pause);
        g_test_add_func("/step-gateway/hung-request-cancelled", test_hung_request_cancelled);
        g_test_add_func("/step-gateway/dropped-connection", test_dropped_connection);
        g_test_add_func("/step-gateway/module-install", test_module_install);
        g_test_add_func("/step-gateway/module-quarantined", test_module_quarantined);
        g_test_add_func("/step-gateway/projects-roundtrip", test_projects_roundtrip);
        g_test_add_func("/step-gateway/backup-restore", test_backup_restore);
        g_test_add_func("/step-gateway/playbooks", test_playbooks);
        return g_test_run();
}
