/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "itk-app.h"
#include "itk-artifacts-pane.h"
#include "itk-live-pane.h"

G_BEGIN_DECLS

/* A run's window: the step tree, the live log and the controls, which follow
 * the run's real status. Live runs are followed on the bus; finished runs
 * read from GetExecutionRecord. Opening a run twice presents its window. */
GtkWindow *itk_run_view_open_live(const char *path, ItkRunFollower *follower);
GtkWindow *itk_run_view_open_record(const char *id);

/* What the window shows, for the test hook: status s, controls as,
 * steps a(ssss) (id, status, duration, output), log-lines u, path s, id s. */
GVariant *itk_run_view_describe(GtkWindow *view);
/* Activates a control button as a click would; FALSE if it is not offered. */
gboolean itk_run_view_press(GtkWindow *view, const char *control);
const char *itk_run_view_get_path(GtkWindow *view);
/* The side panes, for the test hook: the live view (NULL for a run from
 * history) and the recorded files; show_pane picks "live" or "files". */
ItkLivePane *itk_run_view_get_live(GtkWindow *view);
ItkArtifactsPane *itk_run_view_get_artifacts(GtkWindow *view);
gboolean itk_run_view_show_pane(GtkWindow *view, const char *name);

G_END_DECLS
