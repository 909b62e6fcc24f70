// SPDX-License-Identifier: LGPL-2.1-or-later
//
// End-to-end harness: a private dbus-daemon, ignition-toolkitd and
// ignition-toolkit-bridge from the build tree, and headless Chromium (Debian's
// /usr/bin/chromium) driven by playwright-core.
//
// Paths come from ITK_DAEMON, ITK_BRIDGE, ITK_DBUS_CONFIG, ITK_WEB_ROOT; without them
// the newest build-*/ binaries of the source tree are used.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync,
         writeFileSync, createWriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = process.env.ITK_SOURCE_ROOT || path.resolve(HERE, '..', '..');
export const ARTIFACTS = process.env.ITK_E2E_ARTIFACTS || path.join(HERE, 'artifacts');
export const CHROMIUM = process.env.ITK_CHROMIUM || '/usr/bin/chromium';
const TIMEOUT_MS = 20000;

function newestBuild(rel) {
        let best = null;
        for (const entry of readdirSync(ROOT)) {
                if (!entry.startsWith('build'))
                        continue;
                const p = path.join(ROOT, entry, rel);
                try {
                        const st = statSync(p);
                        if (st.isFile() && (st.mode & 0o111) && (!best || st.mtimeMs > best.mtime))
                                best = { path: p, mtime: st.mtimeMs };
                } catch (e) {
                        // not in this build tree
                }
        }
        return best ? best.path : null;
}

export function config() {
        return {
                daemon: process.env.ITK_DAEMON || newestBuild('daemon/ignition-toolkitd'),
                bridge: process.env.ITK_BRIDGE || newestBuild('client/bridge/ignition-toolkit-bridge'),
                dbusConfig: process.env.ITK_DBUS_CONFIG || path.join(ROOT, 'tests', 'integration', 'dbus-test.conf'),
                webRoot: process.env.ITK_WEB_ROOT || path.join(ROOT, 'client', 'web'),
        };
}

// Resolves with the first stdout line of @child.
function firstLine(child, what) {
        return new Promise((resolve, reject) => {
                let buf = '';
                const timer = setTimeout(() => reject(new Error(`${what} printed nothing`)), TIMEOUT_MS);
                const onData = (chunk) => {
                        buf += chunk;
                        const nl = buf.indexOf('\n');
                        if (nl >= 0) {
                                clearTimeout(timer);
                                child.stdout.off('data', onData);
                                resolve(buf.slice(0, nl).trim());
                        }
                };
                child.stdout.setEncoding('utf8');
                child.stdout.on('data', onData);
                child.once('exit', (code, sig) => {
                        clearTimeout(timer);
                        reject(new Error(`${what} exited (${code ?? sig}) before it was ready`));
                });
        });
}

async function stopChild(child) {
        if (!child || child.exitCode !== null || child.signalCode !== null)
                return;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
}

