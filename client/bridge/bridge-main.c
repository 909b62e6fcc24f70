/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ignition-toolkit-bridge: options, the access token, the bus and the loop. */
#include "config.h"

#include "bridge-config.h"
#include "bridge.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define TOKEN_FILE "bridge-token"

static char *
default_state_dir(void)
{
        const char *dirs = g_getenv("STATE_DIRECTORY");

        /* systemd's StateDirectory=; several are separated by ':'. */
        if (dirs != NULL && dirs[0] != '\0') {
                const char *colon = strchr(dirs, ':');

                return colon != NULL ? g_strndup(dirs, colon - dirs) : g_strdup(dirs);
        }
        if (geteuid() == 0)
                return g_strdup(BRIDGE_STATE_DIR);
        return g_build_filename(g_get_user_state_dir(), "ignition-toolkit", NULL);
}

static char *
new_token(GError **error)
{
        guint8 bytes[32];
        GString *hex = g_string_sized_new(64);

        if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t)sizeof(bytes)) {
                int e = errno;

                g_string_free(hex, TRUE);
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e),
                            "cannot get random bytes: %s", g_strerror(e));
                return NULL;
        }
        for (gsize i = 0; i < sizeof(bytes); i++)
                g_string_append_printf(hex, "%02x", bytes[i]);
        return g_string_free(hex, FALSE);
}

/* The token is made at first start, readable by its owner only. */
static char *
load_token(const char *state_dir, GError **error)
{
        g_autofree char *path = g_build_filename(state_dir, TOKEN_FILE, NULL);
        g_autofree char *contents = NULL;
        g_autofree char *token = NULL;
        int fd;

        if (g_file_get_contents(path, &contents, NULL, NULL)) {
                g_strstrip(contents);
                if (strlen(contents) >= 32)
                        return g_steal_pointer(&contents);
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s does not hold a token",
                            path);
                return NULL;
        }
        if (g_mkdir_with_parents(state_dir, 0700) < 0) {
                int e = errno;

                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "cannot create %s: %s",
                            state_dir, g_strerror(e));
                return NULL;
        }
        token = new_token(error);
        if (token == NULL)
                return NULL;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                int e = errno;

                /* Another bridge made it first: use that one. */
                if (e == EEXIST && g_file_get_contents(path, &contents, NULL, NULL))
                        return g_strdup(g_strstrip(contents));
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "cannot create %s: %s",
                            path, g_strerror(e));
                return NULL;
        }
        if (write(fd, token, strlen(token)) != (ssize_t)strlen(token) || write(fd, "\n", 1) != 1 ||
            fsync(fd) < 0) {
                int e = errno;

                close(fd);
                g_unlink(path);
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "cannot write %s: %s",
                            path, g_strerror(e));
                return NULL;
        }
        close(fd);
        return g_steal_pointer(&token);
}

static gboolean
parse_listen(const char *text, char **out_host, guint *out_port, GError **error)
{
        const char *colon;
        g_autofree char *host = NULL;
        guint64 port;

        if (text[0] == '[') {
                const char *end = strchr(text, ']');

                if (end == NULL || end[1] != ':')
                        goto bad;
                host = g_strndup(text + 1, end - text - 1);
                colon = end + 1;
        } else {
                colon = strrchr(text, ':');
                if (colon == NULL)
                        goto bad;
                host = g_strndup(text, colon - text);
        }
        if (host[0] == '\0' || !g_ascii_string_to_unsigned(colon + 1, 10, 0, 65535, &port, NULL))
                goto bad;
        *out_host = g_steal_pointer(&host);
        *out_port = (guint)port;
        return TRUE;
bad:
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "--listen wants HOST:PORT, got %s", text);
        return FALSE;
}

static char *
url_host(const char *host)
{
        return strchr(host, ':') != NULL ? g_strdup_printf("[%s]", host) : g_strdup(host);
}

/* systemd's socket activation (sd_listen_fds(3)): one listening socket, fd 3,
 * when LISTEN_PID is ours. NULL without error when there is none. */
