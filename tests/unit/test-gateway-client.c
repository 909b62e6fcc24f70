/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ItkGatewayClient against the gateway simulator (path in ITK_GATEWAY_SIM):
 * the explanations of each failure, cancellation, timeouts, streaming. */
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include "itk-step.h"
#include "itk-test-util.h"
#include "itk-error.h"
#include "itk-gateway-client.h"
#include "sim-zip.h"

#define KEY ITK_TEST_SIM_KEY
#define TOKEN ITK_TEST_SIM_TOKEN
#define RO_TOKEN ITK_TEST_SIM_RO_TOKEN
#define API "/data/api/v1"

/* --- running the client to completion -------------------------------------- */

typedef struct {
        gboolean done;
        JsonNode *node;
        guint status;
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
request_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        Result *r = user_data;

        r->node = itk_gateway_client_request_finish(ITK_GATEWAY_CLIENT(source), result, &r->status,
                                                    &r->error);
        r->done = TRUE;
        r->done_at = g_get_monotonic_time();
}

static void
wait_done(gboolean *done)
{
        while (!*done)
                g_main_context_iteration(NULL, TRUE);
}

static void
call(ItkGatewayClient *client, const ItkGatewayRequest *req, Result *r)
{
        result_clear(r);
        itk_gateway_client_request_async(client, req, NULL, request_cb, r);
        wait_done(&r->done);
}

static JsonNode *
sim_control(ItkTestSim *sim, const char *method, const char *path)
{
        g_autoptr(ItkGatewayClient) client = itk_gateway_client_new(sim->url, NULL, NULL);
        ItkGatewayRequest req = { .method = method,
                                  .path = path,
                                  .flags = ITK_GATEWAY_REQUEST_NO_AUTH |
                                           ITK_GATEWAY_REQUEST_NO_REFUSAL_CHECK };
        Result r = { 0 };
        JsonNode *node;

        call(client, &req, &r);
        g_assert_no_error(r.error);
        g_assert_nonnull(r.node);
        node = g_steal_pointer(&r.node);
        result_clear(&r);
        return node;
}

static gint64
sim_state_int(ItkTestSim *sim, const char *member)
{
        g_autoptr(JsonNode) state = sim_control(sim, "GET", "/sim/state");
        return json_object_get_int_member(json_node_get_object(state), member);
}

static gint64
sim_count(ItkTestSim *sim, const char *route)
{
        g_autoptr(JsonNode) state = sim_control(sim, "GET", "/sim/state");
        JsonObject *counts = json_object_get_object_member(json_node_get_object(state), "counts");
        return json_object_get_int_member_with_default(counts, route, 0);
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

static ItkGatewayClient *
client_new(ItkTestSim *sim, const char *token)
{
        g_autoptr(GError) error = NULL;
        ItkGatewayClient *client = itk_gateway_client_new(sim->url, token, &error);

        g_assert_no_error(error);
        return client;
}

/* --- tests ------------------------------------------------------------------ */

static void
test_construct(void)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkGatewayClient) c = NULL;

        c = itk_gateway_client_new(NULL, NULL, &error);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS);
        g_clear_error(&error);
        c = itk_gateway_client_new("ftp://x", NULL, &error);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS);
        g_clear_error(&error);
        c = itk_gateway_client_new("http://admin:hunter2@gw:8088", NULL, &error);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS);
        g_assert_null(strstr(error->message, "hunter2"));
        g_clear_error(&error);
        /* The key alone is refused, and the message never shows it. */
        c = itk_gateway_client_new("http://127.0.0.1:1", "sekritkeyvalue", &error);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS);
        g_assert_null(strstr(error->message, "sekritkeyvalue"));
        g_clear_error(&error);
        c = itk_gateway_client_new("http://127.0.0.1:8088/", TOKEN, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(itk_gateway_client_get_base_url(c), ==, "http://127.0.0.1:8088");
        g_assert_true(itk_gateway_client_has_token(c));
}

