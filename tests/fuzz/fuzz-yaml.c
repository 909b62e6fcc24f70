/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the YAML loader's bounds. Small limits, so that short
 * inputs reach every budget (size, depth, nodes, bytes through aliases);
 * and a check that what loads really is within them once expanded, which
 * is what the budgets promise the playbook loader and ValidatePlaybook. */
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include <gio/gio.h>

#include "itk-yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ItkYamlLimits limits = {
        .max_size = 16 * 1024,
        .max_depth = 12,
        .max_nodes = 2000,
        .max_bytes = 8 * 1024,
};

/* Nodes and scalar bytes of @node with aliases expanded (each visit of a
 * shared node counts again), and its collection depth. Stops counting past
 * the limits, so a broken budget cannot make this walk itself explode. */
typedef struct {
        gsize nodes;
        gsize bytes;
        gboolean over;
} Expanded;

static guint
expand(const ItkYamlNode *node, Expanded *acc)
{
        guint height = 0;

        if (acc->over)
                return 0;
        acc->nodes++;
        if (node->kind == ITK_YAML_SCALAR)
                acc->bytes += node->length;
        if (acc->nodes > limits.max_nodes || acc->bytes > limits.max_bytes) {
                acc->over = TRUE;
                return 0;
        }
        if (node->kind == ITK_YAML_SCALAR)
                return 0;
        for (guint i = 0; i < node->items->len; i++) {
                guint child = expand(g_ptr_array_index(node->items, i), acc);
                height = MAX(height, child);
        }
        return height + 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(ItkYamlNode) root = NULL;
        Expanded acc = { 0 };
        guint height;

        root = itk_yaml_parse((const char *)data, (gssize)size, &limits, &error);
        g_assert((root == NULL) == (error != NULL));
        if (root == NULL) {
                /* Every bound is named in its message. */
                if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE))
                        g_assert(strstr(error->message, "more than") != NULL ||
                                 strstr(error->message, "larger than") != NULL);
                return 0;
        }

        height = expand(root, &acc);
        /* Merge keys share pairs the aliases already paid for, so the
         * expanded tree is within the budgets, never past them. */
        g_assert(!acc.over);
        g_assert(height <= limits.max_depth);

        {
                g_autoptr(GError) json_error = NULL;
                g_autoptr(JsonNode) json = itk_yaml_node_to_json(root, &json_error);
                g_assert((json == NULL) == (json_error != NULL));
        }
        return 0;
}