static GSocket *
inherited_socket(GError **error)
{
        const char *pid_text = g_getenv("LISTEN_PID");
        const char *fds_text = g_getenv("LISTEN_FDS");
        guint64 pid, fds;
        GSocket *socket;

        if (pid_text == NULL || fds_text == NULL)
                return NULL;
        if (!g_ascii_string_to_unsigned(pid_text, 10, 1, G_MAXINT, &pid, NULL) ||
            (pid_t)pid != getpid())
                return NULL;
        g_unsetenv("LISTEN_PID");
        g_unsetenv("LISTEN_FDS");
        g_unsetenv("LISTEN_FDNAMES");
        if (!g_ascii_string_to_unsigned(fds_text, 10, 0, 64, &fds, NULL) || fds != 1) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            "socket activation passed %s sockets; the bridge takes exactly one",
                            fds_text);
                return NULL;
        }
        if (fcntl(3, F_SETFD, FD_CLOEXEC) < 0) {
                int e = errno;

                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e),
                            "the socket from systemd is not usable: %s", g_strerror(e));
                return NULL;
        }
        socket = g_socket_new_from_fd(3, error);
        if (socket == NULL)
                return NULL;
        if (g_socket_get_socket_type(socket) != G_SOCKET_TYPE_STREAM ||
            (g_socket_get_family(socket) != G_SOCKET_FAMILY_IPV4 &&
             g_socket_get_family(socket) != G_SOCKET_FAMILY_IPV6)) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            "the socket from systemd is not a TCP socket (ListenStream=ADDR:PORT)");
                g_object_unref(socket);
                return NULL;
        }
        return socket;
}

static gboolean
quit_cb(gpointer user_data)
{
        g_main_loop_quit(user_data);
        return G_SOURCE_CONTINUE;
}

