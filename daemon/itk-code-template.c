/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <math.h>
#include <string.h>

#include "itk-code-template-private.h"
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

/* --- Holes ---------------------------------------------------------------------------- */

static void
lexer_init(ItkCodeLexer *lx, const char *text)
{
        gsize offset = 0;
        gsize start;
        gsize end;

        lx->text = text;
        lx->len = strlen(text);
        lx->holes = g_array_new(FALSE, TRUE, sizeof(ItkCodeHole));
        lx->poison = NULL;
        lx->pending_heredocs = 0;
        while (itk_template_next_reference(text + offset, &start, &end)) {
                ItkCodeHole hole = { 0 };

                hole.start = offset + start;
                hole.end = offset + end;
                hole.kind = ITK_CODE_HOLE_UNREACHED;
                hole.problem = "stands where the scanner could not follow the code";
                g_array_append_val(lx->holes, hole);
                offset += end;
        }
}

static void
lexer_clear(ItkCodeLexer *lx)
{
        g_clear_pointer(&lx->holes, g_array_unref);
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
scan(ItkCodeLexer *lx, ItkCodeLanguage language)
{
        if (language == ITK_CODE_LANGUAGE_SHELL)
                itk_code_scan_shell(lx);
        else
                itk_code_scan_python(lx);
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
hole_problem_message(const ItkCodeLexer *lx, const ItkCodeHole *h)
{
        return g_strdup_printf("'%.*s' %s; a value in code is data, never code: pass code-like "
                               "values through argv or env",
                               (int)(h->end - h->start), lx->text + h->start, h->problem);
}

GPtrArray *
itk_code_template_check(ItkCodeLanguage language, const char *text)
{
        GPtrArray *problems = g_ptr_array_new_with_free_func((GDestroyNotify)itk_code_problem_free);
        ItkCodeLexer lx;

        g_return_val_if_fail(text != NULL, problems);
        if (language == ITK_CODE_LANGUAGE_NONE || !itk_template_text_has_references(text))
                return problems;
        lexer_init(&lx, text);
        scan(&lx, language);
        for (guint i = 0; i < lx.holes->len; i++) {
                const ItkCodeHole *h = &g_array_index(lx.holes, ItkCodeHole, i);
                ItkCodeProblem *problem;

                if (h->kind != ITK_CODE_HOLE_REFUSED && h->kind != ITK_CODE_HOLE_UNREACHED)
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
render_hole(GString *out, const ItkCodeHole *h, JsonNode *value, GError **error)
{
        g_autofree char *text = NULL;

        if (h->kind == ITK_CODE_HOLE_PY_CODE)
                return itk_code_python_literal(out, value, error);
        if (JSON_NODE_HOLDS_VALUE(value) && json_node_get_value_type(value) == G_TYPE_STRING)
                text = g_strdup(json_node_get_string(value));
        else
                text = itk_value_to_text(value);

        switch (h->kind) {
        case ITK_CODE_HOLE_SHELL:
                return itk_code_escape_shell(out, h->quoting, h->in_backquotes, text, strlen(text),
                                             error);
        case ITK_CODE_HOLE_PY_COMMENT:
                py_append_comment(out, text);
                return TRUE;
        case ITK_CODE_HOLE_PY_STRING: {
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
        case ITK_CODE_HOLE_PY_CODE:
        case ITK_CODE_HOLE_UNREACHED:
        case ITK_CODE_HOLE_REFUSED:
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
        ItkCodeLexer lx;
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
                const ItkCodeHole *h = &g_array_index(lx.holes, ItkCodeHole, i);
                g_autoptr(JsonNode) value = NULL;
                g_autoptr(GError) error_local = NULL;
                int line, column;

                g_string_append_len(out, text + p, h->start - p);
                p = h->end;
                offset_to_line_column(text, h->start, &line, &column);
                if (h->kind == ITK_CODE_HOLE_REFUSED || h->kind == ITK_CODE_HOLE_UNREACHED) {
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
