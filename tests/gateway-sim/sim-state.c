/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "sim-state.h"

#include <gio/gio.h>
#include <string.h>

#include "sim-zip.h"

#define ITK_SIM_BUILD "b2026042713"
#define ITK_SIM_TRIAL_SECONDS 7200
#define ITK_SIM_MAX_XML (1024 * 1024)

typedef struct {
        char *name;
        char *hash;
        gboolean readonly;
} ItkSimToken;

static void
itk_sim_token_free(gpointer p)
{
        ItkSimToken *t = p;
        g_free(t->name);
        g_free(t->hash);
        g_free(t);
}

static ItkSimModule *
itk_sim_module_new(const char *id, const char *name, const char *version)
{
        ItkSimModule *m = g_new0(ItkSimModule, 1);

        m->id = g_strdup(id);
        m->name = g_strdup(name);
        m->version = g_strdup(version);
        m->description = g_strdup_printf("%s module", name);
        m->vendor =
                g_strdup(g_str_has_prefix(id, "com.inductiveautomation.") ? "Inductive Automation"
                                                                          : "Third Party");
        m->active = TRUE;
        m->startup_time = g_get_real_time() / 1000;
        return m;
}

static ItkSimModule *
itk_sim_module_copy(const ItkSimModule *src)
{
        ItkSimModule *m = itk_sim_module_new(src->id, src->name, src->version);

        g_free(m->description);
        m->description = g_strdup(src->description);
        g_free(m->vendor);
        m->vendor = g_strdup(src->vendor);
        return m;
}

static void
itk_sim_module_free(gpointer p)
{
        ItkSimModule *m = p;
        g_free(m->id);
        g_free(m->name);
        g_free(m->version);
        g_free(m->description);
        g_free(m->vendor);
        g_free(m->pending_version);
        g_free(m->pending_name);
        g_free(m->required_version);
        g_free(m);
}

static void
itk_sim_upload_free(gpointer p)
{
        ItkSimUpload *u = p;
        g_free(u->id);
        g_free(u->name);
        g_free(u->version);
        g_free(u->description);
        g_free(u->vendor);
        g_free(u->file_name);
        g_free(u->required_version);
        g_free(u->reason);
        g_free(u);
}

static ItkSimProject *
itk_sim_project_new(const char *name)
{
        ItkSimProject *p = g_new0(ItkSimProject, 1);

        p->name = g_strdup(name);
        p->title = g_strdup("");
        p->description = g_strdup("");
        p->parent = g_strdup("");
        p->enabled = TRUE;
        p->uuid = g_uuid_string_random();
        p->last_modified = g_get_real_time() / 1000;
        return p;
}

static void
itk_sim_project_free(gpointer p)
{
        ItkSimProject *pr = p;
        g_free(pr->name);
        g_free(pr->title);
        g_free(pr->description);
        g_free(pr->parent);
        g_free(pr->uuid);
        g_clear_pointer(&pr->archive, g_bytes_unref);
        g_free(pr);
}

static void
itk_sim_fault_free(gpointer p)
{
        ItkSimFault *f = p;
        g_free(f->glob);
        g_pattern_spec_free(f->spec);
        g_free(f);
}

static ItkSimFault *
itk_sim_fault_new(const char *glob, ItkSimFaultMode mode, guint ms)
{
        ItkSimFault *f = g_new0(ItkSimFault, 1);

        f->glob = g_strdup(glob);
        f->spec = g_pattern_spec_new(glob);
        f->mode = mode;
        f->slow_ms = ms;
        return f;
}

ItkSimState *
itk_sim_state_new(void)
{
        ItkSimState *self = g_new0(ItkSimState, 1);

        self->version = g_strdup("8.3.6");
        self->seed_commissioned = TRUE;
        self->commissioned = TRUE;
        self->restart_delay_ms = 500;
        self->startup_time_ms = 1500;
        self->port = 8088;
        self->seed_modules = g_ptr_array_new_with_free_func(itk_sim_module_free);
        self->seed_projects = g_ptr_array_new_with_free_func(g_free);
        self->seed_faults = g_ptr_array_new_with_free_func(itk_sim_fault_free);
        self->modules = g_ptr_array_new_with_free_func(itk_sim_module_free);
        self->uploads = g_ptr_array_new_with_free_func(itk_sim_upload_free);
        self->projects = g_ptr_array_new_with_free_func(itk_sim_project_free);
        self->faults = g_ptr_array_new_with_free_func(itk_sim_fault_free);
        self->pending = g_ptr_array_new_with_free_func(g_free);
        self->tokens = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, itk_sim_token_free);
        self->counts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        return self;
}

void
itk_sim_state_free(ItkSimState *self)
{
        if (self == NULL)
                return;
        g_clear_handle_id(&self->phase_source, g_source_remove);
        g_free(self->version);
        g_free(self->gateway_name);
        g_ptr_array_unref(self->seed_modules);
        g_ptr_array_unref(self->seed_projects);
        g_ptr_array_unref(self->seed_faults);
        g_ptr_array_unref(self->modules);
        g_ptr_array_unref(self->uploads);
        g_ptr_array_unref(self->projects);
        g_ptr_array_unref(self->faults);
        g_ptr_array_unref(self->pending);
        g_hash_table_unref(self->tokens);
        g_hash_table_unref(self->counts);
        g_clear_pointer(&self->last_headers, json_object_unref);
        g_clear_pointer(&self->last_restore, json_object_unref);
        g_clear_pointer(&self->last_upload, json_object_unref);
        g_free(self->last_request);
        g_free(self);
}

/* ---- versions ---- */

static int
itk_sim_version_compare(const char *a, const char *b)
{
        g_auto(GStrv) pa = g_strsplit(a, ".", -1);
        g_auto(GStrv) pb = g_strsplit(b, ".", -1);

        for (guint i = 0; pa[i] != NULL || pb[i] != NULL; i++) {
                gint64 x = pa[i] != NULL ? g_ascii_strtoll(pa[i], NULL, 10) : 0;
                gint64 y = pb[i] != NULL ? g_ascii_strtoll(pb[i], NULL, 10) : 0;

                if (x != y)
                        return x < y ? -1 : 1;
                if (pa[i] == NULL || pb[i] == NULL)
                        break;
        }
        return 0;
}

