/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#include "itk-artifact.h"
#include "itk-credentials.h"
#include "itk-error.h"
#include "itk-library-store.h"
#include "itk-limits.h"
#include "itk-manager.h"
#include "itk-retention.h"
#include "itk-store.h"
#include "itk-value.h"

/* A library playbook as last loaded, reused while the file is unchanged. */
typedef struct {
        gint64 mtime;
        goffset size;
        ItkPlaybook *playbook;  /* NULL when invalid */
        GPtrArray *diagnostics; /* ItkDiagnostic* */
        guint dir_index;        /* playbook_dirs[] it was found in; 0 is the local one */
        char *path;
} LibraryEntry;

typedef struct {
        ItkExecution *execution;
        char *sender; /* cancel-on-disconnect owner, or NULL */
        guint retention_id;
        gulong finished_id;
        ItkManager *manager;
} Entry;

struct _ItkManager {
        GObject parent_instance;

        char *state_dir;
        char **playbook_dirs;
        guint max_concurrent;
        guint max_per_caller;
        guint retention_sec;
        guint pending_timeout_sec;
        gboolean store_failing; /* the last start was refused for the store */
        char *python;
        gboolean require_verified_nested;

        ItkStore *store;
        ItkRetention *retention;
        ItkCredentials *credentials;
        GPtrArray *entries;             /* Entry*, creation order */
        GHashTable *by_id;              /* object id (hex) -> Entry* */
        GHashTable *library;            /* absolute path -> LibraryEntry* */
        ItkLibraryStore *local_library; /* playbook_dirs[0], the writable folder */
        ItkInputFiles *input_files;
};

enum {
        SIGNAL_EXECUTION_ADDED,
        SIGNAL_EXECUTION_REMOVED,
        SIGNAL_ACTIVE_CHANGED,
        N_SIGNALS,
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE(ItkManager, itk_manager, G_TYPE_OBJECT)

static void
library_entry_free(LibraryEntry *entry)
{
        g_clear_pointer(&entry->playbook, itk_playbook_unref);
        g_clear_pointer(&entry->diagnostics, g_ptr_array_unref);
        g_free(entry->path);
        g_free(entry);
}

static void
entry_free(Entry *entry)
{
        g_clear_handle_id(&entry->retention_id, g_source_remove);
        g_clear_signal_handler(&entry->finished_id, entry->execution);
        g_clear_object(&entry->execution);
        g_free(entry->sender);
        g_free(entry);
}

/* --- library ------------------------------------------------------------------ */

/* Library ids are relative paths below a library folder: no "..", not absolute. */
static gboolean
itk_manager_id_is_safe(const char *id)
{
        g_auto(GStrv) parts = NULL;

        if (id == NULL || *id == '\0' || g_path_is_absolute(id) || strchr(id, '\\') != NULL)
                return FALSE;
        if (!g_str_has_suffix(id, ".yaml") && !g_str_has_suffix(id, ".yml"))
                return FALSE;
        parts = g_strsplit(id, "/", -1);
        for (guint i = 0; parts[i] != NULL; i++)
                if (*parts[i] == '\0' || g_str_equal(parts[i], ".") || g_str_equal(parts[i], ".."))
                        return FALSE;
        return TRUE;
}

/* Loads (or reuses) the file behind @id; returns the library entry. Reading
 * a small local file is the one synchronous I/O the daemon does on request;
 * the cache keyed by mtime and size keeps it to a stat() when unchanged. */
static LibraryEntry *
itk_manager_library_entry(ItkManager *self, const char *id, GError **error)
{
        if (!itk_manager_id_is_safe(id)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_PLAYBOOK,
                            "no playbook '%s' in the library (ids are relative .yaml paths)", id);
                return NULL;
        }
        for (guint i = 0; self->playbook_dirs[i] != NULL; i++) {
                g_autofree char *path = g_build_filename(self->playbook_dirs[i], id, NULL);
                GStatBuf st;
                LibraryEntry *entry;
                g_autoptr(GError) local = NULL;

                if (g_stat(path, &st) != 0 || !S_ISREG(st.st_mode))
                        continue;
                entry = g_hash_table_lookup(self->library, path);
                if (entry != NULL && entry->mtime == (gint64)st.st_mtime &&
                    entry->size == (goffset)st.st_size)
                        return entry;
                entry = g_new0(LibraryEntry, 1);
                entry->mtime = (gint64)st.st_mtime;
                entry->size = (goffset)st.st_size;
                entry->dir_index = i;
                entry->path = g_strdup(path);
                entry->diagnostics =
                        g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
                entry->playbook = itk_playbook_new_from_file(path, id, entry->diagnostics, &local);
                if (entry->playbook == NULL && entry->diagnostics->len == 0) {
                        ItkDiagnostic *diagnostic = g_new0(ItkDiagnostic, 1);
                        diagnostic->severity = ITK_DIAGNOSTIC_ERROR;
                        diagnostic->message = g_strdup(local->message);
                        g_ptr_array_add(entry->diagnostics, diagnostic);
                }
                g_hash_table_replace(self->library, g_steal_pointer(&path), entry);
                return entry;
        }
        g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_PLAYBOOK, "no playbook '%s' in the library",
                    id);
        return NULL;
}

static char *
itk_manager_first_error(GPtrArray *diagnostics)
{
        guint errors = 0;
        g_autofree char *first = NULL;

        for (guint i = 0; i < diagnostics->len; i++) {
                ItkDiagnostic *diagnostic = g_ptr_array_index(diagnostics, i);
                if (diagnostic->severity != ITK_DIAGNOSTIC_ERROR)
                        continue;
                if (errors++ == 0)
                        first = itk_diagnostic_to_string(diagnostic);
        }
        if (errors > 1)
                return g_strdup_printf("%s (and %u more problems)", first, errors - 1);
        return g_steal_pointer(&first);
}

ItkPlaybook *
itk_manager_load_playbook(ItkManager *self, const char *id, GError **error)
{
        LibraryEntry *entry = itk_manager_library_entry(self, id, error);
        g_autofree char *first = NULL;

        if (entry == NULL)
                return NULL;
        if (entry->playbook != NULL)
                return itk_playbook_ref(entry->playbook);
        first = itk_manager_first_error(entry->diagnostics);
        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK, "playbook '%s' is invalid: %s",
                    id, first != NULL ? first : "unknown problem");
        return NULL;
}

static ItkPlaybook *
itk_manager_resolve_cb(const char *id, gpointer user_data, GError **error)
{
        ItkManager *self = user_data;
        g_autoptr(ItkPlaybook) playbook = itk_manager_load_playbook(self, id, error);

        if (playbook == NULL)
                return NULL;
        if (self->require_verified_nested && !playbook->verified) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK,
                            "nested playbook '%s' is not marked verified "
                            "(require-verified-nested is on)",
                            id);
                return NULL;
        }
        return g_steal_pointer(&playbook);
}

