/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "itk-credentials.h"
#include "itk-error.h"
#include "itk-redactor.h"
#include "itk-limits.h"

#define MAX_CREDENTIALS ITK_LIMIT_CREDENTIALS
#define MAX_FIELD_LENGTH ITK_LIMIT_CREDENTIAL_FIELD

static const char *const fields[] = { "username",  "password",    "gateway_url",
                                      "api_token", "description", NULL };

struct _ItkCredentials {
        GFile *file;
        JsonObject *table; /* name -> {field: string} */
        gboolean saving;
        GPtrArray *in_flight;  /* GTask*, answered when the current write ends */
        GPtrArray *waiting;    /* GTask*, need another write */
        ItkSecretSet *secrets; /* every stored secret, for masking */
        GFunc changed;
        gpointer changed_data;
};

static void
itk_credentials_wipe(JsonObject *table)
{
        /* Best effort: overwrite secrets before the memory is released. */
        JsonObjectIter iter;
        const char *name;
        JsonNode *node;

        json_object_iter_init(&iter, table);
        while (json_object_iter_next(&iter, &name, &node)) {
                JsonObject *entry =
                        JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
                for (guint i = 0; entry != NULL && i < 2; i++) {
                        const char *key = i == 0 ? "password" : "api_token";
                        if (json_object_has_member(entry, key)) {
                                char *value = (char *)json_object_get_string_member(entry, key);
                                if (value != NULL)
                                        memset(value, 0, strlen(value));
                        }
                }
        }
}

void
itk_credentials_free(ItkCredentials *self)
{
        if (self == NULL)
                return;
        g_assert(!self->saving);
        itk_credentials_wipe(self->table);
        json_object_unref(self->table);
        g_clear_pointer(&self->secrets, itk_secret_set_unref);
        g_object_unref(self->file);
        g_ptr_array_unref(self->in_flight);
        g_ptr_array_unref(self->waiting);
        g_free(self);
}

static gboolean
itk_credentials_valid_name(const char *name)
{
        if (name == NULL || *name == '\0' || strlen(name) > ITK_LIMIT_CREDENTIAL_NAME)
                return FALSE;
        for (const char *p = name; *p != '\0'; p++)
                if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-' && *p != '.')
                        return FALSE;
        return TRUE;
}

/* Every entry an object of string fields with a valid name: what the rest
 * of the store relies on, so a hand-edited file cannot crash the daemon. */
static gboolean
itk_credentials_check_table(JsonObject *table, const char *path, GError **error)
{
        JsonObjectIter iter;
        const char *name;
        JsonNode *node;

        json_object_iter_init(&iter, table);
        while (json_object_iter_next(&iter, &name, &node)) {
                JsonObjectIter fields_iter;
                const char *field;
                JsonNode *value;

                if (!itk_credentials_valid_name(name) || !JSON_NODE_HOLDS_OBJECT(node)) {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                                    "%s: credential '%s' is not an object with a valid name", path,
                                    name);
                        return FALSE;
                }
                json_object_iter_init(&fields_iter, json_node_get_object(node));
                while (json_object_iter_next(&fields_iter, &field, &value)) {
                        if (!JSON_NODE_HOLDS_VALUE(value) ||
                            json_node_get_value_type(value) != G_TYPE_STRING) {
                                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                                            "%s: field '%s' of credential '%s' is not a string",
                                            path, field, name);
                                return FALSE;
                        }
                }
        }
        return TRUE;
}

static void
itk_credentials_add_secret(GPtrArray *secrets, const char *value)
{
        if (value != NULL && strlen(value) >= ITK_REDACTOR_MIN_SHARED)
                g_ptr_array_add(secrets, (gpointer)value);
}

/* Rebuilt on each change rather than patched: a set is immutable, so runs
 * holding the old one keep a consistent view until they get the new one. */
