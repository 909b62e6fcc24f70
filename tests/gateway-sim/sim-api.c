/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "sim-server-private.h"

#include <string.h>

/* The 8.3 REST API under /data/api/v1 (GATEWAY-API.md, "Endpoints"). */

#define ITK_SIM_TOKEN_HEADER "X-Ignition-API-Token"
#define ITK_SIM_DEFAULT_LIMIT 25

typedef enum {
        ITK_SIM_ROUTE_AUTH = 1 << 0,  /* needs a token */
        ITK_SIM_ROUTE_WRITE = 1 << 1, /* a read-only token gets 403 */
        ITK_SIM_ROUTE_JSON = 1 << 2,  /* answers JSON: Accept must allow it */
} ItkSimRouteFlags;

typedef void (*ItkSimApiFunc)(ItkSimServer *self, SoupServerMessage *msg, const char *arg,
                              GHashTable *query);

typedef struct {
        const char *method;
        const char *pattern; /* a "{name}" segment matches one path segment, passed as arg */
        ItkSimRouteFlags flags;
        ItkSimApiFunc func;
} ItkSimApiRoute;

/* ---- helpers ---- */

static JsonNode *
itk_sim_api_object(JsonObject *o)
{
        JsonNode *node = json_node_new(JSON_NODE_OBJECT);
        json_node_take_object(node, o);
        return node;
}

/* A write refused inside HTTP 200, as several gateway endpoints do. */
static void itk_sim_api_refuse(SoupServerMessage *msg, gboolean problem_as_object,
                               const char *format, ...) G_GNUC_PRINTF(3, 4);

static void
itk_sim_api_refuse(SoupServerMessage *msg, gboolean problem_as_object, const char *format, ...)
{
        g_autofree char *message = NULL;
        JsonObject *o = json_object_new();
        va_list args;

        va_start(args, format);
        message = g_strdup_vprintf(format, args);
        va_end(args);
        json_object_set_boolean_member(o, "success", FALSE);
        if (problem_as_object) {
                JsonObject *problem = json_object_new();
                json_object_set_string_member(problem, "message", message);
                json_object_set_object_member(o, "problem", problem);
        } else {
                json_object_set_string_member(o, "problem", message);
        }
        itk_sim_reply_json(msg, SOUP_STATUS_OK, itk_sim_api_object(o));
}

static void
itk_sim_api_success(SoupServerMessage *msg)
{
        JsonObject *o = json_object_new();

        json_object_set_boolean_member(o, "success", TRUE);
        itk_sim_reply_json(msg, SOUP_STATUS_OK, itk_sim_api_object(o));
}

static void
itk_sim_set_string_or_null(JsonObject *o, const char *member, const char *value)
{
        if (value != NULL)
                json_object_set_string_member(o, member, value);
        else
                json_object_set_null_member(o, member);
}

static char *
itk_sim_sha256_hex(GBytes *bytes)
{
        return g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, bytes);
}

/* "name" -> something safe as a file name in the state directory. */
static char *
itk_sim_safe_file_name(const char *name, const char *fallback)
{
        g_autofree char *base = name != NULL ? g_path_get_basename(name) : NULL;

        if (base == NULL || g_strcmp0(base, ".") == 0 || g_strcmp0(base, "..") == 0 ||
            g_strcmp0(base, "/") == 0)
                return g_strdup(fallback);
        for (char *p = base; *p != '\0'; p++) {
                if (!g_ascii_isalnum(*p) && *p != '.' && *p != '-' && *p != '_')
                        *p = '_';
        }
        return g_steal_pointer(&base);
}

static gboolean
itk_sim_parse_int(const char *text, gint64 min, gint64 *out)
{
        gint64 v;

        if (text == NULL)
                return TRUE;
        if (!g_ascii_string_to_signed(text, 10, min, G_MAXINT32, &v, NULL))
                return FALSE;
        *out = v;
        return TRUE;
}

typedef struct {
        const char *field;
        gboolean descending;
} ItkSimSort;

static gint
itk_sim_sort_cmp(gconstpointer a, gconstpointer b, gpointer user_data)
{
        const ItkSimSort *sort = user_data;
        JsonObject *oa = json_node_get_object(*(JsonNode *const *)a);
        JsonObject *ob = json_node_get_object(*(JsonNode *const *)b);
        JsonNode *na = json_object_get_member(oa, sort->field);
        JsonNode *nb = json_object_get_member(ob, sort->field);
        gint r = 0;

        if (na == NULL || nb == NULL || !JSON_NODE_HOLDS_VALUE(na) || !JSON_NODE_HOLDS_VALUE(nb))
                r = (na != NULL) - (nb != NULL);
        else if (json_node_get_value_type(na) == G_TYPE_STRING)
                r = g_utf8_collate(json_node_get_string(na), json_node_get_string(nb) ?: "");
        else if (json_node_get_value_type(na) == G_TYPE_BOOLEAN)
                r = json_node_get_boolean(na) - json_node_get_boolean(nb);
        else
                r = (json_node_get_int(na) > json_node_get_int(nb)) -
                    (json_node_get_int(na) < json_node_get_int(nb));
        return sort->descending ? -r : r;
}

