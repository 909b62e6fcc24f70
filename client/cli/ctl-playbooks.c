/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ignitionctl playbooks, show and validate. validate needs no daemon: it
 * uses the daemon's own loader, linked in from the engine library. */
#include "config.h"

#include <gio/gunixinputstream.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "itk-error.h"
#include "itk-playbook.h"
#include "itk-step.h"

int
ctl_verb_playbooks(CtlContext *ctx, int argc, char **argv)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(JsonNode) playbooks = NULL;
        g_autoptr(CtlTable) table = NULL;
        JsonArray *array;
        int r;

        r = ctl_call_manager(ctx, "ListPlaybooks", &reply, "cannot list playbooks", NULL);
        if (r != 0)
                return r;
        playbooks = ctl_json_read_reply(reply, &r);
        if (playbooks == NULL || !JSON_NODE_HOLDS_ARRAY(playbooks)) {
                ctl_error("cannot read the playbook list: %s", g_strerror(-r));
                return CTL_EXIT_FAILURE;
        }
        if (ctx->json) {
                ctl_json_print(ctx, playbooks);
                return 0;
        }
        array = json_node_get_array(playbooks);
        table = ctl_table_new("ID", "NAME", "VERSION", "DOMAIN", "STEPS", "VALID", NULL);
        for (guint i = 0; i < json_array_get_length(array); i++) {
                JsonObject *p = json_array_get_object_element(array, i);
                g_autofree char *steps =
                        g_strdup_printf("%" G_GINT64_FORMAT, ctl_json_get_int(p, "step-count", 0));

                ctl_table_add_row(table, ctl_json_get_string(p, "id"),
                                  ctl_json_get_string(p, "name"), ctl_json_get_string(p, "version"),
                                  ctl_json_get_string(p, "domain"), steps,
                                  ctl_json_get_bool(p, "valid") ? "yes" : "no");
        }
        if (ctl_table_get_rows(table) > 0)
                ctl_table_print(ctx, table);
        if (!ctx->quiet)
                printf("%s%u playbooks listed.\n", ctl_table_get_rows(table) > 0 ? "\n" : "",
                       ctl_table_get_rows(table));
        return 0;
}

static void
ctl_playbooks_print_step_table(CtlContext *ctx, const char *title, JsonArray *steps)
{
        g_autoptr(CtlTable) table = NULL;

        if (steps == NULL || json_array_get_length(steps) == 0)
                return;
        printf("\n%s:\n", title);
        table = ctl_table_new("#", "ID", "NAME", "TYPE", "TIMEOUT", "RETRIES", "ON FAILURE", NULL);
        for (guint i = 0; i < json_array_get_length(steps); i++) {
                JsonObject *s = json_array_get_object_element(steps, i);
                JsonNode *timeout = json_object_get_member(s, "timeout");
                g_autofree char *number = g_strdup_printf("%u", i + 1);
                g_autofree char *seconds = NULL;
                g_autofree char *retries =
                        g_strdup_printf("%" G_GINT64_FORMAT, ctl_json_get_int(s, "retry-count", 0));

                if (timeout != NULL && JSON_NODE_HOLDS_VALUE(timeout))
                        seconds = g_strdup_printf("%gs", json_node_get_double(timeout));
                ctl_table_add_row(table, number, ctl_json_get_string(s, "id"),
                                  ctl_json_get_string(s, "name"), ctl_json_get_string(s, "type"),
                                  seconds, retries, ctl_json_get_string(s, "on-failure"));
        }
        ctl_table_print(ctx, table);
}

