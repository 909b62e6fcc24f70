/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * itk-bench: measures ignition-toolkitd on a private bus and prints JSON.
 *
 *   cancel      Cancel call sent -> StatusChanged("cancelled") received, for a
 *               sleeping step, a busy python loop and a shell whose child
 *               ignores SIGTERM;
 *   throughput  steps per second of a long playbook of trivial steps, from
 *               StatusChanged("running") to Finished;
 *   memory      daemon VmRSS idle and with many paused executions;
 *   gateway     against the gateway simulator: cancel latency of
 *               gateway.wait_for_ready polling a gateway stuck in STARTING and
 *               of gateway.get_health blocked on a request the gateway never
 *               answers, then the wall time of many concurrent runs of the
 *               shipped health-check playbook;
 *   cancel_load the cancel latencies of `cancel` and `gateway` (sleep, python,
 *               shell, gateway poll, hung gateway request) with the machine
 *               idle, with a busy process per core, and while another run
 *               prints --chatty-lines lines (each checked to reach the client
 *               in order, and the stored log to end with the last); the
 *               daemon runs at the shipped unit's Nice= when the bench may
 *               lower a nice value (root), as it ships (--daemon-nice=N
 *               overrides; 0 is the case of a daemon started by hand);
 *               each case also says how long the daemon's main thread,
 *               dbus-daemon and the client were runnable without a CPU, and
 *               what is left once those waits are taken out;
 *   bad_input   time and peak RSS of the daemon answering the worst inputs
 *               under the input bounds (docs/limits.md): a YAML alias bomb,
 *               the largest accepted alias expansion and node count, 1 MiB
 *               of steps (valid, then each breaking three rules), and
 *               parameters at and past their bounds.
 *
 * The client is plain sd-bus on a hand-rolled poll() loop so that what is
 * measured is the daemon, not the client. Each section gets a fresh daemon
 * and state directory; the bus is shared. Targets are reported next to the
 * numbers; only errors (a crash, a timeout, a wrong final status) make the
 * exit status non-zero.
 */
#define _GNU_SOURCE 1 /* pipe2, nftw, signalfd, strsignal */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <glib.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#define ITK_NAME "org.ignition.Toolkit"
#define ITK_PATH "/org/ignition/Toolkit"
#define ITK_MANAGER_IFACE "org.ignition.Toolkit.Manager"
#define ITK_EXECUTION_IFACE "org.ignition.Toolkit.Execution"
#define ITK_SIGNAL_MATCH "type='signal',sender='" ITK_NAME "',path_namespace='" ITK_PATH "'"

/* What a script prints once it is really running. */
#define READY_TOKEN "itk-bench-ready"

/* The simulator's one API token (--token=NAME:KEY). */
#define SIM_TOKEN "itk-bench:itk-bench-key"
/* How long gateway.get_health's request hangs before the bench cancels it. */
#define GATEWAY_HANG_USEC (200 * 1000ULL)

/* Targets (issue "Core", point 8; gateway: issue 5, point 6). */
#define TARGET_CANCEL_P99_MS 5.0
#define TARGET_STEPS_PER_SEC 20000.0
#define TARGET_IDLE_RSS_KB 10240
#define TARGET_PER_EXECUTION_KB 30.0

#define MSEC_PER_SEC 1000ULL
#define USEC_PER_SEC 1000000ULL
#define NSEC_PER_USEC 1000ULL

#define DAEMON_START_TIMEOUT_USEC (15 * USEC_PER_SEC)
#define DAEMON_STOP_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define STEP_START_TIMEOUT_USEC (30 * USEC_PER_SEC)
#define CANCEL_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define THROUGHPUT_TIMEOUT_USEC (300 * USEC_PER_SEC)
#define MEMORY_TIMEOUT_USEC (180 * USEC_PER_SEC)
#define CONCURRENT_TIMEOUT_USEC (300 * USEC_PER_SEC)
#define HTTP_TIMEOUT_USEC (10 * USEC_PER_SEC)
#define SIM_STATE_TIMEOUT_USEC (5 * USEC_PER_SEC)
#define CALL_TIMEOUT_USEC (60 * USEC_PER_SEC)
#define IDLE_WINDOW_USEC (1 * USEC_PER_SEC)
#define REAP_GRACE_USEC (200 * 1000ULL)

G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_message, sd_bus_message_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_slot, sd_bus_slot_unref)

static inline void
bench_bus_error_clear(sd_bus_error *e)
{
        sd_bus_error_free(e);
}
#define _bench_cleanup_bus_error_ __attribute__((cleanup(bench_bus_error_clear)))

typedef enum {
        SECTION_CANCEL = 1 << 0,
        SECTION_THROUGHPUT = 1 << 1,
        SECTION_MEMORY = 1 << 2,
        SECTION_GATEWAY = 1 << 3,
        SECTION_BAD_INPUT = 1 << 4,
        SECTION_CANCEL_LOAD = 1 << 5,
} Section;

/* What the signal handler saw of the one execution being watched. */
typedef struct {
        char *path;
        bool step_running;
        bool ready;
        bool cancelled;
        bool finished;
        char *final_status;
        char *final_error;
        uint64_t t_running;
        uint64_t t_cancelled;
        /* The run delays (ns) of the processes on the cancel's path (the
         * daemon's main thread, dbus-daemon, us), read as "cancelled" came. */
        uint64_t delays_at_cancel[3];
        uint64_t t_finished;
        guint n_step_signals;
        /* Cancel's reply: 0 pending, 1 ok, -1 error. */
        int cancel_reply;
        char *cancel_error;
} Watch;

typedef struct {
        /* options */
        guint runs;
        guint steps;
        guint executions;
        guint concurrent;
        guint sections;
        gboolean quick;
        gboolean keep;
        gboolean no_sandbox; /* scripts unconfined, the way they ran before the sandbox */
        char *daemon_path;
        char *dbus_config;
        char *gateway_sim_path;
        char *health_playbook;
        char *unit_path;        /* the daemon's systemd unit, for its Nice= */
        bool daemon_nice_given; /* --daemon-nice=N: N in every section */
        int daemon_nice_option;
        int daemon_nice; /* what daemon_start() gives the next daemon */
        /* --own-sessions: the bus, the daemon and each CPU burner in a
         * session of its own, as systemd starts services and as other users'
         * jobs run, so that the kernel's autogroups split them as in
         * production (default: all in the bench's session, one group). */
        bool own_sessions;
        /* When set (cancel_load): per run, the time each process on the
         * cancel's path was runnable without a CPU, in ms. */
        double *daemon_main_waits;
        double *bus_waits;
        double *client_waits;

        /* the scene */
        char *tmpdir;
        char *bus_address;
        pid_t bus_pid;
        int bus_pidfd;
        int bus_stdout;
        pid_t daemon_pid;
        int daemon_pidfd;
        guint daemon_serial;
        char *daemon_log;
        sd_bus *bus;
        /* Sends Cancel and gets only StatusChanged: the cancel latency is not
         * measured behind the chatty run's log, which @bus reads. */
        sd_bus *cancel_bus;
        int sigfd;
        bool interrupted;
        bool daemon_owns_name;
        pid_t sim_pid;
        int sim_pidfd;
        int sim_stdout;
        guint sim_port;
        char *sim_log;

        /* signal bookkeeping */
        Watch watch;
        guint n_paused;
        guint n_cancelled;
        guint n_finished_other;
        guint n_completed_other;
        uint64_t t_last_finished_other;
        char *first_other_failure;
        /* When set: path -> time of its Finished, for runs not watched. */
        GHashTable *finish_times;
        guint n_cancel_errors;

        GPtrArray *errors;
        bool targets_met;

        /* cancel under load */
        guint chatty_lines;
        guint load_runs; /* cancel runs per case and load */
        guint load;      /* Load */
        pid_t burners[8];
        guint n_burners;
        struct {
                char *path;
                guint lines;    /* numbered lines seen */
                guint batches;  /* LogBatch signals that carried them */
                guint disorder; /* ...not the number expected */
                bool finished;
                char *final_status;
                guint runs;
                guint verified;
        } chatty;
} Bench;

/* --- small helpers ----------------------------------------------------------- */

static uint64_t
now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / NSEC_PER_USEC;
}

static G_GNUC_PRINTF(2, 3) int bench_error(Bench *b, const char *format, ...)
{
        va_list args;
        char *text;

        va_start(args, format);
        text = g_strdup_vprintf(format, args);
        va_end(args);
        g_printerr("itk-bench: %s\n", text);
        g_ptr_array_add(b->errors, text);
        return -1;
}

static void
json_append_string(GString *json, const char *text)
{
        g_string_append_c(json, '"');
        for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
                switch (*p) {
                case '"':
                        g_string_append(json, "\\\"");
                        break;
                case '\\':
                        g_string_append(json, "\\\\");
                        break;
                case '\n':
                        g_string_append(json, "\\n");
                        break;
                case '\t':
                        g_string_append(json, "\\t");
                        break;
                default:
                        if (*p < 0x20)
                                g_string_append_printf(json, "\\u%04x", *p);
                        else
                                g_string_append_c(json, (char)*p);
                }
        }
        g_string_append_c(json, '"');
}

/* Numbers that are not finite are not JSON: print null for them. */
static void
json_append_double(GString *json, double value, int decimals)
{
        if (!isfinite(value))
                g_string_append(json, "null");
        else
                g_string_append_printf(json, "%.*f", decimals, value);
}

static int
compare_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y ? 1 : 0;
}

/* Nearest-rank percentile of sorted @values. */
static double
percentile(const double *values, guint n, double q)
{
        guint rank;

        if (n == 0)
                return NAN;
        rank = (guint)ceil(q * n);
        if (rank < 1)
                rank = 1;
        if (rank > n)
                rank = n;
        return values[rank - 1];
}

/* A "Field:   123 kB" line of /proc/PID/@file (status, smaps_rollup). */
static long
read_proc_kb(pid_t pid, const char *file, const char *field)
{
        g_autofree char *path = g_strdup_printf("/proc/%d/%s", (int)pid, file);
        g_autofree char *contents = NULL;
        size_t field_len = strlen(field);

        if (!g_file_get_contents(path, &contents, NULL, NULL))
                return -1;
        for (char *line = contents; line != NULL && *line != '\0';) {
                char *next = strchr(line, '\n');

                if (strncmp(line, field, field_len) == 0 && line[field_len] == ':')
                        return strtol(line + field_len + 1, NULL, 10);
                line = next != NULL ? next + 1 : NULL;
        }
        return -1;
}

/* utime + stime of @pid in seconds, from /proc/PID/stat. */
static double
read_cpu_seconds(pid_t pid)
{
        g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);
        g_autofree char *contents = NULL;
        unsigned long utime, stime;
        char *p;

        if (!g_file_get_contents(path, &contents, NULL, NULL))
                return NAN;
        /* The command name may hold spaces and parentheses: skip to the last ')'. */
        p = strrchr(contents, ')');
        if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                                &utime, &stime) != 2)
                return NAN;
        return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* Nanoseconds the main thread of @pid spent runnable but waiting for a CPU
 * (the second field of its schedstat), or 0 when unknown. */
static uint64_t
read_run_delay_ns(pid_t pid)
{
        g_autofree char *path = g_strdup_printf("/proc/%d/task/%d/schedstat", (int)pid, (int)pid);
        g_autofree char *contents = NULL;
        unsigned long long run = 0, delay = 0;

        if (pid <= 0 || !g_file_get_contents(path, &contents, NULL, NULL) ||
            sscanf(contents, "%llu %llu", &run, &delay) != 2)
                return 0;
        return delay;
}

/* Milliseconds waited for a CPU between two readings of a run delay. */
static double
delay_ms(uint64_t before, uint64_t after)
{
        return after > before ? (double)(after - before) / 1e6 : 0;
}

/* The kernel's CONFIG_HZ from its build configuration (Debian ships it in
 * /boot; some kernels expose /proc/config.gz), or 0 when unknown. A woken
 * task the scheduler does not let preempt the running one waits for the next
 * tick: 1000/HZ ms. */
static long
read_kernel_hz(const char *release)
{
        g_autofree char *boot = g_strdup_printf("/boot/config-%s", release);
        g_autofree char *contents = NULL;
        const char *line;

        if (!g_file_get_contents(boot, &contents, NULL, NULL)) {
                const char *argv[] = { "gzip", "-dc", "/proc/config.gz", NULL };
                int status = 0;

                if (!g_file_test(argv[2], G_FILE_TEST_EXISTS) ||
                    !g_spawn_sync(NULL, (char **)argv, NULL,
                                  G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                                  &contents, NULL, &status, NULL) ||
                    !g_spawn_check_wait_status(status, NULL))
                        return 0;
        }
        line = strstr(contents, "\nCONFIG_HZ=");
        return line != NULL ? strtol(line + strlen("\nCONFIG_HZ="), NULL, 10) : 0;
}

/* Appends "scheduler":{...}: what decides how long a woken process waits for
 * a CPU that another one is using (docs/performance.md). null: unknown. */
static void
append_scheduler(GString *out, const char *release)
{
        g_autofree char *autogroup = NULL;
        g_autofree char *sched = NULL;
        const char *slice = NULL;
        long hz = read_kernel_hz(release);

        g_string_append(out, "\"scheduler\":{\"hz\":");
        if (hz > 0)
                g_string_append_printf(out, "%ld", hz);
        else
                g_string_append(out, "null");
        g_string_append(out, ",\"autogroup\":");
        if (g_file_get_contents("/proc/sys/kernel/sched_autogroup_enabled", &autogroup, NULL, NULL))
                g_string_append(out, autogroup[0] == '1' ? "true" : "false");
        else
                g_string_append(out, "null");
        /* EEVDF (Linux 6.6+) shows each task's slice; CFS does not. */
        if (g_file_get_contents("/proc/self/sched", &sched, NULL, NULL))
                slice = strstr(sched, "\nse.slice");
        g_string_append(out, ",\"base_slice_us\":");
        if (slice != NULL && (slice = strchr(slice, ':')) != NULL)
                json_append_double(out, g_ascii_strtod(slice + 1, NULL) / 1000.0, 1);
        else
                g_string_append(out, "null");
        g_string_append(out, "},");
}

/* The 1-minute load average: other work on the machine skews latencies. */
static double
read_loadavg(void)
{
        g_autofree char *contents = NULL;

        if (!g_file_get_contents("/proc/loadavg", &contents, NULL, NULL))
                return NAN;
        return g_ascii_strtod(contents, NULL);
}

/* Field 19 of /proc/PID/stat: the nice value @pid really runs at. */
static bool
read_nice(pid_t pid, int *ret)
{
        g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);
        g_autofree char *contents = NULL;
        const char *p;
        int field = 3;

        if (pid <= 0 || !g_file_get_contents(path, &contents, NULL, NULL))
                return false;
        /* After the command's closing parenthesis: field 3 (state) on. */
        p = strrchr(contents, ')');
        if (p == NULL)
                return false;
        p++;
        while (*p != '\0' && field < 19) {
                while (*p == ' ')
                        p++;
                while (*p != '\0' && *p != ' ')
                        p++;
                field++;
        }
        return sscanf(p, " %d", ret) == 1;
}

