/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "sim-server-private.h"

#include <string.h>

/* Plain HTML pages generated from the state, for the browser steps: their
 * markup matches the selectors and flows of the old tool's gateway playbooks
 * (README.md lists the pages). Their dialogs (sim-web.js) call the REST
 * routes of sim-api.c through /web/api/..., authorised by the login session,
 * so the pages and the API change the same state. */

#define ITK_SIM_SESSION_COOKIE "JSESSIONID"
#define ITK_SIM_RESOURCES "/org/ignition/Toolkit/gateway-sim/"

static char *
itk_sim_web_session_id(SoupServerMessage *msg)
{
        const char *cookie = soup_message_headers_get_one(
                soup_server_message_get_request_headers(msg), "Cookie");
        g_autoptr(GHashTable) params = NULL;

        if (cookie == NULL)
                return NULL;
        params = soup_header_parse_semi_param_list(cookie);
        return g_strdup(g_hash_table_lookup(params, ITK_SIM_SESSION_COOKIE));
}

/* A restart ends every session, as on the gateway: the playbooks log in
 * again after one. */
static gboolean
itk_sim_web_logged_in(ItkSimServer *self, SoupServerMessage *msg)
{
        g_autofree char *id = itk_sim_web_session_id(msg);
        gpointer started = id != NULL ? g_hash_table_lookup(self->sessions, id) : NULL;

        return started != NULL && GPOINTER_TO_UINT(started) == self->state->restart_count + 1;
}

static void
itk_sim_web_redirect(SoupServerMessage *msg, const char *location)
{
        soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Location",
                                     location);
        soup_server_message_set_status(msg, SOUP_STATUS_FOUND, NULL);
}

/* The bars the gateway shows above every page: an expired trial with its
 * reset button, and the changes that wait for a restart (logged in only). */
static char *
itk_sim_web_banners(ItkSimServer *self, SoupServerMessage *msg)
{
        GString *out = g_string_new(NULL);
        guint pending = self->state->pending->len;

        if (itk_sim_state_get_trial_seconds_left(self->state) == 0)
                g_string_append(out,
                                "<div class=\"trial-banner\" role=\"alert\">The trial period has "
                                "expired. <button type=\"button\" "
                                "class=\"trial-reset-button\">Reset Trial</button></div>\n");
        if (pending > 0 && itk_sim_web_logged_in(self, msg))
                g_string_append_printf(out,
                                       "<div class=\"restart-required-bar\" role=\"status\">"
                                       "<span>%u change%s need a gateway restart.</span> "
                                       "<button type=\"button\" class=\"restart-bar-button\">"
                                       "Restart Gateway</button></div>\n",
                                       pending, pending == 1 ? "" : "s");
        return g_string_free(out, FALSE);
}

/* Takes @main_html. The login page has no navigation bar, as on the
 * gateway: a playbook's "wait for the dashboard" (".home-page, nav") then
 * waits for the page after the login, not the login form itself. */
static char *
itk_sim_web_page_full(ItkSimServer *self, SoupServerMessage *msg, const char *title,
                      const char *body_attrs, char *main_html, gboolean with_nav)
{
        g_autofree char *owned_main = main_html;
        g_autofree char *name = g_markup_escape_text(self->state->gateway_name, -1);
        g_autofree char *version = itk_sim_state_dup_full_version(self->state);
        g_autofree char *banners = itk_sim_web_banners(self, msg);
        g_autofree char *nav = NULL;
        const char *account = itk_sim_web_logged_in(self, msg)
                                      ? "<span class=\"user-name\">admin</span> "
                                        "<a class=\"logout-link\" href=\"/web/logout\">Log Out</a>"
                                      : "<a class=\"login-link\" href=\"/web/login\">Log In</a>";

        nav = with_nav
                      ? g_strdup_printf(
                                "<nav class=\"top-nav\">\n<a class=\"gateway-name\" "
                                "href=\"/web/home\">%s</a>\n<a href=\"/web/home\">Home</a>\n"
                                "<a href=\"/web/config/modules\">Modules</a>\n"
                                "<a href=\"/app/platform/system/licensing\">Licensing</a>\n"
                                "<a href=\"/app/platform/system/backup-restore/backup\">Backups</a>"
                                "\n%s\n</nav>\n",
                                name, account)
                      : g_strdup_printf("<header class=\"login-header\">%s</header>\n", name);
        return g_strdup_printf(
                "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                "<title>%s - %s</title>\n"
                "<link rel=\"stylesheet\" href=\"/web/res/sim-web.css\">\n"
                "<script src=\"/web/res/sim-web.js\" defer></script>\n</head>\n<body %s>\n"
                "%s%s%s\n<footer class=\"version\">Ignition %s</footer>\n</body>\n</html>\n",
                title, name, body_attrs, nav, banners, owned_main, version);
}

