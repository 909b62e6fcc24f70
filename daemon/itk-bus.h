/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <systemd/sd-bus.h>

#include "itk-limits.h"

G_BEGIN_DECLS

#define ITK_BUS_NAME "org.ignition.Toolkit"
#define ITK_BUS_PATH "/org/ignition/Toolkit"
#define ITK_BUS_EXECUTION_PREFIX "/org/ignition/Toolkit/execution"
#define ITK_BUS_MANAGER_IFACE "org.ignition.Toolkit.Manager"
#define ITK_BUS_EXECUTION_IFACE "org.ignition.Toolkit.Execution"

/* Attaches @bus to the thread-default GMainContext as a GSource built from
 * sd_bus_get_fd(), sd_bus_get_events() and sd_bus_get_timeout(); dispatch
 * runs sd_bus_process() until it has nothing left (in bounded batches so the
 * loop stays fair). @disconnected is called once when the bus goes away. */
GSource *itk_bus_attach(sd_bus *bus, GSourceFunc disconnected, gpointer user_data);

/* The one place where engine errors become D-Bus errors: fills @ret with
 * the name of the ItkError code (org.ignition.Toolkit.Error.* or the
 * standard org.freedesktop.DBus.Error.*) and the message; returns a
 * negative errno for the sd-bus handler to return. */
int itk_bus_error_from_gerror(const GError *error, sd_bus_error *ret);

/* Appends a GVariant of any D-Bus type (no handles). */
int itk_bus_message_append_variant(sd_bus_message *m, GVariant *value);
/* Replies to @call with the file descriptor @fd, which it closes either way
 * (sd-bus sends a duplicate of it). */
int itk_bus_reply_fd(sd_bus_message *call, int fd);
/* Replies to @call with a paged read: @items, then the next page's cursor. */
int itk_bus_reply_page(sd_bus_message *call, GVariant *items, const char *next_cursor);
/* Reads the next complete value into a new (non-floating) GVariant. */
int itk_bus_message_read_variant(sd_bus_message *m, GVariant **ret);
/* The same, counting every part against @budget before copying it: a bound
 * met returns -E2BIG with @error set (ITK_ERROR_INVALID_ARGS naming it). */
int itk_bus_message_read_bounded(sd_bus_message *m, ItkValueBudget *budget, GVariant **ret,
                                 GError **error);

static inline void
itk_bus_message_unrefp(sd_bus_message **m)
{
        if (*m != NULL)
                sd_bus_message_unref(*m);
}
#define _itk_cleanup_bus_message_ __attribute__((cleanup(itk_bus_message_unrefp)))

static inline void
itk_bus_creds_unrefp(sd_bus_creds **c)
{
        if (*c != NULL)
                sd_bus_creds_unref(*c);
}
#define _itk_cleanup_bus_creds_ __attribute__((cleanup(itk_bus_creds_unrefp)))

G_END_DECLS
