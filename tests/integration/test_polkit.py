#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Authorization of method calls (DESIGN.md §7) on a private bus.

ignition-toolkitd runs as root, so root callers always pass; the callers
under test are child processes run as `nobody` and `daemon`. Polkit is
python-dbusmock's polkitd template, extended (a template file written by the
test) with actions that need interactive authorization. Without polkit on
the bus, the [Authorization] Group= of toolkit.conf decides.
"""

import grp
import importlib.util
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import unittest

import itk_harness as h
from itk_harness import GLib

ACCESS_DENIED = 'org.freedesktop.DBus.Error.AccessDenied'
INTERACTIVE = 'org.freedesktop.DBus.Error.InteractiveAuthorizationRequired'
RUN = 'org.ignition.toolkit.run-playbook'
SOURCE = 'org.ignition.toolkit.run-source'
VIEW = 'org.ignition.toolkit.view'
CONTROL = 'org.ignition.toolkit.control-execution'
MANAGE = 'org.ignition.toolkit.manage-credentials'

POLKIT_NAME = 'org.freedesktop.PolicyKit1'
POLKIT_PATH = '/org/freedesktop/PolicyKit1/Authority'
MOCK_IFACE = 'org.freedesktop.DBus.Mock'
SECRET = 'Polkit-Test-Secret-93ab'

# The stock polkitd template plus SetInteractive(as): those actions answer
# (authorized=false, challenge=true) unless the AllowUserInteraction flag
# (1) is set, when they are granted; and SetFailing(b): CheckAuthorization
# answers with an error.
TEMPLATE = r'''
import dbus
from dbusmock import MOCK_IFACE
from dbusmock.templates.polkitd import *  # noqa: F401,F403
from dbusmock.templates import polkitd as _stock


def load(mock, parameters):
    _stock.load(mock, parameters)
    mock.interactive = []


@dbus.service.method(MAIN_IFACE, in_signature='(sa{sv})sa{ss}us', out_signature='(bba{ss})',
                     async_callbacks=('ok_cb', '_err_cb'))
def CheckAuthorization(self, subject, action_id, details, flags, cancellation_id, ok_cb,
                       _err_cb):
    if action_id in self.interactive:
        if flags & 1:
            ret = (True, False, {})
        else:
            ret = (False, True, {'polkit.retains_authorization_after_challenge': '1'})
    else:
        ret = (action_id in self.allowed or self.allow_unknown, False, {})
    if getattr(self, 'failing', False):
        raise dbus.exceptions.DBusException('the authority is broken',
                                            name='org.freedesktop.PolicyKit1.Error.Failed')
    # As the stock template: SimulateHang(Actions) holds the answer back.
    if self.simulate_hang or action_id in self.hanging_actions:
        self.hanging_calls.append((ok_cb, ret))
    else:
        ok_cb(ret)


@dbus.service.method(MOCK_IFACE, in_signature='as', out_signature='')
def SetInteractive(self, actions):
    self.interactive = list(actions)


@dbus.service.method(MOCK_IFACE, in_signature='b', out_signature='')
def SetFailing(self, failing):
    self.failing = failing
'''

# Run as another uid: performs each call of argv[1] (JSON list of [path,
# iface, member, python expression of the body or null, interactive]) on
# the bus at argv[2]; prints the unique name and what came back, as JSON.
CHILD = r'''
import json, sys
import gi
gi.require_version('Gio', '2.0')
from gi.repository import Gio, GLib
conn = Gio.DBusConnection.new_for_address_sync(
    sys.argv[2], Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
    | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
out = {'name': conn.get_unique_name(), 'replies': []}
for path, iface, member, body, interactive in json.loads(sys.argv[1]):
    flags = Gio.DBusCallFlags.NONE
    if interactive:
        flags |= Gio.DBusCallFlags.ALLOW_INTERACTIVE_AUTHORIZATION
    args = eval(body, {'GLib': GLib}) if body is not None else None
    try:
        result = conn.call_sync('org.ignition.Toolkit', path, iface, member, args, None, flags,
                                30000, None)
        value = result.unpack() if result is not None else ()
        value = value[0] if len(value) == 1 else (list(value) or None)
        out['replies'].append({'member': member, 'error': None, 'message': '', 'value': value})
    except GLib.Error as e:
        name = Gio.DBusError.get_remote_error(e)
        message = e.message.split(': ', 1)[-1]
        out['replies'].append({'member': member, 'error': name, 'message': message,
                               'value': None})
conn.close_sync(None)
print(json.dumps(out, default=repr))
'''


def need_root():
    if os.geteuid() != 0:
        raise unittest.SkipTest('needs root to run callers as other uids')
    for user in ('nobody', 'daemon'):
        try:
            pwd.getpwnam(user)
        except KeyError:
            raise unittest.SkipTest('no user %s' % user)
    try:
        grp.getgrnam('nogroup')
    except KeyError:
        raise unittest.SkipTest('no group nogroup')


def bus_config():
    return os.path.join(h.source_root(), 'tests', 'integration', 'dbus-polkit-test.conf')


def start_execution(source, label='polkit-test', options=None):
    opts = {'source': source}
    opts.update(options or {})
    body = ('GLib.Variant("(sa{sv}a{sv})", (%r, {}, {%s}))' %
            (label, ', '.join('%r: GLib.Variant("s", %r)' % kv for kv in opts.items())))
    return [h.MANAGER_PATH, h.MANAGER_IFACE, 'StartExecution', body, False]


def start_library(playbook_id):
    body = 'GLib.Variant("(sa{sv}a{sv})", (%r, {}, {}))' % playbook_id
    return [h.MANAGER_PATH, h.MANAGER_IFACE, 'StartExecution', body, False]


def manager_call(member, body=None):
    return [h.MANAGER_PATH, h.MANAGER_IFACE, member, body, False]


def control(path, member, body=None):
    return [path, h.EXECUTION_IFACE, member, body, False]


def set_credential(name, password):
    body = ('GLib.Variant("(sa{sv})", (%r, {"username": GLib.Variant("s", "u"), '
            '"password": GLib.Variant("s", %r)}))' % (name, password))
    return [h.MANAGER_PATH, h.MANAGER_IFACE, 'SetCredential', body, False]


def delete_credential(name):
    return [h.MANAGER_PATH, h.MANAGER_IFACE, 'DeleteCredential',
            'GLib.Variant("(s)", (%r,))' % name, False]


def interactive(call):
    return call[:4] + [True]


LONG_RUN = h.playbook(h.sleep_step('wait', 600), h.log_step('after', 'done'))
QUICK_RUN = h.playbook(h.log_step('a', 'x'))
# The installed library: what run-playbook allows to run.
LIBRARY = {'long.yaml': LONG_RUN, 'quick.yaml': QUICK_RUN}


class AuthorizationTestCase(unittest.TestCase):
    """A private bus, ignition-toolkitd (root) on it, root's recording client."""

    group = None  # [Authorization] Group=

    @classmethod
    def setUpClass(cls):
        need_root()
        cls.workdir = tempfile.mkdtemp(prefix='itk-polkit-')
        cls.bus = cls.client = cls.daemon = None
        try:
            cls.start_bus()
            cls.client = h.Client(cls.address)
            cls.daemon = h.Daemon(cls.workdir, cls.address, library=LIBRARY)
            with open(os.path.join(cls.daemon.config_dir, 'toolkit.conf'), 'a') as f:
                f.write('[Authorization]\nGroup=%s\n' % (cls.group or ''))
            cls.daemon.start(cls.client)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_bus(cls):
        # Every uid must reach the socket: a 0755 directory, umask 0.
        os.chmod(cls.workdir, 0o755)
        cls.address = 'unix:path=' + os.path.join(cls.workdir, 'bus')
        log = open(os.path.join(cls.workdir, 'dbus-daemon.log'), 'ab')
        cls.bus = subprocess.Popen(
            ['dbus-daemon', '--config-file=' + bus_config(), '--address=' + cls.address,
             '--print-address=1', '--nofork'],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, umask=0,
            preexec_fn=h._die_with_parent)
        log.close()
        if not cls.bus.stdout.readline().strip():
            raise RuntimeError('dbus-daemon did not start with %s' % bus_config())

    @classmethod
    def tearDownClass(cls):
        if cls.client is not None:
            cls.client.close()
        if cls.daemon is not None:
            cls.daemon.stop()
        if cls.bus is not None:
            h._stop_process(cls.bus)
            cls.bus.stdout.close()
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        stderr = cls.daemon.stderr_text() if cls.daemon is not None else ''
        if os.environ.get('ITK_KEEP_TMP'):
            print('kept %s' % cls.workdir)
        else:
            shutil.rmtree(cls.workdir, ignore_errors=True)
        # Under ASan/UBSan a report is a failure even if every call went well.
        found = [r for r in getattr(h, 'SANITIZER_REPORTS', ()) if r in stderr]
        if found:
            raise AssertionError('ignition-toolkitd reported %s:\n%s' %
                                 ('; '.join(found), stderr[-8000:]))

    def tearDown(self):
        # Leave no live run behind for the next test (root may always cancel).
        for path, _, _, _, _, _ in self.client.manager('ListExecutions'):
            if self.client.get_prop(path, 'Status') not in h.TERMINAL:
                try:
                    self.client.call(path, 'Cancel')
                except GLib.Error:
                    pass

    def call_as(self, user, calls, group=None, extra_groups=()):
        """Runs @calls as @user (primary group @group or the user's own)."""
        pw = pwd.getpwnam(user)
        gid = grp.getgrnam(group).gr_gid if group else pw.pw_gid
        result = subprocess.run(
            [h.PYTHON, '-c', CHILD, json.dumps(calls), self.address],
            user=pw.pw_uid, group=gid,
            extra_groups=[grp.getgrnam(g).gr_gid for g in extra_groups], cwd='/',
            env={'PATH': '/usr/bin:/bin', 'LANG': 'C.UTF-8'},
            capture_output=True, text=True, timeout=h.TIMEOUT * 2)
        if result.returncode != 0:
            raise AssertionError('client as %s failed: %s' % (user, result.stderr))
        return json.loads(result.stdout)

    def call_one(self, user, call, **kwargs):
        out = self.call_as(user, [call], **kwargs)
        return out['replies'][0], out['name']

    def assertAllowed(self, reply):
        self.assertIsNone(reply['error'], 'refused %s: %r' % (reply['member'], reply))
        return reply['value']

    def assertRefused(self, reply, error=ACCESS_DENIED, action=None):
        self.assertEqual(reply['error'], error, reply)
        if action is not None:
            self.assertIn(action, reply['message'])

    def start_as(self, user, playbook_id='long.yaml', **kwargs):
        reply, _ = self.call_one(user, start_library(playbook_id), **kwargs)
        path = self.assertAllowed(reply)
        self.assertTrue(path.startswith(h.EXECUTION_PREFIX), path)
        return path

    def executions(self):
        return [e[0] for e in self.client.manager('ListExecutions')]


