#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Control semantics of an execution (DESIGN.md §4, "Control semantics")."""

import json
import os
import re
import time
import unittest

from itk_harness import (EXECUTION_IFACE, INVALID_STATE, LEGAL_EDGES, LIMITS_EXCEEDED,
                         MANAGER_IFACE, MANAGER_PATH, NOT_RUNNING, TIMEOUT,
                         DaemonTestCase, GLib, gate_python, gate_shell, log_step, main,
                         playbook, python_step, shell_step, sleep_step, step)

LONG = 600  # seconds: a step that never ends by itself within a test

CONTROLS = ('Start', 'Cancel', 'Pause', 'Resume', 'Skip', 'SkipBack')

CHILD = playbook(
    log_step('hello', 'child says hello'),
    sleep_step('wait', LONG),
    log_step('bye', 'child says bye'),
    name='Child')


def steps_by_id(steps):
    found = {}
    for s in steps:
        found[s['step-id']] = s
        for c in s.get('children', []):
            found[c['step-id']] = c
    return found


class ControlTestCase(DaemonTestCase):

    def touch(self, name):
        path = os.path.join(self.tmp, name)
        with open(path, 'w'):
            pass
        return path

    def gate(self, name='gate'):
        return os.path.join(self.tmp, name)

    def status(self, path):
        return self.client.get_prop(path, 'Status')

    def status_count(self, path):
        return len(self.client.statuses(path))

    def step_events(self, path, step_id, status=None):
        return [m for m in self.client.signals(path, 'StepChanged')
                if m.args[1] == step_id and (status is None or m.args[2] == status)]

    def wait_prop(self, path, name, value, timeout=TIMEOUT):
        """Waits for a PropertiesChanged that sets @name to @value (or invalidates it and
        Get returns @value)."""
        def changed():
            for m in self.client.signals(path, 'PropertiesChanged'):
                iface, values, invalidated = m.args
                if iface != EXECUTION_IFACE:
                    continue
                if name in values and values[name] == value:
                    return m
                if name in invalidated and self.client.get_prop(path, name) == value:
                    return m
            return None
        return self.client.wait_for(changed, timeout, '%s=%r on %s' % (name, value, path), path)


