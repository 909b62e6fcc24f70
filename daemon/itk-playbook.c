/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "itk-code-template.h"
#include "itk-error.h"
#include "itk-playbook.h"
#include "itk-step.h"
#include "itk-template.h"
#include "itk-value.h"
#include "itk-yaml.h"

#define ITK_STEP_DEFAULT_TIMEOUT 300.0
#define ITK_STEP_DEFAULT_RETRY_DELAY 5.0
/* Bounds that keep step timing sane (and its conversion to milliseconds defined). */
#define ITK_STEP_MAX_SECONDS ((double)ITK_DURATION_MAX_SECONDS)
#define ITK_STEP_MAX_RETRIES 1000
/* JSON text given for a list or dict parameter: json-glib's parser recurses. */
#define ITK_PARAM_MAX_JSON_DEPTH ITK_PLAYBOOK_MAX_DEPTH

/* The public struct plus what only this file needs. */
typedef struct {
        ItkPlaybook pub;
        char *dir;
} ItkPlaybookPrivate;

static const char *const param_type_names[] = {
        [ITK_PARAM_STRING] = "string", [ITK_PARAM_INTEGER] = "integer",
        [ITK_PARAM_FLOAT] = "float",   [ITK_PARAM_BOOLEAN] = "boolean",
        [ITK_PARAM_FILE] = "file",     [ITK_PARAM_CREDENTIAL] = "credential",
        [ITK_PARAM_LIST] = "list",     [ITK_PARAM_DICT] = "dict",
};

static const char *const on_failure_names[] = {
        [ITK_ON_FAILURE_ABORT] = "abort",
        [ITK_ON_FAILURE_CONTINUE] = "continue",
        [ITK_ON_FAILURE_ROLLBACK] = "rollback",
};

const char *
itk_param_type_to_string(ItkParamType type)
{
        if ((guint)type < G_N_ELEMENTS(param_type_names))
                return param_type_names[type];
        return "unknown";
}

static gboolean
itk_param_type_from_string(const char *text, ItkParamType *type)
{
        for (guint i = 0; i < G_N_ELEMENTS(param_type_names); i++) {
                if (g_strcmp0(text, param_type_names[i]) == 0) {
                        *type = (ItkParamType)i;
                        return TRUE;
                }
        }
        return FALSE;
}

const char *
itk_on_failure_to_string(ItkOnFailure on_failure)
{
        if ((guint)on_failure < G_N_ELEMENTS(on_failure_names))
                return on_failure_names[on_failure];
        return "unknown";
}

void
itk_diagnostic_free(ItkDiagnostic *diagnostic)
{
        if (diagnostic == NULL)
                return;
        g_free(diagnostic->step_id);
        g_free(diagnostic->message);
        g_free(diagnostic);
}

char *
itk_diagnostic_to_string(const ItkDiagnostic *diagnostic)
{
        g_return_val_if_fail(diagnostic != NULL, NULL);
        if (diagnostic->line > 0)
                return g_strdup_printf("line %d, column %d: %s", diagnostic->line,
                                       diagnostic->column, diagnostic->message);
        return g_strdup(diagnostic->message);
}

static void
itk_param_def_free(ItkParamDef *def)
{
        if (def == NULL)
                return;
        g_free(def->name);
        g_clear_pointer(&def->default_value, json_node_unref);
        g_free(def->description);
        g_free(def);
}

static void
itk_step_def_free(ItkStepDef *step)
{
        if (step == NULL)
                return;
        g_free(step->id);
        g_free(step->name);
        g_free(step->type);
        g_clear_pointer(&step->parameters, json_node_unref);
        g_free(step);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkParamDef, itk_param_def_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkStepDef, itk_step_def_free)

static ItkPlaybook *
itk_playbook_alloc(void)
{
        ItkPlaybookPrivate *priv = g_new0(ItkPlaybookPrivate, 1);
        ItkPlaybook *playbook = &priv->pub;

        g_atomic_ref_count_init(&playbook->ref);
        playbook->parameters = g_ptr_array_new_with_free_func((GDestroyNotify)itk_param_def_free);
        playbook->steps = g_ptr_array_new_with_free_func((GDestroyNotify)itk_step_def_free);
        playbook->rollback = g_ptr_array_new_with_free_func((GDestroyNotify)itk_step_def_free);
        return playbook;
}

ItkPlaybook *
itk_playbook_ref(ItkPlaybook *playbook)
{
        g_return_val_if_fail(playbook != NULL, NULL);
        g_atomic_ref_count_inc(&playbook->ref);
        return playbook;
}

void
itk_playbook_unref(ItkPlaybook *playbook)
{
        ItkPlaybookPrivate *priv = (ItkPlaybookPrivate *)playbook;

        if (playbook == NULL || !g_atomic_ref_count_dec(&playbook->ref))
                return;
        g_free(playbook->id);
        g_free(playbook->path);
        g_free(playbook->source);
        g_free(playbook->name);
        g_free(playbook->version);
        g_free(playbook->description);
        g_free(playbook->domain);
        g_free(playbook->group);
        g_ptr_array_unref(playbook->parameters);
        g_ptr_array_unref(playbook->steps);
        g_ptr_array_unref(playbook->rollback);
        g_clear_pointer(&playbook->metadata, json_node_unref);
        g_free(priv->dir);
        g_free(priv);
}

const char *
itk_playbook_get_dir(ItkPlaybook *playbook)
{
        g_return_val_if_fail(playbook != NULL, NULL);
        return ((ItkPlaybookPrivate *)playbook)->dir;
}

const ItkParamDef *
itk_playbook_lookup_param(ItkPlaybook *playbook, const char *name)
{
        g_return_val_if_fail(playbook != NULL, NULL);
        for (guint i = 0; i < playbook->parameters->len; i++) {
                const ItkParamDef *def = g_ptr_array_index(playbook->parameters, i);
                if (g_strcmp0(def->name, name) == 0)
                        return def;
        }
        return NULL;
}

int
itk_playbook_find_step(ItkPlaybook *playbook, const char *step_id)
{
        g_return_val_if_fail(playbook != NULL, -1);
        for (guint i = 0; i < playbook->steps->len; i++) {
                const ItkStepDef *step = g_ptr_array_index(playbook->steps, i);
                if (g_strcmp0(step->id, step_id) == 0)
                        return (int)i;
        }
        return -1;
}

/* --- values ---------------------------------------------------------------- */

static const char *
json_type_name(JsonNode *node)
{
        if (node == NULL || JSON_NODE_HOLDS_NULL(node))
                return "null";
        if (JSON_NODE_HOLDS_ARRAY(node))
                return "list";
        if (JSON_NODE_HOLDS_OBJECT(node))
                return "dict";
        switch (json_node_get_value_type(node)) {
        case G_TYPE_INT64:
                return "integer";
        case G_TYPE_DOUBLE:
                return "float";
        case G_TYPE_BOOLEAN:
                return "boolean";
        case G_TYPE_STRING:
        default:
                return "string";
        }
}

static gboolean
json_is_string(JsonNode *node)
{
        return node != NULL && JSON_NODE_HOLDS_VALUE(node) &&
               json_node_get_value_type(node) == G_TYPE_STRING;
}

static gboolean
json_is_number(JsonNode *node)
{
        return node != NULL && JSON_NODE_HOLDS_VALUE(node) &&
               (json_node_get_value_type(node) == G_TYPE_INT64 ||
                json_node_get_value_type(node) == G_TYPE_DOUBLE);
}

