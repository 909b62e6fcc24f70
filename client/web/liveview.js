// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The live view of a run's browser page, beside its steps: the bridge's WebSocket
// /ws/executions/ID/live relays the daemon's screencast (Execution.OpenLiveView) as
// binary messages, drawn on a canvas; while the run is paused (or in debug mode) a
// click, a wheel turn or a key on the picture goes to the page through
// POST api/executions/ID/input (Execution.SendInput).
//
// Each binary message is the daemon's own: u32 BE header length, u32 BE payload length,
// the JSON header, the payload (a JPEG for a frame, nothing for a status). Text
// messages are the bridge's: {type:"error", error, message} or {type:"ended"}.
//
// While paused the picture holds still, so the operator aims at a page that does not
// move; the frames that follow an input are drawn (for a moment), so its effect shows.

import { h as el, ensureStylesheet } from './dom.js';

const AFTER_INPUT_MS = 2000; // paused: frames drawn this long after an input
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

// One daemon message out of a binary WebSocket message: {header, payload} or null.
export function parseLiveMessage(buffer) {
        if (buffer.byteLength < 8)
                return null;
        const view = new DataView(buffer);
        const hlen = view.getUint32(0);
        const plen = view.getUint32(4);
        if (8 + hlen + plen > buffer.byteLength)
                return null;
        let header;
        try {
                header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, hlen)));
        } catch (e) {
                return null;
        }
        return { header, payload: new Uint8Array(buffer, 8 + hlen, plen) };
}

// Test and benchmark hook: what the panel received and drew.
// latencies: ms from Chromium drawing a frame to this page drawing it; arrivals: to its
// message arriving here (the last 1000 of each).
// decodes: ms from a frame's arrival to it drawn (decoding and drawing, this page's part).
export const liveStats = { received: 0, drawn: 0, lastDrawn: null, inputs: 0, refused: 0, latencies: [], arrivals: [],
                           decodes: [] };

function nowMicros() {
        return Math.round((performance.timeOrigin + performance.now()) * 1000);
}
window.__itkLiveStats = liveStats;

export class LivePanel {
        // @id: the run (dashed); @getToken: the bridge's bearer token.
        constructor(id, getToken) {
                ensureStylesheet('itk-liveview-css', 'liveview.css');
                this.id = id;
                this.getToken = getToken;
                this.run = null; // the run's summary, from the detail view
                this.ws = null;
                this.closedForGood = false;
                this.frame = null; // header of the frame on the canvas
                this.pending = null; // newest frame not yet decoded
                this.decoding = false;
                this.inputUntil = 0;
                this.disposed = false;
                this.canvas = el('canvas', { class: 'live-canvas', id: 'live-canvas', tabindex: '0', role: 'img',
                                             'aria-label': 'Live picture of the run\u2019s browser page',
                                             width: 16, height: 9 });
                this.canvas.addEventListener('click', (ev) => this.onClick(ev));
                this.canvas.addEventListener('contextmenu', (ev) => ev.preventDefault());
                this.canvas.addEventListener('wheel', (ev) => this.onWheel(ev), { passive: false });
                this.canvas.addEventListener('keydown', (ev) => this.onKey(ev));
                this.badge = el('span', { class: 'live-state', id: 'live-state' });
                this.where = el('p', { class: 'live-where muted mono', id: 'live-where' });
                this.message = el('p', { class: 'live-msg', id: 'live-msg', role: 'status', 'aria-live': 'polite' });
                this.hint = el('p', { class: 'live-hint muted small', id: 'live-hint' });
                this.element = el('section', { class: 'live-pane', id: 'live', 'aria-labelledby': 'live-heading', hidden: true },
                                  el('div', { class: 'pane-head live-head' },
                                     el('h3', { id: 'live-heading', text: 'Browser' }), this.badge),
                                  el('div', { class: 'live-stage' }, this.canvas),
                                  this.where, this.hint, this.message);
        }

        // The run's summary changed (status, debug mode): connect, freeze, or stop.
        update(run) {
                this.run = run || null;
                const st = run ? run.status : null;
                if (st && TERMINAL.has(st)) {
                        this.stop();
                } else if (st && !this.ws && !this.closedForGood) {
                        this.connect();
                }
                this.drawState();
        }

        steerable() {
                const r = this.run;
                return !!r && (r.status === 'paused' || (r.status === 'running' && !!r.debug_mode));
        }

        paused() {
                return !!this.run && this.run.status === 'paused';
        }

