/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Drives the built itk-gateway-sim (path in ITK_GATEWAY_SIM) over HTTP with a
 * libsoup client, one simulator process per test. */
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include "sim-zip.h"

/* base64url of 32 bytes, like a real gateway key. */
#define KEY "q3Jt0sK8v2m5Yc1xW9pZ4LhN7eR6uA0dF2gH5jK8lMw"
#define TOKEN "itk:" KEY
#define RO_KEY "readonlykey"
#define RO_TOKEN "ro:" RO_KEY
#define TOKEN_HEADER "X-Ignition-API-Token"
#define API "/data/api/v1"

typedef struct {
        GSubprocess *proc;
        GInputStream *stdout_pipe;
        SoupSession *session;
        guint port;
} Sim;

static void
sim_child_setup(gpointer user_data)
{
        /* No orphaned simulator if the test dies. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
}

static const char *
sim_binary(void)
{
        static char *path = NULL;

        if (path == NULL) {
                const char *env = g_getenv("ITK_GATEWAY_SIM");
                path = env != NULL ? g_strdup(env)
                                   : g_test_build_filename(G_TEST_BUILT, "itk-gateway-sim", NULL);
        }
        return path;
}

/* Starts the simulator with the test tokens, short delays and @extra args. */
static Sim *
sim_start(const char *const *extra)
{
        g_autoptr(GSubprocessLauncher) launcher =
                g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_autoptr(GDataInputStream) data = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *line = NULL;
        guint64 port = 0;
        Sim *sim = g_new0(Sim, 1);

        g_ptr_array_add(argv, (gpointer)sim_binary());
        g_ptr_array_add(argv, "--port=0");
        g_ptr_array_add(argv, "--token=" TOKEN);
        g_ptr_array_add(argv, "--readonly-token=" RO_TOKEN);
        g_ptr_array_add(argv, "--restart-delay=150");
        g_ptr_array_add(argv, "--startup-time=600");
        for (guint i = 0; extra != NULL && extra[i] != NULL; i++)
                g_ptr_array_add(argv, (gpointer)extra[i]);
        g_ptr_array_add(argv, NULL);

        g_subprocess_launcher_set_child_setup(launcher, sim_child_setup, NULL, NULL);
        sim->proc =
                g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, &error);
        g_assert_no_error(error);
        sim->stdout_pipe = g_object_ref(g_subprocess_get_stdout_pipe(sim->proc));
        data = g_data_input_stream_new(sim->stdout_pipe);
        g_filter_input_stream_set_close_base_stream(G_FILTER_INPUT_STREAM(data), FALSE);
        line = g_data_input_stream_read_line_utf8(data, NULL, NULL, &error);
        g_assert_no_error(error);
        g_assert_nonnull(line);
        /* The contract with the tests and the demo: exactly this first line. */
        g_assert_true(g_str_has_prefix(line, "listening on http://127.0.0.1:"));
        g_assert_true(g_ascii_string_to_unsigned(line + strlen("listening on http://127.0.0.1:"),
                                                 10, 1, 65535, &port, NULL));
        sim->port = (guint)port;
        sim->session = soup_session_new_with_options("timeout", 10, NULL);
        return sim;
}

/* SIGTERM; the simulator must exit 0 (so also without sanitizer reports). */
static void
sim_terminate(Sim *sim)
{
        g_autoptr(GError) error = NULL;

        g_subprocess_send_signal(sim->proc, SIGTERM);
        g_subprocess_wait(sim->proc, NULL, &error);
        g_assert_no_error(error);
        g_assert_true(g_subprocess_get_if_exited(sim->proc));
        g_assert_cmpint(g_subprocess_get_exit_status(sim->proc), ==, 0);
}

static void
sim_free(Sim *sim)
{
        g_object_unref(sim->session);
        g_object_unref(sim->stdout_pipe);
        g_object_unref(sim->proc);
        g_free(sim);
}

static void
sim_stop(Sim *sim)
{
        sim_terminate(sim);
        sim_free(sim);
}

static gboolean
quit_cb(gpointer user_data)
{
        g_main_loop_quit(user_data);
        return G_SOURCE_REMOVE;
}

static void
wait_ms(guint ms)
{
        g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);

        g_timeout_add(ms, quit_cb, loop);
        g_main_loop_run(loop);
}

static SoupMessage *
sim_msg(Sim *sim, const char *method, const char *path, const char *token)
{
        g_autofree char *uri = g_strdup_printf("http://127.0.0.1:%u%s", sim->port, path);
        SoupMessage *msg = soup_message_new(method, uri);

        g_assert_nonnull(msg);
        /* A gateway client never follows redirects (GATEWAY-API.md). */
        soup_message_add_flags(msg, SOUP_MESSAGE_NO_REDIRECT);
        soup_message_headers_replace(soup_message_get_request_headers(msg), "Accept",
                                     "application/json");
        if (token != NULL)
                soup_message_headers_replace(soup_message_get_request_headers(msg), TOKEN_HEADER,
                                             token);
        return msg;
}

static GBytes *
sim_send(Sim *sim, SoupMessage *msg)
{
        g_autoptr(GError) error = NULL;
        GBytes *body = soup_session_send_and_read(sim->session, msg, NULL, &error);

        g_assert_no_error(error);
        return body;
}

/* One request: returns the status, the body in @out_body when not NULL. */
static guint
sim_call(Sim *sim, const char *method, const char *path, const char *token,
         const char *content_type, GBytes *request, GBytes **out_body)
{
        g_autoptr(SoupMessage) msg = sim_msg(sim, method, path, token);
        g_autoptr(GBytes) body = NULL;

        if (request != NULL)
                soup_message_set_request_body_from_bytes(msg, content_type, request);
        body = sim_send(sim, msg);
        if (out_body != NULL)
                *out_body = g_steal_pointer(&body);
        return soup_message_get_status(msg);
}

static JsonNode *
parse_json(GBytes *bytes)
{
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(GError) error = NULL;
        gsize len;
        const char *data = g_bytes_get_data(bytes, &len);

        json_parser_load_from_data(parser, data != NULL ? data : "", (gssize)len, &error);
        g_assert_no_error(error);
        return json_node_ref(json_parser_get_root(parser));
}

/* GET @path with the full token, expecting 200 and a JSON object. */
static JsonNode *
sim_get_json(Sim *sim, const char *path)
{
        g_autoptr(GBytes) body = NULL;

        g_assert_cmpuint(sim_call(sim, "GET", path, TOKEN, NULL, NULL, &body), ==, 200);
        return parse_json(body);
}

static JsonNode *
sim_post_json(Sim *sim, const char *path, guint expected_status)
{
        g_autoptr(GBytes) body = NULL;

        g_assert_cmpuint(sim_call(sim, "POST", path, TOKEN, NULL, NULL, &body), ==,
                         expected_status);
        return parse_json(body);
}

static char *
sim_status_ping(Sim *sim)
{
        g_autoptr(GBytes) body = NULL;
        g_autoptr(JsonNode) root = NULL;

        g_assert_cmpuint(sim_call(sim, "GET", "/StatusPing", NULL, NULL, NULL, &body), ==, 200);
        root = parse_json(body);
        return g_strdup(json_object_get_string_member(json_node_get_object(root), "state"));
}