static double
json_get_number(JsonNode *node)
{
        if (json_node_get_value_type(node) == G_TYPE_INT64)
                return (double)json_node_get_int(node);
        return json_node_get_double(node);
}

/* Whole text, surrounding blanks allowed, finite. */
static gboolean
text_to_double(const char *text, double *out)
{
        g_autofree char *copy = g_strstrip(g_strdup(text));
        char *end = NULL;
        double value;

        if (*copy == '\0')
                return FALSE;
        errno = 0;
        value = g_ascii_strtod(copy, &end);
        if (errno != 0 || end == NULL || *end != '\0' || !isfinite(value))
                return FALSE;
        *out = value;
        return TRUE;
}

static gboolean
text_to_int(const char *text, gint64 *out)
{
        g_autofree char *copy = g_strstrip(g_strdup(text));

        return g_ascii_string_to_signed(copy, 10, G_MININT64, G_MAXINT64, out, NULL);
}

/* Brackets outside strings, so deeply nested JSON text is refused before
 * json-glib's recursive parser sees it. */
static gboolean
json_text_depth_ok(const char *text, guint max_depth)
{
        gboolean in_string = FALSE;
        guint depth = 0;

        for (const char *p = text; *p != '\0'; p++) {
                if (in_string) {
                        if (*p == '\\' && p[1] != '\0')
                                p++;
                        else if (*p == '"')
                                in_string = FALSE;
                } else if (*p == '"') {
                        in_string = TRUE;
                } else if (*p == '[' || *p == '{') {
                        if (++depth > max_depth)
                                return FALSE;
                } else if ((*p == ']' || *p == '}') && depth > 0) {
                        depth--;
                }
        }
        return TRUE;
}

static JsonNode *
json_text_parse(const char *text, JsonNodeType expected)
{
        g_autoptr(JsonNode) node = NULL;

        if (!json_text_depth_ok(text, ITK_PARAM_MAX_JSON_DEPTH))
                return NULL;
        node = json_from_string(text, NULL);
        if (node == NULL || JSON_NODE_TYPE(node) != expected)
                return NULL;
        return g_steal_pointer(&node);
}

static JsonNode *
json_new_string(const char *text)
{
        JsonNode *node = json_node_new(JSON_NODE_VALUE);
        json_node_set_string(node, text);
        return node;
}

/* The value as @type, converting where the meaning is unambiguous (text
 * from a form or a command line); NULL when it cannot be. */
static JsonNode *
param_convert(JsonNode *value, ItkParamType type)
{
        JsonNode *result;
        double d;
        gint64 i;

        if (value == NULL || JSON_NODE_HOLDS_NULL(value))
                return NULL;
        switch (type) {
        case ITK_PARAM_STRING:
                if (json_is_string(value))
                        return json_node_copy(value);
                if (JSON_NODE_HOLDS_VALUE(value)) {
                        g_autofree char *text = itk_value_to_text(value);
                        return json_new_string(text);
                }
                return NULL;
        case ITK_PARAM_FILE:
        case ITK_PARAM_CREDENTIAL:
                /* A path or a credential name: text only. */
                return json_is_string(value) ? json_node_copy(value) : NULL;
        case ITK_PARAM_INTEGER:
                if (!JSON_NODE_HOLDS_VALUE(value))
                        return NULL;
                if (json_node_get_value_type(value) == G_TYPE_INT64)
                        return json_node_copy(value);
                if (json_node_get_value_type(value) == G_TYPE_DOUBLE) {
                        d = json_node_get_double(value);
                        if (!isfinite(d) || d != floor(d) || d < -9007199254740992.0 ||
                            d > 9007199254740992.0)
                                return NULL;
                        i = (gint64)d;
                } else if (!json_is_string(value) ||
                           !text_to_int(json_node_get_string(value), &i)) {
                        return NULL;
                }
                result = json_node_new(JSON_NODE_VALUE);
                json_node_set_int(result, i);
                return result;
        case ITK_PARAM_FLOAT:
                if (json_is_number(value)) {
                        d = json_get_number(value);
                } else if (!json_is_string(value) ||
                           !text_to_double(json_node_get_string(value), &d)) {
                        return NULL;
                }
                result = json_node_new(JSON_NODE_VALUE);
                json_node_set_double(result, d);
                return result;
        case ITK_PARAM_BOOLEAN: {
                g_autofree char *text = NULL;
                gboolean b;

                if (!JSON_NODE_HOLDS_VALUE(value))
                        return NULL;
                if (json_node_get_value_type(value) == G_TYPE_BOOLEAN)
                        return json_node_copy(value);
                if (!json_is_string(value))
                        return NULL;
                text = g_strstrip(g_strdup(json_node_get_string(value)));
                if (g_ascii_strcasecmp(text, "true") == 0)
                        b = TRUE;
                else if (g_ascii_strcasecmp(text, "false") == 0)
                        b = FALSE;
                else
                        return NULL;
                result = json_node_new(JSON_NODE_VALUE);
                json_node_set_boolean(result, b);
                return result;
        }
        case ITK_PARAM_LIST:
                if (JSON_NODE_HOLDS_ARRAY(value))
                        return json_node_copy(value);
                if (json_is_string(value))
                        return json_text_parse(json_node_get_string(value), JSON_NODE_ARRAY);
                return NULL;
        case ITK_PARAM_DICT:
                if (JSON_NODE_HOLDS_OBJECT(value))
                        return json_node_copy(value);
                if (json_is_string(value))
                        return json_text_parse(json_node_get_string(value), JSON_NODE_OBJECT);
                return NULL;
        default:
                return NULL;
        }
}

/* --- loading ------------------------------------------------------------------ */

typedef struct {
        GPtrArray *diagnostics; /* ItkDiagnostic* */
        ItkPlaybook *playbook;
        GHashTable *step_ids;  /* id -> const ItkYamlNode* of its first definition */
        GPtrArray *ref_checks; /* RefCheck* */
        gboolean has_rollback_on_failure;
        guint dropped_errors; /* past ITK_LIMIT_DIAGNOSTICS: counted, not kept */
        guint dropped_warnings;
} ItkLoader;

/* A step's parameters, walked for references once every step id is known. */
typedef struct {
        char *step_id;
        char *label;
        char *type; /* which parameters are code */
        ItkYamlNode *parameters;
} RefCheck;

static void
ref_check_free(RefCheck *check)
{
        g_free(check->step_id);
        g_free(check->label);
        g_free(check->type);
        itk_yaml_node_unref(check->parameters);
        g_free(check);
}

static void loader_add(ItkLoader *loader, ItkDiagnosticSeverity severity, int line, int column,
                       const char *step_id, const char *label, const char *format, ...)
        G_GNUC_PRINTF(7, 8);

/* @label ("step 'x'") prefixes the message when given. */
static void
loader_add(ItkLoader *loader, ItkDiagnosticSeverity severity, int line, int column,
           const char *step_id, const char *label, const char *format, ...)
{
        ItkDiagnostic *diagnostic;
        g_autofree char *message = NULL;
        va_list args;

        /* A 1 MiB source can hold 600,000 problems: keep the first ones, so
         * the reply to ValidatePlaybook stays small, and count the rest. */
        if (loader->diagnostics->len >= ITK_LIMIT_DIAGNOSTICS) {
                if (severity == ITK_DIAGNOSTIC_ERROR)
                        loader->dropped_errors++;
                else
                        loader->dropped_warnings++;
                return;
        }
        diagnostic = g_new0(ItkDiagnostic, 1);
        va_start(args, format);
        message = g_strdup_vprintf(format, args);
        va_end(args);
        diagnostic->severity = severity;
        diagnostic->line = line;
        diagnostic->column = column;
        diagnostic->step_id = g_strdup(step_id);
        diagnostic->message = label != NULL ? g_strdup_printf("%s: %s", label, message)
                                            : g_steal_pointer(&message);
        g_ptr_array_add(loader->diagnostics, diagnostic);
}