int
ctl_verb_show(CtlContext *ctx, int argc, char **argv)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(JsonNode) node = NULL;
        g_autofree char *what = g_strdup_printf("cannot show %s", argv[1]);
        JsonObject *p;
        JsonArray *params, *errors;
        const char *description;
        int r;

        r = ctl_call_manager(ctx, "GetPlaybook", &reply, what, "s", argv[1]);
        if (r != 0)
                return r;
        node = ctl_json_read_reply(reply, &r);
        if (node == NULL || !JSON_NODE_HOLDS_OBJECT(node)) {
                ctl_error("%s: %s", what, g_strerror(-r));
                return CTL_EXIT_FAILURE;
        }
        if (ctx->json) {
                ctl_json_print(ctx, node);
                return 0;
        }
        p = json_node_get_object(node);
        printf("%s - %s", ctl_json_get_string(p, "id"), ctl_json_get_string(p, "name"));
        if (ctl_json_get_string(p, "version") != NULL && ctl_json_get_string(p, "version")[0])
                printf(" (version %s)", ctl_json_get_string(p, "version"));
        printf("\n");
        description = ctl_json_get_string(p, "description");
        if (description != NULL && description[0] != '\0') {
                g_autofree char *text = g_strstrip(g_strdup(description));

                printf("  %s\n", text);
        }
        printf("  Domain: %s, group: %s, verified: %s, valid: %s\n",
               ctl_json_get_string(p, "domain") ? ctl_json_get_string(p, "domain") : "-",
               ctl_json_get_string(p, "group") ? ctl_json_get_string(p, "group") : "-",
               ctl_json_get_bool(p, "verified") ? "yes" : "no",
               ctl_json_get_bool(p, "valid") ? "yes" : "no");
        errors = ctl_json_get_array(p, "errors");
        for (guint i = 0; errors != NULL && i < json_array_get_length(errors); i++)
                printf("  error: %s\n", json_array_get_string_element(errors, i));

        params = ctl_json_get_array(p, "parameters");
        if (params != NULL && json_array_get_length(params) > 0) {
                g_autoptr(CtlTable) table =
                        ctl_table_new("NAME", "TYPE", "REQUIRED", "DEFAULT", "DESCRIPTION", NULL);

                printf("\nParameters:\n");
                for (guint i = 0; i < json_array_get_length(params); i++) {
                        JsonObject *param = json_array_get_object_element(params, i);
                        JsonNode *def = json_object_get_member(param, "default");
                        g_autofree char *def_text = def != NULL ? json_to_string(def, FALSE) : NULL;

                        ctl_table_add_row(table, ctl_json_get_string(param, "name"),
                                          ctl_json_get_string(param, "type"),
                                          ctl_json_get_bool(param, "required") ? "yes" : "no",
                                          def_text, ctl_json_get_string(param, "description"));
                }
                ctl_table_print(ctx, table);
        }
        ctl_playbooks_print_step_table(ctx, "Steps", ctl_json_get_array(p, "steps"));
        ctl_playbooks_print_step_table(ctx, "Rollback", ctl_json_get_array(p, "rollback"));
        return 0;
}

/* --- validate ------------------------------------------------------------------------------ */

static JsonObject *
ctl_playbooks_diagnostic_to_json(const ItkDiagnostic *d)
{
        JsonObject *o = json_object_new();

        json_object_set_string_member(o, "severity",
                                      d->severity == ITK_DIAGNOSTIC_ERROR ? "error" : "warning");
        json_object_set_int_member(o, "line", d->line);
        json_object_set_int_member(o, "column", d->column);
        json_object_set_string_member(o, "step-id", d->step_id != NULL ? d->step_id : "");
        json_object_set_string_member(o, "message", d->message);
        return o;
}

static void
ctl_playbooks_print_diagnostic(CtlContext *ctx, const char *file, const ItkDiagnostic *d)
{
        const char *severity = d->severity == ITK_DIAGNOSTIC_ERROR ? "error" : "warning";
        const char *color = !ctx->color                           ? ""
                            : d->severity == ITK_DIAGNOSTIC_ERROR ? "\033[0;1;31m"
                                                                  : "\033[0;1;35m";

        /* The compilers' format, so editors can jump to it. */
        if (d->line > 0 && d->column > 0)
                printf("%s:%d:%d: %s%s:%s %s\n", file, d->line, d->column, color, severity,
                       ctl_color_reset(ctx), d->message);
        else if (d->line > 0)
                printf("%s:%d: %s%s:%s %s\n", file, d->line, color, severity, ctl_color_reset(ctx),
                       d->message);
        else
                printf("%s: %s%s:%s %s\n", file, color, severity, ctl_color_reset(ctx), d->message);
}

