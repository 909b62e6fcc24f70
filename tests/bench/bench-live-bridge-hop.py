#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench-live-bridge-hop: what the bridge adds to the live view's latency. One
reader of a run's OpenLiveView fd and one client of the bridge's
/ws/executions/ID/live read the same animated 1920x1080 page side by side; for
each frame both got, the hop is the WebSocket arrival minus the fd arrival.
Prints JSON (p50/p95 of the hop and of both latencies from Chromium drawing
the frame, with the load). Exits 77 without /usr/bin/chromium. ITK_DAEMON,
ITK_BRIDGE, ITK_MODULE_DIR as for the integration tests (a release build for
real numbers)."""

import argparse
import importlib.util
import json
import os
import select
import socket
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'integration'))

if not os.access('/usr/bin/chromium', os.X_OK):
    print('SKIP: /usr/bin/chromium is not installed (Debian package chromium)')
    sys.exit(77)

import itk_harness as h  # noqa: E402
from test_bridge import Bridge  # noqa: E402

# The daemon-side bench's page and fd reader.
_spec = importlib.util.spec_from_file_location('bench_live_view',
                                               os.path.join(HERE, 'bench-live-view.py'))
blv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(blv)


def percentile(values, p):
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))], 2)


def ws_connect(port, execution_id, token):
    sock = socket.create_connection(('127.0.0.1', port))
    sock.sendall(('GET /ws/executions/%s/live?access_token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n'
                  'Upgrade: websocket\r\nConnection: Upgrade\r\n'
                  'Sec-WebSocket-Key: YmVuY2gtbGl2ZS1ob3AxNg==\r\n'
                  'Sec-WebSocket-Version: 13\r\n\r\n' % (execution_id, token)).encode())
    head = b''
    while b'\r\n\r\n' not in head:
        head += sock.recv(1)
    if not head.startswith(b'HTTP/1.1 101'):
        raise RuntimeError('no upgrade: %r' % head)
    sock.setblocking(False)
    return sock, bytearray(head.split(b'\r\n\r\n', 1)[1])


def ws_frames(buf, arrived, now):
    """Takes whole WebSocket messages out of @buf: sequence -> (drawn, arrived) µs."""
    while len(buf) >= 2:
        length, off = buf[1] & 0x7f, 2
        if length == 126:
            length, off = struct.unpack('>H', buf[2:4])[0], 4
        elif length == 127:
            length, off = struct.unpack('>Q', buf[2:10])[0], 10
        if len(buf) < off + length:
            return
        opcode, payload = buf[0] & 0x0f, bytes(buf[off:off + length])
        del buf[:off + length]
        if opcode != 2:
            continue
        hlen = struct.unpack('>I', payload[:4])[0]
        header = json.loads(payload[8:8 + hlen])
        if header['type'] == 'frame':
            arrived[header['sequence']] = (header['timestamp'], now)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--seconds', type=float, default=10.0)
    args = parser.parse_args()
    load_before = os.getloadavg()
    workdir = tempfile.mkdtemp(prefix='itk-bench-hop-')
    bus = h.Bus(workdir)
    client = h.Client(bus.address)
    daemon = h.Daemon(workdir, bus.address, sandbox={'Enabled': 'false'})
    bridge = None
    try:
        daemon.start(client)
        bridge = Bridge(workdir, bus.address)
        source = h.playbook(h.step('open', 'browser.navigate', {'url': blv.PAGE}),
                            h.sleep_step('hold', 3600))
        path = client.start_execution('bench', None, {'source': source})
        client.wait_step(path, 'hold', 'running', timeout=120)
        fd = blv.open_view(client, path)
        sock, buf = ws_connect(bridge.port, client.get_prop(path, 'Id'), bridge.token)
        via_ws = {}
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([fd, sock], [], [], 0.5)
            for r in ready:
                if r is fd:
                    fd.pump()
                    continue
                try:
                    buf += sock.recv(1 << 20)
                except BlockingIOError:
                    pass
                ws_frames(buf, via_ws, time.time_ns() // 1000)
        via_fd = {hd['sequence']: (hd['timestamp'], t) for hd, t in fd.frames}
        both = [s for s in via_fd if s in via_ws]
        client.call(path, 'Cancel')
        client.wait_finished(path, 30)
        if not both:
            print(json.dumps({'error': 'no frame came both ways'}))
            return 1
        hop = [(via_ws[s][1] - via_fd[s][1]) / 1000 for s in both]
        fd_lat = [(via_fd[s][1] - via_fd[s][0]) / 1000 for s in both]
        ws_lat = [(via_ws[s][1] - via_ws[s][0]) / 1000 for s in both]
        print(json.dumps({
            'bench': 'live-bridge-hop',
            'frames': len(both),
            'bridge_hop_ms': {'p50': percentile(hop, 50), 'p95': percentile(hop, 95),
                              'max': round(max(hop), 2)},
            'fd_latency_ms': {'p50': percentile(fd_lat, 50), 'p95': percentile(fd_lat, 95)},
            'ws_latency_ms': {'p50': percentile(ws_lat, 50), 'p95': percentile(ws_lat, 95)},
            'load_before': [round(x, 2) for x in load_before],
            'load_after': [round(x, 2) for x in os.getloadavg()],
            'cores': os.cpu_count(),
        }, indent=2))
        return 0
    finally:
        if bridge is not None:
            bridge.stop()
        client.close()
        daemon.stop()
        bus.stop()


if __name__ == '__main__':
    sys.exit(main())
