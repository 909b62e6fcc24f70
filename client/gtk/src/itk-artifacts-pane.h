/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "itk-app.h"

G_BEGIN_DECLS

/* The files a run's steps recorded (ListArtifacts for a run on the bus,
 * ListHistoryArtifacts for one from history): name, step, size and type, each
 * saved through a file chooser or, for an image, previewed. */
typedef struct _ItkArtifactsPane ItkArtifactsPane;

/* @path for a run on the bus, else @id (a run from history). */
ItkArtifactsPane *itk_artifacts_pane_new(GtkWindow *window, const char *path, const char *id);
void itk_artifacts_pane_free(ItkArtifactsPane *pane);
/* The id of a run on the bus: once it leaves the bus (RetentionSeconds after
 * its end) the pane asks the Manager by id. */
void itk_artifacts_pane_set_id(ItkArtifactsPane *pane, const char *id);
GtkWidget *itk_artifacts_pane_get_widget(ItkArtifactsPane *pane);
/* Reads the list again (one call at a time; a refresh meanwhile asks for one more). */
void itk_artifacts_pane_refresh(ItkArtifactsPane *pane);
/* For the test hook: a(ssts) of name, step, size, content type as listed. */
GVariant *itk_artifacts_pane_describe(ItkArtifactsPane *pane);
/* Saves @name to @file as the file chooser's answer would; FALSE if not listed. */
gboolean itk_artifacts_pane_save(ItkArtifactsPane *pane, const char *name, GFile *file);
/* Opens the preview of image @name; FALSE if not listed or not an image. */
gboolean itk_artifacts_pane_preview(ItkArtifactsPane *pane, const char *name);

G_END_DECLS