gboolean
itk_sim_state_has_rest_api(ItkSimState *self)
{
        return itk_sim_version_compare(self->version, "8.3") >= 0;
}

char *
itk_sim_state_dup_full_version(ItkSimState *self)
{
        return g_strdup_printf("%s (%s)", self->version, ITK_SIM_BUILD);
}

/* ---- tokens ---- */

static char *
itk_sim_base64url(const guint8 *data, gsize len)
{
        g_autofree char *b64 = g_base64_encode(data, len);
        gsize n = strlen(b64);

        while (n > 0 && b64[n - 1] == '=')
                b64[--n] = '\0';
        for (char *p = b64; *p != '\0'; p++) {
                if (*p == '+')
                        *p = '-';
                else if (*p == '/')
                        *p = '_';
        }
        return g_steal_pointer(&b64);
}

/* Strict base64url without padding; NULL for anything else. */
static guint8 *
itk_sim_base64url_decode(const char *text, gsize *out_len)
{
        gsize n = strlen(text);
        g_autoptr(GString) std = NULL;

        if (n == 0 || n % 4 == 1)
                return NULL;
        std = g_string_sized_new(n + 3);
        for (const char *p = text; *p != '\0'; p++) {
                if (g_ascii_isalnum(*p))
                        g_string_append_c(std, *p);
                else if (*p == '-')
                        g_string_append_c(std, '+');
                else if (*p == '_')
                        g_string_append_c(std, '/');
                else
                        return NULL;
        }
        while (std->len % 4 != 0)
                g_string_append_c(std, '=');
        return g_base64_decode(std->str, out_len);
}

char *
itk_sim_token_hash(const char *key)
{
        g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
        gsize raw_len = 0;
        g_autofree guint8 *raw = itk_sim_base64url_decode(key, &raw_len);
        guint8 digest[32];
        gsize digest_len = sizeof(digest);

        /* Real keys are 32 random bytes in base64url: hash the raw bytes as
         * the gateway does. Hand-made test keys ("secret") are hashed as text. */
        if (raw != NULL && raw_len == 32)
                g_checksum_update(sum, raw, raw_len);
        else
                g_checksum_update(sum, (const guchar *)key, strlen(key));
        g_checksum_get_digest(sum, digest, &digest_len);
        return itk_sim_base64url(digest, digest_len);
}

gboolean
itk_sim_state_add_token(ItkSimState *self, const char *spec, gboolean readonly, GError **error)
{
        const char *colon = strrchr(spec, ':');
        ItkSimToken *t;

        if (colon == NULL || colon == spec || colon[1] == '\0') {
                g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                            "token \"%s\" is not NAME:KEY", spec);
                return FALSE;
        }
        t = g_new0(ItkSimToken, 1);
        t->name = g_strndup(spec, colon - spec);
        t->hash = itk_sim_token_hash(colon + 1);
        t->readonly = readonly;
        g_hash_table_replace(self->tokens, t->name, t);
        return TRUE;
}

static gboolean
itk_sim_const_time_equal(const char *a, const char *b)
{
        gsize la = strlen(a), lb = strlen(b);
        guint8 diff = la != lb;

        for (gsize i = 0; i < la && i < lb; i++)
                diff |= (guint8)(a[i] ^ b[i]);
        return diff == 0;
}

ItkSimAuth
itk_sim_state_check_token(ItkSimState *self, const char *header)
{
        const char *colon;
        g_autofree char *name = NULL;
        g_autofree char *hash = NULL;
        ItkSimToken *t;

        if (header == NULL)
                return ITK_SIM_AUTH_MISSING;
        colon = strrchr(header, ':');
        if (colon == NULL) /* the key alone */
                return ITK_SIM_AUTH_MISSING;
        name = g_strndup(header, colon - header);
        t = g_hash_table_lookup(self->tokens, name);
        if (t == NULL)
                return ITK_SIM_AUTH_MISSING;
        hash = itk_sim_token_hash(colon + 1);
        if (!itk_sim_const_time_equal(hash, t->hash))
                return ITK_SIM_AUTH_MISSING;
        return t->readonly ? ITK_SIM_AUTH_READONLY : ITK_SIM_AUTH_FULL;
}

/* ---- seeds ---- */

gboolean
itk_sim_state_add_seed_module(ItkSimState *self, const char *spec, GError **error)
{
        const char *first = strchr(spec, ':');
        const char *last = strrchr(spec, ':');
        g_autofree char *id = NULL;
        g_autofree char *name = NULL;

        if (first == NULL || first == last || first == spec || last[1] == '\0' ||
            last == first + 1) {
                g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                            "module \"%s\" is not ID:NAME:VERSION", spec);
                return FALSE;
        }
        id = g_strndup(spec, first - spec);
        name = g_strndup(first + 1, last - first - 1);
        g_ptr_array_add(self->seed_modules, itk_sim_module_new(id, name, last + 1));
        return TRUE;
}

void
itk_sim_state_add_seed_project(ItkSimState *self, const char *name)
{
        g_ptr_array_add(self->seed_projects, g_strdup(name));
}

gboolean
itk_sim_fault_parse_mode(const char *mode, ItkSimFaultMode *out_mode, guint *out_ms, GError **error)
{
        guint64 ms = 0;

        *out_ms = 0;
        if (g_strcmp0(mode, "none") == 0)
                *out_mode = ITK_SIM_FAULT_NONE;
        else if (g_strcmp0(mode, "hang") == 0)
                *out_mode = ITK_SIM_FAULT_HANG;
        else if (g_strcmp0(mode, "drop") == 0)
                *out_mode = ITK_SIM_FAULT_DROP;
        else if (g_strcmp0(mode, "500") == 0)
                *out_mode = ITK_SIM_FAULT_500;
        else if (g_strcmp0(mode, "html500") == 0)
                *out_mode = ITK_SIM_FAULT_HTML500;
        else if (mode != NULL && g_str_has_prefix(mode, "slow:") &&
                 g_ascii_string_to_unsigned(mode + 5, 10, 0, G_MAXUINT, &ms, NULL)) {
                *out_mode = ITK_SIM_FAULT_SLOW;
                *out_ms = (guint)ms;
        } else {
                g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                            "fault mode \"%s\" is not hang, drop, slow:MS, 500, html500 or none",
                            mode != NULL ? mode : "");
                return FALSE;
        }
        return TRUE;
}

