// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Web UI behaviour beyond the controls (run-e2e.mjs has those): drawing at most once
// per frame with an incremental log, the history page, the polish of issue 15 and
// the accessibility pass (a11y.mjs) on every page, against the real daemon and bridge.
//
//   node test-webui.mjs          (exit 77 = skipped: node_modules or chromium missing)

import { existsSync } from 'node:fs';
import path from 'node:path';
import { HERE, CHROMIUM, LIBRARY, Stack, browserOptions } from './harness.mjs';

if (!existsSync(path.join(HERE, 'node_modules', 'playwright-core')) ||
    !existsSync(path.join(HERE, 'node_modules', 'axe-core')) || !existsSync(CHROMIUM)) {
        console.log('SKIP: run `npm ci` in tests/e2e and install chromium (tools/install-deps.sh --tests)');
        process.exit(77);
}

const { test, before, after, beforeEach, afterEach } = await import('node:test');
const assert = (await import('node:assert/strict')).default;
const { chromium } = await import('playwright-core');
const { checkPage, settle } = await import('./a11y.mjs');

const CHATTY_LINES = 3000;
Object.assign(LIBRARY, {
        'webui/chatty.yaml': `name: Chatty
version: "1.0"
description: A step with outputs, then a shell step printing ${CHATTY_LINES} lines.
domain: gateway
group: Web UI tests
steps:
  - id: answer
    name: Answer
    type: utility.python
    parameters:
      script: |
        print("ANSWER=42")
  - id: talk
    name: Talk a lot
    type: utility.shell
    parameters:
      command: "i=1; while [ $i -le ${CHATTY_LINES} ]; do echo \\"line $i\\"; i=$((i+1)); done"
`,
        'webui/tolerated.yaml': `name: Tolerated
version: "1.0"
description: A failure the run goes on from, and a traceback.
domain: gateway
group: Web UI tests
steps:
  - id: flaky
    name: Flaky script
    type: utility.python
    on_failure: continue
    parameters:
      script: |
        def inner():
            raise ValueError("deliberate")
        inner()
  - id: after
    name: After
    type: utility.log
    parameters:
      message: went on
`,
});

let stack;
let browser;
let context;
let page;
let pageErrors;
let consoleText;

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
        context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
        page = await context.newPage();
        pageErrors = [];
        consoleText = [];
        page.on('pageerror', (e) => pageErrors.push(e.message));
        page.on('console', (m) => consoleText.push(m.text()));
});

afterEach(async () => {
        await context.close();
        assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
        assert.ok(!consoleText.some((t) => t.includes(stack.token)), 'the token never reaches the console');
});

async function openApp(hash = '') {
        await page.goto(`${stack.base}/#token=${encodeURIComponent(stack.token)}`);
        await page.waitForSelector('#conn.conn-connected', { timeout: 10000 });
        if (hash)
                await page.evaluate((h) => { location.hash = h; }, hash);
}

