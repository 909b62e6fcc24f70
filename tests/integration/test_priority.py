#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The daemon may run at a negative nice value (the unit's Nice=-5) so that its
main loop is scheduled ahead of ordinary jobs; what it starts must not inherit
that: script steps run at nice 0, confined by bubblewrap or not."""

import os
import subprocess
import sys
import unittest

from itk_harness import DaemonTestCase, main, playbook, python_step, shell_step

DAEMON_NICE = -5


def cannot_lower_nice():
    """Why this process cannot start a child at a negative nice value, or None."""
    try:
        r = subprocess.run(['nice', '-n', str(DAEMON_NICE), 'nice'], capture_output=True,
                           text=True, timeout=30)
    except OSError as e:
        return str(e)
    if r.returncode != 0 or r.stdout.strip() != str(DAEMON_NICE):
        return 'nice -n %d gives %r (%s)' % (DAEMON_NICE, r.stdout.strip(),
                                             r.stderr.strip() or 'not root?')
    return None


def bwrap_error():
    try:
        r = subprocess.run(['bwrap', '--unshare-pid', '--die-with-parent', '--ro-bind', '/', '/',
                            '--dev', '/dev', '--proc', '/proc', 'true'],
                           capture_output=True, text=True, timeout=30)
    except OSError as e:
        return str(e)
    return None if r.returncode == 0 else r.stderr.strip() or 'bwrap failed'


def stat_nice(text):
    """Field 19 (nice) of a /proc/PID/stat line."""
    return int(text.rsplit(')', 1)[1].split()[16])


class NiceDaemon:
    """Mixin: the class's daemon starts at DAEMON_NICE."""

    @classmethod
    def setUpClass(cls):
        # The harness runs ITK_DAEMON_WRAPPER before the daemon: as systemd's
        # Nice= would, GNU nice sets the value and execs the daemon.
        cls._saved_wrapper = os.environ.get('ITK_DAEMON_WRAPPER')
        os.environ['ITK_DAEMON_WRAPPER'] = ('nice -n %d %s' % (
            DAEMON_NICE, cls._saved_wrapper or '')).strip()
        try:
            super().setUpClass()
        finally:
            if cls._saved_wrapper is None:
                del os.environ['ITK_DAEMON_WRAPPER']
            else:
                os.environ['ITK_DAEMON_WRAPPER'] = cls._saved_wrapper

    def log_text(self, path):
        return '\n'.join(m.args[3] for m in self.client.signals(path, 'Log'))

    def run_and_read(self, step):
        path = self.start(playbook(step))
        fin = self.client.wait_finished(path)
        self.assertEqual(fin.args[0], 'completed', self.client.describe(path))
        return self.log_text(path)

    def test_daemon_runs_at_negative_nice(self):
        with open('/proc/%d/stat' % self.daemon.proc.pid) as f:
            self.assertEqual(stat_nice(f.read()), DAEMON_NICE)
        self.client.wait_for(
            lambda: 'the processes it starts run at nice 0' in self.daemon.stderr_text(),
            what='the journal line about the nice value')

    def test_shell_step_runs_at_nice_0(self):
        text = self.run_and_read(shell_step('s', 'echo "stat: $(cat /proc/self/stat)"'))
        line = [x for x in text.splitlines() if x.startswith('stat: ')]
        self.assertEqual(len(line), 1, text)
        self.assertEqual(stat_nice(line[0]), 0, line[0])

    def test_python_step_runs_at_nice_0(self):
        text = self.run_and_read(python_step('p', 'import os\nprint("nice:", os.nice(0))'))
        self.assertIn('nice: 0', text.splitlines(), text)


class TestUnconfined(NiceDaemon, DaemonTestCase):
    pass


class TestConfined(NiceDaemon, DaemonTestCase):
    sandbox = {}

    @classmethod
    def setUpClass(cls):
        why = bwrap_error()
        if why is not None:
            raise unittest.SkipTest('bubblewrap cannot work here: ' + why)
        super().setUpClass()


if __name__ == '__main__':
    why = cannot_lower_nice()
    if why is not None:
        print('SKIP: cannot start the daemon at nice %d: %s' % (DAEMON_NICE, why),
              file=sys.stderr)
        sys.exit(77)
    main()
