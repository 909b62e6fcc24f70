// SPDX-License-Identifier: LGPL-2.1-or-later
//
// How long the page agent's queries take on a large page (a wait re-runs its
// query on every mutation batch), next to Playwright's engine on the same page.
// Prints one JSON object per selector.
//
//   node bench-page-agent.mjs [ELEMENT_ROWS]   (exit 77: node_modules or chromium missing)

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { HERE, ROOT, CHROMIUM, browserOptions } from './harness.mjs';

if (!existsSync(path.join(HERE, 'node_modules', 'playwright-core')) || !existsSync(CHROMIUM)) {
        console.log('SKIP: run `npm ci` in tests/e2e and install chromium');
        process.exit(77);
}
const { chromium } = await import('playwright-core');
const AGENT = readFileSync(path.join(ROOT, 'daemon', 'steps', 'browser', 'itk-page-agent.js'), 'utf8');
const ROWS = Number(process.argv[2] || 1000);
const RUNS = 20;

const browser = await chromium.launch(browserOptions());
const page = await browser.newPage();
await page.setContent('<nav><a class="login-link" href="/login">Login</a></nav><div id="root"></div>');
await page.evaluate((rows) => {
        let html = '';
        for (let i = 0; i < rows; i++)
                html += `<div class="row r${i}"><span>Item ${i}</span><button data-i="${i}">Action ${i}</button>` +
                        `<input name="f${i}"><a href="/x${i}">link</a></div>`;
        document.getElementById('root').innerHTML = html;
}, ROWS);
await page.evaluate(AGENT);
const elements = await page.evaluate(() => document.querySelectorAll('*').length);
const last = ROWS - 1;
const selectors = [
        `button[data-i="${last}"]`,
        `text=Action ${last}`,
        `button:has-text("Action ${last}")`,
        `div.row >> button:has-text("Action 5")`,
        `a.login-link, a[href*="x${last}"], nav a:has-text("Login")`,
];
for (const selector of selectors) {
        const agent = await page.evaluate(([s, n]) => {
                const t0 = performance.now();
                let k = 0;
                for (let i = 0; i < n; i++)
                        k = __itkAgent.resolveAll(s).length;
                return { ms: (performance.now() - t0) / n, k };
        }, [selector, RUNS]);
        const t0 = performance.now();
        for (let i = 0; i < 5; i++)
                await page.locator(selector).count();
        const playwrightMs = (performance.now() - t0) / 5;
        console.log(JSON.stringify({ bench: 'page-agent-resolveAll', elements, selector, matches: agent.k,
                                     agent_ms: +agent.ms.toFixed(2),
                                     playwright_roundtrip_ms: +playwrightMs.toFixed(2) }));
}
await browser.close();