/* Reads FILE, or standard input for "-", bounded like the daemon's loader. */
static char *
ctl_playbooks_read_input(const char *file, gsize *length, GError **error)
{
        g_autoptr(GInputStream) stream = NULL;
        g_autoptr(GFile) gfile = NULL;
        g_autofree char *buffer = g_malloc(ITK_PLAYBOOK_MAX_SIZE + 2);
        gsize n = 0;

        if (g_str_equal(file, "-")) {
                stream = G_INPUT_STREAM(g_unix_input_stream_new(0, FALSE));
        } else {
                gfile = g_file_new_for_commandline_arg(file);
                stream = G_INPUT_STREAM(g_file_read(gfile, NULL, error));
                if (stream == NULL)
                        return NULL;
        }
        if (!g_input_stream_read_all(stream, buffer, ITK_PLAYBOOK_MAX_SIZE + 1, &n, NULL, error))
                return NULL;
        buffer[n] = '\0';
        *length = n;
        return g_steal_pointer(&buffer);
}

/* Where playbook.run ids are looked up offline, as the daemon looks them up
 * in its library: the file's folder and the folders above it (a library
 * root holds <domain>/<name>.yaml), then the installed library. */
static GPtrArray *
ctl_playbooks_library_roots(const char *file)
{
        GPtrArray *roots = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *dir = NULL;

        if (g_str_equal(file, "-")) {
                dir = g_get_current_dir();
        } else {
                g_autofree char *parent = g_path_get_dirname(file);
                g_autoptr(GFile) gfile = g_file_new_for_commandline_arg(parent);
                dir = g_file_get_path(gfile);
        }
        /* Ids are at most a few folders deep (the daemon scans 4). */
        for (guint i = 0; dir != NULL && i < 5; i++) {
                char *up = g_path_get_dirname(dir);

                g_ptr_array_add(roots, g_steal_pointer(&dir));
                if (g_str_equal(up, roots->pdata[roots->len - 1])) {
                        g_free(up);
                        break;
                }
                dir = up;
        }
        g_ptr_array_add(roots, g_build_filename(ITK_CONFIG_DIR, "playbooks", NULL));
        g_ptr_array_add(roots, g_strdup(ITK_PLAYBOOK_DIR));
        return roots;
}

/* The daemon's verdict on a playbook.run target, with its words. */
static ItkPlaybook *
ctl_playbooks_resolve_cb(const char *id, gpointer user_data, GError **error)
{
        GPtrArray *roots = user_data;
        g_auto(GStrv) parts = NULL;
        gboolean safe;

        safe = id != NULL && *id != '\0' && !g_path_is_absolute(id) &&
               (g_str_has_suffix(id, ".yaml") || g_str_has_suffix(id, ".yml"));
        parts = g_strsplit(id != NULL ? id : "", "/", -1);
        for (guint i = 0; safe && parts[i] != NULL; i++)
                safe = *parts[i] != '\0' && !g_str_equal(parts[i], ".") &&
                       !g_str_equal(parts[i], "..");
        if (!safe) {
                g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_PLAYBOOK,
                            "no playbook '%s' in the library (ids are relative .yaml paths)", id);
                return NULL;
        }
        for (guint i = 0; i < roots->len; i++) {
                g_autofree char *path = g_build_filename(roots->pdata[i], id, NULL);
                g_autoptr(GPtrArray) diagnostics = NULL;
                g_autoptr(GError) local = NULL;
                ItkPlaybook *playbook;
                g_autofree char *first = NULL;
                guint errors = 0;

                if (!g_file_test(path, G_FILE_TEST_IS_REGULAR))
                        continue;
                diagnostics = g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
                playbook = itk_playbook_new_from_file(path, id, diagnostics, &local);
                if (playbook != NULL)
                        return playbook;
                for (guint j = 0; j < diagnostics->len; j++) {
                        const ItkDiagnostic *d = g_ptr_array_index(diagnostics, j);

                        if (d->severity == ITK_DIAGNOSTIC_ERROR && errors++ == 0)
                                first = itk_diagnostic_to_string(d);
                }
                if (first == NULL && local != NULL)
                        first = g_strdup(local->message);
                if (errors > 1) {
                        char *more =
                                g_strdup_printf("%s (and %u more problems)", first, errors - 1);
                        g_free(first);
                        first = more;
                }
                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK,
                            "playbook '%s' is invalid: %s", id,
                            first != NULL ? first : "unknown problem");
                return NULL;
        }
        g_set_error(error, ITK_ERROR, ITK_ERROR_NO_SUCH_PLAYBOOK, "no playbook '%s' in the library",
                    id);
        return NULL;
}

