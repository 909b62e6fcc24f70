/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ignitionctl: options, verb dispatch, the bus connection and error printing. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

typedef struct {
        const char *name;
        int min_args; /* after the verb */
        int max_args; /* -1: any */
        int (*func)(CtlContext *ctx, int argc, char **argv);
} CtlVerb;

static const CtlVerb verbs[] = {
        { "run", 1, 1, ctl_verb_run },
        { "list", 0, 0, ctl_verb_list },
        { "status", 1, 1, ctl_verb_status },
        { "steps", 1, 1, ctl_verb_steps },
        { "log", 1, 1, ctl_verb_log },
        { "cancel", 1, 1, ctl_verb_control },
        { "pause", 1, 1, ctl_verb_control },
        { "resume", 1, 1, ctl_verb_control },
        { "skip", 1, 1, ctl_verb_control },
        { "skip-back", 1, 1, ctl_verb_control },
        { "debug", 2, 2, ctl_verb_debug },
        { "history", 0, 0, ctl_verb_history },
        { "forget", 1, 1, ctl_verb_forget },
        { "playbooks", 0, 0, ctl_verb_playbooks },
        { "show", 1, 1, ctl_verb_show },
        { "validate", 1, -1, ctl_verb_validate },
        { "credential", 1, 2, ctl_verb_credential },
        { "artifacts", 1, 1, ctl_verb_artifacts },
        { "artifact", 2, 2, ctl_verb_artifact },
        { "playbook", 1, 3, ctl_verb_playbook },
        { "live", 1, 1, ctl_verb_live },
};

void
ctl_error(const char *format, ...)
{
        va_list ap;

        fflush(stdout);
        fputs("ignitionctl: ", stderr);
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fputc('\n', stderr);
}

static const char *
ctl_main_bus_description(CtlContext *ctx)
{
        switch (ctx->bus_type) {
        case CTL_BUS_USER:
                return "the user bus";
        case CTL_BUS_ADDRESS:
                return "the given bus";
        case CTL_BUS_SYSTEM:
        default:
                return "the system bus";
        }
}

int
ctl_get_bus(CtlContext *ctx, sd_bus **ret)
{
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        int r;

        if (ctx->bus != NULL) {
                *ret = ctx->bus;
                return 0;
        }
        switch (ctx->bus_type) {
        case CTL_BUS_USER:
                r = sd_bus_open_user(&bus);
                break;
        case CTL_BUS_ADDRESS:
                r = sd_bus_new(&bus);
                if (r >= 0)
                        r = sd_bus_set_address(bus, ctx->bus_address);
                if (r >= 0)
                        r = sd_bus_set_bus_client(bus, 1);
                if (r >= 0)
                        r = sd_bus_start(bus);
                break;
        case CTL_BUS_SYSTEM:
        default:
                r = sd_bus_open_system(&bus);
                break;
        }
        if (r < 0) {
                if (ctx->bus_type == CTL_BUS_ADDRESS)
                        ctl_error("cannot connect to the bus at %s: %s", ctx->bus_address,
                                  g_strerror(-r));
                else
                        ctl_error("cannot connect to %s: %s (is D-Bus running? or use "
                                  "--bus-address)",
                                  ctl_main_bus_description(ctx), g_strerror(-r));
                return CTL_EXIT_UNAVAILABLE;
        }
        /* polkit may ask the user when there is one to ask. */
        if (isatty(STDIN_FILENO))
                (void)sd_bus_set_allow_interactive_authorization(bus, 1);
        ctx->bus = g_steal_pointer(&bus);
        *ret = ctx->bus;
        return 0;
}

