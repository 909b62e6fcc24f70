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
        GHashTable *uids;   /* unique name -> uid */
        GHashTable *queues; /* unique name -> SenderQueue*, while a call waits */
};

/* A client's calls wait here, in order, while one of them waits for the
 * bus (its uid) or for polkit: a later call must never overtake an earlier
 * one (Pause then Cancel stay Pause then Cancel). */
typedef struct {
        char *sender;
        GQueue calls;     /* Pending*, the head is the one being decided */
        gboolean waiting; /* the head waits for the bus or polkit */
} SenderQueue;

typedef struct {
        sd_bus_message *m;
        ItkAuthorizedMethod method;
        ItkDecidedMethod decided; /* instead of method: runs refused too */
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
        self->queues = g_hash_table_new(g_str_hash, g_str_equal);
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
        /* Calls still waiting go unanswered: the daemon is exiting. */
        g_hash_table_unref(self->queues);
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

        if (pending->decided != NULL) {
                r = sd_bus_message_rewind(pending->m, 1);
                if (r >= 0)
                        r = pending->decided(pending->m, allowed, pending->user_data, &error);
                if (r < 0)
                        return sd_bus_reply_method_errno(pending->m, r, &error);
                return r;
        }
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

static void itk_authority_pump(ItkAuthority *self, SenderQueue *queue);

static SenderQueue *
itk_authority_queue_for(ItkAuthority *self, const char *sender)
{
        SenderQueue *queue = g_hash_table_lookup(self->queues, sender);

        if (queue == NULL) {
                queue = g_new0(SenderQueue, 1);
                queue->sender = g_strdup(sender);
                g_queue_init(&queue->calls);
                g_hash_table_insert(self->queues, queue->sender, queue);
        }
        return queue;
}

/* The head's wait is over: take it off, then go on with the next calls. */
static void
itk_authority_head_done(ItkAuthority *self, SenderQueue *queue)
{
        pending_free(g_queue_pop_head(&queue->calls));
        queue->waiting = FALSE;
        itk_authority_pump(self, queue);
}

static int
itk_authority_polkit_cb(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        SenderQueue *queue = userdata;
        Pending *pending = g_queue_peek_head(&queue->calls);
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
        itk_authority_head_done(pending->authority, queue);
        return 0;
}

static int
itk_authority_uid_cb(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        SenderQueue *queue = userdata;
        Pending *pending = g_queue_peek_head(&queue->calls);
        ItkAuthority *self = pending->authority;
        const sd_bus_error *failure = sd_bus_message_get_error(reply);
        uint32_t uid;

        if (failure == NULL && sd_bus_message_read(reply, "u", &uid) >= 0) {
                g_hash_table_insert(self->uids, g_strdup(queue->sender), GUINT_TO_POINTER(uid));
                queue->waiting = FALSE;
                itk_authority_pump(self, queue);
                return 0;
        }
        /* The client left before we knew who it was: nobody to answer, but
         * its calls are refused in order all the same. */
        sd_bus_reply_method_errorf(pending->m, SD_BUS_ERROR_ACCESS_DENIED,
                                   "cannot identify the caller%s%s", failure != NULL ? ": " : "",
                                   failure != NULL ? failure->message : "");
        itk_authority_head_done(self, queue);
        return 0;
}

/* Decides the calls at the head of @queue for as long as that needs no
 * wait; a call that needs the bus or polkit stays at the head, waiting. */
static void
itk_authority_pump(ItkAuthority *self, SenderQueue *queue)
{
        Pending *pending;
        int r;

        while (!queue->waiting && (pending = g_queue_peek_head(&queue->calls)) != NULL) {
                guint32 uid;

                if (!itk_authority_get_uid(self, queue->sender, &uid)) {
                        r = sd_bus_call_method_async(
                                self->bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                "org.freedesktop.DBus", "GetConnectionUnixUser",
                                itk_authority_uid_cb, queue, "s", queue->sender);
                } else if (uid == 0 || uid == getuid() || uid == pending->owner_uid) {
                        itk_authority_finish(pending, TRUE, FALSE);
                        pending_free(g_queue_pop_head(&queue->calls));
                        continue;
                } else {
                        /* Subject: the caller's bus name; flags: 1 = AllowUserInteraction. */
                        r = sd_bus_call_method_async(
                                self->bus, NULL, "org.freedesktop.PolicyKit1",
                                "/org/freedesktop/PolicyKit1/Authority",
                                "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization",
                                itk_authority_polkit_cb, queue, "(sa{sv})sa{ss}us",
                                "system-bus-name", 1, "name", "s", queue->sender,
                                pending->action_id, 0,
                                (uint32_t)(sd_bus_message_get_allow_interactive_authorization(
                                                   pending->m) > 0
                                                   ? 1
                                                   : 0),
                                "");
                }
                if (r >= 0) {
                        queue->waiting = TRUE;
                        return;
                }
                sd_bus_reply_method_errorf(pending->m, SD_BUS_ERROR_ACCESS_DENIED,
                                           "cannot authorize the call: %s", g_strerror(-r));
                pending_free(g_queue_pop_head(&queue->calls));
        }
        if (!queue->waiting && g_queue_is_empty(&queue->calls)) {
                g_hash_table_remove(self->queues, queue->sender);
                g_free(queue->sender);
                g_free(queue);
        }
}

static int
itk_authority_enqueue(ItkAuthority *self, sd_bus_message *m, const char *action_id,
                      guint32 owner_uid, ItkAuthorizedMethod method, ItkDecidedMethod decided,
                      gpointer user_data, gpointer (*ref)(gpointer), void (*unref)(gpointer),
                      sd_bus_error *error)
{
        const char *sender = sd_bus_message_get_sender(m);
        Pending *pending;
        guint32 uid;
        int r;

        if (sender == NULL)
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                        "calls must come through the bus");
        /* The common case: a known, trusted caller with nothing queued. */
        if (!g_hash_table_contains(self->queues, sender) &&
            itk_authority_get_uid(self, sender, &uid) &&
            (uid == 0 || uid == getuid() || uid == owner_uid)) {
                r = sd_bus_message_rewind(m, 1);
                if (r < 0)
                        return r;
                return decided != NULL ? decided(m, TRUE, user_data, error)
                                       : method(m, user_data, error);
        }
        pending = g_new0(Pending, 1);
        pending->m = sd_bus_message_ref(m);
        pending->method = method;
        pending->decided = decided;
        pending->user_data = ref != NULL && user_data != NULL ? ref(user_data) : user_data;
        pending->unref = unref;
        pending->action_id = g_strdup(action_id);
        pending->owner_uid = owner_uid;
        pending->authority = self;
        g_queue_push_tail(&itk_authority_queue_for(self, sender)->calls, pending);
        itk_authority_pump(self, itk_authority_queue_for(self, sender));
        return 1;
}

int
itk_authority_run(ItkAuthority *self, sd_bus_message *m, const char *action_id, guint32 owner_uid,
                  ItkAuthorizedMethod method, gpointer user_data, gpointer (*ref)(gpointer),
                  void (*unref)(gpointer), sd_bus_error *error)
{
        return itk_authority_enqueue(self, m, action_id, owner_uid, method, NULL, user_data, ref,
                                     unref, error);
}

int
itk_authority_decide(ItkAuthority *self, sd_bus_message *m, const char *action_id,
                     guint32 owner_uid, ItkDecidedMethod method, gpointer user_data,
                     gpointer (*ref)(gpointer), void (*unref)(gpointer), sd_bus_error *error)
{
        return itk_authority_enqueue(self, m, action_id, owner_uid, NULL, method, user_data, ref,
                                     unref, error);
}
