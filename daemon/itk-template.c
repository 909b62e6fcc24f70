/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "itk-error.h"
#include "itk-template.h"
#include "itk-value.h"

#define ITK_TEMPLATE_MAX_PARTS 3

/* One well-formed reference inside a string; parts point into the string. */
typedef struct {
        const char *start; /* the "{{" */
        const char *end;   /* just after the "}}" */
        guint n_parts;
        const char *part[ITK_TEMPLATE_MAX_PARTS];
        gsize len[ITK_TEMPLATE_MAX_PARTS];
} ItkRefMatch;

static const char *const itk_template_credential_fields[] = {
        "username", "password", "gateway_url", "api_token", "description",
};

void
itk_ref_free(ItkRef *ref)
{
        if (ref == NULL)
                return;
        g_free(ref->name);
        g_free(ref->field);
        g_free(ref);
}

/* --- Parsing ---------------------------------------------------------------- */

static inline gboolean
itk_template_is_part_char(char c)
{
        return g_ascii_isalnum(c) || c == '_';
}

/* Matches the grammar at @p, which points at "{{". */
static gboolean
itk_template_match_at(const char *p, ItkRefMatch *m)
{
        const char *q = p + 2;

        m->n_parts = 0;
        while (g_ascii_isspace(*q))
                q++;
        for (;;) {
                const char *part = q;
                while (itk_template_is_part_char(*q))
                        q++;
                if (q == part || m->n_parts == ITK_TEMPLATE_MAX_PARTS)
                        return FALSE; /* empty part ("{{}}", "a..b") or a fourth one */
                m->part[m->n_parts] = part;
                m->len[m->n_parts] = (gsize)(q - part);
                m->n_parts++;
                if (*q != '.')
                        break;
                q++;
        }
        while (g_ascii_isspace(*q))
                q++;
        if (q[0] != '}' || q[1] != '}')
                return FALSE;
        m->start = p;
        m->end = q + 2;
        return TRUE;
}

/* The first reference at or after @text. Text between braces that does not
 * match (CSS, four parts) is skipped one byte at a time, so "{{{ x }}" still
 * finds "{{ x }}". */
static gboolean
itk_template_find(const char *text, ItkRefMatch *m)
{
        const char *p = text;

        while ((p = strstr(p, "{{")) != NULL) {
                if (itk_template_match_at(p, m))
                        return TRUE;
                p++;
        }
        return FALSE;
}

static gboolean
itk_template_part_is(const ItkRefMatch *m, guint i, const char *word)
{
        return m->len[i] == strlen(word) && memcmp(m->part[i], word, m->len[i]) == 0;
}

static char *
itk_template_part_dup(const ItkRefMatch *m, guint i)
{
        return i < m->n_parts ? g_strndup(m->part[i], m->len[i]) : NULL;
}

/* "{{ a.b.c }}", normalised, for messages. */
static char *
itk_template_match_display(const ItkRefMatch *m)
{
        const char *first = m->part[0];
        const char *last_end = m->part[m->n_parts - 1] + m->len[m->n_parts - 1];

        return g_strdup_printf("{{ %.*s }}", (int)(last_end - first), first);
}

static gboolean
itk_template_kind_from_match(const ItkRefMatch *m, ItkRefKind *kind)
{
        if (m->n_parts == 1 || itk_template_part_is(m, 0, "parameter"))
                *kind = ITK_REF_PARAMETER;
        else if (itk_template_part_is(m, 0, "variable"))
                *kind = ITK_REF_VARIABLE;
        else if (itk_template_part_is(m, 0, "credential"))
                *kind = ITK_REF_CREDENTIAL;
        else if (itk_template_part_is(m, 0, "step"))
                *kind = ITK_REF_STEP;
        else
                return FALSE;
        return TRUE;
}

static gboolean
itk_template_credential_field_valid(const char *field)
{
        for (gsize i = 0; i < G_N_ELEMENTS(itk_template_credential_fields); i++) {
                if (g_str_equal(field, itk_template_credential_fields[i]))
                        return TRUE;
        }
        return FALSE;
}

static gboolean
itk_template_credential_field_is_secret(const char *field)
{
        return g_str_equal(field, "password") || g_str_equal(field, "api_token");
}

/* Errors that need no value: unknown kind, credential without a field or
 * with a field credentials do not have. */
