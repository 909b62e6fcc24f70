#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The live view through the bridge (client/bridge/bridge-live-view.c):
WebSocket /ws/executions/ID/live relays the daemon's OpenLiveView messages as
binary messages, one fd per watched run shared by its watchers and closed
when the last one goes; a watcher that does not read gets the newest frames,
not a queue; POST /api/executions/ID/input reaches SendInput and relays its
refusals. Skipped without /usr/bin/chromium or the simulator."""

import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time

import itk_harness as h
from itk_harness import GLib, playbook, sleep_step, step
from test_bridge import BridgeTestCase, Soup
from test_browser import sim_binary

if not os.access('/usr/bin/chromium', os.X_OK):
    print('SKIP: /usr/bin/chromium is not installed (Debian package chromium)')
    sys.exit(77)


def parse_message(data):
    """(header, payload) of one relayed daemon message."""
    hlen, plen = struct.unpack('>II', data[:8])
    assert len(data) == 8 + hlen + plen, 'one whole message per WebSocket message'
    return json.loads(data[8:8 + hlen]), data[8 + hlen:]


class LiveSocket:
    """A libsoup client of /ws/executions/ID/live: binary messages parsed, text kept."""

    def __init__(self, test, execution_id, token=None):
        self.test = test
        self.messages = []  # (header, payload)
        self.texts = []
        self.closed = False
        self.conn = None
        self.error = None
        self.session = Soup.Session()
        msg = Soup.Message.new('GET', 'ws://127.0.0.1:%d/ws/executions/%s/live?access_token=%s' %
                               (test.bridge.port, execution_id, token or test.bridge.token))
        done = []

        def connected(session, result):
            try:
                self.conn = session.websocket_connect_finish(result)
                self.conn.connect('message', self._on_message)
                self.conn.connect('closed', self._on_closed)
            except GLib.Error as e:
                self.error = e
            done.append(True)

        self.session.websocket_connect_async(msg, None, None, GLib.PRIORITY_DEFAULT, None,
                                             connected)
        test.client.wait_for(lambda: done, what='the live WebSocket handshake')

    def _on_message(self, conn, kind, data):
        raw = bytes(data.get_data())
        if kind == Soup.WebsocketDataType.TEXT:
            self.texts.append(json.loads(raw.decode()))
        else:
            self.messages.append(parse_message(raw))

    def _on_closed(self, conn):
        self.closed = True

    def frames(self):
        return [(hd, p) for hd, p in self.messages if hd['type'] == 'frame']

    def wait_frames(self, count, timeout=60):
        return self.test.client.wait_for(lambda: len(self.frames()) >= count, timeout,
                                         '%d live frames' % count)

    def close(self):
        if self.conn is not None and not self.closed:
            self.conn.close(Soup.WebsocketCloseCode.NORMAL, None)
            self.test.client.wait_for(lambda: self.closed, what='the live WebSocket to close')


def unix_sockets(pid):
    """How many AF_UNIX sockets process @pid holds."""
    with open('/proc/net/unix') as f:
        inodes = {line.split()[6] for line in f.readlines()[1:]}
    count = 0
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            link = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        m = re.match(r'socket:\[(\d+)\]', link)
        if m and m.group(1) in inodes:
            count += 1
    return count


class TestBridgeLiveView(BridgeTestCase):
    conf = {'MaxConcurrentExecutions': 4}

    @classmethod
    def setUpClass(cls):
        binary = sim_binary()
        if binary is None:
            raise unittest_skip('itk-gateway-sim is not built')
        cls.sim_dir = tempfile.mkdtemp(prefix='itk-sim-')
        cls.sim = subprocess.Popen([binary, '--state-dir', cls.sim_dir], stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        m = re.search(r'listening on (http://\S+)', cls.sim.stdout.readline().decode())
        assert m, 'itk-gateway-sim did not start'
        cls.page = m.group(1) + '/sim/clicks?tick'
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        cls.sim.terminate()
        cls.sim.wait(10)
        cls.sim.stdout.close()
        super().tearDownClass()

    def live(self, execution_id, token=None):
        ws = LiveSocket(self, execution_id, token)
        if ws.conn is not None:
            self.sockets.append(ws)
        return ws

    def start_page_run(self):
        path = self.start(playbook(step('open', 'browser.navigate', {'url': self.page}),
                                   sleep_step('hold', 120)))
        self.client.wait_step(path, 'hold', 'running', timeout=60)
        return path, self.client.get_prop(path, 'Id')

    def test_watchers_share_one_view(self):
        path, exec_id = self.start_page_run()
        baseline = unix_sockets(self.bridge.proc.pid)
        first = self.live(exec_id)
        first.wait_frames(2)
        header, jpeg = first.frames()[0]
        self.assertEqual(header['url'], self.page)
        self.assertEqual(header['step'], 'hold')
        self.assertGreater(header['width'], 100)
        self.assertEqual(jpeg[:2], b'\xff\xd8', 'a JPEG')
        self.assertEqual(unix_sockets(self.bridge.proc.pid), baseline + 1)
        # A second watcher: frames too, from the same fd; the newest one first.
        second = self.live(exec_id)
        second.wait_frames(3)
        self.assertEqual(unix_sockets(self.bridge.proc.pid), baseline + 1)
        seqs = [hd['sequence'] for hd, _ in second.frames()]
        self.assertEqual(seqs, sorted(seqs))
        # The last watcher leaving closes the fd.
        first.close()
        second.wait_frames(len(second.frames()) + 2)
        self.assertEqual(unix_sockets(self.bridge.proc.pid), baseline + 1)
        second.close()
        self.client.wait_for(lambda: unix_sockets(self.bridge.proc.pid) == baseline,
                             what='the live view fd to close')
        # The run's end ends a watcher: the daemon's "closed", then the bridge's "ended".
        third = self.live(exec_id)
        third.wait_frames(1)
        self.call(path, 'Cancel')
        self.client.wait_for(lambda: third.closed, what='the watcher to be closed')
        self.assertEqual(third.texts[-1]['type'], 'ended')

    def test_stalled_watcher_gets_newest_frames(self):
        path, exec_id = self.start_page_run()
        watcher = self.live(exec_id)
        watcher.wait_frames(1)
        # A client that reads nothing for 4 s while the page changes 10 times a
        # second, with a small receive buffer: a queue would hold ~40 frames.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(('127.0.0.1', self.bridge.port))
        sock.sendall(('GET /ws/executions/%s/live?access_token=%s HTTP/1.1\r\n'
                      'Host: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                      'Sec-WebSocket-Key: c3RhbGxlZC1jbGllbnQtMQ==\r\n'
                      'Sec-WebSocket-Version: 13\r\n\r\n'
                      % (exec_id, self.bridge.token, self.bridge.port)).encode())
        sock.settimeout(h.TIMEOUT)
        head = b''
        while b'\r\n\r\n' not in head:
            head += sock.recv(1)
        self.assertTrue(head.startswith(b'HTTP/1.1 101'), head)
        start = len(watcher.frames())
        self.client.wait_for(lambda: len(watcher.frames()) >= start + 40, 60,
                             'the page to change 40 times')
        newest = watcher.frames()[-1][0]['sequence']
        # Now read: a few frames that were in flight, then the current ones.
        buf = b''
        seqs = []
        deadline = time.monotonic() + h.TIMEOUT
        while not seqs or seqs[-1] < newest:
            self.assertLess(time.monotonic(), deadline, 'never caught up: %r' % seqs)
            buf += sock.recv(1 << 20)
            while len(buf) >= 2:
                length, off = buf[1] & 0x7f, 2
                if length == 126:
                    length, off = struct.unpack('>H', buf[2:4])[0], 4
                elif length == 127:
                    length, off = struct.unpack('>Q', buf[2:10])[0], 10
                if len(buf) < off + length:
                    break
                opcode, payload, buf = buf[0] & 0x0f, buf[off:off + length], buf[off + length:]
                if opcode == 2:
                    header, _ = parse_message(payload)
                    if header['type'] == 'frame':
                        seqs.append(header['sequence'])
        self.assertEqual(seqs, sorted(seqs), 'never an older frame after a newer one')
        self.assertLess(len([s for s in seqs if s <= newest]), 20,
                        'the stalled client got a queue of old frames: %r' % seqs)
        self.assertFalse(watcher.closed)

    def test_no_browser_unknown_run_and_input_errors(self):
        path = self.start(playbook(sleep_step('wait', 60)))
        self.client.wait_step(path, 'wait', 'running', timeout=30)
        exec_id = self.client.get_prop(path, 'Id')
        ws = self.live(exec_id)
        self.client.wait_for(lambda: ws.messages, what='a status message')
        header, payload = ws.messages[0]
        self.assertEqual((header['type'], header['state']), ('status', 'no-browser'))
        self.assertIn('no browser', header['message'])
        self.assertEqual(payload, b'')
        # A run that is not on the bus: the bridge's error, then the close.
        gone = self.live('0' * 32)
        self.client.wait_for(lambda: gone.closed, what='the refusal')
        self.assertEqual(gone.texts, [{'type': 'error', 'error': 'NotRunning',
                                       'message': 'the run is not running (it ended, or '
                                                  'there is no such run)'}])
        # Not an id, or no token: no upgrade at all.
        status, body, _ = self.http('GET', '/ws/executions/not-an-id/live', token=False)
        self.assertEqual(status, 404, body)
        bad = LiveSocket(self, exec_id, token='nope')
        self.assertIsNone(bad.conn)
        # Input: refused while running, with the daemon's reason; bad bodies named.
        body = self.assertApiError(409, 'InvalidState', 'POST',
                                   '/api/executions/%s/input' % exec_id,
                                   {'kind': 'click', 'x': 3, 'y': 4})
        self.assertIn('paused or in debug mode', body['message'])
        self.call(path, 'Pause')
        self.client.wait_for(lambda: self.client.get_prop(path, 'Status') == 'paused',
                             what='paused')
        body = self.assertApiError(501, 'NotSupported', 'POST',
                                   '/api/executions/%s/input' % exec_id,
                                   {'kind': 'click', 'x': 3, 'y': 4})
        self.assertIn('no browser page', body['message'])
        self.assertApiError(400, 'InvalidArgs', 'POST', '/api/executions/%s/input' % exec_id,
                            {'kind': 'drag', 'x': 1, 'y': 1})
        self.assertIn("'kind'", self.assertApiError(
            400, 'InvalidArgs', 'POST', '/api/executions/%s/input' % exec_id, {'x': 1})['message'])
        self.assertIn("'x'", self.assertApiError(
            400, 'InvalidArgs', 'POST', '/api/executions/%s/input' % exec_id,
            {'kind': 'click', 'x': [1]})['message'])
        self.assertApiError(400, 'InvalidArgs', 'POST', '/api/executions/%s/input' % exec_id,
                            raw=b'[1]', headers={'Content-Type': 'application/json'})
        self.assertApiError(409, 'NotRunning', 'POST', '/api/executions/%s/input' % ('0' * 32),
                            {'kind': 'click', 'x': 3, 'y': 4})
        self.assertApiError(405, 'MethodNotAllowed', 'GET', '/api/executions/%s/input' % exec_id)
        self.assertApiError(401, 'Unauthorized', 'POST', '/api/executions/%s/input' % exec_id,
                            {'kind': 'click', 'x': 3, 'y': 4}, token='nope')
        self.assertFalse(ws.closed)


def unittest_skip(reason):
    import unittest
    return unittest.SkipTest(reason)


if __name__ == '__main__':
    h.main()
