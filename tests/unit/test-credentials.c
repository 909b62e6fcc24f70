/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>

#include "itk-test-util.h"
#include "itk-credentials.h"
#include "itk-error.h"

#define PASSWORD "hunter2-s3cr3t-pw"
#define TOKEN_NAME "ops-token"
#define TOKEN_KEY "k3y-p4rt-0f-th3-t0k3n"
#define TOKEN TOKEN_NAME ":" TOKEN_KEY

static ItkCredentials *
open_store(const char *path)
{
        g_autoptr(GError) error = NULL;
        ItkCredentials *store = itk_credentials_new(path, &error);

        g_assert_no_error(error);
        g_assert_nonnull(store);
        return store;
}

/* --- async helpers ------------------------------------------------------------------ */

typedef struct {
        gboolean done;
        gboolean ok;
        GError *error;
        guint order; /* position among the completions of a batch */
        guint *counter;
} Result;

static void
result_clear(Result *result)
{
        g_clear_error(&result->error);
}

static void
set_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
        Result *result = user_data;

        g_assert_null(source);
        result->ok = itk_credentials_set_finish(res, &result->error);
        result->done = TRUE;
        if (result->counter != NULL)
                result->order = ++*result->counter;
}

static void
delete_done_cb(GObject *source, GAsyncResult *res, gpointer user_data)
{
        Result *result = user_data;

        result->ok = itk_credentials_delete_finish(res, &result->error);
        result->done = TRUE;
}

static void
wait_done(Result *result)
{
        gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

        while (!result->done) {
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                g_main_context_iteration(NULL, TRUE);
        }
}

/* @fields: a{sv} text; returns TRUE or FALSE with @error set. */
static gboolean
set_fields(ItkCredentials *store, const char *name, const char *fields, GError **error)
{
        g_autoptr(GVariant) variant = g_variant_ref_sink(g_variant_new_parsed(fields));
        Result result = { 0 };
        gboolean ok;

        itk_credentials_set_async(store, name, variant, set_done_cb, &result);
        wait_done(&result);
        ok = result.ok;
        if (result.error != NULL)
                g_propagate_error(error, g_steal_pointer(&result.error));
        g_assert_true(ok == (error == NULL || *error == NULL));
        return ok;
}

static void
set_ok(ItkCredentials *store, const char *name, const char *fields)
{
        g_autoptr(GError) error = NULL;

        g_assert_true(set_fields(store, name, fields, &error));
        g_assert_no_error(error);
}

static gboolean
delete_name(ItkCredentials *store, const char *name, GError **error)
{
        Result result = { 0 };

        itk_credentials_delete_async(store, name, delete_done_cb, &result);
        wait_done(&result);
        if (result.error != NULL)
                g_propagate_error(error, g_steal_pointer(&result.error));
        return result.ok;
}

static char *
read_file(const char *path)
{
        g_autoptr(GError) error = NULL;
        char *contents = NULL;

        g_assert_true(g_file_get_contents(path, &contents, NULL, &error));
        g_assert_no_error(error);
        return contents;
}

/* The entry @name of the file, parsed as JSON; the file must be valid JSON. */
static JsonObject *
file_entry(const char *path, const char *name)
{
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(GError) error = NULL;
        JsonObject *root;
        JsonObject *credentials;

        g_assert_true(json_parser_load_from_file(parser, path, &error));
        g_assert_no_error(error);
        g_assert_true(JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)));
        root = json_node_get_object(json_parser_get_root(parser));
        g_assert_true(json_object_has_member(root, "credentials"));
        credentials = json_object_get_object_member(root, "credentials");
        g_assert_nonnull(credentials);
        if (!json_object_has_member(credentials, name))
                return NULL;
        return json_object_ref(json_object_get_object_member(credentials, name));
}

static const char *
str_member(JsonObject *object, const char *key)
{
        return json_object_get_string_member_with_default(object, key, NULL);
}

/* The a{sv} of @name in itk_credentials_list(), or NULL. */
static GVariant *
list_entry(ItkCredentials *store, const char *name)
{
        g_autoptr(GVariant) list = g_variant_ref_sink(itk_credentials_list(store));
        GVariantIter iter;
        GVariant *entry;

        g_assert_true(g_variant_is_of_type(list, G_VARIANT_TYPE("aa{sv}")));
        g_variant_iter_init(&iter, list);
        while ((entry = g_variant_iter_next_value(&iter)) != NULL) {
                const char *entry_name = NULL;
                g_assert_true(g_variant_lookup(entry, "name", "&s", &entry_name));
                if (g_str_equal(entry_name, name))
                        return entry;
                g_variant_unref(entry);
        }
        return NULL;
}

