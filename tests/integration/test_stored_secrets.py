#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Every stored secret is masked in every run, referenced or not, in plain,
base64 and URL-encoded forms (docs/security.md): a script that prints a
stored password it never referenced, built so that it is not in the source,
shows only the mask. A secret set while the run is live is masked from then
on; one deleted meanwhile stays masked in that run."""

import base64
import os
import shutil
import tempfile
import urllib.parse

from itk_harness import gate_shell, main, playbook, python_step, shell_step
from test_credentials import REDACTED, CredentialTestCase, history, outputs, set_credential, \
    delete_credential

# Space, '/', '+' and '?' so that every encoder escapes something.
EARLY = 'Early Stored/9c1d+x?'
LATE = 'Late Stored/4b7e+y?'


def script(secret_parts):
    """A Python step printing @secret (given in pieces, so that the playbook
    text never holds it) in every encoding."""
    return ('import base64, urllib.parse\n'
            's = "".join(%r)\n'
            'b = s.encode()\n'
            'print("PLAIN=" + s)\n'
            'print("B64=" + base64.b64encode(b).decode())\n'
            'print("B64URL=" + base64.urlsafe_b64encode(b).decode().rstrip("="))\n'
            'print("BASIC=Basic " + base64.b64encode(b"admin:" + b).decode())\n'
            'print("URL=" + urllib.parse.quote(s, safe=""))\n'
            'print("URLLOWER=" + "".join("%%%%%%02x" %% c for c in b))\n'
            'print("FORM=" + urllib.parse.quote_plus(s))\n' % (secret_parts,))


def traces(secret):
    """What must not be seen of @secret: each form, and the characters of
    the Basic header made of its bits alone."""
    b = secret.encode()
    basic = base64.b64encode(b'admin:' + b).decode()
    first, end = (8 * 6 + 5) // 6, (8 * (6 + len(b))) // 6
    return (secret, base64.b64encode(b).decode().rstrip('='),
            base64.urlsafe_b64encode(b).decode().rstrip('='), basic[first:end],
            urllib.parse.quote(secret, safe=''), urllib.parse.quote_plus(secret),
            ''.join('%%%02x' % c for c in b), secret.split()[1])


class TestStoredSecrets(CredentialTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix='itk-secrets-')
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_unreferenced_secrets_masked(self):
        set_credential(self.client, 'early', {'username': 'u', 'password': EARLY})
        gate = os.path.join(self.tmp, 'gate')
        source = playbook(
            python_step('before', script(list(EARLY))),
            shell_step('wait', gate_shell('WAITING', gate)),
            python_step('after_early', script(list(EARLY))),
            python_step('after_late', script(list(LATE))),
            name='Unreferenced secrets')
        path = self.start(source, {}, playbook_id='unreferenced-secrets')
        run_id = self.client.get_prop(path, 'Id')
        self.assertTrue(self.client.wait_log(path, 'WAITING'))
        # While the run is live: a new secret, and the first one deleted.
        set_credential(self.client, 'late', {'username': 'u', 'password': LATE})
        delete_credential(self.client, 'early')
        with open(gate, 'w'):
            pass
        fin = self.client.wait_finished(path)
        self.assertEqual(fin.args[0], 'completed', fin.args)

        out = outputs(self.client.get_steps(path))
        for step in ('before', 'after_early', 'after_late'):
            # The script really printed every form (else this proves nothing).
            keys = ('PLAIN', 'B64', 'B64URL', 'BASIC', 'URL', 'URLLOWER', 'FORM')
            for key in keys:
                self.assertIn(REDACTED, out[step][key], (step, key))
        everything = [
            ('GetSteps', self.client.get_steps(path)),
            ('GetLog', self.client.call(path, 'GetLog', self.variant_u(0))),
            ('GetHistory', history(self.client)),
            ('signals', [m.args for m in self.client.messages()]),
        ]
        for where, data in everything:
            self.assertNoTrace(where, data, traces(EARLY) + traces(LATE))
        self.assertTrue(run_id)

    def test_run_started_after_delete_not_masked(self):
        # Deleted before the run: nothing of it is masked any more (the rule
        # is "runs that could see it", not "forever").
        set_credential(self.client, 'gone', {'username': 'u', 'password': 'Gone-Secret-77'})
        delete_credential(self.client, 'gone')
        path = self.start(playbook(python_step('p', script(list('Gone-Secret-77')))), {},
                          playbook_id='after-delete')
        fin = self.client.wait_finished(path)
        self.assertEqual(fin.args[0], 'completed', fin.args)
        self.assertEqual(outputs(self.client.get_steps(path))['p']['PLAIN'], 'Gone-Secret-77')

    @staticmethod
    def variant_u(value):
        from itk_harness import GLib
        return GLib.Variant('(u)', (value,))


if __name__ == '__main__':
    main()
