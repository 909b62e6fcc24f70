/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A run's window. The controls offered are those the run's real status
 * allows (itk_run_status_controls); they change only when the daemon says
 * the status changed, never on a click. */
#include "config.h"

#include "itk-artifacts-pane.h"
#include "itk-live-pane.h"
#include "itk-run-view.h"
#include "itk-test-hook.h"

enum { CONTROL_PAUSE, CONTROL_RESUME, CONTROL_SKIP_BACK, CONTROL_SKIP, CONTROL_CANCEL, N_CONTROLS };

static const struct {
        const char *name;
        const char *method;
        const char *icon;
        const char *tooltip;
        ItkRunControls control;
} controls[N_CONTROLS] = {
        [CONTROL_PAUSE] = { "pause", "Pause", "media-playback-pause-symbolic", N_("Pause"),
                            ITK_RUN_CONTROL_PAUSE },
        [CONTROL_RESUME] = { "resume", "Resume", "media-playback-start-symbolic", N_("Resume"),
                             ITK_RUN_CONTROL_RESUME },
        [CONTROL_SKIP_BACK] = { "skip-back", "SkipBack", "media-skip-backward-symbolic",
                                N_("Go Back One Step"), ITK_RUN_CONTROL_SKIP_BACK },
        [CONTROL_SKIP] = { "skip", "Skip", "media-skip-forward-symbolic", N_("Skip This Step"),
                           ITK_RUN_CONTROL_SKIP },
        [CONTROL_CANCEL] = { "cancel", "Cancel", "process-stop-symbolic", N_("Cancel the Run"),
                             ITK_RUN_CONTROL_CANCEL },
};

typedef struct {
        GtkWindow *window;
        char *key;  /* in the app's run_views */
        char *path; /* NULL for a record */
        char *id;
        char *status;
        gboolean pause_requested;
        gboolean debug_mode;
        ItkRunFollower *follower;
        GCancellable *cancellable;
        AdwWindowTitle *title;
        GtkLabel *status_label;
        GtkProgressBar *progress;
        GtkLabel *error_label;
        GtkWidget *buttons[N_CONTROLS];
        GtkToggleButton *debug;
        gboolean debug_updating;
        GtkListBox *steps;
        GVariant *steps_data;
        gboolean steps_in_flight;
        gboolean steps_again;
        GtkTextBuffer *log;
        guint log_lines;
        gboolean log_loaded;
        GPtrArray *early_log; /* Log signals before GetLog replied */
        gboolean status_paint_pending;
        gulong after_paint_id;
        GdkFrameClock *paint_clock;
        GtkPaned *side_paned;
        GtkStack *side;
        ItkLivePane *live; /* runs on the bus only */
        ItkArtifactsPane *artifacts;
        GPtrArray *running_durations; /* labels of running steps, owned by their rows */
        guint tick_id;                /* 1 s while a step runs */
} RunView;

static RunView *
get_view(GtkWindow *window)
{
        return g_object_get_data(G_OBJECT(window), "itk-run-view");
}

static const char *
lookup_string(GVariant *dict, const char *key)
{
        const char *value = NULL;

        return g_variant_lookup(dict, key, "&s", &value) ? value : "";
}

static void
update_controls(RunView *self)
{
        ItkRunStatus status = itk_run_status_from_string(self->status);
        ItkRunControls allowed =
                self->path != NULL ? itk_run_status_controls(status, self->pause_requested) : 0;

        for (guint i = 0; i < N_CONTROLS; i++)
                gtk_widget_set_sensitive(self->buttons[i], (allowed & controls[i].control) != 0);
        gtk_widget_set_sensitive(GTK_WIDGET(self->debug), (allowed & ITK_RUN_CONTROL_DEBUG) != 0);
        self->debug_updating = TRUE;
        gtk_toggle_button_set_active(self->debug, self->debug_mode);
        self->debug_updating = FALSE;
}

static void
after_paint_cb(GdkFrameClock *clock, gpointer user_data)
{
        RunView *self = user_data;

        g_signal_handler_disconnect(clock, self->after_paint_id);
        self->after_paint_id = 0;
        g_clear_object(&self->paint_clock);
        if (!self->status_paint_pending)
                return;
        self->status_paint_pending = FALSE;
        /* The first frame painted with the new status: what the bench measures. */
        itk_test_hook_emit("StatusPainted", g_variant_new("(ssx)", self->path ? self->path : "",
                                                          self->status, g_get_real_time()));
}