static char *
lookup_text(GVariant *dict, const char *key)
{
        const char *value = NULL;

        g_assert_true(g_variant_lookup(dict, key, "&s", &value));
        return g_strdup(value);
}

static gboolean
lookup_flag(GVariant *dict, const char *key)
{
        gboolean value = FALSE;

        g_assert_true(g_variant_lookup(dict, key, "b", &value));
        return value;
}

static const char full_fields[] = "{'username': <'admin'>, 'password': <'" PASSWORD "'>, "
                                  "'gateway-url': <'http://gw.example:8088'>, "
                                  "'api-token': <'" TOKEN "'>, "
                                  "'description': <'Production gateway'>}";

/* --- tests -------------------------------------------------------------------------- */

static void
test_credentials_empty(void)
{
        g_autoptr(ItkTestDir) td =
                itk_test_dir_new("itk-test-credentials-XXXXXX", "credentials.json");
        g_autoptr(ItkCredentials) store = open_store(td->path);
        g_autoptr(GVariant) list = g_variant_ref_sink(itk_credentials_list(store));
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) found = NULL;

        /* A missing file is an empty store, and opening it writes nothing. */
        g_assert_cmpuint(g_variant_n_children(list), ==, 0);
        g_assert_false(itk_credentials_has(store, "gw"));
        g_assert_false(g_file_test(td->path, G_FILE_TEST_EXISTS));
        found = itk_credentials_lookup(store, "gw", &error);
        g_assert_null(found);
        g_assert_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_CREDENTIAL);
        g_assert_nonnull(strstr(error->message, "gw"));
}

static void
test_credentials_set_all(void)
{
        g_autoptr(ItkTestDir) td =
                itk_test_dir_new("itk-test-credentials-XXXXXX", "credentials.json");
        g_autoptr(ItkCredentials) store = open_store(td->path);
        g_autoptr(JsonObject) found = NULL;
        g_autoptr(GVariant) entry = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *username = NULL;
        g_autofree char *url = NULL;
        g_autofree char *description = NULL;

        set_ok(store, "prod-gw", full_fields);
        g_assert_true(itk_credentials_has(store, "prod-gw"));

        /* Kebab-case keys in, every field stored under its snake_case name. */
        found = itk_credentials_lookup(store, "prod-gw", &error);
        g_assert_no_error(error);
        g_assert_cmpstr(str_member(found, "username"), ==, "admin");
        g_assert_cmpstr(str_member(found, "password"), ==, PASSWORD);
        g_assert_cmpstr(str_member(found, "gateway_url"), ==, "http://gw.example:8088");
        g_assert_cmpstr(str_member(found, "api_token"), ==, TOKEN);
        g_assert_cmpstr(str_member(found, "description"), ==, "Production gateway");
        g_assert_false(json_object_has_member(found, "gateway-url"));

        entry = list_entry(store, "prod-gw");
        g_assert_nonnull(entry);
        username = lookup_text(entry, "username");
        url = lookup_text(entry, "gateway-url");
        description = lookup_text(entry, "description");
        g_assert_cmpstr(username, ==, "admin");
        g_assert_cmpstr(url, ==, "http://gw.example:8088");
        g_assert_cmpstr(description, ==, "Production gateway");
        g_assert_true(lookup_flag(entry, "has-password"));
        g_assert_true(lookup_flag(entry, "has-api-token"));
}

static void
test_credentials_list_hides_secrets(void)
{
        g_autoptr(ItkTestDir) td =
                itk_test_dir_new("itk-test-credentials-XXXXXX", "credentials.json");
        g_autoptr(ItkCredentials) store = open_store(td->path);
        g_autoptr(GVariant) list = NULL;
        g_autoptr(GVariant) entry = NULL;
        g_autoptr(GVariant) bare = NULL;
        g_autofree char *text = NULL;
        GVariantIter iter;
        const char *key;
        GVariant *value;
        guint keys = 0;

        set_ok(store, "prod-gw", full_fields);
        set_ok(store, "bare", "{'username': <'viewer'>}");
        list = g_variant_ref_sink(itk_credentials_list(store));
        g_assert_cmpuint(g_variant_n_children(list), ==, 2);

        /* Neither the password, nor the token, nor the token's key part. */
        text = g_variant_print(list, TRUE);
        g_assert_null(strstr(text, PASSWORD));
        g_assert_null(strstr(text, TOKEN_KEY));
        g_assert_null(strstr(text, "hunter2"));

        /* Exactly the documented keys, all of the documented types. */
        entry = list_entry(store, "prod-gw");
        g_variant_iter_init(&iter, entry);
        while (g_variant_iter_loop(&iter, "{&sv}", &key, &value)) {
                const char *const strings[] = { "name", "username", "gateway-url", "description",
                                                NULL };
                const char *const flags[] = { "has-password", "has-api-token", NULL };
                if (g_strv_contains(strings, key))
                        g_assert_true(g_variant_is_of_type(value, G_VARIANT_TYPE_STRING));
                else if (g_strv_contains(flags, key))
                        g_assert_true(g_variant_is_of_type(value, G_VARIANT_TYPE_BOOLEAN));
                else
                        g_error("unexpected key '%s' in ListCredentials", key);
                keys++;
        }
        g_assert_cmpuint(keys, ==, 6);

        /* Without secrets the flags say so. */
        bare = list_entry(store, "bare");
        g_assert_nonnull(bare);
        g_assert_false(lookup_flag(bare, "has-password"));
        g_assert_false(lookup_flag(bare, "has-api-token"));
}