#define loader_error(loader, node, step_id, label, ...)                                            \
        loader_add((loader), ITK_DIAGNOSTIC_ERROR, (node)->line, (node)->column, (step_id),        \
                   (label), __VA_ARGS__)
#define loader_warning(loader, node, step_id, label, ...)                                          \
        loader_add((loader), ITK_DIAGNOSTIC_WARNING, (node)->line, (node)->column, (step_id),      \
                   (label), __VA_ARGS__)

/* An itk-yaml error, at its own position when it has one. */
static void
loader_yaml_error(ItkLoader *loader, const ItkYamlNode *fallback, const char *step_id,
                  const char *label, const GError *error)
{
        int line, column;
        const char *message = itk_yaml_error_get_position(error, &line, &column);

        if (line == 0 && fallback != NULL) {
                line = fallback->line;
                column = fallback->column;
        }
        loader_add(loader, ITK_DIAGNOSTIC_ERROR, line, column, step_id, label, "%s", message);
}

static const char *
yaml_kind_name(const ItkYamlNode *node)
{
        if (node->kind == ITK_YAML_SEQUENCE)
                return "a list";
        if (node->kind == ITK_YAML_MAPPING)
                return "a mapping";
        return "a scalar";
}

/* Text of a scalar field; NULL with an error for a collection, NULL without
 * one for a null scalar. */
static char *
loader_get_text(ItkLoader *loader, const ItkYamlNode *node, const char *key, const char *step_id,
                const char *label)
{
        if (node->kind != ITK_YAML_SCALAR) {
                loader_error(loader, node, step_id, label, "'%s' must be text, not %s", key,
                             yaml_kind_name(node));
                return NULL;
        }
        if (itk_yaml_node_is_null(node))
                return NULL;
        return g_strdup(node->text);
}

static gboolean
is_blank(const char *text)
{
        for (const char *p = text; *p != '\0'; p++)
                if (!g_ascii_isspace(*p))
                        return FALSE;
        return TRUE;
}

/* What a wrong value was, for messages: 'text', a number, or its type. */
static char *
describe_json(JsonNode *json)
{
        if (json_is_string(json)) {
                const char *text = json_node_get_string(json);
                if (g_utf8_strlen(text, -1) > 40) {
                        g_autofree char *start = g_utf8_substring(text, 0, 40);
                        return g_strdup_printf("'%s...'", start);
                }
                return g_strdup_printf("'%s'", text);
        }
        if (json_is_number(json) ||
            (JSON_NODE_HOLDS_VALUE(json) && json_node_get_value_type(json) == G_TYPE_BOOLEAN))
                return itk_value_to_text(json);
        return g_strdup(json_type_name(json));
}

/* A required non-empty text field of @mapping. */
static char *
loader_get_required_text(ItkLoader *loader, const ItkYamlNode *mapping, const char *key,
                         const char *step_id, const char *label)
{
        const ItkYamlNode *node = itk_yaml_node_lookup(mapping, key);
        g_autofree char *text = NULL;

        if (node == NULL) {
                loader_error(loader, mapping, step_id, label, "missing '%s'", key);
                return NULL;
        }
        text = loader_get_text(loader, node, key, step_id, label);
        if (node->kind == ITK_YAML_SCALAR && (text == NULL || is_blank(text))) {
                loader_error(loader, node, step_id, label, "'%s' must not be empty", key);
                return NULL;
        }
        return g_steal_pointer(&text);
}

/* Resolved scalar value (PyYAML rules) or NULL with an error. */
static JsonNode *
loader_to_json(ItkLoader *loader, const ItkYamlNode *node, const char *step_id, const char *label)
{
        g_autoptr(GError) error = NULL;
        JsonNode *json = itk_yaml_node_to_json(node, &error);

        if (json == NULL)
                loader_yaml_error(loader, node, step_id, label, error);
        return json;
}

/* Keys must be scalars; unknown ones are warnings; a repeated key is a
 * warning (PyYAML silently kept the last one, and so do we). */
static void
loader_check_keys(ItkLoader *loader, const ItkYamlNode *mapping, const char *const *known,
                  const char *what, const char *step_id, const char *label)
{
        g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

        for (guint i = 0; i < itk_yaml_node_get_size(mapping); i++) {
                const ItkYamlNode *key = itk_yaml_node_get_key(mapping, i);

                if (key->kind != ITK_YAML_SCALAR) {
                        loader_error(loader, key, step_id, label, "a key of %s must be text", what);
                        continue;
                }
                if (!g_hash_table_add(seen, key->text))
                        loader_warning(loader, key, step_id, label,
                                       "duplicate key '%s'; the last one is used", key->text);
                else if (!g_strv_contains(known, key->text))
                        loader_warning(loader, key, step_id, label,
                                       "unknown key '%s' in %s is ignored", key->text, what);
        }
}

static gboolean
is_reference_name(const char *text)
{
        if (text == NULL || *text == '\0')
                return FALSE;
        for (const char *p = text; *p != '\0'; p++)
                if (!g_ascii_isalnum(*p) && *p != '_')
                        return FALSE;
        return TRUE;
}

static void
loader_load_param(ItkLoader *loader, const ItkYamlNode *node, guint index)
{
        static const char *const known[] = { "name",    "type",        "required",
                                             "default", "description", NULL };
        g_autoptr(ItkParamDef) def = g_new0(ItkParamDef, 1);
        g_autofree char *label = NULL;
        g_autofree char *type = NULL;
        const ItkYamlNode *value;
        gboolean ok = TRUE;

        if (node->kind != ITK_YAML_MAPPING) {
                loader_error(loader, node, NULL, NULL,
                             "parameter %u must be a mapping with 'name' and 'type', not %s",
                             index + 1, yaml_kind_name(node));
                return;
        }
        label = g_strdup_printf("parameter %u", index + 1);
        def->name = loader_get_required_text(loader, node, "name", NULL, label);
        if (def->name == NULL)
                return;
        g_free(label);
        label = g_strdup_printf("parameter '%s'", def->name);
        loader_check_keys(loader, node, known, label, NULL, NULL);

        if (itk_playbook_lookup_param(loader->playbook, def->name) != NULL) {
                loader_error(loader, itk_yaml_node_lookup(node, "name"), NULL, NULL,
                             "duplicate parameter '%s'", def->name);
                ok = FALSE;
        }
        if (!is_reference_name(def->name))
                loader_warning(loader, itk_yaml_node_lookup(node, "name"), NULL, label,
                               "the name cannot be used in {{ }} references "
                               "(use letters, digits and _)");

        type = loader_get_required_text(loader, node, "type", NULL, label);
        if (type == NULL) {
                ok = FALSE;
        } else if (!itk_param_type_from_string(type, &def->type)) {
                loader_error(loader, itk_yaml_node_lookup(node, "type"), NULL, label,
                             "unknown type '%s' (expected string, integer, float, boolean, file, "
                             "credential, list or dict)",
                             type);
                ok = FALSE;
        }

        def->required = TRUE;
        value = itk_yaml_node_lookup(node, "required");
        if (value != NULL && !itk_yaml_node_is_null(value)) {
                g_autoptr(JsonNode) json = loader_to_json(loader, value, NULL, label);
                if (json != NULL && JSON_NODE_HOLDS_VALUE(json) &&
                    json_node_get_value_type(json) == G_TYPE_BOOLEAN) {
                        def->required = json_node_get_boolean(json);
                } else if (json != NULL) {
                        loader_error(loader, value, NULL, label,
                                     "'required' must be true or false, not %s",
                                     json_type_name(json));
                        ok = FALSE;
                }
        }

        value = itk_yaml_node_lookup(node, "description");
        if (value != NULL)
                def->description = loader_get_text(loader, value, "description", NULL, label);

        /* `default:` with no value means no default, as in the old tool. */
        value = itk_yaml_node_lookup(node, "default");
        if (value != NULL && !itk_yaml_node_is_null(value) && type != NULL && ok) {
                g_autoptr(JsonNode) json = NULL;

                /* For text types keep the YAML text itself: `default: 1.10` is "1.10". */
                if (value->kind == ITK_YAML_SCALAR &&
                    (def->type == ITK_PARAM_STRING || def->type == ITK_PARAM_FILE ||
                     def->type == ITK_PARAM_CREDENTIAL))
                        json = json_new_string(value->text);
                else
                        json = loader_to_json(loader, value, NULL, label);
                if (json != NULL) {
                        def->default_value = param_convert(json, def->type);
                        if (def->default_value == NULL) {
                                loader_error(loader, value, NULL, label,
                                             "the default must be %s, not %s",
                                             itk_param_type_to_string(def->type),
                                             json_type_name(json));
                                ok = FALSE;
                        }
                }
        }
        if (ok)
                g_ptr_array_add(loader->playbook->parameters, g_steal_pointer(&def));
}