static char *
itk_sim_web_page(ItkSimServer *self, SoupServerMessage *msg, const char *title,
                 const char *body_attrs, char *main_html)
{
        return itk_sim_web_page_full(self, msg, title, body_attrs, main_html, TRUE);
}

static void
itk_sim_web_home(ItkSimServer *self, SoupServerMessage *msg)
{
        g_autofree char *version = itk_sim_state_dup_full_version(self->state);
        char *main_html = g_strdup_printf(
                "<main class=\"home-page ia_homePage\" data-page=\"home\">\n"
                "<h1>Welcome to Ignition</h1>\n<p class=\"gateway-status\">Gateway running, "
                "version %s</p>\n<ul class=\"shortcuts\">\n"
                "<li><a href=\"/web/config/modules\">Modules</a></li>\n"
                "<li><a href=\"/app/platform/system/licensing\">Licensing</a></li>\n</ul>\n"
                "</main>",
                version);

        itk_sim_reply_html(msg, SOUP_STATUS_OK,
                           itk_sim_web_page(self, msg, "Home", "class=\"home\"", main_html));
}

static void
itk_sim_web_login_form(ItkSimServer *self, SoupServerMessage *msg, const char *username,
                       const char *error)
{
        g_autofree char *user = g_markup_escape_text(username != NULL ? username : "", -1);
        g_autofree char *err =
                error != NULL ? g_markup_printf_escaped(
                                        "<p class=\"error\" role=\"alert\">%s</p>\n", error)
                              : g_strdup("");
        /* The gateway asks for the username, then the password: the password
         * field stays hidden until a username was sent. */
        const char *hidden = username != NULL && *username != '\0' ? "" : " hidden";
        char *main_html = g_strdup_printf(
                "<main class=\"login-page\">\n<h1>Log In</h1>\n%s"
                "<form class=\"login-form\" method=\"post\" action=\"/web/login\">\n"
                "<label for=\"username\">Username</label>\n"
                "<input type=\"text\" id=\"username\" name=\"username\" value=\"%s\" "
                "placeholder=\"Username\" autocomplete=\"username\">\n"
                "<div class=\"password-row\"%s>\n"
                "<label for=\"password\">Password</label>\n"
                "<input type=\"password\" id=\"password\" name=\"password\" "
                "placeholder=\"Password\" autocomplete=\"current-password\">\n</div>\n"
                "<button type=\"submit\" class=\"submit-button\">CONTINUE</button>\n"
                "</form>\n</main>",
                err, user, hidden);

        itk_sim_reply_html(
                msg, SOUP_STATUS_OK,
                itk_sim_web_page_full(self, msg, "Log In", "class=\"login\"", main_html, FALSE));
}

static void
itk_sim_web_login_post(ItkSimServer *self, SoupServerMessage *msg)
{
        g_autoptr(GBytes) body = itk_sim_request_body(msg);
        gsize len;
        const char *data = g_bytes_get_data(body, &len);
        g_autofree char *text = g_strndup(data != NULL ? data : "", len);
        g_autoptr(GHashTable) form = soup_form_decode(text);
        const char *username = g_hash_table_lookup(form, "username");
        const char *password = g_hash_table_lookup(form, "password");
        g_autofree char *session = NULL;
        g_autofree char *cookie = NULL;

        if (username == NULL || *username == '\0') {
                itk_sim_web_login_form(self, msg, NULL, "Enter a username.");
                return;
        }
        /* Username first, then the password on the same form (the gateway's
         * two-step login): an empty password just shows the form again. */
        if (password == NULL || *password == '\0') {
                itk_sim_web_login_form(self, msg, username, NULL);
                return;
        }
        if (g_strcmp0(username, self->web_user) != 0 ||
            g_strcmp0(password, self->web_password) != 0) {
                itk_sim_web_login_form(self, msg, username, "Invalid username or password.");
                return;
        }
        session = g_uuid_string_random();
        cookie = g_strdup_printf(ITK_SIM_SESSION_COOKIE "=%s; Path=/; HttpOnly; SameSite=Lax",
                                 session);
        g_hash_table_insert(self->sessions, g_steal_pointer(&session),
                            GUINT_TO_POINTER(self->state->restart_count + 1));
        soup_message_headers_append(soup_server_message_get_response_headers(msg), "Set-Cookie",
                                    cookie);
        itk_sim_web_redirect(msg, "/web/home");
}

