/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* The simulated gateway's state: its configuration, modules, projects,
 * tokens, faults and the restart state machine. It knows nothing of HTTP
 * (sim-routes.c maps it onto the API); its delays are GSource timers. */

typedef enum {
        ITK_SIM_PHASE_RUNNING,
        ITK_SIM_PHASE_RESTART_PENDING, /* restart accepted, still answering */
        ITK_SIM_PHASE_STARTING,        /* StatusPing STARTING, /data 503 */
        ITK_SIM_PHASE_OFFLINE,         /* --offline-time: every connection dropped */
} ItkSimPhase;

typedef enum {
        ITK_SIM_FAULT_NONE,
        ITK_SIM_FAULT_HANG,
        ITK_SIM_FAULT_DROP,
        ITK_SIM_FAULT_SLOW,
        ITK_SIM_FAULT_500,
        ITK_SIM_FAULT_HTML500,
} ItkSimFaultMode;

typedef enum {
        ITK_SIM_AUTH_MISSING, /* no header, key alone, unknown name or wrong key */
        ITK_SIM_AUTH_READONLY,
        ITK_SIM_AUTH_FULL,
} ItkSimAuth;

typedef struct {
        char *id;
        char *name;
        char *version;
        char *description;
        char *vendor;
        gboolean active;       /* ACTIVE, else INACTIVE (installed, waiting for a restart) */
        char *pending_version; /* an upgrade installed, applied at the next restart */
        char *pending_name;
        char *required_version; /* from module.xml; a newer one quarantines at restart */
        gint64 startup_time;    /* ms since the epoch */
} ItkSimModule;

/* An uploaded .modl that is not installed yet. */
typedef struct {
        char *id;
        char *name;
        char *version;
        char *description;
        char *vendor;
        char *file_name;
        char *required_version;
        char *reason; /* set when quarantined for another reason than acceptance */
        gboolean contains_cert;
        gboolean cert_accepted;
        gboolean contains_eula;
        gboolean eula_accepted;
} ItkSimUpload;

typedef struct {
        char *name;
        char *title;
        char *description;
        char *parent;
        gboolean enabled;
        gboolean inheritable;
        char *uuid;
        gint64 last_modified; /* ms since the epoch */
        GBytes *archive;      /* as imported, so export gives it back; NULL = generated */
} ItkSimProject;

typedef struct {
        char *glob;
        GPatternSpec *spec;
        ItkSimFaultMode mode;
        guint slow_ms;
} ItkSimFault;

typedef struct {
        /* command line */
        char *version; /* "8.3.6", "8.1.44" */
        gboolean seed_commissioned;
        guint restart_delay_ms;
        guint startup_time_ms;
        /* Between RESTART_PENDING and STARTING, as a real gateway whose
         * web server is down while its JVM restarts (0: no such phase). */
        guint offline_time_ms;
        gboolean seed_restart_never_returns;
        GPtrArray *seed_modules;  /* of ItkSimModule */
        GPtrArray *seed_projects; /* of char* */
        GPtrArray *seed_faults;   /* of ItkSimFault */
        gboolean trial_expired_at_start;

        /* runtime */
        char *gateway_name;
        guint port;
        gboolean commissioned;
        gboolean restart_never_returns;
        ItkSimPhase phase;
        GPtrArray *modules;  /* of ItkSimModule, installed */
        GPtrArray *uploads;  /* of ItkSimUpload */
        GPtrArray *projects; /* of ItkSimProject, sorted by name */
        GPtrArray *faults;   /* of ItkSimFault */
        GPtrArray *pending;  /* of char*, human descriptions of restart-needing changes */
        GHashTable *tokens;  /* name -> ItkSimToken */
        GHashTable *counts;  /* route key -> GUINT_TO_POINTER(n) */
        JsonObject *last_headers;
        char *last_request;
        JsonObject *last_restore;
        JsonObject *last_upload;
        guint restart_count;
        gint64 started_at;    /* monotonic us: uptime */
        gint64 trial_ends_at; /* monotonic us */
        guint phase_source;
} ItkSimState;