/* Nice= of the daemon's unit (0 when it sets none or cannot be read). */
static int
read_unit_nice(const char *unit_path)
{
        g_autofree char *contents = NULL;
        g_auto(GStrv) lines = NULL;
        int nice = 0;

        if (unit_path == NULL || !g_file_get_contents(unit_path, &contents, NULL, NULL))
                return 0;
        lines = g_strsplit(contents, "\n", -1);
        for (guint i = 0; lines[i] != NULL; i++) {
                if (g_str_has_prefix(lines[i], "Nice="))
                        nice = (int)g_ascii_strtoll(lines[i] + strlen("Nice="), NULL, 10);
        }
        return nice;
}

/* May this process start a child at @nice (root, CAP_SYS_NICE, RLIMIT_NICE)? */
static bool
can_use_nice(int nice)
{
        int status = 0;
        pid_t pid;

        if (nice >= 0)
                return true;
        pid = fork();
        if (pid < 0)
                return false;
        if (pid == 0)
                _exit(setpriority(PRIO_PROCESS, 0, nice) == 0 ? 0 : 1);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int
remove_entry_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)remove(path);
        return 0;
}

static int
pidfd_open_compat(pid_t pid)
{
#ifdef SYS_pidfd_open
        return (int)syscall(SYS_pidfd_open, pid, 0);
#else
        errno = ENOSYS;
        return -1;
#endif
}

/* --- processes ---------------------------------------------------------------- */

/* Forks @argv with stdout on @stdout_fd (or the log file @log) and stderr on
 * @log; the child dies with us (PR_SET_PDEATHSIG) so nothing outlives a
 * killed bench. */
static pid_t spawn_nice(Bench *b, const char *const *argv, int stdout_fd, const char *log,
                        int nice);

static pid_t
spawn(Bench *b, const char *const *argv, int stdout_fd, const char *log)
{
        return spawn_nice(b, argv, stdout_fd, log, 0);
}

/* As spawn(), at nice value @nice (set before exec, so that every thread of
 * the program has it, as with systemd's Nice=). */
static pid_t
spawn_nice(Bench *b, const char *const *argv, int stdout_fd, const char *log, int nice)
{
        int log_fd = -1;
        pid_t pid;

        if (log != NULL) {
                log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (log_fd < 0) {
                        bench_error(b, "cannot open %s: %s", log, g_strerror(errno));
                        return -1;
                }
        }
        pid = fork();
        if (pid < 0) {
                bench_error(b, "fork: %s", g_strerror(errno));
                if (log_fd >= 0)
                        close(log_fd);
                return -1;
        }
        if (pid == 0) {
                sigset_t none;
                int null_fd = open("/dev/null", O_RDONLY);

                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                signal(SIGPIPE, SIG_DFL);
                /* Our own group: a Ctrl-C meant for the bench must not reach
                 * the bus and the daemon before the bench stops them in order.
                 * A session is a group too, and a scheduling group (autogroup). */
                if (b->own_sessions)
                        (void)setsid();
                else
                        (void)setpgid(0, 0);
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() == 1)
                        _exit(127);
                if (null_fd >= 0)
                        dup2(null_fd, STDIN_FILENO);
                if (stdout_fd >= 0)
                        dup2(stdout_fd, STDOUT_FILENO);
                else if (log_fd >= 0)
                        dup2(log_fd, STDOUT_FILENO);
                if (log_fd >= 0)
                        dup2(log_fd, STDERR_FILENO);
                /* The daemon must not talk to a service manager running us. */
                unsetenv("NOTIFY_SOCKET");
                unsetenv("DBUS_SESSION_BUS_ADDRESS");
                if (nice != 0 && setpriority(PRIO_PROCESS, 0, nice) < 0) {
                        fprintf(stderr, "cannot set nice %d: %s\n", nice, strerror(errno));
                        _exit(127);
                }
                execv(argv[0], (char *const *)argv);
                fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        if (log_fd >= 0)
                close(log_fd);
        return pid;
}

static const char *
describe_wait_status(int status, char *buffer, size_t size)
{
        if (WIFEXITED(status))
                snprintf(buffer, size, "exited with status %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                snprintf(buffer, size, "killed by signal %d (%s)%s", WTERMSIG(status),
                         strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
        else
                snprintf(buffer, size, "stopped (status 0x%x)", status);
        return buffer;
}

/* Last lines of the daemon's log, for error messages. */
static void
print_daemon_log_tail(Bench *b)
{
        g_autofree char *contents = NULL;
        gsize length;
        const char *start;
        int lines = 0;

        if (b->daemon_log == NULL || !g_file_get_contents(b->daemon_log, &contents, &length, NULL))
                return;
        start = contents + length;
        while (start > contents && lines <= 15) {
                start--;
                if (*start == '\n')
                        lines++;
        }
        g_printerr("itk-bench: last lines of %s:\n%s\n", b->daemon_log, start);
}

/* Non-blocking check that the daemon still runs; reaps it if not. */
static int
daemon_check_alive(Bench *b)
{
        char text[96];
        int status;
        pid_t r;

        if (b->daemon_pid <= 0)
                return 0;
        r = waitpid(b->daemon_pid, &status, WNOHANG);
        if (r == 0)
                return 0;
        b->daemon_pid = 0;
        print_daemon_log_tail(b);
        return bench_error(b, "the daemon died: %s",
                           r < 0 ? g_strerror(errno)
                                 : describe_wait_status(status, text, sizeof(text)));
}

/* Waits for @pid to exit within @timeout; -ETIMEDOUT otherwise. */
static int
wait_exit(pid_t pid, int pidfd, uint64_t timeout, int *status)
{
        uint64_t deadline = now_usec() + timeout;

        for (;;) {
                pid_t r = waitpid(pid, status, WNOHANG);
                uint64_t now;

                if (r == pid)
                        return 0;
                if (r < 0)
                        return -errno;
                now = now_usec();
                if (now >= deadline)
                        return -ETIMEDOUT;
                if (pidfd >= 0) {
                        struct pollfd p = { .fd = pidfd, .events = POLLIN };
                        (void)poll(&p, 1, (int)((deadline - now) / MSEC_PER_SEC) + 1);
                } else {
                        /* No pidfd (old kernel): a short nap is the only way. */
                        g_usleep(10 * 1000);
                }
        }
}

static void
stop_process(pid_t *pid, int *pidfd, int sig, uint64_t timeout, int *status)
{
        int local_status = 0;

        if (*pid > 0) {
                (void)kill(*pid, sig);
                if (wait_exit(*pid, *pidfd, timeout, &local_status) < 0) {
                        (void)kill(*pid, SIGKILL);
                        (void)waitpid(*pid, &local_status, 0);
                        local_status = -1;
                }
                *pid = 0;
        }
        if (*pidfd >= 0) {
                close(*pidfd);
                *pidfd = -1;
        }
        if (status != NULL)
                *status = local_status;
}

/* --- the bus ------------------------------------------------------------------- */

static void
watch_reset(Watch *w, const char *path)
{
        g_free(w->path);
        g_free(w->final_status);
        g_free(w->final_error);
        g_free(w->cancel_error);
        memset(w, 0, sizeof(*w));
        w->path = g_strdup(path);
}

/* The run delays (ns) of the processes on a cancel's path: the daemon's main
 * thread, dbus-daemon and this one. */
static void
read_path_delays(Bench *b, uint64_t ret[3])
{
        ret[0] = read_run_delay_ns(b->daemon_pid);
        ret[1] = read_run_delay_ns(b->bus_pid);
        ret[2] = read_run_delay_ns(getpid());
}

/* "cancelled" came for the watched run. The delays are read here, before
 * its time is taken, not once the wait for it returns: a client that
 * then waits for a CPU itself would count the others' waits of that time
 * as well (100 ms and more behind the burners, longer than the cancel). */
static void
watch_mark_cancelled(Bench *b)
{
        read_path_delays(b, b->watch.delays_at_cancel);
        b->watch.cancelled = true;
        b->watch.t_cancelled = now_usec();
}

/* A line of the chatty run: its numbered lines must come in order. */
static void
chatty_count(Bench *b, const char *text)
{
        if (!g_ascii_isdigit(text[0]))
                return;
        if (strtoul(text, NULL, 10) != b->chatty.lines + 1)
                b->chatty.disorder++;
        b->chatty.lines++;
}

static int
execution_signal_cb(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Bench *b = userdata;
        uint64_t now = now_usec();
        const char *path = sd_bus_message_get_path(m);
        const char *member = sd_bus_message_get_member(m);
        Watch *w = &b->watch;
        bool watched;

        if (!sd_bus_message_has_signature(m, "ss") && !sd_bus_message_has_signature(m, "isss") &&
            !sd_bus_message_has_signature(m, "tuss") && !sd_bus_message_has_signature(m, "a(tuss)"))
                return 0;
        if (g_strcmp0(sd_bus_message_get_interface(m), ITK_EXECUTION_IFACE) != 0 || path == NULL ||
            member == NULL)
                return 0;
        watched = w->path != NULL && strcmp(path, w->path) == 0;
        if (b->chatty.path != NULL && strcmp(path, b->chatty.path) == 0) {
                const char *text, *step_id, *status;
                uint64_t usec;
                uint32_t priority;

                if (strcmp(member, "Log") == 0 &&
                    sd_bus_message_read(m, "tuss", &usec, &priority, &step_id, &text) >= 0) {
                        chatty_count(b, text);
                } else if (strcmp(member, "LogBatch") == 0 &&
                           sd_bus_message_enter_container(m, 'a', "(tuss)") >= 0) {
                        b->chatty.batches++;
                        while (sd_bus_message_read(m, "(tuss)", &usec, &priority, &step_id, &text) >
                               0)
                                chatty_count(b, text);
                } else if (strcmp(member, "Finished") == 0 &&
                           sd_bus_message_read(m, "ss", &status, &text) >= 0) {
                        b->chatty.finished = true;
                        b->chatty.final_status = g_strdup(status);
                }
                return 0;
        }

        if (strcmp(member, "StatusChanged") == 0) {
                const char *status, *previous;

                if (sd_bus_message_read(m, "ss", &status, &previous) < 0)
                        return 0;
                if (strcmp(status, "paused") == 0)
                        b->n_paused++;
                else if (strcmp(status, "cancelled") == 0)
                        b->n_cancelled++;
                if (!watched)
                        return 0;
                if (strcmp(status, "running") == 0 && w->t_running == 0)
                        w->t_running = now;
                else if (strcmp(status, "cancelled") == 0 && !w->cancelled)
                        watch_mark_cancelled(b);
        } else if (strcmp(member, "StepChanged") == 0) {
                const char *step_id, *status, *message;
                int32_t index;

                if (!watched ||
                    sd_bus_message_read(m, "isss", &index, &step_id, &status, &message) < 0)
                        return 0;
                w->n_step_signals++;
                if (strcmp(status, "running") == 0)
                        w->step_running = true;
        } else if (strcmp(member, "Log") == 0) {
                const char *step_id, *message;
                uint64_t usec;
                uint32_t priority;

                if (!watched ||
                    sd_bus_message_read(m, "tuss", &usec, &priority, &step_id, &message) < 0)
                        return 0;
                if (strstr(message, READY_TOKEN) != NULL)
                        w->ready = true;
        } else if (strcmp(member, "LogBatch") == 0) {
                const char *step_id, *message;
                uint64_t usec;
                uint32_t priority;

                if (!watched || sd_bus_message_enter_container(m, 'a', "(tuss)") < 0)
                        return 0;
                while (sd_bus_message_read(m, "(tuss)", &usec, &priority, &step_id, &message) > 0)
                        if (strstr(message, READY_TOKEN) != NULL)
                                w->ready = true;
        } else if (strcmp(member, "Finished") == 0) {
                const char *status, *error;

                if (sd_bus_message_read(m, "ss", &status, &error) < 0)
                        return 0;
                if (!watched) {
                        b->n_finished_other++;
                        b->t_last_finished_other = now;
                        if (b->finish_times != NULL)
                                g_hash_table_insert(b->finish_times, g_strdup(path),
                                                    g_memdup2(&now, sizeof(now)));
                        if (strcmp(status, "completed") == 0)
                                b->n_completed_other++;
                        else if (b->first_other_failure == NULL)
                                b->first_other_failure =
                                        g_strdup_printf("%s %s: %s", path, status, error);
                        return 0;
                }
                w->finished = true;
                w->t_finished = now;
                w->final_status = g_strdup(status);
                w->final_error = g_strdup(error);
        }
        return 0;
}

/* StatusChanged on the cancel connection, which subscribes to nothing else. */
static int
cancel_status_cb(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Bench *b = userdata;
        Watch *w = &b->watch;
        const char *path = sd_bus_message_get_path(m);
        const char *status, *previous;

        if (w->path == NULL || path == NULL || strcmp(path, w->path) != 0 ||
            sd_bus_message_read(m, "ss", &status, &previous) < 0)
                return 0;
        if (strcmp(status, "cancelled") == 0 && !w->cancelled)
                watch_mark_cancelled(b);
        return 0;
}

static int
name_owner_changed_cb(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Bench *b = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) >= 0 &&
            strcmp(name, ITK_NAME) == 0)
                b->daemon_owns_name = new_owner[0] != '\0';
        return 0;
}

typedef bool (*Predicate)(Bench *b, gconstpointer data);

/* Runs the bus until @predicate holds. Returns -ETIMEDOUT after @timeout,
 * -EINTR on SIGINT/SIGTERM/SIGHUP, -ECHILD if the daemon died. */
static int
bench_wait(Bench *b, Predicate predicate, gconstpointer data, uint64_t timeout)
{
        uint64_t deadline = now_usec() + timeout;

        for (;;) {
                struct pollfd fds[4];
                uint64_t bus_timeout, now;
                int n = 0, r, events, poll_ms;

                if (predicate(b, data))
                        return 0;
                /* The cancel connection first: its StatusChanged is not
                 * processed behind what queued on the other. */
                r = b->cancel_bus != NULL ? sd_bus_process(b->cancel_bus, NULL) : 0;
                if (r < 0)
                        return bench_error(b, "processing the bus: %s", g_strerror(-r)), r;
                if (r > 0)
                        continue;
                r = sd_bus_process(b->bus, NULL);
                if (r < 0)
                        return bench_error(b, "processing the bus: %s", g_strerror(-r)), r;
                if (r > 0)
                        continue;
                if (predicate(b, data))
                        return 0;

                now = now_usec();
                if (now >= deadline)
                        return -ETIMEDOUT;
                poll_ms = (int)((deadline - now + MSEC_PER_SEC - 1) / MSEC_PER_SEC);
                r = sd_bus_get_timeout(b->bus, &bus_timeout);
                if (r > 0 && bus_timeout != UINT64_MAX) {
                        struct timespec ts;
                        uint64_t mono;

                        /* sd-bus timeouts are CLOCK_MONOTONIC absolute too. */
                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        mono = (uint64_t)ts.tv_sec * USEC_PER_SEC +
                               (uint64_t)ts.tv_nsec / NSEC_PER_USEC;
                        if (bus_timeout <= mono)
                                poll_ms = 0;
                        else if ((bus_timeout - mono) / MSEC_PER_SEC < (uint64_t)poll_ms)
                                poll_ms = (int)((bus_timeout - mono + MSEC_PER_SEC - 1) /
                                                MSEC_PER_SEC);
                }
                events = sd_bus_get_events(b->bus);
                if (events < 0)
                        return bench_error(b, "bus events: %s", g_strerror(-events)), events;
                fds[n++] = (struct pollfd){ .fd = sd_bus_get_fd(b->bus), .events = (short)events };
                fds[n++] = (struct pollfd){ .fd = b->sigfd, .events = POLLIN };
                if (b->daemon_pidfd >= 0)
                        fds[n++] = (struct pollfd){ .fd = b->daemon_pidfd, .events = POLLIN };
                else if (b->daemon_pid > 0 && poll_ms > 100)
                        poll_ms = 100; /* no pidfd: look at the daemon now and then */
                if (b->cancel_bus != NULL) {
                        int cancel_events = sd_bus_get_events(b->cancel_bus);

                        if (cancel_events < 0)
                                return bench_error(b, "bus events: %s", g_strerror(-cancel_events)),
                                       cancel_events;
                        fds[n++] = (struct pollfd){ .fd = sd_bus_get_fd(b->cancel_bus),
                                                    .events = (short)cancel_events };
                        /* Its own timeouts (Cancel's reply) are not waited for:
                         * the reply is checked with the run's end. */
                }
                r = poll(fds, (nfds_t)n, poll_ms);
                if (r < 0 && errno != EINTR) {
                        int saved = errno;
                        return bench_error(b, "poll: %s", g_strerror(saved)), -saved;
                }
                if (fds[1].revents & POLLIN) {
                        struct signalfd_siginfo info;

                        if (read(b->sigfd, &info, sizeof(info)) == sizeof(info))
                                g_printerr("itk-bench: interrupted by signal %u\n", info.ssi_signo);
                        b->interrupted = true;
                        return -EINTR;
                }
                if ((b->daemon_pidfd >= 0 && (fds[2].revents & POLLIN)) || b->daemon_pidfd < 0) {
                        if (daemon_check_alive(b) < 0)
                                return -ECHILD;
                }
        }
}