class TestControlTable(ControlTestCase):
    """Every cell of the table: Start/Cancel/Pause/Resume/Skip/SkipBack x status."""

    def test_pending_column(self):
        path = self.start(playbook(log_step('a', 'ran')), start=False)
        self.assertEqual(self.status(path), 'pending')
        for method in ('Pause', 'Resume', 'Skip', 'SkipBack'):
            message = self.assertControlError(path, method, INVALID_STATE)
            self.assertIn('pending', message)
        self.assertEqual(self.status(path), 'pending')
        self.assertEqual(self.client.statuses(path), [])
        self.assertEqual(self.step_events(path, 'a', 'running'), [])
        # Start: run.
        self.call(path, 'Start')
        m = self.client.wait_finished(path)
        self.assertEqual(m.args, ('completed', ''))
        self.assertEqual(self.client.statuses(path),
                         [('running', 'pending'), ('completed', 'running')])

    def test_pending_cancel(self):
        path = self.start(playbook(log_step('a', 'ran')), start=False)
        since = time.monotonic()
        self.call(path, 'Cancel')
        self.wait_cancelled(path, since)
        self.assertEqual(self.client.statuses(path), [('cancelled', 'pending')])
        self.assertEqual(self.step_events(path, 'a', 'running'), [])
        self.assertEqual(self.status(path), 'cancelled')

    def test_running_and_paused_columns(self):
        path = self.start(playbook(sleep_step('a', LONG), log_step('b', 'after')))
        self.client.wait_step(path, 'a', 'running')
        self.assertEqual(self.status(path), 'running')
        # Start while running: InvalidState.
        self.assertControlError(path, 'Start', INVALID_STATE)
        # Resume while running (nothing requested): a no-op.
        self.call(path, 'Resume')
        self.assertEqual(self.status(path), 'running')
        self.assertFalse(self.client.get_prop(path, 'PauseRequested'))
        # Pause while running a pausable step: paused now.
        self.call(path, 'Pause')
        self.client.wait_status(path, 'paused')
        self.assertEqual(self.status(path), 'paused')
        n = self.status_count(path)
        # Pause while paused: a no-op; Start while paused: InvalidState.
        self.call(path, 'Pause')
        self.assertControlError(path, 'Start', INVALID_STATE)
        self.assertEqual(self.status(path), 'paused')
        self.assertEqual(self.status_count(path), n)
        # Resume while paused: running.
        self.call(path, 'Resume')
        self.client.wait_for(lambda: self.status_count(path) > n, what='resumed')
        self.assertEqual(self.client.statuses(path)[n], ('running', 'paused'))
        self.assertEqual(self.step_events(path, 'a', 'completed'), [])
        # Cancel while running.
        since = time.monotonic()
        self.call(path, 'Cancel')
        self.wait_cancelled(path, since)
        self.assertEqual(self.step_events(path, 'b', 'running'), [])

    def test_cancel_while_paused(self):
        path = self.start(playbook(sleep_step('a', LONG)))
        self.client.wait_step(path, 'a', 'running')
        self.call(path, 'Pause')
        self.client.wait_status(path, 'paused')
        since = time.monotonic()
        self.call(path, 'Cancel')
        self.wait_cancelled(path, since)
        self.assertEqual(self.client.statuses(path)[-1], ('cancelled', 'paused'))

    def assertTerminalColumn(self, path, status):
        before = self.client.statuses(path)
        for method in CONTROLS:
            message = self.assertControlError(path, method, NOT_RUNNING)
            self.assertIn(status, message)
        self.assertEqual(self.status(path), status)
        self.assertEqual(self.client.statuses(path), before)

    def test_terminal_column_completed(self):
        path, status, _ = self.run_to_end(playbook(log_step('a', 'done')))
        self.assertEqual(status, 'completed')
        self.assertTerminalColumn(path, 'completed')

    def test_terminal_column_failed(self):
        path, status, _ = self.run_to_end(playbook(shell_step('a', 'exit 4')))
        self.assertEqual(status, 'failed')
        self.assertTerminalColumn(path, 'failed')

    def test_terminal_column_cancelled(self):
        path = self.start(playbook(sleep_step('a', LONG)))
        self.client.wait_step(path, 'a', 'running')
        self.call(path, 'Cancel')
        self.client.wait_finished(path)
        self.assertTerminalColumn(path, 'cancelled')

    def test_states_are_monotonic(self):
        path = self.start(playbook(sleep_step('a', LONG), sleep_step('b', 0.05),
                                   log_step('c', 'end')))
        self.client.wait_step(path, 'a', 'running')
        for _ in range(3):
            self.call(path, 'Pause')
            self.client.wait_status(path, 'paused')
            n = self.status_count(path)
            self.call(path, 'Resume')
            self.client.wait_for(lambda: self.status_count(path) > n, what='running again')
        self.call(path, 'Skip')
        m = self.client.wait_finished(path)
        self.assertEqual(m.args[0], 'completed')
        seen = self.client.statuses(path)
        self.assertEqual(len(seen), 1 + 3 * 2 + 1, seen)
        current = 'pending'
        for status, previous in seen:
            self.assertEqual(previous, current)
            self.assertIn((previous, status), LEGAL_EDGES)
            current = status
        self.assertEqual(current, 'completed')
        self.assertEqual(self.client.get_prop(path, 'Progress'), 1.0)


