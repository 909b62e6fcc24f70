/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The main window: the playbook library, live executions, history and
 * credentials, one AdwViewStack page each. Every D-Bus call is async with
 * the app's GCancellable; the window shows when the daemon is absent and
 * when the user is not authorized. */
#include "config.h"

#include "itk-client-dbus.h"
#include "itk-run-dialog.h"
#include "itk-run-view.h"
#include "itk-test-hook.h"
#include "itk-window.h"

typedef struct {
        GtkWindow *window;
        GtkStack *main_stack;
        AdwViewStack *pages;
        AdwStatusPage *absent;
        /* Playbooks */
        GtkSearchEntry *playbook_search;
        GtkListBox *playbook_list;
        GtkStack *detail_stack;
        GtkLabel *detail_title;
        GtkLabel *detail_id;
        GtkLabel *detail_description;
        GtkListBox *detail_params;
        GtkListBox *detail_steps;
        GtkButton *run_button;
        char *selected_playbook;
        /* Executions */
        GDBusObjectManager *objects;
        GtkListBox *execution_list;
        GtkStack *execution_stack;
        GHashTable *execution_rows; /* object path -> AdwActionRow */
        /* History */
        GtkDropDown *history_status;
        GtkSearchEntry *history_search;
        GtkListBox *history_list;
        guint history_generation; /* only the newest GetHistory's answer is shown */
        GtkStack *history_stack;
        AdwStatusPage *history_message;
        /* Credentials */
        GtkListBox *credential_list;
        GtkStack *credential_stack;
        AdwStatusPage *credential_message;
} ItkWindow;

static ItkWindow *
get_self(GtkWindow *window)
{
        return g_object_get_data(G_OBJECT(window), "itk-window");
}

static void
clear_list(GtkListBox *list)
{
        GtkWidget *child;

        while ((child = gtk_widget_get_first_child(GTK_WIDGET(list))) != NULL)
                gtk_list_box_remove(list, child);
}

static const char *
lookup_string(GVariant *dict, const char *key)
{
        const char *value = NULL;

        if (!g_variant_lookup(dict, key, "&s", &value))
                return "";
        return value;
}

static void
set_badge(GtkWidget *label, const char *status)
{
        static const char *const classes[] = { "success", "error", "warning", "accent" };

        gtk_label_set_text(GTK_LABEL(label), itk_status_label(status));
        for (guint i = 0; i < G_N_ELEMENTS(classes); i++)
                gtk_widget_remove_css_class(label, classes[i]);
        if (g_strcmp0(status, "completed") == 0)
                gtk_widget_add_css_class(label, "success");
        else if (g_strcmp0(status, "failed") == 0)
                gtk_widget_add_css_class(label, "error");
        else if (g_strcmp0(status, "cancelled") == 0 || g_strcmp0(status, "paused") == 0)
                gtk_widget_add_css_class(label, "warning");
        else if (g_strcmp0(status, "running") == 0)
                gtk_widget_add_css_class(label, "accent");
}

static GtkWidget *
status_badge(const char *status)
{
        GtkWidget *label = gtk_label_new("");

        gtk_widget_add_css_class(label, "caption-heading");
        gtk_widget_set_valign(label, GTK_ALIGN_CENTER);
        set_badge(label, status);
        return label;
}

static GtkWidget *
scrolled(GtkWidget *child)
{
        GtkWidget *sw = gtk_scrolled_window_new();

        gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(sw), child);
        gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(sw), GTK_POLICY_NEVER,
                                       GTK_POLICY_AUTOMATIC);
        gtk_widget_set_vexpand(sw, TRUE);
        return sw;
}

static GtkWidget *
boxed_list(void)
{
        GtkWidget *list = gtk_list_box_new();

        gtk_list_box_set_selection_mode(GTK_LIST_BOX(list), GTK_SELECTION_NONE);
        gtk_widget_add_css_class(list, "boxed-list");
        gtk_widget_set_valign(list, GTK_ALIGN_START);
        return list;
}

static GtkWidget *
clamped(GtkWidget *child)
{
        GtkWidget *clamp = adw_clamp_new();
        GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);

        gtk_widget_set_margin_top(box, 12);
        gtk_widget_set_margin_bottom(box, 12);
        gtk_widget_set_margin_start(box, 12);
        gtk_widget_set_margin_end(box, 12);
        gtk_box_append(GTK_BOX(box), child);
        adw_clamp_set_maximum_size(ADW_CLAMP(clamp), 900);
        adw_clamp_set_child(ADW_CLAMP(clamp), box);
        return clamp;
}

/* --- playbooks ------------------------------------------------------------------------ */

/* The playbook's group, else the folder of its id ("gateway/backup.yaml"). */
static char *
playbook_group(GVariant *pb)
{
        const char *group = lookup_string(pb, "group");
        const char *id = lookup_string(pb, "id");
        const char *slash = strrchr(id, '/');

        if (group[0] != '\0')
                return g_strdup(group);
        return slash != NULL ? g_strndup(id, slash - id) : g_strdup("");
}

static void show_playbook(ItkWindow *self, const char *id);

static void
playbook_header_cb(GtkListBoxRow *row, GtkListBoxRow *before, gpointer user_data)
{
        const char *group = g_object_get_data(G_OBJECT(row), "group");
        const char *previous = before ? g_object_get_data(G_OBJECT(before), "group") : NULL;

        if (before != NULL && g_strcmp0(group, previous) == 0) {
                gtk_list_box_row_set_header(row, NULL);
                return;
        }
        {
                GtkWidget *header = gtk_label_new(group[0] ? group : _("Other"));

                gtk_widget_add_css_class(header, "heading");
                gtk_label_set_xalign(GTK_LABEL(header), 0);
                gtk_widget_set_margin_top(header, 12);
                gtk_widget_set_margin_bottom(header, 6);
                gtk_widget_set_margin_start(header, 12);
                gtk_list_box_row_set_header(row, header);
        }
}

/* A row's "search" text (casefolded when the row was built) holds the
 * entry's text, case-insensitively; an empty entry matches every row. */
static gboolean
row_matches_search(GtkListBoxRow *row, GtkWidget *entry)
{
        const char *text = gtk_editable_get_text(GTK_EDITABLE(entry));
        const char *haystack = g_object_get_data(G_OBJECT(row), "search");
        g_autofree char *needle = NULL;

        if (text[0] == '\0')
                return TRUE;
        needle = g_utf8_casefold(text, -1);
        return haystack != NULL && strstr(haystack, needle) != NULL;
}

static gboolean
playbook_filter_cb(GtkListBoxRow *row, gpointer user_data)
{
        ItkWindow *self = user_data;

        return row_matches_search(row, GTK_WIDGET(self->playbook_search));
}