/* Polls StatusPing until it says @state; FALSE after @timeout_ms. */
static gboolean
sim_wait_state(Sim *sim, const char *state, guint timeout_ms)
{
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

        while (g_get_monotonic_time() < deadline) {
                g_autofree char *now = sim_status_ping(sim);
                if (g_strcmp0(now, state) == 0)
                        return TRUE;
                wait_ms(25);
        }
        return FALSE;
}

static JsonNode *
sim_state(Sim *sim)
{
        g_autoptr(GBytes) body = NULL;

        g_assert_cmpuint(sim_call(sim, "GET", "/sim/state", NULL, NULL, NULL, &body), ==, 200);
        return parse_json(body);
}

static void
sim_set_fault(Sim *sim, const char *glob, const char *mode)
{
        g_autofree char *path = NULL;
        g_autofree char *g = g_uri_escape_string(glob, NULL, FALSE);

        path = g_strdup_printf("/sim/fault?path=%s&mode=%s", g, mode);
        g_assert_cmpuint(sim_call(sim, "POST", path, NULL, NULL, NULL, NULL), ==, 200);
}

static gboolean
bytes_start_with_pk(GBytes *bytes)
{
        gsize len;
        const guint8 *data = g_bytes_get_data(bytes, &len);
        return len >= 4 && memcmp(data, "PK\3\4", 4) == 0;
}

static gboolean
bytes_contain(GBytes *bytes, const char *needle)
{
        gsize len;
        const char *data = g_bytes_get_data(bytes, &len);
        g_autofree char *text = g_strndup(data != NULL ? data : "", len);
        return strstr(text, needle) != NULL;
}

/* Finds the module @id in a list answer's items, or NULL. */
static JsonObject *
find_item(JsonNode *list, const char *key, const char *value)
{
        JsonArray *items = json_object_get_array_member(json_node_get_object(list), "items");

        for (guint i = 0; i < json_array_get_length(items); i++) {
                JsonObject *o = json_array_get_object_element(items, i);
                if (g_strcmp0(json_object_get_string_member(o, key), value) == 0)
                        return o;
        }
        return NULL;
}

static GBytes *
make_modl(const char *id, const char *name, const char *version, gboolean cert, gboolean eula,
          const char *required)
{
        g_autoptr(ItkSimZipWriter) w = itk_sim_zip_writer_new();
        g_autofree char *xml = g_strdup_printf(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<modules>\n  <module>\n"
                "    <id>%s</id>\n    <name>%s</name>\n    <description>Test module</description>\n"
                "    <version>%s</version>\n    <requiredignitionversion>%s"
                "</requiredignitionversion>\n%s  </module>\n</modules>\n",
                id, name, version, required, eula ? "    <license>license.html</license>\n" : "");

        itk_sim_zip_writer_add(w, "module.xml", xml, strlen(xml), TRUE);
        itk_sim_zip_writer_add(w, "test-gateway.jar", "PK-not-really", 13, FALSE);
        if (cert)
                itk_sim_zip_writer_add(w, "certificates.p7b", "cert", 4, FALSE);
        if (eula)
                itk_sim_zip_writer_add(w, "license.html", "<p>EULA</p>", 11, TRUE);
        return itk_sim_zip_writer_finish(w);
}

/* ---- tests ---- */

static void
test_zip_roundtrip(void)
{
        g_autoptr(ItkSimZipWriter) w = itk_sim_zip_writer_new();
        g_autoptr(GBytes) zip = NULL;
        g_autoptr(GBytes) truncated = NULL;
        g_autoptr(ItkSimZip) z = NULL;
        g_autoptr(GBytes) out = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *big = g_strnfill(10000, 'a');
        ItkSimZip *bad;

        itk_sim_zip_writer_add(w, "big.txt", big, 10000, TRUE);
        itk_sim_zip_writer_add(w, "small.txt", "hi", 2, FALSE);
        zip = itk_sim_zip_writer_finish(w);
        g_assert_true(bytes_start_with_pk(zip));
        /* Deflate really happened: 10000 'a' shrink a lot. */
        g_assert_cmpuint(g_bytes_get_size(zip), <, 1000);
        z = itk_sim_zip_open(zip, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(itk_sim_zip_get_n_entries(z), ==, 2);
        out = itk_sim_zip_extract(z, "big.txt", 1 << 20, &error);
        g_assert_no_error(error);
        g_assert_cmpmem(g_bytes_get_data(out, NULL), g_bytes_get_size(out), big, 10000);
        /* The inflate bound holds. */
        g_assert_null(itk_sim_zip_extract(z, "big.txt", 100, &error));
        g_assert_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE);
        g_clear_error(&error);

        truncated = g_bytes_new_from_bytes(zip, 0, g_bytes_get_size(zip) / 2);
        bad = itk_sim_zip_open(truncated, &error);
        g_assert_null(bad);
        g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
}

static void
test_status_ping(void)
{
        Sim *sim = sim_start(NULL);
        g_autoptr(SoupMessage) msg = sim_msg(sim, "GET", "/StatusPing", NULL);
        g_autoptr(GBytes) body = sim_send(sim, msg);
        g_autoptr(JsonNode) root = parse_json(body);

        g_assert_cmpuint(soup_message_get_status(msg), ==, 200);
        g_assert_cmpstr(
                soup_message_headers_get_content_type(soup_message_get_response_headers(msg), NULL),
                ==, "application/json");
        g_assert_cmpstr(json_object_get_string_member(json_node_get_object(root), "state"), ==,
                        "RUNNING");
        g_assert_false(json_object_has_member(json_node_get_object(root), "details"));
        sim_stop(sim);
}

static void
assert_jetty_html(SoupMessage *msg, GBytes *body, guint status)
{
        g_autofree char *title = g_strdup_printf("HTTP ERROR %u", status);

        g_assert_cmpuint(soup_message_get_status(msg), ==, status);
        g_assert_cmpstr(
                soup_message_headers_get_content_type(soup_message_get_response_headers(msg), NULL),
                ==, "text/html");
        g_assert_true(bytes_contain(body, title));
}