static gboolean
itk_sim_matches_search(JsonNode *item, const char *const *fields, const char *needle)
{
        JsonObject *o = json_node_get_object(item);

        for (guint i = 0; fields[i] != NULL; i++) {
                const char *v = json_object_get_string_member_with_default(o, fields[i], NULL);
                g_autofree char *hay = v != NULL ? g_utf8_casefold(v, -1) : NULL;

                if (hay != NULL && strstr(hay, needle) != NULL)
                        return TRUE;
        }
        return FALSE;
}

/* The gateway's list shape: query limit (-1 = all), offset, sortBy=asc(f)|desc(f),
 * search (substring of the @fields), filter (accepted, unconfirmed upstream: ignored). */
static void
itk_sim_api_reply_list(SoupServerMessage *msg, GHashTable *query, GPtrArray *items,
                       const char *const *fields)
{
        const char *search = itk_sim_query(query, "search");
        const char *sort_by = itk_sim_query(query, "sortBy");
        g_autoptr(GPtrArray) matching = g_ptr_array_new();
        gint64 limit = ITK_SIM_DEFAULT_LIMIT, offset = 0;
        JsonObject *o, *meta;
        JsonArray *array;

        if (!itk_sim_parse_int(itk_sim_query(query, "limit"), -1, &limit) ||
            !itk_sim_parse_int(itk_sim_query(query, "offset"), 0, &offset)) {
                itk_sim_reply_message(msg, SOUP_STATUS_BAD_REQUEST,
                                      "limit must be -1 or more, offset 0 or more");
                return;
        }
        if (search != NULL && *search != '\0') {
                g_autofree char *needle = g_utf8_casefold(search, -1);
                for (guint i = 0; i < items->len; i++) {
                        if (itk_sim_matches_search(g_ptr_array_index(items, i), fields, needle))
                                g_ptr_array_add(matching, g_ptr_array_index(items, i));
                }
        } else {
                for (guint i = 0; i < items->len; i++)
                        g_ptr_array_add(matching, g_ptr_array_index(items, i));
        }
        if (sort_by != NULL && *sort_by != '\0') {
                gboolean desc = g_str_has_prefix(sort_by, "desc(");
                g_autofree char *field = NULL;
                ItkSimSort sort;

                if ((!desc && !g_str_has_prefix(sort_by, "asc(")) ||
                    !g_str_has_suffix(sort_by, ")") || strlen(sort_by) < (desc ? 7 : 6)) {
                        itk_sim_reply_message(msg, SOUP_STATUS_BAD_REQUEST,
                                              "sortBy must be asc(field) or desc(field)");
                        return;
                }
                field = g_strndup(sort_by + (desc ? 5 : 4), strlen(sort_by) - (desc ? 6 : 5));
                sort.field = field;
                sort.descending = desc;
                g_ptr_array_sort_with_data(matching, itk_sim_sort_cmp, &sort);
        }

        o = json_object_new();
        array = json_array_new();
        for (gint64 i = offset; i < (gint64)matching->len && (limit < 0 || i < offset + limit); i++)
                json_array_add_element(array, json_node_copy(g_ptr_array_index(matching, i)));
        json_object_set_array_member(o, "items", array);
        meta = json_object_new();
        json_object_set_int_member(meta, "total", items->len);
        json_object_set_int_member(meta, "matching", matching->len);
        json_object_set_int_member(meta, "limit", limit);
        json_object_set_int_member(meta, "offset", offset);
        json_object_set_object_member(o, "metadata", meta);
        itk_sim_reply_json(msg, SOUP_STATUS_OK, itk_sim_api_object(o));
}

/* ---- gateway ---- */

static void
itk_sim_api_gateway_info(ItkSimServer *self, SoupServerMessage *msg, const char *arg,
                         GHashTable *query)
{
        ItkSimState *st = self->state;
        g_autoptr(GTimeZone) tz = g_time_zone_new_local();
        g_autofree char *full = itk_sim_state_dup_full_version(st);
        g_autofree char *port = g_strdup_printf("%u", st->port);
        JsonObject *o = json_object_new();
        JsonObject *license = json_object_new();
        gboolean expired = itk_sim_state_get_trial_seconds_left(st) == 0;

        json_object_set_string_member(o, "name", st->gateway_name);
        json_object_set_string_member(o, "redundancyRole", "Independent");
        json_object_set_string_member(o, "edition", "standard");
        json_object_set_string_member(o, "hostname", "localhost");
        json_object_set_string_member(o, "port", port);
        json_object_set_string_member(o, "ignitionVersion", full);
        json_object_set_string_member(o, "deploymentMode", "dev");
        json_object_set_string_member(o, "timeZone", g_time_zone_get_identifier(tz));
        json_object_set_string_member(o, "timeZoneId", g_time_zone_get_identifier(tz));
        json_object_set_string_member(o, "jvmVersion", "17.0.13+11");
        json_object_set_boolean_member(o, "allowUnsignedModules", FALSE);
        json_object_set_string_member(license, "mode", expired ? "expired-trial" : "trial");
        json_object_set_string_member(license, "validForVersion", "8.3");
        json_object_set_null_member(license, "expirationDate");
        json_object_set_array_member(license, "licenseRestrictions", json_array_new());
        json_object_set_object_member(o, "license", license);
        itk_sim_reply_json(msg, SOUP_STATUS_OK, itk_sim_api_object(o));
}

