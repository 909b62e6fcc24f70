/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* itk-gateway-sim: a small Ignition gateway simulator for the tests and the
 * demo (GATEWAY-API.md). One GLib main loop, no threads; delays are timers. */
#include <glib-unix.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim-server.h"
#include "sim-state.h"

#define ITK_SIM_DEFAULT_MAX_BODY (G_GINT64_CONSTANT(64) * 1024 * 1024)

static const char itk_sim_description[] =
        "Listens on 127.0.0.1 only. Once ready, the first line on stdout is exactly\n"
        "\"listening on http://127.0.0.1:PORT\"; nothing else goes to stdout.\n"
        "\n"
        "Tokens: the X-Ignition-API-Token header is NAME:KEY. Only base64url(SHA-256(key))\n"
        "is kept, as the gateway does; a KEY that is base64url of 32 bytes is hashed as\n"
        "those raw bytes, any other KEY as its text. Without a --token every /data call\n"
        "gets 401.\n"
        "\n"
        "Request bodies (modules, projects, backups) are held in memory up to --max-body\n"
        "bytes (default 64 MiB); larger ones are read, discarded and answered 413.\n"
        "\n"
        "Modules: an uploaded .modl waits in quarantine until its certificate\n"
        "(certificates.p7b) and EULA (a <license> in module.xml) are accepted; install\n"
        "makes it INACTIVE (an upgrade: shouldUpgrade) until a restart makes it ACTIVE,\n"
        "unless its <requiredignitionversion> is above --version: then it is quarantined.\n"
        "\n"
        "Fault MODEs: hang (never answered until the client goes away), drop (connection\n"
        "closed without a response), slow:MS (answered after MS), 500 (JSON 500),\n"
        "html500 (Jetty HTML 500). PATHGLOB matches the request path ('*' and '?').\n"
        "\n"
        "Runtime control for tests (not part of Ignition; loopback, no token):\n"
        "  POST /sim/fault?path=GLOB&mode=MODE   set a fault; mode=none clears it\n"
        "                                         (without path: clears all)\n"
        "  POST /sim/reset                        back to the command-line state\n"
        "  GET  /sim/state                        phase, modules, projects, faults,\n"
        "                                         per-route counts, last request headers\n"
        "                                         (token key redacted)\n"
        "  POST /sim/restart-never-returns?on=1   stay STARTING after restarts (on=0 ends)\n"
        "  POST /sim/commissioned?on=0            302 every route to /welcome\n"
        "  POST /sim/trial?expired=1              expire (or, with 0, renew) the trial\n"
        "\n"
        "Web pages for the browser steps: /, /web/home, /web/login (form; --web-user),\n"
        "/web/config/modules, /app/platform/system/{modules,licensing,backup-restore/backup}\n"
        "(login first), /data/perspective/client/PROJECT[/VIEW]; see README.md.";

typedef struct {
        gint port;
        char **tokens;
        char **readonly_tokens;
        gboolean uncommissioned;
        char *version;
        gint restart_delay;
        gint startup_time;
        gint offline_time;
        gboolean restart_never_returns;
        char *state_dir;
        char **seed_modules;
        char **seed_projects;
        char **faults;
        char *web_user;
        gint64 max_body;
        gboolean trial_expired;
        gboolean verbose;
} ItkSimOptions;

static void
itk_sim_options_clear(ItkSimOptions *o)
{
        g_strfreev(o->tokens);
        g_strfreev(o->readonly_tokens);
        g_free(o->version);
        g_free(o->state_dir);
        g_strfreev(o->seed_modules);
        g_strfreev(o->seed_projects);
        g_strfreev(o->faults);
        g_free(o->web_user);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ItkSimOptions, itk_sim_options_clear)

/* "8.3.6", "8.1.44", "8.1.x": two to four dot-separated numbers (or x). */
static gboolean
itk_sim_version_is_valid(const char *version)
{
        g_auto(GStrv) parts = g_strsplit(version, ".", -1);
        guint n = g_strv_length(parts);

        if (n < 2 || n > 4)
                return FALSE;
        for (guint i = 0; i < n; i++) {
                if (g_strcmp0(parts[i], "x") == 0 && i > 0)
                        continue;
                if (*parts[i] == '\0' || strspn(parts[i], "0123456789") != strlen(parts[i]))
                        return FALSE;
        }
        return TRUE;
}

