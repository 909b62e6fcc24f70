#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Credentials over the bus (SetCredential, ListCredentials, DeleteCredential),
the `credential` start option, {{ credential.NAME.field }} references, and the
secret leak test: a playbook that tries every way of showing a password and a
token must leave no trace of them anywhere a client, the history or the
daemon's log could show."""

import glob
import hashlib
import json
import os
import stat
import unittest

from itk_harness import (ERR, INVALID_ARGS, INVALID_PLAYBOOK, MANAGER_IFACE, MANAGER_PATH,
                         DaemonTestCase, GLib, daemon_path, gate_shell, log_step, main, playbook,
                         python_step, shell_step, step)

NO_SUCH_CREDENTIAL = ERR + 'NoSuchCredential'
REDACTED = '********'

# Distinctive, so that a match is a leak and nothing else.
SECRET = 'Pw-LEAK-7f3a9c2e'
OTHER_SECRET = 'Other-PW-5e6f7a81'
TOKEN_NAME = 'leaktok'
TOKEN_KEY = 'KEY-LEAK-91b2d4c3'
TOKEN = TOKEN_NAME + ':' + TOKEN_KEY
URL = 'http://127.0.0.1:9'  # discard port: never contacted, no gateway step runs

# Each is a trace of a secret: the password, the token's key part (which
# covers the whole token) and the second credential's password.
TRACES = (SECRET, TOKEN_KEY, OTHER_SECRET)


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def set_credential(client, name, fields):
    return client.manager('SetCredential', GLib.Variant('(sa{sv})', (name, {
        k: v if isinstance(v, GLib.Variant) else GLib.Variant('s', v)
        for k, v in fields.items()})))


def list_credentials(client):
    return {c['name']: c for c in client.manager('ListCredentials')}


def delete_credential(client, name):
    return client.manager('DeleteCredential', GLib.Variant('(s)', (name,)))


def history(client):
    return client.manager('GetHistory', GLib.Variant('(us)', (0, '')))


def record(client, run_id):
    return client.manager('GetExecutionRecord', GLib.Variant('(s)', (run_id,)))


def outputs(steps):
    """{step id: parsed output} of GetSteps, nested steps as parent/child."""
    found = {}

    def walk(entries, prefix):
        for s in entries:
            sid = prefix + s['step-id']
            found[sid] = json.loads(s['output']) if s.get('output') else None
            walk(s.get('children', []), sid + '/')
    walk(steps, '')
    return found


def steps_by_id(steps):
    return {s['step-id']: s for s in steps}


class CredentialTestCase(DaemonTestCase):

    def credentials_path(self):
        return os.path.join(self.daemon.state_dir, 'credentials.json')

    def assertNoTrace(self, where, data, traces=TRACES):
        if isinstance(data, bytes):
            text = data
            needles = [t.encode() for t in traces]
        else:
            text = data if isinstance(data, str) else repr(data)
            needles = traces
        for needle in needles:
            index = text.find(needle)
            if index >= 0:
                self.fail('a secret (%r) leaked into %s: ...%r...' %
                          (needle, where, text[max(0, index - 80):index + 80]))


def daemon_has_ubsan():
    try:
        with open(daemon_path(), 'rb') as f:
            return b'__ubsan_handle' in f.read()
    except (OSError, RuntimeError):
        return False


class TestConcurrentSet(CredentialTestCase):

    def test_concurrent_sets_land_in_order(self):
        serials = []
        for i in range(1, 4):
            serials.append(self.client.send(
                MANAGER_PATH, 'SetCredential',
                GLib.Variant('(sa{sv})', ('racy', {'password': GLib.Variant('s', 'pw-%d' % i),
                                                   'description': GLib.Variant('s', str(i))})),
                iface=MANAGER_IFACE))
        replies = [self.client.reply(serial) for serial in serials]
        for reply in replies:
            self.assertEqual(reply.kind, 'return', reply)
        self.assertEqual([r.seq for r in replies], sorted(r.seq for r in replies))
        self.assertEqual(list_credentials(self.client)['racy']['description'], '3')
        with open(self.credentials_path()) as f:
            stored = json.load(f)['credentials']['racy']
        self.assertEqual((stored['password'], stored['description']), ('pw-3', '3'))