static void
itk_sim_api_overview(ItkSimServer *self, SoupServerMessage *msg, const char *arg, GHashTable *query)
{
        ItkSimState *st = self->state;
        g_autofree char *full = itk_sim_state_dup_full_version(st);
        JsonObject *o = json_object_new();
        JsonObject *redundancy = json_object_new();
        JsonObject *java = json_object_new();
        JsonObject *os = json_object_new();
        JsonObject *disk = json_object_new();
        JsonObject *license = json_object_new();
        JsonArray *memory = json_array_new();
        gint64 left = itk_sim_state_get_trial_seconds_left(st);

        json_object_set_string_member(o, "version", full);
        json_object_set_string_member(redundancy, "role", "Independent");
        json_object_set_string_member(redundancy, "activityLevel", "Active");
        json_object_set_string_member(redundancy, "projectState", "Good");
        json_object_set_object_member(o, "redundancy", redundancy);
        json_object_set_string_member(java, "version", "17.0.13+11");
        json_object_set_string_member(java, "vendor", "Eclipse Adoptium");
        json_object_set_object_member(o, "java", java);
        json_object_set_string_member(os, "name", "Linux");
        json_object_set_string_member(os, "version", "6.1.0");
        json_object_set_string_member(os, "arch", "amd64");
        json_object_set_object_member(o, "os", os);
        json_object_set_int_member(o, "uptime", itk_sim_state_get_uptime_ms(st));
        json_array_add_int_element(memory, G_GINT64_CONSTANT(512) * 1024 * 1024);
        json_array_add_int_element(memory, G_GINT64_CONSTANT(2048) * 1024 * 1024);
        json_object_set_array_member(o, "memory", memory);
        json_object_set_double_member(o, "cpu", 0.07);
        json_object_set_int_member(disk, "total", G_GINT64_CONSTANT(100) * 1000 * 1000 * 1000);
        json_object_set_int_member(disk, "used", G_GINT64_CONSTANT(42) * 1000 * 1000 * 1000);
        json_object_set_object_member(o, "disk", disk);
        json_object_set_string_member(license, "state", left > 0 ? "TRIAL" : "TRIAL_EXPIRED");
        json_object_set_int_member(license, "trialRemaining", left);
        json_object_set_object_member(o, "license", license);
        itk_sim_reply_json(msg, SOUP_STATUS_OK, itk_sim_api_object(o));
}

/* ---- modules ---- */

static const char *const itk_sim_module_fields[] = { "id", "name", NULL };

static void
itk_sim_api_modules_healthy(ItkSimServer *self, SoupServerMessage *msg, const char *arg,
                            GHashTable *query)
{
        g_autoptr(GPtrArray) items =
                g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);

        for (guint i = 0; i < self->state->modules->len; i++)
                g_ptr_array_add(items,
                                itk_sim_module_to_json(g_ptr_array_index(self->state->modules, i)));
        itk_sim_api_reply_list(msg, query, items, itk_sim_module_fields);
}

static gboolean
itk_sim_upload_is_quarantined(ItkSimUpload *u)
{
        return u->reason != NULL || !u->cert_accepted || !u->eula_accepted;
}

static void
itk_sim_api_modules_quarantined(ItkSimServer *self, SoupServerMessage *msg, const char *arg,
                                GHashTable *query)
{
        g_autoptr(GPtrArray) items =
                g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);

        for (guint i = 0; i < self->state->uploads->len; i++) {
                ItkSimUpload *u = g_ptr_array_index(self->state->uploads, i);
                if (itk_sim_upload_is_quarantined(u))
                        g_ptr_array_add(items, itk_sim_upload_to_json(u));
        }
        itk_sim_api_reply_list(msg, query, items, itk_sim_module_fields);
}

