/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The run dialog: one row per declared parameter, by type. Empty fields are
 * left out so the daemon applies the playbook's defaults (shown as
 * placeholders); a refused start (missing or malformed parameters) keeps the
 * dialog open with the daemon's message. */
#include "config.h"

#include "itk-run-dialog.h"
#include "itk-run-view.h"
#include "itk-test-hook.h"

#include <gio/gfiledescriptorbased.h>
#include <gio/gunixfdlist.h>

typedef struct {
        char *name;
        char *type;
        GtkWidget *widget; /* GtkEditable, GtkSwitch or GtkDropDown */
} Field;

typedef struct {
        GtkWindow *window;
        char *playbook_id;
        GPtrArray *fields;
        GtkWidget *start;
        GtkDropDown *credential;
        GtkSwitch *debug;
        GtkLabel *error;
        GCancellable *cancellable;
        ItkRunFollower *follower;
        /* File parameter name -> "staged:TOKEN": the daemon never opens a path a
         * client names, so the chosen files are handed over (StageInputFile) first. */
        GHashTable *staged;
        guint staging; /* index of the field being uploaded */
} RunDialog;

static GtkWindow *current_dialog;

static void
field_free(gpointer data)
{
        Field *f = data;

        g_free(f->name);
        g_free(f->type);
        g_free(f);
}

static const char *
lookup_string(GVariant *dict, const char *key)
{
        const char *value = NULL;

        return g_variant_lookup(dict, key, "&s", &value) ? value : "";
}

static GtkStringList *
credential_names(const char *none_label)
{
        GtkStringList *names = gtk_string_list_new(NULL);
        ItkApp *app = itk_app_get();
        GVariantIter iter;
        GVariant *c;

        gtk_string_list_append(names, none_label);
        if (app->credentials == NULL)
                return names;
        g_variant_iter_init(&iter, app->credentials);
        while ((c = g_variant_iter_next_value(&iter)) != NULL) {
                gtk_string_list_append(names, lookup_string(c, "name"));
                g_variant_unref(c);
        }
        return names;
}

static const char *
dropdown_choice(GtkDropDown *dropdown)
{
        guint selected = gtk_drop_down_get_selected(dropdown);
        GtkStringObject *item;

        /* Item 0 is "None". */
        if (selected == 0 || selected == GTK_INVALID_LIST_POSITION)
                return NULL;
        item = gtk_drop_down_get_selected_item(dropdown);
        return item != NULL ? gtk_string_object_get_string(item) : NULL;
}

static void
file_chosen_cb(GtkNativeDialog *chooser, int response, gpointer user_data)
{
        GtkEditable *entry = user_data;

        if (response == GTK_RESPONSE_ACCEPT) {
                g_autoptr(GFile) file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(chooser));
                g_autofree char *path = file ? g_file_get_path(file) : NULL;

                if (path != NULL)
                        gtk_editable_set_text(entry, path);
        }
        g_object_unref(chooser);
}

static void
choose_file_cb(GtkButton *button, gpointer user_data)
{
        GtkWidget *entry = user_data;
        GtkFileChooserNative *chooser = gtk_file_chooser_native_new(
                _("Choose a File"), GTK_WINDOW(gtk_widget_get_root(GTK_WIDGET(button))),
                GTK_FILE_CHOOSER_ACTION_OPEN, _("_Choose"), _("_Cancel"));

        gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(chooser), TRUE);
        g_signal_connect(chooser, "response", G_CALLBACK(file_chosen_cb), entry);
        gtk_native_dialog_show(GTK_NATIVE_DIALOG(chooser));
}

static char *
default_text(GVariant *param)
{
        g_autoptr(GVariant) value = g_variant_lookup_value(param, "default", NULL);

        if (value == NULL)
                return NULL;
        if (g_variant_is_of_type(value, G_VARIANT_TYPE_VARIANT)) {
                g_autoptr(GVariant) inner = g_variant_get_variant(value);

                return g_variant_is_of_type(inner, G_VARIANT_TYPE_STRING)
                               ? g_variant_dup_string(inner, NULL)
                               : g_variant_print(inner, FALSE);
        }
        return g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)
                       ? g_variant_dup_string(value, NULL)
                       : g_variant_print(value, FALSE);
}

static gboolean
is_secret_name(const char *name)
{
        g_autofree char *lower = g_ascii_strdown(name, -1);

        return strstr(lower, "password") != NULL || strstr(lower, "token") != NULL ||
               strstr(lower, "secret") != NULL;
}

