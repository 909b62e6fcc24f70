/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target for {{ }} reference resolution: the input is a template
 * string rendered against a small scope (a parameter, a variable, a step
 * output), so both the grammar and the lookups are exercised. */
#include <stddef.h>
#include <stdint.h>

#include "itk-template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        g_autofree char *text = NULL;
        g_autoptr(JsonObject) parameters = json_object_new();
        g_autoptr(JsonObject) variables = json_object_new();
        g_autoptr(GHashTable) outputs = NULL;
        g_autoptr(JsonNode) node = NULL;
        g_autoptr(JsonNode) result = NULL;
        ItkTemplateScope scope = { 0 };

        if (size > 64 * 1024)
                return 0;
        text = g_strndup((const char *)data, size);
        if (!g_utf8_validate(text, -1, NULL))
                return 0;
        json_object_set_string_member(parameters, "name", "value");
        json_object_set_int_member(variables, "count", 3);
        outputs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                        (GDestroyNotify)json_node_unref);
        g_hash_table_insert(outputs, (gpointer) "step1", json_from_string("{\"k\": [1, 2]}", NULL));
        scope.parameters = parameters;
        scope.variables = variables;
        scope.step_outputs = outputs;
        node = json_node_init_string(json_node_alloc(), text);
        result = itk_template_render(&scope, node, NULL);
        return 0;
}
