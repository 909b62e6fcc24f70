/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "sim-server-private.h"

#include <string.h>

/* Plain HTML pages generated from the state, for the browser steps: their
 * markup matches the selectors of the shipped gateway playbooks (a.login-link,
 * input[name=username], text=CONTINUE, .home-page, a modules table). */

#define ITK_SIM_SESSION_COOKIE "JSESSIONID"

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

static gboolean
itk_sim_web_logged_in(ItkSimServer *self, SoupServerMessage *msg)
{
        g_autofree char *id = itk_sim_web_session_id(msg);
        return id != NULL && g_hash_table_contains(self->sessions, id);
}

static void
itk_sim_web_redirect(SoupServerMessage *msg, const char *location)
{
        soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Location",
                                     location);
        soup_server_message_set_status(msg, SOUP_STATUS_FOUND, NULL);
}

/* Takes @main_html. */
static char *
itk_sim_web_page(ItkSimServer *self, SoupServerMessage *msg, const char *title,
                 const char *body_attrs, char *main_html)
{
        g_autofree char *owned_main = main_html;
        g_autofree char *name = g_markup_escape_text(self->state->gateway_name, -1);
        g_autofree char *version = itk_sim_state_dup_full_version(self->state);
        const char *account = itk_sim_web_logged_in(self, msg)
                                      ? "<span class=\"user-name\">admin</span> "
                                        "<a class=\"logout-link\" href=\"/web/logout\">Log Out</a>"
                                      : "<a class=\"login-link\" href=\"/web/login\">Log In</a>";

        return g_strdup_printf(
                "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                "<title>%s - %s</title>\n</head>\n<body %s>\n"
                "<nav class=\"top-nav\">\n<a class=\"gateway-name\" href=\"/web/home\">%s</a>\n"
                "<a href=\"/web/home\">Home</a>\n<a href=\"/web/config/modules\">Modules</a>\n"
                "<a href=\"/app/platform/system/licensing\">Licensing</a>\n%s\n</nav>\n"
                "%s\n<footer class=\"version\">Ignition %s</footer>\n</body>\n</html>\n",
                title, name, body_attrs, name, account, owned_main, version);
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
        char *main_html = g_strdup_printf(
                "<main class=\"login-page\">\n<h1>Log In</h1>\n%s"
                "<form class=\"login-form\" method=\"post\" action=\"/web/login\">\n"
                "<label for=\"username\">Username</label>\n"
                "<input type=\"text\" id=\"username\" name=\"username\" value=\"%s\" "
                "placeholder=\"Username\" autocomplete=\"username\">\n"
                "<label for=\"password\">Password</label>\n"
                "<input type=\"password\" id=\"password\" name=\"password\" "
                "placeholder=\"Password\" autocomplete=\"current-password\">\n"
                "<button type=\"submit\" class=\"submit-button\">CONTINUE</button>\n"
                "</form>\n</main>",
                err, user);

        itk_sim_reply_html(msg, SOUP_STATUS_OK,
                           itk_sim_web_page(self, msg, "Log In", "class=\"login\"", main_html));
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
        g_hash_table_add(self->sessions, g_steal_pointer(&session));
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
                        "<tr class=\"module-row\" data-module-id=\"%s\">"
                        "<td class=\"module-name\">%s</td><td class=\"module-version\">%s</td>"
                        "<td class=\"module-state\">%s</td><td class=\"module-id\">%s</td>"
                        "<td class=\"module-upgrade\">%s</td></tr>\n",
                        m->id, m->name, m->version, m->active ? "ACTIVE" : "INACTIVE", m->id,
                        m->pending_version != NULL ? m->pending_version : "");
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
                                        "<input type=\"search\" name=\"filter\" "
                                        "placeholder=\"Filter modules\">\n"
                                        "<table class=\"modules-table\" id=\"modules\">\n"
                                        "<thead><tr><th>Name</th><th>Version</th><th>State</th>"
                                        "<th>Id</th><th>Pending upgrade</th></tr></thead>\n"
                                        "<tbody>\n%s</tbody>\n</table>\n</main>",
                                        rows->str)));
}

static void
itk_sim_web_licensing(ItkSimServer *self, SoupServerMessage *msg)
{
        gint64 left = itk_sim_state_get_trial_seconds_left(self->state);
        char *main_html = g_strdup_printf(
                "<main class=\"licensing-page\">\n<h1>Licensing</h1>\n"
                "<div class=\"trial-status\" data-trial-seconds-left=\"%" G_GINT64_FORMAT "\">"
                "%s</div>\n</main>",
                left, left > 0 ? "Trial mode: running" : "Trial expired");

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

void
itk_sim_web_dispatch(ItkSimServer *self, SoupServerMessage *msg, const char *path,
                     GHashTable *query)
{
        const char *method = soup_server_message_get_method(msg);
        gboolean get = g_strcmp0(method, SOUP_METHOD_GET) == 0;

        if (g_str_has_prefix(path, "/welcome") && get) {
                itk_sim_web_welcome(self, msg);
        } else if ((g_strcmp0(path, "/") == 0 || g_strcmp0(path, "/web/home") == 0) && get) {
                itk_sim_web_home(self, msg);
        } else if (g_strcmp0(path, "/web/login") == 0 && get) {
                itk_sim_web_login_form(self, msg, NULL, NULL);
        } else if (g_strcmp0(path, "/web/login") == 0 && g_strcmp0(method, SOUP_METHOD_POST) == 0) {
                itk_sim_web_login_post(self, msg);
        } else if (g_strcmp0(path, "/web/logout") == 0) {
                itk_sim_web_logout(self, msg);
        } else if ((g_strcmp0(path, "/web/config/modules") == 0 ||
                    g_strcmp0(path, "/app/platform/system/modules") == 0 ||
                    g_strcmp0(path, "/app/platform/system/licensing") == 0) &&
                   get) {
                if (!itk_sim_web_logged_in(self, msg))
                        itk_sim_web_redirect(msg, "/web/login");
                else if (g_str_has_suffix(path, "/licensing"))
                        itk_sim_web_licensing(self, msg);
                else
                        itk_sim_web_modules(self, msg);
        } else {
                itk_sim_reply_jetty(msg, SOUP_STATUS_NOT_FOUND);
        }
}