static void
itk_sim_web_logout(ItkSimServer *self, SoupServerMessage *msg)
{
        g_autofree char *id = itk_sim_web_session_id(msg);

        if (id != NULL)
                g_hash_table_remove(self->sessions, id);
        soup_message_headers_append(soup_server_message_get_response_headers(msg), "Set-Cookie",
                                    ITK_SIM_SESSION_COOKIE "=; Path=/; Max-Age=0");
        itk_sim_web_redirect(msg, "/web/home");
}

static void
itk_sim_web_modules(ItkSimServer *self, SoupServerMessage *msg)
{
        g_autoptr(GString) rows = g_string_new(NULL);
        ItkSimState *st = self->state;

        for (guint i = 0; i < st->modules->len; i++) {
                ItkSimModule *m = g_ptr_array_index(st->modules, i);
                g_autofree char *row = g_markup_printf_escaped(
                        "<tr class=\"module-row\" data-module-id=\"%s\" data-module-name=\"%s\">"
                        "<td class=\"module-name\">%s</td><td class=\"module-version\">%s</td>"
                        "<td class=\"module-state\">%s</td><td class=\"module-id\">%s</td>"
                        "<td class=\"module-upgrade\">%s</td><td class=\"module-actions\">"
                        "<button type=\"button\" class=\"more-button\" "
                        "aria-label=\"more actions for %s\">&#8942;</button></td></tr>\n",
                        m->id, m->name, m->name, m->version, m->active ? "ACTIVE" : "INACTIVE",
                        m->id, m->pending_version != NULL ? m->pending_version : "", m->name);
                g_string_append(rows, row);
        }
        g_string_append(rows, "</tbody>\n</table>\n<h2>Quarantined</h2>\n"
                              "<table class=\"quarantined-table\">\n<thead><tr><th>Name</th>"
                              "<th>Version</th><th>Reason</th></tr></thead>\n<tbody>\n");
        for (guint i = 0; i < st->uploads->len; i++) {
                ItkSimUpload *u = g_ptr_array_index(st->uploads, i);
                g_autofree char *row = NULL;

                if (u->reason == NULL && u->cert_accepted && u->eula_accepted)
                        continue;
                row = g_markup_printf_escaped(
                        "<tr class=\"quarantined-row\" data-module-id=\"%s\"><td>%s</td>"
                        "<td>%s</td><td class=\"reason\">%s</td></tr>\n",
                        u->id, u->name, u->version,
                        u->reason != NULL   ? u->reason
                        : !u->cert_accepted ? "Certificate not accepted"
                                            : "License not accepted");
                g_string_append(rows, row);
        }
        itk_sim_reply_html(
                msg, SOUP_STATUS_OK,
                itk_sim_web_page(
                        self, msg, "Modules", "class=\"config\" data-page=\"modules\"",
                        g_strdup_printf("<main class=\"modules-page\">\n<h1>Modules</h1>\n"
                                        "<div class=\"modules-toolbar\">\n"
                                        "<input type=\"search\" name=\"filter\" "
                                        "placeholder=\"Filter modules\">\n"
                                        "<button type=\"button\" class=\"install-module-button "
                                        "primary\">Install or Upgrade Module</button>\n</div>\n"
                                        "<table class=\"modules-table\" id=\"modules\">\n"
                                        "<thead><tr><th>Name</th><th>Version</th><th>State</th>"
                                        "<th>Id</th><th>Pending upgrade</th><th>Actions</th>"
                                        "</tr></thead>\n"
                                        "<tbody>\n%s</tbody>\n</table>\n</main>",
                                        rows->str)));
}

