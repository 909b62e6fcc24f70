#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The bridge's memory under abuse, printed as one JSON object:

1. 1,000 oversized request bodies (Content-Length 10 MB, no token), each
   refused at its head: RSS after them, and how many bytes each client got to
   send before its answer;
2. 5,000 slow connections (a request head that never ends), held in waves
   of --wave at once until --header-timeout closes them: RSS at the peak of a
   wave and after.

The bridge runs on a private bus without the daemon, on loopback; every loop
is bounded and ends by itself. Usage:
  bench-bridge-hardening.py --bridge=PATH --dbus-config=FILE [--quick]
"""

import argparse
import json
import os
import resource
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def rss_kb(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


def start(argv, prefix, timeout=30):
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline().decode().strip() if ready else ''
    if not line.startswith(prefix):
        proc.kill()
        sys.exit('did not start: %r' % line)
    return proc, line


def oversized(port, count):
    head = (b'POST /api/executions HTTP/1.1\r\nHost: bench\r\n'
            b'Content-Length: 10000000\r\n\r\n')
    chunk = b'a' * 16384
    statuses = {}
    sent_max = 0
    started = time.monotonic()
    for _ in range(count):
        s = socket.create_connection(('127.0.0.1', port), timeout=10)
        s.sendall(head)
        s.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r, w, _ = select.select([s], [s], [], 1)
            if r:
                break
            if w:
                try:
                    sent += s.send(chunk)
                except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                    pass
        s.setblocking(True)
        s.settimeout(10)
        try:
            answer = s.recv(64)
            status = answer.split(b' ')[1].decode() if answer.startswith(b'HTTP/') else 'none'
        except OSError:
            status = 'reset'
        statuses[status] = statuses.get(status, 0) + 1
        sent_max = max(sent_max, sent)
        s.close()
    return statuses, sent_max, time.monotonic() - started


def slow(port, pid, count, wave, timeout):
    peak = 0
    closed = 0
    started = time.monotonic()
    done = 0
    while done < count:
        n = min(wave, count - done)
        held = []
        for _ in range(n):
            s = socket.create_connection(('127.0.0.1', port), timeout=10)
            s.sendall(b'GET /health HTTP/1.1\r\nHost: bench\r\nX-Slow: ')
            held.append(s)
        peak = max(peak, rss_kb(pid))
        deadline = time.monotonic() + timeout + 10
        waiting = list(held)
        while waiting and time.monotonic() < deadline:
            r, _, _ = select.select(waiting, [], [], 1)
            for s in r:
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b''
                if not data or b'408' in data:
                    closed += 1
                    waiting.remove(s)
        peak = max(peak, rss_kb(pid))
        for s in held:
            s.close()
        done += n
    return peak, closed, time.monotonic() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--bridge', required=True)
    parser.add_argument('--dbus-config', required=True)
    parser.add_argument('--quick', action='store_true', help='10%% of the counts')
    parser.add_argument('--bodies', type=int, default=1000)
    parser.add_argument('--slow', type=int, default=5000)
    parser.add_argument('--wave', type=int, default=500)
    parser.add_argument('--header-timeout', type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.bodies //= 10
        args.slow //= 10
        args.wave = min(args.wave, 100)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.wave + 256)), hard))

    workdir = tempfile.mkdtemp(prefix='itk-bench-bridge-hardening-')
    bus = bridge = None
    try:
        bus, address = start(['dbus-daemon', '--config-file=' + args.dbus_config,
                              '--print-address=1', '--nofork'], 'unix:')
        bridge, line = start([args.bridge, '--bus-address=' + address, '--listen=127.0.0.1:0',
                              '--state-dir=' + workdir, '--web-root=' + workdir,
                              '--header-timeout=%d' % args.header_timeout],
                             'listening on http://127.0.0.1:')
        port = int(line.rsplit(':', 1)[1].rstrip('/'))
        time.sleep(0.5)
        idle = rss_kb(bridge.pid)
        statuses, sent_max, body_seconds = oversized(port, args.bodies)
        after_bodies = rss_kb(bridge.pid)
        peak, closed, slow_seconds = slow(port, bridge.pid, args.slow, args.wave,
                                          args.header_timeout)
        time.sleep(1)
        after_slow = rss_kb(bridge.pid)
        alive = bridge.poll() is None
        print(json.dumps({
            'bridge_hardening': {
                'rss_idle_kb': idle,
                'oversized_bodies': args.bodies,
                'oversized_statuses': statuses,
                'oversized_max_client_bytes_sent': sent_max,
                'oversized_seconds': round(body_seconds, 2),
                'rss_after_oversized_kb': after_bodies,
                'slow_connections': args.slow,
                'slow_wave': args.wave,
                'slow_closed_by_bridge': closed,
                'slow_seconds': round(slow_seconds, 2),
                'rss_peak_slow_kb': peak,
                'rss_after_slow_kb': after_slow,
                'bridge_alive': alive,
            }
        }, sort_keys=True))
        return 0 if alive and closed == args.slow else 1
    finally:
        for proc in (bridge, bus):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