// The test playbooks: written to a temporary library folder.
export const LIBRARY = {
        'e2e/sleep30.yaml': `name: Sleep thirty
version: "1.0"
description: One step that sleeps for 30 seconds.
domain: gateway
group: E2E tests
steps:
  - id: nap
    name: Long nap
    type: utility.sleep
    parameters:
      seconds: 30
  - id: after
    name: After the nap
    type: utility.log
    parameters:
      message: woke up
`,
        'e2e/short.yaml': `name: Short sleep
version: "1.0"
description: A short sleep, then a log line.
domain: gateway
group: E2E tests
steps:
  - id: nap
    name: Short nap
    type: utility.sleep
    parameters:
      seconds: 3
  - id: after
    name: After the nap
    type: utility.log
    parameters:
      message: short nap done
`,
        'e2e/two-logs.yaml': `name: Two log lines
version: "1.0"
domain: gateway
group: E2E tests
steps:
  - id: first
    name: First line
    type: utility.log
    parameters:
      message: first line
  - id: second
    name: Second line
    type: utility.log
    parameters:
      message: second line
`,
        'e2e/showcase.yaml': `name: Showcase
version: "2.1"
description: Typed parameters, a script with output and a nested playbook.
domain: perspective
group: Showcase
parameters:
  - name: gateway_url
    type: string
    required: false
    default: http://localhost:8088
    description: Gateway address
  - name: count
    type: integer
    required: true
    description: How many times
  - name: ratio
    type: float
    required: false
    default: 0.5
  - name: force
    type: boolean
    required: false
    default: false
    description: Do it even if it is done
  - name: modules
    type: list
    required: false
    default: []
  - name: settings
    type: dict
    required: false
    default: {}
  - name: gateway
    type: credential
    required: false
  - name: backup_file
    type: file
    required: false
steps:
  - id: hello
    name: Say the count
    type: utility.log
    parameters:
      message: "count={{ parameter.count }} force={{ parameter.force }}"
  - id: script
    name: Python script
    type: utility.python
    parameters:
      script: |
        print("hello from python")
        print("ANSWER=42")
  - id: nested
    name: Nested playbook
    type: playbook.run
    parameters:
      playbook: e2e/child.yaml
`,
        'e2e/fails.yaml': `name: Fails
version: "1.0"
description: A script that fails after a retry.
domain: gateway
group: E2E tests
steps:
  - id: ok
    name: Fine step
    type: utility.log
    parameters:
      message: all good so far
  - id: broken
    name: Broken script
    type: utility.shell
    retry_count: 1
    retry_delay: 0
    parameters:
      command: echo about to fail; echo boom >&2; exit 3
  - id: never
    name: Never reached
    type: utility.log
    parameters:
      message: unreachable
`,
        'e2e/fidelity.yaml': `name: Fidelity
version: "1.0"
description: Nested steps, a retried failure and rollback steps, for history.
domain: gateway
group: E2E tests
steps:
  - id: first
    name: First line
    type: utility.log
    parameters:
      message: first
  - id: nested
    name: Nested playbook
    type: playbook.run
    parameters:
      playbook: e2e/child.yaml
  - id: broken
    name: Broken script
    type: utility.shell
    retry_count: 1
    retry_delay: 0
    on_failure: rollback
    parameters:
      command: echo about to fail; exit 3
  - id: never
    name: Never reached
    type: utility.log
    parameters:
      message: unreachable
rollback:
  - id: undo
    name: Undo
    type: utility.log
    parameters:
      message: undone
`,
        'e2e/child.yaml': `name: Child
version: "1.0"
domain: perspective
group: Showcase
steps:
  - id: inner
    name: Inner log
    type: utility.log
    parameters:
      message: inside the child
  - id: shell
    name: Inner shell
    type: utility.shell
    parameters:
      command: echo from the shell
`,
};

export class Stack {
        // @retention: seconds a finished run stays on the bus (the daemon's default if unset).
        // @conf: more lines for toolkit.conf's [Daemon] group.
        constructor({ retention, conf = '' } = {}) {
                this.retention = retention;
                this.conf = conf;
        }

