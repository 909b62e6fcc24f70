/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* {{ ... }} references (PLAYBOOKS.md "References").
 *
 * Grammar: "{{" ws* part ("." part){0,2} ws* "}}", a part being
 * [A-Za-z0-9_]+. Anything else between braces stays literal text. Forms:
 *   {{ name }}                  a parameter
 *   {{ parameter.x }}           a parameter
 *   {{ variable.x }}            a variable of the current playbook frame
 *   {{ credential.name.field }} username|password|gateway_url|api_token|description
 *   {{ step.id }}               a completed step's whole output
 *   {{ step.id.key }}           one key of that output
 *   {{ parameter.x.key }}       one key of an object parameter; when x is a
 *                               credential-typed parameter, that field of the
 *                               credential it names (compat playbooks write
 *                               {{ parameter.gateway_credential.password }})
 *   {{ variable.x.key }}        one key of an object variable
 * Any other first word of a two- or three-part reference is an error
 * ("unknown reference kind 'x' in '{{ x.y }}'"), as is {{ credential.c }}
 * without a field.
 *
 * A string that is exactly one reference (whitespace allowed inside the
 * braces only) keeps the value's type; references inside longer text render
 * as text (itk_value_to_text()). A credential-typed parameter referenced
 * whole ({{ c }}, {{ parameter.c }}) is the object {"credential": "<name>"}
 * when the string is exactly the reference, and an error inside text (it
 * would render a name where a secret may be meant). */

typedef enum {
        ITK_REF_PARAMETER,
        ITK_REF_VARIABLE,
        ITK_REF_CREDENTIAL,
        ITK_REF_STEP,
} ItkRefKind;

typedef struct {
        ItkRefKind kind;
        char *name;  /* parameter, variable, credential or step id */
        char *field; /* credential field, step output key or object key; NULL when absent */
} ItkRef;

void itk_ref_free(ItkRef *ref);

/* Returns the credential's fields as a new object (transfer full: username,
 * password, gateway_url, api_token, description; absent fields missing), or
 * NULL with ITK_ERROR_NO_SUCH_CREDENTIAL; rendering reports its message as
 * ITK_ERROR_REFERENCE. */
typedef JsonObject *(*ItkCredentialLookupFunc)(const char *name, gpointer user_data,
                                               GError **error);

typedef struct {
        JsonObject *parameters;                    /* bound parameters */
        JsonObject *variables;                     /* the frame's variables */
        GHashTable *step_outputs;                  /* step id -> JsonNode* of completed steps */
        GHashTable *known_steps;                   /* step ids of the playbook (set); NULL = any */
        GHashTable *credential_params;             /* names of credential-typed parameters (set) */
        ItkCredentialLookupFunc credential_lookup; /* NULL: no credentials */
        gpointer credential_data;
        /* Called with every secret value the resolution read (credential
         * passwords and tokens) so the caller's redactor can mask them. */
        void (*secret_used)(const char *secret, gpointer user_data);
        gpointer secret_data;
} ItkTemplateScope;

/* Resolves every reference in @node, recursing into arrays and object
 * values (not keys). Returns a new reference (free with json_node_unref());
 * NULL with ITK_ERROR_REFERENCE and a plain message ("unknown parameter 'x'",
 * "unknown variable 'x'", "unknown step 'x'", "step 'x' has not run yet",
 * "step 'x' output has no key 'k'", "credential reference
 * '{{ credential.c }}' needs a field", ...).
 *
 * Rendering runs before every step attempt, so nothing is copied that does
 * not change: a node without references is returned as json_node_ref(@node),
 * and the result shares unchanged subtrees with @node and whole-reference
 * values with @scope. Treat it as read-only. */
JsonNode *itk_template_render(const ItkTemplateScope *scope, JsonNode *node, GError **error);

/* Every well-formed reference in @node (for validation), in order, as
 * ItkRef* (the array frees them). For three-part parameter and variable
 * references, field is the key. {{ credential.c }} is listed with a NULL
 * field; references of an unknown kind are not listed (see
 * itk_template_check()). */
GPtrArray *itk_template_collect(JsonNode *node);

/* What a playbook can be refused for without knowing any value: FALSE with
 * ITK_ERROR_REFERENCE for the first well-formed reference in @node (values,
 * not keys, in order) whose kind is unknown ("unknown reference kind 'x' in
 * '{{ x.y }}'"), a credential reference without a field, or one with a
 * field that credentials do not have. */
gboolean itk_template_check(JsonNode *node, GError **error);

/* TRUE when @text holds at least one well-formed reference. */
gboolean itk_template_text_has_references(const char *text);

/* For renderers that place each value themselves (itk-code-template.c):
 * the first well-formed reference at or after @text, as byte offsets from
 * @text of its "{{" and of the byte after its "}}". */
gboolean itk_template_next_reference(const char *text, gsize *start, gsize *end);

/* Resolves the one reference @reference (exactly @length bytes, "{{" to
 * "}}") with its value's type, as a reference inside text would be checked:
 * a credential-typed parameter referenced whole is an error. Errors as
 * itk_template_render(). */
JsonNode *itk_template_resolve_reference(const ItkTemplateScope *scope, const char *reference,
                                         gsize length, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkRef, itk_ref_free)

G_END_DECLS