static const char *
wait_error_text(int r)
{
        switch (r) {
        case -ETIMEDOUT:
                return "timed out";
        case -EINTR:
                return "interrupted";
        case -ECHILD:
                return "the daemon died";
        default:
                return g_strerror(-r);
        }
}

static bool
daemon_owns_name_pred(Bench *b, gconstpointer data)
{
        return b->daemon_owns_name;
}

static int
bus_start(Bench *b)
{
        g_autofree char *socket = g_build_filename(b->tmpdir, "bus", NULL);
        g_autofree char *address = g_strdup_printf("--address=unix:path=%s", socket);
        g_autofree char *config = g_strdup_printf("--config-file=%s", b->dbus_config);
        g_autofree char *log = g_build_filename(b->tmpdir, "dbus-daemon.log", NULL);
        const char *argv[] = { "/usr/bin/dbus-daemon", config,     address,
                               "--print-address=1",    "--nofork", NULL };
        char line[1024];
        size_t len = 0;
        uint64_t deadline = now_usec() + DAEMON_START_TIMEOUT_USEC;
        int pipe_fds[2];
        int r;

        if (!g_file_test(argv[0], G_FILE_TEST_IS_EXECUTABLE))
                argv[0] = "dbus-daemon";
        if (g_path_is_absolute(argv[0]) == FALSE) {
                g_autofree char *found = g_find_program_in_path("dbus-daemon");

                if (found == NULL)
                        return bench_error(b, "dbus-daemon is not installed");
                argv[0] = g_intern_string(found);
        }
        if (pipe2(pipe_fds, O_CLOEXEC) < 0)
                return bench_error(b, "pipe: %s", g_strerror(errno));
        b->bus_pid = spawn(b, argv, pipe_fds[1], log);
        close(pipe_fds[1]);
        if (b->bus_pid < 0) {
                close(pipe_fds[0]);
                b->bus_pid = 0;
                return -1;
        }
        b->bus_pidfd = pidfd_open_compat(b->bus_pid);
        b->bus_stdout = pipe_fds[0];

        /* The address line says the bus is listening. */
        while (len < sizeof(line) - 1 && memchr(line, '\n', len) == NULL) {
                struct pollfd p = { .fd = b->bus_stdout, .events = POLLIN };
                uint64_t now = now_usec();
                ssize_t n;

                if (now >= deadline)
                        return bench_error(b, "dbus-daemon did not print its address");
                r = poll(&p, 1, (int)((deadline - now) / MSEC_PER_SEC) + 1);
                if (r <= 0)
                        continue;
                n = read(b->bus_stdout, line + len, sizeof(line) - 1 - len);
                if (n <= 0)
                        return bench_error(b, "dbus-daemon exited at start; see %s", log);
                len += (size_t)n;
        }
        line[len] = '\0';
        g_strchomp(line);
        b->bus_address = g_strdup(line);

        r = sd_bus_new(&b->bus);
        if (r >= 0)
                r = sd_bus_set_address(b->bus, b->bus_address);
        if (r >= 0)
                r = sd_bus_set_bus_client(b->bus, 1);
        if (r >= 0)
                r = sd_bus_start(b->bus);
        if (r < 0)
                return bench_error(b, "cannot connect to %s: %s", b->bus_address, g_strerror(-r));

        /* Matches first, then anything that could emit (DESIGN.md §4). */
        r = sd_bus_add_match(b->bus, NULL, ITK_SIGNAL_MATCH, execution_signal_cb, b);
        if (r >= 0)
                r = sd_bus_add_match(b->bus, NULL,
                                     "type='signal',sender='org.freedesktop.DBus',"
                                     "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
                                     "arg0='" ITK_NAME "'",
                                     name_owner_changed_cb, b);
        if (r < 0)
                return bench_error(b, "cannot add matches: %s", g_strerror(-r));

        r = sd_bus_new(&b->cancel_bus);
        if (r >= 0)
                r = sd_bus_set_address(b->cancel_bus, b->bus_address);
        if (r >= 0)
                r = sd_bus_set_bus_client(b->cancel_bus, 1);
        if (r >= 0)
                r = sd_bus_start(b->cancel_bus);
        if (r >= 0)
                r = sd_bus_add_match(b->cancel_bus, NULL,
                                     "type='signal',sender='" ITK_NAME
                                     "',interface='" ITK_EXECUTION_IFACE
                                     "',member='StatusChanged',path_namespace='" ITK_PATH "'",
                                     cancel_status_cb, b);
        if (r < 0)
                return bench_error(b, "cannot set up the cancel connection: %s", g_strerror(-r));
        return 0;
}

static int
write_config(Bench *b)
{
        g_autofree char *config_dir = g_build_filename(b->tmpdir, "config", NULL);
        g_autofree char *playbooks = g_build_filename(b->tmpdir, "playbooks", NULL);
        g_autofree char *conf = g_build_filename(config_dir, "toolkit.conf", NULL);
        g_autoptr(GError) error = NULL;
        g_autofree char *text = g_strdup_printf("# written by itk-bench\n"
                                                "[Daemon]\n"
                                                "MaxConcurrentExecutions=2000\n"
                                                "MaxExecutionsPerCaller=0\n"
                                                "[Sandbox]\n"
                                                "Enabled=%s\n",
                                                b->no_sandbox ? "false" : "true");

        if (g_mkdir_with_parents(config_dir, 0755) < 0 || g_mkdir_with_parents(playbooks, 0755) < 0)
                return bench_error(b, "cannot create folders in %s: %s", b->tmpdir,
                                   g_strerror(errno));
        if (!g_file_set_contents(conf, text, -1, &error))
                return bench_error(b, "%s", error->message);
        return 0;
}

/* A fresh daemon with a fresh state directory; returns once it owns its name. */
static int
daemon_start(Bench *b)
{
        g_autofree char *state = NULL;
        g_autofree char *bus_arg = g_strdup_printf("--bus-address=%s", b->bus_address);
        g_autofree char *state_arg = NULL;
        g_autofree char *config_arg = g_strdup_printf("--config-dir=%s/config", b->tmpdir);
        g_autofree char *playbook_arg = g_strdup_printf("--playbook-path=%s/playbooks", b->tmpdir);
        const char *argv[6];
        int r;

        b->daemon_serial++;
        state = g_strdup_printf("%s/state-%u", b->tmpdir, b->daemon_serial);
        state_arg = g_strdup_printf("--state-dir=%s", state);
        g_free(b->daemon_log);
        b->daemon_log = g_strdup_printf("%s/daemon-%u.log", b->tmpdir, b->daemon_serial);
        if (g_mkdir_with_parents(state, 0700) < 0)
                return bench_error(b, "cannot create %s: %s", state, g_strerror(errno));

        argv[0] = b->daemon_path;
        argv[1] = bus_arg;
        argv[2] = state_arg;
        argv[3] = config_arg;
        argv[4] = playbook_arg;
        argv[5] = NULL;
        b->daemon_owns_name = false;
        b->daemon_pid = spawn_nice(b, argv, -1, b->daemon_log, b->daemon_nice);
        if (b->daemon_pid < 0) {
                b->daemon_pid = 0;
                return -1;
        }
        b->daemon_pidfd = pidfd_open_compat(b->daemon_pid);

        r = bench_wait(b, daemon_owns_name_pred, NULL, DAEMON_START_TIMEOUT_USEC);
        if (r < 0) {
                if (r == -ETIMEDOUT)
                        print_daemon_log_tail(b);
                return bench_error(b, "waiting for the daemon to own %s: %s", ITK_NAME,
                                   wait_error_text(r));
        }
        return 0;
}

/* SIGTERM, as systemd would; a daemon that does not exit cleanly is an error. */
static int
daemon_stop(Bench *b)
{
        char text[96];
        int status = 0;

        if (b->daemon_pid <= 0)
                return 0;
        stop_process(&b->daemon_pid, &b->daemon_pidfd, SIGTERM, DAEMON_STOP_TIMEOUT_USEC, &status);
        if (status == -1) {
                print_daemon_log_tail(b);
                return bench_error(b, "the daemon did not exit within %llu s of SIGTERM",
                                   (unsigned long long)(DAEMON_STOP_TIMEOUT_USEC / USEC_PER_SEC));
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                print_daemon_log_tail(b);
                return bench_error(b, "the daemon %s after SIGTERM",
                                   describe_wait_status(status, text, sizeof(text)));
        }
        return 0;
}

/* @parameters: NULL, or name, value, ..., NULL (string parameters). */
static int
start_execution(Bench *b, const char *label, const char *source, bool debug,
                const char *const *parameters, char **ret_path)
{
        _bench_cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        g_autoptr(sd_bus_message) m = NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        const char *path;
        int r;

        r = sd_bus_message_new_method_call(b->bus, &m, ITK_NAME, ITK_PATH, ITK_MANAGER_IFACE,
                                           "StartExecution");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", label);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        for (size_t i = 0; r >= 0 && parameters != NULL && parameters[i] != NULL; i += 2)
                r = sd_bus_message_append(m, "{sv}", parameters[i], "s", parameters[i + 1]);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 3, "source", "s", source, "start", "b", 1,
                                          "debug", "b", (int)debug);
        if (r < 0)
                return bench_error(b, "building StartExecution: %s", g_strerror(-r));
        r = sd_bus_call(b->bus, m, CALL_TIMEOUT_USEC, &error, &reply);
        if (r < 0)
                return bench_error(b, "StartExecution(%s): %s: %s", label,
                                   error.name != NULL ? error.name : "error",
                                   error.message != NULL ? error.message : g_strerror(-r));
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return bench_error(b, "StartExecution reply: %s", g_strerror(-r));
        *ret_path = g_strdup(path);
        return 0;
}

static int
cancel_reply_cb(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        Bench *b = userdata;
        const sd_bus_error *error = sd_bus_message_get_error(reply);

        if (error != NULL) {
                b->n_cancel_errors++;
                if (b->watch.path != NULL) {
                        b->watch.cancel_reply = -1;
                        g_free(b->watch.cancel_error);
                        b->watch.cancel_error =
                                g_strdup_printf("%s: %s", error->name, error->message);
                }
        } else if (b->watch.path != NULL) {
                b->watch.cancel_reply = 1;
        }
        return 0;
}

/* Sends Cancel without waiting: the reply lands in cancel_reply_cb. */
static int
send_cancel(Bench *b, const char *path)
{
        int r = sd_bus_call_method_async(b->cancel_bus != NULL ? b->cancel_bus : b->bus, NULL,
                                         ITK_NAME, path, ITK_EXECUTION_IFACE, "Cancel",
                                         cancel_reply_cb, b, "");

        if (r < 0)
                return bench_error(b, "sending Cancel: %s", g_strerror(-r));
        return 0;
}

static int
get_time_property(Bench *b, const char *path, const char *name, uint64_t *ret)
{
        _bench_cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r = sd_bus_get_property_trivial(b->bus, ITK_NAME, path, ITK_EXECUTION_IFACE, name,
                                            &error, 't', ret);

        if (r < 0)
                return bench_error(b, "reading %s: %s", name,
                                   error.message != NULL ? error.message : g_strerror(-r));
        return 0;
}

/* --- cancel latency -------------------------------------------------------------- */

typedef struct {
        const char *type;
        const char *parameters; /* YAML, indented for the step's parameters: */
        bool wait_ready;
        /* The playbook takes gateway_url and gateway_token (the simulator). */
        bool gateway;
        /* Cancel this long after the step runs, plus up to @delay_spread_usec
         * varying over the runs so Cancel lands at every phase of a poll. */
        uint64_t delay_usec;
        uint64_t delay_spread_usec;
        /* The simulator must hold the step's request when Cancel goes out. */
        bool request_held;
} CancelCase;

static const CancelCase cancel_cases[] = {
        { "utility.sleep", "      seconds: 60\n", false },
        { "utility.python",
          "      script: |\n"
          "        print(\"" READY_TOKEN "\", flush=True)\n"
          "        while True:\n"
          "            pass\n",
          true },
        /* The inner shell ignores SIGTERM and its sleep inherits that; only a
         * SIGKILL of the process group ends it. */
        { "utility.shell",
          "      command: |\n"
          "        sh -c 'trap \"\" TERM; echo " READY_TOKEN "; exec sleep 1000' & wait\n",
          true },
};

static bool
never_pred(Bench *b, gconstpointer data)
{
        return false;
}

static bool
step_ready_pred(Bench *b, gconstpointer data)
{
        const CancelCase *c = data;

        return b->watch.finished || (b->watch.step_running && (!c->wait_ready || b->watch.ready));
}

static bool
cancelled_pred(Bench *b, gconstpointer data)
{
        return b->watch.cancelled || b->watch.finished;
}

static bool
finished_and_replied_pred(Bench *b, gconstpointer data)
{
        return b->watch.finished && b->watch.cancel_reply != 0;
}

/* Processes that outlived a cancelled step were reparented to us (we are a
 * subreaper): anything among our children but the bus and the daemon. */
static guint
collect_leaked_processes(Bench *b, GString *names)
{
        g_autoptr(GDir) dir = g_dir_open("/proc", 0, NULL);
        pid_t self = getpid();
        const char *entry;
        guint leaked = 0;

        if (dir == NULL)
                return 0;
        while ((entry = g_dir_read_name(dir)) != NULL) {
                g_autofree char *stat_path = NULL;
                g_autofree char *contents = NULL;
                char *p, state;
                int ppid;
                pid_t pid;

                if (!g_ascii_isdigit(entry[0]))
                        continue;
                pid = (pid_t)atoi(entry);
                if (pid == b->bus_pid || pid == b->daemon_pid || pid == b->sim_pid)
                        continue;
                stat_path = g_strdup_printf("/proc/%s/stat", entry);
                if (!g_file_get_contents(stat_path, &contents, NULL, NULL))
                        continue;
                p = strrchr(contents, ')');
                if (p == NULL || sscanf(p + 2, "%c %d", &state, &ppid) != 2 || ppid != self)
                        continue;
                if (state != 'Z') {
                        char *open_paren = strchr(contents, '(');

                        leaked++;
                        if (names->len > 0)
                                g_string_append_c(names, ' ');
                        if (open_paren != NULL)
                                g_string_append_len(names, open_paren, p - open_paren + 1);
                        (void)kill(pid, SIGKILL);
                }
                (void)waitpid(pid, NULL, 0);
        }
        return leaked;
}

