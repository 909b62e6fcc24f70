// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A stand-in for ignition-toolkit-bridge, for developing the web UI without the daemon:
// implements /work/notes/bridge-api.md with fake data and simulated utility.sleep /
// utility.log / utility.python steps. The end-to-end tests (run-e2e.mjs) never use it:
// they run against the real bridge and daemon.
//
//   node mock-bridge.mjs [--port=8766] [--web-root=../../client/web]
// prints "listening on http://127.0.0.1:PORT/" and the URL with the token.

import { createServer } from 'node:http';
import { createHash, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const arg = (name, def) => {
        const a = process.argv.find((x) => x.startsWith(`--${name}=`));
        return a ? a.slice(name.length + 3) : def;
};
const PORT = Number(arg('port', '8766'));
const WEB_ROOT = path.resolve(arg('web-root', path.join(here, '..', '..', 'client', 'web')));
const TOKEN = 'mocktoken123';

const playbooks = [
        { id: 'test/sleep30.yaml', name: 'Sleep 30', version: '1.0', description: 'One long sleep.', domain: 'gateway', group: 'Tests', verified: true, valid: true, errors: [],
          parameters: [], steps: [{ id: 'nap', name: 'Long nap', type: 'utility.sleep', parameters: { seconds: 30 } }] },
        { id: 'test/three.yaml', name: 'Three steps', version: '2', description: 'Log, sleep, script.', domain: 'gateway', group: 'Tests', verified: false, valid: true, errors: [],
          parameters: [
                  { name: 'gateway_url', type: 'string', required: true, description: 'Gateway URL' },
                  { name: 'count', type: 'integer', required: false, default: 3, description: 'How many' },
                  { name: 'ratio', type: 'float', required: false, description: 'A ratio' },
                  { name: 'force', type: 'boolean', required: false, default: false, description: 'Force it' },
                  { name: 'modules', type: 'list', required: false, description: 'Module names' },
                  { name: 'extra', type: 'dict', required: false, description: 'Extra settings' },
                  { name: 'gw', type: 'credential', required: false, description: 'Gateway credential' },
                  { name: 'backup', type: 'file', required: false, description: 'Backup file' },
          ],
          steps: [{ id: 'hello', name: 'Say hello', type: 'utility.log', parameters: {} },
                  { id: 'wait', name: 'Wait a bit', type: 'utility.sleep', parameters: { seconds: 3 } },
                  { id: 'script', name: 'Run a script', type: 'utility.python', parameters: {} }] },
        { id: 'perspective/broken.yaml', name: 'Broken', version: '1', domain: 'perspective', group: null, verified: false, valid: false,
          errors: ['steps[0]: unknown step type "foo.bar"'], parameters: [], steps: [] },
];
for (const p of playbooks)
        p.step_count = p.steps.length;

const credentials = [{ name: 'lab', username: 'admin', gateway_url: 'http://localhost:8088', description: 'Lab gateway', has_password: true, has_api_token: false }];
const executions = new Map();
const clients = new Set();
const now = () => Date.now() * 1000;
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

function broadcast(msg) {
        for (const c of clients) {
                if ((msg.type === 'step' || msg.type === 'log') && c.sub && c.sub !== msg.execution_id)
                        continue;
                wsSend(c.socket, JSON.stringify(msg));
        }
}

function summary(x) {
        const { steps, timer, remaining, stepStarted, ...s } = x;
        return s;
}

function setStatus(x, status) {
        const previous = x.status;
        if (previous === status)
                return;
        x.status = status;
        broadcast({ type: 'status', execution_id: x.execution_id, status, previous });
        broadcast({ type: 'properties', execution_id: x.execution_id, changed: { status } });
}

function props(x, changed) {
        Object.assign(x, changed);
        broadcast({ type: 'properties', execution_id: x.execution_id, changed });
}

function stepStatus(x, i, status, message = '') {
        const st = x.steps[i];
        st.status = status;
        if (status === 'running') {
                st.started_at = now();
                st.attempts++;
        } else if (status !== 'pending') {
                st.finished_at = now();
        }
        broadcast({ type: 'step', execution_id: x.execution_id, index: i, step_id: st.step_id, status, message });
}

function log(x, stepId, message, priority = 6) {
        const l = { usec: now(), priority, step_id: stepId, message };
        x.log.push(l);
        broadcast({ type: 'log', execution_id: x.execution_id, ...l });
}

function finish(x, status, error = '') {
        clearTimeout(x.timer);
        x.finished_at = now();
        setStatus(x, status);
        props(x, { finished_at: x.finished_at, current_step: -1, error, progress: status === 'completed' ? 1 : x.progress });
        broadcast({ type: 'finished', execution_id: x.execution_id, status, error });
}

function runStep(x) {
        const i = x.current_step;
        if (i >= x.steps.length)
                return finish(x, 'completed');
        if (x.debug_mode && !x.debugStopped) {
                x.debugStopped = true;
                setStatus(x, 'paused');
                return;
        }
        x.debugStopped = false;
        const st = x.steps[i];
        props(x, { current_step_id: st.step_id, current_step_name: st.name });
        stepStatus(x, i, 'running');
        const def = x.def.steps[i];
        let ms = 100;
        if (def.type === 'utility.sleep')
                ms = (def.parameters.seconds || 1) * 1000;
        if (def.type === 'utility.python') {
                log(x, st.step_id, 'hello from python');
                log(x, st.step_id, 'line two');
        }
        if (def.type === 'utility.log')
                log(x, st.step_id, 'Hello!');
        x.remaining = ms;
        x.stepStarted = Date.now();
        x.timer = setTimeout(() => stepDone(x), ms);
}

function stepDone(x) {
        const i = x.current_step;
        const st = x.steps[i];
        st.output = st.type === 'utility.sleep' ? { slept: x.def.steps[i].parameters.seconds } : { ok: true };
        stepStatus(x, i, 'completed');
        advance(x);
}

function advance(x) {
        x.current_step++;
        if (x.current_step >= x.steps.length) {
                props(x, { progress: 1 });
                return finish(x, 'completed');
        }
        props(x, { current_step: x.current_step, progress: x.current_step / x.steps.length });
        if (x.pause_requested) {
                props(x, { pause_requested: false });
                setStatus(x, 'paused');
                return;
        }
        runStep(x);
}

function start(pb, body) {
        const id = randomUUID();
        const x = { execution_id: id, path: `/org/ignition/Toolkit/execution/${id.replace(/-/g, '')}`, playbook: pb.id, playbook_name: pb.name, playbook_version: pb.version,
                domain: pb.domain, status: 'pending', pause_requested: false, debug_mode: !!body.debug_mode, current_step: -1, current_step_id: '', current_step_name: '',
                total_steps: pb.steps.length, progress: 0, started_at: now(), finished_at: 0, error: '', started_by_uid: 1000, def: pb, log: [],
                steps: pb.steps.map((s, index) => ({ index, step_id: s.id, name: s.name, type: s.type, status: 'pending', attempts: 0, started_at: 0, finished_at: 0, error: '', output: null, phase: 'main', children: [] })) };
        executions.set(id, x);
        broadcast({ type: 'execution_new', execution_id: id, playbook: pb.id, execution: summary(x) });
        setTimeout(() => {
                setStatus(x, 'running');
                x.current_step = 0;
                props(x, { current_step: 0 });
                runStep(x);
        }, 20);
        return x;
}

function control(x, action) {
        if (TERMINAL.has(x.status))
                return [409, { error: 'NotRunning', message: 'The execution has finished' }];
        const running = x.status === 'running';
        const paused = x.status === 'paused';
        const sleeping = () => x.steps[x.current_step] && x.steps[x.current_step].status === 'running';
        switch (action) {
        case 'cancel':
                if (sleeping())
                        stepStatus(x, x.current_step, 'cancelled', 'Cancelled');
                finish(x, 'cancelled', 'Cancelled');
                break;
        case 'pause':
                if (x.status === 'pending')
                        return [409, { error: 'InvalidState', message: 'pending' }];
                if (running) {
                        clearTimeout(x.timer);
                        if (sleeping())
                                x.remaining -= Date.now() - x.stepStarted;
                        setStatus(x, 'paused');
                }
                break;
        case 'resume':
                if (paused) {
                        setStatus(x, 'running');
                        if (sleeping()) {
                                x.stepStarted = Date.now();
                                x.timer = setTimeout(() => stepDone(x), Math.max(0, x.remaining));
                        } else {
                                runStep(x);
                        }
                }
                break;
        case 'skip':
                if (!running && !paused)
                        return [409, { error: 'InvalidState', message: 'not active' }];
                clearTimeout(x.timer);
                stepStatus(x, x.current_step, 'skipped');
                if (paused) {
                        x.current_step++;
                        x.debugStopped = false;
                        props(x, { current_step: x.current_step, progress: x.current_step / x.steps.length });
                        if (x.current_step >= x.steps.length)
                                finish(x, 'completed');
                } else {
                        advance(x);
                }
                break;
        case 'skip_back':
                if (!running && !paused)
                        return [409, { error: 'InvalidState', message: 'not active' }];
                clearTimeout(x.timer);
                stepStatus(x, x.current_step, 'pending');
                x.current_step = Math.max(0, x.current_step - 1);
                stepStatus(x, x.current_step, 'pending');
                props(x, { current_step: x.current_step });
                if (running)
                        runStep(x);
                break;
        default:
                return [404, { error: 'NotFound', message: action }];
        }
        return [200, { execution_id: x.execution_id, status: x.status }];
}

// --- WebSocket (just enough of RFC 6455) ---------------------------------------------

function wsSend(socket, text) {
        const data = Buffer.from(text);
        let head;
        if (data.length < 126) {
                head = Buffer.from([0x81, data.length]);
        } else if (data.length < 65536) {
                head = Buffer.alloc(4);
                head[0] = 0x81; head[1] = 126; head.writeUInt16BE(data.length, 2);
        } else {
                head = Buffer.alloc(10);
                head[0] = 0x81; head[1] = 127; head.writeBigUInt64BE(BigInt(data.length), 2);
        }
        socket.write(Buffer.concat([head, data]));
}

function wsFrames(client, chunk) {
        client.buf = Buffer.concat([client.buf, chunk]);
        for (;;) {
                const b = client.buf;
                if (b.length < 2)
                        return;
                const op = b[0] & 0x0f;
                let len = b[1] & 0x7f;
                let off = 2;
                if (len === 126) { if (b.length < 4) return; len = b.readUInt16BE(2); off = 4; }
                else if (len === 127) { if (b.length < 10) return; len = Number(b.readBigUInt64BE(2)); off = 10; }
                const masked = b[1] & 0x80;
                const mask = masked ? b.subarray(off, off + 4) : null;
                if (masked) off += 4;
                if (b.length < off + len) return;
                const payload = Buffer.from(b.subarray(off, off + len));
                if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4];
                client.buf = b.subarray(off + len);
                if (op === 8) { client.socket.end(Buffer.from([0x88, 0])); clients.delete(client); return; }
                if (op === 1) {
                        try {
                                const m = JSON.parse(payload.toString());
                                if (m.type === 'subscribe') client.sub = m.execution_id || null;
                        } catch (e) { /* ignore */ }
                }
        }
}