static gboolean
itk_template_check_match(const ItkRefMatch *m, ItkRefKind *kind, GError **error)
{
        if (!itk_template_kind_from_match(m, kind)) {
                g_autofree char *word = itk_template_part_dup(m, 0);
                g_autofree char *display = itk_template_match_display(m);
                g_set_error(error, ITK_ERROR, ITK_ERROR_REFERENCE,
                            "unknown reference kind '%s' in '%s'", word, display);
                return FALSE;
        }
        if (*kind == ITK_REF_CREDENTIAL) {
                g_autofree char *field = itk_template_part_dup(m, 2);
                if (field == NULL) {
                        g_autofree char *display = itk_template_match_display(m);
                        g_set_error(error, ITK_ERROR, ITK_ERROR_REFERENCE,
                                    "credential reference '%s' needs a field "
                                    "(username, password, gateway_url, api_token or "
                                    "description)",
                                    display);
                        return FALSE;
                }
                if (!itk_template_credential_field_valid(field)) {
                        g_autofree char *display = itk_template_match_display(m);
                        g_set_error(error, ITK_ERROR, ITK_ERROR_REFERENCE,
                                    "unknown credential field '%s' in '%s'", field, display);
                        return FALSE;
                }
        }
        return TRUE;
}

/* --- Resolution --------------------------------------------------------------- */

static JsonNode *
itk_template_resolve_credential(const ItkTemplateScope *scope, const char *name, const char *field,
                                const ItkRefMatch *m, GError **error)
{
        g_autoptr(JsonObject) fields = NULL;
        g_autoptr(GError) error_local = NULL;
        JsonNode *value;

        if (!itk_template_credential_field_valid(field)) {
                g_autofree char *display = itk_template_match_display(m);
                g_set_error(error, ITK_ERROR, ITK_ERROR_REFERENCE,
                            "unknown credential field '%s' in '%s'", field, display);
                return NULL;
        }
        if (scope->credential_lookup != NULL)
                fields = scope->credential_lookup(name, scope->credential_data, &error_local);
        if (fields == NULL) {
                /* One error domain for every reference failure. */
                if (error_local != NULL)
                        g_set_error_literal(error, ITK_ERROR, ITK_ERROR_REFERENCE,
                                            error_local->message);
                else
                        g_set_error(error, ITK_ERROR, ITK_ERROR_REFERENCE,
                                    "unknown credential '%s'", name);
                return NULL;
        }
        value = json_object_get_member(fields, field);
        if (value == NULL || JSON_NODE_HOLDS_NULL(value)) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_REFERENCE, "credential '%s' has no %s",
                            name, field);
                return NULL;
        }
        if (itk_template_credential_field_is_secret(field) && scope->secret_used != NULL &&
            JSON_NODE_HOLDS_VALUE(value) && json_node_get_value_type(value) == G_TYPE_STRING)
                scope->secret_used(json_node_get_string(value), scope->secret_data);
        /* A copy: @fields, the node's parent, goes away here. */
        return json_node_copy(value);
}

static JsonNode *
itk_template_resolve_parameter(const ItkTemplateScope *scope, const char *name, const char *key,
                               gboolean whole, const ItkRefMatch *m, GError **error)
{
        JsonNode *value = NULL;
        JsonNode *member;

        if (scope->parameters != NULL)
                value = json_object_get_member(scope->parameters, name);
        if (value == NULL) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_REFERENCE, "unknown parameter '%s'", name);
                return NULL;
        }

        if (scope->credential_params != NULL &&
            g_hash_table_contains(scope->credential_params, name)) {
                const char *credential = NULL;

                if (JSON_NODE_HOLDS_VALUE(value) &&
                    json_node_get_value_type(value) == G_TYPE_STRING)
                        credential = json_node_get_string(value);
                else if (JSON_NODE_HOLDS_OBJECT(value))
                        credential = json_object_get_string_member_with_default(
                                json_node_get_object(value), "credential", NULL);
                if (credential == NULL || credential[0] == '\0') {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_REFERENCE,
                                    "credential parameter '%s' does not name a credential", name);
                        return NULL;
                }
                if (key != NULL)
                        return itk_template_resolve_credential(scope, credential, key, m, error);
                if (!whole) {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_REFERENCE,
                                    "credential parameter '%s' cannot be used inside text; "
                                    "reference one of its fields, e.g. "
                                    "'{{ parameter.%s.username }}'",
                                    name, name);
                        return NULL;
                }
                {
                        g_autoptr(JsonObject) object = json_object_new();
                        json_object_set_string_member(object, "credential", credential);
                        return json_node_init_object(json_node_alloc(), object);
                }
        }

        if (key == NULL)
                return json_node_ref(value);
        member = JSON_NODE_HOLDS_OBJECT(value)
                         ? json_object_get_member(json_node_get_object(value), key)
                         : NULL;
        if (member == NULL) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_REFERENCE, "parameter '%s' has no key '%s'",
                            name, key);
                return NULL;
        }
        return json_node_ref(member);
}