static void
test_auth(void)
{
        Sim *sim = sim_start(NULL);
        const char *const bad_tokens[] = { NULL, KEY, "itk:wrong", "nobody:" KEY, "itk:" };

        for (guint i = 0; i < G_N_ELEMENTS(bad_tokens); i++) {
                g_autoptr(SoupMessage) msg =
                        sim_msg(sim, "GET", API "/gateway-info", bad_tokens[i]);
                g_autoptr(GBytes) body = sim_send(sim, msg);

                /* Missing, key alone, wrong key, unknown name: 401 as Jetty HTML. */
                assert_jetty_html(msg, body, 401);
        }

        {
                g_autoptr(JsonNode) info = sim_get_json(sim, API "/gateway-info");
                JsonObject *o = json_node_get_object(info);
                g_autofree char *port = g_strdup_printf("%u", sim->port);

                g_assert_cmpstr(json_object_get_string_member(o, "ignitionVersion"), ==,
                                "8.3.6 (b2026042713)");
                g_assert_cmpstr(json_object_get_string_member(o, "port"), ==, port);
                g_assert_true(json_object_has_member(json_object_get_object_member(o, "license"),
                                                     "licenseRestrictions"));
        }
        {
                g_autoptr(JsonNode) overview = sim_get_json(sim, API "/overview");
                JsonObject *o = json_node_get_object(overview);

                g_assert_cmpuint(json_array_get_length(json_object_get_array_member(o, "memory")),
                                 ==, 2);
                g_assert_true(json_object_has_member(json_object_get_object_member(o, "license"),
                                                     "trialRemaining"));
        }

        /* The read-only token reads, and gets 403 on a write. */
        g_assert_cmpuint(sim_call(sim, "GET", API "/projects/list", RO_TOKEN, NULL, NULL, NULL), ==,
                         200);
        {
                g_autoptr(SoupMessage) msg = sim_msg(sim, "POST", API "/scan/projects", RO_TOKEN);
                g_autoptr(GBytes) body = sim_send(sim, msg);

                assert_jetty_html(msg, body, 403);
        }
        g_assert_cmpuint(sim_call(sim, "POST", API "/scan/projects", TOKEN, NULL, NULL, NULL), ==,
                         200);

        /* Accept is honoured: a JSON route refuses a client that takes only HTML. */
        {
                g_autoptr(SoupMessage) msg = sim_msg(sim, "GET", API "/gateway-info", TOKEN);
                g_autoptr(GBytes) body = NULL;

                soup_message_headers_replace(soup_message_get_request_headers(msg), "Accept",
                                             "text/html");
                body = sim_send(sim, msg);
                g_assert_cmpuint(soup_message_get_status(msg), ==, 406);
        }
        sim_stop(sim);
}

static void
test_unknown_route(void)
{
        Sim *sim = sim_start(NULL);
        g_autoptr(GBytes) body = NULL;
        g_autoptr(JsonNode) root = NULL;

        g_assert_cmpuint(sim_call(sim, "GET", API "/no/such/thing", TOKEN, NULL, NULL, &body), ==,
                         404);
        root = parse_json(body);
        g_assert_cmpstr(json_object_get_string_member(json_node_get_object(root), "message"), ==,
                        "No route match for path: /data/api/v1/no/such/thing");
        sim_stop(sim);
}

static void
test_uncommissioned(void)
{
        const char *const args[] = { "--uncommissioned", NULL };
        Sim *sim = sim_start(args);
        const char *const paths[] = { API "/gateway-info", "/", "/web/login" };
        g_autoptr(GBytes) body = NULL;
        g_autoptr(JsonNode) root = NULL;
        JsonObject *o;

        for (guint i = 0; i < G_N_ELEMENTS(paths); i++) {
                g_autoptr(SoupMessage) msg = sim_msg(sim, "GET", paths[i], TOKEN);
                g_autoptr(GBytes) b = sim_send(sim, msg);
                const char *location = soup_message_headers_get_one(
                        soup_message_get_response_headers(msg), "Location");

                g_assert_cmpuint(soup_message_get_status(msg), ==, 302);
                g_assert_nonnull(location);
                g_assert_true(g_str_has_prefix(location, "/welcome"));
        }
        /* The health check still answers, and says why the gateway is not usable. */
        g_assert_cmpuint(sim_call(sim, "GET", "/StatusPing", NULL, NULL, NULL, &body), ==, 200);
        root = parse_json(body);
        o = json_node_get_object(root);
        g_assert_cmpstr(json_object_get_string_member(o, "state"), ==, "RUNNING");
        g_assert_cmpstr(json_object_get_string_member(o, "details"), ==, "COMMISSIONING");
        sim_stop(sim);
}

static void
test_version_81(void)
{
        const char *const args[] = { "--version=8.1.44", NULL };
        Sim *sim = sim_start(args);
        g_autofree char *state = sim_status_ping(sim);

        g_assert_cmpstr(state, ==, "RUNNING");
        g_assert_cmpuint(sim_call(sim, "GET", API "/gateway-info", TOKEN, NULL, NULL, NULL), ==,
                         404);
        g_assert_cmpuint(sim_call(sim, "GET", API "/modules/healthy", TOKEN, NULL, NULL, NULL), ==,
                         404);
        sim_stop(sim);
}

static void
test_restart(void)
{
        Sim *sim = sim_start(NULL);
        g_autoptr(SoupMessage) msg = NULL;
        g_autoptr(GBytes) body = NULL;
        g_autoptr(JsonNode) state = NULL;

        g_assert_cmpuint(
                sim_call(sim, "POST", API "/restart-tasks/restart", TOKEN, NULL, NULL, NULL), ==,
                400);

        msg = sim_msg(sim, "POST", API "/restart-tasks/restart?confirm=true", TOKEN);
        body = sim_send(sim, msg);
        g_assert_cmpuint(soup_message_get_status(msg), ==, 200);
        g_assert_cmpmem(g_bytes_get_data(body, NULL), g_bytes_get_size(body), "true", 4);

        g_assert_true(sim_wait_state(sim, "STARTING", 3000));
        /* /data answers 503 while STARTING. */
        g_assert_cmpuint(sim_call(sim, "GET", API "/gateway-info", TOKEN, NULL, NULL, NULL), ==,
                         503);
        g_assert_true(sim_wait_state(sim, "RUNNING", 3000));
        g_assert_cmpuint(sim_call(sim, "GET", API "/gateway-info", TOKEN, NULL, NULL, NULL), ==,
                         200);
        state = sim_state(sim);
        g_assert_cmpint(json_object_get_int_member(json_node_get_object(state), "restartCount"), ==,
                        1);
        sim_stop(sim);
}

static void
test_restart_never_returns(void)
{
        Sim *sim = sim_start(NULL);
        g_autoptr(JsonNode) r = NULL;
        g_autofree char *after = NULL;

        g_assert_cmpuint(
                sim_call(sim, "POST", "/sim/restart-never-returns?on=1", NULL, NULL, NULL, NULL),
                ==, 200);
        r = sim_post_json(sim, API "/restart-tasks/restart?confirm=true", 200);
        g_assert_true(sim_wait_state(sim, "STARTING", 3000));
        wait_ms(1500); /* well past --startup-time=600 */
        after = sim_status_ping(sim);
        g_assert_cmpstr(after, ==, "STARTING");
        /* Switched off, the startup completes. */
        g_assert_cmpuint(
                sim_call(sim, "POST", "/sim/restart-never-returns?on=0", NULL, NULL, NULL, NULL),
                ==, 200);
        g_assert_true(sim_wait_state(sim, "RUNNING", 3000));
        sim_stop(sim);
}

/* --offline-time: between the restart and STARTING every request fails at
 * the connection, as while a real gateway's JVM restarts; then as before. */