// --- HTTP ------------------------------------------------------------------------------

const MIME = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.png': 'image/png', '.svg': 'image/svg+xml' };

function json(res, code, body) {
        res.writeHead(code, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
        res.end(body === undefined ? '' : JSON.stringify(body));
}

async function body(req) {
        let s = '';
        for await (const c of req) s += c;
        return s ? JSON.parse(s) : {};
}

const server = createServer(async (req, res) => {
        const url = new URL(req.url, 'http://x');
        const p = url.pathname;
        if (p === '/health')
                return json(res, 200, { status: 'ok' });
        if (p.startsWith('/api/')) {
                if (req.headers.authorization !== `Bearer ${TOKEN}`)
                        return json(res, 401, { error: 'Unauthorized', message: 'Missing or bad token' });
                if (p === '/api/playbooks')
                        return json(res, 200, playbooks.map(({ steps, ...pb }) => pb));
                if (p === '/api/credentials')
                        return json(res, 200, credentials);
                if (p === '/api/executions' && req.method === 'POST') {
                        const b = await body(req);
                        const pb = playbooks.find((x) => x.id === b.playbook_path);
                        if (!pb) return json(res, 404, { error: 'NoSuchPlaybook', message: b.playbook_path });
                        const x = start(pb, b);
                        return json(res, 201, { execution_id: x.execution_id, path: x.path, status: x.status, playbook: pb.id });
                }
                if (p === '/api/executions')
                        return json(res, 200, { executions: [...executions.values()].map(summary).reverse() });
                const m = /^\/api\/executions\/([0-9a-f-]+)(?:\/(.*))?$/.exec(p);
                const x = m && executions.get(m[1]);
                if (!x) return json(res, 404, { error: 'NoSuchExecution', message: 'no such execution' });
                if (!m[2] && req.method === 'GET') return json(res, 200, { ...summary(x), steps: x.steps });
                if (m[2] === 'log') return json(res, 200, { lines: x.log });
                if (req.method === 'POST' && m[2].startsWith('debug/')) {
                        if (TERMINAL.has(x.status)) return json(res, 409, { error: 'NotRunning', message: 'finished' });
                        props(x, { debug_mode: m[2] === 'debug/enable' });
                        return json(res, 200, { execution_id: x.execution_id, debug_mode: x.debug_mode });
                }
                if (req.method === 'POST') {
                        const [code, out] = control(x, m[2]);
                        return json(res, code, out);
                }
                return json(res, 405, { error: 'MethodNotAllowed', message: req.method });
        }
        const file = path.join(WEB_ROOT, p === '/' ? 'index.html' : path.normalize(p).replace(/^\/+/, ''));
        if (!file.startsWith(WEB_ROOT)) return json(res, 403, { error: 'Forbidden' });
        try {
                const data = await readFile(file);
                res.writeHead(200, { 'Content-Type': MIME[path.extname(file)] || 'application/octet-stream' });
                res.end(data);
        } catch (e) {
                res.writeHead(404);
                res.end('not found');
        }
});

server.on('upgrade', (req, socket) => {
        const url = new URL(req.url, 'http://x');
        const offered = (req.headers['sec-websocket-protocol'] || '').split(',').map((p) => p.trim());
        const token = url.searchParams.get('access_token') ||
                (offered.find((p) => p.startsWith('itk.token.')) || '').slice('itk.token.'.length);
        if (url.pathname !== '/ws/executions' || token !== TOKEN) {
                socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
                return;
        }
        const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${offered.includes('itk.v1') ? 'Sec-WebSocket-Protocol: itk.v1\r\n' : ''}\r\n`);
        const client = { socket, buf: Buffer.alloc(0), sub: null };
        clients.add(client);
        socket.on('data', (c) => wsFrames(client, c));
        socket.on('close', () => clients.delete(client));
        socket.on('error', () => clients.delete(client));
        wsSend(socket, JSON.stringify({ type: 'snapshot', executions: [...executions.values()].map(summary) }));
});

server.listen(PORT, '127.0.0.1', () => {
        const { port } = server.address();
        console.log(`listening on http://127.0.0.1:${port}/`);
        console.log(`http://127.0.0.1:${port}/#token=${TOKEN}`);
});
