#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A chatty script over D-Bus: all its lines reach the Log signals and the
store in order, and another run's Cancel is served while it prints
(ordering and completion only; the timings are tests/bench's cancel_load)."""

from itk_harness import (GLib, DaemonTestCase, main, playbook, shell_step, sleep_step)

LINES = 200000


def numbered(messages):
    return [m for m in messages if m[:1].isdigit()]


class TestCancelLoad(DaemonTestCase):

    def get_log(self, path):
        return self.call(path, 'GetLog', GLib.Variant('(u)', (0,)))

    def test_chatty_lines_all_logged_in_order(self):
        path = self.start(playbook(shell_step('chatty', 'seq 1 %d' % LINES), name='Chatty'))
        fin = self.client.wait_finished(path, timeout=240)
        self.assertEqual(fin.args[0], 'completed', fin.args)
        logged = numbered([m.args[3] for m in self.client.signals(path, 'Log')])
        self.assertEqual(len(logged), LINES)
        self.assertEqual(logged, [str(i) for i in range(1, LINES + 1)])
        # The store has them too: GetLog returns the newest 5000 (docs/limits.md).
        stored = numbered([line[3] for line in self.get_log(path)])
        self.assertEqual(stored, [str(i) for i in range(LINES - len(stored) + 1, LINES + 1)])
        self.assertEqual(len(stored), 5000)

    def test_cancel_other_run_while_chatty(self):
        # Prints until cancelled: the other run's Cancel must get through.
        chatty = self.start(playbook(shell_step(
            'chatty', 'i=0; while :; do i=$((i+1)); echo line $i; done'), name='Endless'))
        sleeper = self.start(playbook(sleep_step('nap', 600), name='Sleeper'))
        self.client.wait_step(sleeper, 'nap', 'running')
        self.client.wait_log(chatty, 'line 1000')
        self.call(sleeper, 'Cancel')
        fin = self.client.wait_finished(sleeper)
        self.assertEqual(fin.args, ('cancelled', ''))
        # The chatty run was still printing: it has not finished, and lines
        # of it came after the sleeper's end.
        self.assertEqual(self.client.finished(chatty), [])
        seq = fin.seq
        self.client.wait_for(lambda: any(m.seq > seq for m in self.client.signals(chatty, 'Log')),
                             what='chatty lines after the cancel')
        self.call(chatty, 'Cancel')
        end = self.client.wait_finished(chatty)
        self.assertEqual(end.args, ('cancelled', ''))
        # Nothing of it is announced after its end.
        self.client.idle(0.5)
        later = [m for m in self.client.signals(chatty) if m.seq > end.seq]
        self.assertEqual(later, [])


if __name__ == '__main__':
    main()