static void
itk_sim_api_modules_upload(ItkSimServer *self, SoupServerMessage *msg, const char *arg,
                           GHashTable *query)
{
        g_autoptr(GBytes) body = itk_sim_request_body(msg);
        g_autoptr(GError) error = NULL;
        const char *file_name = itk_sim_query(query, "fileName");
        g_autofree char *sha = NULL;
        g_autofree char *safe = NULL;
        g_autofree char *rel = NULL;
        g_autofree char *saved = NULL;
        ItkSimUpload *u;
        JsonObject *o, *record;

        if (g_bytes_get_size(body) == 0) {
                itk_sim_reply_message(msg, SOUP_STATUS_BAD_REQUEST,
                                      "No module file in the request body");
                return;
        }
        u = itk_sim_state_upload_module(self->state, body, file_name, &error);
        if (u == NULL) {
                itk_sim_reply_message(msg, SOUP_STATUS_BAD_REQUEST, "%s", error->message);
                return;
        }
        sha = itk_sim_sha256_hex(body);
        {
                g_autofree char *fallback = g_strdup_printf("%s.modl", u->id);
                safe = itk_sim_safe_file_name(file_name, fallback);
        }
        rel = g_build_filename("modules", safe, NULL);
        saved = itk_sim_server_save_file(self, rel, body);

        record = json_object_new();
        json_object_set_string_member(record, "moduleId", u->id);
        itk_sim_set_string_or_null(record, "fileName", file_name);
        json_object_set_int_member(record, "size", g_bytes_get_size(body));
        json_object_set_string_member(record, "sha256", sha);
        itk_sim_set_string_or_null(record, "savedTo", saved);
        g_clear_pointer(&self->state->last_upload, json_object_unref);
        self->state->last_upload = record;

        o = json_object_new();
        json_object_set_string_member(o, "moduleId", u->id);
        json_object_set_boolean_member(o, "containsCert", u->contains_cert);
        json_object_set_boolean_member(o, "certAccepted", u->cert_accepted);
        json_object_set_boolean_member(o, "containsEula", u->contains_eula);
        json_object_set_boolean_member(o, "licenseAccepted", u->eula_accepted);
        itk_sim_reply_json(msg, SOUP_STATUS_OK, itk_sim_api_object(o));
}

static void
itk_sim_api_modules_accept(ItkSimServer *self, SoupServerMessage *msg, GHashTable *query,
                           gboolean cert)
{
        const char *id = itk_sim_query(query, "moduleId");
        ItkSimUpload *u;
        JsonObject *o;

        if (id == NULL || *id == '\0') {
                itk_sim_reply_message(msg, SOUP_STATUS_BAD_REQUEST, "moduleId is required");
                return;
        }
        u = itk_sim_state_find_upload(self->state, id);
        if (u == NULL) {
                if (itk_sim_state_find_module(self->state, id) != NULL)
                        itk_sim_reply_message(msg, SOUP_STATUS_CONFLICT,
                                              "Module %s is already installed", id);
                else
                        itk_sim_reply_message(msg, SOUP_STATUS_NOT_FOUND,
                                              "No uploaded module with id %s", id);
                return;
        }
        if (cert ? u->cert_accepted : u->eula_accepted) {
                itk_sim_reply_message(msg, SOUP_STATUS_CONFLICT,
                                      "The module %s was already accepted",
                                      cert ? "certificate" : "license");
                return;
        }
        if (cert)
                u->cert_accepted = TRUE;
        else
                u->eula_accepted = TRUE;
        o = json_object_new();
        json_object_set_string_member(o, "moduleId", u->id);
        json_object_set_boolean_member(o, cert ? "certAccepted" : "licenseAccepted", TRUE);
        itk_sim_reply_json(msg, SOUP_STATUS_OK, itk_sim_api_object(o));
}

static void
itk_sim_api_modules_certificate(ItkSimServer *self, SoupServerMessage *msg, const char *arg,
                                GHashTable *query)
{
        itk_sim_api_modules_accept(self, msg, query, TRUE);
}

static void
itk_sim_api_modules_eula(ItkSimServer *self, SoupServerMessage *msg, const char *arg,
                         GHashTable *query)
{
        itk_sim_api_modules_accept(self, msg, query, FALSE);
}

static void
itk_sim_api_modules_install(ItkSimServer *self, SoupServerMessage *msg, const char *arg,
                            GHashTable *query)
{
        const char *id = itk_sim_query(query, "moduleId");
        ItkSimUpload *u;
        JsonObject *o;

        if (id == NULL || *id == '\0') {
                itk_sim_reply_message(msg, SOUP_STATUS_BAD_REQUEST, "moduleId is required");
                return;
        }
        u = itk_sim_state_find_upload(self->state, id);
        if (u == NULL) {
                itk_sim_reply_message(msg, SOUP_STATUS_NOT_FOUND, "No uploaded module with id %s",
                                      id);
                return;
        }
        if (u->reason != NULL) {
                itk_sim_api_refuse(msg, TRUE, "Module %s is quarantined: %s", id, u->reason);
                return;
        }
        if (!u->cert_accepted || !u->eula_accepted) {
                itk_sim_api_refuse(msg, TRUE, "The module %s of %s has not been accepted",
                                   !u->cert_accepted ? "certificate" : "license", id);
                return;
        }
        itk_sim_state_install_module(self->state, u);
        o = json_object_new();
        json_object_set_boolean_member(o, "success", TRUE);
        json_object_set_string_member(o, "moduleId", id);
        json_object_set_boolean_member(o, "restartRequired", TRUE);
        itk_sim_reply_json(msg, SOUP_STATUS_OK, itk_sim_api_object(o));
}