static void
add_parameter_row(RunDialog *self, GtkWidget *group, GVariant *param)
{
        const char *name = lookup_string(param, "name");
        const char *type = lookup_string(param, "type");
        const char *description = lookup_string(param, "description");
        gboolean required = TRUE;
        g_autofree char *def = default_text(param);
        g_autofree char *subtitle = NULL;
        GtkWidget *row = adw_action_row_new();
        Field *field = g_new0(Field, 1);

        g_variant_lookup(param, "required", "b", &required);
        subtitle = g_strdup_printf("%s%s%s%s", type, required && def == NULL ? _(", required") : "",
                                   description[0] ? " — " : "", description);
        adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), name);
        adw_action_row_set_subtitle(ADW_ACTION_ROW(row), subtitle);
        field->name = g_strdup(name);
        field->type = g_strdup(type);
        if (g_str_equal(type, "boolean")) {
                field->widget = gtk_switch_new();
                gtk_switch_set_active(GTK_SWITCH(field->widget), g_strcmp0(def, "true") == 0);
                adw_action_row_set_activatable_widget(ADW_ACTION_ROW(row), field->widget);
        } else if (g_str_equal(type, "credential")) {
                g_autoptr(GtkStringList) names = credential_names(_("None"));

                field->widget = gtk_drop_down_new(G_LIST_MODEL(g_object_ref(names)), NULL);
        } else {
                field->widget = is_secret_name(name) ? gtk_password_entry_new() : gtk_entry_new();
                if (GTK_IS_PASSWORD_ENTRY(field->widget))
                        gtk_password_entry_set_show_peek_icon(GTK_PASSWORD_ENTRY(field->widget),
                                                              TRUE);
                if (def != NULL && GTK_IS_ENTRY(field->widget))
                        gtk_entry_set_placeholder_text(GTK_ENTRY(field->widget), def);
                gtk_widget_set_hexpand(field->widget, TRUE);
                if (g_str_equal(type, "file")) {
                        GtkWidget *choose = gtk_button_new_from_icon_name("document-open-symbolic");

                        gtk_widget_set_tooltip_text(choose, _("Choose a File"));
                        gtk_widget_set_valign(choose, GTK_ALIGN_CENTER);
                        g_signal_connect(choose, "clicked", G_CALLBACK(choose_file_cb),
                                         field->widget);
                        adw_action_row_add_suffix(ADW_ACTION_ROW(row), field->widget);
                        adw_action_row_add_suffix(ADW_ACTION_ROW(row), choose);
                }
        }
        gtk_accessible_update_property(GTK_ACCESSIBLE(field->widget), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                       name, -1);
        gtk_widget_set_valign(field->widget, GTK_ALIGN_CENTER);
        if (gtk_widget_get_parent(field->widget) == NULL)
                adw_action_row_add_suffix(ADW_ACTION_ROW(row), field->widget);
        adw_preferences_group_add(ADW_PREFERENCES_GROUP(group), row);
        g_ptr_array_add(self->fields, field);
}

static GVariant *
collect_parameters(RunDialog *self)
{
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        for (guint i = 0; i < self->fields->len; i++) {
                Field *f = self->fields->pdata[i];

                if (GTK_IS_SWITCH(f->widget)) {
                        g_variant_builder_add(&b, "{sv}", f->name,
                                              g_variant_new_boolean(gtk_switch_get_active(
                                                      GTK_SWITCH(f->widget))));
                } else if (GTK_IS_DROP_DOWN(f->widget)) {
                        const char *choice = dropdown_choice(GTK_DROP_DOWN(f->widget));

                        if (choice != NULL)
                                g_variant_builder_add(&b, "{sv}", f->name,
                                                      g_variant_new_string(choice));
                } else if (g_hash_table_contains(self->staged, f->name)) {
                        g_variant_builder_add(
                                &b, "{sv}", f->name,
                                g_variant_new_string(g_hash_table_lookup(self->staged, f->name)));
                } else {
                        const char *text = gtk_editable_get_text(GTK_EDITABLE(f->widget));

                        /* Text: the daemon converts it as the declared type asks. */
                        if (text[0] != '\0')
                                g_variant_builder_add(&b, "{sv}", f->name,
                                                      g_variant_new_string(text));
                }
        }
        return g_variant_builder_end(&b);
}