static void
test_credentials_partial_update(void)
{
        g_autoptr(ItkTestDir) td =
                itk_test_dir_new("itk-test-credentials-XXXXXX", "credentials.json");
        g_autoptr(ItkCredentials) store = open_store(td->path);
        g_autoptr(JsonObject) after_password = NULL;
        g_autoptr(JsonObject) after_description = NULL;
        g_autoptr(JsonObject) on_disk = NULL;

        set_ok(store, "gw", full_fields);
        set_ok(store, "gw", "{'password': <'new-password'>}");
        after_password = itk_credentials_lookup(store, "gw", NULL);
        g_assert_nonnull(after_password);
        g_assert_cmpstr(str_member(after_password, "password"), ==, "new-password");
        g_assert_cmpstr(str_member(after_password, "username"), ==, "admin");
        g_assert_cmpstr(str_member(after_password, "gateway_url"), ==, "http://gw.example:8088");
        g_assert_cmpstr(str_member(after_password, "api_token"), ==, TOKEN);
        g_assert_cmpstr(str_member(after_password, "description"), ==, "Production gateway");

        /* An empty a{sv} changes nothing; a description change keeps the password. */
        set_ok(store, "gw", "@a{sv} {}");
        set_ok(store, "gw", "{'description': <'Staging'>}");
        after_description = itk_credentials_lookup(store, "gw", NULL);
        g_assert_cmpstr(str_member(after_description, "password"), ==, "new-password");
        g_assert_cmpstr(str_member(after_description, "description"), ==, "Staging");
        g_assert_cmpstr(str_member(after_description, "username"), ==, "admin");

        /* And the file says the same. */
        on_disk = file_entry(td->path, "gw");
        g_assert_nonnull(on_disk);
        g_assert_cmpstr(str_member(on_disk, "password"), ==, "new-password");
        g_assert_cmpstr(str_member(on_disk, "description"), ==, "Staging");
        g_assert_cmpstr(str_member(on_disk, "api_token"), ==, TOKEN);
}

static void
secrets_changed_cb(gpointer store, gpointer user_data)
{
        (*(guint *)user_data)++;
}

/* The set every run masks: each password, token and token key of 4 bytes or
 * more, updated (and announced) at once on each change, loaded at start. */
static void
test_credentials_secret_set(void)
{
        g_autoptr(ItkTestDir) td =
                itk_test_dir_new("itk-test-credentials-XXXXXX", "credentials.json");
        g_autoptr(ItkCredentials) store = open_store(td->path);
        g_autoptr(ItkCredentials) reloaded = NULL;
        guint changes = 0;
        ItkSecretSet *set;

        g_assert_true(itk_secret_set_is_empty(itk_credentials_get_secret_set(store)));
        itk_credentials_set_changed_func(store, secrets_changed_cb, &changes);
        set_ok(store, "a", "{'password': <'long-password'>, 'api-token': <'tok:key-part-1'>}");
        set_ok(store, "short", "{'password': <'abc'>, 'username': <'long-user-name'>}");
        g_assert_cmpuint(changes, ==, 2);
        set = itk_credentials_get_secret_set(store);
        g_assert_true(itk_secret_set_contains(set, "long-password"));
        g_assert_true(itk_secret_set_contains(set, "tok:key-part-1"));
        g_assert_true(itk_secret_set_contains(set, "key-part-1"));
        /* The short-secret rule: masked only where referenced. */
        g_assert_false(itk_secret_set_contains(set, "abc"));
        /* Usernames are not secrets. */
        g_assert_false(itk_secret_set_contains(set, "long-user-name"));

        reloaded = open_store(td->path);
        g_assert_true(
                itk_secret_set_contains(itk_credentials_get_secret_set(reloaded), "long-password"));

        g_assert_true(delete_name(store, "a", NULL));
        g_assert_cmpuint(changes, ==, 3);
        g_assert_false(
                itk_secret_set_contains(itk_credentials_get_secret_set(store), "long-password"));
}

