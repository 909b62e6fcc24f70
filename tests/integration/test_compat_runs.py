#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 10: the old tool's 17 gateway playbooks (compat/playbooks/gateway and
builtin, unmodified) run to `completed` through the daemon against the gateway
simulator (tests/gateway-sim), browser steps in headless Chromium.

What tests/e2e/test-sim-playbooks.mjs emulates runs for real here: the python
steps (their httpx polls included), the sleeps (15 s ones too), nested
playbook.run, steps with on_failure: continue waiting out their timeouts. To
keep the wall time down every playbook has its own simulator and all runs go
at once (ITK_COMPAT_RUNS_PARALLEL caps them); each simulator restarts quickly
but is *offline* (connections closed) for a few seconds first, as a real
gateway is, which gateway_restart.yaml's step 12 waits to see.

Skipped (exit 77) without the compat folder, /usr/bin/chromium, the simulator
binary or python3-httpx."""

import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile

from itk_harness import (DaemonTestCase, compat_playbooks, main, playbook, source_root,
                         step)


def skip(reason):
    print('SKIP: ' + reason)
    sys.exit(77)


def sim_binary():
    path = os.environ.get('ITK_GATEWAY_SIM')
    if path:
        return path
    found = sorted((os.path.getmtime(p), p) for p in glob.glob(
        os.path.join(source_root(), 'build*', 'tests', 'gateway-sim', 'itk-gateway-sim')))
    return found[-1][1] if found else None


WEB_USER, WEB_PASSWORD = 'admin', 'password'
TOKEN = 'itk:compat-runs-token'
# One playbook takes ~2 min of its own sleeps and polls (an upgrade: uninstall,
# restart, install, restart); all run at once.
RUN_TIMEOUT = float(os.environ.get('ITK_COMPAT_RUN_TIMEOUT', '600'))
PARALLEL = int(os.environ.get('ITK_COMPAT_RUNS_PARALLEL', '17'))


class Simulator:
    """An itk-gateway-sim child: quick restarts, offline for a while first."""

    def __init__(self, workdir):
        self.proc = subprocess.Popen(
            [sim_binary(), '--restart-delay', '100', '--offline-time', '4500',
             '--startup-time', '800', '--token', TOKEN,
             '--state-dir', tempfile.mkdtemp(dir=workdir, prefix='sim-')],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        m = re.search(r'listening on (http://\S+)', line)
        if not m:
            self.stop()
            raise RuntimeError('itk-gateway-sim did not start: %r' % line)
        self.url = m.group(1)

    def request(self, method, path, headers=None):
        req = urllib.request.Request(self.url + path, method=method, headers=headers or {})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b'null')

    def control(self, what, query=''):
        return self.request('POST', '/sim/%s%s' % (what, '?' + query if query else ''))

    def state(self):
        return self.request('GET', '/sim/state')

    def module(self, module_id):
        return next((m for m in self.state()['modules'] if m['id'] == module_id), None)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc.stdout.close()


def make_module(folder, module_id, name, version, cert=True, eula=True):
    """A .modl as the simulator and the playbooks' python read it."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, '%s-%s.modl' % (re.sub(r'\W+', '-', name), version))
    xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<modules><module><id>%s</id><name>%s</name>'
           '<version>%s</version><description>test module</description>%s</module></modules>\n'
           % (module_id, name, version, '<license>license.html</license>' if eula else ''))
    with zipfile.ZipFile(path, 'w') as z:
        z.writestr('module.xml', xml)
        if cert:
            z.writestr('certificates.p7b', b'not a real certificate')
        z.writestr('license.html', '<p>licence</p>')
    return path


# gateway_restart.yaml "assumes already logged in" on a page with the restart
# bar: the same run logs in first (nested runs share the page), the change is
# made through the REST API before.
def restart_after_login(group):
    login = {'playbook': 'gateway/gateway_login.yaml', 'gateway_url': '{{ gateway_url }}',
             'username': '{{ username }}', 'password': '{{ password }}'}
    restart = dict(login, playbook='%s/gateway_restart.yaml' % group)
    return playbook(step('login', 'playbook.run', login),
                    step('restart', 'playbook.run', restart),
                    name='Restart after login (%s)' % group,
                    parameters=[{'name': 'gateway_url', 'type': 'string'},
                                {'name': 'username', 'type': 'string'},
                                {'name': 'password', 'type': 'string'}])


