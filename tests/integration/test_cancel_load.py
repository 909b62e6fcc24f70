#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A chatty script over D-Bus: all its lines reach the Log signals (most in
LogBatch bursts) and the store in order, and another run's Cancel is served while it runs (ordering
and completion only; the timings are tests/bench's cancel_load)."""

import os

from itk_harness import (GLib, DaemonTestCase, main, playbook, shell_step, sleep_step)

# A slow Python client keeps this short; the bench checks 200,000 lines.
LINES = 20000


def numbered(messages):
    return [m for m in messages if m[:1].isdigit()]


class TestCancelLoad(DaemonTestCase):

    def test_chatty_run_and_cancel_of_another(self):
        gate = os.path.join(self.tmp, 'gate')
        # Prints, then stays alive until the gate opens: it is surely still
        # running when the other run's Cancel is served.
        chatty = self.start(playbook(shell_step(
            'chatty', 'seq 1 %d; while [ ! -e %s ]; do sleep 0.05; done' % (LINES, gate)),
            name='Chatty'))
        sleeper = self.start(playbook(sleep_step('nap', 600), name='Sleeper'))
        self.client.wait_step(sleeper, 'nap', 'running', timeout=120)
        self.client.wait_log(chatty, '1000', timeout=120)
        self.client.call(sleeper, 'Cancel', timeout=120)
        fin = self.client.wait_finished(sleeper, timeout=120)
        self.assertEqual(fin.args, ('cancelled', ''))
        self.assertEqual(self.client.finished(chatty), [])
        with open(gate, 'w'):
            pass
        end = self.client.wait_finished(chatty, timeout=240)
        self.assertEqual(end.args[0], 'completed', end.args)
        self.assertLess(fin.seq, end.seq)

        # Lines committed together leave as one LogBatch (at most 128 lines
        # of one read of the pipe): a flood costs the bus one message per
        # burst, not per line, so another run's StatusChanged is not queued
        # behind thousands of them. seq writes whole pipe buffers, so bursts
        # are large; single lines (Log) are rare.
        batches = self.client.signals(chatty, 'LogBatch')
        batch_serials = {b.serial for b in batches}
        singles = [m for m in self.client.signals(chatty, 'Log')
                   if m.serial not in batch_serials]
        self.assertTrue(batches)
        for batch in batches:
            self.assertTrue(2 <= len(batch.args[0]) <= 128, len(batch.args[0]))
        self.assertLess(len(batches) + len(singles), LINES // 10)

        logged = numbered([m.args[3] for m in self.client.signals(chatty, 'Log')])
        self.assertEqual(len(logged), LINES)
        self.assertEqual(logged, [str(i) for i in range(1, LINES + 1)])
        # The store has them too: GetLog returns the newest 5000 (docs/limits.md).
        stored = numbered([line[3] for line in
                           self.client.call(chatty, 'GetLog', GLib.Variant('(u)', (0,)))])
        self.assertEqual(len(stored), 5000)
        self.assertEqual(stored, [str(i) for i in range(LINES - 4999, LINES + 1)])


if __name__ == '__main__':
    main()