class TestPause(ControlTestCase):

    def test_pausable_step_freezes_its_time(self):
        # A 4 s sleep paused about 2.5 s in: 1.5 s are left. While paused for
        # longer than that the step must not complete; after Resume it
        # completes, sooner than a fresh 4 s sleep would. Durations are taken
        # between signals of the daemon, so call latencies do not count.
        seconds = 4.0
        path = self.start(playbook(sleep_step('a', seconds), log_step('b', 'after')))
        running = self.client.wait_step(path, 'a', 'running')
        self.client.idle(running.time + 2.5 - time.monotonic())
        self.call(path, 'Pause')
        paused = self.client.wait_status(path, 'paused')
        self.assertEqual(self.step_events(path, 'a', 'completed'), [],
                         'the sleep ended before Pause (machine too slow?)')
        self.assertEqual(self.client.get_steps(path)[0]['status'], 'running')
        self.client.idle(2.0)
        self.assertEqual(self.step_events(path, 'a', 'completed'), [],
                         'the sleep went on while paused')
        self.assertEqual(self.status(path), 'paused')
        n = self.status_count(path)
        self.call(path, 'Resume')
        done = self.client.wait_step(path, 'a', 'completed')
        resumed = self.client.signals(path, 'StatusChanged')[n]
        self.assertEqual(resumed.args, ('running', 'paused'))
        self.assertLess(done.time - resumed.time, seconds - 0.5,
                        'the sleep started over instead of going on')
        # The time spent running adds up to the requested sleep.
        active = (done.time - running.time) - (resumed.time - paused.time)
        self.assertGreater(active, seconds - 0.3)
        self.assertEqual(self.client.wait_finished(path).args[0], 'completed')

    def test_non_pausable_step_pauses_at_the_boundary(self):
        gate = self.gate()
        path = self.start(playbook(python_step('a', gate_python('READY', gate)),
                                   log_step('b', 'after')))
        self.client.wait_log(path, 'READY')
        n = self.status_count(path)
        self.call(path, 'Pause')
        self.wait_prop(path, 'PauseRequested', True)
        self.assertTrue(self.client.get_prop(path, 'PauseRequested'))
        self.assertEqual(self.status(path), 'running')
        self.assertEqual(self.status_count(path), n)
        # The step goes on to its end; then the run pauses before b.
        self.touch('gate')
        self.client.wait_step(path, 'a', 'completed')
        self.client.wait_status(path, 'paused')
        self.assertFalse(self.client.get_prop(path, 'PauseRequested'))
        self.assertEqual(self.step_events(path, 'b', 'running'), [])
        self.assertEqual(self.client.get_steps(path)[1]['status'], 'pending')
        self.assertEqual(self.client.get_prop(path, 'CurrentStep'), 1)
        self.call(path, 'Resume')
        self.assertEqual(self.client.wait_finished(path).args[0], 'completed')
        self.assertEqual(len(self.step_events(path, 'b', 'completed')), 1)

    def test_resume_while_running_clears_pause_requested(self):
        gate = self.gate()
        path = self.start(playbook(python_step('a', gate_python('READY', gate)),
                                   log_step('b', 'after')))
        self.client.wait_log(path, 'READY')
        self.call(path, 'Pause')
        self.wait_prop(path, 'PauseRequested', True)
        self.call(path, 'Resume')
        self.wait_prop(path, 'PauseRequested', False)
        self.assertFalse(self.client.get_prop(path, 'PauseRequested'))
        self.touch('gate')
        self.assertEqual(self.client.wait_finished(path).args[0], 'completed')
        self.assertNotIn('paused', [s for s, _ in self.client.statuses(path)])

    def test_pause_during_retry_delay(self):
        path = self.start(playbook(shell_step('a', 'exit 1', retry_count=1, retry_delay=LONG)))
        self.client.wait_log(path, 'retrying')
        self.call(path, 'Pause')
        self.client.wait_status(path, 'paused')
        self.assertFalse(self.client.get_prop(path, 'PauseRequested'))


