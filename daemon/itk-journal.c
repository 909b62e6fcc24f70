/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "itk-journal.h"

#define LOG_DOMAIN "ignition-toolkitd"

static void
itk_journal_log(GLogLevelFlags level, ItkExecution *execution, const char *step_id,
                const char *message)
{
        const GLogField fields[] = {
                { "GLIB_DOMAIN", LOG_DOMAIN, -1 },
                { "MESSAGE", message, -1 },
                { "EXECUTION_ID", itk_execution_get_id(execution), -1 },
                { "PLAYBOOK", itk_execution_get_playbook_id(execution), -1 },
                { "STEP_ID", step_id != NULL ? step_id : "", -1 },
        };

        g_log_structured_array(level, fields, step_id != NULL && *step_id ? 5 : 4);
}

static void
status_changed_cb(ItkExecution *execution, int status, int previous, gpointer user_data)
{
        g_autofree char *message = NULL;
        const char *error = itk_execution_get_error(execution);

        gboolean started = status == ITK_STATUS_RUNNING && previous == ITK_STATUS_PENDING;

        /* Pause and resume are the operator's own actions: not journal news. */
        if (!started && !itk_status_is_terminal(status))
                return;
        if (status == ITK_STATUS_FAILED && error != NULL && *error != '\0')
                message = g_strdup_printf("execution %s (%s) failed: %s",
                                          itk_execution_get_id(execution),
                                          itk_execution_get_playbook_id(execution), error);
        else
                message = g_strdup_printf(
                        "execution %s (%s) %s", itk_execution_get_id(execution),
                        itk_execution_get_playbook_id(execution),
                        status == ITK_STATUS_RUNNING ? "started" : itk_status_to_string(status));
        itk_journal_log(status == ITK_STATUS_FAILED ? G_LOG_LEVEL_WARNING : G_LOG_LEVEL_INFO,
                        execution, NULL, message);
}

static void
step_changed_cb(ItkExecution *execution, int index, const char *step_id, int status,
                const char *message, gpointer user_data)
{
        g_autofree char *line = NULL;

        if (status != ITK_STEP_FAILED)
                return;
        line = g_strdup_printf("execution %s: step %s failed: %s", itk_execution_get_id(execution),
                               step_id, message);
        itk_journal_log(G_LOG_LEVEL_WARNING, execution, step_id, line);
}

static void
log_cb(ItkExecution *execution, guint64 usec, guint priority, const char *step_id,
       const char *message, gpointer user_data)
{
        itk_journal_log(G_LOG_LEVEL_DEBUG, execution, step_id, message);
}

static void
execution_added_cb(ItkManager *manager, ItkExecution *execution, gpointer user_data)
{
        g_signal_connect(execution, "status-changed", G_CALLBACK(status_changed_cb), NULL);
        g_signal_connect(execution, "step-changed", G_CALLBACK(step_changed_cb), NULL);
        g_signal_connect(execution, "log", G_CALLBACK(log_cb), NULL);
}

void
itk_journal_attach(ItkManager *manager)
{
        g_signal_connect(manager, "execution-added", G_CALLBACK(execution_added_cb), NULL);
}
