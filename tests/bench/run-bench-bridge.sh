#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds a release tree (build-bench/ at the top of the source tree unless
# BUILD_DIR says otherwise) and runs the bridge's WebSocket fan-out benchmark:
# a burst (200 utility.log steps, as fast as the daemon runs them) and a paced
# run (30 steps 100 ms apart), 500 clients each. One JSON object per line.
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
bench "$@"
bench --pace-ms=100 --steps=30 "$@"
