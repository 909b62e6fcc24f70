// SPDX-License-Identifier: LGPL-2.1-or-later
//
// bench-live-web: the live view end to end (docs/live-view.md, "In the web UI"). A run's
// 1920x1080 page animates every frame; the web UI's live panel (client/web/liveview.js)
// watches it through the bridge in headless Chromium. Prints JSON:
//
// - latency_ms: Chromium drew the frame (the header's timestamp) -> the web page drew it
//   on its canvas (after createImageBitmap + drawImage), p50/p95/max, with 1 watcher and
//   with 10 (the panel plus 9 more WebSockets of the same run that only count frames);
//   arrival_ms: the same to the WebSocket message arriving in the page (before decoding);
//   decode_draw_ms: from that arrival to drawn (the page's own part);
//   other_watchers_arrival_ms: to the arrival in the 9 other watchers (a page that only
//   counts frames);
// - bridge_cpu_percent: the bridge's CPU (percent of one core) in each case, and the
//   frames per second each watcher got;
// - load: the machine's load average before and after.
//
// --quick: short phases, checks only that frames flow (the 'bench' test suite). Exits 77
// without chromium or playwright-core. Real numbers want a release build
// (ITK_DAEMON, ITK_BRIDGE, ITK_MODULE_DIR of that build).

import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const E2E = path.join(HERE, '..', 'e2e');
const CHROMIUM = process.env.ITK_CHROMIUM || '/usr/bin/chromium';
if (!existsSync(path.join(E2E, 'node_modules', 'playwright-core')) || !existsSync(CHROMIUM)) {
        console.log('SKIP: needs `npm ci` in tests/e2e and chromium');
        process.exit(77);
}
process.env.ITK_E2E_ARTIFACTS ||= path.join(os.tmpdir(), 'itk-bench-live-web');
const { LIBRARY, Stack, browserOptions } = await import(path.join(E2E, 'harness.mjs'));
const { chromium } = await import(path.join(E2E, 'node_modules', 'playwright-core', 'index.mjs'));

const quick = process.argv.includes('--quick');
const secondsArg = process.argv.find((a) => a.startsWith('--seconds='));
const SECONDS = quick ? 2 : secondsArg ? Number(secondsArg.split('=')[1]) : 10;
const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux

// Changes every animation frame: the screencast always has something to send.
const PAGE = 'data:text/html,<body style="margin:0;font:80px sans-serif">' +
        '<div id=t style="padding:200px"></div><script>' +
        'function f(){t.textContent=Date.now();' +
        'document.body.style.background="hsl("+(Date.now()/10%25360)+",50%25,80%25)";' +
        'requestAnimationFrame(f)}f()</script></body>';

