#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""ignitionctl against the real daemon on a private bus: every verb, its JSON
output, exit statuses, Ctrl-C cancelling a followed run, id prefixes, and
validate without any daemon."""

import collections
import json
import os
import re
import select
import signal
import subprocess
import time

from itk_harness import (TIMEOUT, Bus, DaemonTestCase, GLib, log_step, main, playbook,
                         shell_step, sleep_step, source_root)

EXIT_FAILURE = 1
EXIT_CANCELLED = 2
EXIT_USAGE = 64
EXIT_DATAERR = 65
EXIT_NOINPUT = 66
EXIT_UNAVAILABLE = 69
EXIT_DETACHED = 130

QUICK = playbook(log_step('hello', 'Hello {{ greeting }}', name='Say hello'),
                 log_step('bye', 'Bye now', name='Say bye'),
                 name='Quick', parameters=[{'name': 'greeting', 'type': 'string',
                                            'default': 'world'}])
SLOW = playbook(log_step('first', 'first line', name='First'),
                sleep_step('wait', 600, name='Wait a while'),
                sleep_step('wait2', 600, name='Wait again'),
                log_step('last', 'last line', name='Last'),
                name='Slow')
FAIL = playbook(shell_step('boom', 'echo going down; exit 3', name='Boom'), name='Fail')
# One script read of many lines: the daemon sends them as LogBatch signals.
SEQ = playbook(shell_step('count', 'seq 1 300', name='Count'), name='Seq')

UUID_RE = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')


def ignitionctl_path():
    path = os.environ.get('ITK_IGNITIONCTL')
    if path:
        return path
    root = source_root()
    found = []
    for entry in os.listdir(root):
        candidate = os.path.join(root, entry, 'client', 'cli', 'ignitionctl')
        if entry.startswith('build') and os.access(candidate, os.X_OK):
            found.append((os.path.getmtime(candidate), candidate))
    if not found:
        raise RuntimeError('set ITK_IGNITIONCTL to the ignitionctl to test')
    return max(found)[1]


Result = collections.namedtuple('Result', 'rc out err')


def ctl_env():
    env = dict(os.environ)
    env['NO_COLOR'] = '1'
    env['LC_ALL'] = 'C.UTF-8'
    return env


def run_ctl(address, *args, stdin=None, timeout=TIMEOUT):
    argv = [ignitionctl_path()]
    if address is not None:
        argv.append('--bus-address=' + address)
    argv += list(args)
    p = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout,
                       env=ctl_env(), stdin=None if stdin is not None else subprocess.DEVNULL)
    return Result(p.returncode, p.stdout, p.stderr)


class CtlTestCase(DaemonTestCase):
    library = {'ctl/quick.yaml': QUICK, 'ctl/slow.yaml': SLOW, 'ctl/fail.yaml': FAIL,
               'ctl/seq.yaml': SEQ}

    def ctl(self, *args, **kwargs):
        return run_ctl(self.bus.address, *args, **kwargs)

    def assertCtl(self, result, rc=0, what=''):
        self.assertEqual(result.rc, rc, '%s: exit %d, stdout:\n%s\nstderr:\n%s' %
                         (what, result.rc, result.out, result.err))

    def assertOneLineError(self, result, text):
        lines = result.err.strip().splitlines()
        self.assertEqual(len(lines), 1, 'one error line expected: %r' % result.err)
        self.assertTrue(lines[0].startswith('ignitionctl: '), lines[0])
        self.assertIn(text, lines[0])
        return lines[0]

    def json_of(self, *args):
        result = self.ctl('--json', *args)
        self.assertCtl(result, 0, ' '.join(args))
        return json.loads(result.out)

    def start_slow(self):
        """A run held in its 'wait' step; returns (path, id)."""
        result = self.ctl('run', '--no-follow', 'ctl/slow.yaml')
        self.assertCtl(result, 0, 'run --no-follow')
        run_id = result.out.strip()
        self.assertRegex(run_id, UUID_RE)
        path = '/org/ignition/Toolkit/execution/' + run_id.replace('-', '')
        self.runs.append((self.client, path))
        self.client.wait_step(path, 'wait', 'running')
        return path, run_id

    def finished_id(self, source=QUICK, label='ctl-finished'):
        path = self.start(source, playbook_id=label)
        self.client.wait_finished(path)
        return path, self.client.get_prop(path, 'Id')

    def history_ids(self):
        runs = self.client.manager('GetHistory', GLib.Variant('(us)', (0, '')))
        return {r['id']: r for r in runs}

    def popen_ctl(self, *args):
        argv = [ignitionctl_path(), '--bus-address=' + self.bus.address] + list(args)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=ctl_env())
        proc.pending = b''
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        return proc

    def read_until(self, proc, pattern, timeout=TIMEOUT):
        """Lines of @proc's stdout up to the first matching @pattern.

        Reads the pipe unbuffered, so select() sees every byte not yet read."""
        deadline = time.monotonic() + timeout
        fd = proc.stdout.fileno()
        lines = []
        while time.monotonic() < deadline:
            while b'\n' in proc.pending:
                line, proc.pending = proc.pending.split(b'\n', 1)
                lines.append(line.decode() + '\n')
                if re.search(pattern, lines[-1]):
                    return lines
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if chunk == b'':
                break
            proc.pending += chunk
        self.fail('no line matching %r; got:\n%s' % (pattern, ''.join(lines)))

    def finish(self, proc):
        """Exit status, the rest of stdout, and stderr of @proc."""
        out, err = proc.communicate(timeout=TIMEOUT)
        return proc.returncode, (proc.pending + out).decode(), err.decode()


class TestRun(CtlTestCase):

    def test_follow_completed(self):
        result = self.ctl('run', 'ctl/quick.yaml', '-p', 'greeting=there')
        self.assertCtl(result, 0, 'run')
        lines = result.out.splitlines()
        self.assertRegex(lines[0], r'^Started ctl/quick.yaml as [0-9a-f-]{36} \(2 steps\)$')
        running = lines.index('[1/2] Say hello: running')
        logged = lines.index('      Hello there')
        done = [i for i, l in enumerate(lines) if l.startswith('[1/2] Say hello: completed (')]
        self.assertEqual(len(done), 1, result.out)
        # The log line sits under its step, between its running and completed lines.
        self.assertLess(running, logged)
        self.assertLess(logged, done[0])
        self.assertTrue(any(l.startswith('[2/2] Say bye: completed') for l in lines), result.out)
        self.assertRegex(lines[-1], r'^completed: [0-9a-f-]{36} in .* \(2 completed\)$')
        run_id = lines[0].split()[-3]
        self.assertEqual(self.history_ids()[run_id]['status'], 'completed')

    def test_follow_log_batch(self):
        # A burst of lines comes as one LogBatch signal: each is printed once, in order.
        result = self.ctl('run', 'ctl/seq.yaml')
        self.assertCtl(result, 0, 'run')
        numbers = [l.strip() for l in result.out.splitlines() if l.strip().isdigit()]
        self.assertEqual(numbers, [str(i) for i in range(1, 301)], result.out)
        path = '/org/ignition/Toolkit/execution/' + result.out.split()[3].replace('-', '')
        self.assertTrue(self.client.signals(path, 'LogBatch'))

    def test_follow_failed_exits_1(self):
        result = self.ctl('run', 'ctl/fail.yaml')
        self.assertCtl(result, EXIT_FAILURE, 'run of a failing playbook')
        self.assertIn('[1/1] Boom: failed', result.out)
        self.assertIn('going down', result.out)
        self.assertRegex(result.out, r'\nfailed: [0-9a-f-]{36} in ')
        self.assertIn('Error: ', result.out)

    def test_quiet_prints_nothing_but_keeps_status(self):
        result = self.ctl('-q', 'run', 'ctl/fail.yaml')
        self.assertCtl(result, EXIT_FAILURE, 'run -q')
        self.assertEqual(result.out, '')

    def test_local_file_is_sent_as_source(self):
        path = os.path.join(self.tmp, 'local-book.yaml')
        with open(path, 'w') as f:
            f.write(playbook(log_step('only', 'from a local file', name='Only'), name='Local'))
        result = self.ctl('run', path)
        self.assertCtl(result, 0, 'run FILE')
        self.assertIn('Started local-book.yaml as', result.out)
        self.assertIn('      from a local file', result.out)
        run_id = result.out.splitlines()[0].split()[-3]
        # The label is the base name: the daemon was given text, not a path.
        self.assertEqual(self.history_ids()[run_id]['playbook'], 'local-book.yaml')

    def test_no_follow_prints_the_id(self):
        path, run_id = self.start_slow()
        self.assertEqual(self.client.get_prop(path, 'Id'), run_id)
        self.assertEqual(self.client.get_prop(path, 'Status'), 'running')

    def test_debug_option(self):
        result = self.ctl('run', '--no-follow', '--debug', 'ctl/quick.yaml')
        self.assertCtl(result, 0, 'run --debug')
        path = '/org/ignition/Toolkit/execution/' + result.out.strip().replace('-', '')
        self.runs.append((self.client, path))
        self.client.wait_status(path, 'paused')
        self.assertTrue(self.client.get_prop(path, 'DebugMode'))

    def test_ctrl_c_cancels(self):
        proc = self.popen_ctl('run', 'ctl/slow.yaml')
        lines = self.read_until(proc, r'^\[2/4\] Wait a while: running')
        run_id = lines[0].split()[-3]
        proc.send_signal(signal.SIGINT)
        rc, out, err = self.finish(proc)
        self.assertEqual(rc, EXIT_CANCELLED, out + err)
        self.assertIn('Cancelling', err)
        self.assertIn('[2/4] Wait a while: cancelled', out)
        self.assertRegex(out, r'\ncancelled: %s in ' % run_id)
        self.assertEqual(self.history_ids()[run_id]['status'], 'cancelled')

    def test_sigterm_detaches_and_the_run_goes_on(self):
        proc = self.popen_ctl('run', 'ctl/slow.yaml')
        lines = self.read_until(proc, r'^\[2/4\] Wait a while: running')
        run_id = lines[0].split()[-3]
        path = '/org/ignition/Toolkit/execution/' + run_id.replace('-', '')
        self.runs.append((self.client, path))
        proc.send_signal(signal.SIGTERM)
        rc, out, err = self.finish(proc)
        self.assertEqual(rc, EXIT_DETACHED, out + err)
        self.assertIn('Detached', err)
        self.client.idle(0.3)
        self.assertEqual(self.client.get_prop(path, 'Status'), 'running')

    def test_start_errors(self):
        result = self.ctl('run', 'ctl/no-such.yaml')
        self.assertCtl(result, EXIT_NOINPUT, 'unknown playbook')
        self.assertOneLineError(result, 'cannot start ctl/no-such.yaml')

        bad = os.path.join(self.tmp, 'bad.yaml')
        with open(bad, 'w') as f:
            f.write('name: Bad\nversion: "1"\nsteps:\n  - id: a\n    name: A\n'
                    '    type: utility.nope\n')
        result = self.ctl('run', bad)
        self.assertCtl(result, EXIT_DATAERR, 'invalid playbook')
        self.assertRegex(self.assertOneLineError(result, 'utility.nope'), r'line 6')

        result = self.ctl('run', 'ctl/quick.yaml', '-p', 'novalue')
        self.assertCtl(result, EXIT_USAGE, '-p without =')
        self.assertOneLineError(result, 'NAME=VALUE')


class TestExecutions(CtlTestCase):

    def test_list(self):
        path, run_id = self.start_slow()
        result = self.ctl('list')
        self.assertCtl(result, 0, 'list')
        row = [l for l in result.out.splitlines() if l.startswith(run_id)]
        self.assertEqual(len(row), 1, result.out)
        self.assertEqual(row[0].split()[1:], ['ctl/slow.yaml', 'running', '2/4'])
        self.assertTrue(result.out.splitlines()[0].startswith('ID '))
        listed = {e['id']: e for e in self.json_of('list')}
        self.assertEqual(listed[run_id], {'id': run_id, 'path': path,
                                          'playbook': 'ctl/slow.yaml', 'status': 'running',
                                          'current-step': 1, 'total-steps': 4})

    def test_control_verbs(self):
        path, run_id = self.start_slow()
        short = run_id[:8]
        self.assertCtl(self.ctl('pause', short), 0, 'pause')
        self.client.wait_status(path, 'paused')
        self.assertEqual(self.json_of('status', short)['status'], 'paused')
        self.assertCtl(self.ctl('resume', short), 0, 'resume')
        self.client.wait_signal(path, 'StatusChanged', lambda a: a == ('running', 'paused'))

        self.assertCtl(self.ctl('debug', short, 'on'), 0, 'debug on')
        self.assertTrue(self.client.get_prop(path, 'DebugMode'))
        self.assertCtl(self.ctl('debug', short, 'off'), 0, 'debug off')
        self.assertFalse(self.client.get_prop(path, 'DebugMode'))
        self.assertCtl(self.ctl('debug', short, 'maybe'), EXIT_USAGE, 'debug maybe')

        self.assertCtl(self.ctl('skip', short), 0, 'skip')
        self.client.wait_step(path, 'wait', 'skipped')
        self.client.wait_step(path, 'wait2', 'running')
        self.assertCtl(self.ctl('skip-back', short), 0, 'skip-back')
        self.client.wait_for(lambda: len([m for m in self.client.signals(path, 'StepChanged')
                                          if m.args[1:3] == ('wait', 'running')]) == 2,
                             what='wait to run again')

        self.assertCtl(self.ctl('cancel', short), 0, 'cancel')
        self.assertEqual(self.client.wait_finished(path).args[0], 'cancelled')
        again = self.ctl('cancel', short)
        self.assertCtl(again, EXIT_FAILURE, 'cancel of a cancelled run')
        self.assertOneLineError(again, 'cannot cancel %s' % run_id)

    def test_status_steps_log(self):
        path, run_id = self.finished_id()
        result = self.ctl('status', run_id[:10])
        self.assertCtl(result, 0, 'status')
        self.assertIn(run_id, result.out.splitlines()[0])
        self.assertIn('Status: completed', result.out)
        self.assertIn('Hello world', result.out)  # the newest log lines

        status = self.json_of('status', run_id)
        self.assertEqual(status['id'], run_id)
        self.assertEqual(status['status'], 'completed')
        self.assertEqual(status['playbook'], 'ctl-finished')
        self.assertEqual(status['playbook-name'], 'Quick')
        self.assertEqual(status['total-steps'], 2)
        self.assertIs(status['live'], True)
        self.assertEqual(status['path'], path)
        self.assertGreater(status['finished-at'], status['started-at'])

        steps = self.json_of('steps', run_id)
        self.assertEqual([(s['step-id'], s['name'], s['status']) for s in steps],
                         [('hello', 'Say hello', 'completed'), ('bye', 'Say bye', 'completed')])
        table = self.ctl('steps', run_id).out.splitlines()
        self.assertEqual(table[0].split()[:5], ['#', 'ID', 'NAME', 'TYPE', 'STATUS'])
        self.assertTrue(table[1].startswith('1  hello  Say hello'), table)

        log = self.json_of('log', run_id)
        self.assertIn(['hello', 'Hello world'], [line[2:] for line in log])
        self.assertTrue(all(isinstance(line[0], int) and line[1] in range(8) for line in log))
        text = self.ctl('log', run_id)
        self.assertCtl(text, 0, 'log')
        self.assertRegex(text.out, r'(?m)^\d\d:\d\d:\d\d\.\d{3} hello: Hello world$')

    def test_log_follow(self):
        path, run_id = self.start_slow()
        proc = self.popen_ctl('log', '-f', run_id)
        self.read_until(proc, r'first: first line')
        self.call(path, 'Skip')
        self.client.wait_step(path, 'wait2', 'running')
        self.call(path, 'Skip')
        rc, out, err = self.finish(proc)
        self.assertEqual(rc, 0, err)
        # Lines written while following, each once, and the end of the run ends it.
        self.assertEqual(len(re.findall(r'last: last line', out)), 1, out)
        self.assertEqual(self.client.wait_finished(path).args[0], 'completed')

    def test_log_follow_batch(self):
        # Lines that come as a LogBatch while following: each printed once, in order.
        gate = os.path.join(self.tmp, 'gate')
        path = self.start(playbook(shell_step(
            'count', 'echo ready; while [ ! -e %s ]; do sleep 0.05; done; seq 1 300' % gate)),
            playbook_id='ctl-log-batch')
        run_id = self.client.get_prop(path, 'Id')
        proc = self.popen_ctl('log', '-f', run_id)
        self.read_until(proc, r'count: ready')
        with open(gate, 'w'):
            pass
        rc, out, err = self.finish(proc)
        self.assertEqual(rc, 0, err)
        numbers = re.findall(r'(?m) count: (\d+)$', out)
        self.assertEqual(numbers, [str(i) for i in range(1, 301)], out)
        self.assertTrue(self.client.signals(path, 'LogBatch'))

    def test_prefix_resolution(self):
        # 17 runs: two of them share a first hex digit.
        for i in range(17):
            self.finished_id(label='prefix-%d' % i)
        ids = list(self.history_ids())
        ids += [e[1] for e in self.client.manager('ListExecutions')]
        ids = sorted(set(ids))
        by_first = collections.defaultdict(list)
        for i in ids:
            by_first[i[0]].append(i)
        shared = [k for k, v in by_first.items() if len(v) > 1][0]

        result = self.ctl('status', shared)
        self.assertCtl(result, EXIT_USAGE, 'ambiguous prefix')
        line = self.assertOneLineError(result, "'%s' is ambiguous" % shared)
        for candidate in by_first[shared]:
            self.assertIn(candidate, line)

        target = by_first[shared][0]
        hex_id = target.replace('-', '')
        unique = next(hex_id[:n] for n in range(1, 33)
                      if sum(1 for i in ids if i.replace('-', '').startswith(hex_id[:n])) == 1)
        self.assertEqual(self.json_of('status', unique)['id'], target)
        self.assertEqual(self.json_of('status', hex_id)['id'], target)
        self.assertEqual(self.json_of('status', target[:13].upper())['id'], target)

        result = self.ctl('status', 'ffffffff-ffff')
        if not any(i.startswith('ffffffff-ffff') for i in ids):
            self.assertCtl(result, EXIT_NOINPUT, 'no match')
            self.assertOneLineError(result, "no execution matches 'ffffffff-ffff'")
        result = self.ctl('status', 'xyz')
        self.assertCtl(result, EXIT_USAGE, 'not an id')
        self.assertOneLineError(result, "'xyz' is not an execution id")


    def test_bash_completion(self):
        path, run_id = self.start_slow()
        script = os.path.join(source_root(), 'client', 'cli', 'ignitionctl.bash-completion')

        def complete(line):
            words = line.split(' ')
            env = ctl_env()
            env['PATH'] = os.path.dirname(ignitionctl_path()) + ':' + env.get('PATH', '')
            env['COMP_LINE'] = line
            code = ('source "$1"; shift; COMP_POINT=${#COMP_LINE}; COMP_WORDS=("$@"); '
                    'COMP_CWORD=$(($# - 1)); _ignitionctl; printf "%s\\n" "${COMPREPLY[@]}"')
            p = subprocess.run(['bash', '-c', code, 'bash', script] + words,
                               capture_output=True, text=True, env=env, timeout=TIMEOUT)
            self.assertEqual(p.returncode, 0, p.stderr)
            return [w for w in p.stdout.splitlines() if w]

        self.assertEqual(complete('ignitionctl skip'), ['skip', 'skip-back'])
        bus = '--bus-address=' + self.bus.address
        self.assertEqual(complete('ignitionctl %s pause %s' % (bus, run_id[:6])), [run_id])
        self.assertEqual(complete('ignitionctl %s debug %s o' % (bus, run_id)), ['on', 'off'])
        self.assertIn('ctl/quick.yaml', complete('ignitionctl %s show ctl/' % bus))


class TestHistory(CtlTestCase):

    def test_history(self):
        _, first = self.finished_id(label='hist-a')
        _, failed = self.finished_id(FAIL, label='hist-b')
        result = self.ctl('history')
        self.assertCtl(result, 0, 'history')
        lines = result.out.splitlines()
        self.assertEqual(lines[0].split()[:3], ['ID', 'PLAYBOOK', 'STATUS'])
        self.assertTrue(lines[1].startswith(failed), result.out)  # newest first
        self.assertTrue(any(l.startswith(first) for l in lines))

        runs = self.json_of('history', '--limit', '1')
        self.assertEqual([r['id'] for r in runs], [failed])
        self.assertEqual(runs[0]['status'], 'failed')
        self.assertIn('error', runs[0])
        only = self.json_of('history', '--status=completed')
        self.assertIn(first, [r['id'] for r in only])
        self.assertTrue(all(r['status'] == 'completed' for r in only))

        bad = self.ctl('history', '--status', 'bogus')
        self.assertCtl(bad, EXIT_USAGE, '--status bogus')
        self.assertCtl(self.ctl('history', '--limit', 'x'), EXIT_USAGE, '--limit x')

    def test_history_pages(self):
        ids = [self.finished_id(label='pages-%d' % i)[1] for i in range(5)]
        _, failed = self.finished_id(FAIL, label='pages-fail')
        # --all follows the cursor through pages of two.
        runs = self.json_of('history', '--all', '--page-size=2', '--text=pages-')
        self.assertEqual([r['id'] for r in runs], [failed] + list(reversed(ids)))
        # --limit stops early; --playbook and --status filter.
        runs = self.json_of('history', '--limit=3', '--page-size=2', '--text=pages-')
        self.assertEqual([r['id'] for r in runs], [failed, ids[4], ids[3]])
        runs = self.json_of('history', '--playbook=pages-2')
        self.assertEqual([r['id'] for r in runs], [ids[2]])
        runs = self.json_of('history', '--text=pages-', '--status=failed')
        self.assertEqual([r['id'] for r in runs], [failed])
        # --since/--until in local time: everything of today, nothing of 1999.
        runs = self.json_of('history', '--text=pages-', '--since=@%d' % (time.time() - 3600))
        self.assertEqual(len(runs), 6)
        runs = self.json_of('history', '--text=pages-', '--until=1999-12-31')
        self.assertEqual(runs, [])
        result = self.ctl('history', '--since=yesterday-ish')
        self.assertCtl(result, EXIT_USAGE, '--since yesterday-ish')
        self.assertIn('--since takes a date', result.err)
        result = self.ctl('history', '--all', '--page-size=5000')
        self.assertNotEqual(result.rc, 0, '--page-size 5000')
        self.assertIn('1000', result.err)

    def test_log_all(self):
        source = playbook(shell_step('a', 'for i in $(seq 30); do echo line $i; done'))
        _, run_id = self.finished_id(source, label='log-all')
        lines = self.json_of('log', '--all', '--page-size=7', run_id)
        messages = [line[3] for line in lines]
        self.assertEqual([m for m in messages if m.startswith('line ')],
                         ['line %d' % i for i in range(1, 31)])
        self.assertEqual(lines, self.json_of('log', run_id))

    def test_forget(self):
        _, run_id = self.finished_id(label='forget-me')
        result = self.ctl('forget', run_id[:12])
        self.assertCtl(result, 0, 'forget')
        self.assertNotIn(run_id, self.history_ids())
        gone = self.ctl('status', run_id)
        self.assertNotEqual(gone.rc, 0)

        path, live = self.start_slow()
        result = self.ctl('forget', live)
        self.assertCtl(result, EXIT_FAILURE, 'forget of a live run')
        self.assertOneLineError(result, 'cannot forget %s' % live)


class TestRecord(CtlTestCase):
    """Runs that left the bus are read from the history store."""
    retention = 0

    def test_finished_run_off_the_bus(self):
        path = self.start(QUICK, playbook_id='ctl-record')
        # Gone from the bus as soon as it ends: the id comes from ExecutionNew.
        run_id = self.client.wait_signal('/org/ignition/Toolkit', 'ExecutionNew',
                                         lambda a: a[0] == path).args[1]
        self.client.wait_signal('/org/ignition/Toolkit', 'ExecutionRemoved',
                                lambda a: a[1] == run_id)
        status = self.json_of('status', run_id[:8])
        self.assertIs(status['live'], False)
        self.assertIsNone(status['path'])
        self.assertEqual(status['status'], 'completed')
        self.assertEqual(status['playbook'], 'ctl-record')
        text = self.ctl('status', run_id)
        self.assertCtl(text, 0, 'status')
        self.assertIn('from the history', text.out)
        steps = self.json_of('steps', run_id)
        self.assertEqual([s['status'] for s in steps], ['completed', 'completed'])
        log = self.json_of('log', run_id)
        self.assertIn('Hello world', [line[3] for line in log])
        result = self.ctl('pause', run_id)
        self.assertCtl(result, EXIT_FAILURE, 'pause of a run off the bus')
        self.assertOneLineError(result, 'has finished and left the bus')


class TestPlaybooks(CtlTestCase):

    def test_playbooks_and_show(self):
        books = {p['id']: p for p in self.json_of('playbooks')}
        self.assertEqual(books['ctl/quick.yaml']['name'], 'Quick')
        self.assertEqual(books['ctl/quick.yaml']['step-count'], 2)
        self.assertIs(books['ctl/quick.yaml']['valid'], True)
        table = self.ctl('playbooks')
        self.assertCtl(table, 0, 'playbooks')
        self.assertRegex(table.out, r'(?m)^ctl/slow.yaml +Slow +1.0 ')

        shown = self.json_of('show', 'ctl/quick.yaml')
        self.assertEqual([s['id'] for s in shown['steps']], ['hello', 'bye'])
        self.assertEqual(shown['parameters'][0]['name'], 'greeting')
        self.assertEqual(shown['parameters'][0]['default'], 'world')
        self.assertIn('Hello {{ greeting }}', shown['source'])
        text = self.ctl('show', 'ctl/quick.yaml')
        self.assertCtl(text, 0, 'show')
        self.assertIn('ctl/quick.yaml - Quick', text.out)
        self.assertRegex(text.out, r'(?m)^greeting +string +(yes|no) +"world"')
        self.assertRegex(text.out, r'(?m)^1 +hello +Say hello +utility.log ')
        missing = self.ctl('show', 'ctl/none.yaml')
        self.assertCtl(missing, EXIT_NOINPUT, 'show of a missing playbook')
        self.assertOneLineError(missing, 'cannot show ctl/none.yaml')

    def test_credentials(self):
        before = self.json_of('credential', 'list')
        self.assertIsInstance(before, list)
        self.assertCtl(self.ctl('credential', 'list'), 0, 'credential list')
        # The secret comes from standard input (not a terminal), never from argv.
        result = self.ctl('credential', 'set', 'plant7', '--username', 'admin',
                          stdin='s3cret-Passw0rd\n')
        self.assertNotIn('s3cret', result.out + result.err)
        if result.rc == 0:
            stored = {c['name']: c for c in self.json_of('credential', 'list')}
            self.assertEqual(stored['plant7']['username'], 'admin')
            self.assertIs(stored['plant7']['has-password'], True)
            self.assertNotIn('s3cret', json.dumps(stored))
            self.assertCtl(self.ctl('credential', 'delete', 'plant7'), 0, 'credential delete')
            result = self.ctl('credential', 'delete', 'plant7')
            self.assertCtl(result, EXIT_NOINPUT, 'delete of a deleted credential')
            self.assertOneLineError(result, 'cannot delete credential plant7')
        else:
            # Credential storage not built in: the daemon's NotSupported, said once.
            self.assertCtl(result, EXIT_FAILURE, 'credential set')
            self.assertOneLineError(result, 'cannot store credential plant7')
        self.assertNotIn('s3cret', self.daemon.stderr_text())

        # On a terminal the secret is prompted for with echo off.
        master, slave = os.openpty()
        argv = [ignitionctl_path(), '--bus-address=' + self.bus.address, 'credential', 'set',
                'plant9']
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=ctl_env())
        os.close(slave)
        seen = b''
        deadline = time.monotonic() + TIMEOUT
        while b'Password for plant9: ' not in seen and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                seen += os.read(master, 4096)
        self.assertIn(b'Password for plant9: ', seen)
        os.write(master, b'tty-s3cret\n')
        proc.wait(TIMEOUT)
        while select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            seen += chunk
        os.close(master)
        self.assertNotIn(b'tty-s3cret', seen)
        self.assertIn(b'plant9', seen)  # the outcome, stored or refused, was said

        self.assertCtl(self.ctl('credential', 'set', 'bad name'), EXIT_USAGE, 'bad name')
        self.assertCtl(self.ctl('credential', 'frob'), EXIT_USAGE, 'credential frob')
        empty = self.ctl('credential', 'set', 'plant8', stdin='')
        self.assertCtl(empty, EXIT_NOINPUT, 'no secret on stdin')


def run_step(step_id, target):
    return {'id': step_id, 'name': step_id, 'type': 'playbook.run',
            'parameters': {'playbook': target}}


NESTED = {
    'nest/leaf.yaml': playbook(log_step('a', 'leaf'), name='Leaf'),
    'nest/ok.yaml': playbook(run_step('go', 'nest/leaf.yaml'), name='Ok'),
    'nest/broken.yaml': playbook(log_step('a', 'x'),
                                 {'id': 'b', 'name': 'B', 'type': 'utility.nope'},
                                 name='Broken'),
    'nest/bad.yaml': playbook(run_step('go', 'nest/broken.yaml'), name='Bad'),
    'nest/missing.yaml': playbook(run_step('go', 'nest/none.yaml'), name='Missing'),
    'nest/c1.yaml': playbook(run_step('go', 'nest/c2.yaml'), name='C1'),
    'nest/c2.yaml': playbook(run_step('go', 'nest/c1.yaml'), name='C2'),
    'nest/d1.yaml': playbook(run_step('go', 'nest/d2.yaml'), name='D1'),
    'nest/d2.yaml': playbook(run_step('go', 'nest/d3.yaml'), name='D2'),
    'nest/d3.yaml': playbook(run_step('go', 'nest/d4.yaml'), name='D3'),
    'nest/d4.yaml': playbook(run_step('go', 'nest/leaf.yaml'), name='D4'),
}


class TestValidateNested(CtlTestCase):
    """validate follows playbook.run as the daemon does before a start: same
    verdict, same words, without the daemon."""
    library = dict(CtlTestCase.library, **NESTED)

    def test_validate_follows_nested_playbooks(self):
        nowhere = 'unix:path=' + os.path.join(self.tmp, 'no-bus-here')
        # What each refusal is about, in the words of both.
        why = {'nest/bad.yaml': "unknown step type 'utility.nope'",
               'nest/broken.yaml': "unknown step type 'utility.nope'",
               'nest/missing.yaml': "no playbook 'nest/none.yaml' in the library",
               'nest/c1.yaml': 'runs itself', 'nest/c2.yaml': 'runs itself'}
        verdicts = {}
        for pid in sorted(NESTED):
            path = os.path.join(self.daemon.library_dir, pid)
            try:
                self.start(playbook_id=pid, start=False)
                started, refusal = True, ''
            except GLib.Error as e:
                started, refusal = False, e.message
            verdicts[pid] = started
            result = run_ctl(nowhere, 'validate', path)
            self.assertCtl(result, 0 if started else EXIT_FAILURE, 'validate ' + pid)
            if pid in why:
                self.assertIn(why[pid], refusal, pid)
                self.assertIn(why[pid], result.out, pid)
        self.assertEqual({p for p, ok in verdicts.items() if not ok} & set(why), set(why))
        self.assertTrue(verdicts['nest/ok.yaml'] and verdicts['nest/leaf.yaml'])


class TestWithoutDaemon(CtlTestCase):

    def setUp(self):
        super().setUp()
        self.nowhere = 'unix:path=' + os.path.join(self.tmp, 'no-bus-here')

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def test_validate(self):
        good = self.write('good.yaml', QUICK)
        bad = self.write('bad.yaml', 'name: Bad\nversion: "1"\nsteps:\n'
                                     '  - id: a\n    name: A\n    type: utility.log\n'
                                     '    parameters: {message: hi}\n'
                                     '  - id: b\n    name: B\n    type: utility.nope\n')
        broken = self.write('broken.yaml', 'name: x\nsteps: [\n')
        result = run_ctl(self.nowhere, 'validate', good)
        self.assertCtl(result, 0, 'validate good')
        self.assertIn('valid', result.out)

        result = run_ctl(self.nowhere, 'validate', good, bad, broken)
        self.assertCtl(result, EXIT_FAILURE, 'validate bad')
        self.assertRegex(result.out, r'(?m)^%s:10:\d+: error: .*utility\.nope' % re.escape(bad))
        self.assertRegex(result.out, r'(?m)^%s:\d+:\d+: error: ' % re.escape(broken))
        self.assertIn(good + ': valid (2 steps)', result.out)
        self.assertNotRegex(result.out, re.escape(good) + r':\d')

        report = json.loads(run_ctl(None, '--json', 'validate', good, bad).out)
        self.assertEqual([r['valid'] for r in report], [True, False])
        errors = [d for d in report[1]['diagnostics'] if d['severity'] == 'error']
        self.assertEqual(errors[0]['line'], 10)
        self.assertEqual(errors[0]['step-id'], 'b')

        missing = run_ctl(self.nowhere, 'validate', os.path.join(self.tmp, 'none.yaml'))
        self.assertCtl(missing, EXIT_FAILURE, 'validate of a missing file')
        self.assertIn('none.yaml: error: ', missing.out)

        stdin = run_ctl(self.nowhere, 'validate', '-', stdin=QUICK)
        self.assertCtl(stdin, 0, 'validate -')

    def test_missing_daemon(self):
        empty = Bus(self.tmp)
        self.addCleanup(empty.stop)
        result = run_ctl(empty.address, 'list')
        self.assertCtl(result, EXIT_UNAVAILABLE, 'list without a daemon')
        self.assertOneLineError(result, 'ignition-toolkitd is not running on the bus at')
        result = run_ctl(self.nowhere, 'list')
        self.assertCtl(result, EXIT_UNAVAILABLE, 'list without a bus')
        self.assertOneLineError(result, 'cannot connect to the bus at')

    def test_usage(self):
        for args in ([], ['frob'], ['--frob', 'list'], ['run'], ['status', 'a', 'b'],
                     ['--json=wide', 'list']):
            result = run_ctl(self.nowhere, *args)
            self.assertCtl(result, EXIT_USAGE, ' '.join(args))
            self.assertOneLineError(result, '')
        result = run_ctl(None, '--help')
        self.assertCtl(result, 0, '--help')
        self.assertIn('skip-back', result.out)


if __name__ == '__main__':
    main()