static void
itk_credentials_rebuild_secrets(ItkCredentials *self)
{
        g_autoptr(GPtrArray) secrets = g_ptr_array_new();
        JsonObjectIter iter;
        const char *name;
        JsonNode *node;

        json_object_iter_init(&iter, self->table);
        while (json_object_iter_next(&iter, &name, &node)) {
                JsonObject *entry = json_node_get_object(node);
                const char *password =
                        json_object_get_string_member_with_default(entry, "password", NULL);
                const char *token =
                        json_object_get_string_member_with_default(entry, "api_token", NULL);

                itk_credentials_add_secret(secrets, password);
                itk_credentials_add_secret(secrets, token);
                /* An Ignition API token is NAME:KEY; the key alone is just as secret. */
                if (token != NULL && strchr(token, ':') != NULL)
                        itk_credentials_add_secret(secrets, strchr(token, ':') + 1);
        }
        g_ptr_array_add(secrets, NULL);
        g_clear_pointer(&self->secrets, itk_secret_set_unref);
        self->secrets = itk_secret_set_new((const char *const *)secrets->pdata);
        if (self->changed != NULL)
                self->changed(self, self->changed_data);
}

ItkSecretSet *
itk_credentials_get_secret_set(ItkCredentials *self)
{
        return self->secrets;
}

void
itk_credentials_set_changed_func(ItkCredentials *self, GFunc func, gpointer user_data)
{
        self->changed = func;
        self->changed_data = user_data;
}

ItkCredentials *
itk_credentials_new(const char *path, GError **error)
{
        g_autoptr(ItkCredentials) self = g_new0(ItkCredentials, 1);
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(GError) local = NULL;
        g_autofree char *contents = NULL;
        gsize length;
        JsonNode *root;

        self->file = g_file_new_for_path(path);
        self->table = json_object_new();
        self->in_flight = g_ptr_array_new();
        self->waiting = g_ptr_array_new();
        /* Start-up only: the daemon reads its own small file before serving. */
        if (!g_file_get_contents(path, &contents, &length, &local)) {
                if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
                        itk_credentials_rebuild_secrets(self);
                        return g_steal_pointer(&self);
                }
                g_propagate_prefixed_error(error, g_steal_pointer(&local), "%s: ", path);
                return NULL;
        }
        if (!json_parser_load_from_data(parser, contents, (gssize)length, &local)) {
                /* The parser's message quotes the text around the error, which
                 * may be a password: only say where the file is. */
                memset(contents, 0, length);
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                            "%s is not valid JSON; fix or remove it", path);
                return NULL;
        }
        root = json_parser_get_root(parser);
        if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root) ||
            !json_object_has_member(json_node_get_object(root), "credentials") ||
            !JSON_NODE_HOLDS_OBJECT(
                    json_object_get_member(json_node_get_object(root), "credentials"))) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_FAILED,
                            "%s: expected an object with a \"credentials\" object", path);
                return NULL;
        }
        json_object_unref(self->table);
        self->table = json_object_ref(
                json_object_get_object_member(json_node_get_object(root), "credentials"));
        if (!itk_credentials_check_table(self->table, path, error))
                return NULL;
        if (contents != NULL)
                memset(contents, 0, length);
        itk_credentials_rebuild_secrets(self);
        return g_steal_pointer(&self);
}

static const char *
itk_credentials_field(JsonObject *entry, const char *key)
{
        JsonNode *node = json_object_get_member(entry, key);
        if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) ||
            json_node_get_value_type(node) != G_TYPE_STRING)
                return NULL;
        return json_node_get_string(node);
}