class TestSkip(ControlTestCase):

    def test_skip_while_running(self):
        path = self.start(playbook(sleep_step('a', LONG), log_step('b', 'after')))
        self.client.wait_step(path, 'a', 'running')
        self.call(path, 'Skip')
        self.client.wait_step(path, 'a', 'skipped')
        m = self.client.wait_finished(path)
        self.assertEqual(m.args, ('completed', ''))
        steps = self.client.get_steps(path)
        self.assertEqual([s['status'] for s in steps], ['skipped', 'completed'])
        self.assertNotIn('paused', [s for s, _ in self.client.statuses(path)])

    def test_skip_while_running_a_script(self):
        gate = self.gate()
        path = self.start(playbook(shell_step('a', gate_shell('READY', gate)),
                                   log_step('b', 'after')))
        self.client.wait_log(path, 'READY')
        self.call(path, 'Skip')
        self.assertEqual(self.client.wait_finished(path).args[0], 'completed')
        self.assertEqual([s['status'] for s in self.client.get_steps(path)],
                         ['skipped', 'completed'])

    def test_skip_while_paused(self):
        path = self.start(playbook(sleep_step('a', LONG), log_step('b', 'B ran'),
                                   log_step('c', 'C ran')))
        self.client.wait_step(path, 'a', 'running')
        self.call(path, 'Pause')
        self.client.wait_status(path, 'paused')
        n = self.status_count(path)
        self.call(path, 'Skip')
        self.client.wait_step(path, 'a', 'skipped')
        self.assertEqual(self.status(path), 'paused')
        self.assertEqual(self.client.get_prop(path, 'CurrentStep'), 1)
        # Skipping again skips the step now at the cursor, still paused.
        self.call(path, 'Skip')
        self.client.wait_step(path, 'b', 'skipped')
        self.assertEqual(self.status(path), 'paused')
        self.assertEqual(self.status_count(path), n)
        self.assertEqual(self.step_events(path, 'b', 'running'), [])
        self.call(path, 'Resume')
        self.assertEqual(self.client.wait_finished(path).args[0], 'completed')
        self.assertEqual([s['status'] for s in self.client.get_steps(path)],
                         ['skipped', 'skipped', 'completed'])
        self.assertEqual(self.step_events(path, 'b', 'running'), [])

    def test_skip_back_while_running(self):
        path = self.start(playbook(log_step('a', 'A ran'), sleep_step('b', LONG),
                                   log_step('c', 'C ran')))
        self.client.wait_step(path, 'b', 'running')
        self.assertEqual(len(self.step_events(path, 'a', 'running')), 1)
        self.call(path, 'SkipBack')
        # b is abandoned, a and b are reset, a runs again, then b.
        self.client.wait_for(lambda: len(self.step_events(path, 'b', 'running')) == 2,
                             what='b running again', path=path)
        a_runs = self.step_events(path, 'a', 'running')
        self.assertEqual(len(a_runs), 2)
        b_runs = self.step_events(path, 'b', 'running')
        self.assertLess(a_runs[1].seq, b_runs[1].seq)
        self.assertTrue(self.step_events(path, 'b', 'pending'))
        self.assertEqual(self.step_events(path, 'b', 'completed'), [])
        self.assertEqual(len([m for m in self.client.signals(path, 'Log')
                              if m.args[3] == 'A ran']), 2)
        self.assertEqual(self.status(path), 'running')
        self.assertEqual(self.step_events(path, 'c', 'running'), [])

    def test_skip_back_while_paused(self):
        path = self.start(playbook(log_step('a', 'A ran'), sleep_step('b', LONG),
                                   log_step('c', 'C ran')))
        self.client.wait_step(path, 'b', 'running')
        self.call(path, 'Pause')
        self.client.wait_status(path, 'paused')
        n = self.status_count(path)
        self.call(path, 'SkipBack')
        self.client.wait_for(lambda: self.client.get_prop(path, 'CurrentStep') == 0,
                             what='the cursor back on a', path=path)
        self.assertEqual(self.status(path), 'paused')
        self.assertEqual(self.status_count(path), n)
        self.assertEqual(len(self.step_events(path, 'a', 'running')), 1)
        self.assertEqual([s['status'] for s in self.client.get_steps(path)],
                         ['pending', 'pending', 'pending'])
        self.call(path, 'Resume')
        self.client.wait_for(lambda: len(self.step_events(path, 'b', 'running')) == 2,
                             what='b running again', path=path)
        self.assertEqual(len(self.step_events(path, 'a', 'completed')), 2)


