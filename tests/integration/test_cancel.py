#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Cancel always works, at once, whatever the step is doing (DESIGN.md §1.1)."""

import os
import signal
import time

from itk_harness import (CANCEL_PROMPT, NOT_RUNNING, DaemonTestCase, main, pid_alive,
                         ignored_signals, playbook, python_step, shell_step, sleep_step, step,
                         log_step)

LONG = 600


class TestCancel(DaemonTestCase):
    library = {
        'nested/child.yaml': playbook(log_step('hello', 'child says hello'),
                                      sleep_step('wait', LONG), name='Child'),
    }

    def assertCancelled(self, path, since):
        """Ends cancelled within CANCEL_PROMPT s, with one Finished as the last signal of
        the object; Cancel afterwards is NotRunning; nothing comes back within 1 s."""
        fin = self.wait_cancelled(path, since)
        self.assertEqual(fin.args, ('cancelled', ''))
        message = self.assertControlError(path, 'Cancel', NOT_RUNNING)
        self.assertIn('cancelled', message)
        self.client.idle(max(0.0, fin.time + 1.0 - time.monotonic()))
        self.assertEqual(len(self.client.finished(path)), 1)
        later = [m for m in self.client.signals(path) if m.seq > fin.seq]
        self.assertEqual(later, [], 'signals after Finished')
        self.assertEqual(self.client.get_prop(path, 'Status'), 'cancelled')
        self.assertGreater(self.client.get_prop(path, 'FinishedAt'), 0)
        for s in self.client.get_steps(path):
            self.assertNotEqual(s['status'], 'running', s)
        return fin

    def read_pid(self, name, path):
        pidfile = os.path.join(self.tmp, name)

        def read():
            try:
                with open(pidfile) as f:
                    return f.read().strip()
            except FileNotFoundError:
                return None
        return int(self.client.wait_for(read, what='the pid file', path=path))

    def assertProcessGone(self, pid):
        """The process was killed: it disappears (reaped by the daemon, or by us as the
        subreaper when it was orphaned) and kill(pid, 0) fails with ESRCH."""
        def gone():
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass  # not (or no longer) our child
            return not pid_alive(pid)
        self.client.wait_for(gone, CANCEL_PROMPT, 'process %d to be gone' % pid)
        with self.assertRaises(ProcessLookupError):
            os.kill(pid, 0)

    def test_cancel_during_sleep(self):
        path = self.start(playbook(sleep_step('a', LONG), log_step('b', 'never')))
        self.client.wait_step(path, 'a', 'running')
        since = time.monotonic()
        self.call(path, 'Cancel')
        self.assertCancelled(path, since)
        steps = self.client.get_steps(path)
        self.assertEqual([s['status'] for s in steps], ['cancelled', 'pending'])

    def test_cancel_during_python_busy_loop(self):
        pidfile = os.path.join(self.tmp, 'python.pid')
        script = ('import os\n'
                  'open(%r, "w").write(str(os.getpid()))\n'
                  'print("SPINNING", flush=True)\n'
                  'while True:\n'
                  '    pass\n' % pidfile)
        path = self.start(playbook(python_step('spin', script)))
        self.client.wait_log(path, 'SPINNING')
        pid = self.read_pid('python.pid', path)
        self.assertTrue(pid_alive(pid))
        since = time.monotonic()
        self.call(path, 'Cancel')
        self.assertCancelled(path, since)
        self.assertProcessGone(pid)

    def test_cancel_shell_whose_child_ignores_sigterm(self):
        pidfile = os.path.join(self.tmp, 'child.pid')
        command = ("sh -c 'trap \"\" TERM; echo $$ > %s; echo CHILD-READY; exec sleep %d' &\n"
                   "wait\n" % (pidfile, LONG))
        path = self.start(playbook(shell_step('stubborn', command)))
        self.client.wait_log(path, 'CHILD-READY')
        pid = self.read_pid('child.pid', path)
        self.assertTrue(pid_alive(pid))
        self.assertTrue(ignored_signals(pid) & (1 << (signal.SIGTERM - 1)),
                        'the child should ignore SIGTERM')
        # Scripts run in their own process group, not the daemon's.
        self.assertNotEqual(os.getpgid(pid), os.getpgid(self.daemon.proc.pid))
        since = time.monotonic()
        self.call(path, 'Cancel')
        self.assertCancelled(path, since)
        self.assertProcessGone(pid)

    def test_cancel_during_retry_delay(self):
        path = self.start(playbook(shell_step('flaky', 'exit 1', retry_count=5,
                                              retry_delay=LONG)))
        self.client.wait_log(path, 'retrying')
        since = time.monotonic()
        self.call(path, 'Cancel')
        self.assertCancelled(path, since)
        self.assertEqual(len([m for m in self.client.signals(path, 'StepChanged')
                              if m.args[2] == 'running']), 1)

    def test_cancel_inside_nested_playbook(self):
        path = self.start(playbook(step('sub', 'playbook.run', {'playbook': 'nested/child.yaml'}),
                                   log_step('after', 'never')))
        self.client.wait_step(path, 'sub/wait', 'running')
        since = time.monotonic()
        self.call(path, 'Cancel')
        self.assertCancelled(path, since)
        by_id = {s['step-id']: s for s in self.client.get_steps(path)}
        self.assertEqual(by_id['after']['status'], 'pending')
        self.assertIn(by_id['sub']['status'], ('cancelled', 'failed'))
        children = {c['step-id']: c['status'] for c in by_id['sub']['children']}
        self.assertEqual(children['sub/hello'], 'completed')
        self.assertEqual(children['sub/wait'], 'cancelled')

    def test_cancel_while_paused(self):
        path = self.start(playbook(sleep_step('a', LONG)))
        self.client.wait_step(path, 'a', 'running')
        self.call(path, 'Pause')
        self.client.wait_status(path, 'paused')
        since = time.monotonic()
        self.call(path, 'Cancel')
        self.assertCancelled(path, since)

    def test_cancel_while_pause_requested(self):
        gate = os.path.join(self.tmp, 'never')
        path = self.start(playbook(
            shell_step('a', 'echo READY; while [ ! -e %s ]; do sleep 0.02; done' % gate)))
        self.client.wait_log(path, 'READY')
        self.call(path, 'Pause')
        self.client.wait_for(lambda: self.client.get_prop(path, 'PauseRequested'),
                             what='PauseRequested')
        since = time.monotonic()
        self.call(path, 'Cancel')
        self.assertCancelled(path, since)
        self.assertFalse(self.client.get_prop(path, 'PauseRequested'))

    def test_cancel_right_after_start(self):
        path = self.start(playbook(sleep_step('a', LONG)))
        since = time.monotonic()
        self.call(path, 'Cancel')
        self.assertCancelled(path, since)
        self.assertEqual([m for m in self.client.signals(path, 'StepChanged')
                          if m.args[2] == 'completed'], [])

    def test_cancel_pending(self):
        path = self.start(playbook(sleep_step('a', LONG)), start=False)
        since = time.monotonic()
        self.call(path, 'Cancel')
        self.assertCancelled(path, since)
        self.assertEqual(self.client.statuses(path), [('cancelled', 'pending')])

    def test_repeated_cancel_while_stopping(self):
        script = 'print("SPINNING", flush=True)\nwhile True:\n    pass\n'
        path = self.start(playbook(python_step('spin', script)))
        self.client.wait_log(path, 'SPINNING')
        since = time.monotonic()
        serials = [self.client.send(path, 'Cancel') for _ in range(3)]
        replies = [self.client.reply(s) for s in serials]
        fin = self.assertCancelled(path, since)
        self.assertEqual(replies[0].kind, 'return', replies[0])
        for r in replies[1:]:
            if r.kind == 'error':
                # Only once the run has ended (the daemon sends in order).
                self.assertEqual(r.error, NOT_RUNNING)
                self.assertLess(fin.seq, r.seq)
            else:
                self.assertEqual(r.kind, 'return')

    def test_no_completion_after_cancel(self):
        # A step that would end a moment later: the run still ends cancelled
        # and never completes.
        path = self.start(playbook(sleep_step('a', 0.3), log_step('b', 'never')))
        self.client.wait_step(path, 'a', 'running')
        since = time.monotonic()
        self.call(path, 'Cancel')
        self.assertCancelled(path, since)
        self.assertEqual([m for m in self.client.signals(path, 'Log') if m.args[3] == 'never'],
                         [])


if __name__ == '__main__':
    main()
