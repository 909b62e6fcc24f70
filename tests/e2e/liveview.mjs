// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The live view panel (client/web/liveview.js) against the real daemon, bridge and
// gateway simulator: the run's page (/sim/clicks?tick, which changes 10 times a second)
// is drawn beside the steps; on pause the picture freezes while frames still arrive; a
// click on the paused picture reaches the page (the playbook's next step finds it in
// /sim/clicks); a click while running is refused in the panel and by the daemon; a
// bridge that may not view the run (running as nobody, outside the daemon's group)
// relays the daemon's AccessDenied, and a wrong token is refused. axe-core and
// screenshots at desktop and phone widths go to ITK_E2E_ARTIFACTS.
//
//   node liveview.mjs   (exit 77 = skipped: node_modules, chromium or the simulator missing)

import { spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, mkdirSync, rmSync, createWriteStream, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HERE, ARTIFACTS, CHROMIUM, LIBRARY, Stack, browserOptions, config } from './harness.mjs';

const SIM = process.env.ITK_GATEWAY_SIM;
if (!existsSync(path.join(HERE, 'node_modules', 'playwright-core')) ||
    !existsSync(path.join(HERE, 'node_modules', 'axe-core')) || !existsSync(CHROMIUM) ||
    !SIM || !existsSync(SIM)) {
        console.log('SKIP: needs `npm ci` in tests/e2e, chromium and ITK_GATEWAY_SIM');
        process.exit(77);
}

const { test, before, after } = await import('node:test');
const assert = (await import('node:assert/strict')).default;
const { chromium } = await import('playwright-core');
const { checkPage } = await import('./a11y.mjs');

let sim;
let simDir;
let simUrl;
let stack;
let browser;
let nobodyBridge;
let nobodyDir;

function startSim() {
        simDir = mkdtempSync(path.join(os.tmpdir(), 'itk-e2e-sim-'));
        sim = spawn(SIM, ['--state-dir', simDir], { stdio: ['ignore', 'pipe', 'ignore'] });
        return new Promise((resolve, reject) => {
                let buf = '';
                sim.stdout.setEncoding('utf8');
                sim.stdout.on('data', (chunk) => {
                        buf += chunk;
                        const m = /listening on (http:\/\/\S+)/.exec(buf);
                        if (m)
                                resolve(m[1]);
                });
                sim.once('exit', (code) => reject(new Error(`itk-gateway-sim exited (${code})`)));
        });
}

// A second bridge on the same bus as `nobody`: the daemon's group decides for it
// (no polkit on the test bus), and nobody is not in it. Null when not root.
function startNobodyBridge() {
        if (process.getuid() !== 0)
                return Promise.resolve(null);
        nobodyDir = mkdtempSync(path.join(os.tmpdir(), 'itk-e2e-nobody-'));
        chmodSync(nobodyDir, 0o755);
        const state = path.join(nobodyDir, 'state');
        mkdirSync(state);
        chownSync(state, 65534, 65534);
        nobodyBridge = spawn(config().bridge, [`--bus-address=${stack.busAddress}`, `--state-dir=${state}`,
                                               `--web-root=${config().webRoot}`, '--listen=127.0.0.1:0'],
                             { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'pipe'] });
        nobodyBridge.stderr.pipe(createWriteStream(path.join(ARTIFACTS, 'bridge-nobody.log')));
        return new Promise((resolve, reject) => {
                let buf = '';
                nobodyBridge.stdout.setEncoding('utf8');
                nobodyBridge.stdout.on('data', (chunk) => {
                        buf += chunk;
                        const m = /listening on (http:\/\/\S+?)\/?\n/.exec(buf);
                        if (m)
                                resolve(m[1]);
                });
                nobodyBridge.once('exit', (code) => reject(new Error(`the bridge as nobody exited (${code})`)));
        });
}

before(async () => {
        simUrl = await startSim();
        LIBRARY['e2e/live.yaml'] = `name: Live page
version: "1.0"
domain: gateway
group: E2E tests
steps:
  - id: open
    name: Open the clicks page
    type: browser.navigate
    parameters:
      url: "${simUrl}/sim/clicks?tick"
  - id: hold
    name: Hold still
    type: utility.sleep
    parameters:
      seconds: 120
  - id: check
    name: The click reached the page
    type: browser.verify_text
    parameters:
      selector: "#clicks li"
      match: regex
      text: "^(29[6-9]|30[0-4]),(19[6-9]|20[0-4]) 0$"
  - id: keys
    name: The key reached the page
    type: browser.verify_text
    parameters:
      selector: "#keys li"
      text: Enter
`;
        stack = await new Stack().start();
        browser = await chromium.launch(browserOptions());
});

