# SPDX-License-Identifier: LGPL-2.1-or-later
"""Shared harness of the ignition-toolkitd integration tests.

Each test class gets a private dbus-daemon (tests/integration/dbus-test.conf)
and an ignition-toolkitd from the build tree on it, with its own temporary
state, configuration and playbook library folders.

The test client is a Gio.DBusConnection whose message filter records every
incoming signal, method return and error in arrival order, with the arrival
time (the filter runs in GDBus's worker thread, so the time is the time the
message came off the socket, not the time the test looked at it). The match
on path_namespace='/org/ignition/Toolkit' is added when the client connects,
so before any StartExecution. Tests wait for conditions by iterating the
GLib main context with a deadline; the filter wakes the context up.

Run: meson test -C BUILD --suite integration, or one file, class or test by
hand: ITK_DAEMON=BUILD/daemon/ignition-toolkitd /usr/bin/python3
tests/integration/test_control.py [TestSkip[.test_skip_while_paused]].
Knobs: ITK_TEST_TIMEOUT (seconds, default 30), ITK_KEEP_TMP=1 (keep the
folders), ITK_DAEMON_WRAPPER (e.g. "valgrind -q").
"""

import collections
import ctypes
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import gi

gi.require_version('GLib', '2.0')
gi.require_version('Gio', '2.0')
from gi.repository import Gio, GLib  # noqa: E402

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML ships with Debian's python3
    yaml = None

BUS_NAME = 'org.ignition.Toolkit'
MANAGER_PATH = '/org/ignition/Toolkit'
EXECUTION_PREFIX = MANAGER_PATH + '/execution/'
MANAGER_IFACE = 'org.ignition.Toolkit.Manager'
EXECUTION_IFACE = 'org.ignition.Toolkit.Execution'
OBJECT_MANAGER_IFACE = 'org.freedesktop.DBus.ObjectManager'
PROPERTIES_IFACE = 'org.freedesktop.DBus.Properties'

ERR = 'org.ignition.Toolkit.Error.'
INVALID_STATE = ERR + 'InvalidState'
NOT_RUNNING = ERR + 'NotRunning'
NO_SUCH_PLAYBOOK = ERR + 'NoSuchPlaybook'
INVALID_PLAYBOOK = ERR + 'InvalidPlaybook'
INVALID_PARAMETERS = ERR + 'InvalidParameters'
NO_SUCH_EXECUTION = ERR + 'NoSuchExecution'
INVALID_ARGS = 'org.freedesktop.DBus.Error.InvalidArgs'
LIMITS_EXCEEDED = 'org.freedesktop.DBus.Error.LimitsExceeded'

TERMINAL = ('completed', 'failed', 'cancelled')
# pending -> running <-> paused -> completed | failed | cancelled; a pending
# run can only start or be cancelled.
LEGAL_EDGES = frozenset([
    ('pending', 'running'), ('pending', 'cancelled'),
    ('running', 'paused'), ('paused', 'running'),
    ('running', 'completed'), ('running', 'failed'), ('running', 'cancelled'),
    ('paused', 'completed'), ('paused', 'failed'), ('paused', 'cancelled'),
])

# Generous: a loaded 2-core machine, maybe under a sanitizer.
TIMEOUT = float(os.environ.get('ITK_TEST_TIMEOUT', '30'))
# How fast Cancel must end a run (a property of the product, not a benchmark).
CANCEL_PROMPT = 2.0

PYTHON = '/usr/bin/python3'

# Lines a daemon built with -Db_sanitize=address,undefined writes on a problem.
SANITIZER_REPORTS = ('ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:')


# --- environment ----------------------------------------------------------------------

def source_root():
    root = os.environ.get('ITK_SOURCE_ROOT')
    if root:
        return root
    return os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def daemon_path():
    path = os.environ.get('ITK_DAEMON')
    if path:
        return path
    # Run by hand: the newest build-*/daemon/ignition-toolkitd.
    root = source_root()
    found = []
    for entry in os.listdir(root):
        candidate = os.path.join(root, entry, 'daemon', 'ignition-toolkitd')
        if entry.startswith('build') and os.access(candidate, os.X_OK):
            found.append((os.path.getmtime(candidate), candidate))
    if not found:
        raise RuntimeError('set ITK_DAEMON to the ignition-toolkitd to test')
    return max(found)[1]