static void
test_json_and_headers(void)
{
        ItkTestSim *sim = itk_test_sim_start(NULL);
        g_autoptr(ItkGatewayClient) client = client_new(sim, TOKEN);
        ItkGatewayRequest ping = { .path = "/StatusPing", .flags = ITK_GATEWAY_REQUEST_NO_AUTH };
        ItkGatewayRequest info = { .path = API "/gateway-info" };
        g_autoptr(JsonNode) state = NULL;
        JsonObject *headers;
        Result r = { 0 };

        call(client, &ping, &r);
        g_assert_no_error(r.error);
        g_assert_cmpuint(r.status, ==, 200);
        g_assert_cmpstr(json_object_get_string_member(json_node_get_object(r.node), "state"), ==,
                        "RUNNING");
        call(client, &info, &r);
        g_assert_no_error(r.error);
        g_assert_true(g_str_has_prefix(
                json_object_get_string_member(json_node_get_object(r.node), "ignitionVersion"),
                "8.3"));
        /* The sim saw the token (its name; the key is redacted) and Accept. */
        state = sim_control(sim, "GET", "/sim/state");
        headers = json_object_get_object_member(json_node_get_object(state), "lastRequestHeaders");
        g_assert_nonnull(headers);
        {
                g_autofree char *dump = json_to_string(
                        json_object_get_member(json_node_get_object(state), "lastRequestHeaders"),
                        FALSE);
                g_assert_nonnull(strstr(dump, "application/json"));
                g_assert_nonnull(strstr(dump, "itk:"));
        }
        result_clear(&r);
        itk_test_sim_stop(sim);
}

static void
test_bad_token(void)
{
        ItkTestSim *sim = itk_test_sim_start(NULL);
        g_autoptr(ItkGatewayClient) client = client_new(sim, "itk:wrongkeywrongkey");
        g_autoptr(ItkGatewayClient) none = client_new(sim, NULL);
        ItkGatewayRequest info = { .path = API "/gateway-info" };
        Result r = { 0 };

        call(client, &info, &r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_FAILED);
        g_assert_cmpuint(r.status, ==, 401);
        g_assert_nonnull(strstr(r.error->message, "the API token is missing or unknown"));
        g_assert_null(strstr(r.error->message, "wrongkeywrongkey"));
        call(none, &info, &r);
        g_assert_cmpuint(r.status, ==, 401);
        g_assert_nonnull(strstr(r.error->message, "give the run a gateway API token"));
        result_clear(&r);
        itk_test_sim_stop(sim);
}

static void
test_readonly_token(void)
{
        ItkTestSim *sim = itk_test_sim_start(NULL);
        g_autoptr(ItkGatewayClient) client = client_new(sim, RO_TOKEN);
        ItkGatewayRequest scan = { .method = "POST",
                                   .path = API "/scan/projects",
                                   .action = "scan projects" };
        ItkGatewayRequest list = { .path = API "/projects/list" };
        Result r = { 0 };

        call(client, &list, &r);
        g_assert_no_error(r.error);
        call(client, &scan, &r);
        g_assert_cmpuint(r.status, ==, 403);
        g_assert_nonnull(
                strstr(r.error->message, "the API token is not permitted to scan projects"));
        g_assert_null(strstr(r.error->message, "readonlykey"));
        result_clear(&r);
        itk_test_sim_stop(sim);
}

static void
test_uncommissioned(void)
{
        const char *args[] = { "--uncommissioned", NULL };
        ItkTestSim *sim = itk_test_sim_start(args);
        g_autoptr(ItkGatewayClient) client = client_new(sim, TOKEN);
        ItkGatewayRequest info = { .path = API "/gateway-info" };
        Result r = { 0 };

        call(client, &info, &r);
        g_assert_cmpuint(r.status, ==, 302);
        g_assert_nonnull(strstr(r.error->message, "gateway not commissioned"));
        /* Not followed: the sim saw no request for /welcome. */
        g_assert_cmpint(sim_count(sim, "GET /welcome"), ==, 0);
        result_clear(&r);
        itk_test_sim_stop(sim);
}

static void
test_version_81(void)
{
        const char *args[] = { "--version=8.1.44", NULL };
        ItkTestSim *sim = itk_test_sim_start(args);
        g_autoptr(ItkGatewayClient) client = client_new(sim, TOKEN);
        ItkGatewayRequest info = { .path = API "/gateway-info" };
        Result r = { 0 };

        call(client, &info, &r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_NOT_SUPPORTED);
        g_assert_nonnull(strstr(r.error->message, "needs Ignition 8.3+"));
        result_clear(&r);
        itk_test_sim_stop(sim);
}

