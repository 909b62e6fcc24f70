/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <systemd/sd-bus.h>

G_BEGIN_DECLS

/* Authorization of method calls (DESIGN.md §7): root and the daemon's own
 * user always pass; others are checked with polkit's CheckAuthorization,
 * called over the bus (no libpolkit), honouring the caller's "allow
 * interactive authorization" header flag; where no polkit is on the bus,
 * members of the configured group pass and everyone else is refused. */

/* The actions (docs/security.md has the table of methods and defaults). */
#define ITK_ACTION_RUN_PLAYBOOK "org.ignition.toolkit.run-playbook"
#define ITK_ACTION_RUN_SOURCE "org.ignition.toolkit.run-source"
#define ITK_ACTION_VIEW "org.ignition.toolkit.view"
#define ITK_ACTION_CONTROL_EXECUTION "org.ignition.toolkit.control-execution"
#define ITK_ACTION_MANAGE_CREDENTIALS "org.ignition.toolkit.manage-credentials"
/* Declared for SavePlaybook/DeletePlaybook and SendInput, which check them. */
#define ITK_ACTION_MANAGE_LIBRARY "org.ignition.toolkit.manage-library"
#define ITK_ACTION_STEER_BROWSER "org.ignition.toolkit.steer-browser"

typedef struct _ItkAuthority ItkAuthority;

/* A method body that runs once the caller is authorized: it reads its
 * arguments from @m (rewound to the start) and replies, or returns a
 * negative errno with @error set. */
typedef int (*ItkAuthorizedMethod)(sd_bus_message *m, gpointer user_data, sd_bus_error *error);
/* A method body that runs whatever the decision, told it (a read that
 * shows less to a caller without the right rather than refusing). */
typedef int (*ItkDecidedMethod)(sd_bus_message *m, gboolean allowed, gpointer user_data,
                                sd_bus_error *error);

/* @group: the fallback group name, NULL for none. */
ItkAuthority *itk_authority_new(sd_bus *bus, const char *group);
void itk_authority_free(ItkAuthority *self);

#define ITK_AUTHORITY_NO_OWNER G_MAXUINT32

/* Runs @method for @m when the caller may perform @action_id: at once when
 * the caller is root, the daemon's own user or @owner_uid (the starter of
 * the run concerned, or ITK_AUTHORITY_NO_OWNER), else after polkit answered.
 * The caller's uid is asked of the bus once per client, asynchronously, and
 * cached until the client leaves (itk_authority_forget()). On refusal,
 * replies AccessDenied or InteractiveAuthorizationRequired. @user_data is
 * kept alive with @ref/@unref (may be NULL) while the check is pending.
 * Returns what an sd-bus method handler returns. */
int itk_authority_run(ItkAuthority *self, sd_bus_message *m, const char *action_id,
                      guint32 owner_uid, ItkAuthorizedMethod method, gpointer user_data,
                      gpointer (*ref)(gpointer), void (*unref)(gpointer), sd_bus_error *error);

/* As itk_authority_run(), but @method runs in any case and is told whether
 * the caller may perform @action_id (a challenge counts as no). */
int itk_authority_decide(ItkAuthority *self, sd_bus_message *m, const char *action_id,
                         guint32 owner_uid, ItkDecidedMethod method, gpointer user_data,
                         gpointer (*ref)(gpointer), void (*unref)(gpointer), sd_bus_error *error);

/* The uid of @sender, known once itk_authority_run() checked one of its calls. */
gboolean itk_authority_get_uid(ItkAuthority *self, const char *sender, guint32 *uid);
/* @sender left the bus. */
void itk_authority_forget(ItkAuthority *self, const char *sender);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkAuthority, itk_authority_free)

G_END_DECLS
