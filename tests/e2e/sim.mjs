// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The gateway simulator (tests/gateway-sim) as a child process, for the
// Playwright checks of its web pages. ITK_GATEWAY_SIM names the binary;
// without it the newest build*/tests/gateway-sim/itk-gateway-sim is used.

import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './harness.mjs';

export function simBinary() {
        if (process.env.ITK_GATEWAY_SIM)
                return process.env.ITK_GATEWAY_SIM;
        let best = null;
        for (const entry of readdirSync(ROOT)) {
                const p = path.join(ROOT, entry, 'tests', 'gateway-sim', 'itk-gateway-sim');
                if (entry.startsWith('build') && existsSync(p) && (!best || statSync(p).mtimeMs > statSync(best).mtimeMs))
                        best = p;
        }
        return best;
}

export const WEB_USER = 'admin';
export const WEB_PASSWORD = 'password';

export class Simulator {
        constructor(args = []) {
                this.args = args;
                this.child = null;
                this.url = null;
        }

        async start() {
                const bin = simBinary();
                if (!bin)
                        throw new Error('no itk-gateway-sim binary (set ITK_GATEWAY_SIM)');
                this.child = spawn(bin, ['--restart-delay', '300', '--startup-time', '800', ...this.args],
                                   { stdio: ['ignore', 'pipe', 'inherit'] });
                this.url = await new Promise((resolve, reject) => {
                        let out = '';
                        this.child.on('exit', (code) => reject(new Error(`simulator exited with ${code}`)));
                        this.child.stdout.on('data', (d) => {
                                out += d;
                                const m = out.match(/listening on (http:\/\/[^\s]+)/);
                                if (m)
                                        resolve(m[1]);
                        });
                });
                return this;
        }

        async stop() {
                if (!this.child || this.child.exitCode !== null)
                        return;
                const exited = new Promise((resolve) => this.child.once('exit', resolve));
                this.child.kill('SIGTERM');
                await exited;
        }

        async control(what, query = '') {
                const r = await fetch(`${this.url}/sim/${what}${query ? '?' + query : ''}`, { method: 'POST' });
                if (!r.ok)
                        throw new Error(`/sim/${what}: ${r.status}`);
                return r.json();
        }

        async state() {
                return (await fetch(`${this.url}/sim/state`)).json();
        }

        // The pages the playbooks drive, for selector comparisons.
        pageUrls() {
                return ['/', '/web/login', '/app/platform/system/modules', '/app/platform/system/licensing',
                        '/app/platform/system/backup-restore/backup', '/data/perspective/client/demo']
                        .map((p) => this.url + p);
        }

        // Logs @page in through the form (two steps, as the gateway does).
        async login(page) {
                await page.goto(`${this.url}/web/login`);
                await page.fill('input[name="username"]', WEB_USER);
                await page.click("text='CONTINUE'");
                await page.fill('input[type="password"]', WEB_PASSWORD);
                await page.click("text='CONTINUE'");
                await page.waitForSelector('.home-page');
        }
}
