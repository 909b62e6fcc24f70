/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* ItkSandbox: how the daemon confines every process it starts for a step
 * (utility.python, utility.shell, Chromium). DESIGN.md §5 and §7.
 *
 * A sandbox is a description, turned into a bubblewrap (Debian package
 * `bubblewrap`, /usr/bin/bwrap) command line by itk_sandbox_wrap_argv():
 *   - its own PID namespace (--unshare-pid): killing the bwrap process kills
 *     every process inside, whatever they did with setsid or double forks;
 *   - --die-with-parent: nothing survives the daemon, even after SIGKILL;
 *   - the whole file system read-only (--ro-bind / /), the daemon's state
 *     directory hidden behind an empty tmpfs (credential store, history,
 *     other runs' folders), then the paths bound back on purpose (the run's
 *     own folder, writable);
 *   - private /tmp and /dev/shm (tmpfs), a fresh /dev and /proc;
 *   - the network kept (steps talk to gateways).
 *
 * The daemon builds one template at start (itk_sandbox_set_default()) that
 * hides its state directory; each step copies it and adds what it needs.
 * When the admin opted out in toolkit.conf (`[Sandbox] Enabled=false`) the
 * default is a disabled sandbox: itk_sandbox_wrap_argv() returns the argv
 * unchanged and the journal said so at start. */

typedef struct _ItkSandbox ItkSandbox;

ItkSandbox *itk_sandbox_new(void);
ItkSandbox *itk_sandbox_copy(const ItkSandbox *self);
void itk_sandbox_free(ItkSandbox *self);

/* Disabled: no confinement at all (the admin's explicit opt-out). */
void itk_sandbox_set_enabled(ItkSandbox *self, gboolean enabled);
gboolean itk_sandbox_get_enabled(const ItkSandbox *self);
/* The bubblewrap binary; default "bwrap" looked up in PATH. */
void itk_sandbox_set_bwrap(ItkSandbox *self, const char *path);
/* @path is replaced by an empty tmpfs inside (its contents unreachable). */
void itk_sandbox_hide(ItkSandbox *self, const char *path);
/* @path is visible inside at the same place, read-only or writable; binds
 * are applied after the hidden paths, so a folder inside a hidden one can
 * be brought back. */
void itk_sandbox_bind(ItkSandbox *self, const char *path, gboolean writable);
/* Environment for the confined process: bubblewrap's --setenv. */
void itk_sandbox_setenv(ItkSandbox *self, const char *name, const char *value);
/* The working directory inside (bubblewrap's --chdir); it must be visible
 * there, else the process fails to start. */
void itk_sandbox_set_cwd(ItkSandbox *self, const char *cwd);
const char *itk_sandbox_get_bwrap(const ItkSandbox *self);

/* TRUE when the sandbox can confine processes here (bwrap found and able to
 * create its namespaces; probed once and cached per binary), or it is
 * disabled. Otherwise ITK_ERROR_NOT_SUPPORTED with a message naming the
 * Debian package and the toolkit.conf opt-out. Blocks only on the first call
 * of a process (a short probe); the daemon calls it at start. */
gboolean itk_sandbox_check(ItkSandbox *self, GError **error);
/* The same verdict without blocking: starts the probe (or joins the one
 * running) and completes when it is known; cancellable at once. The daemon
 * starts it at start-up, so that later checks find the verdict cached. */
void itk_sandbox_check_async(ItkSandbox *self, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data);
gboolean itk_sandbox_check_finish(GAsyncResult *result, GError **error);

/* The command line that runs @argv inside the sandbox (transfer full), or
 * @argv copied when disabled; NULL with the itk_sandbox_check() error. */
GStrv itk_sandbox_wrap_argv(ItkSandbox *self, const char *const *argv, GError **error);

/* The daemon-wide template: set takes ownership of @sandbox (NULL clears);
 * get is borrowed, NULL before it is set: tests without a daemon then run
 * unconfined unless they set one. */
void itk_sandbox_set_default(ItkSandbox *sandbox);
const ItkSandbox *itk_sandbox_get_default(void);

/* The daemon's template from toolkit.conf's [Sandbox] group: Enabled=
 * (default true) and Bubblewrap= (default "bwrap"), hiding @state_dir.
 * A malformed Enabled= is an error (never silently unconfined). */
ItkSandbox *itk_sandbox_new_from_config(GKeyFile *config, const char *state_dir, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkSandbox, itk_sandbox_free)

G_END_DECLS
