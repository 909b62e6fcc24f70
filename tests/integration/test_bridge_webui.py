# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the web UI needs of ignition-toolkit-bridge: GET /api/history (filters,
paging, bad input) and the WebSocket token as an offered subprotocol.
"""

import socket
import time
import urllib.parse

import itk_harness as h
from test_bridge import BridgeTestCase

QUICK = h.playbook(h.log_step('one', 'first'), name='Quick')
OTHER = h.playbook(h.log_step('one', 'other text'), name='Other needle')
FAILS = h.playbook(h.shell_step('one', 'exit 3'), name='Fails')


class HistoryTest(BridgeTestCase):
    library = {'quick.yaml': QUICK, 'other.yaml': OTHER, 'fails.yaml': FAILS}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ids = {}

    def run_one(self, playbook):
        body = self.api_ok('POST', '/api/executions', {'playbook_path': playbook}, status=201)
        eid = body['execution_id']

        def done():
            status, rec, _ = self.http('GET', '/api/executions/' + eid)
            return status == 200 and rec['status'] in ('completed', 'failed', 'cancelled') and rec
        rec = self.client.wait_for(done, what='the run of %s to end' % playbook)
        return eid, rec['status']

    def history(self, **query):
        q = urllib.parse.urlencode(query)
        return self.api_ok('GET', '/api/history' + ('?' + q if q else ''))

    def all_pages(self, **query):
        runs, cursor, pages = [], '', 0
        while True:
            page = self.history(cursor=cursor, **query)
            runs += page['runs']
            pages += 1
            cursor = page['next_cursor']
            self.assertLess(pages, 50, 'paging never ends')
            if not cursor:
                return runs, pages

    def test_filters_and_paging(self):
        t0 = int(time.time() * 1e6)
        quick = [self.run_one('quick.yaml')[0] for _ in range(3)]
        other, _ = self.run_one('other.yaml')
        failed, status = self.run_one('fails.yaml')
        self.assertEqual(status, 'failed')

        first = self.history()
        ids = [r['execution_id'] for r in first['runs']]
        self.assertEqual(first['next_cursor'], '')
        for eid in quick + [other, failed]:
            self.assertIn(eid, ids)
        # Newest first, each a summary with times and result.
        self.assertEqual(ids[0], failed)
        run = first['runs'][0]
        self.assertEqual(run['status'], 'failed')
        self.assertGreater(run['finished_at'], 0)
        self.assertGreaterEqual(run['finished_at'], run['started_at'])
        self.assertIsNone(run['path'])

        # Pages of 2: every run once, in the same order.
        paged, pages = self.all_pages(limit=2)
        self.assertEqual([r['execution_id'] for r in paged], ids)
        self.assertGreaterEqual(pages, 3)

        by_status = self.history(status='failed')['runs']
        self.assertEqual([r['execution_id'] for r in by_status], [failed])
        by_playbook = self.history(playbook='quick.yaml')['runs']
        self.assertEqual(sorted(r['execution_id'] for r in by_playbook), sorted(quick))
        # Search: the playbook name, case-insensitive; a page may need following.
        found, _ = self.all_pages(q='NEEDLE')
        self.assertEqual([r['execution_id'] for r in found], [other])
        found, _ = self.all_pages(q=other[:8])
        self.assertEqual([r['execution_id'] for r in found], [other])
        # Dates: created in [since, until).
        since, _ = self.all_pages(since=t0)
        self.assertEqual(len(since), 5)
        self.assertEqual(self.history(until=t0)['runs'],
                         [r for r in first['runs'] if r['execution_id'] not in quick + [other, failed]])
        self.assertEqual(self.history(since=int(time.time() * 1e6) + 10**9)['runs'], [])

        # Deleting one: it is gone from the history.
        self.api_ok('DELETE', '/api/executions/' + quick[0], status=204)
        after, _ = self.all_pages()
        self.assertNotIn(quick[0], [r['execution_id'] for r in after])

    def test_bad_input(self):
        for query, what in [('status=running', 'status'), ('status=bogus', 'status'),
                            ('limit=0', 'limit'), ('limit=1001', 'limit'), ('limit=x', 'limit'),
                            ('since=yesterday', 'since'), ('until=-5', 'until'),
                            ('cursor=not-a-cursor', 'cursor')]:
            body = self.assertApiError(400, 'InvalidArgs', 'GET', '/api/history?' + query)
            self.assertIn(what, body['message'], query)
        self.assertApiError(405, 'MethodNotAllowed', 'POST', '/api/history', {})
        self.assertApiError(404, 'NotFound', 'GET', '/api/history/x')
        self.assertApiError(401, 'Unauthorized', 'GET', '/api/history', token=None)
        # The daemon and the bridge keep serving.
        self.assertEqual(self.http('GET', '/api/history')[0], 200)

    def handshake(self, query='', protocols=None):
        """A raw WebSocket upgrade; returns the response head, lower-cased."""
        sock = socket.create_connection(('127.0.0.1', self.bridge.port), timeout=h.TIMEOUT)
        self.addCleanup(sock.close)
        extra = 'Sec-WebSocket-Protocol: %s\r\n' % protocols if protocols is not None else ''
        sock.sendall(('GET /ws/executions%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n'
                      'Upgrade: websocket\r\nConnection: Upgrade\r\n'
                      'Sec-WebSocket-Key: d2VidWktcHJvdG9jb2wtMQ==\r\n'
                      'Sec-WebSocket-Version: 13\r\n%s\r\n'
                      % (query, self.bridge.port, extra)).encode())
        head = b''
        while b'\r\n\r\n' not in head:
            chunk = sock.recv(1)
            if not chunk:
                break
            head += chunk
        return head.decode(errors='replace').lower()

    def test_websocket_token_as_subprotocol(self):
        token = self.bridge.token
        head = self.handshake(protocols='itk.v1, itk.token.' + token)
        self.assertTrue(head.startswith('http/1.1 101'), head)
        self.assertIn('sec-websocket-protocol: itk.v1\r\n', head)
        self.assertNotIn(token, head)
        # A wrong token, or none, is refused as in the query.
        self.assertTrue(self.handshake(protocols='itk.v1, itk.token.nope').startswith('http/1.1 401'))
        self.assertTrue(self.handshake(protocols='itk.v1').startswith('http/1.1 401'))
        self.assertTrue(self.handshake().startswith('http/1.1 401'))
        # The token right but no protocol the bridge speaks: no upgrade.
        self.assertTrue(self.handshake(protocols='other, itk.token.' + token).startswith('http/1.1 400'))
        # The query still works, with no protocol in the answer.
        head = self.handshake(query='?access_token=' + token)
        self.assertTrue(head.startswith('http/1.1 101'), head)
        self.assertNotIn('sec-websocket-protocol', head)


if __name__ == '__main__':
    h.main()
