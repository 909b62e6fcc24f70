/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

G_BEGIN_DECLS

#define _cleanup_(f) __attribute__((cleanup(f)))

#define CTL_BUS_NAME "org.ignition.Toolkit"
#define CTL_MANAGER_PATH "/org/ignition/Toolkit"
#define CTL_EXECUTION_PREFIX "/org/ignition/Toolkit/execution/"
#define CTL_MANAGER_IFACE "org.ignition.Toolkit.Manager"
#define CTL_EXECUTION_IFACE "org.ignition.Toolkit.Execution"
#define CTL_ERROR_PREFIX "org.ignition.Toolkit.Error."

/* Exit statuses (documented in ignitionctl(1)); sysexits.h values where one fits. */
enum {
        CTL_EXIT_OK = 0,
        CTL_EXIT_FAILURE = 1,      /* the run failed, or the request did */
        CTL_EXIT_CANCELLED = 2,    /* the followed run ended cancelled */
        CTL_EXIT_USAGE = 64,       /* EX_USAGE */
        CTL_EXIT_DATAERR = 65,     /* EX_DATAERR: invalid playbook or parameters */
        CTL_EXIT_NOINPUT = 66,     /* EX_NOINPUT: no such execution, playbook, file */
        CTL_EXIT_UNAVAILABLE = 69, /* EX_UNAVAILABLE: daemon or bus missing */
        CTL_EXIT_TEMPFAIL = 75,    /* EX_TEMPFAIL: limits exceeded */
        CTL_EXIT_NOPERM = 77,      /* EX_NOPERM: access denied */
        CTL_EXIT_DETACHED = 130,   /* a second Ctrl-C left the run going */
};

typedef enum {
        CTL_BUS_SYSTEM,
        CTL_BUS_USER,
        CTL_BUS_ADDRESS,
} CtlBusType;

typedef struct {
        CtlBusType bus_type;
        char *bus_address;
        sd_bus *bus; /* connected on first use */

        gboolean json;
        gboolean json_pretty;
        gboolean quiet;
        gboolean no_pager;
        gboolean color;

        /* Verb options. */
        GPtrArray *params; /* "name=value" */
        char *credential;
        char *gateway_url;
        gboolean debug;
        gboolean no_follow;
        gboolean follow;
        guint limit;
        char *status_filter;
        char *username;
        char *description;
        gboolean token;
        gboolean no_secret;
        /* history and log paging. */
        char *since;
        char *until;
        char *playbook_filter;
        char *text_filter;
        guint page_size; /* 0: the daemon's default */
        gboolean all;
        char *output;  /* artifact, live: -o FILE */
        gboolean info; /* live --info */
        /* run --file: "name=local path" each */
        GPtrArray *files;
} CtlContext;

/* ctl-main.c */
void ctl_error(const char *format, ...) G_GNUC_PRINTF(1, 2);
/* Connects on first use; prints the problem and returns an exit status on failure. */
int ctl_get_bus(CtlContext *ctx, sd_bus **ret);
/* Prints "ignitionctl: WHAT: problem" for a failed call and returns the exit status
 * that fits the D-Bus error (a missing daemon says how to start it). */
int ctl_bus_error(CtlContext *ctx, const sd_bus_error *error, int r, const char *format, ...)
        G_GNUC_PRINTF(4, 5);
/* Calls a Manager method; on failure prints and returns a positive exit status. */
int ctl_call_manager(CtlContext *ctx, const char *method, sd_bus_message **reply, const char *what,
                     const char *types, ...);

/* ctl-output.c */
JsonNode *ctl_json_read_value(sd_bus_message *m, int *r);
/* Reads the rest of the message (one value) as JSON; NULL with -errno in *r. */
JsonNode *ctl_json_read_reply(sd_bus_message *m, int *r);
void ctl_json_print(CtlContext *ctx, JsonNode *node);
const char *ctl_json_get_string(JsonObject *o, const char *key);
gint64 ctl_json_get_int(JsonObject *o, const char *key, gint64 fallback);
gboolean ctl_json_get_bool(JsonObject *o, const char *key);
JsonArray *ctl_json_get_array(JsonObject *o, const char *key);

char *ctl_format_duration(guint64 usec);
/* Local time, "2026-11-24 13:30:05"; "-" for 0. */
char *ctl_format_timestamp(guint64 usec);
guint64 ctl_now_realtime(void);
guint64 ctl_now_monotonic(void);

const char *ctl_color_status(CtlContext *ctx, const char *status);
const char *ctl_color_reset(CtlContext *ctx);

typedef struct _CtlTable CtlTable;
CtlTable *ctl_table_new(const char *first_header, ...) G_GNUC_NULL_TERMINATED;
void ctl_table_add_row(CtlTable *table, const char *first_cell, ...);
/* Cells are copied; a NULL cell prints as "-". */
void ctl_table_add_rowv(CtlTable *table, const char *const *cells);
guint ctl_table_get_rows(CtlTable *table);
void ctl_table_print(CtlContext *ctx, CtlTable *table);
void ctl_table_free(CtlTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CtlTable, ctl_table_free)

/* ctl-executions.c: ids. */
/* "0123abcd..." (32 hex) -> dashed, or NULL. */
char *ctl_id_from_hex(const char *hex);
char *ctl_execution_path(const char *id);
/* Resolves a unique prefix of a live or recorded execution id. Fills the
 * dashed id and, when it is on the bus, its object path (else NULL). */
int ctl_resolve_execution(CtlContext *ctx, const char *arg, char **ret_id, char **ret_path);
/* The lines of a Log or LogBatch signal (a burst in one message), oldest
 * first, to @func; other members are ignored. */
typedef void (*CtlLogLineFunc)(void *data, uint64_t usec, uint32_t priority, const char *step_id,
                               const char *message);
void ctl_read_log_lines(sd_bus_message *m, CtlLogLineFunc func, void *data);

/* Verbs: each returns an exit status. */
int ctl_verb_run(CtlContext *ctx, int argc, char **argv);
int ctl_verb_list(CtlContext *ctx, int argc, char **argv);
int ctl_verb_status(CtlContext *ctx, int argc, char **argv);
int ctl_verb_steps(CtlContext *ctx, int argc, char **argv);
int ctl_verb_log(CtlContext *ctx, int argc, char **argv);
int ctl_verb_control(CtlContext *ctx, int argc, char **argv);
int ctl_verb_debug(CtlContext *ctx, int argc, char **argv);
int ctl_verb_history(CtlContext *ctx, int argc, char **argv);
int ctl_verb_forget(CtlContext *ctx, int argc, char **argv);
/* ctl-history.c: every stored log line of a run, a page at a time. */
int ctl_history_load_log_pages(CtlContext *ctx, const char *id, JsonArray **ret);
int ctl_verb_playbooks(CtlContext *ctx, int argc, char **argv);
int ctl_verb_show(CtlContext *ctx, int argc, char **argv);
int ctl_verb_validate(CtlContext *ctx, int argc, char **argv);
int ctl_verb_credential(CtlContext *ctx, int argc, char **argv);
int ctl_verb_artifacts(CtlContext *ctx, int argc, char **argv);
int ctl_verb_artifact(CtlContext *ctx, int argc, char **argv);
int ctl_verb_playbook(CtlContext *ctx, int argc, char **argv);
/* ctl-live.c */
int ctl_verb_live(CtlContext *ctx, int argc, char **argv);

G_END_DECLS
