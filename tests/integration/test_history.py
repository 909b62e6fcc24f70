#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The history store over the bus: GetHistory, GetExecutionRecord, DeleteExecution,
and runs interrupted by a daemon that was killed."""

import json
import os
import shutil
import sqlite3
import tempfile
import unittest
import uuid

from itk_harness import (EXECUTION_IFACE, INVALID_ARGS, INVALID_STATE, MANAGER_PATH,
                         NO_SUCH_EXECUTION, TERMINAL, DaemonTestCase, GLib, gate_shell, log_step,
                         main, playbook, python_step, shell_step, sleep_step, step)

LONG = 600
INTERRUPTED = 'interrupted: the daemon stopped during this run'

HISTORY_KEYS = {
    'id': 's', 'playbook': 's', 'playbook-name': 's', 'playbook-version': 's', 'domain': 's',
    'status': 's', 'error': 's', 'created-at': 'x', 'started-at': 'x', 'finished-at': 'x',
    'started-by-uid': 'u', 'total-steps': 'i', 'current-step': 'i', 'parameters': 's',
}


def history(client, limit=0, status=''):
    return client.manager('GetHistory', GLib.Variant('(us)', (limit, status)))


def record(client, run_id):
    return client.manager('GetExecutionRecord', GLib.Variant('(s)', (run_id,)))


def delete(client, run_id):
    return client.manager('DeleteExecution', GLib.Variant('(s)', (run_id,)))


class HistoryTestCase(DaemonTestCase):

    def finished_run(self, label, source=None, **kwargs):
        path = self.start(source or playbook(log_step('a', 'run ' + label)), playbook_id=label,
                          **kwargs)
        status = self.client.wait_finished(path).args[0]
        return path, self.client.get_prop(path, 'Id'), status


class TestHistory(HistoryTestCase):

    def test_newest_first_and_limit(self):
        ids = [self.finished_run('hist-%d' % i)[1] for i in range(3)]
        runs = history(self.client)
        got = [r['id'] for r in runs if r['id'] in ids]
        self.assertEqual(got, list(reversed(ids)))
        created = [r['created-at'] for r in runs]
        self.assertEqual(created, sorted(created, reverse=True))
        newest = history(self.client, 2)
        self.assertEqual([r['id'] for r in newest], [ids[2], ids[1]])
        one = history(self.client, 1)
        self.assertEqual(len(one), 1)

    def test_history_entries(self):
        source = playbook(log_step('a', 'x'), log_step('b', 'y'), name='Entry', version='3.1',
                          domain='gateway')
        path, run_id, status = self.finished_run('entry', source,
                                                 params={'user': 'bob', 'password': 'hunter2'})
        self.assertEqual(status, 'completed')
        raw = self.client.conn.call_sync(
            'org.ignition.Toolkit', MANAGER_PATH, 'org.ignition.Toolkit.Manager', 'GetHistory',
            GLib.Variant('(us)', (1, '')), None, 0, -1, None).get_child_value(0)
        entry = raw.get_child_value(0)
        types = {}
        for i in range(entry.n_children()):
            kv = entry.get_child_value(i)
            types[kv.get_child_value(0).get_string()] = \
                kv.get_child_value(1).get_variant().get_type_string()
        # Every documented key with its type (the store may add more).
        self.assertEqual({k: types.get(k) for k in HISTORY_KEYS}, HISTORY_KEYS)
        run = history(self.client, 1)[0]
        self.assertEqual(run['id'], run_id)
        self.assertEqual(run['playbook'], 'entry')
        self.assertEqual(run['playbook-name'], 'Entry')
        self.assertEqual(run['playbook-version'], '3.1')
        self.assertEqual(run['domain'], 'gateway')
        self.assertEqual(run['status'], 'completed')
        self.assertEqual(run['error'], '')
        self.assertEqual(run['started-by-uid'], os.getuid())
        self.assertEqual(run['total-steps'], 2)
        self.assertLessEqual(run['created-at'], run['started-at'])
        self.assertLessEqual(run['started-at'], run['finished-at'])
        self.assertEqual(run['finished-at'], self.client.get_prop(path, 'FinishedAt'))
        params = json.loads(run['parameters'])
        self.assertEqual(params['user'], 'bob')
        self.assertNotIn('hunter2', run['parameters'])
        self.assertIn('password', params)

    def test_status_filter(self):
        _, done, _ = self.finished_run('filter-completed')
        _, failed, status = self.finished_run('filter-failed',
                                              playbook(shell_step('a', 'exit 9')))
        self.assertEqual(status, 'failed')
        path = self.start(playbook(sleep_step('a', LONG)), playbook_id='filter-cancelled')
        cancelled = self.client.get_prop(path, 'Id')
        self.call(path, 'Cancel')
        self.client.wait_finished(path)
        for status, mine, others in (('completed', done, (failed, cancelled)),
                                     ('failed', failed, (done, cancelled)),
                                     ('cancelled', cancelled, (done, failed))):
            runs = history(self.client, 0, status)
            self.assertTrue(runs)
            self.assertEqual({r['status'] for r in runs}, {status})
            ids = [r['id'] for r in runs]
            self.assertIn(mine, ids)
            for other in others:
                self.assertNotIn(other, ids)
        failed_run = [r for r in history(self.client, 0, 'failed') if r['id'] == failed][0]
        self.assertIn("Step 'a' failed", failed_run['error'])
        message = self.assertDBusError(INVALID_ARGS, history, self.client, 0, 'bogus')
        self.assertIn('bogus', message)

    def test_live_runs_are_not_history(self):
        path = self.start(playbook(sleep_step('a', LONG)), playbook_id='live-one')
        self.client.wait_step(path, 'a', 'running')
        run_id = self.client.get_prop(path, 'Id')
        self.assertNotIn(run_id, [r['id'] for r in history(self.client)])

    def test_execution_record(self):
        path, run_id, _ = self.finished_run('record', playbook(log_step('a', 'recorded line'),
                                                               shell_step('b', 'echo K=v')))
        rec = record(self.client, run_id)
        self.assertEqual(rec['id'], run_id)
        self.assertEqual(rec['status'], 'completed')
        self.assertEqual(rec['playbook'], 'record')
        for key in HISTORY_KEYS:
            self.assertIn(key, rec)
        self.assertEqual(rec['steps'], self.client.get_steps(path))
        self.assertIn('recorded line', [line[3] for line in rec['log']])
        # The 32 hex digits work too.
        self.assertEqual(record(self.client, run_id.replace('-', ''))['id'], run_id)

    def test_execution_record_of_a_live_run(self):
        path = self.start(playbook(sleep_step('a', LONG)), playbook_id='record-live')
        self.client.wait_step(path, 'a', 'running')
        rec = record(self.client, self.client.get_prop(path, 'Id'))
        self.assertEqual(rec['status'], 'running')
        self.assertEqual(rec['steps'][0]['status'], 'running')

    def test_transitions_are_stored_before_they_are_announced(self):
        path = self.start(playbook(log_step('a', 'x'), sleep_step('b', LONG)),
                          playbook_id='stored-first')
        run_id = self.client.get_prop(path, 'Id')
        self.client.wait_step(path, 'b', 'running')
        rec = record(self.client, run_id)
        self.assertEqual(rec['status'], 'running')
        self.assertEqual([s['status'] for s in rec['steps']], ['completed', 'running'])
        self.call(path, 'Pause')
        self.client.wait_status(path, 'paused')
        self.assertEqual(record(self.client, run_id)['status'], 'paused')
        self.call(path, 'Cancel')
        self.client.wait_finished(path)
        rec = record(self.client, run_id)
        self.assertEqual(rec['status'], 'cancelled')
        self.assertEqual(rec['steps'][1]['status'], 'cancelled')
        self.assertEqual(rec['finished-at'], self.client.get_prop(path, 'FinishedAt'))

    def test_execution_record_missing(self):
        self.assertDBusError(NO_SUCH_EXECUTION, record, self.client, str(uuid.uuid4()))
        self.assertDBusError(NO_SUCH_EXECUTION, record, self.client, 'not-an-id')
        self.assertDaemonAlive()

    def test_delete_finished_run(self):
        path, run_id, _ = self.finished_run('delete-me')
        mark = len(self.client.messages())
        delete(self.client, run_id)
        self.assertNotIn(run_id, [r['id'] for r in history(self.client)])
        self.assertDBusError(NO_SUCH_EXECUTION, record, self.client, run_id)
        # Its object is removed from the bus.
        removed = self.client.wait_signal(MANAGER_PATH, 'ExecutionRemoved',
                                          lambda a: a[0] == path)
        gone = self.client.wait_signal(MANAGER_PATH, 'InterfacesRemoved',
                                       lambda a: a[0] == path)
        self.assertGreaterEqual(removed.seq, mark)
        self.assertEqual(removed.args, (path, run_id, 'completed'))
        self.assertIn(EXECUTION_IFACE, gone.args[1])
        self.assertNotIn(path, [e[0] for e in self.client.manager('ListExecutions')])
        with self.assertRaises(GLib.Error):
            self.client.get_prop(path, 'Status')
        self.assertDBusError(NO_SUCH_EXECUTION, delete, self.client, run_id)

    def test_delete_live_run(self):
        path = self.start(playbook(sleep_step('a', LONG)), playbook_id='delete-live')
        self.client.wait_step(path, 'a', 'running')
        run_id = self.client.get_prop(path, 'Id')
        message = self.assertDBusError(INVALID_STATE, delete, self.client, run_id)
        self.assertIn('running', message)
        self.assertEqual(self.client.get_prop(path, 'Status'), 'running')
        self.assertEqual(self.client.finished(path), [])
        pending = self.start(playbook(sleep_step('a', LONG)), playbook_id='delete-pending',
                             start=False)
        self.assertDBusError(INVALID_STATE, delete, self.client,
                             self.client.get_prop(pending, 'Id'))

    def test_delete_missing_run(self):
        self.assertDBusError(NO_SUCH_EXECUTION, delete, self.client, str(uuid.uuid4()))
        self.assertDaemonAlive()


CHILD = playbook(log_step('x', 'child x'), log_step('y', 'child y'), name='Child')
SECRET = 'fid-s3cret-value'


def shell_fail(step_id, **fields):
    return shell_step(step_id, 'echo failing; exit 3', **fields)


class TestFidelity(HistoryTestCase):
    """A run read back from history after it left the bus is the run that was
    shown live: the same steps (index, nesting, phase, status, attempts,
    times, masked outputs), the same progress, status and error."""
    retention = 3  # long enough to read the live view, short enough to wait for
    library = {'fid/child.yaml': CHILD}

    def live_then_stored(self, path):
        """The live view right after Finished, and the stored one once the
        object left the bus."""
        fin = self.client.wait_finished(path)
        run_id = self.client.get_prop(path, 'Id')
        live = {'steps': self.client.get_steps(path),
                'progress': self.client.get_prop(path, 'Progress'),
                'status': self.client.get_prop(path, 'Status'),
                'error': self.client.get_prop(path, 'Error'),
                'debug-mode': self.client.get_prop(path, 'DebugMode'),
                'total-steps': self.client.get_prop(path, 'TotalSteps')}
        self.assertEqual((live['status'], live['error']), tuple(fin.args))
        self.client.wait_signal(MANAGER_PATH, 'ExecutionRemoved', lambda a: a[1] == run_id)
        self.runs = [r for r in self.runs if r[1] != path]
        rec = record(self.client, run_id)
        listed = [r for r in history(self.client) if r['id'] == run_id]
        self.assertEqual(len(listed), 1)
        for key in ('progress', 'status', 'error', 'debug-mode', 'total-steps'):
            self.assertEqual(rec[key], live[key], key)
            self.assertEqual(listed[0][key], live[key], key)
        self.assertEqual(rec['steps'], live['steps'])
        self.assertNotIn(SECRET, json.dumps(rec['steps']))
        return live

    @staticmethod
    def flat(steps):
        out = []
        for s in steps:
            out.append((s['step-id'], s['index'], s['phase'], s['status']))
            out.extend(TestFidelity.flat(s['children']))
        return out

    def test_completed(self):
        source = playbook(log_step('a', 'pw {{ password }}'), sleep_step('b', 0.05),
                          python_step('c', 'print("{{ password }}")'),
                          parameters=[{'name': 'password', 'type': 'string'}])
        path = self.start(source, params={'password': SECRET})
        live = self.live_then_stored(path)
        self.assertEqual(live['progress'], 1.0)
        self.assertEqual(self.flat(live['steps']), [('a', 0, 'main', 'completed'),
                                                    ('b', 1, 'main', 'completed'),
                                                    ('c', 2, 'main', 'completed')])

    def test_failed_with_retries(self):
        source = playbook(log_step('a', 'a'), shell_fail('b', retry_count=1, retry_delay=0),
                          log_step('c', 'c'), log_step('d', 'd'), log_step('e', 'e'))
        live = self.live_then_stored(self.start(source))
        self.assertEqual(live['status'], 'failed')
        self.assertEqual(live['steps'][1]['attempts'], 2)
        self.assertEqual(live['progress'], 0.4)

    def test_cancelled(self):
        path = self.start(playbook(log_step('a', 'a'), sleep_step('b', LONG), log_step('c', 'c')))
        self.client.wait_step(path, 'b', 'running')
        self.call(path, 'Cancel')
        live = self.live_then_stored(path)
        self.assertEqual(live['status'], 'cancelled')
        self.assertEqual(self.flat(live['steps'])[1], ('b', 1, 'main', 'cancelled'))

    def test_skipped(self):
        path = self.start(playbook(sleep_step('a', LONG), log_step('b', 'b')))
        self.client.wait_step(path, 'a', 'running')
        self.call(path, 'Skip')
        live = self.live_then_stored(path)
        self.assertEqual([s['status'] for s in live['steps']], ['skipped', 'completed'])

    def test_nested(self):
        source = playbook(log_step('a', 'a'),
                          step('run', 'playbook.run', {'playbook': 'fid/child.yaml'}),
                          log_step('z', 'z'))
        live = self.live_then_stored(self.start(source))
        self.assertEqual(self.flat(live['steps']), [('a', 0, 'main', 'completed'),
                                                    ('run', 1, 'main', 'completed'),
                                                    ('run/x', 0, 'main', 'completed'),
                                                    ('run/y', 1, 'main', 'completed'),
                                                    ('z', 2, 'main', 'completed')])

    def test_rollback(self):
        source = playbook(log_step('a', 'a'), shell_fail('b', on_failure='rollback'),
                          log_step('c', 'c'),
                          rollback=[log_step('r1', 'undo 1'), log_step('r2', 'undo 2')])
        live = self.live_then_stored(self.start(source))
        self.assertEqual(live['status'], 'failed')
        self.assertEqual(self.flat(live['steps'])[3:], [('r1', 3, 'rollback', 'completed'),
                                                        ('r2', 4, 'rollback', 'completed')])

    def test_debug(self):
        path = self.start(playbook(log_step('a', 'a'), shell_fail('b'), log_step('c', 'c')),
                          debug=True)
        self.drive_debug(path)
        live = self.live_then_stored(path)
        self.assertTrue(live['debug-mode'])
        self.assertEqual([s['status'] for s in live['steps']],
                         ['completed', 'skipped', 'completed'])

    def drive_debug(self, path):
        """Resumes each pause before a step; skips the failed step."""
        def pauses():
            return len([m for m in self.client.signals(path, 'StatusChanged')
                        if m.args[0] == 'paused'])
        handled = 0
        for _ in range(10):
            self.client.wait_for(lambda: self.client.finished(path) or pauses() > handled,
                                 what='the next pause or the end of ' + path)
            if self.client.finished(path):
                return
            handled = pauses()
            current = self.client.get_prop(path, 'CurrentStepId')
            failed = [m for m in self.client.signals(path, 'StepChanged')
                      if m.args[1] == current and m.args[2] == 'failed']
            if failed:
                self.call(path, 'Skip')  # stays paused at the next step
            self.call(path, 'Resume')
        self.fail('too many pauses')


STORE_FAILED = 'org.ignition.Toolkit.Error.StoreFailed'


class TestStoreFull(HistoryTestCase):
    """The history store's disk fills up (a test-only LD_PRELOAD shim makes its
    writes fail with ENOSPC while a flag file exists): what could not be
    stored is not announced, the run fails saying why, new runs are refused
    with StoreFailed until the store writes again, and the journal says so."""

    @classmethod
    def setUpClass(cls):
        shim = os.environ.get('ITK_TEST_ENOSPC_SHIM')
        if not shim or not os.path.exists(shim):
            raise unittest.SkipTest('ITK_TEST_ENOSPC_SHIM (the test-only shim) is not built')
        cls.flag_dir = tempfile.mkdtemp(prefix='itk-enospc-')
        cls.flag = os.path.join(cls.flag_dir, 'disk-full')
        saved = dict(os.environ)
        os.environ['LD_PRELOAD'] = shim
        os.environ['ITK_TEST_ENOSPC_FLAG'] = cls.flag
        # The shim comes before the sanitizer runtime in the load order.
        os.environ['ASAN_OPTIONS'] = ':'.join(
            filter(None, [os.environ.get('ASAN_OPTIONS'), 'verify_asan_link_order=0']))
        try:
            super().setUpClass()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.flag_dir, ignore_errors=True)

    def stored(self, run_id):
        """The run's row as the store has it (GetExecutionRecord shows a live
        run's status from the engine)."""
        db = sqlite3.connect('file:%s?mode=ro' % os.path.join(self.daemon.state_dir,
                                                              'history.db'), uri=True)
        try:
            return db.execute('SELECT status, error FROM executions WHERE id = ?',
                              (run_id,)).fetchone()
        finally:
            db.close()

    def disk(self, full):
        if full:
            open(self.flag, 'w').close()
        elif os.path.exists(self.flag):
            os.unlink(self.flag)

    def test_disk_full(self):
        self.addCleanup(self.disk, False)
        gate = os.path.join(self.flag_dir, 'gate')
        path = self.start(playbook(log_step('a', 'a'),
                                   shell_step('b', gate_shell('waiting', gate)),
                                   log_step('c', 'never announced')))
        self.client.wait_log(path, 'waiting')
        self.disk(True)
        open(gate, 'w').close()  # the next transition cannot be stored
        fin = self.client.wait_finished(path)
        self.assertEqual(fin.args[0], 'failed')
        self.assertTrue(fin.args[1].startswith('the history store failed: '), fin.args[1])
        self.assertIn('full', fin.args[1])
        self.assertEqual(self.client.get_prop(path, 'Error'), fin.args[1])
        # Nothing that could not be stored was announced.
        logs = [m.args[3] for m in self.client.signals(path, 'Log')]
        self.assertNotIn('gate passed', logs)
        self.assertEqual([m for m in self.client.signals(path, 'StepChanged')
                          if m.args[1] in ('b', 'c') and m.args[2] == 'completed'], [])
        self.assertIn('history store failed', self.daemon.stderr_text())

        # New runs are refused, by name, saying why; each refusal is in the journal.
        for _ in range(2):
            message = self.assertDBusError(STORE_FAILED, self.client.start_execution,
                                           'refused', None,
                                           {'source': playbook(log_step('a', 'x'))})
            self.assertIn('history store', message)
            self.assertIn('full', message)
        self.assertEqual(self.daemon.stderr_text().count('refusing a new run'), 2)
        self.assertDaemonAlive()

        # Until then the store has the run as it last could: running.
        run_id = self.client.get_prop(path, 'Id')
        self.assertEqual(self.stored(run_id), ('running', ''))

        # The disk has room again: runs start, and the journal says so.
        self.disk(False)
        _, _, status = self.finished_run('after-the-disk-full')
        self.assertEqual(status, 'completed')
        self.assertIn('the history store writes again', self.daemon.stderr_text())
        # ...and the failed run's end is stored at last, as it was announced.
        self.assertEqual(self.stored(run_id), tuple(fin.args))


    def test_pause_that_cannot_be_stored(self):
        self.addCleanup(self.disk, False)
        path = self.start(playbook(sleep_step('a', LONG)))
        self.client.wait_step(path, 'a', 'running')
        self.disk(True)
        self.call(path, 'Pause')
        fin = self.client.wait_finished(path)
        self.assertEqual(fin.args[0], 'failed')
        self.assertIn('the history store failed', fin.args[1])
        # "paused" was never stored, so never announced, not even as "previous".
        self.assertEqual(self.client.statuses(path), [('running', 'pending'),
                                                      ('failed', 'running')])
        self.disk(False)
        _, _, status = self.finished_run('after-the-pause')
        self.assertEqual(status, 'completed')


