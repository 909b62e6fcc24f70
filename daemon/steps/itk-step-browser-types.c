/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The browser.* and perspective.* step types: what validation needs (names,
 * parameter schemas, selector checks, whether Chromium is installed). Their
 * implementation (CDP, Chromium, the handlers) is the module
 * itk-step-browser, loaded on the first browser step
 * (itk_step_registry_resolve()), like the gateway steps. */
#include <string.h>

#include "itk-browser.h"
#include "itk-error.h"
#include "itk-step.h"
#if __has_include("browser/itk-selector.h")
#include "browser/itk-selector.h"
#else
#include "browser/itk-selector-standin.h"
#endif

/* --- the provider ------------------------------------------------------------------ */

static const char *const wait_until_choices[] = { "load", "domcontentloaded", "networkidle",
                                                  "commit", NULL };
static const char *const match_choices[] = { "exact", "contains", "regex", NULL };
static const char *const state_choices[] = { "visible",  "hidden",   "enabled", "disabled",
                                             "attached", "detached", NULL };

#define P_SELECTOR                                                                                 \
        {                                                                                          \
                "selector", ITK_STEP_PARAM_SELECTOR, NULL, NULL                                    \
        }
#define P_TIMEOUT(ms)                                                                              \
        {                                                                                          \
                "timeout", ITK_STEP_PARAM_INTEGER, #ms, NULL                                       \
        }
#define P_END                                                                                      \
        {                                                                                          \
                NULL, 0, NULL, NULL                                                                \
        }

static const ItkStepParam navigate_params[] = {
        { "url", ITK_STEP_PARAM_STRING, NULL, NULL },
        { "wait_until", ITK_STEP_PARAM_STRING, "\"load\"", wait_until_choices },
        { "wait_for", ITK_STEP_PARAM_STRING, NULL, wait_until_choices },
        P_TIMEOUT(30000),
        P_END,
};
static const ItkStepParam click_params[] = {
        P_SELECTOR,
        P_TIMEOUT(30000),
        { "force", ITK_STEP_PARAM_BOOLEAN, "false", NULL },
        P_END,
};
static const ItkStepParam fill_params[] = {
        P_SELECTOR,
        { "value", ITK_STEP_PARAM_STRING, NULL, NULL },
        P_TIMEOUT(30000),
        { "force", ITK_STEP_PARAM_BOOLEAN, "false", NULL },
        P_END,
};
static const ItkStepParam keyboard_params[] = {
        { "key", ITK_STEP_PARAM_STRING, NULL, NULL },
        { "text", ITK_STEP_PARAM_STRING, NULL, NULL },
        P_TIMEOUT(30000),
        P_END,
};
static const ItkStepParam upload_params[] = {
        P_SELECTOR,
        { "file_path", ITK_STEP_PARAM_STRING, NULL, NULL },
        P_TIMEOUT(30000),
        P_END,
};
static const ItkStepParam screenshot_params[] = {
        { "name", ITK_STEP_PARAM_STRING, NULL, NULL },
        { "path", ITK_STEP_PARAM_STRING, NULL, NULL },
        { "full_page", ITK_STEP_PARAM_BOOLEAN, "false", NULL },
        P_TIMEOUT(30000),
        P_END,
};
static const ItkStepParam wait_params[] = {
        P_SELECTOR,
        P_TIMEOUT(30000),
        { "state", ITK_STEP_PARAM_STRING, "\"visible\"", state_choices },
        P_END,
};
static const ItkStepParam verify_params[] = {
        P_SELECTOR,
        P_TIMEOUT(5000),
        { "exists", ITK_STEP_PARAM_BOOLEAN, "true", NULL },
        { "state", ITK_STEP_PARAM_STRING, NULL, state_choices },
        P_END,
};
static const ItkStepParam verify_text_params[] = {
        P_SELECTOR,
        P_TIMEOUT(5000),
        { "text", ITK_STEP_PARAM_STRING, NULL, NULL },
        { "match", ITK_STEP_PARAM_STRING, "\"contains\"", match_choices },
        P_END,
};
static const ItkStepParam verify_attribute_params[] = {
        P_SELECTOR,
        P_TIMEOUT(5000),
        { "attribute", ITK_STEP_PARAM_STRING, NULL, NULL },
        { "value", ITK_STEP_PARAM_STRING, NULL, NULL },
        P_END,
};
static const ItkStepParam discover_params[] = {
        { "selector", ITK_STEP_PARAM_SELECTOR, "\"body\"", NULL },
        { "types", ITK_STEP_PARAM_ANY, "[]", NULL },
        { "exclude_selectors", ITK_STEP_PARAM_ANY, "[]", NULL },
        P_END,
};

static const char *const req_url[] = { "url", NULL };
static const char *const req_selector[] = { "selector", NULL };
static const char *const req_fill[] = { "selector", "value", NULL };
static const char *const req_key[] = { "key|text", NULL };
static const char *const req_upload[] = { "selector", "file_path|file", NULL };
static const char *const req_text[] = { "selector", "text", NULL };
static const char *const req_attribute[] = { "selector", "attribute", NULL };