static void
test_restarting_503(void)
{
        ItkTestSim *sim = itk_test_sim_start(NULL);
        g_autoptr(ItkGatewayClient) client = client_new(sim, TOKEN);
        ItkGatewayRequest restart = { .method = "POST",
                                      .path = API "/restart-tasks/restart?confirm=true" };
        ItkGatewayRequest info = { .path = API "/gateway-info" };
        Result r = { 0 };

        call(client, &restart, &r);
        g_assert_no_error(r.error);
        g_assert_true(json_node_get_boolean(r.node));
        run_for(250);
        call(client, &info, &r);
        g_assert_cmpuint(r.status, ==, 503);
        g_assert_nonnull(strstr(r.error->message, "gateway is restarting"));
        g_assert_true(itk_gateway_client_status_is_transient(r.status, r.error));
        result_clear(&r);
        itk_test_sim_stop(sim);
}

static void
test_hung_cancelled(void)
{
        const char *args[] = { "--fault=" API "/overview=hang", NULL };
        ItkTestSim *sim = itk_test_sim_start(args);
        g_autoptr(ItkGatewayClient) client = client_new(sim, TOKEN);
        g_autoptr(GCancellable) cancellable = g_cancellable_new();
        ItkGatewayRequest overview = { .path = API "/overview" };
        Result r = { 0 };
        gint64 cancelled_at;

        itk_gateway_client_request_async(client, &overview, cancellable, request_cb, &r);
        run_for(300);
        g_assert_false(r.done);
        g_assert_cmpint(sim_state_int(sim, "heldRequests"), ==, 1);
        cancelled_at = g_get_monotonic_time();
        g_cancellable_cancel(cancellable);
        wait_done(&r.done);
        g_assert_error(r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        g_assert_cmpint(r.done_at - cancelled_at, <, 100000);
        /* The connection was closed: the sim let go of the hung request. */
        for (guint i = 0; i < 50 && sim_state_int(sim, "heldRequests") != 0; i++)
                run_for(20);
        g_assert_cmpint(sim_state_int(sim, "heldRequests"), ==, 0);
        result_clear(&r);
        itk_test_sim_stop(sim);
}

static void
test_call_timeout(void)
{
        const char *args[] = { "--fault=" API "/overview=slow:3000", NULL };
        ItkTestSim *sim = itk_test_sim_start(args);
        g_autoptr(ItkGatewayClient) client = client_new(sim, TOKEN);
        ItkGatewayRequest overview = { .path = API "/overview", .timeout_ms = 300 };
        Result r = { 0 };
        gint64 start = g_get_monotonic_time();

        call(client, &overview, &r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_TIMED_OUT);
        g_assert_cmpint(r.done_at - start, <, 2000000);
        g_assert_true(itk_gateway_client_status_is_transient(r.status, r.error));
        result_clear(&r);
        itk_test_sim_stop(sim);
}

static void
test_dropped_and_html500(void)
{
        const char *args[] = { "--fault=" API "/overview=drop", "--fault=" API "/trial=html500",
                               NULL };
        ItkTestSim *sim = itk_test_sim_start(args);
        g_autoptr(ItkGatewayClient) client = client_new(sim, TOKEN);
        ItkGatewayRequest overview = { .path = API "/overview" };
        ItkGatewayRequest trial = { .path = API "/trial" };
        Result r = { 0 };

        call(client, &overview, &r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_FAILED);
        g_assert_cmpuint(r.status, ==, 0);
        g_assert_nonnull(strstr(r.error->message, "could not reach the gateway"));
        call(client, &trial, &r);
        g_assert_cmpuint(r.status, ==, 500);
        /* The Jetty page is summarised by its title, not dumped. */
        g_assert_nonnull(strstr(r.error->message, "HTTP 500"));
        g_assert_nonnull(strstr(r.error->message, ": Error 500"));
        g_assert_null(strstr(r.error->message, "<html"));
        result_clear(&r);
        itk_test_sim_stop(sim);
}

static void
test_connection_refused(void)
{
        g_autoptr(ItkGatewayClient) client =
                itk_gateway_client_new("http://127.0.0.1:9", TOKEN, NULL);
        ItkGatewayRequest ping = { .path = "/StatusPing" };
        Result r = { 0 };

        call(client, &ping, &r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_FAILED);
        g_assert_nonnull(
                strstr(r.error->message, "could not reach the gateway at http://127.0.0.1:9"));
        g_assert_true(itk_gateway_client_status_is_transient(r.status, r.error));
        result_clear(&r);
}

static GBytes *
make_zip(const char *name, const char *content)
{
        g_autoptr(ItkSimZipWriter) w = itk_sim_zip_writer_new();

        itk_sim_zip_writer_add(w, name, content, strlen(content), TRUE);
        itk_sim_zip_writer_add(w, "project.json", "{\"title\": \"x\"}", 14, FALSE);
        return itk_sim_zip_writer_finish(w);
}

static void
test_refusal_in_200(void)
{
        ItkTestSim *sim = itk_test_sim_start(NULL);
        g_autoptr(ItkGatewayClient) client = client_new(sim, TOKEN);
        g_autofree char *dir = g_dir_make_tmp("itk-gw-XXXXXX", NULL);
        g_autofree char *zip = g_build_filename(dir, "demo.zip", NULL);
        g_autofree char *exported = g_build_filename(dir, "exported.zip", NULL);
        ItkGatewayRequest export = { .path = API "/projects/export/demo",
                                     .download_file = exported,
                                     .flags = ITK_GATEWAY_REQUEST_EXPECT_ZIP };
        ItkGatewayRequest import = { .method = "POST",
                                     .path = API "/projects/import/demo",
                                     .upload_file = zip,
                                     .upload_content_type = "application/zip" };
        Result r = { 0 };

        call(client, &export, &r);
        g_assert_no_error(r.error);
        g_assert_true(g_file_test(exported, G_FILE_TEST_EXISTS));
        g_assert_cmpint(json_object_get_int_member(json_node_get_object(r.node), "size"), >, 22);
        g_assert_true(g_rename(exported, zip) == 0);
        /* "demo" exists and overwrite is not set: refused inside a 200. */
        call(client, &import, &r);
        g_assert_cmpuint(r.status, ==, 200);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_FAILED);
        g_assert_nonnull(strstr(r.error->message, "refused"));
        g_assert_nonnull(strstr(r.error->message, "already exists"));
        result_clear(&r);
        g_unlink(zip);
        g_rmdir(dir);
        itk_test_sim_stop(sim);
}

