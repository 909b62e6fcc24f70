#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The hardened systemd unit keeps its exposure low while letting bubblewrap work.

`systemd-analyze security --offline=true` rates data/ignition-toolkit.service.in
(rendered to a temporary file). The unit must allow user, pid and mount
namespaces, four system calls and an unreachable but fully visible procfs for
the script sandbox (see the unit's comment and docs/sandbox.md), setpriority for
children to leave the daemon's Nice=, and stay at 2.1 or lower. Exits 77 (skipped) where systemd-analyze
lacks --offline (systemd < 252)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

from itk_harness import source_root

# "OK" in systemd-analyze's words; test_install.py checks the installed unit too.
# 2.0 with the script sandbox; 2.1 since setpriority is allowed back (0.2 for
# "@resources allowed"), which lets the daemon's children leave its Nice=-5.
MAX_EXPOSURE = 2.1


def main():
    analyze = shutil.which('systemd-analyze')
    if analyze is None:
        print('SKIP: no systemd-analyze')
        return 77
    template = os.path.join(source_root(), 'data', 'ignition-toolkit.service.in')
    with open(template) as f:
        text = f.read().replace('@libexecdir@', '/usr/libexec')
    with tempfile.TemporaryDirectory(prefix='itk-unit-') as tmp:
        unit = os.path.join(tmp, 'ignition-toolkit.service')
        with open(unit, 'w') as f:
            f.write(text)
        r = subprocess.run([analyze, 'security', '--offline=true', '--no-pager', unit],
                           capture_output=True, text=True)
    out = r.stdout + r.stderr
    if 'offline' in out and ('unrecognized' in out or 'Unknown option' in out):
        print('SKIP: systemd-analyze security has no --offline here')
        return 77
    m = re.search(r'Overall exposure level for \S+: (\d+\.\d+)', out)
    if m is None:
        print(out)
        print('FAIL: no exposure level in the output')
        return 1
    exposure = float(m.group(1))
    print('exposure %.1f (at most %.1f)' % (exposure, MAX_EXPOSURE))
    # What the sandbox needs is there, and nothing more.
    for needed in ('RestrictNamespaces=user pid mnt',
                   'SystemCallFilter=mount umount2 pivot_root capset',
                   'SystemCallFilter=setpriority', 'Nice=-5',
                   'BindPaths=/proc:/run/ignition-toolkit-proc/proc:norbind',
                   'TemporaryFileSystem=/run/ignition-toolkit-proc:mode=0700',
                   'ProtectKernelTunables=yes', 'ProtectKernelLogs=yes',
                   'NoNewPrivileges=yes', 'CapabilityBoundingSet=\n'):
        if needed not in text:
            print('FAIL: the unit lacks %r' % needed)
            return 1
    if exposure > MAX_EXPOSURE:
        print(out)
        print('FAIL: exposure %.1f > %.1f' % (exposure, MAX_EXPOSURE))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
