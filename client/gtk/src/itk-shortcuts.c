/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include "itk-window.h"

GtkShortcutsWindow *
itk_shortcuts_window_new(void)
{
        static const struct {
                const char *title;
                const char *accel;
        } shortcuts[] = {
                { N_("Search playbooks"), "<Control>f" },
                { N_("Playbooks"), "<Alt>1" },
                { N_("Runs"), "<Alt>2" },
                { N_("History"), "<Alt>3" },
                { N_("Credentials"), "<Alt>4" },
                { N_("Reload"), "<Control>r" },
                { N_("Keyboard shortcuts"), "<Control>question" },
                { N_("Close window"), "<Control>w" },
                { N_("Quit"), "<Control>q" },
        };
        g_autoptr(GString) ui =
                g_string_new("<interface><object class='GtkShortcutsWindow' id='w'><property "
                             "name='modal'>1</property><child><object class='GtkShortcutsSection'>"
                             "<child><object class='GtkShortcutsGroup'>");
        g_autoptr(GtkBuilder) builder = NULL;
        GtkShortcutsWindow *window;

        g_string_append_printf(ui, "<property name='title'>%s</property>", _("General"));
        for (guint i = 0; i < G_N_ELEMENTS(shortcuts); i++) {
                g_autofree char *title = g_markup_escape_text(_(shortcuts[i].title), -1);
                g_autofree char *accel = g_markup_escape_text(shortcuts[i].accel, -1);

                g_string_append_printf(ui,
                                       "<child><object class='GtkShortcutsShortcut'>"
                                       "<property name='title'>%s</property>"
                                       "<property name='accelerator'>%s</property>"
                                       "</object></child>",
                                       title, accel);
        }
        g_string_append(ui, "</object></child></object></child></object></interface>");
        builder = gtk_builder_new_from_string(ui->str, (gssize)ui->len);
        window = GTK_SHORTCUTS_WINDOW(gtk_builder_get_object(builder, "w"));
        /* The builder drops its reference; the application window takes ours. */
        return g_object_ref(window);
}