static void
test_stream_upload_download(void)
{
        ItkTestSim *sim = itk_test_sim_start(NULL);
        g_autoptr(ItkGatewayClient) client = client_new(sim, TOKEN);
        g_autofree char *dir = g_dir_make_tmp("itk-gw-XXXXXX", NULL);
        g_autofree char *backup = g_build_filename(dir, "gw.gwbk", NULL);
        g_autofree char *missing = g_build_filename(dir, "nothing.zip", NULL);
        g_autofree char *contents = NULL;
        g_autofree char *sha = NULL;
        g_autoptr(GDir) listing = NULL;
        g_autoptr(JsonNode) state = NULL;
        gsize len = 0;
        ItkGatewayRequest get = { .path = API "/backup?type=all",
                                  .download_file = backup,
                                  .flags = ITK_GATEWAY_REQUEST_EXPECT_ZIP };
        ItkGatewayRequest absent = { .path = API "/projects/export/nope",
                                     .download_file = missing,
                                     .flags = ITK_GATEWAY_REQUEST_EXPECT_ZIP };
        ItkGatewayRequest info = { .path = API "/gateway-info",
                                   .download_file = missing,
                                   .flags = ITK_GATEWAY_REQUEST_EXPECT_ZIP };
        ItkGatewayRequest post = { .method = "POST",
                                   .path = API "/modules/upload?fileName=gw.modl",
                                   .upload_file = backup };
        Result r = { 0 };

        call(client, &get, &r);
        g_assert_no_error(r.error);
        g_assert_true(g_file_get_contents(backup, &contents, &len, NULL));
        g_assert_cmpmem(contents, 2, "PK", 2);
        g_assert_cmpint(json_object_get_int_member(json_node_get_object(r.node), "size"), ==, len);
        call(client, &absent, &r);
        g_assert_cmpuint(r.status, ==, 404);
        g_assert_nonnull(strstr(r.error->message, "not found"));
        /* Not a ZIP: refused, and nothing left behind. */
        call(client, &info, &r);
        g_assert_error(r.error, ITK_ERROR, ITK_ERROR_FAILED);
        g_assert_nonnull(strstr(r.error->message, "not a ZIP archive"));
        g_assert_false(g_file_test(missing, G_FILE_TEST_EXISTS));
        /* Upload the backup's bytes (a zip, not a module: the sim says 400,
         * after it received every byte). */
        call(client, &post, &r);
        g_assert_cmpuint(r.status, ==, 400);
        state = sim_control(sim, "GET", "/sim/state");
        g_assert_cmpint(sim_count(sim, "POST " API "/modules/upload"), ==, 1);
        listing = g_dir_open(dir, 0, NULL);
        {
                const char *name;
                guint n = 0;
                while ((name = g_dir_read_name(listing)) != NULL)
                        n++;
                g_assert_cmpuint(n, ==, 1); /* no temporary files */
        }
        result_clear(&r);
        g_unlink(backup);
        g_rmdir(dir);
        itk_test_sim_stop(sim);
}

