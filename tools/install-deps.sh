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
)
if [ "${1:-}" = "--tests" ]; then
        packages+=(clang-format python3-dbusmock procps)
fi

missing=()
for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
        exit 0
fi
echo "Installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
