# SPDX-License-Identifier: LGPL-2.1-or-later
"""ignition-toolkit-bridge under attack: bodies, slow and idle clients, running
out of descriptors, fragmented WebSocket messages, where it listens, and
socket activation.

Raw sockets throughout, so that the test sees what the bridge reads and
answers byte by byte. The bridge runs on a private bus without the daemon:
nothing here needs one.
"""

import base64
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import itk_harness as h

MAX_PREAUTH = 64 * 1024
MAX_WS_MESSAGE = 64 * 1024


def bridge_path():
    path = os.environ.get('ITK_BRIDGE')
    if path:
        return path
    daemon = h.daemon_path()
    return os.path.join(os.path.dirname(os.path.dirname(daemon)), 'client', 'bridge',
                        'ignition-toolkit-bridge')


class Bridge:
    """The bridge with its own state folder; @wrapper runs before it (prlimit...)."""

    def __init__(self, workdir, address, args=(), wrapper=(), listen='127.0.0.1:0',
                 pass_fds=(), env_extra=None, preexec_fn=None):
        self.state_dir = tempfile.mkdtemp(dir=workdir, prefix='bridge-')
        self.stderr_path = os.path.join(self.state_dir, 'stderr')
        env = dict(os.environ)
        env.setdefault('G_DEBUG', 'fatal-criticals')
        env.update(env_extra or {})
        argv = list(wrapper) + [bridge_path(), '--bus-address=' + address,
                                '--listen=' + listen, '--state-dir=' + self.state_dir,
                                '--web-root=' + self.state_dir] + list(args)
        with open(self.stderr_path, 'ab') as err:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err,
                                         stdin=subprocess.DEVNULL, env=env, pass_fds=pass_fds,
                                         preexec_fn=preexec_fn)
        ready, _, _ = select.select([self.proc.stdout], [], [], h.TIMEOUT)
        line = self.proc.stdout.readline().decode().strip() if ready else ''
        if not line.startswith('listening on http://'):
            self.stop()
            raise RuntimeError('the bridge did not start (%r): %s' % (line, self.stderr_text()))
        self.port = int(line.rsplit(':', 1)[1].rstrip('/'))
        with open(os.path.join(self.state_dir, 'bridge-token')) as f:
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

    def connect(self):
        s = socket.create_connection(('127.0.0.1', self.port), timeout=h.TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def request(self, raw):
        """Sends @raw on a new connection; returns (status, headers, body, socket)."""
        s = self.connect()
        s.sendall(raw)
        return read_response(s) + (s,)


def read_response(s):
    data = b''
    while b'\r\n\r\n' not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError('connection closed before a response head: %r' % data)
        data += chunk
    head, _, body = data.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(':')
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get('content-length', '0'))
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def closed_by_peer(s, timeout):
    """True when the peer closes @s (EOF or reset) within @timeout seconds."""
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def ws_frame(opcode, payload, fin=True):
    """A masked client frame."""
    mask = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack('!H', n)
    else:
        head += bytes([0x80 | 127]) + struct.pack('!Q', n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


class WsSocket:
    """A raw client socket that keeps what came after the handshake."""

    def __init__(self, sock, rest):
        self.sock = sock
        self.rest = rest

    def sendall(self, data):
        self.sock.sendall(data)

    def recv(self, n):
        if self.rest:
            data, self.rest = self.rest[:n], self.rest[n:]
            return data
        return self.sock.recv(n)

    def settimeout(self, timeout):
        self.sock.settimeout(timeout)

    def close(self):
        self.sock.close()


def read_ws_frame(s):
    def exactly(n):
        data = b''
        while len(data) < n:
            chunk = s.recv(n - len(data))
            if not chunk:
                raise EOFError('closed in a frame')
            data += chunk
        return data
    b0, b1 = exactly(2)
    n = b1 & 0x7f
    if n == 126:
        n = struct.unpack('!H', exactly(2))[0]
    elif n == 127:
        n = struct.unpack('!Q', exactly(8))[0]
    return b0 & 0x0f, exactly(n)


class HardeningTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.workdir = tempfile.mkdtemp(prefix='itk-bridge-hardening-')
        cls.bus = h.Bus(cls.workdir)
        cls.bridges = []
        try:
            cls.bridge = cls.start_bridge(args=['--header-timeout=2', '--idle-timeout=3'])
        except BaseException:
            cls.bus.stop()
            raise

    @classmethod
    def start_bridge(cls, **kwargs):
        bridge = Bridge(cls.workdir, cls.bus.address, **kwargs)
        cls.bridges.append(bridge)
        return bridge

    @classmethod
    def tearDownClass(cls):
        complaints = []
        for bridge in cls.bridges:
            bridge.stop()
            text = bridge.stderr_text()
            if any(w in text for w in ('CRITICAL', 'Sanitizer', 'runtime error:')):
                complaints.append(text[-4000:])
        cls.bus.stop()
        shutil.rmtree(cls.workdir, ignore_errors=True)
        if complaints:
            raise AssertionError('a bridge complained:\n' + '\n'.join(complaints))

    def assert_alive(self, bridge=None):
        bridge = bridge or self.bridge
        status, _, body, s = bridge.request(b'GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
        s.close()
        self.assertEqual(status, 200, body)

    # --- bodies ------------------------------------------------------------------------

    def refused_early(self, head, limit, expect_status):
        """Sends @head (announcing 10 MB) and @limit bytes of body, then nothing more:
        the answer must come all the same, so the bridge did not wait to read more
        than @limit bytes (today's main waited for all 10 MB)."""
        s = self.bridge.connect()
        s.sendall(head)
        s.setblocking(False)
        sent = 0
        body = b'a' * limit
        # The bridge may answer and close before taking it all: that is fine.
        while sent < limit:
            r, w, _ = select.select([s], [s], [], h.TIMEOUT)
            if r or not w:
                break
            try:
                sent += s.send(body[sent:])
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
        s.setblocking(True)
        r, _, _ = select.select([s], [], [], h.TIMEOUT)
        self.assertTrue(r, 'no answer after %d of the 10000000 bytes announced' % sent)
        s.settimeout(h.TIMEOUT)
        status, headers, body = read_response(s)
        self.assertEqual(status, expect_status, body)
        self.assertEqual(headers.get('connection'), 'close')
        self.assertTrue(closed_by_peer(s, h.TIMEOUT))
        s.close()

    def test_oversized_body_without_token_refused_at_once(self):
        # Protects: an unauthenticated client cannot make the bridge read (and keep)
        # a large body before refusing it.
        self.refused_early(b'POST /api/executions HTTP/1.1\r\nHost: x\r\n'
                           b'Content-Length: 10000000\r\n\r\n', MAX_PREAUTH, 401)
        self.refused_early(b'POST /index.html HTTP/1.1\r\nHost: x\r\n'
                           b'Content-Length: 10000000\r\n\r\n', MAX_PREAUTH, 413)
        self.assert_alive()

    def test_oversized_body_with_token_refused_at_once(self):
        head = ('POST /api/executions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n'
                'Content-Length: 10000000\r\n\r\n' % self.bridge.token).encode()
        self.refused_early(head, 1024 * 1024, 413)
        self.assert_alive()

    def test_small_body_without_token_not_read(self):
        # 401 arrives although the client never sends the 1000 announced bytes.
        s = self.bridge.connect()
        s.sendall(b'POST /api/executions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n')
        status, headers, _ = read_response(s)
        self.assertEqual(status, 401)
        self.assertEqual(headers.get('www-authenticate'), 'Bearer')
        s.close()

    def test_chunked_body_counted(self):
        # Protects: a body of unknown length is cut off at 64 KiB without a token.
        s = self.bridge.connect()
        s.sendall(b'POST /index.html HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n')
        chunk = b'%x\r\n%s\r\n' % (8192, b'b' * 8192)
        sent = 0
        s.settimeout(0.05)
        status = None
        for _ in range(2000):
            try:
                s.sendall(chunk)
                sent += 8192
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                break
            r, _, _ = select.select([s], [], [], 0)
            if r:
                break
        s.settimeout(h.TIMEOUT)
        status, _, body = read_response(s)
        self.assertEqual(status, 413, body)
        self.assertLess(sent, 4 * 1024 * 1024)
        s.close()
        self.assert_alive()

    def test_conflicting_content_length(self):
        for extra in (b'Content-Length: 5\r\nContent-Length: 6\r\n',
                      b'Content-Length: 5\r\nContent-Length: 5\r\n',
                      b'Content-Length: +5\r\n',
                      b'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n'):
            status, headers, body, s = self.bridge.request(
                b'POST /index.html HTTP/1.1\r\nHost: x\r\n' + extra + b'\r\nhello')
            s.close()
            self.assertIn(status, (400, 501), (extra, body))
        self.assert_alive()

    # --- slow and idle clients ------------------------------------------------------

    def test_slow_headers_time_out(self):
        # Protects: a client that never finishes its request head (slowloris) is cut
        # off after --header-timeout (2 s here), answered 408.
        s = self.bridge.connect()
        s.sendall(b'GET /health HTTP/1.1\r\nHost: x\r\n')
        started = time.monotonic()
        for _ in range(3):
            time.sleep(0.3)
            s.sendall(b'X-Slow: 1\r\n')
        status, _, _ = read_response(s)
        self.assertEqual(status, 408)
        self.assertTrue(closed_by_peer(s, h.TIMEOUT))
        self.assertLess(time.monotonic() - started, h.TIMEOUT)
        s.close()

    def test_slow_headers_on_kept_alive_connection_time_out(self):
        # The head timeout applies to every request of a connection, not only its first.
        s = self.bridge.connect()
        s.sendall(b'GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertEqual(read_response(s)[0], 200)
        s.sendall(b'GET /health HTTP/1.1\r\nHost: x\r\n')
        started = time.monotonic()
        status, _, _ = read_response(s)
        self.assertEqual(status, 408)
        # 2 s of --header-timeout, well before the 3 s of --idle-timeout.
        self.assertTrue(closed_by_peer(s, h.TIMEOUT))
        self.assertLess(time.monotonic() - started, h.TIMEOUT)
        s.close()

    def test_silent_connection_times_out(self):
        s = self.bridge.connect()
        self.assertTrue(closed_by_peer(s, h.TIMEOUT))
        s.close()

    def test_idle_keepalive_times_out(self):
        # Protects: a keep-alive connection does not stay open for ever; it lives
        # through a pause shorter than --idle-timeout (3 s) and not a longer one.
        s = self.bridge.connect()
        s.sendall(b'GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertEqual(read_response(s)[0], 200)
        time.sleep(1.5)  # longer than the head timeout, shorter than the idle one
        s.sendall(b'GET /health HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertEqual(read_response(s)[0], 200)
        self.assertTrue(closed_by_peer(s, h.TIMEOUT))
        s.close()

    # --- descriptors ------------------------------------------------------------------

    def test_accepts_again_after_running_out_of_descriptors(self):
        # Protects: accept() failing with EMFILE pauses accepting instead of ending it.
        limit = 64
        bridge = self.start_bridge(wrapper=['prlimit', '--nofile=%d:%d' % (limit, limit), '--'],
                                   args=['--header-timeout=30', '--idle-timeout=30'])
        held = []
        try:
            for _ in range(limit + 20):
                held.append(bridge.connect())
            # Some of these are waiting in the backlog: the bridge cannot take them.
            time.sleep(1)
        finally:
            for s in held:
                s.close()
        deadline = time.monotonic() + h.TIMEOUT
        while True:
            try:
                self.assert_alive(bridge)
                break
            except (AssertionError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        text = bridge.stderr_text()
        self.assertEqual(text.count('cannot accept connections'), 1, text)
        self.assertIn('accepting connections again', text)

    # --- WebSocket ----------------------------------------------------------------------

    def ws_connect(self):
        s = self.bridge.connect()
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(('GET /ws/executions?access_token=%s HTTP/1.1\r\nHost: x\r\n'
                   'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n'
                   'Sec-WebSocket-Version: 13\r\n\r\n' % (self.bridge.token, key)).encode())
        data = b''
        while b'\r\n\r\n' not in data:
            chunk = s.recv(4096)
            self.assertTrue(chunk, 'no handshake answer')
            data += chunk
        self.assertTrue(data.startswith(b'HTTP/1.1 101'), data)
        s = WsSocket(s, data.split(b'\r\n\r\n', 1)[1])
        opcode, payload = read_ws_frame(s)
        self.assertEqual(opcode, 1)
        self.assertEqual(json.loads(payload)['type'], 'snapshot')
        return s

    def ws_close_code(self, s):
        while True:
            opcode, payload = read_ws_frame(s)
            if opcode == 8:
                return struct.unpack('!H', payload[:2])[0]

    def test_ws_fragmented_message_over_limit(self):
        # Protects: continuation frames, each under the limit, cannot build a message
        # over it (libsoup 3.2 checks frames only).
        s = self.ws_connect()
        part = b'x' * (16 * 1024)
        s.sendall(ws_frame(1, part, fin=False))
        try:
            for _ in range(8):
                s.sendall(ws_frame(0, part, fin=False))
            s.sendall(ws_frame(0, b'}', fin=True))
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.assertEqual(self.ws_close_code(s), 1009)
        s.sendall(ws_frame(8, struct.pack('!H', 1009)))
        self.assertTrue(closed_by_peer(s, h.TIMEOUT))
        s.close()
        self.assert_alive()

    def test_ws_fragmented_message_under_limit(self):
        # The count must not refuse what is allowed: 48 KiB in three frames, with a
        # ping between them, is a message like any other.
        s = self.ws_connect()
        text = json.dumps({'type': 'subscribe', 'execution_id': None, 'pad': 'p' * 48000})
        data = text.encode()
        third = len(data) // 3
        s.sendall(ws_frame(1, data[:third], fin=False))
        s.sendall(ws_frame(9, b'hi'))
        s.sendall(ws_frame(0, data[third:2 * third], fin=False))
        s.sendall(ws_frame(0, data[2 * third:], fin=True))
        opcode, payload = read_ws_frame(s)
        self.assertEqual((opcode, payload), (10, b'hi'))
        s.sendall(ws_frame(8, struct.pack('!H', 1000)))
        self.assertEqual(self.ws_close_code(s), 1000)
        self.assertTrue(closed_by_peer(s, h.TIMEOUT))
        s.close()

    def test_ws_single_frame_over_limit(self):
        s = self.ws_connect()
        s.sendall(ws_frame(2, b'y' * (MAX_WS_MESSAGE + 1)))
        self.assertEqual(self.ws_close_code(s), 1009)
        # Frames after the refusal are dropped; the close handshake still ends it.
        s.sendall(ws_frame(1, b'{"type":"subscribe"}'))
        s.sendall(ws_frame(8, struct.pack('!H', 1009)))
        self.assertTrue(closed_by_peer(s, h.TIMEOUT))
        s.close()

    # --- where it listens -------------------------------------------------------------

    def test_loopback_not_warned(self):
        self.assertNotIn('beyond loopback', self.bridge.stderr_text())

    def test_non_loopback_warned(self):
        # Protects: an administrator who opens the bridge to the network is told so.
        bridge = self.start_bridge(listen='0.0.0.0:0')
        self.assertIn('beyond loopback', bridge.stderr_text())
        bridge.stop()

    def test_socket_activation(self):
        # Protects: the bridge serves the listening socket systemd hands it
        # (LISTEN_FDS/LISTEN_PID, fd 3) instead of binding its own.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(('127.0.0.1', 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        fd = listener.fileno()
        # LISTEN_PID must be the bridge's own pid: the shell sets its own, then
        # becomes the bridge; the socket goes to fd 3 as systemd puts it.
        wrapper = ['sh', '-c', 'eval "exec 3<&$ITK_LISTEN_FD"; '
                   'export LISTEN_PID=$$ LISTEN_FDS=1; exec "$@"', 'sh']
        bridge = Bridge(self.workdir, self.bus.address, listen='127.0.0.1:1', wrapper=wrapper,
                        pass_fds=(fd,), env_extra={'ITK_LISTEN_FD': str(fd)})
        self.bridges.append(bridge)
        listener.close()
        self.assertEqual(bridge.port, port)
        self.assert_alive(bridge)


if __name__ == '__main__':
    sys.exit(unittest.main())
