/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The POSIX sh scanner of itk-code-template.h: follows quotes, substitutions,
 * here-documents and comments to find where each reference stands. */
#include <string.h>

#include "itk-code-template-private.h"

#define SH_CMDSUB 1u   /* a $(...) body: ends at an unmatched ')' */
#define SH_BQ 2u       /* inside a `...` body: \\ \$ \` stand for \ $ ` */
#define SH_UNDER_DQ 4u /* some enclosing level is "..." */
#define SH_NO_REFS 8u  /* $((...)): no reference may stand here */

static const char *const sh_why_comment = "stands inside a comment";
static const char *const sh_why_heredoc = "stands inside a here-document";
static const char *const sh_why_heredoc_word = "stands in a here-document delimiter";
static const char *const sh_why_backslash = "stands right after a backslash";
static const char *const sh_why_dollar = "stands right after '$' or in a variable name";
static const char *const sh_why_ansi = "stands inside $'...'";
static const char *const sh_why_param = "stands inside ${...}";
static const char *const sh_why_arith = "stands inside $((...)) or another arithmetic";
static const char *const sh_why_assign = "stands in a name followed by '=' (an assignment)";
static const char *const sh_why_bq = "stands inside `...` within \"...\" or another `...` "
                                     "(use $(...))";

typedef struct {
        char *word;
        gboolean strip_tabs;
} Heredoc;

static void
heredoc_free(gpointer data)
{
        Heredoc *h = data;
        g_free(h->word);
        g_free(h);
}

static gsize sh_lex_list(ItkCodeLexer *lx, gsize p, gsize end, guint flags, int depth);

/* After a '\' at @p (unquoted or in "..."). Returns where scanning goes on.
 * In a `...` body, \$ \` \\ are one character of the inner text. */
static gsize
sh_backslash(ItkCodeLexer *lx, gsize p, gsize end, guint flags)
{
        ItkCodeHole *next = lx_hole_at(lx, p + 1);
        char c;

        if (next != NULL) {
                lx_refuse(next, sh_why_backslash);
                return p + 1;
        }
        if (p + 1 >= end)
                return end;
        c = lx->text[p + 1];
        if ((flags & SH_BQ) != 0) {
                if (c == '$')
                        return p + 1; /* an active '$' of the inner text */
                if (c == '`') {
                        /* A nested backquote: not followed. */
                        lx_refuse_range(lx, p, end, sh_why_bq);
                        return end;
                }
                if (c == '\\') {
                        /* An active backslash of the inner text: it escapes the
                         * next inner character, which may itself be \X. */
                        ItkCodeHole *h = lx_hole_at(lx, p + 2);
                        if (h != NULL) {
                                lx_refuse(h, sh_why_backslash);
                                return p + 2;
                        }
                        if (p + 3 < end && lx->text[p + 2] == '\\' &&
                            strchr("\\$`", lx->text[p + 3]) != NULL &&
                            lx_hole_at(lx, p + 3) == NULL)
                                return p + 4;
                        return MIN(p + 3, end);
                }
        }
        return p + 2;
}

/* Refuses @h when "$" or "$name" comes right before it. */
static void
sh_check_after_dollar(ItkCodeLexer *lx, ItkCodeHole *h, gsize from)
{
        gsize q = h->start;

        while (q > from && is_name_char(lx->text[q - 1]))
                q--;
        if (q > from && lx->text[q - 1] == '$')
                lx_refuse(h, sh_why_dollar);
}

static gsize
sh_lex_squote(ItkCodeLexer *lx, gsize p, gsize end, guint flags)
{
        gsize open = p;

        while (p < end) {
                ItkCodeHole *h = lx_hole_at(lx, p);
                if (h != NULL) {
                        if ((flags & SH_NO_REFS) != 0)
                                lx_refuse(h, sh_why_arith);
                        if (lx_admit(lx, h)) {
                                h->kind = ITK_CODE_HOLE_SHELL;
                                h->quoting = ITK_SHELL_SINGLE_QUOTED;
                                h->in_backquotes = (flags & SH_BQ) != 0;
                        }
                        p = h->end;
                        continue;
                }
                if (lx->text[p] == '\'')
                        return p + 1;
                if (lx->text[p] == '\n' && lx->pending_heredocs > 0)
                        lx_poison(lx, sh_why_heredoc);
                p++;
        }
        lx_refuse_range(lx, open, end, "stands in an unterminated quote");
        return end;
}