static void
itk_manager_scan_dir(GHashTable *ids, const char *root, const char *relative, guint depth)
{
        g_autofree char *path = g_build_filename(root, relative, NULL);
        g_autoptr(GDir) dir = NULL;
        const char *name;

        /* Bounded: a library is a few folders deep, not a filesystem walk. */
        if (depth > 4 || (dir = g_dir_open(path, 0, NULL)) == NULL)
                return;
        while ((name = g_dir_read_name(dir)) != NULL) {
                g_autofree char *child_rel =
                        *relative != '\0' ? g_build_filename(relative, name, NULL) : g_strdup(name);
                g_autofree char *child = g_build_filename(root, child_rel, NULL);

                if (name[0] == '.')
                        continue;
                if (g_file_test(child, G_FILE_TEST_IS_DIR))
                        itk_manager_scan_dir(ids, root, child_rel, depth + 1);
                else if (g_str_has_suffix(name, ".yaml") || g_str_has_suffix(name, ".yml"))
                        g_hash_table_add(ids, g_steal_pointer(&child_rel));
        }
}

static GVariant *
itk_manager_params_to_variant(ItkPlaybook *playbook)
{
        GVariantBuilder builder;

        g_variant_builder_init(&builder, G_VARIANT_TYPE("aa{sv}"));
        for (guint i = 0; i < playbook->parameters->len; i++) {
                ItkParamDef *param = g_ptr_array_index(playbook->parameters, i);
                g_variant_builder_open(&builder, G_VARIANT_TYPE("a{sv}"));
                g_variant_builder_add(&builder, "{sv}", "name", g_variant_new_string(param->name));
                g_variant_builder_add(&builder, "{sv}", "type",
                                      g_variant_new_string(itk_param_type_to_string(param->type)));
                g_variant_builder_add(&builder, "{sv}", "required",
                                      g_variant_new_boolean(param->required));
                g_variant_builder_add(
                        &builder, "{sv}", "description",
                        g_variant_new_string(param->description != NULL ? param->description : ""));
                if (param->default_value != NULL && !JSON_NODE_HOLDS_NULL(param->default_value))
                        g_variant_builder_add(&builder, "{sv}", "default",
                                              itk_value_to_variant(param->default_value));
                g_variant_builder_close(&builder);
        }
        return g_variant_builder_end(&builder);
}

static ItkPlaybook *itk_manager_resolve_cb(const char *id, gpointer user_data, GError **error);

static void
itk_manager_add_summary(ItkManager *self, GVariantBuilder *builder, const char *id,
                        LibraryEntry *entry)
{
        ItkPlaybook *playbook = entry->playbook;
        g_autoptr(GError) nesting = NULL;
        GVariantBuilder errors;

        g_variant_builder_init(&errors, G_VARIANT_TYPE("as"));
        for (guint i = 0; i < entry->diagnostics->len; i++) {
                ItkDiagnostic *diagnostic = g_ptr_array_index(entry->diagnostics, i);
                if (diagnostic->severity == ITK_DIAGNOSTIC_ERROR)
                        g_variant_builder_add_value(
                                &errors,
                                g_variant_new_take_string(itk_diagnostic_to_string(diagnostic)));
        }
        /* A playbook whose nested runs cannot work is not valid either. */
        if (playbook != NULL &&
            !itk_playbook_check_nesting(playbook, itk_manager_resolve_cb, self, &nesting)) {
                g_variant_builder_add(&errors, "s", nesting->message);
                playbook = NULL;
        }
        g_variant_builder_add(builder, "{sv}", "id", g_variant_new_string(id));
        g_variant_builder_add(builder, "{sv}", "valid", g_variant_new_boolean(playbook != NULL));
        g_variant_builder_add(builder, "{sv}", "errors", g_variant_builder_end(&errors));
        /* Only the local folder is writable through SavePlaybook/DeletePlaybook. */
        g_variant_builder_add(builder, "{sv}", "local",
                              g_variant_new_boolean(entry->dir_index == 0));
        g_variant_builder_add(
                builder, "{sv}", "origin",
                g_variant_new_string(
                        entry->dir_index == 0 ? "local" : self->playbook_dirs[entry->dir_index]));
        playbook = entry->playbook;
        if (playbook == NULL) {
                g_variant_builder_add(builder, "{sv}", "name", g_variant_new_string(id));
                return;
        }
#define ADD_STRING(key, value)                                                                     \
        g_variant_builder_add(builder, "{sv}", key,                                                \
                              g_variant_new_string((value) != NULL ? (value) : ""))
        ADD_STRING("name", playbook->name);
        ADD_STRING("version", playbook->version);
        ADD_STRING("description", playbook->description);
        ADD_STRING("domain", playbook->domain);
        ADD_STRING("group", playbook->group);
#undef ADD_STRING
        g_variant_builder_add(builder, "{sv}", "verified",
                              g_variant_new_boolean(playbook->verified));
        g_variant_builder_add(builder, "{sv}", "parameters",
                              itk_manager_params_to_variant(playbook));
        g_variant_builder_add(builder, "{sv}", "step-count",
                              g_variant_new_uint32(playbook->steps->len));
}