static void
show_status(RunView *self, const char *status)
{
        static const char *const classes[] = { "success", "error", "warning", "accent" };
        GdkFrameClock *clock;

        g_free(self->status);
        self->status = g_strdup(status);
        gtk_label_set_text(self->status_label, itk_status_label(status));
        for (guint i = 0; i < G_N_ELEMENTS(classes); i++)
                gtk_widget_remove_css_class(GTK_WIDGET(self->status_label), classes[i]);
        if (g_str_equal(status, "completed"))
                gtk_widget_add_css_class(GTK_WIDGET(self->status_label), "success");
        else if (g_str_equal(status, "failed"))
                gtk_widget_add_css_class(GTK_WIDGET(self->status_label), "error");
        else if (g_str_equal(status, "cancelled") || g_str_equal(status, "paused"))
                gtk_widget_add_css_class(GTK_WIDGET(self->status_label), "warning");
        else if (g_str_equal(status, "running"))
                gtk_widget_add_css_class(GTK_WIDGET(self->status_label), "accent");
        update_controls(self);
        if (self->live != NULL)
                itk_live_pane_set_paused(self->live, g_str_equal(status, "paused"));
        itk_test_hook_emit("StatusShown", g_variant_new("(ssx)", self->path ? self->path : "",
                                                        status, g_get_real_time()));
        clock = gtk_widget_get_frame_clock(GTK_WIDGET(self->window));
        self->status_paint_pending = TRUE;
        if (clock != NULL && self->after_paint_id == 0) {
                self->paint_clock = g_object_ref(clock);
                self->after_paint_id =
                        g_signal_connect(clock, "after-paint", G_CALLBACK(after_paint_cb), self);
                gdk_frame_clock_request_phase(clock, GDK_FRAME_CLOCK_PHASE_PAINT);
        }
}

static void
append_log(RunView *self, guint64 usec, guint priority, const char *step_id, const char *message)
{
        g_autoptr(GDateTime) t = g_date_time_new_from_unix_local((gint64)(usec / G_USEC_PER_SEC));
        g_autofree char *when = t ? g_date_time_format(t, "%H:%M:%S") : g_strdup("");
        g_autofree char *line = NULL;
        GtkTextIter end;

        line = g_strdup_printf("%s %s%s%s%s\n", when, step_id[0] ? "[" : "", step_id,
                               step_id[0] ? "] " : "", message);
        gtk_text_buffer_get_end_iter(self->log, &end);
        if (priority <= 4) {
                gtk_text_buffer_insert_with_tags_by_name(self->log, &end, line, -1,
                                                         priority <= 3 ? "error" : "warning", NULL);
        } else {
                gtk_text_buffer_insert(self->log, &end, line, -1);
        }
        self->log_lines++;
}

static void
add_step_rows(RunView *self, GVariant *steps, int depth)
{
        GVariantIter iter;
        GVariant *step;

        g_variant_iter_init(&iter, steps);
        while ((step = g_variant_iter_next_value(&iter)) != NULL) {
                GtkWidget *row = adw_action_row_new();
                GtkWidget *badge;
                GtkWidget *duration;
                const char *name = lookup_string(step, "name");
                const char *status = lookup_string(step, "status");
                const char *error = lookup_string(step, "error");
                const char *output = lookup_string(step, "output");
                gint64 started = 0, finished = 0;
                guint attempts = 0;
                g_autofree char *subtitle = NULL;
                g_autofree char *took = NULL;
                g_autoptr(GVariant) children = NULL;

                g_variant_lookup(step, "started-at", "x", &started);
                g_variant_lookup(step, "finished-at", "x", &finished);
                g_variant_lookup(step, "attempts", "u", &attempts);
                adw_preferences_row_set_title(ADW_PREFERENCES_ROW(row),
                                              name[0] ? name : lookup_string(step, "step-id"));
                subtitle = g_strdup_printf(
                        "%s%s%s%s%s", lookup_string(step, "type"),
                        g_str_equal(lookup_string(step, "phase"), "rollback") ? _(" · rollback")
                                                                              : "",
                        error[0] || output[0] ? " · " : "", error[0] ? error : "",
                        !error[0] && output[0] ? output : "");
                adw_action_row_set_subtitle(ADW_ACTION_ROW(row), subtitle);
                adw_action_row_set_subtitle_lines(ADW_ACTION_ROW(row), 3);
                gtk_widget_set_tooltip_text(row, output[0] ? output : NULL);
                badge = gtk_label_new(itk_status_label(status));
                gtk_widget_add_css_class(badge, "caption-heading");
                gtk_widget_set_size_request(badge, 80, -1);
                gtk_label_set_xalign(GTK_LABEL(badge), 0);
                if (g_str_equal(status, "completed"))
                        gtk_widget_add_css_class(badge, "success");
                else if (g_str_equal(status, "failed"))
                        gtk_widget_add_css_class(badge, "error");
                else if (g_str_equal(status, "running"))
                        gtk_widget_add_css_class(badge, "accent");
                else if (!g_str_equal(status, "pending"))
                        gtk_widget_add_css_class(badge, "warning");
                else
                        gtk_widget_add_css_class(badge, "dim-label");
                adw_action_row_add_prefix(ADW_ACTION_ROW(row), badge);
                if (started > 0 && finished >= started)
                        took = itk_format_duration(finished - started);
                else if (started > 0 && g_str_equal(status, "running"))
                        took = itk_format_duration(MAX(0, g_get_real_time() - started));
                duration = gtk_label_new(took ? took : "");
                if (started > 0 && finished < started && g_str_equal(status, "running")) {
                        /* Ticks every second while the step runs (tick_durations_cb). */
                        g_object_set_data_full(G_OBJECT(duration), "started-at",
                                               g_memdup2(&started, sizeof(started)), g_free);
                        g_object_set_data(G_OBJECT(duration), "attempts",
                                          GUINT_TO_POINTER(attempts));
                        g_ptr_array_add(self->running_durations, duration);
                }
                gtk_widget_add_css_class(duration, "numeric");
                gtk_widget_add_css_class(duration, "dim-label");
                if (attempts > 1) {
                        g_autofree char *text =
                                g_strdup_printf(_("%s (%u attempts)"), took ? took : "", attempts);

                        gtk_label_set_text(GTK_LABEL(duration), text);
                }
                adw_action_row_add_suffix(ADW_ACTION_ROW(row), duration);
                gtk_widget_set_margin_start(row, 24 * depth);
                g_object_set_data_full(G_OBJECT(row), "step-id",
                                       g_strdup(lookup_string(step, "step-id")), g_free);
                g_object_set_data(G_OBJECT(row), "badge", badge);
                gtk_list_box_append(self->steps, row);
                children = g_variant_lookup_value(step, "children", G_VARIANT_TYPE("aa{sv}"));
                if (children != NULL)
                        add_step_rows(self, children, depth + 1);
                g_variant_unref(step);
        }
}

