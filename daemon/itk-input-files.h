/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Input files: what a `file` playbook parameter receives. A client stages a
 * file first (its bytes through a file descriptor, or a copy of a file from
 * one of the admin's InputFileDirectories); the daemon stores it under
 * STATEDIR/inputs/ with its size and SHA-256 and answers a token. Starting a
 * run with the value "staged:TOKEN" moves the file into the run's folder
 * (inputs/PARAM/NAME), and the step sees that path. Tokens are single use,
 * belong to the uid that staged them and expire unused. */

#define ITK_INPUT_FILES_PREFIX "staged:"
#define ITK_INPUT_FILES_DEFAULT_MAX_BYTES (G_GUINT64_CONSTANT(2) * 1024 * 1024 * 1024)
#define ITK_INPUT_FILES_DEFAULT_EXPIRY_SEC 3600
#define ITK_INPUT_FILES_MAX_PER_UID 16
#define ITK_INPUT_FILES_LIST_MAX 5000
#define ITK_INPUT_FILES_LIST_DEPTH 4
/* A writer that sends nothing for this long is given up on. */
#define ITK_INPUT_FILES_IDLE_SEC 120

#define ITK_TYPE_INPUT_FILES (itk_input_files_get_type())
G_DECLARE_FINAL_TYPE(ItkInputFiles, itk_input_files, ITK, INPUT_FILES, GObject)

/* Creates STATEDIR/inputs (mode 0700) and empties it: tokens do not outlive
 * the daemon. @host_dirs: absolute folders the admin allows (may be NULL). */
ItkInputFiles *itk_input_files_new(const char *state_dir, guint64 max_bytes, guint expiry_sec,
                                   const char *const *host_dirs, GError **error);
guint64 itk_input_files_get_max_bytes(ItkInputFiles *self);

/* TRUE when @name is a plain file name: not empty, no '/', not starting with
 * '.', no control character, UTF-8, at most 255 bytes. */
gboolean itk_input_files_name_is_valid(const char *name, GError **error);

/* Reads @fd (taken) to its end in a worker thread into staging. Errors:
 * ITK_ERROR_INVALID_ARGS (name), ITK_ERROR_LIMITS_EXCEEDED (too large, too
 * many staged), ITK_ERROR_TIMED_OUT (the writer stalled). */
void itk_input_files_stage_fd_async(ItkInputFiles *self, guint32 uid, const char *name, int fd,
                                    GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data);
/* Copies @name beneath the allowed @directory (exactly as configured) into
 * staging, opening every component with O_NOFOLLOW. Errors as above, and
 * ITK_ERROR_NO_SUCH_INPUT_FILE. */
void itk_input_files_stage_host_async(ItkInputFiles *self, guint32 uid, const char *directory,
                                      const char *name, GCancellable *cancellable,
                                      GAsyncReadyCallback callback, gpointer user_data);
/* Either stage call's result: the token, size and SHA-256 (lowercase hex). */
gboolean itk_input_files_stage_finish(ItkInputFiles *self, GAsyncResult *result, char **token,
                                      guint64 *size, char **sha256, GError **error);

/* aa{sv} directory s, name s, size t, modified-at x: regular files in the
 * allowed folders (walked in a worker thread); floating via _finish. */
void itk_input_files_list_host_async(ItkInputFiles *self, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data);
GVariant *itk_input_files_list_host_finish(ItkInputFiles *self, GAsyncResult *result,
                                           GError **error);

/* Checks a file parameter's value as a caller gave it: "staged:TOKEN" of
 * @uid's. Anything else is ITK_ERROR_INVALID_PARAMETERS naming @param. */
gboolean itk_input_files_check(ItkInputFiles *self, guint32 uid, const char *param,
                               const char *value, GError **error);
/* Moves the staged file of @value into @run_dir/inputs/PARAM/NAME; returns
 * that path and sets @log_line to "input file 'PARAM': NAME, SIZE bytes,
 * sha256 HEX". */
char *itk_input_files_claim(ItkInputFiles *self, guint32 uid, const char *param, const char *value,
                            const char *run_dir, char **log_line, GError **error);

G_END_DECLS