static void
test_credentials_delete(void)
{
        g_autoptr(ItkTestDir) td =
                itk_test_dir_new("itk-test-credentials-XXXXXX", "credentials.json");
        g_autoptr(ItkCredentials) store = open_store(td->path);
        g_autoptr(ItkCredentials) reloaded = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GError) again = NULL;
        g_autoptr(JsonObject) kept = NULL;
        g_autoptr(JsonObject) gone = NULL;
        g_autofree char *contents = NULL;

        set_ok(store, "a", full_fields);
        set_ok(store, "b", "{'username': <'bee'>}");
        g_assert_true(delete_name(store, "a", &error));
        g_assert_no_error(error);
        g_assert_false(itk_credentials_has(store, "a"));
        g_assert_true(itk_credentials_has(store, "b"));
        gone = itk_credentials_lookup(store, "a", &again);
        g_assert_null(gone);
        g_assert_error(again, ITK_ERROR, ITK_ERROR_NO_SUCH_CREDENTIAL);
        g_clear_error(&again);

        /* Gone from the file, secrets included; the other entry is intact. */
        contents = read_file(td->path);
        g_assert_null(strstr(contents, PASSWORD));
        g_assert_null(strstr(contents, TOKEN_KEY));
        kept = file_entry(td->path, "b");
        g_assert_nonnull(kept);
        g_assert_cmpstr(str_member(kept, "username"), ==, "bee");
        reloaded = open_store(td->path);
        g_assert_false(itk_credentials_has(reloaded, "a"));
        g_assert_true(itk_credentials_has(reloaded, "b"));

        /* Deleting what is not there is NoSuchCredential, naming it. */
        g_assert_false(delete_name(store, "a", &again));
        g_assert_error(again, ITK_ERROR, ITK_ERROR_NO_SUCH_CREDENTIAL);
        g_assert_nonnull(strstr(again->message, "'a'"));
}

static void
test_credentials_invalid_name(void)
{
        g_autoptr(ItkTestDir) td =
                itk_test_dir_new("itk-test-credentials-XXXXXX", "credentials.json");
        g_autoptr(ItkCredentials) store = open_store(td->path);
        g_autofree char *too_long = g_strnfill(129, 'x');
        g_autofree char *longest = g_strnfill(128, 'y');
        const char *const bad[] = { "",     "a b", "a/b",    "../etc", "name\n",
                                    "gw:1", "ü",   too_long, NULL };

        for (guint i = 0; bad[i] != NULL; i++) {
                g_autoptr(GError) error = NULL;
                g_test_message("name '%s'", bad[i]);
                g_assert_false(set_fields(store, bad[i], "{'password': <'" PASSWORD "'>}", &error));
                g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
                g_assert_null(strstr(error->message, PASSWORD));
                g_assert_false(itk_credentials_has(store, bad[i]));
        }
        /* Nothing was stored, so nothing was written. */
        g_assert_false(g_file_test(td->path, G_FILE_TEST_EXISTS));

        /* The allowed alphabet, up to 128 characters. */
        set_ok(store, "Prod_gw-2.eu", "{'username': <'u'>}");
        set_ok(store, longest, "{'username': <'u'>}");
        g_assert_true(itk_credentials_has(store, "Prod_gw-2.eu"));
        g_assert_true(itk_credentials_has(store, longest));
}