class TestDebugMode(ControlTestCase):

    def test_debug_mode(self):
        path = self.start(playbook(
            log_step('a', 'A ran'),
            shell_step('b', 'echo failing; exit 3', retry_count=2, retry_delay=0),
            log_step('c', 'C ran')), debug=True)
        self.assertTrue(self.client.get_prop(path, 'DebugMode'))
        # Paused before the first step.
        self.client.wait_status(path, 'paused')
        self.assertEqual(self.step_events(path, 'a', 'running'), [])
        n = self.status_count(path)
        self.call(path, 'Resume')
        self.client.wait_step(path, 'a', 'completed')
        # ... and before the next one.
        self.client.wait_for(lambda: self.status_count(path) >= n + 2, what='paused before b')
        self.assertEqual(self.client.statuses(path)[-1], ('paused', 'running'))
        self.assertEqual(self.step_events(path, 'b', 'running'), [])
        # A failing step pauses the run instead of applying on_failure; no retries.
        n = self.status_count(path)
        self.call(path, 'Resume')
        self.client.wait_step(path, 'b', 'failed')
        self.client.wait_for(lambda: self.status_count(path) >= n + 2, what='paused after b')
        self.assertEqual(self.client.statuses(path)[-1], ('paused', 'running'))
        self.assertEqual(self.client.finished(path), [])
        b = self.client.get_steps(path)[1]
        self.assertEqual((b['status'], b['attempts']), ('failed', 1))
        self.assertEqual(len(self.step_events(path, 'b', 'running')), 1)
        self.assertEqual([m for m in self.client.signals(path, 'Log') if 'retry' in m.args[3]],
                         [])
        # Resume runs the failed step again.
        n = self.status_count(path)
        self.call(path, 'Resume')
        self.client.wait_for(lambda: len(self.step_events(path, 'b', 'failed')) == 2,
                             what='b failing again', path=path)
        self.client.wait_for(lambda: self.status_count(path) >= n + 2, what='paused again')
        self.assertEqual(len(self.step_events(path, 'b', 'running')), 2)
        self.assertEqual(self.status(path), 'paused')
        # Skip skips it; the run stays paused.
        n = self.status_count(path)
        self.call(path, 'Skip')
        self.client.wait_step(path, 'b', 'skipped')
        self.assertEqual(self.status(path), 'paused')
        # Turning debug mode off never resumes a paused run.
        self.call(path, 'SetDebugMode', GLib.Variant('(b)', (False,)))
        self.wait_prop(path, 'DebugMode', False)
        self.client.idle(0.5)
        self.assertEqual(self.status(path), 'paused')
        self.assertEqual(self.status_count(path), n)
        self.assertEqual(self.step_events(path, 'c', 'running'), [])
        self.call(path, 'Resume')
        m = self.client.wait_finished(path)
        self.assertEqual(m.args, ('completed', ''))
        self.assertEqual([s['status'] for s in self.client.get_steps(path)],
                         ['completed', 'skipped', 'completed'])

    def test_debug_pause_reports_the_first_step(self):
        path = self.start(playbook(log_step('a', 'A ran'), log_step('b', 'B ran')), debug=True)
        self.client.wait_status(path, 'paused')
        self.assertEqual(self.client.get_prop(path, 'CurrentStep'), 0)
        self.assertEqual(self.client.get_prop(path, 'CurrentStepId'), 'a')

    def test_debug_pause_reports_the_next_step(self):
        path = self.start(playbook(log_step('a', 'A ran'), log_step('b', 'B ran')), debug=True)
        self.client.wait_status(path, 'paused')
        n = self.status_count(path)
        self.call(path, 'Resume')
        self.client.wait_for(lambda: self.status_count(path) >= n + 2, what='paused before b')
        self.assertEqual(self.client.get_prop(path, 'CurrentStep'), 1)
        self.assertEqual(self.client.get_prop(path, 'CurrentStepId'), 'b')
        self.assertEqual(self.client.get_prop(path, 'CurrentStepName'), 'Step b')

    def test_debug_mode_switched_on_while_running(self):
        path = self.start(playbook(sleep_step('a', LONG), log_step('b', 'B ran')))
        self.client.wait_step(path, 'a', 'running')
        self.call(path, 'SetDebugMode', GLib.Variant('(b)', (True,)))
        self.wait_prop(path, 'DebugMode', True)
        self.call(path, 'Skip')
        self.client.wait_step(path, 'a', 'skipped')
        # Debug mode pauses before b.
        self.client.wait_status(path, 'paused')
        self.assertEqual(self.step_events(path, 'b', 'running'), [])


