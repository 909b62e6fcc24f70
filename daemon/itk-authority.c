/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <grp.h>
#include <unistd.h>

#include "itk-authority.h"
#include "itk-bus.h"

struct _ItkAuthority {
        sd_bus *bus;
        gboolean have_group;
        gid_t gid;
        GHashTable *uids; /* unique name -> uid */
};

typedef struct {
        sd_bus_message *m;
        ItkAuthorizedMethod method;
        gpointer user_data;
        void (*unref)(gpointer);
        char *action_id;
        guint32 owner_uid;
        ItkAuthority *authority;
} Pending;

static void
pending_free(Pending *pending)
{
        sd_bus_message_unref(pending->m);
        if (pending->unref != NULL && pending->user_data != NULL)
                pending->unref(pending->user_data);
        g_free(pending->action_id);
        g_free(pending);
}

ItkAuthority *
itk_authority_new(sd_bus *bus, const char *group)
{
        ItkAuthority *self = g_new0(ItkAuthority, 1);

        self->bus = sd_bus_ref(bus);
        self->uids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        if (group != NULL && *group != '\0') {
                /* Resolved once at start-up: NSS lookups may block. */
                struct group *entry = getgrnam(group);
                if (entry != NULL) {
                        self->have_group = TRUE;
                        self->gid = entry->gr_gid;
                } else {
                        g_message("authorization group '%s' does not exist; without polkit only "
                                  "root may use the daemon",
                                  group);
                }
        }
        return self;
}

void
itk_authority_free(ItkAuthority *self)
{
        if (self == NULL)
                return;
        sd_bus_unref(self->bus);
        g_hash_table_unref(self->uids);
        g_free(self);
}

gboolean
itk_authority_get_uid(ItkAuthority *self, const char *sender, guint32 *uid)
{
        gpointer value;

        if (sender == NULL || !g_hash_table_lookup_extended(self->uids, sender, NULL, &value))
                return FALSE;
        *uid = GPOINTER_TO_UINT(value);
        return TRUE;
}

void
itk_authority_forget(ItkAuthority *self, const char *sender)
{
        g_hash_table_remove(self->uids, sender);
}

static int
itk_authority_finish(Pending *pending, gboolean allowed, gboolean challenge)
{
        __attribute__((cleanup(sd_bus_error_free))) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (!allowed) {
                if (challenge)
                        return sd_bus_reply_method_errorf(
                                pending->m, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                "%s needs interactive authorization; retry allowing it "
                                "(e.g. busctl --allow-interactive-authorization=yes)",
                                pending->action_id);
                return sd_bus_reply_method_errorf(pending->m, SD_BUS_ERROR_ACCESS_DENIED,
                                                  "not authorized for %s", pending->action_id);
        }
        r = sd_bus_message_rewind(pending->m, 1);
        if (r >= 0)
                r = pending->method(pending->m, pending->user_data, &error);
        if (r < 0)
                return sd_bus_reply_method_errno(pending->m, r, &error);
        return r;
}

/* Without polkit: the configured group decides. */
static gboolean
itk_authority_in_group(ItkAuthority *self, sd_bus_message *m)
{
        _itk_cleanup_bus_creds_ sd_bus_creds *creds = NULL;
        const gid_t *gids = NULL;
        gid_t gid;
        int n;

        if (!self->have_group)
                return FALSE;
        /* dbus-daemon does not pass group ids: augment from /proc by pid. The
         * rare fallback path, so the synchronous lookup is acceptable. */
        if (sd_bus_query_sender_creds(m,
                                      SD_BUS_CREDS_PID | SD_BUS_CREDS_EGID |
                                              SD_BUS_CREDS_SUPPLEMENTARY_GIDS |
                                              SD_BUS_CREDS_AUGMENT,
                                      &creds) < 0)
                return FALSE;
        if (sd_bus_creds_get_egid(creds, &gid) >= 0 && gid == self->gid)
                return TRUE;
        n = sd_bus_creds_get_supplementary_gids(creds, &gids);
        for (int i = 0; i < n; i++)
                if (gids[i] == self->gid)
                        return TRUE;
        return FALSE;
}

