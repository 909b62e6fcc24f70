// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Ignition Toolkit web UI: talks to ignition-toolkit-bridge (HTTP + WebSocket).
//
// Rules this file keeps:
// - Status shown is server data only: WebSocket events, REST replies. Nothing is
//   changed optimistically; a control button is busy and disabled while its request
//   is in flight, and its enabled state follows the run's status as the server says.
// - Each control sends exactly one request; Cancel never sends anything else and
//   nothing here ever sends Resume on its own.
// - On every (re)connect the snapshot replaces all execution state; while the socket
//   is down, non-final statuses are marked as not live.
// - Events only change state and mark parts dirty; drawing happens at most once per
//   animation frame (renderX() schedules, drawX() draws), touching only what changed.

import { h } from './dom.js';
import { LogModel, drawLog, logStats } from './logview.js';
import { buildHistory, historyPlaybooksLoaded, parseHistoryQuery } from './history.js';

import { ArtifactsPane } from './artifacts.js';
import { LivePanel } from './liveview.js';

import * as library from './library.js';
import * as credentialsPage from './credentials.js';
import * as runctx from './runctx.js';
import * as inputfiles from './inputfiles.js';

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const TOKEN_KEY = 'itk-token';
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;
const LOG_MAX = 2000;
const SCRIPT_TYPES = new Set(['utility.python', 'utility.shell']);

const CONTROLS = [
        { action: 'pause', label: 'Pause', busy: 'Pausing…' },
        { action: 'resume', label: 'Resume', busy: 'Resuming…' },
        { action: 'skip', label: 'Skip', busy: 'Skipping…' },
        { action: 'skip_back', label: 'Skip back', busy: 'Going back…' },
        { action: 'cancel', label: 'Cancel', busy: 'Cancelling…', danger: true },
];

const state = {
        token: null,
        authFailed: false,
        conn: 'connecting', // connecting | connected | reconnecting | auth
        playbooks: null,
        credentials: [],
        executions: new Map(), // id -> ExecutionSummary (server data only)
        seq: new Map(), // id -> counter bumped by every event about that execution
        detail: null, // {id, steps, log: LogModel, stepNodes: Map, loaded, error}
        busy: new Set(), // "id:action" requests in flight
        openOutputs: new Set(),
        route: { view: 'home' },
};

class ApiError extends Error {
        constructor(status, name, message) {
                super(message);
                this.status = status;
                this.name_ = name;
        }
}

// --- small DOM helpers ------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

// Replaces @container's children, keeping keyboard focus on the element with the same
// data-key so live updates never steal focus from the user.
function replaceKeepFocus(container, nodes) {
        const active = document.activeElement;
        const key = active && container.contains(active) ? active.dataset.key : null;
        container.replaceChildren(...nodes);
        if (key) {
                const again = container.querySelector(`[data-key="${CSS.escape(key)}"]`);
                if (again)
                        again.focus();
        }
}

function fmtTime(usec) {
        if (!usec)
                return '—';
        const d = new Date(usec / 1000);
        const today = new Date();
        return d.toDateString() === today.toDateString() ? d.toLocaleTimeString()
                                                          : d.toLocaleString();
}

function fmtDuration(start, end) {
        if (!start)
                return '';
        const ms = Math.max(0, ((end || Date.now() * 1000) - start) / 1000);
        if (ms < 1000)
                return `${Math.round(ms)} ms`;
        const s = ms / 1000;
        if (s < 60)
                return `${s.toFixed(1)} s`;
        const m = Math.floor(s / 60);
        return `${m} min ${Math.round(s - m * 60)} s`;
}

// --- token and HTTP ---------------------------------------------------------------------

function takeToken() {
        const m = /^#token=([^&]*)(?:&(.*))?$/.exec(location.hash);
        if (m) {
                try {
                        sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
                } catch (e) {
                        // Storage disabled: keep it in memory for this page only.
                        state.token = decodeURIComponent(m[1]);
                }
                // Out of the address bar (and history) at once.
                history.replaceState(null, '',
                                     location.pathname + location.search + (m[2] ? `#${m[2]}` : ''));
        }
        try {
                return sessionStorage.getItem(TOKEN_KEY) || state.token;
        } catch (e) {
                return state.token;
        }
}

function showAuthError(message) {
        state.authFailed = true;
        state.conn = 'auth';
        const el = $('auth-error');
        el.replaceChildren(h('strong', { text: 'Not authorized. ' }), message,
                           ' Open the address printed by ',
                           h('code', { text: 'ignition-toolkit-bridge --print-url' }), '.');
        el.hidden = false;
        closeSocket();
        renderConn();
        if (state.route.view === 'home' && $('main').firstChild)
                buildHome();
}

async function api(method, path, body) {
        if (!state.token)
                throw new ApiError(401, 'Unauthorized', 'No access token');
        const init = { method, headers: { Authorization: `Bearer ${state.token}` }, cache: 'no-store' };
        if (body !== undefined) {
                init.headers['Content-Type'] = 'application/json';
                init.body = JSON.stringify(body);
        }
        let res;
        try {
                res = await fetch(path, init);
        } catch (e) {
                throw new ApiError(0, 'NetworkError', 'The bridge cannot be reached.');
        }
        let data = null;
        if (res.status !== 204) {
                try {
                        data = await res.json();
                } catch (e) {
                        data = null;
                }
        }
        if (res.status === 401) {
                showAuthError('The access token was refused.');
                throw new ApiError(401, 'Unauthorized', 'The access token was refused.');
        }
        if (!res.ok) {
                throw new ApiError(res.status, (data && data.error) || `HTTP ${res.status}`,
                                   (data && data.message) || res.statusText);
        }
        return data;
}

function notice(message, kind = 'error') {
        const el = $('notice');
        $('notice-text').textContent = message;
        el.className = `banner banner-${kind}`;
        el.hidden = false;
}

function clearNotice() {
        $('notice').hidden = true;
}

// --- frame-coalesced drawing -------------------------------------------------------------

const dirty = new Set(); // 'executions' | 'detail' | 'steps' | 'log'
let frameRequested = false;
// Read by the end-to-end tests: how often the page drew, and how the log changed.
const testStats = { renders: 0, events: 0, log: logStats };
window.__itkTestStats = testStats;

function invalidate(part) {
        dirty.add(part);
        if (frameRequested)
                return;
        frameRequested = true;
        requestAnimationFrame(drawFrame);
}

