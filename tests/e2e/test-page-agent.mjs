// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The page agent (daemon/steps/browser/itk-page-agent.js) in real Chromium:
// its selector dialect against Playwright's own engine on the same pages (the
// reference the old playbooks were written for), its actionability checks,
// and waits that run on mutations and animation frames, never on timers.
//
//   node test-page-agent.mjs   (exit 77 = skipped: node_modules or chromium missing)
//
// With ITK_GATEWAY_SIM (the simulator binary) the simulator's pages are
// compared too; with the compat playbooks, every selector they use.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { HERE, ROOT, CHROMIUM, browserOptions } from './harness.mjs';

if (!existsSync(path.join(HERE, 'node_modules', 'playwright-core')) || !existsSync(CHROMIUM)) {
        console.log('SKIP: run `npm ci` in tests/e2e and install chromium (tools/install-deps.sh --tests)');
        process.exit(77);
}

const { test, before, after } = await import('node:test');
const assert = (await import('node:assert/strict')).default;
const { chromium } = await import('playwright-core');
const { compatDir, compatSelectors } = await import('./compat.mjs');
const { Simulator } = await import('./sim.mjs');

const AGENT = readFileSync(path.join(ROOT, 'daemon', 'steps', 'browser', 'itk-page-agent.js'), 'utf8');
const FIXTURE = pathToFileURL(path.join(HERE, 'fixtures', 'agent-fixture.html')).href;

// Every form of the dialect, on the fixture page.
const DIALECT = [
        'button', 'nav a', 'nav > a', 'label + input', 'h1 ~ form', '.buttons button:not([disabled])',
        "input[placeholder*='username' i]", 'input[placeholder*="USERNAME"]', '#u, #p, nav',
        'p, h1', 'text=Login', 'text=login', 'text=  Welcome to  ignition ', "text='Login'",
        'text="Login"', 'text="login"', 'text=Download Backup', 'text="Download"', 'text=Deep Text',
        'text=Shadow Login', 'text=Login now', '"Login"', "'CONTINUE'",
        'button:has-text("Install")', 'button:has-text(\'restart\')', 'li:has-text("uninstall")',
        'div:has-text("Download Backup")', ':has-text("Deep")', 'label:has-text("I accept"):not(:has-text("certificate"))',
        'section div:has-text("login") em', 'nav >> text=Login', '.text-cases >> span',
        'main >> .buttons >> button:has-text("Reset")', 'text=Nested >> b', '.shadow-box button',
        'button.shadow-button', 'css=nav a.login-link', 'form >> input[type="submit"]',
        '.buttons :has-text("Install")', 'fieldset button', '[aria-disabled="true"] button',
        'div:has-text("Login"), span:has-text("login")', 'body', '*:has-text("operator")',
        "text=Don't save", 'text=save (draft)', ".text-cases >> text=Don't",
];

// Shared with tests/unit/test-selector.c: the C validator and the agent agree.
const CASES = JSON.parse(readFileSync(path.join(ROOT, 'tests', 'fixtures', 'selector-cases.json'), 'utf8'));

let browser;
let sim;

before(async () => {
        browser = await chromium.launch(browserOptions());
        if (process.env.ITK_GATEWAY_SIM)
                sim = await new Simulator().start();
});

after(async () => {
        if (browser)
                await browser.close();
        if (sim)
                await sim.stop();
});

async function openPage(url) {
        const context = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
        const page = await context.newPage();
        const errors = [];
        page.on('pageerror', (e) => errors.push(e.message));
        if (url)
                await page.goto(url);
        await page.evaluate(AGENT);
        // Numbers every element (shadow trees too) so both engines' answers compare.
        await page.evaluate(() => {
                let n = 0;
                const walk = (root) => {
                        for (const el of root.querySelectorAll('*')) {
                                el.__itkIndex = n++;
                                if (el.shadowRoot)
                                        walk(el.shadowRoot);
                        }
                };
                walk(document);
        });
        return { context, page, errors };
}

