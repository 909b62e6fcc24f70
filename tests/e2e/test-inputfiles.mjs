// SPDX-License-Identifier: LGPL-2.1-or-later
//
// File parameters in the run form (client/web/inputfiles.js) against the real daemon
// and bridge: a file uploaded from the form shows its size and SHA-256 and the run's
// script hashes the same bytes inside the run's folder; a file chosen from the
// server's allowed folder does the same; no field takes a typed path. axe-core on the
// form, screenshots at desktop and phone widths.
//
//   node test-inputfiles.mjs   (exit 77 = skipped: node_modules or chromium missing)

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HERE, CHROMIUM, LIBRARY, Stack, browserOptions } from './harness.mjs';

if (!existsSync(path.join(HERE, 'node_modules', 'playwright-core')) || !existsSync(CHROMIUM)) {
        console.log('SKIP: needs `npm ci` in tests/e2e and chromium');
        process.exit(77);
}

const { test, before, after } = await import('node:test');
const assert = (await import('node:assert/strict')).default;
const { chromium } = await import('playwright-core');
const { checkPage } = await import('./a11y.mjs');

const PLAYBOOK = 'e2e/install-module.yaml';
let stack;
let browser;
let inputs;

before(async () => {
        inputs = mkdtempSync(path.join(os.tmpdir(), 'itk-e2e-inputs-'));
        mkdirSync(path.join(inputs, 'modules'));
        writeFileSync(path.join(inputs, 'modules', 'server-side.modl'), 'module from the server\n');
        LIBRARY[PLAYBOOK] = `name: Install a module file
version: "1.0"
group: E2E tests
description: Hashes the module file it is given, in the run's folder.
parameters:
  - name: module_file
    type: file
    description: The .modl to install
steps:
  - id: hash
    name: Hash the module
    type: utility.shell
    parameters:
      command: sha256sum {{ parameter.module_file }}
`;
        stack = await new Stack({ conf: `InputFileDirectories=${inputs}\n` }).start();
        browser = await chromium.launch(browserOptions());
});

after(async () => {
        if (browser)
                await browser.close();
        if (stack)
                await stack.stop();
        if (inputs)
                rmSync(inputs, { recursive: true, force: true });
});

async function openForm(page) {
        await page.goto(`${stack.base}/#token=${encodeURIComponent(stack.token)}`);
        await page.waitForSelector('#conn.conn-connected', { timeout: 10000 });
        await page.click(`a[href="#/run/${encodeURIComponent(PLAYBOOK)}"]`);
        await page.waitForSelector('#run-submit');
}

async function runAndLog(page) {
        await page.click('#run-submit');
        await page.waitForURL(/#\/execution\/[0-9a-f-]+$/, { timeout: 10000 });
        const id = /#\/execution\/([0-9a-f-]+)$/.exec(page.url())[1];
        await page.waitForSelector('#detail-status[data-status="completed"]', { timeout: 60000 });
        const log = await stack.api('GET', `/api/executions/${id}/log`);
        assert.equal(log.status, 200);
        return { id, text: log.body.lines.map((l) => l.message).join('\n') };
}

test('a file uploaded from the form reaches the run, with its checksum shown', async () => {
        const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
        const page = await context.newPage();
        const errors = [];
        page.on('pageerror', (e) => errors.push(e.message));
        try {
                await openForm(page);
                const box = page.locator('[data-param="module_file"]');
                // No typed path anywhere in the field.
                assert.equal(await box.locator('input[type="text"], textarea').count(), 0);
                // The required check points at the upload control.
                await page.click('#run-submit');
                await page.waitForSelector('[data-param="module_file"] .field-error:not(:empty)');
                assert.equal(await page.evaluate(() => document.activeElement.type), 'file');

                const bytes = Buffer.concat([Buffer.from('PK\u0003\u0004 e2e module '), Buffer.alloc(300 * 1024, 7)]);
                const digest = createHash('sha256').update(bytes).digest('hex');
                await box.locator('input[type="file"]').setInputFiles({ name: 'uploaded.modl', mimeType: 'application/octet-stream', buffer: bytes });
                await page.waitForSelector('[data-param="module_file"] .file-sha256', { timeout: 20000 });
                assert.equal(await box.locator('.file-sha256').textContent(), digest);
                assert.match(await box.locator('.file-chosen').textContent(), new RegExp(`uploaded\\.modl.*${bytes.length} bytes`));
                assert.match(await box.locator('input[type="hidden"]').inputValue(), /^staged:[0-9a-f]{32}$/);
                assert.equal(await box.locator('.field-error').textContent(), '', 'the earlier "Required." is gone');
                await checkPage(page, 'inputfiles-uploaded');

                const { id, text } = await runAndLog(page);
                const inside = path.join(stack.dir, 'state', 'runs', id.replace(/-/g, ''), 'inputs', 'module_file', 'uploaded.modl');
                assert.ok(text.includes(`${digest}  ${inside}`), `the script hashed the run's copy:\n${text}`);
                assert.ok(text.includes(`input file 'module_file': uploaded.modl, ${bytes.length} bytes, sha256 ${digest}`), text);
                assert.deepEqual(errors, [], 'no uncaught errors in the page');
        } finally {
                await context.close();
        }
});

test('a file chosen from the server’s folder reaches the run', async () => {
        const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
        const page = await context.newPage();
        const errors = [];
        page.on('pageerror', (e) => errors.push(e.message));
        try {
                await openForm(page);
                const box = page.locator('[data-param="module_file"]');
                await box.locator('.file-host-button').click();
                const item = box.locator('.file-host-item[data-name="modules/server-side.modl"]');
                await item.waitFor({ timeout: 10000 });
                assert.equal(await box.locator('.file-host-button').getAttribute('aria-expanded'), 'true');
                await checkPage(page, 'inputfiles-host-list');
                await item.click();
                await page.waitForSelector('[data-param="module_file"] .file-sha256', { timeout: 20000 });
                const digest = createHash('sha256').update('module from the server\n').digest('hex');
                assert.equal(await box.locator('.file-sha256').textContent(), digest);
                assert.equal(await box.locator('.file-host').isHidden(), true);
                assert.equal(await page.evaluate(() => document.activeElement.className), 'file-host-button');
                await checkPage(page, 'inputfiles-host-chosen');
                const { text } = await runAndLog(page);
                assert.ok(text.includes(digest), text);
                assert.ok(text.includes("input file 'module_file': server-side.modl, 23 bytes"), text);
                assert.deepEqual(errors, [], 'no uncaught errors in the page');
        } finally {
                await context.close();
        }
});