function drawFrame() {
        frameRequested = false;
        const parts = new Set(dirty);
        dirty.clear();
        testStats.renders++;
        if (parts.has('executions'))
                drawExecutions();
        const d = state.detail;
        if (!d || !dv.title)
                return;
        if (parts.has('detail'))
                drawDetail();
        if (parts.has('detail') || parts.has('steps'))
                drawSteps(d);
        if (parts.has('detail') || parts.has('log'))
                drawLog(d.log, dv.log, dv.autoscroll.checked);
}

function renderExecutions() {
        invalidate('executions');
}

function renderDetail() {
        invalidate('detail');
}

function renderSteps() {
        invalidate('steps');
}

// --- execution state --------------------------------------------------------------------

function bump(id) {
        state.seq.set(id, (state.seq.get(id) || 0) + 1);
}

function seqOf(id) {
        return state.seq.get(id) || 0;
}

// Merges server data about one execution. A final status is final: nothing moves a run
// out of it (defends against a reply that raced a newer event).
function patchExecution(id, fields) {
        const cur = state.executions.get(id);
        if (!cur) {
                if (fields.execution_id)
                        state.executions.set(id, { ...fields });
                return;
        }
        const next = { ...fields };
        if (TERMINAL.has(cur.status) && 'status' in next && next.status !== cur.status)
                delete next.status;
        Object.assign(cur, next);
}

function applyEvent(msg) {
        const id = msg.execution_id;
        testStats.events++;
        if (msg.type === 'snapshot') {
                // A fresh snapshot replaces everything we knew.
                state.executions = new Map();
                for (const e of msg.executions || []) {
                        state.executions.set(e.execution_id, { ...e });
                        bump(e.execution_id);
                }
                if (state.detail)
                        bump(state.detail.id);
                state.conn = 'connected';
                reconnectAttempt = 0;
                renderConn();
                renderExecutions();
                renderDetail();
                refreshExecutions();
                if (state.detail)
                        refreshDetail();
                return;
        }
        if (!id)
                return;
        bump(id);
        switch (msg.type) {
        case 'execution_new':
                if (msg.execution)
                        state.executions.set(id, { ...msg.execution });
                break;
        case 'status':
                patchExecution(id, { status: msg.status });
                break;
        case 'properties':
                patchExecution(id, msg.changed || {});
                break;
        case 'finished':
                patchExecution(id, { status: msg.status, error: msg.error });
                scheduleDetailRefresh(id, 50);
                break;
        case 'execution_removed':
                // Gone from the bus; its record stays in the history.
                patchExecution(id, { path: null, status: msg.status });
                break;
        case 'step':
                if (state.detail && state.detail.id === id) {
                        const step = findStep(state.detail.steps, msg.step_id);
                        if (step) {
                                step.status = msg.status;
                                if (msg.message && (msg.status === 'failed' || msg.status === 'cancelled'))
                                        step.error = msg.message;
                        }
                        // Times, attempts and outputs come with the full record.
                        scheduleDetailRefresh(id, 250);
                }
                break;
        case 'log':
                // Only the log and a script step's output change.
                if (state.detail && state.detail.id === id) {
                        addLog([msg]);
                        renderSteps();
                }
                return;
        default:
                return;
        }
        renderExecutions();
        if (state.detail && state.detail.id === id)
                renderDetail();
}

function findStep(steps, stepId) {
        for (const s of steps || []) {
                if (s.step_id === stepId)
                        return s;
                const c = findStep(s.children, stepId);
                if (c)
                        return c;
        }
        // Nested ids are "parent/child"; children may carry the short id.
        const slash = stepId.lastIndexOf('/');
        if (slash > 0) {
                const parent = findStep(steps, stepId.slice(0, slash));
                if (parent)
                        return (parent.children || []).find((c) => c.step_id === stepId.slice(slash + 1));
        }
        return null;
}

function addLog(lines) {
        state.detail.log.add(lines);
        invalidate('log');
}

async function refreshExecutions() {
        const startSeq = new Map(state.seq);
        let data;
        try {
                data = await api('GET', 'api/executions?limit=100');
        } catch (e) {
                if (e.status !== 401)
                        notice(`Could not load executions: ${e.message}`);
                return;
        }
        for (const e of data.executions || []) {
                const id = e.execution_id;
                // Events that arrived while the request ran are newer than this reply.
                if (seqOf(id) !== (startSeq.get(id) || 0))
                        continue;
                if (state.executions.has(id))
                        patchExecution(id, e);
                else
                        state.executions.set(id, { ...e });
        }
        renderExecutions();
        if (state.detail)
                renderDetail();
}

const detailTimers = new Map();
function scheduleDetailRefresh(id, delay) {
        if (!state.detail || state.detail.id !== id || detailTimers.has(id))
                return;
        detailTimers.set(id, setTimeout(() => {
                detailTimers.delete(id);
                refreshDetail();
        }, delay));
}

async function refreshDetail(retries = 3) {
        const d = state.detail;
        if (!d)
                return;
        const id = d.id;
        const startSeq = seqOf(id);
        let rec, log;
        try {
                [rec, log] = await Promise.all([
                        api('GET', `api/executions/${encodeURIComponent(id)}`),
                        api('GET', `api/executions/${encodeURIComponent(id)}/log?max=${LOG_MAX}`),
                ]);
        } catch (e) {
                if (state.detail !== d)
                        return;
                if (e.status === 404) {
                        d.error = 'This execution does not exist (any more).';
                        buildUnknownRun(id);
                        return;
                } else if (e.status !== 401) {
                        d.error = `Could not load the execution: ${e.message}`;
                }
                renderDetail();
                return;
        }
        if (state.detail !== d)
                return;
        d.error = null;
        addLog(log.lines || []);
        const fresh = seqOf(id) === startSeq;
        if (!fresh && retries > 0) {
                // Something happened meanwhile; this copy may already be old.
                refreshDetail(retries - 1);
                return;
        }
        const { steps, ...summary } = rec;
        d.steps = steps || [];
        d.loaded = true;
        if (!state.executions.has(id))
                state.executions.set(id, summary);
        else if (fresh)
                patchExecution(id, summary);
        else
                scheduleDetailRefresh(id, 250); // events keep coming: read again when they calm
        renderExecutions();
        renderDetail();
        if (dv.artifacts)
                dv.artifacts.show(id); // a finished step may have written a file
}

// --- WebSocket with backoff --------------------------------------------------------------

let socket = null;
let reconnectTimer = null;
let reconnectAttempt = 0;
let reconnectAt = 0;
let holdReconnect = false; // test hook

function closeSocket() {
        if (reconnectTimer) {
                clearTimeout(reconnectTimer);
                reconnectTimer = null;
        }
        if (socket) {
                const s = socket;
                socket = null;
                s.close();
        }
}