static void
set_running_duration(GtkLabel *label)
{
        gint64 *started = g_object_get_data(G_OBJECT(label), "started-at");
        guint attempts = GPOINTER_TO_UINT(g_object_get_data(G_OBJECT(label), "attempts"));
        g_autofree char *took = itk_format_duration(MAX(0, g_get_real_time() - *started));
        g_autofree char *text =
                attempts > 1 ? g_strdup_printf(_("%s (%u attempts)"), took, attempts) : NULL;

        gtk_label_set_text(label, text ? text : took);
}

static gboolean
tick_durations_cb(gpointer user_data)
{
        RunView *self = user_data;

        for (guint i = 0; i < self->running_durations->len; i++) {
                GtkLabel *label = self->running_durations->pdata[i];

                set_running_duration(label);
                itk_test_hook_emit("DurationTicked",
                                   g_variant_new("(ss)", self->path ? self->path : "",
                                                 gtk_label_get_text(label)));
        }
        return G_SOURCE_CONTINUE;
}

/* The timer runs only while some step is shown running. */
static void
update_duration_timer(RunView *self)
{
        gboolean running = self->running_durations->len > 0 && self->path != NULL;

        if (running && self->tick_id == 0)
                self->tick_id = g_timeout_add_seconds(1, tick_durations_cb, self);
        else if (!running && self->tick_id != 0)
                g_clear_handle_id(&self->tick_id, g_source_remove);
}

static void
show_steps(RunView *self, GVariant *steps)
{
        GtkWidget *child;

        g_ptr_array_set_size(self->running_durations, 0);
        while ((child = gtk_widget_get_first_child(GTK_WIDGET(self->steps))) != NULL)
                gtk_list_box_remove(self->steps, child);
        g_clear_pointer(&self->steps_data, g_variant_unref);
        self->steps_data = g_variant_ref(steps);
        add_step_rows(self, steps, 0);
        update_duration_timer(self);
        itk_test_hook_emit("RunViewUpdated", g_variant_new("(ss)", self->path ? self->path : "",
                                                           self->id ? self->id : ""));
}

static void refresh_steps(RunView *self);

static void
steps_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GVariant) steps = NULL;
        RunView *self;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        if (error != NULL && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        self = user_data;
        self->steps_in_flight = FALSE;
        if (reply == NULL) {
                g_autofree char *text = itk_app_describe_error(error);

                gtk_label_set_text(self->error_label, text);
                gtk_widget_set_visible(GTK_WIDGET(self->error_label), TRUE);
                return;
        }
        steps = g_variant_get_child_value(reply, 0);
        show_steps(self, steps);
        if (self->steps_again)
                refresh_steps(self);
}

/* One GetSteps at a time; changes during it ask for one more. */
static void
refresh_steps(RunView *self)
{
        if (self->path == NULL)
                return;
        if (self->steps_in_flight) {
                self->steps_again = TRUE;
                return;
        }
        self->steps_in_flight = TRUE;
        self->steps_again = FALSE;
        g_dbus_connection_call(itk_app_get()->bus, ITK_BUS_NAME, self->path,
                               ITK_EXECUTION_INTERFACE, "GetSteps", NULL,
                               G_VARIANT_TYPE("(aa{sv})"), G_DBUS_CALL_FLAGS_NONE, -1,
                               self->cancellable, steps_cb, self);
}

static void
follower_status_cb(ItkRunFollower *follower, guint status, guint previous, gpointer user_data)
{
        show_status(user_data, itk_run_status_to_string(status));
}