const char *
itk_sim_fault_mode_to_string(ItkSimFaultMode mode)
{
        switch (mode) {
        case ITK_SIM_FAULT_NONE:
                return "none";
        case ITK_SIM_FAULT_HANG:
                return "hang";
        case ITK_SIM_FAULT_DROP:
                return "drop";
        case ITK_SIM_FAULT_SLOW:
                return "slow";
        case ITK_SIM_FAULT_500:
                return "500";
        case ITK_SIM_FAULT_HTML500:
                return "html500";
        }
        return "none";
}

gboolean
itk_sim_state_add_seed_fault(ItkSimState *self, const char *spec, GError **error)
{
        const char *eq = strrchr(spec, '=');
        g_autofree char *glob = NULL;
        ItkSimFaultMode mode;
        guint ms;

        if (eq == NULL || eq == spec) {
                g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                            "fault \"%s\" is not PATHGLOB=MODE", spec);
                return FALSE;
        }
        if (!itk_sim_fault_parse_mode(eq + 1, &mode, &ms, error))
                return FALSE;
        if (mode == ITK_SIM_FAULT_NONE)
                return TRUE;
        glob = g_strndup(spec, eq - spec);
        g_ptr_array_add(self->seed_faults, itk_sim_fault_new(glob, mode, ms));
        return TRUE;
}

gboolean
itk_sim_state_set_fault(ItkSimState *self, const char *glob, const char *mode_text, GError **error)
{
        ItkSimFaultMode mode;
        guint ms;

        if (!itk_sim_fault_parse_mode(mode_text, &mode, &ms, error))
                return FALSE;
        if (glob == NULL || *glob == '\0') {
                if (mode != ITK_SIM_FAULT_NONE) {
                        g_set_error_literal(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                                            "a fault needs a path glob");
                        return FALSE;
                }
                g_ptr_array_set_size(self->faults, 0);
                return TRUE;
        }
        for (guint i = self->faults->len; i-- > 0;) {
                ItkSimFault *f = g_ptr_array_index(self->faults, i);
                if (g_strcmp0(f->glob, glob) == 0)
                        g_ptr_array_remove_index(self->faults, i);
        }
        if (mode != ITK_SIM_FAULT_NONE)
                g_ptr_array_add(self->faults, itk_sim_fault_new(glob, mode, ms));
        return TRUE;
}

ItkSimFault *
itk_sim_state_find_fault(ItkSimState *self, const char *path)
{
        for (guint i = 0; i < self->faults->len; i++) {
                ItkSimFault *f = g_ptr_array_index(self->faults, i);
                if (g_pattern_spec_match_string(f->spec, path))
                        return f;
        }
        return NULL;
}

/* ---- reset ---- */

static gint
itk_sim_project_cmp(gconstpointer a, gconstpointer b)
{
        const ItkSimProject *pa = *(ItkSimProject *const *)a;
        const ItkSimProject *pb = *(ItkSimProject *const *)b;
        return g_strcmp0(pa->name, pb->name);
}

static void
itk_sim_state_add_project(ItkSimState *self, ItkSimProject *project)
{
        for (guint i = 0; i < self->projects->len; i++) {
                ItkSimProject *p = g_ptr_array_index(self->projects, i);
                if (g_strcmp0(p->name, project->name) == 0) {
                        g_ptr_array_remove_index(self->projects, i);
                        break;
                }
        }
        g_ptr_array_add(self->projects, project);
        g_ptr_array_sort(self->projects, itk_sim_project_cmp);
}

void
itk_sim_state_reset(ItkSimState *self)
{
        static const char *const default_modules[][3] = {
                { "com.inductiveautomation.perspective", "Perspective", "8.3.6" },
                { "com.inductiveautomation.vision", "Vision", "8.3.6" },
                { "com.inductiveautomation.opcua", "OPC UA", "8.3.6" },
                { "com.inductiveautomation.alarm-notification", "Alarm Notification", "8.3.6" },
                { "com.inductiveautomation.sqlbridge", "SQL Bridge (Transaction Groups)", "8.3.6" },
        };

        g_clear_handle_id(&self->phase_source, g_source_remove);
        self->phase = ITK_SIM_PHASE_RUNNING;
        g_ptr_array_set_size(self->modules, 0);
        g_ptr_array_set_size(self->uploads, 0);
        g_ptr_array_set_size(self->projects, 0);
        g_ptr_array_set_size(self->faults, 0);
        g_ptr_array_set_size(self->pending, 0);
        g_hash_table_remove_all(self->counts);
        g_clear_pointer(&self->last_headers, json_object_unref);
        g_clear_pointer(&self->last_restore, json_object_unref);
        g_clear_pointer(&self->last_upload, json_object_unref);
        g_clear_pointer(&self->last_request, g_free);
        g_free(self->gateway_name);
        self->gateway_name = g_strdup("Ignition-sim");
        self->commissioned = self->seed_commissioned;
        self->restart_never_returns = self->seed_restart_never_returns;
        self->restart_count = 0;
        self->started_at = g_get_monotonic_time();
        itk_sim_state_set_trial_expired(self, self->trial_expired_at_start);

        if (self->seed_modules->len == 0) {
                for (guint i = 0; i < G_N_ELEMENTS(default_modules); i++)
                        g_ptr_array_add(self->modules, itk_sim_module_new(default_modules[i][0],
                                                                          default_modules[i][1],
                                                                          default_modules[i][2]));
        } else {
                for (guint i = 0; i < self->seed_modules->len; i++)
                        g_ptr_array_add(self->modules, itk_sim_module_copy(g_ptr_array_index(
                                                               self->seed_modules, i)));
        }

        if (self->seed_projects->len == 0) {
                ItkSimProject *global = itk_sim_project_new("global");
                ItkSimProject *demo = itk_sim_project_new("demo");

                g_free(global->title);
                global->title = g_strdup("Global");
                global->inheritable = TRUE;
                g_free(global->description);
                global->description = g_strdup("Shared resources for every project");
                g_free(demo->title);
                demo->title = g_strdup("Demo Project");
                g_free(demo->parent);
                demo->parent = g_strdup("global");
                itk_sim_state_add_project(self, global);
                itk_sim_state_add_project(self, demo);
        } else {
                for (guint i = 0; i < self->seed_projects->len; i++)
                        itk_sim_state_add_project(self, itk_sim_project_new(g_ptr_array_index(
                                                                self->seed_projects, i)));
        }

        for (guint i = 0; i < self->seed_faults->len; i++) {
                ItkSimFault *f = g_ptr_array_index(self->seed_faults, i);
                g_ptr_array_add(self->faults, itk_sim_fault_new(f->glob, f->mode, f->slow_ms));
        }
}

