/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "itk-limits.h"

G_BEGIN_DECLS

/* Input bounds: their values live in itk-limits.h. */
#define ITK_PLAYBOOK_MAX_SIZE ITK_LIMIT_SOURCE_BYTES
#define ITK_PLAYBOOK_MAX_DEPTH ITK_LIMIT_YAML_DEPTH
#define ITK_PLAYBOOK_MAX_NODES ITK_LIMIT_YAML_NODES
#define ITK_PLAYBOOK_MAX_NESTING ITK_LIMIT_PLAYBOOK_NESTING

typedef enum {
        ITK_PARAM_STRING,
        ITK_PARAM_INTEGER,
        ITK_PARAM_FLOAT,
        ITK_PARAM_BOOLEAN,
        ITK_PARAM_FILE,
        ITK_PARAM_CREDENTIAL,
        ITK_PARAM_LIST,
        ITK_PARAM_DICT,
} ItkParamType;

const char *itk_param_type_to_string(ItkParamType type);

typedef struct {
        char *name;
        ItkParamType type;
        gboolean required;       /* default TRUE */
        JsonNode *default_value; /* NULL when none */
        char *description;
} ItkParamDef;

typedef enum {
        ITK_ON_FAILURE_ABORT,
        ITK_ON_FAILURE_CONTINUE,
        ITK_ON_FAILURE_ROLLBACK,
} ItkOnFailure;

const char *itk_on_failure_to_string(ItkOnFailure on_failure);

typedef struct {
        char *id;
        char *name;
        char *type;
        JsonNode *parameters; /* a JSON object, templates unresolved */
        double timeout;       /* seconds per attempt, default 300 */
        guint retry_count;    /* extra attempts, default 0 */
        double retry_delay;   /* seconds, default 5 */
        ItkOnFailure on_failure;
        int line; /* 1-based position of the step in the YAML */
        int column;
} ItkStepDef;

typedef enum {
        ITK_DIAGNOSTIC_ERROR,
        ITK_DIAGNOSTIC_WARNING,
} ItkDiagnosticSeverity;

typedef struct {
        ItkDiagnosticSeverity severity;
        int line;      /* 1-based; 0 when it has no position */
        int column;    /* 1-based; 0 when it has no position */
        char *step_id; /* NULL when not about a step */
        char *message;
} ItkDiagnostic;

void itk_diagnostic_free(ItkDiagnostic *diagnostic);
/* "line 12, column 5: message" (or just the message without position). */
char *itk_diagnostic_to_string(const ItkDiagnostic *diagnostic);

typedef struct _ItkPlaybook ItkPlaybook;

struct _ItkPlaybook {
        gatomicrefcount ref;
        char *id;     /* library id ("gateway/x.yaml") or the caller's label */
        char *path;   /* absolute file path, NULL when loaded from text */
        char *source; /* the YAML text */
        char *name;
        char *version; /* kept as text: `1.0` stays "1.0" */
        char *description;
        char *domain;
        char *group;
        gboolean verified;
        GPtrArray *parameters; /* ItkParamDef* */
        GPtrArray *steps;      /* ItkStepDef* */
        GPtrArray *rollback;   /* ItkStepDef*, possibly empty */
        JsonNode *metadata;    /* object or NULL */
};

/* Loads and validates. Checks everything that needs no other file: YAML
 * syntax, size/depth/alias bounds, top-level keys and types, parameter
 * definitions (name, known type, default of the right type), steps (id, name,
 * type, unique ids across steps and rollback, known and supported step type
 * via itk_step_registry_check_type(), required handler parameters, numeric
 * timeout/retry fields, on_failure value), and that {{ }} references name a
 * known kind and, for {{ step.x }}, an existing step.
 *
 * Every problem found is appended to @diagnostics (ItkDiagnostic*, owned by
 * the array) when it is non-NULL, with line and column. Returns NULL with
 * ITK_ERROR_INVALID_PLAYBOOK (message: the first error, with its position,
 * and "(and N more problems)") when any error was found; warnings alone do
 * not fail the load. Unsupported step types give ITK_ERROR_NOT_SUPPORTED's
 * message text but the returned error code is still INVALID_PLAYBOOK. */
ItkPlaybook *itk_playbook_new_from_data(const char *data, gssize length, const char *id,
                                        GPtrArray *diagnostics, GError **error);
/* Reads at most ITK_PLAYBOOK_MAX_SIZE + 1 bytes; sets path. */
ItkPlaybook *itk_playbook_new_from_file(const char *path, const char *id, GPtrArray *diagnostics,
                                        GError **error);

ItkPlaybook *itk_playbook_ref(ItkPlaybook *playbook);
void itk_playbook_unref(ItkPlaybook *playbook);

/* Folder holding the playbook file, NULL when loaded from text. */
const char *itk_playbook_get_dir(ItkPlaybook *playbook);
const ItkParamDef *itk_playbook_lookup_param(ItkPlaybook *playbook, const char *name);
/* Index in steps, or -1. */
int itk_playbook_find_step(ItkPlaybook *playbook, const char *step_id);

/* Checks and converts the caller's values against the declarations:
 * - every declared parameter missing from @given takes its default; missing
 *   required ones without a default are all listed in one error;
 * - values of the wrong type are converted when the text is unambiguous
 *   ("30" -> 30 for integer, "true"/"false" for boolean, JSON text for
 *   list/dict, integers for float), otherwise an error naming the parameter
 *   and both types;
 * - undeclared values are kept as they are.
 * Returns a new object, or NULL with ITK_ERROR_INVALID_PARAMETERS. */
JsonObject *itk_playbook_bind_parameters(ItkPlaybook *playbook, JsonObject *given, GError **error);

/* Resolves a playbook.run target id to a loaded playbook. */
typedef ItkPlaybook *(*ItkPlaybookResolveFunc)(const char *id, gpointer user_data, GError **error);

/* Checks nested playbook.run targets with literal ids, recursively: each
 * resolves, the depth stays within ITK_PLAYBOOK_MAX_NESTING, and no playbook
 * reaches itself. Errors are ITK_ERROR_INVALID_PLAYBOOK naming the step and,
 * for a cycle, the chain ("a.yaml -> b.yaml -> a.yaml"). */
gboolean itk_playbook_check_nesting(ItkPlaybook *playbook, ItkPlaybookResolveFunc resolve,
                                    gpointer user_data, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkPlaybook, itk_playbook_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkDiagnostic, itk_diagnostic_free)

G_END_DECLS