async function compare(page, selector) {
        const reference = await page.locator(selector).evaluateAll((els) => els.map((e) => e.__itkIndex));
        const ours = await page.evaluate((s) => __itkAgent.resolveAll(s).map((e) => e.__itkIndex), selector);
        assert.deepEqual(ours, reference, `'${selector}' matches what Playwright matches`);
        return reference.length;
}

test('every dialect form matches what Playwright matches', async () => {
        const { context, page } = await openPage(FIXTURE);
        let nonEmpty = 0;
        for (const s of DIALECT)
                nonEmpty += (await compare(page, s)) > 0 ? 1 : 0;
        assert.ok(nonEmpty >= DIALECT.length - 2, 'the fixture exercises the forms (they match something)');
        await context.close();
});

test('every compat playbook selector matches what Playwright matches', async (t) => {
        const dir = compatDir();
        if (!dir) {
                t.skip('no compat playbooks (ITK_COMPAT_PLAYBOOKS)');
                return;
        }
        const selectors = await compatSelectors(dir);
        const pages = [FIXTURE];
        if (sim)
                pages.push(...sim.pageUrls());
        for (const url of pages) {
                const { context, page } = await openPage(null);
                if (sim && url.startsWith(sim.url))
                        await sim.login(page);
                await page.goto(url);
                await page.evaluate(AGENT);
                await page.evaluate(() => {
                        let n = 0;
                        const walk = (root) => {
                                for (const el of root.querySelectorAll('*')) {
                                        el.__itkIndex = n++;
                                        if (el.shadowRoot)
                                                walk(el.shadowRoot);
                                }
                        };
                        walk(document);
                });
                for (const s of selectors)
                        await compare(page, s);
                await context.close();
        }
});

test('validate() and resolveAll() reject invalid selectors with the offset', async () => {
        const { context, page } = await openPage(FIXTURE);
        for (const { selector: sel, offset, message } of CASES.invalid) {
                const v = await page.evaluate((s) => __itkAgent.validate(s), sel);
                assert.ok(v, `'${sel}' is invalid`);
                assert.equal(v.offset, offset, `offset of the problem in '${sel}'`);
                assert.equal(v.message, message, `message for '${sel}'`);
                const err = await page.evaluate((s) => {
                        try {
                                __itkAgent.resolveAll(s);
                                return null;
                        } catch (e) {
                                return e.message;
                        }
                }, sel);
                assert.ok(err && err.startsWith('invalid selector: '), `resolveAll('${sel}') throws`);
                const rejected = await page.evaluate((s) => __itkAgent.waitFor(s, { state: 'attached' })
                        .then(() => null, (e) => e.message), sel);
                assert.ok(rejected && rejected.startsWith('invalid selector: '), `waitFor('${sel}') rejects at once`);
        }
        // CSS details only the browser judges (the C validator lets them through).
        const css = await page.evaluate(() => __itkAgent.validate('nav >> a:nth-child(x)'));
        assert.deepEqual(css, { message: "invalid CSS 'a:nth-child(x)'", offset: 7 });
        for (const s of [...DIALECT, ...CASES.valid])
                assert.equal(await page.evaluate((x) => __itkAgent.validate(x), s), null, `'${s}' is valid`);
        await context.close();
});

async function check(page, selector, state) {
        return page.evaluate(([s, st]) => __itkAgent.check(__itkAgent.resolve(s), st), [selector, state]);
}