static int
itk_authority_polkit_cb(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        Pending *pending = userdata;
        const sd_bus_error *error = sd_bus_message_get_error(reply);
        int authorized = 0, challenge = 0;

        if (error != NULL) {
                if (sd_bus_error_has_names(error, SD_BUS_ERROR_SERVICE_UNKNOWN,
                                           SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
                        itk_authority_finish(pending,
                                             itk_authority_in_group(pending->authority, pending->m),
                                             FALSE);
                } else {
                        g_warning("polkit CheckAuthorization for %s failed: %s", pending->action_id,
                                  error->message);
                        itk_authority_finish(pending, FALSE, FALSE);
                }
        } else if (sd_bus_message_enter_container(reply, 'r', "bba{ss}") < 0 ||
                   sd_bus_message_read(reply, "bb", &authorized, &challenge) < 0) {
                g_warning("polkit answered CheckAuthorization for %s with a malformed reply",
                          pending->action_id);
                itk_authority_finish(pending, FALSE, FALSE);
        } else {
                itk_authority_finish(pending, authorized, challenge);
        }
        pending_free(pending);
        return 0;
}

/* The caller's uid is known: run at once, or ask polkit. Returns what a
 * method handler returns; @pending is consumed. */
static int
itk_authority_decide(Pending *pending, guint32 uid, sd_bus_error *error)
{
        ItkAuthority *self = pending->authority;
        sd_bus_message *m = pending->m;
        int r;

        if (uid == 0 || uid == getuid() || uid == pending->owner_uid) {
                /* The method reads its arguments from the start. */
                r = sd_bus_message_rewind(m, 1);
                if (r >= 0)
                        r = pending->method(m, pending->user_data, error);
                pending_free(pending);
                return r;
        }
        /* Subject: the caller's bus name; flags: 1 = AllowUserInteraction. */
        r = sd_bus_call_method_async(
                self->bus, NULL, "org.freedesktop.PolicyKit1",
                "/org/freedesktop/PolicyKit1/Authority", "org.freedesktop.PolicyKit1.Authority",
                "CheckAuthorization", itk_authority_polkit_cb, pending, "(sa{sv})sa{ss}us",
                "system-bus-name", 1, "name", "s", sd_bus_message_get_sender(m), pending->action_id,
                0, (uint32_t)(sd_bus_message_get_allow_interactive_authorization(m) > 0 ? 1 : 0),
                "");
        if (r < 0) {
                pending_free(pending);
                return sd_bus_error_set_errnof(error, r, "cannot ask polkit: %s", g_strerror(-r));
        }
        return 1;
}

static int
itk_authority_uid_cb(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        Pending *pending = userdata;
        __attribute__((cleanup(sd_bus_error_free))) sd_bus_error error = SD_BUS_ERROR_NULL;
        const sd_bus_error *failure = sd_bus_message_get_error(reply);
        sd_bus_message *m = sd_bus_message_ref(pending->m);
        uint32_t uid;
        int r;

        if (failure != NULL) {
                /* The caller left before we knew who it was: nobody to answer. */
                sd_bus_reply_method_errorf(m, SD_BUS_ERROR_ACCESS_DENIED,
                                           "cannot identify the caller: %s", failure->message);
                pending_free(pending);
        } else if (sd_bus_message_read(reply, "u", &uid) < 0) {
                sd_bus_reply_method_errorf(m, SD_BUS_ERROR_ACCESS_DENIED,
                                           "cannot identify the caller");
                pending_free(pending);
        } else {
                g_hash_table_insert(pending->authority->uids,
                                    g_strdup(sd_bus_message_get_sender(m)), GUINT_TO_POINTER(uid));
                r = itk_authority_decide(pending, uid, &error);
                if (r < 0)
                        sd_bus_reply_method_errno(m, r, &error);
        }
        sd_bus_message_unref(m);
        return 0;
}

int
itk_authority_run(ItkAuthority *self, sd_bus_message *m, const char *action_id, guint32 owner_uid,
                  ItkAuthorizedMethod method, gpointer user_data, gpointer (*ref)(gpointer),
                  void (*unref)(gpointer), sd_bus_error *error)
{
        const char *sender = sd_bus_message_get_sender(m);
        Pending *pending;
        guint32 uid;
        int r;

        if (sender == NULL)
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                        "calls must come through the bus");
        pending = g_new0(Pending, 1);
        pending->m = sd_bus_message_ref(m);
        pending->method = method;
        pending->user_data = ref != NULL && user_data != NULL ? ref(user_data) : user_data;
        pending->unref = unref;
        pending->action_id = g_strdup(action_id);
        pending->owner_uid = owner_uid;
        pending->authority = self;
        if (itk_authority_get_uid(self, sender, &uid))
                return itk_authority_decide(pending, uid, error);
        r = sd_bus_call_method_async(self->bus, NULL, "org.freedesktop.DBus",
                                     "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                     "GetConnectionUnixUser", itk_authority_uid_cb, pending, "s",
                                     sender);
        if (r < 0) {
                pending_free(pending);
                return sd_bus_error_set_errnof(error, r, "cannot identify the caller: %s",
                                               g_strerror(-r));
        }
        return 1;
}