        drawState() {
                const r = this.run;
                let label = 'live';
                let cls = 'live';
                if (!r || TERMINAL.has(r.status)) {
                        label = 'ended';
                        cls = 'ended';
                } else if (r.status === 'paused') {
                        label = 'paused';
                        cls = 'paused';
                } else if (!this.frame) {
                        label = 'waiting';
                        cls = 'waiting';
                }
                this.badge.textContent = label === 'paused' ? 'Paused: picture frozen' : label === 'live' ? 'Live' : label === 'ended' ? 'Run ended' : 'Waiting for the page';
                this.badge.dataset.state = cls;
                this.element.dataset.state = cls;
                this.canvas.classList.toggle('steerable', this.steerable());
                if (this.refusal && this.steerable()) {
                        // Paused now: the refusal no longer holds.
                        this.refusal = false;
                        this.message.textContent = '';
                        this.message.classList.remove('error');
                }
                this.hint.textContent = this.steerable()
                        ? 'Click, scroll or type on the picture: it goes to the page.'
                        : r && !TERMINAL.has(r.status) ? 'Pause the run to click or type in the page.' : '';
                if (this.frame) {
                        this.canvas.setAttribute('aria-label', `Live picture of the run\u2019s browser page ${this.frame.url || ''}` +
                                                 (cls === 'paused' ? ' (paused)' : ''));
                        this.where.textContent = `${this.frame.url || ''}${this.frame.step ? ` \u00b7 step ${this.frame.step}` : ''}`;
                }
        }

        connect() {
                const token = this.getToken();
                if (!token || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(token)) {
                        this.showError('No valid access token: the live view cannot be shown.');
                        this.closedForGood = true;
                        return;
                }
                const url = new URL(`ws/executions/${encodeURIComponent(this.id)}/live`, location.href);
                url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
                url.hash = '';
                const ws = new WebSocket(url, ['itk.v1', `itk.token.${token}`]);
                ws.binaryType = 'arraybuffer';
                this.ws = ws;
                let opened = false;
                ws.addEventListener('open', () => { opened = true; });
                ws.addEventListener('message', (ev) => {
                        if (ws !== this.ws)
                                return;
                        if (typeof ev.data === 'string')
                                this.onText(ev.data);
                        else
                                this.onBinary(ev.data);
                });
                ws.addEventListener('close', () => {
                        if (ws !== this.ws)
                                return;
                        this.ws = null;
                        if (!opened) {
                                // A refused upgrade (a bad token, which the page's own
                                // connection reports, or a bridge without the live view):
                                // nothing to show.
                                this.closedForGood = true;
                        } else if (!this.closedForGood && this.run && !TERMINAL.has(this.run.status)) {
                                // The bridge went away: try again shortly.
                                setTimeout(() => { if (!this.disposed && !this.ws && !this.closedForGood) this.connect(); }, 2000);
                        }
                });
        }

        onText(text) {
                let msg;
                try {
                        msg = JSON.parse(text);
                } catch (e) {
                        return;
                }
                if (msg.type === 'error') {
                        this.closedForGood = true;
                        this.setShown(true);
                        this.showError(msg.error === 'AccessDenied'
                                ? `You may not view this run's browser: ${msg.message}`
                                : `Live view unavailable (${msg.error}): ${msg.message}`);
                } else if (msg.type === 'ended') {
                        this.closedForGood = true;
                        this.drawState();
                }
        }

        onBinary(buffer) {
                const m = parseLiveMessage(buffer);
                if (!m)
                        return;
                const h = m.header;
                if (h.type === 'status') {
                        // No page yet: nothing to show until a browser step opens one.
                        if (h.state === 'no-browser' && !this.frame)
                                this.setShown(false);
                        else if (h.state === 'waiting')
                                this.setShown(true);
                        this.element.dataset.status = h.state;
                        return;
                }
                if (h.type !== 'frame')
                        return;
                liveStats.received++;
                if (liveStats.arrivals.push((nowMicros() - h.timestamp) / 1000) > 1000)
                        liveStats.arrivals.shift();
                // Paused: the picture holds still, except right after an input.
                if (this.paused() && this.frame && performance.now() > this.inputUntil)
                        return;
                this.pending = { header: h, payload: m.payload, at: performance.now() };
                if (!this.decoding)
                        this.decodeNext();
        }

        async decodeNext() {
                while (this.pending && !this.disposed) {
                        const { header, payload, at } = this.pending;
                        this.pending = null;
                        this.decoding = true;
                        let bitmap;
                        try {
                                // Whole: decoding at the panel's size measured slower.
                                bitmap = await createImageBitmap(new Blob([payload], { type: 'image/jpeg' }));
                        } catch (e) {
                                continue; // a broken picture: wait for the next one
                        } finally {
                                this.decoding = false;
                        }
                        if (this.disposed) {
                                bitmap.close();
                                return;
                        }
                        if (this.canvas.width !== bitmap.width || this.canvas.height !== bitmap.height) {
                                this.canvas.width = bitmap.width;
                                this.canvas.height = bitmap.height;
                        }
                        this.canvas.getContext('2d').drawImage(bitmap, 0, 0);
                        bitmap.close();
                        const first = !this.frame;
                        this.frame = header;
                        this.setShown(true);
                        // Both wall clocks of this machine: µs since the epoch.
                        const drawnAt = nowMicros();
                        liveStats.drawn++;
                        liveStats.lastDrawn = { sequence: header.sequence, timestamp: header.timestamp,
                                                drawnAt, width: header.width, height: header.height };
                        if (liveStats.latencies.push((drawnAt - header.timestamp) / 1000) > 1000)
                                liveStats.latencies.shift();
                        if (liveStats.decodes.push(performance.now() - at) > 1000)
                                liveStats.decodes.shift();
                        this.canvas.dataset.sequence = String(header.sequence);
                        if (first || this.paused())
                                this.drawState();
                }
        }

