/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* STAND-IN for the selector helper's itk-selector.c: only the checks the
 * browser helper's tests need (empty selector, empty '>>' part, unbalanced
 * brackets and quotes). meson builds it only while itk-selector.c does not
 * exist; the lead deletes it when merging the real validator. */
#include <string.h>

#include "itk-error.h"
#include "itk-selector-standin.h"

static gboolean
fail(gsize offset, gsize *error_offset, GError **error, const char *message)
{
        *error_offset = offset;
        g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK, message);
        return FALSE;
}

gboolean
itk_selector_validate(const char *selector, gsize *error_offset, GError **error)
{
        GString *stack = g_string_new(NULL);
        gsize part_start = 0;
        gboolean part_empty = TRUE;
        char quote = 0;
        gboolean ok = TRUE;
        gsize i;

        for (i = 0; ok && selector[i] != '\0'; i++) {
                char c = selector[i];
                if (quote != 0) {
                        if (c == '\\' && selector[i + 1] != '\0')
                                i++;
                        else if (c == quote)
                                quote = 0;
                        continue;
                }
                if (c == '"' || c == '\'') {
                        quote = c;
                        part_empty = FALSE;
                } else if (c == '[' || c == '(') {
                        g_string_append_c(stack, c);
                        part_empty = FALSE;
                } else if (c == ']' || c == ')') {
                        char open = c == ']' ? '[' : '(';
                        if (stack->len == 0 || stack->str[stack->len - 1] != open)
                                ok = fail(i, error_offset, error,
                                          c == ']' ? "unbalanced ']' in selector"
                                                   : "unbalanced ')' in selector");
                        else
                                g_string_truncate(stack, stack->len - 1);
                } else if (stack->len == 0 && c == '>' && selector[i + 1] == '>') {
                        if (part_empty)
                                ok = fail(i, error_offset, error, "empty selector before '>>'");
                        part_start = i + 2;
                        part_empty = TRUE;
                        i++;
                } else if (!g_ascii_isspace(c)) {
                        part_empty = FALSE;
                }
        }
        if (ok && quote != 0)
                ok = fail(i, error_offset, error, "unterminated quote in selector");
        else if (ok && stack->len > 0)
                ok = fail(strrchr(selector, stack->str[stack->len - 1]) - selector, error_offset,
                          error,
                          stack->str[stack->len - 1] == '[' ? "unbalanced '[' in selector"
                                                            : "unbalanced '(' in selector");
        else if (ok && part_empty)
                ok = fail(part_start, error_offset, error,
                          part_start == 0 ? "empty selector" : "empty selector after '>>'");
        g_string_free(stack, TRUE);
        return ok;
}