class TestPolkit(AuthorizationTestCase):
    """polkit on the bus decides for every caller but root (the daemon's user)."""

    @classmethod
    def setUpClass(cls):
        # python-dbusmock and dbus-python, which it runs on.
        if not all(importlib.util.find_spec(m) for m in ('dbus', 'dbusmock')):
            raise unittest.SkipTest('python3-dbusmock is not installed '
                                    '(tools/install-deps.sh --tests)')
        super().setUpClass()
        cls.mock = None
        try:
            cls.template = os.path.join(cls.workdir, 'polkitd_interactive.py')
            with open(cls.template, 'w') as f:
                f.write(TEMPLATE)
            env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=cls.address)
            cls.mock_log = open(os.path.join(cls.workdir, 'polkitd.log'), 'ab')
            cls.mock = subprocess.Popen(
                [h.PYTHON, '-m', 'dbusmock', '--system', '--template', cls.template],
                stdin=subprocess.DEVNULL, stdout=cls.mock_log, stderr=cls.mock_log, env=env,
                preexec_fn=h._die_with_parent)
            cls.client.wait_for(cls.polkit_on_bus, what='the polkitd mock on the bus')
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def polkit_on_bus(cls):
        if cls.mock.poll() is not None:
            raise AssertionError('the polkitd mock exited: see %s' % cls.workdir)
        return cls.client.call_full('org.freedesktop.DBus', '/org/freedesktop/DBus',
                                    'org.freedesktop.DBus', 'NameHasOwner',
                                    GLib.Variant('(s)', (POLKIT_NAME,)))

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, 'mock', None) is not None:
            h._stop_process(cls.mock)
            cls.mock_log.close()
        super().tearDownClass()

    def polkit(self, method, args=None):
        return self.client.call_full(POLKIT_NAME, POLKIT_PATH, MOCK_IFACE, method, args)

    def setUp(self):
        self.polkit('SetAllowed', GLib.Variant('(as)', ([],)))
        self.polkit('SetInteractive', GLib.Variant('(as)', ([],)))
        self.polkit('AllowUnknown', GLib.Variant('(b)', (False,)))
        self.polkit('ClearCalls')

    def allow(self, *actions):
        self.polkit('SetAllowed', GLib.Variant('(as)', (list(actions),)))

    def checks(self):
        """(subject kind, subject name, action, flags) of each CheckAuthorization."""
        calls = self.polkit('GetMethodCalls', GLib.Variant('(s)', ('CheckAuthorization',)))
        return [(args[0][0], args[0][1].get('name'), args[1], args[3]) for _, args in calls]

    def test_allowed(self):
        self.allow(RUN)
        reply, name = self.call_one('nobody', start_library('quick.yaml'))
        path = self.assertAllowed(reply)
        self.assertEqual(self.client.get_prop(path, 'StartedByUid'),
                         pwd.getpwnam('nobody').pw_uid)
        # Asked about the caller itself, by its bus name, without interaction.
        self.assertEqual(self.checks(), [('system-bus-name', name, RUN, 0)])

    def test_denied(self):
        before = self.executions()
        reply, _ = self.call_one('nobody', start_library('quick.yaml'))
        self.assertRefused(reply, ACCESS_DENIED, RUN)
        self.assertEqual(self.executions(), before)
        self.assertEqual([c[2] for c in self.checks()], [RUN])
        # Allowing something else does not help.
        self.allow(CONTROL, MANAGE)
        reply, _ = self.call_one('nobody', start_library('quick.yaml'))
        self.assertRefused(reply, ACCESS_DENIED, RUN)

    def test_polkit_error_denies(self):
        # A polkit that fails is no reason to let anyone in.
        self.allow(RUN)
        self.polkit('SetFailing', GLib.Variant('(b)', (True,)))
        try:
            reply, _ = self.call_one('nobody',
                                     start_library('quick.yaml'))
        finally:
            self.polkit('SetFailing', GLib.Variant('(b)', (False,)))
        self.assertRefused(reply, ACCESS_DENIED, RUN)
        self.assertIn('the authority is broken', self.daemon.stderr_text())
        reply, _ = self.call_one('nobody', start_library('quick.yaml'))
        self.assertAllowed(reply)

    def test_interactive(self):
        self.polkit('SetInteractive', GLib.Variant('(as)', ([RUN],)))
        call = start_library('quick.yaml')
        before = self.executions()
        reply, plain = self.call_one('nobody', call)
        self.assertRefused(reply, INTERACTIVE, RUN)
        self.assertEqual(self.executions(), before)
        reply, asked = self.call_one('nobody', interactive(call))
        self.assertAllowed(reply)
        # The caller's ALLOW_INTERACTIVE_AUTHORIZATION header flag became
        # polkit's AllowUserInteraction flag, and only then.
        self.assertEqual(self.checks(), [('system-bus-name', plain, RUN, 0),
                                         ('system-bus-name', asked, RUN, 1)])

    def test_starter_controls_own_run(self):
        self.allow(RUN)
        path = self.start_as('nobody')
        self.client.wait_status(path, 'running')
        # Control of someone else's run is denied to everyone now...
        self.allow()
        self.polkit('ClearCalls')
        # ...but the starter's uid needs no polkit for its own run, from any
        # of its connections.
        replies = self.call_as('nobody', [
            control(path, 'Pause'),
            control(path, 'SetDebugMode', 'GLib.Variant("(b)", (True,))'),
            control(path, 'Resume'),
            control(path, 'Cancel'),
        ])['replies']
        for reply in replies:
            self.assertAllowed(reply)
        fin = self.client.wait_finished(path)
        self.assertEqual(fin.args[0], 'cancelled')
        self.assertEqual(self.checks(), [])

    # Regression: the id is read before authorization; the trusted path must
    # rewind the message as the polkit path does.
    def test_starter_deletes_own_run(self):
        self.allow(RUN)
        path = self.start_as('nobody', 'quick.yaml')
        self.client.wait_finished(path)
        self.allow()
        self.polkit('ClearCalls')
        run_id = self.client.get_prop(path, 'Id')
        reply, _ = self.call_one('nobody', [h.MANAGER_PATH, h.MANAGER_IFACE, 'DeleteExecution',
                                            'GLib.Variant("(s)", (%r,))' % run_id, False])
        self.assertAllowed(reply)
        self.assertEqual(self.checks(), [])
        self.assertNotIn(path, self.executions())

    def test_other_uid_needs_control(self):
        self.allow(RUN)
        path = self.start_as('nobody')
        self.client.wait_status(path, 'running')
        self.polkit('ClearCalls')
        for member in ('Pause', 'Cancel', 'Skip'):
            reply, _ = self.call_one('daemon', control(path, member))
            self.assertRefused(reply, ACCESS_DENIED, CONTROL)
        self.assertEqual(self.client.get_prop(path, 'Status'), 'running')
        self.assertEqual([c[2] for c in self.checks()], [CONTROL] * 3)
        # Allowed by polkit: the other uid may.
        self.allow(CONTROL)
        reply, name = self.call_one('daemon', control(path, 'Cancel'))
        self.assertAllowed(reply)
        self.assertEqual(self.client.wait_finished(path).args[0], 'cancelled')
        self.assertEqual(self.checks()[-1], ('system-bus-name', name, CONTROL, 0))
        # Forgetting someone else's finished run is control too.
        run_id = self.client.get_prop(path, 'Id')
        delete = [h.MANAGER_PATH, h.MANAGER_IFACE, 'DeleteExecution',
                  'GLib.Variant("(s)", (%r,))' % run_id, False]
        self.allow()
        reply, _ = self.call_one('daemon', delete)
        self.assertRefused(reply, ACCESS_DENIED, CONTROL)
        self.allow(CONTROL)
        reply, _ = self.call_one('daemon', delete)
        self.assertAllowed(reply)

    def test_manage_credentials(self):
        reply, _ = self.call_one('nobody', set_credential('pk-cred', SECRET))
        self.assertRefused(reply, ACCESS_DENIED, MANAGE)
        names = [c['name'] for c in self.client.manager('ListCredentials')]
        self.assertNotIn('pk-cred', names)
        self.allow(MANAGE)
        reply, _ = self.call_one('nobody', set_credential('pk-cred', SECRET))
        self.assertAllowed(reply)
        names = [c['name'] for c in self.client.manager('ListCredentials')]
        self.assertIn('pk-cred', names)
        self.allow(RUN, CONTROL)
        reply, _ = self.call_one('nobody', delete_credential('pk-cred'))
        self.assertRefused(reply, ACCESS_DENIED, MANAGE)
        self.allow(MANAGE)
        reply, _ = self.call_one('nobody', delete_credential('pk-cred'))
        self.assertAllowed(reply)
        self.assertEqual([c[2] for c in self.checks()], [MANAGE] * 4)
        # polkit never saw the secret.
        calls = self.polkit('GetMethodCalls', GLib.Variant('(s)', ('CheckAuthorization',)))
        self.assertNotIn(SECRET, repr(calls))

    def test_manage_library(self):
        lib = 'org.ignition.toolkit.manage-library'
        save = manager_call('SavePlaybook', 'GLib.Variant("(ss)", (%r, %r))'
                            % ('pk/saved.yaml', QUICK_RUN))
        delete = manager_call('DeletePlaybook', 'GLib.Variant("(s)", (%r,))' % 'pk/saved.yaml')
        local = os.path.join(self.daemon.state_dir, 'playbooks', 'local', 'pk', 'saved.yaml')
        # Running and managing credentials do not open the library for writing.
        self.allow(RUN, SOURCE, CONTROL, MANAGE, VIEW)
        reply, _ = self.call_one('nobody', save)
        self.assertRefused(reply, ACCESS_DENIED, lib)
        self.assertFalse(os.path.exists(local))
        ids = [p['id'] for p in self.client.manager('ListPlaybooks')]
        self.assertNotIn('pk/saved.yaml', ids)
        self.allow(lib)
        reply, _ = self.call_one('nobody', save)
        self.assertEqual(self.assertAllowed(reply), [])
        self.assertTrue(os.path.exists(local))
        self.allow(RUN)
        reply, _ = self.call_one('nobody', delete)
        self.assertRefused(reply, ACCESS_DENIED, lib)
        self.assertTrue(os.path.exists(local))
        # Shipped playbooks stay read-only even for a caller who may manage the library.
        self.allow(lib)
        reply, _ = self.call_one('nobody', manager_call(
            'DeletePlaybook', 'GLib.Variant("(s)", (%r,))' % 'quick.yaml'))
        self.assertRefused(reply, ACCESS_DENIED)
        self.assertIn('read-only', reply['message'])
        reply, _ = self.call_one('nobody', delete)
        self.assertAllowed(reply)
        self.assertFalse(os.path.exists(local))
        self.assertEqual([c[2] for c in self.checks()], [lib] * 5)

    def test_library_but_not_source(self):
        # May run the installed library's playbooks, not text of its own.
        self.allow(RUN)
        reply, _ = self.call_one('nobody', start_library('quick.yaml'))
        self.assertAllowed(reply)
        reply, _ = self.call_one('nobody', start_execution(QUICK_RUN))
        self.assertRefused(reply, ACCESS_DENIED, SOURCE)
        self.assertEqual([c[2] for c in self.checks()], [RUN, SOURCE])
        # run-source alone does not open the library either.
        self.allow(SOURCE)
        reply, _ = self.call_one('nobody', start_library('quick.yaml'))
        self.assertRefused(reply, ACCESS_DENIED, RUN)
        reply, _ = self.call_one('nobody', start_execution(QUICK_RUN))
        self.assertAllowed(reply)

    def reads(self, path, run_id):
        return [
            manager_call('ListExecutions'),
            manager_call('GetHistory', 'GLib.Variant("(us)", (0, ""))'),
            manager_call('GetExecutionRecord', 'GLib.Variant("(s)", (%r,))' % run_id),
            control(path, 'GetSteps'),
            control(path, 'GetLog', 'GLib.Variant("(u)", (0,))'),
        ]

    def test_view_but_not_run(self):
        self.allow(RUN)
        path = self.start_as('nobody', 'quick.yaml')
        self.client.wait_finished(path)
        run_id = self.client.get_prop(path, 'Id')
        self.allow(VIEW)
        self.polkit('ClearCalls')
        replies = self.call_as('daemon', self.reads(path, run_id) +
                               [start_library('quick.yaml')])['replies']
        listed, hist, rec, steps, log = [self.assertAllowed(r) for r in replies[:5]]
        self.assertIn(path, [e[0] for e in listed])
        self.assertIn(run_id, [r['id'] for r in hist])
        self.assertEqual(rec['id'], run_id)
        self.assertEqual([s['step-id'] for s in steps], ['a'])
        self.assertTrue(any(line[3] == 'x' for line in log), log)
        self.assertRefused(replies[5], ACCESS_DENIED, RUN)
        self.assertEqual([c[2] for c in self.checks()], [VIEW] * 5 + [RUN])

    def test_no_view_of_others_runs(self):
        self.allow(RUN)
        theirs = self.start_as('nobody', 'quick.yaml')
        self.client.wait_finished(theirs)
        mine = self.start_as('daemon', 'quick.yaml')
        self.client.wait_finished(mine)
        self.polkit('ClearCalls')
        replies = self.call_as('daemon',
                               self.reads(theirs, self.client.get_prop(theirs, 'Id')))['replies']
        # Listing is never refused: without view, only the caller's own runs.
        listed = [e[0] for e in self.assertAllowed(replies[0])]
        self.assertIn(mine, listed)
        self.assertNotIn(theirs, listed)
        for reply in replies[1:]:
            self.assertRefused(reply, ACCESS_DENIED, VIEW)
        # Logs, steps and the record of its own run need nothing.
        self.polkit('ClearCalls')
        replies = self.call_as('daemon',
                               self.reads(mine, self.client.get_prop(mine, 'Id'))[2:])['replies']
        for reply in replies:
            self.assertAllowed(reply)
        self.assertEqual(self.checks(), [])

    def paged_reads(self, path, run_id):
        return [
            manager_call('GetHistoryPage', 'GLib.Variant("(a{sv}us)", ({}, 0, ""))'),
            manager_call('GetHistoryLogPage', 'GLib.Variant("(sus)", (%r, 0, ""))' % run_id),
            control(path, 'GetLogPage', 'GLib.Variant("(us)", (0, ""))'),
        ]

    def test_paged_reads_need_view(self):
        self.allow(RUN)
        theirs = self.start_as('nobody', 'quick.yaml')
        self.client.wait_finished(theirs)
        mine = self.start_as('daemon', 'quick.yaml')
        self.client.wait_finished(mine)
        self.polkit('ClearCalls')
        replies = self.call_as('daemon', self.paged_reads(
            theirs, self.client.get_prop(theirs, 'Id')))['replies']
        for reply in replies:
            self.assertRefused(reply, ACCESS_DENIED, VIEW)
        # The log of its own run needs nothing.
        self.polkit('ClearCalls')
        replies = self.call_as('daemon', self.paged_reads(
            mine, self.client.get_prop(mine, 'Id'))[1:])['replies']
        for reply in replies:
            lines, cursor = self.assertAllowed(reply)
            self.assertTrue(any(line[3] == 'x' for line in lines), lines)
            self.assertEqual(cursor, '')
        self.assertEqual(self.checks(), [])
        # With view, everything.
        self.allow(VIEW)
        self.polkit('ClearCalls')
        replies = self.call_as('daemon', self.paged_reads(
            theirs, self.client.get_prop(theirs, 'Id')))['replies']
        runs, _ = self.assertAllowed(replies[0])
        self.assertIn(self.client.get_prop(theirs, 'Id'), [r['id'] for r in runs])
        for reply in replies[1:]:
            self.assertAllowed(reply)
        self.assertEqual([c[2] for c in self.checks()], [VIEW] * 3)

    def test_view_interactive(self):
        # An inactive session's view is auth_admin: the challenge comes back.
        self.polkit('SetInteractive', GLib.Variant('(as)', ([VIEW],)))
        reply, _ = self.call_one('daemon', manager_call('GetHistory',
                                                        'GLib.Variant("(us)", (0, ""))'))
        self.assertRefused(reply, INTERACTIVE, VIEW)
        reply, _ = self.call_one('daemon', interactive(
            manager_call('GetHistory', 'GLib.Variant("(us)", (0, ""))')))
        self.assertAllowed(reply)

    def test_root_needs_no_polkit(self):
        path = self.client.start_execution('root-run', None, {'source': LONG_RUN})
        self.client.wait_status(path, 'running')
        self.client.call(path, 'Pause')
        self.client.call(path, 'Cancel')
        self.client.manager('SetCredential', GLib.Variant('(sa{sv})', (
            'root-cred', {'username': GLib.Variant('s', 'r')})))
        self.client.manager('DeleteCredential', GLib.Variant('(s)', ('root-cred',)))
        self.assertEqual(self.checks(), [])

    def test_caller_gone_while_polkit_thinks(self):
        # The answer comes after the caller left: nothing is started for it,
        # or at least the daemon survives; the next caller is served.
        self.polkit('SimulateHangActions', GLib.Variant('(as)', ([RUN],)))
        self.allow(RUN)
        try:
            child = subprocess.Popen(
                [h.PYTHON, '-c', CHILD,
                 json.dumps([start_library('quick.yaml')]),
                 self.address], user=pwd.getpwnam('nobody').pw_uid,
                group=pwd.getpwnam('nobody').pw_gid, extra_groups=[], cwd='/',
                env={'PATH': '/usr/bin:/bin'}, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            self.client.wait_for(lambda: self.polkit('HaveHangingCalls'),
                                 what='the CheckAuthorization call')
            child.kill()
            child.wait()
            time.sleep(0.2)
        finally:
            self.polkit('SimulateHangActions', GLib.Variant('(as)', ([],)))
            self.polkit('ReleaseHangingCalls')
        self.client.idle(0.5)
        self.assertTrue(self.daemon.running(), self.daemon.stderr_text())
        reply, _ = self.call_one('nobody', start_library('quick.yaml'))
        self.assertAllowed(reply)

    def test_live_view_needs_view_and_steering_steer_browser(self):
        # Root's run; nobody may neither watch nor steer it without the rights.
        path = self.client.manager('StartExecution', GLib.Variant(
            '(sa{sv}a{sv})', ('long.yaml', {}, {})))
        self.client.wait_status(path, 'running')
        steer = 'org.ignition.toolkit.steer-browser'
        open_view = control(path, 'OpenLiveView', 'GLib.Variant("(a{sv})", ({},))')
        click = control(path, 'SendInput',
                        'GLib.Variant("(sa{sv})", ("click", {"x": GLib.Variant("i", 1), '
                        '"y": GLib.Variant("i", 2)}))')
        view_reply, steer_reply = self.call_as('nobody', [open_view, click])['replies']
        self.assertRefused(view_reply, ACCESS_DENIED, VIEW)
        self.assertRefused(steer_reply, ACCESS_DENIED, steer)
        # The view right opens the view (its fd is more than this client
        # takes) but does not steer; steer-browser gets past polkit to the
        # run's state (running: refused as such).
        self.allow(VIEW)
        view_reply, steer_reply = self.call_as('nobody', [open_view, click])['replies']
        self.assertNotEqual(view_reply['error'], ACCESS_DENIED, view_reply)
        self.assertRefused(steer_reply, ACCESS_DENIED, steer)
        self.allow(VIEW, steer)
        steer_reply, _ = self.call_one('nobody', click)
        self.assertRefused(steer_reply, 'org.ignition.Toolkit.Error.InvalidState')
        self.assertIn(steer, [c[2] for c in self.checks()])


class TestGroupFallback(AuthorizationTestCase):
    """No polkit on the bus: members of [Authorization] Group= pass."""

    group = 'nogroup'

    def test_member_by_primary_group(self):
        reply, _ = self.call_one('nobody', start_library('quick.yaml'),
                                 group='nogroup')
        path = self.assertAllowed(reply)
        self.assertEqual(self.client.wait_finished(path).args[0], 'completed')

    def test_member_by_supplementary_group(self):
        reply, _ = self.call_one('daemon', start_library('quick.yaml'),
                                 extra_groups=['nogroup'])
        self.assertAllowed(reply)

    def test_non_member(self):
        before = self.executions()
        reply, _ = self.call_one('daemon', start_library('quick.yaml'))
        self.assertRefused(reply, ACCESS_DENIED, RUN)
        reply, _ = self.call_one('daemon', set_credential('grp-cred', SECRET))
        self.assertRefused(reply, ACCESS_DENIED, MANAGE)
        self.assertEqual(self.executions(), before)
        self.assertNotIn('grp-cred', [c['name'] for c in self.client.manager('ListCredentials')])

    def test_member_views(self):
        history = manager_call('GetHistory', 'GLib.Variant("(us)", (0, ""))')
        reply, _ = self.call_one('daemon', history)
        self.assertRefused(reply, ACCESS_DENIED, VIEW)
        reply, _ = self.call_one('daemon', history, extra_groups=['nogroup'])
        self.assertAllowed(reply)

    def test_member_manages_credentials(self):
        reply, _ = self.call_one('nobody', set_credential('grp-cred2', SECRET))
        self.assertAllowed(reply)
        reply, _ = self.call_one('daemon', delete_credential('grp-cred2'))
        self.assertRefused(reply, ACCESS_DENIED, MANAGE)
        reply, _ = self.call_one('nobody', delete_credential('grp-cred2'))
        self.assertAllowed(reply)

    def test_member_controls_others_runs(self):
        path = self.start_as('nobody')
        self.client.wait_status(path, 'running')
        # A non-member may not touch it; a member (by supplementary group) may.
        reply, _ = self.call_one('daemon', control(path, 'Pause'))
        self.assertRefused(reply, ACCESS_DENIED, CONTROL)
        reply, _ = self.call_one('daemon', control(path, 'Cancel'), extra_groups=['nogroup'])
        self.assertAllowed(reply)
        self.assertEqual(self.client.wait_finished(path).args[0], 'cancelled')


class TestNoGroupNoPolkit(AuthorizationTestCase):
    """No polkit and no usable group: only root (and the starter) pass."""

    group = 'itk-no-such-group-xyz'

    def test_everyone_else_refused(self):
        reply, _ = self.call_one('nobody', start_library('quick.yaml'))
        self.assertRefused(reply, ACCESS_DENIED, RUN)
        self.assertIn("'itk-no-such-group-xyz' does not exist", self.daemon.stderr_text())
        path = self.client.start_execution('root-run', None,
                                           {'source': h.playbook(h.log_step('a', 'x'))})
        self.assertEqual(self.client.wait_finished(path).args[0], 'completed')


class TestActionsDeclared(unittest.TestCase):
    """Every action the daemon checks, or will check (manage-library,
    steer-browser), is declared in the policy, and the policy declares
    nothing else."""

    def test_header_and_policy_agree(self):
        import re
        import xml.etree.ElementTree as ET
        with open(os.path.join(h.source_root(), 'daemon', 'itk-authority.h')) as f:
            checked = set(re.findall(r'#define ITK_ACTION_\w+ "([^"]+)"', f.read()))
        policy = os.path.join(h.source_root(), 'data', 'org.ignition.toolkit.policy')
        declared = {a.get('id') for a in ET.parse(policy).getroot().iter('action')}
        self.assertEqual(checked, declared)
        self.assertEqual(checked, {RUN, SOURCE, VIEW, CONTROL, MANAGE,
                                   'org.ignition.toolkit.manage-library',
                                   'org.ignition.toolkit.steer-browser'})


if __name__ == '__main__':
    unittest.main(verbosity=2)
