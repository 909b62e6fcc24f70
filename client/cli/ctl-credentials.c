/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ignitionctl credential list|set|delete. Secrets are read from a prompt with
 * echo off, or from standard input when it is not a terminal; never from argv,
 * where any user could read them in /proc. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "ctl.h"

static int
ctl_credential_list(CtlContext *ctx)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(JsonNode) list = NULL;
        g_autoptr(CtlTable) table = NULL;
        JsonArray *array;
        int r;

        r = ctl_call_manager(ctx, "ListCredentials", &reply, "cannot list credentials", NULL);
        if (r != 0)
                return r;
        list = ctl_json_read_reply(reply, &r);
        if (list == NULL || !JSON_NODE_HOLDS_ARRAY(list)) {
                ctl_error("cannot read the credential list: %s", g_strerror(-r));
                return CTL_EXIT_FAILURE;
        }
        if (ctx->json) {
                ctl_json_print(ctx, list);
                return 0;
        }
        array = json_node_get_array(list);
        table = ctl_table_new("NAME", "USERNAME", "GATEWAY", "SECRET", "DESCRIPTION", NULL);
        for (guint i = 0; i < json_array_get_length(array); i++) {
                JsonObject *c = json_array_get_object_element(array, i);
                const char *secret = ctl_json_get_bool(c, "has-api-token")  ? "api token"
                                     : ctl_json_get_bool(c, "has-password") ? "password"
                                                                            : "none";

                ctl_table_add_row(table, ctl_json_get_string(c, "name"),
                                  ctl_json_get_string(c, "username"),
                                  ctl_json_get_string(c, "gateway-url"), secret,
                                  ctl_json_get_string(c, "description"));
        }
        if (ctl_table_get_rows(table) > 0)
                ctl_table_print(ctx, table);
        if (!ctx->quiet)
                printf("%s%u credentials listed.\n", ctl_table_get_rows(table) > 0 ? "\n" : "",
                       ctl_table_get_rows(table));
        return 0;
}

/* The terminal's settings while echo is off, for the signal handler. */
static struct termios ctl_credential_saved_termios;

/* Ctrl-C at the prompt must not leave the terminal without echo. */
static void
ctl_credential_restore_cb(int sig)
{
        (void)tcsetattr(STDIN_FILENO, TCSANOW, &ctl_credential_saved_termios);
        signal(sig, SIG_DFL);
        raise(sig);
}

/* One line from standard input; with a terminal, prompted with echo off. */
static char *
ctl_credential_read_secret(const char *prompt, GError **error)
{
        g_autoptr(GString) line = g_string_new(NULL);
        struct termios old, quiet;
        gboolean tty = isatty(STDIN_FILENO);
        int c;

        if (tty) {
                if (tcgetattr(STDIN_FILENO, &old) < 0) {
                        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                                    "cannot read the terminal: %s", g_strerror(errno));
                        return NULL;
                }
                ctl_credential_saved_termios = old;
                signal(SIGINT, ctl_credential_restore_cb);
                signal(SIGTERM, ctl_credential_restore_cb);
                signal(SIGHUP, ctl_credential_restore_cb);
                quiet = old;
                quiet.c_lflag &= ~(tcflag_t)ECHO;
                quiet.c_lflag |= ECHONL;
                /* Echo off first, then the prompt: TCSAFLUSH drops what was typed
                 * before, so nothing typed after the prompt may precede it. */
                if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) < 0) {
                        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                                    "cannot turn off echo: %s", g_strerror(errno));
                        return NULL;
                }
                fprintf(stderr, "%s", prompt);
                fflush(stderr);
        }
        while ((c = getchar()) != EOF && c != '\n')
                g_string_append_c(line, (char)c);
        if (tty) {
                (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
                signal(SIGINT, SIG_DFL);
                signal(SIGTERM, SIG_DFL);
                signal(SIGHUP, SIG_DFL);
        }
        if (line->len > 0 && line->str[line->len - 1] == '\r')
                g_string_truncate(line, line->len - 1);
        if (line->len == 0 && c == EOF) {
                explicit_bzero(line->str, line->allocated_len);
                g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                    "no secret given on standard input");
                return NULL;
        }
        return g_string_free(g_steal_pointer(&line), FALSE);
}

