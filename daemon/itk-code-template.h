/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

#include "itk-template.h"

G_BEGIN_DECLS

/* {{ }} references inside code (docs/templates-in-code.md), escaped for the
 * exact spot they stand in, as Go's html/template does for HTML: a value
 * never becomes code.
 *
 * A lexical scanner per language finds the context of every reference
 * without knowing any value; the renderer then writes each value in the
 * form that context needs:
 *
 * Shell (POSIX sh, the text of `/bin/sh -c`):
 *   bare word          one single-quoted word, ' written '\''
 *   inside '...'       ' written '\'' (closes, the value, reopens)
 *   inside "..."       $ ` " \ escaped with a backslash; newlines kept
 *   inside $(...)      the context of the substitution's own text
 *   inside `...`       as inside $(...), then escaped once more for the
 *                      backquotes (\ ` $)
 * Refused: a here-document body or delimiter, a comment, $'...', ${...},
 * arithmetic ($((...)), bash's ((...)) and $[...]), `...` inside "..." or
 * inside another `...`, right after a backslash or a '$'/'$name', as or in
 * a name followed by '=', in an unterminated quote or $(...), and anything
 * after a construct this scanner cannot follow exactly or that dash and
 * bash read differently ($'...' holding a backslash, ${...} or $[...]
 * holding quotes, 'case' inside $(...), '<<<', bash's 'name=(', and '[[' or
 * 'let', whose operands bash evaluates as code). A value holding a NUL byte
 * is refused (sh cannot carry one).
 *
 * Python (the script's source):
 *   code               a literal of the value's JSON type: 'str', 12,
 *                      (-12), 1.5, float('nan'), True, None, [..], {..}
 *   '..' ".." '''..''' """.."""   (u, b, f prefixes) an escaped string
 *                      body (\ quotes, control characters; b: bytes above
 *                      0x7f as \xNN; f: braces doubled)
 *   raw strings        the literal is closed, an escaped literal follows
 *                      (adjacent literals concatenate), and it reopens
 *   comment            the value with line breaks escaped
 * Refused: inside an f-string replacement field, right after a backslash,
 * joined to a name or number or to another reference in code. A value that
 * is not valid UTF-8 is refused where it would become a str. */

typedef enum {
        ITK_CODE_LANGUAGE_NONE,
        ITK_CODE_LANGUAGE_SHELL,
        ITK_CODE_LANGUAGE_PYTHON,
} ItkCodeLanguage;

/* The one place that says which parameter of which step type is code:
 * utility.shell's command (sh), utility.python's script and code. */
ItkCodeLanguage itk_code_language_for(const char *step_type, const char *param_name);

/* A reference standing where no value can be made safe. */
typedef struct {
        gsize offset; /* of the reference's "{{" in the text */
        gsize length; /* of the reference */
        char *message;
} ItkCodeProblem;

void itk_code_problem_free(ItkCodeProblem *problem);

/* Every reference of @text in a spot this file refuses, in order, as
 * ItkCodeProblem* (the array frees them); empty when all are fine. */
GPtrArray *itk_code_template_check(ItkCodeLanguage language, const char *text);

/* @text with every reference resolved in @scope and escaped for its spot.
 * NULL with ITK_ERROR_REFERENCE for a reference in a refused spot ("line 2,
 * column 7: {{ x }} stands inside a comment ..."), a value that cannot be
 * written there, or a reference that does not resolve. */
char *itk_code_template_render_text(const ItkTemplateScope *scope, ItkCodeLanguage language,
                                    const char *text, GError **error);

/* A step's parameters: its code parameters (itk_code_language_for()) through
 * itk_code_template_render_text(), the others through itk_template_render().
 * The same sharing as itk_template_render(): treat the result as read-only. */
JsonNode *itk_code_template_render_params(const ItkTemplateScope *scope, const char *step_type,
                                          JsonNode *params, GError **error);

/* The escapes, for one value (@length bytes; may hold NUL) in one context;
 * exposed for tests. FALSE with ITK_ERROR_REFERENCE when it cannot be
 * written there. */
typedef enum {
        ITK_SHELL_BARE,
        ITK_SHELL_SINGLE_QUOTED,
        ITK_SHELL_DOUBLE_QUOTED,
} ItkShellQuoting;

gboolean itk_code_escape_shell(GString *out, ItkShellQuoting quoting, gboolean in_backquotes,
                               const char *value, gsize length, GError **error);
/* A Python literal of @value's JSON type. */
gboolean itk_code_python_literal(GString *out, JsonNode *value, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkCodeProblem, itk_code_problem_free)

G_END_DECLS
