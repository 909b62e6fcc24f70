#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The bridge's library endpoints (PUT/DELETE /api/playbooks/{id},
POST /api/playbooks/validate) over a real daemon: they map SavePlaybook,
DeletePlaybook and ValidatePlaybook faithfully, errors included."""

import json
import unittest

import itk_harness as h
from test_bridge import LIBRARY, QUICK, BridgeTestCase

CTX_SECRET = 'ctx-Secret-Pw-4411'
WITH_CREDENTIAL = h.playbook(
    h.log_step('one', 'hello {{ username }} at {{ gateway_url }}'),
    h.log_step('two', 'who {{ who }}'), name='Uses a credential',
    parameters=[{'name': 'gateway_url', 'type': 'string', 'required': True},
                {'name': 'username', 'type': 'string', 'required': True},
                {'name': 'password', 'type': 'string', 'required': True},
                {'name': 'who', 'type': 'string', 'required': True}])


class TestBridgeLibrary(BridgeTestCase):
    library = dict(LIBRARY, **{'ctx/cred.yaml': WITH_CREDENTIAL})

    def test_validate(self):
        got = self.api_ok('POST', '/api/playbooks/validate', {'source': QUICK})
        self.assertEqual(got, {'diagnostics': []})
        got = self.api_ok('POST', '/api/playbooks/validate',
                          {'source': 'name: x\nsteps:\n  - id: a\n    name: A\n'
                                     '    type: no.such\n'})
        errors = [d for d in got['diagnostics'] if d['severity'] == 'error']
        self.assertTrue(errors, got)
        self.assertGreater(errors[0]['line'], 0)
        for key in ('severity', 'line', 'column', 'step_id', 'message'):
            self.assertIn(key, errors[0])
        self.assertApiError(400, 'InvalidArgs', 'POST', '/api/playbooks/validate', {})
        self.assertApiError(400, 'InvalidArgs', 'POST', '/api/playbooks/validate',
                            {'source': 5})
        self.assertApiError(405, 'MethodNotAllowed', 'GET', '/api/playbooks/validate')

    def test_save_and_delete(self):
        source = QUICK.replace('Quick', 'My copy')
        got = self.api_ok('PUT', '/api/playbooks/mine/copy.yaml', {'source': source})
        self.assertEqual(got, {'id': 'mine/copy.yaml', 'diagnostics': []})
        listed = {p['id']: p for p in self.api_ok('GET', '/api/playbooks')}
        self.assertTrue(listed['mine/copy.yaml']['local'])
        self.assertEqual(listed['mine/copy.yaml']['origin'], 'local')
        self.assertFalse(listed['quick.yaml']['local'])
        self.assertEqual(self.api_ok('GET', '/api/playbooks/mine/copy.yaml')['source'], source)
        # Invalid text: 422 with the daemon's message; the saved one stays.
        bad = self.assertApiError(422, 'InvalidPlaybook', 'PUT', '/api/playbooks/mine/copy.yaml',
                                  {'source': 'steps: ['})
        self.assertIn('not saved', bad['message'])
        self.assertEqual(self.api_ok('GET', '/api/playbooks/mine/copy.yaml')['source'], source)
        # Read-only and bad ids.
        ro = self.assertApiError(403, 'AccessDenied', 'DELETE', '/api/playbooks/quick.yaml')
        self.assertIn('read-only', ro['message'])
        self.assertApiError(403, 'AccessDenied', 'PUT', '/api/playbooks/quick.yaml',
                            {'source': source})
        self.assertApiError(400, 'InvalidArgs', 'PUT', '/api/playbooks/x.txt', {'source': source})
        self.assertApiError(400, 'InvalidArgs', 'PUT', '/api/playbooks/a/.hidden.yaml',
                            {'source': source})
        # A foreign page may not write.
        self.assertApiError(403, 'Forbidden', 'PUT', '/api/playbooks/evil.yaml',
                            {'source': source}, headers={'Origin': 'http://evil.example'})
        self.assertApiError(401, 'Unauthorized', 'DELETE', '/api/playbooks/mine/copy.yaml',
                            token=None)
        status, body, _ = self.http('DELETE', '/api/playbooks/mine/copy.yaml')
        self.assertEqual((status, body), (204, None))
        self.assertApiError(404, 'NoSuchPlaybook', 'DELETE', '/api/playbooks/mine/copy.yaml')
        self.assertNotIn('mine/copy.yaml',
                         [p['id'] for p in self.api_ok('GET', '/api/playbooks')])

    def test_run_context(self):
        self.api_ok('POST', '/api/credentials',
                    {'name': 'ctx-gw', 'username': 'ctx-user', 'password': CTX_SECRET,
                     'gateway_url': 'http://127.0.0.1:9'}, status=201)
        started = self.start_http('ctx/cred.yaml', {'who': 'someone'}, credential_name='ctx-gw',
                                  timeout_overrides={'one': 45, 'two': 7})
        self.client.wait_finished(started['path'])
        ctx = self.api_ok('GET', '/api/executions/%s/context' % started['execution_id'])
        self.assertEqual(ctx['execution_id'], started['execution_id'])
        self.assertEqual(ctx['playbook'], 'ctx/cred.yaml')
        self.assertEqual(ctx['credential'], 'ctx-gw')
        self.assertEqual(ctx['timeout_overrides'], {'one': 45, 'two': 7})
        self.assertEqual(ctx['parameters']['who'], 'someone')
        self.assertEqual(ctx['parameters']['username'], 'ctx-user')
        self.assertEqual(ctx['parameters']['password'], '********')
        self.assertNotIn(CTX_SECRET, json.dumps(ctx))
        # Without options: empty, not missing.
        plain = self.start_http('quick.yaml')
        self.client.wait_finished(plain['path'])
        ctx = self.api_ok('GET', '/api/executions/%s/context' % plain['execution_id'])
        self.assertEqual((ctx['credential'], ctx['gateway_url'], ctx['timeout_overrides']),
                         ('', '', {}))
        self.assertApiError(404, 'NoSuchExecution', 'GET',
                            '/api/executions/%s/context' % ('0' * 32))
        self.assertApiError(405, 'MethodNotAllowed', 'POST',
                            '/api/executions/%s/context' % plain['execution_id'], {})
        self.http('DELETE', '/api/credentials/ctx-gw')


if __name__ == '__main__':
    unittest.main(verbosity=2)