function connect() {
        if (state.authFailed || !state.token || socket)
                return;
        // A subprotocol is an HTTP token: anything else cannot be the bridge's token.
        if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(state.token)) {
                showAuthError('The access token is malformed.');
                return;
        }
        const url = new URL('ws/executions', location.href);
        url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
        url.hash = '';
        // The token rides as an offered subprotocol, not in the URL: Chromium prints a
        // failed WebSocket's URL in the console.
        const ws = new WebSocket(url, ['itk.v1', `itk.token.${state.token}`]);
        let opened = false;
        socket = ws;
        ws.addEventListener('open', () => {
                opened = true;
                sendSubscribe();
        });
        ws.addEventListener('message', (ev) => {
                if (ws !== socket)
                        return;
                let msg;
                try {
                        msg = JSON.parse(ev.data);
                } catch (e) {
                        return;
                }
                // The bridge sends a burst of events as one batch frame.
                if (msg.type === 'batch') {
                        for (const e of msg.events || [])
                                applyEvent(e);
                } else {
                        applyEvent(msg);
                }
        });
        ws.addEventListener('close', () => {
                if (ws !== socket)
                        return;
                socket = null;
                disconnected(!opened);
        });
}

function disconnected(neverOpened) {
        if (state.authFailed)
                return;
        state.conn = 'reconnecting';
        renderConn();
        renderExecutions();
        renderDetail();
        if (neverOpened) {
                // A refused upgrade may be a bad token: ask the API, which says 401.
                api('GET', 'api/executions?limit=1').catch(() => {});
        }
        scheduleReconnect();
}

function scheduleReconnect() {
        if (reconnectTimer || state.authFailed)
                return;
        const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** reconnectAttempt);
        const delay = Math.round(base * (0.8 + Math.random() * 0.4));
        reconnectAttempt++;
        reconnectAt = Date.now() + delay;
        reconnectTimer = setTimeout(() => {
                reconnectTimer = null;
                if (holdReconnect) {
                        scheduleReconnect();
                        return;
                }
                connect();
        }, delay);
        renderConn();
}

function reconnectNow() {
        if (socket || state.authFailed)
                return;
        if (reconnectTimer) {
                clearTimeout(reconnectTimer);
                reconnectTimer = null;
        }
        connect();
}

function sendSubscribe() {
        if (!socket || socket.readyState !== WebSocket.OPEN)
                return;
        socket.send(JSON.stringify({ type: 'subscribe',
                                     execution_id: state.detail ? state.detail.id : null }));
}

function isLive() {
        return state.conn === 'connected';
}

// --- rendering: connection, lists ---------------------------------------------------------

let connTicker = null;
function renderConn() {
        const el = $('conn');
        const text = $('conn-text');
        el.className = `conn conn-${state.conn}`;
        clearInterval(connTicker);
        connTicker = null;
        document.body.classList.toggle('not-live', !isLive());
        switch (state.conn) {
        case 'connected':
                text.textContent = 'Live';
                break;
        case 'connecting':
                text.textContent = 'Connecting…';
                break;
        case 'auth':
                text.textContent = 'Not authorized';
                break;
        case 'reconnecting': {
                // The live region gets a stable text; the countdown is for the eyes only.
                text.textContent = holdReconnect ? 'Disconnected' : 'Disconnected, reconnecting';
                const tick = () => {
                        const s = Math.max(0, Math.ceil((reconnectAt - Date.now()) / 1000));
                        $('conn-countdown').textContent = holdReconnect || socket ? '' : ` (next try in ${s} s)`;
                };
                tick();
                connTicker = setInterval(tick, 1000);
                break;
        }
        }
        if (state.conn !== 'reconnecting')
                $('conn-countdown').textContent = '';
        $('conn-retry').hidden = state.conn !== 'reconnecting';
}

function badge(status, extraClass = '') {
        const stale = !isLive() && !TERMINAL.has(status);
        return h('span', { class: `badge badge-${status}${stale ? ' stale' : ''} ${extraClass}`,
                           title: stale ? 'Last known status; not live' : null },
                 status || 'unknown', stale ? h('span', { class: 'sr-only', text: ' (not live)' }) : null);
}

function groupOf(pb) {
        return pb.group || pb.domain || 'Other';
}

function renderPlaybooks() {
        const box = $('playbooks');
        if (!state.playbooks) {
                return;
        }
        if (state.playbooks.length === 0) {
                box.replaceChildren(h('p', { class: 'muted', text: 'No playbooks in the library.' }));
                return;
        }
        const groups = new Map();
        for (const pb of state.playbooks) {
                const g = groupOf(pb);
                if (!groups.has(g))
                        groups.set(g, []);
                groups.get(g).push(pb);
        }
        const nodes = [];
        for (const g of [...groups.keys()].sort()) {
                const list = groups.get(g).sort((a, b) => (a.name || '').localeCompare(b.name || ''));
                const gid = `pbg-${nodes.length}`;
                nodes.push(h('h3', { class: 'group-heading', id: gid, text: g }));
                nodes.push(h('ul', { class: 'pb-list', 'aria-labelledby': gid },
                             list.map((pb) => h('li', {},
                                                h('a', { href: `#/run/${encodeURIComponent(pb.id)}`,
                                                         'data-key': `pb:${pb.id}`,
                                                         class: `pb-link${isCurrentPlaybook(pb.id) ? ' current' : ''}`,
                                                         'aria-current': isCurrentPlaybook(pb.id) ? 'page' : null },
                                                  h('span', { class: 'pb-name', text: pb.name || pb.id }),
                                                  pb.valid === false ? h('span', { class: 'tag tag-bad', text: 'invalid' }) : null,
                                                  pb.verified ? h('span', { class: 'tag tag-ok', text: 'verified' }) : null)))));
        }
        replaceKeepFocus(box, nodes);
}

function isCurrentPlaybook(id) {
        return state.route.view === 'run' && state.route.id === id;
}

function sortedExecutions() {
        const rank = (e) => (TERMINAL.has(e.status) ? 1 : 0);
        const when = (e) => e.started_at || e.finished_at || Number.MAX_SAFE_INTEGER;
        return [...state.executions.values()].sort((a, b) =>
                rank(a) - rank(b) || when(b) - when(a) ||
                a.execution_id.localeCompare(b.execution_id));
}

const execNodes = new Map(); // execution id -> {li, sig}

