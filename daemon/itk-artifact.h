/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Artifacts: files a run wrote into its folder (screenshots, downloads,
 * backups, exports) that clients fetch as read-only file descriptors. A name
 * is a path relative to the run's folder ("shot.png", "exports/a.zip"); it
 * is opened one component at a time beneath the folder, never following a
 * symlink, so no name reaches outside it. */

/* TRUE when @name is a relative path of plain components: not empty, no
 * leading '/', no "", "." or ".." component, no control character, at most
 * 255 bytes a component and 1024 in all. Else ITK_ERROR_INVALID_ARGS naming
 * the problem. */
gboolean itk_artifact_name_is_valid(const char *name, GError **error);

/* @path's name relative to @run_dir when it lies beneath it (lexically,
 * without touching the file system), or NULL. */
char *itk_artifact_name_for_path(const char *run_dir, const char *path);

/* A content type from @name's extension; application/octet-stream when
 * unknown. Never text/html: a bridge must not serve a run's page as one of
 * its own. */
const char *itk_artifact_content_type(const char *name);

/* Opens the regular file @name beneath @run_dir: O_RDONLY|O_CLOEXEC|
 * O_NOFOLLOW for the file and every folder on the way (openat from one to
 * the next). Returns the fd, or -1 with ITK_ERROR_INVALID_ARGS (bad name),
 * ITK_ERROR_NO_SUCH_ARTIFACT (absent, a symlink, not a regular file, a file
 * with more than one hard link). */
int itk_artifact_open(const char *run_dir, const char *name, GError **error);

/* Size and SHA-256 (lowercase hex) of @name beneath @run_dir, read in a
 * worker thread (a backup can be large). */
void itk_artifact_inspect_async(const char *run_dir, const char *name, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data);
gboolean itk_artifact_inspect_finish(GAsyncResult *result, guint64 *size, char **sha256,
                                     GError **error);

G_END_DECLS