#define BROWSER(type, required, params)                                                            \
        {                                                                                          \
                type, NULL, TRUE, required, NULL, "browser", params                                \
        }

/* Mutable: the module fills in the run functions. */
static ItkStepHandler browser_handlers[] = {
        BROWSER("browser.navigate", req_url, navigate_params),
        BROWSER("browser.click", req_selector, click_params),
        BROWSER("browser.fill", req_fill, fill_params),
        BROWSER("browser.keyboard", req_key, keyboard_params),
        BROWSER("browser.file_upload", req_upload, upload_params),
        BROWSER("browser.screenshot", NULL, screenshot_params),
        BROWSER("browser.wait", req_selector, wait_params),
        BROWSER("browser.verify", req_selector, verify_params),
        BROWSER("browser.verify_text", req_text, verify_text_params),
        BROWSER("browser.verify_attribute", req_attribute, verify_attribute_params),
        BROWSER("browser.verify_state", req_selector, wait_params),
        BROWSER("perspective.discover_page", NULL, discover_params),
};

/* --- configuration (toolkit.conf [Browser]), kept here so that validation
 * and main.c need not load the module ---------------------------------------- */

static char *config_binary, *config_data_dir;
static guint config_idle = ITK_BROWSER_DEFAULT_IDLE_TIMEOUT;
static gboolean configured;

void
itk_browser_configure(const char *binary, const char *data_dir, guint idle_timeout_sec)
{
        if (configured)
                return;
        configured = TRUE;
        config_binary = g_strdup(binary);
        config_data_dir = g_strdup(data_dir);
        config_idle = idle_timeout_sec;
}

const char *
itk_browser_config_get_binary(void)
{
        const char *env = g_getenv("ITK_CHROMIUM");

        if (config_binary != NULL && *config_binary != '\0')
                return config_binary;
        return env != NULL && *env != '\0' ? env : ITK_BROWSER_DEFAULT_BINARY;
}

const char *
itk_browser_config_get_data_dir(void)
{
        return config_data_dir;
}

guint
itk_browser_config_get_idle_timeout(void)
{
        return config_idle;
}

gboolean
itk_browser_check_binary(const char *binary, GError **error)
{
        if (g_file_test(binary, G_FILE_TEST_IS_EXECUTABLE) &&
            !g_file_test(binary, G_FILE_TEST_IS_DIR))
                return TRUE;
        g_set_error(error, ITK_ERROR, ITK_ERROR_NOT_SUPPORTED,
                    "browser steps need Chromium, which is not installed (%s not found): "
                    "install the Debian package 'chromium'",
                    binary);
        return FALSE;
}

static gboolean
browser_check_available(GError **error)
{
        return itk_browser_check_binary(itk_browser_config_get_binary(), error);
}

static gboolean
browser_validate(const ItkStepHandler *handler, JsonObject *params, const char **param,
                 gssize *offset, GError **error)
{
        static const char *const selector_lists[] = { "exclude_selectors", NULL };

        for (const ItkStepParam *p = handler->params; p != NULL && p->name != NULL; p++) {
                JsonNode *node = json_object_get_member(params, p->name);
                const char *text;
                gsize at = 0;
                if (p->type != ITK_STEP_PARAM_SELECTOR || node == NULL ||
                    !JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING)
                        continue;
                text = json_node_get_string(node);
                if (strstr(text, "{{") != NULL)
                        continue; /* checked when it runs */
                if (!itk_selector_validate(text, &at, error)) {
                        *param = p->name;
                        *offset = (gssize)at;
                        return FALSE;
                }
        }
        for (guint i = 0; selector_lists[i] != NULL; i++) {
                JsonNode *node = json_object_get_member(params, selector_lists[i]);
                JsonArray *list;
                if (node == NULL || !JSON_NODE_HOLDS_ARRAY(node))
                        continue;
                list = json_node_get_array(node);
                for (guint j = 0; j < json_array_get_length(list); j++) {
                        JsonNode *item = json_array_get_element(list, j);
                        gsize at = 0;
                        if (!JSON_NODE_HOLDS_VALUE(item) ||
                            json_node_get_value_type(item) != G_TYPE_STRING ||
                            strstr(json_node_get_string(item), "{{") != NULL)
                                continue;
                        if (!itk_selector_validate(json_node_get_string(item), &at, error)) {
                                *param = selector_lists[i];
                                return FALSE;
                        }
                }
        }
        return TRUE;
}

static const char *const browser_prefixes[] = { "browser.", "perspective.", NULL };

static const ItkStepProvider browser_provider = {
        .name = "browser",
        .prefixes = browser_prefixes,
        .handlers = browser_handlers,
        .n_handlers = G_N_ELEMENTS(browser_handlers),
        .check_available = browser_check_available,
        .validate = browser_validate,
};

void
itk_step_browser_register(void)
{
        itk_step_registry_register_provider(&browser_provider);
}
