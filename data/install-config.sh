#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# install-config.sh SOURCE TARGET: installs SOURCE as DESTDIR/TARGET unless
# that file exists already, so reinstalling never overwrites a configuration
# the administrator edited (a distribution package marks it a conffile).
set -eu
source="$1"
target="${DESTDIR:-}$2"
if [ -e "$target" ] || [ -L "$target" ]; then
        echo "Keeping existing $target"
        exit 0
fi
install -D -m 0644 "$source" "$target"
echo "Installing $source to $target"