static gint
compare_strings(gconstpointer a, gconstpointer b)
{
        return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

GVariant *
itk_manager_list_playbooks(ItkManager *self)
{
        g_autoptr(GHashTable) ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_autoptr(GPtrArray) sorted = NULL;
        GVariantBuilder builder;

        for (guint i = 0; self->playbook_dirs[i] != NULL; i++)
                itk_manager_scan_dir(ids, self->playbook_dirs[i], "", 0);
        sorted = g_ptr_array_new();
        {
                GHashTableIter iter;
                gpointer key;
                g_hash_table_iter_init(&iter, ids);
                while (g_hash_table_iter_next(&iter, &key, NULL))
                        g_ptr_array_add(sorted, key);
        }
        g_ptr_array_sort(sorted, compare_strings);

        g_variant_builder_init(&builder, G_VARIANT_TYPE("aa{sv}"));
        for (guint i = 0; i < sorted->len; i++) {
                const char *id = g_ptr_array_index(sorted, i);
                LibraryEntry *entry = itk_manager_library_entry(self, id, NULL);
                if (entry == NULL)
                        continue;
                g_variant_builder_open(&builder, G_VARIANT_TYPE("a{sv}"));
                itk_manager_add_summary(self, &builder, id, entry);
                g_variant_builder_close(&builder);
        }
        return g_variant_builder_end(&builder);
}

static GVariant *
itk_manager_steps_to_variant(GPtrArray *steps)
{
        GVariantBuilder builder;

        g_variant_builder_init(&builder, G_VARIANT_TYPE("aa{sv}"));
        for (guint i = 0; i < steps->len; i++) {
                ItkStepDef *step = g_ptr_array_index(steps, i);
                g_autofree char *params = step->parameters != NULL
                                                  ? itk_value_to_json(step->parameters)
                                                  : g_strdup("{}");
                g_variant_builder_open(&builder, G_VARIANT_TYPE("a{sv}"));
                g_variant_builder_add(&builder, "{sv}", "id", g_variant_new_string(step->id));
                g_variant_builder_add(&builder, "{sv}", "name", g_variant_new_string(step->name));
                g_variant_builder_add(&builder, "{sv}", "type", g_variant_new_string(step->type));
                g_variant_builder_add(&builder, "{sv}", "timeout",
                                      g_variant_new_double(step->timeout));
                g_variant_builder_add(&builder, "{sv}", "retry-count",
                                      g_variant_new_uint32(step->retry_count));
                g_variant_builder_add(&builder, "{sv}", "retry-delay",
                                      g_variant_new_double(step->retry_delay));
                g_variant_builder_add(
                        &builder, "{sv}", "on-failure",
                        g_variant_new_string(itk_on_failure_to_string(step->on_failure)));
                g_variant_builder_add(&builder, "{sv}", "parameters", g_variant_new_string(params));
                g_variant_builder_close(&builder);
        }
        return g_variant_builder_end(&builder);
}

GVariant *
itk_manager_get_playbook(ItkManager *self, const char *id, GError **error)
{
        LibraryEntry *entry = itk_manager_library_entry(self, id, error);
        GVariantBuilder builder;
        ItkPlaybook *playbook;

        if (entry == NULL)
                return NULL;
        playbook = entry->playbook;
        g_variant_builder_init(&builder, G_VARIANT_TYPE("a{sv}"));
        itk_manager_add_summary(self, &builder, id, entry);
        if (playbook != NULL) {
                g_autofree char *metadata = playbook->metadata != NULL
                                                    ? itk_value_to_json(playbook->metadata)
                                                    : g_strdup("{}");
                g_variant_builder_add(&builder, "{sv}", "steps",
                                      itk_manager_steps_to_variant(playbook->steps));
                g_variant_builder_add(&builder, "{sv}", "rollback",
                                      itk_manager_steps_to_variant(playbook->rollback));
                g_variant_builder_add(&builder, "{sv}", "metadata", g_variant_new_string(metadata));
                g_variant_builder_add(&builder, "{sv}", "source",
                                      g_variant_new_string(playbook->source));
        } else {
                /* The text of an invalid one too, so that an editor can fix it;
                 * within the same bound as the loader, UTF-8 only. */
                g_autofree char *text = NULL;
                gsize length = 0;

                if (g_file_get_contents(entry->path, &text, &length, NULL) &&
                    length <= ITK_LIMIT_SOURCE_BYTES && g_utf8_validate(text, (gssize)length, NULL))
                        g_variant_builder_add(&builder, "{sv}", "source",
                                              g_variant_new_string(text));
        }
        return g_variant_builder_end(&builder);
}

GVariant *
itk_diagnostics_to_variant(GPtrArray *diagnostics)
{
        GVariantBuilder builder;

        g_variant_builder_init(&builder, G_VARIANT_TYPE("aa{sv}"));
        for (guint i = 0; i < diagnostics->len; i++) {
                ItkDiagnostic *diagnostic = g_ptr_array_index(diagnostics, i);
                g_variant_builder_open(&builder, G_VARIANT_TYPE("a{sv}"));
                g_variant_builder_add(
                        &builder, "{sv}", "severity",
                        g_variant_new_string(diagnostic->severity == ITK_DIAGNOSTIC_ERROR
                                                     ? "error"
                                                     : "warning"));
                g_variant_builder_add(&builder, "{sv}", "line",
                                      g_variant_new_uint32((guint32)MAX(diagnostic->line, 0)));
                g_variant_builder_add(&builder, "{sv}", "column",
                                      g_variant_new_uint32((guint32)MAX(diagnostic->column, 0)));
                g_variant_builder_add(&builder, "{sv}", "step-id",
                                      g_variant_new_string(diagnostic->step_id != NULL
                                                                   ? diagnostic->step_id
                                                                   : ""));
                g_variant_builder_add(&builder, "{sv}", "message",
                                      g_variant_new_string(diagnostic->message));
                g_variant_builder_close(&builder);
        }
        return g_variant_builder_end(&builder);
}

GVariant *
itk_manager_validate_playbook(ItkManager *self, const char *source)
{
        g_autoptr(GPtrArray) diagnostics =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook =
                itk_playbook_new_from_data(source, -1, "<source>", diagnostics, &error);

        if (playbook == NULL && diagnostics->len == 0) {
                ItkDiagnostic *diagnostic = g_new0(ItkDiagnostic, 1);
                diagnostic->severity = ITK_DIAGNOSTIC_ERROR;
                diagnostic->message = g_strdup(error->message);
                g_ptr_array_add(diagnostics, diagnostic);
        }
        if (playbook != NULL &&
            !itk_playbook_check_nesting(playbook, itk_manager_resolve_cb, self, &error)) {
                ItkDiagnostic *diagnostic = g_new0(ItkDiagnostic, 1);
                diagnostic->severity = ITK_DIAGNOSTIC_ERROR;
                diagnostic->message = g_strdup(error->message);
                g_ptr_array_add(diagnostics, diagnostic);
        }
        return itk_diagnostics_to_variant(diagnostics);
}

/* The first library folder holding @id, or -1. */
static gint
itk_manager_find_dir(ItkManager *self, const char *id)
{
        for (guint i = 0; self->playbook_dirs[i] != NULL; i++) {
                g_autofree char *path = g_build_filename(self->playbook_dirs[i], id, NULL);
                if (g_file_test(path, G_FILE_TEST_EXISTS))
                        return (gint)i;
        }
        return -1;
}

typedef struct {
        ItkManager *manager;
        char *id;
        GVariant *diagnostics; /* what SavePlaybook answers: the warnings */
} LibraryChange;

static void
library_change_free(LibraryChange *change)
{
        g_clear_object(&change->manager);
        g_free(change->id);
        g_clear_pointer(&change->diagnostics, g_variant_unref);
        g_free(change);
}

static void
itk_manager_library_changed_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GTask) task = user_data;
        LibraryChange *change = g_task_get_task_data(task);
        ItkManager *self = change->manager;
        g_autofree char *path =
                g_build_filename(itk_library_store_get_dir(self->local_library), change->id, NULL);
        g_autoptr(GError) error = NULL;
        gboolean ok = g_task_get_source_tag(task) == itk_manager_save_playbook_async
                              ? itk_library_store_save_finish(result, &error)
                              : itk_library_store_delete_finish(result, &error);

        /* mtime and size may not change within a second: drop the cached copy so
         * the next ListPlaybooks/GetPlaybook reads what is on disk now. */
        g_hash_table_remove(self->library, path);
        if (!ok) {
                if (g_error_matches(error, ITK_ERROR, ITK_ERROR_NO_SUCH_PLAYBOOK))
                        g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_NO_SUCH_PLAYBOOK,
                                                "no playbook '%s' in the local library",
                                                change->id);
                else
                        g_task_return_error(task, g_steal_pointer(&error));
                return;
        }
        g_task_return_pointer(task, g_variant_ref(change->diagnostics),
                              (GDestroyNotify)g_variant_unref);
}