static int
ctl_main_exit_status_for_error(const char *name)
{
        static const struct {
                const char *name;
                int status;
        } map[] = {
                { CTL_ERROR_PREFIX "InvalidPlaybook", CTL_EXIT_DATAERR },
                { CTL_ERROR_PREFIX "InvalidParameters", CTL_EXIT_DATAERR },
                { CTL_ERROR_PREFIX "NoSuchPlaybook", CTL_EXIT_NOINPUT },
                { CTL_ERROR_PREFIX "NoSuchExecution", CTL_EXIT_NOINPUT },
                { CTL_ERROR_PREFIX "NoSuchCredential", CTL_EXIT_NOINPUT },
                { SD_BUS_ERROR_ACCESS_DENIED, CTL_EXIT_NOPERM },
                { SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, CTL_EXIT_NOPERM },
                { SD_BUS_ERROR_LIMITS_EXCEEDED, CTL_EXIT_TEMPFAIL },
                { CTL_ERROR_PREFIX "StoreFailed", CTL_EXIT_TEMPFAIL },
                { SD_BUS_ERROR_SERVICE_UNKNOWN, CTL_EXIT_UNAVAILABLE },
                { SD_BUS_ERROR_NAME_HAS_NO_OWNER, CTL_EXIT_UNAVAILABLE },
                { SD_BUS_ERROR_NO_REPLY, CTL_EXIT_UNAVAILABLE },
                { SD_BUS_ERROR_DISCONNECTED, CTL_EXIT_UNAVAILABLE },
        };

        for (gsize i = 0; name != NULL && i < G_N_ELEMENTS(map); i++) {
                if (g_str_equal(name, map[i].name))
                        return map[i].status;
        }
        return CTL_EXIT_FAILURE;
}