GVariant *
itk_credentials_list(ItkCredentials *self)
{
        GVariantBuilder builder;
        g_autoptr(GList) names = json_object_get_members(self->table);

        names = g_list_sort(names, (GCompareFunc)g_strcmp0);
        g_variant_builder_init(&builder, G_VARIANT_TYPE("aa{sv}"));
        for (GList *l = names; l != NULL; l = l->next) {
                JsonObject *entry = json_object_get_object_member(self->table, l->data);
                const char *username = itk_credentials_field(entry, "username");
                const char *url = itk_credentials_field(entry, "gateway_url");
                const char *description = itk_credentials_field(entry, "description");
                const char *password = itk_credentials_field(entry, "password");
                const char *token = itk_credentials_field(entry, "api_token");

                g_variant_builder_open(&builder, G_VARIANT_TYPE("a{sv}"));
                g_variant_builder_add(&builder, "{sv}", "name", g_variant_new_string(l->data));
                g_variant_builder_add(&builder, "{sv}", "username",
                                      g_variant_new_string(username ? username : ""));
                g_variant_builder_add(&builder, "{sv}", "gateway-url",
                                      g_variant_new_string(url ? url : ""));
                g_variant_builder_add(&builder, "{sv}", "description",
                                      g_variant_new_string(description ? description : ""));
                g_variant_builder_add(&builder, "{sv}", "has-password",
                                      g_variant_new_boolean(password != NULL && *password));
                g_variant_builder_add(&builder, "{sv}", "has-api-token",
                                      g_variant_new_boolean(token != NULL && *token));
                g_variant_builder_close(&builder);
        }
        return g_variant_builder_end(&builder);
}

gboolean
itk_credentials_has(ItkCredentials *self, const char *name)
{
        return name != NULL && json_object_has_member(self->table, name);
}

JsonObject *
itk_credentials_lookup(ItkCredentials *self, const char *name, GError **error)
{
        JsonObject *entry;
        JsonObject *copy;

        if (!itk_credentials_has(self, name)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_CREDENTIAL, "no credential '%s'",
                            name);
                return NULL;
        }
        entry = json_object_get_object_member(self->table, name);
        copy = json_object_new();
        for (guint i = 0; fields[i] != NULL; i++) {
                const char *value = itk_credentials_field(entry, fields[i]);
                if (value != NULL)
                        json_object_set_string_member(copy, fields[i], value);
        }
        return copy;
}

/* --- saving ------------------------------------------------------------------- */

static void itk_credentials_save(ItkCredentials *self);

static void
itk_credentials_saved_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkCredentials *self = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) done = g_steal_pointer(&self->in_flight);

        self->in_flight = g_ptr_array_new();
        self->saving = FALSE;
        g_file_replace_contents_finish(G_FILE(source), result, NULL, &error);
        for (guint i = 0; i < done->len; i++) {
                g_autoptr(GTask) task = g_ptr_array_index(done, i);
                if (error != NULL)
                        g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_FAILED,
                                                "cannot save the credential store: %s",
                                                error->message);
                else
                        g_task_return_boolean(task, TRUE);
        }
        if (self->waiting->len > 0)
                itk_credentials_save(self);
}

typedef struct {
        char *data;
        gsize length;
} Secret;

static void
itk_credentials_bytes_wipe(gpointer user_data)
{
        Secret *secret = user_data;
        memset(secret->data, 0, secret->length);
        g_free(secret->data);
        g_free(secret);
}

/* One write at a time: requests that arrive during a write are answered by
 * the next one, which holds their change, so the file never goes back in time. */
static void
itk_credentials_save(ItkCredentials *self)
{
        g_autoptr(JsonGenerator) generator = json_generator_new();
        g_autoptr(JsonNode) root = json_node_new(JSON_NODE_OBJECT);
        g_autoptr(JsonObject) object = json_object_new();
        g_autoptr(GBytes) bytes = NULL;
        Secret *secret;

        if (self->saving)
                return;
        self->saving = TRUE;
        secret = g_new0(Secret, 1);
        g_ptr_array_extend_and_steal(self->in_flight, g_steal_pointer(&self->waiting));
        self->waiting = g_ptr_array_new();

        json_object_set_int_member(object, "version", 1);
        json_object_set_object_member(object, "credentials", json_object_ref(self->table));
        json_node_set_object(root, object);
        json_generator_set_root(generator, root);
        json_generator_set_pretty(generator, TRUE);
        secret->data = json_generator_to_data(generator, &secret->length);
        bytes = g_bytes_new_with_free_func(secret->data, secret->length, itk_credentials_bytes_wipe,
                                           secret);
        /* PRIVATE: mode 0600; GIO writes a temp file, fsyncs and renames it. */
        g_file_replace_contents_bytes_async(self->file, bytes, NULL, FALSE,
                                            G_FILE_CREATE_PRIVATE |
                                                    G_FILE_CREATE_REPLACE_DESTINATION,
                                            NULL, itk_credentials_saved_cb, self);
}

