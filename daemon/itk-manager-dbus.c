/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "itk-authority.h"
#include "itk-bus.h"
#include "itk-error.h"
#include "itk-input-files-dbus.h"
#include "itk-manager-dbus.h"
#include "itk-limits.h"
#include "itk-timer.h"
#include "itk-value.h"

static ItkAuthority *authority;

static int
itk_manager_dbus_reply_variant(sd_bus_message *m, GVariant *value)
{
        _itk_cleanup_bus_message_ sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = itk_bus_message_append_variant(reply, value);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int
itk_manager_dbus_gerror(GError *error, sd_bus_error *ret)
{
        return itk_bus_error_from_gerror(error, ret);
}

/* Short string arguments (ids, names, labels) are refused by length before
 * they are looked up or quoted back in an error. Bounds: itk-limits.h,
 * docs/limits.md. */
static gboolean
itk_manager_dbus_check_name(const char *what, const char *value, GError **error)
{
        gsize length = strlen(value);

        if (length <= ITK_LIMIT_NAME_LENGTH)
                return TRUE;
        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                    "%s is %zu bytes long (the limit is %d bytes)", what, length,
                    ITK_LIMIT_NAME_LENGTH);
        return FALSE;
}

/* Reads StartExecution's options into @options; strings are borrowed from
 * @dict. Unknown keys and wrong types are refused by name. */
static gboolean
itk_manager_dbus_parse_options(GVariant *dict, ItkStartOptions *options,
                               GHashTable **timeout_overrides, GError **error)
{
        GVariantIter iter;
        const char *key;

        g_variant_iter_init(&iter, dict);
        for (;;) {
                /* Freed on every path out of the body, early returns included. */
                g_autoptr(GVariant) value = NULL;
                const char *want = NULL;

                if (!g_variant_iter_next(&iter, "{&sv}", &key, &value))
                        break;

                if (!itk_manager_dbus_check_name("an option name", key, error))
                        return FALSE;
                if (g_str_equal(key, "source") || g_str_equal(key, "credential") ||
                    g_str_equal(key, "gateway-url"))
                        want = "s";
                else if (g_str_equal(key, "debug") || g_str_equal(key, "start") ||
                         g_str_equal(key, "cancel-on-disconnect"))
                        want = "b";
                else if (g_str_equal(key, "timeout-overrides"))
                        want = "a{su}";
                if (want == NULL) {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "unknown option '%s' (known: source, debug, start, credential, "
                                    "gateway-url, timeout-overrides, cancel-on-disconnect)",
                                    key);
                        return FALSE;
                }
                if (!g_variant_is_of_type(value, G_VARIANT_TYPE(want))) {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "option '%s' must be of type '%s', not '%s'", key, want,
                                    g_variant_get_type_string(value));
                        return FALSE;
                }
                if (g_str_equal(key, "source")) {
                        gsize length;
                        options->source = g_variant_get_string(value, &length);
                        if (length > ITK_LIMIT_SOURCE_BYTES) {
                                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_PLAYBOOK,
                                            "playbook source is %zu bytes; the limit is %d", length,
                                            ITK_LIMIT_SOURCE_BYTES);
                                return FALSE;
                        }
                } else if (g_str_equal(key, "credential")) {
                        options->credential = g_variant_get_string(value, NULL);
                        if (!itk_manager_dbus_check_name("option 'credential'", options->credential,
                                                         error))
                                return FALSE;
                } else if (g_str_equal(key, "gateway-url")) {
                        options->gateway_url = g_variant_get_string(value, NULL);
                        if (!itk_manager_dbus_check_name("option 'gateway-url'",
                                                         options->gateway_url, error))
                                return FALSE;
                } else if (g_str_equal(key, "debug")) {
                        options->debug = g_variant_get_boolean(value);
                } else if (g_str_equal(key, "start")) {
                        options->start = g_variant_get_boolean(value);
                } else if (g_str_equal(key, "cancel-on-disconnect")) {
                        options->cancel_on_disconnect = g_variant_get_boolean(value);
                } else {
                        GVariantIter overrides;
                        const char *step;
                        guint32 seconds;

                        if (g_variant_n_children(value) > ITK_LIMIT_TIMEOUT_OVERRIDES) {
                                g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                            "option 'timeout-overrides' has %zu steps (the limit "
                                            "is %d)",
                                            g_variant_n_children(value),
                                            ITK_LIMIT_TIMEOUT_OVERRIDES);
                                return FALSE;
                        }
                        g_clear_pointer(timeout_overrides, g_hash_table_unref);
                        *timeout_overrides =
                                g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
                        g_variant_iter_init(&overrides, value);
                        while (g_variant_iter_next(&overrides, "{&su}", &step, &seconds)) {
                                if (!itk_manager_dbus_check_name("a timeout-overrides step id",
                                                                 step, error))
                                        return FALSE;
                                if (seconds == 0 || seconds > ITK_DURATION_MAX_SECONDS) {
                                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                                    "timeout-overrides: '%s' must be from 1 to "
                                                    "at most %d seconds (30 days), not %u",
                                                    step, ITK_DURATION_MAX_SECONDS, seconds);
                                        return FALSE;
                                }
                                g_hash_table_insert(*timeout_overrides, g_strdup(step),
                                                    GUINT_TO_POINTER(seconds));
                        }
                }
        }
        return TRUE;
}