static void
test_credentials_unknown_field(void)
{
        g_autoptr(ItkTestDir) td =
                itk_test_dir_new("itk-test-credentials-XXXXXX", "credentials.json");
        g_autoptr(ItkCredentials) store = open_store(td->path);
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonObject) found = NULL;

        set_ok(store, "gw", "{'username': <'admin'>}");
        /* A typo of "password": refused by its key, its value never echoed, and
         * nothing of the call applied (the valid username change included). */
        g_assert_false(set_fields(
                store, "gw", "{'username': <'changed'>, 'pasword': <'" PASSWORD "'>}", &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
        g_assert_nonnull(strstr(error->message, "pasword"));
        g_assert_null(strstr(error->message, PASSWORD));
        found = itk_credentials_lookup(store, "gw", NULL);
        g_assert_cmpstr(str_member(found, "username"), ==, "admin");
        g_assert_false(json_object_has_member(found, "pasword"));
        g_assert_false(json_object_has_member(found, "password"));
        /* Not even created by a refused call. */
        g_clear_error(&error);
        g_assert_false(set_fields(store, "other", "{'name': <'x'>}", &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
        g_assert_false(itk_credentials_has(store, "other"));
}

static void
test_credentials_non_string(void)
{
        g_autoptr(ItkTestDir) td =
                itk_test_dir_new("itk-test-credentials-XXXXXX", "credentials.json");
        g_autoptr(ItkCredentials) store = open_store(td->path);
        const char *const bad[] = {
                "{'password': <int32 1234>}",
                "{'username': <true>}",
                "{'gateway-url': <['http://a']>}",
                "{'api-token': <<'" TOKEN "'>>}",
                NULL,
        };

        for (guint i = 0; bad[i] != NULL; i++) {
                g_autoptr(GError) error = NULL;
                g_test_message("fields %s", bad[i]);
                g_assert_false(set_fields(store, "gw", bad[i], &error));
                g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
                g_assert_nonnull(strstr(error->message, "string"));
                g_assert_null(strstr(error->message, TOKEN_KEY));
                g_assert_false(itk_credentials_has(store, "gw"));
        }
}

static void
test_credentials_api_token_format(void)
{
        g_autoptr(ItkTestDir) td =
                itk_test_dir_new("itk-test-credentials-XXXXXX", "credentials.json");
        g_autoptr(ItkCredentials) store = open_store(td->path);
        g_autoptr(JsonObject) found = NULL;
        g_autoptr(GVariant) entry = NULL;
        const char *const bad[] = { "{'api-token': <'" TOKEN_KEY "'>}",
                                    "{'api-token': <':" TOKEN_KEY "'>}", NULL };

        for (guint i = 0; bad[i] != NULL; i++) {
                g_autoptr(GError) error = NULL;
                g_assert_false(set_fields(store, "gw", bad[i], &error));
                g_assert_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
                g_assert_nonnull(strstr(error->message, "NAME:KEY"));
                g_assert_null(strstr(error->message, TOKEN_KEY));
                g_assert_false(itk_credentials_has(store, "gw"));
        }

        /* NAME:KEY is fine, under either spelling of the key; "" clears it. */
        set_ok(store, "gw", "{'api_token': <'" TOKEN "'>}");
        found = itk_credentials_lookup(store, "gw", NULL);
        g_assert_cmpstr(str_member(found, "api_token"), ==, TOKEN);
        set_ok(store, "gw", "{'api-token': <''>}");
        entry = list_entry(store, "gw");
        g_assert_false(lookup_flag(entry, "has-api-token"));
}

static void
test_credentials_too_long(void)
{
        g_autoptr(ItkTestDir) td =
                itk_test_dir_new("itk-test-credentials-XXXXXX", "credentials.json");
        g_autoptr(ItkCredentials) store = open_store(td->path);
        g_autoptr(GError) error = NULL;
        g_autofree char *huge = g_strnfill(8193, 'p');
        g_autofree char *fits = g_strnfill(8192, 'p');
        g_autoptr(GVariant) too_long =
                g_variant_ref_sink(g_variant_new_parsed("{'password': <%s>}", huge));
        g_autoptr(GVariant) ok =
                g_variant_ref_sink(g_variant_new_parsed("{'password': <%s>}", fits));
        Result refused = { 0 };
        Result accepted = { 0 };

        itk_credentials_set_async(store, "gw", too_long, set_done_cb, &refused);
        wait_done(&refused);
        g_assert_false(refused.ok);
        g_assert_error(refused.error, ITK_ERROR, ITK_ERROR_INVALID_ARGS);
        g_assert_nonnull(strstr(refused.error->message, "too long"));
        g_assert_false(itk_credentials_has(store, "gw"));
        result_clear(&refused);

        itk_credentials_set_async(store, "gw", ok, set_done_cb, &accepted);
        wait_done(&accepted);
        g_assert_true(accepted.ok);
        g_assert_true(itk_credentials_has(store, "gw"));
        result_clear(&accepted);
}

static void
test_credentials_file(void)
{
        g_autoptr(ItkTestDir) td =
                itk_test_dir_new("itk-test-credentials-XXXXXX", "credentials.json");
        g_autoptr(ItkCredentials) store = open_store(td->path);
        g_autoptr(JsonObject) entry = NULL;
        g_autoptr(GDir) dir = NULL;
        struct stat st;
        const char *name;

        set_ok(store, "prod-gw", full_fields);

        /* Only its owner may read it. */
        g_assert_cmpint(g_stat(td->path, &st), ==, 0);
        g_assert_true(S_ISREG(st.st_mode));
        g_assert_cmpint(st.st_mode & 07777, ==, 0600);

        /* Valid JSON holding what was set. */
        entry = file_entry(td->path, "prod-gw");
        g_assert_nonnull(entry);
        g_assert_cmpstr(str_member(entry, "username"), ==, "admin");
        g_assert_cmpstr(str_member(entry, "password"), ==, PASSWORD);
        g_assert_cmpstr(str_member(entry, "gateway_url"), ==, "http://gw.example:8088");
        g_assert_cmpstr(str_member(entry, "api_token"), ==, TOKEN);

        /* Replaced atomically: no temporary file is left beside it. */
        dir = g_dir_open(td->dir, 0, NULL);
        g_assert_nonnull(dir);
        while ((name = g_dir_read_name(dir)) != NULL)
                g_assert_cmpstr(name, ==, "credentials.json");

        /* Still 0600 after a rewrite, even over a file that was readable. */
        g_assert_cmpint(g_chmod(td->path, 0644), ==, 0);
        set_ok(store, "prod-gw", "{'password': <'again'>}");
        g_assert_cmpint(g_stat(td->path, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 07777, ==, 0600);
}

static void
test_credentials_reload(void)
{
        g_autoptr(ItkTestDir) td =
                itk_test_dir_new("itk-test-credentials-XXXXXX", "credentials.json");
        g_autoptr(ItkCredentials) store = open_store(td->path);
        g_autoptr(ItkCredentials) reloaded = NULL;
        g_autoptr(JsonObject) found = NULL;
        g_autoptr(GVariant) before = NULL;
        g_autoptr(GVariant) after = NULL;

        set_ok(store, "prod-gw", full_fields);
        set_ok(store, "lab", "{'username': <'tech'>, 'gateway-url': <'http://lab:8088'>}");
        before = g_variant_ref_sink(itk_credentials_list(store));

        reloaded = open_store(td->path);
        after = g_variant_ref_sink(itk_credentials_list(reloaded));
        g_assert_cmpvariant(before, after);
        found = itk_credentials_lookup(reloaded, "prod-gw", NULL);
        g_assert_nonnull(found);
        g_assert_cmpstr(str_member(found, "password"), ==, PASSWORD);
        g_assert_cmpstr(str_member(found, "api_token"), ==, TOKEN);
        g_assert_cmpstr(str_member(found, "description"), ==, "Production gateway");
}

static void
test_credentials_concurrent(void)
{
        g_autoptr(ItkTestDir) td =
                itk_test_dir_new("itk-test-credentials-XXXXXX", "credentials.json");
        g_autoptr(ItkCredentials) store = open_store(td->path);
        g_autoptr(ItkCredentials) reloaded = NULL;
        g_autoptr(JsonObject) on_disk = NULL;
        g_autoptr(JsonObject) found = NULL;
        Result results[3] = { 0 };
        guint counter = 0;

        /* Three calls without waiting: the second and third arrive while the
         * first write is in flight. Each completes, in call order, and the
         * file ends up with the last values, never an older one. */
        for (guint i = 0; i < G_N_ELEMENTS(results); i++) {
                g_autofree char *text = g_strdup_printf(
                        "{'password': <'pw-%u'>, 'description': <'round %u'>}", i + 1, i + 1);
                g_autoptr(GVariant) fields = g_variant_ref_sink(g_variant_new_parsed(text));
                results[i].counter = &counter;
                itk_credentials_set_async(store, "gw", fields, set_done_cb, &results[i]);
        }
        for (guint i = 0; i < G_N_ELEMENTS(results); i++)
                wait_done(&results[i]);
        for (guint i = 0; i < G_N_ELEMENTS(results); i++) {
                g_assert_no_error(results[i].error);
                g_assert_true(results[i].ok);
                g_assert_cmpuint(results[i].order, ==, i + 1);
        }

        on_disk = file_entry(td->path, "gw");
        g_assert_nonnull(on_disk);
        g_assert_cmpstr(str_member(on_disk, "password"), ==, "pw-3");
        g_assert_cmpstr(str_member(on_disk, "description"), ==, "round 3");
        reloaded = open_store(td->path);
        found = itk_credentials_lookup(reloaded, "gw", NULL);
        g_assert_cmpstr(str_member(found, "password"), ==, "pw-3");

        /* A set and a delete in flight together: the delete wins, on disk too. */
        {
                g_autoptr(GVariant) fields =
                        g_variant_ref_sink(g_variant_new_parsed("{'username': <'late'>}"));
                g_autoptr(ItkCredentials) third = NULL;
                Result set = { 0 };
                Result del = { 0 };

                itk_credentials_set_async(store, "gw", fields, set_done_cb, &set);
                itk_credentials_delete_async(store, "gw", delete_done_cb, &del);
                wait_done(&set);
                wait_done(&del);
                g_assert_true(set.ok);
                g_assert_true(del.ok);
                third = open_store(td->path);
                g_assert_false(itk_credentials_has(third, "gw"));
        }
}

static const char *test_program;

/* Under UBSan the reports go to stderr without failing the test: run the
 * concurrent case again in a child and read them. */
static void
test_credentials_concurrent_sanitizer(void)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *out = NULL;
        g_autofree char *err = NULL;
        const char *argv[] = { test_program, "-p", "/credentials/concurrent", NULL };
        int status = -1;

        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                                   &err, &status, &error));
        g_assert_no_error(error);
        g_assert_true(g_spawn_check_wait_status(status, NULL));
        g_assert_nonnull(strstr(out, "ok 1 /credentials/concurrent"));
        g_assert_null(strstr(err, "AddressSanitizer"));
        /* A save requested while one is in flight must not touch unset memory. */
        g_assert_null(strstr(err, "runtime error:"));
}

static void
test_credentials_limit(void)
{
        g_autoptr(ItkTestDir) td =
                itk_test_dir_new("itk-test-credentials-XXXXXX", "credentials.json");
        g_autoptr(ItkCredentials) store = open_store(td->path);
        g_autoptr(GVariant) fields =
                g_variant_ref_sink(g_variant_new_parsed("{'username': <'u'>}"));
        g_autofree Result *results = g_new0(Result, 1000);
        g_autoptr(GError) error = NULL;

        for (guint i = 0; i < 1000; i++) {
                g_autofree char *name = g_strdup_printf("gw%u", i);
                itk_credentials_set_async(store, name, fields, set_done_cb, &results[i]);
        }
        for (guint i = 0; i < 1000; i++) {
                wait_done(&results[i]);
                g_assert_no_error(results[i].error);
        }
        /* One more name is refused; updating an existing one is not. */
        g_assert_false(set_fields(store, "one-too-many", "{'username': <'u'>}", &error));
        g_assert_error(error, ITK_ERROR, ITK_ERROR_LIMITS_EXCEEDED);
        set_ok(store, "gw999", "{'username': <'v'>}");
}

/* Loads @contents; asserts the load fails with an error naming the file;
 * returns the message. */
static char *
expect_load_error(const char *contents, const char *what)
{
        g_autoptr(ItkTestDir) td =
                itk_test_dir_new("itk-test-credentials-XXXXXX", "credentials.json");
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkCredentials) store = NULL;

        g_test_message("file: %s", what);
        g_assert_true(g_file_set_contents(td->path, contents, -1, NULL));
        store = itk_credentials_new(td->path, &error);
        g_assert_null(store);
        g_assert_nonnull(error);
        /* The message must say which file to fix. */
        g_assert_nonnull(strstr(error->message, td->path));
        return g_strdup(error->message);
}