static void
test_restart_offline(void)
{
        const char *const extra[] = { "--offline-time=1500", NULL };
        Sim *sim = sim_start(extra);
        g_autoptr(JsonNode) r = NULL;
        gboolean refused = FALSE;
        gint64 deadline = g_get_monotonic_time() + 3 * G_USEC_PER_SEC;

        r = sim_post_json(sim, API "/restart-tasks/restart?confirm=true", 200);
        while (!refused && g_get_monotonic_time() < deadline) {
                g_autoptr(SoupMessage) msg = sim_msg(sim, "GET", "/StatusPing", NULL);
                g_autoptr(GError) error = NULL;
                g_autoptr(GBytes) body =
                        soup_session_send_and_read(sim->session, msg, NULL, &error);

                refused = error != NULL;
                if (!refused)
                        wait_ms(25);
        }
        g_assert_true(refused);
        wait_ms(1700); /* past the rest of --offline-time=1500 */
        g_assert_true(sim_wait_state(sim, "RUNNING", 5000));
        sim_stop(sim);
}

static void
test_modules(void)
{
        Sim *sim = sim_start(NULL);
        g_autoptr(GBytes) modl =
                make_modl("com.example.tester", "Tester", "1.2.0", TRUE, TRUE, "8.3.0");
        g_autoptr(GBytes) upgrade = make_modl("com.inductiveautomation.perspective", "Perspective",
                                              "8.3.7", FALSE, FALSE, "8.3.0");
        g_autoptr(GBytes) future =
                make_modl("com.example.future", "Future", "2.0.0", FALSE, FALSE, "9.0.0");
        g_autoptr(GBytes) body = NULL;
        g_autoptr(GBytes) junk = g_bytes_new_static("not a zip", 9);
        JsonObject *o, *m;

        /* Not a zip, or a zip without module.xml: 400 JSON. */
        g_assert_cmpuint(sim_call(sim, "POST", API "/modules/upload?fileName=x.modl", TOKEN,
                                  "application/octet-stream", junk, &body),
                         ==, 400);
        {
                g_autoptr(JsonNode) err = parse_json(body);
                g_assert_true(json_object_has_member(json_node_get_object(err), "message"));
        }
        g_clear_pointer(&body, g_bytes_unref);

        /* A signed module with a EULA waits in quarantine. */
        g_assert_cmpuint(sim_call(sim, "POST", API "/modules/upload?fileName=Tester.modl", TOKEN,
                                  "application/octet-stream", modl, &body),
                         ==, 200);
        {
                g_autoptr(JsonNode) up = parse_json(body);
                o = json_node_get_object(up);
                g_assert_cmpstr(json_object_get_string_member(o, "moduleId"), ==,
                                "com.example.tester");
                g_assert_true(json_object_get_boolean_member(o, "containsCert"));
                g_assert_false(json_object_get_boolean_member(o, "certAccepted"));
                g_assert_true(json_object_get_boolean_member(o, "containsEula"));
                g_assert_false(json_object_get_boolean_member(o, "licenseAccepted"));
        }
        {
                g_autoptr(JsonNode) q = sim_get_json(sim, API "/modules/quarantined");
                m = find_item(q, "id", "com.example.tester");
                g_assert_nonnull(m);
                g_assert_nonnull(json_object_get_string_member(m, "reason"));
        }
        /* Installing before the acceptance is refused inside a 200. */
        {
                g_autoptr(JsonNode) refused =
                        sim_post_json(sim, API "/modules/install?moduleId=com.example.tester", 200);
                o = json_node_get_object(refused);
                g_assert_false(json_object_get_boolean_member(o, "success"));
                g_assert_true(json_object_has_member(o, "problem"));
        }
        g_assert_cmpuint(sim_call(sim, "POST",
                                  API "/modules/certificate?moduleId=com.example.tester", TOKEN,
                                  NULL, NULL, NULL),
                         ==, 200);
        /* The second acceptance gets 409 (a client treats it as fine). */
        g_assert_cmpuint(sim_call(sim, "POST",
                                  API "/modules/certificate?moduleId=com.example.tester", TOKEN,
                                  NULL, NULL, NULL),
                         ==, 409);
        g_assert_cmpuint(sim_call(sim, "POST", API "/modules/eula?moduleId=com.example.tester",
                                  TOKEN, NULL, NULL, NULL),
                         ==, 200);
        g_assert_cmpuint(sim_call(sim, "POST", API "/modules/eula?moduleId=com.example.tester",
                                  TOKEN, NULL, NULL, NULL),
                         ==, 409);
        {
                g_autoptr(JsonNode) ok =
                        sim_post_json(sim, API "/modules/install?moduleId=com.example.tester", 200);
                g_assert_true(json_object_get_boolean_member(json_node_get_object(ok), "success"));
        }

        /* An upgrade of an installed module, and one needing a newer platform. */
        g_assert_cmpuint(sim_call(sim, "POST", API "/modules/upload", TOKEN,
                                  "application/octet-stream", upgrade, NULL),
                         ==, 200);
        g_assert_cmpuint(sim_call(sim, "POST",
                                  API
                                  "/modules/install?moduleId=com.inductiveautomation.perspective",
                                  TOKEN, NULL, NULL, NULL),
                         ==, 200);
        g_assert_cmpuint(sim_call(sim, "POST", API "/modules/upload", TOKEN,
                                  "application/octet-stream", future, NULL),
                         ==, 200);
        g_assert_cmpuint(sim_call(sim, "POST", API "/modules/install?moduleId=com.example.future",
                                  TOKEN, NULL, NULL, NULL),
                         ==, 200);

        {
                g_autoptr(JsonNode) h =
                        sim_get_json(sim, API "/modules/healthy?search=com.example.tester");
                JsonObject *meta =
                        json_object_get_object_member(json_node_get_object(h), "metadata");

                g_assert_cmpint(json_object_get_int_member(meta, "matching"), ==, 1);
                m = find_item(h, "id", "com.example.tester");
                g_assert_nonnull(m);
                g_assert_cmpstr(json_object_get_string_member(m, "state"), ==, "INACTIVE");
        }
        {
                g_autoptr(JsonNode) h = sim_get_json(
                        sim, API "/modules/healthy?search=com.inductiveautomation.perspective");
                m = find_item(h, "id", "com.inductiveautomation.perspective");
                g_assert_nonnull(m);
                g_assert_true(json_object_get_boolean_member(m, "shouldUpgrade"));
                g_assert_cmpstr(json_object_get_string_member(m, "version"), ==, "8.3.6");
        }
        {
                g_autoptr(JsonNode) p = sim_get_json(sim, API "/restart-tasks/pending");
                g_assert_cmpuint(json_array_get_length(json_object_get_array_member(
                                         json_node_get_object(p), "pending")),
                                 ==, 3);
        }

        {
                g_autoptr(JsonNode) r =
                        sim_post_json(sim, API "/restart-tasks/restart?confirm=true", 200);
        }
        g_assert_true(sim_wait_state(sim, "STARTING", 3000));
        g_assert_true(sim_wait_state(sim, "RUNNING", 3000));

        {
                g_autoptr(JsonNode) h = sim_get_json(sim, API "/modules/healthy?limit=-1");
                m = find_item(h, "id", "com.example.tester");
                g_assert_nonnull(m);
                g_assert_cmpstr(json_object_get_string_member(m, "state"), ==, "ACTIVE");
                m = find_item(h, "id", "com.inductiveautomation.perspective");
                g_assert_false(json_object_get_boolean_member(m, "shouldUpgrade"));
                g_assert_cmpstr(json_object_get_string_member(m, "version"), ==, "8.3.7");
                /* The module for Ignition 9 did not load. */
                g_assert_null(find_item(h, "id", "com.example.future"));
        }
        {
                g_autoptr(JsonNode) q = sim_get_json(sim, API "/modules/quarantined");
                g_assert_null(find_item(q, "id", "com.example.tester"));
                m = find_item(q, "id", "com.example.future");
                g_assert_nonnull(m);
                g_assert_nonnull(strstr(json_object_get_string_member(m, "reason"), "9.0.0"));
        }
        {
                g_autoptr(JsonNode) p = sim_get_json(sim, API "/restart-tasks/pending");
                g_assert_cmpuint(json_array_get_length(json_object_get_array_member(
                                         json_node_get_object(p), "pending")),
                                 ==, 0);
        }
        sim_stop(sim);
}