class TestFailures(ControlTestCase):

    def test_on_failure_abort(self):
        path, status, error = self.run_to_end(playbook(
            shell_step('a', 'echo oops >&2; exit 1'), log_step('b', 'B ran')))
        self.assertEqual(status, 'failed')
        self.assertTrue(error.startswith("Step 'a' failed: "), error)
        self.assertEqual(self.client.get_prop(path, 'Error'), error)
        steps = self.client.get_steps(path)
        self.assertEqual([s['status'] for s in steps], ['failed', 'pending'])
        self.assertTrue(steps[0]['error'])
        self.assertEqual(self.step_events(path, 'b', 'running'), [])
        failed = self.step_events(path, 'a', 'failed')
        self.assertEqual(len(failed), 1)
        self.assertTrue(failed[0].args[3])

    def test_on_failure_continue(self):
        path, status, error = self.run_to_end(playbook(
            shell_step('a', 'exit 1', on_failure='continue'), log_step('b', 'B ran')))
        self.assertEqual((status, error), ('completed', ''))
        self.assertEqual([s['status'] for s in self.client.get_steps(path)],
                         ['failed', 'completed'])

    def test_on_failure_rollback(self):
        path, status, error = self.run_to_end(playbook(
            log_step('a', 'A ran'),
            shell_step('b', 'exit 1', on_failure='rollback'),
            log_step('c', 'C ran'),
            rollback=[log_step('undo', 'rolling back')]))
        self.assertEqual(status, 'failed')
        self.assertIn("'b'", error)
        steps = self.client.get_steps(path)
        by_id = {s['step-id']: s for s in steps}
        self.assertEqual(by_id['undo']['phase'], 'rollback')
        self.assertEqual(by_id['undo']['status'], 'completed')
        self.assertEqual(by_id['c']['status'], 'pending')
        self.assertEqual(by_id['b']['status'], 'failed')
        self.assertEqual(by_id['a']['phase'], 'main')
        undo = self.step_events(path, 'undo', 'completed')
        self.assertEqual(len(undo), 1)
        self.assertLess(self.step_events(path, 'b', 'failed')[0].seq, undo[0].seq)

    def test_retries(self):
        counter = os.path.join(self.tmp, 'count')
        command = ('n=$(cat %s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s; '
                   'echo attempt $n at $(date +%%s.%%N); [ $n -ge 3 ]' % (counter, counter))
        path, status, _ = self.run_to_end(playbook(
            shell_step('a', command, retry_count=3, retry_delay=0.3)))
        self.assertEqual(status, 'completed')
        a = self.client.get_steps(path)[0]
        self.assertEqual((a['status'], a['attempts']), ('completed', 3))
        self.assertEqual(len(self.step_events(path, 'a', 'running')), 3)
        stamps = [float(m.group(1)) for m in
                  (re.fullmatch(r'attempt \d+ at ([\d.]+)', line.args[3])
                   for line in self.client.signals(path, 'Log')) if m]
        self.assertEqual(len(stamps), 3)
        for earlier, later in zip(stamps, stamps[1:]):
            # The retry delay is honoured (a lower bound, not a timing target).
            self.assertGreaterEqual(later - earlier, 0.3)
        retry_lines = [m for m in self.client.signals(path, 'Log') if 'retrying' in m.args[3]]
        self.assertEqual(len(retry_lines), 2)
        self.assertEqual(retry_lines[0].args[1], 4)  # warning

    def test_retries_exhausted(self):
        path, status, error = self.run_to_end(playbook(
            shell_step('a', 'exit 2', retry_count=2, retry_delay=0)))
        self.assertEqual(status, 'failed')
        a = self.client.get_steps(path)[0]
        self.assertEqual((a['status'], a['attempts']), ('failed', 3))
        self.assertEqual(len(self.step_events(path, 'a', 'failed')), 1)

    def test_step_timeout(self):
        path, status, error = self.run_to_end(playbook(
            sleep_step('a', LONG, timeout=1), log_step('b', 'B ran')))
        self.assertEqual(status, 'failed')
        self.assertIn('timed out', error)
        self.assertEqual(self.step_events(path, 'b', 'running'), [])

    def test_step_timeout_kills_a_script(self):
        path, status, error = self.run_to_end(playbook(
            python_step('a', 'while True:\n    pass\n', timeout=1)))
        self.assertEqual(status, 'failed')
        self.assertIn('timed out', error)

    def test_timeout_override(self):
        path, status, error = self.run_to_end(
            playbook(sleep_step('a', LONG, timeout=LONG)),
            timeout_overrides=GLib.Variant('a{su}', {'a': 1}))
        self.assertEqual(status, 'failed')
        self.assertIn('timed out', error)


