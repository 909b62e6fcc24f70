/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Manager.StageInputFile, StageHostFile and ListInputFiles: the sd-bus glue
 * of itk-input-files.c. All three need the right to run playbooks. */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "itk-bus.h"
#include "itk-error.h"
#include "itk-input-files-dbus.h"

static ItkAuthority *authority;

void
itk_input_files_dbus_set_authority(ItkAuthority *auth)
{
        authority = auth;
}

static void
reply_error(sd_bus_message *m, GError *error)
{
        __attribute__((cleanup(sd_bus_error_free))) sd_bus_error bus_error = SD_BUS_ERROR_NULL;
        int r = itk_bus_error_from_gerror(error, &bus_error);

        sd_bus_reply_method_errno(m, r, &bus_error);
}

static void
staged_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        sd_bus_message *m = user_data;
        g_autoptr(GError) error = NULL;
        g_autofree char *token = NULL;
        g_autofree char *sha256 = NULL;
        guint64 size = 0;

        if (itk_input_files_stage_finish(ITK_INPUT_FILES(source), result, &token, &size, &sha256,
                                         &error))
                sd_bus_reply_method_return(m, "sts", token, (uint64_t)size, sha256);
        else
                reply_error(m, error);
        sd_bus_message_unref(m);
}

static void
listed_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        sd_bus_message *m = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) files =
                itk_input_files_list_host_finish(ITK_INPUT_FILES(source), result, &error);
        _itk_cleanup_bus_message_ sd_bus_message *reply = NULL;
        int r;

        if (files == NULL) {
                reply_error(m, error);
        } else {
                r = sd_bus_message_new_method_return(m, &reply);
                if (r >= 0)
                        r = itk_bus_message_append_variant(reply, files);
                if (r >= 0)
                        r = sd_bus_send(NULL, reply, NULL);
                if (r < 0)
                        sd_bus_reply_method_errno(m, r, NULL);
        }
        sd_bus_message_unref(m);
}

static int
input_files_authorized(sd_bus_message *m, gpointer userdata, sd_bus_error *error)
{
        ItkInputFiles *files = itk_manager_get_input_files(userdata);
        const char *member = sd_bus_message_get_member(m);
        guint32 uid;
        int r;

        if (g_str_equal(member, "ListInputFiles")) {
                itk_input_files_list_host_async(files, NULL, listed_cb, sd_bus_message_ref(m));
                return 1;
        }
        /* Known: the authorization that let this call through asked for it. */
        if (!itk_authority_get_uid(authority, sd_bus_message_get_sender(m), &uid))
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                        "cannot identify the caller");
        if (g_str_equal(member, "StageInputFile")) {
                const char *name;
                int fd, copy;

                r = sd_bus_message_read(m, "sh", &name, &fd);
                if (r < 0)
                        return r;
                /* The message owns @fd; the worker reads its own copy. */
                copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                if (copy < 0)
                        return -errno;
                itk_input_files_stage_fd_async(files, uid, name, copy, NULL, staged_cb,
                                               sd_bus_message_ref(m));
        } else {
                const char *directory, *name;

                r = sd_bus_message_read(m, "ss", &directory, &name);
                if (r < 0)
                        return r;
                itk_input_files_stage_host_async(files, uid, directory, name, NULL, staged_cb,
                                                 sd_bus_message_ref(m));
        }
        return 1;
}

int
itk_input_files_dbus_method(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        return itk_authority_run(authority, m, ITK_ACTION_RUN_PLAYBOOK, ITK_AUTHORITY_NO_OWNER,
                                 input_files_authorized, userdata, g_object_ref, g_object_unref,
                                 error);
}