ItkSimState *itk_sim_state_new(void);
void itk_sim_state_free(ItkSimState *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkSimState, itk_sim_state_free)

/* Configuration, before itk_sim_state_reset(). */
gboolean itk_sim_state_add_token(ItkSimState *self, const char *spec, gboolean readonly,
                                 GError **error);
gboolean itk_sim_state_add_seed_module(ItkSimState *self, const char *spec, GError **error);
void itk_sim_state_add_seed_project(ItkSimState *self, const char *name);
gboolean itk_sim_state_add_seed_fault(ItkSimState *self, const char *spec, GError **error);
/* TRUE when the version has the 8.3 REST API. */
gboolean itk_sim_state_has_rest_api(ItkSimState *self);
char *itk_sim_state_dup_full_version(ItkSimState *self);

/* Back to the configured state: seeds, RUNNING, no runtime faults, counts cleared. */
void itk_sim_state_reset(ItkSimState *self);

/* Tokens: base64url(SHA-256(raw key)), as the gateway stores them. */
char *itk_sim_token_hash(const char *key);
ItkSimAuth itk_sim_state_check_token(ItkSimState *self, const char *header);

/* Faults: MODE is hang | drop | slow:MS | 500 | html500 | none. */
gboolean itk_sim_fault_parse_mode(const char *mode, ItkSimFaultMode *out_mode, guint *out_ms,
                                  GError **error);
const char *itk_sim_fault_mode_to_string(ItkSimFaultMode mode);
gboolean itk_sim_state_set_fault(ItkSimState *self, const char *glob, const char *mode,
                                 GError **error);
ItkSimFault *itk_sim_state_find_fault(ItkSimState *self, const char *path);

/* Restart state machine. */
const char *itk_sim_phase_to_string(ItkSimPhase phase);
void itk_sim_state_restart(ItkSimState *self);
void itk_sim_state_begin_starting(ItkSimState *self);
void itk_sim_state_set_restart_never_returns(ItkSimState *self, gboolean on);
gint64 itk_sim_state_get_uptime_ms(ItkSimState *self);

/* Trial. */
gint64 itk_sim_state_get_trial_seconds_left(ItkSimState *self);
void itk_sim_state_set_trial_expired(ItkSimState *self, gboolean expired);

/* Modules. */
ItkSimModule *itk_sim_state_find_module(ItkSimState *self, const char *id);
ItkSimUpload *itk_sim_state_find_upload(ItkSimState *self, const char *id);
/* Parses a .modl; on success the upload replaces any earlier one of its id. */
ItkSimUpload *itk_sim_state_upload_module(ItkSimState *self, GBytes *modl, const char *file_name,
                                          GError **error);
/* Moves an accepted upload into the installed modules: INACTIVE, or an
 * upgrade of the installed one; both wait for the next restart. */
void itk_sim_state_install_module(ItkSimState *self, ItkSimUpload *upload);
gboolean itk_sim_state_uninstall_module(ItkSimState *self, const char *id);

/* Projects. */
ItkSimProject *itk_sim_state_find_project(ItkSimState *self, const char *name);
GBytes *itk_sim_state_export_project(ItkSimState *self, ItkSimProject *project);
/* FALSE with @error for an archive that is no project export. */
gboolean itk_sim_state_import_project(ItkSimState *self, const char *name, GBytes *archive,
                                      GError **error);

/* Backups. */
GBytes *itk_sim_state_make_backup(ItkSimState *self, gboolean all);
gboolean itk_sim_state_restore_backup(ItkSimState *self, GBytes *gwbk, GError **error);

void itk_sim_state_count(ItkSimState *self, const char *route_key);
JsonNode *itk_sim_state_to_json(ItkSimState *self);
JsonNode *itk_sim_module_to_json(ItkSimModule *module);
JsonNode *itk_sim_upload_to_json(ItkSimUpload *upload);
JsonNode *itk_sim_project_to_json(ItkSimProject *project);

G_END_DECLS