static gboolean
itk_manager_check_writable(ItkManager *self, const char *id, gboolean for_delete, GError **error)
{
        gint dir;

        if (!itk_library_store_check_id(id, error))
                return FALSE;
        dir = itk_manager_find_dir(self, id);
        if (dir > 0) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_ACCESS_DENIED,
                            "playbook '%s' is in the read-only library folder %s; %s", id,
                            self->playbook_dirs[dir],
                            for_delete ? "only playbooks saved to the local library can be deleted"
                                       : "save a copy under another id");
                return FALSE;
        }
        if (dir < 0 && for_delete) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_PLAYBOOK,
                            "no playbook '%s' in the local library", id);
                return FALSE;
        }
        return TRUE;
}

void
itk_manager_save_playbook_async(ItkManager *self, const char *id, const char *source,
                                GAsyncReadyCallback callback, gpointer user_data)
{
        g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);
        g_autoptr(GPtrArray) diagnostics =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkPlaybook) playbook = NULL;
        g_autofree char *first = NULL;
        LibraryChange *change;

        g_task_set_source_tag(task, itk_manager_save_playbook_async);
        if (!itk_manager_check_writable(self, id, FALSE, &error)) {
                g_task_return_error(task, g_steal_pointer(&error));
                return;
        }
        if (strlen(source) > ITK_LIMIT_SOURCE_BYTES) {
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK,
                                        "playbook source is %zu bytes; the limit is %d",
                                        strlen(source), ITK_LIMIT_SOURCE_BYTES);
                return;
        }
        /* The same checks as ValidatePlaybook: the library holds only what runs. */
        playbook = itk_playbook_new_from_data(source, -1, id, diagnostics, &error);
        if (playbook != NULL &&
            !itk_playbook_check_nesting(playbook, itk_manager_resolve_cb, self, &error))
                g_clear_pointer(&playbook, itk_playbook_unref);
        if (playbook == NULL) {
                first = itk_manager_first_error(diagnostics);
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK,
                                        "playbook '%s' is not valid and was not saved: %s", id,
                                        first != NULL   ? first
                                        : error != NULL ? error->message
                                                        : "unknown problem");
                return;
        }
        change = g_new0(LibraryChange, 1);
        change->manager = g_object_ref(self);
        change->id = g_strdup(id);
        change->diagnostics = g_variant_ref_sink(itk_diagnostics_to_variant(diagnostics));
        g_task_set_task_data(task, change, (GDestroyNotify)library_change_free);
        itk_library_store_save_async(self->local_library, id, source,
                                     itk_manager_library_changed_cb, g_steal_pointer(&task));
}

GVariant *
itk_manager_save_playbook_finish(ItkManager *self, GAsyncResult *result, GError **error)
{
        return g_task_propagate_pointer(G_TASK(result), error);
}

void
itk_manager_delete_playbook_async(ItkManager *self, const char *id, GAsyncReadyCallback callback,
                                  gpointer user_data)
{
        g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);
        g_autoptr(GError) error = NULL;
        LibraryChange *change;

        g_task_set_source_tag(task, itk_manager_delete_playbook_async);
        if (!itk_manager_check_writable(self, id, TRUE, &error)) {
                g_task_return_error(task, g_steal_pointer(&error));
                return;
        }
        change = g_new0(LibraryChange, 1);
        change->manager = g_object_ref(self);
        change->id = g_strdup(id);
        change->diagnostics = g_variant_ref_sink(g_variant_new("aa{sv}", NULL));
        g_task_set_task_data(task, change, (GDestroyNotify)library_change_free);
        itk_library_store_delete_async(self->local_library, id, itk_manager_library_changed_cb,
                                       g_steal_pointer(&task));
}

gboolean
itk_manager_delete_playbook_finish(ItkManager *self, GAsyncResult *result, GError **error)
{
        g_autoptr(GVariant) unused = g_task_propagate_pointer(G_TASK(result), error);
        return unused != NULL;
}

const char *
itk_manager_get_local_playbook_dir(ItkManager *self)
{
        return itk_library_store_get_dir(self->local_library);
}

/* --- executions ------------------------------------------------------------------ */

/* The store keys runs by their dashed UUID; callers may use the 32 hex
 * digits of the object path too. */
static char *
itk_manager_canonical_id(const char *id)
{
        if (id != NULL && strlen(id) == 32 && strspn(id, "0123456789abcdefABCDEF") == 32) {
                g_autofree char *dashed = g_strdup_printf("%.8s-%.4s-%.4s-%.4s-%.12s", id, id + 8,
                                                          id + 12, id + 16, id + 20);
                return g_ascii_strdown(dashed, -1);
        }
        return g_strdup(id);
}

static Entry *
itk_manager_find_entry(ItkManager *self, const char *id)
{
        g_autoptr(GString) hex = NULL;

        if (id == NULL)
                return NULL;
        hex = g_string_new(NULL);
        for (const char *p = id; *p != '\0'; p++)
                if (*p != '-')
                        g_string_append_c(hex, g_ascii_tolower(*p));
        return g_hash_table_lookup(self->by_id, hex->str);
}

ItkExecution *
itk_manager_lookup(ItkManager *self, const char *id)
{
        Entry *entry = itk_manager_find_entry(self, id);
        return entry != NULL ? entry->execution : NULL;
}

GPtrArray *
itk_manager_get_executions(ItkManager *self)
{
        GPtrArray *executions = g_ptr_array_new();

        for (guint i = 0; i < self->entries->len; i++) {
                Entry *entry = g_ptr_array_index(self->entries, i);
                g_ptr_array_add(executions, entry->execution);
        }
        return executions;
}

/* A secret set or changed is masked in live runs from now on. */
static void
itk_manager_secrets_changed_cb(gpointer credentials, gpointer user_data)
{
        ItkManager *self = user_data;
        ItkSecretSet *set = itk_credentials_get_secret_set(credentials);

        for (guint i = 0; i < self->entries->len; i++) {
                Entry *entry = g_ptr_array_index(self->entries, i);
                itk_execution_set_shared_secrets(entry->execution, set);
        }
}