static int sim_held_requests(Bench *b);
static int chatty_check(Bench *b, bool restart);

/* @daemon_latencies (may be NULL): Cancel sent -> the daemon's transition,
 * from the run's FinishedAt (wall clock, set when the run turns cancelled):
 * what the client's latency adds on top is queueing on the way back.
 * @runq_waits (with @daemon_latencies): how long of Cancel sent -> received
 * the daemon's main thread and dbus-daemon were runnable but had no CPU
 * (other processes' doing, not theirs), added up. */
static int
run_cancel_case(Bench *b, const CancelCase *c, double *latencies, double *daemon_latencies,
                double *runq_waits, guint *ret_max_held)
{
        g_autofree char *source = g_strdup_printf("name: bench cancel %s\n"
                                                  "version: 1\n"
                                                  "%s"
                                                  "steps:\n"
                                                  "  - id: target\n"
                                                  "    name: target\n"
                                                  "    type: %s\n"
                                                  "    parameters:\n"
                                                  "%s",
                                                  c->type,
                                                  c->gateway ? "parameters:\n"
                                                               "  - name: gateway_url\n"
                                                               "    type: string\n"
                                                               "  - name: gateway_token\n"
                                                               "    type: string\n"
                                                             : "",
                                                  c->type, c->parameters);
        g_autofree char *url = g_strdup_printf("http://127.0.0.1:%u", b->sim_port);
        const char *const gateway_parameters[] = { "gateway_url", url, "gateway_token", SIM_TOKEN,
                                                   NULL };
        const char *const *parameters = c->gateway ? gateway_parameters : NULL;

        if (ret_max_held != NULL)
                *ret_max_held = 0;
        for (guint i = 0; i < b->runs; i++) {
                g_autofree char *path = NULL;
                uint64_t t0, finished_at = 0, delays0[3];
                gint64 t0_real;
                int r;

                /* Under the chatty load, a run that finished printing is
                 * checked and started again. */
                if (b->chatty.path != NULL && chatty_check(b, true) < 0)
                        return -1;
                r = start_execution(b, "bench-cancel", source, false, parameters, &path);
                if (r < 0)
                        return r;
                watch_reset(&b->watch, path);
                r = bench_wait(b, step_ready_pred, c, STEP_START_TIMEOUT_USEC);
                if (r < 0)
                        return bench_error(b, "%s run %u: waiting for the step to run: %s", c->type,
                                           i, wait_error_text(r));
                if (c->delay_usec > 0) {
                        uint64_t delay = c->delay_usec;

                        /* A large stride scatters the runs over the spread. */
                        if (c->delay_spread_usec > 0)
                                delay += (uint64_t)i * 7919 * MSEC_PER_SEC %
                                         (c->delay_spread_usec + 1);
                        r = bench_wait(b, never_pred, NULL, delay);
                        if (r != -ETIMEDOUT)
                                return bench_error(b, "%s run %u: waiting before Cancel: %s",
                                                   c->type, i, wait_error_text(r));
                }
                if (b->watch.finished)
                        return bench_error(b, "%s run %u ended %s before Cancel: %s", c->type, i,
                                           b->watch.final_status, b->watch.final_error);
                if (c->request_held) {
                        int held = sim_held_requests(b);

                        /* A loaded machine may take longer than the delay to
                         * send the request: wait for it, bounded. */
                        for (uint64_t deadline = now_usec() + SIM_STATE_TIMEOUT_USEC;
                             held == 0 && now_usec() < deadline;) {
                                (void)bench_wait(b, never_pred, NULL, 20 * MSEC_PER_SEC);
                                held = sim_held_requests(b);
                        }
                        if (held < 0)
                                return -1;
                        if (held == 0)
                                return bench_error(
                                        b,
                                        "%s run %u: no request held by the simulator "
                                        "%llu ms after the step started",
                                        c->type, i,
                                        (unsigned long long)(c->delay_usec / MSEC_PER_SEC));
                        if (ret_max_held != NULL)
                                *ret_max_held = MAX(*ret_max_held, (guint)held);
                }

                /* The times first, the delays after (and the other way
                 * round at the end): the waits are read within the latency
                 * measured. One under way now still counts whole: the
                 * kernel adds a wait up when the process gets its CPU. */
                t0_real = g_get_real_time();
                t0 = now_usec();
                read_path_delays(b, delays0);
                if (send_cancel(b, path) < 0)
                        return -1;
                r = bench_wait(b, cancelled_pred, NULL, CANCEL_TIMEOUT_USEC);
                if (r < 0)
                        return bench_error(b, "%s run %u: no StatusChanged(cancelled): %s", c->type,
                                           i, wait_error_text(r));
                if (!b->watch.cancelled)
                        return bench_error(b, "%s run %u ended %s instead of cancelled", c->type, i,
                                           b->watch.final_status);
                latencies[i] = (double)(b->watch.t_cancelled - t0) / (double)MSEC_PER_SEC;
                if (runq_waits != NULL) {
                        const uint64_t *delays1 = b->watch.delays_at_cancel;
                        double main_wait = delay_ms(delays0[0], delays1[0]);
                        double bus_wait = delay_ms(delays0[1], delays1[1]);

                        runq_waits[i] = main_wait + bus_wait;
                        if (b->daemon_main_waits != NULL) {
                                b->daemon_main_waits[i] = main_wait;
                                b->bus_waits[i] = bus_wait;
                                b->client_waits[i] = delay_ms(delays0[2], delays1[2]);
                        }
                }

                r = bench_wait(b, finished_and_replied_pred, NULL, CANCEL_TIMEOUT_USEC);
                if (r < 0)
                        return bench_error(b, "%s run %u: no Finished or Cancel reply: %s", c->type,
                                           i, wait_error_text(r));
                if (b->watch.cancel_reply < 0)
                        return bench_error(b, "%s run %u: Cancel failed: %s", c->type, i,
                                           b->watch.cancel_error);
                if (g_strcmp0(b->watch.final_status, "cancelled") != 0)
                        return bench_error(b, "%s run %u: Finished(%s) after cancel", c->type, i,
                                           b->watch.final_status);
                if (daemon_latencies != NULL) {
                        if (get_time_property(b, path, "FinishedAt", &finished_at) < 0)
                                return -1;
                        daemon_latencies[i] = (double)MAX((gint64)finished_at - t0_real, 0) /
                                              (double)MSEC_PER_SEC;
                }
        }
        watch_reset(&b->watch, NULL);
        return 0;
}

/* Appends "name":{runs, min/p50/p99/max/mean, target, pass} for @latencies
 * (sorted here) and returns whether p99 meets the target. */
static bool
append_latencies(GString *out, const char *name, double *latencies, double *daemon_latencies,
                 double *runq_waits, guint runs)
{
        double mean = 0, p99;
        bool pass;

        qsort(latencies, runs, sizeof(double), compare_double);
        for (guint i = 0; i < runs; i++)
                mean += latencies[i] / runs;
        p99 = percentile(latencies, runs, 0.99);
        pass = p99 < TARGET_CANCEL_P99_MS;

        json_append_string(out, name);
        g_string_append_printf(out, ":{\"runs\":%u,\"min_ms\":", runs);
        json_append_double(out, latencies[0], 3);
        g_string_append(out, ",\"p50_ms\":");
        json_append_double(out, percentile(latencies, runs, 0.50), 3);
        g_string_append(out, ",\"p99_ms\":");
        json_append_double(out, p99, 3);
        g_string_append(out, ",\"max_ms\":");
        json_append_double(out, latencies[runs - 1], 3);
        g_string_append(out, ",\"mean_ms\":");
        json_append_double(out, mean, 3);
        if (daemon_latencies != NULL && runq_waits != NULL) {
                g_autofree double *less = g_new0(double, runs);

                /* Per run, before sorting: the daemon's part without the time
                 * it and the bus waited for a CPU (overlaps are taken out
                 * twice: a lower bound). */
                for (guint i = 0; i < runs; i++)
                        less[i] = MAX(daemon_latencies[i] - runq_waits[i], 0);
                qsort(less, runs, sizeof(double), compare_double);
                qsort(runq_waits, runs, sizeof(double), compare_double);
                g_string_append(out, ",\"daemon_runq_wait_p99_ms\":");
                json_append_double(out, percentile(runq_waits, runs, 0.99), 3);
                g_string_append(out, ",\"daemon_runq_wait_max_ms\":");
                json_append_double(out, runq_waits[runs - 1], 3);
                g_string_append(out, ",\"daemon_less_runq_wait_p99_ms\":");
                json_append_double(out, percentile(less, runs, 0.99), 3);
        }
        if (daemon_latencies != NULL) {
                qsort(daemon_latencies, runs, sizeof(double), compare_double);
                g_string_append(out, ",\"daemon_p50_ms\":");
                json_append_double(out, percentile(daemon_latencies, runs, 0.50), 3);
                g_string_append(out, ",\"daemon_p99_ms\":");
                json_append_double(out, percentile(daemon_latencies, runs, 0.99), 3);
                g_string_append(out, ",\"daemon_max_ms\":");
                json_append_double(out, daemon_latencies[runs - 1], 3);
        }
        g_string_append_printf(out, ",\"target_p99_ms\":%.1f,\"pass\":%s}", TARGET_CANCEL_P99_MS,
                               pass ? "true" : "false");
        return pass;
}

static int
section_cancel(Bench *b, GString *out)
{
        g_autofree double *latencies = g_new0(double, b->runs);
        g_autofree double *daemon_latencies = g_new0(double, b->runs);
        g_autofree double *runq_waits = g_new0(double, b->runs);
        g_autoptr(GString) leaked_names = g_string_new(NULL);
        guint leaked = 0;
        int result = 0;

        if (daemon_start(b) < 0)
                return -1;
        g_string_append(out, "\"cancel\":{");
        for (size_t k = 0; k < G_N_ELEMENTS(cancel_cases); k++) {
                const CancelCase *c = &cancel_cases[k];

                g_printerr("itk-bench: cancel %s, %u runs\n", c->type, b->runs);
                if (run_cancel_case(b, c, latencies, daemon_latencies, runq_waits, NULL) < 0) {
                        result = -1;
                        break;
                }
                if (!append_latencies(out, c->type, latencies, daemon_latencies, runq_waits,
                                      b->runs))
                        b->targets_met = false;
                g_string_append_c(out, ',');
        }

        /* Only finished runs say anything about survivors; give a SIGKILLed
         * group a moment to be reaped before looking. */
        if (result == 0) {
                (void)bench_wait(b, never_pred, NULL, REAP_GRACE_USEC);
                leaked = collect_leaked_processes(b, leaked_names);
                if (leaked > 0)
                        bench_error(b, "%u process(es) outlived their cancelled step: %s", leaked,
                                    leaked_names->str);
        }
        if (result == 0)
                g_string_append_printf(out, "\"leaked_processes\":%u}", leaked);
        else
                g_string_append(out, "\"leaked_processes\":null}");
        if (daemon_stop(b) < 0)
                result = -1;
        return leaked > 0 ? -1 : result;
}

/* --- throughput ---------------------------------------------------------------- */

static bool
finished_pred(Bench *b, gconstpointer data)
{
        return b->watch.finished;
}

static int
section_throughput(Bench *b, GString *out)
{
        g_autoptr(GString) source = g_string_new(NULL);
        g_autofree char *path = NULL;
        uint64_t t_call, t_reply, started_at = 0, finished_at = 0;
        double seconds, rate, daemon_rate = NAN, cpu0, cpu1;
        long rss_before, rss_after;
        int r;

        /* Flow style keeps 10,000 steps under the 1 MiB source limit. */
        g_string_append(source, "name: bench throughput\nversion: 1\nsteps:\n");
        for (guint i = 0; i < b->steps; i++)
                g_string_append_printf(source,
                                       "  - {id: s%u, name: s, type: utility.set_variable, "
                                       "parameters: {name: v, value: %u}}\n",
                                       i, i);

        if (daemon_start(b) < 0)
                return -1;
        g_printerr("itk-bench: throughput, %u steps (%zu bytes of YAML)\n", b->steps, source->len);
        rss_before = read_proc_kb(b->daemon_pid, "status", "VmRSS");
        cpu0 = read_cpu_seconds(b->daemon_pid);
        watch_reset(&b->watch, NULL);
        t_call = now_usec();
        if (start_execution(b, "bench-throughput", source->str, false, NULL, &path) < 0)
                return daemon_stop(b), -1;
        t_reply = now_usec();
        watch_reset(&b->watch, path);
        r = bench_wait(b, finished_pred, NULL, THROUGHPUT_TIMEOUT_USEC);
        if (r < 0) {
                bench_error(b, "throughput: waiting for Finished: %s", wait_error_text(r));
                daemon_stop(b);
                return -1;
        }
        cpu1 = read_cpu_seconds(b->daemon_pid);
        rss_after = read_proc_kb(b->daemon_pid, "status", "VmRSS");
        if (g_strcmp0(b->watch.final_status, "completed") != 0) {
                bench_error(b, "throughput run ended %s: %s", b->watch.final_status,
                            b->watch.final_error);
                daemon_stop(b);
                return -1;
        }
        if (b->watch.t_running == 0) {
                bench_error(b, "throughput run finished without StatusChanged(running)");
                daemon_stop(b);
                return -1;
        }
        if (get_time_property(b, path, "StartedAt", &started_at) == 0 &&
            get_time_property(b, path, "FinishedAt", &finished_at) == 0 && finished_at > started_at)
                daemon_rate = b->steps / ((double)(finished_at - started_at) / USEC_PER_SEC);

        seconds = (double)(b->watch.t_finished - b->watch.t_running) / USEC_PER_SEC;
        rate = b->steps / seconds;
        g_string_append_printf(out, "\"throughput\":{\"steps\":%u,\"yaml_bytes\":%zu,", b->steps,
                               source->len);
        g_string_append(out, "\"start_call_ms\":");
        json_append_double(out, (double)(t_reply - t_call) / MSEC_PER_SEC, 3);
        g_string_append(out, ",\"seconds\":");
        json_append_double(out, seconds, 4);
        g_string_append(out, ",\"steps_per_sec\":");
        json_append_double(out, rate, 1);
        g_string_append(out, ",\"daemon_steps_per_sec\":");
        json_append_double(out, daemon_rate, 1);
        g_string_append_printf(out,
                               ",\"step_signals\":%u,\"daemon_cpu_sec\":", b->watch.n_step_signals);
        json_append_double(out, cpu1 - cpu0, 2);
        g_string_append_printf(out,
                               ",\"rss_before_kb\":%ld,\"rss_after_kb\":%ld"
                               ",\"target_steps_per_sec\":%.0f,\"pass\":%s}",
                               rss_before, rss_after, TARGET_STEPS_PER_SEC,
                               rate >= TARGET_STEPS_PER_SEC ? "true" : "false");
        b->targets_met = b->targets_met && rate >= TARGET_STEPS_PER_SEC;
        watch_reset(&b->watch, NULL);
        return daemon_stop(b);
}