static void
show_error(RunDialog *self, const char *text)
{
        gtk_widget_set_sensitive(self->start, TRUE);
        gtk_label_set_text(self->error, text);
        gtk_widget_set_visible(GTK_WIDGET(self->error), TRUE);
        itk_test_hook_emit("DialogError", g_variant_new("(s)", text));
}

static void
started_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        ItkRunFollower *follower = ITK_RUN_FOLLOWER(source);
        g_autoptr(GError) error = NULL;
        g_autofree char *path = itk_run_follower_start_finish(follower, result, &error);
        RunDialog *self;

        if (path == NULL && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return; /* the dialog is gone */
        self = user_data;
        gtk_widget_set_sensitive(self->start, TRUE);
        if (path == NULL) {
                g_autofree char *text = itk_app_describe_error(error);

                g_clear_object(&self->follower);
                show_error(self, text);
                return;
        }
        gtk_window_present(itk_run_view_open_live(path, follower));
        gtk_window_destroy(self->window);
}

static void
start_run(RunDialog *self)
{
        ItkApp *app = itk_app_get();
        GVariantBuilder options;
        const char *credential = dropdown_choice(self->credential);

        g_variant_builder_init(&options, G_VARIANT_TYPE("a{sv}"));
        if (credential != NULL)
                g_variant_builder_add(&options, "{sv}", "credential",
                                      g_variant_new_string(credential));
        if (gtk_switch_get_active(self->debug))
                g_variant_builder_add(&options, "{sv}", "debug", g_variant_new_boolean(TRUE));
        self->follower = itk_run_follower_new(app->bus, ITK_BUS_NAME);
        itk_run_follower_start_async(self->follower, self->playbook_id, collect_parameters(self),
                                     g_variant_builder_end(&options), self->cancellable, started_cb,
                                     self);
}

static void stage_next(RunDialog *self);

static Field *
staging_field(RunDialog *self)
{
        return self->fields->pdata[self->staging];
}

static void
staged_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = g_dbus_connection_call_with_unix_fd_list_finish(
                G_DBUS_CONNECTION(source), NULL, result, &error);
        RunDialog *self;
        const char *token;

        if (reply == NULL && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return; /* the dialog is gone */
        self = user_data;
        if (reply == NULL) {
                g_autofree char *why = itk_app_describe_error(error);
                g_autofree char *text =
                        g_strdup_printf(_("Could not hand over the file for “%s”: %s"),
                                        staging_field(self)->name, why);

                show_error(self, text);
                return;
        }
        g_variant_get(reply, "(&sts)", &token, NULL, NULL);
        g_hash_table_insert(self->staged, g_strdup(staging_field(self)->name),
                            g_strdup_printf("staged:%s", token));
        self->staging++;
        stage_next(self);
}

static void
opened_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GFileInputStream) stream = g_file_read_finish(G_FILE(source), result, &error);
        g_autoptr(GUnixFDList) fds = NULL;
        g_autofree char *name = NULL;
        RunDialog *self;

        if (stream == NULL && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        self = user_data;
        if (stream == NULL || !G_IS_FILE_DESCRIPTOR_BASED(stream)) {
                g_autofree char *text = g_strdup_printf(
                        _("Could not read the file for “%s”: %s"), staging_field(self)->name,
                        error != NULL ? error->message : _("not a local file"));

                show_error(self, text);
                return;
        }
        /* The list dups the descriptor; the stream closes its own. */
        fds = g_unix_fd_list_new();
        if (g_unix_fd_list_append(fds,
                                  g_file_descriptor_based_get_fd(G_FILE_DESCRIPTOR_BASED(stream)),
                                  &error) < 0) {
                show_error(self, error->message);
                return;
        }
        name = g_file_get_basename(G_FILE(source));
        g_dbus_connection_call_with_unix_fd_list(
                itk_app_get()->bus, ITK_BUS_NAME, ITK_MANAGER_PATH, ITK_MANAGER_INTERFACE,
                "StageInputFile", g_variant_new("(sh)", name, 0), G_VARIANT_TYPE("(sts)"),
                G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, G_MAXINT, fds, self->cancellable,
                staged_cb, self);
}

/* Hands the chosen files to the daemon one after the other, then starts. */
static void
stage_next(RunDialog *self)
{
        for (; self->staging < self->fields->len; self->staging++) {
                Field *f = staging_field(self);
                const char *text;
                g_autoptr(GFile) file = NULL;

                if (!g_str_equal(f->type, "file") || !GTK_IS_EDITABLE(f->widget))
                        continue;
                text = gtk_editable_get_text(GTK_EDITABLE(f->widget));
                if (text[0] == '\0')
                        continue;
                file = g_file_new_for_commandline_arg(text);
                g_file_read_async(file, G_PRIORITY_DEFAULT, self->cancellable, opened_cb, self);
                return;
        }
        start_run(self);
}

