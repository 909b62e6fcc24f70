// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The simulator's web pages against the old tool's gateway playbooks, without
// the daemon: each of the 17 playbooks of compat/playbooks/gateway and
// builtin is read and its browser.* steps are performed with Playwright
// against tests/gateway-sim, parameters substituted, nested playbook.run
// followed. This proves the pages before the daemon's browser steps exist.
//
// What is emulated (the daemon runs these for real):
//  - utility.python runs in python3 with set_variable/get_variable; the
//    scripts that poll the gateway with httpx (not installed here) wait on
//    /StatusPing instead (offline = not RUNNING, then RUNNING again);
//  - utility.sleep sleeps at most 200 ms (the simulator restarts in ~1 s);
//  - a step with on_failure: continue waits at most 2 s.
//
//   node test-sim-playbooks.mjs   (exit 77 = skipped: no compat playbooks,
//                                  node_modules, chromium or simulator)

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HERE, CHROMIUM, browserOptions } from './harness.mjs';
import { compatDir } from './compat.mjs';
import { Simulator, simBinary, WEB_USER, WEB_PASSWORD } from './sim.mjs';

const COMPAT = compatDir();
if (!COMPAT) {
        console.log('SKIP: no compat playbooks (set ITK_COMPAT_PLAYBOOKS)');
        process.exit(77);
}
if (!existsSync(path.join(HERE, 'node_modules', 'playwright-core')) || !existsSync(CHROMIUM)) {
        console.log('SKIP: run `npm ci` in tests/e2e and install chromium (tools/install-deps.sh --tests)');
        process.exit(77);
}
if (!simBinary()) {
        console.log('SKIP: no itk-gateway-sim (set ITK_GATEWAY_SIM)');
        process.exit(77);
}

const { test, before, after } = await import('node:test');
const assert = (await import('node:assert/strict')).default;
const { chromium } = await import('playwright-core');
const yaml = (await import('js-yaml')).default;

const WORK = mkdtempSync(path.join(os.tmpdir(), 'itk-sim-playbooks-'));
let browser;
let sim;

before(async () => {
        browser = await chromium.launch(browserOptions());
        sim = await new Simulator().start();
});

after(async () => {
        if (browser)
                await browser.close();
        if (sim)
                await sim.stop();
        rmSync(WORK, { recursive: true, force: true });
});

/* ---- module files ---- */