/* Reads the a{sv} of parameters, refusing by name a value whose type has
 * no JSON form (a file descriptor, say) instead of a bare EINVAL, and
 * counting every part against the parameter bounds before copying it. */
static int
itk_manager_dbus_read_parameters(sd_bus_message *m, GVariant **ret, sd_bus_error *error)
{
        ItkValueBudget budget = ITK_VALUE_BUDGET_INIT("parameters");
        g_autoptr(GError) local = NULL;
        GVariantBuilder builder;
        guint count = 0;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        g_variant_builder_init(&builder, G_VARIANT_TYPE("a{sv}"));
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                g_autoptr(GVariant) value = NULL;
                const char *name;
                const char *contents = NULL;

                if (++count > ITK_LIMIT_PARAMETERS) {
                        g_variant_builder_clear(&builder);
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "too many parameters (the limit is %d)",
                                                 ITK_LIMIT_PARAMETERS);
                }
                r = sd_bus_message_read(m, "s", &name);
                if (r >= 0 && !itk_manager_dbus_check_name("a parameter name", name, &local)) {
                        g_variant_builder_clear(&builder);
                        return itk_manager_dbus_gerror(local, error);
                }
                if (r >= 0)
                        r = sd_bus_message_peek_type(m, NULL, &contents);
                if (r < 0)
                        break;
                if (contents != NULL && strchr(contents, 'h') != NULL) {
                        g_variant_builder_clear(&builder);
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "parameter '%s' has type '%s': file descriptors "
                                                 "cannot be playbook values",
                                                 name, contents);
                }
                r = itk_bus_message_read_bounded(m, &budget, &value, &local);
                if (r == -E2BIG && local != NULL) {
                        g_variant_builder_clear(&builder);
                        g_prefix_error(&local, "parameter '%s': ", name);
                        return itk_manager_dbus_gerror(local, error);
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                if (r < 0)
                        break;
                {
                        g_autoptr(GVariant) inner = g_variant_get_variant(value);
                        g_variant_builder_add(&builder, "{sv}", name, inner);
                }
        }
        if (r < 0) {
                g_variant_builder_clear(&builder);
                return r;
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0) {
                g_variant_builder_clear(&builder);
                return r;
        }
        *ret = g_variant_ref_sink(g_variant_builder_end(&builder));
        return 0;
}

static int
start_execution_authorized(sd_bus_message *m, gpointer userdata, sd_bus_error *error)
{
        ItkManager *manager = userdata;
        g_autoptr(GError) local = NULL;
        g_autoptr(GVariant) params_variant = NULL;
        g_autoptr(GVariant) options_variant = NULL;
        g_autoptr(JsonObject) parameters = NULL;
        g_autoptr(GHashTable) timeout_overrides = NULL;
        g_autoptr(ItkExecution) execution = NULL;
        g_autofree char *path = NULL;
        ItkStartOptions options = { .start = TRUE };
        const char *playbook;
        guint32 uid;
        int r;

        r = sd_bus_message_read(m, "s", &playbook);
        if (r < 0)
                return r;
        if (!itk_manager_dbus_check_name("the playbook id", playbook, &local))
                return itk_manager_dbus_gerror(local, error);
        r = itk_manager_dbus_read_parameters(m, &params_variant, error);
        if (r < 0)
                return r;
        {
                /* Strings here are checked one by one below, the source
                 * against its own bound; the count keeps the copy small. */
                ItkValueBudget budget = ITK_VALUE_BUDGET_INIT("options");
                budget.max_values = ITK_LIMIT_OPTION_VALUES;
                budget.max_string = G_MAXSIZE;
                budget.max_bytes = G_MAXSIZE;
                r = itk_bus_message_read_bounded(m, &budget, &options_variant, &local);
                if (r == -E2BIG && local != NULL)
                        return itk_manager_dbus_gerror(local, error);
                if (r < 0)
                        return r;
        }
        /* Known: the authorization that let this call through asked for it. */
        if (!itk_authority_get_uid(authority, sd_bus_message_get_sender(m), &uid))
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                        "cannot identify the caller");
        options.uid = uid;
        options.sender = sd_bus_message_get_sender(m);
        if (!itk_manager_dbus_parse_options(options_variant, &options, &timeout_overrides, &local))
                return itk_manager_dbus_gerror(local, error);
        options.timeout_overrides = timeout_overrides;
        parameters = itk_value_object_from_variant(params_variant, &local);
        if (parameters == NULL) {
                g_prefix_error(&local, "parameters: ");
                return itk_manager_dbus_gerror(local, error);
        }

        /* Creating it announces it (InterfacesAdded, ExecutionNew); then the
         * reply; only then may the run start, from the main loop. */
        execution = itk_manager_create_execution(manager, playbook, parameters, &options, &local);
        if (execution == NULL)
                return itk_manager_dbus_gerror(local, error);
        path = itk_execution_dbus_path(execution);
        r = sd_bus_reply_method_return(m, "o", path);
        if (r < 0)
                return r;
        if (options.start && !itk_execution_start(execution, &local))
                g_warning("execution %s: %s", itk_execution_get_id(execution), local->message);
        return 1;
}

