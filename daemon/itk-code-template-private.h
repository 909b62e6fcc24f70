/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <string.h>

#include "itk-code-template.h"

G_BEGIN_DECLS

/* Shared by itk-code-template.c and the scanners (itk-code-scan-*.c): the
 * references of one text ("holes") and the context each stands in. */

typedef enum {
        ITK_CODE_HOLE_UNREACHED, /* the scanner never got there: refused */
        ITK_CODE_HOLE_REFUSED,
        ITK_CODE_HOLE_SHELL,
        ITK_CODE_HOLE_PY_CODE,
        ITK_CODE_HOLE_PY_COMMENT,
        ITK_CODE_HOLE_PY_STRING,
} ItkCodeHoleKind;

typedef struct {
        gsize start; /* "{{" */
        gsize end;   /* after "}}" */
        ItkCodeHoleKind kind;
        const char *problem; /* ITK_CODE_HOLE_REFUSED: why, a static phrase */
        /* ITK_CODE_HOLE_SHELL */
        ItkShellQuoting quoting;
        gboolean in_backquotes;
        /* ITK_CODE_HOLE_PY_STRING */
        char quote;
        gboolean triple;
        gboolean raw;
        gboolean bytes;
        gboolean fstring;
        char prefix[3];
} ItkCodeHole;

typedef struct {
        const char *text;
        gsize len;
        GArray *holes; /* ItkCodeHole, in order, not overlapping */
        /* Set once the scanner cannot follow the text exactly any more:
         * every later reference is refused with this phrase. */
        const char *poison;
        guint pending_heredocs;
} ItkCodeLexer;

static inline ItkCodeHole *
lx_hole_at(ItkCodeLexer *lx, gsize p)
{
        guint lo = 0;
        guint hi = lx->holes->len;

        while (lo < hi) {
                guint mid = (lo + hi) / 2;
                ItkCodeHole *h = &g_array_index(lx->holes, ItkCodeHole, mid);

                if (h->start == p)
                        return h;
                if (h->start < p)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

static inline void
lx_refuse(ItkCodeHole *h, const char *why)
{
        if (h->kind == ITK_CODE_HOLE_REFUSED)
                return;
        h->kind = ITK_CODE_HOLE_REFUSED;
        h->problem = why;
}

/* TRUE when @h may take a context (not refused already, no poison). */
static inline gboolean
lx_admit(ItkCodeLexer *lx, ItkCodeHole *h)
{
        if (lx->poison != NULL)
                lx_refuse(h, lx->poison);
        return h->kind != ITK_CODE_HOLE_REFUSED;
}

static inline void
lx_poison(ItkCodeLexer *lx, const char *why)
{
        if (lx->poison == NULL)
                lx->poison = why;
}

/* Refuses every reference in [@p, @end) with @why; returns @end. */
static inline gsize
lx_refuse_range(ItkCodeLexer *lx, gsize p, gsize end, const char *why)
{
        for (guint i = 0; i < lx->holes->len; i++) {
                ItkCodeHole *h = &g_array_index(lx->holes, ItkCodeHole, i);
                if (h->start >= p && h->start < end)
                        lx_refuse(h, why);
        }
        return end;
}

/* The byte at @p, or 0 past the end or where a reference starts (so no
 * multi-byte token is ever read across a reference). */
static inline char
lx_peek(ItkCodeLexer *lx, gsize p, gsize end)
{
        if (p >= end || lx_hole_at(lx, p) != NULL)
                return '\0';
        return lx->text[p];
}

static inline gboolean
is_name_char(char c)
{
        return g_ascii_isalnum(c) || c == '_';
}

/* Each gives every hole of @lx a context or refuses it. */
void itk_code_scan_shell(ItkCodeLexer *lx);
void itk_code_scan_python(ItkCodeLexer *lx);

G_END_DECLS
