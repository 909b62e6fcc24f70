# SPDX-License-Identifier: LGPL-2.1-or-later
"""ignition-toolkit-bridge against a real ignition-toolkitd on a private bus.

HTTP goes through http.client, the WebSocket through libsoup 3 (gi). Both run
on the harness client's main context, so waiting for a WebSocket event and
for a D-Bus signal is the same loop.
"""

import http.client
import json
import os
import select
import signal
import subprocess
import socket
import time
import unittest

import gi

gi.require_version('Soup', '3.0')
from gi.repository import GLib, Soup  # noqa: E402

import itk_harness as h  # noqa: E402

SECRET = 'pa55-w0rd-never-shown'
API_SECRET = 'key:never-shown-either'

SLEEPY = h.playbook(h.log_step('hello', 'hello from the bridge test'),
                    h.sleep_step('nap', 60), name='Sleepy')
QUICK = h.playbook(h.log_step('one', 'first'), h.log_step('two', 'second'), name='Quick')
NEEDS_PARAM = h.playbook(h.log_step('greet', 'hi {{ who }}'), name='Needs a parameter',
                         parameters=[{'name': 'who', 'type': 'string', 'required': True}])
# About 1.5 MB of log events: more than a client's socket buffers hold.
CHATTY = h.playbook(*[h.log_step('s%d' % i, '%04d {{ filler }}' % i) for i in range(500)],
                    name='Chatty',
                    parameters=[{'name': 'filler', 'type': 'string', 'default': 'x' * 3000}])
BURST = h.playbook(*[h.log_step('s%d' % i, 'step %d' % i) for i in range(50)], name='Burst')
# One script read of many lines: the daemon sends them as LogBatch signals.
SEQ = h.playbook(h.shell_step('count', 'seq 1 300'), name='Seq')
INVALID = 'name: Broken\nsteps:\n  - id: x\n    type: no.such.step\n'

LIBRARY = {
    'sleepy.yaml': SLEEPY,
    'quick.yaml': QUICK,
    'burst.yaml': BURST,
    'seq.yaml': SEQ,
    'chatty.yaml': CHATTY,
    'needs_param.yaml': NEEDS_PARAM,
    'broken.yaml': INVALID,
    'nested/inner.yaml': QUICK,
}


def bridge_path():
    path = os.environ.get('ITK_BRIDGE')
    if path:
        return path
    daemon = h.daemon_path()
    return os.path.join(os.path.dirname(os.path.dirname(daemon)), 'client', 'bridge',
                        'ignition-toolkit-bridge')