/* Running the installed library's playbooks is one right; running source
 * text the caller sends is another (it is arbitrary code). */
static int
method_start_execution(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        g_autoptr(GVariant) options = NULL;
        g_autoptr(GVariant) source = NULL;
        const char *playbook;
        const char *action;
        int r;

        /* Only a peek: the handler reads and checks the arguments again and
         * names what is wrong; a message this cannot read needs the
         * stronger right. */
        r = sd_bus_message_read(m, "s", &playbook);
        if (r >= 0)
                r = sd_bus_message_skip(m, "a{sv}");
        if (r >= 0)
                r = itk_bus_message_read_variant(m, &options);
        if (r >= 0)
                source = g_variant_lookup_value(options, "source", NULL);
        action = r < 0 || source != NULL ? ITK_ACTION_RUN_SOURCE : ITK_ACTION_RUN_PLAYBOOK;
        return itk_authority_run(authority, m, action, ITK_AUTHORITY_NO_OWNER,
                                 start_execution_authorized, userdata, g_object_ref, g_object_unref,
                                 error);
}

/* Without the view right a caller lists only the runs it started. */
static int
list_executions_decided(sd_bus_message *m, gboolean allowed, gpointer userdata, sd_bus_error *error)
{
        ItkManager *manager = userdata;
        g_autoptr(GPtrArray) executions = itk_manager_get_executions(manager);
        _itk_cleanup_bus_message_ sd_bus_message *reply = NULL;
        guint32 uid = ITK_AUTHORITY_NO_OWNER;
        int r;

        if (!allowed && !itk_authority_get_uid(authority, sd_bus_message_get_sender(m), &uid))
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                        "cannot identify the caller");

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(osssuu)");
        if (r < 0)
                return r;
        for (guint i = 0; i < executions->len; i++) {
                ItkExecution *execution = g_ptr_array_index(executions, i);
                g_autofree char *path = NULL;
                int current = itk_execution_get_current_step(execution);

                if (!allowed && itk_execution_get_started_by_uid(execution) != uid)
                        continue;
                path = itk_execution_dbus_path(execution);
                r = sd_bus_message_append(reply, "(osssuu)", path, itk_execution_get_id(execution),
                                          itk_execution_get_playbook_id(execution),
                                          itk_status_to_string(itk_execution_get_status(execution)),
                                          (uint32_t)MAX(current, 0),
                                          itk_execution_get_total_steps(execution));
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int
method_list_executions(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        return itk_authority_decide(authority, m, ITK_ACTION_VIEW, ITK_AUTHORITY_NO_OWNER,
                                    list_executions_decided, userdata, g_object_ref, g_object_unref,
                                    error);
}

static int
get_history_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        g_autoptr(GError) local = NULL;
        g_autoptr(GVariant) runs = NULL;
        uint32_t limit;
        const char *status;
        int r;

        r = sd_bus_message_read(m, "us", &limit, &status);
        if (r < 0)
                return r;
        if (limit > ITK_LIMIT_HISTORY_RUNS)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "limit %u is above the maximum of %d runs per "
                                         "call",
                                         (guint)limit, ITK_LIMIT_HISTORY_RUNS);
        if (!itk_manager_dbus_check_name("the status", status, &local))
                return itk_manager_dbus_gerror(local, error);
        runs = itk_manager_get_history(userdata, limit, status, &local);
        if (runs == NULL)
                return itk_manager_dbus_gerror(local, error);
        g_variant_ref_sink(runs);
        return itk_manager_dbus_reply_variant(m, runs);
}

static int
method_get_history(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        return itk_authority_run(authority, m, ITK_ACTION_VIEW, ITK_AUTHORITY_NO_OWNER,
                                 get_history_authorized, userdata, g_object_ref, g_object_unref,
                                 error);
}

/* GetHistoryPage's filter; strings are borrowed from @dict. Unknown keys
 * and wrong types are refused by name. */