test('visible, hidden, enabled, disabled, editable as Playwright defines them', async () => {
        const { context, page } = await openPage(FIXTURE);
        const cases = [
                ['#u', 'visible', true], ['#vis-hidden', 'visible', false], ['#display-none', 'visible', false],
                ['#parent-none', 'visible', false], ['#zero-size', 'visible', false], ['#display-none', 'hidden', true],
                ['#u', 'hidden', false], ['#u', 'enabled', true], ['#btn-fieldset', 'enabled', false],
                ['#in-fieldset', 'disabled', true], ['#in-legend', 'enabled', true], ['#aria-dis', 'disabled', true],
                ['#aria-parent-dis', 'disabled', true], ['button[disabled]', 'disabled', true],
                ['#ro', 'editable', false], ['#u', 'editable', true], ['#ta', 'editable', true],
                ['#ce', 'editable', true], ['#in-fieldset', 'editable', false], ['#chk', 'editable', false],
                ['.buttons button', 'editable', false], ['#u', 'attached', true],
        ];
        for (const [sel, state, ok] of cases) {
                const r = await check(page, sel, state);
                assert.equal(r.ok, ok, `${sel} ${state}: ${r.reason}`);
                if (!ok)
                        assert.ok(r.reason.length > 0, 'a failed check says why');
        }
        // Playwright's own verdicts on the same elements.
        for (const [sel, state] of [['#vis-hidden', 'visible'], ['#zero-size', 'visible'], ['#btn-fieldset', 'enabled'],
                                    ['#aria-dis', 'enabled'], ['#ro', 'editable'], ['#in-legend', 'enabled']]) {
                const loc = page.locator(sel).first();
                const ref = state === 'visible' ? await loc.isVisible()
                          : state === 'enabled' ? await loc.isEnabled() : await loc.isEditable();
                assert.equal((await check(page, sel, state)).ok, ref, `${sel} ${state} agrees with Playwright`);
        }
        await context.close();
});

test('hitTarget names the covering element; actionPoint is the centre', async () => {
        const { context, page } = await openPage(FIXTURE);
        const r = await page.evaluate(() => {
                const el = document.getElementById('covered');
                const p = __itkAgent.actionPoint(el);
                return { p, hit: __itkAgent.hitTarget(el, p.x, p.y), rect: el.getBoundingClientRect().toJSON() };
        });
        assert.equal(r.hit.ok, false, 'a covered element does not receive events');
        assert.match(r.hit.reason, /overlay/, 'the reason names the covering element');
        assert.ok(Math.abs(r.p.x - (r.rect.x + r.rect.width / 2)) < 1 && Math.abs(r.p.y - (r.rect.y + r.rect.height / 2)) < 1);
        const ok = await page.evaluate(() => {
                const el = document.querySelector('.submit-button');
                const p = __itkAgent.actionPoint(el);
                return __itkAgent.hitTarget(el, p.x, p.y);
        });
        assert.equal(ok.ok, true, ok.reason);
        const shadow = await page.evaluate(() => {
                const el = __itkAgent.resolve('.shadow-button');
                const p = __itkAgent.actionPoint(el);
                return __itkAgent.hitTarget(el, p.x, p.y);
        });
        assert.equal(shadow.ok, true, `a button in a shadow tree is its own hit target: ${shadow.reason}`);
        assert.equal(await page.evaluate(() => __itkAgent.actionPoint(document.getElementById('display-none'))), null);
        await context.close();
});

// Wraps the timer functions of the agent's world: any call is a defect.
async function forbidTimers(page) {
        await page.evaluate(() => {
                globalThis.__timerCalls = [];
                for (const name of ['setTimeout', 'setInterval']) {
                        const orig = globalThis[name];
                        globalThis[name] = function (...args) {
                                globalThis.__timerCalls.push(name);
                                return orig.apply(this, args);
                        };
                }
        });
}