int
main(int argc, char **argv)
{
        g_autofree char *listen = NULL;
        g_autofree char *bus_address = NULL;
        g_autofree char *state_dir = NULL;
        g_autofree char *web_root = NULL;
        g_autofree char *host = NULL;
        g_autofree char *shown_host = NULL;
        g_auto(GStrv) allowed = NULL;
        gboolean user_bus = FALSE;
        gboolean print_url = FALSE;
        guint port = 0;
        guint bound_port = 0;
        g_autoptr(GError) error = NULL;
        g_autoptr(GOptionContext) context = NULL;
        g_autoptr(GMainLoop) loop = NULL;
        g_autoptr(GSocket) inherited = NULL;
        Bridge bridge = {
                .ws_max_lag_seconds = BRIDGE_WS_MAX_LAG_SECONDS,
                .header_timeout_seconds = BRIDGE_HEADER_TIMEOUT_SECONDS,
                .idle_timeout_seconds = BRIDGE_IDLE_TIMEOUT_SECONDS,
        };
        const GOptionEntry entries[] = {
                { "listen", 0, 0, G_OPTION_ARG_STRING, &listen,
                  "Address to listen on (default 127.0.0.1:8765)", "HOST:PORT" },
                { "user", 0, 0, G_OPTION_ARG_NONE, &user_bus, "Use the session bus", NULL },
                { "bus-address", 0, 0, G_OPTION_ARG_STRING, &bus_address,
                  "Use the bus at this address", "ADDRESS" },
                { "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir,
                  "Where the access token is kept", "DIR" },
                { "web-root", 0, 0, G_OPTION_ARG_FILENAME, &web_root, "Static files of the web UI",
                  "DIR" },
                { "print-url", 0, 0, G_OPTION_ARG_NONE, &print_url,
                  "Print the URL with the access token and exit", NULL },
                { "allowed-origin", 0, 0, G_OPTION_ARG_STRING_ARRAY, &allowed,
                  "Another Origin allowed to make changes (repeatable)", "ORIGIN" },
                { "ws-max-lag", 0, 0, G_OPTION_ARG_INT, &bridge.ws_max_lag_seconds,
                  "Close a WebSocket client that stays this far behind (default 30)", "SECONDS" },
                { "header-timeout", 0, 0, G_OPTION_ARG_INT, &bridge.header_timeout_seconds,
                  "Close a connection whose request head takes longer (default 10)", "SECONDS" },
                { "idle-timeout", 0, 0, G_OPTION_ARG_INT, &bridge.idle_timeout_seconds,
                  "Close a keep-alive connection idle this long, or a body that stalls "
                  "(default 60)",
                  "SECONDS" },
                { NULL },
        };

        context = g_option_context_new("- HTTP and WebSocket bridge to ignition-toolkitd");
        g_option_context_set_description(
                context, "Under systemd socket activation (LISTEN_FDS=1), the bridge serves the "
                         "socket it is given\nand --listen is ignored. Listening beyond loopback "
                         "is warned about.\n");
        g_option_context_add_main_entries(context, entries, NULL);
        if (!g_option_context_parse(context, &argc, &argv, &error)) {
                g_printerr("%s\n", error->message);
                return 2;
        }
        if ((gint)bridge.ws_max_lag_seconds < 1) {
                g_printerr("--ws-max-lag must be at least 1 second\n");
                return 2;
        }
        if ((gint)bridge.header_timeout_seconds < 1 || (gint)bridge.idle_timeout_seconds < 1) {
                g_printerr("--header-timeout and --idle-timeout must be at least 1 second\n");
                return 2;
        }
        inherited = inherited_socket(&error);
        if (error != NULL) {
                g_printerr("%s\n", error->message);
                return 1;
        }
        if (!parse_listen(listen != NULL ? listen : "127.0.0.1:8765", &host, &port, &error)) {
                g_printerr("%s\n", error->message);
                return 2;
        }
        shown_host = url_host(host);
        if (state_dir == NULL)
                state_dir = default_state_dir();
        bridge.token = load_token(state_dir, &error);
        if (bridge.token == NULL) {
                g_printerr("%s\n", error->message);
                return 1;
        }
        if (print_url) {
                g_print("http://%s:%u/#token=%s\n", shown_host, port, bridge.token);
                g_free(bridge.token);
                return 0;
        }
        if (web_root == NULL)
                web_root = g_strdup(g_file_test(BRIDGE_WEB_ROOT, G_FILE_TEST_IS_DIR)
                                            ? BRIDGE_WEB_ROOT
                                            : BRIDGE_SOURCE_WEB_ROOT);
        bridge.web_root = g_canonicalize_filename(web_root, NULL);

        if (bus_address != NULL)
                bridge.bus = g_dbus_connection_new_for_address_sync(
                        bus_address,
                        G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                        NULL, NULL, &error);
        else
                bridge.bus = g_bus_get_sync(user_bus ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM, NULL,
                                            &error);
        if (bridge.bus == NULL) {
                g_printerr("cannot connect to the bus: %s\n", error->message);
                return 1;
        }
        g_dbus_connection_set_exit_on_close(bridge.bus, FALSE);
        bridge.manager = itk_client_dbus_manager_proxy_new_sync(
                bridge.bus, G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES, ITK_BUS_NAME,
                ITK_MANAGER_PATH, NULL, &error);
        if (bridge.manager == NULL) {
                g_printerr("cannot create the manager proxy: %s\n", error->message);
                return 1;
        }
        /* Before anything that could start a run: the match is in place from here on. */
        bridge.watch = itk_execution_watch_new(bridge.bus, ITK_BUS_NAME, NULL);
        /* Follows the daemon: the objects come and go with its name owner. */
        bridge.objects = itk_client_dbus_object_manager_client_new_sync(
                bridge.bus, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_DO_NOT_AUTO_START, ITK_BUS_NAME,
                ITK_MANAGER_PATH, NULL, &error);
        if (bridge.objects == NULL) {
                g_printerr("cannot watch the executions: %s\n", error->message);
                return 1;
        }
        bridge.origins = g_ptr_array_new_with_free_func(g_free);
        for (guint i = 0; allowed != NULL && allowed[i] != NULL; i++)
                g_ptr_array_add(bridge.origins, g_strdup(allowed[i]));
        bridge.ws = bridge_ws_new(&bridge);
        bridge.live = bridge_live_view_new(&bridge);
        if (inherited != NULL) {
                g_autoptr(GSocketAddress) local = g_socket_get_local_address(inherited, NULL);

                /* The address systemd bound is the bridge's own origin. */
                if (local != NULL && G_IS_INET_SOCKET_ADDRESS(local)) {
                        g_free(host);
                        host = g_inet_address_to_string(
                                g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(local)));
                        g_free(shown_host);
                        shown_host = url_host(host);
                }
        }
        if (!bridge_server_listen(&bridge, host, port, inherited, &bound_port, &error)) {
                g_printerr("cannot listen on %s: %s\n", listen != NULL ? listen : host,
                           error->message);
                return 1;
        }
        bridge_server_add_own_origins(&bridge, host, bound_port);
        g_print("listening on http://%s:%u/\n", shown_host, bound_port);
        fflush(stdout);

        loop = g_main_loop_new(NULL, FALSE);
        g_unix_signal_add(SIGINT, quit_cb, loop);
        g_unix_signal_add(SIGTERM, quit_cb, loop);
        g_main_loop_run(loop);

        bridge_listener_free(bridge.listener);
        soup_server_disconnect(bridge.server);
        bridge_ws_free(bridge.ws);
        bridge_live_view_free(bridge.live);
        g_object_unref(bridge.server);
        g_object_unref(bridge.objects);
        g_object_unref(bridge.watch);
        g_object_unref(bridge.manager);
        g_object_unref(bridge.bus);
        g_ptr_array_unref(bridge.origins);
        g_free(bridge.web_root);
        g_free(bridge.token);
        return 0;
}
