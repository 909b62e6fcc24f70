// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The run view's artifacts (client/web/artifacts.js) against the real daemon, bridge
// and gateway simulator: the gallery shows a step's screenshot, and a gateway backup
// downloads through the bridge byte for byte, live and after the run left the bus.
//
//   node test-artifacts.mjs   (exit 77 = skipped: node_modules, chromium or the simulator missing)

import { spawn } from 'node:child_process';
import { existsSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HERE, ARTIFACTS, CHROMIUM, LIBRARY, Stack, browserOptions } from './harness.mjs';

const SIM = process.env.ITK_GATEWAY_SIM;
if (!existsSync(path.join(HERE, 'node_modules', 'playwright-core')) || !existsSync(CHROMIUM) ||
    !SIM || !existsSync(SIM)) {
        console.log('SKIP: needs `npm ci` in tests/e2e, chromium and ITK_GATEWAY_SIM');
        process.exit(77);
}

const { test, before, after } = await import('node:test');
const assert = (await import('node:assert/strict')).default;
const { chromium } = await import('playwright-core');

const TOKEN = 'itk:e2e-artifacts-key';
let sim;
let simDir;
let stack;
let browser;

function startSim() {
        simDir = mkdtempSync(path.join(os.tmpdir(), 'itk-e2e-sim-'));
        sim = spawn(SIM, ['--state-dir', simDir, '--token', TOKEN], { stdio: ['ignore', 'pipe', 'ignore'] });
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

before(async () => {
        const url = await startSim();
        LIBRARY['e2e/artifacts.yaml'] = `name: Screenshot and backup
version: "1.0"
domain: gateway
group: E2E tests
steps:
  - id: open
    name: Open a page
    type: browser.navigate
    parameters:
      url: "data:text/html,<h1 style='color:teal'>Artifacts</h1>"
  - id: shot
    name: Take a screenshot
    type: browser.screenshot
    parameters:
      name: front
  - id: backup
    name: Back up the gateway
    type: gateway.backup
    parameters:
      gateway_url: ${url}
      token: ${TOKEN}
      path: site.gwbk
`;
        // Finished runs leave the bus after 3 s: the same view from history.
        stack = await new Stack({ retention: 3 }).start();
        browser = await chromium.launch(browserOptions());
});

after(async () => {
        if (browser)
                await browser.close();
        if (stack)
                await stack.stop();
        if (sim)
                sim.kill('SIGTERM');
        if (simDir)
                rmSync(simDir, { recursive: true, force: true });
});

test('the gallery shows the screenshot and the backup downloads byte for byte', async () => {
        const context = await browser.newContext({ viewport: { width: 1366, height: 900 }, acceptDownloads: true });
        const page = await context.newPage();
        const errors = [];
        page.on('pageerror', (e) => errors.push(e.message));
        try {
                await page.goto(`${stack.base}/#token=${encodeURIComponent(stack.token)}`);
                await page.waitForSelector('#conn.conn-connected', { timeout: 10000 });
                await page.click(`a[href="#/run/${encodeURIComponent('e2e/artifacts.yaml')}"]`);
                await page.waitForSelector('#run-submit');
                await page.click('#run-submit');
                await page.waitForURL(/#\/execution\/[0-9a-f-]+$/, { timeout: 10000 });
                const id = /#\/execution\/([0-9a-f-]+)$/.exec(page.url())[1];
                await page.waitForSelector('#detail-status[data-status="completed"]', { timeout: 60000 });

                const runDir = path.join(stack.dir, 'state', 'runs', id.replace(/-/g, ''));
                const check = async (when) => {
                        // The screenshot, loaded and decoded, under its step.
                        const img = await page.waitForSelector('.artifact-step[data-step="shot"] img[data-artifact="front.png"]', { timeout: 20000 });
                        await page.waitForFunction((e) => e.complete && e.naturalWidth > 0, img, { timeout: 20000 });
                        const size = await img.evaluate((e) => [e.naturalWidth, e.naturalHeight]);
                        assert.ok(size[0] > 100 && size[1] > 100, `screenshot shown at ${size}`);
                        await page.screenshot({ path: path.join(ARTIFACTS, `artifacts-${when}.png`) });
                        // The backup, downloaded through the bridge.
                        const [download] = await Promise.all([
                                page.waitForEvent('download', { timeout: 20000 }),
                                page.click('#artifact-files button[data-download="site.gwbk"]'),
                        ]);
                        assert.equal(download.suggestedFilename(), 'site.gwbk');
                        const got = readFileSync(await download.path());
                        const want = readFileSync(path.join(runDir, 'site.gwbk'));
                        assert.ok(want.length > 0);
                        assert.ok(got.equals(want), `${when}: downloaded ${got.length} bytes, the file has ${want.length}`);
                        // The screenshot's own download is the file too.
                        const [shotDownload] = await Promise.all([
                                page.waitForEvent('download', { timeout: 20000 }),
                                page.click('.artifact-shot button[data-download="front.png"]'),
                        ]);
                        assert.ok(readFileSync(await shotDownload.path()).equals(readFileSync(path.join(runDir, 'front.png'))));
                };
                await check('live');

                // Gone from the bus: the same, from history.
                const deadline = Date.now() + 20000;
                while ((await stack.api('GET', `/api/executions/${id}`)).body.path) {
                        assert.ok(Date.now() < deadline, 'the run never left the bus');
                        await new Promise((res) => setTimeout(res, 200));
                }
                await page.reload();
                await page.waitForSelector('#detail-status[data-status="completed"]', { timeout: 10000 });
                await check('history');
                assert.deepEqual(errors, [], 'no uncaught errors in the page');
        } finally {
                await context.close();
        }
});