def flatten(steps, out=None):
    out = [] if out is None else out
    for s in steps:
        out.append(s)
        flatten(s.get('children', []), out)
    return out


OPCUA = 'com.inductiveautomation.opcua'
# Steps with on_failure: continue that may fail by design (by their own id,
# nested or not), as in test-sim-playbooks.mjs: gateway_restart's trial reset
# button while the trial runs; module_install's licence checkbox on the
# certificate screen, and for an unsigned module without a licence every
# acceptance step. Any other failed step fails the test.
TRIAL_RESET = (r'step[12]_(check|click)_trial_reset',)
INSTALL_CONTINUED = (r'step15_click_license_checkbox',) + TRIAL_RESET
PLAIN_CONTINUED = (r'step(14|15|16|17|19|20|21)_\w+',) + TRIAL_RESET


class TestCompatRuns(DaemonTestCase):
    playbook_path = (compat_playbooks(),)
    library = {'compat-runs/restart_after_login_%s.yaml' % g: restart_after_login(g)
               for g in ('gateway', 'builtin')}

    def case(self, playbook_id, params=None, prepare=None, check=None, continued=()):
        return {'id': playbook_id, 'params': params or {}, 'prepare': prepare, 'check': check,
                'continued': continued}

    def cases(self):
        cases = []
        for g in ('gateway', 'builtin'):
            cases.append(self.case('%s/gateway_login.yaml' % g))

            def pending_change(sim):
                sim.request('DELETE', '/data/api/v1/modules/uninstall?moduleId='
                            'com.inductiveautomation.vision', {'X-Ignition-API-Token': TOKEN})
                self.assertEqual(len(sim.state()['pending']), 1)

            def restarted(sim, path):
                st = sim.state()
                self.assertEqual(st['restartCount'], 1, 'the gateway restarted once')
                self.assertEqual(st['pending'], [], 'the pending change was applied')
            cases.append(self.case('compat-runs/restart_after_login_%s.yaml' % g,
                                   prepare=pending_change, check=restarted,
                                   continued=TRIAL_RESET))

            folder = os.path.join(self.workdir, g + '-install')
            make_module(folder, 'com.example.simtest', 'Sim Test Module', '1.0.0')

            def installed(sim, path):
                m = sim.module('com.example.simtest')
                self.assertIsNotNone(m, 'the module is installed')
                self.assertEqual(m['state'], 'ACTIVE')
            cases.append(self.case('%s/module_install.yaml' % g, {'module_folder': folder},
                                   check=installed, continued=INSTALL_CONTINUED))

            def uninstalled(sim, path):
                self.assertIsNone(sim.module('com.inductiveautomation.vision'))
                self.assertIsNotNone(sim.module('com.inductiveautomation.perspective'))
            cases.append(self.case('%s/module_uninstall.yaml' % g, {'module_name': 'Vision'},
                                   check=uninstalled, continued=TRIAL_RESET))

            def backed_up(sim, path):
                shots = [s for s in flatten(self.client.get_steps(path))
                         if s['step-id'] == 'step4']
                self.assertEqual(shots[0]['status'], 'completed')
            cases.append(self.case('%s/backup_gateway.yaml' % g, check=backed_up))

        def upgraded_to(module_id, version):
            def check(sim, path):
                m = sim.module(module_id)
                self.assertEqual((m['version'], m['state']), (version, 'ACTIVE'))
            return check

        folder = os.path.join(self.workdir, 'upgrade-builtin')
        make_module(folder, 'com.inductiveautomation.perspective', 'Perspective', '8.3.7')
        cases.append(self.case('builtin/module_upgrade.yaml', {'module_folder': folder},
                               check=upgraded_to('com.inductiveautomation.perspective', '8.3.7'),
                               continued=INSTALL_CONTINUED))
        for name in ('Claude', 'GIT', 'ONVIF', 'Python3', 'Sim'):
            # Unsigned, no licence for one of them: the other acceptance path.
            plain = name == 'Sim'
            version = '8.3.9' if plain else '8.3.8'
            folder = os.path.join(self.workdir, 'upgrade-' + name)
            make_module(folder, OPCUA, 'OPC UA', version, cert=not plain, eula=not plain)
            cases.append(self.case('gateway/module_upgrade_%s.yaml' % name,
                                   {'module_folder': folder}, check=upgraded_to(OPCUA, version),
                                   continued=PLAIN_CONTINUED if plain else INSTALL_CONTINUED))

        def trial_running(sim, path):
            r = sim.request('GET', '/data/api/v1/trial', {'Accept': 'application/json'})
            self.assertGreater(r['trialSecondsLeft'], 0, 'the trial runs again')
        cases.append(self.case('gateway/reset_trial.yaml',
                               prepare=lambda sim: sim.control('trial', 'expired=true'),
                               check=trial_running, continued=(r'step4',)))
        return cases

    def test_navigate_timeout_below_1000_is_seconds(self):
        # The old playbooks' "timeout: 30" on browser.navigate meant seconds;
        # read as milliseconds every such navigate failed at once.
        sim = Simulator(self.workdir)
        self.addCleanup(sim.stop)
        sim.control('fault', 'path=/web/home&mode=slow:300')
        source = playbook(step('open', 'browser.navigate',
                               {'url': sim.url + '/web/home', 'wait_for': 'load', 'timeout': 5}))
        path, status, error = self.run_to_end(source, timeout=120)
        self.assertEqual((status, error), ('completed', ''))

    def failure_report(self, path, error):
        lines = ['Finished: %s' % error]
        for s in flatten(self.client.get_steps(path)):
            if s['status'] == 'failed':
                lines.append('  step %s failed: %s' % (s['step-id'], s.get('error', '')))
        return '\n'.join(lines)

    def test_compat_playbooks_complete(self):
        cases = self.cases()
        self.assertEqual(len(cases), 17)
        sims = []
        self.addCleanup(lambda: [s.stop() for s in sims])
        waiting = list(cases)
        running = {}
        results = {}
        started = time.monotonic()
        while waiting or running:
            while waiting and len(running) < PARALLEL:
                case = waiting.pop(0)
                sim = Simulator(self.workdir)
                sims.append(sim)
                if case['prepare']:
                    case['prepare'](sim)
                params = {'gateway_url': sim.url, 'username': WEB_USER,
                          'password': WEB_PASSWORD}
                params.update(case['params'])
                path = self.start(params=params, playbook_id=case['id'])
                running[path] = (case, sim, time.monotonic())
            done = self.client.wait_for(
                lambda: [p for p in running if self.client.finished(p)],
                RUN_TIMEOUT, 'a compat run to finish')
            for path in done:
                case, sim, t0 = running.pop(path)
                status, error = self.client.finished(path)[0].args[:2]
                seconds = time.monotonic() - t0
                problem = None
                unexpected = [s['step-id'] for s in flatten(self.client.get_steps(path))
                              if s['status'] == 'failed' and not any(
                                  re.fullmatch(c, s['step-id'].split('/')[-1])
                                  for c in case['continued'])]
                if status != 'completed':
                    problem = self.failure_report(path, error)
                elif unexpected:
                    problem = 'completed, but these steps failed: %s\n%s' % (
                        ', '.join(unexpected), self.failure_report(path, error))
                elif case['check']:
                    try:
                        case['check'](sim, path)
                    except AssertionError as e:
                        problem = 'completed, but ' + str(e)
                results[case['id']] = (status, seconds, problem)
                print('%-50s %-10s %6.1f s%s' % (case['id'], status, seconds,
                                                  '\n' + problem if problem else ''),
                      flush=True)
        print('all %d runs: %.1f s wall time' % (len(cases), time.monotonic() - started))
        failed = {k: v for k, v in results.items() if v[2]}
        self.assertEqual(failed, {}, '%d of %d compat playbooks did not complete:\n%s' % (
            len(failed), len(cases), '\n'.join('%s: %s' % (k, v[2]) for k, v in failed.items())))


if __name__ == '__main__':
    if not os.path.isdir(compat_playbooks()):
        skip('no compat playbooks at %s (set ITK_COMPAT_PLAYBOOKS)' % compat_playbooks())
    if not os.access('/usr/bin/chromium', os.X_OK):
        skip('/usr/bin/chromium is not installed (Debian package chromium)')
    if not sim_binary() or not os.access(sim_binary(), os.X_OK):
        skip('no itk-gateway-sim (set ITK_GATEWAY_SIM)')
    try:
        import httpx  # noqa: F401 - the playbooks' python steps import it
    except ImportError:
        skip('python3-httpx is not installed (tools/install-deps.sh --tests)')
    main()