static const char *const corrupt_files[] = {
        "{\"credentials\": {\"gw\": {\"password\": \"" PASSWORD "\"",
        "{\"credentials\": {\"gw\": {\"password\": \"" PASSWORD "\" \"x\"}}}",
        "not json at all",
        "",
        "[1, 2]",
        "{\"version\": 1}",
        "{\"credentials\": [\"" PASSWORD "\"]}",
        NULL,
};

static void
test_credentials_corrupt(void)
{
        for (guint i = 0; corrupt_files[i] != NULL; i++) {
                g_autofree char *message = expect_load_error(corrupt_files[i], corrupt_files[i]);
                g_assert_cmpstr(message, !=, "");
        }
}

/* The daemon logs this message at start-up: it must not quote the file,
 * which holds passwords. */
static void
test_credentials_corrupt_no_secret(void)
{
        for (guint i = 0; corrupt_files[i] != NULL; i++) {
                g_autofree char *message = expect_load_error(corrupt_files[i], corrupt_files[i]);
                /* json-glib's parse errors quote the text at fault: never shown. */
                g_assert_null(strstr(message, PASSWORD));
        }
}

static void
test_credentials_unreadable(void)
{
        g_autoptr(ItkTestDir) td =
                itk_test_dir_new("itk-test-credentials-XXXXXX", "credentials.json");
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkCredentials) store = NULL;

        /* A directory where the file should be: not "empty", an error naming it. */
        g_assert_cmpint(g_mkdir(td->path, 0700), ==, 0);
        store = itk_credentials_new(td->path, &error);
        g_assert_null(store);
        g_assert_nonnull(error);
        g_assert_nonnull(strstr(error->message, td->path));
}