static gboolean
itk_manager_dbus_parse_filter(GVariant *dict, ItkHistoryFilter *filter, GError **error)
{
        GVariantIter iter;
        const char *key;

        g_variant_iter_init(&iter, dict);
        for (;;) {
                g_autoptr(GVariant) value = NULL;
                const char *want;

                if (!g_variant_iter_next(&iter, "{&sv}", &key, &value))
                        break;
                if (!itk_manager_dbus_check_name("a filter key", key, error))
                        return FALSE;
                if (g_str_equal(key, "status") || g_str_equal(key, "playbook") ||
                    g_str_equal(key, "text"))
                        want = "s";
                else if (g_str_equal(key, "since") || g_str_equal(key, "until"))
                        want = "x";
                else {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "unknown filter key '%s' (known: status, playbook, since, "
                                    "until, text)",
                                    key);
                        return FALSE;
                }
                if (!g_variant_is_of_type(value, G_VARIANT_TYPE(want))) {
                        g_set_error(error, ITK_ERROR, ITK_ERROR_INVALID_ARGS,
                                    "filter '%s' must be of type '%s', not '%s'", key, want,
                                    g_variant_get_type_string(value));
                        return FALSE;
                }
                if (want[0] == 's' &&
                    !itk_manager_dbus_check_name(key, g_variant_get_string(value, NULL), error))
                        return FALSE;
                if (g_str_equal(key, "status"))
                        filter->status = g_variant_get_string(value, NULL);
                else if (g_str_equal(key, "playbook"))
                        filter->playbook = g_variant_get_string(value, NULL);
                else if (g_str_equal(key, "text"))
                        filter->text = g_variant_get_string(value, NULL);
                else if (g_str_equal(key, "since"))
                        filter->since = g_variant_get_int64(value);
                else
                        filter->until = g_variant_get_int64(value);
        }
        return TRUE;
}

static int
get_history_page_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        _itk_cleanup_bus_message_ sd_bus_message *reply = NULL;
        g_autoptr(GError) local = NULL;
        g_autoptr(GVariant) filter_variant = NULL;
        g_autoptr(GVariant) runs = NULL;
        g_autofree char *next_cursor = NULL;
        ItkHistoryFilter filter = ITK_HISTORY_FILTER_INIT;
        ItkValueBudget budget = ITK_VALUE_BUDGET_INIT("filter");
        uint32_t limit;
        const char *cursor;
        int r;

        /* Five keys are known: a few more values are refused unread. */
        budget.max_values = 64;
        r = itk_bus_message_read_bounded(m, &budget, &filter_variant, &local);
        if (r == -E2BIG && local != NULL)
                return itk_manager_dbus_gerror(local, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "us", &limit, &cursor);
        if (r < 0)
                return r;
        if (!itk_manager_dbus_check_name("the cursor", cursor, &local) ||
            !itk_manager_dbus_parse_filter(filter_variant, &filter, &local))
                return itk_manager_dbus_gerror(local, error);
        runs = itk_manager_get_history_page(userdata, &filter, limit, cursor, &next_cursor, &local);
        if (runs == NULL)
                return itk_manager_dbus_gerror(local, error);
        return itk_bus_reply_page(m, runs, next_cursor);
}

static int
method_get_history_page(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        return itk_authority_run(authority, m, ITK_ACTION_VIEW, ITK_AUTHORITY_NO_OWNER,
                                 get_history_page_authorized, userdata, g_object_ref,
                                 g_object_unref, error);
}

static int
get_history_log_page_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        _itk_cleanup_bus_message_ sd_bus_message *reply = NULL;
        g_autoptr(GError) local = NULL;
        g_autoptr(GVariant) lines = NULL;
        g_autofree char *next_cursor = NULL;
        const char *id, *cursor;
        uint32_t limit;
        int r;

        r = sd_bus_message_read(m, "sus", &id, &limit, &cursor);
        if (r < 0)
                return r;
        if (!itk_manager_dbus_check_name("the execution id", id, &local) ||
            !itk_manager_dbus_check_name("the cursor", cursor, &local))
                return itk_manager_dbus_gerror(local, error);
        lines = itk_manager_get_log_page(userdata, id, limit, cursor, &next_cursor, &local);
        if (lines == NULL)
                return itk_manager_dbus_gerror(local, error);
        return itk_bus_reply_page(m, lines, next_cursor);
}

/* The starter of a run reads its log without the view right. */
static int
method_get_history_log_page(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        guint32 owner = ITK_AUTHORITY_NO_OWNER;
        const char *id;
        int r;

        r = sd_bus_message_read(m, "s", &id);
        if (r < 0)
                return r;
        if (strlen(id) > ITK_LIMIT_NAME_LENGTH || !itk_manager_get_run_owner(userdata, id, &owner))
                owner = ITK_AUTHORITY_NO_OWNER;
        return itk_authority_run(authority, m, ITK_ACTION_VIEW, owner,
                                 get_history_log_page_authorized, userdata, g_object_ref,
                                 g_object_unref, error);
}

static int
get_execution_record_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        g_autoptr(GError) local = NULL;
        g_autoptr(GVariant) record = NULL;
        const char *id;
        int r;

        r = sd_bus_message_read(m, "s", &id);
        if (r < 0)
                return r;
        if (!itk_manager_dbus_check_name("the execution id", id, &local))
                return itk_manager_dbus_gerror(local, error);
        record = itk_manager_get_record(userdata, id, &local);
        if (record == NULL)
                return itk_manager_dbus_gerror(local, error);
        g_variant_ref_sink(record);
        return itk_manager_dbus_reply_variant(m, record);
}