/* `...` starting at @p (the backquote). */
static gsize
sh_lex_backquote(ItkCodeLexer *lx, gsize p, gsize end, guint flags)
{
        gsize q = p + 1;

        /* The body ends at the first unescaped backquote, whatever quotes
         * it holds: find it first, then scan the body. */
        while (q < end && lx->text[q] != '`')
                q += lx->text[q] == '\\' ? 2 : 1;
        if (q >= end) {
                lx_poison(lx, "stands after an unterminated `...`");
                q = end;
        }
        if ((flags & (SH_BQ | SH_UNDER_DQ)) != 0)
                lx_refuse_range(lx, p + 1, q, sh_why_bq);
        else
                sh_lex_list(lx, p + 1, q, flags | SH_BQ, -1);
        return MIN(q + 1, end);
}

/* '$' at @p. */
static gsize
sh_lex_dollar(ItkCodeLexer *lx, gsize p, gsize end, guint flags, gboolean in_dq)
{
        ItkCodeHole *next = lx_hole_at(lx, p + 1);
        char c = lx_peek(lx, p + 1, end);
        guint inner = flags & ~SH_CMDSUB;

        if (next != NULL) {
                lx_refuse(next, sh_why_dollar);
                return p + 1;
        }
        if (c == '(' && lx_peek(lx, p + 2, end) == '(')
                return sh_lex_list(lx, p + 3, end, inner | SH_CMDSUB | SH_NO_REFS, 1);
        if (c == '(')
                return sh_lex_list(lx, p + 2, end, inner | SH_CMDSUB, 0);
        if (c == '{') {
                gsize q = p + 2;
                while (q < end && lx->text[q] != '}') {
                        if (strchr("'\"\\`$", lx->text[q]) != NULL && lx_hole_at(lx, q) == NULL) {
                                static const char *const why =
                                        "stands inside or after a ${...} holding quotes or "
                                        "substitutions";
                                lx_refuse_range(lx, p, end, why);
                                lx_poison(lx, why);
                                return end;
                        }
                        q++;
                }
                lx_refuse_range(lx, p, q, sh_why_param);
                return MIN(q + 1, end);
        }
        if (c == '[') {
                /* bash's old $[...] arithmetic. */
                gsize q = p + 2;
                while (q < end && lx->text[q] != ']') {
                        /* dash reads $[ as text, so quotes in it are quotes
                         * there and not in bash: nothing after is certain. */
                        if (strchr("'\"\\`$", lx->text[q]) != NULL) {
                                static const char *const why =
                                        "stands inside or after a $[...] holding quotes";
                                lx_refuse_range(lx, p, end, why);
                                lx_poison(lx, why);
                                return end;
                        }
                        q++;
                }
                lx_refuse_range(lx, p, q, sh_why_arith);
                return MIN(q + 1, end);
        }
        if (c == '\'' && !in_dq) {
                gsize q = p + 2;
                while (q < end && lx->text[q] != '\'') {
                        /* bash ends $'...' after \' and dash does not: after a
                         * backslash the two read different code. */
                        if (lx->text[q] == '\\')
                                lx_poison(lx, "stands after a $'...' holding a backslash");
                        q++;
                }
                lx_refuse_range(lx, p, q, sh_why_ansi);
                return MIN(q + 1, end);
        }
        return p + 1;
}

static gsize
sh_lex_dquote(ItkCodeLexer *lx, gsize p, gsize end, guint flags)
{
        gsize open = p;

        while (p < end) {
                ItkCodeHole *h = lx_hole_at(lx, p);
                char c;

                if (h != NULL) {
                        if ((flags & SH_NO_REFS) != 0)
                                lx_refuse(h, sh_why_arith);
                        sh_check_after_dollar(lx, h, open);
                        if (lx_admit(lx, h)) {
                                h->kind = ITK_CODE_HOLE_SHELL;
                                h->quoting = ITK_SHELL_DOUBLE_QUOTED;
                                h->in_backquotes = (flags & SH_BQ) != 0;
                        }
                        p = h->end;
                        continue;
                }
                c = lx->text[p];
                switch (c) {
                case '"':
                        return p + 1;
                case '\\':
                        p = sh_backslash(lx, p, end, flags);
                        break;
                case '$':
                        p = sh_lex_dollar(lx, p, end, flags | SH_UNDER_DQ, TRUE);
                        break;
                case '`':
                        p = sh_lex_backquote(lx, p, end, flags | SH_UNDER_DQ);
                        break;
                case '\n':
                        if (lx->pending_heredocs > 0)
                                lx_poison(lx, sh_why_heredoc);
                        p++;
                        break;
                default:
                        p++;
                        break;
                }
        }
        lx_refuse_range(lx, open, end, "stands in an unterminated quote");
        return end;
}