static gboolean
itk_sim_configure(ItkSimState *state, ItkSimOptions *o, GError **error)
{
        if (o->port < 0 || o->port > 65535 || o->restart_delay < 0 || o->startup_time < 0 ||
            o->offline_time < 0 || o->max_body <= 0) {
                g_set_error_literal(
                        error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "--port, --restart-delay, --startup-time, --offline-time and --max-body "
                        "take non-negative numbers (max-body positive)");
                return FALSE;
        }
        if (o->version != NULL) {
                if (!itk_sim_version_is_valid(o->version)) {
                        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                                    "--version \"%s\" is not like 8.3.6 or 8.1.x", o->version);
                        return FALSE;
                }
                g_free(state->version);
                state->version = g_strdup(o->version);
        }
        state->seed_commissioned = !o->uncommissioned;
        state->restart_delay_ms = (guint)o->restart_delay;
        state->startup_time_ms = (guint)o->startup_time;
        state->offline_time_ms = (guint)o->offline_time;
        state->seed_restart_never_returns = o->restart_never_returns;
        state->trial_expired_at_start = o->trial_expired;
        for (guint i = 0; o->tokens != NULL && o->tokens[i] != NULL; i++) {
                if (!itk_sim_state_add_token(state, o->tokens[i], FALSE, error))
                        return FALSE;
        }
        for (guint i = 0; o->readonly_tokens != NULL && o->readonly_tokens[i] != NULL; i++) {
                if (!itk_sim_state_add_token(state, o->readonly_tokens[i], TRUE, error))
                        return FALSE;
        }
        for (guint i = 0; o->seed_modules != NULL && o->seed_modules[i] != NULL; i++) {
                if (!itk_sim_state_add_seed_module(state, o->seed_modules[i], error))
                        return FALSE;
        }
        for (guint i = 0; o->seed_projects != NULL && o->seed_projects[i] != NULL; i++)
                itk_sim_state_add_seed_project(state, o->seed_projects[i]);
        for (guint i = 0; o->faults != NULL && o->faults[i] != NULL; i++) {
                if (!itk_sim_state_add_seed_fault(state, o->faults[i], error))
                        return FALSE;
        }
        itk_sim_state_reset(state);
        return TRUE;
}

static gboolean
itk_sim_quit_cb(gpointer user_data)
{
        g_main_loop_quit(user_data);
        return G_SOURCE_CONTINUE;
}