static void
playbook_search_changed_cb(GtkSearchEntry *entry, gpointer user_data)
{
        ItkWindow *self = user_data;

        gtk_list_box_invalidate_filter(self->playbook_list);
        gtk_list_box_invalidate_headers(self->playbook_list);
}

static void
playbook_activated_cb(GtkListBox *list, GtkListBoxRow *row, gpointer user_data)
{
        show_playbook(user_data, g_object_get_data(G_OBJECT(row), "id"));
}

static int
compare_playbooks(gconstpointer a, gconstpointer b)
{
        GVariant *pa = *(GVariant **)a, *pb = *(GVariant **)b;
        g_autofree char *ga = playbook_group(pa);
        g_autofree char *gb = playbook_group(pb);
        int by_group = g_strcmp0(ga, gb);

        return by_group != 0 ? by_group
                             : g_strcmp0(lookup_string(pa, "name"), lookup_string(pb, "name"));
}

static void
rebuild_playbooks(ItkWindow *self)
{
        ItkApp *app = itk_app_get();
        g_autoptr(GPtrArray) sorted =
                g_ptr_array_new_with_free_func((GDestroyNotify)g_variant_unref);
        GVariantIter iter;
        GVariant *entry;

        clear_list(self->playbook_list);
        if (app->playbooks == NULL)
                return;
        g_variant_iter_init(&iter, app->playbooks);
        while ((entry = g_variant_iter_next_value(&iter)) != NULL)
                g_ptr_array_add(sorted, entry);
        g_ptr_array_sort(sorted, compare_playbooks);
        for (guint i = 0; i < sorted->len; i++) {
                GVariant *pb = sorted->pdata[i];
                const char *id = lookup_string(pb, "id");
                const char *name = lookup_string(pb, "name");
                gboolean valid = TRUE;
                GtkWidget *row = adw_action_row_new();
                g_autofree char *search = NULL;
                g_autofree char *joined = NULL;

                g_variant_lookup(pb, "valid", "b", &valid);
                adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), name[0] ? name : id);
                adw_action_row_set_subtitle(ADW_ACTION_ROW(row), id);
                gtk_list_box_row_set_activatable(GTK_LIST_BOX_ROW(row), TRUE);
                if (!valid) {
                        GtkWidget *icon = gtk_image_new_from_icon_name("dialog-warning-symbolic");

                        gtk_widget_set_tooltip_text(icon, _("This playbook does not validate"));
                        adw_action_row_add_suffix(ADW_ACTION_ROW(row), icon);
                }
                joined = g_strjoin(" ", id, name, lookup_string(pb, "description"),
                                   lookup_string(pb, "group"), NULL);
                search = g_utf8_casefold(joined, -1);
                g_object_set_data_full(G_OBJECT(row), "id", g_strdup(id), g_free);
                g_object_set_data_full(G_OBJECT(row), "group", playbook_group(pb), g_free);
                g_object_set_data_full(G_OBJECT(row), "search", g_steal_pointer(&search), g_free);
                gtk_list_box_append(self->playbook_list, row);
        }
        if (self->selected_playbook != NULL)
                show_playbook(self, self->selected_playbook);
}

static void
steps_preview_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GVariant) playbook = NULL;
        g_autoptr(GVariant) steps = NULL;
        g_autofree char *id = user_data;
        ItkApp *app = itk_app_get();
        ItkWindow *self;
        GVariantIter iter;
        GVariant *step;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        if (reply == NULL || app->window == NULL)
                return;
        self = get_self(app->window);
        if (g_strcmp0(self->selected_playbook, id) != 0)
                return; /* another playbook was picked meanwhile */
        clear_list(self->detail_steps);
        playbook = g_variant_get_child_value(reply, 0);
        steps = g_variant_lookup_value(playbook, "steps", G_VARIANT_TYPE("aa{sv}"));
        if (steps == NULL)
                return;
        g_variant_iter_init(&iter, steps);
        while ((step = g_variant_iter_next_value(&iter)) != NULL) {
                GtkWidget *row = adw_action_row_new();
                const char *name = lookup_string(step, "name");

                adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row),
                                              name[0] ? name : lookup_string(step, "id"));
                adw_action_row_set_subtitle(ADW_ACTION_ROW(row), lookup_string(step, "type"));
                gtk_list_box_append(self->detail_steps, row);
                g_variant_unref(step);
        }
}

static void
show_playbook(ItkWindow *self, const char *id)
{
        g_autoptr(GVariant) pb = itk_app_lookup_playbook(id);
        g_autoptr(GVariant) params = NULL;
        g_autofree char *id_copy = g_strdup(id);
        const char *description;
        gboolean valid = TRUE;
        GVariantIter iter;
        GVariant *param;

        g_free(self->selected_playbook);
        self->selected_playbook = g_steal_pointer(&id_copy);
        if (pb == NULL) {
                gtk_stack_set_visible_child_name(self->detail_stack, "empty");
                return;
        }
        gtk_stack_set_visible_child_name(self->detail_stack, "detail");
        gtk_label_set_text(self->detail_title, lookup_string(pb, "name"));
        gtk_label_set_text(self->detail_id, id);
        description = lookup_string(pb, "description");
        gtk_label_set_text(self->detail_description,
                           description[0] ? description : _("No description."));
        g_variant_lookup(pb, "valid", "b", &valid);
        gtk_widget_set_sensitive(GTK_WIDGET(self->run_button), valid);
        clear_list(self->detail_params);
        params = g_variant_lookup_value(pb, "parameters", G_VARIANT_TYPE("aa{sv}"));
        if (params != NULL) {
                g_variant_iter_init(&iter, params);
                while ((param = g_variant_iter_next_value(&iter)) != NULL) {
                        GtkWidget *row = adw_action_row_new();
                        g_autofree char *subtitle =
                                g_strdup_printf("%s — %s", lookup_string(param, "type"),
                                                lookup_string(param, "description"));

                        adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row),
                                                      lookup_string(param, "name"));
                        adw_action_row_set_subtitle(ADW_ACTION_ROW(row), subtitle);
                        gtk_list_box_append(self->detail_params, row);
                        g_variant_unref(param);
                }
        }
        clear_list(self->detail_steps);
        itk_app_call_manager("GetPlaybook", g_variant_new("(s)", id), "(a{sv})", steps_preview_cb,
                             g_strdup(id));
}

static void
run_clicked_cb(GtkButton *button, gpointer user_data)
{
        ItkWindow *self = user_data;
        g_autoptr(GVariant) pb = NULL;

        if (self->selected_playbook == NULL)
                return;
        pb = itk_app_lookup_playbook(self->selected_playbook);
        if (pb != NULL)
                gtk_window_present(itk_run_dialog_new(self->window, pb));
}

