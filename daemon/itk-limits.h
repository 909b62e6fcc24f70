/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Every bound on what a caller may send (DESIGN.md §7), in one place.
 * docs/limits.md says what each is for and the error a caller gets; keep
 * the two in step. A local user who may only validate a playbook can reach
 * the YAML and D-Bus ones, so each is checked before the work it bounds. */

/* Playbook YAML text: a library file, the "source" option of
 * StartExecution, ValidatePlaybook's argument. */
#define ITK_LIMIT_SOURCE_BYTES (1024 * 1024)
/* Collection nesting in YAML, aliases expanded. */
#define ITK_LIMIT_YAML_DEPTH 64
/* YAML nodes (scalars and collections), aliases expanded. */
#define ITK_LIMIT_YAML_NODES 200000
/* Bytes of scalar text (keys included), aliases expanded: an alias
 * re-emits every byte of the node it names, so "a: &a <100 KiB>" and a few
 * lists of "*a" stay under the node budget while multiplying bytes. */
#define ITK_LIMIT_YAML_EXPANDED_BYTES (16 * 1024 * 1024)
/* Diagnostics kept for one playbook (ValidatePlaybook's reply); the rest
 * are counted in one more. */
#define ITK_LIMIT_DIAGNOSTICS 1000
/* playbook.run nesting. */
#define ITK_LIMIT_PLAYBOOK_NESTING 3

/* StartExecution parameters (a{sv}). */
#define ITK_LIMIT_PARAMETERS 256
/* A parameter name, a timeout-overrides step id, a playbook id or label,
 * a credential or gateway-url option, an execution id: any short string
 * argument. */
#define ITK_LIMIT_NAME_LENGTH 1024
/* Containers (v, av, as, a{sv}, ...) inside one value. */
#define ITK_LIMIT_VALUE_DEPTH 32
/* Values (scalars and containers) in all parameters together. */
#define ITK_LIMIT_VALUE_COUNT 65536
/* One string inside a parameter value. */
#define ITK_LIMIT_STRING_BYTES (1024 * 1024)
/* Text in all parameter values together. */
#define ITK_LIMIT_VALUE_BYTES (4 * 1024 * 1024)
/* Keys of the timeout-overrides option. */
#define ITK_LIMIT_TIMEOUT_OVERRIDES 1024
/* Values in the options a{sv} of StartExecution, overrides included. */
#define ITK_LIMIT_OPTION_VALUES (2 * ITK_LIMIT_TIMEOUT_OVERRIDES + 64)

/* SetCredential / DeleteCredential. */
#define ITK_LIMIT_CREDENTIALS 1000
#define ITK_LIMIT_CREDENTIAL_NAME 128
#define ITK_LIMIT_CREDENTIAL_FIELD 8192
/* Values in SetCredential's fields (five fields are known). */
#define ITK_LIMIT_CREDENTIAL_VALUES 64

/* Reads of the history: GetHistory's limit (0: ITK_LIMIT_HISTORY_DEFAULT)
 * and GetLog's max (0: the newest ITK_LIMIT_LOG_LINES). */
#define ITK_LIMIT_HISTORY_DEFAULT 100
#define ITK_LIMIT_HISTORY_RUNS 1000
#define ITK_LIMIT_LOG_LINES 5000

/* What one bounded read of a bus value may still take; see
 * itk_bus_message_read_bounded(). @what names the argument in errors
 * ("parameters", "options"). */
typedef struct {
        const char *what;
        guint depth;      /* containers open around the value being read */
        guint max_depth;  /* ITK_LIMIT_VALUE_DEPTH */
        gsize values;     /* values read so far */
        gsize max_values; /* ITK_LIMIT_VALUE_COUNT */
        gsize bytes;      /* string bytes read so far */
        gsize max_bytes;  /* ITK_LIMIT_VALUE_BYTES */
        gsize max_string; /* ITK_LIMIT_STRING_BYTES */
} ItkValueBudget;

#define ITK_VALUE_BUDGET_INIT(what_)                                                               \
        {                                                                                          \
                .what = (what_), .max_depth = ITK_LIMIT_VALUE_DEPTH,                               \
                .max_values = ITK_LIMIT_VALUE_COUNT, .max_bytes = ITK_LIMIT_VALUE_BYTES,           \
                .max_string = ITK_LIMIT_STRING_BYTES,                                              \
        }

G_END_DECLS