function cpuSeconds(pid) {
        const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
        return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

function summary(values) {
        const v = [...values].sort((a, b) => a - b);
        if (!v.length)
                return { frames: 0 };
        const at = (p) => v[Math.min(v.length - 1, Math.round(p / 100 * (v.length - 1)))];
        return { frames: v.length, p50: +at(50).toFixed(1), p95: +at(95).toFixed(1), max: +v[v.length - 1].toFixed(1) };
}

async function phase(stack, panel, extra) {
        await panel.evaluate(() => { window.__itkLiveStats.latencies.length = 0; window.__itkLiveStats.arrivals.length = 0; window.__itkLiveStats.decodes.length = 0; });
        const counts0 = extra ? await extra.evaluate(() => { window.__arrivals.length = 0; return window.__counts.slice(); }) : [];
        const drawn0 = await panel.evaluate(() => window.__itkLiveStats.drawn);
        const cpu0 = cpuSeconds(stack.bridge.pid);
        const t0 = performance.now();
        await new Promise((r) => setTimeout(r, SECONDS * 1000));
        const elapsed = (performance.now() - t0) / 1000;
        const cpu = (cpuSeconds(stack.bridge.pid) - cpu0) / elapsed * 100;
        const lat = await panel.evaluate(() => window.__itkLiveStats.latencies.slice());
        const arrivals = await panel.evaluate(() => window.__itkLiveStats.arrivals.slice());
        const decodes = await panel.evaluate(() => window.__itkLiveStats.decodes.slice());
        const drawn = await panel.evaluate(() => window.__itkLiveStats.drawn) - drawn0;
        const counts = extra ? await extra.evaluate(() => window.__counts.slice()) : [];
        const otherArrivals = extra ? await extra.evaluate(() => window.__arrivals.slice()) : [];
        const fps = counts.map((c, i) => (c - counts0[i]) / elapsed);
        return {
                watchers: 1 + counts.length,
                seconds: +elapsed.toFixed(2),
                latency_ms: summary(lat),
                arrival_ms: summary(arrivals),
                decode_draw_ms: summary(decodes),
                panel_fps: +(drawn / elapsed).toFixed(1),
                other_watchers_fps_min: fps.length ? +Math.min(...fps).toFixed(1) : null,
                other_watchers_arrival_ms: extra ? summary(otherArrivals) : null,
                bridge_cpu_percent: +cpu.toFixed(2),
        };
}

const loadBefore = os.loadavg();
LIBRARY['bench/live.yaml'] = `name: Live bench
version: "1.0"
steps:
  - id: open
    name: Open an animated page
    type: browser.navigate
    parameters:
      url: '${PAGE}'
  - id: hold
    name: Hold
    type: utility.sleep
    parameters:
      seconds: 3600
`;
const stack = await new Stack().start();
let browser;
let code = 0;
try {
        const started = await stack.api('POST', '/api/executions', { playbook_path: 'bench/live.yaml', parameters: {} });
        if (started.status !== 201)
                throw new Error(`cannot start: ${JSON.stringify(started.body)}`);
        const id = started.body.execution_id;
        browser = await chromium.launch(browserOptions());
        const context = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
        const panel = await context.newPage();
        await panel.goto(`${stack.base}/#token=${encodeURIComponent(stack.token)}`);
        await panel.evaluate((i) => { location.hash = `#/execution/${i}`; }, id);
        await panel.waitForFunction(() => window.__itkLiveStats && window.__itkLiveStats.drawn >= 5, null, { timeout: 120000 });
        const size = await panel.evaluate(() => window.__itkLiveStats.lastDrawn);
        const one = await phase(stack, panel, null);

        // Nine more watchers of the same run: WebSockets that count frames, nothing more.
        const extra = await context.newPage();
        await extra.goto(`${stack.base}/health`);
        await extra.evaluate(({ i, token }) => {
                window.__counts = [];
                window.__arrivals = [];
                for (let n = 0; n < 9; n++) {
                        window.__counts.push(0);
                        const url = new URL(`/ws/executions/${i}/live`, location.href);
                        url.protocol = 'ws:';
                        const ws = new WebSocket(url, ['itk.v1', `itk.token.${token}`]);
                        ws.binaryType = 'arraybuffer';
                        ws.onmessage = (ev) => {
                                if (typeof ev.data === 'string')
                                        return;
                                window.__counts[n]++;
                                // The arrival of every frame, for the bridge's hop without decoding.
                                const hlen = new DataView(ev.data).getUint32(0);
                                const header = JSON.parse(new TextDecoder().decode(new Uint8Array(ev.data, 8, hlen)));
                                if (header.type === 'frame')
                                        window.__arrivals.push(((performance.timeOrigin + performance.now()) * 1000 - header.timestamp) / 1000);
                        };
                }
        }, { i: id, token: stack.token });
        await extra.waitForFunction(() => window.__counts.every((c) => c > 0), null, { timeout: 60000 });
        const ten = await phase(stack, panel, extra);

        await stack.api('POST', `/api/executions/${id}/cancel`);
        const result = {
                bench: 'live-web',
                quick,
                page: `${size.width}x${size.height} CSS px, animated every frame`,
                what: 'Chromium drew the frame -> the web page drew it on its canvas (through the bridge)',
                one_watcher: one,
                ten_watchers: ten,
                load_before: loadBefore.map((x) => +x.toFixed(2)),
                load_after: os.loadavg().map((x) => +x.toFixed(2)),
                cores: os.cpus().length,
        };
        console.log(JSON.stringify(result, null, 2));
        if (!one.latency_ms.frames || !ten.latency_ms.frames || !(ten.other_watchers_fps_min > 0))
                code = 1;
} catch (e) {
        console.error(e);
        code = 1;
} finally {
        if (browser)
                await browser.close();
        await stack.stop();
}
process.exit(code);