static void
test_uninstall(void)
{
        Sim *sim = sim_start(NULL);
        static const char json[] = "{\"uninstall\":[\"com.inductiveautomation.vision\"]}";
        g_autoptr(GBytes) request = g_bytes_new_static(json, sizeof(json) - 1);
        g_autoptr(GBytes) body = NULL;
        g_autoptr(JsonNode) h = NULL;
        JsonObject *o;

        /* The body and the query name the same module: both are sent. */
        g_assert_cmpuint(sim_call(sim, "DELETE",
                                  API "/modules/uninstall?moduleId=com.inductiveautomation.vision",
                                  TOKEN, "application/json", request, &body),
                         ==, 200);
        {
                g_autoptr(JsonNode) r = parse_json(body);
                o = json_node_get_object(r);
                g_assert_true(json_object_get_boolean_member(o, "success"));
                g_assert_cmpuint(
                        json_array_get_length(json_object_get_array_member(
                                json_object_get_object_member(o, "failedUninstalls"), "uninstall")),
                        ==, 0);
        }
        h = sim_get_json(sim, API "/modules/healthy?limit=-1");
        g_assert_null(find_item(h, "id", "com.inductiveautomation.vision"));
        g_clear_pointer(&body, g_bytes_unref);

        /* An unknown module: still 200, reported as failed. */
        g_assert_cmpuint(sim_call(sim, "DELETE", API "/modules/uninstall?moduleId=com.nope", TOKEN,
                                  NULL, NULL, &body),
                         ==, 200);
        {
                g_autoptr(JsonNode) r = parse_json(body);
                JsonArray *failed;

                o = json_node_get_object(r);
                g_assert_false(json_object_get_boolean_member(o, "success"));
                failed = json_object_get_array_member(
                        json_object_get_object_member(o, "failedUninstalls"), "uninstall");
                g_assert_cmpuint(json_array_get_length(failed), ==, 1);
                g_assert_cmpstr(json_array_get_string_element(failed, 0), ==, "com.nope");
        }
        sim_stop(sim);
}

static void
test_projects(void)
{
        Sim *sim = sim_start(NULL);
        g_autoptr(GBytes) exported = NULL;
        g_autoptr(GBytes) truncated = NULL;
        g_autoptr(GBytes) body = NULL;
        g_autoptr(GBytes) again = NULL;
        JsonObject *o;

        {
                g_autoptr(JsonNode) list = sim_get_json(sim, API "/projects/list");
                JsonObject *meta =
                        json_object_get_object_member(json_node_get_object(list), "metadata");
                g_assert_cmpint(json_object_get_int_member(meta, "total"), ==, 2);
                g_assert_nonnull(find_item(list, "name", "demo"));
        }
        {
                /* Paging: sorted by name, second page of one. */
                g_autoptr(JsonNode) page =
                        sim_get_json(sim, API "/projects/list?limit=1&offset=1&sortBy=asc(name)");
                JsonArray *items =
                        json_object_get_array_member(json_node_get_object(page), "items");
                g_assert_cmpuint(json_array_get_length(items), ==, 1);
                g_assert_cmpstr(json_object_get_string_member(
                                        json_array_get_object_element(items, 0), "name"),
                                ==, "global");
        }
        {
                g_autoptr(JsonNode) demo = sim_get_json(sim, API "/projects/find/demo");
                o = json_node_get_object(demo);
                g_assert_cmpstr(json_object_get_string_member(o, "parent"), ==, "global");
        }
        g_assert_cmpuint(
                sim_call(sim, "GET", API "/projects/find/missing", TOKEN, NULL, NULL, NULL), ==,
                404);

        g_assert_cmpuint(
                sim_call(sim, "GET", API "/projects/export/demo", TOKEN, NULL, NULL, &exported), ==,
                200);
        g_assert_true(bytes_start_with_pk(exported));
        {
                g_autoptr(GError) error = NULL;
                g_autoptr(ItkSimZip) z = itk_sim_zip_open(exported, &error);
                g_assert_no_error(error);
                g_assert_true(itk_sim_zip_has_entry(z, "project.json"));
        }

        /* A truncated archive: refused inside a 200, problem.message set. */
        truncated = g_bytes_new_from_bytes(exported, 0, g_bytes_get_size(exported) - 30);
        g_assert_cmpuint(sim_call(sim, "POST", API "/projects/import/copy", TOKEN,
                                  "application/zip", truncated, &body),
                         ==, 200);
        {
                g_autoptr(JsonNode) r = parse_json(body);
                o = json_node_get_object(r);
                g_assert_false(json_object_get_boolean_member(o, "success"));
                g_assert_nonnull(json_object_get_string_member(
                        json_object_get_object_member(o, "problem"), "message"));
        }
        {
                g_autoptr(JsonNode) list = sim_get_json(sim, API "/projects/list");
                g_assert_null(find_item(list, "name", "copy"));
        }
        g_clear_pointer(&body, g_bytes_unref);

        /* A good import creates the project; export gives the same bytes back. */
        g_assert_cmpuint(sim_call(sim, "POST", API "/projects/import/copy", TOKEN,
                                  "application/zip", exported, &body),
                         ==, 200);
        {
                g_autoptr(JsonNode) r = parse_json(body);
                g_assert_true(json_object_get_boolean_member(json_node_get_object(r), "success"));
        }
        g_clear_pointer(&body, g_bytes_unref);
        g_assert_cmpuint(
                sim_call(sim, "GET", API "/projects/export/copy", TOKEN, NULL, NULL, &again), ==,
                200);
        g_assert_true(g_bytes_equal(again, exported));

        /* Existing project without overwrite: problem as a plain string. */
        g_assert_cmpuint(sim_call(sim, "POST", API "/projects/import/copy", TOKEN,
                                  "application/zip", exported, &body),
                         ==, 200);
        {
                g_autoptr(JsonNode) r = parse_json(body);
                o = json_node_get_object(r);
                g_assert_false(json_object_get_boolean_member(o, "success"));
                g_assert_nonnull(json_object_get_string_member(o, "problem"));
        }
        g_clear_pointer(&body, g_bytes_unref);
        g_assert_cmpuint(sim_call(sim, "POST", API "/projects/import/copy?overwrite=true", TOKEN,
                                  "application/zip", exported, &body),
                         ==, 200);
        {
                g_autoptr(JsonNode) r = parse_json(body);
                g_assert_true(json_object_get_boolean_member(json_node_get_object(r), "success"));
        }
        sim_stop(sim);
}

