#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The D-Bus system bus policy, data/org.ignition.Toolkit.conf, on a real bus.

A private dbus-daemon of type system (dbus-system-test.conf: the default-deny
policy of Debian's system.conf plus the project's policy file) and
ignition-toolkitd on it as root. Callers of other uids are child processes
run as `nobody` (and `daemon`): the bus policy is about uids, so the test
needs root to switch to them, and is skipped otherwise.

Whether the bus refused a call or the daemon answered it is told apart by the
sender of the reply: errors of the bus come from org.freedesktop.DBus.
"""

import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import unittest
import xml.etree.ElementTree as ET

import itk_harness as h

BUS_DRIVER = 'org.freedesktop.DBus'
ACCESS_DENIED = 'org.freedesktop.DBus.Error.AccessDenied'
UNKNOWN_EXECUTION = h.EXECUTION_PREFIX + '0123456789abcdef0123456789abcdef'

# Run as another uid: performs each call of argv[1] (JSON: [dest, path, iface,
# member, python expression of the body or null]) on the bus at argv[2] and
# prints what came back, as JSON, one object per call.
CHILD = r'''
import json, sys
import gi
gi.require_version('Gio', '2.0')
from gi.repository import Gio, GLib
conn = Gio.DBusConnection.new_for_address_sync(
    sys.argv[2], Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
    | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
out = []
for dest, path, iface, member, body in json.loads(sys.argv[1]):
    msg = Gio.DBusMessage.new_method_call(dest, path, iface, member)
    if body is not None:
        msg.set_body(eval(body, {'GLib': GLib}))
    reply, _ = conn.send_message_with_reply_sync(msg, Gio.DBusSendMessageFlags.NONE,
                                                 30000, None)
    rbody = reply.get_body()
    error = reply.get_message_type() == Gio.DBusMessageType.ERROR
    out.append({'member': member, 'error': reply.get_error_name() if error else None,
                'sender': reply.get_sender(),
                'body': rbody.print_(False) if rbody is not None else ''})
conn.close_sync(None)
print(json.dumps(out))
'''


def policy_file():
    return os.path.join(h.source_root(), 'data', 'org.ignition.Toolkit.conf')


def system_bus_config():
    return os.path.join(h.source_root(), 'tests', 'integration', 'dbus-system-test.conf')


def start_bus(config, workdir):
    """A dbus-daemon listening in @workdir, which every uid can reach."""
    os.chmod(workdir, 0o755)
    address = 'unix:path=' + os.path.join(workdir, 'bus')
    log = open(os.path.join(workdir, 'dbus-daemon.log'), 'ab')
    # umask 0: the socket must be connectable (writable) by other uids.
    proc = subprocess.Popen(['dbus-daemon', '--config-file=' + config, '--address=' + address,
                             '--print-address=1', '--nofork'],
                            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                            umask=0)
    log.close()
    line = proc.stdout.readline().decode().strip()
    if not line:
        h._stop_process(proc)
        raise RuntimeError('dbus-daemon did not start with %s' % config)
    return proc, address


def stop_bus(proc):
    h._stop_process(proc)
    proc.stdout.close()


def call_as(user, address, calls):
    """Runs @calls on the bus at @address as @user with no supplementary groups."""
    pw = pwd.getpwnam(user)
    result = subprocess.run([h.PYTHON, '-c', CHILD, json.dumps(calls), address],
                            user=pw.pw_uid, group=pw.pw_gid, extra_groups=[], cwd='/',
                            env={'PATH': '/usr/bin:/bin', 'LANG': 'C.UTF-8'},
                            capture_output=True, text=True, timeout=h.TIMEOUT)
    if result.returncode != 0:
        raise AssertionError('client as %s failed: %s' % (user, result.stderr))
    return json.loads(result.stdout)


def request_name(name=h.BUS_NAME, flags=4):
    # flags 4: DBUS_NAME_FLAG_DO_NOT_QUEUE
    return [BUS_DRIVER, '/org/freedesktop/DBus', BUS_DRIVER, 'RequestName',
            "GLib.Variant('(su)', (%r, %d))" % (name, flags)]


def toolkit(path, iface, member, body=None):
    return [h.BUS_NAME, path, iface, member, body]


def manager(member, body=None):
    return toolkit(h.MANAGER_PATH, h.MANAGER_IFACE, member, body)


def execution(member, body=None, path=UNKNOWN_EXECUTION):
    return toolkit(path, h.EXECUTION_IFACE, member, body)


def need_root(test):
    if os.geteuid() != 0:
        raise unittest.SkipTest('needs root to run callers as other uids')
    for user in ('nobody', 'daemon'):
        try:
            pwd.getpwnam(user)
        except KeyError:
            raise unittest.SkipTest('no user %s' % user)


class PolicyTest(unittest.TestCase):
    """The shipped policy, ignition-toolkitd owning the name as root."""

    @classmethod
    def setUpClass(cls):
        need_root(cls)
        cls.workdir = tempfile.mkdtemp(prefix='itk-policy-')
        cls.bus = cls.client = cls.daemon = None
        try:
            cls.bus, cls.address = start_bus(system_bus_config(), cls.workdir)
            cls.client = h.Client(cls.address)
            cls.daemon = h.Daemon(cls.workdir, cls.address)
            cls.daemon.start(cls.client)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.client is not None:
            cls.client.close()
        if cls.daemon is not None:
            cls.daemon.stop()
        if cls.bus is not None:
            stop_bus(cls.bus)
        shutil.rmtree(cls.workdir, ignore_errors=True)

    def assertRefusedByBus(self, reply):
        self.assertEqual((reply['sender'], reply['error']), (BUS_DRIVER, ACCESS_DENIED),
                         'the bus did not refuse %s: %r' % (reply['member'], reply))

    def assertReachedDaemon(self, reply):
        self.assertNotEqual(reply['sender'], BUS_DRIVER,
                            'the bus refused %s: %r' % (reply['member'], reply))

    def test_name_ownership(self):
        owner = self.client.call_full(BUS_DRIVER, '/org/freedesktop/DBus', BUS_DRIVER,
                                      'GetNameOwner', h.GLib.Variant('(s)', (h.BUS_NAME,)))
        self.assertTrue(owner.startswith(':'), owner)
        # nobody may not own the name, neither while it is taken...
        (taken,) = call_as('nobody', self.address, [request_name()])
        self.assertRefusedByBus(taken)
        self.assertIn('security policies', taken['body'])
        # ...nor any other name (the default policy denies them all).
        (other,) = call_as('nobody', self.address, [request_name('org.ignition.Other')])
        self.assertRefusedByBus(other)
        # root may: the request is queued behind the daemon, not refused.
        reply = self.client.call_full(BUS_DRIVER, '/org/freedesktop/DBus', BUS_DRIVER,
                                      'RequestName', h.GLib.Variant('(su)', (h.BUS_NAME, 4)))
        self.assertEqual(reply, 3)  # DBUS_REQUEST_NAME_REPLY_EXISTS

    def test_everyone_may_read(self):
        calls = [
            toolkit(h.MANAGER_PATH, 'org.freedesktop.DBus.Introspectable', 'Introspect'),
            toolkit(h.MANAGER_PATH, 'org.freedesktop.DBus.Peer', 'Ping'),
            toolkit(h.MANAGER_PATH, h.PROPERTIES_IFACE, 'GetAll',
                    "GLib.Variant('(s)', (%r,))" % h.MANAGER_IFACE),
            toolkit(h.MANAGER_PATH, h.PROPERTIES_IFACE, 'Get',
                    "GLib.Variant('(ss)', (%r, 'Version'))" % h.MANAGER_IFACE),
            toolkit(h.MANAGER_PATH, h.OBJECT_MANAGER_IFACE, 'GetManagedObjects'),
            manager('ListExecutions'),
            manager('ListPlaybooks'),
        ]
        for reply in call_as('nobody', self.address, calls):
            self.assertIsNone(reply['error'], reply)
            self.assertReachedDaemon(reply)
        version = call_as('nobody', self.address, calls[3:4])[0]
        self.assertIn(self.client.get_prop(h.MANAGER_PATH, 'Version', h.MANAGER_IFACE),
                      version['body'])

    def test_every_api_method_reaches_the_daemon(self):
        # Read-only ones the daemon answers; state-changing ones it authorizes
        # itself, so the bus must let them through to be answered by the daemon
        # (an error of the daemon's, e.g. NoSuchPlaybook or AccessDenied, is fine).
        calls = [
            manager('GetExecutionRecord', "GLib.Variant('(s)', ('0' * 32,))"),
            manager('GetPlaybook', "GLib.Variant('(s)', ('no/such.yaml',))"),
            manager('ValidatePlaybook', "GLib.Variant('(s)', ('name: x\\n',))"),
            manager('ListCredentials'),
            manager('StartExecution', "GLib.Variant('(sa{sv}a{sv})', ('no/such.yaml', {}, {}))"),
            manager('DeleteExecution', "GLib.Variant('(s)', ('0' * 32,))"),
            manager('SetCredential', "GLib.Variant('(sa{sv})', ('policy-test', {}))"),
            manager('DeleteCredential', "GLib.Variant('(s)', ('policy-test',))"),
            execution('GetSteps'),
            execution('GetLog', "GLib.Variant('(u)', (10,))"),
            execution('Start'), execution('Cancel'), execution('Pause'), execution('Resume'),
            execution('Skip'), execution('SkipBack'),
            execution('SetDebugMode', "GLib.Variant('(b)', (True,))"),
            execution('OpenLiveView', "GLib.Variant('(a{sv})', ({},))"),
            execution('SendInput', "GLib.Variant('(sa{sv})', ('click', {}))"),
            # Needs org.ignition.toolkit.view (docs/security.md): the daemon decides.
            manager('GetHistory', "GLib.Variant('(us)', (10, ''))"),
        ]
        replies = call_as('nobody', self.address, calls)
        self.assertEqual(len(replies), len(calls))
        for reply in replies:
            self.assertReachedDaemon(reply)
        # None of it may have worked on behalf of nobody without the daemon
        # saying so: no credential appeared for an unauthorized SetCredential
        # that the daemon refused.
        if replies[6]['error'] is not None:
            names = [c.get('name') for c in self.client.manager('ListCredentials')]
            self.assertNotIn('policy-test', names)

    def test_a_live_execution_is_readable_by_others(self):
        # The bus lets every read through; the daemon answers properties to
        # anyone, and keeps the steps of someone else's run for the view
        # right (no polkit and no group here: refused).
        source = h.playbook(h.sleep_step('s1', 30))
        path = self.client.start_execution('policy-test', None,
                                           {'source': source, 'start': False})
        try:
            replies = call_as('nobody', self.address, [
                execution('GetSteps', path=path),
                toolkit(path, h.PROPERTIES_IFACE, 'Get',
                        "GLib.Variant('(ss)', (%r, 'Status'))" % h.EXECUTION_IFACE),
            ])
            self.assertReachedDaemon(replies[0])
            self.assertEqual(replies[0]['error'], ACCESS_DENIED, replies[0])
            self.assertIsNone(replies[1]['error'], replies[1])
            self.assertIn('pending', replies[1]['body'])
        finally:
            self.client.call(path, 'Cancel')

    def test_everything_else_is_refused(self):
        calls = [
            # Every property is read-only: Set never reaches the daemon.
            toolkit(h.MANAGER_PATH, h.PROPERTIES_IFACE, 'Set',
                    "GLib.Variant('(ssv)', (%r, 'MaxConcurrentExecutions', "
                    "GLib.Variant('u', 1)))" % h.MANAGER_IFACE),
            # Members and interfaces that are not in the API.
            manager('Shutdown'),
            toolkit(h.MANAGER_PATH, 'org.ignition.Toolkit.Debug', 'Dump'),
            execution('Kill'),
        ]
        for reply in call_as('nobody', self.address, calls):
            self.assertRefusedByBus(reply)
        # root is not limited by the bus: its Set reaches the daemon (which
        # refuses it for its own reasons: the property is read-only).
        with self.assertRaises(h.GLib.Error) as cm:
            self.client.call(h.MANAGER_PATH, 'Set',
                             h.GLib.Variant('(ssv)', (h.MANAGER_IFACE, 'MaxConcurrentExecutions',
                                                      h.GLib.Variant('u', 1))),
                             iface=h.PROPERTIES_IFACE)
        name, message = h.dbus_error(cm.exception)
        self.assertNotIn('Rejected send message', message)
        self.assertEqual(self.client.get_prop(h.MANAGER_PATH, 'MaxConcurrentExecutions',
                                              h.MANAGER_IFACE), 64)


class OwnerRuleTest(unittest.TestCase):
    """The policy's own="org.ignition.Toolkit" rule for the daemon's user.

    The ignition-toolkit user need not exist on the test machine, so the rule
    is exercised on a copy of the policy naming `nobody` as the daemon's user,
    with `daemon` as the outsider."""

    @classmethod
    def setUpClass(cls):
        need_root(cls)
        cls.workdir = tempfile.mkdtemp(prefix='itk-policy-owner-')
        cls.bus = None
        try:
            with open(policy_file()) as f:
                text = f.read()
            count = text.count('user="ignition-toolkit"')
            if count != 1:
                raise AssertionError('expected one user="ignition-toolkit" policy, found %d'
                                     % count)
            with open(os.path.join(cls.workdir, 'org.ignition.Toolkit.conf'), 'w') as f:
                f.write(text.replace('user="ignition-toolkit"', 'user="nobody"'))
            with open(system_bus_config()) as f:
                bus_text = f.read()
            # The activation file too: the bus lists the name as activatable
            # only if the file parses and is named after the name it offers.
            bus_text, n = re.subn(r'<include>[^<]*org\.ignition\.Toolkit\.conf</include>',
                                  '<include>org.ignition.Toolkit.conf</include>\n'
                                  '  <servicedir>%s</servicedir>'
                                  % os.path.join(h.source_root(), 'data'), bus_text)
            if n != 1:
                raise AssertionError('dbus-system-test.conf does not include the policy')
            config = os.path.join(cls.workdir, 'bus.conf')
            with open(config, 'w') as f:
                f.write(bus_text)
            cls.bus, cls.address = start_bus(config, cls.workdir)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.bus is not None:
            stop_bus(cls.bus)
        shutil.rmtree(cls.workdir, ignore_errors=True)

    def test_the_name_is_activatable(self):
        (reply,) = call_as('daemon', self.address, [
            [BUS_DRIVER, '/org/freedesktop/DBus', BUS_DRIVER, 'ListActivatableNames', None]])
        self.assertIsNone(reply['error'], reply)
        self.assertIn("'%s'" % h.BUS_NAME, reply['body'])

    def test_only_the_daemon_user_owns_the_name(self):
        (outsider,) = call_as('daemon', self.address, [request_name()])
        self.assertEqual((outsider['sender'], outsider['error']), (BUS_DRIVER, ACCESS_DENIED),
                         outsider)
        owner = call_as('nobody', self.address,
                        [request_name(), request_name('org.ignition.Other')])
        self.assertIsNone(owner[0]['error'], owner[0])
        self.assertEqual(owner[0]['body'], '(1,)')  # DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER
        # The rule is for this one name only.
        self.assertEqual(owner[1]['error'], ACCESS_DENIED, owner[1])


class PolicyCoversContractTest(unittest.TestCase):
    """Every method of the contract has its rule, and no rule names a method the
    contract does not have (a method added later would be silently unreachable
    for everyone but root)."""

    def test_rules_match_the_contract(self):
        contract = {}
        for iface in ET.parse(h.contract_xml()).getroot().iter('interface'):
            contract[iface.get('name')] = {m.get('name') for m in iface.iter('method')}
        ruled = {}
        root = ET.parse(policy_file()).getroot()
        for policy in root.iter('policy'):
            if policy.get('context') != 'default':
                continue
            for rule in policy:
                self.assertEqual(rule.tag, 'allow', 'default context only allows: %r'
                                 % rule.attrib)
                self.assertEqual(rule.get('send_destination'), h.BUS_NAME, rule.attrib)
                iface = rule.get('send_interface')
                # No blanket rule for the whole destination.
                self.assertIsNotNone(iface, rule.attrib)
                if iface in contract:
                    self.assertIsNotNone(rule.get('send_member'), rule.attrib)
                    ruled.setdefault(iface, set()).add(rule.get('send_member'))
        self.assertEqual(set(contract), {h.MANAGER_IFACE, h.EXECUTION_IFACE})
        for iface, methods in contract.items():
            self.assertEqual(ruled.get(iface, set()), methods, iface)


if __name__ == '__main__':
    h.main()
