/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "itk-selector.h"

#include <string.h>

#include "itk-error.h"

/* The same walk as the page agent's parser (itk-page-agent.js), so that a
 * playbook that validates here is accepted by the agent and the reported
 * offsets agree. Offsets are bytes from the start of the whole selector. */

typedef struct {
        const char *text; /* the whole selector */
        gsize offset;     /* of the problem */
        char *message;
} ItkSelectorProblem;

static gboolean itk_selector_fail(ItkSelectorProblem *p, gsize offset, const char *format, ...)
        G_GNUC_PRINTF(3, 4);

static gboolean
itk_selector_fail(ItkSelectorProblem *p, gsize offset, const char *format, ...)
{
        va_list args;

        va_start(args, format);
        p->offset = offset;
        p->message = g_strdup_vprintf(format, args);
        va_end(args);
        return FALSE;
}

static gboolean
itk_selector_is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* A span of the selector: [start, end). */
typedef struct {
        gsize start;
        gsize end;
} ItkSpan;

static ItkSpan
itk_selector_trim(const char *s, ItkSpan span)
{
        while (span.start < span.end && itk_selector_is_space(s[span.start]))
                span.start++;
        while (span.end > span.start && itk_selector_is_space(s[span.end - 1]))
                span.end--;
        return span;
}

static gboolean
itk_selector_starts(const char *s, ItkSpan span, const char *prefix)
{
        gsize n = strlen(prefix);
        return span.end - span.start >= n && strncmp(s + span.start, prefix, n) == 0;
}

static gboolean
itk_selector_starts_ci(const char *s, gsize at, gsize end, const char *prefix)
{
        gsize n = strlen(prefix);
        return end - at >= n && g_ascii_strncasecmp(s + at, prefix, n) == 0;
}

/* An unquoted text= body is plain words: quotes and brackets in it
 * ("text=Don't save") mean nothing. TRUE when such a body starts at @i. */
static gboolean
itk_selector_plain_text_at(const char *s, gsize i, gsize end)
{
        while (i < end && itk_selector_is_space(s[i]))
                i++;
        if (end - i < 5 || strncmp(s + i, "text=", 5) != 0)
                return FALSE;
        i += 5;
        while (i < end && itk_selector_is_space(s[i]))
                i++;
        return i >= end || (s[i] != '"' && s[i] != '\'');
}

static gssize
itk_selector_find(const char *s, gsize i, gsize end, const char *needle)
{
        gsize n = strlen(needle);

        for (; i + n <= end; i++) {
                if (strncmp(s + i, needle, n) == 0)
                        return (gssize)i;
        }
        return -1;
}

/* Splits @span at top-level @sep (outside quotes, brackets, parentheses),
 * checking their balance. */
static gboolean
itk_selector_split(ItkSelectorProblem *p, ItkSpan span, const char *sep, GArray *out)
{
        const char *s = p->text;
        gsize sep_len = strlen(sep);
        g_autoptr(GArray) stack = g_array_new(FALSE, FALSE, sizeof(gsize));
        char quote = 0;
        gsize quote_at = 0;
        gsize start = span.start;

        for (gsize i = span.start; i < span.end; i++) {
                char c = s[i];

                if (strcmp(sep, ">>") == 0 && i == start &&
                    itk_selector_plain_text_at(s, i, span.end)) {
                        gssize next = itk_selector_find(s, i, span.end, ">>");
                        ItkSpan piece;

                        if (next < 0)
                                break;
                        piece = (ItkSpan){ start, (gsize)next };
                        g_array_append_val(out, piece);
                        start = (gsize)next + 2;
                        i = (gsize)next + 1;
                        continue;
                }
                if (quote != 0) {
                        if (c == '\\')
                                i++;
                        else if (c == quote)
                                quote = 0;
                        continue;
                }
                if (c == '\\') {
                        i++;
                } else if (c == '"' || c == '\'') {
                        quote = c;
                        quote_at = i;
                } else if (c == '[' || c == '(') {
                        g_array_append_val(stack, i);
                } else if (c == ']' || c == ')') {
                        char open = c == ']' ? '[' : '(';
                        if (stack->len == 0 ||
                            s[g_array_index(stack, gsize, stack->len - 1)] != open)
                                return itk_selector_fail(p, i, "unbalanced '%c' in selector", c);
                        g_array_set_size(stack, stack->len - 1);
                } else if (stack->len == 0 && span.end - i >= sep_len &&
                           strncmp(s + i, sep, sep_len) == 0) {
                        ItkSpan piece = { start, i };
                        g_array_append_val(out, piece);
                        i += sep_len - 1;
                        start = i + 1;
                }
        }
        if (quote != 0)
                return itk_selector_fail(p, quote_at, "unterminated %s quote in selector",
                                         quote == '"' ? "double" : "single");
        if (stack->len > 0) {
                gsize at = g_array_index(stack, gsize, stack->len - 1);
                return itk_selector_fail(p, at, "unbalanced '%c' in selector", s[at]);
        }
        {
                ItkSpan piece = { start, span.end };
                g_array_append_val(out, piece);
        }
        return TRUE;
}