static void
test_backup(void)
{
        Sim *sim = sim_start(NULL);
        g_autoptr(GBytes) gwbk = NULL;
        g_autoptr(GBytes) junk = g_bytes_new_static("PK but not really", 17);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkSimZip) z = NULL;
        g_autoptr(SoupMessage) msg = NULL;
        g_autoptr(GBytes) body = NULL;
        gint64 start;

        g_assert_cmpuint(sim_call(sim, "GET", API "/backup?type=all", TOKEN, NULL, NULL, &gwbk), ==,
                         200);
        g_assert_true(bytes_start_with_pk(gwbk));
        z = itk_sim_zip_open(gwbk, &error);
        g_assert_no_error(error);
        g_assert_true(itk_sim_zip_has_entry(z, "db_backup_sqlite.idb"));
        g_assert_true(itk_sim_zip_has_entry(z, "gateway.xml"));

        g_assert_cmpuint(
                sim_call(sim, "POST", API "/backup", TOKEN, "application/octet-stream", junk, NULL),
                ==, 400);
        g_assert_cmpuint(sim_call(sim, "POST", API "/backup", RO_TOKEN, "application/octet-stream",
                                  gwbk, NULL),
                         ==, 403);

        /* A restore blocks (--restart-delay), answers, then the gateway restarts. */
        msg = sim_msg(sim, "POST", API "/backup?restoreDisabled=false", TOKEN);
        soup_message_set_request_body_from_bytes(msg, "application/octet-stream", gwbk);
        start = g_get_monotonic_time();
        body = sim_send(sim, msg);
        g_assert_cmpuint(soup_message_get_status(msg), ==, 200);
        g_assert_cmpint(g_get_monotonic_time() - start, >=, 140 * 1000);
        g_assert_true(sim_wait_state(sim, "STARTING", 3000));
        g_assert_true(sim_wait_state(sim, "RUNNING", 3000));
        {
                g_autoptr(JsonNode) state = sim_state(sim);
                JsonObject *restore =
                        json_object_get_object_member(json_node_get_object(state), "lastRestore");
                g_autofree char *sha = g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, gwbk);

                const char *saved;
                g_autofree char *contents = NULL;
                gsize len = 0;

                g_assert_nonnull(restore);
                g_assert_cmpstr(json_object_get_string_member(restore, "sha256"), ==, sha);
                /* The backup also landed in the state directory, whole. */
                saved = json_object_get_string_member(restore, "savedTo");
                g_assert_true(g_file_get_contents(saved, &contents, &len, NULL));
                g_assert_cmpmem(contents, len, g_bytes_get_data(gwbk, NULL),
                                g_bytes_get_size(gwbk));
        }
        sim_stop(sim);
}

typedef struct {
        gboolean done;
        GError *error;
} HungRequest;

static void
hung_done_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        HungRequest *hung = user_data;
        g_autoptr(GInputStream) stream =
                soup_session_send_finish(SOUP_SESSION(source), result, &hung->error);

        hung->done = TRUE;
}

static void
test_faults(void)
{
        Sim *sim = sim_start(NULL);
        g_autoptr(GError) error = NULL;
        gint64 start;

        /* slow: answered, but late. */
        sim_set_fault(sim, API "/gateway-info", "slow:300");
        start = g_get_monotonic_time();
        g_assert_cmpuint(sim_call(sim, "GET", API "/gateway-info", TOKEN, NULL, NULL, NULL), ==,
                         200);
        g_assert_cmpint(g_get_monotonic_time() - start, >=, 290 * 1000);

        /* 500 as JSON, html500 as Jetty HTML. */
        sim_set_fault(sim, API "/gateway-info", "500");
        {
                g_autoptr(SoupMessage) msg = sim_msg(sim, "GET", API "/gateway-info", TOKEN);
                g_autoptr(GBytes) body = sim_send(sim, msg);
                g_autoptr(JsonNode) root = parse_json(body);

                g_assert_cmpuint(soup_message_get_status(msg), ==, 500);
                g_assert_true(JSON_NODE_HOLDS_OBJECT(root));
        }
        sim_set_fault(sim, API "/*", "html500");
        {
                g_autoptr(SoupMessage) msg = sim_msg(sim, "GET", API "/overview", TOKEN);
                g_autoptr(GBytes) body = sim_send(sim, msg);

                assert_jetty_html(msg, body, 500);
        }
        sim_set_fault(sim, API "/*", "none");

        /* drop: the client sees a connection error, no response. */
        sim_set_fault(sim, API "/gateway-info", "drop");
        {
                g_autoptr(SoupMessage) msg = sim_msg(sim, "GET", API "/gateway-info", TOKEN);
                g_autoptr(GBytes) body =
                        soup_session_send_and_read(sim->session, msg, NULL, &error);

                g_assert_null(body);
                g_assert_nonnull(error);
                g_assert_cmpuint(soup_message_get_status(msg), ==, 0);
                g_clear_error(&error);
        }

        /* hang: only a client timeout ends it; then the simulator lets go. */
        sim_set_fault(sim, API "/gateway-info", "hang");
        {
                g_autoptr(SoupSession) impatient =
                        soup_session_new_with_options("timeout", 1, NULL);
                g_autoptr(SoupMessage) msg = sim_msg(sim, "GET", API "/gateway-info", TOKEN);
                g_autoptr(GBytes) body = NULL;
                gint64 deadline;
                gint64 held = -1;

                start = g_get_monotonic_time();
                body = soup_session_send_and_read(impatient, msg, NULL, &error);
                g_assert_null(body);
                g_assert_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
                g_assert_cmpint(g_get_monotonic_time() - start, >=, 900 * 1000);
                g_clear_error(&error);
                g_clear_object(&impatient);

                deadline = g_get_monotonic_time() + 3 * G_USEC_PER_SEC;
                while (g_get_monotonic_time() < deadline) {
                        g_autoptr(JsonNode) state = sim_state(sim);
                        held = json_object_get_int_member(json_node_get_object(state),
                                                          "heldRequests");
                        if (held == 0)
                                break;
                        wait_ms(25);
                }
                g_assert_cmpint(held, ==, 0);
        }

        /* Cleared, the route answers again; the hang was counted. */
        sim_set_fault(sim, API "/gateway-info", "none");
        g_assert_cmpuint(sim_call(sim, "GET", API "/gateway-info", TOKEN, NULL, NULL, NULL), ==,
                         200);
        {
                g_autoptr(JsonNode) state = sim_state(sim);
                JsonObject *counts =
                        json_object_get_object_member(json_node_get_object(state), "counts");
                /* slow, 500, drop (libsoup may resend once), hang, the last one */
                g_assert_cmpint(json_object_get_int_member(counts, "GET " API "/gateway-info"), >=,
                                5);
                g_assert_cmpint(json_object_get_int_member(counts, "GET " API "/overview"), ==, 1);
        }

        /* A request still hung at exit: the simulator exits cleanly and closes it. */
        sim_set_fault(sim, "/StatusPing", "hang");
        {
                g_autoptr(SoupMessage) msg = sim_msg(sim, "GET", "/StatusPing", NULL);
                HungRequest hung = { 0 };
                gint64 deadline;

                soup_session_send_async(sim->session, msg, G_PRIORITY_DEFAULT, NULL, hung_done_cb,
                                        &hung);
                wait_ms(200);
                g_assert_false(hung.done);
                sim_terminate(sim);
                deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
                while (!hung.done && g_get_monotonic_time() < deadline)
                        wait_ms(10);
                g_assert_true(hung.done);
                g_assert_nonnull(hung.error);
                g_clear_error(&hung.error);
        }
        sim_free(sim);
}

