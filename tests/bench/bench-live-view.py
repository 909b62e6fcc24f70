#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench-live-view: the live view (docs/live-view.md) of a run whose 1920x1080
page animates, on a private bus. Prints JSON:

- latency_ms: Chromium drew the frame (its header's timestamp) -> the frame
  read whole from the OpenLiveView fd (p50, p95, max), with the frame rate;
- cpu: the daemon's CPU (percent of one core) for the same run unwatched,
  watched by one reader and by ten (each reads every frame), and Chromium's
  (every process under the daemon) in each case;
- load: the machine's load average before and after.

--quick: short phases, checks only that frames flow (the 'bench' test
suite). Exits 77 without /usr/bin/chromium. Run from a release build for
real numbers (ITK_DAEMON, ITK_MODULE_DIR as for the integration tests)."""

import argparse
import json
import os
import select
import socket
import statistics
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..',
                                'integration'))

if not os.access('/usr/bin/chromium', os.X_OK):
    print('SKIP: /usr/bin/chromium is not installed (Debian package chromium)')
    sys.exit(77)

import itk_harness as h  # noqa: E402
from itk_harness import BUS_NAME, EXECUTION_IFACE, Gio, GLib  # noqa: E402

# A page that changes every animation frame: the screencast has something to send.
PAGE = ('data:text/html,<body style="margin:0;font:80px sans-serif">'
        '<div id=t style="padding:200px"></div><script>'
        'function f(){t.textContent=Date.now();'
        'document.body.style.background="hsl("+(Date.now()/10%360)+",50%,80%)";'
        'requestAnimationFrame(f)}f()</script></body>')
CLK_TCK = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def descendants(root):
    """The pids of every process under @root (Chromium runs in the daemon's sandbox)."""
    children = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                ppid = int(f.read().rsplit(')', 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def browser_cpu(root):
    """CPU seconds of each process under @root, by pid."""
    times = {}
    for pid in descendants(root):
        try:
            times[pid] = cpu_seconds(pid)
        except (OSError, IndexError, ValueError):
            pass
    return times


def browser_delta(before, after):
    # A process born meanwhile counts whole; one that died is lost (small).
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


class Reader:
    def __init__(self, fd):
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(False)
        self.buf = bytearray()
        self.frames = []  # (header, read at µs)

    def fileno(self):
        return self.sock.fileno()

    def pump(self):
        try:
            data = self.sock.recv(4 << 20)
        except BlockingIOError:
            return
        if not data:
            raise EOFError
        self.buf += data
        now = time.time_ns() // 1000
        while len(self.buf) >= 8:
            hlen, plen = struct.unpack('>II', self.buf[:8])
            if len(self.buf) < 8 + hlen + plen:
                break
            header = json.loads(bytes(self.buf[8:8 + hlen]))
            del self.buf[:8 + hlen + plen]
            if header['type'] == 'frame':
                self.frames.append((header, now))


def open_view(client, path):
    result, fds = client.conn.call_with_unix_fd_list_sync(
        BUS_NAME, path, EXECUTION_IFACE, 'OpenLiveView',
        GLib.Variant('(a{sv})', ({},)), GLib.VariantType('(h)'),
        Gio.DBusCallFlags.NONE, 30000, None, None)
    return Reader(fds.get(result.unpack()[0]))


def watch(readers, seconds):
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        ready, _, _ = select.select(readers, [], [], left)
        for r in ready:
            r.pump()


def phase(daemon_pid, readers, seconds):
    """CPU of the daemon and of Chromium over @seconds, with @readers reading."""
    d0, c0, t0 = cpu_seconds(daemon_pid), browser_cpu(daemon_pid), time.monotonic()
    if readers:
        watch(readers, seconds)
    else:
        time.sleep(seconds)
    elapsed = time.monotonic() - t0
    return {
        'daemon_cpu_percent': round(100 * (cpu_seconds(daemon_pid) - d0) / elapsed, 2),
        'chromium_cpu_percent': round(
            100 * browser_delta(c0, browser_cpu(daemon_pid)) / elapsed, 1),
        'seconds': round(elapsed, 2),
    }


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--seconds', type=float, default=10.0)
    args = parser.parse_args()
    seconds = 1.5 if args.quick else args.seconds

    load_before = os.getloadavg()
    workdir = tempfile.mkdtemp(prefix='itk-bench-live-')
    bus = client = daemon = None
    try:
        bus = h.Bus(workdir)
        client = h.Client(bus.address)
        daemon = h.Daemon(workdir, bus.address, sandbox={'Enabled': 'false'})
        daemon.start(client)
        source = h.playbook(h.step('open', 'browser.navigate', {'url': PAGE}),
                            h.sleep_step('hold', 3600))
        path = client.start_execution('bench', None, {'source': source})
        client.wait_step(path, 'hold', 'running', timeout=120)
        time.sleep(0.5)
        pid = daemon.proc.pid

        unwatched = phase(pid, [], seconds)
        one = [open_view(client, path)]
        watch(one, 1.0)  # the screencast settles
        one[0].frames.clear()
        watched_one = phase(pid, one, seconds)
        latencies = [(read - hdr['timestamp']) / 1000 for hdr, read in one[0].frames]
        sizes = {(hdr['width'], hdr['height']) for hdr, _ in one[0].frames}
        one[0].sock.close()
        time.sleep(0.5)
        unwatched_after = phase(pid, [], seconds)

        ten = [open_view(client, path) for _ in range(10)]
        watch(ten, 1.0)
        for r in ten:
            r.frames.clear()
        watched_ten = phase(pid, ten, seconds)
        ten_fps = [len(r.frames) / watched_ten['seconds'] for r in ten]
        for r in ten:
            r.sock.close()
        client.call(path, 'Cancel')
        client.wait_finished(path, 30)

        if not latencies:
            print(json.dumps({'error': 'no frames arrived'}))
            return 1
        result = {
            'bench': 'live-view',
            'quick': args.quick,
            'page': '%dx%d CSS px, animated every frame' % sorted(sizes)[-1],
            'latency_ms': {
                'what': 'Chromium drew the frame -> read whole from the OpenLiveView fd',
                'frames': len(latencies),
                'p50': round(statistics.median(latencies), 1),
                'p95': round(percentile(latencies, 95), 1),
                'max': round(max(latencies), 1),
            },
            'fps_one_watcher': round(len(latencies) / watched_one['seconds'], 1),
            'fps_ten_watchers_min': round(min(ten_fps), 1),
            'cpu': {
                'unwatched': unwatched,
                'one_watcher': watched_one,
                'unwatched_after_watching': unwatched_after,
                'ten_watchers': watched_ten,
            },
            'load_before': [round(x, 2) for x in load_before],
            'load_after': [round(x, 2) for x in os.getloadavg()],
            'cores': os.cpu_count(),
        }
        print(json.dumps(result, indent=2))
        if args.quick and result['fps_one_watcher'] <= 0:
            return 1
        return 0
    finally:
        if client is not None:
            client.close()
        if daemon is not None:
            daemon.stop()
        if bus is not None:
            bus.stop()


if __name__ == '__main__':
    sys.exit(main())