int
ctl_bus_error(CtlContext *ctx, const sd_bus_error *error, int r, const char *format, ...)
{
        g_autofree char *what = NULL;
        const char *name = error != NULL && sd_bus_error_is_set(error) ? error->name : NULL;
        int status = ctl_main_exit_status_for_error(name);
        va_list ap;

        va_start(ap, format);
        what = g_strdup_vprintf(format, ap);
        va_end(ap);

        if (name != NULL && (g_str_equal(name, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
                             g_str_equal(name, SD_BUS_ERROR_NAME_HAS_NO_OWNER))) {
                if (ctx->bus_type == CTL_BUS_SYSTEM)
                        ctl_error("ignition-toolkitd is not running on the system bus: start it "
                                  "with `systemctl start ignition-toolkit` or use --bus-address");
                else if (ctx->bus_type == CTL_BUS_USER)
                        ctl_error("ignition-toolkitd is not running on the user bus: start it "
                                  "with `ignition-toolkitd --user` or use --bus-address");
                else
                        ctl_error("ignition-toolkitd is not running on the bus at %s: start it "
                                  "with `ignition-toolkitd --bus-address=%s`",
                                  ctx->bus_address, ctx->bus_address);
                return status;
        }
        if (name == NULL && (r == -ECONNRESET || r == -ENOTCONN)) {
                ctl_error("%s: lost the connection to %s", what, ctl_main_bus_description(ctx));
                return CTL_EXIT_UNAVAILABLE;
        }
        if (name == NULL || error->message == NULL || error->message[0] == '\0')
                ctl_error("%s: %s", what, name != NULL ? name : g_strerror(-r));
        else
                ctl_error("%s: %s", what, error->message);
        return status;
}

int
ctl_call_manager(CtlContext *ctx, const char *method, sd_bus_message **reply, const char *what,
                 const char *types, ...)
{
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        sd_bus *bus;
        va_list ap;
        int r;

        r = ctl_get_bus(ctx, &bus);
        if (r != 0)
                return r;
        r = sd_bus_message_new_method_call(bus, &m, CTL_BUS_NAME, CTL_MANAGER_PATH,
                                           CTL_MANAGER_IFACE, method);
        if (r >= 0 && types != NULL) {
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
        }
        if (r < 0) {
                ctl_error("cannot build the %s call: %s", method, g_strerror(-r));
                return CTL_EXIT_FAILURE;
        }
        r = sd_bus_call(bus, m, 0, &error, reply);
        if (r < 0)
                return ctl_bus_error(ctx, &error, r, "%s", what);
        return 0;
}

static void
ctl_main_help(void)
{
        printf("ignitionctl [OPTIONS...] COMMAND ...\n"
               "\n"
               "Run and control Ignition Toolkit playbooks.\n"
               "\n"
               "Executions:\n"
               "  run PLAYBOOK                  Start a playbook (library id or file) and follow "
               "it\n"
               "  list                          List executions on the bus\n"
               "  status ID                     Show the state of an execution\n"
               "  steps ID                      Show the steps of an execution\n"
               "  log ID                        Show the log of an execution (-f to follow)\n"
               "  cancel|pause|resume ID        Control a running execution\n"
               "  skip|skip-back ID             Skip the current step, or go back one\n"
               "  debug ID on|off               Turn debug mode on or off\n"
               "  history                       List finished runs\n"
               "  forget ID                     Delete a finished run from the history\n"
               "  artifacts ID                  List the files a run wrote (screenshots, backups)\n"
               "  artifact ID NAME              Write one of them to stdout (or -o FILE)\n"
               "  live ID -o FILE.jpg|--info    Save or describe the current frame of its "
               "browser\n"
               "\n"
               "Playbooks:\n"
               "  playbooks                     List the playbook library\n"
               "  show PLAYBOOK                 Show a playbook's parameters and steps\n"
               "  validate FILE...              Check playbook files (no daemon needed)\n"
               "  playbook save ID FILE         Save FILE (or - for stdin) to the local library\n"
               "  playbook delete ID            Delete a playbook of the local library\n"
               "\n"
               "Credentials:\n"
               "  credential list               List stored credentials (never secrets)\n"
               "  credential set NAME           Store a credential; the secret is prompted\n"
               "  credential delete NAME        Delete a credential\n"
               "\n"
               "Options:\n"
               "  -h --help                     Show this help\n"
               "     --version                  Show the version\n"
               "     --system                   Talk to the daemon on the system bus (default)\n"
               "     --user                     Talk to the daemon on the user bus\n"
               "     --bus-address=ADDR         Talk to the daemon on the bus at ADDR\n"
               "     --json[=pretty|short]      Print JSON (read commands)\n"
               "  -q --quiet                    Print less\n"
               "     --no-pager                 Do not pipe output into a pager\n"
               "  -p --parameter=NAME=VALUE     run: set a parameter (repeatable)\n"
               "     --file=NAME=LOCAL-PATH     run: upload a file for a file parameter\n"
               "     --credential=NAME          run: fill parameters from a credential\n"
               "     --gateway-url=URL          run: the gateway to work on\n"
               "     --debug                    run: start in debug mode\n"
               "     --no-follow                run: print the id and return at once\n"
               "  -f --follow                   log: keep printing new lines\n"
               "  -n --limit=N                  history: at most N runs\n"
               "     --status=STATUS            history: only runs that ended STATUS\n"
               "     --since=TIME --until=TIME  history: runs created in [since, until)\n"
               "     --playbook=ID              history: only runs of this playbook\n"
               "     --text=TEXT                history: runs whose id, playbook or error has "
               "TEXT\n"
               "     --all                      history, log: page through everything\n"
               "     --page-size=N              history, log: rows per call when paging\n"
               "     --username=NAME            credential set: the user name\n"
               "     --description=TEXT         credential set: a description\n"
               "     --token                    credential set: prompt for an API token\n"
               "     --no-secret                credential set: keep the stored secret\n"
               "  -o --output=FILE              artifact: write to FILE instead of stdout\n"
               "  -o --output=FILE              live: save the frame (JPEG; - for stdout)\n"
               "     --info                     live: show the frame's URL, step and size\n"
               "\n"
               "See ignitionctl(1) for the exit statuses.\n");
}

enum {
        ARG_VERSION = 0x100,
        ARG_SYSTEM,
        ARG_USER,
        ARG_BUS_ADDRESS,
        ARG_JSON,
        ARG_NO_PAGER,
        ARG_CREDENTIAL,
        ARG_GATEWAY_URL,
        ARG_DEBUG,
        ARG_NO_FOLLOW,
        ARG_STATUS,
        ARG_USERNAME,
        ARG_DESCRIPTION,
        ARG_TOKEN,
        ARG_NO_SECRET,
        ARG_SINCE,
        ARG_UNTIL,
        ARG_PLAYBOOK,
        ARG_TEXT,
        ARG_ALL,
        ARG_PAGE_SIZE,
        ARG_INFO,
        ARG_FILE,
};

static int
ctl_main_parse_argv(CtlContext *ctx, int argc, char **argv)
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "system", no_argument, NULL, ARG_SYSTEM },
                { "user", no_argument, NULL, ARG_USER },
                { "bus-address", required_argument, NULL, ARG_BUS_ADDRESS },
                { "json", optional_argument, NULL, ARG_JSON },
                { "quiet", no_argument, NULL, 'q' },
                { "no-pager", no_argument, NULL, ARG_NO_PAGER },
                { "parameter", required_argument, NULL, 'p' },
                { "credential", required_argument, NULL, ARG_CREDENTIAL },
                { "gateway-url", required_argument, NULL, ARG_GATEWAY_URL },
                { "debug", no_argument, NULL, ARG_DEBUG },
                { "no-follow", no_argument, NULL, ARG_NO_FOLLOW },
                { "follow", no_argument, NULL, 'f' },
                { "limit", required_argument, NULL, 'n' },
                { "status", required_argument, NULL, ARG_STATUS },
                { "username", required_argument, NULL, ARG_USERNAME },
                { "description", required_argument, NULL, ARG_DESCRIPTION },
                { "token", no_argument, NULL, ARG_TOKEN },
                { "no-secret", no_argument, NULL, ARG_NO_SECRET },
                { "since", required_argument, NULL, ARG_SINCE },
                { "until", required_argument, NULL, ARG_UNTIL },
                { "playbook", required_argument, NULL, ARG_PLAYBOOK },
                { "text", required_argument, NULL, ARG_TEXT },
                { "all", no_argument, NULL, ARG_ALL },
                { "page-size", required_argument, NULL, ARG_PAGE_SIZE },
                { "output", required_argument, NULL, 'o' },
                { "info", no_argument, NULL, ARG_INFO },
                { "file", required_argument, NULL, ARG_FILE },
                {},
        };
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hqp:fn:o:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        ctl_main_help();
                        return -1;
                case ARG_VERSION:
                        printf("ignitionctl %s\n", PACKAGE_VERSION);
                        return -1;
                case ARG_SYSTEM:
                        ctx->bus_type = CTL_BUS_SYSTEM;
                        break;
                case ARG_USER:
                        ctx->bus_type = CTL_BUS_USER;
                        break;
                case ARG_BUS_ADDRESS:
                        ctx->bus_type = CTL_BUS_ADDRESS;
                        g_free(ctx->bus_address);
                        ctx->bus_address = g_strdup(optarg);
                        break;
                case ARG_JSON:
                        ctx->json = TRUE;
                        if (optarg == NULL || g_str_equal(optarg, "pretty")) {
                                ctx->json_pretty = TRUE;
                        } else if (g_str_equal(optarg, "short")) {
                                ctx->json_pretty = FALSE;
                        } else {
                                ctl_error("--json takes pretty or short, not '%s'", optarg);
                                return CTL_EXIT_USAGE;
                        }
                        break;
                case 'q':
                        ctx->quiet = TRUE;
                        break;
                case ARG_NO_PAGER:
                        ctx->no_pager = TRUE;
                        break;
                case 'p':
                        if (strchr(optarg, '=') == NULL || optarg[0] == '=') {
                                ctl_error("-p takes NAME=VALUE, not '%s'", optarg);
                                return CTL_EXIT_USAGE;
                        }
                        g_ptr_array_add(ctx->params, g_strdup(optarg));
                        break;
                case ARG_CREDENTIAL:
                        g_free(ctx->credential);
                        ctx->credential = g_strdup(optarg);
                        break;
                case ARG_GATEWAY_URL:
                        g_free(ctx->gateway_url);
                        ctx->gateway_url = g_strdup(optarg);
                        break;
                case ARG_DEBUG:
                        ctx->debug = TRUE;
                        break;
                case ARG_NO_FOLLOW:
                        ctx->no_follow = TRUE;
                        break;
                case 'f':
                        ctx->follow = TRUE;
                        break;
                case 'n': {
                        guint64 n = 0;

                        if (!g_ascii_string_to_unsigned(optarg, 10, 1, G_MAXUINT32, &n, NULL)) {
                                ctl_error("--limit takes a positive number, not '%s'", optarg);
                                return CTL_EXIT_USAGE;
                        }
                        ctx->limit = (guint)n;
                        break;
                }
                case 'o':
                        g_free(ctx->output);
                        ctx->output = g_strdup(optarg);
                        break;
                case ARG_STATUS:
                        g_free(ctx->status_filter);
                        ctx->status_filter = g_strdup(optarg);
                        break;
                case ARG_USERNAME:
                        g_free(ctx->username);
                        ctx->username = g_strdup(optarg);
                        break;
                case ARG_DESCRIPTION:
                        g_free(ctx->description);
                        ctx->description = g_strdup(optarg);
                        break;
                case ARG_TOKEN:
                        ctx->token = TRUE;
                        break;
                case ARG_NO_SECRET:
                        ctx->no_secret = TRUE;
                        break;
                case ARG_SINCE:
                        g_free(ctx->since);
                        ctx->since = g_strdup(optarg);
                        break;
                case ARG_UNTIL:
                        g_free(ctx->until);
                        ctx->until = g_strdup(optarg);
                        break;
                case ARG_PLAYBOOK:
                        g_free(ctx->playbook_filter);
                        ctx->playbook_filter = g_strdup(optarg);
                        break;
                case ARG_TEXT:
                        g_free(ctx->text_filter);
                        ctx->text_filter = g_strdup(optarg);
                        break;
                case ARG_ALL:
                        ctx->all = TRUE;
                        break;
                case ARG_PAGE_SIZE: {
                        guint64 n = 0;

                        if (!g_ascii_string_to_unsigned(optarg, 10, 1, G_MAXUINT32, &n, NULL)) {
                                ctl_error("--page-size takes a positive number, not '%s'", optarg);
                                return CTL_EXIT_USAGE;
                        }
                        ctx->page_size = (guint)n;
                        break;
                }
                case ARG_INFO:
                        ctx->info = TRUE;
                        break;
                case ARG_FILE:
                        if (strchr(optarg, '=') == NULL || optarg[0] == '=') {
                                ctl_error("--file takes NAME=LOCAL-PATH, not '%s'", optarg);
                                return CTL_EXIT_USAGE;
                        }
                        if (ctx->files == NULL)
                                ctx->files = g_ptr_array_new_with_free_func(g_free);
                        g_ptr_array_add(ctx->files, g_strdup(optarg));
                        break;
                case ':':
                        ctl_error("option '%s' needs a value", argv[optind - 1]);
                        return CTL_EXIT_USAGE;
                case '?':
                default:
                        if (optopt != 0)
                                ctl_error("unknown option '-%c' (see --help)", optopt);
                        else
                                ctl_error("unknown option '%s' (see --help)", argv[optind - 1]);
                        return CTL_EXIT_USAGE;
                }
        }
        return 0;
}