// Rows are kept by execution id and drawn again only when what they show changed.
function drawExecutions() {
        const list = $('executions');
        const execs = sortedExecutions();
        if (execs.length === 0) {
                execNodes.clear();
                replaceKeepFocus(list, [h('li', { class: 'muted empty', text: state.authFailed ? 'Not available.' : isLive() ? 'No executions yet.' : '…' })]);
                return;
        }
        const live = isLive();
        const seen = new Set();
        place(list, execs.map((e) => {
                const id = e.execution_id;
                seen.add(id);
                const current = !!(state.detail && state.detail.id === id);
                const pct = Math.round((e.progress || 0) * 100);
                const sig = JSON.stringify([e.playbook_name, e.playbook, e.status, e.started_at, pct, current, live]);
                let row = execNodes.get(id);
                if (!row) {
                        row = { li: h('li', {}), sig: null };
                        execNodes.set(id, row);
                }
                if (row.sig !== sig) {
                        row.sig = sig;
                        const had = row.li.contains(document.activeElement);
                        row.li.replaceChildren(
                                h('a', { href: `#/execution/${id}`, 'data-key': `ex:${id}`,
                                         'data-execution': id,
                                         class: `exec-link${current ? ' current' : ''}`,
                                         'aria-current': current ? 'page' : null },
                                  h('span', { class: 'exec-top' },
                                    h('span', { class: 'exec-name', text: e.playbook_name || e.playbook || id }),
                                    badge(e.status)),
                                  h('span', { class: 'exec-sub' },
                                    h('span', { text: e.started_at ? fmtTime(e.started_at) : 'not started' }),
                                    TERMINAL.has(e.status) ? null
                                                           : h('span', { class: 'mini-progress', role: 'img', 'aria-label': `${pct}% done` },
                                                               h('span', { style: `width:${pct}%` })))));
                        if (had)
                                row.li.firstChild.focus();
                }
                return row.li;
        }));
        for (const id of [...execNodes.keys()]) {
                if (!seen.has(id))
                        execNodes.delete(id);
        }
}

// --- routing ------------------------------------------------------------------------------