static JsonNode *
itk_template_resolve_variable(const ItkTemplateScope *scope, const char *name, const char *key,
                              GError **error)
{
        JsonNode *value = NULL;
        JsonNode *member;

        if (scope->variables != NULL)
                value = json_object_get_member(scope->variables, name);
        if (value == NULL) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_REFERENCE, "unknown variable '%s'", name);
                return NULL;
        }
        if (key == NULL)
                return json_node_ref(value);
        member = JSON_NODE_HOLDS_OBJECT(value)
                         ? json_object_get_member(json_node_get_object(value), key)
                         : NULL;
        if (member == NULL) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_REFERENCE, "variable '%s' has no key '%s'",
                            name, key);
                return NULL;
        }
        return json_node_ref(member);
}

static JsonNode *
itk_template_resolve_step(const ItkTemplateScope *scope, const char *id, const char *key,
                          GError **error)
{
        gpointer output = NULL;
        JsonNode *member;

        if (scope->step_outputs == NULL ||
            !g_hash_table_lookup_extended(scope->step_outputs, id, NULL, &output)) {
                if (scope->known_steps != NULL && !g_hash_table_contains(scope->known_steps, id))
                        g_set_error(error, ITK_ERROR, ITK_ERROR_REFERENCE, "unknown step '%s'", id);
                else
                        g_set_error(error, ITK_ERROR, ITK_ERROR_REFERENCE,
                                    "step '%s' has not run yet", id);
                return NULL;
        }
        if (key == NULL) {
                if (output == NULL || JSON_NODE_HOLDS_NULL((JsonNode *)output)) {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_REFERENCE,
                                    "step '%s' has no output", id);
                        return NULL;
                }
                return json_node_ref(output);
        }
        member = output != NULL && JSON_NODE_HOLDS_OBJECT((JsonNode *)output)
                         ? json_object_get_member(json_node_get_object(output), key)
                         : NULL;
        if (member == NULL) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_REFERENCE,
                            "step '%s' output has no key '%s'", id, key);
                return NULL;
        }
        return json_node_ref(member);
}

/* A new reference to the value of @m. @whole: the string is exactly @m. */
static JsonNode *
itk_template_resolve(const ItkTemplateScope *scope, const ItkRefMatch *m, gboolean whole,
                     GError **error)
{
        ItkRefKind kind;
        g_autofree char *name = NULL;
        g_autofree char *field = NULL;

        if (!itk_template_check_match(m, &kind, error))
                return NULL;
        if (m->n_parts == 1) {
                name = itk_template_part_dup(m, 0);
        } else {
                name = itk_template_part_dup(m, 1);
                field = itk_template_part_dup(m, 2);
        }
        switch (kind) {
        case ITK_REF_PARAMETER:
                return itk_template_resolve_parameter(scope, name, field, whole, m, error);
        case ITK_REF_VARIABLE:
                return itk_template_resolve_variable(scope, name, field, error);
        case ITK_REF_STEP:
                return itk_template_resolve_step(scope, name, field, error);
        case ITK_REF_CREDENTIAL:
                return itk_template_resolve_credential(scope, name, field, m, error);
        default:
                g_assert_not_reached();
        }
        return NULL;
}

static void
itk_template_append_text(GString *out, JsonNode *value)
{
        g_autofree char *text = NULL;

        if (JSON_NODE_HOLDS_VALUE(value) && json_node_get_value_type(value) == G_TYPE_STRING) {
                g_string_append(out, json_node_get_string(value));
                return;
        }
        text = itk_value_to_text(value);
        g_string_append(out, text);
}