class TestCredentialApi(CredentialTestCase):

    def test_set_list_delete(self):
        set_credential(self.client, 'api-gw', {
            'username': 'admin', 'password': SECRET, 'gateway-url': URL,
            'api-token': TOKEN, 'description': 'Production'})
        entries = list_credentials(self.client)
        self.assertIn('api-gw', entries)
        entry = entries['api-gw']
        self.assertEqual(entry, {'name': 'api-gw', 'username': 'admin', 'gateway-url': URL,
                                 'description': 'Production', 'has-password': True,
                                 'has-api-token': True})
        raw = self.client.conn.call_sync(
            'org.ignition.Toolkit', '/org/ignition/Toolkit', 'org.ignition.Toolkit.Manager',
            'ListCredentials', None, None, 0, -1, None)
        self.assertNoTrace('ListCredentials', raw.print_(True))

        # A partial update keeps the other fields, secrets included.
        set_credential(self.client, 'api-gw', {'description': 'Staging'})
        entry = list_credentials(self.client)['api-gw']
        self.assertEqual(entry['description'], 'Staging')
        self.assertEqual(entry['username'], 'admin')
        self.assertTrue(entry['has-password'])
        self.assertTrue(entry['has-api-token'])

        # The store: mode 0600, JSON, the reply only once it is on disk.
        st = os.stat(self.credentials_path())
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        with open(self.credentials_path()) as f:
            stored = json.load(f)['credentials']['api-gw']
        self.assertEqual(stored['description'], 'Staging')
        self.assertEqual(stored['password'], SECRET)

        delete_credential(self.client, 'api-gw')
        self.assertNotIn('api-gw', list_credentials(self.client))
        with open(self.credentials_path()) as f:
            self.assertNotIn('api-gw', json.load(f)['credentials'])
        message = self.assertDBusError(NO_SUCH_CREDENTIAL, delete_credential, self.client,
                                       'api-gw')
        self.assertIn('api-gw', message)

    def test_set_refused(self):
        cases = [
            ('bad name', {'password': SECRET}, 'name'),
            ('../etc', {'password': SECRET}, 'name'),
            ('', {'password': SECRET}, 'name'),
            ('gw', {'pasword': SECRET}, 'pasword'),
            ('gw', {'password': GLib.Variant('i', 5)}, 'password'),
            ('gw', {'api-token': TOKEN_KEY}, 'NAME:KEY'),
        ]
        for name, fields, mentions in cases:
            with self.subTest(name=name, fields=list(fields)):
                message = self.assertDBusError(INVALID_ARGS, set_credential, self.client, name,
                                               fields)
                self.assertIn(mentions, message)
                # The value of a refused field is never echoed.
                self.assertNoTrace('the SetCredential error', message)
        self.assertNotIn('gw', list_credentials(self.client))
        self.assertDaemonAlive()

    def test_unknown_credential_option(self):
        before = self.client.manager('ListExecutions')
        message = self.assertDBusError(
            NO_SUCH_CREDENTIAL, self.client.start_execution, 'cred-unknown',
            {}, {'source': playbook(log_step('a', 'x')), 'credential': 'no-such-one'})
        self.assertIn('no-such-one', message)
        # Refused before an execution object existed.
        self.assertEqual(self.client.manager('ListExecutions'), before)
        self.assertEqual(
            [m for m in self.client.signals(member='ExecutionNew')
             if m.args[2] == 'cred-unknown'], [])

    def test_survives_restart(self):
        set_credential(self.client, 'kept', {'username': 'u1', 'password': SECRET})
        self.daemon.stop()
        self.client.wait_name(False)
        self.daemon.start(self.client)
        entry = list_credentials(self.client)['kept']
        self.assertEqual(entry['username'], 'u1')
        self.assertTrue(entry['has-password'])
        self.assertNoTrace('the daemon log', self.daemon.stderr_text())