static guint
itk_manager_count_active(ItkManager *self, gboolean per_uid, guint32 uid)
{
        guint count = 0;

        for (guint i = 0; i < self->entries->len; i++) {
                Entry *entry = g_ptr_array_index(self->entries, i);
                if (itk_status_is_terminal(itk_execution_get_status(entry->execution)))
                        continue;
                if (per_uid && itk_execution_get_started_by_uid(entry->execution) != uid)
                        continue;
                count++;
        }
        return count;
}

guint
itk_manager_get_active_count(ItkManager *self)
{
        return itk_manager_count_active(self, FALSE, 0);
}

guint
itk_manager_get_max_concurrent(ItkManager *self)
{
        return self->max_concurrent;
}

guint
itk_manager_get_max_per_caller(ItkManager *self)
{
        return self->max_per_caller;
}

guint
itk_manager_get_retention_sec(ItkManager *self)
{
        return self->retention_sec;
}

static void
itk_manager_remove_entry(ItkManager *self, Entry *entry)
{
        g_autoptr(ItkExecution) execution = g_object_ref(entry->execution);
        g_autofree char *run_dir = g_build_filename(self->state_dir, "runs",
                                                    itk_execution_get_object_id(execution), NULL);

        g_signal_emit(self, signals[SIGNAL_EXECUTION_REMOVED], 0, execution);
        g_hash_table_remove(self->by_id, itk_execution_get_object_id(execution));
        g_ptr_array_remove(self->entries, entry);
        /* The run's folder goes when nothing was left in it. */
        g_rmdir(run_dir);
}

/* Runs that ended because the store failed get their end stored, now that
 * it writes again (until then, their rows still say they are running). */
static void
itk_manager_save_ends(ItkManager *self)
{
        for (guint i = 0; i < self->entries->len; i++) {
                Entry *entry = g_ptr_array_index(self->entries, i);
                g_autoptr(GError) error = NULL;

                if (!itk_execution_save_end(entry->execution, &error))
                        g_warning("execution %s: its end is still not in the history store: %s",
                                  itk_execution_get_id(entry->execution), error->message);
        }
}

static gboolean
itk_manager_retention_cb(gpointer user_data)
{
        Entry *entry = user_data;
        g_autoptr(GError) error = NULL;

        entry->retention_id = 0;
        /* The last chance while it is in memory; after a restart it reads "interrupted". */
        if (!itk_execution_save_end(entry->execution, &error))
                g_warning("execution %s: its end could not be stored: %s",
                          itk_execution_get_id(entry->execution), error->message);
        itk_manager_remove_entry(entry->manager, entry);
        return G_SOURCE_REMOVE;
}

static void
itk_manager_execution_finished_cb(ItkExecution *execution, int status, const char *error,
                                  gpointer user_data)
{
        Entry *entry = user_data;
        ItkManager *self = entry->manager;

        g_clear_pointer(&entry->sender, g_free);
        entry->retention_id =
                g_timeout_add_seconds(self->retention_sec, itk_manager_retention_cb, entry);
        g_signal_emit(self, signals[SIGNAL_ACTIVE_CHANGED], 0);
}

static JsonObject *
itk_manager_credential_lookup_cb(const char *name, gpointer user_data, GError **error)
{
        ItkManager *self = user_data;
        return itk_credentials_lookup(self->credentials, name, error);
}

/* The `credential` start option fills only what the caller left out
 * (PLAYBOOKS.md "Parameters"); the password reaches the run but is masked
 * everywhere it could be shown, stored parameters included. */
static void
itk_manager_fill_from_credential(ItkPlaybook *playbook, JsonObject *given, const char *name,
                                 JsonObject *credential)
{
        static const struct {
                const char *param;
                const char *field;
        } map[] = {
                { "gateway_url", "gateway_url" },
                { "url", "gateway_url" },
                { "username", "username" },
                { "user", "username" },
                { "gateway_username", "username" },
                { "password", "password" },
                { "pass", "password" },
                { "gateway_password", "password" },
                { "gateway_token", "api_token" },
        };

        for (guint i = 0; i < playbook->parameters->len; i++) {
                ItkParamDef *param = g_ptr_array_index(playbook->parameters, i);
                JsonNode *current = json_object_get_member(given, param->name);

                if (current != NULL && !JSON_NODE_HOLDS_NULL(current))
                        continue;
                if (param->type == ITK_PARAM_CREDENTIAL) {
                        json_object_set_string_member(given, param->name, name);
                        continue;
                }
                for (guint j = 0; j < G_N_ELEMENTS(map); j++) {
                        const char *value;
                        if (!g_str_equal(param->name, map[j].param))
                                continue;
                        value = json_object_get_string_member_with_default(credential, map[j].field,
                                                                           NULL);
                        if (value != NULL && *value != '\0')
                                json_object_set_string_member(given, param->name, value);
                }
        }
}

ItkCredentials *
itk_manager_get_credentials(ItkManager *self)
{
        return self->credentials;
}

ItkInputFiles *
itk_manager_get_input_files(ItkManager *self)
{
        return self->input_files;
}

/* The file parameters the caller gave: "staged:TOKEN" values only. */
typedef struct {
        ItkManager *manager;
        ItkPlaybook *playbook;
        JsonObject *given;
        guint32 uid;
        GPtrArray *log_lines;
} InputClaim;

static gboolean
itk_manager_is_given_file(InputClaim *claim, const ItkParamDef *def)
{
        JsonNode *value;

        if (def->type != ITK_PARAM_FILE || !json_object_has_member(claim->given, def->name))
                return FALSE;
        value = json_object_get_member(claim->given, def->name);
        /* Empty means "none" (an optional file left blank); bind decides. */
        return JSON_NODE_HOLDS_VALUE(value) && json_node_get_value_type(value) == G_TYPE_STRING &&
               *json_node_get_string(value) != '\0';
}

static gboolean
itk_manager_check_inputs(InputClaim *claim, GError **error)
{
        for (guint i = 0; i < claim->playbook->parameters->len; i++) {
                const ItkParamDef *def = g_ptr_array_index(claim->playbook->parameters, i);
                if (itk_manager_is_given_file(claim, def) &&
                    !itk_input_files_check(claim->manager->input_files, claim->uid, def->name,
                                           json_object_get_string_member(claim->given, def->name),
                                           error))
                        return FALSE;
        }
        return TRUE;
}

static gboolean
itk_manager_claim_inputs_cb(const char *run_dir, JsonObject *parameters, gpointer data,
                            GError **error)
{
        InputClaim *claim = data;

        for (guint i = 0; i < claim->playbook->parameters->len; i++) {
                const ItkParamDef *def = g_ptr_array_index(claim->playbook->parameters, i);
                g_autofree char *path = NULL;
                char *line = NULL;

                if (!itk_manager_is_given_file(claim, def))
                        continue;
                path = itk_input_files_claim(claim->manager->input_files, claim->uid, def->name,
                                             json_object_get_string_member(claim->given, def->name),
                                             run_dir, &line, error);
                if (path == NULL)
                        return FALSE;
                g_ptr_array_add(claim->log_lines, line);
                json_object_set_string_member(parameters, def->name, path);
        }
        return TRUE;
}