static void
playbooks_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        ItkApp *app = itk_app_get();

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        if (reply == NULL) {
                g_autofree char *text = itk_app_describe_error(error);

                if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                        itk_app_toast(text);
                return;
        }
        g_clear_pointer(&app->playbooks, g_variant_unref);
        app->playbooks = g_variant_get_child_value(reply, 0);
        if (app->window != NULL)
                rebuild_playbooks(get_self(app->window));
        itk_test_hook_emit("PlaybooksLoaded",
                           g_variant_new("(u)", (guint)g_variant_n_children(app->playbooks)));
}

static GtkWidget *
build_playbooks_page(ItkWindow *self)
{
        GtkWidget *paned = gtk_paned_new(GTK_ORIENTATION_HORIZONTAL);
        GtkWidget *left = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
        GtkWidget *detail = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
        GtkWidget *empty = adw_status_page_new();
        GtkWidget *list = gtk_list_box_new();
        GtkWidget *label;

        self->playbook_search = GTK_SEARCH_ENTRY(gtk_search_entry_new());
        gtk_widget_set_margin_top(GTK_WIDGET(self->playbook_search), 6);
        gtk_widget_set_margin_bottom(GTK_WIDGET(self->playbook_search), 6);
        gtk_widget_set_margin_start(GTK_WIDGET(self->playbook_search), 6);
        gtk_widget_set_margin_end(GTK_WIDGET(self->playbook_search), 6);
        gtk_accessible_update_property(GTK_ACCESSIBLE(self->playbook_search),
                                       GTK_ACCESSIBLE_PROPERTY_LABEL, _("Search playbooks"), -1);
        g_signal_connect(self->playbook_search, "search-changed",
                         G_CALLBACK(playbook_search_changed_cb), self);
        gtk_box_append(GTK_BOX(left), GTK_WIDGET(self->playbook_search));
        self->playbook_list = GTK_LIST_BOX(list);
        gtk_widget_add_css_class(list, "navigation-sidebar");
        gtk_list_box_set_header_func(self->playbook_list, playbook_header_cb, NULL, NULL);
        gtk_list_box_set_filter_func(self->playbook_list, playbook_filter_cb, self, NULL);
        g_signal_connect(list, "row-activated", G_CALLBACK(playbook_activated_cb), self);
        gtk_box_append(GTK_BOX(left), scrolled(list));
        gtk_widget_set_size_request(left, 280, -1);

        self->detail_title = GTK_LABEL(gtk_label_new(""));
        gtk_widget_add_css_class(GTK_WIDGET(self->detail_title), "title-2");
        gtk_label_set_xalign(self->detail_title, 0);
        gtk_label_set_wrap(self->detail_title, TRUE);
        gtk_box_append(GTK_BOX(detail), GTK_WIDGET(self->detail_title));
        self->detail_id = GTK_LABEL(gtk_label_new(""));
        gtk_widget_add_css_class(GTK_WIDGET(self->detail_id), "dim-label");
        gtk_label_set_xalign(self->detail_id, 0);
        gtk_label_set_selectable(self->detail_id, TRUE);
        gtk_box_append(GTK_BOX(detail), GTK_WIDGET(self->detail_id));
        self->detail_description = GTK_LABEL(gtk_label_new(""));
        gtk_label_set_wrap(self->detail_description, TRUE);
        gtk_label_set_xalign(self->detail_description, 0);
        gtk_box_append(GTK_BOX(detail), GTK_WIDGET(self->detail_description));
        self->run_button = GTK_BUTTON(gtk_button_new_with_mnemonic(_("_Run…")));
        gtk_widget_add_css_class(GTK_WIDGET(self->run_button), "suggested-action");
        gtk_widget_add_css_class(GTK_WIDGET(self->run_button), "pill");
        gtk_widget_set_halign(GTK_WIDGET(self->run_button), GTK_ALIGN_START);
        g_signal_connect(self->run_button, "clicked", G_CALLBACK(run_clicked_cb), self);
        gtk_box_append(GTK_BOX(detail), GTK_WIDGET(self->run_button));
        label = gtk_label_new(_("Parameters"));
        gtk_widget_add_css_class(label, "heading");
        gtk_label_set_xalign(GTK_LABEL(label), 0);
        gtk_box_append(GTK_BOX(detail), label);
        self->detail_params = GTK_LIST_BOX(boxed_list());
        gtk_box_append(GTK_BOX(detail), GTK_WIDGET(self->detail_params));
        label = gtk_label_new(_("Steps"));
        gtk_widget_add_css_class(label, "heading");
        gtk_label_set_xalign(GTK_LABEL(label), 0);
        gtk_box_append(GTK_BOX(detail), label);
        self->detail_steps = GTK_LIST_BOX(boxed_list());
        gtk_box_append(GTK_BOX(detail), GTK_WIDGET(self->detail_steps));

        adw_status_page_set_icon_name(ADW_STATUS_PAGE(empty), "view-list-symbolic");
        adw_status_page_set_title(ADW_STATUS_PAGE(empty), _("No Playbook Selected"));
        adw_status_page_set_description(ADW_STATUS_PAGE(empty),
                                        _("Pick a playbook to see what it does and run it."));
        self->detail_stack = GTK_STACK(gtk_stack_new());
        gtk_stack_add_named(self->detail_stack, empty, "empty");
        gtk_stack_add_named(self->detail_stack, scrolled(clamped(detail)), "detail");

        gtk_paned_set_start_child(GTK_PANED(paned), left);
        gtk_paned_set_end_child(GTK_PANED(paned), GTK_WIDGET(self->detail_stack));
        gtk_paned_set_resize_start_child(GTK_PANED(paned), FALSE);
        gtk_paned_set_shrink_start_child(GTK_PANED(paned), FALSE);
        return paned;
}

/* --- executions ------------------------------------------------------------------------ */

static void
execution_activated_cb(GtkListBox *list, GtkListBoxRow *row, gpointer user_data)
{
        const char *path = g_object_get_data(G_OBJECT(row), "path");

        if (path != NULL)
                gtk_window_present(itk_run_view_open_live(path, NULL));
}

static void
update_execution_row(GtkWidget *row, ItkClientDBusExecution *run)
{
        const char *name = itk_client_dbus_execution_get_playbook_name(run);
        const char *step = itk_client_dbus_execution_get_current_step_name(run);
        g_autofree char *subtitle = NULL;

        adw_preferences_row_set_title(
                ADW_PREFERENCES_ROW(row),
                name && name[0] ? name : itk_client_dbus_execution_get_playbook(run));
        subtitle = g_strdup_printf("%s%s%s", itk_client_dbus_execution_get_id(run),
                                   step && step[0] ? " · " : "", step ? step : "");
        adw_action_row_set_subtitle(ADW_ACTION_ROW(row), subtitle);
        gtk_progress_bar_set_fraction(g_object_get_data(G_OBJECT(row), "progress"),
                                      itk_client_dbus_execution_get_progress(run));
        set_badge(g_object_get_data(G_OBJECT(row), "badge"),
                  itk_client_dbus_execution_get_status(run));
}

