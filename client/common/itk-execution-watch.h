/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "itk-run-status.h"

G_BEGIN_DECLS

#define ITK_BUS_NAME "org.ignition.Toolkit"
#define ITK_MANAGER_PATH "/org/ignition/Toolkit"
#define ITK_EXECUTION_PATH_PREFIX "/org/ignition/Toolkit/execution/"
#define ITK_MANAGER_INTERFACE "org.ignition.Toolkit.Manager"
#define ITK_EXECUTION_INTERFACE "org.ignition.Toolkit.Execution"

#define ITK_TYPE_EXECUTION_WATCH (itk_execution_watch_get_type())
G_DECLARE_FINAL_TYPE(ItkExecutionWatch, itk_execution_watch, ITK, EXECUTION_WATCH, GObject)

/*
 * ItkExecutionWatch: the signals of every execution (or of one) of the daemon
 * that owns @bus_name, none missed and none from anyone else. The one copy of
 * the subscription logic that ItkRunFollower and the bridge share.
 *
 * - The match rules are sender-agnostic and in place from creation on, so a
 *   daemon that starts (or restarts) while the watch exists is heard from its
 *   first signal. GDBus's own per-owner subscriptions are added only after a
 *   new owner is seen, and lose what the daemon says in between.
 * - The owner (a unique name) is tracked with NameOwnerChanged and one
 *   GetNameOwner; signals that arrive before it is known are kept and then
 *   replayed if they came from it, dropped if not.
 * - itk_execution_watch_start_async() holds back the signals of runs not
 *   heard from before while StartExecution is on its way: what the new run
 *   says before the reply names it is replayed, in order, once the caller's
 *   callback has run (and has the path). Runs already known flow on.
 *
 * Signals (@path is the execution's object path):
 * "status-changed" (const char *path, guint status, guint previous: ItkRunStatus),
 * "step-changed" (path, gint index, const char *step_id, const char *status,
 *   const char *message), "log" (path, guint64 usec, guint priority,
 *   const char *step_id, const char *message), "properties-changed" (path,
 *   GVariant *changed a{sv}), "finished" (path, const char *status,
 *   const char *error), "owner-changed" (const char *owner or NULL).
 */
ItkExecutionWatch *itk_execution_watch_new(GDBusConnection *connection, const char *bus_name,
                                           const char *path);

/* StartExecution, with new runs' signals held until the reply (and the
 * callback) are through. Returns the new execution's object path. */
void itk_execution_watch_start_async(ItkExecutionWatch *self, const char *playbook,
                                     GVariant *parameters, GVariant *options,
                                     GCancellable *cancellable, GAsyncReadyCallback callback,
                                     gpointer user_data);
char *itk_execution_watch_start_finish(ItkExecutionWatch *self, GAsyncResult *result,
                                       GError **error);

/* The daemon's unique name, NULL while unknown or absent. */
const char *itk_execution_watch_get_owner(ItkExecutionWatch *self);
GDBusConnection *itk_execution_watch_get_connection(ItkExecutionWatch *self);
const char *itk_execution_watch_get_bus_name(ItkExecutionWatch *self);

G_END_DECLS