/* --- memory --------------------------------------------------------------------- */

static bool
paused_count_pred(Bench *b, gconstpointer data)
{
        return b->n_paused >= GPOINTER_TO_UINT(data);
}

static bool
cancelled_count_pred(Bench *b, gconstpointer data)
{
        return b->n_cancelled >= GPOINTER_TO_UINT(data);
}

static int
section_memory(Bench *b, GString *out)
{
        const char *source = "name: bench memory\n"
                             "version: 1\n"
                             "steps:\n"
                             "  - id: wait\n"
                             "    name: wait\n"
                             "    type: utility.sleep\n"
                             "    parameters:\n"
                             "      seconds: 60\n";
        g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
        long rss_idle, hwm_idle, anon_idle, file_idle, pss_idle, rss_loaded, rss_cancelled;
        double per_execution, cpu0, idle_cpu_percent;
        uint64_t t0, t_started, t_paused;
        int r;

        if (daemon_start(b) < 0)
                return -1;
        g_printerr("itk-bench: memory, %u paused executions\n", b->executions);

        /* An idle daemon sleeps in poll(); CPU spent here is a busy loop. */
        cpu0 = read_cpu_seconds(b->daemon_pid);
        t0 = now_usec();
        r = bench_wait(b, never_pred, NULL, IDLE_WINDOW_USEC);
        if (r != -ETIMEDOUT) {
                bench_error(b, "memory: idle wait: %s", wait_error_text(r));
                daemon_stop(b);
                return -1;
        }
        idle_cpu_percent =
                100.0 * (read_cpu_seconds(b->daemon_pid) - cpu0) / ((now_usec() - t0) / 1e6);

        rss_idle = read_proc_kb(b->daemon_pid, "status", "VmRSS");
        hwm_idle = read_proc_kb(b->daemon_pid, "status", "VmHWM");
        /* Shared-library pages count in VmRSS too: say how much is heap. */
        anon_idle = read_proc_kb(b->daemon_pid, "status", "RssAnon");
        file_idle = read_proc_kb(b->daemon_pid, "status", "RssFile");
        pss_idle = read_proc_kb(b->daemon_pid, "smaps_rollup", "Pss");
        watch_reset(&b->watch, NULL);
        b->n_paused = 0;
        b->n_cancelled = 0;
        t0 = now_usec();
        for (guint i = 0; i < b->executions; i++) {
                char *path = NULL;

                if (start_execution(b, "bench-memory", source, true, NULL, &path) < 0)
                        return daemon_stop(b), -1;
                g_ptr_array_add(paths, path);
        }
        t_started = now_usec();
        r = bench_wait(b, paused_count_pred, GUINT_TO_POINTER(b->executions), MEMORY_TIMEOUT_USEC);
        if (r < 0) {
                bench_error(b, "memory: %u of %u executions paused: %s", b->n_paused, b->executions,
                            wait_error_text(r));
                daemon_stop(b);
                return -1;
        }
        t_paused = now_usec();
        rss_loaded = read_proc_kb(b->daemon_pid, "status", "VmRSS");

        /* Pipeline every Cancel, then wait for all of them. */
        for (guint i = 0; i < paths->len; i++)
                if (send_cancel(b, paths->pdata[i]) < 0)
                        return daemon_stop(b), -1;
        r = bench_wait(b, cancelled_count_pred, GUINT_TO_POINTER(b->executions),
                       MEMORY_TIMEOUT_USEC);
        if (r < 0) {
                bench_error(b, "memory: %u of %u executions cancelled: %s", b->n_cancelled,
                            b->executions, wait_error_text(r));
                daemon_stop(b);
                return -1;
        }
        if (b->n_cancel_errors > 0)
                bench_error(b, "memory: %u Cancel calls failed", b->n_cancel_errors);
        rss_cancelled = read_proc_kb(b->daemon_pid, "status", "VmRSS");

        per_execution = (double)(rss_loaded - rss_idle) / b->executions;
        g_string_append_printf(out,
                               "\"memory\":{\"executions\":%u,\"rss_idle_kb\":%ld,"
                               "\"hwm_idle_kb\":%ld,\"rss_anon_idle_kb\":%ld,"
                               "\"rss_file_idle_kb\":%ld,\"pss_idle_kb\":%ld,\"rss_paused_kb\":%ld,"
                               "\"rss_after_cancel_kb\":%ld,\"per_execution_kb\":",
                               b->executions, rss_idle, hwm_idle, anon_idle, file_idle, pss_idle,
                               rss_loaded, rss_cancelled);
        json_append_double(out, per_execution, 2);
        g_string_append(out, ",\"idle_cpu_percent\":");
        json_append_double(out, idle_cpu_percent, 1);
        g_string_append(out, ",\"start_all_ms\":");
        json_append_double(out, (double)(t_started - t0) / MSEC_PER_SEC, 1);
        g_string_append(out, ",\"all_paused_ms\":");
        json_append_double(out, (double)(t_paused - t0) / MSEC_PER_SEC, 1);
        g_string_append_printf(out,
                               ",\"target_idle_kb\":%d,\"idle_pass\":%s"
                               ",\"target_per_execution_kb\":%.0f,\"per_execution_pass\":%s}",
                               TARGET_IDLE_RSS_KB, rss_idle < TARGET_IDLE_RSS_KB ? "true" : "false",
                               TARGET_PER_EXECUTION_KB,
                               per_execution < TARGET_PER_EXECUTION_KB ? "true" : "false");
        b->targets_met = b->targets_met && rss_idle < TARGET_IDLE_RSS_KB &&
                         per_execution < TARGET_PER_EXECUTION_KB;
        if (daemon_stop(b) < 0)
                return -1;
        return b->n_cancel_errors > 0 ? -1 : 0;
}

/* --- bad input ------------------------------------------------------------------- */

#define BAD_INPUT_STEP "  - {id: a, name: A, type: utility.log, parameters: {message: hi}}\n"

/* A playbook whose metadata is one scalar of @scalar_bytes, then @levels
 * lists of ten aliases to the level below, then a list of @extra aliases to
 * the last level. */
static char *
alias_playbook(gsize scalar_bytes, guint levels, guint extra)
{
        GString *text = g_string_new("name: bench\nversion: 1\nsteps:\n" BAD_INPUT_STEP
                                     "metadata:\n  l0: &l0 \"");

        for (gsize i = 0; i < scalar_bytes; i++)
                g_string_append_c(text, 'x');
        g_string_append(text, "\"\n");
        for (guint level = 1; level <= levels + (extra > 0 ? 1 : 0); level++) {
                guint n = level <= levels ? 10 : extra;
                g_string_append_printf(text, "  l%u: &l%u [", level, level);
                for (guint i = 0; i < n; i++)
                        g_string_append_printf(text, "%s*l%u", i > 0 ? ", " : "", level - 1);
                g_string_append(text, "]\n");
        }
        return g_string_free(text, FALSE);
}

/* Peak RSS from here on: clear_refs 5 resets VmHWM to the current RSS. */
static void
reset_peak_rss(pid_t pid)
{
        g_autofree char *path = g_strdup_printf("/proc/%d/clear_refs", (int)pid);
        int fd = open(path, O_WRONLY | O_CLOEXEC);

        if (fd >= 0) {
                if (write(fd, "5", 1) != 1)
                        g_printerr("itk-bench: cannot reset the peak RSS: %s\n", g_strerror(errno));
                close(fd);
        }
}

/* Sends @m, waits for the answer; appends {"ms", "rss_before_kb",
 * "peak_rss_kb", "answer"} as "@name":{...}. @answer: the error name, or
 * "diagnostics:N" (N errors) for ValidatePlaybook, or "accepted". */
static int
bad_input_case(Bench *b, GString *out, const char *name, sd_bus_message *m)
{
        _bench_cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        g_autofree char *answer = NULL;
        long rss_before, peak;
        double cpu0, cpu;
        uint64_t t0, t1;
        int r;

        reset_peak_rss(b->daemon_pid);
        cpu0 = read_cpu_seconds(b->daemon_pid);
        rss_before = read_proc_kb(b->daemon_pid, "status", "VmRSS");
        t0 = now_usec();
        r = sd_bus_call(b->bus, m, CALL_TIMEOUT_USEC, &error, &reply);
        t1 = now_usec();
        peak = read_proc_kb(b->daemon_pid, "status", "VmHWM");
        /* The wall time includes moving the message through dbus-daemon. */
        cpu = read_cpu_seconds(b->daemon_pid) - cpu0;
        if (daemon_check_alive(b) < 0)
                return bench_error(b, "bad_input: %s: the daemon died", name);
        if (r < 0 && error.name == NULL)
                return bench_error(b, "bad_input: %s: %s", name, g_strerror(-r));
        if (r < 0) {
                answer = g_strdup(error.name);
        } else if (g_str_equal(sd_bus_message_get_member(m), "ValidatePlaybook")) {
                guint errors = 0;
                const char *key, *severity;
                r = sd_bus_message_enter_container(reply, 'a', "a{sv}");
                while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'a', "{sv}")) > 0) {
                        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                                r = sd_bus_message_read(reply, "s", &key);
                                if (r >= 0 && g_str_equal(key, "severity")) {
                                        r = sd_bus_message_read(reply, "v", "s", &severity);
                                        if (r >= 0 && g_str_equal(severity, "error"))
                                                errors++;
                                } else if (r >= 0) {
                                        r = sd_bus_message_skip(reply, "v");
                                }
                                if (r >= 0)
                                        r = sd_bus_message_exit_container(reply);
                        }
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                }
                if (r < 0)
                        return bench_error(b, "bad_input: %s: reading the reply: %s", name,
                                           g_strerror(-r));
                answer = g_strdup_printf("diagnostics:%u", errors);
        } else {
                answer = g_strdup("accepted");
        }
        g_string_append_printf(out, "%s", out->str[out->len - 1] == '{' ? "" : ",");
        json_append_string(out, name);
        g_string_append(out, ":{\"ms\":");
        json_append_double(out, (double)(t1 - t0) / MSEC_PER_SEC, 3);
        g_string_append(out, ",\"daemon_cpu_ms\":");
        json_append_double(out, cpu * 1000, 1);
        g_string_append_printf(
                out, ",\"rss_before_kb\":%ld,\"peak_rss_kb\":%ld,\"answer\":", rss_before, peak);
        json_append_string(out, answer);
        g_string_append_c(out, '}');
        g_printerr("itk-bench: bad_input %s: %.1f ms (daemon CPU %.1f ms), peak RSS %ld kB "
                   "(from %ld), %s\n",
                   name, (double)(t1 - t0) / MSEC_PER_SEC, cpu * 1000, peak, rss_before, answer);
        return 0;
}

static int
validate_case(Bench *b, GString *out, const char *name, const char *source)
{
        g_autoptr(sd_bus_message) m = NULL;
        int r = sd_bus_message_new_method_call(b->bus, &m, ITK_NAME, ITK_PATH, ITK_MANAGER_IFACE,
                                               "ValidatePlaybook");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", source);
        if (r < 0)
                return bench_error(b, "bad_input: building %s: %s", name, g_strerror(-r));
        return bad_input_case(b, out, name, m);
}

/* 255 short parameters and one list of @values strings of 60 bytes. */
static int
parameters_case(Bench *b, GString *out, const char *name, guint values)
{
        g_autoptr(sd_bus_message) m = NULL;
        char text[61];
        int r;

        memset(text, 'p', 60);
        text[60] = '\0';
        r = sd_bus_message_new_method_call(b->bus, &m, ITK_NAME, ITK_PATH, ITK_MANAGER_IFACE,
                                           "StartExecution");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "bench-bad-input");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        for (guint i = 0; r >= 0 && i < 255; i++) {
                char key[16];
                g_snprintf(key, sizeof(key), "p%u", i);
                r = sd_bus_message_append(m, "{sv}", key, "s", text);
        }
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'e', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "list");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', "as");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "s");
        for (guint i = 0; r >= 0 && i < values; i++)
                r = sd_bus_message_append(m, "s", text);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "a{sv}", 2, "source", "s",
                                          "name: bench\nversion: 1\nsteps:\n" BAD_INPUT_STEP,
                                          "start", "b", 0);
        if (r < 0)
                return bench_error(b, "bad_input: building %s: %s", name, g_strerror(-r));
        return bad_input_case(b, out, name, m);
}

static int
section_bad_input(Bench *b, GString *out)
{
        /* Would expand to 10^5 x 100 KiB (about 10 GiB) through aliases. */
        g_autofree char *byte_bomb = alias_playbook(100 * 1024, 5, 0);
        /* 100 KiB, then 1 MiB, 10 MiB, and 4 x 1 MiB: 15.1 MiB expanded, the
         * most text under ITK_LIMIT_YAML_EXPANDED_BYTES (16 MiB). */
        g_autofree char *max_bytes = alias_playbook(100 * 1024, 2, 0);
        /* 4 levels of ten ([lol] = 2 nodes), then 16 x the last: about
         * 190,000 nodes, the most under ITK_LIMIT_YAML_NODES (200,000). */
        g_autofree char *max_nodes = alias_playbook(3, 4, 16);
        int r = 0;

        {
                /* max_bytes plus four more aliases to level 1 (1 MiB each). */
                char *more = g_strconcat(max_bytes, "  l9: [*l1, *l1, *l1, *l1]\n", NULL);
                g_free(max_bytes);
                max_bytes = more;
        }
        if (daemon_start(b) < 0)
                return -1;
        g_printerr("itk-bench: bad input\n");
        g_string_append(out, "\"bad_input\":{");
        if (r >= 0)
                r = validate_case(b, out, "validate_alias_byte_bomb", byte_bomb);
        if (r >= 0)
                r = validate_case(b, out, "validate_max_expanded_bytes", max_bytes);
        if (r >= 0)
                r = validate_case(b, out, "validate_max_nodes", max_nodes);
        if (r >= 0) {
                /* 1 MiB of valid steps (about 15,000): the most work a
                 * playbook without aliases can ask of the loader. */
                g_autoptr(GString) steps = g_string_new("name: bench\nversion: 1\nsteps:\n");
                for (guint i = 0; steps->len < 1024 * 1024 - 80; i++)
                        g_string_append_printf(steps,
                                               "  - {id: s%u, name: n, type: utility.log, "
                                               "parameters: {message: m}}\n",
                                               i);
                r = validate_case(b, out, "validate_max_steps", steps->str);
        }
        if (r >= 0) {
                /* 199,000 steps breaking three rules each: 597,000 problems. */
                g_autoptr(GString) bad = g_string_new("name: bench\nversion: 1\nsteps:\n");
                for (guint i = 0; i < 199000; i++)
                        g_string_append(bad, "- {}\n");
                r = validate_case(b, out, "validate_max_problems", bad->str);
        }
        /* 65,536 values (a parameter is its variant and its string), 3.9 MB
         * of text: every bound met, none passed. */
        if (r >= 0)
                r = parameters_case(b, out, "start_max_parameters", 65024);
        /* 200,000 strings: refused at the 65,537th value. */
        if (r >= 0)
                r = parameters_case(b, out, "start_too_many_values", 200000);
        g_string_append_c(out, '}');
        if (daemon_stop(b) < 0)
                return -1;
        return r;
}

/* --- the gateway simulator ------------------------------------------------------- */