static void
executions_counted(ItkWindow *self)
{
        guint count = g_hash_table_size(self->execution_rows);

        gtk_stack_set_visible_child_name(self->execution_stack, count ? "list" : "empty");
        itk_test_hook_emit("ExecutionsShown", g_variant_new("(u)", count));
}

/* One row per live execution, updated in place: a status change costs one
 * row, not the list, however many runs are listed. */
static void
add_execution(ItkWindow *self, GDBusObject *object)
{
        g_autoptr(GDBusInterface) iface =
                g_dbus_object_get_interface(object, ITK_EXECUTION_INTERFACE);
        const char *path = g_dbus_object_get_object_path(object);
        GtkWidget *row, *progress, *badge;

        if (iface == NULL || g_hash_table_contains(self->execution_rows, path))
                return;
        row = adw_action_row_new();
        progress = gtk_progress_bar_new();
        gtk_widget_set_valign(progress, GTK_ALIGN_CENTER);
        gtk_widget_set_size_request(progress, 120, -1);
        badge = status_badge("");
        adw_action_row_add_suffix(ADW_ACTION_ROW(row), progress);
        adw_action_row_add_suffix(ADW_ACTION_ROW(row), badge);
        g_object_set_data(G_OBJECT(row), "progress", progress);
        g_object_set_data(G_OBJECT(row), "badge", badge);
        gtk_list_box_row_set_activatable(GTK_LIST_BOX_ROW(row), TRUE);
        g_object_set_data_full(G_OBJECT(row), "path", g_strdup(path), g_free);
        update_execution_row(row, ITK_CLIENT_DBUS_EXECUTION(iface));
        /* Newest first. */
        gtk_list_box_prepend(self->execution_list, row);
        g_hash_table_insert(self->execution_rows, g_strdup(path), row);
}

static void
clear_executions(ItkWindow *self)
{
        clear_list(self->execution_list);
        g_hash_table_remove_all(self->execution_rows);
}

static void
object_added_cb(GDBusObjectManager *manager, GDBusObject *object, gpointer user_data)
{
        add_execution(user_data, object);
        executions_counted(user_data);
}

static void
object_removed_cb(GDBusObjectManager *manager, GDBusObject *object, gpointer user_data)
{
        ItkWindow *self = user_data;
        GtkWidget *row =
                g_hash_table_lookup(self->execution_rows, g_dbus_object_get_object_path(object));

        if (row == NULL)
                return;
        gtk_list_box_remove(self->execution_list, row);
        g_hash_table_remove(self->execution_rows, g_dbus_object_get_object_path(object));
        executions_counted(self);
}

static void
object_properties_cb(GDBusObjectManagerClient *manager, GDBusObjectProxy *object, GDBusProxy *proxy,
                     GVariant *changed, GStrv invalidated, gpointer user_data)
{
        ItkWindow *self = user_data;
        GtkWidget *row =
                g_hash_table_lookup(self->execution_rows, g_dbus_proxy_get_object_path(proxy));

        if (row != NULL && ITK_CLIENT_DBUS_IS_EXECUTION(proxy))
                update_execution_row(row, ITK_CLIENT_DBUS_EXECUTION(proxy));
}

static void
objects_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        GDBusObjectManager *objects;
        ItkApp *app = itk_app_get();
        ItkWindow *self;
        GList *list;

        objects = itk_client_dbus_object_manager_client_new_finish(result, &error);
        if (objects == NULL || app->window == NULL) {
                if (objects == NULL && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                        g_warning("cannot list executions: %s", error->message);
                g_clear_object(&objects);
                return;
        }
        self = get_self(app->window);
        g_clear_object(&self->objects);
        clear_executions(self);
        self->objects = objects;
        g_signal_connect(objects, "object-added", G_CALLBACK(object_added_cb), self);
        g_signal_connect(objects, "object-removed", G_CALLBACK(object_removed_cb), self);
        g_signal_connect(objects, "interface-proxy-properties-changed",
                         G_CALLBACK(object_properties_cb), self);
        list = g_dbus_object_manager_get_objects(objects);
        for (GList *l = list; l != NULL; l = l->next)
                add_execution(self, l->data);
        g_list_free_full(list, g_object_unref);
        executions_counted(self);
}

static GtkWidget *
build_executions_page(ItkWindow *self)
{
        GtkWidget *empty = adw_status_page_new();
        GtkWidget *list = boxed_list();

        self->execution_list = GTK_LIST_BOX(list);
        self->execution_rows = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_signal_connect(list, "row-activated", G_CALLBACK(execution_activated_cb), self);
        adw_status_page_set_icon_name(ADW_STATUS_PAGE(empty), "media-playback-start-symbolic");
        adw_status_page_set_title(ADW_STATUS_PAGE(empty), _("No Runs"));
        adw_status_page_set_description(
                ADW_STATUS_PAGE(empty),
                _("Runs appear here while they are live; finished ones move to History."));
        self->execution_stack = GTK_STACK(gtk_stack_new());
        gtk_stack_add_named(self->execution_stack, empty, "empty");
        gtk_stack_add_named(self->execution_stack, scrolled(clamped(list)), "list");
        return GTK_WIDGET(self->execution_stack);
}

/* --- history --------------------------------------------------------------------------- */

static const char *const history_statuses[] = { "", "completed", "failed", "cancelled" };

static void
history_activated_cb(GtkListBox *list, GtkListBoxRow *row, gpointer user_data)
{
        const char *id = g_object_get_data(G_OBJECT(row), "id");

        if (id != NULL)
                gtk_window_present(itk_run_view_open_record(id));
}

static gboolean
history_filter_cb(GtkListBoxRow *row, gpointer user_data)
{
        ItkWindow *self = user_data;

        return row_matches_search(row, GTK_WIDGET(self->history_search));
}

static void
history_search_changed_cb(GtkSearchEntry *entry, gpointer user_data)
{
        ItkWindow *self = user_data;

        gtk_list_box_invalidate_filter(self->history_list);
}