class TestSecretsDoNotLeak(CredentialTestCase):
    """One run that tries every way to show the secrets."""

    @classmethod
    def setUpClass(cls):
        # Debug messages reach the journal of a debugging admin: check them too.
        cls._saved_debug = os.environ.get('G_MESSAGES_DEBUG')
        os.environ['G_MESSAGES_DEBUG'] = 'all'
        try:
            super().setUpClass()
        finally:
            if cls._saved_debug is None:
                del os.environ['G_MESSAGES_DEBUG']
            else:
                os.environ['G_MESSAGES_DEBUG'] = cls._saved_debug
        try:
            set_credential(cls.client, 'leaky', {
                'username': 'leakuser', 'password': SECRET, 'gateway-url': URL,
                'api-token': TOKEN, 'description': 'the one to leak'})
            set_credential(cls.client, 'other', {'username': 'someone',
                                                 'password': OTHER_SECRET})
        except BaseException:
            cls.tearDownClass()
            raise

    def collect(self, path, run_id):
        """Everything a client or an admin could read about the run."""
        c = self.client
        return [
            ('the execution properties (GetAll)', c.get_props(path)),
            ('GetLog', c.call(path, 'GetLog', GLib.Variant('(u)', (0,)))),
            ('GetSteps', c.get_steps(path)),
            ('ListExecutions', c.manager('ListExecutions')),
            ('GetHistory', history(c)),
            ('GetExecutionRecord', record(c, run_id)),
            ('the ObjectManager (GetManagedObjects)',
             c.call('/org/ignition/Toolkit', 'GetManagedObjects',
                    iface='org.freedesktop.DBus.ObjectManager')),
        ]

    def assertNothingLeaked(self, path, run_id, traces=TRACES):
        for where, data in self.collect(path, run_id):
            self.assertNoTrace(where, data, traces)
        # Every signal (StatusChanged, StepChanged, Log, Finished,
        # PropertiesChanged, InterfacesAdded, ExecutionNew) and every reply.
        messages = self.client.messages()
        self.assertTrue(any(m.member == 'InterfacesAdded' and m.args[0] == path
                            for m in messages))
        for m in messages:
            self.assertNoTrace('%s %s %s' % (m.kind, m.member or '', m.path or ''), m.args,
                               traces)
        # The files of the state directory (history.db, -wal, -shm, the run's
        # work dir), read raw; credentials.json is the store itself.
        self.client.idle(0.3)  # let the last commits land
        files = [f for f in glob.glob(os.path.join(self.daemon.state_dir, '**'), recursive=True)
                 if os.path.isfile(f) and os.path.basename(f) != 'credentials.json']
        self.assertTrue(any(os.path.basename(f) == 'history.db' for f in files), files)
        for f in files:
            with open(f, 'rb') as fh:
                self.assertNoTrace(f, fh.read(), traces)
        self.assertNoTrace('the daemon stderr', self.daemon.stderr_text(), traces)

    def test_no_trace_anywhere(self):
        py_script = (
            'import hashlib, sys\n'
            'pw = "{{ password }}"\n'
            'tok = "{{ credential.leaky.api_token }}"\n'
            'print("the password is " + pw)\n'
            'print("PW=" + pw)\n'
            'print("TOKEN=" + tok)\n'
            'print("PWHASH=" + hashlib.sha256(pw.encode()).hexdigest())\n'
            'print("TOKHASH=" + hashlib.sha256(tok.encode()).hexdigest())\n'
            'print("stderr " + pw, file=sys.stderr)\n'
            'set_variable("from_python", pw)\n')
        sh_command = (
            'echo "shell sees {{ password }}"; '
            'echo "SHPW={{ credential.leaky.password }}"; '
            'echo "SHHASH=$(printf %s "{{ credential.leaky.password }}" | sha256sum | '
            'cut -d" " -f1)"; '
            'echo "token {{ credential.leaky.api_token }}" >&2')
        source = playbook(
            python_step('py', py_script),
            shell_step('sh', sh_command),
            step('stash', 'utility.set_variable', {'name': 'stash', 'value': '{{ password }}'}),
            step('whole', 'utility.set_variable', {'name': 'whole', 'value': '{{ parameter.gw }}'}),
            log_step('log', 'stash={{ variable.stash }} py={{ variable.from_python }} '
                     'tok={{ credential.leaky.api_token }} '
                     'other={{ credential.other.password }} '
                     'param={{ parameter.gw.password }}'),
            shell_step('shfail', 'echo "fatal: {{ password }} refused" >&2; exit 3',
                       on_failure='continue'),
            python_step('boom', 'raise RuntimeError("cannot log in with " + "{{ password }}")'),
            name='Leak attempt',
            parameters=[
                {'name': 'gateway_url', 'type': 'string'},
                {'name': 'username', 'type': 'string'},
                {'name': 'password', 'type': 'string'},
                {'name': 'gw', 'type': 'credential'},
            ])
        path = self.start(source, {}, playbook_id='leak-attempt', credential='leaky')
        run_id = self.client.get_prop(path, 'Id')
        fin = self.client.wait_finished(path)

        # The run really had the secrets in hand (else this test proves nothing).
        self.assertEqual(fin.args[0], 'failed', fin.args)
        self.assertIn('cannot log in with', fin.args[1])
        self.assertIn(REDACTED, fin.args[1])
        out = outputs(self.client.get_steps(path))
        self.assertEqual(out['py']['PWHASH'], sha(SECRET))
        self.assertEqual(out['py']['TOKHASH'], sha(TOKEN))
        self.assertEqual(out['py']['PW'], REDACTED)
        self.assertEqual(out['sh']['SHHASH'], sha(SECRET))
        self.assertEqual(out['sh']['SHPW'], REDACTED)
        self.assertEqual(out['whole']['value'], {'credential': 'leaky'})
        self.assertTrue(self.client.wait_log(path, 'the password is ' + REDACTED))
        self.assertTrue(self.client.wait_log(path, 'other=' + REDACTED))
        steps = steps_by_id(self.client.get_steps(path))
        self.assertEqual(steps['shfail']['status'], 'failed')
        self.assertIn('fatal: %s refused' % REDACTED, steps['shfail']['error'])

        # The stored parameters hold the credential's name, and no password.
        rec = record(self.client, run_id)
        params = json.loads(rec['parameters'])
        self.assertEqual(params['gw'], 'leaky')
        self.assertEqual(params['username'], 'leakuser')
        self.assertEqual(params['gateway_url'], URL)
        self.assertIn('password', params)

        # Every kind of signal was there to be checked.
        for member in ('StatusChanged', 'StepChanged', 'Log', 'Finished', 'PropertiesChanged'):
            self.assertTrue(self.client.signals(path, member), 'no %s seen' % member)
        self.assertNothingLeaked(path, run_id)

    def test_reference_without_field(self):
        # Caught when the playbook is loaded: the run never starts.
        for text in ['{{ credential.leaky }}', 'login {{ credential.leaky }} now']:
            with self.subTest(text=text):
                source = playbook(log_step('a', text), log_step('b', 'not reached'))
                message = self.assertDBusError(INVALID_PLAYBOOK, self.start, source,
                                               playbook_id='cred-nofield')
                self.assertIn('needs a field', message)
                self.assertIn('credential.leaky', message)
                self.assertNoTrace('the StartExecution error', message)
                diagnostics = self.client.manager('ValidatePlaybook',
                                                  GLib.Variant('(s)', (source,)))
                self.assertTrue(any('needs a field' in d['message'] for d in diagnostics),
                                diagnostics)
                self.assertNoTrace('ValidatePlaybook', diagnostics)
        self.assertEqual([m for m in self.client.signals(member='ExecutionNew')
                          if m.args[2] == 'cred-nofield'], [])
        self.assertNoTrace('the daemon stderr', self.daemon.stderr_text())

    def test_credential_parameter_inside_text(self):
        # A credential-typed parameter is a credential, not text to paste.
        source = playbook(log_step('a', 'x {{ parameter.gw }} y'),
                          parameters=[{'name': 'gw', 'type': 'credential'}])
        path = self.start(source, {'gw': 'leaky'}, playbook_id='cred-param-text')
        fin = self.client.wait_finished(path)
        self.assertEqual(fin.args[0], 'failed')
        self.assertIn("'gw'", fin.args[1])
        self.assertNothingLeaked(path, self.client.get_prop(path, 'Id'))

    def test_unknown_credential_reference(self):
        path = self.start(playbook(log_step('a', '{{ credential.nope.password }}')),
                          playbook_id='cred-unknown-ref')
        fin = self.client.wait_finished(path)
        self.assertEqual(fin.args[0], 'failed')
        self.assertIn('nope', fin.args[1])

    def test_token_key_part_alone(self):
        script = ('tok = "{{ credential.leaky.api_token }}"\n'
                  'print("key part " + tok.split(":", 1)[1])\n')
        path = self.start(playbook(python_step('py', script)), playbook_id='cred-token-key')
        run_id = self.client.get_prop(path, 'Id')
        fin = self.client.wait_finished(path)
        self.assertEqual(fin.args[0], 'completed', fin.args)
        self.assertNothingLeaked(path, run_id, (TOKEN_KEY,))

    def test_shell_command_line(self):
        gate = os.path.join(self.tmp, 'gate')
        os.chmod(self.tmp, 0o755)
        command = 'X="{{ credential.leaky.password }}"; ' + gate_shell('cmdline-marker', gate)
        path = self.start(playbook(shell_step('sh', command)), playbook_id='cred-cmdline')
        self.client.wait_log(path, 'cmdline-marker')
        seen = []
        try:
            for entry in glob.glob('/proc/[0-9]*/cmdline'):
                try:
                    with open(entry, 'rb') as f:
                        if SECRET.encode() in f.read():
                            seen.append(entry)
                except OSError:
                    pass
        finally:
            with open(gate, 'w'):
                pass
        fin = self.client.wait_finished(path)
        self.assertEqual(fin.args[0], 'completed', fin.args)
        self.assertEqual(seen, [], 'the password is in the command line of %s' % seen)