int
main(int argc, char **argv)
{
        g_auto(ItkSimOptions) o = {
                .port = 0,
                .restart_delay = 500,
                .startup_time = 1500,
                .max_body = ITK_SIM_DEFAULT_MAX_BODY,
        };
        const GOptionEntry entries[] = {
                { "port", 0, 0, G_OPTION_ARG_INT, &o.port,
                  "TCP port on 127.0.0.1 (0 = any free port, the default)", "N" },
                { "token", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.tokens,
                  "A full-access API token (repeatable)", "NAME:KEY" },
                { "readonly-token", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.readonly_tokens,
                  "A read-only API token: 403 on writes (repeatable)", "NAME:KEY" },
                { "uncommissioned", 0, 0, G_OPTION_ARG_NONE, &o.uncommissioned,
                  "Not commissioned: every route 302 to /welcome, StatusPing says "
                  "COMMISSIONING",
                  NULL },
                { "version", 0, 0, G_OPTION_ARG_STRING, &o.version,
                  "Ignition version (default 8.3.6); below 8.3 /data/api/v1 is 404",
                  "8.3.6|8.1.x" },
                { "restart-delay", 0, 0, G_OPTION_ARG_INT, &o.restart_delay,
                  "Time from a restart request (or a restore) to STARTING (default 500)", "MS" },
                { "startup-time", 0, 0, G_OPTION_ARG_INT, &o.startup_time,
                  "How long STARTING lasts (default 1500)", "MS" },
                { "offline-time", 0, 0, G_OPTION_ARG_INT, &o.offline_time,
                  "Before STARTING, how long every connection is closed unanswered, "
                  "as while a real gateway's JVM restarts (default 0)",
                  "MS" },
                { "restart-never-returns", 0, 0, G_OPTION_ARG_NONE, &o.restart_never_returns,
                  "After a restart stay STARTING forever", NULL },
                { "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &o.state_dir,
                  "Where uploaded modules and restored backups are written (default: a "
                  "temporary directory, removed at exit)",
                  "DIR" },
                { "seed-module", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.seed_modules,
                  "An installed ACTIVE module (repeatable; default: five Inductive "
                  "Automation modules)",
                  "ID:NAME:VERSION" },
                { "seed-project", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.seed_projects,
                  "A project (repeatable; default: global and demo)", "NAME" },
                { "fault", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.faults,
                  "Inject a fault on matching paths (repeatable)", "PATHGLOB=MODE" },
                { "web-user", 0, 0, G_OPTION_ARG_STRING, &o.web_user,
                  "Login of the web pages (default admin:password)", "USER:PASSWORD" },
                { "max-body", 0, 0, G_OPTION_ARG_INT64, &o.max_body,
                  "Largest request body accepted (default 67108864)", "BYTES" },
                { "trial-expired", 0, 0, G_OPTION_ARG_NONE, &o.trial_expired,
                  "Start with the trial expired", NULL },
                { "verbose", 'v', 0, G_OPTION_ARG_NONE, &o.verbose, "Log every request on stderr",
                  NULL },
                { NULL },
        };
        g_autoptr(GOptionContext) ctx = g_option_context_new("- Ignition gateway simulator");
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkSimState) state = NULL;
        g_autoptr(ItkSimServer) server = NULL;
        g_autoptr(GMainLoop) loop = NULL;
        g_autofree char *web_user = NULL;
        const char *web_password = "password";
        ItkSimServerOptions server_options = { 0 };
        guint sigterm, sigint;
        guint port;

        setlocale(LC_ALL, "");
        g_option_context_add_main_entries(ctx, entries, NULL);
        g_option_context_set_description(ctx, itk_sim_description);
        if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
                g_printerr("itk-gateway-sim: %s\n", error->message);
                return EXIT_FAILURE;
        }
        if (argc > 1) {
                g_printerr("itk-gateway-sim: unexpected argument \"%s\"\n", argv[1]);
                return EXIT_FAILURE;
        }

        web_user = g_strdup(o.web_user != NULL ? o.web_user : "admin:password");
        {
                char *colon = strchr(web_user, ':');
                if (colon == NULL || colon == web_user) {
                        g_printerr("itk-gateway-sim: --web-user takes USER:PASSWORD\n");
                        return EXIT_FAILURE;
                }
                *colon = '\0';
                web_password = colon + 1;
        }

        state = itk_sim_state_new();
        if (!itk_sim_configure(state, &o, &error)) {
                g_printerr("itk-gateway-sim: %s\n", error->message);
                return EXIT_FAILURE;
        }

        server_options.state_dir = o.state_dir;
        server_options.max_body = (gsize)o.max_body;
        server_options.web_user = web_user;
        server_options.web_password = web_password;
        server_options.verbose = o.verbose;
        server = itk_sim_server_new(state, &server_options, &error);
        if (server == NULL) {
                g_printerr("itk-gateway-sim: %s\n", error->message);
                return EXIT_FAILURE;
        }
        port = itk_sim_server_listen(server, (guint)o.port, &error);
        if (port == 0) {
                g_printerr("itk-gateway-sim: cannot listen on 127.0.0.1:%d: %s\n", o.port,
                           error != NULL ? error->message : "no port");
                return EXIT_FAILURE;
        }

        loop = g_main_loop_new(NULL, FALSE);
        sigterm = g_unix_signal_add(SIGTERM, itk_sim_quit_cb, loop);
        sigint = g_unix_signal_add(SIGINT, itk_sim_quit_cb, loop);
        printf("listening on http://127.0.0.1:%u\n", port);
        fflush(stdout);

        g_main_loop_run(loop);

        g_source_remove(sigterm);
        g_source_remove(sigint);
        /* The server first: its teardown may still iterate the loop. */
        g_clear_pointer(&server, itk_sim_server_free);
        return EXIT_SUCCESS;
}