def dbus_config():
    return os.environ.get('ITK_DBUS_CONFIG') or os.path.join(
        source_root(), 'tests', 'integration', 'dbus-test.conf')


def contract_xml():
    return os.environ.get('ITK_DBUS_XML') or os.path.join(source_root(),
                                                          'org.ignition.Toolkit.xml')


def compat_playbooks():
    return os.environ.get('ITK_COMPAT_PLAYBOOKS') or os.path.join(
        source_root(), '..', 'shared', 'compat', 'playbooks')


_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    # In the child before exec: the bus and the daemon go when the test
    # process goes, even when it is killed (meson's timeout).
    _libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def become_subreaper():
    """Orphans of the daemon's scripts become our children, not PID 1's.

    PID 1 of a container may never reap; as the subreaper the test can reap a
    killed grandchild itself and then see ESRCH for it."""
    _libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


become_subreaper()


# --- playbook text ---------------------------------------------------------------------

def step(step_id, step_type, params=None, name=None, **fields):
    """One step mapping; fields are timeout, retry_count, retry_delay, on_failure."""
    s = {'id': step_id, 'name': name or ('Step ' + step_id), 'type': step_type}
    if params is not None:
        s['parameters'] = params
    s.update(fields)
    return s


def playbook(*steps, name='Integration test', version='1.0', rollback=None, parameters=None,
             **top):
    doc = {'name': name, 'version': version}
    if parameters is not None:
        doc['parameters'] = parameters
    doc['steps'] = list(steps)
    if rollback is not None:
        doc['rollback'] = list(rollback)
    doc.update(top)
    if yaml is not None:
        return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
    return json.dumps(doc, indent=2)  # JSON is YAML too


def sleep_step(step_id, seconds, **fields):
    return step(step_id, 'utility.sleep', {'seconds': seconds}, **fields)


def log_step(step_id, message, **fields):
    return step(step_id, 'utility.log', {'message': message}, **fields)


def python_step(step_id, script, **fields):
    return step(step_id, 'utility.python', {'script': script}, **fields)


def shell_step(step_id, command, **fields):
    return step(step_id, 'utility.shell', {'command': command}, **fields)


def gate_python(marker, gate):
    """A python script that prints @marker and then waits for the file @gate."""
    return ('import os, time\n'
            'print(%r, flush=True)\n'
            'while not os.path.exists(%r):\n'
            '    time.sleep(0.02)\n'
            'print("gate passed", flush=True)\n' % (marker, gate))


def gate_shell(marker, gate):
    return 'echo %s; while [ ! -e %s ]; do sleep 0.02; done; echo gate passed' % (marker, gate)


# --- variants ---------------------------------------------------------------------------

def to_variant(value):
    if isinstance(value, GLib.Variant):
        return value
    if isinstance(value, bool):
        return GLib.Variant('b', value)
    if isinstance(value, int):
        return GLib.Variant('x', value)
    if isinstance(value, float):
        return GLib.Variant('d', value)
    if isinstance(value, str):
        return GLib.Variant('s', value)
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value):
            return GLib.Variant('as', list(value))
        return GLib.Variant('av', [to_variant(v) for v in value])
    if isinstance(value, dict):
        return GLib.Variant('a{sv}', {k: to_variant(v) for k, v in value.items()})
    raise TypeError('no D-Bus type for %r' % (value,))


def vardict(d):
    return GLib.Variant('a{sv}', {k: to_variant(v) for k, v in (d or {}).items()})


def dbus_error(error):
    """(name, message) of a GLib.Error from a D-Bus call."""
    name = Gio.DBusError.get_remote_error(error)
    message = error.message
    prefix = 'GDBus.Error:%s: ' % name if name else None
    if prefix and message.startswith(prefix):
        message = message[len(prefix):]
    return name, message