/* --- ZIP validation ------------------------------------------------------- */

typedef struct {
        gboolean done;
        gboolean ok;
        guint entries;
        GError *error;
} ZipResult;

static void
zip_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ZipResult *z = user_data;

        z->ok = itk_gateway_zip_validate_finish(result, &z->entries, &z->error);
        z->done = TRUE;
}

static gboolean
validate(const char *path, guint *entries, GError **error)
{
        ZipResult z = { 0 };

        itk_gateway_zip_validate_async(path, NULL, zip_cb, &z);
        wait_done(&z.done);
        if (entries != NULL)
                *entries = z.entries;
        if (z.error != NULL)
                g_propagate_error(error, z.error);
        return z.ok;
}

static void
test_zip_validate(void)
{
        g_autofree char *dir = g_dir_make_tmp("itk-zip-XXXXXX", NULL);
        g_autofree char *good = g_build_filename(dir, "good.zip", NULL);
        g_autofree char *cut = g_build_filename(dir, "cut.zip", NULL);
        g_autofree char *cut_eocd = g_build_filename(dir, "cut2.zip", NULL);
        g_autofree char *junk = g_build_filename(dir, "junk.zip", NULL);
        g_autoptr(GBytes) zip = make_zip("views/main.json", "{\"hello\": \"world\"}");
        g_autoptr(GError) error = NULL;
        gsize len;
        const char *data = g_bytes_get_data(zip, &len);
        guint entries = 0;

        g_assert_true(g_file_set_contents(good, data, len, NULL));
        g_assert_true(g_file_set_contents(cut, data, len / 2, NULL));
        /* Only the last byte missing: the record is damaged. */
        g_assert_true(g_file_set_contents(cut_eocd, data, len - 1, NULL));
        g_assert_true(g_file_set_contents(junk, "PK\x03\x04 this is not a zip at all", 30, NULL));

        g_assert_true(validate(good, &entries, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(entries, ==, 2);
        g_assert_false(validate(cut, NULL, &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_FAILED);
        g_assert_nonnull(strstr(error->message, "not a complete ZIP archive"));
        g_clear_error(&error);
        g_assert_false(validate(cut_eocd, NULL, &error));
        g_assert_nonnull(error);
        g_clear_error(&error);
        g_assert_false(validate(junk, NULL, &error));
        g_assert_nonnull(error);
        g_clear_error(&error);

        g_unlink(good);
        g_unlink(cut);
        g_unlink(cut_eocd);
        g_unlink(junk);
        g_rmdir(dir);
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        /* Linked in, not loaded as the daemon does. */
        itk_step_gateway_module_init();
        g_test_add_func("/gateway-client/construct", test_construct);
        g_test_add_func("/gateway-client/zip-validate", test_zip_validate);
        g_test_add_func("/gateway-client/connection-refused", test_connection_refused);
        g_test_add_func("/gateway-client/json-and-headers", test_json_and_headers);
        g_test_add_func("/gateway-client/bad-token", test_bad_token);
        g_test_add_func("/gateway-client/readonly-token", test_readonly_token);
        g_test_add_func("/gateway-client/uncommissioned", test_uncommissioned);
        g_test_add_func("/gateway-client/version-81", test_version_81);
        g_test_add_func("/gateway-client/restarting-503", test_restarting_503);
        g_test_add_func("/gateway-client/hung-cancelled", test_hung_cancelled);
        g_test_add_func("/gateway-client/call-timeout", test_call_timeout);
        g_test_add_func("/gateway-client/dropped-and-html500", test_dropped_and_html500);
        g_test_add_func("/gateway-client/refusal-in-200", test_refusal_in_200);
        g_test_add_func("/gateway-client/stream-upload-download", test_stream_upload_download);
        return g_test_run();
}