        // Screen -> page (CSS px of the frame header), through the picture as drawn: the
        // canvas's content box with the bitmap fitted in it whole (object-fit: contain).
        // Null outside the picture.
        pagePoint(ev) {
                const c = this.canvas;
                const r = c.getBoundingClientRect();
                const scale = Math.min(c.clientWidth / c.width, c.clientHeight / c.height);
                const w = c.width * scale;
                const hgt = c.height * scale;
                const fx = (ev.clientX - (r.left + c.clientLeft + (c.clientWidth - w) / 2)) / w;
                const fy = (ev.clientY - (r.top + c.clientTop + (c.clientHeight - hgt) / 2)) / hgt;
                if (!(fx >= 0 && fx <= 1 && fy >= 0 && fy <= 1))
                        return null;
                return { x: Math.min(Math.round(fx * this.frame.width), this.frame.width - 1),
                         y: Math.min(Math.round(fy * this.frame.height), this.frame.height - 1) };
        }

        refuse() {
                liveStats.refused++;
                this.showError('The run is running: pause it to click or type in the page.');
                this.refusal = true;
        }

        async send(event) {
                if (!this.frame)
                        return;
                if (!this.steerable()) {
                        this.refuse();
                        return;
                }
                this.inputUntil = performance.now() + AFTER_INPUT_MS;
                liveStats.inputs++;
                try {
                        const res = await fetch(`api/executions/${encodeURIComponent(this.id)}/input`, {
                                method: 'POST', cache: 'no-store',
                                headers: { Authorization: `Bearer ${this.getToken()}`, 'Content-Type': 'application/json' },
                                body: JSON.stringify(event),
                        });
                        if (!res.ok) {
                                const body = await res.json().catch(() => ({}));
                                this.showError(`The page did not take it (${body.error || res.status}): ${body.message || ''}`);
                                return;
                        }
                        this.message.classList.remove('error');
                        this.message.textContent = event.kind === 'click'
                                ? `Clicked at ${event.x},${event.y}.`
                                : event.kind === 'key' ? 'Key sent.' : 'Scrolled.';
                } catch (e) {
                        this.showError(`The input could not be sent: ${e.message}`);
                }
        }

        onClick(ev) {
                if (!this.frame)
                        return;
                ev.preventDefault();
                const p = this.pagePoint(ev);
                if (!p)
                        return; // beside the picture
                const button = ev.button === 1 ? 'middle' : ev.button === 2 ? 'right' : 'left';
                this.send({ kind: 'click', x: p.x, y: p.y, button });
        }

        onWheel(ev) {
                if (!this.frame || !this.steerable())
                        return; // the page around scrolls as usual
                const p = this.pagePoint(ev);
                if (!p)
                        return;
                ev.preventDefault();
                // A wheel or touchpad sends many events: while one scroll is on its way,
                // the next ones add up into one.
                const scale = ev.deltaMode === 1 ? 40 : ev.deltaMode === 2 ? 800 : 1; // lines, pages
                const q = this.scrollQueued || { kind: 'scroll', x: p.x, y: p.y, dx: 0, dy: 0 };
                q.dx += ev.deltaX * scale;
                q.dy += ev.deltaY * scale;
                this.scrollQueued = q;
                if (!this.scrolling)
                        this.flushScroll();
        }

        async flushScroll() {
                this.scrolling = true;
                while (this.scrollQueued && !this.disposed) {
                        const q = this.scrollQueued;
                        this.scrollQueued = null;
                        q.dx = Math.round(q.dx);
                        q.dy = Math.round(q.dy);
                        await this.send(q);
                }
                this.scrolling = false;
        }

        onKey(ev) {
                // Tab leaves the picture, as everywhere; the rest goes to the page when steerable.
                if (!this.frame || ev.key === 'Tab' || ev.ctrlKey || ev.metaKey || ev.altKey)
                        return;
                if (!this.steerable()) {
                        if (ev.key.length === 1 || ev.key === 'Enter')
                                this.refuse();
                        return;
                }
                ev.preventDefault();
                const event = { kind: 'key', key: ev.key };
                if (ev.key.length === 1)
                        event.text = ev.key;
                this.send(event);
        }

        // Shown beside the steps; the detail body makes room for it.
        setShown(shown) {
                this.element.hidden = !shown;
                if (this.element.parentElement)
                        this.element.parentElement.classList.toggle('live-on', shown);
        }

        showError(text) {
                this.refusal = false;
                this.message.textContent = text;
                this.message.classList.add('error');
        }

        stop() {
                this.closedForGood = true;
                if (this.ws) {
                        const ws = this.ws;
                        this.ws = null;
                        ws.close();
                }
        }

        dispose() {
                this.disposed = true;
                this.stop();
                this.element.remove();
        }
}