ItkExecution *
itk_manager_create_execution(ItkManager *self, const char *playbook_id, JsonObject *parameters,
                             const ItkStartOptions *options, GError **error)
{
        g_autoptr(ItkPlaybook) playbook = NULL;
        g_autoptr(JsonObject) given = NULL;
        g_autoptr(JsonObject) bound = NULL;
        g_autoptr(JsonObject) credential = NULL;
        g_autoptr(ItkExecution) execution = NULL;
        g_autofree char *runs_dir = NULL;
        const char *secrets[3] = { NULL, NULL, NULL };
        ItkExecutionConfig config = { 0 };
        g_autoptr(GPtrArray) input_log = g_ptr_array_new_with_free_func(g_free);
        InputClaim claim = { 0 };
        Entry *entry;

        if (self->max_concurrent > 0 &&
            itk_manager_count_active(self, FALSE, 0) >= self->max_concurrent) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_LIMITS_EXCEEDED,
                            "too many executions: %u are active (the limit is %u)",
                            self->max_concurrent, self->max_concurrent);
                return NULL;
        }
        if (self->max_per_caller > 0 &&
            itk_manager_count_active(self, TRUE, options->uid) >= self->max_per_caller) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_LIMITS_EXCEEDED,
                            "too many executions for user %u: the limit is %u per user",
                            options->uid, self->max_per_caller);
                return NULL;
        }

        if (options->source != NULL) {
                g_autoptr(GPtrArray) diagnostics =
                        g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
                const char *label =
                        playbook_id != NULL && *playbook_id != '\0' ? playbook_id : "<source>";
                playbook =
                        itk_playbook_new_from_data(options->source, -1, label, diagnostics, error);
        } else {
                playbook = itk_manager_load_playbook(self, playbook_id, error);
        }
        if (playbook == NULL)
                return NULL;
        if (!itk_playbook_check_nesting(playbook, itk_manager_resolve_cb, self, error))
                return NULL;
        given = json_object_new();
        if (parameters != NULL) {
                JsonObjectIter iter;
                const char *name;
                JsonNode *value;
                json_object_iter_init(&iter, parameters);
                while (json_object_iter_next(&iter, &name, &value))
                        json_object_set_member(given, name, json_node_copy(value));
        }
        if (options->credential != NULL && *options->credential != '\0') {
                credential = itk_credentials_lookup(self->credentials, options->credential, error);
                if (credential == NULL)
                        return NULL;
                itk_manager_fill_from_credential(playbook, given, options->credential, credential);
                secrets[0] =
                        json_object_get_string_member_with_default(credential, "password", NULL);
                secrets[1] =
                        json_object_get_string_member_with_default(credential, "api_token", NULL);
                if (secrets[0] == NULL) {
                        secrets[0] = secrets[1];
                        secrets[1] = NULL;
                }
        }
        claim.manager = self;
        claim.playbook = playbook;
        claim.given = given;
        claim.uid = options->uid;
        claim.log_lines = input_log;
        if (!itk_manager_check_inputs(&claim, error))
                return NULL;
        bound = itk_playbook_bind_parameters(playbook, given, error);
        if (bound == NULL)
                return NULL;

        config.playbook = playbook;
        config.parameters = bound;
        config.store = self->store;
        config.gateway_url = options->gateway_url;
        config.credential = options->credential;
        if (credential != NULL) {
                const char *url =
                        json_object_get_string_member_with_default(credential, "gateway_url", NULL);
                if ((config.gateway_url == NULL || *config.gateway_url == '\0') && url != NULL &&
                    *url != '\0')
                        config.gateway_url = url;
                config.gateway_token =
                        json_object_get_string_member_with_default(credential, "api_token", NULL);
        }
        config.secrets = secrets;
        config.shared_secrets = itk_credentials_get_secret_set(self->credentials);
        config.credential_lookup = itk_manager_credential_lookup_cb;
        config.credential_data = self;
        config.timeout_overrides = options->timeout_overrides;
        config.debug_mode = options->debug;
        config.started_by_uid = options->uid;
        config.python = self->python;
        config.resolve = itk_manager_resolve_cb;
        config.resolve_data = self;
        runs_dir = g_build_filename(self->state_dir, "runs", NULL);
        config.runs_dir = runs_dir;
        config.prepare_run_dir = itk_manager_claim_inputs_cb;
        config.prepare_data = &claim;
        execution = itk_execution_new(&config, error);
        if (execution == NULL) {
                /* The journal says so each time a start is refused for it. */
                if (error != NULL && g_error_matches(*error, ITK_ERROR, ITK_ERROR_STORE_FAILED)) {
                        g_warning("refusing a new run: %s", (*error)->message);
                        self->store_failing = TRUE;
                }
                return NULL;
        }
        if (self->store_failing) {
                g_message("the history store writes again: new runs are accepted");
                self->store_failing = FALSE;
                itk_manager_save_ends(self);
        }

        entry = g_new0(Entry, 1);
        entry->manager = self;
        entry->execution = g_object_ref(execution);
        if (options->cancel_on_disconnect && options->sender != NULL)
                entry->sender = g_strdup(options->sender);
        entry->finished_id = g_signal_connect(execution, "finished",
                                              G_CALLBACK(itk_manager_execution_finished_cb), entry);
        g_ptr_array_add(self->entries, entry);
        g_hash_table_insert(self->by_id, (gpointer)itk_execution_get_object_id(execution), entry);
        itk_execution_set_pending_timeout(execution, self->pending_timeout_sec * 1000);
        for (guint i = 0; i < input_log->len; i++)
                itk_execution_log_operator(execution, g_ptr_array_index(input_log, i));

        g_signal_emit(self, signals[SIGNAL_EXECUTION_ADDED], 0, execution);
        g_signal_emit(self, signals[SIGNAL_ACTIVE_CHANGED], 0);
        return g_steal_pointer(&execution);
}

void
itk_manager_sender_vanished(ItkManager *self, const char *sender)
{
        g_autoptr(GPtrArray) victims = g_ptr_array_new_with_free_func(g_object_unref);

        for (guint i = 0; i < self->entries->len; i++) {
                Entry *entry = g_ptr_array_index(self->entries, i);
                if (entry->sender != NULL && g_str_equal(entry->sender, sender))
                        g_ptr_array_add(victims, g_object_ref(entry->execution));
        }
        for (guint i = 0; i < victims->len; i++) {
                ItkExecution *execution = g_ptr_array_index(victims, i);
                g_message("execution %s: its client %s left the bus, cancelling",
                          itk_execution_get_id(execution), sender);
                itk_execution_cancel(execution, NULL);
        }
}

