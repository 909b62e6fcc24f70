/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <math.h>
#include <string.h>

#include "itk-code-template.h"
#include "itk-error.h"
#include "itk-value.h"

ItkCodeLanguage
itk_code_language_for(const char *step_type, const char *param_name)
{
        if (step_type == NULL || param_name == NULL)
                return ITK_CODE_LANGUAGE_NONE;
        if (g_str_equal(step_type, "utility.shell") && g_str_equal(param_name, "command"))
                return ITK_CODE_LANGUAGE_SHELL;
        if (g_str_equal(step_type, "utility.python") &&
            (g_str_equal(param_name, "script") || g_str_equal(param_name, "code")))
                return ITK_CODE_LANGUAGE_PYTHON;
        /* argv elements and env values reach no parser: plain rendering. */
        return ITK_CODE_LANGUAGE_NONE;
}

void
itk_code_problem_free(ItkCodeProblem *problem)
{
        if (problem == NULL)
                return;
        g_free(problem->message);
        g_free(problem);
}

/* --- Holes: the references of one text and the context of each ----------------- */

typedef enum {
        HOLE_UNREACHED, /* the scanner never got there: refused */
        HOLE_REFUSED,
        HOLE_SHELL,
        HOLE_PY_CODE,
        HOLE_PY_COMMENT,
        HOLE_PY_STRING,
} HoleKind;

typedef struct {
        gsize start; /* "{{" */
        gsize end;   /* after "}}" */
        HoleKind kind;
        const char *problem; /* HOLE_REFUSED: why, a static phrase */
        /* HOLE_SHELL */
        ItkShellQuoting quoting;
        gboolean in_backquotes;
        /* HOLE_PY_STRING */
        char quote;
        gboolean triple;
        gboolean raw;
        gboolean bytes;
        gboolean fstring;
        char prefix[3];
} Hole;

typedef struct {
        const char *text;
        gsize len;
        GArray *holes; /* Hole, in order, not overlapping */
        /* Set once the scanner cannot follow the text exactly any more:
         * every later reference is refused with this phrase. */
        const char *poison;
        guint pending_heredocs;
} Lexer;

static void
lexer_init(Lexer *lx, const char *text)
{
        gsize offset = 0;
        gsize start;
        gsize end;

        lx->text = text;
        lx->len = strlen(text);
        lx->holes = g_array_new(FALSE, TRUE, sizeof(Hole));
        lx->poison = NULL;
        lx->pending_heredocs = 0;
        while (itk_template_next_reference(text + offset, &start, &end)) {
                Hole hole = { 0 };

                hole.start = offset + start;
                hole.end = offset + end;
                hole.kind = HOLE_UNREACHED;
                hole.problem = "stands where the scanner could not follow the code";
                g_array_append_val(lx->holes, hole);
                offset += end;
        }
}

static void
lexer_clear(Lexer *lx)
{
        g_clear_pointer(&lx->holes, g_array_unref);
}