/* TRUE on success; *out stays NULL when @node has no reference. */
static gboolean
itk_template_render_string(const ItkTemplateScope *scope, JsonNode *node, JsonNode **out,
                           GError **error)
{
        const char *text = json_node_get_string(node);
        const char *p;
        g_autoptr(GString) buf = NULL;
        ItkRefMatch m;

        /* The fast path: most strings hold no braces at all. */
        if (text == NULL || strstr(text, "{{") == NULL || !itk_template_find(text, &m))
                return TRUE;

        if (m.start == text && *m.end == '\0') {
                *out = itk_template_resolve(scope, &m, TRUE, error);
                return *out != NULL;
        }

        buf = g_string_sized_new(strlen(text) + 64);
        p = text;
        do {
                g_autoptr(JsonNode) value = NULL;

                g_string_append_len(buf, p, m.start - p);
                value = itk_template_resolve(scope, &m, FALSE, error);
                if (value == NULL)
                        return FALSE;
                itk_template_append_text(buf, value);
                /* Resolved text is never scanned again: a value holding
                 * "{{ x }}" stays as it is. */
                p = m.end;
        } while (itk_template_find(p, &m));
        g_string_append(buf, p);

        *out = json_node_init_string(json_node_alloc(), buf->str);
        return TRUE;
}

static gboolean itk_template_render_node(const ItkTemplateScope *scope, JsonNode *node,
                                         JsonNode **out, GError **error);

static gboolean
itk_template_render_array(const ItkTemplateScope *scope, JsonNode *node, JsonNode **out,
                          GError **error)
{
        JsonArray *array = json_node_get_array(node);
        guint n = json_array_get_length(array);
        g_autoptr(JsonArray) result = NULL;

        for (guint i = 0; i < n; i++) {
                JsonNode *element = json_array_get_element(array, i);
                JsonNode *rendered = NULL;

                if (!itk_template_render_node(scope, element, &rendered, error))
                        return FALSE;
                if (rendered != NULL && result == NULL) {
                        /* First change: share the elements before it. */
                        result = json_array_sized_new(n);
                        for (guint j = 0; j < i; j++)
                                json_array_add_element(
                                        result, json_node_ref(json_array_get_element(array, j)));
                }
                if (result != NULL)
                        json_array_add_element(result, rendered != NULL ? rendered
                                                                        : json_node_ref(element));
        }
        if (result != NULL)
                *out = json_node_init_array(json_node_alloc(), result);
        return TRUE;
}

static gboolean
itk_template_render_object(const ItkTemplateScope *scope, JsonNode *node, JsonNode **out,
                           GError **error)
{
        JsonObject *object = json_node_get_object(node);
        g_autoptr(JsonObject) result = NULL;
        JsonObjectIter iter;
        const char *key;
        JsonNode *member;
        guint i = 0;

        json_object_iter_init_ordered(&iter, object);
        for (; json_object_iter_next_ordered(&iter, &key, &member); i++) {
                JsonNode *rendered = NULL;

                if (!itk_template_render_node(scope, member, &rendered, error))
                        return FALSE;
                if (rendered != NULL && result == NULL) {
                        /* First change: share the @i members before it. */
                        JsonObjectIter before;
                        const char *key_before;
                        JsonNode *member_before;

                        result = json_object_new();
                        json_object_iter_init_ordered(&before, object);
                        for (guint j = 0; j < i && json_object_iter_next_ordered(
                                                           &before, &key_before, &member_before);
                             j++)
                                json_object_set_member(result, key_before,
                                                       json_node_ref(member_before));
                }
                if (result != NULL)
                        json_object_set_member(result, key,
                                               rendered != NULL ? rendered : json_node_ref(member));
        }
        if (result != NULL)
                *out = json_node_init_object(json_node_alloc(), result);
        return TRUE;
}

static gboolean
itk_template_render_node(const ItkTemplateScope *scope, JsonNode *node, JsonNode **out,
                         GError **error)
{
        switch (json_node_get_node_type(node)) {
        case JSON_NODE_VALUE:
                if (json_node_get_value_type(node) == G_TYPE_STRING)
                        return itk_template_render_string(scope, node, out, error);
                return TRUE;
        case JSON_NODE_ARRAY:
                return itk_template_render_array(scope, node, out, error);
        case JSON_NODE_OBJECT:
                return itk_template_render_object(scope, node, out, error);
        case JSON_NODE_NULL:
        default:
                return TRUE;
        }
}