static gboolean
itk_selector_is_quoted(const char *s, ItkSpan span)
{
        return span.end - span.start >= 2 && (s[span.start] == '"' || s[span.start] == '\'') &&
               s[span.end - 1] == s[span.start];
}

/* Index of the ')' closing the '(' just before @i, or -1. */
static gssize
itk_selector_close_paren(const char *s, gsize i, gsize end)
{
        int depth = 1;
        char quote = 0;

        for (; i < end; i++) {
                char c = s[i];
                if (quote != 0) {
                        if (c == '\\')
                                i++;
                        else if (c == quote)
                                quote = 0;
                } else if (c == '\\') {
                        i++;
                } else if (c == '"' || c == '\'') {
                        quote = c;
                } else if (c == '(') {
                        depth++;
                } else if (c == ')' && --depth == 0) {
                        return (gssize)i;
                }
        }
        return -1;
}

static gboolean
itk_selector_has_text_arg(ItkSelectorProblem *p, gsize start, gsize end)
{
        ItkSpan arg = itk_selector_trim(p->text, (ItkSpan){ start, end });

        if (arg.start == arg.end)
                return itk_selector_fail(p, start, "empty argument of :has-text()");
        return TRUE;
}

#define ITK_HAS_TEXT ":has-text("
#define ITK_NOT_HAS_TEXT ":not(:has-text("

/* One compound: only the custom pseudo-classes need a look; brackets and
 * quotes balance already. */
static gboolean
itk_selector_compound(ItkSelectorProblem *p, gsize start, gsize end)
{
        const char *s = p->text;

        for (gsize i = start; i < end;) {
                char c = s[i];

                if (itk_selector_starts_ci(s, i, end, ITK_NOT_HAS_TEXT)) {
                        gsize open = i + strlen(ITK_NOT_HAS_TEXT);
                        gssize close = itk_selector_close_paren(s, open, end);
                        if (close < 0 || (gsize)close + 1 >= end || s[close + 1] != ')')
                                return itk_selector_fail(
                                        p, i, ":not(:has-text()) must hold only :has-text()");
                        if (!itk_selector_has_text_arg(p, open, (gsize)close))
                                return FALSE;
                        i = (gsize)close + 2;
                        continue;
                }
                if (itk_selector_starts_ci(s, i, end, ITK_HAS_TEXT)) {
                        gsize open = i + strlen(ITK_HAS_TEXT);
                        gssize close = itk_selector_close_paren(s, open, end);
                        if (close < 0)
                                return itk_selector_fail(p, open - 1, "unbalanced '(' in selector");
                        if (!itk_selector_has_text_arg(p, open, (gsize)close))
                                return FALSE;
                        i = (gsize)close + 1;
                        continue;
                }
                if (c == '(') {
                        gssize close = itk_selector_close_paren(s, i + 1, end);
                        gsize stop = close < 0 ? end : (gsize)close;
                        for (gsize j = i; j < stop; j++) {
                                if (itk_selector_starts_ci(s, j, stop, ITK_HAS_TEXT))
                                        return itk_selector_fail(
                                                p, i,
                                                ":has-text() is not supported inside this "
                                                "pseudo-class");
                        }
                        i = stop + 1;
                        continue;
                }
                i += c == '\\' ? 2 : 1;
        }
        return TRUE;
}