static void
start_clicked_cb(GtkButton *button, gpointer user_data)
{
        RunDialog *self = user_data;
        ItkApp *app = itk_app_get();

        if (app->bus == NULL || self->follower != NULL || !gtk_widget_get_sensitive(self->start))
                return;
        gtk_widget_set_visible(GTK_WIDGET(self->error), FALSE);
        gtk_widget_set_sensitive(self->start, FALSE);
        /* A token is single use: a retried start hands the files over again. */
        g_hash_table_remove_all(self->staged);
        self->staging = 0;
        stage_next(self);
}

static void
dialog_destroy_cb(GtkWidget *widget, gpointer user_data)
{
        RunDialog *self = user_data;

        g_cancellable_cancel(self->cancellable);
        g_clear_object(&self->cancellable);
        g_clear_object(&self->follower);
        g_ptr_array_unref(self->fields);
        g_hash_table_unref(self->staged);
        g_free(self->playbook_id);
        if (current_dialog == self->window)
                current_dialog = NULL;
        g_free(self);
}

static void
cancel_clicked_cb(GtkButton *button, gpointer user_data)
{
        gtk_window_destroy(GTK_WINDOW(user_data));
}

GtkWindow *
itk_run_dialog_new(GtkWindow *parent, GVariant *playbook)
{
        RunDialog *self = g_new0(RunDialog, 1);
        GtkWidget *window = adw_window_new();
        GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
        GtkWidget *header = adw_header_bar_new();
        GtkWidget *cancel = gtk_button_new_with_mnemonic(_("_Cancel"));
        GtkWidget *page = adw_preferences_page_new();
        GtkWidget *params = adw_preferences_group_new();
        GtkWidget *run_group = adw_preferences_group_new();
        GtkWidget *row;
        g_autoptr(GVariant) declared =
                g_variant_lookup_value(playbook, "parameters", G_VARIANT_TYPE("aa{sv}"));
        g_autoptr(GtkStringList) names = credential_names(_("None"));
        g_autofree char *title = NULL;
        const char *name = lookup_string(playbook, "name");
        GVariantIter iter;
        GVariant *param;

        self->window = GTK_WINDOW(window);
        self->playbook_id = g_strdup(lookup_string(playbook, "id"));
        self->fields = g_ptr_array_new_with_free_func(field_free);
        self->staged = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        self->cancellable = g_cancellable_new();
        title = g_strdup_printf(_("Run %s"), name[0] ? name : self->playbook_id);
        gtk_window_set_title(self->window, title);
        gtk_window_set_modal(self->window, TRUE);
        gtk_window_set_transient_for(self->window, parent);
        gtk_window_set_default_size(self->window, 560, 560);
        gtk_widget_set_name(window, "run-dialog");

        self->start = gtk_button_new_with_mnemonic(_("_Start"));
        gtk_widget_add_css_class(self->start, "suggested-action");
        g_signal_connect(self->start, "clicked", G_CALLBACK(start_clicked_cb), self);
        g_signal_connect(cancel, "clicked", G_CALLBACK(cancel_clicked_cb), window);
        adw_header_bar_set_show_end_title_buttons(ADW_HEADER_BAR(header), FALSE);
        adw_header_bar_set_show_start_title_buttons(ADW_HEADER_BAR(header), FALSE);
        adw_header_bar_pack_start(ADW_HEADER_BAR(header), cancel);
        adw_header_bar_pack_end(ADW_HEADER_BAR(header), self->start);
        gtk_window_set_default_widget(self->window, self->start);

        self->error = GTK_LABEL(gtk_label_new(""));
        gtk_label_set_wrap(self->error, TRUE);
        gtk_widget_add_css_class(GTK_WIDGET(self->error), "error");
        gtk_widget_set_margin_top(GTK_WIDGET(self->error), 12);
        gtk_widget_set_margin_start(GTK_WIDGET(self->error), 12);
        gtk_widget_set_margin_end(GTK_WIDGET(self->error), 12);
        gtk_widget_set_visible(GTK_WIDGET(self->error), FALSE);

        adw_preferences_group_set_title(ADW_PREFERENCES_GROUP(params), _("Parameters"));
        adw_preferences_group_set_description(ADW_PREFERENCES_GROUP(params),
                                              _("Empty fields take the playbook's default."));
        if (declared != NULL) {
                g_variant_iter_init(&iter, declared);
                while ((param = g_variant_iter_next_value(&iter)) != NULL) {
                        add_parameter_row(self, params, param);
                        g_variant_unref(param);
                }
        }
        if (self->fields->len == 0)
                adw_preferences_group_set_description(ADW_PREFERENCES_GROUP(params),
                                                      _("This playbook takes no parameters."));

        adw_preferences_group_set_title(ADW_PREFERENCES_GROUP(run_group), _("Run"));
        row = adw_action_row_new();
        adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), _("Credential"));
        adw_action_row_set_subtitle(ADW_ACTION_ROW(row),
                                    _("Fills gateway URL, username and password left empty"));
        self->credential =
                GTK_DROP_DOWN(gtk_drop_down_new(G_LIST_MODEL(g_object_ref(names)), NULL));
        gtk_widget_set_valign(GTK_WIDGET(self->credential), GTK_ALIGN_CENTER);
        adw_action_row_add_suffix(ADW_ACTION_ROW(row), GTK_WIDGET(self->credential));
        adw_preferences_group_add(ADW_PREFERENCES_GROUP(run_group), row);
        row = adw_action_row_new();
        adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row), _("Debug Mode"));
        adw_action_row_set_subtitle(ADW_ACTION_ROW(row),
                                    _("Pause before every step and on a failure"));
        self->debug = GTK_SWITCH(gtk_switch_new());
        gtk_widget_set_valign(GTK_WIDGET(self->debug), GTK_ALIGN_CENTER);
        adw_action_row_add_suffix(ADW_ACTION_ROW(row), GTK_WIDGET(self->debug));
        adw_action_row_set_activatable_widget(ADW_ACTION_ROW(row), GTK_WIDGET(self->debug));
        adw_preferences_group_add(ADW_PREFERENCES_GROUP(run_group), row);

        adw_preferences_page_add(ADW_PREFERENCES_PAGE(page), ADW_PREFERENCES_GROUP(params));
        adw_preferences_page_add(ADW_PREFERENCES_PAGE(page), ADW_PREFERENCES_GROUP(run_group));
        gtk_widget_set_vexpand(page, TRUE);
        gtk_box_append(GTK_BOX(box), header);
        gtk_box_append(GTK_BOX(box), GTK_WIDGET(self->error));
        gtk_box_append(GTK_BOX(box), page);
        adw_window_set_content(ADW_WINDOW(window), box);
        g_object_set_data(G_OBJECT(window), "itk-run-dialog", self);
        g_signal_connect(window, "destroy", G_CALLBACK(dialog_destroy_cb), self);
        current_dialog = self->window;
        return self->window;
}

