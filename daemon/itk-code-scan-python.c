/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Python scanner of itk-code-template.h: string literals of every kind,
 * f-string fields, comments and code. */
#include <string.h>

#include "itk-code-template-private.h"

static const char *const py_why_field = "stands inside an f-string replacement field";
static const char *const py_why_backslash = "stands right after a backslash";
static const char *const py_why_joined = "is joined to a name, a number or another reference";

static gboolean
py_is_ident_byte(char c)
{
        return is_name_char(c) || (guchar)c >= 0x80;
}

/* Skips an f-string replacement field from its '{' at @p. */
static gsize
py_skip_field(ItkCodeLexer *lx, gsize p, gsize end)
{
        int depth = 0;

        while (p < end) {
                ItkCodeHole *h = lx_hole_at(lx, p);
                char c;

                if (h != NULL) {
                        lx_refuse(h, py_why_field);
                        p = h->end;
                        continue;
                }
                c = lx->text[p];
                if (c == '{' || c == '[' || c == '(') {
                        depth++;
                } else if (c == '}' || c == ']' || c == ')') {
                        if (--depth == 0 && c == '}')
                                return p + 1;
                } else if (c == '\'' || c == '"') {
                        /* A string inside the field (another quote than the
                         * f-string's before Python 3.12). */
                        gsize q = p + 1;
                        while (q < end && lx->text[q] != c && lx->text[q] != '\n')
                                q += lx->text[q] == '\\' ? 2 : 1;
                        lx_refuse_range(lx, p, MIN(q, end), py_why_field);
                        p = q;
                } else if (c == '\n' && depth <= 0) {
                        return p;
                }
                p++;
        }
        return end;
}

/* A string literal whose opening quote is at @p, @prefix before it. */
static gsize
py_lex_string(ItkCodeLexer *lx, gsize p, gsize end, const char *prefix, gsize prefix_len)
{
        char quote = lx->text[p];
        gboolean triple = lx_peek(lx, p + 1, end) == quote && lx_peek(lx, p + 2, end) == quote;
        gboolean raw = FALSE, bytes = FALSE, fstring = FALSE;

        for (gsize i = 0; i < prefix_len; i++) {
                char c = g_ascii_tolower(prefix[i]);
                raw |= c == 'r';
                bytes |= c == 'b';
                fstring |= c == 'f';
        }
        p += triple ? 3 : 1;
        while (p < end) {
                ItkCodeHole *h = lx_hole_at(lx, p);
                char c;

                if (h != NULL) {
                        if (lx_admit(lx, h)) {
                                h->kind = ITK_CODE_HOLE_PY_STRING;
                                h->quote = quote;
                                h->triple = triple;
                                h->raw = raw;
                                h->bytes = bytes;
                                h->fstring = fstring;
                                memcpy(h->prefix, prefix, MIN(prefix_len, 2));
                                h->prefix[MIN(prefix_len, 2)] = '\0';
                        }
                        p = h->end;
                        continue;
                }
                c = lx->text[p];
                if (c == '\\') {
                        ItkCodeHole *next = lx_hole_at(lx, p + 1);
                        if (next != NULL) {
                                lx_refuse(next, py_why_backslash);
                                p++;
                        } else {
                                p += 2;
                        }
                } else if (c == quote) {
                        if (!triple)
                                return p + 1;
                        if (lx_peek(lx, p + 1, end) == quote && lx_peek(lx, p + 2, end) == quote)
                                return p + 3;
                        p++;
                } else if (fstring && c == '{') {
                        if (lx_peek(lx, p + 1, end) == '{')
                                p += 2;
                        else
                                p = py_skip_field(lx, p, end);
                } else if (c == '\n' && !triple) {
                        return p; /* a syntax error: nothing runs */
                } else {
                        p++;
                }
        }
        return end;
}

static gboolean
py_is_prefix(const char *s, gsize len)
{
        static const char *const prefixes[] = { "r", "u", "b", "f", "br", "rb", "fr", "rf", NULL };
        char lower[3];

        if (len == 0 || len > 2)
                return FALSE;
        for (gsize i = 0; i < len; i++)
                lower[i] = g_ascii_tolower(s[i]);
        lower[len] = '\0';
        return g_strv_contains(prefixes, lower);
}

void
itk_code_scan_python(ItkCodeLexer *lx)
{
        gsize p = 0;
        gsize end = lx->len;

        while (p < end) {
                ItkCodeHole *h = lx_hole_at(lx, p);
                char c;

                if (h != NULL) {
                        ItkCodeHole *first = &g_array_index(lx->holes, ItkCodeHole, 0);
                        gboolean after_hole = h > first && (h - 1)->end == p;
                        char before = p > 0 ? lx->text[p - 1] : ' ';
                        char after = h->end < end ? lx->text[h->end] : ' ';

                        /* 'x{{ n }}' would extend a name, '1.{{ n }}' and
                         * '{{ n }}.5' a number, '{{ a }}{{ b }}' one value. */
                        if (py_is_ident_byte(before) || before == '.' || after_hole ||
                            py_is_ident_byte(after) || lx_hole_at(lx, h->end) != NULL ||
                            (after == '.' && h->end + 1 < end &&
                             g_ascii_isdigit(lx->text[h->end + 1])))
                                lx_refuse(h, py_why_joined);
                        if (p > 0 && lx->text[p - 1] == '\\')
                                lx_refuse(h, py_why_backslash);
                        if (lx_admit(lx, h))
                                h->kind = ITK_CODE_HOLE_PY_CODE;
                        p = h->end;
                        continue;
                }
                c = lx->text[p];
                if (c == '#') {
                        while (p < end && lx->text[p] != '\n' && lx->text[p] != '\r') {
                                ItkCodeHole *in = lx_hole_at(lx, p);
                                if (in != NULL) {
                                        if (lx_admit(lx, in))
                                                in->kind = ITK_CODE_HOLE_PY_COMMENT;
                                        p = in->end;
                                } else {
                                        p++;
                                }
                        }
                } else if (c == '\'' || c == '"') {
                        p = py_lex_string(lx, p, end, "", 0);
                } else if (py_is_ident_byte(c)) {
                        gsize start = p;
                        while (p < end && py_is_ident_byte(lx->text[p]) && !lx_hole_at(lx, p))
                                p++;
                        if (p < end && (lx->text[p] == '\'' || lx->text[p] == '"') &&
                            py_is_prefix(lx->text + start, p - start))
                                p = py_lex_string(lx, p, end, lx->text + start, p - start);
                } else if (c == '\\') {
                        p += lx_hole_at(lx, p + 1) != NULL ? 1 : 2;
                } else {
                        p++;
                }
        }
}