/* A number of seconds (or numeric text) in [min, max]. */
static gboolean
loader_get_seconds(ItkLoader *loader, const ItkYamlNode *step, const char *key, double min,
                   gboolean min_inclusive, double *out, const char *step_id, const char *label)
{
        const ItkYamlNode *node = itk_yaml_node_lookup(step, key);
        g_autoptr(JsonNode) json = NULL;
        double value = 0;

        if (node == NULL || itk_yaml_node_is_null(node))
                return TRUE;
        json = loader_to_json(loader, node, step_id, label);
        if (json == NULL)
                return FALSE;
        if (json_is_number(json))
                value = json_get_number(json);
        else if (!json_is_string(json) || !text_to_double(json_node_get_string(json), &value))
                value = NAN;
        if (!(min_inclusive ? value >= min : value > min) || !(value <= ITK_STEP_MAX_SECONDS)) {
                g_autofree char *what = describe_json(json);
                loader_error(loader, node, step_id, label,
                             "'%s' must be a number of seconds %s %.0f and at most %.0f, not %s",
                             key, min_inclusive ? "from" : "above", min, ITK_STEP_MAX_SECONDS,
                             what);
                return FALSE;
        }
        *out = value;
        return TRUE;
}

static gboolean
step_params_have(JsonObject *params, const char *name)
{
        JsonNode *member = json_object_get_member(params, name);
        return member != NULL && !JSON_NODE_HOLDS_NULL(member);
}

static void
loader_check_handler_params(ItkLoader *loader, const ItkYamlNode *at, ItkStepDef *step,
                            const char *label)
{
        const ItkStepHandler *handler = itk_step_registry_lookup(step->type);
        JsonObject *params = json_node_get_object(step->parameters);
        gboolean is_run = g_strcmp0(step->type, "playbook.run") == 0;

        if (is_run) {
                JsonNode *target = json_object_get_member(params, "playbook");
                if (target == NULL || JSON_NODE_HOLDS_NULL(target))
                        loader_error(loader, at, step->id, label,
                                     "missing required parameter 'playbook' (the playbook to "
                                     "run)");
                else if (!json_is_string(target) || *json_node_get_string(target) == '\0')
                        loader_error(loader, at, step->id, label,
                                     "parameter 'playbook' must be a playbook id (text)");
        }
        if (handler == NULL || handler->required == NULL)
                return;
        for (guint i = 0; handler->required[i] != NULL; i++) {
                g_auto(GStrv) names = g_strsplit(handler->required[i], "|", -1);
                g_autoptr(GString) wanted = g_string_new(NULL);
                gboolean found = FALSE;

                if (is_run && g_strcmp0(handler->required[i], "playbook") == 0)
                        continue; /* checked above */
                for (guint j = 0; names[j] != NULL; j++) {
                        found |= step_params_have(params, names[j]);
                        g_string_append_printf(wanted, "%s'%s'", j == 0 ? "" : " or ", names[j]);
                }
                if (!found)
                        loader_error(loader, at, step->id, label, "missing required parameter %s",
                                     wanted->str);
        }
}

/* The provider's checks of literal values (types, choices, selectors), at
 * the position of the parameter, or of the problem inside its text. */
static void
loader_check_provider_params(ItkLoader *loader, ItkYamlNode *params_node, ItkStepDef *step,
                             const char *label)
{
        g_autoptr(GError) error = NULL;
        const char *param = NULL;
        gssize offset = -1;
        const ItkYamlNode *at = params_node;
        int line, column;

        if (itk_step_registry_validate_params(step->type, json_node_get_object(step->parameters),
                                              &param, &offset, &error))
                return;
        if (param != NULL && params_node->kind == ITK_YAML_MAPPING &&
            itk_yaml_node_lookup(params_node, param) != NULL)
                at = itk_yaml_node_lookup(params_node, param);
        line = at->line;
        column = at->column;
        /* Inside a one-line scalar the offset is a column; a quote comes first. */
        if (offset >= 0 && at->kind == ITK_YAML_SCALAR && at->text != NULL &&
            strchr(at->text, '\n') == NULL) {
                g_autofree char *head = g_strndup(at->text, MIN((gsize)offset, at->length));
                column += (int)g_utf8_strlen(head, -1) + (at->plain ? 0 : 1);
        }
        loader_add(loader, ITK_DIAGNOSTIC_ERROR, line, column, step->id, label, "%s",
                   error->message);
}