async function startFromPage(playbook) {
        await openApp();
        await page.click(`a[href="#/run/${encodeURIComponent(playbook)}"]`);
        await page.waitForSelector('#run-submit');
        await page.click('#run-submit');
        await page.waitForURL(/#\/execution\/[0-9a-f-]+$/, { timeout: 10000 });
        return /#\/execution\/([0-9a-f-]+)$/.exec(page.url())[1];
}

test('a chatty run: one draw per frame at most, the log appended, never rebuilt, and exact', async () => {
        await openApp(`#/run/${encodeURIComponent('webui/chatty.yaml')}`);
        await page.waitForSelector('#run-submit');
        // Witnesses in the page from before the run: a frame counter, and every log
        // node added to or removed from the log.
        await page.evaluate(() => {
                const w = { frames: 0, added: 0, removed: 0, readded: 0, initial: 0,
                            rendersAt0: window.__itkTestStats.renders, eventsAt0: window.__itkTestStats.events };
                window.__w = w;
                const tick = () => { w.frames++; requestAnimationFrame(tick); };
                requestAnimationFrame(tick);
                const seen = new WeakSet();
                new MutationObserver((records) => {
                        for (const r of records) {
                                if (r.target.id !== 'log')
                                        continue;
                                for (const n of r.addedNodes) {
                                        if (!n.classList || !n.classList.contains('log-line'))
                                                continue;
                                        if (seen.has(n))
                                                w.readded++;
                                        seen.add(n);
                                        w.added++;
                                }
                                for (const n of r.removedNodes) {
                                        if (n.classList && n.classList.contains('log-line'))
                                                w.removed++;
                                }
                        }
                }).observe(document.getElementById('main'), { childList: true, subtree: true });
        });
        await page.click('#run-submit');
        await page.waitForURL(/#\/execution\/[0-9a-f-]+$/, { timeout: 10000 });
        const id = /#\/execution\/([0-9a-f-]+)$/.exec(page.url())[1];
        // Focus in the steps pane survives the redraws around it.
        await page.waitForSelector('li[data-step="answer"] summary', { timeout: 15000 });
        await page.focus('li[data-step="answer"] summary');
        await page.evaluate(() => { window.__focused = document.activeElement; });
        await page.waitForSelector('#detail-status[data-status="completed"]', { timeout: 60000 });
        await page.waitForSelector(`#log .log-msg:text-is("line ${CHATTY_LINES}")`, { timeout: 15000 });
        await settle(page);
        const w = await page.evaluate(() => ({ ...window.__w, renders: window.__itkTestStats.renders - window.__w.rendersAt0,
                                               events: window.__itkTestStats.events - window.__w.eventsAt0,
                                               focusKept: document.activeElement === window.__focused && window.__focused.isConnected,
                                               shown: [...document.querySelectorAll('#log .log-msg')].map((e) => e.textContent),
                                               atEnd: (() => { const l = document.getElementById('log');
                                                               return l.scrollHeight - l.scrollTop - l.clientHeight < 2; })() }));
        const server = await stack.api('GET', `/api/executions/${id}/log?max=2000`);
        const expected = server.body.lines.map((l) => l.message);
        console.log(`# frames ${w.frames}, renders ${w.renders}, events ${w.events}, log nodes +${w.added} -${w.removed}`);
        assert.ok(w.renders <= w.frames + 1, `drew ${w.renders} times in ${w.frames} frames`);
        assert.ok(w.events >= CHATTY_LINES, `events seen: ${w.events}`);
        assert.equal(w.readded, 0, 'no log node is added twice');
        assert.ok(w.added <= CHATTY_LINES + 10, `log nodes added: ${w.added} (one per line, not per frame)`);
        assert.equal(w.shown.length, 2000, 'LOG_MAX lines are kept');
        // Only the trim removes lines: what was there plus what came, less what is shown.
        assert.equal(w.removed, w.initial + w.added - w.shown.length, `removed ${w.removed}`);
        assert.deepEqual(w.shown, expected, 'the log shown is exactly the run\'s last 2000 lines');
        assert.ok(w.focusKept, 'focus stayed on the Outputs summary');
        assert.ok(w.atEnd, 'Follow keeps the log at its end');
        await checkPage(page, 'detail-chatty');
});

async function runToEnd(playbook) {
        const r = await stack.api('POST', '/api/executions', { playbook_path: playbook, parameters: {} });
        assert.equal(r.status, 201, JSON.stringify(r.body));
        const id = r.body.execution_id;
        for (;;) {
                const e = await stack.api('GET', `/api/executions/${id}`);
                if (['completed', 'failed', 'cancelled'].includes(e.body.status))
                        return { id, status: e.body.status };
                await new Promise((res) => setTimeout(res, 50));
        }
}

async function historyIds(query = '') {
        const ids = [];
        let cursor = '';
        do {
                const r = await stack.api('GET', `/api/history?limit=1000${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
                assert.equal(r.status, 200, JSON.stringify(r.body));
                ids.push(...r.body.runs.map((x) => x.execution_id));
                cursor = r.body.next_cursor;
        } while (cursor);
        return ids;
}

const rowIds = () => page.$$eval('#hist-rows tr', (trs) => trs.map((t) => t.dataset.execution));

test('history: more than a page, filters, search, delete and export', async () => {
        for (let i = 0; i < 52; i++)
                await runToEnd('e2e/two-logs.yaml');
        const tolerated = await runToEnd('webui/tolerated.yaml');
        const failed = await runToEnd('e2e/fails.yaml');
        assert.equal(failed.status, 'failed');
        const all = await historyIds();
        assert.ok(all.length >= 54, `history holds ${all.length}`);

        await openApp();
        await page.click('#nav-history');
        await page.waitForSelector('#hist-rows tr');
        await page.waitForSelector('#hist-more:not([hidden])');
        assert.equal((await rowIds()).length, 50);
        assert.equal(await page.getAttribute('#nav-history', 'aria-current'), 'page');
        // Load more until the end: every run once, newest first, as the API has them.
        while (await page.isVisible('#hist-more')) {
                const n = (await rowIds()).length;
                await page.click('#hist-more');
                await page.waitForFunction((k) => document.querySelectorAll('#hist-rows tr').length > k ||
                                                   document.getElementById('hist-more').hidden, n);
        }
        assert.deepEqual(await rowIds(), all);
        // Each row: a result badge and a duration.
        const cells = await page.$$eval('#hist-rows tr', (trs) => trs.map((t) => ({
                status: t.dataset.status, badge: t.querySelector('.badge')?.textContent,
                duration: t.querySelector('.hist-duration').textContent })));
        for (const c of cells) {
                assert.ok(c.badge.startsWith(c.status), JSON.stringify(c));
                assert.match(c.duration, /\d+(\.\d+)? (ms|s)|min/, JSON.stringify(c));
        }
        await page.waitForSelector(`#hist-rows tr[data-execution="${failed.id}"] .hist-error.error`);
        await checkPage(page, 'history');

        // Status: the address keeps the filter, the rows follow it.
        await page.selectOption('#hist-status', 'failed');
        await page.waitForURL(/#\/history\?status=failed$/);
        await page.waitForFunction(() => [...document.querySelectorAll('#hist-rows tr')].every((t) => t.dataset.status === 'failed') &&
                                          document.querySelectorAll('#hist-rows tr').length > 0);
        assert.deepEqual(await rowIds(), await historyIds('&status=failed'));
        // Search, case-insensitive, on the playbook name.
        await page.selectOption('#hist-status', '');
        await page.fill('#hist-q', 'toleRATED');
        await page.click('#hist-apply');
        await page.waitForURL(/q=toleRATED/);
        await page.waitForFunction((id) => {
                const rows = [...document.querySelectorAll('#hist-rows tr')];
                return rows.length === 1 && rows[0].dataset.execution === id;
        }, tolerated.id);
        // Playbook, then dates: nothing from tomorrow on.
        await page.goto(`${stack.base}/#/history?playbook=${encodeURIComponent('e2e/fails.yaml')}`);
        await page.waitForSelector(`#hist-rows tr[data-execution="${failed.id}"]`);
        assert.deepEqual(await rowIds(), await historyIds(`&playbook=${encodeURIComponent('e2e/fails.yaml')}`));
        const tomorrow = new Date(Date.now() + 86400e3);
        const day = `${tomorrow.getFullYear()}-${String(tomorrow.getMonth() + 1).padStart(2, '0')}-${String(tomorrow.getDate()).padStart(2, '0')}`;
        await page.fill('#hist-since', day);
        await page.dispatchEvent('#hist-since', 'change');
        await page.waitForSelector('#hist-summary:text("No runs match.")');
        assert.equal((await rowIds()).length, 0);

        // Delete: confirmed, gone from the page and from the daemon.
        await page.goto(`${stack.base}/#/history?status=failed`);
        await page.waitForSelector(`#hist-rows tr[data-execution="${failed.id}"]`);
        page.once('dialog', (d) => d.accept());
        await page.click(`button[data-delete="${failed.id}"]`);
        await page.waitForSelector(`#hist-rows tr[data-execution="${failed.id}"]`, { state: 'detached' });
        assert.equal((await stack.api('GET', `/api/executions/${failed.id}`)).status, 404);
        // Dismissed: nothing happens.
        const keep = (await rowIds())[0];
        if (keep) {
                page.once('dialog', (d) => d.dismiss());
                await page.click(`button[data-delete="${keep}"]`);
                await settle(page);
                assert.equal((await stack.api('GET', `/api/executions/${keep}`)).status, 200);
        }

        // Export: the whole filtered set as JSON, beyond one page.
        await page.goto(`${stack.base}/#/history?status=completed`);
        await page.waitForSelector('#hist-rows tr');
        const [download] = await Promise.all([page.waitForEvent('download'), page.click('#hist-export')]);
        const { readFile } = await import('node:fs/promises');
        const doc = JSON.parse(await readFile(await download.path(), 'utf8'));
        assert.equal(doc.truncated, false);
        assert.deepEqual(doc.filter, { status: 'completed' });
        assert.deepEqual(doc.runs.map((r) => r.execution_id), await historyIds('&status=completed'));
        assert.ok(doc.runs.length > 50, `exported ${doc.runs.length}`);
        await page.waitForSelector('#hist-export-msg:text("Exported")');
});

test('polish: tolerated failures, tracebacks, unknown runs, field errors, favicon, dark and phone', async () => {
        await startFromPage('webui/tolerated.yaml');
        await page.waitForSelector('#detail-status[data-status="completed"]', { timeout: 20000 });
        await page.waitForSelector('li[data-step="flaky"].tolerated .tag-warn:text("failure tolerated")');
        await page.waitForSelector('li[data-step="after"][data-status="completed"]');
        const err = await page.$eval('li[data-step="flaky"] .step-error', (e) => ({
                text: e.textContent, ws: getComputedStyle(e).whiteSpace }));
        assert.match(err.text, /^Tolerated \(on_failure: continue\)/);
        assert.equal(err.ws, 'pre-wrap', 'tracebacks keep their lines');
        assert.doesNotMatch(await page.innerText('#steps'), /\bnull\b/, 'no empty part shows as "null"');
        await checkPage(page, 'detail-tolerated');

        // Phone: the page scrolls, steps and log get room.
        await page.setViewportSize({ width: 390, height: 844 });
        await settle(page);
        const phone = await page.evaluate(() => ({
                scrolls: document.scrollingElement.scrollHeight > window.innerHeight,
                log: document.getElementById('log').getBoundingClientRect().height,
                steps: document.querySelector('.steps-pane').getBoundingClientRect().width,
                overflowX: document.scrollingElement.scrollWidth > window.innerWidth + 1,
        }));
        assert.ok(phone.scrolls, 'the page scrolls on a phone');
        assert.ok(phone.log >= 300, `log height ${phone.log}`);
        assert.ok(phone.steps >= 0.85 * 390, `steps width ${phone.steps}`);
        assert.ok(!phone.overflowX, 'no sideways scrolling');
        await page.setViewportSize({ width: 1280, height: 800 });

        // Dark theme follows the system.
        const bg = () => page.evaluate(() => getComputedStyle(document.getElementById('main')).backgroundColor);
        const light = await bg();
        await page.emulateMedia({ colorScheme: 'dark' });
        const dark = await bg();
        await page.emulateMedia({ colorScheme: 'light' });
        const lum = (c) => { const [r, g, b] = c.match(/\d+/g).map(Number); return (r + g + b) / 3; };
        assert.ok(lum(light) > 200 && lum(dark) < 60, `light ${light}, dark ${dark}`);

        // A run the daemon does not know: a page of its own.
        await page.evaluate(() => { location.hash = '#/execution/00000000-0000-4000-8000-000000000000'; });
        await page.waitForSelector('#unknown-run h2:text("Unknown execution")');
        assert.equal(await page.$$eval('button[data-action]', (b) => b.length), 0, 'no dead controls');
        await checkPage(page, 'unknown-run');

        // Field errors are tied to their inputs.
        await page.evaluate(() => { location.hash = `#/run/${encodeURIComponent('e2e/showcase.yaml')}`; });
        await page.waitForSelector('#run-submit');
        await page.fill('[data-param="count"] input', '5');
        await page.fill('[data-param="modules"] textarea', '[not json');
        await page.click('#run-submit');
        await page.waitForSelector('[data-param="modules"] textarea[aria-invalid="true"]');
        const described = await page.$eval('[data-param="modules"] textarea', (t) =>
                t.getAttribute('aria-describedby').split(' ').map((id) => document.getElementById(id)?.textContent || '').join(' | '));
        assert.match(described, /Not valid JSON/);
        await checkPage(page, 'run-form-error');

        // The home page, and the favicon.
        await page.evaluate(() => { location.hash = '#/'; });
        await checkPage(page, 'home');

        // The focus ring stands out from the panel (3:1 at least), light and dark.
        for (const scheme of ['light', 'dark']) {
                await page.emulateMedia({ colorScheme: scheme });
                await page.focus('.pb-link');
                await page.keyboard.press('Tab');
                const ring = await page.evaluate(() => {
                        const lum = (c) => {
                                const v = c.match(/[\d.]+/g).slice(0, 3).map((x) => {
                                        const n = Number(x) / 255;
                                        return n <= 0.03928 ? n / 12.92 : ((n + 0.055) / 1.055) ** 2.4;
                                });
                                return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
                        };
                        const el = document.activeElement;
                        const st = getComputedStyle(el);
                        const a = lum(st.outlineColor);
                        const b = lum(getComputedStyle(el.closest('.side-section')).backgroundColor);
                        return { visible: el.matches(':focus-visible'), style: st.outlineStyle, width: parseFloat(st.outlineWidth),
                                 ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) };
                });
                assert.ok(ring.visible && ring.style === 'solid' && ring.width >= 2, JSON.stringify(ring));
                assert.ok(ring.ratio >= 3, `${scheme}: focus ring contrast ${ring.ratio.toFixed(2)}`);
        }
        await page.emulateMedia({ colorScheme: 'light' });
        const icon = await page.getAttribute('link[rel="icon"]', 'href');
        const r = await fetch(new URL(icon, `${stack.base}/`));
        assert.equal(r.status, 200);
        assert.match(r.headers.get('content-type'), /^image\/svg\+xml/);
});

test('the auth banner: no token, laid out and accessible', async () => {
        await page.goto(`${stack.base}/`);
        await page.waitForSelector('#auth-error:not([hidden])');
        const box = await page.$eval('#auth-error', (e) => ({ display: getComputedStyle(e).display, text: e.textContent }));
        assert.equal(box.display, 'block');
        assert.match(box.text, /Not authorized\. No access token was given\. Open the address printed by/);
        assert.match(await page.textContent('#main'), /without a valid access token/);
        await checkPage(page, 'auth-banner');
});

test('the token stays out of the console while the bridge is away', async () => {
        await openApp();
        await stack.stopBridge();
        await page.waitForSelector('#conn.conn-reconnecting', { timeout: 5000 });
        // Wait for a failed WebSocket attempt to be reported: the check below could fail.
        const deadline = Date.now() + 20000;
        while (!consoleText.some((t) => /WebSocket/.test(t))) {
                assert.ok(Date.now() < deadline, `no failed WebSocket reported: ${consoleText.join('\n')}`);
                await new Promise((res) => setTimeout(res, 100));
        }
        await stack.restartBridge();
        await page.click('#conn-retry', { timeout: 2000 }).catch(() => {});
        await page.waitForSelector('#conn.conn-connected', { timeout: 15000 });
        assert.ok(!consoleText.some((t) => t.includes(stack.token)), consoleText.join('\n'));
});

test('logview: late lines land in order, trimming leaves the lines in view where they are', async () => {
        await openApp();
        const r = await page.evaluate(async () => {
                const { LogModel, drawLog } = await import('./logview.js');
                const box = document.createElement('div');
                box.style.cssText = 'height:200px; overflow:auto; overflow-anchor:none; font:12px monospace';
                document.body.append(box);
                const m = new LogModel(100);
                const line = (i, usec = i * 10) => ({ usec, priority: 6, step_id: 's', message: `m${i}` });
                m.add(Array.from({ length: 80 }, (_, i) => line(i)));
                drawLog(m, box, false);
                const first = box.querySelector('.log-line');
                // Late lines: one between 10 and 20, one before everything.
                m.add([line(1000, 15), line(1001, -5)]);
                drawLog(m, box, false);
                const order = [...box.querySelectorAll('.log-msg')].slice(0, 4).map((e) => e.textContent);
                const kept = box.querySelector('.log-line:nth-child(2)') === first;
                // Scroll to the middle and note the line at the top of the view.
                box.scrollTop = 600;
                const top = () => {
                        const y = box.getBoundingClientRect().top;
                        return [...box.querySelectorAll('.log-line')].find((e) => e.getBoundingClientRect().bottom > y + 1);
                };
                const at = top();
                const offset = at.getBoundingClientRect().top;
                // 30 more: 12 are trimmed from the top, out of view.
                m.add(Array.from({ length: 30 }, (_, i) => line(100 + i, 10000 + i)));
                drawLog(m, box, false);
                const still = top();
                const result = { order, kept, same: still === at, moved: Math.abs(at.getBoundingClientRect().top - offset),
                                 count: box.querySelectorAll('.log-line').length };
                box.remove();
                return result;
        });
        assert.deepEqual(r.order, ['m1001', 'm0', 'm1', 'm1000']);
        assert.ok(r.kept, 'existing nodes stay, the late one goes before them');
        assert.equal(r.count, 100);
        assert.ok(r.same && r.moved < 2, `the line in view stayed (${JSON.stringify(r)})`);
});
