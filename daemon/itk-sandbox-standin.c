/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* STAND-IN, not the implementation: a minimal ItkSandbox with the
 * semantics of itk-sandbox.h for a build without itk-sandbox.c (the
 * sandbox helper's branch). No confinement: itk_sandbox_wrap_argv() returns
 * the argv unchanged, as the header specifies for a disabled sandbox, and
 * no default template is set unless a caller sets one. meson builds this
 * file only while daemon/itk-sandbox.c does not exist; the lead deletes it
 * when merging the real one. */
#include "itk-sandbox.h"
#include "itk-error.h"

struct _ItkSandbox {
        gboolean enabled;
};

static ItkSandbox *default_sandbox;

ItkSandbox *
itk_sandbox_new(void)
{
        return g_new0(ItkSandbox, 1);
}

ItkSandbox *
itk_sandbox_copy(const ItkSandbox *self)
{
        return g_memdup2(self, sizeof *self);
}

void
itk_sandbox_free(ItkSandbox *self)
{
        g_free(self);
}

void
itk_sandbox_set_enabled(ItkSandbox *self, gboolean enabled)
{
        self->enabled = enabled;
}

gboolean
itk_sandbox_get_enabled(const ItkSandbox *self)
{
        return self->enabled;
}

void
itk_sandbox_set_bwrap(ItkSandbox *self, const char *path)
{
        (void)self;
        (void)path;
}

void
itk_sandbox_hide(ItkSandbox *self, const char *path)
{
        (void)self;
        (void)path;
}

void
itk_sandbox_bind(ItkSandbox *self, const char *path, gboolean writable)
{
        (void)self;
        (void)path;
        (void)writable;
}

void
itk_sandbox_setenv(ItkSandbox *self, const char *name, const char *value)
{
        (void)self;
        (void)name;
        (void)value;
}

gboolean
itk_sandbox_check(ItkSandbox *self, GError **error)
{
        (void)self;
        (void)error;
        return TRUE;
}

GStrv
itk_sandbox_wrap_argv(ItkSandbox *self, const char *const *argv, GError **error)
{
        (void)self;
        (void)error;
        return g_strdupv((char **)argv);
}

void
itk_sandbox_set_default(ItkSandbox *sandbox)
{
        default_sandbox = sandbox;
}

const ItkSandbox *
itk_sandbox_get_default(void)
{
        return default_sandbox;
}
