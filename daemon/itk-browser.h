/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gio.h>

#include "itk-cdp.h"

G_BEGIN_DECLS

/* ItkBrowser: the daemon's one headless Chromium (docs/browser.md).
 *
 * Started on first use, spoken to over CDP on --remote-debugging-pipe,
 * confined by the daemon's sandbox template (itk-sandbox.h). Each execution
 * gets its own browser context with one page (ItkBrowserPage); one spare
 * page is kept ready so a run's first step does not wait for it. With no
 * page in use for the idle timeout the browser exits; a browser that dies
 * fails the pages that used it, and the next request starts a fresh one. */

typedef struct _ItkBrowser ItkBrowser;
typedef struct _ItkBrowserPage ItkBrowserPage;

#define ITK_BROWSER_DEFAULT_BINARY "/usr/bin/chromium"
#define ITK_BROWSER_DEFAULT_IDLE_TIMEOUT 300 /* seconds */

/* @binary NULL: itk_browser_config_get_binary(). @data_dir:
 * where the profile and download folders go (NULL: a private folder in the
 * temporary directory). */
ItkBrowser *itk_browser_new(const char *binary, const char *data_dir, guint idle_timeout_sec);
void itk_browser_free(ItkBrowser *self);

/* The configuration, in the engine (steps/itk-step-browser-types.c) so that
 * main.c and validation need not load the browser module: the first call
 * of itk_browser_configure() wins (main.c reads toolkit.conf [Browser]). */
void itk_browser_configure(const char *binary, const char *data_dir, guint idle_timeout_sec);
/* Configured, else $ITK_CHROMIUM, else ITK_BROWSER_DEFAULT_BINARY. */
const char *itk_browser_config_get_binary(void);
const char *itk_browser_config_get_data_dir(void);
guint itk_browser_config_get_idle_timeout(void);
/* TRUE when @binary is executable; else ITK_ERROR_NOT_SUPPORTED naming the
 * Debian package. */
gboolean itk_browser_check_binary(const char *binary, GError **error);

/* The daemon's browser, made with the configuration above. */
ItkBrowser *itk_browser_get_default(void);

/* TRUE when the binary is there and executable; else ITK_ERROR_NOT_SUPPORTED
 * naming the Debian package. */
gboolean itk_browser_check_available(ItkBrowser *self, GError **error);
/* The page agent evaluated in the "itk" world of every document. */
void itk_browser_set_agent_source(ItkBrowser *self, const char *source);

/* A fresh page in a fresh context; starts the browser when needed. */
void itk_browser_new_page_async(ItkBrowser *self, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data);
ItkBrowserPage *itk_browser_new_page_finish(ItkBrowser *self, GAsyncResult *result, GError **error);

/* Stops the browser now (tests, idle exit). Pages in use fail. */
void itk_browser_stop(ItkBrowser *self);
/* The Chromium process id (0 when not running), for tests. */
GPid itk_browser_get_pid(ItkBrowser *self);
guint itk_browser_get_n_pages(ItkBrowser *self);
/* How many browser processes were started, for tests. */
guint itk_browser_get_n_starts(ItkBrowser *self);

/* Disposes the page's context (fire and forget) and frees it. */
void itk_browser_page_close(ItkBrowserPage *page);
ItkCdp *itk_browser_page_get_cdp(ItkBrowserPage *page);
const char *itk_browser_page_get_session_id(ItkBrowserPage *page);
const char *itk_browser_page_get_frame_id(ItkBrowserPage *page);
/* FALSE, with the reason, once its browser died or the page crashed. */
gboolean itk_browser_page_check(ItkBrowserPage *page, GError **error);
/* Downloads of this page end up in @dir. */
void itk_browser_page_set_download_dir(ItkBrowserPage *page, const char *dir);
/* Called with the full path of each download once it is in its folder; @data
 * is released with @destroy when replaced or when the page closes. */
typedef void (*ItkBrowserDownloadFunc)(gpointer data, const char *path);
void itk_browser_page_set_download_func(ItkBrowserPage *page, ItkBrowserDownloadFunc func,
                                        gpointer data, GDestroyNotify destroy);

/* The execution context id of the agent's world in the main frame, waiting
 * for the next document when there is none (after a navigation). */
void itk_browser_page_get_world_async(ItkBrowserPage *page, GCancellable *cancellable,
                                      GAsyncReadyCallback callback, gpointer user_data);
gint64 itk_browser_page_get_world_finish(ItkBrowserPage *page, GAsyncResult *result,
                                         GError **error);
/* The world @id is gone (a navigation): forget it. */
void itk_browser_page_forget_world(ItkBrowserPage *page, gint64 id);

/* Launches @argv with the CDP pipe (exposed for the fds-3-and-4 test):
 * our ends in *@to_browser / *@from_browser. */
GSubprocess *itk_browser_spawn(const char *const *argv, int *to_browser, int *from_browser,
                               GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ItkBrowser, itk_browser_free)

G_END_DECLS
