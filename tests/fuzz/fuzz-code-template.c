/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target for references inside code: the input is scanned and
 * rendered as a shell command and as a Python script, with a value full of
 * metacharacters. The scanner's verdict and the renderer's must agree. */
#include <stddef.h>
#include <stdint.h>

#include "itk-code-template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const ItkCodeLanguage languages[] = { ITK_CODE_LANGUAGE_SHELL,
                                                     ITK_CODE_LANGUAGE_PYTHON };
        g_autofree char *text = NULL;
        g_autoptr(JsonObject) parameters = json_object_new();
        ItkTemplateScope scope = { 0 };

        if (size > 64 * 1024)
                return 0;
        text = g_strndup((const char *)data, size);
        json_object_set_string_member(parameters, "x", "'\"`$(x)\\\n{{ x }}}'''\"\"\"");
        scope.parameters = parameters;
        for (guint i = 0; i < G_N_ELEMENTS(languages); i++) {
                g_autoptr(GPtrArray) problems = itk_code_template_check(languages[i], text);
                g_autoptr(GError) error = NULL;
                g_autofree char *out =
                        itk_code_template_render_text(&scope, languages[i], text, &error);

                /* Refused by the check: refused by the renderer. */
                if (problems->len > 0)
                        g_assert_null(out);
        }
        return 0;
}