test('waitFor resolves after a mutation, without timers', async () => {
        const { context, page } = await openPage(null);
        await page.setContent('<div id="root"></div>');
        await forbidTimers(page);
        await page.evaluate(AGENT);
        await page.evaluate(() => {
                globalThis.__waited = __itkAgent.waitFor('#late >> text=Ready', { state: 'visible' })
                        .then((el) => (el ? el.id : 'null'));
        });
        await page.waitForTimeout(200);
        assert.equal(await page.evaluate(() => __timerCalls.length), 0);
        await page.evaluate(() => {
                document.getElementById('root').innerHTML = '<section id="late"><p id="ready">Ready</p></section>';
        });
        assert.equal(await page.evaluate(() => __waited), 'ready', 'the element added later is found');
        // detached: resolves null once gone; attached with force for a hidden one.
        const detached = page.evaluate(() => __itkAgent.waitFor('#ready', { state: 'detached' }));
        await page.evaluate(() => document.getElementById('ready').remove());
        assert.equal(await detached, null);
        await page.evaluate(() => { document.getElementById('root').innerHTML = '<button id="b" style="display:none">B</button>'; });
        assert.equal(await page.evaluate(() => __itkAgent.waitFor('#b', { state: 'click', force: true }).then((e) => e.id)), 'b');
        const click = page.evaluate(() => __itkAgent.waitFor('#b', { state: 'click' }).then((e) => e.id));
        await page.evaluate(() => { document.getElementById('b').style.display = ''; });
        assert.equal(await click, 'b', 'click waits until the button is shown');
        const enabled = page.evaluate(() => __itkAgent.waitFor('#b', { state: 'enabled' }).then((e) => e && e.id));
        assert.equal(await enabled, 'b');
        await page.evaluate(() => { document.getElementById('b').disabled = true; });
        const enabledLater = page.evaluate(() => __itkAgent.waitFor('#b', { state: 'click' }).then((e) => e && e.id));
        await page.evaluate(() => { document.getElementById('b').disabled = false; });
        assert.equal(await enabledLater, 'b', 'click waits until the button is enabled');
        const hidden = page.evaluate(() => __itkAgent.waitFor('#b', { state: 'hidden' }));
        await page.evaluate(() => { document.getElementById('b').style.visibility = 'hidden'; });
        assert.equal(await hidden, null);
        await page.evaluate(() => {
                document.getElementById('root').innerHTML = '<input id="i" readonly>';
                globalThis.__fill = __itkAgent.waitFor('#i', { state: 'fill' }).then((e) => e && e.id);
        });
        await page.evaluate(() => document.getElementById('i').removeAttribute('readonly'));
        assert.equal(await page.evaluate(() => __fill), 'i', 'fill waits until editable');
        // An element added inside an existing shadow tree: the document's
        // observer does not see it, the agent must observe the shadow root too.
        await page.evaluate(() => {
                const host = document.createElement('div');
                host.id = 'shadow-host';
                host.attachShadow({ mode: 'open' }).innerHTML = '<p>empty</p>';
                document.getElementById('root').append(host);
                globalThis.__shadow = __itkAgent.waitFor('#shadow-host >> .late', { state: 'attached' })
                        .then((e) => e && e.className);
        });
        await page.waitForTimeout(100);
        await page.evaluate(() => {
                document.getElementById('shadow-host').shadowRoot.innerHTML += '<span class="late">x</span>';
        });
        const shadowResult = await Promise.race([page.evaluate(() => __shadow),
                                                 new Promise((r) => setTimeout(() => r('still waiting after 5 s'), 5000))]);
        assert.equal(shadowResult, 'late', 'a wait sees mutations inside shadow trees');
        assert.deepEqual(await page.evaluate(() => __timerCalls), [], 'the agent never calls setTimeout/setInterval');
        await context.close();
});

test('an element that animates then stops is clicked once stable', async () => {
        const { context, page, errors } = await openPage(FIXTURE);
        await forbidTimers(page);
        const r = await page.evaluate(async () => {
                const el = document.getElementById('slider');
                const t0 = performance.now();
                let ended = 0;
                el.addEventListener('animationend', () => { ended = performance.now(); });
                el.classList.add('sliding');
                await new Promise((r) => requestAnimationFrame(r));
                const unstable = await __itkAgent.check(el, 'stable');
                const got = await __itkAgent.waitFor('#slider', { state: 'click' });
                const at = performance.now();
                const stable = await __itkAgent.check(el, 'stable');
                return { unstable: unstable.ok, got: got === el, ended: ended - t0, at: at - t0, stable: stable.ok,
                         x: el.getBoundingClientRect().x };
        });
        assert.equal(r.unstable, false, 'moving: not stable');
        assert.equal(r.got, true);
        assert.ok(r.ended > 0 && r.at >= r.ended, 'resolved only after the animation ended');
        assert.equal(r.stable, true);
        assert.deepEqual(await page.evaluate(() => __timerCalls), []);
        assert.deepEqual(errors, []);
        await context.close();
});