static void
ctl_context_clear(CtlContext *ctx)
{
        if (ctx->bus != NULL)
                sd_bus_flush_close_unref(ctx->bus);
        g_free(ctx->bus_address);
        g_ptr_array_unref(ctx->params);
        g_clear_pointer(&ctx->files, g_ptr_array_unref);
        g_free(ctx->credential);
        g_free(ctx->gateway_url);
        g_free(ctx->status_filter);
        g_free(ctx->username);
        g_free(ctx->description);
        g_free(ctx->since);
        g_free(ctx->until);
        g_free(ctx->playbook_filter);
        g_free(ctx->text_filter);
        g_free(ctx->output);
}

int
main(int argc, char **argv)
{
        CtlContext ctx = {
                .bus_type = CTL_BUS_SYSTEM,
                .params = g_ptr_array_new_with_free_func(g_free),
        };
        const CtlVerb *verb = NULL;
        int nargs;
        int r;

        setlocale(LC_ALL, "");
        r = ctl_main_parse_argv(&ctx, argc, argv);
        if (r != 0) {
                ctl_context_clear(&ctx);
                return r < 0 ? CTL_EXIT_OK : r;
        }
        ctx.color = isatty(STDOUT_FILENO) && g_getenv("NO_COLOR") == NULL &&
                    g_strcmp0(g_getenv("TERM"), "dumb") != 0;

        if (optind >= argc) {
                ctl_error("no command given (see --help)");
                ctl_context_clear(&ctx);
                return CTL_EXIT_USAGE;
        }
        for (gsize i = 0; i < G_N_ELEMENTS(verbs); i++) {
                if (g_str_equal(argv[optind], verbs[i].name))
                        verb = &verbs[i];
        }
        if (verb == NULL) {
                ctl_error("unknown command '%s' (see --help)", argv[optind]);
                ctl_context_clear(&ctx);
                return CTL_EXIT_USAGE;
        }
        nargs = argc - optind - 1;
        if (nargs < verb->min_args) {
                ctl_error("%s: too few arguments (see --help)", verb->name);
                r = CTL_EXIT_USAGE;
        } else if (verb->max_args >= 0 && nargs > verb->max_args) {
                ctl_error("%s: too many arguments (see --help)", verb->name);
                r = CTL_EXIT_USAGE;
        } else {
                /* argv[0] of the verb is its name, as for main(). */
                r = verb->func(&ctx, argc - optind, argv + optind);
        }
        fflush(stdout);
        ctl_context_clear(&ctx);
        return r;
}