function parseRoute() {
        const hash = location.hash.replace(/^#\/?/, '');
        const page = library.parseRoute(hash) || credentialsPage.parseRoute(hash);
        if (page)
                return page;
        let m = /^run\/(.+)$/.exec(hash);
        if (m)
                return { view: 'run', id: decodeURIComponent(m[1]) };
        m = /^execution\/([0-9a-fA-F-]+)$/.exec(hash);
        if (m)
                return { view: 'execution', id: m[1] };
        m = /^history(?:\?(.*))?$/.exec(hash);
        if (m)
                return { view: 'history', filter: parseHistoryQuery(m[1]) };
        return { view: 'home' };
}

function onRoute(ev) {
        const route = parseRoute();
        const prevDetail = state.detail;
        state.route = route;
        clearNotice();
        if (route.view === 'execution') {
                if (!prevDetail || prevDetail.id !== route.id) {
                        state.detail = { id: route.id, steps: [], log: new LogModel(LOG_MAX),
                                         stepNodes: new Map(), loaded: false, error: null };
                        state.openOutputs.clear();
                        buildDetail();
                        sendSubscribe();
                        refreshDetail();
                }
        } else {
                state.detail = null;
                if (dv.live) {
                        dv.live.dispose(); // liveview.js: stops watching
                        dv.live = null;
                }
                if (prevDetail)
                        sendSubscribe();
                if (route.view === 'run')
                        buildRunForm();
                else if (route.view === 'history')
                        buildHistoryView();
                else if (!library.build(route) && !credentialsPage.build(route))
                        buildHome();
        }
        renderPlaybooks();
        renderExecutions();
        // Only the pages drawn here; library.js marks its own links.
        for (const a of document.querySelectorAll('.topnav a#nav-history')) {
                const here = a.getAttribute('href') === `#/${route.view}`;
                a.classList.toggle('current', here);
                a.toggleAttribute('aria-current', here);
                if (here)
                        a.setAttribute('aria-current', 'page');
        }
        // Keyboard and screen reader users land on the new content.
        if (ev)
                $('main').focus({ preventScroll: true });
}

// --- history ------------------------------------------------------------------------------

function buildHistoryView() {
        const main = $('main');
        delete main.dataset.playbook;
        buildHistory(main, state.route.filter, {
                api, h, badge, fmtTime, fmtDuration,
                playbooks: () => state.playbooks,
                onDeleted: (id) => {
                        state.executions.delete(id);
                        renderExecutions();
                },
        });
}

// --- home ---------------------------------------------------------------------------------

function buildHome() {
        const main = $('main');
        document.title = 'Ignition Toolkit';
        main.replaceChildren(h('section', { class: 'panel home' },
                               h('h2', { text: 'Welcome' }),
                               h('p', { text: state.authFailed
                                       ? 'Nothing can be shown without a valid access token (see the message above).'
                                       : 'Pick a playbook on the left to run it, or an execution to watch and steer it.' })));
}

// --- run form -----------------------------------------------------------------------------

function paramInput(p, fieldId) {
        const def = p.default;
        switch (p.type) {
        case 'boolean':
                return h('input', { type: 'checkbox', id: fieldId, name: p.name, checked: def === true || def === 'true' });
        case 'integer':
                return h('input', { type: 'number', step: '1', id: fieldId, name: p.name,
                                    value: def !== undefined && def !== null ? String(def) : null,
                                    required: p.required && def === undefined });
        case 'float':
                return h('input', { type: 'number', step: 'any', id: fieldId, name: p.name,
                                    value: def !== undefined && def !== null ? String(def) : null,
                                    required: p.required && def === undefined });
        case 'list':
        case 'dict':
                return h('textarea', { id: fieldId, name: p.name, rows: 2, spellcheck: 'false',
                                       class: 'mono',
                                       placeholder: p.type === 'list' ? '["a", "b"]' : '{"key": "value"}',
                                       value: def !== undefined && def !== null ? JSON.stringify(def) : '' });
        case 'credential': {
                const sel = h('select', { id: fieldId, name: p.name, 'data-credentials': true },
                              h('option', { value: '', text: '(none)' }),
                              state.credentials.map((c) => h('option', { value: c.name, text: credentialLabel(c) })));
                if (typeof def === 'string')
                        sel.value = def;
                return sel;
        }
        case 'file':
                // Uploaded or chosen from the server's allowed folders, never a typed path.
                return inputfiles.fileField(p, fieldId);
        default:
                return h('input', { type: /password|secret|token/i.test(p.name) ? 'password' : 'text',
                                    id: fieldId, name: p.name, autocomplete: 'off',
                                    value: def !== undefined && def !== null ? String(def) : null,
                                    required: p.required && def === undefined });
        }
}

function credentialLabel(c) {
        return c.gateway_url ? `${c.name} — ${c.username || ''} @ ${c.gateway_url}` : `${c.name}${c.username ? ` — ${c.username}` : ''}`;
}

function buildRunForm() {
        const main = $('main');
        document.title = 'Run playbook — Ignition Toolkit';
        const id = state.route.id;
        if (!state.playbooks) {
                main.replaceChildren(h('p', { class: 'muted panel', text: 'Loading playbooks…' }));
                return;
        }
        const pb = state.playbooks.find((p) => p.id === id);
        if (!pb) {
                main.replaceChildren(h('section', { class: 'panel' },
                                       h('h2', { text: 'Unknown playbook' }),
                                       h('p', { text: `No playbook "${id}" in the library.` })));
                return;
        }
        const params = pb.parameters || [];
        const fields = params.map((p, i) => {
                const fid = `param-${i}`;
                const input = paramInput(p, fid);
                const hintId = `${fid}-hint`;
                const errId = `${fid}-error`;
                // The error is read with the field, not only announced once.
                input.setAttribute('aria-describedby', p.description ? `${hintId} ${errId}` : errId);
                const isCheck = p.type === 'boolean';
                return h('div', { class: `field${isCheck ? ' field-check' : ''}`, 'data-param': p.name },
                         isCheck ? input : null,
                         h('label', { for: fid },
                           p.name, p.required && p.default === undefined && !isCheck ? h('span', { class: 'req', 'aria-hidden': 'true', text: ' *' }) : null,
                           h('span', { class: 'ptype', text: ` ${p.type}` })),
                         isCheck ? null : input,
                         h('div', { class: 'hint', id: hintId, text: p.description || '' }),
                         h('div', { class: 'field-error', id: errId, role: 'alert' }));
        });
        const credSel = h('select', { id: 'run-credential', name: 'credential_name', 'data-credentials': true },
                          h('option', { value: '', text: '(none)' }),
                          state.credentials.map((c) => h('option', { value: c.name, text: credentialLabel(c) })));
        const debug = h('input', { type: 'checkbox', id: 'run-debug', name: 'debug_mode' });
        const submit = h('button', { type: 'submit', class: 'primary', id: 'run-submit',
                                     disabled: pb.valid === false, text: 'Start execution' });
        const form = h('form', { class: 'run-form', novalidate: true, 'aria-labelledby': 'run-heading',
                                 onsubmit: (ev) => { ev.preventDefault(); submitRun(pb, form, submit); } },
                       fields.length ? h('fieldset', { class: 'params' }, h('legend', { text: 'Parameters' }), fields)
                                     : h('p', { class: 'muted', text: 'This playbook takes no parameters.' }),
                       h('fieldset', {}, h('legend', { text: 'Options' }),
                         h('div', { class: 'field' },
                           h('label', { for: 'run-credential', text: 'Stored credential' }), credSel,
                           h('div', { class: 'hint', text: 'Fills gateway URL, user name and password parameters left empty.' })),
                         h('div', { class: 'field field-check' }, debug,
                           h('label', { for: 'run-debug', text: 'Debug mode (pause before each step)' }))),
                       h('div', { class: 'form-actions' }, submit, h('span', { class: 'form-status', role: 'status' })));
        main.replaceChildren(h('section', { class: 'panel run-panel' },
                               h('div', { class: 'panel-head' },
                                 h('h2', { id: 'run-heading', text: `Run: ${pb.name || pb.id}` }),
                                 h('span', { class: 'muted', text: `${pb.id} · version ${pb.version ?? '?'} · ${pb.step_count ?? '?'} steps` })),
                               pb.description ? h('p', { class: 'description', text: pb.description }) : null,
                               pb.valid === false ? h('div', { class: 'banner banner-error', role: 'alert' },
                                                      h('strong', { text: 'This playbook is not valid: ' }),
                                                      h('ul', {}, (pb.errors || []).map((e) => h('li', { text: e })))) : null,
                               form));
        main.dataset.playbook = pb.id;
        runctx.enhanceRunForm(pb, form);
}

function readParams(pb, form) {
        const values = {};
        let ok = true;
        for (const p of pb.parameters || []) {
                const box = form.querySelector(`[data-param="${CSS.escape(p.name)}"]`);
                const input = box.querySelector('input, textarea, select');
                const err = box.querySelector('.field-error');
                err.textContent = '';
                input.removeAttribute('aria-invalid');
                const fail = (msg) => {
                        err.textContent = msg;
                        input.setAttribute('aria-invalid', 'true');
                        // A file parameter's value is hidden: its upload control takes focus.
                        if (ok)
                                (input.type === 'hidden' ? box.querySelector('input[type=file]') || input : input).focus();
                        ok = false;
                };
                if (p.type === 'boolean') {
                        values[p.name] = input.checked;
                        continue;
                }
                const raw = input.value.trim();
                if (raw === '') {
                        if (p.required && p.default === undefined && !form.elements.credential_name.value)
                                fail(runctx.requiredMessage(p));
                        continue;
                }
                if (p.type === 'integer') {
                        if (!/^-?\d+$/.test(raw))
                                fail('Enter a whole number.');
                        else
                                values[p.name] = Number(raw);
                } else if (p.type === 'float') {
                        const n = Number(raw);
                        if (!Number.isFinite(n))
                                fail('Enter a number.');
                        else
                                values[p.name] = n;
                } else if (p.type === 'list' || p.type === 'dict') {
                        let v;
                        try {
                                v = JSON.parse(raw);
                        } catch (e) {
                                fail(`Not valid JSON: ${e.message}`);
                                continue;
                        }
                        if (p.type === 'list' && !Array.isArray(v))
                                fail('Enter a JSON array, e.g. ["a", "b"].');
                        else if (p.type === 'dict' && (v === null || typeof v !== 'object' || Array.isArray(v)))
                                fail('Enter a JSON object, e.g. {"key": "value"}.');
                        else
                                values[p.name] = v;
                } else {
                        values[p.name] = raw;
                }
        }
        return ok ? values : null;
}

async function submitRun(pb, form, submit) {
        if (submit.disabled)
                return;
        const params = readParams(pb, form);
        if (!params)
                return;
        const body = { playbook_path: pb.id, parameters: params };
        const cred = form.elements.credential_name.value;
        if (cred)
                body.credential_name = cred;
        if (form.elements.debug_mode.checked)
                body.debug_mode = true;
        if (!runctx.beforeSubmit(pb, form, body))
                return;
        const status = form.querySelector('.form-status');
        submit.disabled = true;
        submit.setAttribute('aria-busy', 'true');
        submit.textContent = 'Starting…';
        status.textContent = '';
        try {
                const res = await api('POST', 'api/executions', body);
                location.hash = `#/execution/${res.execution_id}`;
        } catch (e) {
                status.textContent = `Could not start: ${e.message || e.name_}`;
                status.classList.add('error');
        } finally {
                submit.disabled = pb.valid === false;
                submit.removeAttribute('aria-busy');
                submit.textContent = 'Start execution';
        }
}

// --- execution detail ---------------------------------------------------------------------

const dv = {}; // persistent elements of the detail view

function buildDetail() {
        const main = $('main');
        delete main.dataset.playbook;
        dv.title = h('h2', { id: 'detail-heading' });
        dv.badge = h('span', { id: 'detail-status', role: 'status', 'aria-live': 'polite', 'aria-label': 'Execution status' });
        dv.meta = h('div', { class: 'detail-meta muted' });
        dv.context = runctx.contextBox(state.detail.id);
        dv.error = h('div', { class: 'banner banner-error', role: 'alert', hidden: true });
        dv.stale = h('div', { class: 'banner banner-warn', hidden: true },
                     'Connection lost: this is the last status received, not a live one. Cancel still works.');
        dv.progress = h('progress', { id: 'detail-progress', max: 100, value: 0, 'aria-label': 'Progress' });
        dv.progressText = h('span', { class: 'progress-text' });
        dv.buttons = {};
        const buttons = CONTROLS.map((c) => {
                const b = h('button', { type: 'button', class: `control${c.danger ? ' danger' : ''}`,
                                        'data-action': c.action, disabled: true, text: c.label,
                                        onclick: () => control(c) });
                dv.buttons[c.action] = b;
                return b;
        });
        dv.debug = h('input', { type: 'checkbox', id: 'detail-debug', role: 'switch', disabled: true,
                                onchange: onDebugToggle });
        dv.debugLabel = h('label', { for: 'detail-debug', class: 'debug-switch' }, dv.debug, ' Debug mode');
        dv.controlMsg = h('span', { class: 'control-msg', role: 'status' });
        dv.steps = h('ol', { class: 'steps', id: 'steps', 'aria-label': 'Steps', tabindex: '0' });
        dv.log = h('div', { class: 'log mono', id: 'log', role: 'log', tabindex: '0', 'aria-label': 'Execution log' });
        dv.autoscroll = h('input', { type: 'checkbox', id: 'log-follow', checked: true });
        main.replaceChildren(h('section', { class: 'panel detail', 'aria-labelledby': 'detail-heading' },
                               h('div', { class: 'panel-head' }, dv.title, dv.badge),
                               dv.meta, dv.context, dv.error, dv.stale,
                               h('div', { class: 'progress-row' }, dv.progress, dv.progressText),
                               h('div', { class: 'controls', role: 'group', 'aria-label': 'Execution controls' },
                                 buttons, dv.debugLabel, dv.controlMsg),
                               h('div', { class: 'detail-body' },
                                 h('section', { class: 'steps-pane', 'aria-labelledby': 'steps-heading' },
                                   h('h3', { id: 'steps-heading', text: 'Steps' }), dv.steps),
                                 h('section', { class: 'log-pane', 'aria-labelledby': 'log-heading' },
                                   h('div', { class: 'pane-head' }, h('h3', { id: 'log-heading', text: 'Log' }),
                                     h('label', { for: 'log-follow', class: 'small' }, dv.autoscroll, ' Follow')),
                                   dv.log))));
        if (dv.artifacts)
                dv.artifacts.dispose();
        dv.artifacts = new ArtifactsPane(() => state.token); // artifacts.js
        main.firstElementChild.append(dv.artifacts.element);
        if (dv.live)
                dv.live.dispose();
        dv.live = new LivePanel(state.detail.id, () => state.token); // liveview.js
        main.querySelector('.steps-pane').after(dv.live.element);
        renderDetail();
}

// A run the daemon does not know (deleted, or a wrong address): a page of its own
// instead of an empty detail view with dead controls.
function buildUnknownRun(id) {
        dv.title = null; // the detail view is gone: nothing to draw into
        if (dv.live) {
                dv.live.dispose();
                dv.live = null;
        }
        document.title = 'Unknown execution — Ignition Toolkit';
        $('main').replaceChildren(h('section', { class: 'panel unknown-run', 'aria-labelledby': 'unknown-heading', id: 'unknown-run' },
                                    h('h2', { id: 'unknown-heading', text: 'Unknown execution' }),
                                    h('p', {}, 'No execution ', h('code', { text: id }),
                                      ' is known to the daemon: it was deleted, or the address is wrong.'),
                                    h('p', {}, h('a', { href: '#/history', text: 'Search the history' }), ' · ',
                                      h('a', { href: '#/', text: 'Back to the start' }))));
}

function allowed(e) {
        const st = e ? e.status : null;
        const active = st === 'running' || st === 'paused';
        const live = isLive();
        return {
                pause: live && st === 'running' && !e.pause_requested,
                resume: live && (st === 'paused' || (st === 'running' && !!e.pause_requested)),
                skip: live && active,
                skip_back: live && active,
                // Cancel stays usable on the last known status while the socket is down.
                cancel: !!st && !TERMINAL.has(st),
                // A pending run takes Cancel only (DESIGN.md §4, Start is not ours to call).
                debug: live && active,
        };
}

function drawDetail() {
        const d = state.detail;
        const e = state.executions.get(d.id);
        dv.title.textContent = e ? (e.playbook_name || e.playbook) : 'Execution';
        document.title = e ? `${e.status} · ${e.playbook_name || e.playbook} — Ignition Toolkit` : 'Ignition Toolkit';
        dv.badge.replaceChildren(e ? badge(e.status, 'badge-large') : h('span', { class: 'muted', text: d.error ? '' : 'Loading…' }));
        dv.badge.dataset.status = e ? e.status : '';
        if (e) {
                dv.meta.replaceChildren(...[
                        h('span', { text: `ID ${e.execution_id}` }),
                        h('span', { text: e.started_at ? `Started ${fmtTime(e.started_at)}` : 'Not started' }),
                        e.finished_at ? h('span', { text: `Finished ${fmtTime(e.finished_at)} (${fmtDuration(e.started_at, e.finished_at)})` }) : null,
                        e.playbook_version ? h('span', { text: `v${e.playbook_version}` }) : null,
                        e.pause_requested && e.status === 'running' ? h('span', { class: 'tag', text: 'pause requested' }) : null,
                ].filter(Boolean));
        }
        dv.stale.hidden = isLive() || !e || TERMINAL.has(e.status);
        const err = d.error || (e && e.error) || '';
        dv.error.hidden = !err;
        dv.error.textContent = err;
        const pct = e ? Math.round((e.progress || 0) * 100) : 0;
        dv.progress.value = pct;
        dv.progress.setAttribute('aria-valuetext', `${pct}%`);
        if (e) {
                const cur = e.current_step >= 0 && !TERMINAL.has(e.status)
                        ? ` · step ${e.current_step + 1} of ${e.total_steps}: ${e.current_step_name || e.current_step_id || ''}`
                        : ` · ${e.total_steps ?? '?'} steps`;
                dv.progressText.textContent = `${pct}%${cur}`;
        }
        const ok = allowed(e);
        for (const c of CONTROLS) {
                const b = dv.buttons[c.action];
                const busy = state.busy.has(`${d.id}:${c.action}`);
                b.disabled = busy || !ok[c.action];
                b.textContent = busy ? c.busy : c.label;
                b.toggleAttribute('aria-busy', busy);
                b.classList.toggle('busy', busy);
        }
        const debugBusy = state.busy.has(`${d.id}:debug`);
        dv.debug.checked = !!(e && e.debug_mode);
        dv.debug.disabled = debugBusy || !ok.debug;
        dv.debug.toggleAttribute('aria-busy', debugBusy);
        dv.debugLabel.classList.toggle('busy', debugBusy);
        if (dv.live)
                dv.live.update(e); // liveview.js
}

function stepLogs(d) {
        const by = new Map();
        for (const l of d.log.lines) {
                if (!l.step_id)
                        continue;
                if (!by.has(l.step_id))
                        by.set(l.step_id, []);
                by.get(l.step_id).push(l);
        }
        return by;
}

// A failed step the run went on from (on_failure: continue): a later step of the same
// list ran in the main phase, or the run completed anyway.
function tolerated(s, siblings, e) {
        if (s.status !== 'failed')
                return false;
        if (e && e.status === 'completed')
                return true;
        const later = siblings.slice(siblings.indexOf(s) + 1);
        return later.some((x) => x.phase !== 'rollback' && x.started_at && x.status !== 'skipped');
}

// Steps are kept by key: a step whose shown data did not change keeps its node (and
// any open Outputs, focus and selection in it); only changed ones are drawn again.
function drawSteps(d) {
        if (!d.loaded || d.steps.length === 0) {
                const text = !d.loaded ? (d.error ? '' : 'Loading steps…') : 'No steps.';
                const only = dv.steps.firstElementChild;
                if (!only || only.dataset.step || only.textContent !== text || only.nextSibling)
                        dv.steps.replaceChildren(h('li', { class: 'muted', text }));
                d.stepNodes.clear();
                return;
        }
        const active = document.activeElement;
        const focusKey = active && dv.steps.contains(active) ? active.dataset.key : null;
        const logs = stepLogs(d);
        const e = state.executions.get(d.id);
        const stale = !isLive() && e && !TERMINAL.has(e.status);
        const seen = new Set();
        const node = (s, siblings, prefix, depth) => {
                const fullId = s.step_id && s.step_id.includes('/') ? s.step_id : (prefix ? `${prefix}/${s.step_id}` : s.step_id);
                seen.add(fullId);
                let li = d.stepNodes.get(fullId);
                if (!li) {
                        li = h('li', { 'data-step': fullId });
                        li.itkBody = h('div', { class: 'step-body' });
                        li.append(li.itkBody);
                        d.stepNodes.set(fullId, li);
                }
                const lines = logs.get(fullId) || logs.get(s.step_id) || [];
                const hasOutput = s.output !== null && s.output !== undefined &&
                        !(typeof s.output === 'object' && Object.keys(s.output).length === 0);
                const showLines = SCRIPT_TYPES.has(s.type) && lines.length > 0;
                const ok = tolerated(s, siblings, e);
                // A clock ticks only for a running step on a live status; a step that ended
                // shows its duration once the record with its end time is in.
                const duration = s.started_at && (s.finished_at || (!stale && s.status === 'running'))
                        ? fmtDuration(s.started_at, s.finished_at) : '';
                const sig = JSON.stringify([s.status, s.name, s.type, s.index, s.attempts, duration, s.phase, s.error,
                                            stale, ok, depth, hasOutput ? s.output : null,
                                            showLines ? [lines.length, lines[lines.length - 1].usec] : 0]);
                li.className = `step step-${s.status}${s.phase === 'rollback' ? ' rollback' : ''}${ok ? ' tolerated' : ''}`;
                li.dataset.status = s.status;
                if (li.itkSig !== sig) {
                        li.itkSig = sig;
                        li.itkBody.replaceChildren(...[
                                h('div', { class: 'step-row' },
                                  h('span', { class: 'step-index', text: depth !== 0 ? '↳' : s.index >= 0 ? `${s.index + 1}.` : '·' }), // -1: stored before index was kept
                                  h('span', { class: 'step-name' }, s.name || s.step_id,
                                    h('span', { class: 'step-type', text: ` ${s.type || ''}` })),
                                  h('span', { class: 'step-meta' },
                                    s.attempts > 1 ? h('span', { class: 'attempts', text: `${s.attempts} attempts` }) : null,
                                    duration ? h('span', { class: 'duration', text: duration }) : null,
                                    s.phase === 'rollback' ? h('span', { class: 'tag', text: 'rollback' }) : null,
                                    ok ? h('span', { class: 'tag tag-warn', title: 'on_failure: continue', text: 'failure tolerated' }) : null,
                                    h('span', { class: `badge badge-${s.status}${stale && !TERMINAL.has(s.status) ? ' stale' : ''}`, text: s.status }))),
                                s.error ? h('div', { class: 'step-error', text: ok ? `Tolerated (on_failure: continue): ${s.error}` : s.error }) : null,
                                showLines ? h('pre', { class: 'step-output mono', tabindex: '0', 'aria-label': `Output of ${s.name || s.step_id}` },
                                              lines.map((l) => `${l.message}\n`).join('')) : null,
                                hasOutput ? openable(`out:${fullId}`, 'Outputs', h('pre', { class: 'mono json', tabindex: '0', 'aria-label': `Outputs of ${s.name || s.step_id}`, text: JSON.stringify(s.output, null, 2) })) : null,
                        ].filter(Boolean)); // replaceChildren would show a null as "null"
                }
                if (s.children && s.children.length) {
                        if (!li.itkKids) {
                                li.itkKids = h('ol', { class: 'steps nested' });
                                li.append(li.itkKids);
                        }
                        li.itkKids.setAttribute('aria-label', `Steps of ${s.name || s.step_id}`);
                        place(li.itkKids, s.children.map((c) => node(c, s.children, fullId, depth + 1)));
                } else if (li.itkKids) {
                        li.itkKids.remove();
                        li.itkKids = null;
                }
                return li;
        };
        place(dv.steps, d.steps.map((s) => node(s, d.steps, '', 0)));
        for (const key of [...d.stepNodes.keys()]) {
                if (!seen.has(key))
                        d.stepNodes.delete(key);
        }
        if (focusKey && !dv.steps.contains(active)) {
                const again = dv.steps.querySelector(`[data-key="${CSS.escape(focusKey)}"]`);
                if (again)
                        again.focus();
        }
}

// Puts @nodes into @list in this order, moving only nodes out of place.
function place(list, nodes) {
        let cur = list.firstChild;
        for (const n of nodes) {
                if (n === cur)
                        cur = cur.nextSibling;
                else
                        list.insertBefore(n, cur);
        }
        while (cur) {
                const next = cur.nextSibling;
                cur.remove();
                cur = next;
        }
}

function openable(key, label, content) {
        const det = h('details', { class: 'outputs', open: state.openOutputs.has(key) },
                      h('summary', { 'data-key': key, text: label }), content);
        det.addEventListener('toggle', () => {
                if (det.open)
                        state.openOutputs.add(key);
                else
                        state.openOutputs.delete(key);
        });
        return det;
}

async function control(c) {
        const d = state.detail;
        if (!d)
                return;
        const id = d.id;
        const key = `${id}:${c.action}`;
        if (state.busy.has(key) || dv.buttons[c.action].disabled)
                return;
        state.busy.add(key);
        dv.controlMsg.textContent = '';
        renderDetail();
        const startSeq = seqOf(id);
        try {
                const res = await api('POST', `api/executions/${encodeURIComponent(id)}/${c.action}`);
                // The reply is server data; events that came meanwhile are newer still.
                if (res && res.status && seqOf(id) === startSeq)
                        patchExecution(id, { status: res.status });
        } catch (e) {
                if (e.status === 409 && c.action === 'cancel') {
                        // Already over: harmless, the status shows how it ended.
                        dv.controlMsg.textContent = 'The execution had already finished.';
                } else if (e.status !== 401) {
                        dv.controlMsg.textContent = `${c.label} failed: ${e.message || e.name_}`;
                        dv.controlMsg.classList.add('error');
                }
        } finally {
                state.busy.delete(key);
                renderExecutions();
                renderDetail();
        }
}

async function onDebugToggle() {
        const d = state.detail;
        if (!d)
                return;
        const id = d.id;
        const want = dv.debug.checked;
        const key = `${id}:debug`;
        // Not optimistic: show the server's value until the server says otherwise.
        const e = state.executions.get(id);
        dv.debug.checked = !!(e && e.debug_mode);
        if (state.busy.has(key))
                return;
        state.busy.add(key);
        renderDetail();
        const startSeq = seqOf(id);
        try {
                const res = await api('POST', `api/executions/${encodeURIComponent(id)}/debug/${want ? 'enable' : 'disable'}`);
                if (res && typeof res.debug_mode === 'boolean' && seqOf(id) === startSeq)
                        patchExecution(id, { debug_mode: res.debug_mode });
        } catch (err) {
                if (err.status !== 401)
                        dv.controlMsg.textContent = `Debug mode change failed: ${err.message || err.name_}`;
        } finally {
                state.busy.delete(key);
                renderDetail();
        }
}

// --- start ----------------------------------------------------------------------------------

async function loadPlaybooks() {
        try {
                state.playbooks = await api('GET', 'api/playbooks');
        } catch (e) {
                if (e.status !== 401)
                        $('playbooks').replaceChildren(h('p', { class: 'error', text: `Could not load playbooks: ${e.message}` }));
                return;
        }
        renderPlaybooks();
        library.playbooksChanged();
        if (state.route.view === 'run')
                buildRunForm();
        else if (state.route.view === 'history')
                historyPlaybooksLoaded(state.playbooks);
}

async function loadCredentials() {
        try {
                state.credentials = await api('GET', 'api/credentials');
        } catch (e) {
                state.credentials = [];
                return;
        }
        // Fill the pickers in place: rebuilding the form would drop what was typed.
        for (const sel of document.querySelectorAll('select[data-credentials]')) {
                const keep = sel.value;
                sel.replaceChildren(h('option', { value: '', text: '(none)' }),
                                    ...state.credentials.map((c) => h('option', { value: c.name, text: credentialLabel(c) })));
                sel.value = keep;
        }
        credentialsPage.credentialsChanged();
        runctx.credentialsChanged();
}

function init() {
        state.token = takeToken();
        // What the feature modules (library.js, credentials.js, runctx.js) may use.
        const ui = { h, $, api, notice, clearNotice, state, loadPlaybooks, loadCredentials, credentialLabel };
        library.setup(ui);
        credentialsPage.setup(ui);
        runctx.setup(ui);
        inputfiles.setup(ui);
        $('notice-close').addEventListener('click', clearNotice);
        $('conn-retry').addEventListener('click', reconnectNow);
        window.addEventListener('hashchange', onRoute);
        // Durations of running steps tick.
        setInterval(() => {
                const d = state.detail;
                if (d && dv.steps && d.steps.some(function running(s) {
                        return s.status === 'running' || (s.children || []).some(running);
                }))
                        renderSteps();
        }, 1000);
        // Test hooks for the end-to-end tests: drop the socket and hold reconnects.
        window.__itkTestDropSocket = (hold = true) => {
                holdReconnect = !!hold;
                if (socket)
                        socket.close();
        };
        window.__itkTestAllowReconnect = () => {
                holdReconnect = false;
                reconnectNow();
        };
        if (!state.token) {
                renderConn();
                showAuthError('No access token was given.');
                $('playbooks').replaceChildren(h('p', { class: 'muted', text: 'Not available.' }));
                $('executions').replaceChildren(h('li', { class: 'muted empty', text: 'Not available.' }));
                onRoute();
                return;
        }
        renderConn();
        onRoute();
        loadPlaybooks();
        loadCredentials();
        connect();
}

init();