        async start() {
                const cfg = config();
                mkdirSync(ARTIFACTS, { recursive: true });
                this.dir = mkdtempSync(path.join(os.tmpdir(), 'itk-e2e-'));
                this.children = [];
                for (const [what, p] of [['daemon', cfg.daemon], ['bridge', cfg.bridge]]) {
                        if (!p || !existsSync(p))
                                throw new Error(`no ${what} binary: build it or set ITK_${what.toUpperCase()}`);
                }
                const log = (name) => createWriteStream(path.join(ARTIFACTS, name), { flags: 'w' });

                const bus = spawn('dbus-daemon', [`--config-file=${cfg.dbusConfig}`, '--print-address=1', '--nofork'],
                                  { stdio: ['ignore', 'pipe', 'pipe'] });
                bus.stderr.pipe(log('dbus-daemon.log'));
                this.children.push(bus);
                this.busAddress = await firstLine(bus, 'dbus-daemon');

                const library = path.join(this.dir, 'library');
                for (const [rel, text] of Object.entries(LIBRARY)) {
                        mkdirSync(path.dirname(path.join(library, rel)), { recursive: true });
                        writeFileSync(path.join(library, rel), text);
                }
                const configDir = path.join(this.dir, 'config');
                mkdirSync(configDir, { recursive: true });
                writeFileSync(path.join(configDir, 'toolkit.conf'), `[Daemon]\nPython=/usr/bin/python3\n${this.conf}`);
                const daemon = spawn(cfg.daemon, [`--bus-address=${this.busAddress}`,
                                                   `--state-dir=${path.join(this.dir, 'state')}`,
                                                   `--config-dir=${configDir}`, `--playbook-path=${library}`,
                                                   ...(this.retention !== undefined ? [`--retention=${this.retention}`] : [])],
                                     { stdio: ['ignore', 'pipe', 'pipe'] });
                daemon.stdout.pipe(log('daemon.stdout.log'));
                daemon.stderr.pipe(log('daemon.log'));
                this.children.push(daemon);

                this.bridgeState = path.join(this.dir, 'bridge-state');
                this.bridgeArgs = [`--bus-address=${this.busAddress}`, `--state-dir=${this.bridgeState}`,
                                   `--web-root=${cfg.webRoot}`];
                this.bridgePath = cfg.bridge;
                await this.startBridge('127.0.0.1:0');
                this.token = readFileSync(path.join(this.bridgeState, 'bridge-token'), 'utf8').trim();
                return this;
        }

        async startBridge(listen) {
                const bridge = spawn(this.bridgePath, [...this.bridgeArgs, `--listen=${listen}`],
                                     { stdio: ['ignore', 'pipe', 'pipe'] });
                bridge.stderr.pipe(createWriteStream(path.join(ARTIFACTS, 'bridge.log'), { flags: 'a' }));
                this.children.push(bridge);
                this.bridge = bridge;
                const line = await firstLine(bridge, 'bridge');
                const m = /listening on (http:\/\/\S+?)\/?$/.exec(line);
                if (!m)
                        throw new Error(`unexpected first line from the bridge: ${line}`);
                this.base = m[1];
                // Ready when the daemon owns its name.
                const deadline = Date.now() + TIMEOUT_MS;
                for (;;) {
                        const r = await fetch(`${this.base}/health/ready`).catch(() => null);
                        if (r && r.status === 200)
                                break;
                        if (Date.now() > deadline)
                                throw new Error('the bridge never became ready (daemon not on the bus?)');
                        await sleep(100);
                }
        }

        async stopBridge() {
                await stopChild(this.bridge);
                this.children = this.children.filter((c) => c !== this.bridge);
        }

        // Starts the bridge again on the same address (the page reconnects to it).
        async restartBridge() {
                await this.startBridge(new URL(this.base).host);
        }

        async api(method, p, body) {
                const res = await fetch(`${this.base}${p}`, {
                        method,
                        headers: { Authorization: `Bearer ${this.token}`,
                                   ...(body ? { 'Content-Type': 'application/json' } : {}) },
                        body: body ? JSON.stringify(body) : undefined,
                });
                const text = await res.text();
                return { status: res.status, body: text ? JSON.parse(text) : null };
        }

        async stop() {
                for (const c of this.children.reverse())
                        await stopChild(c);
                // The daemon's Chromium may still be going away: retry a folder
                // it was writing (ENOTEMPTY) rather than fail the clean-up.
                if (this.dir)
                        rmSync(this.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
        }
}

// Playwright gives every launch a fresh temporary user data dir of its own.
export function browserOptions() {
        return {
                executablePath: CHROMIUM,
                headless: true,
                args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                       '--disable-background-networking', '--disable-component-update', '--disable-sync'],
        };
}