gboolean
itk_run_dialog_set_value(GtkWindow *dialog, const char *name, const char *value)
{
        RunDialog *self = g_object_get_data(G_OBJECT(dialog), "itk-run-dialog");

        for (guint i = 0; self != NULL && i < self->fields->len; i++) {
                Field *f = self->fields->pdata[i];

                if (!g_str_equal(f->name, name))
                        continue;
                if (GTK_IS_SWITCH(f->widget)) {
                        gtk_switch_set_active(GTK_SWITCH(f->widget), g_str_equal(value, "true"));
                } else if (GTK_IS_DROP_DOWN(f->widget)) {
                        GListModel *model = gtk_drop_down_get_model(GTK_DROP_DOWN(f->widget));

                        for (guint j = 1; j < g_list_model_get_n_items(model); j++)
                                if (g_str_equal(
                                            gtk_string_list_get_string(GTK_STRING_LIST(model), j),
                                            value))
                                        gtk_drop_down_set_selected(GTK_DROP_DOWN(f->widget), j);
                } else {
                        gtk_editable_set_text(GTK_EDITABLE(f->widget), value);
                }
                return TRUE;
        }
        return FALSE;
}

void
itk_run_dialog_start(GtkWindow *dialog)
{
        RunDialog *self = g_object_get_data(G_OBJECT(dialog), "itk-run-dialog");

        /* As a click: a button that is not sensitive does nothing. */
        if (self != NULL)
                gtk_widget_activate(self->start);
}

GtkWindow *
itk_run_dialog_get_current(void)
{
        return current_dialog;
}