/* A here-document's delimiter word after "<<" / "<<-" at @p. */
static gsize
sh_read_heredoc_word(ItkCodeLexer *lx, gsize p, gsize end, GPtrArray *pending)
{
        g_autoptr(GString) word = g_string_new(NULL);
        Heredoc *heredoc;
        gboolean strip_tabs = FALSE;
        char quote = 0;

        if (lx_peek(lx, p, end) == '-') {
                strip_tabs = TRUE;
                p++;
        }
        while (p < end && (lx->text[p] == ' ' || lx->text[p] == '\t') && !lx_hole_at(lx, p))
                p++;
        while (p < end) {
                ItkCodeHole *h = lx_hole_at(lx, p);
                char c = lx->text[p];

                if (h != NULL) {
                        lx_refuse(h, sh_why_heredoc_word);
                        lx_poison(lx, sh_why_heredoc);
                        p = h->end;
                        continue;
                }
                if (quote != 0) {
                        if (c == quote)
                                quote = 0;
                        else
                                g_string_append_c(word, c);
                        p++;
                        continue;
                }
                if (c == '\'' || c == '"') {
                        quote = c;
                        p++;
                        continue;
                }
                if (c == '\\' && p + 1 < end) {
                        g_string_append_c(word, lx->text[p + 1]);
                        p += 2;
                        continue;
                }
                if (strchr(" \t\n;&|<>()`$", c) != NULL)
                        break;
                g_string_append_c(word, c);
                p++;
        }
        if (word->len == 0 || quote != 0) {
                lx_poison(lx, sh_why_heredoc);
                return p;
        }
        heredoc = g_new0(Heredoc, 1);
        heredoc->word = g_string_free(g_steal_pointer(&word), FALSE);
        heredoc->strip_tabs = strip_tabs;
        g_ptr_array_add(pending, heredoc);
        lx->pending_heredocs++;
        return p;
}

/* The bodies of @pending, from @p (just after the newline). */
static gsize
sh_read_heredoc_bodies(ItkCodeLexer *lx, gsize p, gsize end, GPtrArray *pending)
{
        for (guint i = 0; i < pending->len; i++) {
                const Heredoc *heredoc = g_ptr_array_index(pending, i);
                gboolean found = FALSE;

                while (p < end && !found) {
                        const char *nl = memchr(lx->text + p, '\n', end - p);
                        gsize line_end = nl != NULL ? (gsize)(nl - lx->text) : end;
                        gsize q = p;

                        lx_refuse_range(lx, p, line_end, sh_why_heredoc);
                        if (heredoc->strip_tabs)
                                while (q < line_end && lx->text[q] == '\t')
                                        q++;
                        found = line_end - q == strlen(heredoc->word) &&
                                memcmp(lx->text + q, heredoc->word, line_end - q) == 0;
                        p = nl != NULL ? line_end + 1 : end;
                }
                lx->pending_heredocs--;
        }
        g_ptr_array_set_size(pending, 0);
        return p;
}

/* TRUE when the unquoted word at @p is @word. */
static gboolean
sh_word_is(ItkCodeLexer *lx, gsize p, gsize end, const char *word)
{
        gsize len = strlen(word);

        return p + len <= end && memcmp(lx->text + p, word, len) == 0 &&
               (p + len == end || strchr(" \t\n;&|", lx->text[p + len]) != NULL);
}

/* A command list from @p up to @end; with SH_CMDSUB it ends after the ')'
 * that closes the substitution (@depth: parentheses already open, -1 for a
 * `...` body). Returns where the caller goes on. */
