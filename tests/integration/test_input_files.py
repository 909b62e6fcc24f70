#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Input files over the bus: a `file` parameter gets a file staged by fd
(StageInputFile) or copied from an admin-allowed host folder (ListInputFiles,
StageHostFile), never a typed path; the run sees its own copy in its folder,
with the size and sha256 in its log. Limits, bad names, traversal, symlinks,
bad and foreign tokens, expiry."""

import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest

import itk_harness as h
from itk_harness import (BUS_NAME, INVALID_ARGS, MANAGER_IFACE, MANAGER_PATH, DaemonTestCase,
                         Gio, GLib, playbook, shell_step)

INVALID_PARAMETERS = 'org.ignition.Toolkit.Error.InvalidParameters'
LIMITS_EXCEEDED = 'org.freedesktop.DBus.Error.LimitsExceeded'
NO_SUCH_INPUT_FILE = 'org.ignition.Toolkit.Error.NoSuchInputFile'
MAX_BYTES = 1024 * 1024

FILE_PLAYBOOK = playbook(
    shell_step('hash', 'sha256sum {{ parameter.module }} && pwd'),
    parameters=[{'name': 'module', 'type': 'file'},
                {'name': 'backup', 'type': 'file', 'required': False}])


def stage_fd(client, name, fd):
    fds = Gio.UnixFDList.new()
    index = fds.append(fd)
    try:
        result, _ = client.conn.call_with_unix_fd_list_sync(
            BUS_NAME, MANAGER_PATH, MANAGER_IFACE, 'StageInputFile',
            GLib.Variant('(sh)', (name, index)), GLib.VariantType('(sts)'),
            Gio.DBusCallFlags.NONE, int(h.TIMEOUT * 1000), fds, None)
    finally:
        # The list holds a copy of the fd: a writer must see the reader gone.
        for copy in fds.steal_fds():
            os.close(copy)
    return result.unpack()


def stage_bytes(client, name, data):
    """Through a pipe, written from a thread as a client would stream it."""
    r, w = os.pipe()

    def feed():
        with os.fdopen(w, 'wb') as f:
            try:
                f.write(data)
            except BrokenPipeError:
                pass
    writer = threading.Thread(target=feed)
    writer.start()
    try:
        return stage_fd(client, name, r)
    finally:
        os.close(r)
        writer.join()


class InputFilesCase(DaemonTestCase):
    max_bytes = MAX_BYTES

    @classmethod
    def setUpClass(cls):
        cls.inputs_root = tempfile.mkdtemp(prefix='itk-inputs-')
        cls.allowed = os.path.join(cls.inputs_root, 'allowed')
        cls.outside = os.path.join(cls.inputs_root, 'outside')
        os.makedirs(os.path.join(cls.allowed, 'modules'))
        os.makedirs(cls.outside)
        cls.conf = dict(cls.conf, InputFileDirectories=cls.allowed + ';',
                        MaxInputFileBytes=cls.max_bytes)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            shutil.rmtree(cls.inputs_root, ignore_errors=True)

    def run_with(self, params):
        path = self.start(FILE_PLAYBOOK, params)
        m = self.client.wait_finished(path, h.TIMEOUT)
        return path, m.args[0], m.args[1]

    def log_text(self, path):
        return '\n'.join(line[3] for line in self.call(path, 'GetLog', GLib.Variant('(u)', (0,))))


class TestInputFiles(InputFilesCase):

    def test_upload_reaches_the_run_folder(self):
        data = os.urandom(200 * 1024)
        digest = hashlib.sha256(data).hexdigest()
        token, size, sha = stage_bytes(self.client, 'site.modl', data)
        self.assertRegex(token, r'^[0-9a-f]{32}$')
        self.assertEqual((size, sha), (len(data), digest))
        # Not in the run yet: in staging, owned by the daemon.
        staged = os.path.join(self.daemon.state_dir, 'inputs', token)
        self.assertEqual(os.stat(staged).st_mode & 0o777, 0o600)

        path, status, error = self.run_with({'module': 'staged:' + token})
        self.assertEqual((status, error), ('completed', ''))
        run_dir = os.path.join(self.daemon.state_dir, 'runs', path.rsplit('/', 1)[1])
        inside = os.path.join(run_dir, 'inputs', 'module', 'site.modl')
        with open(inside, 'rb') as f:
            self.assertEqual(f.read(), data)
        self.assertFalse(os.path.exists(staged))
        log = self.log_text(path)
        # The step hashed the path it was given, inside the run's folder.
        self.assertIn('%s  %s' % (digest, inside), log)
        self.assertIn("input file 'module': site.modl, %d bytes, sha256 %s" % (len(data), digest),
                      log)
        # The recorded parameter is that path, not the token.
        record = self.client.manager('GetExecutionRecord',
                                     GLib.Variant('(s)', (self.client.get_prop(path, 'Id'),)))
        self.assertIn(inside, record['parameters'])

        # Used once.
        message = self.assertDBusError(INVALID_PARAMETERS, self.start, FILE_PLAYBOOK,
                                       {'module': 'staged:' + token})
        self.assertIn("parameter 'module'", message)

    def test_regular_file_fd_and_empty_file(self):
        source = os.path.join(self.tmp, 'b.gwbk')
        with open(source, 'wb') as f:
            f.write(b'backup bytes')
        fd = os.open(source, os.O_RDONLY)
        try:
            token, size, sha = stage_fd(self.client, 'b.gwbk', fd)
        finally:
            os.close(fd)
        self.assertEqual((size, sha), (12, hashlib.sha256(b'backup bytes').hexdigest()))
        token2, size2, sha2 = stage_bytes(self.client, 'empty.modl', b'')
        self.assertEqual((size2, sha2), (0, hashlib.sha256(b'').hexdigest()))
        path, status, error = self.run_with({'module': 'staged:' + token2,
                                             'backup': 'staged:' + token})
        self.assertEqual((status, error), ('completed', ''))
        self.assertIn("input file 'backup': b.gwbk, 12 bytes", self.log_text(path))

    def test_too_large_is_refused(self):
        message = self.assertDBusError(LIMITS_EXCEEDED, stage_bytes, self.client, 'big.modl',
                                       b'x' * (MAX_BYTES + 1))
        self.assertIn('MaxInputFileBytes', message)
        self.assertEqual(os.listdir(os.path.join(self.daemon.state_dir, 'inputs')), [])
        # Exactly the limit passes.
        _, size, _ = stage_bytes(self.client, 'max.modl', b'y' * MAX_BYTES)
        self.assertEqual(size, MAX_BYTES)
        self.assertEqual(self.client.get_prop(MANAGER_PATH, 'MaxInputFileBytes',
                                              iface=MANAGER_IFACE), MAX_BYTES)

    def test_bad_names(self):
        for bad in ('', '../x.modl', 'a/b.modl', '.hidden', 'x\ny', 'n' * 256):
            message = self.assertDBusError(INVALID_ARGS, stage_bytes, self.client, bad, b'z')
            self.assertIn('file name', message)
        self.assertDaemonAlive()

    def test_typed_paths_and_bad_tokens_are_refused(self):
        secret = os.path.join(self.outside, 'secret.txt')
        with open(secret, 'w') as f:
            f.write('not yours')
        before = len(self.client.manager('ListExecutions'))
        for value in (secret, 'relative.modl', '../../etc/passwd', 'staged:', 'staged:nope',
                      'staged:' + '0' * 32, 'staged:../../history.db'):
            message = self.assertDBusError(INVALID_PARAMETERS, self.start, FILE_PLAYBOOK,
                                           {'module': value})
            self.assertIn("parameter 'module'", message)
            self.assertNotIn(secret, message)
        # Non-text values: the type check names it too.
        self.assertDBusError(INVALID_PARAMETERS, self.start, FILE_PLAYBOOK, {'module': 5})
        self.assertEqual(len(self.client.manager('ListExecutions')), before)

    def test_host_files_listed_and_staged(self):
        with open(os.path.join(self.allowed, 'modules', 'a.modl'), 'wb') as f:
            f.write(b'module A')
        with open(os.path.join(self.allowed, 'top.gwbk'), 'wb') as f:
            f.write(b'backup T')
        with open(os.path.join(self.allowed, '.hidden'), 'w') as f:
            f.write('h')
        with open(os.path.join(self.outside, 'secret.txt'), 'w') as f:
            f.write('outside')
        os.symlink(os.path.join(self.outside, 'secret.txt'),
                   os.path.join(self.allowed, 'link.txt'))
        os.symlink(self.outside, os.path.join(self.allowed, 'linkdir'))
        try:
            files = self.client.manager('ListInputFiles')
            self.assertEqual([(f['directory'], f['name'], f['size']) for f in files],
                             [(self.allowed, 'modules/a.modl', 8),
                              (self.allowed, 'top.gwbk', 8)])
            self.assertGreater(files[0]['modified-at'], 0)

            token, size, sha = self.client.manager(
                'StageHostFile', GLib.Variant('(ss)', (self.allowed, 'modules/a.modl')))
            self.assertEqual((size, sha), (8, hashlib.sha256(b'module A').hexdigest()))
            path, status, error = self.run_with({'module': 'staged:' + token})
            self.assertEqual((status, error), ('completed', ''))
            self.assertIn("input file 'module': a.modl, 8 bytes", self.log_text(path))
            # A copy: the host file stays.
            self.assertTrue(os.path.exists(os.path.join(self.allowed, 'modules', 'a.modl')))

            def host(directory, name):
                return self.client.manager('StageHostFile',
                                           GLib.Variant('(ss)', (directory, name)))
            for name in ('link.txt', 'linkdir/secret.txt', 'missing.modl', 'modules'):
                self.assertDBusError(NO_SUCH_INPUT_FILE, host, self.allowed, name)
            for name in ('../outside/secret.txt', '/etc/passwd', 'modules/../top.gwbk',
                         '.hidden', 'a//b', ''):
                self.assertDBusError(INVALID_ARGS, host, self.allowed, name)
            message = self.assertDBusError(INVALID_ARGS, host, self.outside, 'secret.txt')
            self.assertIn('not one of the input folders', message)
            self.assertDBusError(INVALID_ARGS, host, self.allowed + '/modules', 'a.modl')
        finally:
            for name in ('link.txt', 'linkdir', '.hidden', 'top.gwbk'):
                os.unlink(os.path.join(self.allowed, name))

    def test_pending_per_user_cap(self):
        tokens = []
        try:
            while True:
                tokens.append(stage_bytes(self.client, 'n.modl', b'n')[0])
                self.assertLessEqual(len(tokens), 16)
        except GLib.Error as e:
            self.assertEqual(h.dbus_error(e)[0], LIMITS_EXCEEDED)
        self.assertEqual(len(tokens), 16)
        # Using one frees a place.
        _, status, _ = self.run_with({'module': 'staged:' + tokens.pop()})
        self.assertEqual(status, 'completed')
        tokens.append(stage_bytes(self.client, 'n.modl', b'n')[0])
        for token in tokens:
            self.run_with({'module': 'staged:' + token})


class TestStalledUploads(InputFilesCase):

    def test_stalled_writers_hold_nothing(self):
        """Uploads whose writers send nothing yet: the daemon copies others
        meanwhile (no worker thread waits on a silent pipe), then finishes
        each when its bytes and EOF come."""
        writers, results = [], []

        def done(conn, res, _):
            try:
                results.append(conn.call_with_unix_fd_list_finish(res)[0].unpack())
            except GLib.Error as e:
                results.append(e)
        for i in range(8):
            r, w = os.pipe()
            fds = Gio.UnixFDList.new()
            index = fds.append(r)
            os.close(r)
            self.client.conn.call_with_unix_fd_list(
                BUS_NAME, MANAGER_PATH, MANAGER_IFACE, 'StageInputFile',
                GLib.Variant('(sh)', ('slow%d.modl' % i, index)), GLib.VariantType('(sts)'),
                Gio.DBusCallFlags.NONE, 2 ** 31 - 1, fds, None, done, None)
            writers.append(w)
        with open(os.path.join(self.allowed, 'h.modl'), 'wb') as f:
            f.write(b'h' * 300000)
        # 8 waiting and 6 more stay under the 16 a user may have pending.
        for i in range(3):
            _, size, _ = stage_bytes(self.client, 'quick.modl', b'q' * 300000)
            self.assertEqual(size, 300000)
            _, size, _ = self.client.manager('StageHostFile',
                                             GLib.Variant('(ss)', (self.allowed, 'h.modl')))
            self.assertEqual(size, 300000)
        self.client.iterate(0.1)
        self.assertEqual(results, [])
        for i, w in enumerate(writers):
            os.write(w, b'late %d' % i)
            os.close(w)
        self.client.wait_for(lambda: len(results) == 8, what='the stalled uploads')
        for i, (token, size, sha) in enumerate(sorted(results, key=lambda r: r[1])):
            self.assertEqual(size, len(b'late %d' % i))


class TestInputFileExpiry(InputFilesCase):
    conf = {'InputFileExpirySeconds': 1}

    def test_unused_token_expires(self):
        token, _, _ = stage_bytes(self.client, 'old.modl', b'o')
        staged = os.path.join(self.daemon.state_dir, 'inputs', token)
        deadline = time.monotonic() + h.TIMEOUT
        while os.path.exists(staged) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertFalse(os.path.exists(staged))
        message = self.assertDBusError(INVALID_PARAMETERS, self.start, FILE_PLAYBOOK,
                                       {'module': 'staged:' + token})
        self.assertIn('expired', message)


def peak_rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1])
    raise AssertionError('no VmHWM for %d' % pid)


class TestBridgeInputFiles(InputFilesCase):
    """POST /api/input-files (streamed), GET/POST /api/input-files/host."""
    library = {'files.yaml': FILE_PLAYBOOK}
    max_bytes = 80 * 1024 * 1024

    @classmethod
    def setUpClass(cls):
        import test_bridge
        super().setUpClass()
        # Memory freed is memory given back (AddressSanitizer would keep it
        # in quarantine and hide whether the body was held).
        saved = os.environ.get('ASAN_OPTIONS')
        os.environ['ASAN_OPTIONS'] = ':'.join(filter(None, [saved, 'quarantine_size_mb=0']))
        try:
            cls.bridge = test_bridge.Bridge(cls.workdir, cls.bus.address)
        except BaseException:
            cls._teardown_processes()
            raise
        finally:
            if saved is None:
                del os.environ['ASAN_OPTIONS']
            else:
                os.environ['ASAN_OPTIONS'] = saved

    @classmethod
    def tearDownClass(cls):
        cls.bridge.stop()
        text = cls.bridge.stderr_text()
        super().tearDownClass()
        if any(w in text for w in ('CRITICAL', 'WARNING', 'Sanitizer', 'runtime error:')):
            raise AssertionError('the bridge complained:\n' + text[-4000:])

    def http(self, method, path, body=None, token=True, headers=None):
        import http.client
        conn = http.client.HTTPConnection('127.0.0.1', self.bridge.port, timeout=h.TIMEOUT)
        all_headers = {'Authorization': 'Bearer ' + self.bridge.token} if token else {}
        all_headers.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=all_headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, (json.loads(data) if data else None)
        finally:
            conn.close()

    def test_upload_and_run(self):
        data = os.urandom(MAX_BYTES - 7)
        status, body = self.http('POST', '/api/input-files?name=web%20site.modl', data)
        self.assertEqual(status, 200, body)
        self.assertEqual((body['name'], body['size'], body['sha256']),
                         ('web site.modl', len(data), hashlib.sha256(data).hexdigest()))
        # The run takes the token as the parameter's value.
        status, run = self.http('POST', '/api/executions', json.dumps({
            'playbook_path': 'files.yaml',
            'parameters': {'module': 'staged:' + body['token']}}),
            headers={'Content-Type': 'application/json'})
        self.assertEqual(status, 201, run)
        path = run['path']
        self.runs.append((self.client, path))
        m = self.client.wait_finished(path, h.TIMEOUT)
        self.assertEqual(m.args[0], 'completed', m.args)
        self.assertIn(hashlib.sha256(data).hexdigest(), self.log_text(path))

    def test_large_upload_is_streamed(self):
        """A body far larger than the bridge's memory growth: never held whole."""
        import http.client
        size = 64 * 1024 * 1024
        chunk = os.urandom(1024 * 1024)
        digest = hashlib.sha256()
        for _ in range(size // len(chunk)):
            digest.update(chunk)
        before = peak_rss_kib(self.bridge.proc.pid)
        conn = http.client.HTTPConnection('127.0.0.1', self.bridge.port, timeout=300)
        try:
            conn.request('POST', '/api/input-files?name=large.bin',
                         body=(chunk for _ in range(size // len(chunk))),
                         headers={'Authorization': 'Bearer ' + self.bridge.token,
                                  'Content-Length': str(size)})
            resp = conn.getresponse()
            body = json.loads(resp.read())
        finally:
            conn.close()
        self.assertEqual(resp.status, 200, body)
        self.assertEqual((body['size'], body['sha256']), (size, digest.hexdigest()))
        grown = peak_rss_kib(self.bridge.proc.pid) - before
        self.assertLess(grown, 24 * 1024, 'the bridge grew by %d KiB for a 64 MiB upload' % grown)

    def test_refusals(self):
        status, body = self.http('POST', '/api/input-files?name=x.modl', b'abc', token=False)
        self.assertEqual(status, 401)
        # Over the limit: answered from the head, before a byte of the body.
        import socket
        sock = socket.create_connection(('127.0.0.1', self.bridge.port), timeout=h.TIMEOUT)
        sock.sendall(('POST /api/input-files?name=x.modl HTTP/1.1\r\nHost: 127.0.0.1\r\n'
                      'Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n'
                      % (self.bridge.token, self.max_bytes + 1)).encode())
        answer = b''
        while b'}' not in answer:
            got = sock.recv(4096)
            if not got:
                break
            answer += got
        sock.close()
        self.assertTrue(answer.startswith(b'HTTP/1.1 413'), answer)
        self.assertIn(b'PayloadTooLarge', answer)
        self.assertIn(b'MaxInputFileBytes', answer)
        status, body = self.http('POST', '/api/input-files', b'abc')
        self.assertEqual((status, body['error']), (400, 'InvalidArgs'))
        status, body = self.http('POST', '/api/input-files?name=..%2Fx', b'abc')
        self.assertEqual((status, body['error']), (400, 'InvalidArgs'))
        self.assertIn('file name', body['message'])
        # Chunked (no Content-Length): refused before the body.
        sock = socket.create_connection(('127.0.0.1', self.bridge.port), timeout=h.TIMEOUT)
        sock.sendall(('POST /api/input-files?name=c.modl HTTP/1.1\r\nHost: 127.0.0.1\r\n'
                      'Authorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n'
                      '3\r\nabc\r\n0\r\n\r\n' % self.bridge.token).encode())
        self.assertTrue(sock.recv(4096).startswith(b'HTTP/1.1 411'))
        sock.close()
        # A client that leaves mid-body: nothing is handed out, the bridge carries on.
        sock = socket.create_connection(('127.0.0.1', self.bridge.port), timeout=h.TIMEOUT)
        sock.sendall(('POST /api/input-files?name=cut.modl HTTP/1.1\r\nHost: 127.0.0.1\r\n'
                      'Authorization: Bearer %s\r\nContent-Length: 100000\r\n\r\n'
                      % self.bridge.token).encode() + b'y' * 5000)
        sock.close()
        status, body = self.http('POST', '/api/input-files?name=ok.modl', b'ok')
        self.assertEqual((status, body['size']), (200, 2))
        status, body = self.http('GET', '/api/input-files/nope')
        self.assertEqual(status, 404)

    def test_host_list_and_stage(self):
        with open(os.path.join(self.allowed, 'modules', 'h.modl'), 'wb') as f:
            f.write(b'host module')
        try:
            status, files = self.http('GET', '/api/input-files/host')
            self.assertEqual(status, 200, files)
            entry = [f for f in files if f['name'] == 'modules/h.modl'][0]
            self.assertEqual((entry['directory'], entry['size']), (self.allowed, 11))
            self.assertIn('modified_at', entry)
            status, body = self.http('POST', '/api/input-files/host', json.dumps(
                {'directory': self.allowed, 'name': 'modules/h.modl'}))
            self.assertEqual(status, 200, body)
            self.assertEqual((body['name'], body['size'], body['sha256']),
                             ('h.modl', 11, hashlib.sha256(b'host module').hexdigest()))
            status, body = self.http('POST', '/api/input-files/host', json.dumps(
                {'directory': self.allowed, 'name': '../outside/x'}))
            self.assertEqual((status, body['error']), (400, 'InvalidArgs'))
            status, body = self.http('POST', '/api/input-files/host', json.dumps(
                {'directory': self.allowed, 'name': 'nope.modl'}))
            self.assertEqual((status, body['error']), (404, 'NoSuchInputFile'))
            status, body = self.http('POST', '/api/input-files/host', '[]')
            self.assertEqual(status, 400)
        finally:
            os.unlink(os.path.join(self.allowed, 'modules', 'h.modl'))


class TestCtlInputFiles(InputFilesCase):
    """ignitionctl run --file NAME=LOCAL-PATH."""
    library = {'files.yaml': FILE_PLAYBOOK}

    def ctl(self, *args):
        import test_ignitionctl
        return test_ignitionctl.run_ctl(self.bus.address, *args)

    def test_run_with_a_local_file(self):
        local = os.path.join(self.tmp, 'local.modl')
        data = os.urandom(70000)
        with open(local, 'wb') as f:
            f.write(data)
        digest = hashlib.sha256(data).hexdigest()
        result = self.ctl('run', 'files.yaml', '--file', 'module=' + local)
        self.assertEqual(result.rc, 0, result.err + result.out)
        self.assertIn('module: local.modl, 70000 bytes, sha256 ' + digest, result.err)
        # The script hashed the run's copy, not the caller's file.
        self.assertIn(digest + '  ', result.out)
        self.assertIn('/inputs/module/local.modl', result.out)
        self.assertNotIn(local, result.out)

    def test_errors(self):
        result = self.ctl('run', 'files.yaml', '--file', 'module=' + os.path.join(self.tmp, 'no'))
        self.assertEqual(result.rc, 66, result.err)
        self.assertIn('cannot open', result.err)
        result = self.ctl('run', 'files.yaml', '--file', 'module')
        self.assertEqual(result.rc, 64, result.err)
        # A typed path is refused, naming the parameter.
        result = self.ctl('run', 'files.yaml', '-p', 'module=/etc/hostname')
        self.assertEqual(result.rc, 65, result.err)
        self.assertIn("parameter 'module' is a file", result.err)


if __name__ == '__main__':
    unittest.main(verbosity=2)