// A .modl as the simulator and the playbooks' python read it: module.xml,
// optionally signed (certificates.p7b) and with a licence.
function makeModule(dir, { id, name, version, cert = true, eula = true }) {
        mkdirSync(dir, { recursive: true });
        const file = path.join(dir, `${name.replace(/\W+/g, '-')}-${version}.modl`);
        const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<modules><module><id>${id}</id><name>${name}</name>` +
                    `<version>${version}</version><description>test module</description>` +
                    (eula ? '<license>license.html</license>' : '') + '</module></modules>\n';
        execFileSync('python3', ['-c', `
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    z.writestr('module.xml', sys.argv[2])
    if sys.argv[3] == '1':
        z.writestr('certificates.p7b', b'not a real certificate')
    z.writestr('license.html', '<p>licence</p>')
`, file, xml, cert ? '1' : '0']);
        return file;
}

/* ---- templates ---- */

function lookup(ctx, expr) {
        const parts = expr.split('.');
        if (parts[0] === 'parameter' && parts.length === 2)
                return ctx.params[parts[1]];
        if (parts[0] === 'variable' && parts.length === 2)
                return ctx.vars[parts[1]];
        if (parts[0] === 'step' && parts.length >= 2) {
                const out = ctx.outputs[parts[1]];
                return parts.length === 3 && out ? out[parts[2]] : out;
        }
        if (parts.length === 1)
                return ctx.params[parts[0]];
        return undefined;
}

function render(ctx, value) {
        if (typeof value === 'string') {
                const whole = value.match(/^\{\{\s*([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+){0,2})\s*\}\}$/);
                if (whole) {
                        const v = lookup(ctx, whole[1]);
                        if (v === undefined)
                                throw new Error(`unresolved reference {{ ${whole[1]} }}`);
                        return v;
                }
                return value.replace(/\{\{\s*([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+){0,2})\s*\}\}/g, (m, expr) => {
                        const v = lookup(ctx, expr);
                        if (v === undefined)
                                throw new Error(`unresolved reference {{ ${expr} }}`);
                        return typeof v === 'object' ? JSON.stringify(v) : String(v);
                });
        }
        if (Array.isArray(value))
                return value.map((v) => render(ctx, v));
        if (value && typeof value === 'object')
                return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, render(ctx, v)]));
        return value;
}

/* ---- emulated steps ---- */

const PRELUDE = `
import json, os, subprocess, sys, time, zipfile
from pathlib import Path
import xml.etree.ElementTree as ET
_vars_path = sys.argv[1]
with open(_vars_path) as _f:
    _vars = json.load(_f)
def set_variable(name, value):
    _vars[name] = value
    with open(_vars_path, 'w') as _f:
        json.dump(_vars, _f)
def get_variable(name, default=None):
    return _vars.get(name, default)
`;

async function statusPing() {
        try {
                const r = await fetch(`${sim.url}/StatusPing`);
                return (await r.json()).state;
        } catch (e) {
                return 'OFFLINE';
        }
}

async function waitFor(cond, ms, what) {
        const end = Date.now() + ms;
        while (Date.now() < end) {
                if (await cond())
                        return;
                await sleep(50);
        }
        throw new Error(`timed out waiting for ${what}`);
}

async function runPython(ctx, script) {
        if (/\bhttpx\b/.test(script)) {
                if (/restart_confirmed/.test(script)) {
                        await waitFor(async () => (await statusPing()) !== 'RUNNING', 10000, 'the gateway to go offline');
                        ctx.vars.restart_confirmed = 'true';
                } else {
                        await waitFor(async () => (await statusPing()) === 'RUNNING' &&
                                      (await fetch(ctx.params.gateway_url || sim.url)).status === 200,
                                      20000, 'the gateway to come back');
                        ctx.vars.gateway_online = 'true';
                        ctx.vars.attempts_needed = '1';
                }
                return {};
        }
        const varsFile = path.join(WORK, 'vars.json');
        const scriptFile = path.join(WORK, 'script.py');
        writeFileSync(varsFile, JSON.stringify(ctx.vars));
        writeFileSync(scriptFile, PRELUDE + '\n' + script);
        const out = execFileSync('python3', [scriptFile, varsFile], { encoding: 'utf8', cwd: WORK });
        Object.assign(ctx.vars, JSON.parse(readFileSync(varsFile, 'utf8')));
        const output = { _output: out };
        for (const line of out.split('\n')) {
                const m = line.match(/^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/);
                if (m)
                        output[m[1]] = m[2].trim();
        }
        return output;
}

/* ---- browser steps, as the daemon's handlers define them ---- */

function handlerTimeout(step, p, fallback) {
        let ms = typeof p.timeout === 'number' && p.timeout >= 1000 ? p.timeout
               : typeof step.timeout === 'number' ? step.timeout * 1000 : fallback;
        if (step.on_failure === 'continue')
                ms = Math.min(ms, 2000);
        return ms;
}

async function browserStep(ctx, step, p) {
        const page = ctx.page;
        const type = step.type.slice('browser.'.length);
        switch (type) {
        case 'navigate': {
                const waitUntil = { domcontentloaded: 'domcontentloaded', networkidle: 'networkidle' }[p.wait_until || p.wait_for] || 'load';
                const r = await page.goto(p.url, { waitUntil, timeout: 30000 });
                if (r && r.status() >= 500)
                        throw new Error(`navigate: HTTP ${r.status()}`);
                return { url: page.url() };
        }
        case 'click':
                await page.click(p.selector, { timeout: handlerTimeout(step, p, 30000), force: !!p.force });
                return { selector: p.selector };
        case 'fill':
                await page.fill(p.selector, String(p.value), { timeout: handlerTimeout(step, p, 30000) });
                return { selector: p.selector };
        case 'keyboard':
                if (p.key)
                        await page.keyboard.press(p.key);
                else
                        await page.keyboard.type(String(p.text));
                return {};
        case 'file_upload':
                await page.setInputFiles(p.selector, p.file_path, { timeout: handlerTimeout(step, p, 30000) });
                return { file: p.file_path };
        case 'wait':
                await page.waitForSelector(p.selector, { state: 'visible', timeout: handlerTimeout(step, p, 30000) });
                return {};
        case 'verify': {
                const state = p.exists === false ? 'detached' : p.state || 'visible';
                await page.waitForSelector(p.selector, { state, timeout: handlerTimeout(step, p, 5000) });
                return { verified: true };
        }
        case 'screenshot': {
                const name = p.path || `${p.name || step.id}.png`;
                const file = path.join(ctx.dir, path.basename(name.endsWith('.png') ? name : `${name}.png`));
                await page.screenshot({ path: file, fullPage: !!p.full_page });
                assert.ok(statSync(file).size > 0);
                ctx.screenshots.push(file);
                return { path: file };
        }
        case 'verify_text': {
                await page.waitForSelector(p.selector, { state: 'attached', timeout: handlerTimeout(step, p, 5000) });
                const text = (await page.locator(p.selector).first().textContent()).replace(/\s+/g, ' ').trim();
                const want = String(p.text);
                const ok = p.match === 'regex' ? new RegExp(want).test(text)
                         : p.match === 'contains' ? text.includes(want) : text === want;
                if (!ok)
                        throw new Error(`text '${text}' does not ${p.match || 'exact'}-match '${want}'`);
                return { text };
        }
        case 'verify_attribute': {
                await page.waitForSelector(p.selector, { state: 'attached', timeout: handlerTimeout(step, p, 5000) });
                const v = await page.locator(p.selector).first().getAttribute(p.attribute);
                const ok = p.value === null || p.value === undefined ? v !== null : v === String(p.value);
                if (!ok)
                        throw new Error(`attribute ${p.attribute} is ${JSON.stringify(v)}, not ${JSON.stringify(p.value)}`);
                return { value: v };
        }
        case 'verify_state': {
                const t = handlerTimeout(step, p, 5000);
                if (p.state === 'visible' || p.state === 'hidden') {
                        await page.waitForSelector(p.selector, { state: p.state, timeout: t });
                } else {
                        const loc = page.locator(p.selector).first();
                        await loc.waitFor({ state: 'attached', timeout: t });
                        if ((await loc.isEnabled()) !== (p.state === 'enabled'))
                                throw new Error(`element is not ${p.state}`);
                }
                return { state: p.state };
        }
        default:
                throw new Error(`browser.${type} is not emulated here`);
        }
}

/* ---- the runner ---- */

async function runPlaybook(ctx, rel, params, depth = 0) {
        const doc = yaml.load(readFileSync(path.join(COMPAT, rel), 'utf8'));
        const full = {};
        for (const d of doc.parameters || [])
                if (d.default !== undefined)
                        full[d.name] = d.default;
        Object.assign(full, params);
        for (const d of doc.parameters || [])
                if (d.required !== false && full[d.name] === undefined)
                        throw new Error(`${rel}: missing parameter ${d.name}`);
        // A nested run has its own parameters and variables, shares the page.
        const run = { ...ctx, params: full, vars: depth === 0 ? ctx.vars : {}, outputs: {} };
        for (const step of doc.steps) {
                const label = `${'  '.repeat(depth)}${rel}:${step.id} (${step.type})`;
                const t0 = Date.now();
                try {
                        const p = render(run, step.parameters || {});
                        let out = {};
                        if (step.type === 'playbook.run') {
                                const { playbook, ...childParams } = p;
                                const child = await runPlaybook(run, playbook, childParams, depth + 1);
                                out = { playbook, status: 'completed', steps_executed: child };
                        } else if (step.type.startsWith('browser.')) {
                                out = await browserStep(run, step, p);
                        } else if (step.type === 'utility.sleep') {
                                await sleep(Math.min(Number(p.seconds) * 1000, 200));
                        } else if (step.type === 'utility.python') {
                                out = await runPython(run, p.script || p.code);
                        } else if (step.type === 'utility.log') {
                                out = { logged: true };
                        } else {
                                ctx.log.push(`${label}: skipped (not a browser step)`);
                                continue;
                        }
                        run.outputs[step.id] = out;
                        ctx.log.push(`${label}: completed (${Date.now() - t0} ms)`);
                } catch (e) {
                        const message = String(e.message).split('\n')[0];
                        if (step.on_failure === 'continue') {
                                ctx.log.push(`${label}: failed, continued: ${message}`);
                                ctx.continued.push(`${rel}:${step.id}`);
                                continue;
                        }
                        ctx.log.push(`${label}: FAILED: ${message}`);
                        throw new Error(`Step '${step.id}' of ${rel} failed: ${message}`);
                }
        }
        return doc.steps.length;
}

async function run(rel, params, { prepare, expectContinued = [] } = {}) {
        const dir = mkdtempSync(path.join(WORK, 'run-'));
        const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, acceptDownloads: true });
        const page = await context.newPage();
        const ctx = { page, dir, vars: {}, outputs: {}, log: [], continued: [], screenshots: [], downloads: [] };
        page.on('download', (d) => ctx.downloads.push(d));
        try {
                if (prepare)
                        await prepare(page);
                await runPlaybook(ctx, rel, { gateway_url: sim.url, username: WEB_USER, password: WEB_PASSWORD, ...params });
        } catch (e) {
                console.log(ctx.log.join('\n'));
                await page.screenshot({ path: path.join(HERE, 'artifacts', `${rel.replace(/\W+/g, '-')}-failed.png`) }).catch(() => {});
                throw e;
        } finally {
                ctx.downloadFiles = [];
                for (const d of ctx.downloads) {
                        const file = path.join(dir, d.suggestedFilename());
                        await d.saveAs(file);
                        ctx.downloadFiles.push(file);
                }
                await context.close();
        }
        // Steps with on_failure: continue may fail by design (a screen that is
        // not there for this module, a trial that needs no reset), but only those.
        for (const c of ctx.continued)
                assert.ok(expectContinued.some((re) => re.test(c)), `unexpected failure of ${c}\n${ctx.log.join('\n')}`);
        return ctx;
}

async function module(id) {
        const st = await sim.state();
        return st.modules.find((m) => m.id === id);
}

async function reset() {
        await sim.control('reset');
}

// Opens a page with the restart bar, as the playbooks that nest gateway_restart do.
async function loggedInWithPendingChange(page) {
        await fetch(`${sim.url}/sim/reset`, { method: 'POST' });
        await sim.login(page);
        await page.goto(`${sim.url}/app/platform/system/modules`);
        await page.fill('input[name="filter"]', 'Vision');
        await page.click('button[aria-label*="more"]');
        await page.click('li:has-text("Uninstall")');
        await page.click('button:has-text("Uninstall")');
        await page.waitForSelector('.restart-required-bar');
}

const TRIAL_RESET = [/gateway_restart\.yaml:step[12]_/];
const INSTALL_CONTINUED = [/module_install\.yaml:step15_/, ...TRIAL_RESET];

for (const group of ['gateway', 'builtin']) {
        test(`${group}/gateway_login.yaml`, async () => {
                await reset();
                const ctx = await run(`${group}/gateway_login.yaml`, {});
                if (process.env.ITK_VERBOSE)
                        console.log(ctx.log.join('\n'));
                assert.equal(ctx.screenshots.length, 1);
        });

        test(`${group}/gateway_restart.yaml (from a page with the restart bar)`, async () => {
                await reset();
                const before = (await sim.state()).restartCount;
                await run(`${group}/gateway_restart.yaml`, {}, { prepare: loggedInWithPendingChange,
                                                               expectContinued: TRIAL_RESET });
                const st = await sim.state();
                assert.equal(st.restartCount, before + 1, 'the gateway restarted once');
                assert.equal(st.pending.length, 0, 'the pending change was applied');
        });

        test(`${group}/module_install.yaml`, async () => {
                await reset();
                const folder = path.join(WORK, `${group}-install`);
                makeModule(folder, { id: 'com.example.simtest', name: 'Sim Test Module', version: '1.0.0' });
                await run(`${group}/module_install.yaml`, { module_folder: folder }, { expectContinued: INSTALL_CONTINUED });
                const m = await module('com.example.simtest');
                assert.ok(m, 'the module is installed');
                assert.equal(m.state, 'ACTIVE', 'and running after the restart');
        });

        test(`${group}/module_uninstall.yaml`, async () => {
                await reset();
                await run(`${group}/module_uninstall.yaml`, { module_name: 'Vision' }, { expectContinued: TRIAL_RESET });
                assert.equal(await module('com.inductiveautomation.vision'), undefined, 'Vision is gone');
                assert.ok(await module('com.inductiveautomation.perspective'), 'the others stay');
        });

        test(`${group}/backup_gateway.yaml`, async () => {
                await reset();
                const ctx = await run(`${group}/backup_gateway.yaml`, {});
                assert.equal(ctx.downloadFiles.length, 1, 'one file was downloaded');
                assert.match(ctx.downloadFiles[0], /\.gwbk$/);
                assert.equal(readFileSync(ctx.downloadFiles[0]).subarray(0, 2).toString(), 'PK', 'a zip');
        });
}

test('builtin/module_upgrade.yaml', async () => {
        await reset();
        const folder = path.join(WORK, 'upgrade-builtin');
        makeModule(folder, { id: 'com.inductiveautomation.perspective', name: 'Perspective', version: '8.3.7' });
        await run('builtin/module_upgrade.yaml', { module_folder: folder }, { expectContinued: INSTALL_CONTINUED });
        const m = await module('com.inductiveautomation.perspective');
        assert.equal(m.version, '8.3.7');
        assert.equal(m.state, 'ACTIVE');
});

for (const name of ['Claude', 'GIT', 'ONVIF', 'Python3', 'Sim']) {
        test(`gateway/module_upgrade_${name}.yaml`, async () => {
                await reset();
                const folder = path.join(WORK, `upgrade-${name}`);
                // Unsigned, no licence for one of them: the other acceptance path.
                const plain = name === 'Sim';
                makeModule(folder, { id: 'com.inductiveautomation.opcua', name: 'OPC UA', version: `8.3.${plain ? 9 : 8}`,
                                     cert: !plain, eula: !plain });
                const expect = plain ? [/module_install\.yaml:step(14|15|16|17|19|20|21)_/, ...TRIAL_RESET]
                                     : INSTALL_CONTINUED;
                await run(`gateway/module_upgrade_${name}.yaml`, { module_folder: folder }, { expectContinued: expect });
                const m = await module('com.inductiveautomation.opcua');
                assert.equal(m.version, `8.3.${plain ? 9 : 8}`);
                assert.equal(m.state, 'ACTIVE');
        });
}

test('gateway/reset_trial.yaml (trial expired)', async () => {
        await reset();
        await sim.control('trial', 'expired=true');
        // Step 4 looks for the blue box first: absent while the trial is expired.
        await run('gateway/reset_trial.yaml', {}, { expectContinued: [/reset_trial\.yaml:step4$/] });
        const r = await (await fetch(`${sim.url}/data/api/v1/trial`, { headers: { Accept: 'application/json' } })).json();
        assert.ok(r.trialSecondsLeft > 0, 'the trial runs again');
});

// The Perspective-like page against the old tool's verification examples.
test('perspective/test_verification_examples.yaml', async () => {
        await reset();
        await run('perspective/test_verification_examples.yaml', { project_name: 'demo', view_path: '/main' });
});

test('gateway/reset_trial.yaml (trial running)', async () => {
        await reset();
        await run('gateway/reset_trial.yaml', {}, { expectContinued: [/reset_trial\.yaml:step[67]$/] });
});