static ItkStepDef *
loader_load_step(ItkLoader *loader, ItkYamlNode *node, guint index, gboolean rollback)
{
        static const char *const known[] = { "id",          "name",       "type",
                                             "parameters",  "timeout",    "retry_count",
                                             "retry_delay", "on_failure", NULL };
        g_autoptr(ItkStepDef) step = g_new0(ItkStepDef, 1);
        g_autofree char *label = NULL;
        const ItkYamlNode *value;
        ItkYamlNode *params_node;
        const char *id;
        gboolean ok = TRUE;

        step->line = node->line;
        step->column = node->column;
        step->timeout = ITK_STEP_DEFAULT_TIMEOUT;
        step->retry_delay = ITK_STEP_DEFAULT_RETRY_DELAY;
        step->on_failure = ITK_ON_FAILURE_ABORT;

        label = g_strdup_printf("%s %u", rollback ? "rollback step" : "step", index + 1);
        if (node->kind != ITK_YAML_MAPPING) {
                loader_error(loader, node, NULL, label,
                             "a step must be a mapping with 'id', 'name' and 'type', not %s",
                             yaml_kind_name(node));
                return NULL;
        }

        step->id = loader_get_required_text(loader, node, "id", NULL, label);
        if (step->id != NULL) {
                const ItkYamlNode *id_node = itk_yaml_node_lookup(node, "id");
                const ItkYamlNode *first = g_hash_table_lookup(loader->step_ids, step->id);

                g_free(label);
                label = g_strdup_printf("step '%s'", step->id);
                if (first != NULL) {
                        loader_error(loader, id_node, step->id, NULL,
                                     "duplicate step id '%s' (first used at line %d, column %d)",
                                     step->id, first->line, first->column);
                        ok = FALSE;
                } else {
                        g_hash_table_insert(loader->step_ids, g_strdup(step->id),
                                            (gpointer)id_node);
                }
                if (!is_reference_name(step->id))
                        loader_warning(loader, id_node, step->id, label,
                                       "the id cannot be used in {{ step.<id> }} references "
                                       "(use letters, digits and _)");
        } else {
                ok = FALSE;
        }
        id = step->id;
        loader_check_keys(loader, node, known, label, id, NULL);

        step->name = loader_get_required_text(loader, node, "name", id, label);
        ok &= step->name != NULL;

        step->type = loader_get_required_text(loader, node, "type", id, label);
        if (step->type != NULL) {
                g_autoptr(GError) error = NULL;
                if (!itk_step_registry_check_type(step->type, &error)) {
                        loader_error(loader, itk_yaml_node_lookup(node, "type"), id, label, "%s",
                                     error->message);
                        ok = FALSE;
                }
        } else {
                ok = FALSE;
        }

        params_node = itk_yaml_node_lookup(node, "parameters");
        if (params_node == NULL || itk_yaml_node_is_null(params_node)) {
                step->parameters = json_node_init_object(json_node_alloc(), json_object_new());
        } else if (params_node->kind != ITK_YAML_MAPPING) {
                loader_error(loader, params_node, id, label,
                             "'parameters' must be a mapping, not %s", yaml_kind_name(params_node));
                ok = FALSE;
        } else {
                step->parameters = loader_to_json(loader, params_node, id, label);
                ok &= step->parameters != NULL;
        }

        if (step->parameters != NULL && step->type != NULL) {
                JsonObject *params = json_node_get_object(step->parameters);

                loader_check_handler_params(loader, node, step, label);
                loader_check_provider_params(loader, params_node != NULL ? params_node : node, step,
                                             label);
                /* In browser steps these are the handler's (milliseconds); elsewhere
                 * the author likely meant the step's own fields. */
                if (!g_str_has_prefix(step->type, "browser.")) {
                        static const char *const step_fields[] = { "timeout", "retry_count",
                                                                   "retry_delay" };
                        for (guint i = 0; i < G_N_ELEMENTS(step_fields); i++) {
                                /* Gateway waits read it as the old name of 'wait_timeout'. */
                                if (i == 0 && g_str_has_prefix(step->type, "gateway.") &&
                                    json_object_has_member(params, "timeout"))
                                        loader_warning(
                                                loader,
                                                itk_yaml_node_lookup(params_node, "timeout"), id,
                                                label,
                                                "'timeout' inside 'parameters' is deprecated: "
                                                "write 'wait_timeout' (seconds the gateway wait "
                                                "may take; the step's own 'timeout' is separate)");
                                else if (json_object_has_member(params, step_fields[i]))
                                        loader_warning(
                                                loader,
                                                itk_yaml_node_lookup(params_node, step_fields[i]),
                                                id, label,
                                                "'%s' inside 'parameters' goes to the handler; "
                                                "the step's own '%s' is a key of the step",
                                                step_fields[i], step_fields[i]);
                        }
                }
        }
        if (params_node != NULL && params_node->kind == ITK_YAML_MAPPING) {
                RefCheck *check = g_new0(RefCheck, 1);
                check->step_id = g_strdup(id);
                check->label = g_strdup(label);
                check->type = g_strdup(step->type);
                check->parameters = itk_yaml_node_ref(params_node);
                g_ptr_array_add(loader->ref_checks, check);
        }

        ok &= loader_get_seconds(loader, node, "timeout", 0, FALSE, &step->timeout, id, label);
        ok &= loader_get_seconds(loader, node, "retry_delay", 0, TRUE, &step->retry_delay, id,
                                 label);

        value = itk_yaml_node_lookup(node, "retry_count");
        if (value != NULL && !itk_yaml_node_is_null(value)) {
                g_autoptr(JsonNode) json = loader_to_json(loader, value, id, label);
                g_autoptr(JsonNode) count = NULL;

                if (json != NULL)
                        count = param_convert(json, ITK_PARAM_INTEGER);
                if (count != NULL && json_node_get_int(count) >= 0 &&
                    json_node_get_int(count) <= ITK_STEP_MAX_RETRIES) {
                        step->retry_count = (guint)json_node_get_int(count);
                } else if (json != NULL) {
                        g_autofree char *what = describe_json(json);
                        loader_error(loader, value, id, label,
                                     "'retry_count' must be a whole number from 0 to %d, not %s",
                                     ITK_STEP_MAX_RETRIES, what);
                        ok = FALSE;
                } else {
                        ok = FALSE;
                }
        }

        value = itk_yaml_node_lookup(node, "on_failure");
        if (value != NULL && !itk_yaml_node_is_null(value)) {
                g_autofree char *text = loader_get_text(loader, value, "on_failure", id, label);
                gboolean found = FALSE;

                for (guint i = 0; text != NULL && i < G_N_ELEMENTS(on_failure_names); i++) {
                        if (strcmp(text, on_failure_names[i]) == 0) {
                                step->on_failure = (ItkOnFailure)i;
                                found = TRUE;
                        }
                }
                if (!found) {
                        if (text != NULL)
                                loader_error(loader, value, id, label,
                                             "'on_failure' must be abort, continue or rollback, "
                                             "not '%s'",
                                             text);
                        ok = FALSE;
                }
                if (found && step->on_failure == ITK_ON_FAILURE_ROLLBACK) {
                        if (rollback)
                                loader_warning(loader, value, id, label,
                                               "'on_failure: rollback' in a rollback step ends "
                                               "the rollback like 'abort'");
                        else
                                loader->has_rollback_on_failure = TRUE;
                }
        }

        return ok ? g_steal_pointer(&step) : NULL;
}

static void
loader_load_steps(ItkLoader *loader, ItkYamlNode *list, GPtrArray *out, gboolean rollback)
{
        for (guint i = 0; i < itk_yaml_node_get_size(list); i++) {
                ItkStepDef *step =
                        loader_load_step(loader, itk_yaml_node_get_item(list, i), i, rollback);
                if (step != NULL)
                        g_ptr_array_add(out, step);
        }
}

static void
loader_check_text_refs(ItkLoader *loader, const ItkYamlNode *scalar, const RefCheck *check)
{
        g_autoptr(JsonNode) text = NULL;
        g_autoptr(GPtrArray) refs = NULL;
        g_autoptr(GError) error = NULL;

        if (strstr(scalar->text, "{{") == NULL)
                return;
        text = json_new_string(scalar->text);
        if (!itk_template_check(text, &error))
                loader_error(loader, scalar, check->step_id, check->label, "%s", error->message);
        refs = itk_template_collect(text);
        for (guint i = 0; i < refs->len; i++) {
                const ItkRef *ref = g_ptr_array_index(refs, i);

                if (ref->kind == ITK_REF_STEP &&
                    !g_hash_table_contains(loader->step_ids, ref->name))
                        loader_error(loader, scalar, check->step_id, check->label,
                                     "'{{ step.%s%s%s }}' refers to no step of this playbook",
                                     ref->name, ref->field != NULL ? "." : "",
                                     ref->field != NULL ? ref->field : "");
        }
}

