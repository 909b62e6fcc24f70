// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The accessibility and screenshot pass every page of the web UI goes through:
// axe-core (no serious or critical violation) and a screenshot at desktop and phone
// widths, in the light and the dark scheme. Use it from any e2e test:
//
//   import { checkPage } from './a11y.mjs';
//   await checkPage(page, 'history');   // throws listing the violations
//
// Screenshots go to ARTIFACTS (ITK_E2E_ARTIFACTS; meson sets build/tests/e2e/artifacts)
// as NAME-desktop.png, NAME-phone.png and NAME-desktop-dark.png.

import { createRequire } from 'node:module';
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { ARTIFACTS } from './harness.mjs';

const require = createRequire(import.meta.url);
const AXE_PATH = require.resolve('axe-core/axe.min.js');

export const VIEWPORTS = [
        { suffix: 'desktop', width: 1280, height: 800, scheme: 'light' },
        { suffix: 'phone', width: 390, height: 844, scheme: 'light' },
        { suffix: 'desktop-dark', width: 1280, height: 800, scheme: 'dark' },
];

const BLOCKING = new Set(['serious', 'critical']);

// Waits for two animation frames: the page draws at most once per frame.
export async function settle(page) {
        await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

// Runs axe on the page as it is; returns the serious and critical violations.
export async function axeViolations(page, { exclude = [] } = {}) {
        if (!(await page.evaluate(() => !!window.axe)))
                await page.addScriptTag({ path: AXE_PATH });
        const result = await page.evaluate(async (excl) => {
                const r = await window.axe.run({ exclude: excl.map((s) => [s]) },
                                               { resultTypes: ['violations'] });
                return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                                                  nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary}`) }));
        }, exclude);
        return result.filter((v) => BLOCKING.has(v.impact));
}

// axe at each viewport and scheme, a screenshot of each. Restores the viewport and
// the light scheme. Throws an Error listing every blocking violation found.
export async function checkPage(page, name, { exclude = [], fullPage = true, viewports = VIEWPORTS } = {}) {
        mkdirSync(ARTIFACTS, { recursive: true });
        const before = page.viewportSize();
        const found = [];
        try {
                for (const vp of viewports) {
                        await page.setViewportSize({ width: vp.width, height: vp.height });
                        await page.emulateMedia({ colorScheme: vp.scheme });
                        await settle(page);
                        await page.screenshot({ path: path.join(ARTIFACTS, `${name}-${vp.suffix}.png`), fullPage });
                        for (const v of await axeViolations(page, { exclude }))
                                found.push(`[${vp.suffix}] ${v.impact} ${v.id}: ${v.help}\n    ${v.nodes.join('\n    ')}`);
                }
        } finally {
                await page.emulateMedia({ colorScheme: 'light' });
                if (before)
                        await page.setViewportSize(before);
        }
        if (found.length)
                throw new Error(`accessibility violations on ${name}:\n${found.join('\n')}`);
}