static void
itk_sim_api_modules_uninstall(ItkSimServer *self, SoupServerMessage *msg, const char *arg,
                              GHashTable *query)
{
        g_autoptr(GBytes) body = itk_sim_request_body(msg);
        g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
        const char *query_id = itk_sim_query(query, "moduleId");
        JsonObject *o, *failed;
        JsonArray *failed_ids;

        if (g_bytes_get_size(body) > 0) {
                g_autoptr(JsonParser) parser = json_parser_new();
                gsize len;
                const char *data = g_bytes_get_data(body, &len);
                JsonNode *root;
                JsonNode *list = NULL;

                if (!json_parser_load_from_data(parser, data, (gssize)len, NULL)) {
                        itk_sim_reply_message(msg, SOUP_STATUS_BAD_REQUEST,
                                              "The request body is not JSON");
                        return;
                }
                root = json_parser_get_root(parser);
                if (JSON_NODE_HOLDS_OBJECT(root))
                        list = json_object_get_member(json_node_get_object(root), "uninstall");
                if (list == NULL || !JSON_NODE_HOLDS_ARRAY(list)) {
                        itk_sim_reply_message(msg, SOUP_STATUS_BAD_REQUEST,
                                              "Expected {\"uninstall\": [module ids]}");
                        return;
                }
                for (guint i = 0; i < json_array_get_length(json_node_get_array(list)); i++) {
                        JsonNode *n = json_array_get_element(json_node_get_array(list), i);
                        if (JSON_NODE_HOLDS_VALUE(n) &&
                            json_node_get_value_type(n) == G_TYPE_STRING)
                                g_ptr_array_add(ids, g_strdup(json_node_get_string(n)));
                }
        }
        /* Both sources name the same module in practice: count it once. */
        if (query_id != NULL && *query_id != '\0' &&
            !g_ptr_array_find_with_equal_func(ids, query_id, g_str_equal, NULL))
                g_ptr_array_add(ids, g_strdup(query_id));

        o = json_object_new();
        failed = json_object_new();
        failed_ids = json_array_new();
        for (guint i = 0; i < ids->len; i++) {
                const char *id = g_ptr_array_index(ids, i);
                if (!itk_sim_state_uninstall_module(self->state, id))
                        json_array_add_string_element(failed_ids, id);
        }
        json_object_set_boolean_member(o, "success",
                                       ids->len > 0 && json_array_get_length(failed_ids) == 0);
        if (ids->len == 0)
                json_object_set_string_member(o, "problem", "No module id given");
        json_object_set_array_member(failed, "uninstall", failed_ids);
        json_object_set_object_member(o, "failedUninstalls", failed);
        itk_sim_reply_json(msg, SOUP_STATUS_OK, itk_sim_api_object(o));
}

/* ---- projects ---- */

static const char *const itk_sim_project_fields[] = { "name", "title", NULL };

static void
itk_sim_api_projects_list(ItkSimServer *self, SoupServerMessage *msg, const char *arg,
                          GHashTable *query)
{
        g_autoptr(GPtrArray) items =
                g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);

        for (guint i = 0; i < self->state->projects->len; i++)
                g_ptr_array_add(items, itk_sim_project_to_json(
                                               g_ptr_array_index(self->state->projects, i)));
        itk_sim_api_reply_list(msg, query, items, itk_sim_project_fields);
}

static void
itk_sim_api_projects_find(ItkSimServer *self, SoupServerMessage *msg, const char *arg,
                          GHashTable *query)
{
        ItkSimProject *p = itk_sim_state_find_project(self->state, arg);

        if (p == NULL) {
                itk_sim_reply_message(msg, SOUP_STATUS_NOT_FOUND, "Project '%s' not found", arg);
                return;
        }
        itk_sim_reply_json(msg, SOUP_STATUS_OK, itk_sim_project_to_json(p));
}

static void
itk_sim_set_attachment(SoupServerMessage *msg, const char *file_name)
{
        GHashTable *params = g_hash_table_new(g_str_hash, g_str_equal);

        g_hash_table_insert(params, (gpointer) "filename", (gpointer)file_name);
        soup_message_headers_set_content_disposition(soup_server_message_get_response_headers(msg),
                                                     "attachment", params);
        g_hash_table_unref(params);
}

static void
itk_sim_api_projects_export(ItkSimServer *self, SoupServerMessage *msg, const char *arg,
                            GHashTable *query)
{
        ItkSimProject *p = itk_sim_state_find_project(self->state, arg);
        g_autoptr(GBytes) zip = NULL;
        g_autofree char *file_name = NULL;

        if (p == NULL) {
                itk_sim_reply_message(msg, SOUP_STATUS_NOT_FOUND, "Project '%s' not found", arg);
                return;
        }
        zip = itk_sim_state_export_project(self->state, p);
        file_name = g_strdup_printf("%s.zip", p->name);
        /* The gateway labels it generically; clients sniff "PK". */
        itk_sim_set_attachment(msg, file_name);
        itk_sim_reply_bytes(msg, "application/octet-stream", zip);
}