after(async () => {
        // Every child is stopped even when a step of the clean-up fails: one left
        // running keeps node (and the test) alive until meson's timeout.
        try {
                if (browser)
                        await browser.close();
                if (nobodyBridge)
                        nobodyBridge.kill('SIGTERM');
                if (stack)
                        await stack.stop();
        } finally {
                if (sim)
                        sim.kill('SIGTERM');
                for (const d of [simDir, nobodyDir])
                        if (d)
                                rmSync(d, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
        }
});

const stats = (page) => page.evaluate(() => ({ ...window.__itkLiveStats }));

async function waitFor(what, fn, timeout = 30000) {
        const deadline = Date.now() + timeout;
        for (;;) {
                const v = await fn();
                if (v)
                        return v;
                assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
                await new Promise((r) => setTimeout(r, 100));
        }
}

// Where on the screen page point (x, y) of the frame is drawn: the bitmap fitted whole
// (object-fit: contain) in the canvas's content box.
async function screenPoint(page, x, y) {
        return await page.evaluate(([px, py]) => {
                const c = document.getElementById('live-canvas');
                const f = window.__itkLiveStats.lastDrawn;
                const r = c.getBoundingClientRect();
                const scale = Math.min(c.clientWidth / c.width, c.clientHeight / c.height);
                const left = r.left + c.clientLeft + (c.clientWidth - c.width * scale) / 2;
                const top = r.top + c.clientTop + (c.clientHeight - c.height * scale) / 2;
                return { x: left + (px + 0.5) / f.width * c.width * scale,
                         y: top + (py + 0.5) / f.height * c.height * scale };
        }, [x, y]);
}

test('watch, freeze on pause, click through, refusals', async () => {
        const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
        const page = await context.newPage();
        const errors = [];
        page.on('pageerror', (e) => errors.push(e.message));
        try {
                const started = await stack.api('POST', '/api/executions', { playbook_path: 'e2e/live.yaml', parameters: {} });
                assert.equal(started.status, 201, JSON.stringify(started.body));
                const id = started.body.execution_id;
                await page.goto(`${stack.base}/#token=${encodeURIComponent(stack.token)}`);
                await page.waitForSelector('#conn.conn-connected', { timeout: 10000 });
                await page.evaluate((i) => { location.hash = `#/execution/${i}`; }, id);

                // Frames of the moving page are drawn beside the steps.
                await page.waitForSelector('#live:not([hidden])', { timeout: 60000 });
                await waitFor('frames drawn', async () => (await stats(page)).drawn >= 3, 60000);
                const first = await stats(page);
                assert.ok(first.lastDrawn.width > 100 && first.lastDrawn.height > 100, `frame ${first.lastDrawn.width}x${first.lastDrawn.height}`);
                // The first frames may still be of about:blank, before the page loaded.
                await waitFor('the page URL shown', async () => /sim\/clicks/.test(await page.textContent('#live-where')));
                await page.waitForSelector('#live-state[data-state="live"]');
                await page.screenshot({ path: path.join(ARTIFACTS, 'liveview-running.png') });

                // Running: a click is refused in the panel and nothing is sent.
                const p = await screenPoint(page, 300, 200);
                await page.mouse.click(p.x, p.y);
                await page.waitForSelector('#live-msg.error');
                assert.match(await page.textContent('#live-msg'), /pause it/);
                assert.equal((await stats(page)).inputs, 0);
                // ... and by the daemon, through the bridge, with its reason.
                const refused = await stack.api('POST', `/api/executions/${id}/input`, { kind: 'click', x: 300, y: 200 });
                assert.equal(refused.status, 409, JSON.stringify(refused.body));
                assert.equal(refused.body.error, 'InvalidState');
                assert.match(refused.body.message, /paused or in debug mode/);
                const bad = await stack.api('POST', `/api/executions/${id}/input`, { x: 1 });
                assert.equal(bad.status, 400);
                assert.match(bad.body.message, /'kind'/);

                // Paused: the picture holds still while frames keep coming.
                await page.click('button[data-action="pause"]');
                await page.waitForSelector('#live-state[data-state="paused"]', { timeout: 30000 });
                await page.waitForSelector('#detail-status[data-status="paused"]');
                const frozen = await stats(page);
                await waitFor('frames arriving while paused', async () => (await stats(page)).received >= frozen.received + 5);
                assert.equal((await stats(page)).drawn, frozen.drawn, 'no frame drawn while paused');
                assert.match(await page.textContent('#live-state'), /Paused/);

                await checkPage(page, 'liveview');

                // A click on the paused picture reaches the page.
                const q = await screenPoint(page, 300, 200);
                await page.mouse.click(q.x, q.y);
                await page.waitForSelector('#live-msg:not(.error)', { timeout: 20000 });
                const said = /Clicked at (\d+),(\d+)/.exec(await page.textContent('#live-msg'));
                assert.ok(said, await page.textContent('#live-msg'));
                assert.ok(Math.abs(said[1] - 300) <= 4 && Math.abs(said[2] - 200) <= 4, `clicked at ${said[1]},${said[2]}`);
                // The page changed (its list grew): the frames after an input are drawn.
                await waitFor('the click drawn', async () => (await stats(page)).drawn > frozen.drawn);
                // A key on the focused picture reaches the page too.
                await page.focus('#live-canvas');
                await page.keyboard.press('Enter');
                await page.waitForFunction(() => document.getElementById('live-msg').textContent === 'Key sent.', null, { timeout: 20000 });
                // A wheel turn on it scrolls the page.
                const c = await screenPoint(page, 400, 300);
                await page.mouse.move(c.x, c.y);
                await page.mouse.wheel(0, 120);
                await page.waitForFunction(() => document.getElementById('live-msg').textContent === 'Scrolled.', null, { timeout: 20000 });
                const log = await stack.api('GET', `/api/executions/${id}/log`);
                assert.ok(log.body.lines.some((l) => l.message.startsWith(`operator clicked (left) at ${said[1]},${said[2]} on ${simUrl}/sim/clicks`)),
                          'the input is in the run log');
                assert.ok(log.body.lines.some((l) => l.message === `operator pressed Enter on ${simUrl}/sim/clicks?tick`),
                          'the key is in the run log');
                assert.ok(log.body.lines.some((l) => /^operator scrolled by 0,120 at \d+,\d+ on /.test(l.message)),
                          'the wheel turn is in the run log');

                // A viewer without the view right: a wrong token, and a bridge the daemon refuses.
                const wrong = await page.evaluate(async (i) => {
                        const url = new URL(`ws/executions/${i}/live`, location.href);
                        url.protocol = 'ws:';
                        return await new Promise((resolve) => {
                                const ws = new WebSocket(url, ['itk.v1', 'itk.token.wrong']);
                                ws.onopen = () => resolve('opened');
                                ws.onclose = () => resolve('refused');
                        });
                }, id);
                assert.equal(wrong, 'refused');
                const r = await fetch(`${stack.base}/api/executions/${id}/input`, { method: 'POST', body: '{"kind":"click","x":1,"y":1}',
                                                                             headers: { Authorization: 'Bearer wrong' } });
                assert.equal(r.status, 401);
                const nobody = await startNobodyBridge();
                if (nobody) {
                        const { readFileSync } = await import('node:fs');
                        const token = readFileSync(path.join(nobodyDir, 'state', 'bridge-token'), 'utf8').trim();
                        const other = await context.newPage();
                        await other.goto(`${nobody}/#token=${encodeURIComponent(token)}`);
                        const got = await other.evaluate(async (i) => {
                                const url = new URL(`ws/executions/${i}/live`, location.href);
                                url.protocol = 'ws:';
                                return await new Promise((resolve) => {
                                        const ws = new WebSocket(url, ['itk.v1', `itk.token.${sessionStorage.getItem('itk-token')}`]);
                                        ws.binaryType = 'arraybuffer';
                                        const seen = [];
                                        ws.onmessage = (ev) => seen.push(typeof ev.data === 'string' ? ev.data : 'binary');
                                        ws.onclose = (ev) => resolve({ seen, code: ev.code });
                                });
                        }, id);
                        assert.equal(got.seen.length, 1, `only the error: ${JSON.stringify(got.seen)}`);
                        const msg = JSON.parse(got.seen[0]);
                        assert.equal(msg.type, 'error');
                        assert.equal(msg.error, 'AccessDenied', msg.message);
                        const steer = await fetch(`${nobody}/api/executions/${id}/input`, {
                                method: 'POST', body: '{"kind":"click","x":1,"y":1}',
                                headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } });
                        assert.equal(steer.status, 403);
                        await other.close();
                } else {
                        console.log('# not root: the bridge-as-nobody refusal is not tested');
                }

                // Resume: the playbook's check finds the click on the page.
                assert.equal((await stack.api('POST', `/api/executions/${id}/skip`)).status, 200);
                assert.equal((await stack.api('POST', `/api/executions/${id}/resume`)).status, 200);
                await page.waitForSelector('#detail-status[data-status="completed"]', { timeout: 60000 });
                await page.waitForSelector('#live-state[data-state="ended"]', { timeout: 20000 });
                assert.deepEqual(errors, [], 'no uncaught errors in the page');
        } finally {
                await context.close();
        }
});