/* ---- restart state machine ---- */

const char *
itk_sim_phase_to_string(ItkSimPhase phase)
{
        switch (phase) {
        case ITK_SIM_PHASE_RUNNING:
                return "RUNNING";
        case ITK_SIM_PHASE_RESTART_PENDING:
                return "RESTART_PENDING";
        case ITK_SIM_PHASE_STARTING:
                return "STARTING";
        case ITK_SIM_PHASE_OFFLINE:
                return "OFFLINE";
        }
        return "RUNNING";
}

static void
itk_sim_state_apply_pending(ItkSimState *self)
{
        gint64 now = g_get_real_time() / 1000;

        for (guint i = self->modules->len; i-- > 0;) {
                ItkSimModule *m = g_ptr_array_index(self->modules, i);

                if (m->active && m->pending_version == NULL)
                        continue;
                if (m->pending_version != NULL) {
                        g_free(m->version);
                        m->version = g_steal_pointer(&m->pending_version);
                        g_free(m->name);
                        m->name = g_steal_pointer(&m->pending_name);
                }
                /* A module for a newer platform fails to load: quarantined. */
                if (m->required_version != NULL &&
                    itk_sim_version_compare(m->required_version, self->version) > 0) {
                        ItkSimUpload *u = g_new0(ItkSimUpload, 1);

                        u->id = g_strdup(m->id);
                        u->name = g_strdup(m->name);
                        u->version = g_strdup(m->version);
                        u->description = g_strdup(m->description);
                        u->vendor = g_strdup(m->vendor);
                        u->cert_accepted = u->eula_accepted = TRUE;
                        u->reason = g_strdup_printf("Module requires Ignition %s or later",
                                                    m->required_version);
                        g_ptr_array_add(self->uploads, u);
                        g_ptr_array_remove_index(self->modules, i);
                        continue;
                }
                m->active = TRUE;
                m->startup_time = now;
        }
        g_ptr_array_set_size(self->pending, 0);
}

static gboolean
itk_sim_state_started_cb(gpointer user_data)
{
        ItkSimState *self = user_data;

        self->phase_source = 0;
        self->phase = ITK_SIM_PHASE_RUNNING;
        self->restart_count++;
        self->started_at = g_get_monotonic_time();
        itk_sim_state_apply_pending(self);
        g_debug("gateway RUNNING again (restart %u)", self->restart_count);
        return G_SOURCE_REMOVE;
}

void
itk_sim_state_begin_starting(ItkSimState *self)
{
        g_clear_handle_id(&self->phase_source, g_source_remove);
        self->phase = ITK_SIM_PHASE_STARTING;
        g_debug("gateway STARTING");
        if (!self->restart_never_returns)
                self->phase_source =
                        g_timeout_add(self->startup_time_ms, itk_sim_state_started_cb, self);
}

static gboolean
itk_sim_state_offline_done_cb(gpointer user_data)
{
        ItkSimState *self = user_data;

        self->phase_source = 0;
        itk_sim_state_begin_starting(self);
        return G_SOURCE_REMOVE;
}

static gboolean
itk_sim_state_restart_due_cb(gpointer user_data)
{
        ItkSimState *self = user_data;

        self->phase_source = 0;
        if (self->offline_time_ms == 0) {
                itk_sim_state_begin_starting(self);
                return G_SOURCE_REMOVE;
        }
        self->phase = ITK_SIM_PHASE_OFFLINE;
        g_debug("gateway OFFLINE");
        self->phase_source =
                g_timeout_add(self->offline_time_ms, itk_sim_state_offline_done_cb, self);
        return G_SOURCE_REMOVE;
}

void
itk_sim_state_restart(ItkSimState *self)
{
        /* A second request while one is under way changes nothing. */
        if (self->phase != ITK_SIM_PHASE_RUNNING)
                return;
        self->phase = ITK_SIM_PHASE_RESTART_PENDING;
        self->phase_source =
                g_timeout_add(self->restart_delay_ms, itk_sim_state_restart_due_cb, self);
}

void
itk_sim_state_set_restart_never_returns(ItkSimState *self, gboolean on)
{
        self->restart_never_returns = on;
        if (self->phase != ITK_SIM_PHASE_STARTING)
                return;
        g_clear_handle_id(&self->phase_source, g_source_remove);
        if (!on)
                self->phase_source =
                        g_timeout_add(self->startup_time_ms, itk_sim_state_started_cb, self);
}

gint64
itk_sim_state_get_uptime_ms(ItkSimState *self)
{
        return (g_get_monotonic_time() - self->started_at) / 1000;
}

gint64
itk_sim_state_get_trial_seconds_left(ItkSimState *self)
{
        gint64 left = (self->trial_ends_at - g_get_monotonic_time()) / G_USEC_PER_SEC;
        return MAX(left, 0);
}

void
itk_sim_state_set_trial_expired(ItkSimState *self, gboolean expired)
{
        self->trial_ends_at = g_get_monotonic_time();
        if (!expired)
                self->trial_ends_at += (gint64)ITK_SIM_TRIAL_SECONDS * G_USEC_PER_SEC;
}

