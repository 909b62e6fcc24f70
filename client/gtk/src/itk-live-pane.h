/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "itk-app.h"

G_BEGIN_DECLS

/* The run's browser page as the daemon's live view shows it
 * (Execution.OpenLiveView, docs/live-view.md). The socket is open only while
 * the pane is mapped: frames flow only while someone watches. */
typedef struct _ItkLivePane ItkLivePane;

ItkLivePane *itk_live_pane_new(const char *path);
void itk_live_pane_free(ItkLivePane *pane);
GtkWidget *itk_live_pane_get_widget(ItkLivePane *pane);
/* Paused: the last frame stays and a "Paused" label shows; clicks on the
 * picture are sent to the page (SendInput). */
void itk_live_pane_set_paused(ItkLivePane *pane, gboolean paused);
/* In debug mode the page takes clicks while the run runs, too. */
void itk_live_pane_set_debug_mode(ItkLivePane *pane, gboolean debug_mode);
/* The run ended: the pane does not open the view again. */
void itk_live_pane_set_ended(ItkLivePane *pane);
/* For the test hook: frames u, sequence t, url s, step s, state s, message s,
 * paused b, watching b, width i, height i (of the picture's texture). */
GVariant *itk_live_pane_describe(ItkLivePane *pane);
/* A click at (@fx, @fy), fractions of the picture shown, as the gesture does. */
gboolean itk_live_pane_click(ItkLivePane *pane, double fx, double fy);
/* A key typed on the picture, as the key controller does; FALSE if not sent
 * (no frame yet, or a key the page is not given). */
gboolean itk_live_pane_key(ItkLivePane *pane, guint keyval);

G_END_DECLS