test('abortWaits resolves every pending wait with null', async () => {
        const { context, page } = await openPage(FIXTURE);
        const r = await page.evaluate(async () => {
                const a = __itkAgent.waitFor('#never', { state: 'attached' });
                const b = __itkAgent.waitFor('#display-none', { state: 'visible' });
                const c = __itkAgent.waitFor('#u', { state: 'detached' });
                const n = __itkAgent.abortWaits();
                return { n, values: await Promise.all([a, b, c]), again: __itkAgent.abortWaits() };
        });
        assert.deepEqual(r, { n: 3, values: [null, null, null], again: 0 });
        await context.close();
});

test('prepareFill, text and attribute', async () => {
        const { context, page } = await openPage(FIXTURE);
        assert.deepEqual(await page.evaluate(() => __itkAgent.prepareFill(document.getElementById('sel'), 'Beta')), { kind: 'select' });
        assert.equal(await page.$eval('#sel', (e) => e.value), 'b');
        assert.deepEqual(await page.evaluate(() => __itkAgent.prepareFill(document.getElementById('u'), 'x')), { kind: 'input' });
        assert.equal(await page.evaluate(() => document.activeElement.id), 'u');
        await page.keyboard.insertText('admin');
        assert.equal(await page.$eval('#u', (e) => e.value), 'admin');
        await page.evaluate(() => __itkAgent.prepareFill(document.getElementById('u'), 'y'));
        await page.keyboard.insertText('second');
        assert.equal(await page.$eval('#u', (e) => e.value), 'second', 'the old content was selected and replaced');
        assert.deepEqual(await page.evaluate(() => __itkAgent.prepareFill(document.getElementById('ce'), 'z')), { kind: 'contenteditable' });
        await page.keyboard.insertText('new text');
        assert.equal(await page.$eval('#ce', (e) => e.textContent), 'new text');
        for (const id of ['ro', 'chk', 'btn-fieldset']) {
                const err = await page.evaluate((i) => {
                        try {
                                __itkAgent.prepareFill(document.getElementById(i), 'v');
                                return null;
                        } catch (e) {
                                return e.message;
                        }
                }, id);
                assert.ok(err, `#${id} cannot be filled`);
        }
        assert.equal(await page.evaluate(() => __itkAgent.text(document.querySelector('h1'))), 'Welcome to Ignition');
        assert.equal(await page.evaluate(() => __itkAgent.text(document.querySelector('.welcome-message'))),
                     await page.locator('.welcome-message').evaluate((e) => e.textContent.replace(/\s+/g, ' ').trim()));
        assert.equal(await page.evaluate(() => __itkAgent.attribute(document.getElementById('u'), 'name')), 'username');
        assert.equal(await page.evaluate(() => __itkAgent.attribute(document.getElementById('u'), 'nope')), null);
        await context.close();
});