static void
history_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GVariant) runs = NULL;
        ItkApp *app = itk_app_get();
        ItkWindow *self;
        GVariantIter iter;
        GVariant *run;
        guint count = 0;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        if (app->window == NULL ||
            (error && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)))
                return;
        self = get_self(app->window);
        if (GPOINTER_TO_UINT(user_data) != self->history_generation)
                return; /* a newer filter was asked for meanwhile */
        clear_list(self->history_list);
        if (reply == NULL) {
                g_autofree char *text = itk_app_describe_error(error);

                adw_status_page_set_title(self->history_message,
                                          itk_app_error_is_denied(error)
                                                  ? _("Not Authorized")
                                                  : _("History Unavailable"));
                adw_status_page_set_description(self->history_message, text);
                gtk_stack_set_visible_child_name(self->history_stack, "message");
                itk_test_hook_emit("PageMessage",
                                   g_variant_new("(sss)", "history",
                                                 adw_status_page_get_title(self->history_message),
                                                 text));
                return;
        }
        runs = g_variant_get_child_value(reply, 0);
        g_variant_iter_init(&iter, runs);
        while ((run = g_variant_iter_next_value(&iter)) != NULL) {
                GtkWidget *row = adw_action_row_new();
                gint64 created = 0, started = 0, finished = 0;
                g_autofree char *when = NULL;
                g_autofree char *duration = NULL;
                g_autofree char *subtitle = NULL;
                g_autofree char *joined = NULL;
                const char *name = lookup_string(run, "playbook-name");

                g_variant_lookup(run, "created-at", "x", &created);
                g_variant_lookup(run, "started-at", "x", &started);
                g_variant_lookup(run, "finished-at", "x", &finished);
                when = itk_format_time(created);
                duration = itk_format_duration(
                        started > 0 && finished >= started ? finished - started : -1);
                subtitle = g_strdup_printf("%s · %s · %s", lookup_string(run, "playbook"), when,
                                           duration);
                adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row),
                                              name[0] ? name : lookup_string(run, "playbook"));
                adw_action_row_set_subtitle(ADW_ACTION_ROW(row), subtitle);
                adw_action_row_add_suffix(ADW_ACTION_ROW(row),
                                          status_badge(lookup_string(run, "status")));
                gtk_list_box_row_set_activatable(GTK_LIST_BOX_ROW(row), TRUE);
                joined = g_strjoin(" ", name, lookup_string(run, "playbook"),
                                   lookup_string(run, "id"), lookup_string(run, "error"), NULL);
                g_object_set_data_full(G_OBJECT(row), "search", g_utf8_casefold(joined, -1),
                                       g_free);
                g_object_set_data_full(G_OBJECT(row), "id", g_strdup(lookup_string(run, "id")),
                                       g_free);
                gtk_list_box_append(self->history_list, row);
                g_variant_unref(run);
                count++;
        }
        if (count == 0) {
                adw_status_page_set_title(self->history_message, _("No Finished Runs"));
                adw_status_page_set_description(self->history_message, NULL);
        }
        gtk_stack_set_visible_child_name(self->history_stack, count ? "list" : "message");
        itk_test_hook_emit("HistoryShown", g_variant_new("(u)", count));
}

static void
load_history(ItkWindow *self)
{
        guint selected = gtk_drop_down_get_selected(self->history_status);
        const char *status =
                selected < G_N_ELEMENTS(history_statuses) ? history_statuses[selected] : "";

        if (itk_app_get()->owner == NULL)
                return;
        itk_app_call_manager("GetHistory", g_variant_new("(us)", 200, status), "(aa{sv})",
                             history_cb, GUINT_TO_POINTER(++self->history_generation));
}

static void
history_status_cb(GObject *dropdown, GParamSpec *pspec, gpointer user_data)
{
        load_history(user_data);
}

static GtkWidget *
build_history_page(ItkWindow *self)
{
        const char *labels[] = { _("Any Status"), _("Completed"), _("Failed"), _("Cancelled"),
                                 NULL };
        GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
        GtkWidget *bar = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
        GtkWidget *list = boxed_list();

        self->history_search = GTK_SEARCH_ENTRY(gtk_search_entry_new());
        gtk_widget_set_hexpand(GTK_WIDGET(self->history_search), TRUE);
        g_signal_connect(self->history_search, "search-changed",
                         G_CALLBACK(history_search_changed_cb), self);
        self->history_status = GTK_DROP_DOWN(gtk_drop_down_new_from_strings(labels));
        gtk_accessible_update_property(GTK_ACCESSIBLE(self->history_status),
                                       GTK_ACCESSIBLE_PROPERTY_LABEL, _("Status filter"), -1);
        g_signal_connect(self->history_status, "notify::selected", G_CALLBACK(history_status_cb),
                         self);
        gtk_box_append(GTK_BOX(bar), GTK_WIDGET(self->history_search));
        gtk_box_append(GTK_BOX(bar), GTK_WIDGET(self->history_status));
        gtk_widget_set_margin_top(bar, 6);
        gtk_widget_set_margin_start(bar, 12);
        gtk_widget_set_margin_end(bar, 12);
        gtk_box_append(GTK_BOX(box), bar);

        self->history_list = GTK_LIST_BOX(list);
        gtk_list_box_set_filter_func(self->history_list, history_filter_cb, self, NULL);
        g_signal_connect(list, "row-activated", G_CALLBACK(history_activated_cb), self);
        self->history_message = ADW_STATUS_PAGE(adw_status_page_new());
        adw_status_page_set_icon_name(self->history_message, "document-open-recent-symbolic");
        adw_status_page_set_title(self->history_message, _("No Finished Runs"));
        self->history_stack = GTK_STACK(gtk_stack_new());
        gtk_widget_set_vexpand(GTK_WIDGET(self->history_stack), TRUE);
        gtk_stack_add_named(self->history_stack, GTK_WIDGET(self->history_message), "message");
        gtk_stack_add_named(self->history_stack, scrolled(clamped(list)), "list");
        gtk_box_append(GTK_BOX(box), GTK_WIDGET(self->history_stack));
        return box;
}

/* --- credentials ----------------------------------------------------------------------- */

static void load_credentials(ItkWindow *self);

static void
credential_call_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        ItkApp *app = itk_app_get();

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        if (reply == NULL) {
                g_autofree char *text = itk_app_describe_error(error);

                if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                        itk_app_toast(text);
                return;
        }
        if (app->window != NULL)
                load_credentials(get_self(app->window));
}

static void
add_field(GVariantBuilder *b, const char *key, GtkEditable *editable, gboolean skip_empty)
{
        const char *text = gtk_editable_get_text(editable);

        if (skip_empty && text[0] == '\0')
                return;
        g_variant_builder_add(b, "{sv}", key, g_variant_new_string(text));
}

static void
credential_response_cb(AdwMessageDialog *dialog, const char *response, gpointer user_data)
{
        GtkEditable *name = g_object_get_data(G_OBJECT(dialog), "name");
        GVariantBuilder b;

        if (g_strcmp0(response, "save") != 0)
                return;
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        add_field(&b, "username", g_object_get_data(G_OBJECT(dialog), "username"), FALSE);
        add_field(&b, "gateway-url", g_object_get_data(G_OBJECT(dialog), "gateway-url"), FALSE);
        add_field(&b, "description", g_object_get_data(G_OBJECT(dialog), "description"), FALSE);
        /* Secrets are write-only: left empty, the stored one is kept. */
        add_field(&b, "password", g_object_get_data(G_OBJECT(dialog), "password"), TRUE);
        add_field(&b, "api-token", g_object_get_data(G_OBJECT(dialog), "api-token"), TRUE);
        itk_app_call_manager("SetCredential",
                             g_variant_new("(sa{sv})", gtk_editable_get_text(name), &b), NULL,
                             credential_call_cb, NULL);
}