static void
follower_step_cb(ItkRunFollower *follower, int index, const char *step_id, const char *status,
                 const char *message, gpointer user_data)
{
        RunView *self = user_data;

        /* Show the new status at once; durations and outputs come with GetSteps. */
        for (GtkWidget *row = gtk_widget_get_first_child(GTK_WIDGET(self->steps)); row != NULL;
             row = gtk_widget_get_next_sibling(row)) {
                GtkWidget *badge = g_object_get_data(G_OBJECT(row), "badge");

                if (badge != NULL &&
                    g_strcmp0(g_object_get_data(G_OBJECT(row), "step-id"), step_id) == 0)
                        gtk_label_set_text(GTK_LABEL(badge), itk_status_label(status));
        }
        refresh_steps(self);
        /* A step that ended may have recorded files. */
        if (self->artifacts != NULL && !g_str_equal(status, "running"))
                itk_artifacts_pane_refresh(self->artifacts);
}

static void
follower_log_cb(ItkRunFollower *follower, guint64 usec, guint priority, const char *step_id,
                const char *message, gpointer user_data)
{
        RunView *self = user_data;

        if (!self->log_loaded) {
                g_ptr_array_add(self->early_log,
                                g_variant_ref_sink(
                                        g_variant_new("(tuss)", usec, priority, step_id, message)));
                return;
        }
        append_log(self, usec, priority, step_id, message);
}

static void
apply_properties(RunView *self, GVariant *changed)
{
        gboolean flag;
        double progress;
        const char *error = NULL;
        const char *name = NULL;

        if (g_variant_lookup(changed, "PauseRequested", "b", &flag))
                self->pause_requested = flag;
        if (g_variant_lookup(changed, "DebugMode", "b", &flag)) {
                self->debug_mode = flag;
                if (self->live != NULL)
                        itk_live_pane_set_debug_mode(self->live, flag);
        }
        if (g_variant_lookup(changed, "Progress", "d", &progress))
                gtk_progress_bar_set_fraction(self->progress, progress);
        if (g_variant_lookup(changed, "Error", "&s", &error) && error[0]) {
                gtk_label_set_text(self->error_label, error);
                gtk_widget_set_visible(GTK_WIDGET(self->error_label), TRUE);
        }
        if (g_variant_lookup(changed, "CurrentStepName", "&s", &name))
                adw_window_title_set_subtitle(self->title, name);
        update_controls(self);
}

static void
follower_properties_cb(ItkRunFollower *follower, GVariant *changed, gpointer user_data)
{
        apply_properties(user_data, changed);
}

static void
follower_finished_cb(ItkRunFollower *follower, const char *status, const char *error,
                     gpointer user_data)
{
        RunView *self = user_data;

        if (error[0]) {
                gtk_label_set_text(self->error_label, error);
                gtk_widget_set_visible(GTK_WIDGET(self->error_label), TRUE);
        }
        refresh_steps(self);
        if (self->live != NULL)
                itk_live_pane_set_ended(self->live);
        if (self->artifacts != NULL)
                itk_artifacts_pane_refresh(self->artifacts);
}

static void
properties_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GVariant) props = NULL;
        RunView *self;
        const char *name = NULL, *id = NULL;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, NULL);
        if (reply == NULL)
                return; /* cancelled, or the run left the bus: the signals tell the rest */
        self = user_data;
        props = g_variant_get_child_value(reply, 0);
        if (g_variant_lookup(props, "PlaybookName", "&s", &name))
                adw_window_title_set_title(self->title, name);
        if (self->id == NULL && g_variant_lookup(props, "Id", "&s", &id))
                self->id = g_strdup(id);
        if (self->id != NULL)
                itk_artifacts_pane_set_id(self->artifacts, self->id);
        apply_properties(self, props);
}

static void
log_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        RunView *self;
        GVariantIter *iter;
        guint64 usec;
        guint priority;
        const char *step_id, *message;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        if (error != NULL && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        self = user_data;
        if (reply != NULL) {
                g_variant_get(reply, "(a(tuss))", &iter);
                while (g_variant_iter_next(iter, "(tu&s&s)", &usec, &priority, &step_id,
                                           &message)) {
                        g_hash_table_add(seen, g_strdup_printf("%" G_GUINT64_FORMAT "/%s/%s", usec,
                                                               step_id, message));
                        append_log(self, usec, priority, step_id, message);
                }
                g_variant_iter_free(iter);
        }
        /* Lines that came as signals while GetLog was on its way, unless it had them. */
        for (guint i = 0; i < self->early_log->len; i++) {
                g_autofree char *key = NULL;

                g_variant_get(self->early_log->pdata[i], "(tu&s&s)", &usec, &priority, &step_id,
                              &message);
                key = g_strdup_printf("%" G_GUINT64_FORMAT "/%s/%s", usec, step_id, message);
                if (!g_hash_table_contains(seen, key))
                        append_log(self, usec, priority, step_id, message);
        }
        g_ptr_array_set_size(self->early_log, 0);
        self->log_loaded = TRUE;
}