/* The starter of a run reads its record without the view right. */
static int
method_get_execution_record(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        g_autoptr(GVariant) record = NULL;
        guint32 owner = ITK_AUTHORITY_NO_OWNER;
        const char *id;
        int r;

        r = sd_bus_message_read(m, "s", &id);
        if (r < 0)
                return r;
        record = itk_manager_get_record(userdata, id, NULL);
        if (record != NULL && !g_variant_lookup(record, "started-by-uid", "u", &owner))
                owner = ITK_AUTHORITY_NO_OWNER;
        return itk_authority_run(authority, m, ITK_ACTION_VIEW, owner,
                                 get_execution_record_authorized, userdata, g_object_ref,
                                 g_object_unref, error);
}

static int
delete_execution_authorized(sd_bus_message *m, gpointer userdata, sd_bus_error *error)
{
        g_autoptr(GError) local = NULL;
        const char *id;
        int r;

        r = sd_bus_message_read(m, "s", &id);
        if (r < 0)
                return r;
        if (!itk_manager_delete_execution(userdata, id, &local))
                return itk_manager_dbus_gerror(local, error);
        return sd_bus_reply_method_return(m, NULL);
}

static int
method_delete_execution(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        ItkManager *manager = userdata;
        g_autoptr(GError) local = NULL;
        g_autoptr(GVariant) record = NULL;
        guint32 owner = ITK_AUTHORITY_NO_OWNER;
        const char *id;
        int r;

        r = sd_bus_message_read(m, "s", &id);
        if (r < 0)
                return r;
        if (!itk_manager_dbus_check_name("the execution id", id, &local))
                return itk_manager_dbus_gerror(local, error);
        /* The starter may forget its own run without asking polkit. */
        record = itk_manager_get_record(manager, id, NULL);
        if (record != NULL && !g_variant_lookup(record, "started-by-uid", "u", &owner))
                owner = ITK_AUTHORITY_NO_OWNER;
        return itk_authority_run(authority, m, ITK_ACTION_CONTROL_EXECUTION, owner,
                                 delete_execution_authorized, manager, g_object_ref, g_object_unref,
                                 error);
}

/* --- artifacts of any run, live or in history ----------------------------------------- */

static int
list_history_artifacts_authorized(sd_bus_message *m, gpointer userdata, sd_bus_error *error)
{
        g_autoptr(GError) local = NULL;
        g_autoptr(GVariant) artifacts = NULL;
        const char *id;
        int r;

        r = sd_bus_message_read(m, "s", &id);
        if (r < 0)
                return r;
        artifacts = itk_manager_list_artifacts(userdata, id, &local);
        if (artifacts == NULL)
                return itk_manager_dbus_gerror(local, error);
        return itk_manager_dbus_reply_variant(m, artifacts);
}

static int
open_history_artifact_authorized(sd_bus_message *m, gpointer userdata, sd_bus_error *error)
{
        g_autoptr(GError) local = NULL;
        const char *id, *name;
        int fd, r;

        r = sd_bus_message_read(m, "ss", &id, &name);
        if (r < 0)
                return r;
        fd = itk_manager_open_artifact(userdata, id, name, &local);
        if (fd < 0)
                return itk_manager_dbus_gerror(local, error);
        return itk_bus_reply_fd(m, fd);
}

/* The view right, except for the run's starter (as GetExecutionRecord). */
static int
method_artifacts(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        g_autoptr(GError) local = NULL;
        ItkAuthorizedMethod method = list_history_artifacts_authorized;
        const char *id, *name;
        guint32 owner;
        int r;

        if (g_str_equal(sd_bus_message_get_member(m), "OpenHistoryArtifact")) {
                method = open_history_artifact_authorized;
                r = sd_bus_message_read(m, "ss", &id, &name);
                (void)name;
        } else {
                r = sd_bus_message_read(m, "s", &id);
        }
        if (r < 0)
                return r;
        /* The name is checked where it is opened (itk_artifact_name_is_valid). */
        if (!itk_manager_dbus_check_name("the execution id", id, &local))
                return itk_manager_dbus_gerror(local, error);
        if (!itk_manager_get_run_owner(userdata, id, &owner))
                owner = ITK_AUTHORITY_NO_OWNER;
        return itk_authority_run(authority, m, ITK_ACTION_VIEW, owner, method, userdata,
                                 g_object_ref, g_object_unref, error);
}

static int
method_list_playbooks(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        g_autoptr(GVariant) playbooks = g_variant_ref_sink(itk_manager_list_playbooks(userdata));
        return itk_manager_dbus_reply_variant(m, playbooks);
}

