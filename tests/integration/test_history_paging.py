#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Paged history and logs over the bus (GetHistoryPage, GetHistoryLogPage,
Execution.GetLogPage), bad input to them, and history retention (HistoryMaxRuns,
HistoryMaxAgeDays) in a running daemon."""

import os
import sqlite3
import time
import uuid

from itk_harness import (INVALID_ARGS, NO_SUCH_EXECUTION, DaemonTestCase, GLib, log_step, main,
                         playbook, shell_step, sleep_step)

LONG = 600


def vardict(d):
    return {k: v if isinstance(v, GLib.Variant) else GLib.Variant('s', v) for k, v in d.items()}


def history_page(client, filt=None, limit=0, cursor=''):
    return client.manager('GetHistoryPage',
                          GLib.Variant('(a{sv}us)', (vardict(filt or {}), limit, cursor)))


def all_pages(client, filt=None, limit=0):
    ids, cursor, pages = [], '', 0
    while True:
        runs, cursor = history_page(client, filt, limit, cursor)
        pages += 1
        ids += [r['id'] for r in runs]
        if cursor == '':
            return ids, pages


class TestHistoryPaging(DaemonTestCase):

    def finished_run(self, label, source=None):
        path = self.start(source or playbook(log_step('a', 'run ' + label)), playbook_id=label)
        status = self.client.wait_finished(path).args[0]
        return path, self.client.get_prop(path, 'Id'), status

    def test_pages_follow_the_cursor(self):
        ids = [self.finished_run('paging-%d' % i)[1] for i in range(7)]
        got, pages = all_pages(self.client, {'text': 'PAGING-'}, 3)
        self.assertEqual(got, list(reversed(ids)))
        self.assertEqual(pages, 3)
        # The same runs, in the same order, as the unpaged call.
        whole = [r['id'] for r in self.client.manager('GetHistory', GLib.Variant('(us)', (0, '')))
                 if r['id'] in ids]
        self.assertEqual(whole, got)
        # A run finished between two pages does not shift the next one.
        first, cursor = history_page(self.client, {'text': 'paging-'}, 3)
        self.finished_run('paging-late')
        second, _ = history_page(self.client, {'text': 'paging-'}, 3, cursor)
        self.assertEqual([r['id'] for r in first + second], list(reversed(ids))[:6])

    def test_filters(self):
        _, done, _ = self.finished_run('flt-a')
        _, failed, status = self.finished_run('flt-b', playbook(shell_step('a', 'exit 3')))
        self.assertEqual(status, 'failed')
        runs, _ = history_page(self.client, {'playbook': 'flt-b'})
        self.assertEqual([r['id'] for r in runs], [failed])
        runs, _ = history_page(self.client, {'status': 'failed', 'text': 'flt-'})
        self.assertEqual([r['id'] for r in runs], [failed])
        runs, _ = history_page(self.client, {'status': 'completed', 'text': 'flt-'})
        self.assertEqual([r['id'] for r in runs], [done])
        created = {r['id']: r['created-at'] for r in history_page(self.client, {'text': 'flt-'})[0]}
        since = GLib.Variant('x', created[failed])
        runs, _ = history_page(self.client, {'text': 'flt-', 'since': since})
        self.assertEqual([r['id'] for r in runs], [failed])
        until = GLib.Variant('x', created[failed])
        runs, _ = history_page(self.client, {'text': 'flt-', 'until': until})
        self.assertEqual([r['id'] for r in runs], [done])
        # The documented keys of GetHistory.
        self.assertEqual(runs[0]['playbook'], 'flt-a')
        self.assertEqual(runs[0]['status'], 'completed')

    def test_bad_input(self):
        cases = [
            ({'colour': 'red'}, 0, '', 'colour'),
            ({'since': 'yesterday'}, 0, '', "'since' must be of type 'x'"),
            ({'status': GLib.Variant('i', 3)}, 0, '', "'status' must be of type 's'"),
            ({'status': 'running'}, 0, '', 'running'),
            ({}, 1001, '', '1000'),
            ({}, 0, 'garbage', 'invalid cursor'),
            ({}, 0, 'h1:12:x', 'invalid cursor'),
            ({}, 0, 'l1:4', 'invalid cursor'),
            ({}, 0, 'x' * 5000, 'cursor'),
        ]
        for filt, limit, cursor, expect in cases:
            message = self.assertDBusError(INVALID_ARGS, history_page, self.client, filt, limit,
                                           cursor)
            self.assertIn(expect, message)
            self.assertNotIn('x' * 100, message)
        self.assertDaemonAlive()

    def test_log_pages(self):
        source = playbook(shell_step('a', 'for i in $(seq 12); do echo line $i; done'))
        path, run_id, status = self.finished_run('logpaging', source)
        self.assertEqual(status, 'completed')
        everything = self.client.call(path, 'GetLog', GLib.Variant('(u)', (0,)))
        self.assertGreaterEqual(len(everything), 12, everything)

        def follow(fetch):
            lines, cursor = [], ''
            while True:
                page, cursor = fetch(cursor)
                self.assertLessEqual(len(page), 5)
                lines += page
                if cursor == '':
                    return lines

        live = follow(lambda c: self.client.call(path, 'GetLogPage',
                                                 GLib.Variant('(us)', (5, c))))
        stored = follow(lambda c: self.client.manager(
            'GetHistoryLogPage', GLib.Variant('(sus)', (run_id.replace('-', ''), 5, c))))
        self.assertEqual([tuple(x) for x in live], [tuple(x) for x in everything])
        self.assertEqual([tuple(x) for x in stored], [tuple(x) for x in everything])

        for limit, cursor, expect in ((5001, '', '5000'), (0, 'nope', 'invalid cursor'),
                                      (0, 'h1:1:1', 'invalid cursor')):
            message = self.assertDBusError(INVALID_ARGS, self.client.call, path, 'GetLogPage',
                                           GLib.Variant('(us)', (limit, cursor)))
            self.assertIn(expect, message)
            message = self.assertDBusError(INVALID_ARGS, self.client.manager,
                                           'GetHistoryLogPage',
                                           GLib.Variant('(sus)', (run_id, limit, cursor)))
            self.assertIn(expect, message)
        self.assertDBusError(NO_SUCH_EXECUTION, self.client.manager, 'GetHistoryLogPage',
                             GLib.Variant('(sus)', (str(uuid.uuid4()), 0, '')))
        self.assertDaemonAlive()

    def test_live_log_cursor_stays(self):
        path = self.start(playbook(log_step('a', 'first'), sleep_step('b', LONG)),
                          playbook_id='live-log')
        self.client.wait_step(path, 'b', 'running')
        lines, cursor = self.client.call(path, 'GetLogPage', GLib.Variant('(us)', (1000, '')))
        self.assertTrue(any('first' in line[3] for line in lines))
        self.assertNotEqual(cursor, '')
        more, cursor2 = self.client.call(path, 'GetLogPage', GLib.Variant('(us)', (1000, cursor)))
        self.assertEqual(list(more), [])
        self.assertEqual(cursor2, cursor)
        self.call(path, 'Cancel')
        self.client.wait_finished(path)


class TestRetention(DaemonTestCase):
    retention = 0  # finished runs leave the bus at once
    conf = {'HistoryMaxRuns': 3, 'HistoryMaxAgeDays': 30, 'HistoryPruneIntervalSeconds': 1}

    def stored_ids(self):
        db = sqlite3.connect(os.path.join(self.daemon.state_dir, 'history.db'), timeout=10)
        try:
            return {row[0] for row in db.execute('SELECT id FROM executions')}
        finally:
            db.close()

    def test_prunes_by_count_and_age(self):
        runs_dir = os.path.join(self.daemon.state_dir, 'runs')
        # An old run (with a folder) and an old live one, written as a
        # previous daemon would have left them.
        old, old_live = str(uuid.uuid4()), str(uuid.uuid4())
        old_folder = os.path.join(runs_dir, old.replace('-', ''))
        os.makedirs(old_folder, exist_ok=True)
        with open(os.path.join(old_folder, 'out.txt'), 'w') as f:
            f.write('x')
        long_ago = int((time.time() - 100 * 86400) * 1e6)
        db = sqlite3.connect(os.path.join(self.daemon.state_dir, 'history.db'), timeout=10)
        db.execute("INSERT INTO executions (id, status, created_at) VALUES (?, 'completed', ?)",
                   (old, long_ago))
        db.execute("INSERT INTO executions (id, status, created_at) VALUES (?, 'running', ?)",
                   (old_live, long_ago - 1))
        db.commit()
        db.close()

        ids = []
        for i in range(6):
            path = self.start(playbook(shell_step('a', 'echo kept > out.txt')),
                              playbook_id='retention-%d' % i)
            self.assertEqual(self.client.wait_finished(path).args[0], 'completed')
            ids.append(str(uuid.UUID(path.rsplit('/', 1)[1])))

        # The three newest stay (the old live run counts but is never pruned).
        self.client.wait_for(lambda: self.stored_ids() == set(ids[3:]) | {old_live},
                             timeout=60, what='pruning')
        for run_id in ids:
            folder = os.path.join(runs_dir, run_id.replace('-', ''))
            self.client.wait_for(lambda: os.path.isdir(folder) == (run_id in ids[3:]),
                                 timeout=30, what='the folder of %s' % run_id)
        self.assertFalse(os.path.exists(old_folder))
        runs, _ = history_page(self.client, {'text': 'retention-'})
        self.assertEqual([r['id'] for r in runs], list(reversed(ids[3:])))
        self.assertDaemonAlive()


if __name__ == '__main__':
    main()