static void
record_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GVariant) record = NULL;
        g_autoptr(GVariant) steps = NULL;
        g_autoptr(GVariant) log = NULL;
        RunView *self;
        double progress = 0;
        const char *error_text;
        GVariantIter iter;
        guint64 usec;
        guint priority;
        const char *step_id, *message;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        if (error != NULL && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        self = user_data;
        if (reply == NULL) {
                g_autofree char *text = itk_app_describe_error(error);

                gtk_label_set_text(self->error_label, text);
                gtk_widget_set_visible(GTK_WIDGET(self->error_label), TRUE);
                return;
        }
        record = g_variant_get_child_value(reply, 0);
        adw_window_title_set_title(self->title, lookup_string(record, "playbook-name"));
        adw_window_title_set_subtitle(self->title, lookup_string(record, "playbook"));
        if (g_variant_lookup(record, "progress", "d", &progress) && progress >= 0)
                gtk_progress_bar_set_fraction(self->progress, progress);
        error_text = lookup_string(record, "error");
        if (error_text[0]) {
                gtk_label_set_text(self->error_label, error_text);
                gtk_widget_set_visible(GTK_WIDGET(self->error_label), TRUE);
        }
        log = g_variant_lookup_value(record, "log", G_VARIANT_TYPE("a(tuss)"));
        if (log != NULL) {
                g_variant_iter_init(&iter, log);
                while (g_variant_iter_next(&iter, "(tu&s&s)", &usec, &priority, &step_id, &message))
                        append_log(self, usec, priority, step_id, message);
        }
        self->log_loaded = TRUE;
        show_status(self, lookup_string(record, "status"));
        steps = g_variant_lookup_value(record, "steps", G_VARIANT_TYPE("aa{sv}"));
        if (steps != NULL)
                show_steps(self, steps);
}

static void
control_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        RunView *self;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        if (reply != NULL || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return;
        self = user_data;
        {
                /* E.g. InvalidState when the run moved on meanwhile: the status
                 * signal that follows puts the controls right. */
                g_autofree char *text = itk_app_describe_error(error);

                gtk_label_set_text(self->error_label, text);
                gtk_widget_set_visible(GTK_WIDGET(self->error_label), TRUE);
        }
}

static void
control_clicked_cb(GtkButton *button, gpointer user_data)
{
        RunView *self = user_data;
        guint i = GPOINTER_TO_UINT(g_object_get_data(G_OBJECT(button), "control"));

        if (self->path == NULL)
                return;
        gtk_widget_set_visible(GTK_WIDGET(self->error_label), FALSE);
        g_dbus_connection_call(itk_app_get()->bus, ITK_BUS_NAME, self->path,
                               ITK_EXECUTION_INTERFACE, controls[i].method, NULL, NULL,
                               G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, -1,
                               self->cancellable, control_cb, self);
}

static void
debug_toggled_cb(GtkToggleButton *toggle, gpointer user_data)
{
        RunView *self = user_data;

        if (self->debug_updating || self->path == NULL)
                return;
        /* The toggle shows DebugMode as the daemon reports it, not the click. */
        self->debug_updating = TRUE;
        gtk_toggle_button_set_active(toggle, self->debug_mode);
        self->debug_updating = FALSE;
        g_dbus_connection_call(itk_app_get()->bus, ITK_BUS_NAME, self->path,
                               ITK_EXECUTION_INTERFACE, "SetDebugMode",
                               g_variant_new("(b)", !self->debug_mode), NULL,
                               G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, -1,
                               self->cancellable, control_cb, self);
}

static void
view_destroy_cb(GtkWidget *widget, gpointer user_data)
{
        RunView *self = user_data;
        ItkApp *app = itk_app_get();

        g_cancellable_cancel(self->cancellable);
        g_clear_object(&self->cancellable);
        if (self->after_paint_id != 0)
                g_signal_handler_disconnect(self->paint_clock, self->after_paint_id);
        g_clear_object(&self->paint_clock);
        g_clear_handle_id(&self->tick_id, g_source_remove);
        g_clear_pointer(&self->running_durations, g_ptr_array_unref);
        g_clear_pointer(&self->live, itk_live_pane_free);
        g_clear_pointer(&self->artifacts, itk_artifacts_pane_free);
        if (self->follower != NULL)
                g_signal_handlers_disconnect_by_data(self->follower, self);
        g_clear_object(&self->follower);
        if (app->run_views != NULL)
                g_hash_table_remove(app->run_views, self->key);
        g_clear_pointer(&self->steps_data, g_variant_unref);
        g_ptr_array_unref(self->early_log);
        g_free(self->key);
        g_free(self->path);
        g_free(self->id);
        g_free(self->status);
        g_free(self);
}