static void
itk_sim_api_projects_import(ItkSimServer *self, SoupServerMessage *msg, const char *arg,
                            GHashTable *query)
{
        g_autoptr(GBytes) body = itk_sim_request_body(msg);
        g_autoptr(GError) error = NULL;

        if (g_bytes_get_size(body) == 0) {
                itk_sim_api_refuse(msg, TRUE, "No project archive in the request body");
                return;
        }
        if (itk_sim_state_find_project(self->state, arg) != NULL &&
            !itk_sim_query_bool(query, "overwrite")) {
                /* This refusal carries problem as a plain string. */
                itk_sim_api_refuse(msg, FALSE,
                                   "Project '%s' already exists; set overwrite=true to replace it",
                                   arg);
                return;
        }
        if (!itk_sim_state_import_project(self->state, arg, body, &error)) {
                itk_sim_api_refuse(msg, TRUE, "%s", error->message);
                return;
        }
        itk_sim_api_success(msg);
}

static void
itk_sim_api_scan_projects(ItkSimServer *self, SoupServerMessage *msg, const char *arg,
                          GHashTable *query)
{
        itk_sim_api_success(msg);
}

/* ---- restarts ---- */

static void
itk_sim_api_restart(ItkSimServer *self, SoupServerMessage *msg, const char *arg, GHashTable *query)
{
        static const char body[] = "true";

        if (!itk_sim_query_bool(query, "confirm")) {
                itk_sim_reply_message(msg, SOUP_STATUS_BAD_REQUEST,
                                      "A restart must be confirmed with confirm=true");
                return;
        }
        itk_sim_state_restart(self->state);
        soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
        soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_STATIC, body,
                                         sizeof(body) - 1);
}

static void
itk_sim_api_restart_pending(ItkSimServer *self, SoupServerMessage *msg, const char *arg,
                            GHashTable *query)
{
        JsonObject *o = json_object_new();
        JsonArray *a = json_array_new();

        for (guint i = 0; i < self->state->pending->len; i++)
                json_array_add_string_element(a, g_ptr_array_index(self->state->pending, i));
        json_object_set_array_member(o, "pending", a);
        itk_sim_reply_json(msg, SOUP_STATUS_OK, itk_sim_api_object(o));
}

/* ---- backups ---- */

static void
itk_sim_api_backup_get(ItkSimServer *self, SoupServerMessage *msg, const char *arg,
                       GHashTable *query)
{
        const char *type = itk_sim_query(query, "type");
        g_autoptr(GBytes) gwbk = NULL;
        g_autoptr(GDateTime) now = g_date_time_new_now_local();
        g_autofree char *stamp = g_date_time_format(now, "%Y%m%d_%H%M");
        g_autofree char *file_name = NULL;

        if (type != NULL && g_strcmp0(type, "roaming") != 0 && g_strcmp0(type, "all") != 0) {
                itk_sim_reply_message(msg, SOUP_STATUS_BAD_REQUEST, "type must be roaming or all");
                return;
        }
        gwbk = itk_sim_state_make_backup(self->state, g_strcmp0(type, "roaming") != 0);
        file_name = g_strdup_printf("%s_Ignition-backup-%s.gwbk", self->state->gateway_name, stamp);
        itk_sim_set_attachment(msg, file_name);
        itk_sim_reply_bytes(msg, "application/octet-stream", gwbk);
}

static void
itk_sim_api_backup_post(ItkSimServer *self, SoupServerMessage *msg, const char *arg,
                        GHashTable *query)
{
        g_autoptr(GBytes) body = itk_sim_request_body(msg);
        g_autoptr(GError) error = NULL;
        g_autofree char *sha = NULL;
        g_autofree char *saved = NULL;
        const char *new_name = itk_sim_query(query, "newName");
        JsonObject *record;

        if (g_bytes_get_size(body) == 0) {
                itk_sim_reply_message(msg, SOUP_STATUS_BAD_REQUEST,
                                      "No gateway backup in the request body");
                return;
        }
        if (!itk_sim_state_restore_backup(self->state, body, &error)) {
                itk_sim_reply_message(msg, SOUP_STATUS_BAD_REQUEST, "%s", error->message);
                return;
        }
        if (itk_sim_query_bool(query, "renameEnabled") && new_name != NULL && *new_name != '\0') {
                g_free(self->state->gateway_name);
                self->state->gateway_name = g_strdup(new_name);
        }
        sha = itk_sim_sha256_hex(body);
        saved = itk_sim_server_save_file(self, "restored.gwbk", body);
        record = json_object_new();
        json_object_set_int_member(record, "size", g_bytes_get_size(body));
        json_object_set_string_member(record, "sha256", sha);
        itk_sim_set_string_or_null(record, "savedTo", saved);
        json_object_set_boolean_member(record, "restoreDisabled",
                                       itk_sim_query_bool(query, "restoreDisabled"));
        json_object_set_boolean_member(record, "renameEnabled",
                                       itk_sim_query_bool(query, "renameEnabled"));
        itk_sim_set_string_or_null(record, "newName", new_name);
        g_clear_pointer(&self->state->last_restore, json_object_unref);
        self->state->last_restore = record;
        /* Restoring takes a while, answers, then the gateway restarts. */
        itk_sim_server_hold_restore(self, msg, self->state->restart_delay_ms);
}

