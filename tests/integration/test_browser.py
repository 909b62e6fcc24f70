#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Browser steps through the daemon (docs/browser.md): a run drives headless
Chromium end to end, Cancel during a wait ends it at once, Skip goes on with
the same page. Skipped without /usr/bin/chromium."""

import json
import os
import sys
import time

from itk_harness import DaemonTestCase, GLib, main, playbook, step

if not os.access('/usr/bin/chromium', os.X_OK):
    print('SKIP: /usr/bin/chromium is not installed (Debian package chromium)')
    sys.exit(77)

PAGE = ('data:text/html,<form><input id=user><input id=pw type=password>'
        '<button id=go type=button onclick="document.body.insertAdjacentHTML('
        "'beforeend', '<p id=done>Welcome</p>')\">Go</button></form>")
SECRET = 'Hunter2-s3cr3t'


class TestBrowser(DaemonTestCase):
    def test_run_end_to_end(self):
        source = playbook(
            step('open', 'browser.navigate', {'url': PAGE}),
            step('user', 'browser.fill', {'selector': '#user', 'value': 'admin'}),
            step('pw', 'browser.fill', {'selector': '#pw', 'value': '{{ password }}'}),
            step('go', 'browser.click', {'selector': '#go'}),
            step('check', 'browser.verify_text', {'selector': '#done', 'text': 'welcome'}),
            step('shot', 'browser.screenshot', {'name': 'after'}),
            parameters=[{'name': 'password', 'type': 'string'}])
        path, status, error = self.run_to_end(source, {'password': SECRET}, timeout=60)
        self.assertEqual((status, error), ('completed', ''))
        steps = {s['step-id']: s for s in self.client.get_steps(path)}
        shot = json.loads(steps['shot']['output'])
        self.assertEqual(shot['name'], 'after.png')
        self.assertEqual(len(shot['sha256']), 64)
        self.assertGreater(shot['size'], 100)
        # The password typed into the page is in no step, output or log line.
        self.assertNotIn(SECRET, repr(self.client.get_steps(path)))
        self.assertNotIn(SECRET, repr(self.call(path, 'GetLog', GLib.Variant('(u)', (1000,)))))

    def test_cancel_during_wait(self):
        source = playbook(
            step('open', 'browser.navigate', {'url': PAGE}),
            step('hang', 'browser.wait', {'selector': '#never', 'timeout': 60000}))
        path = self.start(source)
        self.client.wait_step(path, 'hang', 'running', timeout=60)
        self.client.idle(0.3)
        since = time.monotonic()
        self.call(path, 'Cancel')
        self.wait_cancelled(path, since)

    def test_skip_during_wait(self):
        source = playbook(
            step('open', 'browser.navigate', {'url': PAGE}),
            step('hang', 'browser.wait', {'selector': '#never', 'timeout': 60000}),
            step('still', 'browser.verify', {'selector': '#user'}))
        path = self.start(source)
        self.client.wait_step(path, 'hang', 'running', timeout=60)
        self.call(path, 'Skip')
        fin = self.client.wait_finished(path, 30)
        self.assertEqual(fin.args[0], 'completed')
        steps = {s['step-id']: s['status'] for s in self.client.get_steps(path)}
        self.assertEqual(steps, {'open': 'completed', 'hang': 'skipped', 'still': 'completed'})


if __name__ == '__main__':
    main()