static void
itk_credentials_queue_save(ItkCredentials *self, GTask *task)
{
        g_ptr_array_add(self->waiting, task);
        itk_credentials_save(self);
}

void
itk_credentials_set_async(ItkCredentials *self, const char *name, GVariant *values,
                          GAsyncReadyCallback callback, gpointer user_data)
{
        GTask *task = g_task_new(NULL, NULL, callback, user_data);
        g_autoptr(JsonObject) entry = json_object_new();
        JsonObject *old = itk_credentials_has(self, name)
                                  ? json_object_get_object_member(self->table, name)
                                  : NULL;
        GVariantIter iter;
        const char *key;
        GVariant *value;

        if (!itk_credentials_valid_name(name)) {
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                        "invalid credential name '%s': use letters, digits, "
                                        "'_', '-' and '.'",
                                        name);
                g_object_unref(task);
                return;
        }
        if (old == NULL && json_object_get_size(self->table) >= MAX_CREDENTIALS) {
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_LIMITS_EXCEEDED,
                                        "too many credentials (the limit is %d)", MAX_CREDENTIALS);
                g_object_unref(task);
                return;
        }
        for (guint i = 0; old != NULL && fields[i] != NULL; i++) {
                const char *kept = itk_credentials_field(old, fields[i]);
                if (kept != NULL)
                        json_object_set_string_member(entry, fields[i], kept);
        }
        g_variant_iter_init(&iter, values);
        while (g_variant_iter_loop(&iter, "{&sv}", &key, &value)) {
                g_autofree char *field = g_strdelimit(g_strdup(key), "-", '_');
                gboolean known = g_strv_contains(fields, field);
                const char *text;

                if (!known || !g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)) {
                        /* The message names the key, never the value: it may be a secret. */
                        g_task_return_new_error(
                                task, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                known ? "credential field '%s' must be a string"
                                      : "unknown credential field '%s' (known: username, "
                                        "password, gateway-url, api-token, description)",
                                key);
                        g_object_unref(task);
                        return;
                }
                text = g_variant_get_string(value, NULL);
                if (strlen(text) > MAX_FIELD_LENGTH) {
                        g_task_return_new_error(
                                task, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                "credential field '%s' is too long (the limit is %d bytes)", key,
                                MAX_FIELD_LENGTH);
                        g_object_unref(task);
                        return;
                }
                if (g_str_equal(field, "api_token") && *text != '\0' &&
                    (strchr(text, ':') == NULL || text[0] == ':')) {
                        g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                                "credential field 'api-token' must be NAME:KEY "
                                                "(Ignition 8.3 API token)");
                        g_object_unref(task);
                        return;
                }
                json_object_set_string_member(entry, field, text);
        }
        json_object_set_object_member(self->table, name, g_steal_pointer(&entry));
        itk_credentials_rebuild_secrets(self);
        itk_credentials_queue_save(self, task);
}

gboolean
itk_credentials_set_finish(GAsyncResult *result, GError **error)
{
        return g_task_propagate_boolean(G_TASK(result), error);
}

void
itk_credentials_delete_async(ItkCredentials *self, const char *name, GAsyncReadyCallback callback,
                             gpointer user_data)
{
        GTask *task = g_task_new(NULL, NULL, callback, user_data);

        if (!itk_credentials_has(self, name)) {
                g_task_return_new_error(task, ITK_ERROR, ITK_ERROR_NO_SUCH_CREDENTIAL,
                                        "no credential '%s'", name);
                g_object_unref(task);
                return;
        }
        json_object_remove_member(self->table, name);
        itk_credentials_rebuild_secrets(self);
        itk_credentials_queue_save(self, task);
}

gboolean
itk_credentials_delete_finish(GAsyncResult *result, GError **error)
{
        return g_task_propagate_boolean(G_TASK(result), error);
}