/* Where @ref (the @nth occurrence of its text in @scalar's value) stands in
 * the YAML source: references hold no character YAML escapes, so they read
 * the same in the source. Falls back to the scalar's own position. */
static void
loader_ref_position(ItkLoader *loader, const ItkYamlNode *scalar, const char *ref, gsize ref_len,
                    guint nth, int *line, int *column)
{
        const char *source = loader->playbook->source;
        const char *p = source;
        int l = 1;

        *line = scalar->line;
        *column = scalar->column;
        if (source == NULL)
                return;
        while (l < scalar->line && (p = strchr(p, '\n')) != NULL) {
                p++;
                l++;
        }
        if (p == NULL)
                return;
        for (int c = 1; c < scalar->column && *p != '\0' && *p != '\n'; c++)
                p = g_utf8_next_char(p);
        for (guint i = 0; p != NULL; i++) {
                p = g_strstr_len(p, -1, ref);
                if (p == NULL || i == nth)
                        break;
                p += ref_len;
        }
        if (p == NULL)
                return;
        *line = 1;
        *column = 1;
        for (const char *q = source; q < p; q = g_utf8_next_char(q)) {
                if (*q == '\n') {
                        (*line)++;
                        *column = 1;
                } else {
                        (*column)++;
                }
        }
}

/* References in code parameters (a shell command, a Python script) standing
 * where no value can be made safe (itk-code-template.h). */
static void
loader_check_code_refs(ItkLoader *loader, const RefCheck *check)
{
        for (guint i = 0; i < itk_yaml_node_get_size(check->parameters); i++) {
                const ItkYamlNode *key = itk_yaml_node_get_key(check->parameters, i);
                const ItkYamlNode *value = itk_yaml_node_get_value(check->parameters, i);
                ItkCodeLanguage language;
                g_autoptr(GPtrArray) problems = NULL;

                if (key->kind != ITK_YAML_SCALAR || value->kind != ITK_YAML_SCALAR)
                        continue;
                language = itk_code_language_for(check->type, key->text);
                if (language == ITK_CODE_LANGUAGE_NONE || strstr(value->text, "{{") == NULL)
                        continue;
                problems = itk_code_template_check(language, value->text);
                for (guint k = 0; k < problems->len; k++) {
                        const ItkCodeProblem *problem = g_ptr_array_index(problems, k);
                        g_autofree char *ref =
                                g_strndup(value->text + problem->offset, problem->length);
                        guint nth = 0;
                        int line, column;

                        for (const char *q = value->text;
                             (q = strstr(q, ref)) != NULL && q < value->text + problem->offset;
                             q += problem->length)
                                nth++;
                        loader_ref_position(loader, value, ref, problem->length, nth, &line,
                                            &column);
                        loader_add(loader, ITK_DIAGNOSTIC_ERROR, line, column, check->step_id,
                                   check->label, "parameter '%s': %s", key->text, problem->message);
                }
        }
}

/* Values only: keys are not rendered. The tree is at most
 * ITK_PLAYBOOK_MAX_DEPTH deep, aliases included. */
static void
loader_walk_refs(ItkLoader *loader, const ItkYamlNode *node, const RefCheck *check)
{
        switch (node->kind) {
        case ITK_YAML_SCALAR:
                loader_check_text_refs(loader, node, check);
                break;
        case ITK_YAML_SEQUENCE:
                for (guint i = 0; i < itk_yaml_node_get_size(node); i++)
                        loader_walk_refs(loader, itk_yaml_node_get_item(node, i), check);
                break;
        case ITK_YAML_MAPPING:
                for (guint i = 0; i < itk_yaml_node_get_size(node); i++)
                        loader_walk_refs(loader, itk_yaml_node_get_value(node, i), check);
                break;
        default:
                break;
        }
}

static void
loader_load(ItkLoader *loader, ItkYamlNode *root)
{
        static const char *const known[] = { "name",     "version",  "description", "domain",
                                             "group",    "verified", "parameters",  "steps",
                                             "rollback", "metadata", NULL };
        static const char *const domains[] = { "gateway", "perspective", "designer", NULL };
        ItkPlaybook *playbook = loader->playbook;
        ItkYamlNode *value;

        if (root->kind != ITK_YAML_MAPPING) {
                loader_error(loader, root, NULL, NULL,
                             "a playbook must be a mapping with 'name', 'version' and 'steps'%s",
                             itk_yaml_node_is_null(root) ? ", but the document is empty" : "");
                return;
        }
        loader_check_keys(loader, root, known, "the playbook", NULL, NULL);

        playbook->name = loader_get_required_text(loader, root, "name", NULL, NULL);
        /* Kept as written: `version: 1.0` is "1.0", not a float. */
        playbook->version = loader_get_required_text(loader, root, "version", NULL, NULL);

        value = itk_yaml_node_lookup(root, "description");
        if (value != NULL)
                playbook->description = loader_get_text(loader, value, "description", NULL, NULL);
        value = itk_yaml_node_lookup(root, "group");
        if (value != NULL)
                playbook->group = loader_get_text(loader, value, "group", NULL, NULL);
        value = itk_yaml_node_lookup(root, "domain");
        if (value != NULL) {
                playbook->domain = loader_get_text(loader, value, "domain", NULL, NULL);
                if (playbook->domain != NULL && !g_strv_contains(domains, playbook->domain))
                        loader_warning(loader, value, NULL, NULL,
                                       "domain '%s' is not one of gateway, perspective, designer",
                                       playbook->domain);
        }

        value = itk_yaml_node_lookup(root, "verified");
        if (value != NULL && !itk_yaml_node_is_null(value)) {
                g_autoptr(JsonNode) json = loader_to_json(loader, value, NULL, NULL);
                if (json != NULL && JSON_NODE_HOLDS_VALUE(json) &&
                    json_node_get_value_type(json) == G_TYPE_BOOLEAN)
                        playbook->verified = json_node_get_boolean(json);
                else if (json != NULL)
                        loader_error(loader, value, NULL, NULL,
                                     "'verified' must be true or false, not %s",
                                     json_type_name(json));
        }

        value = itk_yaml_node_lookup(root, "metadata");
        if (value != NULL && !itk_yaml_node_is_null(value)) {
                if (value->kind != ITK_YAML_MAPPING)
                        loader_error(loader, value, NULL, NULL,
                                     "'metadata' must be a mapping, not %s", yaml_kind_name(value));
                else
                        playbook->metadata = loader_to_json(loader, value, NULL, NULL);
        }

        value = itk_yaml_node_lookup(root, "parameters");
        if (value != NULL && !itk_yaml_node_is_null(value)) {
                if (value->kind != ITK_YAML_SEQUENCE)
                        loader_error(loader, value, NULL, NULL,
                                     "'parameters' must be a list of parameter definitions, "
                                     "not %s",
                                     yaml_kind_name(value));
                else
                        for (guint i = 0; i < itk_yaml_node_get_size(value); i++)
                                loader_load_param(loader, itk_yaml_node_get_item(value, i), i);
        }

        value = itk_yaml_node_lookup(root, "steps");
        if (value == NULL)
                loader_error(loader, root, NULL, NULL, "missing 'steps'");
        else if (value->kind != ITK_YAML_SEQUENCE && !itk_yaml_node_is_null(value))
                loader_error(loader, value, NULL, NULL, "'steps' must be a list of steps, not %s",
                             yaml_kind_name(value));
        else if (itk_yaml_node_get_size(value) == 0)
                loader_error(loader, value, NULL, NULL, "'steps' must not be empty");
        else
                loader_load_steps(loader, value, playbook->steps, FALSE);

        value = itk_yaml_node_lookup(root, "rollback");
        if (value != NULL && !itk_yaml_node_is_null(value)) {
                if (value->kind != ITK_YAML_SEQUENCE)
                        loader_error(loader, value, NULL, NULL,
                                     "'rollback' must be a list of steps, not %s",
                                     yaml_kind_name(value));
                else
                        loader_load_steps(loader, value, playbook->rollback, TRUE);
        }
        if (loader->has_rollback_on_failure && playbook->rollback->len == 0) {
                for (guint i = 0; i < playbook->steps->len; i++) {
                        const ItkStepDef *step = g_ptr_array_index(playbook->steps, i);
                        if (step->on_failure == ITK_ON_FAILURE_ROLLBACK)
                                loader_add(loader, ITK_DIAGNOSTIC_WARNING, step->line, step->column,
                                           step->id, NULL,
                                           "step '%s': 'on_failure: rollback' but the playbook "
                                           "has no rollback steps (it ends like 'abort')",
                                           step->id);
                }
        }

        /* References last: {{ step.x }} may name any step, earlier or later. */
        for (guint i = 0; i < loader->ref_checks->len; i++) {
                const RefCheck *check = g_ptr_array_index(loader->ref_checks, i);
                loader_walk_refs(loader, check->parameters, check);
                loader_check_code_refs(loader, check);
        }
}

