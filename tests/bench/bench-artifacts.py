#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Artifacts benchmark: a large file of a run handed over as a descriptor
(Manager.OpenHistoryArtifact read to its end), copied by `ignitionctl artifact`
(which also hashes it) and streamed by the bridge; and how much the bridge's
peak RSS grows while it streams (it must not hold the file). Prints JSON.

  bench-artifacts.py [--quick] [--size-mib N]

Needs the environment of the integration tests (ITK_DAEMON, ITK_BRIDGE,
ITK_IGNITIONCTL, ITK_GATEWAY_SIM, ITK_DBUS_CONFIG; PYTHONPATH with
tests/integration). --quick (the meson test) uses 32 MiB, checks that every
number is there and that the bridge's peak RSS grew by less than half the file
(it streams). ASan's quarantine of freed memory is turned off for the bridge,
which would otherwise count every freed chunk."""

import argparse
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import itk_harness as h
from itk_harness import GLib

import test_artifacts as ta
import test_bridge
import test_ignitionctl


def peak_rss_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1])
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--size-mib', type=int, default=None)
    args = parser.parse_args()
    size_mib = args.size_mib or (32 if args.quick else 256)
    os.environ['ASAN_OPTIONS'] = ':'.join(filter(None, [os.environ.get('ASAN_OPTIONS'),
                                                        'quarantine_size_mb=0']))

    workdir = tempfile.mkdtemp(prefix='itk-bench-artifacts-')
    bus = client = daemon = sim = bridge = None
    try:
        bus = h.Bus(workdir)
        client = h.Client(bus.address)
        daemon = h.Daemon(workdir, bus.address, sandbox={'Enabled': 'false'})
        daemon.start(client)
        sim, url = ta.start_sim(workdir)
        bridge = test_bridge.Bridge(workdir, bus.address)

        source = h.playbook(h.step('backup', 'gateway.backup',
                                   {'gateway_url': url, 'token': ta.TOKEN, 'path': 'big.gwbk'}))
        path = client.start_execution('bench', {}, {'source': source})
        status, error = client.wait_finished(path, 60).args[:2]
        if status != 'completed':
            raise RuntimeError('the backup run ended %s: %s' % (status, error))
        run_id = client.get_prop(path, 'Id')
        file = os.path.join(daemon.state_dir, 'runs', path.rsplit('/', 1)[1], 'big.gwbk')
        block = os.urandom(1024 * 1024)
        with open(file, 'wb') as f:
            for _ in range(size_mib):
                f.write(block)
        size = size_mib * 1024 * 1024
        result = {'size_mib': size_mib}

        # The descriptor, read here to its end.
        start = time.monotonic()
        fd = ta.open_fd(client, h.MANAGER_PATH, h.MANAGER_IFACE, 'OpenHistoryArtifact',
                        GLib.Variant('(ss)', (run_id, 'big.gwbk')))
        got = 0
        while True:
            chunk = os.read(fd, 1024 * 1024)
            if not chunk:
                break
            got += len(chunk)
        os.close(fd)
        elapsed = time.monotonic() - start
        assert got == size, (got, size)
        result['dbus_fd_read_mib_s'] = round(size_mib / elapsed, 1)

        # ignitionctl: copies and hashes (the listed SHA-256 is the old file's,
        # so it reports a mismatch: only the copy speed counts here).
        out = os.path.join(workdir, 'copy')
        start = time.monotonic()
        subprocess.run([test_ignitionctl.ignitionctl_path(), '--bus-address=' + bus.address,
                        'artifact', run_id, 'big.gwbk', '-o', out], capture_output=True,
                       env=test_ignitionctl.ctl_env(), timeout=600)
        elapsed = time.monotonic() - start
        result['ignitionctl_copy_and_hash_mib_s'] = round(size_mib / elapsed, 1)

        # The bridge, streaming; its peak RSS before and after.
        before = peak_rss_kib(bridge.proc.pid)
        conn = http.client.HTTPConnection('127.0.0.1', bridge.port, timeout=600)
        start = time.monotonic()
        conn.request('GET', '/api/executions/%s/artifacts/big.gwbk' % run_id,
                     headers={'Authorization': 'Bearer ' + bridge.token})
        resp = conn.getresponse()
        digest = hashlib.sha256()
        got = 0
        while True:
            chunk = resp.read(1024 * 1024)
            if not chunk:
                break
            digest.update(chunk)
            got += len(chunk)
        elapsed = time.monotonic() - start
        conn.close()
        assert resp.status == 200 and got == size, (resp.status, got, size)
        result['bridge_stream_mib_s'] = round(size_mib / elapsed, 1)
        result['bridge_peak_rss_growth_mib'] = round(
            (peak_rss_kib(bridge.proc.pid) - before) / 1024, 1)
        result['load_average'] = os.getloadavg()[0]
        print(json.dumps({'artifacts': result}, indent=2))
        if args.quick:
            missing = [k for k in ('dbus_fd_read_mib_s', 'ignitionctl_copy_and_hash_mib_s',
                                   'bridge_stream_mib_s') if not result.get(k)]
            if missing:
                print('missing numbers: %s' % ', '.join(missing), file=sys.stderr)
                return 1
            if result['bridge_peak_rss_growth_mib'] >= size_mib / 2:
                print('the bridge held the file in memory', file=sys.stderr)
                return 1
        return 0
    finally:
        if bridge is not None:
            bridge.stop()
        if sim is not None:
            ta.stop_sim(sim)
        if client is not None:
            client.close()
        if daemon is not None:
            daemon.stop()
        if bus is not None:
            bus.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
