#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Scripts run confined (DESIGN.md §5, docs/sandbox.md): they cannot read the daemon's
state directory, and nothing of theirs outlives the daemon, even after SIGKILL."""

import os
import random
import subprocess
import time
import unittest

from gi.repository import GLib

from itk_harness import (TIMEOUT, DaemonTestCase, main, playbook, python_step, shell_step)

PASSWORD = 'sandbox-pw-%08x' % random.getrandbits(32)


def bwrap_error():
    """Why bubblewrap cannot work here, or None."""
    try:
        r = subprocess.run(['bwrap', '--unshare-pid', '--die-with-parent', '--ro-bind', '/', '/',
                            '--dev', '/dev', '--proc', '/proc', 'true'],
                           capture_output=True, text=True, timeout=30)
    except OSError as e:
        return str(e)
    return None if r.returncode == 0 else r.stderr.strip() or 'bwrap failed'


def marked_processes(marker):
    """Live processes whose command line holds @marker; reaps the ones we inherited."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
    found = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % name, 'rb') as f:
                cmdline = f.read().replace(b'\0', b' ').decode(errors='replace')
            with open('/proc/%s/stat' % name) as f:
                state = f.read().rsplit(')', 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state not in ('Z', 'X'):
            found.append(int(name))
    return found


def scratch():
    # Not under /tmp: the sandbox's private /tmp would hide the state directory
    # anyway, and the test would prove nothing about hiding it.
    return os.environ.get('ITK_TEST_SCRATCH') or os.getcwd()


class SandboxTestCase(DaemonTestCase):
    workdir_parent = scratch()

    @classmethod
    def setUpClass(cls):
        why = bwrap_error()
        if why is not None and cls.sandbox.get('Bubblewrap') is None:
            raise unittest.SkipTest('bubblewrap cannot work here: ' + why)
        super().setUpClass()

    def log_text(self, path):
        return '\n'.join(m.args[3] for m in self.client.signals(path, 'Log'))


class TestConfined(SandboxTestCase):
    sandbox = {}

    def test_started_confined(self):
        self.client.wait_for(lambda: 'confined by bubblewrap' in self.daemon.stderr_text(),
                             what='the journal line about the sandbox')

    def test_script_cannot_read_credentials(self):
        self.client.manager('SetCredential', GLib.Variant('(sa{sv})', ('gw', {
            'username': GLib.Variant('s', 'admin'),
            'password': GLib.Variant('s', PASSWORD)})))
        # The store holds the secret where a script would look for it.
        found_on_host = subprocess.run(['grep', '-r', '-l', PASSWORD, self.daemon.state_dir],
                                       capture_output=True, text=True).stdout
        self.assertNotEqual(found_on_host.strip(), '')
        shell = ('grep -r %s %s && echo LEAKED; ls -a %s; echo SHELL-DONE'
                 % (PASSWORD, self.daemon.state_dir, self.daemon.state_dir))
        python = ('import os\n'
                  'for root, dirs, files in os.walk(%r):\n'
                  '    for name in files:\n'
                  '        try:\n'
                  '            data = open(os.path.join(root, name), errors="replace").read()\n'
                  '        except OSError:\n'
                  '            continue\n'
                  '        if %r in data:\n'
                  '            print("LEAKED", name)\n'
                  'print("PYTHON-DONE")\n' % (self.daemon.state_dir, PASSWORD))
        path = self.start(playbook(shell_step('sh', shell), python_step('py', python)))
        fin = self.client.wait_finished(path)
        self.assertEqual(fin.args[0], 'completed', self.client.describe(path))
        text = self.log_text(path)
        self.assertIn('SHELL-DONE', text)
        self.assertIn('PYTHON-DONE', text)
        self.assertNotIn('LEAKED', text)
        self.assertNotIn(PASSWORD, text)
        # Only its own run folder is there, not the store or the history.
        self.assertNotIn('credentials', text)

    def test_kill9_daemon_kills_scripts(self):
        marker = '1000.%d' % random.randint(1, 999999)
        command = ("setsid sh -c 'exec sleep %s' &\n"
                   "sh -c 'sleep %s &'\n"
                   "sleep %s &\n"
                   "echo READY\n"
                   "wait\n" % (marker, marker, marker))
        path = self.start(playbook(shell_step('escape', command)))
        self.client.wait_log(path, 'READY')
        self.client.wait_for(lambda: len(marked_processes(marker)) == 3,
                             what='the script processes', path=path)
        self.daemon.kill9()
        # --die-with-parent ends bwrap and with it the PID namespace; the kernel
        # reaps it at once, a test may wait a little.
        deadline = time.monotonic() + 5
        while marked_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.02)
        survivors = marked_processes(marker)
        self.client.wait_name(False)
        self.daemon.start(self.client)
        self.assertEqual(survivors, [], 'script processes outlived the daemon')


class TestMissingBubblewrap(SandboxTestCase):
    sandbox = {'Bubblewrap': '/nonexistent/bwrap'}

    def test_scripts_fail_clearly(self):
        self.client.wait_for(lambda: 'scripts cannot be confined' in self.daemon.stderr_text(),
                             what='the journal warning at start')
        for s in (shell_step('sh', 'echo RAN'), python_step('py', 'print("RAN")')):
            path = self.start(playbook(s))
            fin = self.client.wait_finished(path)
            self.assertEqual(fin.args[0], 'failed')
            self.assertIn('bubblewrap', fin.args[1])
            self.assertIn('Enabled=false', fin.args[1])
            self.assertNotIn('RAN', self.log_text(path))


class TestDisabled(SandboxTestCase):
    sandbox = {'Enabled': 'false', 'Bubblewrap': '/nonexistent/bwrap'}

    def test_unconfined_and_warned(self):
        self.client.wait_for(
            lambda: 'Enabled=false: scripts run unconfined' in self.daemon.stderr_text(),
            what='the journal warning at start')
        path = self.start(playbook(shell_step('sh', 'echo RAN')))
        fin = self.client.wait_finished(path, TIMEOUT)
        self.assertEqual(fin.args[0], 'completed', self.client.describe(path))
        self.assertIn('RAN', self.log_text(path))


if __name__ == '__main__':
    main()