static void
itk_sim_web_licensing(ItkSimServer *self, SoupServerMessage *msg)
{
        gint64 left = itk_sim_state_get_trial_seconds_left(self->state);
        /* Running: the blue box with "Activate Ignition"; expired: the banner
         * above (itk_sim_web_banners) offers the reset. */
        char *main_html = g_strdup_printf(
                "<main class=\"licensing-page\">\n<h1>Licensing</h1>\n"
                "<div class=\"trial-status\" data-trial-seconds-left=\"%" G_GINT64_FORMAT "\">"
                "%s</div>\n%s</main>",
                left, left > 0 ? "Trial mode: running" : "Trial expired",
                left > 0 ? "<div class=\"trial-active\"><p>The trial is running.</p>"
                           "<button type=\"button\" class=\"activate-button primary\">"
                           "Activate Ignition</button></div>\n"
                         : "");

        itk_sim_reply_html(msg, SOUP_STATUS_OK,
                           itk_sim_web_page(self, msg, "Licensing",
                                            "class=\"config\" data-page=\"licensing\"", main_html));
}

static void
itk_sim_web_welcome(ItkSimServer *self, SoupServerMessage *msg)
{
        itk_sim_reply_html(msg, SOUP_STATUS_OK,
                           g_strdup("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
                                    "<meta charset=\"utf-8\">\n<title>Welcome to Ignition"
                                    "</title>\n</head>\n<body class=\"commissioning\">\n"
                                    "<main class=\"commissioning-page\">\n<h1>Welcome to "
                                    "Ignition</h1>\n<p>This gateway has not been "
                                    "commissioned yet.</p>\n</main>\n</body>\n</html>\n"));
}

static void
itk_sim_web_backup(ItkSimServer *self, SoupServerMessage *msg)
{
        char *main_html = g_strdup(
                "<main class=\"backup-page\">\n<h1>Backup and Restore</h1>\n"
                "<p>A gateway backup (.gwbk) holds the projects, modules and settings.</p>\n"
                "<a class=\"download-backup-link\" href=\"/web/backup/download\" download>"
                "Download Backup</a>\n</main>");

        itk_sim_reply_html(msg, SOUP_STATUS_OK,
                           itk_sim_web_page(self, msg, "Backup",
                                            "class=\"config\" data-page=\"backup\"", main_html));
}

/* GET /web/backup/download: the REST backup (type all) as an attachment, so
 * the browser saves a real file. */
static void
itk_sim_web_backup_download(ItkSimServer *self, SoupServerMessage *msg)
{
        g_autoptr(GHashTable) query = g_hash_table_new(g_str_hash, g_str_equal);

        g_hash_table_insert(query, (char *)"type", (char *)"all");
        itk_sim_api_call(self, msg, SOUP_METHOD_GET, "/data/api/v1/backup", query);
        if (soup_message_headers_get_one(soup_server_message_get_response_headers(msg),
                                         "Content-Disposition") == NULL)
                soup_message_headers_replace(soup_server_message_get_response_headers(msg),
                                             "Content-Disposition",
                                             "attachment; filename=\"gateway.gwbk\"");
}

/* POST /web/api/REST: the dialogs' calls, the REST routes behind the login
 * session instead of a token. Only what the pages use. */
static void
itk_sim_web_api(ItkSimServer *self, SoupServerMessage *msg, const char *rest, GHashTable *query)
{
        static const char *const allowed[] = {
                "modules/upload",    "modules/certificate",   "modules/eula", "modules/install",
                "modules/uninstall", "restart-tasks/restart", "trial"
        };
        g_autofree char *path = NULL;
        gboolean ok = FALSE;

        if (!itk_sim_web_logged_in(self, msg)) {
                itk_sim_reply_message(msg, SOUP_STATUS_UNAUTHORIZED, "Log in first");
                return;
        }
        for (gsize i = 0; i < G_N_ELEMENTS(allowed); i++)
                ok = ok || g_strcmp0(rest, allowed[i]) == 0;
        if (!ok) {
                itk_sim_reply_message(msg, SOUP_STATUS_NOT_FOUND, "No page action %s", rest);
                return;
        }
        path = g_strconcat("/data/api/v1/", rest, NULL);
        itk_sim_api_call(self, msg,
                         g_strcmp0(rest, "modules/uninstall") == 0 ? SOUP_METHOD_DELETE
                                                                   : SOUP_METHOD_POST,
                         path, query);
}

