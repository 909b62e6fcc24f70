// SPDX-License-Identifier: LGPL-2.1-or-later
//
// End-to-end tests of the web UI against the real daemon and bridge in headless
// Chromium. The old tool's users lost their runs to a Cancel button that did nothing
// and to a UI that guessed status; these tests drive our page the way they did.
//
//   node run-e2e.mjs          (exit 77 = skipped: node_modules or chromium missing)

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { HERE, ARTIFACTS, CHROMIUM, Stack, browserOptions } from './harness.mjs';

if (!existsSync(path.join(HERE, 'node_modules', 'playwright-core')) || !existsSync(CHROMIUM)) {
        console.log('SKIP: run `npm ci` in tests/e2e and install chromium (tools/install-deps.sh --tests)');
        process.exit(77);
}

const { test, before, after, beforeEach, afterEach } = await import('node:test');
const assert = (await import('node:assert/strict')).default;
const { chromium } = await import('playwright-core');

const TERMINAL = ['completed', 'failed', 'cancelled'];
let stack;
let browser;
let context;
let page;
let requests;
let pageErrors;

before(async () => {
        stack = await new Stack().start();
        browser = await chromium.launch(browserOptions());
});

after(async () => {
        if (browser)
                await browser.close();
        if (stack)
                await stack.stop();
});

beforeEach(async () => {
        context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
        page = await context.newPage();
        requests = [];
        pageErrors = [];
        page.on('request', (r) => requests.push({ method: r.method(), url: r.url(), at: Date.now() }));
        page.on('pageerror', (e) => pageErrors.push(e.message));
});

afterEach(async (t) => {
        if (page && !page.isClosed())
                await page.screenshot({ path: path.join(ARTIFACTS, `${slug(t.name)}-final.png`) }).catch(() => {});
        await context.close();
        assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
});

function slug(s) {
        return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60);
}