static gsize
sh_lex_list(ItkCodeLexer *lx, gsize p, gsize end, guint flags, int depth)
{
        g_autoptr(GPtrArray) pending = g_ptr_array_new_with_free_func(heredoc_free);
        gboolean word_start = TRUE;
        gsize word_begin = p;
        gsize start = p;

        while (p < end) {
                ItkCodeHole *h = lx_hole_at(lx, p);
                char c;

                if (h != NULL) {
                        if ((flags & SH_NO_REFS) != 0)
                                lx_refuse(h, sh_why_arith);
                        if (word_start)
                                word_begin = p;
                        sh_check_after_dollar(lx, h, word_begin);
                        {
                                /* name{{ x }}name= : the value would be an
                                 * assignment's name (or look like one). */
                                gboolean name_before = TRUE;
                                gsize q;

                                for (q = word_begin; q < p; q++) {
                                        ItkCodeHole *other = lx_hole_at(lx, q);
                                        if (other != NULL) {
                                                q = other->end - 1;
                                                continue;
                                        }
                                        if (!is_name_char(lx->text[q]))
                                                name_before = FALSE;
                                }
                                q = h->end;
                                while (q < end) {
                                        ItkCodeHole *other = lx_hole_at(lx, q);
                                        if (other != NULL)
                                                q = other->end;
                                        else if (is_name_char(lx->text[q]))
                                                q++;
                                        else
                                                break;
                                }
                                if (name_before && q < end && lx->text[q] == '=')
                                        lx_refuse(h, sh_why_assign);
                        }
                        if (lx_admit(lx, h)) {
                                h->kind = ITK_CODE_HOLE_SHELL;
                                h->quoting = ITK_SHELL_BARE;
                                h->in_backquotes = (flags & SH_BQ) != 0;
                        }
                        word_start = FALSE;
                        p = h->end;
                        continue;
                }
                c = lx->text[p];
                if (word_start && c != ' ' && c != '\t' && c != '\n')
                        word_begin = p;
                switch (c) {
                case '\\':
                        p = sh_backslash(lx, p, end, flags);
                        word_start = FALSE;
                        break;
                case '\'':
                        p = sh_lex_squote(lx, p + 1, end, flags);
                        word_start = FALSE;
                        break;
                case '"':
                        p = sh_lex_dquote(lx, p + 1, end, flags);
                        word_start = FALSE;
                        break;
                case '`':
                        p = sh_lex_backquote(lx, p, end, flags);
                        word_start = FALSE;
                        break;
                case '$':
                        p = sh_lex_dollar(lx, p, end, flags, FALSE);
                        word_start = FALSE;
                        break;
                case '#':
                        if (word_start) {
                                gsize q = p;
                                while (q < end && lx->text[q] != '\n')
                                        q++;
                                p = lx_refuse_range(lx, p, q, sh_why_comment);
                        } else {
                                p++;
                        }
                        break;
                case '\n':
                        p++;
                        word_start = TRUE;
                        if (pending->len > 0)
                                p = sh_read_heredoc_bodies(lx, p, end, pending);
                        break;
                case '(':
                        if (word_start && lx_peek(lx, p + 1, end) == '(') {
                                /* bash's (( arithmetic )). */
                                p = sh_lex_list(lx, p + 2, end,
                                                (flags & ~SH_CMDSUB) | SH_CMDSUB | SH_NO_REFS, 1);
                                word_start = TRUE;
                                break;
                        }
                        /* bash reads name=( as an array and, after a syntax
                         * error in one, goes on at the next line: what
                         * follows is not read as this scanner reads it. */
                        if (!word_start && p > 0 && lx->text[p - 1] == '=' &&
                            lx_hole_at(lx, p) == NULL)
                                lx_poison(lx, "stands after 'name=(' (a bash array)");
                        if (depth >= 0)
                                depth++;
                        word_start = TRUE;
                        p++;
                        break;
                case ')':
                        word_start = TRUE;
                        p++;
                        if ((flags & SH_CMDSUB) != 0 && depth-- == 0) {
                                if (pending->len > 0)
                                        lx_poison(lx, sh_why_heredoc);
                                return p;
                        }
                        break;
                case '<':
                        word_start = TRUE;
                        if (lx_peek(lx, p + 1, end) == '<' && (flags & SH_NO_REFS) == 0) {
                                if (lx_peek(lx, p + 2, end) == '<') {
                                        lx_poison(lx, "stands after a '<<<'");
                                        p += 3;
                                } else {
                                        p = sh_read_heredoc_word(lx, p + 2, end, pending);
                                }
                        } else {
                                p++;
                        }
                        break;
                case ' ':
                case '\t':
                case ';':
                case '&':
                case '|':
                case '>':
                        word_start = TRUE;
                        p++;
                        break;
                default:
                        /* bash evaluates the operands of [[ -eq ]] and let as
                         * arithmetic, where a[$(cmd)] runs cmd, quoted or not. */
                        if (word_start &&
                            (sh_word_is(lx, p, end, "[[") || sh_word_is(lx, p, end, "let")))
                                lx_poison(lx, "stands after '[[' or 'let' (bash runs code in "
                                              "their arithmetic operands)");
                        /* case ... in a) ...: the pattern's ')' would end the
                         * substitution for this scanner but not for sh. */
                        if (word_start && (flags & SH_CMDSUB) != 0 &&
                            sh_word_is(lx, p, end, "case"))
                                lx_poison(lx, "stands after 'case' inside $(...) (use "
                                              "argv or env)");
                        word_start = FALSE;
                        p++;
                        break;
                }
        }
        if ((flags & SH_CMDSUB) != 0)
                lx_refuse_range(lx, start, end, "stands in an unterminated $(...)");
        if (pending->len > 0) {
                lx->pending_heredocs -= pending->len;
                lx_poison(lx, sh_why_heredoc);
        }
        return end;
}

void
itk_code_scan_shell(ItkCodeLexer *lx)
{
        sh_lex_list(lx, 0, lx->len, 0, 0);
}