/* Compounds joined by whitespace or > + ~ at top level. */
static gboolean
itk_selector_complex(ItkSelectorProblem *p, ItkSpan span)
{
        const char *s = p->text;
        gsize compounds = 0;
        char pending = 0;
        gsize cur_start = 0;
        gboolean in_cur = FALSE;
        int depth = 0;
        char quote = 0;

        for (gsize i = span.start; i <= span.end; i++) {
                char c = i < span.end ? s[i] : ' ';
                gboolean separator;

                if (quote != 0) {
                        if (c == '\\')
                                i++;
                        else if (c == quote)
                                quote = 0;
                        continue;
                }
                if (c == '\\') {
                        if (!in_cur) {
                                in_cur = TRUE;
                                cur_start = i;
                        }
                        i++;
                        continue;
                }
                if (c == '"' || c == '\'') {
                        quote = c;
                        if (!in_cur) {
                                in_cur = TRUE;
                                cur_start = i;
                        }
                        continue;
                }
                if (c == '[' || c == '(')
                        depth++;
                else if (c == ']' || c == ')')
                        depth--;
                separator = depth == 0 && (c == '>' || c == '+' || c == '~' ||
                                           itk_selector_is_space(c) || i == span.end);
                if (!separator) {
                        if (!in_cur) {
                                in_cur = TRUE;
                                cur_start = i;
                        }
                        continue;
                }
                if (in_cur) {
                        if (!itk_selector_compound(p, cur_start, i))
                                return FALSE;
                        compounds++;
                        in_cur = FALSE;
                        pending = 0;
                }
                if (i < span.end && (c == '>' || c == '+' || c == '~')) {
                        if (compounds == 0)
                                return itk_selector_fail(p, i, "selector starts with '%c'", c);
                        if (pending != 0)
                                return itk_selector_fail(p, i,
                                                         "two combinators in a row ('%c' and '%c')",
                                                         pending, c);
                        pending = c;
                }
        }
        if (pending != 0)
                return itk_selector_fail(p, span.end, "selector ends with '%c'", pending);
        return TRUE;
}

static gboolean
itk_selector_css(ItkSelectorProblem *p, ItkSpan span)
{
        g_autoptr(GArray) list = g_array_new(FALSE, FALSE, sizeof(ItkSpan));

        if (!itk_selector_split(p, span, ",", list))
                return FALSE;
        for (guint i = 0; i < list->len; i++) {
                ItkSpan raw = g_array_index(list, ItkSpan, i);
                ItkSpan piece = itk_selector_trim(p->text, raw);

                if (piece.start == piece.end)
                        return itk_selector_fail(p, piece.start, "empty selector in ',' list");
                if (!itk_selector_complex(p, piece))
                        return FALSE;
        }
        return TRUE;
}

static gboolean
itk_selector_part(ItkSelectorProblem *p, ItkSpan part)
{
        const char *s = p->text;

        if (itk_selector_starts(s, part, "text=")) {
                ItkSpan body = itk_selector_trim(s, (ItkSpan){ part.start + 5, part.end });
                if (body.start == body.end)
                        return itk_selector_fail(p, part.start + 5, "empty text after 'text='");
                return TRUE;
        }
        if (itk_selector_is_quoted(s, part))
                return TRUE;
        if (itk_selector_starts(s, part, "css=")) {
                ItkSpan css = itk_selector_trim(s, (ItkSpan){ part.start + 4, part.end });
                if (css.start == css.end)
                        return itk_selector_fail(p, part.start + 4, "empty selector after 'css='");
                return itk_selector_css(p, css);
        }
        return itk_selector_css(p, part);
}

static gboolean
itk_selector_check(ItkSelectorProblem *p)
{
        gsize len = strlen(p->text);
        ItkSpan all = itk_selector_trim(p->text, (ItkSpan){ 0, len });
        g_autoptr(GArray) chain = g_array_new(FALSE, FALSE, sizeof(ItkSpan));

        if (all.start == all.end)
                return itk_selector_fail(p, 0, "empty selector");
        if (!itk_selector_split(p, (ItkSpan){ 0, len }, ">>", chain))
                return FALSE;
        for (guint i = 0; i < chain->len; i++) {
                ItkSpan part = itk_selector_trim(p->text, g_array_index(chain, ItkSpan, i));

                if (part.start == part.end)
                        return itk_selector_fail(p, part.start,
                                                 i == 0 ? "empty selector before '>>'"
                                                        : "empty selector after '>>'");
                if (!itk_selector_part(p, part))
                        return FALSE;
        }
        return TRUE;
}

gboolean
itk_selector_validate(const char *selector, gsize *error_offset, GError **error)
{
        ItkSelectorProblem p = { selector != NULL ? selector : "", 0, NULL };

        if (selector == NULL || !g_utf8_validate(selector, -1, NULL)) {
                if (error_offset != NULL)
                        *error_offset = 0;
                g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK,
                                    "selector is not valid UTF-8 text");
                return FALSE;
        }
        if (itk_selector_check(&p))
                return TRUE;
        if (error_offset != NULL)
                *error_offset = p.offset;
        g_set_error_literal(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK, p.message);
        g_free(p.message);
        return FALSE;
}