static GtkWidget *credential_dialog;

static void
credential_dialog_destroy_cb(GtkWidget *dialog, gpointer user_data)
{
        if (credential_dialog == dialog)
                credential_dialog = NULL;
}

static GtkEditable *
dialog_entry(GtkWidget *group, GObject *dialog, const char *key, const char *title,
             const char *value, gboolean secret)
{
        GtkWidget *row = secret ? adw_password_entry_row_new() : adw_entry_row_new();

        adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), title);
        if (value != NULL)
                gtk_editable_set_text(GTK_EDITABLE(row), value);
        adw_preferences_group_add(ADW_PREFERENCES_GROUP(group), row);
        g_object_set_data(dialog, key, row);
        return GTK_EDITABLE(row);
}

static void
edit_credential(ItkWindow *self, GVariant *credential)
{
        GtkWidget *dialog = adw_message_dialog_new(
                self->window, credential ? _("Edit Credential") : _("Add Credential"), NULL);
        GtkWidget *group = adw_preferences_group_new();
        gboolean has_password = FALSE, has_token = FALSE;
        GtkEditable *name;

        if (credential != NULL) {
                g_variant_lookup(credential, "has-password", "b", &has_password);
                g_variant_lookup(credential, "has-api-token", "b", &has_token);
        }
        name = dialog_entry(group, G_OBJECT(dialog), "name", _("Name"),
                            credential ? lookup_string(credential, "name") : NULL, FALSE);
        gtk_editable_set_editable(name, credential == NULL);
        dialog_entry(group, G_OBJECT(dialog), "username", _("Username"),
                     credential ? lookup_string(credential, "username") : NULL, FALSE);
        dialog_entry(group, G_OBJECT(dialog), "gateway-url", _("Gateway URL"),
                     credential ? lookup_string(credential, "gateway-url") : NULL, FALSE);
        dialog_entry(group, G_OBJECT(dialog), "description", _("Description"),
                     credential ? lookup_string(credential, "description") : NULL, FALSE);
        dialog_entry(group, G_OBJECT(dialog), "password",
                     has_password ? _("Password (stored; type to replace)") : _("Password"), NULL,
                     TRUE);
        dialog_entry(group, G_OBJECT(dialog), "api-token",
                     has_token ? _("API Token (stored; type to replace)") : _("API Token"), NULL,
                     TRUE);
        adw_message_dialog_set_extra_child(ADW_MESSAGE_DIALOG(dialog), group);
        adw_message_dialog_add_responses(ADW_MESSAGE_DIALOG(dialog), "cancel", _("_Cancel"), "save",
                                         _("_Save"), NULL);
        adw_message_dialog_set_response_appearance(ADW_MESSAGE_DIALOG(dialog), "save",
                                                   ADW_RESPONSE_SUGGESTED);
        adw_message_dialog_set_default_response(ADW_MESSAGE_DIALOG(dialog), "save");
        g_signal_connect(dialog, "response", G_CALLBACK(credential_response_cb), NULL);
        g_signal_connect(dialog, "destroy", G_CALLBACK(credential_dialog_destroy_cb), NULL);
        credential_dialog = dialog;
        gtk_window_present(GTK_WINDOW(dialog));
}

gboolean
itk_window_edit_credential(GtkWindow *window, const char *name)
{
        ItkApp *app = itk_app_get();
        GVariantIter iter;
        GVariant *credential;

        if (name[0] == '\0') {
                edit_credential(get_self(window), NULL);
                return TRUE;
        }
        if (app->credentials == NULL)
                return FALSE;
        g_variant_iter_init(&iter, app->credentials);
        while ((credential = g_variant_iter_next_value(&iter)) != NULL) {
                gboolean found = g_str_equal(lookup_string(credential, "name"), name);

                if (found)
                        edit_credential(get_self(window), credential);
                g_variant_unref(credential);
                if (found)
                        return TRUE;
        }
        return FALSE;
}

GtkWidget *
itk_window_get_credential_dialog(void)
{
        return credential_dialog;
}

static void
delete_response_cb(AdwMessageDialog *dialog, const char *response, gpointer user_data)
{
        const char *name = g_object_get_data(G_OBJECT(dialog), "credential");

        if (g_strcmp0(response, "delete") == 0)
                itk_app_call_manager("DeleteCredential", g_variant_new("(s)", name), NULL,
                                     credential_call_cb, NULL);
}

static void
delete_clicked_cb(GtkButton *button, gpointer user_data)
{
        ItkWindow *self = user_data;
        const char *name = g_object_get_data(G_OBJECT(button), "credential");
        GtkWidget *dialog = adw_message_dialog_new(self->window, _("Delete Credential?"), NULL);

        adw_message_dialog_format_body(ADW_MESSAGE_DIALOG(dialog),
                                       _("Playbooks that use “%s” will no longer find it."), name);
        adw_message_dialog_add_responses(ADW_MESSAGE_DIALOG(dialog), "cancel", _("_Cancel"),
                                         "delete", _("_Delete"), NULL);
        adw_message_dialog_set_response_appearance(ADW_MESSAGE_DIALOG(dialog), "delete",
                                                   ADW_RESPONSE_DESTRUCTIVE);
        g_object_set_data_full(G_OBJECT(dialog), "credential", g_strdup(name), g_free);
        g_signal_connect(dialog, "response", G_CALLBACK(delete_response_cb), NULL);
        gtk_window_present(GTK_WINDOW(dialog));
}

static void
edit_clicked_cb(GtkButton *button, gpointer user_data)
{
        edit_credential(user_data, g_object_get_data(G_OBJECT(button), "credential-data"));
}

static void
add_credential_cb(GtkButton *button, gpointer user_data)
{
        edit_credential(user_data, NULL);
}