/* ---- trial ---- */

static void
itk_sim_api_reply_trial(ItkSimServer *self, SoupServerMessage *msg)
{
        JsonObject *o = json_object_new();
        gint64 left = itk_sim_state_get_trial_seconds_left(self->state);

        json_object_set_string_member(o, "licenseMode", "trial");
        json_object_set_string_member(o, "trialState", left > 0 ? "RUNNING" : "EXPIRED");
        json_object_set_int_member(o, "trialSecondsLeft", left);
        json_object_set_boolean_member(o, "expired", left == 0);
        json_object_set_int_member(o, "trialDurationSeconds", 7200);
        itk_sim_reply_json(msg, SOUP_STATUS_OK, itk_sim_api_object(o));
}

static void
itk_sim_api_trial_get(ItkSimServer *self, SoupServerMessage *msg, const char *arg,
                      GHashTable *query)
{
        itk_sim_api_reply_trial(self, msg);
}

static void
itk_sim_api_trial_post(ItkSimServer *self, SoupServerMessage *msg, const char *arg,
                       GHashTable *query)
{
        if (itk_sim_state_get_trial_seconds_left(self->state) > 0) {
                itk_sim_reply_message(msg, SOUP_STATUS_FORBIDDEN,
                                      "The trial can only be reset once it has expired");
                return;
        }
        itk_sim_state_set_trial_expired(self->state, FALSE);
        itk_sim_api_reply_trial(self, msg);
}

/* ---- routing ---- */

#define AUTH ITK_SIM_ROUTE_AUTH
#define WRITE (ITK_SIM_ROUTE_AUTH | ITK_SIM_ROUTE_WRITE)
#define JSON ITK_SIM_ROUTE_JSON

static const ItkSimApiRoute itk_sim_api_routes[] = {
        { "GET", "/data/api/v1/gateway-info", AUTH | JSON, itk_sim_api_gateway_info },
        { "GET", "/data/api/v1/overview", AUTH | JSON, itk_sim_api_overview },
        { "GET", "/data/api/v1/modules/healthy", AUTH | JSON, itk_sim_api_modules_healthy },
        { "GET", "/data/api/v1/modules/quarantined", AUTH | JSON, itk_sim_api_modules_quarantined },
        { "POST", "/data/api/v1/modules/upload", WRITE | JSON, itk_sim_api_modules_upload },
        { "POST", "/data/api/v1/modules/certificate", WRITE | JSON,
          itk_sim_api_modules_certificate },
        { "POST", "/data/api/v1/modules/eula", WRITE | JSON, itk_sim_api_modules_eula },
        { "POST", "/data/api/v1/modules/install", WRITE | JSON, itk_sim_api_modules_install },
        { "DELETE", "/data/api/v1/modules/uninstall", WRITE | JSON, itk_sim_api_modules_uninstall },
        { "GET", "/data/api/v1/projects/list", AUTH | JSON, itk_sim_api_projects_list },
        { "GET", "/data/api/v1/projects/find/{name}", AUTH | JSON, itk_sim_api_projects_find },
        { "GET", "/data/api/v1/projects/export/{name}", AUTH, itk_sim_api_projects_export },
        { "POST", "/data/api/v1/projects/import/{name}", WRITE | JSON,
          itk_sim_api_projects_import },
        { "POST", "/data/api/v1/scan/projects", WRITE | JSON, itk_sim_api_scan_projects },
        { "POST", "/data/api/v1/restart-tasks/restart", WRITE | JSON, itk_sim_api_restart },
        { "GET", "/data/api/v1/restart-tasks/pending", AUTH | JSON, itk_sim_api_restart_pending },
        { "GET", "/data/api/v1/backup", AUTH, itk_sim_api_backup_get },
        { "POST", "/data/api/v1/backup", WRITE | JSON, itk_sim_api_backup_post },
        { "GET", "/data/api/v1/trial", JSON, itk_sim_api_trial_get },
        { "POST", "/data/api/v1/trial", WRITE | JSON, itk_sim_api_trial_post },
};

#undef AUTH
#undef WRITE
#undef JSON