class TestNested(ControlTestCase):
    library = {
        'nested/child.yaml': CHILD,
        'nested/failing.yaml': playbook(shell_step('boom', 'exit 7'), name='Failing'),
    }

    def parent(self, child='nested/child.yaml'):
        return playbook(step('sub', 'playbook.run', {'playbook': child}),
                        log_step('after', 'parent goes on'))

    def test_nested_steps_are_reported_and_controlled(self):
        path = self.start(self.parent())
        self.client.wait_step(path, 'sub/hello', 'completed')
        self.client.wait_step(path, 'sub/wait', 'running')
        self.assertEqual(self.client.get_prop(path, 'CurrentStepId'), 'sub/wait')
        self.assertEqual(self.client.get_prop(path, 'CurrentStep'), 0)
        self.assertEqual(self.client.get_prop(path, 'CurrentStepName'), 'Step wait')
        sub = steps_by_id(self.client.get_steps(path))
        self.assertEqual(sub['sub']['status'], 'running')
        self.assertEqual([c['step-id'] for c in sub['sub']['children']],
                         ['sub/hello', 'sub/wait', 'sub/bye'])
        log = [m for m in self.client.signals(path, 'Log') if m.args[3] == 'child says hello']
        self.assertEqual(log[0].args[2], 'sub/hello')
        # Pause reaches the innermost (pausable) step at once.
        self.call(path, 'Pause')
        self.client.wait_status(path, 'paused')
        self.call(path, 'Resume')
        self.client.wait_for(lambda: self.client.statuses(path)[-1][0] == 'running',
                             what='running again')
        # Skip skips the innermost step; the child and the parent go on.
        self.call(path, 'Skip')
        self.client.wait_step(path, 'sub/wait', 'skipped')
        m = self.client.wait_finished(path)
        self.assertEqual(m.args, ('completed', ''))
        final = steps_by_id(self.client.get_steps(path))
        self.assertEqual(final['sub']['status'], 'completed')
        self.assertEqual(final['sub/wait']['status'], 'skipped')
        self.assertEqual(final['sub/bye']['status'], 'completed')
        self.assertEqual(final['after']['status'], 'completed')
        output = json.loads(final['sub']['output'])
        self.assertEqual(output['playbook'], 'nested/child.yaml')
        self.assertEqual(output['status'], 'completed')

    def test_cancel_inside_nested(self):
        path = self.start(self.parent())
        self.client.wait_step(path, 'sub/wait', 'running')
        since = time.monotonic()
        self.call(path, 'Cancel')
        self.wait_cancelled(path, since)
        self.assertEqual(self.step_events(path, 'after', 'running'), [])

    def test_nested_failure_fails_the_parent_step(self):
        path, status, error = self.run_to_end(self.parent('nested/failing.yaml'))
        self.assertEqual(status, 'failed')
        self.assertIn("'sub'", error)
        final = steps_by_id(self.client.get_steps(path))
        self.assertEqual(final['sub/boom']['status'], 'failed')
        self.assertEqual(final['sub']['status'], 'failed')
        self.assertEqual(final['after']['status'], 'pending')


class TestDisconnect(ControlTestCase):

    def test_cancel_on_disconnect(self):
        other = self.new_client()
        path = self.start(playbook(sleep_step('a', LONG)), client=other,
                          cancel_on_disconnect=True)
        self.client.wait_step(path, 'a', 'running')
        since = time.monotonic()
        other.close()
        self.wait_cancelled(path, since)

    def test_no_cancel_without_the_option(self):
        other = self.new_client()
        path = self.start(playbook(sleep_step('a', 1.0), log_step('b', 'B ran')), client=other)
        self.client.wait_step(path, 'a', 'running')
        other.close()
        self.assertEqual(self.client.wait_finished(path).args[0], 'completed')