/* ---- modules ---- */

ItkSimModule *
itk_sim_state_find_module(ItkSimState *self, const char *id)
{
        for (guint i = 0; id != NULL && i < self->modules->len; i++) {
                ItkSimModule *m = g_ptr_array_index(self->modules, i);
                if (g_strcmp0(m->id, id) == 0)
                        return m;
        }
        return NULL;
}

ItkSimUpload *
itk_sim_state_find_upload(ItkSimState *self, const char *id)
{
        for (guint i = 0; id != NULL && i < self->uploads->len; i++) {
                ItkSimUpload *u = g_ptr_array_index(self->uploads, i);
                if (g_strcmp0(u->id, id) == 0)
                        return u;
        }
        return NULL;
}

typedef struct {
        int depth;          /* 1 = <modules>, 2 = <module>, 3 = its fields */
        gboolean in_module; /* inside the first <module> */
        gboolean seen_module;
        const char *field;
        GHashTable *fields; /* element name -> text */
} ItkSimModuleXml;

static void
itk_sim_module_xml_start(GMarkupParseContext *ctx, const char *element, const char **names,
                         const char **values, gpointer user_data, GError **error)
{
        ItkSimModuleXml *x = user_data;

        x->depth++;
        if (g_strcmp0(element, "module") == 0 && !x->seen_module && x->depth <= 2) {
                x->in_module = TRUE;
                x->seen_module = TRUE;
                x->depth = 2;
        } else if (x->in_module && x->depth == 3) {
                x->field = g_intern_string(element);
        }
}

static void
itk_sim_module_xml_end(GMarkupParseContext *ctx, const char *element, gpointer user_data,
                       GError **error)
{
        ItkSimModuleXml *x = user_data;

        if (x->in_module && x->depth == 2)
                x->in_module = FALSE;
        if (x->depth == 3)
                x->field = NULL;
        x->depth--;
}

static void
itk_sim_module_xml_text(GMarkupParseContext *ctx, const char *text, gsize len, gpointer user_data,
                        GError **error)
{
        ItkSimModuleXml *x = user_data;
        g_autofree char *value = NULL;

        if (x->field == NULL || g_hash_table_contains(x->fields, x->field))
                return;
        value = g_strstrip(g_strndup(text, len));
        g_hash_table_insert(x->fields, (gpointer)x->field, g_steal_pointer(&value));
}

static const char *
itk_sim_nonempty(GHashTable *fields, const char *key)
{
        const char *v = g_hash_table_lookup(fields, key);
        return v != NULL && *v != '\0' ? v : NULL;
}

ItkSimUpload *
itk_sim_state_upload_module(ItkSimState *self, GBytes *modl, const char *file_name, GError **error)
{
        static const GMarkupParser parser = {
                itk_sim_module_xml_start,
                itk_sim_module_xml_end,
                itk_sim_module_xml_text,
                NULL,
                NULL,
        };
        g_autoptr(GError) local_error = NULL;
        g_autoptr(ItkSimZip) zip = NULL;
        g_autoptr(GBytes) xml = NULL;
        g_autoptr(GMarkupParseContext) ctx = NULL;
        g_autoptr(GHashTable) fields = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
        ItkSimModuleXml x = { 0 };
        ItkSimUpload *u, *old;
        const char *id, *name, *version;
        gsize xml_len;
        const char *xml_data;

        zip = itk_sim_zip_open(modl, &local_error);
        if (zip == NULL) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Invalid module file: %s",
                            local_error->message);
                return NULL;
        }
        xml = itk_sim_zip_extract(zip, "module.xml", ITK_SIM_MAX_XML, &local_error);
        if (xml == NULL) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                            "Invalid module file: module.xml: %s", local_error->message);
                return NULL;
        }
        x.fields = fields;
        ctx = g_markup_parse_context_new(&parser, G_MARKUP_TREAT_CDATA_AS_TEXT, &x, NULL);
        xml_data = g_bytes_get_data(xml, &xml_len);
        if (xml_data == NULL ||
            !g_markup_parse_context_parse(ctx, xml_data, xml_len, &local_error) ||
            !g_markup_parse_context_end_parse(ctx, &local_error)) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                            "Invalid module file: module.xml: %s",
                            local_error != NULL ? local_error->message : "empty");
                return NULL;
        }
        id = itk_sim_nonempty(fields, "id");
        name = itk_sim_nonempty(fields, "name");
        version = itk_sim_nonempty(fields, "version");
        if (id == NULL || name == NULL || version == NULL) {
                g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                    "Invalid module file: module.xml lacks id, name or version");
                return NULL;
        }

        u = g_new0(ItkSimUpload, 1);
        u->id = g_strdup(id);
        u->name = g_strdup(name);
        u->version = g_strdup(version);
        u->description = g_strdup(itk_sim_nonempty(fields, "description") ?: "");
        u->vendor = g_strdup(itk_sim_nonempty(fields, "vendor")
                                     ?: (g_str_has_prefix(id, "com.inductiveautomation.")
                                                 ? "Inductive Automation"
                                                 : "Third Party"));
        u->required_version = g_strdup(itk_sim_nonempty(fields, "requiredignitionversion"));
        u->file_name = g_strdup(file_name);
        u->contains_cert = itk_sim_zip_has_entry(zip, "certificates.p7b");
        u->contains_eula = itk_sim_nonempty(fields, "license") != NULL;
        /* Nothing to accept counts as accepted. */
        u->cert_accepted = !u->contains_cert;
        u->eula_accepted = !u->contains_eula;

        old = itk_sim_state_find_upload(self, id);
        if (old != NULL)
                g_ptr_array_remove(self->uploads, old);
        g_ptr_array_add(self->uploads, u);
        return u;
}