static void
ctl_credential_free_secret(char *secret)
{
        if (secret != NULL) {
                explicit_bzero(secret, strlen(secret));
                g_free(secret);
        }
}

static int
ctl_credential_set(CtlContext *ctx, const char *name)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(GError) read_error = NULL;
        char *secret = NULL;
        sd_bus *bus;
        int r;

        if (name[0] == '\0' || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                            "0123456789_.-") != strlen(name)) {
                ctl_error("'%s' is not a credential name (letters, digits, '_', '.', '-')", name);
                return CTL_EXIT_USAGE;
        }
        r = ctl_get_bus(ctx, &bus);
        if (r != 0)
                return r;
        if (!ctx->no_secret) {
                g_autofree char *prompt = g_strdup_printf(
                        "%s for %s: ", ctx->token ? "API token (name:key)" : "Password", name);

                secret = ctl_credential_read_secret(prompt, &read_error);
                if (secret == NULL) {
                        ctl_error("%s", read_error->message);
                        return CTL_EXIT_NOINPUT;
                }
        }
        r = sd_bus_message_new_method_call(bus, &m, CTL_BUS_NAME, CTL_MANAGER_PATH,
                                           CTL_MANAGER_IFACE, "SetCredential");
        /* Sensitive: sd-bus wipes the message's memory when it is freed. */
        if (r >= 0)
                r = sd_bus_message_sensitive(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "s", name);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && ctx->username != NULL)
                r = sd_bus_message_append(m, "{sv}", "username", "s", ctx->username);
        if (r >= 0 && ctx->gateway_url != NULL)
                r = sd_bus_message_append(m, "{sv}", "gateway-url", "s", ctx->gateway_url);
        if (r >= 0 && ctx->description != NULL)
                r = sd_bus_message_append(m, "{sv}", "description", "s", ctx->description);
        if (r >= 0 && secret != NULL)
                r = sd_bus_message_append(m, "{sv}", ctx->token ? "api-token" : "password", "s",
                                          secret);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        ctl_credential_free_secret(secret);
        if (r < 0) {
                ctl_error("cannot build the SetCredential call: %s", g_strerror(-r));
                return CTL_EXIT_FAILURE;
        }
        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0)
                return ctl_bus_error(ctx, &error, r, "cannot store credential %s", name);
        if (!ctx->quiet)
                printf("Stored credential %s.\n", name);
        return 0;
}

static int
ctl_credential_delete(CtlContext *ctx, const char *name)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autofree char *what = g_strdup_printf("cannot delete credential %s", name);
        int r;

        r = ctl_call_manager(ctx, "DeleteCredential", &reply, what, "s", name);
        if (r != 0)
                return r;
        if (!ctx->quiet)
                printf("Deleted credential %s.\n", name);
        return 0;
}

int
ctl_verb_credential(CtlContext *ctx, int argc, char **argv)
{
        const char *action = argv[1];

        if (g_str_equal(action, "list")) {
                if (argc != 2) {
                        ctl_error("credential list: too many arguments");
                        return CTL_EXIT_USAGE;
                }
                return ctl_credential_list(ctx);
        }
        if (g_str_equal(action, "set") || g_str_equal(action, "delete")) {
                if (argc != 3) {
                        ctl_error("credential %s takes a NAME", action);
                        return CTL_EXIT_USAGE;
                }
                return g_str_equal(action, "set") ? ctl_credential_set(ctx, argv[2])
                                                  : ctl_credential_delete(ctx, argv[2]);
        }
        ctl_error("credential takes list, set or delete, not '%s'", action);
        return CTL_EXIT_USAGE;
}