class Bridge:
    def __init__(self, workdir, address):
        self.state_dir = os.path.join(workdir, 'bridge-state')
        self.web_root = os.path.join(workdir, 'web')
        os.makedirs(self.web_root, exist_ok=True)
        with open(os.path.join(self.web_root, 'index.html'), 'w') as f:
            f.write('<!doctype html><title>itk</title>')
        with open(os.path.join(workdir, 'outside.txt'), 'w') as f:
            f.write('outside the web root')
        self.stderr_path = os.path.join(workdir, 'bridge.stderr')
        env = dict(os.environ)
        env.setdefault('G_DEBUG', 'fatal-criticals')
        with open(self.stderr_path, 'ab') as err:
            self.proc = subprocess.Popen(
                [bridge_path(), '--bus-address=' + address, '--listen=127.0.0.1:0',
                 '--state-dir=' + self.state_dir, '--web-root=' + self.web_root,
                 '--allowed-origin=http://trusted.example', '--ws-max-lag=1'],
                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=env)
        ready, _, _ = select.select([self.proc.stdout], [], [], h.TIMEOUT)
        line = self.proc.stdout.readline().decode().strip() if ready else ''
        prefix = 'listening on http://127.0.0.1:'
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError('the bridge did not start (%r): %s' % (line, self.stderr_text()))
        self.port = int(line[len(prefix):].rstrip('/'))
        self.origin = 'http://127.0.0.1:%d' % self.port
        token_file = os.path.join(self.state_dir, 'bridge-token')
        self.token_mode = os.stat(token_file).st_mode & 0o777
        with open(token_file) as f:
            self.token = f.read().strip()

    def stderr_text(self):
        try:
            with open(self.stderr_path, errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def stop(self):
        h._stop_process(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class WebSocket:
    """A libsoup WebSocket client whose messages are parsed and kept in order."""

    def __init__(self, test, query, origin=None):
        self.test = test
        self.events = []
        self.closed = False
        self.conn = None
        self.error = None
        self.session = Soup.Session()
        self.msg = Soup.Message.new('GET', 'ws://127.0.0.1:%d/ws/executions%s' %
                                    (test.bridge.port, query))
        done = []

        def connected(session, result):
            try:
                self.conn = session.websocket_connect_finish(result)
                self.conn.connect('message', self._on_message)
                self.conn.connect('closed', self._on_closed)
            except GLib.Error as e:
                self.error = e
            done.append(True)

        self.session.websocket_connect_async(self.msg, origin, None, GLib.PRIORITY_DEFAULT,
                                             None, connected)
        test.client.wait_for(lambda: done, what='the WebSocket handshake')

    def _on_message(self, conn, kind, data):
        message = json.loads(data.get_data().decode())
        # A burst of events arrives as one batch frame.
        if message.get('type') == 'batch':
            self.events.extend(message['events'])
        else:
            self.events.append(message)

    def _on_closed(self, conn):
        self.closed = True

    def send(self, obj):
        self.conn.send_text(json.dumps(obj))

    def find(self, **fields):
        return [e for e in self.events if all(e.get(k) == v for k, v in fields.items())]

    def wait(self, what=None, **fields):
        return self.test.client.wait_for(lambda: self.find(**fields)[:1],
                                         what=what or 'WebSocket event %r' % (fields,))[0]

    def close(self):
        if self.conn is not None and not self.closed:
            self.conn.close(Soup.WebsocketCloseCode.NORMAL, None)
            self.test.client.wait_for(lambda: self.closed, what='the WebSocket to close')


class BridgeTestCase(h.DaemonTestCase):
    library = LIBRARY

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.bridge = Bridge(cls.workdir, cls.bus.address)
        except BaseException:
            cls._teardown_processes()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.bridge.stop()
        text = cls.bridge.stderr_text()
        super().tearDownClass()
        if any(w in text for w in ('CRITICAL', 'WARNING', 'Sanitizer', 'runtime error:')):
            raise AssertionError('the bridge complained:\n' + text[-4000:])

    def setUp(self):
        super().setUp()
        self.sockets = []

    def tearDown(self):
        for ws in self.sockets:
            try:
                ws.close()
            except AssertionError:
                pass
        # Runs started over HTTP are cancelled here (the harness knows D-Bus starts only).
        status, body, _ = self.http('GET', '/api/executions')
        if status == 200:
            for e in body['executions']:
                if e['status'] in ('pending', 'running', 'paused'):
                    self.http('POST', '/api/executions/%s/cancel' % e['execution_id'])
                    if e['path']:
                        self.client.wait_finished(e['path'])
        super().tearDown()

    # --- helpers ---

    def http(self, method, path, body=None, token=True, headers=None, raw=None):
        """One request; returns (status, parsed JSON or None, response headers)."""
        conn = http.client.HTTPConnection('127.0.0.1', self.bridge.port, timeout=h.TIMEOUT)
        hdrs = dict(headers or {})
        if token is True:
            hdrs['Authorization'] = 'Bearer ' + self.bridge.token
        elif token:
            hdrs['Authorization'] = 'Bearer ' + token
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs['Content-Type'] = 'application/json'
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
        finally:
            conn.close()
        parsed = None
        if payload and resp.getheader('Content-Type', '').startswith('application/json'):
            parsed = json.loads(payload)
        elif payload:
            parsed = payload.decode(errors='replace')
        return resp.status, parsed, resp

    def api_ok(self, method, path, body=None, status=200):
        got, parsed, _ = self.http(method, path, body)
        self.assertEqual(got, status, '%s %s -> %d %r' % (method, path, got, parsed))
        return parsed

    def assertApiError(self, status, error, method, path, body=None, **kw):
        got, parsed, _ = self.http(method, path, body, **kw)
        self.assertEqual(got, status, '%s %s -> %d %r' % (method, path, got, parsed))
        self.assertIsInstance(parsed, dict, parsed)
        self.assertEqual(parsed.get('error'), error, parsed)
        self.assertIsInstance(parsed.get('message'), str)
        return parsed

    def websocket(self, query=None, origin=None):
        ws = WebSocket(self, '?access_token=' + self.bridge.token if query is None else query,
                       origin)
        if ws.conn is not None:
            self.sockets.append(ws)
        return ws

    def start_http(self, playbook_id, parameters=None, **extra):
        body = {'playbook_path': playbook_id, 'parameters': parameters or {}}
        body.update(extra)
        reply = self.api_ok('POST', '/api/executions', body, status=201)
        self.assertEqual(reply['playbook'], playbook_id)
        self.assertTrue(reply['path'].startswith(h.EXECUTION_PREFIX), reply)
        self.assertEqual(reply['path'][len(h.EXECUTION_PREFIX):],
                         reply['execution_id'].replace('-', ''))
        self.runs.append((self.client, reply['path']))
        return reply

    def wait_http_status(self, execution_id, statuses, timeout=h.TIMEOUT):
        def check():
            got = self.api_ok('GET', '/api/executions/' + execution_id)
            return got if got['status'] in statuses else None
        return self.client.wait_for(check, timeout, 'execution %s to be %s' %
                                    (execution_id, statuses))


class TestBridge(BridgeTestCase):
    conf = {'MaxConcurrentExecutions': 8}

    def test_health(self):
        for path, text in (('/health', 'ok'), ('/health/live', 'ok'), ('/health/ready', 'ready')):
            status, body, _ = self.http('GET', path, token=None)
            self.assertEqual((status, body), (200, {'status': text}), path)

    def test_token(self):
        self.assertEqual(self.bridge.token_mode, 0o600)
        self.assertGreaterEqual(len(self.bridge.token), 32)
        self.assertApiError(401, 'Unauthorized', 'GET', '/api/playbooks', token=None)
        self.assertApiError(401, 'Unauthorized', 'GET', '/api/playbooks', token='wrong')
        self.assertApiError(401, 'Unauthorized', 'GET', '/api/executions',
                            token=self.bridge.token[:-1])
        self.assertApiError(401, 'Unauthorized', 'POST', '/api/executions',
                            {'playbook_path': 'quick.yaml'}, token=None)
        self.api_ok('GET', '/api/playbooks')
        ws = self.websocket(query='')
        self.assertIsNone(ws.conn, 'a WebSocket without a token was accepted')
        self.assertEqual(ws.msg.get_status(), 401)
        ws = self.websocket(query='?access_token=nope')
        self.assertIsNone(ws.conn)
        self.assertEqual(ws.msg.get_status(), 401)
        # A token in the header is not enough for the WebSocket: the query is the contract.
        ws = self.websocket()
        self.assertIsNotNone(ws.conn, ws.error)

    def test_print_url(self):
        out = subprocess.run([bridge_path(), '--print-url', '--listen=127.0.0.1:9999',
                              '--state-dir=' + self.bridge.state_dir],
                             capture_output=True, text=True, timeout=h.TIMEOUT, check=True)
        self.assertEqual(out.stdout.strip(),
                         'http://127.0.0.1:9999/#token=' + self.bridge.token)

    def test_origin(self):
        foreign = {'Origin': 'http://evil.example'}
        self.assertApiError(403, 'Forbidden', 'POST', '/api/executions',
                            {'playbook_path': 'quick.yaml'}, headers=foreign)
        self.assertApiError(403, 'Forbidden', 'DELETE', '/api/credentials/x', headers=foreign)
        self.assertApiError(403, 'Forbidden', 'PUT', '/api/credentials/x', {'username': 'u'},
                            headers=foreign)
        # The bridge's own origin and an --allowed-origin pass; reads need no Origin check.
        for origin in (self.bridge.origin, 'http://trusted.example'):
            status, body, _ = self.http('POST', '/api/executions', {}, headers={'Origin': origin})
            self.assertEqual(status, 400, body)
        status, _, _ = self.http('GET', '/api/playbooks', headers=foreign)
        self.assertEqual(status, 200)
        ws = self.websocket(origin='http://evil.example')
        self.assertIsNone(ws.conn, 'a WebSocket from a foreign origin was accepted')
        self.assertEqual(ws.msg.get_status(), 403)
        ws = self.websocket(origin=self.bridge.origin)
        self.assertIsNotNone(ws.conn, ws.error)
        ws.wait(type='snapshot')

    def test_static(self):
        status, body, resp = self.http('GET', '/', token=None)
        self.assertEqual(status, 200)
        self.assertIn('<title>itk</title>', body)
        self.assertTrue(resp.getheader('Content-Type').startswith('text/html'))
        for path in ('/../outside.txt', '/%2e%2e/outside.txt', '/nothing.js'):
            status, body, _ = self.http('GET', path, token=None)
            self.assertEqual(status, 404, (path, body))
            self.assertNotIn('outside the web root', str(body))

    def test_playbooks(self):
        listed = {p['id']: p for p in self.api_ok('GET', '/api/playbooks')}
        self.assertEqual(set(listed), set(LIBRARY))
        quick = listed['quick.yaml']
        self.assertEqual(quick['name'], 'Quick')
        self.assertTrue(quick['valid'])
        self.assertEqual(quick['step_count'], 2)
        for key in ('id', 'name', 'version', 'description', 'domain', 'group', 'verified',
                    'valid', 'errors', 'parameters', 'step_count'):
            for p in listed.values():
                self.assertIn(key, p, p)
        self.assertFalse(listed['broken.yaml']['valid'])
        self.assertTrue(listed['broken.yaml']['errors'])
        param = listed['needs_param.yaml']['parameters'][0]
        self.assertEqual((param['name'], param['type'], param['required']),
                         ('who', 'string', True))

        one = self.api_ok('GET', '/api/playbooks/quick.yaml')
        self.assertEqual([s['id'] for s in one['steps']], ['one', 'two'])
        self.assertEqual(one['steps'][0]['parameters'], {'message': 'first'})
        self.assertEqual(one['steps'][0]['type'], 'utility.log')
        self.assertIn('retry_count', one['steps'][0])
        self.assertEqual(one['source'], QUICK)
        nested = self.api_ok('GET', '/api/playbooks/nested/inner.yaml')
        self.assertEqual(nested['id'], 'nested/inner.yaml')
        self.assertApiError(404, 'NoSuchPlaybook', 'GET', '/api/playbooks/nope.yaml')
        self.assertApiError(405, 'MethodNotAllowed', 'POST', '/api/playbooks', {})

    def test_start_and_cancel_over_http(self):
        ws = self.websocket()
        snapshot = ws.wait(type='snapshot')
        self.assertIsInstance(snapshot['executions'], list)
        run = self.start_http('sleepy.yaml', debug_mode=False, timeout_overrides={'nap': 120})
        eid = run['execution_id']
        new = ws.wait(type='execution_new', execution_id=eid)
        self.assertEqual(new['playbook'], 'sleepy.yaml')
        self.assertEqual(new['execution']['execution_id'], eid)
        self.assertEqual(new['execution']['total_steps'], 2)
        ws.wait(type='status', execution_id=eid, status='running')
        ws.wait(type='step', execution_id=eid, step_id='nap', status='running')
        log = ws.wait(type='log', execution_id=eid, step_id='hello')
        self.assertIn('hello from the bridge test', log['message'])
        self.assertGreater(log['usec'], 0)
        ws.wait(type='properties', execution_id=eid)

        # Properties follow the step signal; wait until the bridge's cache has them.
        got = self.client.wait_for(
            lambda: [g for g in [self.api_ok('GET', '/api/executions/' + eid)]
                     if g['current_step_id'] == 'nap'], what='current_step_id nap')[0]
        self.assertEqual(got['status'], 'running')
        self.assertEqual(got['path'], run['path'])
        self.assertEqual(got['playbook_name'], 'Sleepy')
        self.assertEqual(got['current_step_id'], 'nap')
        self.assertEqual([s['step_id'] for s in got['steps']], ['hello', 'nap'])
        self.assertEqual(got['steps'][0]['status'], 'completed')
        self.assertEqual(got['steps'][1]['status'], 'running')
        self.assertEqual(got['steps'][0]['phase'], 'main')
        self.assertEqual(got['steps'][1]['output'], None)
        # 32 hex digits work as well as the dashed id.
        self.assertEqual(self.api_ok('GET', '/api/executions/' + eid.replace('-', ''))
                         ['execution_id'], eid)
        lines = self.api_ok('GET', '/api/executions/%s/log' % eid)['lines']
        self.assertTrue(any('hello from the bridge test' in ln['message'] for ln in lines), lines)
        self.assertEqual(set(lines[0]), {'usec', 'priority', 'step_id', 'message'})
        self.assertEqual(len(self.api_ok('GET', '/api/executions/%s/log?max=1' % eid)['lines']),
                         1)

        paused = self.api_ok('POST', '/api/executions/%s/pause' % eid)
        self.assertEqual(paused, {'execution_id': eid, 'status': 'paused'})
        ws.wait(type='status', execution_id=eid, status='paused')
        debug = self.api_ok('POST', '/api/executions/%s/debug/enable' % eid)
        self.assertEqual(debug, {'execution_id': eid, 'debug_mode': True})
        ws.wait(type='properties', execution_id=eid, changed={'debug_mode': True})
        self.assertEqual(self.api_ok('POST', '/api/executions/%s/debug/disable' % eid),
                         {'execution_id': eid, 'debug_mode': False})
        self.assertEqual(self.api_ok('POST', '/api/executions/%s/resume' % eid)['status'],
                         'running')
        cancelled = self.api_ok('POST', '/api/executions/%s/cancel' % eid)
        self.assertEqual(cancelled['execution_id'], eid)
        self.assertIn(cancelled['status'], ('cancelled', 'running'))
        ws.wait(type='status', execution_id=eid, status='cancelled')
        fin = ws.wait(type='finished', execution_id=eid)
        self.assertEqual(fin['status'], 'cancelled')
        self.assertEqual(self.api_ok('GET', '/api/executions/' + eid)['status'], 'cancelled')
        # Ordering: the WebSocket saw the run's transitions in order, ending with Finished.
        mine = [e for e in ws.events if e.get('execution_id') == eid]
        statuses = [e['status'] for e in mine if e['type'] == 'status']
        self.assertEqual(statuses, ['running', 'paused', 'running', 'cancelled'])
        self.assertEqual([e['type'] for e in mine if e['type'] != 'properties'][-1], 'finished')

    def test_control_errors(self):
        run = self.start_http('quick.yaml')
        eid = run['execution_id']
        self.wait_http_status(eid, ('completed',))
        self.assertApiError(409, 'NotRunning', 'POST', '/api/executions/%s/resume' % eid)
        self.assertApiError(409, 'NotRunning', 'POST', '/api/executions/%s/cancel' % eid)
        unknown = '0123456789abcdef0123456789abcdef'
        self.assertApiError(404, 'NoSuchExecution', 'GET', '/api/executions/' + unknown)
        self.assertApiError(404, 'NoSuchExecution', 'POST',
                            '/api/executions/%s/cancel' % unknown)
        self.assertApiError(404, 'NoSuchExecution', 'GET', '/api/executions/%s/log' % unknown)
        self.assertApiError(400, 'InvalidArgs', 'GET', '/api/executions/not-an-id')
        self.assertApiError(404, 'NotFound', 'POST', '/api/executions/%s/jump' % eid)
        self.assertApiError(404, 'NotFound', 'GET', '/api/nothing')
        self.assertApiError(405, 'MethodNotAllowed', 'PUT', '/api/executions/' + eid, {})

    def test_start_errors(self):
        path = '/api/executions'
        self.assertApiError(400, 'InvalidArgs', 'POST', path, raw=b'{not json')
        self.assertApiError(400, 'InvalidArgs', 'POST', path, raw=b'[1, 2]')
        self.assertApiError(400, 'InvalidArgs', 'POST', path, {'parameters': {}})
        self.assertApiError(400, 'InvalidArgs', 'POST', path, {'playbook_path': 42})
        self.assertApiError(400, 'InvalidArgs', 'POST', path,
                            {'playbook_path': 'quick.yaml', 'parameters': {'x': None}})
        self.assertApiError(400, 'InvalidArgs', 'POST', path,
                            {'playbook_path': 'quick.yaml', 'debug_mode': 'yes'})
        self.assertApiError(400, 'InvalidArgs', 'POST', path,
                            {'playbook_path': 'quick.yaml', 'timeout_overrides': {'one': 'x'}})
        self.assertApiError(404, 'NoSuchPlaybook', 'POST', path, {'playbook_path': 'nope.yaml'})
        self.assertApiError(422, 'InvalidPlaybook', 'POST', path,
                            {'playbook_path': 'broken.yaml'})
        msg = self.assertApiError(400, 'InvalidParameters', 'POST', path,
                                  {'playbook_path': 'needs_param.yaml'})
        self.assertIn('who', msg['message'])
        self.assertApiError(404, 'NoSuchCredential', 'POST', path,
                            {'playbook_path': 'quick.yaml', 'credential_name': 'nobody'})
        big = b'{"playbook_path": "quick.yaml", "pad": "' + b'x' * (1024 * 1024 + 10) + b'"}'
        status, body, _ = self.http('POST', path, raw=big)
        self.assertEqual(status, 413, body)
        self.assertEqual(body['error'], 'PayloadTooLarge')
        # Typed parameters reach the daemon: the playbook sees the string.
        run = self.start_http('needs_param.yaml', {'who': 'typed'})
        self.wait_http_status(run['execution_id'], ('completed',))
        lines = self.api_ok('GET', '/api/executions/%s/log' % run['execution_id'])['lines']
        self.assertTrue(any('hi typed' in ln['message'] for ln in lines), lines)

    def test_list_executions(self):
        done = self.start_http('quick.yaml')
        self.wait_http_status(done['execution_id'], ('completed',))
        live = self.start_http('sleepy.yaml')
        self.wait_http_status(live['execution_id'], ('running',))
        listed = self.api_ok('GET', '/api/executions')['executions']
        ids = [e['execution_id'] for e in listed]
        self.assertIn(done['execution_id'], ids)
        self.assertIn(live['execution_id'], ids)
        self.assertEqual(len(ids), len(set(ids)), 'an execution is listed twice')
        running = self.api_ok('GET', '/api/executions?status=running')['executions']
        self.assertIn(live['execution_id'], [e['execution_id'] for e in running])
        self.assertTrue(all(e['status'] == 'running' for e in running), running)
        self.assertEqual(len(self.api_ok('GET', '/api/executions?limit=1')['executions']), 1)
        self.assertApiError(400, 'InvalidArgs', 'GET', '/api/executions?limit=-3')
        summary = [e for e in listed if e['execution_id'] == live['execution_id']][0]
        for key in ('execution_id', 'path', 'playbook', 'playbook_name', 'playbook_version',
                    'domain', 'status', 'pause_requested', 'debug_mode', 'current_step',
                    'current_step_id', 'current_step_name', 'total_steps', 'progress',
                    'started_at', 'finished_at', 'error', 'started_by_uid'):
            self.assertIn(key, summary)
        self.assertGreater(summary['started_at'], 0)
        self.assertEqual(summary['started_by_uid'], os.getuid())

    def test_subscribe(self):
        ws = self.websocket()
        ws.wait(type='snapshot')
        a = self.start_http('sleepy.yaml')['execution_id']
        ws.wait(type='step', execution_id=a, step_id='nap', status='running')
        ws.send({'type': 'subscribe', 'execution_id': a.replace('-', '')})
        # A round trip through the bridge orders the subscribe before the next start.
        self.api_ok('GET', '/api/executions')
        b = self.start_http('quick.yaml')['execution_id']
        ws.wait(type='finished', execution_id=b)
        self.assertEqual(ws.find(type='step', execution_id=b), [])
        self.assertEqual(ws.find(type='log', execution_id=b), [])
        self.assertTrue(ws.find(type='status', execution_id=b))
        self.assertTrue(ws.find(type='execution_new', execution_id=b))
        # Back to everything.
        ws.send({'type': 'subscribe', 'execution_id': None})
        self.api_ok('GET', '/api/executions')
        c = self.start_http('quick.yaml')['execution_id']
        ws.wait(type='finished', execution_id=c)
        self.assertTrue(ws.find(type='step', execution_id=c))
        self.assertTrue(ws.find(type='step', execution_id=a))

    def test_fan_out_by_subscription(self):
        # One burst, clients with different subscriptions: the bridge builds
        # each distinct frame once, and each client must still get exactly
        # its own events, complete and in the daemon's order.
        everything, on_a, elsewhere = self.websocket(), self.websocket(), self.websocket()
        for ws in (everything, on_a, elsewhere):
            ws.wait(type='snapshot')
        a = self.start_http('sleepy.yaml')['execution_id']
        on_a.send({'type': 'subscribe', 'execution_id': a})
        elsewhere.send({'type': 'subscribe', 'execution_id': 'f' * 32})
        self.api_ok('GET', '/api/executions')
        b = self.start_http('burst.yaml')['execution_id']
        for ws in (everything, on_a, elsewhere):
            ws.wait(type='finished', execution_id=b)
        steps = everything.find(type='step', execution_id=b)
        self.assertEqual([(e['index'], e['status']) for e in steps],
                         [(i, s) for i in range(50) for s in ('running', 'completed')])
        self.assertEqual([e['message'] for e in everything.find(type='log', execution_id=b)],
                         ['step %d' % i for i in range(50)])
        for ws in (on_a, elsewhere):
            self.assertEqual(ws.find(type='step', execution_id=b), [])
            self.assertEqual(ws.find(type='log', execution_id=b), [])
        for ws in (everything, on_a, elsewhere):
            mine = [e for e in ws.events if e.get('execution_id') == b]
            self.assertEqual([e['status'] for e in mine if e['type'] == 'status'],
                             ['running', 'completed'])
            self.assertEqual(mine[-1]['type'], 'finished', mine[-3:])
        self.api_ok('POST', '/api/executions/%s/cancel' % a)
        on_a.wait(type='finished', execution_id=a)

    def test_log_batch_is_one_event_per_line(self):
        # The daemon carries a burst of a script's lines in one LogBatch;
        # WebSocket clients still get one "log" event per line, in order.
        ws = self.websocket()
        ws.wait(type='snapshot')
        eid = self.start_http('seq.yaml')['execution_id']
        ws.wait(type='finished', execution_id=eid)
        self.assertEqual([e['message'] for e in ws.find(type='log', execution_id=eid)
                          if e['step_id'] == 'count' and e['message'].isdigit()],
                         [str(i) for i in range(1, 301)])
        path = '/org/ignition/Toolkit/execution/' + eid.replace('-', '')
        # The bridge may relay Finished before this test's own client has read
        # it: its recorded signals are complete only once Finished is there.
        self.client.wait_finished(path)
        self.assertTrue(self.client.signals(path, 'LogBatch'))

    def test_fan_out_in_slices(self):
        # More clients than the bridge writes to in one turn of its main loop
        # (64), so a burst's events keep arriving while the fan-out goes round
        # them: each client must still get each event once, in order.
        clients = [self.websocket() for _ in range(150)]
        for ws in clients:
            ws.wait(type='snapshot')
        elsewhere = clients[70]
        elsewhere.send({'type': 'subscribe', 'execution_id': 'f' * 32})
        self.api_ok('GET', '/api/executions')
        b = self.start_http('burst.yaml')['execution_id']
        for ws in clients:
            ws.wait(type='finished', execution_id=b)
        steps = [(i, s) for i in range(50) for s in ('running', 'completed')]
        for n, ws in enumerate(clients):
            mine = [e for e in ws.events if e.get('execution_id') == b]
            self.assertEqual([e['status'] for e in mine if e['type'] == 'status'],
                             ['running', 'completed'], 'client %d' % n)
            self.assertEqual(mine[-1]['type'], 'finished', 'client %d' % n)
            self.assertEqual([(e['index'], e['status']) for e in mine if e['type'] == 'step'],
                             [] if ws is elsewhere else steps, 'client %d' % n)
            self.assertEqual([e['message'] for e in mine if e['type'] == 'log'],
                             [] if ws is elsewhere else ['step %d' % i for i in range(50)],
                             'client %d' % n)

    def raw_websocket(self, extra_headers=''):
        # A client that completes the handshake and then never reads, with a
        # small receive buffer so that the bridge's send queue fills fast.
        # Returns the socket and the response's head.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(('127.0.0.1', self.bridge.port))
        sock.sendall(('GET /ws/executions?access_token=%s HTTP/1.1\r\n'
                      'Host: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                      'Sec-WebSocket-Key: c3RhbGxlZC1jbGllbnQtMQ==\r\n'
                      'Sec-WebSocket-Version: 13\r\n%s\r\n'
                      % (self.bridge.token, self.bridge.port, extra_headers)).encode())
        sock.settimeout(h.TIMEOUT)
        head = b''
        while b'\r\n\r\n' not in head:
            head += sock.recv(1)
        self.assertTrue(head.startswith(b'HTTP/1.1 101'), head)
        return sock, head.decode()

    def test_no_compression(self):
        # What Chrome offers; the bridge declines, so frames go out as built.
        sock, head = self.raw_websocket('Sec-WebSocket-Extensions: permessage-deflate; '
                                        'client_max_window_bits\r\n')
        self.addCleanup(sock.close)
        self.assertNotIn('sec-websocket-extensions', head.lower())
        snapshot = sock.recv(2)
        self.assertEqual(snapshot[0], 0x81, 'an uncompressed, unfragmented text frame')

    def test_stalled_client_is_closed(self):
        stalled, _ = self.raw_websocket()
        self.addCleanup(stalled.close)
        # The watcher takes only status events: a Python client reading 1.5 MB
        # of logs could itself fall a second behind.
        watcher = self.websocket()
        watcher.wait(type='snapshot')
        watcher.send({'type': 'subscribe', 'execution_id': 'f' * 32})
        self.api_ok('GET', '/api/executions')
        first = self.start_http('chatty.yaml')['execution_id']
        watcher.wait(type='finished', execution_id=first)
        # The bridge looks at a client's send queue at most twice a second,
        # when it has events to send: seen behind at one run, and still
        # behind at a run more than --ws-max-lag (1 s) later, it is closed.
        runs = []
        for pause in (0.6, 1.2):
            time.sleep(pause)
            runs.append(self.start_http('quick.yaml')['execution_id'])
            watcher.wait(type='finished', execution_id=runs[-1])
        second = runs[-1]
        # Reading now drains what was queued, then the close frame and the end.
        data = b''
        deadline = time.monotonic() + h.TIMEOUT
        while True:
            self.assertLess(time.monotonic(), deadline, 'the bridge never closed the stalled client')
            chunk = stalled.recv(65536)
            if not chunk:
                break
            data += chunk
        close = b'\x88' + bytes([2 + len(b'too far behind; reconnect')]) + \
            (1008).to_bytes(2, 'big') + b'too far behind; reconnect'
        self.assertTrue(data.endswith(close), data[-64:])
        self.assertNotIn(second.encode(), data)
        self.assertIn(b'more than 1 s behind', self.bridge.stderr_text().encode())
        # The others never noticed.
        self.assertFalse(watcher.closed)
        self.assertEqual(watcher.find(type='log', execution_id=first), [])

    def test_finished_while_disconnected(self):
        ws = self.websocket()
        ws.wait(type='snapshot')
        ws.close()
        run = self.start_http('quick.yaml')
        eid = run['execution_id']
        self.client.wait_finished(run['path'])
        got = self.api_ok('GET', '/api/executions/' + eid)
        self.assertEqual(got['status'], 'completed')
        self.assertEqual(got['progress'], 1.0)
        self.assertEqual([s['status'] for s in got['steps']], ['completed', 'completed'])
        ws = self.websocket()
        snapshot = ws.wait(type='snapshot')
        mine = [e for e in snapshot['executions'] if e['execution_id'] == eid]
        self.assertEqual(len(mine), 1, snapshot)
        self.assertEqual(mine[0]['status'], 'completed')
        self.assertGreater(mine[0]['finished_at'], 0)

    def test_websocket_limits(self):
        ws = self.websocket()
        ws.wait(type='snapshot')
        ws.send({'type': 'subscribe', 'execution_id': 'x' * (70 * 1024)})
        self.client.wait_for(lambda: ws.closed, what='the bridge to close an oversized message')
        # The bridge lives on.
        self.api_ok('GET', '/api/playbooks')

    def test_credentials(self):
        created = self.api_ok('POST', '/api/credentials',
                              {'name': 'gw-main', 'username': 'admin', 'password': SECRET,
                               'gateway_url': 'http://gw.example:8088', 'description': 'main'},
                              status=201)
        self.assertEqual(created, {'name': 'gw-main'})
        status, text, _ = self.http('GET', '/api/credentials')
        self.assertEqual(status, 200)
        creds = {c['name']: c for c in text}
        self.assertEqual(creds['gw-main'], {
            'name': 'gw-main', 'username': 'admin', 'gateway_url': 'http://gw.example:8088',
            'description': 'main', 'has_password': True, 'has_api_token': False})
        self.assertEqual(self.api_ok('PUT', '/api/credentials/gw-main',
                                     {'api_token': API_SECRET}), {'name': 'gw-main'})
        creds = {c['name']: c for c in self.api_ok('GET', '/api/credentials')}
        self.assertTrue(creds['gw-main']['has_api_token'])
        self.assertEqual(creds['gw-main']['username'], 'admin')
        for path in ('/api/credentials', '/api/executions'):
            raw = json.dumps(self.api_ok('GET', path))
            self.assertNotIn(SECRET, raw)
            self.assertNotIn(API_SECRET, raw)
        self.assertApiError(400, 'InvalidArgs', 'POST', '/api/credentials', {'name': 'bad name'})
        self.assertApiError(400, 'InvalidArgs', 'POST', '/api/credentials',
                            {'name': 'ok', 'password': 5})
        self.assertApiError(400, 'InvalidArgs', 'PUT', '/api/credentials/gw-main',
                            {'name': 'other'})
        status, body, _ = self.http('DELETE', '/api/credentials/gw-main')
        self.assertEqual((status, body), (204, None))
        self.assertApiError(404, 'NoSuchCredential', 'DELETE', '/api/credentials/gw-main')
        self.assertNotIn('gw-main', [c['name'] for c in self.api_ok('GET', '/api/credentials')])

    def test_delete_execution(self):
        live = self.start_http('sleepy.yaml')
        self.wait_http_status(live['execution_id'], ('running',))
        self.assertApiError(409, 'InvalidState', 'DELETE',
                            '/api/executions/' + live['execution_id'])
        self.api_ok('POST', '/api/executions/%s/cancel' % live['execution_id'])
        self.client.wait_finished(live['path'])
        status, body, _ = self.http('DELETE', '/api/executions/' + live['execution_id'])
        self.assertEqual((status, body), (204, None))
        self.assertApiError(404, 'NoSuchExecution', 'GET',
                            '/api/executions/' + live['execution_id'])


class TestBridgeLimits(BridgeTestCase):
    """One run at a time, finished runs leave the bus at once; the daemon goes away last."""
    conf = {'MaxConcurrentExecutions': 1}
    retention = 0

    def test_limits(self):
        run = self.start_http('sleepy.yaml')
        self.wait_http_status(run['execution_id'], ('running',))
        self.assertApiError(429, 'LimitsExceeded', 'POST', '/api/executions',
                            {'playbook_path': 'quick.yaml'})
        self.api_ok('POST', '/api/executions/%s/cancel' % run['execution_id'])
        self.client.wait_finished(run['path'])

    def test_removed_from_the_bus(self):
        ws = self.websocket()
        ws.wait(type='snapshot')
        run = self.start_http('quick.yaml')
        eid = run['execution_id']
        ws.wait(type='finished', execution_id=eid)
        removed = ws.wait(type='execution_removed', execution_id=eid)
        self.assertEqual(removed['status'], 'completed')
        ws2 = self.websocket()
        snapshot = ws2.wait(type='snapshot')
        self.assertNotIn(eid, [e['execution_id'] for e in snapshot['executions']])

    def test_record_after_removal(self):
        run = self.start_http('quick.yaml')
        eid = run['execution_id']
        self.client.wait_signal(h.MANAGER_PATH, 'ExecutionRemoved', lambda a: a[0] == run['path'])
        got = self.api_ok('GET', '/api/executions/' + eid)
        self.assertIsNone(got['path'])
        self.assertEqual(got['status'], 'completed')
        self.assertEqual([s['step_id'] for s in got['steps']], ['one', 'two'])
        lines = self.api_ok('GET', '/api/executions/%s/log' % eid)['lines']
        self.assertTrue(any('second' in ln['message'] for ln in lines), lines)
        self.assertApiError(409, 'NotRunning', 'POST', '/api/executions/%s/resume' % eid)
        listed = self.api_ok('GET', '/api/executions')['executions']
        self.assertIn(eid, [e['execution_id'] for e in listed])

    def test_zy_run_right_after_a_daemon_restart(self):
        """The bridge hears a new daemon from its first signal. It is stopped while
        the daemon restarts and a run goes from start to Finished (and off the bus):
        nothing of that run was said after the bridge could have seen the new owner,
        and every transition still reaches the WebSocket, in order."""
        ws = self.websocket()
        ws.wait(type='snapshot')
        self.bridge.proc.send_signal(signal.SIGSTOP)
        try:
            self.daemon.restart(self.client)
            path = self.start(playbook_id='quick.yaml')
            self.client.wait_finished(path)
        finally:
            self.bridge.proc.send_signal(signal.SIGCONT)
        hex_id = path[len(h.EXECUTION_PREFIX):]
        eid = '-'.join((hex_id[:8], hex_id[8:12], hex_id[12:16], hex_id[16:20], hex_id[20:]))
        self.assertRelayedAsSaid(ws, eid, path)
        # The bridge's own answers agree once it has caught up.
        self.assertEqual(self.wait_http_status(eid, ('completed',))['status'], 'completed')

    def test_zx_every_transition_of_a_run_started_over_http(self):
        """POST /api/executions starts through the same watch that feeds the WebSocket
        (it holds the new run's signals until the reply): a run that is over at once is
        relayed whole and in order, the same as the daemon said it."""
        ws = self.websocket()
        ws.wait(type='snapshot')
        run = self.start_http('quick.yaml')
        self.client.wait_finished(run['path'])
        self.assertRelayedAsSaid(ws, run['execution_id'], run['path'])

    def assertRelayedAsSaid(self, ws, eid, path):
        finished = ws.wait(type='finished', execution_id=eid)
        self.assertEqual(finished['status'], 'completed')
        relayed = [(e['type'], e.get('status'), e.get('step_id'))
                   for e in ws.events if e.get('execution_id') == eid
                   and e['type'] in ('status', 'step', 'log', 'finished')]
        said = [('status', m.args[0], None) if m.member == 'StatusChanged' else
                ('step', m.args[2], m.args[1]) if m.member == 'StepChanged' else
                ('log', None, m.args[2]) if m.member == 'Log' else
                ('finished', m.args[0], None)
                for m in self.client.signals(path, interface=h.EXECUTION_IFACE)
                if m.member in ('StatusChanged', 'StepChanged', 'Log', 'Finished')]
        self.assertEqual(relayed, said)
        self.assertEqual(relayed[0], ('status', 'running', None))
        self.assertEqual(relayed[-1], ('finished', 'completed', None))

    def test_zz_daemon_goes_away(self):
        status, body, _ = self.http('GET', '/health/ready', token=None)
        self.assertEqual((status, body), (200, {'status': 'ready'}))
        self.daemon.stop()
        self.client.wait_name(False)

        def unavailable():
            return self.http('GET', '/health/ready', token=None)[0] == 503
        self.client.wait_for(unavailable, what='/health/ready to report 503')
        status, body, _ = self.http('GET', '/health/ready', token=None)
        self.assertEqual(body, {'status': 'unavailable'})
        self.assertEqual(self.http('GET', '/health/live', token=None)[0], 200)
        self.assertApiError(503, 'Unavailable', 'GET', '/api/playbooks')
        self.assertApiError(503, 'Unavailable', 'POST', '/api/executions',
                            {'playbook_path': 'quick.yaml'})


if __name__ == '__main__':
    h.main()