JsonNode *
itk_template_render(const ItkTemplateScope *scope, JsonNode *node, GError **error)
{
        JsonNode *out = NULL;

        g_return_val_if_fail(scope != NULL, NULL);
        g_return_val_if_fail(node != NULL, NULL);
        g_return_val_if_fail(error == NULL || *error == NULL, NULL);

        if (!itk_template_render_node(scope, node, &out, error))
                return NULL;
        return out != NULL ? out : json_node_ref(node);
}

/* --- Walking without values --------------------------------------------------- */

/* Returns FALSE to stop the walk. */
typedef gboolean (*ItkTemplateMatchFunc)(const ItkRefMatch *m, gpointer user_data);

static gboolean
itk_template_walk(JsonNode *node, ItkTemplateMatchFunc func, gpointer user_data)
{
        switch (json_node_get_node_type(node)) {
        case JSON_NODE_VALUE: {
                const char *text;
                ItkRefMatch m;

                if (json_node_get_value_type(node) != G_TYPE_STRING)
                        return TRUE;
                text = json_node_get_string(node);
                if (text == NULL)
                        return TRUE;
                while (itk_template_find(text, &m)) {
                        if (!func(&m, user_data))
                                return FALSE;
                        text = m.end;
                }
                return TRUE;
        }
        case JSON_NODE_ARRAY: {
                JsonArray *array = json_node_get_array(node);
                guint n = json_array_get_length(array);
                for (guint i = 0; i < n; i++) {
                        if (!itk_template_walk(json_array_get_element(array, i), func, user_data))
                                return FALSE;
                }
                return TRUE;
        }
        case JSON_NODE_OBJECT: {
                JsonObjectIter iter;
                const char *key;
                JsonNode *member;

                json_object_iter_init_ordered(&iter, json_node_get_object(node));
                while (json_object_iter_next_ordered(&iter, &key, &member)) {
                        if (!itk_template_walk(member, func, user_data))
                                return FALSE;
                }
                return TRUE;
        }
        case JSON_NODE_NULL:
        default:
                return TRUE;
        }
}

static gboolean
itk_template_collect_cb(const ItkRefMatch *m, gpointer user_data)
{
        GPtrArray *refs = user_data;
        ItkRefKind kind;
        ItkRef *ref;

        if (!itk_template_kind_from_match(m, &kind))
                return TRUE;
        ref = g_new0(ItkRef, 1);
        ref->kind = kind;
        if (m->n_parts == 1) {
                ref->name = itk_template_part_dup(m, 0);
        } else {
                ref->name = itk_template_part_dup(m, 1);
                ref->field = itk_template_part_dup(m, 2);
        }
        g_ptr_array_add(refs, ref);
        return TRUE;
}

GPtrArray *
itk_template_collect(JsonNode *node)
{
        GPtrArray *refs = g_ptr_array_new_with_free_func((GDestroyNotify)itk_ref_free);

        if (node != NULL)
                itk_template_walk(node, itk_template_collect_cb, refs);
        return refs;
}

static gboolean
itk_template_check_cb(const ItkRefMatch *m, gpointer user_data)
{
        GError **error = user_data;
        ItkRefKind kind;

        return itk_template_check_match(m, &kind, error);
}

gboolean
itk_template_check(JsonNode *node, GError **error)
{
        g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

        if (node == NULL)
                return TRUE;
        return itk_template_walk(node, itk_template_check_cb, error);
}

gboolean
itk_template_text_has_references(const char *text)
{
        ItkRefMatch m;

        return text != NULL && itk_template_find(text, &m);
}

gboolean
itk_template_next_reference(const char *text, gsize *start, gsize *end)
{
        ItkRefMatch m;

        if (text == NULL || !itk_template_find(text, &m))
                return FALSE;
        *start = (gsize)(m.start - text);
        *end = (gsize)(m.end - text);
        return TRUE;
}

JsonNode *
itk_template_resolve_reference(const ItkTemplateScope *scope, const char *reference, gsize length,
                               GError **error)
{
        ItkRefMatch m;

        g_return_val_if_fail(scope != NULL, NULL);
        g_return_val_if_fail(reference != NULL, NULL);

        if (length < 4 || reference[0] != '{' || reference[1] != '{' ||
            !itk_template_match_at(reference, &m) || m.end != reference + length) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_REFERENCE, "'%.*s' is not a reference",
                            (int)length, reference);
                return NULL;
        }
        return itk_template_resolve(scope, &m, FALSE, error);
}
