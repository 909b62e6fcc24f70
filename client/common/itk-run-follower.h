/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "itk-execution-watch.h"

G_BEGIN_DECLS

#define ITK_TYPE_RUN_FOLLOWER (itk_run_follower_get_type())
G_DECLARE_FINAL_TYPE(ItkRunFollower, itk_run_follower, ITK, RUN_FOLLOWER, GObject)

/*
 * ItkRunFollower: follows one execution until Finished without missing a
 * transition. Create it, connect to its signals, then either start a run
 * with itk_run_follower_start_async() (the signal match is in place before
 * StartExecution is sent, and signals that arrive before the reply names the
 * new object are kept and replayed) or follow a run that exists with
 * itk_run_follower_follow() (subscribe first, then read Status).
 *
 * Signals: "status-changed" (guint status, guint previous: ItkRunStatus),
 * "step-changed" (gint index, const char *step_id, const char *status,
 * const char *message), "log" (guint64 usec, guint priority, const char
 * *step_id, const char *message), "properties-changed" (GVariant *changed,
 * a{sv}), "finished" (const char *status, const char *error).
 */
ItkRunFollower *itk_run_follower_new(GDBusConnection *connection, const char *bus_name);

void itk_run_follower_start_async(ItkRunFollower *self, const char *playbook, GVariant *parameters,
                                  GVariant *options, GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data);
/* Returns the new execution's object path. */
char *itk_run_follower_start_finish(ItkRunFollower *self, GAsyncResult *result, GError **error);

/* Follows an existing execution; its Status is read after the match is in place. */
void itk_run_follower_follow(ItkRunFollower *self, const char *path);

const char *itk_run_follower_get_path(ItkRunFollower *self);
ItkRunStatus itk_run_follower_get_status(ItkRunFollower *self);
gboolean itk_run_follower_is_finished(ItkRunFollower *self);
GDBusConnection *itk_run_follower_get_connection(ItkRunFollower *self);

G_END_DECLS