static void
test_seeded_fault(void)
{
        const char *const args[] = { "--fault=/data/api/v1/overview=500", NULL };
        Sim *sim = sim_start(args);

        g_assert_cmpuint(sim_call(sim, "GET", API "/overview", TOKEN, NULL, NULL, NULL), ==, 500);
        g_assert_cmpuint(sim_call(sim, "GET", API "/gateway-info", TOKEN, NULL, NULL, NULL), ==,
                         200);
        /* A reset restores the command line, fault included, runtime changes gone. */
        sim_set_fault(sim, API "/gateway-info", "500");
        g_assert_cmpuint(sim_call(sim, "POST", "/sim/commissioned?on=0", NULL, NULL, NULL, NULL),
                         ==, 200);
        g_assert_cmpuint(sim_call(sim, "GET", API "/projects/list", TOKEN, NULL, NULL, NULL), ==,
                         302);
        g_assert_cmpuint(sim_call(sim, "POST", "/sim/reset", NULL, NULL, NULL, NULL), ==, 200);
        g_assert_cmpuint(sim_call(sim, "GET", API "/overview", TOKEN, NULL, NULL, NULL), ==, 500);
        g_assert_cmpuint(sim_call(sim, "GET", API "/gateway-info", TOKEN, NULL, NULL, NULL), ==,
                         200);
        g_assert_cmpuint(sim_call(sim, "GET", API "/projects/list", TOKEN, NULL, NULL, NULL), ==,
                         200);
        sim_stop(sim);
}

static void
test_state_redacts_token(void)
{
        Sim *sim = sim_start(NULL);
        g_autoptr(GBytes) body = NULL;
        g_autoptr(JsonNode) root = NULL;
        JsonObject *headers;

        g_assert_cmpuint(sim_call(sim, "GET", API "/overview", TOKEN, NULL, NULL, NULL), ==, 200);
        g_assert_cmpuint(sim_call(sim, "GET", "/sim/state", NULL, NULL, NULL, &body), ==, 200);
        g_assert_false(bytes_contain(body, KEY));
        root = parse_json(body);
        headers = json_object_get_object_member(json_node_get_object(root), "lastRequestHeaders");
        g_assert_cmpstr(json_object_get_string_member(headers, TOKEN_HEADER), ==, "itk:<redacted>");
        g_assert_cmpstr(json_object_get_string_member(headers, "Accept"), ==, "application/json");
        sim_stop(sim);
}

static void
test_body_limit(void)
{
        const char *const args[] = { "--max-body=1024", NULL };
        Sim *sim = sim_start(args);
        g_autofree char *big = g_strnfill(4096, 'x');
        g_autoptr(GBytes) request = g_bytes_new(big, 4096);

        g_assert_cmpuint(sim_call(sim, "POST", API "/modules/upload", TOKEN,
                                  "application/octet-stream", request, NULL),
                         ==, 413);
        sim_stop(sim);
}

static void
test_trial(void)
{
        Sim *sim = sim_start(NULL);
        g_autoptr(GBytes) body = NULL;

        /* GET needs no token. */
        g_assert_cmpuint(sim_call(sim, "GET", API "/trial", NULL, NULL, NULL, &body), ==, 200);
        {
                g_autoptr(JsonNode) t = parse_json(body);
                g_assert_false(json_object_get_boolean_member(json_node_get_object(t), "expired"));
        }
        /* Reset only after expiry. */
        g_assert_cmpuint(sim_call(sim, "POST", API "/trial", TOKEN, NULL, NULL, NULL), ==, 403);
        g_assert_cmpuint(sim_call(sim, "POST", "/sim/trial?expired=1", NULL, NULL, NULL, NULL), ==,
                         200);
        {
                g_autoptr(JsonNode) t = sim_post_json(sim, API "/trial", 200);
                g_assert_cmpint(
                        json_object_get_int_member(json_node_get_object(t), "trialSecondsLeft"), >,
                        0);
        }
        sim_stop(sim);
}

static void
test_web(void)
{
        Sim *sim = sim_start(NULL);
        g_autoptr(GBytes) home = NULL;
        g_autoptr(GBytes) login = NULL;
        g_autoptr(GBytes) modules = NULL;
        g_autofree char *cookie = NULL;

        g_assert_cmpuint(sim_call(sim, "GET", "/", NULL, NULL, NULL, &home), ==, 200);
        g_assert_true(bytes_contain(home, "class=\"login-link\" href=\"/web/login\""));
        g_assert_cmpuint(sim_call(sim, "GET", "/web/login", NULL, NULL, NULL, &login), ==, 200);
        g_assert_true(bytes_contain(login, "name=\"username\""));
        g_assert_true(bytes_contain(login, "name=\"password\""));
        g_assert_true(bytes_contain(login, "<button type=\"submit\""));
        /* Config pages want a login. */
        {
                g_autoptr(SoupMessage) msg = sim_msg(sim, "GET", "/web/config/modules", NULL);
                g_autoptr(GBytes) b = sim_send(sim, msg);

                g_assert_cmpuint(soup_message_get_status(msg), ==, 302);
                g_assert_cmpstr(soup_message_headers_get_one(soup_message_get_response_headers(msg),
                                                             "Location"),
                                ==, "/web/login");
        }
        /* A wrong password shows the form again with an error. */
        {
                static const char bad_login[] = "username=admin&password=nope";
                g_autoptr(GBytes) form = g_bytes_new_static(bad_login, sizeof(bad_login) - 1);
                g_autoptr(GBytes) b = NULL;

                g_assert_cmpuint(sim_call(sim, "POST", "/web/login", NULL,
                                          "application/x-www-form-urlencoded", form, &b),
                                 ==, 200);
                g_assert_true(bytes_contain(b, "class=\"error\""));
        }
        {
                static const char good_login[] = "username=admin&password=password";
                g_autoptr(SoupMessage) msg = sim_msg(sim, "POST", "/web/login", NULL);
                g_autoptr(GBytes) form = g_bytes_new_static(good_login, sizeof(good_login) - 1);
                g_autoptr(GBytes) b = NULL;
                const char *set_cookie;

                soup_message_set_request_body_from_bytes(msg, "application/x-www-form-urlencoded",
                                                         form);
                b = sim_send(sim, msg);
                g_assert_cmpuint(soup_message_get_status(msg), ==, 302);
                set_cookie = soup_message_headers_get_one(soup_message_get_response_headers(msg),
                                                          "Set-Cookie");
                g_assert_nonnull(set_cookie);
                g_assert_true(g_str_has_prefix(set_cookie, "JSESSIONID="));
                cookie = g_strndup(set_cookie, strcspn(set_cookie, ";"));
        }
        {
                g_autoptr(SoupMessage) msg = sim_msg(sim, "GET", "/web/config/modules", NULL);

                soup_message_headers_replace(soup_message_get_request_headers(msg), "Cookie",
                                             cookie);
                modules = sim_send(sim, msg);
                g_assert_cmpuint(soup_message_get_status(msg), ==, 200);
                g_assert_true(bytes_contain(modules, "<table class=\"modules-table\""));
                g_assert_true(bytes_contain(
                        modules, "data-module-id=\"com.inductiveautomation.perspective\""));
        }
        sim_stop(sim);
}