static void
credentials_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        ItkApp *app = itk_app_get();
        ItkWindow *self;
        GVariantIter iter;
        GVariant *credential;
        guint count = 0;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        if (app->window == NULL ||
            (error && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)))
                return;
        self = get_self(app->window);
        clear_list(self->credential_list);
        if (reply == NULL) {
                g_autofree char *text = itk_app_describe_error(error);

                adw_status_page_set_title(self->credential_message,
                                          itk_app_error_is_denied(error)
                                                  ? _("Not Authorized")
                                                  : _("Credentials Unavailable"));
                adw_status_page_set_description(self->credential_message, text);
                gtk_stack_set_visible_child_name(self->credential_stack, "message");
                itk_test_hook_emit(
                        "PageMessage",
                        g_variant_new("(sss)", "credentials",
                                      adw_status_page_get_title(self->credential_message), text));
                return;
        }
        g_clear_pointer(&app->credentials, g_variant_unref);
        app->credentials = g_variant_get_child_value(reply, 0);
        g_variant_iter_init(&iter, app->credentials);
        while ((credential = g_variant_iter_next_value(&iter)) != NULL) {
                GtkWidget *row = adw_action_row_new();
                GtkWidget *edit = gtk_button_new_from_icon_name("document-edit-symbolic");
                GtkWidget *del = gtk_button_new_from_icon_name("user-trash-symbolic");
                g_autofree char *subtitle =
                        g_strdup_printf("%s · %s", lookup_string(credential, "username"),
                                        lookup_string(credential, "gateway-url"));
                const char *name = lookup_string(credential, "name");

                adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), name);
                adw_action_row_set_subtitle(ADW_ACTION_ROW(row), subtitle);
                gtk_widget_set_tooltip_text(edit, _("Edit"));
                gtk_widget_set_tooltip_text(del, _("Delete"));
                gtk_widget_add_css_class(edit, "flat");
                gtk_widget_add_css_class(del, "flat");
                gtk_widget_set_valign(edit, GTK_ALIGN_CENTER);
                gtk_widget_set_valign(del, GTK_ALIGN_CENTER);
                g_object_set_data_full(G_OBJECT(edit), "credential-data", g_variant_ref(credential),
                                       (GDestroyNotify)g_variant_unref);
                g_object_set_data_full(G_OBJECT(del), "credential", g_strdup(name), g_free);
                g_signal_connect(edit, "clicked", G_CALLBACK(edit_clicked_cb), self);
                g_signal_connect(del, "clicked", G_CALLBACK(delete_clicked_cb), self);
                adw_action_row_add_suffix(ADW_ACTION_ROW(row), edit);
                adw_action_row_add_suffix(ADW_ACTION_ROW(row), del);
                gtk_list_box_append(self->credential_list, row);
                g_variant_unref(credential);
                count++;
        }
        if (count == 0) {
                adw_status_page_set_title(self->credential_message, _("No Credentials"));
                adw_status_page_set_description(
                        self->credential_message,
                        _("Store a gateway's username, password or API token once; playbooks "
                          "refer to it by name."));
        }
        gtk_stack_set_visible_child_name(self->credential_stack, count ? "list" : "message");
        itk_test_hook_emit("CredentialsShown", g_variant_new("(u)", count));
}

static void
load_credentials(ItkWindow *self)
{
        if (itk_app_get()->owner != NULL)
                itk_app_call_manager("ListCredentials", NULL, "(aa{sv})", credentials_cb, NULL);
}

static GtkWidget *
build_credentials_page(ItkWindow *self)
{
        GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
        GtkWidget *add = gtk_button_new_with_mnemonic(_("_Add Credential"));
        GtkWidget *list = boxed_list();

        gtk_widget_add_css_class(add, "pill");
        gtk_widget_set_halign(add, GTK_ALIGN_CENTER);
        g_signal_connect(add, "clicked", G_CALLBACK(add_credential_cb), self);
        self->credential_list = GTK_LIST_BOX(list);
        self->credential_message = ADW_STATUS_PAGE(adw_status_page_new());
        adw_status_page_set_icon_name(self->credential_message, "dialog-password-symbolic");
        self->credential_stack = GTK_STACK(gtk_stack_new());
        gtk_widget_set_vexpand(GTK_WIDGET(self->credential_stack), TRUE);
        gtk_stack_add_named(self->credential_stack, GTK_WIDGET(self->credential_message),
                            "message");
        gtk_stack_add_named(self->credential_stack, scrolled(clamped(list)), "list");
        gtk_box_append(GTK_BOX(box), GTK_WIDGET(self->credential_stack));
        gtk_widget_set_margin_bottom(add, 12);
        gtk_box_append(GTK_BOX(box), add);
        return box;
}

/* --- the window ------------------------------------------------------------------------ */

void
itk_window_reload(GtkWindow *window)
{
        ItkWindow *self = get_self(window);
        ItkApp *app = itk_app_get();

        if (app->owner == NULL)
                return;
        itk_app_call_manager("ListPlaybooks", NULL, "(aa{sv})", playbooks_cb, NULL);
        load_history(self);
        load_credentials(self);
}

void
itk_window_daemon_changed(GtkWindow *window, gboolean present)
{
        ItkWindow *self = get_self(window);
        ItkApp *app = itk_app_get();

        gtk_stack_set_visible_child_name(self->main_stack, present ? "pages" : "absent");
        if (!present) {
                g_clear_object(&self->objects);
                clear_executions(self);
                executions_counted(self);
                itk_test_hook_emit("DaemonPresent", g_variant_new("(b)", FALSE));
                return;
        }
        itk_client_dbus_object_manager_client_new(
                app->bus, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_DO_NOT_AUTO_START, ITK_BUS_NAME,
                ITK_MANAGER_PATH, app->cancellable, objects_cb, NULL);
        itk_window_reload(window);
        itk_test_hook_emit("DaemonPresent", g_variant_new("(b)", TRUE));
}

void
itk_window_show_page(GtkWindow *window, const char *name)
{
        adw_view_stack_set_visible_child_name(get_self(window)->pages, name);
}

guint
itk_window_count_rows(GtkWindow *window, const char *page)
{
        ItkWindow *self = get_self(window);
        GtkListBox *list = g_str_equal(page, "playbooks")    ? self->playbook_list
                           : g_str_equal(page, "executions") ? self->execution_list
                           : g_str_equal(page, "history")    ? self->history_list
                                                             : self->credential_list;
        guint count = 0;

        for (GtkWidget *c = gtk_widget_get_first_child(GTK_WIDGET(list)); c != NULL;
             c = gtk_widget_get_next_sibling(c))
                count += GTK_IS_LIST_BOX_ROW(c) && gtk_widget_get_child_visible(c);
        return count;
}

gboolean
itk_window_filter_history(GtkWindow *window, const char *status)
{
        ItkWindow *self = get_self(window);

        for (guint i = 0; i < G_N_ELEMENTS(history_statuses); i++) {
                if (!g_str_equal(history_statuses[i], status))
                        continue;
                gtk_drop_down_set_selected(self->history_status, i);
                adw_view_stack_set_visible_child_name(self->pages, "history");
                load_history(self);
                return TRUE;
        }
        return FALSE;
}

void
itk_window_search_playbooks(GtkWindow *window, const char *text)
{
        ItkWindow *self = get_self(window);

        gtk_editable_set_text(GTK_EDITABLE(self->playbook_search), text);
        /* At once, not after the entry's typing delay. */
        playbook_search_changed_cb(self->playbook_search, self);
}

