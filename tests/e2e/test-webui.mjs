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
        const id = await startFromPage('webui/chatty.yaml');
        await page.waitForSelector('#log');
        // Witnesses in the page: a frame counter, and every log node added or removed.
        await page.evaluate(() => {
                const w = { frames: 0, added: 0, removed: 0, readded: 0, rendersAt0: window.__itkTestStats.renders,
                            eventsAt0: window.__itkTestStats.events,
                            initial: document.querySelectorAll('#log .log-line').length };
                window.__w = w;
                const tick = () => { w.frames++; requestAnimationFrame(tick); };
                requestAnimationFrame(tick);
                const seen = new WeakSet();
                new MutationObserver((records) => {
                        for (const r of records) {
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
                }).observe(document.getElementById('log'), { childList: true });
        });
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
        assert.ok(w.events >= CHATTY_LINES / 2, `events seen: ${w.events}`);
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