void
itk_sim_state_install_module(ItkSimState *self, ItkSimUpload *upload)
{
        ItkSimModule *m = itk_sim_state_find_module(self, upload->id);

        if (m != NULL) {
                g_free(m->pending_version);
                m->pending_version = g_strdup(upload->version);
                g_free(m->pending_name);
                m->pending_name = g_strdup(upload->name);
                g_ptr_array_add(self->pending, g_strdup_printf("Module '%s' upgrade to %s",
                                                               upload->name, upload->version));
        } else {
                m = itk_sim_module_new(upload->id, upload->name, upload->version);
                m->active = FALSE;
                g_ptr_array_add(self->modules, m);
                g_ptr_array_add(self->pending, g_strdup_printf("Module '%s' %s installed",
                                                               upload->name, upload->version));
        }
        g_free(m->description);
        m->description = g_strdup(upload->description);
        g_free(m->vendor);
        m->vendor = g_strdup(upload->vendor);
        g_free(m->required_version);
        m->required_version = g_strdup(upload->required_version);
        g_ptr_array_remove(self->uploads, upload);
}

gboolean
itk_sim_state_uninstall_module(ItkSimState *self, const char *id)
{
        ItkSimModule *m = itk_sim_state_find_module(self, id);
        ItkSimUpload *u = itk_sim_state_find_upload(self, id);

        if (u != NULL)
                g_ptr_array_remove(self->uploads, u);
        if (m == NULL)
                return u != NULL;
        /* Gone from the list at once, but the gateway unloads it at the next
         * restart: the pages show their restart bar. */
        g_ptr_array_add(self->pending, g_strdup_printf("Module '%s' uninstalled", m->name));
        g_ptr_array_remove(self->modules, m);
        return TRUE;
}

/* ---- projects ---- */

ItkSimProject *
itk_sim_state_find_project(ItkSimState *self, const char *name)
{
        for (guint i = 0; name != NULL && i < self->projects->len; i++) {
                ItkSimProject *p = g_ptr_array_index(self->projects, i);
                if (g_strcmp0(p->name, name) == 0)
                        return p;
        }
        return NULL;
}

static char *
itk_sim_project_json_text(ItkSimProject *p)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) root = NULL;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "title");
        json_builder_add_string_value(b, p->title);
        json_builder_set_member_name(b, "description");
        json_builder_add_string_value(b, p->description);
        json_builder_set_member_name(b, "parent");
        json_builder_add_string_value(b, p->parent);
        json_builder_set_member_name(b, "enabled");
        json_builder_add_boolean_value(b, p->enabled);
        json_builder_set_member_name(b, "inheritable");
        json_builder_add_boolean_value(b, p->inheritable);
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        return json_to_string(root, TRUE);
}

GBytes *
itk_sim_state_export_project(ItkSimState *self, ItkSimProject *project)
{
        g_autoptr(ItkSimZipWriter) w = NULL;
        g_autofree char *json = NULL;
        static const char view[] =
                "{\n  \"custom\": {},\n  \"params\": {},\n  \"props\": {},\n"
                "  \"root\": {\"type\": \"ia.container.flex\", \"meta\": {\"name\": "
                "\"root\"}, \"children\": []}\n}\n";

        if (project->archive != NULL)
                return g_bytes_ref(project->archive);
        w = itk_sim_zip_writer_new();
        json = itk_sim_project_json_text(project);
        itk_sim_zip_writer_add(w, "project.json", json, strlen(json), TRUE);
        itk_sim_zip_writer_add(w, "com.inductiveautomation.perspective/views/Main/view.json", view,
                               strlen(view), TRUE);
        return itk_sim_zip_writer_finish(w);
}

/* project.json of an export or a backup -> a project named @name. */
static ItkSimProject *
itk_sim_project_from_json(const char *name, GBytes *json, GError **error)
{
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(GError) local_error = NULL;
        ItkSimProject *p;
        JsonObject *o;
        gsize len;
        const char *data = g_bytes_get_data(json, &len);

        if (data == NULL || !json_parser_load_from_data(parser, data, (gssize)len, &local_error) ||
            !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                            "project.json is not a JSON object%s%s",
                            local_error != NULL ? ": " : "",
                            local_error != NULL ? local_error->message : "");
                return NULL;
        }
        o = json_node_get_object(json_parser_get_root(parser));
        p = itk_sim_project_new(name);
        g_free(p->title);
        p->title = g_strdup(json_object_get_string_member_with_default(o, "title", ""));
        g_free(p->description);
        p->description = g_strdup(json_object_get_string_member_with_default(o, "description", ""));
        g_free(p->parent);
        p->parent = g_strdup(json_object_get_string_member_with_default(o, "parent", ""));
        p->enabled = json_object_get_boolean_member_with_default(o, "enabled", TRUE);
        p->inheritable = json_object_get_boolean_member_with_default(o, "inheritable", FALSE);
        return p;
}

gboolean
itk_sim_state_import_project(ItkSimState *self, const char *name, GBytes *archive, GError **error)
{
        g_autoptr(GError) local_error = NULL;
        g_autoptr(ItkSimZip) zip = NULL;
        g_autoptr(GBytes) json = NULL;
        ItkSimProject *p;

        zip = itk_sim_zip_open(archive, &local_error);
        if (zip == NULL) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                            "Unable to read project archive: %s", local_error->message);
                return FALSE;
        }
        json = itk_sim_zip_extract(zip, "project.json", ITK_SIM_MAX_XML, &local_error);
        if (json == NULL) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                            "Unable to read project archive: project.json: %s",
                            local_error->message);
                return FALSE;
        }
        p = itk_sim_project_from_json(name, json, error);
        if (p == NULL)
                return FALSE;
        p->archive = g_bytes_ref(archive);
        itk_sim_state_add_project(self, p);
        return TRUE;
}

/* ---- backups ---- */