void
itk_window_select_playbook(GtkWindow *window, const char *id)
{
        ItkWindow *self = get_self(window);

        adw_view_stack_set_visible_child_name(self->pages, "playbooks");
        show_playbook(self, id);
}

const char *
itk_window_get_main_page(GtkWindow *window)
{
        return gtk_stack_get_visible_child_name(get_self(window)->main_stack);
}

static void
search_action_cb(GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
        ItkWindow *self = user_data;

        adw_view_stack_set_visible_child_name(self->pages, "playbooks");
        gtk_widget_grab_focus(GTK_WIDGET(self->playbook_search));
}

static void
page_shown_cb(GObject *stack, GParamSpec *pspec, gpointer user_data)
{
        ItkWindow *self = user_data;
        const char *name = adw_view_stack_get_visible_child_name(self->pages);

        /* History and credentials change behind our back: read them when shown. */
        if (g_strcmp0(name, "history") == 0)
                load_history(self);
        else if (g_strcmp0(name, "credentials") == 0)
                load_credentials(self);
}

static void
window_destroy_cb(GtkWidget *widget, gpointer user_data)
{
        ItkWindow *self = user_data;
        ItkApp *app = itk_app_get();

        g_clear_object(&self->objects);
        g_hash_table_unref(self->execution_rows);
        g_free(self->selected_playbook);
        if (app->window == self->window)
                app->window = NULL;
        g_free(self);
}

static GMenuModel *
primary_menu(void)
{
        GMenu *menu = g_menu_new();
        GMenu *section = g_menu_new();

        g_menu_append(section, _("_Reload"), "app.reload");
        g_menu_append(section, _("_Keyboard Shortcuts"), "win.show-help-overlay");
        g_menu_append(section, _("_About Ignition Toolkit"), "app.about");
        g_menu_append_section(menu, NULL, G_MENU_MODEL(section));
        g_object_unref(section);
        return G_MENU_MODEL(menu);
}

GtkWindow *
itk_window_new(AdwApplication *gapp)
{
        ItkWindow *self = g_new0(ItkWindow, 1);
        GtkWidget *window = adw_application_window_new(GTK_APPLICATION(gapp));
        GtkWidget *toasts = adw_toast_overlay_new();
        GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
        GtkWidget *header = adw_header_bar_new();
        GtkWidget *title = adw_view_switcher_title_new();
        GtkWidget *switcher_bar = adw_view_switcher_bar_new();
        GtkWidget *menu_button = gtk_menu_button_new();
        g_autoptr(GMenuModel) menu = primary_menu();
        g_autoptr(GSimpleAction) search = g_simple_action_new("search", NULL);
        AdwViewStackPage *page;

        self->window = GTK_WINDOW(window);
        g_object_set_data(G_OBJECT(window), "itk-window", self);
        g_object_set_data(G_OBJECT(window), "toasts", toasts);
        gtk_window_set_title(GTK_WINDOW(window), _("Ignition Toolkit"));
        gtk_window_set_default_size(GTK_WINDOW(window), 1000, 700);
        gtk_widget_set_name(window, "main");

        self->pages = ADW_VIEW_STACK(adw_view_stack_new());
        page = adw_view_stack_add_titled(self->pages, build_playbooks_page(self), "playbooks",
                                         _("Playbooks"));
        adw_view_stack_page_set_icon_name(page, "view-list-symbolic");
        page = adw_view_stack_add_titled(self->pages, build_executions_page(self), "executions",
                                         _("Runs"));
        adw_view_stack_page_set_icon_name(page, "media-playback-start-symbolic");
        page = adw_view_stack_add_titled(self->pages, build_history_page(self), "history",
                                         _("History"));
        adw_view_stack_page_set_icon_name(page, "document-open-recent-symbolic");
        page = adw_view_stack_add_titled(self->pages, build_credentials_page(self), "credentials",
                                         _("Credentials"));
        adw_view_stack_page_set_icon_name(page, "dialog-password-symbolic");
        g_signal_connect(self->pages, "notify::visible-child", G_CALLBACK(page_shown_cb), self);

        adw_view_switcher_title_set_stack(ADW_VIEW_SWITCHER_TITLE(title), self->pages);
        adw_view_switcher_title_set_title(ADW_VIEW_SWITCHER_TITLE(title), _("Ignition Toolkit"));
        adw_header_bar_set_title_widget(ADW_HEADER_BAR(header), title);
        gtk_menu_button_set_icon_name(GTK_MENU_BUTTON(menu_button), "open-menu-symbolic");
        gtk_menu_button_set_menu_model(GTK_MENU_BUTTON(menu_button), menu);
        gtk_widget_set_tooltip_text(menu_button, _("Main Menu"));
        adw_header_bar_pack_end(ADW_HEADER_BAR(header), menu_button);
        adw_view_switcher_bar_set_stack(ADW_VIEW_SWITCHER_BAR(switcher_bar), self->pages);
        g_object_bind_property(title, "title-visible", switcher_bar, "reveal",
                               G_BINDING_SYNC_CREATE);

        self->absent = ADW_STATUS_PAGE(adw_status_page_new());
        adw_status_page_set_icon_name(self->absent, "network-offline-symbolic");
        adw_status_page_set_title(self->absent, _("Service Not Running"));
        adw_status_page_set_description(
                self->absent, _("The Ignition Toolkit service (ignition-toolkitd) is not on the "
                                "bus. This window connects as soon as it starts."));
        self->main_stack = GTK_STACK(gtk_stack_new());
        gtk_stack_add_named(self->main_stack, GTK_WIDGET(self->absent), "absent");
        gtk_stack_add_named(self->main_stack, GTK_WIDGET(self->pages), "pages");
        gtk_widget_set_vexpand(GTK_WIDGET(self->main_stack), TRUE);

        gtk_box_append(GTK_BOX(box), header);
        gtk_box_append(GTK_BOX(box), GTK_WIDGET(self->main_stack));
        gtk_box_append(GTK_BOX(box), switcher_bar);
        adw_toast_overlay_set_child(ADW_TOAST_OVERLAY(toasts), box);
        adw_application_window_set_content(ADW_APPLICATION_WINDOW(window), toasts);

        g_signal_connect(search, "activate", G_CALLBACK(search_action_cb), self);
        g_action_map_add_action(G_ACTION_MAP(window), G_ACTION(search));
        gtk_application_window_set_help_overlay(GTK_APPLICATION_WINDOW(window),
                                                itk_shortcuts_window_new());
        g_signal_connect(window, "destroy", G_CALLBACK(window_destroy_cb), self);
        itk_test_hook_window_shown(GTK_WINDOW(window));
        if (itk_app_get()->owner != NULL)
                itk_window_daemon_changed(GTK_WINDOW(window), TRUE);
        return GTK_WINDOW(window);
}
