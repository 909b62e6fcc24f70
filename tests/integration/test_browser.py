#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Browser steps through the daemon (docs/browser.md): a run drives headless
Chromium end to end, Cancel during a wait ends it at once, Skip goes on with
the same page. Skipped without /usr/bin/chromium."""

import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

from itk_harness import DaemonTestCase, GLib, main, playbook, source_root, step

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


def sim_binary():
    path = os.environ.get('ITK_GATEWAY_SIM')
    if path:
        return path
    found = sorted((os.path.getmtime(p), p) for p in glob.glob(
        os.path.join(source_root(), 'build*', 'tests', 'gateway-sim', 'itk-gateway-sim')))
    return found[-1][1] if found else None


class TestShippedWebPlaybooks(DaemonTestCase):
    """data/playbooks/gateway/web_*.yaml: the chores only the web UI does, run
    through the daemon against the simulator's pages."""
    playbook_path = (os.path.join(source_root(), 'data', 'playbooks'),)

    def setUp(self):
        super().setUp()
        binary = sim_binary()
        if binary is None:
            self.skipTest('itk-gateway-sim is not built')
        self.sim = subprocess.Popen(
            [binary, '--state-dir', tempfile.mkdtemp(dir=self.workdir, prefix='sim-')],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        self.addCleanup(self.stop_sim)
        m = re.search(r'listening on (http://\S+)', self.sim.stdout.readline().decode())
        self.assertIsNotNone(m, 'itk-gateway-sim did not start')
        self.url = m.group(1)

    def stop_sim(self):
        self.sim.terminate()
        self.sim.wait(10)
        self.sim.stdout.close()

    def sim_request(self, method, path):
        req = urllib.request.Request(self.url + path, method=method,
                                     headers={'Accept': 'application/json'})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b'null')

    def run_library(self, playbook_id, params):
        path = self.start(None, params, playbook_id=playbook_id)
        m = self.client.wait_finished(path, 120)
        return path, m.args[0], m.args[1]

    def test_web_login(self):
        path, status, error = self.run_library(
            'gateway/web_login.yaml',
            {'gateway_url': self.url, 'username': 'admin', 'password': 'password'})
        self.assertEqual((status, error), ('completed', ''))
        steps = {s['step-id']: s for s in self.client.get_steps(path)}
        self.assertEqual(json.loads(steps['shot']['output'])['name'], 'logged-in.png')
        # A wrong password is refused by the page: the session never opens.
        path, status, error = self.run_library(
            'gateway/web_login.yaml',
            {'gateway_url': self.url, 'username': 'admin', 'password': 'wrong-one'})
        self.assertEqual(status, 'failed')
        self.assertIn('logout-link', error)

    @property
    def login(self):
        return {'gateway_url': self.url, 'username': 'admin', 'password': 'password'}

    def test_web_reset_trial(self):
        self.sim_request('POST', '/sim/trial?expired=true')
        self.assertTrue(self.sim_request('GET', '/data/api/v1/trial')['expired'])
        path, status, error = self.run_library('gateway/web_reset_trial.yaml', self.login)
        self.assertEqual((status, error), ('completed', ''))
        self.assertFalse(self.sim_request('GET', '/data/api/v1/trial')['expired'])
        # With the trial running it says so instead of clicking anything.
        path, status, error = self.run_library('gateway/web_reset_trial.yaml', self.login)
        self.assertEqual(status, 'failed')
        self.assertIn("Step 'expired' failed", error)


if __name__ == '__main__':
    main()