/* Entries of the wrong shape in an otherwise valid file must neither crash
 * nor emit criticals: either the load fails naming the file, or the bad entry
 * is harmless. Run in a subprocess: a critical is fatal there. */
static void
test_credentials_bad_entry_child(void)
{
        const char *file = g_getenv("ITK_TEST_CREDENTIALS_FILE");
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkCredentials) store = NULL;
        g_autoptr(GVariant) list = NULL;
        g_autoptr(JsonObject) found = NULL;

        if (!g_test_subprocess()) {
                g_test_skip("run by /credentials/bad-entry");
                return;
        }
        g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
        store = itk_credentials_new(file, &error);
        if (store == NULL) {
                g_assert_nonnull(strstr(error->message, file));
                return;
        }
        list = g_variant_ref_sink(itk_credentials_list(store));
        found = itk_credentials_lookup(store, "bad", NULL);
        (void)found;
}

/* Runs the child test on a file holding @contents; TRUE if it passed. */
static gboolean
bad_entry_passes(const char *contents)
{
        g_autoptr(ItkTestDir) td =
                itk_test_dir_new("itk-test-credentials-XXXXXX", "credentials.json");

        g_test_message("file: %s", contents);
        g_assert_true(g_file_set_contents(td->path, contents, -1, NULL));
        g_setenv("ITK_TEST_CREDENTIALS_FILE", td->path, TRUE);
        g_test_trap_subprocess("/credentials/bad-entry/subprocess", 0, G_TEST_SUBPROCESS_DEFAULT);
        /* Whatever happened, no secret of the file reaches the log. */
        g_test_trap_assert_stderr_unmatched("*" PASSWORD "*");
        return g_test_trap_has_passed();
}