async function shot(name) {
        await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

async function openApp(hash = '') {
        await page.goto(`${stack.base}/#token=${encodeURIComponent(stack.token)}`);
        await page.waitForSelector('#conn.conn-connected', { timeout: 10000 });
        if (hash)
                await page.evaluate((h) => { location.hash = h; }, hash);
}

// Starts @playbook from its run form and returns the execution id.
async function startFromPage(playbook, { debug = false, fill = {} } = {}) {
        await openApp();
        await page.click(`a[href="#/run/${encodeURIComponent(playbook)}"]`);
        await page.waitForSelector('#run-submit');
        for (const [name, value] of Object.entries(fill)) {
                const sel = `[data-param="${name}"] input, [data-param="${name}"] textarea, [data-param="${name}"] select`;
                if (typeof value === 'boolean')
                        await page.setChecked(sel, value);
                else
                        await page.fill(sel, value);
        }
        if (debug)
                await page.check('#run-debug');
        await page.click('#run-submit');
        await page.waitForURL(/#\/execution\/[0-9a-f-]+$/, { timeout: 10000 });
        return /#\/execution\/([0-9a-f-]+)$/.exec(page.url())[1];
}

function statusIs(status, timeout = 10000) {
        return page.waitForSelector(`#detail-status[data-status="${status}"]`, { timeout });
}

function stepIs(stepId, status, timeout = 10000) {
        return page.waitForSelector(`li[data-step="${stepId}"][data-status="${status}"]`, { timeout });
}

async function shownStatus() {
        return page.getAttribute('#detail-status', 'data-status');
}

async function enabled(action) {
        return page.isEnabled(`button[data-action="${action}"]`);
}

async function buttonStates() {
        const out = {};
        for (const a of ['pause', 'resume', 'skip', 'skip_back', 'cancel'])
                out[a] = await enabled(a);
        return out;
}

function posts() {
        return requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${new URL(r.url).pathname}`);
}

async function serverStatus(id) {
        const r = await stack.api('GET', `/api/executions/${id}`);
        assert.equal(r.status, 200);
        return r.body;
}

async function waitServer(id, pred, timeout = 40000) {
        const deadline = Date.now() + timeout;
        for (;;) {
                const e = await serverStatus(id);
                if (pred(e))
                        return e;
                if (Date.now() > deadline)
                        throw new Error(`server never reached the state; last: ${e.status}`);
                await new Promise((r) => setTimeout(r, 100));
        }
}

// Every control on the page has an accessible name (a label, aria-label or text).
async function assertControlsNamed() {
        // A hidden input (a file parameter's value) is no control.
        const unnamed = await page.$$eval('input:not([type=hidden]), select, textarea, button, a[href], summary', (els) =>
                els.filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') &&
                                  !e.getAttribute('aria-labelledby') && !e.textContent.trim())
                        .map((e) => e.outerHTML));
        assert.deepEqual(unnamed, []);
}

function noResumeSent() {
        const resumes = requests.filter((r) => /\/resume(\?|$)/.test(new URL(r.url).pathname));
        assert.deepEqual(resumes, [], 'the page never sends resume on its own');
}

test('cancel during a 30 s sleep ends the run cancelled at once, for good', async () => {
        const id = await startFromPage('e2e/sleep30.yaml');
        await statusIs('running');
        await stepIs('nap', 'running');
        assert.deepEqual(await buttonStates(), { pause: true, resume: false, skip: true, skip_back: true, cancel: true });
        await shot('cancel-1-running');

        const before = requests.length;
        const t0 = Date.now();
        await page.click('button[data-action="cancel"]');
        await statusIs('cancelled', 1000);
        const elapsed = Date.now() - t0;
        assert.ok(elapsed < 1000, `cancelled shown after ${elapsed} ms`);
        await stepIs('nap', 'cancelled', 2000);
        await shot('cancel-2-cancelled');

        // Terminal: every control is off.
        assert.deepEqual(await buttonStates(), { pause: false, resume: false, skip: false, skip_back: false, cancel: false });
        assert.equal(await page.isEnabled('#detail-debug'), false);

        // The click sent exactly one request: the cancel.
        const after = requests.slice(before).filter((r) => r.method !== 'GET');
        assert.deepEqual(after.map((r) => `${r.method} ${new URL(r.url).pathname}`),
                         [`POST /api/executions/${id}/cancel`]);

        // Still cancelled 5 s later (the old tool's run came back to life).
        await page.waitForTimeout(5000);
        assert.equal(await shownStatus(), 'cancelled');
        assert.equal(await page.getAttribute('li[data-step="nap"]', 'data-status'), 'cancelled');

        await page.reload();
        await page.waitForSelector('#conn.conn-connected');
        await statusIs('cancelled', 5000);
        await stepIs('nap', 'cancelled', 5000);
        await page.waitForSelector(`a[data-execution="${id}"] .badge-cancelled`);

        // The daemon agrees.
        const rec = await serverStatus(id);
        assert.equal(rec.status, 'cancelled');
        assert.equal(rec.steps[0].status, 'cancelled');
        assert.notEqual(rec.steps[1].status, 'completed', 'nothing ran after the cancel');
        const list = await stack.api('GET', '/api/executions?limit=20');
        assert.equal(list.body.executions.find((e) => e.execution_id === id).status, 'cancelled');

        noResumeSent();
        assert.deepEqual(posts(), ['POST /api/executions', `POST /api/executions/${id}/cancel`]);
        assert.ok(!page.url().includes('token='), 'the token left the address bar');
});

test('double-clicking Cancel cancels once and shows no error', async () => {
        const id = await startFromPage('e2e/sleep30.yaml');
        await statusIs('running');
        await page.dblclick('button[data-action="cancel"]');
        await statusIs('cancelled', 2000);
        const cancels = posts().filter((p) => p.endsWith('/cancel'));
        assert.equal(cancels.length, 1, `cancel requests: ${cancels.length}`);
        assert.equal(await page.isVisible('.control-msg.error'), false, 'no error shown');
        assert.equal(await page.isVisible('#notice'), false, 'no error banner');
        await page.waitForTimeout(1500);
        assert.equal(await shownStatus(), 'cancelled');
        assert.equal((await serverStatus(id)).status, 'cancelled');
        noResumeSent();
});

test('pause then resume from the page; the sleep completes after resume', async () => {
        const id = await startFromPage('e2e/short.yaml');
        await statusIs('running');
        await stepIs('nap', 'running');
        await page.click('button[data-action="pause"]');
        await statusIs('paused', 2000);
        await page.waitForSelector('button[data-action="resume"]:not([disabled])');
        assert.deepEqual(await buttonStates(), { pause: false, resume: true, skip: true, skip_back: true, cancel: true });
        await shot('pause-1-paused');
        // The sleep is frozen: longer than its 3 s and it is still paused.
        await page.waitForTimeout(3500);
        assert.equal(await shownStatus(), 'paused');
        assert.equal((await serverStatus(id)).status, 'paused');
        assert.equal(await page.getAttribute('li[data-step="nap"]', 'data-status'), 'running');

        await page.click('button[data-action="resume"]');
        await statusIs('running', 2000);
        await statusIs('completed', 10000);
        await stepIs('nap', 'completed');
        await stepIs('after', 'completed');
        assert.deepEqual(await buttonStates(), { pause: false, resume: false, skip: false, skip_back: false, cancel: false });
        await page.waitForSelector('#log .log-msg:text("short nap done")', { timeout: 5000 });
        assert.deepEqual(posts().filter((p) => /pause|resume/.test(p)),
                         [`POST /api/executions/${id}/pause`, `POST /api/executions/${id}/resume`]);
        assert.equal((await serverStatus(id)).status, 'completed');
});

test('controls wait for the server: busy while in flight, never optimistic', async () => {
        const id = await startFromPage('e2e/sleep30.yaml');
        await stepIs('nap', 'running');
        // Hold the pause request in the network layer until the test lets it go.
        let release;
        const held = new Promise((r) => { release = r; });
        await page.route(`**/api/executions/${id}/pause`, async (route) => {
                await held;
                await route.continue();
        });
        await page.click('button[data-action="pause"]');
        await page.waitForSelector('button[data-action="pause"][aria-busy]');
        assert.equal(await enabled('pause'), false, 'busy button is disabled');
        await page.waitForTimeout(700);
        assert.equal(await shownStatus(), 'running', 'no optimistic paused');
        assert.equal((await serverStatus(id)).status, 'running');
        await shot('busy-1-pause-in-flight');
        release();
        await statusIs('paused', 3000);
        await page.waitForSelector('button[data-action="pause"]:not([aria-busy])');
        assert.equal(await enabled('pause'), false);
        assert.equal(await enabled('resume'), true);
        await page.click('button[data-action="cancel"]');
        await statusIs('cancelled', 1000);
        noResumeSent();
});

test('a pending run offers Cancel only, and Cancel ends it', async () => {
        // Only the D-Bus API makes a pending run (options.start=false).
        const out = execFileSync('busctl', ['--address', stack.busAddress, '--json=short', 'call',
                                            'org.ignition.Toolkit', '/org/ignition/Toolkit',
                                            'org.ignition.Toolkit.Manager', 'StartExecution', 'sa{sv}a{sv}',
                                            'e2e/sleep30.yaml', '0', '1', 'start', 'b', 'false'],
                                 { encoding: 'utf8' });
        const objPath = JSON.parse(out).data[0];
        const id = objPath.split('/').pop().replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
        await openApp(`#/execution/${id}`);
        await statusIs('pending');
        await page.waitForSelector('button[data-action="cancel"]:not([disabled])');
        assert.deepEqual(await buttonStates(), { pause: false, resume: false, skip: false, skip_back: false, cancel: true });
        assert.equal(await page.isEnabled("#detail-debug"), false);
        await shot('pending-1');
        await page.click('button[data-action="cancel"]');
        await statusIs('cancelled', 1000);
        assert.equal((await serverStatus(id)).status, 'cancelled');
        assert.deepEqual(posts(), [`POST /api/executions/${id}/cancel`]);
});

test('skip abandons the sleep and the run goes on', async () => {
        const id = await startFromPage('e2e/sleep30.yaml');
        await stepIs('nap', 'running');
        const t0 = Date.now();
        await page.click('button[data-action="skip"]');
        await stepIs('nap', 'skipped', 3000);
        await statusIs('completed', 5000);
        assert.ok(Date.now() - t0 < 5000, 'the 30 s sleep was not waited out');
        await stepIs('after', 'completed');
        const rec = await serverStatus(id);
        assert.equal(rec.status, 'completed');
        assert.equal(rec.steps[0].status, 'skipped');
        noResumeSent();
});

test('turning debug mode off while paused leaves the run paused', async () => {
        const id = await startFromPage('e2e/two-logs.yaml', { debug: true });
        await statusIs('paused');
        await page.waitForSelector('#detail-debug:checked:not([disabled])');
        await shot('debug-1-paused');
        await page.click('#detail-debug');
        await page.waitForSelector('#detail-debug:not(:checked):not([disabled])', { timeout: 3000 });
        const rec = await serverStatus(id);
        assert.equal(rec.debug_mode, false);
        await page.waitForTimeout(1500);
        assert.equal(await shownStatus(), 'paused');
        assert.equal((await serverStatus(id)).status, 'paused');
        noResumeSent();
        assert.deepEqual(posts().filter((p) => p.includes(id)), [`POST /api/executions/${id}/debug/disable`]);
        // Now the user resumes: with debug off the run goes to the end.
        await page.click('button[data-action="resume"]');
        await statusIs('completed', 10000);
        await stepIs('second', 'completed');
});

test('a run that finishes while the socket is down shows its end after the reconnect', async () => {
        const id = await startFromPage('e2e/short.yaml');
        await statusIs('running');
        await page.evaluate(() => window.__itkTestDropSocket(true));
        await page.waitForSelector('#conn.conn-reconnecting', { timeout: 3000 });
        await waitServer(id, (e) => TERMINAL.includes(e.status), 20000);
        // Not live: the page must not pretend (it shows the last status as not live).
        await page.waitForTimeout(300);
        assert.equal(await shownStatus(), 'running');
        assert.equal(await page.isVisible('#detail-status .badge.stale'), true);
        await shot('reconnect-1-disconnected');
        await page.evaluate(() => window.__itkTestAllowReconnect());
        await page.waitForSelector('#conn.conn-connected', { timeout: 5000 });
        await statusIs('completed', 3000);
        await stepIs('nap', 'completed', 3000);
        await stepIs('after', 'completed', 3000);
        await page.waitForSelector(`a[data-execution="${id}"] .badge-completed`, { timeout: 3000 });
        await shot('reconnect-2-after');
});

test('the bridge going away and coming back: the page says so, then shows the truth', async () => {
        const id = await startFromPage('e2e/short.yaml');
        await statusIs('running');
        await stack.stopBridge();
        await page.waitForSelector('#conn.conn-reconnecting', { timeout: 5000 });
        assert.equal(await page.isVisible('#conn-retry'), true);
        assert.equal(await page.isVisible('#detail-status .badge.stale'), true, 'status marked not live');
        assert.equal(await enabled('pause'), false, 'no pause on a guess');
        await shot('bridge-down-1');
        // The run ends while nobody watches.
        await new Promise((r) => setTimeout(r, 3500));
        await stack.restartBridge();
        // Retry at once. The page's own backoff timer may win the race in the
        // moment between the restart and the click; either way it must end
        // connected and showing the truth.
        await page.click('#conn-retry', { timeout: 2000 }).catch(async (e) => {
                if (await page.isVisible('#conn-retry'))
                        throw e;
        });
        await page.waitForSelector('#conn.conn-connected', { timeout: 10000 });
        await waitServer(id, (e) => e.status === 'completed', 20000);
        await statusIs('completed', 3000);
        await stepIs('after', 'completed', 3000);
        assert.equal(await page.isVisible('#conn-retry'), false);
});

test('a failing step shows failed, its error and its attempts', async () => {
        const id = await startFromPage('e2e/fails.yaml');
        await statusIs('failed', 15000);
        await stepIs('ok', 'completed');
        await stepIs('broken', 'failed');
        await page.waitForSelector('li[data-step="broken"] .attempts:has-text("2 attempts")', { timeout: 5000 });
        await page.waitForSelector('li[data-step="broken"] .step-output:has-text("about to fail")', { timeout: 5000 });
        assert.notEqual(await page.getAttribute('li[data-step="never"]', 'data-status'), 'completed');
        assert.equal(await page.isVisible('.detail > .banner-error'), true, 'the run error is shown');
        assert.deepEqual(await buttonStates(), { pause: false, resume: false, skip: false, skip_back: false, cancel: false });
        const rec = await serverStatus(id);
        assert.equal(rec.status, 'failed');
        assert.ok(rec.error, 'the daemon recorded an error');
        await shot('failed-1');
});

test('a finished run reads the same after it left the bus', async () => {
        // A daemon of its own that drops finished runs from the bus after a few seconds.
        const short = await new Stack({ retention: 4 }).start();
        try {
                await page.goto(`${short.base}/#token=${encodeURIComponent(short.token)}`);
                await page.waitForSelector('#conn.conn-connected', { timeout: 10000 });
                await page.click(`a[href="#/run/${encodeURIComponent('e2e/fidelity.yaml')}"]`);
                await page.waitForSelector('#run-submit');
                await page.click('#run-submit');
                await page.waitForURL(/#\/execution\/[0-9a-f-]+$/, { timeout: 10000 });
                const id = /#\/execution\/([0-9a-f-]+)$/.exec(page.url())[1];
                await statusIs('failed', 15000);
                await stepIs('undo', 'completed');
                // Times, attempts and outputs come with the record the page fetches
                // a moment after the last step event: read the live view once every
                // finished step shows its duration.
                await page.waitForFunction(() => document.querySelectorAll('#steps .duration').length >=
                        document.querySelectorAll('#steps li[data-status="completed"], #steps li[data-status="failed"]').length,
                        null, { timeout: 10000 });
                await page.evaluate(() => new Promise((res) => requestAnimationFrame(() => requestAnimationFrame(res))));
                const shown = () => page.evaluate(() => ({
                        status: document.querySelector('#detail-status').textContent,
                        progress: document.querySelector('#detail-progress').value,
                        progressText: document.querySelector('.progress-text').textContent,
                        steps: document.querySelector('#steps').innerText,
                        nested: [...document.querySelectorAll('#steps li[data-step]')]
                                .map((li) => `${li.dataset.step}:${li.dataset.status}:${li.closest('ol.nested') ? 'nested' : 'top'}`),
                }));
                const live = await shown();
                const r = await short.api('GET', `/api/executions/${id}`);
                assert.ok(r.body.path, 'still on the bus when the live view was read');
                await shot('fidelity-1-live');

                // Gone from the bus: the bridge answers from history.
                const deadline = Date.now() + 20000;
                while ((await short.api('GET', `/api/executions/${id}`)).body.path) {
                        assert.ok(Date.now() < deadline, 'the run never left the bus');
                        await new Promise((res) => setTimeout(res, 200));
                }
                await page.reload();
                await page.waitForSelector('#detail-status[data-status="failed"]', { timeout: 10000 });
                await page.waitForSelector('li[data-step="undo"][data-status="completed"]', { timeout: 10000 });
                const stored = await shown();
                await shot('fidelity-2-history');
                assert.doesNotMatch(stored.steps, /NaN/);
                assert.deepEqual(stored, live);
                assert.ok(live.nested.includes('nested/inner:completed:nested'), live.nested.join(' '));
                assert.match(live.steps, /rollback/);
        } finally {
                await short.stop();
        }
});

test('the token is required', async () => {
        // No token at all.
        await page.goto(`${stack.base}/`);
        await page.waitForSelector('#auth-error:not([hidden])', { timeout: 5000 });
        assert.match(await page.textContent('#auth-error'), /Not authorized/);
        await shot('auth-1-no-token');
        const r = await fetch(`${stack.base}/api/playbooks`);
        assert.equal(r.status, 401);
        const ws = await fetch(`${stack.base}/api/executions`, { headers: { Authorization: 'Bearer nope' } });
        assert.equal(ws.status, 401);

        // A wrong token: the API refuses it and the page says so.
        await page.goto(`${stack.base}/#token=wrong-token`);
        await page.reload();
        await page.waitForSelector('#auth-error:not([hidden])', { timeout: 5000 });
        assert.ok(!page.url().includes('token='));
        assert.ok(requests.some((q) => q.url.includes('/api/') && q.method === 'GET'));
});

test('run form: typed parameters, script output and nested steps', async () => {
        const cred = await stack.api('POST', '/api/credentials', { name: 'lab', username: 'admin', password: 'pw-e2e-SECRET',
                                                                    gateway_url: 'http://localhost:8088' });
        assert.equal(cred.status, 201);
        await openApp();
        await page.click(`a[href="#/run/${encodeURIComponent('e2e/showcase.yaml')}"]`);
        await page.waitForSelector('#run-submit');
        await shot('form-1-showcase');
        // Typed inputs.
        assert.equal(await page.getAttribute('[data-param="count"] input', 'type'), 'number');
        assert.equal(await page.getAttribute('[data-param="force"] input', 'type'), 'checkbox');
        assert.equal(await page.$eval('[data-param="modules"] textarea', (e) => e.tagName), 'TEXTAREA');
        assert.equal(await page.$eval('[data-param="gateway"] select', (e) => e.tagName), 'SELECT');
        // The credential pickers list the stored credential, and never its secret.
        await page.waitForSelector('[data-param="gateway"] select option[value="lab"]', { state: 'attached' });
        await page.waitForSelector('#run-credential option[value="lab"]', { state: 'attached' });
        assert.ok(!(await page.content()).includes('pw-e2e-SECRET'));
        await assertControlsNamed();
        // Bad JSON is caught in the page, no request sent.
        await page.fill('[data-param="count"] input', '5');
        await page.fill('[data-param="modules"] textarea', '[not json');
        const n = posts().length;
        await page.click('#run-submit');
        await page.waitForSelector('[data-param="modules"] textarea[aria-invalid="true"]');
        assert.equal(posts().length, n);
        await page.fill('[data-param="modules"] textarea', '["a", "b"]');
        await page.check('[data-param="force"] input');
        await page.click('#run-submit');
        await page.waitForURL(/#\/execution\//);
        await statusIs('completed', 15000);
        await page.waitForSelector('#log .log-msg:text("count=5 force=true")', { timeout: 5000 });
        await page.waitForSelector('li[data-step="script"] .step-output:has-text("hello from python")', { timeout: 5000 });
        await page.waitForSelector('li[data-step="nested/inner"]', { timeout: 5000 });
        const indent = await page.$eval('li[data-step="nested/inner"]', (e) => e.getBoundingClientRect().left);
        const outer = await page.$eval('li[data-step="nested"]', (e) => e.getBoundingClientRect().left);
        assert.ok(indent > outer, 'nested steps are indented under their parent');
        await page.click('li[data-step="script"] summary');
        await page.waitForSelector('li[data-step="script"] .outputs pre:has-text("42")');
        await assertControlsNamed();
        await shot('detail-1-showcase');
});

test('keyboard: a playbook can be started without a mouse', async () => {
        await openApp();
        // The token moved from the address bar into this tab's session storage.
        assert.ok(!page.url().includes('token'));
        assert.equal(await page.evaluate(() => sessionStorage.getItem('itk-token')), stack.token);
        await page.focus(`a[href="#/run/${encodeURIComponent('e2e/two-logs.yaml')}"]`);
        await page.keyboard.press('Enter');
        await page.waitForSelector('#run-submit');
        await page.focus('#run-submit');
        await page.keyboard.press('Enter');
        await page.waitForURL(/#\/execution\//);
        await statusIs('completed', 10000);
});
