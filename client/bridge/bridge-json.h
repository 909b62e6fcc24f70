/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GVariant <-> JSON for the bridge; the daemon's kebab-case keys become snake_case. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

char *bridge_json_key(const char *key);
char *bridge_json_property_key(const char *name);
JsonNode *bridge_json_from_variant(GVariant *value);
GVariant *bridge_json_to_variant(JsonNode *node, GError **error);
char *bridge_json_to_string(JsonNode *node);
JsonNode *bridge_json_parse(const char *data, gsize length, GError **error);