static gint
diagnostic_compare(gconstpointer a, gconstpointer b)
{
        const ItkDiagnostic *da = *(ItkDiagnostic *const *)a;
        const ItkDiagnostic *db = *(ItkDiagnostic *const *)b;

        if (da->line != db->line)
                return da->line < db->line ? -1 : 1;
        if (da->column != db->column)
                return da->column < db->column ? -1 : 1;
        return 0;
}

ItkPlaybook *
itk_playbook_new_from_data(const char *data, gssize length, const char *id, GPtrArray *diagnostics,
                           GError **error)
{
        g_autoptr(GPtrArray) found =
                g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
        g_autoptr(GHashTable) step_ids =
                g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_autoptr(GPtrArray) ref_checks =
                g_ptr_array_new_with_free_func((GDestroyNotify)ref_check_free);
        g_autoptr(ItkPlaybook) playbook = itk_playbook_alloc();
        g_autoptr(ItkYamlNode) root = NULL;
        g_autoptr(GError) yaml_error = NULL;
        ItkLoader loader = {
                .diagnostics = found,
                .playbook = playbook,
                .step_ids = step_ids,
                .ref_checks = ref_checks,
        };
        const ItkDiagnostic *first_error = NULL;
        guint n_errors = 0;
        gsize size;

        g_return_val_if_fail(data != NULL || length == 0, NULL);
        g_return_val_if_fail(error == NULL || *error == NULL, NULL);

        itk_step_registry_ensure();
        if (data == NULL)
                data = "";
        size = length < 0 ? strlen(data) : (gsize)length;
        playbook->id = g_strdup(id != NULL ? id : "playbook");

        if (size > ITK_PLAYBOOK_MAX_SIZE) {
                loader_add(&loader, ITK_DIAGNOSTIC_ERROR, 0, 0, NULL, NULL,
                           "the playbook is larger than %d bytes", ITK_PLAYBOOK_MAX_SIZE);
        } else {
                playbook->source = g_malloc(size + 1);
                memcpy(playbook->source, data, size);
                playbook->source[size] = '\0';
                root = itk_yaml_parse(data, (gssize)size, NULL, &yaml_error);
                if (root == NULL)
                        loader_yaml_error(&loader, NULL, NULL, NULL, yaml_error);
                else
                        loader_load(&loader, root);
        }

        /* Stable: same-position diagnostics keep the order they were found in. */
        g_ptr_array_sort(found, diagnostic_compare);
        if (loader.dropped_errors + loader.dropped_warnings > 0) {
                ItkDiagnostic *more = g_new0(ItkDiagnostic, 1);
                guint dropped = loader.dropped_errors + loader.dropped_warnings;
                more->severity =
                        loader.dropped_errors > 0 ? ITK_DIAGNOSTIC_ERROR : ITK_DIAGNOSTIC_WARNING;
                more->message = g_strdup_printf(
                        "%u more problem%s (%u error%s) not listed: only the first %d are", dropped,
                        dropped > 1 ? "s" : "", loader.dropped_errors,
                        loader.dropped_errors == 1 ? "" : "s", ITK_LIMIT_DIAGNOSTICS);
                g_ptr_array_add(found, more);
        }
        for (guint i = 0; i < found->len; i++) {
                const ItkDiagnostic *diagnostic = g_ptr_array_index(found, i);
                if (diagnostic->severity != ITK_DIAGNOSTIC_ERROR)
                        continue;
                if (first_error == NULL)
                        first_error = diagnostic;
                n_errors++;
        }
        /* The summary of dropped diagnostics stands for that many errors. */
        if (loader.dropped_errors > 0)
                n_errors += loader.dropped_errors - 1;
        if (first_error != NULL) {
                g_autofree char *first = itk_diagnostic_to_string(first_error);
                if (n_errors > 1)
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK,
                                    "%s (and %u more problem%s)", first, n_errors - 1,
                                    n_errors > 2 ? "s" : "");
                else
                        g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK, first);
        }
        if (diagnostics != NULL) {
                for (guint i = 0; i < found->len; i++)
                        g_ptr_array_add(diagnostics, g_steal_pointer(&found->pdata[i]));
                g_ptr_array_set_free_func(found, NULL);
        }
        if (first_error != NULL)
                return NULL;
        return g_steal_pointer(&playbook);
}

ItkPlaybook *
itk_playbook_new_from_file(const char *path, const char *id, GPtrArray *diagnostics, GError **error)
{
        g_autoptr(GFile) file = NULL;
        g_autoptr(GFileInputStream) stream = NULL;
        g_autoptr(GError) error_local = NULL;
        g_autofree char *buffer = NULL;
        g_autofree char *absolute = NULL;
        ItkPlaybook *playbook;
        gsize size = 0;

        g_return_val_if_fail(path != NULL, NULL);

        absolute = g_canonicalize_filename(path, NULL);
        file = g_file_new_for_path(absolute);
        stream = g_file_read(file, NULL, &error_local);
        /* One byte over the limit is enough to refuse it as too large. */
        buffer = g_malloc(ITK_PLAYBOOK_MAX_SIZE + 2);
        if (stream != NULL)
                g_input_stream_read_all(G_INPUT_STREAM(stream), buffer, ITK_PLAYBOOK_MAX_SIZE + 1,
                                        &size, NULL, &error_local);
        if (error_local != NULL) {
                if (g_error_matches(error_local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
                        g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_PLAYBOOK,
                                    "no playbook at '%s'", absolute);
                else
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK,
                                    "cannot read '%s': %s", absolute, error_local->message);
                return NULL;
        }
        buffer[size] = '\0';

        playbook = itk_playbook_new_from_data(buffer, (gssize)size, id != NULL ? id : path,
                                              diagnostics, error);
        if (playbook == NULL)
                return NULL;
        playbook->path = g_steal_pointer(&absolute);
        ((ItkPlaybookPrivate *)playbook)->dir = g_path_get_dirname(playbook->path);
        return playbook;
}

/* --- parameters ------------------------------------------------------------------ */

