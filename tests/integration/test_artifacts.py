#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Artifacts over the bus: the files a run's steps wrote into its folder are
listed (name, step, size, content-type, sha256) and opened as read-only file
descriptors, live and after the run left the bus, never outside the folder;
a caller without the view right is refused (the polkitd mock, as root)."""

import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unittest

import itk_harness as h
from itk_harness import (BUS_NAME, EXECUTION_IFACE, INVALID_ARGS, MANAGER_IFACE, MANAGER_PATH,
                         NO_SUCH_EXECUTION, DaemonTestCase, Gio, GLib, playbook, python_step,
                         source_root, step)

NO_SUCH_ARTIFACT = 'org.ignition.Toolkit.Error.NoSuchArtifact'
TOKEN = 'itk:artifacts-test-key'
ARTIFACT_KEYS = {'name': 's', 'step': 's', 'size': 't', 'content-type': 's', 'sha256': 's',
                 'created-at': 'x'}


def sim_binary():
    path = os.environ.get('ITK_GATEWAY_SIM')
    if path:
        return path
    found = sorted((os.path.getmtime(p), p) for p in glob.glob(
        os.path.join(source_root(), 'build*', 'tests', 'gateway-sim', 'itk-gateway-sim')))
    return found[-1][1] if found else None


def start_sim(workdir):
    """itk-gateway-sim on a free port; (process, base URL)."""
    binary = sim_binary()
    if binary is None:
        raise unittest.SkipTest('itk-gateway-sim is not built')
    sim = subprocess.Popen(
        [binary, '--state-dir', tempfile.mkdtemp(dir=workdir, prefix='sim-'), '--token', TOKEN],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        preexec_fn=h._die_with_parent)
    m = re.search(r'listening on (http://\S+)', sim.stdout.readline().decode())
    if m is None:
        sim.kill()
        raise AssertionError('itk-gateway-sim did not start')
    return sim, m.group(1)


def stop_sim(sim):
    sim.terminate()
    sim.wait(10)
    sim.stdout.close()


def open_fd(client, path, iface, method, args):
    """Calls a method answering (h); returns the received fd (ours to close)."""
    result, fds = client.conn.call_with_unix_fd_list_sync(
        BUS_NAME, path, iface, method, args, GLib.VariantType('(h)'),
        Gio.DBusCallFlags.NONE, int(h.TIMEOUT * 1000), None, None)
    return fds.get(result.unpack()[0])


def read_fd(fd):
    with os.fdopen(fd, 'rb') as f:
        return f.read()


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def variant_types(value):
    """{key: type string} of the first a{sv} of an aa{sv} variant."""
    entry = value.get_child_value(0).get_child_value(0)
    types = {}
    for i in range(entry.n_children()):
        kv = entry.get_child_value(i)
        types[kv.get_child_value(0).get_string()] = \
            kv.get_child_value(1).get_variant().get_type_string()
    return types


class TestArtifacts(DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.sim, cls.url = start_sim(cls.workdir)
        except BaseException:
            cls._teardown_processes()
            raise

    @classmethod
    def tearDownClass(cls):
        stop_sim(cls.sim)
        super().tearDownClass()

    def run_dir(self, path):
        return os.path.join(self.daemon.state_dir, 'runs', path.rsplit('/', 1)[1])

    def backup_run(self, dest='site.gwbk', *extra):
        source = playbook(step('backup', 'gateway.backup', {'gateway_url': self.url,
                                                            'token': TOKEN,
                                                            'path': dest}), *extra)
        path, status, error = self.run_to_end(source, timeout=60)
        self.assertEqual((status, error), ('completed', ''))
        return path, self.client.get_prop(path, 'Id')

    def open_artifact(self, path, name):
        return open_fd(self.client, path, EXECUTION_IFACE, 'OpenArtifact',
                       GLib.Variant('(s)', (name,)))

    def open_history_artifact(self, run_id, name):
        return open_fd(self.client, MANAGER_PATH, MANAGER_IFACE, 'OpenHistoryArtifact',
                       GLib.Variant('(ss)', (run_id, name)))

    def history_artifacts(self, run_id):
        return self.client.manager('ListHistoryArtifacts', GLib.Variant('(s)', (run_id,)))

    def test_backup_listed_and_opened(self):
        # A file the step did not record and a link are in the folder too.
        stray = python_step('stray', "open('stray.txt', 'w').write('not an artifact')\n"
                            "import os\nos.symlink('/etc/hostname', 'link.gwbk')\n")
        path, run_id = self.backup_run('site.gwbk', stray)
        file = os.path.join(self.run_dir(path), 'site.gwbk')
        artifacts = self.call(path, 'ListArtifacts')
        self.assertEqual(len(artifacts), 1, artifacts)
        a = artifacts[0]
        self.assertEqual((a['name'], a['step'], a['content-type']),
                         ('site.gwbk', 'backup', 'application/zip'))
        self.assertEqual(a['size'], os.path.getsize(file))
        self.assertEqual(a['sha256'], sha256(file))
        raw = self.client.conn.call_sync(BUS_NAME, path, EXECUTION_IFACE, 'ListArtifacts', None,
                                         None, 0, -1, None)
        self.assertEqual(variant_types(raw), ARTIFACT_KEYS)

        fd = self.open_artifact(path, 'site.gwbk')
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        self.assertEqual(flags & os.O_ACCMODE, os.O_RDONLY)
        self.assertTrue(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
        with self.assertRaises(OSError):
            os.write(fd, b'x')
        data = read_fd(fd)
        with open(file, 'rb') as f:
            self.assertEqual(data, f.read())
        self.assertEqual(hashlib.sha256(data).hexdigest(), a['sha256'])

        # Only what a step recorded; no way out of the folder.
        self.assertDBusError(NO_SUCH_ARTIFACT, self.open_artifact, path, 'stray.txt')
        self.assertDBusError(NO_SUCH_ARTIFACT, self.open_artifact, path, 'link.gwbk')
        self.assertDBusError(NO_SUCH_ARTIFACT, self.open_artifact, path, 'missing.png')
        for bad in ('../history.db', '/etc/passwd', 'a/../site.gwbk', '', './site.gwbk',
                    'a//b', 'x\ny'):
            message = self.assertDBusError(INVALID_ARGS, self.open_artifact, path, bad)
            self.assertIn('artifact name', message)

        # The same through the manager, by either form of the id.
        self.assertEqual(self.history_artifacts(run_id), artifacts)
        hex_id = path.rsplit('/', 1)[1]
        self.assertEqual(self.history_artifacts(hex_id), artifacts)
        self.assertEqual(read_fd(self.open_history_artifact(hex_id, 'site.gwbk')), data)
        self.assertDBusError(NO_SUCH_ARTIFACT, self.open_history_artifact, run_id, 'stray.txt')
        self.assertDBusError(INVALID_ARGS, self.open_history_artifact, run_id, '../x')

    def test_link_swapped_in_is_refused(self):
        mkdir = python_step('mkdir', "import os\nos.mkdir('sub')\n")
        source = playbook(mkdir, step('backup', 'gateway.backup',
                                      {'gateway_url': self.url, 'token': TOKEN,
                                       'path': 'sub/b.gwbk'}))
        path, status, error = self.run_to_end(source, timeout=60)
        self.assertEqual((status, error), ('completed', ''))
        self.assertEqual([a['name'] for a in self.call(path, 'ListArtifacts')], ['sub/b.gwbk'])
        self.assertGreater(len(read_fd(self.open_artifact(path, 'sub/b.gwbk'))), 0)
        folder = self.run_dir(path)
        # The file replaced by a link to a file outside: refused.
        outside = os.path.join(self.tmp, 'outside')
        os.makedirs(outside)
        with open(os.path.join(outside, 'b.gwbk'), 'wb') as f:
            f.write(b'outside the run folder')
        os.rename(os.path.join(folder, 'sub', 'b.gwbk'), os.path.join(folder, 'moved'))
        os.symlink(os.path.join(outside, 'b.gwbk'), os.path.join(folder, 'sub', 'b.gwbk'))
        self.assertDBusError(NO_SUCH_ARTIFACT, self.open_artifact, path, 'sub/b.gwbk')
        # A folder on the way replaced by a link: refused too.
        os.rename(os.path.join(folder, 'sub'), os.path.join(folder, 'sub-old'))
        os.symlink(outside, os.path.join(folder, 'sub'))
        self.assertDBusError(NO_SUCH_ARTIFACT, self.open_artifact, path, 'sub/b.gwbk')
        self.assertDBusError(NO_SUCH_ARTIFACT, self.open_history_artifact,
                             self.client.get_prop(path, 'Id'), 'sub/b.gwbk')

    def test_outside_the_folder_is_not_listed(self):
        dest = os.path.join(self.tmp, 'elsewhere.gwbk')
        path, _ = self.backup_run(dest)
        self.assertTrue(os.path.exists(dest))
        self.assertEqual(self.call(path, 'ListArtifacts'), [])
        log = self.call(path, 'GetLog', GLib.Variant('(u)', (0,)))
        self.assertTrue(any('not listed as an artifact' in line[3] for line in log), log)

    def test_name_with_a_secret_is_not_listed(self):
        secret = 'Zq9-Artifact-Secret-4471'
        self.client.manager('SetCredential', GLib.Variant('(sa{sv})', (
            'artifact-test', {'username': GLib.Variant('s', 'u'),
                              'password': GLib.Variant('s', secret)})))
        self.addCleanup(self.client.manager, 'DeleteCredential',
                        GLib.Variant('(s)', ('artifact-test',)))
        path, run_id = self.backup_run(secret + '.gwbk')
        self.assertEqual(self.call(path, 'ListArtifacts'), [])
        self.assertEqual(self.history_artifacts(run_id), [])
        log = self.call(path, 'GetLog', GLib.Variant('(u)', (0,)))
        self.assertTrue(any('holds a secret' in line[3] for line in log), log)
        self.assertNotIn(secret, repr(log))

    def test_history_survives_restart_and_goes_with_the_run(self):
        path, run_id = self.backup_run('kept.gwbk')
        with open(os.path.join(self.run_dir(path), 'kept.gwbk'), 'rb') as f:
            data = f.read()
        listed = self.call(path, 'ListArtifacts')
        self.daemon.restart(self.client)
        # The run left the bus with the old daemon; its artifacts did not.
        self.assertEqual(self.history_artifacts(run_id), listed)
        self.assertEqual(read_fd(self.open_history_artifact(run_id, 'kept.gwbk')), data)
        self.client.manager('DeleteExecution', GLib.Variant('(s)', (run_id,)))
        self.assertDBusError(NO_SUCH_EXECUTION, self.history_artifacts, run_id)
        self.assertDBusError(NO_SUCH_EXECUTION, self.open_history_artifact, run_id, 'kept.gwbk')
        db = sqlite3.connect(os.path.join(self.daemon.state_dir, 'history.db'))
        try:
            rows = db.execute('SELECT COUNT(*) FROM artifacts WHERE execution_id = ?',
                              (run_id,)).fetchone()[0]
        finally:
            db.close()
        self.assertEqual(rows, 0)

    def test_unknown_run(self):
        unknown = '00000000-0000-4000-8000-000000000000'
        self.assertDBusError(NO_SUCH_EXECUTION, self.history_artifacts, unknown)
        self.assertDBusError(NO_SUCH_EXECUTION, self.open_history_artifact, unknown, 'a.png')
        self.assertDBusError(INVALID_ARGS, self.history_artifacts, 'x' * 5000)

    def ctl(self, *args):
        import test_ignitionctl
        argv = [test_ignitionctl.ignitionctl_path(), '--bus-address=' + self.bus.address]
        return subprocess.run(argv + list(args), capture_output=True, timeout=h.TIMEOUT,
                              env=test_ignitionctl.ctl_env(), stdin=subprocess.DEVNULL)

    def test_ignitionctl(self):
        path, run_id = self.backup_run('ctl.gwbk')
        file = os.path.join(self.run_dir(path), 'ctl.gwbk')
        with open(file, 'rb') as f:
            data = f.read()
        listed = self.call(path, 'ListArtifacts')
        p = self.ctl('artifacts', run_id[:8])
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        self.assertRegex(out, r'NAME\s+STEP\s+SIZE\s+TYPE\s+SHA256')
        self.assertRegex(out, r'ctl\.gwbk\s+backup\s+\S+ \S+\s+application/zip\s+' +
                         listed[0]['sha256'])
        self.assertIn('1 artifacts listed.', out)
        p = self.ctl('--json=short', 'artifacts', run_id)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), [dict(a) for a in listed])
        # Byte-identical, to stdout and to a file.
        p = self.ctl('artifact', run_id, 'ctl.gwbk')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, data)
        out_file = os.path.join(self.tmp, 'copy.gwbk')
        p = self.ctl('artifact', run_id, 'ctl.gwbk', '-o', out_file)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out_file, 'rb') as f:
            self.assertEqual(f.read(), data)
        self.assertIn(listed[0]['sha256'], p.stderr.decode())
        # Errors name the problem; nothing is written.
        missing = os.path.join(self.tmp, 'missing.gwbk')
        p = self.ctl('artifact', run_id, 'nope.png', '-o', missing)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("no artifact 'nope.png'", p.stderr.decode())
        self.assertFalse(os.path.exists(missing))
        self.assertEqual(sorted(os.listdir(self.tmp)), ['copy.gwbk'])
        p = self.ctl('artifact', run_id, '../history.db')
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn('artifact name', p.stderr.decode())
        p = self.ctl('artifacts', '00000000-0000-4000-8000-000000000000')
        self.assertEqual(p.returncode, 66, p.stderr)

    @unittest.skipUnless(os.access('/usr/bin/chromium', os.X_OK), 'no /usr/bin/chromium')
    def test_screenshot(self):
        page = 'data:text/html,<h1 id=t>Artifacts</h1>'
        source = playbook(step('open', 'browser.navigate', {'url': page}),
                          step('shot', 'browser.screenshot', {'name': 'front'}))
        path, status, error = self.run_to_end(source, timeout=90)
        self.assertEqual((status, error), ('completed', ''))
        output = json.loads({s['step-id']: s for s in self.client.get_steps(path)}
                            ['shot']['output'])
        artifacts = self.call(path, 'ListArtifacts')
        self.assertEqual([(a['name'], a['step'], a['content-type'], a['sha256'], a['size'])
                          for a in artifacts],
                         [('front.png', 'shot', 'image/png', output['sha256'], output['size'])])
        data = read_fd(self.open_artifact(path, 'front.png'))
        self.assertEqual(data[:8], b'\x89PNG\r\n\x1a\n')
        self.assertEqual(hashlib.sha256(data).hexdigest(), output['sha256'])

    @unittest.skipUnless(os.access('/usr/bin/chromium', os.X_OK), 'no /usr/bin/chromium')
    def test_browser_download(self):
        page = ("data:text/html,<a id=d download=hello.txt "
                "href='data:text/plain,hello from the page'>get</a>")
        source = playbook(step('open', 'browser.navigate', {'url': page}),
                          step('get', 'browser.click', {'selector': '#d'}),
                          h.sleep_step('hold', 600))
        path = self.start(source)

        def listed():
            return [a for a in self.call(path, 'ListArtifacts') if a['name'] == 'hello.txt']
        found = self.client.wait_for(listed, timeout=60, what='the download listed')
        self.assertEqual((found[0]['step'], found[0]['content-type'], found[0]['size']),
                         ('get', 'text/plain', len(b'hello from the page')))
        self.assertEqual(read_fd(self.open_artifact(path, 'hello.txt')), b'hello from the page')
        self.call(path, 'Cancel')
        self.client.wait_finished(path)


class TestBridgeArtifacts(DaemonTestCase):
    """GET /api/executions/ID/artifacts[/NAME] through ignition-toolkit-bridge."""

    @classmethod
    def setUpClass(cls):
        import test_bridge
        super().setUpClass()
        cls.sim = cls.bridge = None
        try:
            cls.sim, cls.url = start_sim(cls.workdir)
            cls.bridge = test_bridge.Bridge(cls.workdir, cls.bus.address)
        except BaseException:
            if cls.sim is not None:
                stop_sim(cls.sim)
            cls._teardown_processes()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.bridge.stop()
        stop_sim(cls.sim)
        text = cls.bridge.stderr_text()
        super().tearDownClass()
        if any(w in text for w in ('CRITICAL', 'WARNING', 'Sanitizer', 'runtime error:')):
            raise AssertionError('the bridge complained:\n' + text[-4000:])

    def http(self, method, path, token=True):
        import http.client
        conn = http.client.HTTPConnection('127.0.0.1', self.bridge.port, timeout=h.TIMEOUT)
        headers = {'Authorization': 'Bearer ' + self.bridge.token} if token else {}
        try:
            conn.request(method, path, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read(), resp
        finally:
            conn.close()

    def backup_run(self, dest):
        source = playbook(step('backup', 'gateway.backup', {'gateway_url': self.url,
                                                            'token': TOKEN, 'path': dest}))
        path, status, error = self.run_to_end(source, timeout=60)
        self.assertEqual((status, error), ('completed', ''))
        return path, self.client.get_prop(path, 'Id')

    def test_list_and_download(self):
        path, run_id = self.backup_run('web.gwbk')
        file = os.path.join(self.daemon.state_dir, 'runs', path.rsplit('/', 1)[1], 'web.gwbk')
        with open(file, 'rb') as f:
            data = f.read()
        status, body, resp = self.http('GET', '/api/executions/%s/artifacts' % run_id)
        self.assertEqual(status, 200, body)
        listed = json.loads(body)
        # The bridge's JSON says content_type and created_at, as its other keys.
        self.assertEqual(listed, [{k.replace('-', '_'): v for k, v in a.items()}
                                  for a in self.call(path, 'ListArtifacts')])
        status, body, resp = self.http('GET', '/api/executions/%s/artifacts/web.gwbk' % run_id)
        self.assertEqual(status, 200, body)
        self.assertEqual(body, data)
        self.assertEqual(resp.getheader('Content-Type'), 'application/zip')
        self.assertEqual(resp.getheader('Content-Length'), str(len(data)))
        self.assertEqual(resp.getheader('Content-Disposition'),
                         'attachment; filename="web.gwbk"; filename*=UTF-8\'\'web.gwbk')
        self.assertEqual(resp.getheader('X-Artifact-SHA256'), listed[0]['sha256'])
        self.assertEqual(resp.getheader('X-Content-Type-Options'), 'nosniff')
        self.assertIn('sandbox', resp.getheader('Content-Security-Policy'))
        # The hex id works as well; errors are the API's JSON.
        hex_id = path.rsplit('/', 1)[1]
        status, body, _ = self.http('GET', '/api/executions/%s/artifacts/web.gwbk' % hex_id)
        self.assertEqual((status, body), (200, data))
        status, body, _ = self.http('GET', '/api/executions/%s/artifacts/web.gwbk' % run_id,
                                    token=False)
        self.assertEqual(status, 401)
        status, body, _ = self.http('GET', '/api/executions/%s/artifacts/nope.png' % run_id)
        self.assertEqual((status, json.loads(body)['error']), (404, 'NoSuchArtifact'))
        # libsoup refuses a dot segment hidden behind %2F itself; what gets
        # through decoded is the daemon's to refuse.
        status, body, _ = self.http('GET',
                                    '/api/executions/%s/artifacts/..%%2Fhistory.db' % run_id)
        self.assertEqual(status, 400)
        status, body, _ = self.http('GET', '/api/executions/%s/artifacts/a%%01b' % run_id)
        self.assertEqual((status, json.loads(body)['error']), (400, 'InvalidArgs'))
        self.assertIn('artifact name', json.loads(body)['message'])
        status, body, _ = self.http('GET', '/api/executions/%s/artifacts/%%2Fetc%%2Fpasswd'
                                    % run_id)
        self.assertEqual((status, json.loads(body)['error']), (404, 'NoSuchArtifact'))
        status, body, _ = self.http('DELETE', '/api/executions/%s/artifacts/web.gwbk' % run_id)
        self.assertEqual(status, 405)
        status, body, _ = self.http(
            'GET', '/api/executions/00000000-0000-4000-8000-000000000000/artifacts')
        self.assertEqual((status, json.loads(body)['error']), (404, 'NoSuchExecution'))

    def test_large_file_streams_and_client_may_leave(self):
        path, run_id = self.backup_run('big.gwbk')
        file = os.path.join(self.daemon.state_dir, 'runs', path.rsplit('/', 1)[1], 'big.gwbk')
        # Many chunks: the bytes sent are the file's as it is now.
        data = os.urandom(5 * 1024 * 1024 + 123)
        with open(file, 'wb') as f:
            f.write(data)
        status, body, resp = self.http('GET', '/api/executions/%s/artifacts/big.gwbk' % run_id)
        self.assertEqual(status, 200)
        self.assertEqual(hashlib.sha256(body).hexdigest(), hashlib.sha256(data).hexdigest())
        # A client that leaves mid-way: the bridge carries on serving others.
        import socket
        sock = socket.create_connection(('127.0.0.1', self.bridge.port), timeout=h.TIMEOUT)
        sock.sendall(('GET /api/executions/%s/artifacts/big.gwbk HTTP/1.1\r\n'
                      'Host: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n'
                      % (run_id, self.bridge.token)).encode())
        self.assertTrue(sock.recv(4096).startswith(b'HTTP/1.1 200'))
        sock.close()
        status, body, _ = self.http('GET', '/api/executions/%s/artifacts/big.gwbk' % run_id)
        self.assertEqual((status, len(body)), (200, len(data)))

    @unittest.skipUnless(os.access('/usr/bin/chromium', os.X_OK), 'no /usr/bin/chromium')
    def test_screenshot_inline(self):
        source = playbook(step('open', 'browser.navigate', {'url': 'data:text/html,<p>hi'}),
                          step('shot', 'browser.screenshot', {'name': 'page'}))
        path, status, error = self.run_to_end(source, timeout=90)
        self.assertEqual((status, error), ('completed', ''))
        run_id = self.client.get_prop(path, 'Id')
        status, body, resp = self.http('GET', '/api/executions/%s/artifacts/page.png' % run_id)
        self.assertEqual(status, 200)
        self.assertEqual(body[:8], b'\x89PNG\r\n\x1a\n')
        self.assertEqual(resp.getheader('Content-Type'), 'image/png')
        self.assertTrue(resp.getheader('Content-Disposition').startswith('inline; '))


def polkit_case():
    """TestPolkit's bus, daemon and polkitd mock (as root), with only our tests."""
    import test_polkit as tp

    class TestArtifactsPolkit(tp.TestPolkit):

        @classmethod
        def setUpClass(cls):
            super().setUpClass()
            try:
                cls.sim, cls.url = start_sim(cls.workdir)
            except BaseException:
                cls.tearDownClass()
                raise

        @classmethod
        def tearDownClass(cls):
            if getattr(cls, 'sim', None) is not None:
                stop_sim(cls.sim)
            super().tearDownClass()

        def test_viewer_needs_the_view_right(self):
            source = h.playbook(h.step('backup', 'gateway.backup',
                                       {'gateway_url': self.url, 'token': TOKEN,
                                        'path': 'p.gwbk'}))
            path = self.client.start_execution('artifacts', {}, {'source': source})
            self.assertEqual(self.client.wait_finished(path, 60).args[0], 'completed')
            run_id = self.client.get_prop(path, 'Id')
            calls = [
                tp.control(path, 'ListArtifacts'),
                tp.control(path, 'OpenArtifact', 'GLib.Variant("(s)", ("p.gwbk",))'),
                tp.manager_call('ListHistoryArtifacts', 'GLib.Variant("(s)", (%r,))' % run_id),
                tp.manager_call('OpenHistoryArtifact',
                                'GLib.Variant("(ss)", (%r, "p.gwbk"))' % run_id),
            ]
            for reply in self.call_as('nobody', calls)['replies']:
                self.assertRefused(reply, action=tp.VIEW)
            self.allow(tp.VIEW)
            replies = self.call_as('nobody', calls[0:3:2])['replies']
            for reply in replies:
                self.assertAllowed(reply)
                self.assertEqual([a['name'] for a in reply['value']], ['p.gwbk'])

    return TestArtifactsPolkit


def load_tests(loader, tests, pattern):
    suite = unittest.TestSuite()
    suite.addTests(loader.loadTestsFromTestCase(TestArtifacts))
    suite.addTests(loader.loadTestsFromTestCase(TestBridgeArtifacts))
    cls = polkit_case()
    # Only the tests defined here, not the inherited ones of test_polkit.py.
    for name in sorted(n for n in vars(cls) if n.startswith('test_')):
        suite.addTest(cls(name))
    return suite


if __name__ == '__main__':
    unittest.main(verbosity=2)