static void
itk_sim_web_resource(SoupServerMessage *msg, const char *name)
{
        g_autofree char *path = g_strconcat(ITK_SIM_RESOURCES, name, NULL);
        g_autoptr(GBytes) bytes = g_resources_lookup_data(path, G_RESOURCE_LOOKUP_FLAGS_NONE, NULL);

        if (bytes == NULL) {
                itk_sim_reply_jetty(msg, SOUP_STATUS_NOT_FOUND);
                return;
        }
        itk_sim_reply_bytes(msg,
                            g_str_has_suffix(name, ".js") ? "text/javascript; charset=utf-8"
                                                          : "text/css; charset=utf-8",
                            bytes);
}

/* /data/perspective/client/PROJECT[/VIEW]: a small Perspective-like view,
 * its components marked with data-component and data-component-path as a
 * Perspective session marks them, for perspective.discover_page and the
 * verification playbooks. */
static void
itk_sim_web_perspective(ItkSimServer *self, SoupServerMessage *msg, const char *rest)
{
        g_auto(GStrv) parts = g_strsplit(rest, "/", 2);
        g_autofree char *project = g_markup_escape_text(parts[0] != NULL ? parts[0] : "", -1);
        g_autofree char *view =
                g_markup_escape_text(parts[0] != NULL && parts[1] != NULL ? parts[1] : "main", -1);

        if (parts[0] == NULL || *parts[0] == '\0' ||
            itk_sim_state_find_project(self->state, parts[0]) == NULL) {
                itk_sim_reply_jetty(msg, SOUP_STATUS_NOT_FOUND);
                return;
        }
        itk_sim_reply_html(
                msg, SOUP_STATUS_OK,
                g_strdup_printf(
                        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                        "<title>%s - Perspective</title>\n"
                        "<link rel=\"stylesheet\" href=\"/web/res/sim-web.css\">\n"
                        "<script src=\"/web/res/sim-web.js\" defer></script>\n</head>\n"
                        "<body class=\"perspective\">\n"
                        "<div id=\"app-container\" class=\"perspective-page\" "
                        "data-component=\"ia.container.flex\" data-component-path=\"root\" "
                        "data-view=\"%s\">\n"
                        "<h1 class=\"page-title\" data-component=\"ia.display.label\" "
                        "data-component-path=\"root/Title\">Dashboard</h1>\n"
                        "<div class=\"loading-spinner\" data-component=\"ia.display.spinner\">"
                        "Loading</div>\n"
                        "<p class=\"welcome-message\" data-component=\"ia.display.label\" "
                        "data-component-path=\"root/Welcome\">Welcome to the %s project</p>\n"
                        "<span class=\"timestamp\" data-component=\"ia.display.label\" "
                        "data-component-path=\"root/Timestamp\">1970-01-01T00:00:00Z</span>\n"
                        "<div id=\"status-indicator\" class=\"status-ok\" "
                        "data-component=\"ia.display.led-display\" "
                        "data-component-path=\"root/Status\">OK</div>\n"
                        "<div class=\"tabs\" role=\"tablist\" data-component=\"ia.container.tab\" "
                        "data-component-path=\"root/Tabs\">"
                        "<div role=\"tab\" aria-selected=\"true\" tabindex=\"0\">Overview</div>"
                        "<div role=\"tab\" aria-selected=\"false\" tabindex=\"-1\">Trends</div>"
                        "</div>\n"
                        "<div class=\"main-panel ia_container\" "
                        "data-component=\"ia.container.flex\" "
                        "data-component-path=\"root/MainPanel\">\n"
                        "<button id=\"action-button\" class=\"ia_button\" "
                        "data-component=\"ia.input.button\" "
                        "data-component-path=\"root/MainPanel/Start\">Start</button>\n"
                        "<button id=\"locked-button\" class=\"ia_button\" disabled "
                        "data-component=\"ia.input.button\" "
                        "data-component-path=\"root/MainPanel/Locked\">Locked</button>\n"
                        "<button id=\"submit-button\" type=\"submit\" class=\"ia_button\" disabled "
                        "data-component=\"ia.input.button\" "
                        "data-component-path=\"root/MainPanel/Submit\">Submit</button>\n"
                        "<label for=\"setpoint-value\">Setpoint</label>"
                        "<input id=\"setpoint-value\" type=\"number\" name=\"setpoint\" "
                        "value=\"100\" data-component=\"ia.input.numeric-entry-field\" "
                        "data-component-path=\"root/MainPanel/Setpoint\">\n"
                        "<input type=\"text\" name=\"operator\" placeholder=\"Operator name\" "
                        "data-component=\"ia.input.text-field\" "
                        "data-component-path=\"root/MainPanel/Operator\">\n"
                        "<select name=\"mode\" data-component=\"ia.input.dropdown\" "
                        "data-component-path=\"root/MainPanel/Mode\"><option>Auto</option>"
                        "<option>Manual</option></select>\n"
                        "<label><input type=\"checkbox\" name=\"alarms\" "
                        "data-component=\"ia.input.checkbox\" "
                        "data-component-path=\"root/MainPanel/Alarms\"> Alarms enabled</label>\n"
                        "<div role=\"switch\" aria-checked=\"false\" tabindex=\"0\" "
                        "class=\"ia_toggle\" data-component=\"ia.input.toggle-switch\" "
                        "data-component-path=\"root/MainPanel/Pump\">Pump</div>\n"
                        "</div>\n"
                        "<a href=\"/data/perspective/client/%s/alarms\" "
                        "data-component=\"ia.navigation.link\" "
                        "data-component-path=\"root/AlarmsLink\">Alarms</a>\n"
                        "<div class=\"ia_dock dock-right\" data-component=\"ia.container.dock\" "
                        "data-component-path=\"docks/right\"><button type=\"button\" "
                        "class=\"dock-toggle\" aria-label=\"Open dock\">Menu</button></div>\n"
                        "</div>\n</body>\n</html>\n",
                        project, view, project, project));
}