/* A request with the browser's session cookie (NULL: none). */
static guint
web_call(Sim *sim, const char *method, const char *path, const char *cookie, GBytes **out)
{
        g_autoptr(SoupMessage) msg = sim_msg(sim, method, path, NULL);
        g_autoptr(GBytes) b = NULL;

        if (cookie != NULL)
                soup_message_headers_replace(soup_message_get_request_headers(msg), "Cookie",
                                             cookie);
        b = sim_send(sim, msg);
        if (out != NULL)
                *out = g_steal_pointer(&b);
        return soup_message_get_status(msg);
}

static char *
web_login(Sim *sim)
{
        static const char good_login[] = "username=admin&password=password";
        g_autoptr(SoupMessage) msg = sim_msg(sim, "POST", "/web/login", NULL);
        g_autoptr(GBytes) form = g_bytes_new_static(good_login, sizeof(good_login) - 1);
        g_autoptr(GBytes) b = NULL;
        const char *set_cookie;

        soup_message_set_request_body_from_bytes(msg, "application/x-www-form-urlencoded", form);
        b = sim_send(sim, msg);
        g_assert_cmpuint(soup_message_get_status(msg), ==, 302);
        set_cookie =
                soup_message_headers_get_one(soup_message_get_response_headers(msg), "Set-Cookie");
        g_assert_nonnull(set_cookie);
        return g_strndup(set_cookie, strcspn(set_cookie, ";"));
}

/* The pages' actions go through the REST routes behind the login session:
 * refused without it, the same state as the API with it; an uninstall waits
 * for a restart (the bar shows), and a restart ends the session. */
static void
test_web_actions(void)
{
        Sim *sim = sim_start(NULL);
        g_autofree char *cookie = web_login(sim);
        const char *uninstall =
                "/web/api/modules/uninstall?moduleId=com.inductiveautomation.vision";

        /* The password field is hidden until a username was sent. */
        {
                g_autoptr(GBytes) login = NULL;
                g_assert_cmpuint(web_call(sim, "GET", "/web/login", NULL, &login), ==, 200);
                g_assert_true(bytes_contain(login, "class=\"password-row\" hidden"));
                /* No navigation bar: "wait for the dashboard" must not match it. */
                g_assert_false(bytes_contain(login, "<nav"));
        }
        g_assert_cmpuint(web_call(sim, "POST", uninstall, NULL, NULL), ==, 401);
        g_assert_cmpuint(web_call(sim, "POST", "/web/api/projects/list", cookie, NULL), ==, 404);
        {
                g_autoptr(GBytes) b = NULL;
                g_assert_cmpuint(web_call(sim, "POST", uninstall, cookie, &b), ==, 200);
                g_assert_true(bytes_contain(b, "\"success\":true"));
        }
        {
                g_autoptr(JsonNode) p = sim_get_json(sim, API "/restart-tasks/pending");
                g_assert_cmpuint(json_array_get_length(json_object_get_array_member(
                                         json_node_get_object(p), "pending")),
                                 ==, 1);
        }
        {
                g_autoptr(GBytes) page = NULL;
                g_assert_cmpuint(
                        web_call(sim, "GET", "/app/platform/system/modules", cookie, &page), ==,
                        200);
                g_assert_true(bytes_contain(page, "class=\"restart-required-bar\""));
                g_assert_false(bytes_contain(page, "com.inductiveautomation.vision"));
                g_assert_true(bytes_contain(page, "Install or Upgrade Module"));
        }
        g_assert_cmpuint(
                web_call(sim, "POST", "/web/api/restart-tasks/restart?confirm=true", cookie, NULL),
                ==, 200);
        g_assert_true(sim_wait_state(sim, "STARTING", 3000));
        g_assert_true(sim_wait_state(sim, "RUNNING", 3000));
        /* The restart ended the session: log in again. */
        g_assert_cmpuint(web_call(sim, "GET", "/app/platform/system/modules", cookie, NULL), ==,
                         302);
        {
                g_autoptr(GBytes) b = NULL;
                g_assert_cmpuint(web_call(sim, "GET", "/web/res/sim-web.js", NULL, &b), ==, 200);
                g_assert_true(bytes_contain(b, "I understand the risks"));
        }
        {
                g_autoptr(GBytes) b = NULL;
                g_assert_cmpuint(web_call(sim, "GET", "/data/perspective/client/demo", NULL, &b),
                                 ==, 200);
                g_assert_true(bytes_contain(b, "data-component-path=\"root/MainPanel\""));
                g_assert_cmpuint(web_call(sim, "GET", "/data/perspective/client/nope", NULL, NULL),
                                 ==, 404);
        }
        {
                g_autofree char *again = web_login(sim);
                g_autoptr(GBytes) b = NULL;
                g_assert_cmpuint(web_call(sim, "GET", "/web/backup/download", again, &b), ==, 200);
                g_assert_true(g_bytes_get_size(b) > 2 &&
                              memcmp(g_bytes_get_data(b, NULL), "PK", 2) == 0);
        }
        sim_stop(sim);
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/gateway-sim/zip", test_zip_roundtrip);
        g_test_add_func("/gateway-sim/status-ping", test_status_ping);
        g_test_add_func("/gateway-sim/auth", test_auth);
        g_test_add_func("/gateway-sim/unknown-route", test_unknown_route);
        g_test_add_func("/gateway-sim/uncommissioned", test_uncommissioned);
        g_test_add_func("/gateway-sim/version-8.1", test_version_81);
        g_test_add_func("/gateway-sim/restart", test_restart);
        g_test_add_func("/gateway-sim/restart-never-returns", test_restart_never_returns);
        g_test_add_func("/gateway-sim/restart-offline", test_restart_offline);
        g_test_add_func("/gateway-sim/modules", test_modules);
        g_test_add_func("/gateway-sim/uninstall", test_uninstall);
        g_test_add_func("/gateway-sim/projects", test_projects);
        g_test_add_func("/gateway-sim/backup", test_backup);
        g_test_add_func("/gateway-sim/faults", test_faults);
        g_test_add_func("/gateway-sim/seeded-fault", test_seeded_fault);
        g_test_add_func("/gateway-sim/state-redacts-token", test_state_redacts_token);
        g_test_add_func("/gateway-sim/body-limit", test_body_limit);
        g_test_add_func("/gateway-sim/trial", test_trial);
        g_test_add_func("/gateway-sim/web", test_web);
        g_test_add_func("/gateway-sim/web-actions", test_web_actions);
        return g_test_run();
}
