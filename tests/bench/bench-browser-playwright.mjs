// SPDX-License-Identifier: LGPL-2.1-or-later
// The login cycle of bench-browser (navigate, fill, fill, click, verify) with
// playwright-core and the same /usr/bin/chromium, for comparison. Prints
// {"n": N, "median": ms}. Usage: node bench-browser-playwright.mjs URL N
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '..', 'e2e', 'package.json'));
const { chromium } = require('playwright-core');

const [url, count] = [process.argv[2], Number(process.argv[3] || 30)];
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-quic', '--disable-gpu'],
});
const context = await browser.newContext({ viewport: { width: 1920, height: 1080 },
                                           ignoreHTTPSErrors: true });
const page = await context.newPage();
async function cycle() {
  await page.goto(url, { waitUntil: 'load' });
  await page.fill('#username', 'admin');
  await page.fill('#password', 'password');
  await page.click('button.submit-button');
  await page.waitForSelector('.home-page', { state: 'visible', timeout: 10000 });
}
await cycle();
const times = [];
for (let i = 0; i < count; i++) {
  const t0 = performance.now();
  await cycle();
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({ n: times.length, median: Number(times[Math.floor(times.length / 2)].toFixed(1)) }));
await browser.close();