static Hole *
lx_hole_at(Lexer *lx, gsize p)
{
        guint lo = 0;
        guint hi = lx->holes->len;

        while (lo < hi) {
                guint mid = (lo + hi) / 2;
                Hole *h = &g_array_index(lx->holes, Hole, mid);

                if (h->start == p)
                        return h;
                if (h->start < p)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

static void
lx_refuse(Hole *h, const char *why)
{
        if (h->kind == HOLE_REFUSED)
                return;
        h->kind = HOLE_REFUSED;
        h->problem = why;
}

/* TRUE when @h may take a context (not refused already, no poison). */
static gboolean
lx_admit(Lexer *lx, Hole *h)
{
        if (lx->poison != NULL)
                lx_refuse(h, lx->poison);
        return h->kind != HOLE_REFUSED;
}

static void
lx_poison(Lexer *lx, const char *why)
{
        if (lx->poison == NULL)
                lx->poison = why;
}

/* Refuses every reference in [@p, @end) with @why; returns @end. */
static gsize
lx_refuse_range(Lexer *lx, gsize p, gsize end, const char *why)
{
        for (guint i = 0; i < lx->holes->len; i++) {
                Hole *h = &g_array_index(lx->holes, Hole, i);
                if (h->start >= p && h->start < end)
                        lx_refuse(h, why);
        }
        return end;
}

/* The byte at @p, or 0 past the end or where a reference starts (so no
 * multi-byte token is ever read across a reference). */
static char
lx_peek(Lexer *lx, gsize p, gsize end)
{
        if (p >= end || lx_hole_at(lx, p) != NULL)
                return '\0';
        return lx->text[p];
}

static gboolean
is_name_char(char c)
{
        return g_ascii_isalnum(c) || c == '_';
}

/* --- Shell scanner ------------------------------------------------------------------ */

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

static gsize sh_lex_list(Lexer *lx, gsize p, gsize end, guint flags, int depth);

/* After a '\' at @p (unquoted or in "..."). Returns where scanning goes on.
 * In a `...` body, \$ \` \\ are one character of the inner text. */
static gsize
sh_backslash(Lexer *lx, gsize p, gsize end, guint flags)
{
        Hole *next = lx_hole_at(lx, p + 1);
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
                        Hole *h = lx_hole_at(lx, p + 2);
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
sh_check_after_dollar(Lexer *lx, Hole *h, gsize from)
{
        gsize q = h->start;

        while (q > from && is_name_char(lx->text[q - 1]))
                q--;
        if (q > from && lx->text[q - 1] == '$')
                lx_refuse(h, sh_why_dollar);
}

static gsize
sh_lex_squote(Lexer *lx, gsize p, gsize end, guint flags)
{
        gsize open = p;

        while (p < end) {
                Hole *h = lx_hole_at(lx, p);
                if (h != NULL) {
                        if ((flags & SH_NO_REFS) != 0)
                                lx_refuse(h, sh_why_arith);
                        if (lx_admit(lx, h)) {
                                h->kind = HOLE_SHELL;
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
sh_lex_backquote(Lexer *lx, gsize p, gsize end, guint flags)
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
sh_lex_dollar(Lexer *lx, gsize p, gsize end, guint flags, gboolean in_dq)
{
        Hole *next = lx_hole_at(lx, p + 1);
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
sh_lex_dquote(Lexer *lx, gsize p, gsize end, guint flags)
{
        gsize open = p;

        while (p < end) {
                Hole *h = lx_hole_at(lx, p);
                char c;

                if (h != NULL) {
                        if ((flags & SH_NO_REFS) != 0)
                                lx_refuse(h, sh_why_arith);
                        sh_check_after_dollar(lx, h, open);
                        if (lx_admit(lx, h)) {
                                h->kind = HOLE_SHELL;
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
sh_read_heredoc_word(Lexer *lx, gsize p, gsize end, GPtrArray *pending)
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
                Hole *h = lx_hole_at(lx, p);
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
sh_read_heredoc_bodies(Lexer *lx, gsize p, gsize end, GPtrArray *pending)
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
sh_word_is(Lexer *lx, gsize p, gsize end, const char *word)
{
        gsize len = strlen(word);

        return p + len <= end && memcmp(lx->text + p, word, len) == 0 &&
               (p + len == end || strchr(" \t\n;&|", lx->text[p + len]) != NULL);
}

/* A command list from @p up to @end; with SH_CMDSUB it ends after the ')'
 * that closes the substitution (@depth: parentheses already open, -1 for a
 * `...` body). Returns where the caller goes on. */
static gsize
sh_lex_list(Lexer *lx, gsize p, gsize end, guint flags, int depth)
{
        g_autoptr(GPtrArray) pending = g_ptr_array_new_with_free_func(heredoc_free);
        gboolean word_start = TRUE;
        gsize word_begin = p;
        gsize start = p;

        while (p < end) {
                Hole *h = lx_hole_at(lx, p);
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
                                        Hole *other = lx_hole_at(lx, q);
                                        if (other != NULL) {
                                                q = other->end - 1;
                                                continue;
                                        }
                                        if (!is_name_char(lx->text[q]))
                                                name_before = FALSE;
                                }
                                q = h->end;
                                while (q < end) {
                                        Hole *other = lx_hole_at(lx, q);
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
                                h->kind = HOLE_SHELL;
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

/* --- Python scanner ----------------------------------------------------------------- */

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
py_skip_field(Lexer *lx, gsize p, gsize end)
{
        int depth = 0;

        while (p < end) {
                Hole *h = lx_hole_at(lx, p);
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
py_lex_string(Lexer *lx, gsize p, gsize end, const char *prefix, gsize prefix_len)
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
                Hole *h = lx_hole_at(lx, p);
                char c;

                if (h != NULL) {
                        if (lx_admit(lx, h)) {
                                h->kind = HOLE_PY_STRING;
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
                        Hole *next = lx_hole_at(lx, p + 1);
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

static void
py_lex(Lexer *lx)
{
        gsize p = 0;
        gsize end = lx->len;

        while (p < end) {
                Hole *h = lx_hole_at(lx, p);
                char c;

                if (h != NULL) {
                        Hole *first = &g_array_index(lx->holes, Hole, 0);
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
                                h->kind = HOLE_PY_CODE;
                        p = h->end;
                        continue;
                }
                c = lx->text[p];
                if (c == '#') {
                        while (p < end && lx->text[p] != '\n' && lx->text[p] != '\r') {
                                Hole *in = lx_hole_at(lx, p);
                                if (in != NULL) {
                                        if (lx_admit(lx, in))
                                                in->kind = HOLE_PY_COMMENT;
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

/* --- Escapes ----------------------------------------------------------------------- */

static void
append_backquoted(GString *out, const char *s, gsize len)
{
        for (gsize i = 0; i < len; i++) {
                if (s[i] == '\\' || s[i] == '`' || s[i] == '$')
                        g_string_append_c(out, '\\');
                g_string_append_c(out, s[i]);
        }
}

gboolean
itk_code_escape_shell(GString *out, ItkShellQuoting quoting, gboolean in_backquotes,
                      const char *value, gsize length, GError **error)
{
        g_autoptr(GString) buf = g_string_sized_new(length + 8);

        if (memchr(value, '\0', length) != NULL) {
                g_set_error_literal(error, ITK_ERROR, ITK_ERROR_REFERENCE,
                                    "the value holds a NUL byte, which a shell command cannot "
                                    "carry (pass it in argv or env)");
                return FALSE;
        }
        if (quoting == ITK_SHELL_BARE)
                g_string_append_c(buf, '\'');
        for (gsize i = 0; i < length; i++) {
                char c = value[i];

                if (quoting == ITK_SHELL_DOUBLE_QUOTED) {
                        if (c == '$' || c == '`' || c == '"' || c == '\\')
                                g_string_append_c(buf, '\\');
                        g_string_append_c(buf, c);
                } else if (c == '\'') {
                        g_string_append(buf, "'\\''");
                } else {
                        g_string_append_c(buf, c);
                }
        }
        if (quoting == ITK_SHELL_BARE)
                g_string_append_c(buf, '\'');
        if (in_backquotes)
                append_backquoted(out, buf->str, buf->len);
        else
                g_string_append_len(out, buf->str, buf->len);
        return TRUE;
}

/* The body of a Python string literal (without quotes): @bytes writes every
 * byte above 0x7f as \xNN; @fstring doubles braces. */
static gboolean
py_append_string_body(GString *out, const char *s, gsize len, gboolean bytes, gboolean fstring,
                      GError **error)
{
        if (!bytes && !g_utf8_validate_len(s, len, NULL)) {
                g_set_error_literal(error, ITK_ERROR, ITK_ERROR_REFERENCE,
                                    "the value is not valid UTF-8 and cannot become a Python "
                                    "str");
                return FALSE;
        }
        for (gsize i = 0; i < len; i++) {
                guchar c = (guchar)s[i];

                switch (c) {
                case '\\':
                        g_string_append(out, "\\\\");
                        break;
                case '\'':
                        g_string_append(out, "\\'");
                        break;
                case '"':
                        g_string_append(out, "\\\"");
                        break;
                case '\n':
                        g_string_append(out, "\\n");
                        break;
                case '\r':
                        g_string_append(out, "\\r");
                        break;
                case '\t':
                        g_string_append_c(out, '\t');
                        break;
                case '{':
                case '}':
                        g_string_append_c(out, (char)c);
                        if (fstring)
                                g_string_append_c(out, (char)c);
                        break;
                default:
                        if (c < 0x20 || c == 0x7f || (bytes && c >= 0x80))
                                g_string_append_printf(out, "\\x%02x", c);
                        else
                                g_string_append_c(out, (char)c);
                        break;
                }
        }
        return TRUE;
}

static void
py_append_double(GString *out, double d)
{
        char buf[G_ASCII_DTOSTR_BUF_SIZE];

        if (isnan(d)) {
                g_string_append(out, "float('nan')");
                return;
        }
        if (isinf(d)) {
                g_string_append(out, d > 0 ? "float('inf')" : "float('-inf')");
                return;
        }
        /* The shortest text that reads back as @d, as Python's repr(). */
        for (int precision = 1; precision <= 17; precision++) {
                char format[8];

                g_snprintf(format, sizeof(format), "%%.%dg", precision);
                g_ascii_formatd(buf, sizeof(buf), format, d);
                if (g_ascii_strtod(buf, NULL) == d)
                        break;
        }
        if (d < 0)
                g_string_append_c(out, '(');
        g_string_append(out, buf);
        if (strpbrk(buf, ".e") == NULL)
                g_string_append(out, ".0");
        if (d < 0)
                g_string_append_c(out, ')');
}

gboolean
itk_code_python_literal(GString *out, JsonNode *value, GError **error)
{
        switch (JSON_NODE_TYPE(value)) {
        case JSON_NODE_NULL:
                g_string_append(out, "None");
                return TRUE;
        case JSON_NODE_ARRAY: {
                JsonArray *array = json_node_get_array(value);
                g_string_append_c(out, '[');
                for (guint i = 0; i < json_array_get_length(array); i++) {
                        if (i > 0)
                                g_string_append(out, ", ");
                        if (!itk_code_python_literal(out, json_array_get_element(array, i), error))
                                return FALSE;
                }
                g_string_append_c(out, ']');
                return TRUE;
        }
        case JSON_NODE_OBJECT: {
                JsonObjectIter iter;
                const char *key;
                JsonNode *member;
                gboolean first = TRUE;

                g_string_append_c(out, '{');
                json_object_iter_init_ordered(&iter, json_node_get_object(value));
                while (json_object_iter_next_ordered(&iter, &key, &member)) {
                        if (!first)
                                g_string_append(out, ", ");
                        first = FALSE;
                        g_string_append_c(out, '\'');
                        if (!py_append_string_body(out, key, strlen(key), FALSE, FALSE, error))
                                return FALSE;
                        g_string_append(out, "': ");
                        if (!itk_code_python_literal(out, member, error))
                                return FALSE;
                }
                g_string_append_c(out, '}');
                return TRUE;
        }
        case JSON_NODE_VALUE:
                break;
        }
        switch (json_node_get_value_type(value)) {
        case G_TYPE_BOOLEAN:
                g_string_append(out, json_node_get_boolean(value) ? "True" : "False");
                return TRUE;
        case G_TYPE_STRING: {
                const char *s = json_node_get_string(value);
                g_string_append_c(out, '\'');
                if (!py_append_string_body(out, s, strlen(s), FALSE, FALSE, error))
                        return FALSE;
                g_string_append_c(out, '\'');
                return TRUE;
        }
        case G_TYPE_DOUBLE:
                py_append_double(out, json_node_get_double(value));
                return TRUE;
        default: {
                gint64 n = json_node_get_int(value);
                /* Parenthesised, so -2 ** 2 cannot mean -(2 ** 2). */
                g_string_append_printf(out, n < 0 ? "(%" G_GINT64_FORMAT ")" : "%" G_GINT64_FORMAT,
                                       n);
                return TRUE;
        }
        }
}

/* A comment line: line breaks and other control characters escaped, so the
 * value cannot end the comment. */
static void
py_append_comment(GString *out, const char *s)
{
        for (const guchar *p = (const guchar *)s; *p != '\0'; p++) {
                if (*p == '\\')
                        g_string_append(out, "\\\\");
                else if (*p == '\n')
                        g_string_append(out, "\\n");
                else if (*p == '\r')
                        g_string_append(out, "\\r");
                else if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
                        g_string_append_printf(out, "\\x%02x", *p);
                else
                        g_string_append_c(out, (char)*p);
        }
}

/* --- Rendering ------------------------------------------------------------------------ */

static void
scan(Lexer *lx, ItkCodeLanguage language)
{
        if (language == ITK_CODE_LANGUAGE_SHELL)
                sh_lex_list(lx, 0, lx->len, 0, 0);
        else
                py_lex(lx);
}

static void
offset_to_line_column(const char *text, gsize offset, int *line, int *column)
{
        *line = 1;
        *column = 1;
        for (gsize i = 0; i < offset; i++) {
                if (text[i] == '\n') {
                        (*line)++;
                        *column = 1;
                } else if (((guchar)text[i] & 0xc0) != 0x80) {
                        (*column)++;
                }
        }
}

static char *
hole_problem_message(const Lexer *lx, const Hole *h)
{
        return g_strdup_printf("'%.*s' %s; a value in code is data, never code: pass code-like "
                               "values through argv or env",
                               (int)(h->end - h->start), lx->text + h->start, h->problem);
}

GPtrArray *
itk_code_template_check(ItkCodeLanguage language, const char *text)
{
        GPtrArray *problems = g_ptr_array_new_with_free_func((GDestroyNotify)itk_code_problem_free);
        Lexer lx;

        g_return_val_if_fail(text != NULL, problems);
        if (language == ITK_CODE_LANGUAGE_NONE || !itk_template_text_has_references(text))
                return problems;
        lexer_init(&lx, text);
        scan(&lx, language);
        for (guint i = 0; i < lx.holes->len; i++) {
                const Hole *h = &g_array_index(lx.holes, Hole, i);
                ItkCodeProblem *problem;

                if (h->kind != HOLE_REFUSED && h->kind != HOLE_UNREACHED)
                        continue;
                problem = g_new0(ItkCodeProblem, 1);
                problem->offset = h->start;
                problem->length = h->end - h->start;
                problem->message = hole_problem_message(&lx, h);
                g_ptr_array_add(problems, problem);
        }
        lexer_clear(&lx);
        return problems;
}

/* TRUE when @s can stand in a raw literal as it is: no backslash, no quote
 * of the literal, no control character (a CR would read as a newline), and
 * for bytes nothing above 0x7f. */
static gboolean
py_raw_safe(const char *s, char quote, gboolean bytes)
{
        if (!bytes && !g_utf8_validate(s, -1, NULL))
                return FALSE;
        for (const guchar *p = (const guchar *)s; *p != '\0'; p++) {
                if (*p == '\\' || *p == (guchar)quote || (*p < 0x20 && *p != '\t') || *p == 0x7f ||
                    (bytes && *p >= 0x80))
                        return FALSE;
        }
        return TRUE;
}

static gboolean
render_hole(GString *out, const Hole *h, JsonNode *value, GError **error)
{
        g_autofree char *text = NULL;

        if (h->kind == HOLE_PY_CODE)
                return itk_code_python_literal(out, value, error);
        if (JSON_NODE_HOLDS_VALUE(value) && json_node_get_value_type(value) == G_TYPE_STRING)
                text = g_strdup(json_node_get_string(value));
        else
                text = itk_value_to_text(value);

        switch (h->kind) {
        case HOLE_SHELL:
                return itk_code_escape_shell(out, h->quoting, h->in_backquotes, text, strlen(text),
                                             error);
        case HOLE_PY_COMMENT:
                py_append_comment(out, text);
                return TRUE;
        case HOLE_PY_STRING: {
                const char *quotes =
                        h->quote == '"' ? (h->triple ? "\"\"\"" : "\"") : (h->triple ? "'''" : "'");
                if (!h->raw)
                        return py_append_string_body(out, text, strlen(text), h->bytes, h->fstring,
                                                     error);
                if (py_raw_safe(text, h->quote, h->bytes)) {
                        /* Nothing a raw literal would read differently. */
                        for (const char *c = text; *c != '\0'; c++) {
                                g_string_append_c(out, *c);
                                if (h->fstring && (*c == '{' || *c == '}'))
                                        g_string_append_c(out, *c);
                        }
                        return TRUE;
                }
                /* r'a{{ x }}b' -> r'a' '<escaped>' r'b': adjacent literals
                 * concatenate, and only the middle one has escapes. */
                g_string_append(out, quotes);
                g_string_append_printf(out, " %s%c", h->bytes ? "b" : "", h->quote);
                if (!py_append_string_body(out, text, strlen(text), h->bytes, FALSE, error))
                        return FALSE;
                g_string_append_printf(out, "%c %s%s", h->quote, h->prefix, quotes);
                return TRUE;
        }
        case HOLE_PY_CODE:
        case HOLE_UNREACHED:
        case HOLE_REFUSED:
        default:
                g_assert_not_reached();
        }
        return FALSE;
}

typedef struct {
        const ItkTemplateScope *scope;
        gboolean used;
} SecretWatch;

/* Forwards, and notes that the value being rendered is a secret. */
static void
secret_used_cb(const char *secret, gpointer user_data)
{
        SecretWatch *watch = user_data;

        watch->used = TRUE;
        if (watch->scope->secret_used != NULL)
                watch->scope->secret_used(secret, watch->scope->secret_data);
}

char *
itk_code_template_render_text(const ItkTemplateScope *scope, ItkCodeLanguage language,
                              const char *text, GError **error)
{
        g_autoptr(GString) out = NULL;
        SecretWatch secret = { .scope = scope };
        ItkTemplateScope watched;
        Lexer lx;
        gsize p = 0;
        gsize before;
        gboolean ok = TRUE;

        g_return_val_if_fail(scope != NULL, NULL);
        g_return_val_if_fail(text != NULL, NULL);
        g_return_val_if_fail(language != ITK_CODE_LANGUAGE_NONE, NULL);

        watched = *scope;
        watched.secret_used = secret_used_cb;
        watched.secret_data = &secret;
        lexer_init(&lx, text);
        scan(&lx, language);
        out = g_string_sized_new(lx.len + 64);
        for (guint i = 0; ok && i < lx.holes->len; i++) {
                const Hole *h = &g_array_index(lx.holes, Hole, i);
                g_autoptr(JsonNode) value = NULL;
                g_autoptr(GError) error_local = NULL;
                int line, column;

                g_string_append_len(out, text + p, h->start - p);
                p = h->end;
                offset_to_line_column(text, h->start, &line, &column);
                if (h->kind == HOLE_REFUSED || h->kind == HOLE_UNREACHED) {
                        g_autofree char *message = hole_problem_message(&lx, h);
                        g_set_error(error, ITK_ERROR, ITK_ERROR_REFERENCE,
                                    "line %d, column %d of the code: %s", line, column, message);
                        ok = FALSE;
                        break;
                }
                secret.used = FALSE;
                value = itk_template_resolve_reference(&watched, text + h->start, h->end - h->start,
                                                       error);
                if (value == NULL) {
                        ok = FALSE;
                        break;
                }
                before = out->len;
                if (render_hole(out, h, value, &error_local)) {
                        /* A secret's escaped form is masked too: a shell's
                         * syntax error quotes the code. */
                        if (secret.used && scope->secret_used != NULL && out->len > before) {
                                g_autofree char *escaped =
                                        g_strndup(out->str + before, out->len - before);
                                scope->secret_used(escaped, scope->secret_data);
                        }
                } else {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_REFERENCE,
                                    "line %d, column %d of the code: '%.*s': %s", line, column,
                                    (int)(h->end - h->start), text + h->start,
                                    error_local->message);
                        ok = FALSE;
                }
        }
        lexer_clear(&lx);
        if (!ok)
                return NULL;
        g_string_append(out, text + p);
        return g_string_free(g_steal_pointer(&out), FALSE);
}

static gboolean
is_code_member(const char *step_type, const char *name, JsonNode *member)
{
        return itk_code_language_for(step_type, name) != ITK_CODE_LANGUAGE_NONE &&
               JSON_NODE_HOLDS_VALUE(member) && json_node_get_value_type(member) == G_TYPE_STRING &&
               itk_template_text_has_references(json_node_get_string(member));
}

JsonNode *
itk_code_template_render_params(const ItkTemplateScope *scope, const char *step_type,
                                JsonNode *params, GError **error)
{
        g_autoptr(JsonObject) result = NULL;
        JsonObjectIter iter;
        const char *name;
        JsonNode *member;
        gboolean has_code = FALSE;

        g_return_val_if_fail(params != NULL, NULL);

        if (JSON_NODE_HOLDS_OBJECT(params)) {
                json_object_iter_init_ordered(&iter, json_node_get_object(params));
                while (!has_code && json_object_iter_next_ordered(&iter, &name, &member))
                        has_code = is_code_member(step_type, name, member);
        }
        if (!has_code)
                return itk_template_render(scope, params, error);

        result = json_object_new();
        json_object_iter_init_ordered(&iter, json_node_get_object(params));
        while (json_object_iter_next_ordered(&iter, &name, &member)) {
                JsonNode *rendered;

                if (is_code_member(step_type, name, member)) {
                        char *text = itk_code_template_render_text(
                                scope, itk_code_language_for(step_type, name),
                                json_node_get_string(member), error);
                        if (text == NULL)
                                return NULL;
                        rendered = json_node_alloc();
                        json_node_init_string(rendered, text);
                        g_free(text);
                } else {
                        rendered = itk_template_render(scope, member, error);
                        if (rendered == NULL)
                                return NULL;
                }
                json_object_set_member(result, name, rendered);
        }
        return json_node_init_object(json_node_alloc(), g_steal_pointer(&result));
}