static int
method_get_playbook(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        g_autoptr(GError) local = NULL;
        g_autoptr(GVariant) playbook = NULL;
        const char *id;
        int r;

        r = sd_bus_message_read(m, "s", &id);
        if (r < 0)
                return r;
        if (!itk_manager_dbus_check_name("the playbook id", id, &local))
                return itk_manager_dbus_gerror(local, error);
        playbook = itk_manager_get_playbook(userdata, id, &local);
        if (playbook == NULL)
                return itk_manager_dbus_gerror(local, error);
        g_variant_ref_sink(playbook);
        return itk_manager_dbus_reply_variant(m, playbook);
}

static int
method_validate_playbook(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        g_autoptr(GVariant) diagnostics = NULL;
        const char *source;
        int r;

        r = sd_bus_message_read(m, "s", &source);
        if (r < 0)
                return r;
        if (strlen(source) > ITK_LIMIT_SOURCE_BYTES)
                return sd_bus_error_setf(error, "org.ignition.Toolkit.Error.InvalidPlaybook",
                                         "playbook source is %zu bytes; the limit is %d",
                                         strlen(source), ITK_LIMIT_SOURCE_BYTES);
        diagnostics = g_variant_ref_sink(itk_manager_validate_playbook(userdata, source));
        return itk_manager_dbus_reply_variant(m, diagnostics);
}

static int
method_list_credentials(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        g_autoptr(GVariant) list =
                g_variant_ref_sink(itk_credentials_list(itk_manager_get_credentials(userdata)));
        return itk_manager_dbus_reply_variant(m, list);
}

/* Replies to the saved SetCredential/DeleteCredential call once the file is
 * on disk. */
static void
credentials_saved_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        sd_bus_message *m = user_data;
        g_autoptr(GError) error = NULL;
        __attribute__((cleanup(sd_bus_error_free))) sd_bus_error bus_error = SD_BUS_ERROR_NULL;
        gboolean ok = g_str_equal(sd_bus_message_get_member(m), "SetCredential")
                              ? itk_credentials_set_finish(result, &error)
                              : itk_credentials_delete_finish(result, &error);

        if (ok) {
                sd_bus_reply_method_return(m, NULL);
        } else {
                int r = itk_bus_error_from_gerror(error, &bus_error);
                sd_bus_reply_method_errno(m, r, &bus_error);
        }
        sd_bus_message_unref(m);
}

static int
credentials_authorized(sd_bus_message *m, gpointer userdata, sd_bus_error *error)
{
        ItkCredentials *credentials = itk_manager_get_credentials(userdata);
        g_autoptr(GError) local = NULL;
        g_autoptr(GVariant) fields = NULL;
        const char *name;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        if (strlen(name) > ITK_LIMIT_CREDENTIAL_NAME)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "credential name is %zu bytes long (the limit is %d)",
                                         strlen(name), ITK_LIMIT_CREDENTIAL_NAME);
        if (g_str_equal(sd_bus_message_get_member(m), "SetCredential")) {
                /* Fields are checked by name in itk_credentials_set_async();
                 * this bounds the copy first. No error quotes a value. */
                ItkValueBudget budget = ITK_VALUE_BUDGET_INIT("credential fields");
                budget.max_values = ITK_LIMIT_CREDENTIAL_VALUES;
                budget.max_string = ITK_LIMIT_CREDENTIAL_FIELD;
                r = itk_bus_message_read_bounded(m, &budget, &fields, &local);
                if (r == -E2BIG && local != NULL)
                        return itk_manager_dbus_gerror(local, error);
                if (r < 0)
                        return r;
                itk_credentials_set_async(credentials, name, fields, credentials_saved_cb,
                                          sd_bus_message_ref(m));
        } else {
                itk_credentials_delete_async(credentials, name, credentials_saved_cb,
                                             sd_bus_message_ref(m));
        }
        return 1;
}

static int
method_change_credentials(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        return itk_authority_run(authority, m, ITK_ACTION_MANAGE_CREDENTIALS,
                                 ITK_AUTHORITY_NO_OWNER, credentials_authorized, userdata,
                                 g_object_ref, g_object_unref, error);
}

/* Replies to the saved SavePlaybook/DeletePlaybook call once the file is on
 * disk (or the change was refused). */
static void
library_changed_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        sd_bus_message *m = user_data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) diagnostics = NULL;
        __attribute__((cleanup(sd_bus_error_free))) sd_bus_error bus_error = SD_BUS_ERROR_NULL;
        gboolean ok;

        if (g_str_equal(sd_bus_message_get_member(m), "SavePlaybook")) {
                diagnostics = itk_manager_save_playbook_finish(ITK_MANAGER(source), result, &error);
                ok = diagnostics != NULL;
        } else {
                ok = itk_manager_delete_playbook_finish(ITK_MANAGER(source), result, &error);
        }
        if (ok && diagnostics != NULL) {
                itk_manager_dbus_reply_variant(m, diagnostics);
        } else if (ok) {
                sd_bus_reply_method_return(m, NULL);
        } else {
                int r = itk_bus_error_from_gerror(error, &bus_error);
                sd_bus_reply_method_errno(m, r, &bus_error);
        }
        sd_bus_message_unref(m);
}

