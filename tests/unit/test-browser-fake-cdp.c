/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The browser against a stand-in for Chromium: a small Python program on the
 * CDP pipe (fds 3 and 4) that answers the browser-level calls and leaves a
 * page's setup calls unanswered. Lets a test stop the browser at an exact
 * point, which real Chromium answers too fast to hit. Needs python3. */
#include "config.h"

#include <glib/gstdio.h>

#include "itk-browser.h"

static const char fake_cdp[] =
        "import json, os\n"
        "rd = os.fdopen(3, 'rb', buffering=0)\n"
        "wr = os.fdopen(4, 'wb', buffering=0)\n"
        "marker = os.environ['ITK_FAKE_CDP_MARKER']\n"
        "results = {\n"
        "    'Browser.getVersion': {'protocolVersion': '1.3', 'product': 'HeadlessChrome/120.0',\n"
        "                           'revision': '', 'userAgent': 'fake', 'jsVersion': ''},\n"
        "    'Target.createBrowserContext': {'browserContextId': 'C1'},\n"
        "    'Target.createTarget': {'targetId': 'T1'},\n"
        "    'Target.attachToTarget': {'sessionId': 'S1'},\n"
        "}\n"
        "buf = b''\n"
        "unanswered = 0\n"
        "while True:\n"
        "    chunk = rd.read(65536)\n"
        "    if not chunk:\n"
        "        break\n"
        "    buf += chunk\n"
        "    while b'\\0' in buf:\n"
        "        raw, buf = buf.split(b'\\0', 1)\n"
        "        msg = json.loads(raw)\n"
        "        if 'sessionId' in msg:\n"
        "            unanswered += 1\n"
        "            if unanswered == 3:\n"
        "                open(marker, 'w').close()\n"
        "            continue\n"
        "        reply = {'id': msg['id'], 'result': results.get(msg.get('method'), {})}\n"
        "        wr.write(json.dumps(reply).encode() + b'\\0')\n";

typedef struct {
        gboolean done;
        ItkBrowserPage *page;
        GError *error;
} PageResult;

static void
page_cb(GObject *source, GAsyncResult *result, gpointer user_data)
{
        PageResult *r = user_data;

        r->page = itk_browser_new_page_finish((ItkBrowser *)source, result, &r->error);
        r->done = TRUE;
}

static gboolean
timeout_cb(gpointer user_data)
{
        *(gboolean *)user_data = TRUE;
        return G_SOURCE_REMOVE;
}

/* Turns the loop until @done or @marker exists, for at most 20 s. */
static void
iterate_until(const gboolean *done, const char *marker)
{
        gboolean expired = FALSE;
        guint id = g_timeout_add_seconds(20, timeout_cb, &expired);

        while (!expired && (done == NULL || !*done) &&
               (marker == NULL || !g_file_test(marker, G_FILE_TEST_EXISTS)))
                g_main_context_iteration(NULL, marker != NULL ? FALSE : TRUE);
        g_assert_false(expired);
        g_source_remove(id);
}

/* Stopped while a page's setup calls are in flight: each of them fails, the
 * last one releases the page being made, and the request fails cleanly
 * (before the fix the first failure freed it under the others: ASan). */
static void
test_stop_during_page_setup(void)
{
        g_autofree char *dir = g_dir_make_tmp("itk-fake-cdp-XXXXXX", NULL);
        g_autofree char *script = g_build_filename(dir, "chromium", NULL);
        g_autofree char *marker = g_build_filename(dir, "setup-sent", NULL);
        g_autofree char *text = g_strdup_printf("#!/usr/bin/python3\n%s", fake_cdp);
        g_autofree char *data = g_build_filename(dir, "data", NULL);
        ItkBrowser *browser;
        PageResult r = { 0 };

        g_assert_true(g_file_set_contents(script, text, -1, NULL));
        g_assert_cmpint(g_chmod(script, 0755), ==, 0);
        g_setenv("ITK_FAKE_CDP_MARKER", marker, TRUE);
        browser = itk_browser_new(script, data, 60);
        itk_browser_set_agent_source(browser, "void 0");
        itk_browser_new_page_async(browser, NULL, page_cb, &r);
        iterate_until(NULL, marker);
        g_assert_false(r.done);

        itk_browser_stop(browser);
        iterate_until(&r.done, NULL);
        g_assert_null(r.page);
        g_assert_nonnull(r.error);
        /* The outstanding setup calls' callbacks, if any still queued. */
        while (g_main_context_iteration(NULL, FALSE))
                ;
        g_clear_error(&r.error);
        itk_browser_free(browser);
        while (g_main_context_iteration(NULL, FALSE))
                ;
        {
                const char *rm[] = { "rm", "-rf", dir, NULL };

                g_spawn_sync(NULL, (char **)rm, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                             NULL, NULL);
        }
}

int
main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        if (!g_file_test("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE)) {
                g_print("1..0 # SKIP /usr/bin/python3 is not installed\n");
                return 77;
        }
        g_test_add_func("/browser-fake-cdp/stop-during-page-setup", test_stop_during_page_setup);
        return g_test_run();
}
