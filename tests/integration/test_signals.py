#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What clients see is the truth: ordering and content of signals, GetSteps, GetLog."""

import json
import os
import time

from itk_harness import (BUS_NAME, EXECUTION_IFACE, MANAGER_IFACE, MANAGER_PATH, DaemonTestCase,
                         Gio, GLib, gate_python, gate_shell, log_step, main, playbook,
                         python_step, shell_step, sleep_step, step)

LONG = 600

STEP_KEYS = {
    'index': 'i', 'step-id': 's', 'name': 's', 'type': 's', 'status': 's', 'attempts': 'u',
    'started-at': 'x', 'finished-at': 'x', 'error': 's', 'output': 's', 'phase': 's',
    'children': 'aa{sv}',
}


class TestSignals(DaemonTestCase):

    def reply_of(self, client, path):
        replies = [m for m in client.messages() if m.kind == 'return' and m.args == (path,)]
        self.assertEqual(len(replies), 1, 'the StartExecution reply for %s' % path)
        return replies[0]

    def test_reply_comes_before_any_status_change(self):
        # The raw arrival order, as GDBus's filter sees it on this connection.
        client = self.new_client()
        paths = []
        for i in range(8):
            paths.append(self.start(playbook(log_step('a', 'run %d' % i)), client=client))
        for path in paths:
            client.wait_finished(path)
        for path in paths:
            reply = self.reply_of(client, path)
            added = client.wait_signal(MANAGER_PATH, 'InterfacesAdded', lambda a: a[0] == path)
            new = client.wait_signal(MANAGER_PATH, 'ExecutionNew', lambda a: a[0] == path)
            self.assertIn(EXECUTION_IFACE, added.args[1])
            self.assertEqual(new.args[1], client.get_prop(path, 'Id'))
            self.assertEqual(new.args[2], 'integration-test')
            # Announced before the reply ...
            self.assertLess(added.seq, reply.seq)
            self.assertLess(new.seq, reply.seq)
            # ... and nothing of the run itself before it.
            own = client.signals(path)
            self.assertTrue(own)
            for m in own:
                self.assertGreater(m.seq, reply.seq, '%s %r preceded the reply' %
                                   (m.member, m.args))
            self.assertEqual(client.statuses(path)[0], ('running', 'pending'))

    def test_pending_run_has_no_status_change_before_start(self):
        client = self.new_client()
        path = self.start(playbook(log_step('a', 'x')), client=client, start=False)
        serial = client.send(path, 'Start')
        reply = client.reply(serial)
        self.assertEqual(reply.kind, 'return')
        client.wait_finished(path)
        first = client.signals(path, 'StatusChanged')[0]
        self.assertEqual(first.args, ('running', 'pending'))
        self.assertGreater(first.seq, reply.seq)

    def test_a_client_that_matches_first_sees_every_transition(self):
        starter = self.new_client()
        watcher = self.new_client()
        path = self.start(playbook(sleep_step('a', LONG), log_step('b', 'B ran')),
                          client=starter)
        starter.wait_step(path, 'a', 'running')
        for _ in range(2):
            self.call(path, 'Pause', client=starter)
            starter.wait_status(path, 'paused')
            n = len(starter.statuses(path))
            self.call(path, 'Resume', client=starter)
            starter.wait_for(lambda: len(starter.statuses(path)) > n, what='running again')
        self.call(path, 'Skip', client=starter)
        starter.wait_finished(path)
        watcher.wait_finished(path)
        expected = [('running', 'pending'), ('paused', 'running'), ('running', 'paused'),
                    ('paused', 'running'), ('running', 'paused'), ('completed', 'running')]
        self.assertEqual(starter.statuses(path), expected)
        self.assertEqual(watcher.statuses(path), expected)
        steps = [(m.args[1], m.args[2]) for m in starter.signals(path, 'StepChanged')]
        self.assertEqual(steps, [('a', 'running'), ('a', 'skipped'), ('b', 'running'),
                                 ('b', 'completed')])
        self.assertEqual(steps, [(m.args[1], m.args[2])
                                 for m in watcher.signals(path, 'StepChanged')])
        self.assertEqual(starter.get_prop(path, 'Status'), 'completed')

    def test_status_property_changes_are_announced(self):
        path = self.start(playbook(sleep_step('a', LONG)))
        self.client.wait_step(path, 'a', 'running')
        self.call(path, 'Pause')
        self.client.wait_status(path, 'paused')
        self.call(path, 'Cancel')
        self.client.wait_finished(path)

        def status_values():
            values = []
            for m in self.client.signals(path, 'PropertiesChanged'):
                iface, changed, invalidated = m.args
                if iface == EXECUTION_IFACE and ('Status' in changed or 'Status' in invalidated):
                    values.append(changed.get('Status'))
            return values
        values = status_values()
        self.assertEqual(len(values), 3, values)  # running, paused, cancelled
        if values[0] is not None:
            self.assertEqual(values, ['running', 'paused', 'cancelled'])

    def test_exactly_one_finished_after_the_last_step_and_log(self):
        cases = [
            (playbook(log_step('a', 'one'), log_step('b', 'two')), 'completed'),
            (playbook(log_step('a', 'one'), shell_step('b', 'echo bye; exit 3')), 'failed'),
        ]
        for source, status in cases:
            path, got, _ = self.run_to_end(source)
            self.assertEqual(got, status)
            fin = self.client.finished(path)
            self.assertEqual(len(fin), 1)
            own = self.client.signals(path)
            self.assertIs(own[-1], fin[0])
            self.assertTrue([m for m in own if m.member == 'Log'])
            self.assertTrue([m for m in own if m.member == 'StepChanged'])

    def assertLogArrivesLive(self, source, marker):
        path = self.start(source)
        line = self.client.wait_log(path, marker)
        cancelled_at = time.monotonic()
        self.assertLess(line.time, cancelled_at)
        # The script is still running: the line came as it was written.
        self.assertEqual(self.client.finished(path), [])
        self.assertEqual(self.client.get_prop(path, 'Status'), 'running')
        self.call(path, 'Cancel')
        self.client.wait_finished(path)
        return line

    def test_python_output_arrives_live(self):
        gate = os.path.join(self.tmp, 'never')
        line = self.assertLogArrivesLive(playbook(python_step('py', gate_python('EARLY', gate))),
                                         'EARLY')
        self.assertEqual(line.args[2], 'py')
        self.assertEqual(line.args[3], 'EARLY')

    def test_shell_output_arrives_live(self):
        gate = os.path.join(self.tmp, 'never')
        line = self.assertLogArrivesLive(playbook(shell_step('sh', gate_shell('EARLY', gate))),
                                         'EARLY')
        self.assertEqual(line.args[2], 'sh')

    def test_stderr_lines_are_logged(self):
        path, status, _ = self.run_to_end(playbook(shell_step('sh', 'echo to-stderr >&2')))
        self.assertEqual(status, 'completed')
        lines = [m for m in self.client.signals(path, 'Log') if m.args[3] == 'to-stderr']
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines[0].args[2], 'sh')

    def raw_steps(self, path):
        raw = self.client.conn.call_sync(BUS_NAME, path, EXECUTION_IFACE, 'GetSteps', None,
                                         GLib.VariantType('(aa{sv})'),
                                         Gio.DBusCallFlags.NONE, -1, None)
        steps = raw.get_child_value(0)
        result = []
        for i in range(steps.n_children()):
            entry = steps.get_child_value(i)
            types = {}
            for j in range(entry.n_children()):
                kv = entry.get_child_value(j)
                types[kv.get_child_value(0).get_string()] = \
                    kv.get_child_value(1).get_variant().get_type_string()
            result.append(types)
        return result

    def test_get_steps_and_get_log(self):
        script = ('print("RESULT=42")\n'
                  'print("GREETING=  hello world  ")\n'
                  'print("just text")\n')
        source = playbook(
            step('warn', 'utility.log', {'message': 'careful now', 'level': 'warning'}),
            step('setvar', 'utility.set_variable', {'name': 'answer', 'value': 42}),
            log_step('echo', 'answer is {{ variable.answer }}'),
            python_step('py', script),
            shell_step('sh', 'echo SHELL_KEY=shell value; echo other'),
            log_step('ref', 'python said {{ step.py.RESULT }} and {{ step.sh.SHELL_KEY }}'),
        )
        path, status, error = self.run_to_end(source)
        self.assertEqual((status, error), ('completed', ''))

        for types in self.raw_steps(path):
            self.assertEqual(types, STEP_KEYS)
        steps = self.client.get_steps(path)
        self.assertEqual([s['step-id'] for s in steps], ['warn', 'setvar', 'echo', 'py', 'sh',
                                                         'ref'])
        self.assertEqual([s['index'] for s in steps], list(range(6)))
        for s in steps:
            self.assertEqual(s['status'], 'completed', s)
            self.assertEqual(s['attempts'], 1)
            self.assertEqual(s['phase'], 'main')
            self.assertEqual(s['error'], '')
            self.assertEqual(s['children'], [])
            self.assertGreater(s['started-at'], 0)
            self.assertGreaterEqual(s['finished-at'], s['started-at'])
        by_id = {s['step-id']: s for s in steps}
        self.assertEqual(by_id['warn']['type'], 'utility.log')
        self.assertEqual(by_id['warn']['name'], 'Step warn')
        self.assertEqual(json.loads(by_id['warn']['output']), {'logged': True, 'level': 'warning'})
        self.assertEqual(json.loads(by_id['setvar']['output']),
                         {'variable': 'answer', 'value': 42})
        py = json.loads(by_id['py']['output'])
        self.assertEqual(py['RESULT'], '42')
        self.assertEqual(py['GREETING'], 'hello world')
        self.assertIn('just text', py['_output'])
        self.assertIn('RESULT=42', py['_output'])
        self.assertNotIn('just text', [k for k in py if k != '_output'])
        sh = json.loads(by_id['sh']['output'])
        self.assertEqual(sh['SHELL_KEY'], 'shell value')

        log = self.client.call(path, 'GetLog', GLib.Variant('(u)', (0,)))
        messages = [(prio, sid, msg) for _, prio, sid, msg in log]
        self.assertIn((4, 'warn', 'careful now'), messages)
        self.assertIn((6, 'echo', 'answer is 42'), messages)
        self.assertIn((6, 'ref', 'python said 42 and shell value'), messages)
        self.assertIn('just text', [msg for _, sid, msg in messages if sid == 'py'])
        times = [t for t, _, _, _ in log]
        self.assertEqual(times, sorted(times), 'GetLog is oldest first')
        # The Log signals carried the same lines.
        signalled = {m.args for m in self.client.signals(path, 'Log')}
        for line in log:
            self.assertIn(tuple(line), signalled)
        newest = self.client.call(path, 'GetLog', GLib.Variant('(u)', (2,)))
        self.assertEqual([tuple(x) for x in newest], [tuple(x) for x in log[-2:]])

    def test_properties_of_a_finished_run(self):
        path, status, _ = self.run_to_end(
            playbook(log_step('a', 'x'), log_step('b', 'y'), name='Props', version='2.5',
                     domain='gateway'))
        props = self.client.get_props(path)
        self.assertEqual(props['Status'], 'completed')
        self.assertEqual(props['PlaybookName'], 'Props')
        self.assertEqual(props['PlaybookVersion'], '2.5')
        self.assertEqual(props['Domain'], 'gateway')
        self.assertEqual(props['TotalSteps'], 2)
        self.assertEqual(props['Progress'], 1.0)
        self.assertEqual(props['CurrentStep'], -1)
        self.assertEqual(props['Error'], '')
        self.assertEqual(props['StartedByUid'], os.getuid())
        self.assertGreater(props['StartedAt'], 0)
        self.assertGreaterEqual(props['FinishedAt'], props['StartedAt'])
        self.assertEqual(props['Id'].replace('-', ''), path.rsplit('/', 1)[1])
        listed = {e[0]: e for e in self.client.manager('ListExecutions')}
        self.assertEqual(listed[path][1:4], (props['Id'], 'integration-test', 'completed'))
        self.assertEqual(listed[path][5], 2)

    def test_active_executions_is_announced(self):
        path = self.start(playbook(sleep_step('a', LONG)))
        self.client.wait_step(path, 'a', 'running')
        active = self.client.get_prop(MANAGER_PATH, 'ActiveExecutions', MANAGER_IFACE)
        self.assertGreaterEqual(active, 1)
        mark = len(self.client.messages())
        self.call(path, 'Cancel')
        self.client.wait_finished(path)

        def announced():
            for m in self.client.messages()[mark:]:
                if (m.kind == 'signal' and m.path == MANAGER_PATH
                        and m.member == 'PropertiesChanged' and m.args[0] == MANAGER_IFACE
                        and ('ActiveExecutions' in m.args[1]
                             or 'ActiveExecutions' in m.args[2])):
                    return m
            return None
        self.client.wait_for(announced, what='ActiveExecutions to change')
        self.assertEqual(self.client.get_prop(MANAGER_PATH, 'ActiveExecutions', MANAGER_IFACE),
                         active - 1)


if __name__ == '__main__':
    main()
