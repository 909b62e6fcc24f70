#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The bridge's library endpoints (PUT/DELETE /api/playbooks/{id},
POST /api/playbooks/validate) over a real daemon: they map SavePlaybook,
DeletePlaybook and ValidatePlaybook faithfully, errors included."""

import unittest

import itk_harness as h
from test_bridge import QUICK, BridgeTestCase


class TestBridgeLibrary(BridgeTestCase):

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


if __name__ == '__main__':
    unittest.main(verbosity=2)