GBytes *
itk_sim_state_make_backup(ItkSimState *self, gboolean all)
{
        g_autoptr(ItkSimZipWriter) w = itk_sim_zip_writer_new();
        g_autofree char *full = itk_sim_state_dup_full_version(self);
        g_autofree char *name = g_markup_escape_text(self->gateway_name, -1);
        g_autofree char *xml = NULL;
        static const char idb[] = "SQLite format 3\0itk-gateway-sim placeholder database\n";

        xml = g_strdup_printf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                              "<gateway-backup name=\"%s\" version=\"%s\" type=\"%s\">\n"
                              "  <modules count=\"%u\"/>\n  <projects count=\"%u\"/>\n"
                              "</gateway-backup>\n",
                              name, full, all ? "all" : "roaming", self->modules->len,
                              self->projects->len);
        itk_sim_zip_writer_add(w, "gateway.xml", xml, strlen(xml), TRUE);
        itk_sim_zip_writer_add(w, "db_backup_sqlite.idb", idb, sizeof(idb) - 1, FALSE);
        for (guint i = 0; i < self->projects->len; i++) {
                ItkSimProject *p = g_ptr_array_index(self->projects, i);
                g_autofree char *path = g_strdup_printf("projects/%s/project.json", p->name);
                g_autofree char *json = itk_sim_project_json_text(p);

                itk_sim_zip_writer_add(w, path, json, strlen(json), TRUE);
        }
        if (all) {
                static const char redundancy[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                                 "<redundancy mode=\"Independent\"/>\n";
                itk_sim_zip_writer_add(w, "redundancy.xml", redundancy, sizeof(redundancy) - 1,
                                       TRUE);
        }
        return itk_sim_zip_writer_finish(w);
}

gboolean
itk_sim_state_restore_backup(ItkSimState *self, GBytes *gwbk, GError **error)
{
        g_autoptr(GError) local_error = NULL;
        g_autoptr(ItkSimZip) zip = itk_sim_zip_open(gwbk, &local_error);
        g_autoptr(GPtrArray) restored = NULL;

        if (zip == NULL) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                            "Invalid gateway backup: %s", local_error->message);
                return FALSE;
        }
        if (!itk_sim_zip_has_entry(zip, "gateway.xml") &&
            !itk_sim_zip_has_entry(zip, "db_backup_sqlite.idb")) {
                g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                    "Invalid gateway backup: neither gateway.xml nor "
                                    "db_backup_sqlite.idb found");
                return FALSE;
        }
        /* Parse every project first: a bad backup must change nothing. */
        restored = g_ptr_array_new_with_free_func(itk_sim_project_free);
        for (guint i = 0; i < itk_sim_zip_get_n_entries(zip); i++) {
                const char *entry = itk_sim_zip_get_name(zip, i);
                g_autofree char *pname = NULL;
                g_autoptr(GBytes) json = NULL;
                ItkSimProject *p;
                gsize plen;

                if (!g_str_has_prefix(entry, "projects/") ||
                    !g_str_has_suffix(entry, "/project.json"))
                        continue;
                plen = strlen(entry) - strlen("projects/") - strlen("/project.json");
                if (plen == 0 || (gssize)plen < 0)
                        continue;
                pname = g_strndup(entry + strlen("projects/"), plen);
                if (strchr(pname, '/') != NULL)
                        continue;
                json = itk_sim_zip_extract(zip, entry, ITK_SIM_MAX_XML, &local_error);
                if (json == NULL) {
                        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                    "Invalid gateway backup: %s", local_error->message);
                        return FALSE;
                }
                p = itk_sim_project_from_json(pname, json, error);
                if (p == NULL)
                        return FALSE;
                g_ptr_array_add(restored, p);
        }
        if (restored->len > 0) {
                g_ptr_array_set_size(self->projects, 0);
                for (guint i = 0; i < restored->len; i++)
                        itk_sim_state_add_project(self, g_ptr_array_steal_index(restored, i--));
        }
        return TRUE;
}

/* ---- bookkeeping and JSON ---- */

void
itk_sim_state_count(ItkSimState *self, const char *route_key)
{
        guint n = GPOINTER_TO_UINT(g_hash_table_lookup(self->counts, route_key));
        g_hash_table_replace(self->counts, g_strdup(route_key), GUINT_TO_POINTER(n + 1));
}

JsonNode *
itk_sim_module_to_json(ItkSimModule *m)
{
        g_autoptr(JsonBuilder) b = json_builder_new();

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "id");
        json_builder_add_string_value(b, m->id);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, m->name);
        json_builder_set_member_name(b, "version");
        json_builder_add_string_value(b, m->version);
        json_builder_set_member_name(b, "description");
        json_builder_add_string_value(b, m->description);
        json_builder_set_member_name(b, "vendorName");
        json_builder_add_string_value(b, m->vendor);
        json_builder_set_member_name(b, "state");
        json_builder_add_string_value(b, m->active ? "ACTIVE" : "INACTIVE");
        json_builder_set_member_name(b, "licenseState");
        json_builder_add_string_value(
                b, g_str_has_prefix(m->id, "com.inductiveautomation.") ? "TRIAL" : "FREE");
        json_builder_set_member_name(b, "onStartup");
        json_builder_add_string_value(b, !m->active                   ? "INSTALL"
                                         : m->pending_version != NULL ? "UPGRADE"
                                                                      : "NONE");
        json_builder_set_member_name(b, "shouldUpgrade");
        json_builder_add_boolean_value(b, m->pending_version != NULL);
        json_builder_set_member_name(b, "startupTime");
        json_builder_add_int_value(b, m->startup_time);
        json_builder_end_object(b);
        return json_builder_get_root(b);
}

static const char *
itk_sim_upload_reason(ItkSimUpload *u)
{
        if (u->reason != NULL)
                return u->reason;
        if (!u->cert_accepted && !u->eula_accepted)
                return "Module certificate and license have not been accepted";
        if (!u->cert_accepted)
                return "Module certificate has not been accepted";
        if (!u->eula_accepted)
                return "Module license has not been accepted";
        return "Module has not been installed";
}

JsonNode *
itk_sim_upload_to_json(ItkSimUpload *u)
{
        g_autoptr(JsonBuilder) b = json_builder_new();

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "id");
        json_builder_add_string_value(b, u->id);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, u->name);
        json_builder_set_member_name(b, "version");
        json_builder_add_string_value(b, u->version);
        json_builder_set_member_name(b, "reason");
        json_builder_add_string_value(b, itk_sim_upload_reason(u));
        if (u->contains_cert) {
                json_builder_set_member_name(b, "certAccepted");
                json_builder_add_boolean_value(b, u->cert_accepted);
        }
        if (u->contains_eula) {
                json_builder_set_member_name(b, "licenseAccepted");
                json_builder_add_boolean_value(b, u->eula_accepted);
        }
        json_builder_end_object(b);
        return json_builder_get_root(b);
}