test('discover inventories the interactive elements', async () => {
        const { context, page } = await openPage(FIXTURE);
        const r = await page.evaluate(() => __itkAgent.discover('body', [], ['nav']));
        assert.equal(r.root_selector, 'body');
        assert.equal(r.count, r.inventory.length);
        const types = new Set(r.inventory.map((c) => c.type));
        for (const t of ['button', 'input', 'checkbox', 'dropdown', 'link'])
                assert.ok(types.has(t), `finds ${t}s`);
        assert.ok(!r.inventory.some((c) => c.selector.includes('login-link') || c.text === 'Login'),
                  'excluded subtrees are left out');
        for (const c of r.inventory) {
                for (const k of ['type', 'selector', 'id', 'name', 'label', 'aria_label', 'text', 'component_path', 'visible', 'enabled', 'rect'])
                        assert.ok(k in c, `inventory entries have ${k}`);
                const n = await page.evaluate((s) => __itkAgent.resolveAll(s).length, c.selector);
                assert.equal(n, 1, `'${c.selector}' finds exactly one element`);
        }
        const onlyButtons = await page.evaluate(() => __itkAgent.discover('.buttons', ['button'], []));
        assert.ok(onlyButtons.count >= 7 && onlyButtons.inventory.every((c) => c.type === 'button'));
        const disabled = onlyButtons.inventory.find((c) => c.enabled === false);
        assert.ok(disabled, 'a disabled button is reported disabled');
        await context.close();
});

test('the agent in an isolated world: idempotent, no page globals', async () => {
        const { context, page } = await openPage(null);
        await page.goto(FIXTURE);
        const cdp = await context.newCDPSession(page);
        const { frameTree } = await cdp.send('Page.getFrameTree');
        const { executionContextId } = await cdp.send('Page.createIsolatedWorld', { frameId: frameTree.frame.id, worldName: 'itk' });
        const before = await page.evaluate(() => Object.getOwnPropertyNames(globalThis).length);
        const evalIn = (expression) => cdp.send('Runtime.evaluate', { expression, contextId: executionContextId, returnByValue: true, awaitPromise: true });
        await evalIn(AGENT);
        const first = await evalIn('globalThis.__itkAgent');
        await evalIn(AGENT);
        const same = await evalIn('(() => { const a = globalThis.__itkAgent; return a.version === 1 && Object.isFrozen(a); })()');
        assert.ok(first && same.result.value === true, 'evaluating twice keeps one agent');
        const n = await evalIn("__itkAgent.resolveAll('nav a:has-text(\"login\")').length");
        assert.equal(n.result.value, 1);
        assert.equal(await page.evaluate(() => typeof globalThis.__itkAgent), 'undefined', 'the page cannot see it');
        assert.equal(await page.evaluate(() => Object.getOwnPropertyNames(globalThis).length), before, 'no page global added');
        await context.close();
});

test('discover on the simulator\'s Perspective view finds its components', async (t) => {
        if (!sim) {
                t.skip('no simulator (ITK_GATEWAY_SIM)');
                return;
        }
        const { context, page } = await openPage(`${sim.url}/data/perspective/client/demo/main`);
        const r = await page.evaluate(() => __itkAgent.discover('body', [], []));
        const byPath = new Map(r.inventory.map((c) => [c.component_path, c]));
        assert.equal(byPath.get('root/MainPanel/Start').type, 'button');
        assert.equal(byPath.get('root/MainPanel/Locked').enabled, false);
        assert.equal(byPath.get('root/MainPanel/Setpoint').type, 'input');
        assert.equal(byPath.get('root/MainPanel/Mode').type, 'dropdown');
        assert.equal(byPath.get('root/MainPanel/Alarms').type, 'checkbox');
        assert.equal(byPath.get('root/MainPanel/Pump').type, 'toggle');
        assert.equal(byPath.get('root/AlarmsLink').type, 'link');
        assert.ok(r.inventory.some((c) => c.type === 'tab'), 'tabs');
        assert.ok(r.inventory.some((c) => c.type === 'component' && c.component_path === 'root/MainPanel'),
                  'containers with component markers');
        for (const c of r.inventory)
                assert.equal(await page.evaluate((s) => __itkAgent.resolveAll(s).length, c.selector), 1, c.selector);
        const buttons = await page.evaluate(() => __itkAgent.discover('.main-panel', ['button'], ['#locked-button']));
        assert.deepEqual(buttons.inventory.map((c) => c.id).sort(), ['action-button', 'submit-button']);
        assert.equal(buttons.root_selector, '.main-panel');
        await context.close();
});
