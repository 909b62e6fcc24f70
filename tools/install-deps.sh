#!/usr/bin/env bash
# Installs the Debian 12 packages the build, the demo and the tests need.
# Usage: tools/install-deps.sh [--tests]
set -euo pipefail

sudo=""
if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
fi

packages=(
        build-essential meson ninja-build pkg-config
        libsystemd-dev libglib2.0-dev libglib2.0-bin libjson-glib-dev libyaml-dev
        libsoup-3.0-dev libsqlite3-dev
        dbus dbus-daemon python3 python3-gi
        bubblewrap
        # The browser.* steps drive headless Chromium (the demo's playbooks too).
        chromium
        # ignition-toolkit-gtk (-Dgtk=auto): GTK 4, libadwaita, gettext, and the
        # validators of its desktop file and AppStream metainfo.
        libgtk-4-dev libadwaita-1-dev gettext appstream desktop-file-utils
)
if [ "${1:-}" = "--tests" ]; then
        packages+=(clang-format python3-dbusmock procps)
        # The old tool's gateway playbooks poll the gateway with httpx
        # (tests/integration/test_compat_runs.py).
        packages+=(python3-httpx)
        # tools/run-fuzz.sh: libFuzzer and the sanitizer runtimes for clang.
        packages+=(clang libclang-rt-14-dev)
        # tests/gtk: the GTK client under a private X server.
        packages+=(xvfb xauth)
fi

# The web UI's end-to-end tests: playwright-core from npm, pinned by the lock file.
install_e2e_modules() {
        local e2e
        e2e="$(dirname "$0")/../tests/e2e"
        if [ -d "$e2e/node_modules" ]; then
                return
        fi
        if ! command -v npm >/dev/null; then
                # playwright-core needs Node.js >= 20 (Debian 12 has 18): install it yourself.
                echo "npm not found: the web UI's e2e tests will be skipped" >&2
                return
        fi
        (cd "$e2e" && npm ci --no-audit --no-fund)
}

missing=()
for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
        echo "Installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        $sudo apt-get update -q
        $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ "${1:-}" = "--tests" ]; then
        install_e2e_modules
fi