static int
library_authorized(sd_bus_message *m, gpointer userdata, sd_bus_error *error)
{
        const char *id, *source;
        int r;

        r = sd_bus_message_read(m, "s", &id);
        if (r < 0)
                return r;
        if (g_str_equal(sd_bus_message_get_member(m), "SavePlaybook")) {
                r = sd_bus_message_read(m, "s", &source);
                if (r < 0)
                        return r;
                itk_manager_save_playbook_async(userdata, id, source, library_changed_cb,
                                                sd_bus_message_ref(m));
        } else {
                itk_manager_delete_playbook_async(userdata, id, library_changed_cb,
                                                  sd_bus_message_ref(m));
        }
        return 1;
}

static int
method_change_library(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        return itk_authority_run(authority, m, ITK_ACTION_MANAGE_LIBRARY, ITK_AUTHORITY_NO_OWNER,
                                 library_authorized, userdata, g_object_ref, g_object_unref, error);
}

static int
manager_property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                     sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        ItkManager *manager = userdata;

        if (g_str_equal(property, "Version"))
                return sd_bus_message_append(reply, "s", PACKAGE_VERSION);
        if (g_str_equal(property, "ActiveExecutions"))
                return sd_bus_message_append(reply, "u", itk_manager_get_active_count(manager));
        if (g_str_equal(property, "MaxConcurrentExecutions"))
                return sd_bus_message_append(reply, "u", itk_manager_get_max_concurrent(manager));
        if (g_str_equal(property, "MaxExecutionsPerCaller"))
                return sd_bus_message_append(reply, "u", itk_manager_get_max_per_caller(manager));
        if (g_str_equal(property, "RetentionSeconds"))
                return sd_bus_message_append(reply, "u", itk_manager_get_retention_sec(manager));
        if (g_str_equal(property, "MaxInputFileBytes"))
                return sd_bus_message_append(reply, "t",
                                             (uint64_t)itk_input_files_get_max_bytes(
                                                     itk_manager_get_input_files(manager)));
        return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "unknown property %s",
                                 property);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES(
                "StartExecution", "sa{sv}a{sv}",
                SD_BUS_PARAM(playbook) SD_BUS_PARAM(parameters) SD_BUS_PARAM(options), "o",
                SD_BUS_PARAM(execution), method_start_execution, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListExecutions", "", "", "a(osssuu)", SD_BUS_PARAM(executions),
                                 method_list_executions, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetHistory", "us", SD_BUS_PARAM(limit) SD_BUS_PARAM(status),
                                 "aa{sv}", SD_BUS_PARAM(runs), method_get_history,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetExecutionRecord", "s", SD_BUS_PARAM(id), "a{sv}",
                                 SD_BUS_PARAM(record), method_get_execution_record,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetHistoryPage", "a{sv}us",
                                 SD_BUS_PARAM(filter) SD_BUS_PARAM(limit) SD_BUS_PARAM(cursor),
                                 "aa{sv}s", SD_BUS_PARAM(runs) SD_BUS_PARAM(next_cursor),
                                 method_get_history_page, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetHistoryLogPage", "sus",
                                 SD_BUS_PARAM(id) SD_BUS_PARAM(limit) SD_BUS_PARAM(cursor),
                                 "a(tuss)s", SD_BUS_PARAM(lines) SD_BUS_PARAM(next_cursor),
                                 method_get_history_log_page, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("DeleteExecution", "s", SD_BUS_PARAM(id), "", "",
                                 method_delete_execution, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListHistoryArtifacts", "s", SD_BUS_PARAM(id), "aa{sv}",
                                 SD_BUS_PARAM(artifacts), method_artifacts,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("OpenHistoryArtifact", "ss", SD_BUS_PARAM(id) SD_BUS_PARAM(name),
                                 "h", SD_BUS_PARAM(fd), method_artifacts,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListPlaybooks", "", "", "aa{sv}", SD_BUS_PARAM(playbooks),
                                 method_list_playbooks, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetPlaybook", "s", SD_BUS_PARAM(id), "a{sv}",
                                 SD_BUS_PARAM(playbook), method_get_playbook,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ValidatePlaybook", "s", SD_BUS_PARAM(source), "aa{sv}",
                                 SD_BUS_PARAM(diagnostics), method_validate_playbook,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SavePlaybook", "ss", SD_BUS_PARAM(id) SD_BUS_PARAM(source),
                                 "aa{sv}", SD_BUS_PARAM(diagnostics), method_change_library,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("DeletePlaybook", "s", SD_BUS_PARAM(id), "", "",
                                 method_change_library, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListCredentials", "", "", "aa{sv}", SD_BUS_PARAM(credentials),
                                 method_list_credentials, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SetCredential", "sa{sv}", SD_BUS_PARAM(name) SD_BUS_PARAM(fields),
                                 "", "", method_change_credentials,
                                 SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_METHOD_WITH_NAMES("DeleteCredential", "s", SD_BUS_PARAM(name), "", "",
                                 method_change_credentials, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("StageInputFile", "sh", SD_BUS_PARAM(name) SD_BUS_PARAM(fd), "sts",
                                 SD_BUS_PARAM(token) SD_BUS_PARAM(size) SD_BUS_PARAM(sha256),
                                 itk_input_files_dbus_method, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("StageHostFile", "ss", SD_BUS_PARAM(directory) SD_BUS_PARAM(name),
                                 "sts", SD_BUS_PARAM(token) SD_BUS_PARAM(size) SD_BUS_PARAM(sha256),
                                 itk_input_files_dbus_method, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListInputFiles", "", "", "aa{sv}", SD_BUS_PARAM(files),
                                 itk_input_files_dbus_method, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_NAMES("ExecutionNew", "oss",
                                 SD_BUS_PARAM(execution) SD_BUS_PARAM(id) SD_BUS_PARAM(playbook),
                                 0),
        SD_BUS_SIGNAL_WITH_NAMES("ExecutionRemoved", "oss",
                                 SD_BUS_PARAM(execution) SD_BUS_PARAM(id) SD_BUS_PARAM(status), 0),
        SD_BUS_PROPERTY("Version", "s", manager_property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ActiveExecutions", "u", manager_property_get, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("MaxConcurrentExecutions", "u", manager_property_get, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MaxExecutionsPerCaller", "u", manager_property_get, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("RetentionSeconds", "u", manager_property_get, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MaxInputFileBytes", "t", manager_property_get, 0,
                        SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_VTABLE_END,
};

static void
execution_added_cb(ItkManager *manager, ItkExecution *execution, gpointer user_data)
{
        sd_bus *bus = user_data;
        g_autofree char *path = itk_execution_dbus_path(execution);
        int r;

        itk_execution_dbus_export(bus, execution);
        r = sd_bus_emit_signal(bus, ITK_BUS_PATH, ITK_BUS_MANAGER_IFACE, "ExecutionNew", "oss",
                               path, itk_execution_get_id(execution),
                               itk_execution_get_playbook_id(execution));
        if (r < 0)
                g_warning("cannot emit ExecutionNew: %s", g_strerror(-r));
}

static void
execution_removed_cb(ItkManager *manager, ItkExecution *execution, gpointer user_data)
{
        sd_bus *bus = user_data;
        g_autofree char *path = itk_execution_dbus_path(execution);
        int r;

        r = sd_bus_emit_signal(bus, ITK_BUS_PATH, ITK_BUS_MANAGER_IFACE, "ExecutionRemoved", "oss",
                               path, itk_execution_get_id(execution),
                               itk_status_to_string(itk_execution_get_status(execution)));
        if (r < 0)
                g_warning("cannot emit ExecutionRemoved: %s", g_strerror(-r));
        itk_execution_dbus_unexport(bus, execution);
}

static void
active_changed_cb(ItkManager *manager, gpointer user_data)
{
        sd_bus *bus = user_data;
        int r;

        r = sd_bus_emit_properties_changed(bus, ITK_BUS_PATH, ITK_BUS_MANAGER_IFACE,
                                           "ActiveExecutions", NULL);
        if (r < 0)
                g_warning("cannot emit PropertiesChanged: %s", g_strerror(-r));
}

static int
name_owner_changed_cb(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        /* A unique name losing its owner is a client leaving the bus. */
        if (name[0] == ':' && *new_owner == '\0') {
                itk_authority_forget(authority, name);
                itk_manager_sender_vanished(userdata, name);
        }
        return 0;
}

int
itk_manager_dbus_register(sd_bus *bus, ItkManager *manager, ItkAuthority *auth)
{
        int r;

        authority = auth;
        itk_input_files_dbus_set_authority(auth);
        r = sd_bus_add_object_vtable(bus, NULL, ITK_BUS_PATH, ITK_BUS_MANAGER_IFACE, manager_vtable,
                                     manager);
        if (r < 0)
                return r;
        r = sd_bus_add_object_manager(bus, NULL, ITK_BUS_PATH);
        if (r < 0)
                return r;
        r = itk_execution_dbus_register(bus, manager, auth);
        if (r < 0)
                return r;
        r = sd_bus_match_signal(bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                "org.freedesktop.DBus", "NameOwnerChanged", name_owner_changed_cb,
                                manager);
        if (r < 0)
                return r;
        g_signal_connect(manager, "execution-added", G_CALLBACK(execution_added_cb), bus);
        g_signal_connect(manager, "execution-removed", G_CALLBACK(execution_removed_cb), bus);
        g_signal_connect(manager, "active-changed", G_CALLBACK(active_changed_cb), bus);
        return 0;
}