# --- processes --------------------------------------------------------------------------

def _stop_process(proc, grace=5.0):
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Bus:
    """A private dbus-daemon."""

    def __init__(self, workdir):
        self.log_path = os.path.join(workdir, 'dbus-daemon.log')
        log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(
            ['dbus-daemon', '--config-file=' + dbus_config(), '--print-address=1', '--nofork'],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent)
        log.close()
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT)
        line = self.proc.stdout.readline().decode().strip() if ready else ''
        if not line:
            _stop_process(self.proc)
            raise RuntimeError('dbus-daemon did not start: %s' % self._log())
        self.address = line

    def _log(self):
        try:
            with open(self.log_path, errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def stop(self):
        _stop_process(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Daemon:
    """ignition-toolkitd with temporary state, configuration and library folders."""

    def __init__(self, workdir, address, conf=None, retention=None, library=None,
                 playbook_path=(), config_library=None, sandbox=None):
        self.address = address
        self.state_dir = os.path.join(workdir, 'state')
        self.config_dir = os.path.join(workdir, 'config')
        self.library_dir = os.path.join(workdir, 'library')
        self.stderr_path = os.path.join(workdir, 'daemon.stderr')
        for d in (self.state_dir, self.config_dir, self.library_dir):
            os.makedirs(d, exist_ok=True)
        settings = {'Python': PYTHON}
        settings.update(conf or {})
        with open(os.path.join(self.config_dir, 'toolkit.conf'), 'w') as f:
            f.write('[Daemon]\n')
            for key, value in settings.items():
                f.write('%s=%s\n' % (key, value))
            if sandbox:
                f.write('[Sandbox]\n')
                for key, value in sandbox.items():
                    f.write('%s=%s\n' % (key, value))
        # The library folder (--playbook-path) and CONFIG-DIR/playbooks.
        files = [(os.path.join(self.library_dir, rel), text)
                 for rel, text in (library or {}).items()]
        files += [(os.path.join(self.config_dir, 'playbooks', rel), text)
                  for rel, text in (config_library or {}).items()]
        for path, text in files:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'w') as f:
                f.write(text)
        self.retention = retention
        self.playbook_path = [self.library_dir] + list(playbook_path)
        self.proc = None

    def argv(self):
        # ITK_DAEMON_WRAPPER: e.g. "valgrind -q" or "gdb -batch -ex run -ex bt --args".
        argv = os.environ.get('ITK_DAEMON_WRAPPER', '').split()
        argv += [daemon_path(), '--bus-address=' + self.address,
                '--state-dir=' + self.state_dir, '--config-dir=' + self.config_dir]
        for d in self.playbook_path:
            argv.append('--playbook-path=' + d)
        if self.retention is not None:
            argv.append('--retention=%d' % self.retention)
        return argv

    def start(self, client):
        with open(self.stderr_path, 'ab') as err:
            err.write(b'--- starting %s\n' % ' '.join(self.argv()).encode())
            env = dict(os.environ)
            env.setdefault('G_DEBUG', 'fatal-criticals')
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=err,
                                         stderr=err, env=env, preexec_fn=_die_with_parent)
        client.wait_name(True, self)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM (SIGKILL after 5 s); returns the exit status (None if never started)."""
        if self.proc is None:
            return None
        _stop_process(self.proc)
        return self.proc.returncode

    def kill9(self):
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def restart(self, client, kill=False):
        """Stops the daemon (SIGTERM, or SIGKILL with @kill) and starts it again on the
        same folders; returns once the new one owns the name."""
        if kill:
            self.kill9()
        else:
            self.stop()
        client.wait_name(False)
        self.start(client)

    def stderr_text(self):
        try:
            with open(self.stderr_path, errors='replace') as f:
                return f.read()
        except OSError:
            return ''


# --- the client --------------------------------------------------------------------------

Message = collections.namedtuple(
    'Message', 'seq time kind sender path interface member args serial reply_serial error')


class Client:
    """A bus connection that records everything it receives, in order."""

    def __init__(self, address):
        self.address = address
        self.ctx = GLib.MainContext.default()
        self._lock = threading.Lock()
        self._messages = []
        self.conn = Gio.DBusConnection.new_for_address_sync(
            address,
            Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
            | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        self.conn.set_exit_on_close(False)
        self._filter_id = self.conn.add_filter(self._filter)
        self.add_match("type='signal',path_namespace='%s'" % MANAGER_PATH)
        self.add_match("type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',"
                       "arg0='%s'" % BUS_NAME)

    @property
    def unique_name(self):
        return self.conn.get_unique_name()

    def _filter(self, connection, message, incoming):
        if not incoming:
            return message
        now = time.monotonic()
        kind = message.get_message_type()
        if kind == Gio.DBusMessageType.SIGNAL:
            k = 'signal'
        elif kind == Gio.DBusMessageType.METHOD_RETURN:
            k = 'return'
        elif kind == Gio.DBusMessageType.ERROR:
            k = 'error'
        else:
            return message
        body = message.get_body()
        try:
            args = tuple(body.unpack()) if body is not None else ()
        except Exception:  # noqa: BLE001 - keep recording whatever arrives
            args = ()
        with self._lock:
            self._messages.append(Message(
                len(self._messages), now, k, message.get_sender(), message.get_path(),
                message.get_interface(), message.get_member(), args, message.get_serial(),
                message.get_reply_serial(), message.get_error_name()))
            # A burst of lines comes as one LogBatch(a(tuss)): after it, its
            # lines are recorded as the Log signals they stand for, so that
            # signals(path, 'Log') is the run's whole log either way.
            if k == 'signal' and message.get_member() == 'LogBatch' and len(args) == 1:
                for line in args[0]:
                    self._messages.append(Message(
                        len(self._messages), now, k, message.get_sender(), message.get_path(),
                        message.get_interface(), 'Log', tuple(line), message.get_serial(),
                        message.get_reply_serial(), message.get_error_name()))
        self.ctx.wakeup()
        return message

    def close(self):
        if self.conn is None:
            return
        try:
            self.conn.remove_filter(self._filter_id)
            self.conn.close_sync(None)
        except GLib.Error:
            pass
        self.conn = None

    # --- raw calls ---

    def call_full(self, dest, path, iface, method, args=None, timeout=TIMEOUT, flags=None):
        result = self.conn.call_sync(dest, path, iface, method, args, None,
                                     flags or Gio.DBusCallFlags.NONE, int(timeout * 1000), None)
        if result is None:
            return None
        values = result.unpack()
        if len(values) == 0:
            return None
        if len(values) == 1:
            return values[0]
        return values

    def send(self, path, method, args=None, iface=EXECUTION_IFACE):
        """Sends a method call without waiting; returns its serial (see reply())."""
        message = Gio.DBusMessage.new_method_call(BUS_NAME, path, iface, method)
        if args is not None:
            message.set_body(args)
        ok, serial = self.conn.send_message(message, Gio.DBusSendMessageFlags.NONE)
        assert ok
        return serial

    def reply(self, serial, timeout=TIMEOUT):
        """Waits for the return or error answering the call with @serial."""
        def find():
            for m in self.messages():
                if m.kind in ('return', 'error') and m.reply_serial == serial:
                    return m
            return None
        return self.wait_for(find, timeout, 'the reply to call %d' % serial)

    def add_match(self, rule):
        self.call_full('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus',
                       'AddMatch', GLib.Variant('(s)', (rule,)))

    def call(self, path, method, args=None, iface=EXECUTION_IFACE, timeout=TIMEOUT):
        """Calls @method; @args is a GLib.Variant tuple or None."""
        return self.call_full(BUS_NAME, path, iface, method, args, timeout)

    def manager(self, method, args=None, timeout=TIMEOUT):
        return self.call(MANAGER_PATH, method, args, iface=MANAGER_IFACE, timeout=timeout)

    def start_execution(self, playbook_id, params=None, options=None):
        return self.manager('StartExecution',
                            GLib.Variant.new_tuple(GLib.Variant('s', playbook_id),
                                                   vardict(params), vardict(options)))

    def get_props(self, path, iface=EXECUTION_IFACE):
        return self.call(path, 'GetAll', GLib.Variant('(s)', (iface,)), iface=PROPERTIES_IFACE)

    def get_prop(self, path, name, iface=EXECUTION_IFACE):
        return self.call(path, 'Get', GLib.Variant('(ss)', (iface, name)),
                         iface=PROPERTIES_IFACE)

    def get_steps(self, path):
        return self.call(path, 'GetSteps')

    def introspect(self, path):
        return self.call(path, 'Introspect', iface='org.freedesktop.DBus.Introspectable')

    # --- what arrived ---

    def messages(self):
        with self._lock:
            return list(self._messages)

    def signals(self, path=None, member=None, interface=None):
        return [m for m in self.messages()
                if m.kind == 'signal' and (path is None or m.path == path)
                and (member is None or m.member == member)
                and (interface is None or m.interface == interface)]

    def statuses(self, path):
        """The StatusChanged (status, previous) pairs of @path, in order."""
        return [m.args for m in self.signals(path, 'StatusChanged', EXECUTION_IFACE)]

    def finished(self, path):
        return [m for m in self.signals(path, 'Finished', EXECUTION_IFACE)]

    def describe(self, path=None, last=40):
        lines = []
        for m in self.messages()[-400:]:
            if m.kind != 'signal' or (path is not None and m.path != path):
                continue
            if m.member == 'PropertiesChanged':
                continue
            lines.append('  %.3f %s %s %r' % (m.time, m.path, m.member, m.args))
        return '\n'.join(lines[-last:]) or '  (no signals)'

    # --- waiting ---

    def iterate(self, seconds):
        """Runs the main context for up to @seconds (at least one iteration)."""
        source = GLib.timeout_source_new(max(1, int(seconds * 1000)))
        source.set_callback(lambda *a: False)
        source.attach(self.ctx)
        try:
            self.ctx.iteration(True)
        finally:
            source.destroy()

    def wait_for(self, predicate, timeout=TIMEOUT, what='a condition', path=None):
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError('timed out after %gs waiting for %s; signals:\n%s' %
                                     (timeout, what, self.describe(path)))
            self.iterate(min(remaining, 0.2))

    def idle(self, seconds):
        """Lets @seconds pass while signals keep being recorded (negative checks)."""
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self.iterate(remaining)

    def wait_signal(self, path, member, match=None, timeout=TIMEOUT, what=None):
        def find():
            for m in self.signals(path, member):
                if match is None or match(m.args):
                    return m
            return None
        return self.wait_for(find, timeout, what or '%s on %s' % (member, path), path)

    def wait_status(self, path, status, timeout=TIMEOUT):
        """Waits for StatusChanged(@status) on @path; fails early if the run ends otherwise."""
        def find():
            for m in self.signals(path, 'StatusChanged', EXECUTION_IFACE):
                if m.args[0] == status:
                    return m
            for m in self.finished(path):
                if m.args[0] != status:
                    raise AssertionError('waiting for %s, but %s ended %s (%r); signals:\n%s' %
                                         (status, path, m.args[0], m.args[1],
                                          self.describe(path)))
            return None
        return self.wait_for(find, timeout, 'status %s of %s' % (status, path), path)

    def wait_finished(self, path, timeout=TIMEOUT):
        """Waits for Finished on @path; returns the message (args: status, error)."""
        return self.wait_signal(path, 'Finished', timeout=timeout)

    def wait_step(self, path, step_id, status, timeout=TIMEOUT):
        return self.wait_signal(path, 'StepChanged',
                                lambda a: a[1] == step_id and a[2] == status, timeout,
                                'step %s %s on %s' % (step_id, status, path))

    def wait_log(self, path, text, timeout=TIMEOUT):
        return self.wait_signal(path, 'Log', lambda a: text in a[3], timeout,
                                'a Log line with %r on %s' % (text, path))

    def wait_name(self, present, daemon=None, timeout=TIMEOUT):
        def check():
            if daemon is not None and present and not daemon.running():
                raise AssertionError('ignition-toolkitd exited with %s:\n%s' %
                                     (daemon.proc.returncode, daemon.stderr_text()))
            has = self.call_full('org.freedesktop.DBus', '/org/freedesktop/DBus',
                                 'org.freedesktop.DBus', 'NameHasOwner',
                                 GLib.Variant('(s)', (BUS_NAME,)))
            return has == present
        self.wait_for(check, timeout, '%s to %s the bus' %
                      (BUS_NAME, 'appear on' if present else 'leave'))


# --- process helpers -------------------------------------------------------------------

def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def proc_state(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('State:'):
                    return line.split()[1]
    except OSError:
        return None
    return None


def ignored_signals(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('SigIgn:'):
                return int(line.split()[1], 16)
    return 0


# --- the test case -------------------------------------------------------------------------

class DaemonTestCase(unittest.TestCase):
    """One bus and one daemon per class; subclasses tune them with class attributes."""

    conf = {}
    retention = None
    library = {}
    config_library = {}
    playbook_path = ()
    # toolkit.conf's [Sandbox] group. Most tests watch their scripts from
    # outside (pids, pid files and gates in self.tmp), which the script
    # sandbox hides on purpose, so they run scripts unconfined; test_sandbox.py
    # covers confinement with the default ({}).
    sandbox = {'Enabled': 'false'}
    # Where the class's folders go (default: the system's temporary folder).
    workdir_parent = None

    @classmethod
    def setUpClass(cls):
        cls.workdir = tempfile.mkdtemp(prefix='itk-integration-', dir=cls.workdir_parent)
        cls.bus = None
        cls.client = None
        cls.daemon = None
        try:
            cls.bus = Bus(cls.workdir)
            cls.client = Client(cls.bus.address)
            cls.daemon = Daemon(cls.workdir, cls.bus.address, conf=cls.conf,
                                retention=cls.retention, library=cls.library,
                                playbook_path=cls.playbook_path,
                                config_library=cls.config_library, sandbox=cls.sandbox)
            cls.daemon.start(cls.client)
        except BaseException:
            cls._teardown_processes()
            raise

    @classmethod
    def _teardown_processes(cls):
        status = None
        if cls.client is not None:
            cls.client.close()
        if cls.daemon is not None:
            status = cls.daemon.stop()
        if cls.bus is not None:
            cls.bus.stop()
        # Reap the orphans we inherited as the subreaper.
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        return status

    @classmethod
    def tearDownClass(cls):
        status = cls._teardown_processes()
        stderr = cls.daemon.stderr_text() if cls.daemon is not None else ''
        if os.environ.get('ITK_KEEP_TMP'):
            sys.stderr.write('kept %s\n' % cls.workdir)
        else:
            shutil.rmtree(cls.workdir, ignore_errors=True)
        # SIGTERM ends the daemon cleanly (exit 0, no sanitizer report), at
        # once when nothing runs (the tests cancelled what they started).
        problems = []
        if status not in (None, 0):
            problems.append('exited with status %s on SIGTERM' % status)
        for pattern in SANITIZER_REPORTS:
            if pattern in stderr:
                problems.append('reported %r' % pattern)
        if problems:
            raise AssertionError('ignition-toolkitd %s:\n%s' % ('; '.join(problems),
                                                                stderr[-8000:]))

    def setUp(self):
        self.runs = []  # (client, path) of every execution this test started
        self.tmp = tempfile.mkdtemp(dir=self.workdir, prefix='t-')
        self.extra_clients = []

    def _failed(self):
        outcome = getattr(self, '_outcome', None)
        result = getattr(outcome, 'result', None)
        if result is None:
            return False
        return any(test is self for test, _ in result.failures + result.errors)

    def _expecting_failure(self):
        method = getattr(self, self._testMethodName)
        return getattr(method, '__unittest_expecting_failure__', False)

    def tearDown(self):
        problems = []
        for client, path in self.runs:
            if client.conn is None or not self.daemon.running():
                continue
            if any(s in TERMINAL for s, _ in client.statuses(path)):
                continue
            try:
                client.call(path, 'Cancel')
                client.wait_finished(path, TIMEOUT)
            except (GLib.Error, AssertionError):
                pass
        if not self._expecting_failure() and not self._failed():
            for client, path in self.runs:
                if client.conn is None:
                    continue
                try:
                    self.check_run_invariants(client, path)
                except AssertionError as e:
                    problems.append(str(e))
        for c in self.extra_clients:
            c.close()
        if self._failed() or problems:
            sys.stderr.write('\n--- ignition-toolkitd stderr (%s) ---\n%s\n--- end ---\n' %
                             (self.id(), self.daemon.stderr_text()[-8000:]))
        if problems:
            self.fail('\n'.join(problems))

    # --- helpers ---

    def new_client(self):
        c = Client(self.bus.address)
        self.extra_clients.append(c)
        return c

    def start(self, source=None, params=None, options=None, playbook_id='integration-test',
              client=None, **opts):
        """StartExecution; @opts are options by their D-Bus name with '_' for '-'."""
        client = client or self.client
        options = dict(options or {})
        if source is not None:
            options['source'] = source
        for key, value in opts.items():
            options[key.replace('_', '-')] = value
        path = client.start_execution(playbook_id, params, options)
        self.assertTrue(path.startswith(EXECUTION_PREFIX), path)
        self.runs.append((client, path))
        return path

    def run_to_end(self, source, params=None, timeout=TIMEOUT, **opts):
        path = self.start(source, params, **opts)
        m = self.client.wait_finished(path, timeout)
        return path, m.args[0], m.args[1]

    def call(self, path, method, args=None, client=None):
        return (client or self.client).call(path, method, args)

    def assertDBusError(self, name, func, *args, **kwargs):
        """Calls func; asserts it fails with the D-Bus error @name; returns the message."""
        try:
            func(*args, **kwargs)
        except GLib.Error as e:
            got, message = dbus_error(e)
            self.assertEqual(got, name, 'expected %s, got %s: %s' % (name, got, message))
            return message
        self.fail('expected the D-Bus error %s, but the call succeeded' % name)

    def assertControlError(self, path, method, name, client=None):
        return self.assertDBusError(name, (client or self.client).call, path, method)

    def assertDaemonAlive(self):
        self.assertTrue(self.daemon.running(), 'the daemon died:\n' + self.daemon.stderr_text())
        self.client.manager('ListExecutions')

    def wait_cancelled(self, path, since, client=None):
        """Waits for the run to end cancelled; asserts that took under CANCEL_PROMPT s."""
        client = client or self.client
        m = client.wait_finished(path, TIMEOUT)
        self.assertEqual(m.args[0], 'cancelled', 'Finished%r' % (m.args,))
        status = [s for s, _ in client.statuses(path)]
        self.assertEqual(status[-1], 'cancelled', status)
        elapsed = m.time - since
        self.assertLess(elapsed, CANCEL_PROMPT,
                        'Cancel took %.2fs to end the run' % elapsed)
        return m

    def check_run_invariants(self, client, path):
        """Monotonic, legal transitions; one Finished, the last signal of the object."""
        seen = client.statuses(path)
        current = 'pending'
        for status, previous in seen:
            self.assertEqual(previous, current, '%s: StatusChanged(%s, %s) after %s: %r' %
                             (path, status, previous, current, seen))
            self.assertIn((previous, status), LEGAL_EDGES,
                          '%s: illegal transition %s -> %s: %r' % (path, previous, status, seen))
            current = status
        fin = client.finished(path)
        if current in TERMINAL:
            self.assertEqual(len(fin), 1, '%s: %d Finished signals' % (path, len(fin)))
            self.assertEqual(fin[0].args[0], current)
            later = [m for m in client.signals(path) if m.seq > fin[0].seq]
            self.assertEqual(later, [], '%s: signals after Finished: %r' % (path, later))
        else:
            self.assertEqual(fin, [], '%s: Finished while %s' % (path, current))


def main():
    unittest.main(verbosity=2)