void
itk_manager_cancel_all(ItkManager *self)
{
        g_autoptr(GPtrArray) executions = itk_manager_get_executions(self);

        g_ptr_array_set_free_func(executions, NULL);
        for (guint i = 0; i < executions->len; i++)
                itk_execution_cancel(g_ptr_array_index(executions, i), NULL);
}

/* --- history ----------------------------------------------------------------------- */

static gboolean
itk_manager_check_store(ItkManager *self, GError **error)
{
        if (self->store != NULL)
                return TRUE;
        g_set_error_literal(error, ITK_ERROR, ITK_ERROR_NOT_SUPPORTED, "history is disabled");
        return FALSE;
}

GVariant *
itk_manager_get_history(ItkManager *self, guint limit, const char *status, GError **error)
{
        g_autoptr(GPtrArray) runs = NULL;
        GVariantBuilder builder;

        if (status != NULL && *status != '\0' && !g_str_equal(status, "completed") &&
            !g_str_equal(status, "failed") && !g_str_equal(status, "cancelled")) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                            "unknown status '%s': use completed, failed or cancelled", status);
                return NULL;
        }
        if (!itk_manager_check_store(self, error))
                return NULL;
        runs = itk_store_list_executions(self->store, limit, status, error);
        if (runs == NULL)
                return NULL;
        g_variant_builder_init(&builder, G_VARIANT_TYPE("aa{sv}"));
        for (guint i = 0; i < runs->len; i++)
                g_variant_builder_add_value(&builder, g_ptr_array_index(runs, i));
        return g_variant_builder_end(&builder);
}

GVariant *
itk_manager_get_record(ItkManager *self, const char *id, GError **error)
{
        g_autoptr(GVariant) run = NULL;
        g_autoptr(GVariant) steps = NULL;
        g_autoptr(GVariant) log = NULL;
        ItkExecution *live = itk_manager_lookup(self, id);
        g_autofree char *canonical =
                live != NULL ? g_strdup(itk_execution_get_id(live)) : itk_manager_canonical_id(id);
        GVariantBuilder builder;
        GVariantIter iter;
        const char *key;
        GVariant *value;

        if (!itk_manager_check_store(self, error))
                return NULL;
        run = itk_store_get_execution(self->store, canonical, error);
        if (run == NULL)
                return NULL;
        /* A live run's steps come from the engine, the one source of truth. */
        steps = live != NULL ? g_variant_ref_sink(itk_execution_get_steps(live))
                             : itk_store_get_steps(self->store, canonical, error);
        if (steps == NULL)
                return NULL;
        log = itk_store_get_log(self->store, canonical, 1000, error);
        if (log == NULL)
                return NULL;
        g_variant_builder_init(&builder, G_VARIANT_TYPE("a{sv}"));
        g_variant_iter_init(&iter, run);
        while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
                if (live != NULL && g_str_equal(key, "status"))
                        g_variant_builder_add(&builder, "{sv}", key,
                                              g_variant_new_string(itk_status_to_string(
                                                      itk_execution_get_status(live))));
                else
                        g_variant_builder_add(&builder, "{sv}", key, value);
                g_variant_unref(value);
        }
        g_variant_builder_add(&builder, "{sv}", "steps", steps);
        g_variant_builder_add(&builder, "{sv}", "log", log);
        return g_variant_builder_end(&builder);
}

gboolean
itk_manager_delete_execution(ItkManager *self, const char *id, GError **error)
{
        Entry *entry = itk_manager_find_entry(self, id);
        g_autofree char *canonical = NULL;

        if (entry != NULL) {
                ItkExecution *execution = entry->execution;
                if (!itk_status_is_terminal(itk_execution_get_status(execution))) {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_STATE,
                                    "execution %s is %s: cancel it before deleting it",
                                    itk_execution_get_id(execution),
                                    itk_status_to_string(itk_execution_get_status(execution)));
                        return FALSE;
                }
                canonical = g_strdup(itk_execution_get_id(execution));
        } else {
                canonical = itk_manager_canonical_id(id);
        }
        if (!itk_manager_check_store(self, error))
                return FALSE;
        if (!itk_store_delete_execution(self->store, canonical, error))
                return FALSE;
        if (entry != NULL)
                itk_manager_remove_entry(self, entry);
        return TRUE;
}

/* --- paging and retention ------------------------------------------------------------- */

GVariant *
itk_manager_get_history_page(ItkManager *self, const ItkHistoryFilter *filter, guint limit,
                             const char *cursor, char **next_cursor, GError **error)
{
        if (!itk_manager_check_store(self, error))
                return NULL;
        return itk_store_list_page(self->store, filter, limit, cursor, next_cursor, error);
}

GVariant *
itk_manager_get_log_page(ItkManager *self, const char *id, guint limit, const char *cursor,
                         char **next_cursor, GError **error)
{
        ItkExecution *live = itk_manager_lookup(self, id);
        g_autofree char *canonical =
                live != NULL ? g_strdup(itk_execution_get_id(live)) : itk_manager_canonical_id(id);

        if (!itk_manager_check_store(self, error))
                return NULL;
        return itk_store_get_log_page(self->store, canonical, limit, cursor, next_cursor, error);
}

gboolean
itk_manager_get_run_owner(ItkManager *self, const char *id, guint32 *uid)
{
        ItkExecution *live = itk_manager_lookup(self, id);
        g_autofree char *canonical = NULL;
        g_autoptr(GVariant) run = NULL;

        if (live != NULL) {
                *uid = itk_execution_get_started_by_uid(live);
                return TRUE;
        }
        if (self->store == NULL)
                return FALSE;
        canonical = itk_manager_canonical_id(id);
        run = itk_store_get_execution(self->store, canonical, NULL);
        return run != NULL && g_variant_lookup(run, "started-by-uid", "u", uid);
}

/* A run still on the bus is not pruned: its object and record stay whole. */
static gboolean
itk_manager_retention_keep_cb(const char *id, gpointer user_data)
{
        return itk_manager_lookup(user_data, id) != NULL;
}

static void
itk_manager_start_retention(ItkManager *self, const ItkManagerConfig *config)
{
        g_autofree char *runs_dir = g_build_filename(self->state_dir, "runs", NULL);
        ItkRetentionConfig retention = {
                .max_age_days = config->history_max_age_days,
                .max_runs = config->history_max_runs,
                .interval_sec = config->history_prune_interval_sec,
                .keep = itk_manager_retention_keep_cb,
                .keep_data = self,
        };

        self->retention = itk_retention_new(self->store, runs_dir, &retention);
}

/* --- object ------------------------------------------------------------------------ */