class TestRestart(HistoryTestCase):

    def test_kill9_marks_live_runs_interrupted(self):
        _, done, _ = self.finished_run('before-kill')
        running = self.start(playbook(log_step('first', 'x'), sleep_step('a', LONG)),
                             playbook_id='killed-running')
        pending = self.start(playbook(sleep_step('a', LONG)), playbook_id='killed-pending',
                             start=False)
        paused = self.start(playbook(sleep_step('a', LONG)), playbook_id='killed-paused')
        self.client.wait_step(running, 'a', 'running')
        self.client.wait_step(paused, 'a', 'running')
        self.call(paused, 'Pause')
        self.client.wait_status(paused, 'paused')
        ids = {p: self.client.get_prop(p, 'Id') for p in (running, pending, paused)}
        self.daemon.restart(self.client, kill=True)

        runs = {r['id']: r for r in history(self.client)}
        for path, run_id in ids.items():
            self.assertIn(run_id, runs, path)
            self.assertEqual(runs[run_id]['status'], 'failed')
            self.assertEqual(runs[run_id]['error'], INTERRUPTED)
            self.assertGreater(runs[run_id]['finished-at'], 0)
            rec = record(self.client, run_id)
            self.assertEqual((rec['status'], rec['error']), ('failed', INTERRUPTED))
        self.assertEqual(runs[done]['status'], 'completed')
        self.assertEqual(runs[done]['error'], '')
        # What was announced before the kill was stored.
        steps = record(self.client, ids[running])['steps']
        self.assertEqual(steps[0]['status'], 'completed')
        # The step that was running when the daemon died failed with the run.
        self.assertEqual((steps[1]['status'], steps[1]['error']), ('failed', INTERRUPTED))
        self.assertEqual(set(ids.values()) & {r['id'] for r in
                                              history(self.client, 0, 'failed')},
                         set(ids.values()))
        # Nothing of the old daemon is live any more.
        for entry in self.client.manager('ListExecutions'):
            self.assertNotIn(entry[1], ids.values())
            self.assertIn(entry[3], TERMINAL)
        # The new daemon runs playbooks.
        _, _, status = self.finished_run('after-restart')
        self.assertEqual(status, 'completed')
        # The old objects died with the old daemon: no Finished was invented.
        self.runs = [r for r in self.runs if r[1] not in ids]

    def test_run_folder_failure_leaves_no_row(self):
        # The run's folder is made before its history row: when it cannot be
        # made the start is refused and nothing is left "pending" (which the
        # next daemon would report as an interrupted run).
        runs = os.path.join(self.daemon.state_dir, 'runs')
        aside = runs + '.aside'
        if os.path.exists(runs):
            os.rename(runs, aside)
        with open(runs, 'w') as f:
            f.write('not a folder\n')
        try:
            try:
                self.client.start_execution('no-folder', None,
                                            {'source': playbook(log_step('a', 'x'))})
                self.fail('StartExecution succeeded without a run folder')
            except GLib.Error as e:
                self.assertIn('Not a directory', e.message)
        finally:
            os.unlink(runs)
            if os.path.exists(aside):
                os.rename(aside, runs)
        self.daemon.restart(self.client, kill=True)
        self.assertEqual([r for r in history(self.client) if r['playbook'] == 'no-folder'], [])
        _, _, status = self.finished_run('folder-again')
        self.assertEqual(status, 'completed')

    def test_sigterm_cancels_active_runs(self):
        path = self.start(playbook(sleep_step('a', LONG)), playbook_id='terminated')
        self.client.wait_step(path, 'a', 'running')
        run_id = self.client.get_prop(path, 'Id')
        self.daemon.proc.terminate()
        fin = self.client.wait_finished(path)
        self.assertEqual(fin.args[0], 'cancelled')
        self.client.wait_name(False)
        self.daemon.proc.wait(10)
        self.assertEqual(self.daemon.proc.returncode, 0, self.daemon.stderr_text())
        self.daemon.start(self.client)
        run = [r for r in history(self.client) if r['id'] == run_id]
        self.assertEqual(len(run), 1)
        self.assertEqual(run[0]['status'], 'cancelled')


if __name__ == '__main__':
    main()
