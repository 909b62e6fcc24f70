#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds a release tree (build-bench/ at the top of the source tree unless
# BUILD_DIR says otherwise) and runs itk-bench; arguments go to itk-bench,
# e.g. ./tests/bench/run-bench.sh --only=cancel --runs=500
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$src/build-bench}

if [ ! -f "$build/build.ninja" ]; then
        meson setup "$build" "$src" --buildtype=release >&2
fi
ninja -C "$build" tests/bench/itk-bench daemon/ignition-toolkitd daemon/itk-step-gateway.so \
        tests/gateway-sim/itk-gateway-sim >&2

# The daemon finds its step modules in the build tree.
export ITK_MODULE_DIR="$build/daemon"
exec "$build/tests/bench/itk-bench" \
        --daemon="$build/daemon/ignition-toolkitd" \
        --dbus-config="$src/tests/integration/dbus-test.conf" \
        --gateway-sim="$build/tests/gateway-sim/itk-gateway-sim" \
        --health-playbook="$src/data/playbooks/gateway/health_check.yaml" \
        "$@"
