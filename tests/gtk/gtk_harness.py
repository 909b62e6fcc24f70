# SPDX-License-Identifier: LGPL-2.1-or-later
"""Runs ignition-toolkit-gtk under Xvfb against the daemon on a private bus.

The app runs with ITK_GTK_TEST=1, which exports org.ignition.Toolkit.GtkTest
on the daemon's bus (client/gtk/src/itk-test-hook.c): its methods click the
real widgets and report what they show; its signals say when the window shows
something new. The harness client records those signals like the daemon's,
so tests wait for events, never for time.
"""

import os
import pwd
import shutil
import subprocess
import sys
from unittest import SkipTest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'integration'))

from itk_harness import (  # noqa: E402,F401
    TIMEOUT, DaemonTestCase, GLib, _die_with_parent, _stop_process, log_step, playbook,
    sleep_step)

HOOK_NAME = 'org.ignition.Toolkit.GtkTest'
HOOK_PATH = '/org/ignition/Toolkit/GtkTest'


def skip_reason():
    """Why the GTK tests cannot run here, or None."""
    if not os.environ.get('ITK_GTK_APP') or not os.access(os.environ['ITK_GTK_APP'], os.X_OK):
        return 'ITK_GTK_APP is not set to a built ignition-toolkit-gtk'
    if shutil.which('Xvfb') is None:
        return 'Xvfb is not installed (apt-get install xvfb)'
    return None


class Xvfb:
    """A private X server; -displayfd picks a free display number."""

    def __init__(self, workdir):
        r, w = os.pipe()
        self.log = open(os.path.join(workdir, 'xvfb.log'), 'ab')
        self.proc = subprocess.Popen(
            ['Xvfb', '-displayfd', str(w), '-screen', '0', '1280x900x24', '-nolisten', 'tcp',
             '-noreset'], pass_fds=(w,), stdout=self.log, stderr=self.log,
            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        os.close(w)
        with os.fdopen(r) as f:
            number = f.readline().strip()
        if not number:
            _stop_process(self.proc)
            raise RuntimeError('Xvfb did not start')
        self.display = ':' + number

    def stop(self):
        _stop_process(self.proc)
        self.log.close()


class GtkAppTestCase(DaemonTestCase):
    """A daemon, an Xvfb and the app, one each per class."""

    # The user the app runs as (None: ours). The daemon runs as root here, and
    # root is always authorized; another user, without polkit on the test bus,
    # passes only if in [Authorization] Group= (default ignition-toolkit).
    app_user = None

    @classmethod
    def setUpClass(cls):
        reason = skip_reason()
        if reason:
            raise SkipTest(reason)
        super().setUpClass()
        cls.xvfb = None
        cls.app = None
        try:
            cls.xvfb = Xvfb(cls.workdir)
            cls.start_app()
        except BaseException:
            cls.stop_app()
            super().tearDownClass()
            raise

    @classmethod
    def app_env(cls):
        env = dict(os.environ)
        home = os.path.join(cls.workdir, 'home')
        runtime = os.path.join(cls.workdir, 'runtime')
        os.makedirs(home, exist_ok=True)
        os.makedirs(runtime, mode=0o700, exist_ok=True)
        if cls.app_user is not None:
            user = pwd.getpwnam(cls.app_user)
            os.chmod(cls.workdir, 0o711)  # reachable, not listable
            for d in (home, runtime):
                os.chown(d, user.pw_uid, user.pw_gid)
        env.update({
            'DISPLAY': cls.xvfb.display, 'GDK_BACKEND': 'x11', 'GSK_RENDERER': 'cairo',
            'ITK_GTK_TEST': '1', 'NO_AT_BRIDGE': '1', 'GTK_A11Y': 'none',
            'GSETTINGS_BACKEND': 'memory', 'HOME': home, 'XDG_RUNTIME_DIR': runtime,
            'XDG_CONFIG_HOME': os.path.join(home, '.config'),
            # The app's own GApplication goes on the test bus, not the session's.
            'DBUS_SESSION_BUS_ADDRESS': cls.bus.address,
            # GTK and fontconfig keep caches for the process' life: not leaks.
            'ASAN_OPTIONS': 'detect_leaks=0',
            'LANGUAGE': 'C', 'LC_ALL': 'C.UTF-8',
        })
        env.pop('WAYLAND_DISPLAY', None)
        return env

    @classmethod
    def start_app(cls):
        # Before the app starts: its first signals must not be missed.
        cls.client.add_match("type='signal',interface='%s'" % HOOK_NAME)
        cls.app_log_path = os.path.join(cls.workdir, 'app.log')
        log = open(cls.app_log_path, 'ab')
        preexec = _die_with_parent
        if cls.app_user is not None:
            user = pwd.getpwnam(cls.app_user)

            def preexec():
                _die_with_parent()
                os.setgroups([])
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)
        cls.app = subprocess.Popen(
            [os.environ['ITK_GTK_APP'], '--bus-address=' + cls.bus.address],
            env=cls.app_env(), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            preexec_fn=preexec)
        log.close()

        def ready():
            if cls.app.poll() is not None:
                raise AssertionError('ignition-toolkit-gtk exited with %s:\n%s' %
                                     (cls.app.returncode, cls.app_log()))
            return cls.client.signals(HOOK_PATH, 'PlaybooksLoaded')
        cls.client.wait_for(ready, TIMEOUT, 'the app to load the playbooks')

    @classmethod
    def app_log(cls):
        try:
            with open(cls.app_log_path, errors='replace') as f:
                return f.read()[-8000:]
        except OSError:
            return ''

    @classmethod
    def stop_app(cls):
        if getattr(cls, 'app', None) is not None:
            _stop_process(cls.app)
            cls.app = None
        if getattr(cls, 'xvfb', None) is not None:
            cls.xvfb.stop()
            cls.xvfb = None

    @classmethod
    def tearDownClass(cls):
        crashed = cls.app is not None and cls.app.poll() not in (None, 0)
        log = cls.app_log()
        cls.stop_app()
        super().tearDownClass()
        for pattern in ('ERROR: AddressSanitizer', 'runtime error:', 'CRITICAL', '-WARNING'):
            if pattern in log:
                raise AssertionError('ignition-toolkit-gtk reported %r:\n%s' % (pattern, log))
        if crashed:
            raise AssertionError('ignition-toolkit-gtk crashed:\n%s' % log)

    # --- the hook ---

    def hook(self, method, *args, signature=None):
        variant = None
        if args:
            variant = GLib.Variant(signature or '(%s)' % ('s' * len(args)), tuple(args))
        return self.client.call_full(HOOK_NAME, HOOK_PATH, HOOK_NAME, method, variant)

    def hook_signal(self, member, match=None, after=0, what=None):
        def find():
            for m in self.client.signals(HOOK_PATH, member):
                if m.seq >= after and (match is None or match(m.args)):
                    return m
            if self.app.poll() is not None:
                raise AssertionError('the app exited:\n%s' % self.app_log())
            return None
        return self.client.wait_for(find, TIMEOUT, what or member)

    def mark(self):
        """The index the next recorded message gets: wait for what comes after it."""
        return len(self.client.messages())

    def wait_shown(self, key, status, after=0):
        """Waits until the run window for @key shows @status (its label changed to it)."""
        self.hook_signal('StatusShown', lambda a: a[0] == key and a[1] == status, after,
                         'the run window of %s to show %s' % (key, status))
        return self.hook('DescribeRun', key)