/* @path is still percent-encoded: a "{...}" segment is decoded into @out_arg. */
static gboolean
itk_sim_api_path_matches(const char *pattern, const char *path, char **out_arg)
{
        g_auto(GStrv) ps = g_strsplit(pattern, "/", -1);
        g_auto(GStrv) xs = g_strsplit(path, "/", -1);
        g_autofree char *arg = NULL;

        if (g_strv_length(ps) != g_strv_length(xs))
                return FALSE;
        for (guint i = 0; ps[i] != NULL; i++) {
                if (ps[i][0] == '{') {
                        arg = g_uri_unescape_string(xs[i], NULL);
                        if (arg == NULL || *arg == '\0')
                                return FALSE;
                } else if (g_strcmp0(ps[i], xs[i]) != 0) {
                        return FALSE;
                }
        }
        if (out_arg != NULL)
                *out_arg = g_steal_pointer(&arg);
        return TRUE;
}

static const ItkSimApiRoute *
itk_sim_api_find(const char *method, const char *path, gboolean *out_path_known, char **out_arg)
{
        *out_path_known = FALSE;
        for (guint i = 0; i < G_N_ELEMENTS(itk_sim_api_routes); i++) {
                const ItkSimApiRoute *r = &itk_sim_api_routes[i];

                if (!itk_sim_api_path_matches(r->pattern, path, NULL))
                        continue;
                *out_path_known = TRUE;
                if (g_strcmp0(r->method, method) == 0) {
                        itk_sim_api_path_matches(r->pattern, path, out_arg);
                        return r;
                }
        }
        return NULL;
}

const char *
itk_sim_api_route_pattern(const char *method, const char *path)
{
        g_autofree char *arg = NULL;
        gboolean known;
        const ItkSimApiRoute *r = itk_sim_api_find(method, path, &known, &arg);

        return r != NULL ? r->pattern : NULL;
}

static gboolean
itk_sim_accepts_json(SoupServerMessage *msg)
{
        const char *accept = soup_message_headers_get_one(
                soup_server_message_get_request_headers(msg), "Accept");

        return accept == NULL || strstr(accept, "application/json") != NULL ||
               strstr(accept, "*/*") != NULL || strstr(accept, "application/*") != NULL;
}

void
itk_sim_api_dispatch(ItkSimServer *self, SoupServerMessage *msg, const char *path,
                     GHashTable *query)
{
        const char *method = soup_server_message_get_method(msg);
        g_autofree char *arg = NULL;
        g_autofree char *decoded = NULL;
        const ItkSimApiRoute *route;
        gboolean path_known;

        /* Before 8.3 there is no REST API servlet at all. */
        if (!itk_sim_state_has_rest_api(self->state)) {
                itk_sim_reply_jetty(msg, SOUP_STATUS_NOT_FOUND);
                return;
        }
        route = itk_sim_api_find(method, path, &path_known, &arg);
        /* The security layer runs before routing: only the open routes skip it. */
        if (route == NULL || (route->flags & ITK_SIM_ROUTE_AUTH) != 0) {
                const char *header = soup_message_headers_get_one(
                        soup_server_message_get_request_headers(msg), ITK_SIM_TOKEN_HEADER);
                ItkSimAuth auth = itk_sim_state_check_token(self->state, header);

                if (auth == ITK_SIM_AUTH_MISSING) {
                        itk_sim_reply_jetty(msg, SOUP_STATUS_UNAUTHORIZED);
                        return;
                }
                if (auth == ITK_SIM_AUTH_READONLY && route != NULL &&
                    (route->flags & ITK_SIM_ROUTE_WRITE) != 0) {
                        itk_sim_reply_jetty(msg, SOUP_STATUS_FORBIDDEN);
                        return;
                }
        }
        if (route == NULL) {
                decoded = g_uri_unescape_string(path, NULL);
                if (path_known)
                        itk_sim_reply_message(msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
                                              "Method %s not allowed for path: %s", method,
                                              decoded != NULL ? decoded : path);
                else
                        itk_sim_reply_message(msg, SOUP_STATUS_NOT_FOUND,
                                              "No route match for path: %s",
                                              decoded != NULL ? decoded : path);
                return;
        }
        if ((route->flags & ITK_SIM_ROUTE_JSON) != 0 && !itk_sim_accepts_json(msg)) {
                itk_sim_reply_jetty(msg, SOUP_STATUS_NOT_ACCEPTABLE);
                return;
        }
        route->func(self, msg, arg, query);
}

void
itk_sim_api_call(ItkSimServer *self, SoupServerMessage *msg, const char *method, const char *path,
                 GHashTable *query)
{
        g_autofree char *arg = NULL;
        gboolean path_known;
        const ItkSimApiRoute *route = itk_sim_api_find(method, path, &path_known, &arg);

        if (route == NULL || !itk_sim_state_has_rest_api(self->state)) {
                itk_sim_reply_message(msg, SOUP_STATUS_NOT_FOUND, "No route match for path: %s",
                                      path);
                return;
        }
        route->func(self, msg, arg, query);
}