void
itk_sim_web_dispatch(ItkSimServer *self, SoupServerMessage *msg, const char *path,
                     GHashTable *query)
{
        const char *method = soup_server_message_get_method(msg);
        gboolean get = g_strcmp0(method, SOUP_METHOD_GET) == 0;
        gboolean post = g_strcmp0(method, SOUP_METHOD_POST) == 0;

        if (g_str_has_prefix(path, "/welcome") && get) {
                itk_sim_web_welcome(self, msg);
        } else if ((g_strcmp0(path, "/") == 0 || g_strcmp0(path, "/web/home") == 0) && get) {
                itk_sim_web_home(self, msg);
        } else if (g_strcmp0(path, "/web/login") == 0 && get) {
                /* ?username=NAME opens the password step at once (a deep link;
                 * the browser unit tests use it to reach the password field). */
                itk_sim_web_login_form(
                        self, msg, query != NULL ? g_hash_table_lookup(query, "username") : NULL,
                        NULL);
        } else if (g_strcmp0(path, "/web/login") == 0 && post) {
                itk_sim_web_login_post(self, msg);
        } else if (g_strcmp0(path, "/web/logout") == 0) {
                itk_sim_web_logout(self, msg);
        } else if (g_str_has_prefix(path, "/web/res/") && get) {
                itk_sim_web_resource(msg, path + strlen("/web/res/"));
        } else if (g_str_has_prefix(path, "/web/api/") && post) {
                itk_sim_web_api(self, msg, path + strlen("/web/api/"), query);
        } else if (g_str_has_prefix(path, "/data/perspective/client/") && get) {
                itk_sim_web_perspective(self, msg, path + strlen("/data/perspective/client/"));
        } else if ((g_strcmp0(path, "/web/config/modules") == 0 ||
                    g_strcmp0(path, "/app/platform/system/modules") == 0 ||
                    g_strcmp0(path, "/app/platform/system/licensing") == 0 ||
                    g_strcmp0(path, "/app/platform/system/backup-restore/backup") == 0 ||
                    g_strcmp0(path, "/web/backup/download") == 0) &&
                   get) {
                if (!itk_sim_web_logged_in(self, msg))
                        itk_sim_web_redirect(msg, "/web/login");
                else if (g_str_has_suffix(path, "/licensing"))
                        itk_sim_web_licensing(self, msg);
                else if (g_str_has_suffix(path, "/backup"))
                        itk_sim_web_backup(self, msg);
                else if (g_str_has_suffix(path, "/download"))
                        itk_sim_web_backup_download(self, msg);
                else
                        itk_sim_web_modules(self, msg);
        } else {
                itk_sim_reply_jetty(msg, SOUP_STATUS_NOT_FOUND);
        }
}