class TestCredentialOption(CredentialTestCase):
    """`credential` fills only what the caller left out (PLAYBOOKS.md "Parameters")."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            set_credential(cls.client, 'filler', {
                'username': 'filled-user', 'password': SECRET, 'gateway-url': URL})
        except BaseException:
            cls.tearDownClass()
            raise

    SCRIPT = ('import hashlib\n'
              'def h(x): return hashlib.sha256(x.encode()).hexdigest()\n'
              'print("USERNAME={{ username }}")\n'
              'print("USER={{ user }}")\n'
              'print("GWUSER={{ gateway_username }}")\n'
              'print("GATEWAY_URL={{ gateway_url }}")\n'
              'print("URL={{ url }}")\n'
              'print("PASSWORD=" + h("{{ password }}"))\n'
              'print("PASS=" + h("{{ pass }}"))\n'
              'print("GWPASS=" + h("{{ gateway_password }}"))\n'
              'print("CRED={{ parameter.gw.username }}")\n')
    PARAMS = [{'name': n, 'type': 'string'}
              for n in ('username', 'user', 'gateway_username', 'gateway_url', 'url',
                        'password', 'pass', 'gateway_password')] + \
        [{'name': 'gw', 'type': 'credential'}]

    def run_filled(self, given, label):
        path = self.start(playbook(python_step('py', self.SCRIPT), parameters=self.PARAMS),
                          given, playbook_id=label, credential='filler')
        fin = self.client.wait_finished(path)
        self.assertEqual(fin.args[0], 'completed', fin.args)
        return path, outputs(self.client.get_steps(path))['py']

    def test_fills_every_alias(self):
        path, out = self.run_filled({}, 'fill-all')
        for key in ('USERNAME', 'USER', 'GWUSER'):
            self.assertEqual(out[key], 'filled-user', key)
        for key in ('GATEWAY_URL', 'URL'):
            self.assertEqual(out[key], URL, key)
        for key in ('PASSWORD', 'PASS', 'GWPASS'):
            self.assertEqual(out[key], sha(SECRET), key)
        # The credential-typed parameter got the credential's name.
        self.assertEqual(out['CRED'], 'filled-user')
        params = json.loads(record(self.client, self.client.get_prop(path, 'Id'))['parameters'])
        self.assertEqual(params['gw'], 'filler')
        self.assertNoTrace('the stored parameters', params)

    def test_given_values_are_kept(self):
        set_credential(self.client, 'spare', {'username': 'spare-user'})
        self.assertIn('spare', list_credentials(self.client))
        given = {'username': 'given-user', 'url': 'http://given:1', 'pass': 'given-pass-42',
                 'gw': 'spare'}
        path, out = self.run_filled(given, 'fill-some')
        self.assertEqual(out['USERNAME'], 'given-user')
        self.assertEqual(out['USER'], 'filled-user')
        self.assertEqual(out['URL'], 'http://given:1')
        self.assertEqual(out['GATEWAY_URL'], URL)
        self.assertEqual(out['PASS'], sha('given-pass-42'))
        self.assertEqual(out['PASSWORD'], sha(SECRET))
        self.assertEqual(out['CRED'], 'spare-user')


if __name__ == '__main__':
    main()