int
ctl_verb_validate(CtlContext *ctx, int argc, char **argv)
{
        g_autoptr(JsonArray) results = json_array_new();
        gboolean any_error = FALSE;

        itk_step_registry_ensure();
        for (int i = 1; i < argc; i++) {
                const char *file = argv[i];
                g_autoptr(GPtrArray) diagnostics =
                        g_ptr_array_new_with_free_func((GDestroyNotify)itk_diagnostic_free);
                g_autoptr(GError) error = NULL;
                g_autoptr(ItkPlaybook) playbook = NULL;
                g_autofree char *data = NULL;
                g_autofree char *label = g_path_get_basename(file);
                gboolean has_error = FALSE;
                JsonObject *result = json_object_new();
                JsonArray *list = json_array_new();
                gsize length = 0;

                data = ctl_playbooks_read_input(file, &length, &error);
                if (data != NULL)
                        playbook = itk_playbook_new_from_data(data, (gssize)length, label,
                                                              diagnostics, &error);
                for (guint j = 0; j < diagnostics->len; j++) {
                        const ItkDiagnostic *d = g_ptr_array_index(diagnostics, j);

                        if (d->severity == ITK_DIAGNOSTIC_ERROR)
                                has_error = TRUE;
                        json_array_add_object_element(list, ctl_playbooks_diagnostic_to_json(d));
                        if (!ctx->json)
                                ctl_playbooks_print_diagnostic(ctx, file, d);
                }
                /* Nested playbooks, checked as the daemon checks them before a start. */
                if (playbook != NULL && !has_error) {
                        g_autoptr(GPtrArray) roots = ctl_playbooks_library_roots(file);

                        if (!itk_playbook_check_nesting(playbook, ctl_playbooks_resolve_cb, roots,
                                                        &error)) {
                                ItkDiagnostic d = {
                                        .severity = ITK_DIAGNOSTIC_ERROR,
                                        .message = error->message,
                                };

                                json_array_add_object_element(list,
                                                              ctl_playbooks_diagnostic_to_json(&d));
                                if (!ctx->json)
                                        ctl_playbooks_print_diagnostic(ctx, file, &d);
                                has_error = TRUE;
                        }
                }
                /* A failure the loader did not turn into a diagnostic (unreadable file). */
                if (playbook == NULL && !has_error) {
                        ItkDiagnostic d = {
                                .severity = ITK_DIAGNOSTIC_ERROR,
                                .message = error != NULL ? error->message : (char *)"invalid",
                        };

                        json_array_add_object_element(list, ctl_playbooks_diagnostic_to_json(&d));
                        if (!ctx->json)
                                ctl_playbooks_print_diagnostic(ctx, file, &d);
                        has_error = TRUE;
                }
                if (!has_error && !ctx->json && !ctx->quiet)
                        printf("%s: valid (%u steps)\n", file,
                               playbook != NULL ? playbook->steps->len : 0);
                any_error |= has_error;

                json_object_set_string_member(result, "file", file);
                json_object_set_boolean_member(result, "valid", !has_error);
                json_object_set_array_member(result, "diagnostics", list);
                json_array_add_object_element(results, result);
        }
        if (ctx->json) {
                g_autoptr(JsonNode) node = json_node_init_array(json_node_alloc(), results);

                ctl_json_print(ctx, node);
        }
        return any_error ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
}