static RunView *
build_view(const char *key)
{
        RunView *self = g_new0(RunView, 1);
        ItkApp *app = itk_app_get();
        GtkWidget *window = adw_window_new();
        GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
        GtkWidget *header = adw_header_bar_new();
        GtkWidget *bar = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
        GtkWidget *paned = gtk_paned_new(GTK_ORIENTATION_VERTICAL);
        GtkWidget *steps_sw = gtk_scrolled_window_new();
        GtkWidget *log_sw = gtk_scrolled_window_new();
        GtkWidget *log_view;
        GtkWidget *steps_box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
        GtkWidget *side_box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
        GtkWidget *switcher;

        self->window = GTK_WINDOW(window);
        self->key = g_strdup(key);
        self->cancellable = g_cancellable_new();
        self->early_log = g_ptr_array_new_with_free_func((GDestroyNotify)g_variant_unref);
        self->status = g_strdup("unknown");
        self->running_durations = g_ptr_array_new();
        gtk_window_set_default_size(self->window, 1240, 720);
        gtk_widget_set_name(window, "run-view");
        self->title = ADW_WINDOW_TITLE(adw_window_title_new(_("Run"), ""));
        adw_header_bar_set_title_widget(ADW_HEADER_BAR(header), GTK_WIDGET(self->title));

        self->status_label = GTK_LABEL(gtk_label_new(""));
        gtk_widget_add_css_class(GTK_WIDGET(self->status_label), "heading");
        gtk_accessible_update_property(GTK_ACCESSIBLE(self->status_label),
                                       GTK_ACCESSIBLE_PROPERTY_LABEL, _("Run status"), -1);
        gtk_box_append(GTK_BOX(bar), GTK_WIDGET(self->status_label));
        self->progress = GTK_PROGRESS_BAR(gtk_progress_bar_new());
        gtk_widget_set_hexpand(GTK_WIDGET(self->progress), TRUE);
        gtk_widget_set_valign(GTK_WIDGET(self->progress), GTK_ALIGN_CENTER);
        gtk_box_append(GTK_BOX(bar), GTK_WIDGET(self->progress));
        for (guint i = 0; i < N_CONTROLS; i++) {
                GtkWidget *button = gtk_button_new_from_icon_name(controls[i].icon);

                gtk_widget_set_tooltip_text(button, _(controls[i].tooltip));
                gtk_accessible_update_property(GTK_ACCESSIBLE(button),
                                               GTK_ACCESSIBLE_PROPERTY_LABEL,
                                               _(controls[i].tooltip), -1);
                gtk_widget_set_name(button, controls[i].name);
                g_object_set_data(G_OBJECT(button), "control", GUINT_TO_POINTER(i));
                g_signal_connect(button, "clicked", G_CALLBACK(control_clicked_cb), self);
                if (i == CONTROL_CANCEL)
                        gtk_widget_add_css_class(button, "destructive-action");
                gtk_widget_set_sensitive(button, FALSE);
                gtk_box_append(GTK_BOX(bar), button);
                self->buttons[i] = button;
        }
        self->debug = GTK_TOGGLE_BUTTON(gtk_toggle_button_new_with_mnemonic(_("_Debug")));
        gtk_widget_set_tooltip_text(GTK_WIDGET(self->debug),
                                    _("Pause before every step and on a failure"));
        g_signal_connect(self->debug, "toggled", G_CALLBACK(debug_toggled_cb), self);
        gtk_box_append(GTK_BOX(bar), GTK_WIDGET(self->debug));
        gtk_widget_set_margin_top(bar, 6);
        gtk_widget_set_margin_bottom(bar, 6);
        gtk_widget_set_margin_start(bar, 12);
        gtk_widget_set_margin_end(bar, 12);

        self->error_label = GTK_LABEL(gtk_label_new(""));
        gtk_label_set_wrap(self->error_label, TRUE);
        gtk_label_set_xalign(self->error_label, 0);
        gtk_label_set_selectable(self->error_label, TRUE);
        gtk_widget_add_css_class(GTK_WIDGET(self->error_label), "error");
        gtk_widget_set_margin_start(GTK_WIDGET(self->error_label), 12);
        gtk_widget_set_margin_end(GTK_WIDGET(self->error_label), 12);
        gtk_widget_set_visible(GTK_WIDGET(self->error_label), FALSE);

        self->steps = GTK_LIST_BOX(gtk_list_box_new());
        gtk_list_box_set_selection_mode(self->steps, GTK_SELECTION_NONE);
        gtk_widget_add_css_class(GTK_WIDGET(self->steps), "boxed-list");
        gtk_widget_set_margin_start(steps_box, 12);
        gtk_widget_set_margin_end(steps_box, 12);
        gtk_widget_set_margin_top(steps_box, 6);
        gtk_widget_set_margin_bottom(steps_box, 6);
        gtk_box_append(GTK_BOX(steps_box), GTK_WIDGET(self->steps));
        gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(steps_sw), steps_box);
        gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(steps_sw), GTK_POLICY_NEVER,
                                       GTK_POLICY_AUTOMATIC);
        gtk_widget_set_size_request(steps_sw, -1, 220);

        log_view = gtk_text_view_new();
        gtk_text_view_set_editable(GTK_TEXT_VIEW(log_view), FALSE);
        gtk_text_view_set_monospace(GTK_TEXT_VIEW(log_view), TRUE);
        gtk_text_view_set_wrap_mode(GTK_TEXT_VIEW(log_view), GTK_WRAP_WORD_CHAR);
        gtk_text_view_set_left_margin(GTK_TEXT_VIEW(log_view), 12);
        gtk_text_view_set_top_margin(GTK_TEXT_VIEW(log_view), 6);
        gtk_accessible_update_property(GTK_ACCESSIBLE(log_view), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                       _("Log"), -1);
        self->log = gtk_text_view_get_buffer(GTK_TEXT_VIEW(log_view));
        gtk_text_buffer_create_tag(self->log, "error", "foreground", "#e01b24", NULL);
        gtk_text_buffer_create_tag(self->log, "warning", "foreground", "#c64600", NULL);
        gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(log_sw), log_view);
        gtk_widget_set_size_request(log_sw, -1, 120);

        gtk_paned_set_start_child(GTK_PANED(paned), steps_sw);
        gtk_paned_set_end_child(GTK_PANED(paned), log_sw);
        gtk_paned_set_position(GTK_PANED(paned), 380);
        gtk_widget_set_vexpand(paned, TRUE);

        /* Beside the steps: the live view and the recorded files (add_side_panes). */
        self->side = GTK_STACK(gtk_stack_new());
        gtk_widget_set_name(GTK_WIDGET(self->side), "run-side");
        switcher = gtk_stack_switcher_new();
        gtk_stack_switcher_set_stack(GTK_STACK_SWITCHER(switcher), self->side);
        gtk_widget_set_halign(switcher, GTK_ALIGN_CENTER);
        gtk_widget_set_margin_top(switcher, 6);
        gtk_box_append(GTK_BOX(side_box), switcher);
        gtk_widget_set_vexpand(GTK_WIDGET(self->side), TRUE);
        gtk_box_append(GTK_BOX(side_box), GTK_WIDGET(self->side));
        self->side_paned = GTK_PANED(gtk_paned_new(GTK_ORIENTATION_HORIZONTAL));
        gtk_paned_set_start_child(self->side_paned, paned);
        gtk_paned_set_end_child(self->side_paned, side_box);
        gtk_paned_set_shrink_start_child(self->side_paned, FALSE);
        gtk_paned_set_position(self->side_paned, 600);
        gtk_widget_set_vexpand(GTK_WIDGET(self->side_paned), TRUE);

        gtk_box_append(GTK_BOX(box), header);
        gtk_box_append(GTK_BOX(box), bar);
        gtk_box_append(GTK_BOX(box), GTK_WIDGET(self->error_label));
        gtk_box_append(GTK_BOX(box), GTK_WIDGET(self->side_paned));
        adw_window_set_content(ADW_WINDOW(window), box);
        gtk_window_set_application(self->window, GTK_APPLICATION(app->gapp));
        g_object_set_data(G_OBJECT(window), "itk-run-view", self);
        g_signal_connect(window, "destroy", G_CALLBACK(view_destroy_cb), self);
        g_hash_table_insert(app->run_views, g_strdup(key), window);
        return self;
}