class TestPerCallerLimit(ControlTestCase):
    conf = {'MaxExecutionsPerCaller': 1}

    def test_per_caller_limit(self):
        self.assertEqual(self.client.get_prop(MANAGER_PATH, 'MaxExecutionsPerCaller',
                                              MANAGER_IFACE), 1)
        first = self.start(playbook(sleep_step('a', LONG)), start=False)
        message = self.assertDBusError(LIMITS_EXCEEDED, self.start,
                                       playbook(log_step('a', 'x')), client=self.new_client())
        self.assertIn(str(os.getuid()), message)
        self.call(first, 'Cancel')
        self.client.wait_finished(first)
        second = self.start(playbook(log_step('a', 'fits now')))
        self.assertEqual(self.client.wait_finished(second).args[0], 'completed')


class TestLimitsAndExpiry(ControlTestCase):
    conf = {'MaxConcurrentExecutions': 2, 'PendingTimeoutSeconds': 1}
    retention = 1

    def test_limits_exceeded(self):
        self.assertEqual(self.client.get_prop(MANAGER_PATH, 'MaxConcurrentExecutions',
                                              MANAGER_IFACE), 2)
        first = self.start(playbook(sleep_step('a', LONG)))
        second = self.start(playbook(sleep_step('a', LONG)))
        self.assertEqual(self.client.get_prop(MANAGER_PATH, 'ActiveExecutions', MANAGER_IFACE),
                         2)
        message = self.assertDBusError(LIMITS_EXCEEDED, self.start,
                                       playbook(sleep_step('a', LONG)))
        self.assertIn('2', message)
        self.assertDaemonAlive()
        # A finished run frees its place.
        self.call(first, 'Cancel')
        self.client.wait_finished(first)
        third = self.start(playbook(log_step('a', 'fits now')))
        self.assertEqual(self.client.wait_finished(third).args[0], 'completed')
        self.call(second, 'Cancel')
        self.client.wait_finished(second)

    def test_pending_expiry(self):
        path = self.start(playbook(log_step('a', 'never')), start=False)
        m = self.client.wait_finished(path)
        self.assertEqual(m.args[0], 'cancelled')
        self.assertEqual(self.client.statuses(path), [('cancelled', 'pending')])
        self.assertEqual(self.step_events(path, 'a', 'running'), [])

    def test_started_run_does_not_expire(self):
        path = self.start(playbook(sleep_step('a', 2.0)), start=False)
        self.call(path, 'Start')
        self.assertEqual(self.client.wait_finished(path).args[0], 'completed')

    def test_retention(self):
        self.assertEqual(self.client.get_prop(MANAGER_PATH, 'RetentionSeconds', MANAGER_IFACE), 1)
        path = self.start(playbook(log_step('a', 'short')))
        exec_id = self.client.get_prop(path, 'Id')
        finished = self.client.wait_finished(path)
        removed = self.client.wait_signal(MANAGER_PATH, 'ExecutionRemoved',
                                          lambda a: a[0] == path)
        self.assertEqual(removed.args, (path, exec_id, 'completed'))
        gone = self.client.wait_signal(MANAGER_PATH, 'InterfacesRemoved',
                                       lambda a: a[0] == path)
        self.assertLess(finished.seq, removed.seq)
        self.assertLess(removed.seq, gone.seq)
        self.assertIn(EXECUTION_IFACE, gone.args[1])
        # The object is gone from the bus ...
        self.assertNotIn(path, [e[0] for e in self.client.manager('ListExecutions')])
        objects = self.client.call(MANAGER_PATH, 'GetManagedObjects',
                                   iface='org.freedesktop.DBus.ObjectManager')
        self.assertNotIn(path, objects)
        with self.assertRaises(GLib.Error):
            self.client.get_prop(path, 'Status')
        # ... but not from the history.
        history = self.client.manager('GetHistory', GLib.Variant('(us)', (0, '')))
        self.assertIn(exec_id, [r['id'] for r in history])


if __name__ == '__main__':
    main()
