/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* A small YAML tree built from libyaml's events, with hard input bounds
 * (size, collection depth, nodes and scalar bytes after alias expansion). Aliases share the
 * anchored node (reference counted) instead of copying it, and "<<" merge
 * keys are applied when their mapping ends, as PyYAML does. */

typedef enum {
        ITK_YAML_SCALAR,
        ITK_YAML_SEQUENCE,
        ITK_YAML_MAPPING,
} ItkYamlKind;

typedef struct _ItkYamlNode ItkYamlNode;

struct _ItkYamlNode {
        grefcount ref;
        ItkYamlKind kind;
        int line;   /* 1-based */
        int column; /* 1-based, in characters */
        char *tag;  /* explicit tag ("tag:yaml.org,2002:str", "!x"), NULL when none */
        /* scalars */
        char *text;
        gsize length;   /* bytes of text; text may hold a NUL from "\0" */
        gboolean plain; /* plain style: resolved by its text; quoted/block: a string */
        /* sequences: the items; mappings: key, value, key, value, ... */
        GPtrArray *items;
};

typedef struct {
        gsize max_size;  /* bytes of input */
        guint max_depth; /* collection nesting, aliases expanded */
        guint max_nodes; /* nodes, aliases expanded */
        gsize max_bytes; /* scalar text, aliases expanded; 0: no bound */
} ItkYamlLimits;

/* Parses the first and only document of @data (@length -1: NUL-terminated).
 * An empty stream gives a null scalar. Errors are G_IO_ERROR_INVALID_DATA
 * ("line 3, column 7: mapping values are not allowed in this context") or,
 * for a bound, G_IO_ERROR_MESSAGE_TOO_LARGE. @limits NULL: the playbook
 * bounds of itk-playbook.h. */
ItkYamlNode *itk_yaml_parse(const char *data, gssize length, const ItkYamlLimits *limits,
                            GError **error);

/* Every error of this file with a position starts "line L, column C: ".
 * Splits it: returns the message after the position (or the whole message,
 * with 0 and 0, when it has none). */
const char *itk_yaml_error_get_position(const GError *error, int *line, int *column);

ItkYamlNode *itk_yaml_node_ref(ItkYamlNode *node);
void itk_yaml_node_unref(ItkYamlNode *node);

/* Items of a sequence, pairs of a mapping, 0 for a scalar. */
guint itk_yaml_node_get_size(const ItkYamlNode *node);
ItkYamlNode *itk_yaml_node_get_item(const ItkYamlNode *node, guint index);
ItkYamlNode *itk_yaml_node_get_key(const ItkYamlNode *node, guint index);
ItkYamlNode *itk_yaml_node_get_value(const ItkYamlNode *node, guint index);
/* The value of the last pair whose key is the scalar @key (PyYAML keeps the
 * last of duplicate keys), or NULL. */
ItkYamlNode *itk_yaml_node_lookup(const ItkYamlNode *node, const char *key);

/* TRUE for a scalar that resolves to null: untagged plain "", "~", "null",
 * "Null", "NULL", or tagged !!null. */
gboolean itk_yaml_node_is_null(const ItkYamlNode *node);

/* Converts to JSON with PyYAML's (YAML 1.1) resolution of untagged plain
 * scalars, so playbooks read by the old tool mean the same:
 *   null: "", ~, null, Null, NULL
 *   boolean: yes/no/true/false/on/off in lower, Capitalized and UPPER case
 *   integer: 12, +12, 1_000, 0x1F, 0b101, 017 (octal), 0o17, 190:20:30
 *   float: 1.0, 1., .5, 1.0e+3, 1e3, .inf, -.inf, .nan
 * (0o17 and 1e3 are YAML 1.2 forms PyYAML leaves as text; we accept them.)
 * Anything else, every quoted or block scalar, and dates are strings.
 * Integers beyond 64 bits become floats. Standard tags (!!str, !!int,
 * !!float, !!bool, !!null, !!seq, !!map, !!timestamp) are honoured; any
 * other tag, a collection used as a key, or a NUL in a string is an error
 * with its position. Mapping keys become member names (their text). */
JsonNode *itk_yaml_node_to_json(const ItkYamlNode *node, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkYamlNode, itk_yaml_node_unref)

G_END_DECLS