/* Starts itk-gateway-sim on a free port with the bench's token; returns once
 * it printed "listening on http://127.0.0.1:PORT". */
static int
sim_start(Bench *b)
{
        g_autofree char *log = g_build_filename(b->tmpdir, "gateway-sim.log", NULL);
        const char *argv[] = { b->gateway_sim_path, "--token=" SIM_TOKEN, "--restart-delay=0",
                               NULL };
        const char *prefix = "listening on http://127.0.0.1:";
        char line[256];
        size_t len = 0;
        uint64_t deadline = now_usec() + DAEMON_START_TIMEOUT_USEC;
        unsigned long port;
        char *end = NULL;
        int pipe_fds[2];

        if (pipe2(pipe_fds, O_CLOEXEC) < 0)
                return bench_error(b, "pipe: %s", g_strerror(errno));
        g_free(b->sim_log);
        b->sim_log = g_steal_pointer(&log);
        b->sim_pid = spawn(b, argv, pipe_fds[1], b->sim_log);
        close(pipe_fds[1]);
        if (b->sim_pid < 0) {
                close(pipe_fds[0]);
                b->sim_pid = 0;
                return -1;
        }
        b->sim_pidfd = pidfd_open_compat(b->sim_pid);
        /* Kept open until the simulator stops: it must never hit a closed pipe. */
        b->sim_stdout = pipe_fds[0];

        while (len < sizeof(line) - 1 && memchr(line, '\n', len) == NULL) {
                struct pollfd p = { .fd = b->sim_stdout, .events = POLLIN };
                uint64_t now = now_usec();
                ssize_t n;

                if (now >= deadline)
                        return bench_error(b, "the gateway simulator did not say where it listens");
                if (poll(&p, 1, (int)((deadline - now) / MSEC_PER_SEC) + 1) <= 0)
                        continue;
                n = read(b->sim_stdout, line + len, sizeof(line) - 1 - len);
                if (n <= 0)
                        return bench_error(b, "the gateway simulator exited at start; see %s",
                                           b->sim_log);
                len += (size_t)n;
        }
        line[len] = '\0';
        g_strchomp(line);
        if (!g_str_has_prefix(line, prefix))
                return bench_error(b, "the gateway simulator said '%s'", line);
        errno = 0;
        port = strtoul(line + strlen(prefix), &end, 10);
        if (errno != 0 || end == line + strlen(prefix) || *end != '\0' || port == 0 || port > 65535)
                return bench_error(b, "the gateway simulator said '%s'", line);
        b->sim_port = (guint)port;
        return 0;
}

static int
sim_stop(Bench *b)
{
        char text[96];
        int status = 0;

        if (b->sim_pid > 0) {
                stop_process(&b->sim_pid, &b->sim_pidfd, SIGTERM, DAEMON_STOP_TIMEOUT_USEC,
                             &status);
                if (status == -1)
                        bench_error(b, "the gateway simulator did not exit on SIGTERM");
                else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        bench_error(b, "the gateway simulator %s; see %s",
                                    describe_wait_status(status, text, sizeof(text)), b->sim_log);
        }
        if (b->sim_stdout >= 0) {
                close(b->sim_stdout);
                b->sim_stdout = -1;
        }
        b->sim_port = 0;
        return status == 0 ? 0 : -1;
}

/* One blocking HTTP/1.0 request to the simulator (loopback, answered at
 * once), outside any timed window. Returns the status code, or -1. */
static int
sim_http(Bench *b, const char *method, const char *path, bool token, char **ret_body)
{
        struct sockaddr_in address = {
                .sin_family = AF_INET,
                .sin_port = htons((uint16_t)b->sim_port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        g_autofree char *request = g_strdup_printf(
                "%s %s HTTP/1.0\r\nHost: 127.0.0.1:%u\r\n%s%s%sContent-Length: 0\r\n\r\n", method,
                path, b->sim_port, token ? "X-Ignition-API-Token: " : "", token ? SIM_TOKEN : "",
                token ? "\r\n" : "");
        g_autoptr(GString) response = g_string_new(NULL);
        uint64_t deadline = now_usec() + HTTP_TIMEOUT_USEC;
        size_t sent = 0, request_len = strlen(request);
        const char *body;
        int fd, status = -1;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return bench_error(b, "socket: %s", g_strerror(errno));
        if (connect(fd, (struct sockaddr *)&address, sizeof(address)) < 0) {
                bench_error(b, "%s %s: cannot connect to the simulator: %s", method, path,
                            g_strerror(errno));
                close(fd);
                return -1;
        }
        while (sent < request_len) {
                ssize_t n = send(fd, request + sent, request_len - sent, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        bench_error(b, "%s %s: %s", method, path, g_strerror(errno));
                        close(fd);
                        return -1;
                }
                sent += (size_t)n;
        }
        /* HTTP/1.0: the answer ends when the simulator closes the connection. */
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                uint64_t now = now_usec();
                char buffer[4096];
                ssize_t n;

                if (now >= deadline) {
                        bench_error(b, "%s %s: no answer from the simulator", method, path);
                        close(fd);
                        return -1;
                }
                if (poll(&p, 1, (int)((deadline - now) / MSEC_PER_SEC) + 1) <= 0)
                        continue;
                n = read(fd, buffer, sizeof(buffer));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        bench_error(b, "%s %s: %s", method, path, g_strerror(errno));
                        close(fd);
                        return -1;
                }
                if (n == 0)
                        break;
                g_string_append_len(response, buffer, n);
        }
        close(fd);

        if (sscanf(response->str, "HTTP/1.%*d %d", &status) != 1)
                return bench_error(b, "%s %s: not an HTTP answer", method, path);
        body = strstr(response->str, "\r\n\r\n");
        if (ret_body != NULL)
                *ret_body = g_strdup(body != NULL ? body + 4 : "");
        return status;
}

/* A simulator control call (POST) that must succeed. */
static int
sim_post(Bench *b, const char *path, bool token)
{
        int status = sim_http(b, "POST", path, token, NULL);

        if (status < 0)
                return -1;
        if (status != 200)
                return bench_error(b, "POST %s: HTTP %d from the simulator", path, status);
        return 0;
}

/* heldRequests of GET /sim/state: requests the simulator is hanging on. */
static int
sim_held_requests(Bench *b)
{
        g_autofree char *body = NULL;
        const char *p;
        int status = sim_http(b, "GET", "/sim/state", false, &body);
        long held;
        char *end = NULL;

        if (status < 0)
                return -1;
        p = status == 200 ? strstr(body, "\"heldRequests\"") : NULL;
        if (p == NULL)
                return bench_error(b, "GET /sim/state: HTTP %d without heldRequests", status);
        p += strlen("\"heldRequests\"");
        while (*p == ' ' || *p == ':')
                p++;
        held = strtol(p, &end, 10);
        if (end == p || held < 0)
                return bench_error(b, "GET /sim/state: heldRequests is not a count");
        return (int)held;
}

/* Waits until GET /StatusPing says @state. */
static int
sim_wait_state(Bench *b, const char *state)
{
        g_autofree char *wanted = g_strdup_printf("\"state\":\"%s\"", state);
        uint64_t deadline = now_usec() + SIM_STATE_TIMEOUT_USEC;

        for (;;) {
                g_autofree char *body = NULL;
                int r;

                if (sim_http(b, "GET", "/StatusPing", false, &body) < 0)
                        return -1;
                if (strstr(body, wanted) != NULL)
                        return 0;
                if (now_usec() >= deadline)
                        return bench_error(b, "the simulator's /StatusPing says %s, not %s", body,
                                           state);
                r = bench_wait(b, never_pred, NULL, 20 * MSEC_PER_SEC);
                if (r != -ETIMEDOUT)
                        return bench_error(b, "waiting for %s: %s", state, wait_error_text(r));
        }
}

/* --- gateway ------------------------------------------------------------------------ */

/* Polls every 100 ms (then backing off) a gateway that stays STARTING;
 * Cancel lands 100-300 ms in, in a poll's sleep or its request. */
static const CancelCase gateway_wait_case = {
        .type = "gateway.wait_for_ready",
        .parameters = "      wait_timeout: 60\n"
                      "      poll_interval: 0.1\n",
        .gateway = true,
        .delay_usec = 100 * 1000ULL,
        .delay_spread_usec = 200 * 1000ULL,
};

/* StatusPing answers, then GET /data/api/v1/overview hangs. */
static const CancelCase gateway_hang_case = {
        .type = "gateway.get_health",
        .parameters = "      request_timeout: 60\n",
        .gateway = true,
        .delay_usec = GATEWAY_HANG_USEC,
        .request_held = true,
};

static bool
others_finished_pred(Bench *b, gconstpointer data)
{
        return b->n_finished_other >= GPOINTER_TO_UINT(data);
}

/* @concurrent runs of the shipped health-check playbook at once; wall time
 * from the first StartExecution to the last Finished. */
static int
gateway_concurrent(Bench *b, GString *out)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *source = NULL;
        g_autofree char *url = g_strdup_printf("http://127.0.0.1:%u", b->sim_port);
        const char *const parameters[] = { "gateway_url", url, "gateway_token", SIM_TOKEN, NULL };
        g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
        g_autofree uint64_t *start_times = g_new0(uint64_t, b->concurrent);
        g_autofree double *durations = g_new0(double, b->concurrent);
        uint64_t t0, t_started;
        double seconds, cpu0, cpu1;
        guint n_durations = 0;
        bool pass;
        int r;

        if (!g_file_get_contents(b->health_playbook, &source, NULL, &error))
                return bench_error(b, "%s", error->message);
        g_printerr("itk-bench: gateway, %u concurrent runs of %s\n", b->concurrent,
                   b->health_playbook);
        watch_reset(&b->watch, NULL);
        b->n_finished_other = 0;
        b->n_completed_other = 0;
        b->t_last_finished_other = 0;
        g_clear_pointer(&b->first_other_failure, g_free);
        b->finish_times = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

        cpu0 = read_cpu_seconds(b->daemon_pid);
        t0 = now_usec();
        for (guint i = 0; i < b->concurrent; i++) {
                char *path = NULL;

                start_times[i] = now_usec();
                if (start_execution(b, "bench-health-check", source, false, parameters, &path) <
                    0) {
                        g_clear_pointer(&b->finish_times, g_hash_table_unref);
                        return -1;
                }
                g_ptr_array_add(paths, path);
        }
        t_started = now_usec();
        r = bench_wait(b, others_finished_pred, GUINT_TO_POINTER(b->concurrent),
                       CONCURRENT_TIMEOUT_USEC);
        cpu1 = read_cpu_seconds(b->daemon_pid);
        /* Each run from its StartExecution call to its Finished: the tail
         * shows runs that waited on something (a connection, the bus). */
        for (guint i = 0; i < paths->len; i++) {
                const uint64_t *t = g_hash_table_lookup(b->finish_times, paths->pdata[i]);

                if (t != NULL)
                        durations[n_durations++] = (double)(*t - start_times[i]) / MSEC_PER_SEC;
        }
        g_clear_pointer(&b->finish_times, g_hash_table_unref);
        if (r < 0)
                return bench_error(b, "gateway: %u of %u health checks finished: %s",
                                   b->n_finished_other, b->concurrent, wait_error_text(r));
        qsort(durations, n_durations, sizeof(double), compare_double);
        if (b->n_completed_other < b->concurrent)
                bench_error(b, "gateway: %u of %u health checks did not complete; first: %s",
                            b->concurrent - b->n_completed_other, b->concurrent,
                            b->first_other_failure);

        seconds = (double)(b->t_last_finished_other - t0) / USEC_PER_SEC;
        pass = b->n_completed_other == b->concurrent;
        g_string_append_printf(out,
                               "\"health_check\":{\"executions\":%u,\"completed\":%u,"
                               "\"start_all_ms\":",
                               b->concurrent, b->n_completed_other);
        json_append_double(out, (double)(t_started - t0) / MSEC_PER_SEC, 1);
        g_string_append(out, ",\"seconds\":");
        json_append_double(out, seconds, 3);
        g_string_append(out, ",\"runs_per_sec\":");
        json_append_double(out, b->concurrent / seconds, 1);
        g_string_append(out, ",\"run_p50_ms\":");
        json_append_double(out, percentile(durations, n_durations, 0.50), 1);
        g_string_append(out, ",\"run_max_ms\":");
        json_append_double(out, n_durations > 0 ? durations[n_durations - 1] : NAN, 1);
        g_string_append(out, ",\"daemon_cpu_sec\":");
        json_append_double(out, cpu1 - cpu0, 2);
        g_string_append_printf(out, ",\"pass\":%s}", pass ? "true" : "false");
        return pass ? 0 : -1;
}

static int
section_gateway(Bench *b, GString *out)
{
        g_autofree double *latencies = g_new0(double, b->runs);
        g_autofree double *daemon_latencies = g_new0(double, b->runs);
        g_autofree double *runq_waits = g_new0(double, b->runs);
        uint32_t max_concurrent = 0;
        guint held_in_flight = 0;
        int held_after = -1;
        int result = -1;

        if (daemon_start(b) < 0)
                return -1;
        if (sim_start(b) < 0)
                goto out;
        if (sd_bus_get_property_trivial(b->bus, ITK_NAME, ITK_PATH, ITK_MANAGER_IFACE,
                                        "MaxConcurrentExecutions", NULL, 'u',
                                        &max_concurrent) < 0 ||
            max_concurrent < b->concurrent) {
                bench_error(b, "gateway: the daemon allows %u concurrent executions, not %u",
                            max_concurrent, b->concurrent);
                goto out;
        }
        g_string_append_printf(out, "\"gateway\":{\"max_concurrent_executions\":%u,",
                               max_concurrent);

        /* A restart that never ends: the gateway stays STARTING. */
        g_printerr("itk-bench: gateway cancel %s, %u runs\n", gateway_wait_case.type, b->runs);
        if (sim_post(b, "/sim/restart-never-returns?on=1", false) < 0 ||
            sim_post(b, "/data/api/v1/restart-tasks/restart?confirm=true", true) < 0 ||
            sim_wait_state(b, "STARTING") < 0)
                goto out;
        if (run_cancel_case(b, &gateway_wait_case, latencies, daemon_latencies, runq_waits, NULL) <
            0)
                goto out;
        if (!append_latencies(out, "wait_for_ready", latencies, daemon_latencies, runq_waits,
                              b->runs))
                b->targets_met = false;
        g_string_append_c(out, ',');
        if (sim_post(b, "/sim/reset", false) < 0 || sim_wait_state(b, "RUNNING") < 0)
                goto out;

        g_printerr("itk-bench: gateway cancel %s on a hung request, %u runs\n",
                   gateway_hang_case.type, b->runs);
        if (sim_post(b, "/sim/fault?path=/data/api/v1/overview&mode=hang", false) < 0)
                goto out;
        if (run_cancel_case(b, &gateway_hang_case, latencies, daemon_latencies, runq_waits,
                            &held_in_flight) < 0)
                goto out;
        if (!append_latencies(out, "hung_request", latencies, daemon_latencies, runq_waits,
                              b->runs))
                b->targets_met = false;
        /* A cancelled request must let go of its connection: the simulator
         * then drops the request it was holding. */
        for (uint64_t deadline = now_usec() + SIM_STATE_TIMEOUT_USEC;;) {
                held_after = sim_held_requests(b);
                if (held_after <= 0 || now_usec() >= deadline)
                        break;
                (void)bench_wait(b, never_pred, NULL, 20 * MSEC_PER_SEC);
        }
        if (held_after < 0)
                goto out;
        g_string_append_printf(out,
                               ",\"held_requests_in_flight_max\":%u,\"held_requests_after\":%d,",
                               held_in_flight, held_after);
        if (held_after > 0) {
                bench_error(b, "gateway: the simulator still holds %d request(s) after cancel",
                            held_after);
                goto out;
        }
        if (sim_post(b, "/sim/reset", false) < 0)
                goto out;

        if (gateway_concurrent(b, out) < 0)
                goto out;
        g_string_append_c(out, '}');
        result = 0;
out:
        watch_reset(&b->watch, NULL);
        /* What was measured before a failure is still shown: close the object. */
        if (result < 0 && out->len > 0) {
                if (out->str[out->len - 1] == ',')
                        g_string_truncate(out, out->len - 1);
                g_string_append_c(out, '}');
        }
        if (sim_stop(b) < 0)
                result = -1;
        if (daemon_stop(b) < 0)
                result = -1;
        return result;
}