static void
test_credentials_bad_field_types(void)
{
        /* Fields of the wrong type inside an entry read as absent. */
        g_assert_true(bad_entry_passes(
                "{\"credentials\": {\"bad\": {\"password\": 5, \"username\": [1]}}}"));
}

static void
test_credentials_bad_entry(void)
{
        const char *const files[] = {
                "{\"credentials\": {\"bad\": 5}}",
                "{\"credentials\": {\"bad\": \"" PASSWORD "\"}}",
                "{\"credentials\": {\"bad\": null}}",
                NULL,
        };
        gboolean all = TRUE;

        for (guint i = 0; files[i] != NULL; i++)
                all = bad_entry_passes(files[i]) && all;
        /* Entries that are not objects of strings are refused at load. */
        g_assert_true(all);
}

int
main(int argc, char **argv)
{
        test_program = argv[0];
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/credentials/empty", test_credentials_empty);
        g_test_add_func("/credentials/secret-set", test_credentials_secret_set);
        g_test_add_func("/credentials/set-all", test_credentials_set_all);
        g_test_add_func("/credentials/list-hides-secrets", test_credentials_list_hides_secrets);
        g_test_add_func("/credentials/partial-update", test_credentials_partial_update);
        g_test_add_func("/credentials/delete", test_credentials_delete);
        g_test_add_func("/credentials/invalid-name", test_credentials_invalid_name);
        g_test_add_func("/credentials/unknown-field", test_credentials_unknown_field);
        g_test_add_func("/credentials/non-string", test_credentials_non_string);
        g_test_add_func("/credentials/api-token-format", test_credentials_api_token_format);
        g_test_add_func("/credentials/too-long", test_credentials_too_long);
        g_test_add_func("/credentials/file", test_credentials_file);
        g_test_add_func("/credentials/reload", test_credentials_reload);
        g_test_add_func("/credentials/concurrent", test_credentials_concurrent);
        g_test_add_func("/credentials/concurrent-sanitizer", test_credentials_concurrent_sanitizer);
        g_test_add_func("/credentials/limit", test_credentials_limit);
        g_test_add_func("/credentials/corrupt", test_credentials_corrupt);
        g_test_add_func("/credentials/corrupt-no-secret", test_credentials_corrupt_no_secret);
        g_test_add_func("/credentials/unreadable", test_credentials_unreadable);
        g_test_add_func("/credentials/bad-field-types", test_credentials_bad_field_types);
        g_test_add_func("/credentials/bad-entry", test_credentials_bad_entry);
        g_test_add_func("/credentials/bad-entry/subprocess", test_credentials_bad_entry_child);
        return g_test_run();
}