static void
itk_manager_dispose(GObject *object)
{
        ItkManager *self = ITK_MANAGER(object);

        g_clear_pointer(&self->by_id, g_hash_table_unref);
        g_clear_pointer(&self->entries, g_ptr_array_unref);
        G_OBJECT_CLASS(itk_manager_parent_class)->dispose(object);
}

static void
itk_manager_finalize(GObject *object)
{
        ItkManager *self = ITK_MANAGER(object);

        g_clear_pointer(&self->library, g_hash_table_unref);
        g_clear_pointer(&self->retention, itk_retention_free);
        g_clear_pointer(&self->local_library, itk_library_store_free);
        g_clear_pointer(&self->store, itk_store_free);
        g_clear_pointer(&self->credentials, itk_credentials_free);
        g_clear_object(&self->input_files);
        g_free(self->state_dir);
        g_strfreev(self->playbook_dirs);
        g_free(self->python);
        G_OBJECT_CLASS(itk_manager_parent_class)->finalize(object);
}

static void
itk_manager_class_init(ItkManagerClass *klass)
{
        GObjectClass *object_class = G_OBJECT_CLASS(klass);

        object_class->dispose = itk_manager_dispose;
        object_class->finalize = itk_manager_finalize;
        signals[SIGNAL_EXECUTION_ADDED] =
                g_signal_new("execution-added", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                             NULL, NULL, NULL, G_TYPE_NONE, 1, ITK_TYPE_EXECUTION);
        signals[SIGNAL_EXECUTION_REMOVED] =
                g_signal_new("execution-removed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                             NULL, NULL, NULL, G_TYPE_NONE, 1, ITK_TYPE_EXECUTION);
        signals[SIGNAL_ACTIVE_CHANGED] =
                g_signal_new("active-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                             NULL, NULL, G_TYPE_NONE, 0);
}

static void
itk_manager_init(ItkManager *self)
{
        self->entries = g_ptr_array_new_with_free_func((GDestroyNotify)entry_free);
        self->by_id = g_hash_table_new(g_str_hash, g_str_equal);
        self->library = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                              (GDestroyNotify)library_entry_free);
}

ItkManager *
itk_manager_new(const ItkManagerConfig *config, GError **error)
{
        g_autoptr(ItkManager) self = g_object_new(ITK_TYPE_MANAGER, NULL);
        g_autofree char *db = NULL;
        gint interrupted;

        self->state_dir = g_strdup(config->state_dir);
        {
                /* The writable local folder comes first: a playbook someone saved
                 * stays what its id runs even if a later package ships the same id. */
                g_autoptr(GStrvBuilder) dirs = g_strv_builder_new();
                g_autofree char *local =
                        g_build_filename(config->state_dir, "playbooks", "local", NULL);

                g_strv_builder_add(dirs, local);
                if (config->playbook_dirs != NULL)
                        g_strv_builder_addv(dirs, (const char **)config->playbook_dirs);
                self->playbook_dirs = g_strv_builder_end(dirs);
                self->local_library = itk_library_store_new(local);
        }
        self->max_concurrent = config->max_concurrent;
        self->max_per_caller = config->max_per_caller;
        self->retention_sec = config->retention_sec;
        self->pending_timeout_sec = config->pending_timeout_sec;
        self->python = g_strdup(config->python);
        self->require_verified_nested = config->require_verified_nested;

        if (g_mkdir_with_parents(self->state_dir, 0700) != 0) {
                int errsv = errno;
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                            "cannot create the state directory %s: %s", self->state_dir,
                            g_strerror(errsv));
                return NULL;
        }
        self->input_files =
                itk_input_files_new(self->state_dir, config->input_max_bytes,
                                    config->input_expiry_sec, config->input_dirs, error);
        if (self->input_files == NULL)
                return NULL;
        db = g_build_filename(self->state_dir, "history.db", NULL);
        self->store = itk_store_open(db, error);
        if (self->store == NULL)
                return NULL;
        g_free(db);
        db = g_build_filename(self->state_dir, "credentials.json", NULL);
        self->credentials = itk_credentials_new(db, error);
        if (self->credentials == NULL)
                return NULL;
        itk_credentials_set_changed_func(self->credentials, itk_manager_secrets_changed_cb, self);
        interrupted = itk_store_mark_interrupted(self->store, error);
        if (interrupted < 0)
                return NULL;
        if (interrupted > 0)
                g_message("%d run(s) of a previous daemon were marked interrupted", interrupted);
        itk_manager_start_retention(self, config);
        return g_steal_pointer(&self);
}

/* --- artifacts ---------------------------------------------------------------------------- */

GVariant *
itk_manager_list_artifacts(ItkManager *self, const char *id, GError **error)
{
        ItkExecution *live = itk_manager_lookup(self, id);
        g_autofree char *canonical = NULL;

        if (live != NULL)
                return g_variant_ref_sink(itk_execution_list_artifacts(live));
        if (!itk_manager_check_store(self, error))
                return NULL;
        canonical = itk_manager_canonical_id(id);
        return itk_store_list_artifacts(self->store, canonical, error);
}

int
itk_manager_open_artifact(ItkManager *self, const char *id, const char *name, GError **error)
{
        ItkExecution *live = itk_manager_lookup(self, id);
        g_autoptr(GVariant) artifacts = NULL;
        g_autofree char *run_dir = NULL;
        GVariantIter iter;
        GVariant *artifact;

        if (live != NULL)
                return itk_execution_open_artifact(live, name, error);
        if (!itk_artifact_name_is_valid(name, error))
                return -1;
        artifacts = itk_manager_list_artifacts(self, id, error);
        if (artifacts == NULL)
                return -1;
        /* Only what a step recorded, not whatever else lies in the folder. */
        g_variant_iter_init(&iter, artifacts);
        while ((artifact = g_variant_iter_next_value(&iter)) != NULL) {
                g_autoptr(GVariant) owned = artifact;
                g_autofree char *canonical = NULL;
                g_autoptr(GString) hex = NULL;
                const char *listed = NULL;

                if (!g_variant_lookup(artifact, "name", "&s", &listed) ||
                    !g_str_equal(listed, name))
                        continue;
                /* The folder is named by the run's object id: the UUID's hex
                 * digits (only a run the store knows gets this far). */
                canonical = itk_manager_canonical_id(id);
                hex = g_string_new(NULL);
                for (const char *p = canonical; *p != '\0'; p++)
                        if (g_ascii_isxdigit(*p))
                                g_string_append_c(hex, g_ascii_tolower(*p));
                run_dir = g_build_filename(self->state_dir, "runs", hex->str, NULL);
                return itk_artifact_open(run_dir, name, error);
        }
        g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_ARTIFACT,
                    "execution %s has no artifact '%s'", id, name);
        return -1;
}