/* --- cancel under load ------------------------------------------------------------ */

typedef enum {
        LOAD_IDLE,
        LOAD_CPU,
        LOAD_CHATTY,
} Load;

static const char *const load_names[] = { "idle", "cpu", "chatty" };

/* Starts the chatty run: a script printing b->chatty_lines numbered lines,
 * which the signal handler counts and checks for order. */
static int
chatty_start(Bench *b)
{
        g_autofree char *source = g_strdup_printf("name: bench chatty\n"
                                                  "version: 1\n"
                                                  "steps:\n"
                                                  "  - id: chatty\n"
                                                  "    name: chatty\n"
                                                  "    type: utility.shell\n"
                                                  "    parameters:\n"
                                                  "      command: seq 1 %u\n",
                                                  b->chatty_lines);

        g_clear_pointer(&b->chatty.path, g_free);
        g_clear_pointer(&b->chatty.final_status, g_free);
        b->chatty.lines = 0;
        b->chatty.disorder = 0;
        b->chatty.finished = false;
        if (start_execution(b, "bench-chatty", source, false, NULL, &b->chatty.path) < 0)
                return -1;
        b->chatty.runs++;
        return 0;
}

static int
get_log_last(Bench *b, const char *path, guint *ret_count, char **ret_last)
{
        _bench_cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        const char *message = NULL;
        guint count = 0;
        int r;

        r = sd_bus_call_method(b->bus, ITK_NAME, path, ITK_EXECUTION_IFACE, "GetLog", &error,
                               &reply, "u", 0);
        if (r < 0)
                return bench_error(b, "GetLog: %s", error.message ? error.message : g_strerror(-r));
        r = sd_bus_message_enter_container(reply, 'a', "(tuss)");
        while (r > 0) {
                const char *m;

                r = sd_bus_message_read(reply, "(tuss)", NULL, NULL, NULL, &m);
                if (r > 0) {
                        message = m;
                        count++;
                }
        }
        if (r < 0)
                return bench_error(b, "GetLog reply: %s", g_strerror(-r));
        *ret_count = count;
        *ret_last = g_strdup(message != NULL ? message : "");
        return 0;
}

/* The chatty run ended: every line reached the client, in order, and the
 * store's newest line is the last one. Then it starts again. */
static int
chatty_check(Bench *b, bool restart)
{
        g_autofree char *last = NULL;
        g_autofree char *expected = g_strdup_printf("%u", b->chatty_lines);
        guint count = 0;

        if (!b->chatty.finished)
                return 0;
        if (g_strcmp0(b->chatty.final_status, "completed") != 0)
                return bench_error(b, "chatty run ended %s", b->chatty.final_status);
        if (b->chatty.lines != b->chatty_lines || b->chatty.disorder > 0)
                return bench_error(b, "chatty run: %u of %u lines seen, %u out of order",
                                   b->chatty.lines, b->chatty_lines, b->chatty.disorder);
        if (get_log_last(b, b->chatty.path, &count, &last) < 0)
                return -1;
        if (strcmp(last, expected) != 0)
                return bench_error(b, "chatty run: the stored log ends with '%s', not '%s'", last,
                                   expected);
        b->chatty.verified++;
        return restart ? chatty_start(b) : 0;
}

/* Busy processes, one per core: children of ours that spin until killed. */
static int
cpu_burners_start(Bench *b)
{
        long n = sysconf(_SC_NPROCESSORS_ONLN);

        for (long i = 0; i < MIN(MAX(n, 1), (long)G_N_ELEMENTS(b->burners)); i++) {
                pid_t pid = fork();

                if (pid < 0)
                        return bench_error(b, "fork: %s", g_strerror(errno));
                if (pid == 0) {
                        volatile unsigned long spin = 0;

                        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                        if (b->own_sessions)
                                (void)setsid();
                        for (;;)
                                spin++;
                }
                b->burners[b->n_burners++] = pid;
        }
        return 0;
}

static void
cpu_burners_stop(Bench *b)
{
        for (guint i = 0; i < b->n_burners; i++) {
                (void)kill(b->burners[i], SIGKILL);
                (void)waitpid(b->burners[i], NULL, 0);
        }
        b->n_burners = 0;
}

static bool
chatty_printing_pred(Bench *b, gconstpointer data)
{
        return b->chatty.lines > 0 || b->chatty.finished;
}

static bool
chatty_finished_pred(Bench *b, gconstpointer data)
{
        return b->chatty.finished;
}

static int
load_start(Bench *b, Load load)
{
        switch (load) {
        case LOAD_IDLE:
                return 0;
        case LOAD_CPU:
                return cpu_burners_start(b);
        case LOAD_CHATTY:
                if (chatty_start(b) < 0)
                        return -1;
                /* Measured while it prints. */
                return bench_wait(b, chatty_printing_pred, NULL, STEP_START_TIMEOUT_USEC) < 0
                               ? bench_error(b, "the chatty run did not print")
                               : 0;
        }
        return 0;
}

static int
load_stop(Bench *b, Load load)
{
        int r = 0;

        cpu_burners_stop(b);
        if (load == LOAD_CHATTY && b->chatty.path != NULL) {
                r = bench_wait(b, chatty_finished_pred, NULL, THROUGHPUT_TIMEOUT_USEC);
                if (r < 0)
                        return bench_error(b, "the chatty run did not finish: %s",
                                           wait_error_text(r));
                r = chatty_check(b, false);
                g_clear_pointer(&b->chatty.path, g_free);
        }
        return r;
}

/* Appends ,"@key":p99 of @values (sorted here). */
static void
append_p99(GString *out, const char *key, double *values, guint n)
{
        qsort(values, n, sizeof(double), compare_double);
        g_string_append_c(out, ',');
        json_append_string(out, key);
        g_string_append_c(out, ':');
        json_append_double(out, percentile(values, n, 0.99), 3);
}

static int
run_load_case(Bench *b, const CancelCase *c, const char *name, double *latencies, GString *out,
              guint *ret_max_held)
{
        g_autofree double *daemon_latencies = g_new0(double, b->runs);
        g_autofree double *runq_waits = g_new0(double, b->runs);
        g_autofree double *main_waits = g_new0(double, b->runs);
        g_autofree double *bus_waits = g_new0(double, b->runs);
        g_autofree double *client_waits = g_new0(double, b->runs);
        g_autofree double *less_waits = g_new0(double, b->runs);
        int r;

        g_printerr("itk-bench: cancel under load %s: %s, %u runs\n", load_names[b->load], name,
                   b->runs);
        b->daemon_main_waits = main_waits;
        b->bus_waits = bus_waits;
        b->client_waits = client_waits;
        r = run_cancel_case(b, c, latencies, daemon_latencies, runq_waits, ret_max_held);
        b->daemon_main_waits = b->bus_waits = b->client_waits = NULL;
        if (r < 0)
                return -1;
        /* Per run, before append_latencies() sorts: what the cancel took
         * when every process on its path got a CPU the moment it could run
         * (an overlap of two waits is taken out twice: a lower bound). */
        for (guint i = 0; i < b->runs; i++)
                less_waits[i] =
                        MAX(latencies[i] - main_waits[i] - bus_waits[i] - client_waits[i], 0);
        if (!append_latencies(out, name, latencies, daemon_latencies, runq_waits, b->runs))
                b->targets_met = false;
        /* Who waited for a CPU: the daemon (at its Nice=), dbus-daemon (on
         * the path twice) or the client; and the rest, which is work. */
        g_string_truncate(out, out->len - 1);
        append_p99(out, "daemon_main_runq_wait_p99_ms", main_waits, b->runs);
        append_p99(out, "bus_runq_wait_p99_ms", bus_waits, b->runs);
        append_p99(out, "client_runq_wait_p99_ms", client_waits, b->runs);
        append_p99(out, "less_runq_waits_p99_ms", less_waits, b->runs);
        g_string_append(out, "},");
        return 0;
}

/* Cancel latency of every kind of wait (a sleep, a busy python loop, a shell
 * whose child ignores SIGTERM, a gateway poll, a request to a hung gateway)
 * with the machine idle, with every core busy, and while another run prints
 * b->chatty_lines lines (all of which must reach the client and the store). */
static int
section_cancel_load(Bench *b, GString *out)
{
        guint runs = b->runs;
        g_autofree double *latencies = NULL;
        const Load loads[] = { LOAD_IDLE, LOAD_CPU, LOAD_CHATTY };
        guint held = 0;
        int result = 0;

        int unit_nice = read_unit_nice(b->unit_path);
        const char *nice_source;
        int measured_nice = 0;

        /* 15 cases: fewer runs each in the quick mode. */
        b->runs = b->load_runs;
        latencies = g_new0(double, b->runs);

        /* As it ships: the unit's Nice=, where the bench may set it. */
        if (b->daemon_nice_given) {
                nice_source = "option";
        } else if (can_use_nice(unit_nice)) {
                b->daemon_nice = unit_nice;
                nice_source = "unit";
        } else {
                nice_source = "unit, not permitted here";
        }
        if (daemon_start(b) < 0)
                return -1;
        if (!read_nice(b->daemon_pid, &measured_nice))
                measured_nice = b->daemon_nice;
        b->daemon_nice = b->daemon_nice_given ? b->daemon_nice_option : 0;
        if (b->gateway_sim_path != NULL && sim_start(b) < 0) {
                (void)daemon_stop(b);
                return -1;
        }
        g_string_append_printf(out, "\"cancel_load\":{\"chatty_lines\":%u,", b->chatty_lines);
        g_string_append_printf(out, "\"daemon_nice\":%d,\"unit_nice\":%d,\"daemon_nice_source\":",
                               measured_nice, unit_nice);
        json_append_string(out, nice_source);
        g_string_append_printf(out, ",\"own_sessions\":%s,", b->own_sessions ? "true" : "false");
        for (size_t l = 0; l < G_N_ELEMENTS(loads) && result == 0; l++) {
                b->load = loads[l];
                json_append_string(out, load_names[b->load]);
                g_string_append_c(out, ':');
                g_string_append_c(out, '{');
                if (load_start(b, b->load) < 0) {
                        result = -1;
                        break;
                }
                g_string_append(out, "\"loadavg_start\":");
                json_append_double(out, read_loadavg(), 2);
                g_string_append_c(out, ',');
                for (size_t k = 0; k < G_N_ELEMENTS(cancel_cases) && result == 0; k++)
                        result = run_load_case(b, &cancel_cases[k], cancel_cases[k].type, latencies,
                                               out, NULL);
                if (result == 0 && b->gateway_sim_path != NULL) {
                        if (sim_post(b, "/sim/restart-never-returns?on=1", false) < 0 ||
                            sim_post(b, "/data/api/v1/restart-tasks/restart?confirm=true", true) <
                                    0 ||
                            sim_wait_state(b, "STARTING") < 0 ||
                            run_load_case(b, &gateway_wait_case, "wait_for_ready", latencies, out,
                                          NULL) < 0 ||
                            sim_post(b, "/sim/reset", false) < 0 ||
                            sim_wait_state(b, "RUNNING") < 0 ||
                            sim_post(b, "/sim/fault?path=/data/api/v1/overview&mode=hang", false) <
                                    0 ||
                            run_load_case(b, &gateway_hang_case, "hung_request", latencies, out,
                                          &held) < 0 ||
                            sim_post(b, "/sim/reset", false) < 0)
                                result = -1;
                }
                g_string_append(out, "\"loadavg_end\":");
                json_append_double(out, read_loadavg(), 2);
                if (load_stop(b, b->load) < 0)
                        result = -1;
                if (b->load == LOAD_CHATTY)
                        g_string_append_printf(out,
                                               ",\"chatty_runs\":%u,\"chatty_runs_verified\":%u,"
                                               "\"chatty_log_batches\":%u",
                                               b->chatty.runs, b->chatty.verified,
                                               b->chatty.batches);
                g_string_append(out, "},");
        }
        b->load = LOAD_IDLE;
        b->runs = runs;
        cpu_burners_stop(b);
        g_clear_pointer(&b->chatty.path, g_free);
        g_clear_pointer(&b->chatty.final_status, g_free);
        watch_reset(&b->watch, NULL);
        if (out->str[out->len - 1] == ',')
                g_string_truncate(out, out->len - 1);
        g_string_append_c(out, '}');
        if (b->gateway_sim_path != NULL && sim_stop(b) < 0)
                result = -1;
        if (daemon_stop(b) < 0)
                result = -1;
        return result;
}

/* --- main ------------------------------------------------------------------------ */

static void
bench_cleanup(Bench *b)
{
        int status;

        if (b->daemon_pid > 0)
                stop_process(&b->daemon_pid, &b->daemon_pidfd, SIGTERM, DAEMON_STOP_TIMEOUT_USEC,
                             NULL);
        if (b->sim_pid > 0)
                stop_process(&b->sim_pid, &b->sim_pidfd, SIGTERM, DAEMON_STOP_TIMEOUT_USEC, NULL);
        if (b->sim_stdout >= 0) {
                close(b->sim_stdout);
                b->sim_stdout = -1;
        }
        if (b->cancel_bus != NULL)
                b->cancel_bus = sd_bus_flush_close_unref(b->cancel_bus);
        if (b->bus != NULL)
                b->bus = sd_bus_flush_close_unref(b->bus);
        if (b->bus_pid > 0)
                stop_process(&b->bus_pid, &b->bus_pidfd, SIGTERM, DAEMON_STOP_TIMEOUT_USEC,
                             &status);
        /* Whatever a stopped daemon left behind was reparented to us. */
        {
                g_autoptr(GString) names = g_string_new(NULL);

                if (collect_leaked_processes(b, names) > 0)
                        g_printerr("itk-bench: killed left-over processes: %s\n", names->str);
        }
        if (b->bus_stdout >= 0) {
                close(b->bus_stdout);
                b->bus_stdout = -1;
        }
        if (b->tmpdir != NULL) {
                if (b->keep)
                        g_printerr("itk-bench: kept %s\n", b->tmpdir);
                else
                        (void)nftw(b->tmpdir, remove_entry_cb, 16, FTW_DEPTH | FTW_PHYS);
        }
        watch_reset(&b->watch, NULL);
        g_clear_pointer(&b->first_other_failure, g_free);
        g_clear_pointer(&b->finish_times, g_hash_table_unref);
        if (b->sigfd >= 0)
                close(b->sigfd);
}