JsonObject *
itk_playbook_bind_parameters(ItkPlaybook *playbook, JsonObject *given, GError **error)
{
        g_autoptr(JsonObject) result = json_object_new();
        g_autoptr(GPtrArray) missing = g_ptr_array_new();
        g_autoptr(GString) problems = g_string_new(NULL);

        g_return_val_if_fail(playbook != NULL, NULL);

        for (guint i = 0; i < playbook->parameters->len; i++) {
                const ItkParamDef *def = g_ptr_array_index(playbook->parameters, i);
                JsonNode *value = given != NULL ? json_object_get_member(given, def->name) : NULL;
                JsonNode *converted;

                /* A null value (no D-Bus form exists) counts as not given. */
                if (value == NULL || JSON_NODE_HOLDS_NULL(value)) {
                        if (def->default_value != NULL)
                                json_object_set_member(result, def->name,
                                                       json_node_copy(def->default_value));
                        else if (def->required)
                                g_ptr_array_add(missing, def->name);
                        else
                                json_object_set_null_member(result, def->name);
                        continue;
                }
                converted = param_convert(value, def->type);
                if (converted == NULL) {
                        /* The value itself is never quoted: it may be a secret. */
                        g_string_append_printf(problems, "%sparameter '%s' expects %s, got %s",
                                               problems->len > 0 ? "; " : "", def->name,
                                               itk_param_type_to_string(def->type),
                                               json_type_name(value));
                        if (json_is_string(value) &&
                            (def->type == ITK_PARAM_LIST || def->type == ITK_PARAM_DICT))
                                g_string_append_printf(problems, " (not JSON text of a %s)",
                                                       itk_param_type_to_string(def->type));
                        else if (json_is_string(value) && def->type != ITK_PARAM_FILE &&
                                 def->type != ITK_PARAM_CREDENTIAL)
                                g_string_append_printf(problems, " (not a valid %s)",
                                                       itk_param_type_to_string(def->type));
                        continue;
                }
                json_object_set_member(result, def->name, converted);
        }

        if (given != NULL) {
                JsonObjectIter iter;
                const char *name;
                JsonNode *value;

                json_object_iter_init_ordered(&iter, given);
                while (json_object_iter_next_ordered(&iter, &name, &value)) {
                        if (itk_playbook_lookup_param(playbook, name) == NULL)
                                json_object_set_member(result, name, json_node_copy(value));
                }
        }

        if (missing->len > 0 || problems->len > 0) {
                g_autoptr(GString) message = g_string_new(NULL);

                if (missing->len > 0) {
                        g_string_append_printf(message, "missing required parameter%s: ",
                                               missing->len > 1 ? "s" : "");
                        for (guint i = 0; i < missing->len; i++)
                                g_string_append_printf(message, "%s%s", i > 0 ? ", " : "",
                                                       (const char *)missing->pdata[i]);
                }
                if (problems->len > 0)
                        g_string_append_printf(message, "%s%s", message->len > 0 ? "; " : "",
                                               problems->str);
                g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_PARAMETERS, message->str);
                return NULL;
        }
        return g_steal_pointer(&result);
}

/* --- nesting ---------------------------------------------------------------------- */

static char *
chain_to_string(GPtrArray *chain, const char *last)
{
        g_autoptr(GString) text = g_string_new(NULL);

        for (guint i = 0; i < chain->len; i++)
                g_string_append_printf(text, "%s -> ", (const char *)chain->pdata[i]);
        g_string_append(text, last);
        return g_string_free(g_steal_pointer(&text), FALSE);
}

static gboolean
chain_contains(GPtrArray *chain, const char *id)
{
        for (guint i = 0; i < chain->len; i++)
                if (g_strcmp0(chain->pdata[i], id) == 0)
                        return TRUE;
        return FALSE;
}

/* "step 'x'" for the top playbook, "step 'x' of 'b.yaml'" below it. */
static char *
nesting_label(GPtrArray *chain, const ItkStepDef *step)
{
        if (chain->len <= 1)
                return g_strdup_printf("step '%s'", step->id);
        return g_strdup_printf("step '%s' of '%s'", step->id,
                               (const char *)chain->pdata[chain->len - 1]);
}

static gboolean check_nesting_steps(GPtrArray *steps, GPtrArray *chain,
                                    ItkPlaybookResolveFunc resolve, gpointer user_data,
                                    GError **error);

static gboolean
check_nesting_playbook(ItkPlaybook *playbook, GPtrArray *chain, ItkPlaybookResolveFunc resolve,
                       gpointer user_data, GError **error)
{
        return check_nesting_steps(playbook->steps, chain, resolve, user_data, error) &&
               check_nesting_steps(playbook->rollback, chain, resolve, user_data, error);
}

static gboolean
check_nesting_steps(GPtrArray *steps, GPtrArray *chain, ItkPlaybookResolveFunc resolve,
                    gpointer user_data, GError **error)
{
        for (guint i = 0; i < steps->len; i++) {
                const ItkStepDef *step = g_ptr_array_index(steps, i);
                g_autoptr(ItkPlaybook) child = NULL;
                g_autoptr(GError) error_local = NULL;
                g_autofree char *label = NULL;
                const char *target;
                const char *child_id;
                gboolean ok;
                JsonNode *member;

                if (g_strcmp0(step->type, "playbook.run") != 0 || step->parameters == NULL)
                        continue;
                member = json_object_get_member(json_node_get_object(step->parameters), "playbook");
                if (!json_is_string(member))
                        continue;
                target = json_node_get_string(member);
                /* Known only at run time; the execution checks it then. */
                if (itk_template_text_has_references(target))
                        continue;

                label = nesting_label(chain, step);
                if (chain_contains(chain, target)) {
                        g_autofree char *text = chain_to_string(chain, target);
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK,
                                    "%s: playbook '%s' runs itself: %s", label, target, text);
                        return FALSE;
                }
                if (chain->len > ITK_PLAYBOOK_MAX_NESTING) {
                        g_autofree char *text = chain_to_string(chain, target);
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK,
                                    "%s: playbooks are nested more than %d deep: %s", label,
                                    ITK_PLAYBOOK_MAX_NESTING, text);
                        return FALSE;
                }
                child = resolve(target, user_data, &error_local);
                if (child == NULL) {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK,
                                    "%s: cannot load playbook '%s': %s", label, target,
                                    error_local != NULL ? error_local->message : "not found");
                        return FALSE;
                }
                /* The resolver may know it under a canonical id. */
                child_id = child->id != NULL ? child->id : target;
                if (g_strcmp0(child_id, target) != 0 && chain_contains(chain, child_id)) {
                        g_autofree char *text = chain_to_string(chain, child_id);
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK,
                                    "%s: playbook '%s' runs itself: %s", label, child_id, text);
                        return FALSE;
                }
                g_ptr_array_add(chain, (gpointer)target);
                ok = check_nesting_playbook(child, chain, resolve, user_data, error);
                g_ptr_array_remove_index(chain, chain->len - 1);
                if (!ok)
                        return FALSE;
        }
        return TRUE;
}

gboolean
itk_playbook_check_nesting(ItkPlaybook *playbook, ItkPlaybookResolveFunc resolve,
                           gpointer user_data, GError **error)
{
        g_autoptr(GPtrArray) chain = g_ptr_array_new();

        g_return_val_if_fail(playbook != NULL, FALSE);
        g_return_val_if_fail(resolve != NULL, FALSE);

        g_ptr_array_add(chain, playbook->id);
        return check_nesting_playbook(playbook, chain, resolve, user_data, error);
}