JsonNode *
itk_sim_project_to_json(ItkSimProject *p)
{
        g_autoptr(JsonBuilder) b = json_builder_new();

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, p->name);
        json_builder_set_member_name(b, "title");
        json_builder_add_string_value(b, p->title);
        json_builder_set_member_name(b, "description");
        json_builder_add_string_value(b, p->description);
        json_builder_set_member_name(b, "enabled");
        json_builder_add_boolean_value(b, p->enabled);
        json_builder_set_member_name(b, "parent");
        json_builder_add_string_value(b, p->parent);
        json_builder_set_member_name(b, "inheritable");
        json_builder_add_boolean_value(b, p->inheritable);
        json_builder_set_member_name(b, "uuid");
        json_builder_add_string_value(b, p->uuid);
        json_builder_set_member_name(b, "lastModified");
        json_builder_add_int_value(b, p->last_modified);
        json_builder_set_member_name(b, "lastModifiedBy");
        json_builder_add_string_value(b, "admin");
        json_builder_end_object(b);
        return json_builder_get_root(b);
}

JsonNode *
itk_sim_state_to_json(ItkSimState *self)
{
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autofree char *full = itk_sim_state_dup_full_version(self);
        g_autoptr(GList) keys = NULL;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "phase");
        json_builder_add_string_value(b, itk_sim_phase_to_string(self->phase));
        json_builder_set_member_name(b, "version");
        json_builder_add_string_value(b, self->version);
        json_builder_set_member_name(b, "ignitionVersion");
        json_builder_add_string_value(b, full);
        json_builder_set_member_name(b, "gatewayName");
        json_builder_add_string_value(b, self->gateway_name);
        json_builder_set_member_name(b, "commissioned");
        json_builder_add_boolean_value(b, self->commissioned);
        json_builder_set_member_name(b, "restartNeverReturns");
        json_builder_add_boolean_value(b, self->restart_never_returns);
        json_builder_set_member_name(b, "restartCount");
        json_builder_add_int_value(b, self->restart_count);
        json_builder_set_member_name(b, "trialSecondsLeft");
        json_builder_add_int_value(b, itk_sim_state_get_trial_seconds_left(self));

        json_builder_set_member_name(b, "modules");
        json_builder_begin_array(b);
        for (guint i = 0; i < self->modules->len; i++) {
                ItkSimModule *m = g_ptr_array_index(self->modules, i);
                JsonNode *n = itk_sim_module_to_json(m);

                if (m->pending_version != NULL)
                        json_object_set_string_member(json_node_get_object(n), "pendingVersion",
                                                      m->pending_version);
                json_builder_add_value(b, n);
        }
        json_builder_end_array(b);

        json_builder_set_member_name(b, "uploads");
        json_builder_begin_array(b);
        for (guint i = 0; i < self->uploads->len; i++)
                json_builder_add_value(b,
                                       itk_sim_upload_to_json(g_ptr_array_index(self->uploads, i)));
        json_builder_end_array(b);

        json_builder_set_member_name(b, "projects");
        json_builder_begin_array(b);
        for (guint i = 0; i < self->projects->len; i++)
                json_builder_add_string_value(
                        b, ((ItkSimProject *)g_ptr_array_index(self->projects, i))->name);
        json_builder_end_array(b);

        json_builder_set_member_name(b, "pending");
        json_builder_begin_array(b);
        for (guint i = 0; i < self->pending->len; i++)
                json_builder_add_string_value(b, g_ptr_array_index(self->pending, i));
        json_builder_end_array(b);

        json_builder_set_member_name(b, "faults");
        json_builder_begin_array(b);
        for (guint i = 0; i < self->faults->len; i++) {
                ItkSimFault *f = g_ptr_array_index(self->faults, i);
                g_autofree char *mode = f->mode == ITK_SIM_FAULT_SLOW
                                                ? g_strdup_printf("slow:%u", f->slow_ms)
                                                : g_strdup(itk_sim_fault_mode_to_string(f->mode));

                json_builder_begin_object(b);
                json_builder_set_member_name(b, "path");
                json_builder_add_string_value(b, f->glob);
                json_builder_set_member_name(b, "mode");
                json_builder_add_string_value(b, mode);
                json_builder_end_object(b);
        }
        json_builder_end_array(b);

        json_builder_set_member_name(b, "counts");
        json_builder_begin_object(b);
        keys = g_hash_table_get_keys(self->counts);
        keys = g_list_sort(keys, (GCompareFunc)g_strcmp0);
        for (GList *l = keys; l != NULL; l = l->next) {
                json_builder_set_member_name(b, l->data);
                json_builder_add_int_value(
                        b, GPOINTER_TO_UINT(g_hash_table_lookup(self->counts, l->data)));
        }
        json_builder_end_object(b);

        json_builder_set_member_name(b, "lastRequest");
        if (self->last_request != NULL)
                json_builder_add_string_value(b, self->last_request);
        else
                json_builder_add_null_value(b);
        json_builder_set_member_name(b, "lastRequestHeaders");
        if (self->last_headers != NULL) {
                JsonNode *n = json_node_new(JSON_NODE_OBJECT);
                json_node_set_object(n, self->last_headers);
                json_builder_add_value(b, n);
        } else {
                json_builder_add_null_value(b);
        }
        json_builder_set_member_name(b, "lastUpload");
        if (self->last_upload != NULL) {
                JsonNode *n = json_node_new(JSON_NODE_OBJECT);
                json_node_set_object(n, self->last_upload);
                json_builder_add_value(b, n);
        } else {
                json_builder_add_null_value(b);
        }
        json_builder_set_member_name(b, "lastRestore");
        if (self->last_restore != NULL) {
                JsonNode *n = json_node_new(JSON_NODE_OBJECT);
                json_node_set_object(n, self->last_restore);
                json_builder_add_value(b, n);
        } else {
                json_builder_add_null_value(b);
        }
        json_builder_end_object(b);
        return json_builder_get_root(b);
}