/* Defaults for running from a build tree: the daemon sits in BUILD/daemon
 * and the simulator in BUILD/tests/gateway-sim, next to BUILD/tests/bench
 * where this program lives. */
static char *
default_build_path(const char *dir, const char *name)
{
        g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
        g_autofree char *bench_dir = NULL;
        g_autofree char *tests_dir = NULL;
        g_autofree char *build_dir = NULL;

        if (self == NULL)
                return NULL;
        bench_dir = g_path_get_dirname(self);
        tests_dir = g_path_get_dirname(bench_dir);
        build_dir = g_path_get_dirname(tests_dir);
        return g_build_filename(build_dir, dir, name, NULL);
}

static void
usage(FILE *out)
{
        fprintf(out,
                "Usage: itk-bench [OPTION...]\n"
                "Measures ignition-toolkitd on a private bus and prints JSON on stdout.\n\n"
                "  --daemon=PATH        ignition-toolkitd to run\n"
                "  --dbus-config=PATH   dbus-daemon configuration "
                "(tests/integration/dbus-test.conf)\n"
                "  --gateway-sim=PATH   itk-gateway-sim to run for the gateway section\n"
                "  --health-playbook=PATH\n"
                "                       the health-check playbook "
                "(data/playbooks/gateway/health_check.yaml)\n"
                "  --only=SECTION       cancel, throughput, memory, gateway, bad_input or "
                "cancel_load (may repeat)\n"
                "  --runs=N             cancel runs per step type (default 200)\n"
                "  --steps=N            steps of the throughput playbook (default 10000)\n"
                "  --executions=N       paused executions for the memory section (default 1000)\n"
                "  --concurrent=N       concurrent health checks for the gateway section "
                "(default 100)\n"
                "  --chatty-lines=N     lines the chatty run of cancel_load prints (default "
                "200000)\n"
                "  --quick              20 runs, 1000 steps, 100 executions, 20 health checks,\n"
                "                       5 runs per case and 20000 chatty lines for cancel_load\n"
                "  --keep               keep the temporary folder (logs, history)\n"
                "  --no-sandbox         run scripts unconfined ([Sandbox] Enabled=false)\n"
                "  --daemon-nice=N      the daemon's nice value in every section (default: the\n"
                "                       unit's Nice= for cancel_load when permitted, else 0)\n"
                "  --unit=PATH          the daemon's unit, for its Nice= "
                "(data/ignition-toolkit.service.in)\n"
                "  --own-sessions       dbus-daemon, the daemon and each CPU burner in a session\n"
                "                       of its own, as systemd and logins start them: the\n"
                "                       kernel's autogroups then split them as in production\n"
                "  --help               show this help\n");
}

static int
parse_uint_option(const char *name, const char *text, guint *ret)
{
        char *end = NULL;
        unsigned long value;

        errno = 0;
        value = strtoul(text, &end, 10);
        if (errno != 0 || end == text || *end != '\0' || value == 0 || value > 1000000) {
                fprintf(stderr, "itk-bench: --%s wants a number from 1 to 1000000, not '%s'\n",
                        name, text);
                return -1;
        }
        *ret = (guint)value;
        return 0;
}

static int
parse_options(Bench *b, int argc, char **argv)
{
        enum {
                OPT_DAEMON = 256,
                OPT_DBUS_CONFIG,
                OPT_GATEWAY_SIM,
                OPT_HEALTH_PLAYBOOK,
                OPT_ONLY,
                OPT_RUNS,
                OPT_STEPS,
                OPT_EXECUTIONS,
                OPT_CONCURRENT,
                OPT_NO_SANDBOX,
                OPT_CHATTY_LINES,
                OPT_DAEMON_NICE,
                OPT_UNIT,
                OPT_OWN_SESSIONS,
        };
        static const struct option options[] = {
                { "daemon", required_argument, NULL, OPT_DAEMON },
                { "dbus-config", required_argument, NULL, OPT_DBUS_CONFIG },
                { "gateway-sim", required_argument, NULL, OPT_GATEWAY_SIM },
                { "health-playbook", required_argument, NULL, OPT_HEALTH_PLAYBOOK },
                { "only", required_argument, NULL, OPT_ONLY },
                { "runs", required_argument, NULL, OPT_RUNS },
                { "steps", required_argument, NULL, OPT_STEPS },
                { "executions", required_argument, NULL, OPT_EXECUTIONS },
                { "concurrent", required_argument, NULL, OPT_CONCURRENT },
                { "no-sandbox", no_argument, NULL, OPT_NO_SANDBOX },
                { "chatty-lines", required_argument, NULL, OPT_CHATTY_LINES },
                { "daemon-nice", required_argument, NULL, OPT_DAEMON_NICE },
                { "unit", required_argument, NULL, OPT_UNIT },
                { "own-sessions", no_argument, NULL, OPT_OWN_SESSIONS },
                { "quick", no_argument, NULL, 'q' },
                { "keep", no_argument, NULL, 'k' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        guint runs = 0, steps = 0, executions = 0, concurrent = 0;
        int c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
                switch (c) {
                case OPT_DAEMON:
                        g_free(b->daemon_path);
                        b->daemon_path = g_canonicalize_filename(optarg, NULL);
                        break;
                case OPT_DBUS_CONFIG:
                        g_free(b->dbus_config);
                        b->dbus_config = g_canonicalize_filename(optarg, NULL);
                        break;
                case OPT_GATEWAY_SIM:
                        g_free(b->gateway_sim_path);
                        b->gateway_sim_path = g_canonicalize_filename(optarg, NULL);
                        break;
                case OPT_HEALTH_PLAYBOOK:
                        g_free(b->health_playbook);
                        b->health_playbook = g_canonicalize_filename(optarg, NULL);
                        break;
                case OPT_NO_SANDBOX:
                        b->no_sandbox = TRUE;
                        break;
                case OPT_OWN_SESSIONS:
                        b->own_sessions = true;
                        break;
                case OPT_CHATTY_LINES:
                        if (parse_uint_option("chatty-lines", optarg, &b->chatty_lines) < 0)
                                return -1;
                        break;
                case OPT_DAEMON_NICE: {
                        char *end = NULL;
                        long value;

                        errno = 0;
                        value = strtol(optarg, &end, 10);
                        if (errno != 0 || end == optarg || *end != '\0' || value < -20 ||
                            value > 19) {
                                fprintf(stderr,
                                        "itk-bench: --daemon-nice wants a number from -20 to 19, "
                                        "not '%s'\n",
                                        optarg);
                                return -1;
                        }
                        b->daemon_nice_given = true;
                        b->daemon_nice_option = (int)value;
                        b->daemon_nice = (int)value;
                        break;
                }
                case OPT_UNIT:
                        g_free(b->unit_path);
                        b->unit_path = g_canonicalize_filename(optarg, NULL);
                        break;
                case OPT_ONLY:
                        if (strcmp(optarg, "cancel") == 0)
                                b->sections |= SECTION_CANCEL;
                        else if (strcmp(optarg, "throughput") == 0)
                                b->sections |= SECTION_THROUGHPUT;
                        else if (strcmp(optarg, "memory") == 0)
                                b->sections |= SECTION_MEMORY;
                        else if (strcmp(optarg, "gateway") == 0)
                                b->sections |= SECTION_GATEWAY;
                        else if (strcmp(optarg, "bad_input") == 0)
                                b->sections |= SECTION_BAD_INPUT;
                        else if (strcmp(optarg, "cancel_load") == 0)
                                b->sections |= SECTION_CANCEL_LOAD;
                        else {
                                fprintf(stderr, "itk-bench: --only wants cancel, throughput, "
                                                "memory, gateway, bad_input or cancel_load\n");
                                return -1;
                        }
                        break;
                case OPT_RUNS:
                        if (parse_uint_option("runs", optarg, &runs) < 0)
                                return -1;
                        break;
                case OPT_STEPS:
                        if (parse_uint_option("steps", optarg, &steps) < 0)
                                return -1;
                        break;
                case OPT_EXECUTIONS:
                        if (parse_uint_option("executions", optarg, &executions) < 0)
                                return -1;
                        break;
                case OPT_CONCURRENT:
                        if (parse_uint_option("concurrent", optarg, &concurrent) < 0)
                                return -1;
                        break;
                case 'q':
                        b->quick = TRUE;
                        break;
                case 'k':
                        b->keep = TRUE;
                        break;
                case 'h':
                        usage(stdout);
                        exit(EXIT_SUCCESS);
                default:
                        usage(stderr);
                        return -1;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "itk-bench: unexpected argument '%s'\n", argv[optind]);
                return -1;
        }
        b->runs = runs > 0 ? runs : b->quick ? 20 : 200;
        b->steps = steps > 0 ? steps : b->quick ? 1000 : 10000;
        b->executions = executions > 0 ? executions : b->quick ? 100 : 1000;
        b->concurrent = concurrent > 0 ? concurrent : b->quick ? 20 : 100;
        if (b->chatty_lines == 0)
                b->chatty_lines = b->quick ? 20000 : 200000;
        b->load_runs = runs > 0 ? runs : b->quick ? 5 : 200;
        if (b->sections == 0)
                b->sections = SECTION_CANCEL | SECTION_THROUGHPUT | SECTION_MEMORY |
                              SECTION_GATEWAY | SECTION_BAD_INPUT | SECTION_CANCEL_LOAD;
        if (b->daemon_path == NULL)
                b->daemon_path = default_build_path("daemon", "ignition-toolkitd");
        if (b->gateway_sim_path == NULL)
                b->gateway_sim_path = default_build_path("tests/gateway-sim", "itk-gateway-sim");
        if (b->dbus_config == NULL)
                b->dbus_config = g_strdup(ITK_BENCH_DBUS_CONFIG);
        if (b->unit_path == NULL)
                b->unit_path = g_strdup(ITK_BENCH_UNIT);
        if (b->daemon_nice_given && !can_use_nice(b->daemon_nice_option)) {
                fprintf(stderr,
                        "itk-bench: --daemon-nice=%d: this user may not lower a nice value\n",
                        b->daemon_nice_option);
                return -1;
        }
        if (b->health_playbook == NULL)
                b->health_playbook = g_strdup(ITK_BENCH_HEALTH_PLAYBOOK);
        if (b->daemon_path == NULL || !g_file_test(b->daemon_path, G_FILE_TEST_IS_EXECUTABLE)) {
                fprintf(stderr, "itk-bench: no daemon at %s; use --daemon=PATH\n",
                        b->daemon_path != NULL ? b->daemon_path : "(unknown)");
                return -1;
        }
        if ((b->sections & SECTION_GATEWAY) &&
            (b->gateway_sim_path == NULL ||
             !g_file_test(b->gateway_sim_path, G_FILE_TEST_IS_EXECUTABLE))) {
                fprintf(stderr,
                        "itk-bench: no gateway simulator at %s; use --gateway-sim=PATH "
                        "or leave the gateway section out with --only\n",
                        b->gateway_sim_path != NULL ? b->gateway_sim_path : "(unknown)");
                return -1;
        }
        if ((b->sections & SECTION_GATEWAY) &&
            !g_file_test(b->health_playbook, G_FILE_TEST_IS_REGULAR)) {
                fprintf(stderr,
                        "itk-bench: no health-check playbook at %s; "
                        "use --health-playbook=PATH\n",
                        b->health_playbook);
                return -1;
        }
        if (!g_file_test(b->dbus_config, G_FILE_TEST_IS_REGULAR)) {
                fprintf(stderr,
                        "itk-bench: no dbus-daemon configuration at %s; "
                        "use --dbus-config=PATH\n",
                        b->dbus_config);
                return -1;
        }
        return 0;
}

int
main(int argc, char **argv)
{
        g_autoptr(GError) error = NULL;
        struct utsname uts;
        sigset_t mask;
        Bench b = {
                .bus_pidfd = -1,
                .bus_stdout = -1,
                .daemon_pidfd = -1,
                .sim_pidfd = -1,
                .sim_stdout = -1,
                .sigfd = -1,
        };
        g_autoptr(GString) json = g_string_new(NULL);
        const struct {
                Section section;
                int (*run)(Bench *b, GString *out);
        } sections[] = {
                { SECTION_CANCEL, section_cancel },
                { SECTION_THROUGHPUT, section_throughput },
                { SECTION_MEMORY, section_memory },
                { SECTION_GATEWAY, section_gateway },
                { SECTION_BAD_INPUT, section_bad_input },
                { SECTION_CANCEL_LOAD, section_cancel_load },
        };
        int result = 0;

        if (parse_options(&b, argc, argv) < 0)
                return 2;
        b.errors = g_ptr_array_new_with_free_func(g_free);
        b.targets_met = true;

        /* Signals arrive through a signalfd so every exit path cleans up. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        b.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        /* Orphans of cancelled steps come to us, so leaks can be counted. */
        (void)prctl(PR_SET_CHILD_SUBREAPER, 1);

        b.tmpdir = g_dir_make_tmp("itk-bench-XXXXXX", &error);
        if (b.tmpdir == NULL) {
                fprintf(stderr, "itk-bench: %s\n", error->message);
                return 1;
        }

        if (uname(&uts) < 0)
                memset(&uts, 0, sizeof(uts));
        g_string_append(json, "{\"benchmark\":\"itk-bench\",\"format\":1,\"mode\":");
        json_append_string(json, b.quick ? "quick" : "full");
        g_string_append(json, ",\"daemon\":");
        json_append_string(json, b.daemon_path);
        g_string_append_printf(json, ",\"cpus\":%ld,\"kernel\":", sysconf(_SC_NPROCESSORS_ONLN));
        json_append_string(json, uts.release);
        g_string_append_c(json, ',');
        append_scheduler(json, uts.release);
        g_string_append(json, "\"loadavg_start\":");
        json_append_double(json, read_loadavg(), 2);
        g_string_append_c(json, ',');

        if (b.sigfd < 0)
                result = bench_error(&b, "signalfd: %s", g_strerror(errno));
        if (result == 0)
                result = write_config(&b);
        if (result == 0)
                result = bus_start(&b);

        for (size_t i = 0; i < G_N_ELEMENTS(sections); i++) {
                g_autoptr(GString) out = g_string_new(NULL);

                if (result < 0 || b.interrupted || !(b.sections & sections[i].section))
                        continue;
                if (sections[i].run(&b, out) < 0)
                        result = -1;
                /* What a failed section measured before failing is still shown. */
                if (out->len > 0)
                        g_string_append_printf(json, "%s,", out->str);
        }

        bench_cleanup(&b);

        g_string_append(json, "\"loadavg_end\":");
        json_append_double(json, read_loadavg(), 2);
        g_string_append_printf(json, ",\"targets_met\":%s,\"errors\":[",
                               result == 0 && b.targets_met ? "true" : "false");
        for (guint i = 0; i < b.errors->len; i++) {
                if (i > 0)
                        g_string_append_c(json, ',');
                json_append_string(json, b.errors->pdata[i]);
        }
        g_string_append(json, "]}\n");
        fputs(json->str, stdout);
        fflush(stdout);

        if (b.errors->len > 0)
                result = -1;
        g_ptr_array_unref(b.errors);
        g_free(b.tmpdir);
        g_free(b.bus_address);
        g_free(b.daemon_log);
        g_free(b.daemon_path);
        g_free(b.dbus_config);
        g_free(b.unit_path);
        g_free(b.gateway_sim_path);
        g_free(b.health_playbook);
        g_free(b.sim_log);
        return result < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
