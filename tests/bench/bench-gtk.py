#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench-gtk: ignition-toolkit-gtk's startup, memory and status latency,
printed as one JSON document.

- startup_ms: from spawning the app to its main window's first painted frame;
- rss_kb: the app's resident memory idle, then with N finished runs listed
  on the Runs page (N = 100, 10 with --quick);
- status_latency_ms: from a StatusChanged arriving on the bus (the harness
  client's socket) to the run window's label showing it (label_*) and to the
  first frame painted with it (painted_*), over pause/resume cycles;
- live_view_ms: from showing a browser run's Live View pane (which opens the
  daemon's live view) to its picture showing the page's frame, over pane
  switches (null with the reason when /usr/bin/chromium or the gateway
  simulator is absent).

Uses tests/gtk/gtk_harness.py (Xvfb, private bus, the daemon from the build).
Exits 77 without Xvfb or the app. Numbers are not judged here: build with
--buildtype=release and without sanitizers for real ones."""

import json
import os
import re
import subprocess
import tempfile
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'gtk'))

from gtk_harness import (  # noqa: E402
    GtkAppTestCase, _die_with_parent, log_step, playbook, skip_reason, sleep_step)
from itk_harness import step  # noqa: E402
from test_artifacts import sim_binary  # noqa: E402

QUICK = '--quick' in sys.argv
RUNS = 10 if QUICK else 100
CYCLES = 3 if QUICK else 50


def rss_kb(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


def summary(values):
    values = sorted(values)
    return {'n': len(values), 'min': round(values[0], 2),
            'p50': round(statistics.median(values), 2),
            'p95': round(values[min(len(values) - 1, int(len(values) * 0.95))], 2),
            'p99': round(values[min(len(values) - 1, int(len(values) * 0.99))], 2),
            'max': round(values[-1], 2)}


class Bench(GtkAppTestCase):
    library = {'bench/quick.yaml': playbook(log_step('one', 'one'), name='Bench quick'),
               'bench/slow.yaml': playbook(sleep_step('wait', 600), name='Bench slow')}
    retention = 3600

    def runTest(self):
        pass


def live_view_ms(b):
    """Pane shown -> frame shown, for a paused browser run; (summary, reason)."""
    if not os.access('/usr/bin/chromium', os.X_OK):
        return None, '/usr/bin/chromium is not installed'
    binary = sim_binary()
    if binary is None:
        return None, 'itk-gateway-sim is not built'
    sim = subprocess.Popen([binary, '--state-dir', tempfile.mkdtemp(dir=b.workdir)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    try:
        url = re.search(r'listening on (http://\S+)', sim.stdout.readline().decode()).group(1)
        source = playbook(step('open', 'browser.navigate', {'url': url + '/sim/clicks'}),
                          sleep_step('hold', 600))
        path = b.start(source)
        b.client.wait_step(path, 'hold', 'running', timeout=90)
        mark = b.mark()
        b.hook('OpenRun', path)
        b.hook_signal('LiveFrameShown', lambda a: a[0] == path, mark, 'the first live frame')
        b.client.call(path, 'Pause')
        b.client.wait_status(path, 'paused')
        samples = []
        for _ in range(CYCLES):
            b.hook('ShowRunPane', path, 'files')
            mark = b.mark()
            shown = time.monotonic()
            b.hook('ShowRunPane', path, 'live')
            b.hook_signal('LiveFrameShown', lambda a: a[0] == path, mark, 'a live frame')
            frame = next(m for m in reversed(b.client.signals(member='LiveFrameShown'))
                         if m.seq >= mark)
            samples.append((frame.time - shown) * 1000)
        b.client.call(path, 'Cancel')
        b.client.wait_finished(path)
        return summary(samples), None
    finally:
        sim.terminate()
        sim.wait(10)
        sim.stdout.close()


def main():
    reason = skip_reason()
    if reason:
        sys.stderr.write('skipped: %s\n' % reason)
        return 77
    # Wall clock against the harness' monotonic arrival times.
    offset = time.time() - time.monotonic()
    spawn = time.time()
    Bench.setUpClass()
    b = Bench()
    b.setUp()
    result = {'quick': QUICK}
    try:
        first = b.hook_signal('FirstFrame', what='the first frame')
        result['startup_ms'] = round((first.args[0] / 1e6 - spawn) * 1000, 1)
        result['rss_kb'] = {'idle': rss_kb(b.app.pid)}

        paths = [b.client.start_execution('bench/quick.yaml') for _ in range(RUNS)]
        for p in paths:
            b.client.wait_finished(p)
        b.hook_signal('ExecutionsShown', lambda a: a[0] >= RUNS,
                      what='the Runs page to list %d runs' % RUNS)
        b.hook('ShowPage', 'executions')
        b.client.wait_for(lambda: b.hook('CountRows', 'executions') >= RUNS)
        result['rss_kb']['runs_listed'] = RUNS
        result['rss_kb']['with_runs'] = rss_kb(b.app.pid)

        path = b.client.start_execution('bench/slow.yaml')
        b.runs.append((b.client, path))
        b.client.wait_step(path, 'wait', 'running')
        b.hook('OpenRun', path)
        b.wait_shown(path, 'running')
        label, painted = [], []
        for _ in range(CYCLES):
            for method, status in (('Pause', 'paused'), ('Resume', 'running')):
                mark = b.mark()
                b.client.call(path, method)
                changed = b.client.wait_for(
                    lambda s=status: next((m for m in b.client.signals(path, 'StatusChanged')
                                           if m.seq >= mark and m.args[0] == s), None),
                    what='StatusChanged %s' % status)
                arrived = changed.time + offset
                shown = b.hook_signal('StatusShown', lambda a, s=status: a[0] == path and a[1] == s,
                                      mark)
                paint = b.hook_signal('StatusPainted',
                                      lambda a, s=status: a[0] == path and a[1] == s, mark)
                label.append((shown.args[2] / 1e6 - arrived) * 1000)
                painted.append((paint.args[2] / 1e6 - arrived) * 1000)
        result['status_latency_ms'] = {'label': summary(label), 'painted': summary(painted)}
        b.client.call(path, 'Cancel')
        b.client.wait_finished(path)
        result['live_view_ms'], reason = live_view_ms(b)
        if reason:
            result['live_view_skipped'] = reason
    finally:
        b.tearDown()
        Bench.tearDownClass()
    load = os.getloadavg()
    result['loadavg'] = [round(x, 2) for x in load]
    print(json.dumps(result, indent=2))
    for key in ('startup_ms', 'rss_kb', 'status_latency_ms'):
        if key not in result:
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
