#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds a release tree (build-bench/ at the top of the source tree unless
# BUILD_DIR says otherwise) and runs the bridge's WebSocket fan-out benchmark
# with 500 clients, one JSON object per line:
#   1. a fast playbook: 30 utility.log steps as fast as the daemon runs them,
#      the size of the largest of the old tool's playbooks, 10 runs (the target);
#   2. a paced run: 30 steps 100 ms apart, 3 runs;
#   3. a stress burst: 200 log steps, 3 runs, several times the event rate
#      any real playbook makes;
#   4. the bridge's memory under abuse: 1,000 oversized bodies and 5,000 slow
#      connections (bench-bridge-hardening.py; the arguments are not passed).
# Arguments go to every run, e.g. ./tests/bench/run-bench-bridge.sh --clients=100
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$src/build-bench}

if [ ! -f "$build/build.ninja" ]; then
        meson setup "$build" "$src" --buildtype=release >&2
fi
ninja -C "$build" client/bridge/itk-bench-bridge daemon/ignition-toolkitd \
        client/bridge/ignition-toolkit-bridge >&2

export ITK_MODULE_DIR="$build/daemon"
bench() {
        "$build/client/bridge/itk-bench-bridge" \
                --daemon="$build/daemon/ignition-toolkitd" \
                --bridge="$build/client/bridge/ignition-toolkit-bridge" \
                --dbus-config="$src/tests/integration/dbus-test.conf" "$@"
}
bench --steps=30 --runs=10 "$@"
bench --steps=30 --pace-ms=100 --runs=3 "$@"
bench --steps=200 --runs=3 "$@"
python3 "$src/tests/bench/bench-bridge-hardening.py" \
        --bridge="$build/client/bridge/ignition-toolkit-bridge" \
        --dbus-config="$src/tests/integration/dbus-test.conf"
