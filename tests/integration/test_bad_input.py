#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Bad input gets a clear error over the bus and the daemon keeps running (DESIGN.md §7);
the playbook library: ListPlaybooks, GetPlaybook, ValidatePlaybook."""

import json
import re
import unittest

import itk_harness as h

from itk_harness import (INVALID_ARGS, INVALID_PARAMETERS, INVALID_PLAYBOOK, NO_SUCH_PLAYBOOK,
                         DaemonTestCase, GLib, log_step, main, playbook, step)

LINE_COLUMN = re.compile(r'line (\d+), column (\d+)')

TYPED = playbook(
    log_step('a', '{{ count }} {{ flag }} {{ host }}'),
    parameters=[
        {'name': 'count', 'type': 'integer', 'description': 'How many'},
        {'name': 'flag', 'type': 'boolean'},
        {'name': 'host', 'type': 'string'},
        {'name': 'port', 'type': 'integer', 'default': 8088},
        {'name': 'note', 'type': 'string', 'required': False},
    ],
    name='Typed', description='Typed parameters', domain='gateway', group='Tests')


def chain(depth):
    """d/1.yaml runs d/2.yaml ... runs d/<depth>.yaml."""
    files = {}
    for i in range(1, depth):
        files['d/%d.yaml' % i] = playbook(step('n', 'playbook.run',
                                               {'playbook': 'd/%d.yaml' % (i + 1)}),
                                          name='Depth %d' % i)
    files['d/%d.yaml' % depth] = playbook(log_step('x', 'deepest'), name='Depth %d' % depth)
    return files


LIBRARY = {
    'ok/typed.yaml': TYPED,
    'ok/shadowed.yaml': playbook(log_step('a', 'from the library'), name='Library copy'),
    'cycle/a.yaml': playbook(step('to_b', 'playbook.run', {'playbook': 'cycle/b.yaml'}),
                             name='Cycle A'),
    'cycle/b.yaml': playbook(step('to_a', 'playbook.run', {'playbook': 'cycle/a.yaml'}),
                             name='Cycle B'),
    'broken/syntax.yaml': 'name: Broken\nversion: 1\nsteps:\n  - id: a\n    name: [oops\n',
}
LIBRARY.update(chain(5))

GOOD_STEP = "  - {id: a, name: A, type: utility.log, parameters: {message: hi}}\n"


def alias_bomb():
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = 'a'
    for name in 'bcdefghi':
        text += '%s: &%s [%s]\n' % (name, name, ','.join(['*' + previous] * 10))
        previous = name
    return text + 'name: Bomb\nversion: 1\nsteps:\n' + GOOD_STEP


class TestBadInput(DaemonTestCase):
    library = LIBRARY
    config_library = {
        'ok/shadowed.yaml': playbook(log_step('a', 'from the configuration'),
                                     name='Configured copy'),
    }

    def refused(self, error_name, source=None, params=None, options=None,
                playbook_id='bad-input'):
        """StartExecution must fail with @error_name; the daemon keeps running."""
        opts = dict(options or {})
        if source is not None:
            opts['source'] = source
        message = self.assertDBusError(error_name, self.client.start_execution, playbook_id,
                                       params, opts)
        self.assertTrue(message)
        self.assertDaemonAlive()
        return message

    def validate(self, source):
        return self.client.manager('ValidatePlaybook', GLib.Variant('(s)', (source,)))

    def errors(self, source):
        return [d for d in self.validate(source) if d['severity'] == 'error']

    # --- playbook text ---

    def test_malformed_yaml(self):
        source = 'name: x\nversion: 1\nsteps: a: b\n' + GOOD_STEP
        message = self.refused(INVALID_PLAYBOOK, source)
        m = LINE_COLUMN.search(message)
        self.assertIsNotNone(m, message)
        self.assertEqual(m.group(1), '3', message)
        diags = self.errors(source)
        self.assertTrue(diags)
        self.assertEqual(diags[0]['line'], 3)
        self.assertGreater(diags[0]['column'], 0)

    def test_unclosed_flow_sequence(self):
        source = 'name: x\nversion: 1\nsteps:\n  - id: a\n    name: [unclosed\n'
        message = self.refused(INVALID_PLAYBOOK, source)
        self.assertRegex(message, LINE_COLUMN)
        self.assertIn('line 5', message)

    def test_not_a_mapping(self):
        for source in ('', '- a\n- b\n', 'just text\n'):
            message = self.refused(INVALID_PLAYBOOK, source)
            self.assertIn('mapping', message)

    def test_missing_name(self):
        message = self.refused(INVALID_PLAYBOOK, 'version: 1\nsteps:\n' + GOOD_STEP)
        self.assertIn("'name'", message)
        self.assertRegex(message, LINE_COLUMN)

    def test_missing_steps(self):
        self.assertIn("'steps'", self.refused(INVALID_PLAYBOOK, 'name: x\nversion: 1\n'))
        self.assertIn("'steps'", self.refused(INVALID_PLAYBOOK, 'name: x\nversion: 1\nsteps: []\n'))

    def test_missing_step_id(self):
        source = ('name: x\nversion: 1\nsteps:\n'
                  '  - {name: A, type: utility.log, parameters: {message: x}}\n')
        message = self.refused(INVALID_PLAYBOOK, source)
        self.assertIn("'id'", message)
        self.assertIn('line 4', message)

    def test_duplicate_step_ids(self):
        source = 'name: x\nversion: 1\nsteps:\n' + GOOD_STEP + GOOD_STEP.replace('A,', 'B,')
        message = self.refused(INVALID_PLAYBOOK, source)
        self.assertIn("duplicate step id 'a'", message)
        self.assertIn('line 5', message)
        diags = self.errors(source)
        self.assertEqual([(d['line'], d['step-id']) for d in diags], [(5, 'a')])

    def test_unknown_step_type(self):
        source = 'name: x\nversion: 1\nsteps:\n  - {id: a, name: A, type: utility.nope}\n'
        message = self.refused(INVALID_PLAYBOOK, source)
        self.assertIn('utility.nope', message)
        self.assertIn("'a'", message)

    def test_later_step_not_supported_yet(self):
        source = ('name: x\nversion: 1\nsteps:\n' + GOOD_STEP +
                  '  - {id: open_page, name: Open, type: fat.generate_report, '
                  'parameters: {url: "http://localhost"}}\n')
        message = self.refused(INVALID_PLAYBOOK, source)
        self.assertIn('not supported yet', message)
        self.assertIn('open_page', message)
        self.assertIn('fat.generate_report', message)
        diags = self.errors(source)
        self.assertEqual(len(diags), 1)
        self.assertEqual(diags[0]['step-id'], 'open_page')
        self.assertEqual(diags[0]['line'], 5)

    def test_reference_to_a_missing_step(self):
        source = playbook(log_step('a', 'value {{ step.ghost.value }}'))
        message = self.refused(INVALID_PLAYBOOK, source)
        self.assertIn('ghost', message)
        self.assertRegex(message, LINE_COLUMN)

    def test_bad_step_fields(self):
        for field, value, word in (('timeout', -5, 'timeout'),
                                   ('on_failure', 'explode', 'on_failure'),
                                   ('retry_count', 'many', 'retry_count')):
            source = playbook(log_step('a', 'x', **{field: value}))
            message = self.refused(INVALID_PLAYBOOK, source)
            self.assertIn(word, message)

    def test_missing_step_parameter(self):
        source = playbook(step('nap', 'utility.sleep', {}))
        message = self.refused(INVALID_PLAYBOOK, source)
        self.assertIn('seconds', message)
        self.assertIn('nap', message)

    def test_oversized_source(self):
        source = ('name: x\nversion: 1\n# ' + 'x' * (1024 * 1024) + '\nsteps:\n' + GOOD_STEP)
        message = self.refused(INVALID_PLAYBOOK, source)
        self.assertIn('1048576', message)
        self.assertDBusError(INVALID_PLAYBOOK, self.validate, source)
        self.assertDaemonAlive()

    def test_alias_bomb(self):
        source = alias_bomb()
        message = self.refused(INVALID_PLAYBOOK, source)
        self.assertIn('alias', message)
        self.assertRegex(message, LINE_COLUMN)
        self.assertTrue(self.errors(source))

    def test_deep_nesting(self):
        source = ('name: x\nversion: 1\nmetadata: ' + '[' * 10000 + ']' * 10000 +
                  '\nsteps:\n' + GOOD_STEP)
        message = self.refused(INVALID_PLAYBOOK, source)
        self.assertIn('deep', message)
        self.assertIn('line 3', message)
        block = ('name: x\nversion: 1\nmetadata:\n' +
                 ''.join('  ' * i + 'k:\n' for i in range(1, 200)) + 'steps:\n' + GOOD_STEP)
        self.assertIn('deep', self.refused(INVALID_PLAYBOOK, block))

    # --- parameters and options ---

    def test_wrong_parameter_type(self):
        message = self.refused(INVALID_PARAMETERS,
                               params={'count': 'abc', 'flag': True, 'host': 'h'},
                               playbook_id='ok/typed.yaml')
        self.assertIn("'count'", message)
        message = self.refused(INVALID_PARAMETERS,
                               params={'count': 2.5, 'flag': True, 'host': 'h'},
                               playbook_id='ok/typed.yaml')
        self.assertIn("'count'", message)
        message = self.refused(INVALID_PARAMETERS,
                               params={'count': 1, 'flag': 'maybe', 'host': 'h'},
                               playbook_id='ok/typed.yaml')
        self.assertIn("'flag'", message)

    def test_unambiguous_text_is_converted(self):
        path = self.start(params={'count': '30', 'flag': 'true', 'host': 'h'},
                          playbook_id='ok/typed.yaml')
        fin = self.client.wait_finished(path)
        self.assertEqual(fin.args, ('completed', ''))
        lines = [m.args[3] for m in self.client.signals(path, 'Log') if m.args[2] == 'a']
        self.assertEqual(lines, ['30 true h'])

    def test_missing_required_parameters(self):
        message = self.refused(INVALID_PARAMETERS, params={}, playbook_id='ok/typed.yaml')
        for name in ('count', 'flag', 'host'):
            self.assertIn(name, message)
        # Neither the one with a default nor the optional one is missing.
        self.assertNotIn('port', message)
        self.assertNotIn('note', message)

    def test_unsupported_parameter_value_type(self):
        for value in (GLib.Variant('(ii)', (1, 2)), GLib.Variant('a{ii}', {1: 2}),
                      GLib.Variant('a{sv}', {'k': GLib.Variant('(ii)', (1, 2))})):
            message = self.assertDBusError(
                INVALID_ARGS, self.client.start_execution, 'x',
                {'p': value}, {'source': playbook(log_step('a', 'x'))})
            self.assertIn('parameters', message)
            self.assertDaemonAlive()

    def test_fd_parameter_is_refused_by_name(self):
        message = self.assertDBusError(
            INVALID_ARGS, self.client.start_execution, 'x',
            {'p': GLib.Variant('h', 0)}, {'source': playbook(log_step('a', 'x'))})
        self.assertDaemonAlive()
        # Names the parameter and its type, not a bare "Invalid argument".
        self.assertIn("parameter 'p'", message)
        self.assertIn("'h'", message)

    def test_too_many_parameters(self):
        params = {'p%d' % i: i for i in range(300)}
        message = self.refused(INVALID_ARGS, playbook(log_step('a', 'x')), params=params)
        self.assertIn('parameters', message)

    def test_unknown_option(self):
        message = self.refused(INVALID_ARGS, playbook(log_step('a', 'x')),
                               options={'bogus': True})
        self.assertIn('bogus', message)

    def test_wrong_option_type(self):
        for key, value in (('debug', 'yes'), ('start', GLib.Variant('i', 1)),
                           ('source', GLib.Variant('as', ['x'])),
                           ('timeout-overrides', GLib.Variant('a{ss}', {'a': '1'}))):
            options = {key: value}
            source = None if key == 'source' else playbook(log_step('a', 'x'))
            message = self.refused(INVALID_ARGS, source, options=options)
            self.assertIn(key, message)

    def test_timeout_override_out_of_range(self):
        # Durations are capped at 30 days (and a zero timeout would fire at once).
        for seconds in (0, 2592001, 4294967295):
            message = self.refused(INVALID_ARGS, playbook(log_step('a', 'x')),
                                   options={'timeout-overrides':
                                            GLib.Variant('a{su}', {'a': seconds})})
            self.assertIn('timeout-overrides', message)
            self.assertIn('2592000', message)
        self.assertDaemonAlive()

    # --- the library ---

    def test_no_such_playbook(self):
        for playbook_id in ('missing.yaml', '../etc/passwd', '/etc/passwd',
                            'ok/../../etc/passwd'):
            message = self.refused(NO_SUCH_PLAYBOOK, playbook_id=playbook_id)
            self.assertIn(playbook_id, message)
            self.assertDBusError(NO_SUCH_PLAYBOOK, self.client.manager, 'GetPlaybook',
                                 GLib.Variant('(s)', (playbook_id,)))
        self.assertDaemonAlive()

    def test_cycle_in_the_library(self):
        message = self.refused(INVALID_PLAYBOOK, playbook_id='cycle/a.yaml')
        self.assertIn('cycle/a.yaml -> cycle/b.yaml -> cycle/a.yaml', message)
        # A playbook text that runs into the cycle.
        source = playbook(step('go', 'playbook.run', {'playbook': 'cycle/a.yaml'}))
        message = self.refused(INVALID_PLAYBOOK, source)
        self.assertIn('cycle/a.yaml -> cycle/b.yaml -> cycle/a.yaml', message)
        diags = self.errors(source)
        self.assertEqual(len(diags), 1)
        self.assertIn('cycle/a.yaml -> cycle/b.yaml -> cycle/a.yaml', diags[0]['message'])

    # BUG: a nesting problem found by ValidatePlaybook (here a cycle reached
    # through step 'go') has step-id "" and line/column 0, although the step
    # and its position are known (the message itself names the step).
    @unittest.expectedFailure
    def test_cycle_diagnostic_names_the_step(self):
        source = playbook(log_step('first', 'x'),
                          step('go', 'playbook.run', {'playbook': 'cycle/a.yaml'}))
        diags = self.errors(source)
        self.assertEqual(len(diags), 1)
        self.assertEqual(diags[0]['step-id'], 'go')
        self.assertGreater(diags[0]['line'], 1)

    def test_nesting_deeper_than_three(self):
        message = self.refused(INVALID_PLAYBOOK, playbook_id='d/1.yaml')
        self.assertIn('3', message)
        self.assertIn('d/1.yaml -> d/2.yaml -> d/3.yaml -> d/4.yaml', message)
        # Three levels below is fine.
        path = self.start(playbook_id='d/2.yaml')
        self.assertEqual(self.client.wait_finished(path).args, ('completed', ''))
        ids = [c['step-id'] for s in self.client.get_steps(path) for c in s['children']]
        self.assertEqual(ids, ['n/n'])

    def list_playbooks(self):
        return {p['id']: p for p in self.client.manager('ListPlaybooks')}

    def test_list_playbooks(self):
        listed = self.list_playbooks()
        for playbook_id in LIBRARY:
            self.assertIn(playbook_id, listed)
        typed = listed['ok/typed.yaml']
        self.assertEqual(typed['name'], 'Typed')
        self.assertEqual(typed['version'], '1.0')
        self.assertEqual(typed['description'], 'Typed parameters')
        self.assertEqual(typed['domain'], 'gateway')
        self.assertEqual(typed['group'], 'Tests')
        self.assertIs(typed['verified'], False)
        self.assertIs(typed['valid'], True)
        self.assertEqual(typed['errors'], [])
        self.assertEqual(typed['step-count'], 1)
        params = {p['name']: p for p in typed['parameters']}
        self.assertEqual(list(params), ['count', 'flag', 'host', 'port', 'note'])
        self.assertEqual(params['count']['type'], 'integer')
        self.assertIs(params['count']['required'], True)
        self.assertEqual(params['count']['description'], 'How many')
        self.assertNotIn('default', params['count'])
        self.assertEqual(params['port']['default'], 8088)
        self.assertIs(params['note']['required'], False)
        broken = listed['broken/syntax.yaml']
        self.assertIs(broken['valid'], False)
        self.assertTrue(broken['errors'])
        self.assertRegex(broken['errors'][0], LINE_COLUMN)

    def test_configured_playbook_hides_the_library_one(self):
        listed = [p for p in self.client.manager('ListPlaybooks')
                  if p['id'] == 'ok/shadowed.yaml']
        self.assertEqual(len(listed), 1)
        self.assertEqual(listed[0]['name'], 'Configured copy')
        path = self.start(playbook_id='ok/shadowed.yaml')
        self.client.wait_finished(path)
        self.assertIn('from the configuration',
                      [m.args[3] for m in self.client.signals(path, 'Log')])

    def test_list_playbooks_flags_nesting_problems(self):
        listed = self.list_playbooks()
        for playbook_id in ('cycle/a.yaml', 'd/1.yaml'):
            self.assertIs(listed[playbook_id]['valid'], False, playbook_id)
            self.assertTrue(listed[playbook_id]['errors'], playbook_id)

    def test_get_playbook(self):
        got = self.client.manager('GetPlaybook', GLib.Variant('(s)', ('ok/typed.yaml',)))
        listed = self.list_playbooks()['ok/typed.yaml']
        for key, value in listed.items():
            self.assertEqual(got[key], value, key)
        self.assertEqual(got['source'], TYPED)
        self.assertEqual(len(got['steps']), 1)
        s = got['steps'][0]
        self.assertEqual((s['id'], s['name'], s['type']), ('a', 'Step a', 'utility.log'))
        self.assertEqual(s['timeout'], 300.0)
        self.assertEqual(s['retry-count'], 0)
        self.assertEqual(s['retry-delay'], 5.0)
        self.assertEqual(s['on-failure'], 'abort')
        self.assertEqual(json.loads(s['parameters']),
                         {'message': '{{ count }} {{ flag }} {{ host }}'})
        self.assertEqual(got['rollback'], [])
        self.assertIsInstance(json.loads(got['metadata'] or 'null'), (dict, type(None)))

    def test_validate_good_playbook(self):
        self.assertEqual(self.errors(TYPED), [])

    def test_validate_reports_every_problem(self):
        source = ('name: x\nversion: 1\nsteps:\n'
                  '  - {id: a, name: A, type: utility.nope}\n'
                  '  - {id: b, name: B, type: designer.launch}\n'
                  '  - {id: a, name: C, type: utility.log, parameters: {message: x}}\n')
        diags = self.errors(source)
        self.assertEqual([d['line'] for d in diags], [4, 5, 6])
        for d in diags:
            self.assertGreater(d['column'], 0)
            self.assertEqual(set(d), {'severity', 'line', 'column', 'step-id', 'message'})
        self.assertIn('utility.nope', diags[0]['message'])
        self.assertIn('not supported yet', diags[1]['message'])
        self.assertEqual(diags[1]['step-id'], 'b')
        self.assertIn('duplicate', diags[2]['message'])

    def test_validate_warns_about_unknown_keys(self):
        diags = self.validate(playbook(log_step('a', 'x'), colour='blue'))
        self.assertEqual([d for d in diags if d['severity'] == 'error'], [])
        warnings = [d for d in diags if d['severity'] == 'warning']
        self.assertTrue(any('colour' in d['message'] for d in warnings), diags)


# --- hostile arguments from an unprivileged caller (docs/limits.md) ---------------

def byte_bomb_expr(levels=4):
    """A Python expression (evaluated in the caller's process, so the text
    need not pass through argv) for a ~100 KiB playbook whose aliases re-emit
    10^levels copies of a 100 KiB scalar: 1 GiB at 4 levels, from ~11,000
    nodes, far under the node bound."""
    head = ('name: Bomb\nversion: 1\nsteps:\n' + GOOD_STEP + 'metadata:\n  l0: &l0 "')
    tail = '"\n' + ''.join('  l%d: &l%d [%s]\n' % (i, i, ', '.join(['*l%d' % (i - 1)] * 10))
                           for i in range(1, levels + 1))
    return '%r + "x" * 102400 + %r' % (head, tail)


def nested_variant_expr(levels):
    return ('__import__("functools").reduce(lambda v, _: GLib.Variant("v", v), range(%d), '
            'GLib.Variant("s", "leaf"))' % levels)


def manager_call(member, body):
    return [h.MANAGER_PATH, h.MANAGER_IFACE, member, body, False]


def start_call(params_expr='{}', options_expr=None, label='hostile'):
    if options_expr is None:
        options_expr = '{"source": GLib.Variant("s", %r)}' % playbook(log_step('a', 'x'))
    return manager_call('StartExecution', 'GLib.Variant("(sa{sv}a{sv})", (%r, %s, %s))' %
                        (label, params_expr, options_expr))


GOOD_VALIDATE = manager_call('ValidatePlaybook', 'GLib.Variant("(s)", (%r,))' %
                             playbook(log_step('a', 'x')))


class TestHostileInputUnprivileged(unittest.TestCase):
    """Every bounded argument, sent by `nobody` (a member of the configured
    group, so that the state-changing calls get past authorization to the
    argument checks): a clear error naming the bound, and the daemon serves
    the next call."""

    @classmethod
    def setUpClass(cls):
        # Imported here: the module needs nothing of test_polkit otherwise.
        import test_polkit
        case = type('Case', (test_polkit.AuthorizationTestCase,), {'group': 'nogroup'})
        cls.case = case
        case.setUpClass()
        cls.helper = case('executions')

    @classmethod
    def tearDownClass(cls):
        cls.case.tearDownClass()

    def tearDown(self):
        self.helper.tearDown()

    def call(self, *calls):
        """Runs @calls as nobody, then a good ValidatePlaybook: it must answer."""
        out = self.helper.call_as('nobody', list(calls) + [GOOD_VALIDATE], group='nogroup')
        replies = out['replies']
        self.assertIsNone(replies[-1]['error'], 'the daemon stopped serving: %r' % replies[-1])
        self.assertEqual(replies[-1]['value'], [])
        self.assertTrue(self.case.daemon.running(), 'ignition-toolkitd exited')
        return replies[:-1]

    def assertRefused(self, reply, error, *needles):
        self.assertEqual(reply['error'], error, reply)
        for needle in needles:
            self.assertIn(needle, reply['message'])

    def test_validate_byte_bomb(self):
        reply, = self.call(manager_call('ValidatePlaybook',
                                        'GLib.Variant("(s)", (%s,))' % byte_bomb_expr()))
        self.assertIsNone(reply['error'], reply)
        errors = [d for d in reply['value'] if d['severity'] == 'error']
        self.assertEqual(len(errors), 1, reply)
        self.assertIn('expands to more than 16 MiB through YAML aliases', errors[0]['message'])
        self.assertEqual((errors[0]['line'], errors[0]['column']), (9, 12))

    def test_validate_many_problems(self):
        # 190,000 steps breaking three rules each, in under 1 MiB.
        source = '"name: x\\nversion: 1\\nsteps:\\n" + "- {}\\n" * 190000'
        reply, = self.call(manager_call('ValidatePlaybook', 'GLib.Variant("(s)", (%s,))' % source))
        self.assertIsNone(reply['error'], reply)
        self.assertEqual(len(reply['value']), 1001)
        self.assertEqual(reply['value'][-1]['message'],
                         '569000 more problems (569000 errors) not listed: only the first 1000 are')

    def test_start_byte_bomb(self):
        reply, = self.call(start_call(options_expr='{"source": GLib.Variant("s", %s)}' %
                                      byte_bomb_expr()))
        self.assertRefused(reply, INVALID_PLAYBOOK, 'expands to more than 16 MiB')

    def test_huge_source(self):
        big = '"name: x\\n# " + "x" * (4 << 20)'
        replies = self.call(
            manager_call('ValidatePlaybook', 'GLib.Variant("(s)", (%s,))' % big),
            start_call(options_expr='{"source": GLib.Variant("s", %s)}' % big))
        for reply in replies:
            self.assertRefused(reply, INVALID_PLAYBOOK, 'the limit is 1048576')

    def test_deep_parameter_nesting(self):
        # Deeper than the bound, within what the bus itself carries.
        replies = self.call(
            start_call('{"p": %s}' % nested_variant_expr(40)),
            start_call('{"p": GLib.Variant("av", [%s])}' % nested_variant_expr(40)),
            start_call('{"p": GLib.Variant("a{sv}", {"k": %s})}' % nested_variant_expr(32)),
            start_call('{"p": __import__("functools").reduce(lambda v, _: GLib.Variant("v", '
                       'GLib.Variant("av", [v])), range(20), GLib.Variant("s", "x"))}'))
        for reply in replies:
            self.assertRefused(reply, INVALID_ARGS, "parameter 'p'", 'more than 32 deep')

    def test_many_values_and_huge_strings(self):
        replies = self.call(
            start_call('{"p": GLib.Variant("as", [""] * 200000)}'),
            start_call('{"p": GLib.Variant("s", "x" * (2 << 20))}'),
            start_call('{"p%d" % i: GLib.Variant("s", "x" * (1 << 20)) for i in range(5)}'),
            start_call('{"p%d" % i: GLib.Variant("i", i) for i in range(10000)}'),
            start_call('{"x" * 5000: GLib.Variant("i", 1)}'))
        self.assertRefused(replies[0], INVALID_ARGS, 'more than 65536 values')
        self.assertRefused(replies[1], INVALID_ARGS, 'string of 2097152 bytes',
                           'the limit is 1048576')
        self.assertRefused(replies[2], INVALID_ARGS, 'more than 4194304 bytes of text')
        self.assertRefused(replies[3], INVALID_ARGS, 'too many parameters', '256')
        self.assertRefused(replies[4], INVALID_ARGS, 'parameter name is 5000 bytes',
                           'the limit is 1024')

    def test_timeout_overrides_and_options(self):
        source = playbook(log_step('a', 'x'))
        replies = self.call(
            start_call(options_expr='{"source": GLib.Variant("s", %r), "timeout-overrides": '
                       'GLib.Variant("a{su}", {"s%%d" %% i: 1 for i in range(5000)})}' % source),
            start_call(options_expr='{"source": GLib.Variant("s", %r), "timeout-overrides": '
                       'GLib.Variant("a{su}", {"s%%d" %% i: 1 for i in range(1025)})}' % source),
            start_call(options_expr='{"source": GLib.Variant("s", %r), "credential": '
                       'GLib.Variant("s", "c" * 100000)}' % source),
            start_call(label='L' * 100000))
        self.assertRefused(replies[0], INVALID_ARGS, 'options hold more than')
        self.assertRefused(replies[1], INVALID_ARGS, "'timeout-overrides' has 1025 steps",
                           'the limit is 1024')
        self.assertRefused(replies[2], INVALID_ARGS, "option 'credential' is 100000 bytes")
        self.assertRefused(replies[3], INVALID_ARGS, 'playbook id is 100000 bytes')

    def test_history_and_log_limits(self):
        path = self.helper.start_as('nobody', 'quick.yaml', group='nogroup')
        client = self.case.client
        client.wait_for(lambda: client.get_prop(path, 'Status') in h.TERMINAL,
                        what='the run to finish')
        replies = self.call(
            manager_call('GetHistory', 'GLib.Variant("(us)", (4294967295, ""))'),
            manager_call('GetHistory', 'GLib.Variant("(us)", (1000, ""))'),
            manager_call('GetHistory', 'GLib.Variant("(us)", (0, "s" * 100000))'),
            [path, h.EXECUTION_IFACE, 'GetLog', 'GLib.Variant("(u)", (4294967295,))', False],
            [path, h.EXECUTION_IFACE, 'GetLog', 'GLib.Variant("(u)", (0,))', False],
            manager_call('GetPlaybook', 'GLib.Variant("(s)", ("p" * 100000,))'),
            manager_call('GetExecutionRecord', 'GLib.Variant("(s)", ("e" * 100000,))'))
        self.assertRefused(replies[0], INVALID_ARGS, 'limit 4294967295', 'maximum of 1000')
        self.assertIsNone(replies[1]['error'], replies[1])
        self.assertRefused(replies[2], INVALID_ARGS, 'status is 100000 bytes')
        self.assertRefused(replies[3], INVALID_ARGS, 'max 4294967295', 'limit of 5000')
        self.assertIsNone(replies[4]['error'], replies[4])
        self.assertTrue(replies[4]['value'])
        self.assertRefused(replies[5], INVALID_ARGS, 'playbook id is 100000 bytes')
        self.assertRefused(replies[6], INVALID_ARGS, 'execution id is 100000 bytes')

    def test_credential_fields(self):
        set_cred = 'GLib.Variant("(sa{sv})", (%s, %s))'
        replies = self.call(
            manager_call('SetCredential', set_cred % ('"n" * 100000', '{}')),
            manager_call('SetCredential', set_cred % (
                '"c"', '{"password": GLib.Variant("s", "S" * 100000)}')),
            manager_call('SetCredential', set_cred % (
                '"c"', '{"k%d" % i: GLib.Variant("s", "") for i in range(1000)}')))
        self.assertRefused(replies[0], INVALID_ARGS, 'credential name is 100000 bytes')
        self.assertRefused(replies[1], INVALID_ARGS, 'string of 100000 bytes', '8192')
        self.assertRefused(replies[2], INVALID_ARGS, 'credential fields hold more than 64')
        for reply in replies:
            self.assertNotIn('SSSS', reply['message'])


if __name__ == '__main__':
    main()