/* The live view for a run on the bus (the page shown first), the files for all. */
static void
add_side_panes(RunView *self)
{
        if (self->path != NULL) {
                self->live = itk_live_pane_new(self->path);
                gtk_stack_add_titled(self->side, itk_live_pane_get_widget(self->live), "live",
                                     _("Live View"));
        }
        self->artifacts = itk_artifacts_pane_new(self->window, self->path, self->id);
        gtk_stack_add_titled(self->side, itk_artifacts_pane_get_widget(self->artifacts), "files",
                             _("Files"));
}

GtkWindow *
itk_run_view_open_live(const char *path, ItkRunFollower *follower)
{
        ItkApp *app = itk_app_get();
        GtkWindow *existing = g_hash_table_lookup(app->run_views, path);
        RunView *self;

        if (existing != NULL)
                return existing;
        self = build_view(path);
        self->path = g_strdup(path);
        add_side_panes(self);
        if (follower != NULL) {
                self->follower = g_object_ref(follower);
        } else {
                self->follower = itk_run_follower_new(app->bus, ITK_BUS_NAME);
                itk_run_follower_follow(self->follower, path);
        }
        g_signal_connect(self->follower, "status-changed", G_CALLBACK(follower_status_cb), self);
        g_signal_connect(self->follower, "step-changed", G_CALLBACK(follower_step_cb), self);
        g_signal_connect(self->follower, "log", G_CALLBACK(follower_log_cb), self);
        g_signal_connect(self->follower, "properties-changed", G_CALLBACK(follower_properties_cb),
                         self);
        g_signal_connect(self->follower, "finished", G_CALLBACK(follower_finished_cb), self);
        show_status(self, itk_run_status_to_string(itk_run_follower_get_status(self->follower)));
        /* Snapshots read after the follower's match is in place: later changes
         * arrive as signals on top of them. */
        g_dbus_connection_call(app->bus, ITK_BUS_NAME, path, "org.freedesktop.DBus.Properties",
                               "GetAll", g_variant_new("(s)", ITK_EXECUTION_INTERFACE),
                               G_VARIANT_TYPE("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1,
                               self->cancellable, properties_cb, self);
        refresh_steps(self);
        g_dbus_connection_call(app->bus, ITK_BUS_NAME, path, ITK_EXECUTION_INTERFACE, "GetLog",
                               g_variant_new("(u)", 0), G_VARIANT_TYPE("(a(tuss))"),
                               G_DBUS_CALL_FLAGS_NONE, -1, self->cancellable, log_cb, self);
        itk_test_hook_emit("RunViewOpened", g_variant_new("(s)", path));
        return self->window;
}

GtkWindow *
itk_run_view_open_record(const char *id)
{
        ItkApp *app = itk_app_get();
        GtkWindow *existing = g_hash_table_lookup(app->run_views, id);
        RunView *self;

        if (existing != NULL)
                return existing;
        self = build_view(id);
        self->id = g_strdup(id);
        add_side_panes(self);
        g_dbus_connection_call(app->bus, ITK_BUS_NAME, ITK_MANAGER_PATH, ITK_MANAGER_INTERFACE,
                               "GetExecutionRecord", g_variant_new("(s)", id),
                               G_VARIANT_TYPE("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1,
                               self->cancellable, record_cb, self);
        itk_test_hook_emit("RunViewOpened", g_variant_new("(s)", id));
        return self->window;
}

static void
describe_steps(GVariantBuilder *b, GVariant *steps)
{
        GVariantIter iter;
        GVariant *step;

        g_variant_iter_init(&iter, steps);
        while ((step = g_variant_iter_next_value(&iter)) != NULL) {
                g_autoptr(GVariant) children =
                        g_variant_lookup_value(step, "children", G_VARIANT_TYPE("aa{sv}"));

                g_variant_builder_add(b, "(ssss)", lookup_string(step, "step-id"),
                                      lookup_string(step, "status"), lookup_string(step, "name"),
                                      lookup_string(step, "output"));
                if (children != NULL)
                        describe_steps(b, children);
                g_variant_unref(step);
        }
}

GVariant *
itk_run_view_describe(GtkWindow *view)
{
        RunView *self = get_view(view);
        GVariantBuilder b, offered, steps;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_init(&offered, G_VARIANT_TYPE("as"));
        g_variant_builder_init(&steps, G_VARIANT_TYPE("a(ssss)"));
        for (guint i = 0; i < N_CONTROLS; i++)
                if (gtk_widget_get_sensitive(self->buttons[i]))
                        g_variant_builder_add(&offered, "s", controls[i].name);
        if (gtk_widget_get_sensitive(GTK_WIDGET(self->debug)))
                g_variant_builder_add(&offered, "s", "debug");
        if (self->steps_data != NULL)
                describe_steps(&steps, self->steps_data);
        g_variant_builder_add(&b, "{sv}", "status", g_variant_new_string(self->status));
        g_variant_builder_add(&b, "{sv}", "status-text",
                              g_variant_new_string(gtk_label_get_text(self->status_label)));
        g_variant_builder_add(&b, "{sv}", "controls", g_variant_builder_end(&offered));
        g_variant_builder_add(&b, "{sv}", "steps", g_variant_builder_end(&steps));
        g_variant_builder_add(&b, "{sv}", "log-lines", g_variant_new_uint32(self->log_lines));
        g_variant_builder_add(&b, "{sv}", "debug",
                              g_variant_new_boolean(gtk_toggle_button_get_active(self->debug)));
        g_variant_builder_add(&b, "{sv}", "path",
                              g_variant_new_string(self->path ? self->path : ""));
        g_variant_builder_add(&b, "{sv}", "id", g_variant_new_string(self->id ? self->id : ""));
        g_variant_builder_add(
                &b, "{sv}", "running-duration",
                g_variant_new_string(self->running_durations->len > 0
                                             ? gtk_label_get_text(self->running_durations->pdata[0])
                                             : ""));
        g_variant_builder_add(&b, "{sv}", "ticking", g_variant_new_boolean(self->tick_id != 0));
        if (self->live != NULL)
                g_variant_builder_add(&b, "{sv}", "live", itk_live_pane_describe(self->live));
        g_variant_builder_add(&b, "{sv}", "artifacts",
                              itk_artifacts_pane_describe(self->artifacts));
        g_variant_builder_add(&b, "{sv}", "pane",
                              g_variant_new_string(gtk_stack_get_visible_child_name(self->side)));
        return g_variant_builder_end(&b);
}

gboolean
itk_run_view_press(GtkWindow *view, const char *control)
{
        RunView *self = get_view(view);
        GtkWidget *widget = NULL;

        for (guint i = 0; i < N_CONTROLS; i++)
                if (g_str_equal(controls[i].name, control))
                        widget = self->buttons[i];
        if (g_str_equal(control, "debug"))
                widget = GTK_WIDGET(self->debug);
        if (widget == NULL || !gtk_widget_get_sensitive(widget))
                return FALSE;
        if (GTK_IS_TOGGLE_BUTTON(widget))
                gtk_toggle_button_set_active(
                        GTK_TOGGLE_BUTTON(widget),
                        !gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(widget)));
        else
                gtk_widget_activate(widget);
        return TRUE;
}

const char *
itk_run_view_get_path(GtkWindow *view)
{
        return get_view(view)->path;
}

ItkLivePane *
itk_run_view_get_live(GtkWindow *view)
{
        return get_view(view)->live;
}

ItkArtifactsPane *
itk_run_view_get_artifacts(GtkWindow *view)
{
        return get_view(view)->artifacts;
}

gboolean
itk_run_view_show_pane(GtkWindow *view, const char *name)
{
        RunView *self = get_view(view);

        if (gtk_stack_get_child_by_name(self->side, name) == NULL)
                return FALSE;
        gtk_stack_set_visible_child_name(self->side, name);
        return TRUE;
}
