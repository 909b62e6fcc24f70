// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Run context: what a run was started with, and starting the next one.
// - The run form says which parameters the chosen credential fills, points a
//   missing gateway URL at the credential picker, takes per-step timeout
//   overrides, and remembers the last values per playbook (localStorage; never a
//   secret: password-like parameters are not kept).
// - A run's detail shows its parameters (secrets masked by the daemon, and here
//   again by name), the credential and the timeouts it used, and "Run again"
//   opens the form filled with them.

const LAST_PREFIX = 'itk-run-last:';
const RERUN_KEY = 'itk-rerun';
const SECRET_NAME = /password|passwd|secret|token|api[_-]?key/i;
const MASK = '********';
const MAX_TIMEOUT_S = 2592000; // the daemon's bound on any duration (30 days)

// Parameters a credential fills when left empty (daemon/itk-manager.c), and from what.
const FILLS = {
        gateway_url: 'gateway_url', url: 'gateway_url',
        username: 'username', user: 'username', gateway_username: 'username',
        password: 'password', pass: 'password', gateway_password: 'password',
        gateway_token: 'api_token',
};
const FIELD_LABEL = { gateway_url: 'gateway URL', username: 'user name', password: 'password', api_token: 'API token' };

let ui = null;
let current = null; // {pb, form, explain, steps} of the open run form

export function setup(helpers) {
        ui = helpers;
}

function isSecret(p, input) {
        return SECRET_NAME.test(p.name) || (input && input.type === 'password') || FILLS[p.name] === 'password';
}

function load(key, storage) {
        try {
                const raw = storage.getItem(key);
                return raw ? JSON.parse(raw) : null;
        } catch (e) {
                return null;
        }
}

function store(key, value, storage) {
        try {
                storage.setItem(key, JSON.stringify(value));
        } catch (e) {
                // Storage full or disabled: the form simply does not remember.
        }
}

// --- the run form -------------------------------------------------------------------------

export function requiredMessage(p) {
        const field = FILLS[p.name];
        if (!field)
                return 'Required.';
        return `Required: type it, or choose a stored credential with a ${FIELD_LABEL[field]} under Options (below).`;
}

export function enhanceRunForm(pb, form) {
        const { h } = ui;
        const sel = form.elements.credential_name;
        const explain = h('div', { class: 'hint cred-fills', id: 'run-credential-fills', 'aria-live': 'polite' });
        sel.closest('.field').append(explain);
        sel.setAttribute('aria-describedby', 'run-credential-fills');
        // Parameters a credential can fill point at the picker.
        for (const p of pb.parameters || []) {
                const field = p.type === 'credential' ? 'name' : FILLS[p.name];
                if (!field)
                        continue;
                const box = form.querySelector(`[data-param="${CSS.escape(p.name)}"]`);
                box.querySelector('.hint').append(
                        box.querySelector('.hint').textContent ? ' ' : '',
                        h('button', { type: 'button', class: 'link-button pick-credential',
                                      text: `Use a stored credential's ${field === 'name' ? 'name' : FIELD_LABEL[field]}`,
                                      onclick: () => sel.focus() }));
        }
        const steps = h('div', { class: 'timeouts', id: 'run-timeouts' }, h('p', { class: 'muted small', text: 'Loading steps…' }));
        form.querySelector('.form-actions').before(
                h('details', { class: 'timeouts-box', id: 'run-timeouts-box' },
                  h('summary', { text: 'Step timeouts' }),
                  h('p', { class: 'hint', text: 'Seconds per attempt; empty keeps the playbook\'s own.' }), steps));
        current = { pb, form, explain, steps: null };
        const mine = current;
        sel.addEventListener('change', () => explainCredential(mine));
        form.addEventListener('input', () => explainCredential(mine));
        // Prefill: "Run again" first, else what was last used with this playbook.
        const rerun = load(RERUN_KEY, sessionStorage);
        let values = null;
        if (rerun && rerun.playbook === pb.id) {
                values = rerun;
                sessionStorage.removeItem(RERUN_KEY);
                form.prepend(h('p', { class: 'banner', id: 'run-prefilled', role: 'status',
                                      text: 'Filled in from the run you chose to run again. Passwords are never kept: type them again or use a credential.' }));
        } else {
                values = load(LAST_PREFIX + pb.id, localStorage);
                if (values)
                        form.prepend(h('p', { class: 'muted small', id: 'run-remembered', text: 'Filled in with the values you used last time (passwords are never kept).' }));
        }
        if (values)
                applyValues(pb, form, values);
        explainCredential(mine);
        loadSteps(mine, values && values.timeouts);
}

export function credentialsChanged() {
        if (!current || !current.form.isConnected)
                return;
        const sel = current.form.elements.credential_name;
        if (current.pendingCredential && !sel.value &&
            [...sel.options].some((o) => o.value === current.pendingCredential))
                sel.value = current.pendingCredential;
        current.pendingCredential = null;
        explainCredential(current);
}

function explainCredential(ctx) {
        const { state } = ui;
        const name = ctx.form.elements.credential_name.value;
        const c = (state.credentials || []).find((x) => x.name === name);
        const fillable = (ctx.pb.parameters || []).filter((p) => p.type === 'credential' || FILLS[p.name]);
        if (!fillable.length) {
                ctx.explain.textContent = 'This playbook has no parameter a credential fills.';
                return;
        }
        if (!c) {
                ctx.explain.textContent = `A credential can fill: ${fillable.map((p) => p.name).join(', ')}.`;
                return;
        }
        const parts = [];
        for (const p of fillable) {
                const input = ctx.form.querySelector(`[data-param="${CSS.escape(p.name)}"] input, [data-param="${CSS.escape(p.name)}"] select, [data-param="${CSS.escape(p.name)}"] textarea`);
                if (input && input.value.trim() !== '' && input.type !== 'checkbox') {
                        parts.push(`${p.name}: kept as typed`);
                        continue;
                }
                const field = p.type === 'credential' ? 'name' : FILLS[p.name];
                const has = field === 'name' ? true
                        : field === 'password' ? c.has_password
                        : field === 'api_token' ? c.has_api_token
                        : !!c[field];
                if (!has)
                        parts.push(`${p.name}: not in this credential`);
                else if (field === 'password' || field === 'api_token')
                        parts.push(`${p.name}: the stored ${FIELD_LABEL[field]}`);
                else
                        parts.push(`${p.name}: ${field === 'name' ? c.name : c[field]}`);
        }
        ctx.explain.textContent = `${c.name} fills ${parts.join('; ')}.`;
}

function applyValues(pb, form, values) {
        for (const p of pb.parameters || []) {
                const box = form.querySelector(`[data-param="${CSS.escape(p.name)}"]`);
                const input = box && box.querySelector('input, textarea, select');
                // A staged file is used once; a run's recorded path is not a choice.
                if (p.type === 'file')
                        continue;
                if (!input || !values.parameters || !(p.name in values.parameters) || isSecret(p, input))
                        continue;
                const v = values.parameters[p.name];
                if (v === MASK)
                        continue;
                if (input.type === 'checkbox')
                        input.checked = v === true;
                else if (p.type === 'list' || p.type === 'dict')
                        input.value = JSON.stringify(v);
                else
                        input.value = v === null || v === undefined ? '' : String(v);
        }
        const sel = form.elements.credential_name;
        if (values.credential && [...sel.options].some((o) => o.value === values.credential))
                sel.value = values.credential;
        else if (values.credential && current)
                current.pendingCredential = values.credential; // the list is still loading
        form.elements.debug_mode.checked = !!values.debug;
}

async function loadSteps(ctx, timeouts) {
        const { h, api } = ui;
        let pb;
        try {
                pb = await api('GET', `api/playbooks/${ctx.pb.id.split('/').map(encodeURIComponent).join('/')}`);
        } catch (e) {
                ctx.steps = [];
                ctx.form.querySelector('#run-timeouts').replaceChildren(h('p', { class: 'muted small', text: 'Steps could not be loaded.' }));
                return;
        }
        if (!ctx.form.isConnected)
                return;
        ctx.steps = pb.steps || [];
        const box = ctx.form.querySelector('#run-timeouts');
        box.replaceChildren(...ctx.steps.map((s, i) => h('div', { class: 'field field-inline' },
                h('label', { for: `timeout-${i}`, text: s.name || s.id }),
                h('input', { type: 'number', min: '1', max: String(MAX_TIMEOUT_S), step: '1', id: `timeout-${i}`,
                             class: 'timeout-input', 'data-step': s.id, inputmode: 'numeric',
                             placeholder: s.timeout ? String(s.timeout) : '',
                             value: timeouts && timeouts[s.id] ? String(timeouts[s.id]) : null }),
                h('span', { class: 'muted small', text: ` s (playbook: ${s.timeout ?? '?'} s)` }))));
        if (timeouts && Object.keys(timeouts).length)
                ctx.form.querySelector('#run-timeouts-box').open = true;
}

// Adds timeout overrides to @body and remembers the form; false (with the problem
// shown) when a timeout is not a whole number of seconds in range.
export function beforeSubmit(pb, form, body) {
        const overrides = {};
        let ok = true;
        for (const input of form.querySelectorAll('.timeout-input')) {
                input.removeAttribute('aria-invalid');
                const raw = input.value.trim();
                if (raw === '')
                        continue;
                const n = Number(raw);
                if (!/^\d+$/.test(raw) || n < 1 || n > MAX_TIMEOUT_S) {
                        input.setAttribute('aria-invalid', 'true');
                        if (ok) {
                                form.querySelector('#run-timeouts-box').open = true;
                                input.focus();
                        }
                        ok = false;
                        continue;
                }
                overrides[input.dataset.step] = n;
        }
        const status = form.querySelector('.form-status');
        if (!ok) {
                status.textContent = `A step timeout must be a whole number of seconds from 1 to ${MAX_TIMEOUT_S}.`;
                status.classList.add('error');
                return false;
        }
        if (Object.keys(overrides).length)
                body.timeout_overrides = overrides;
        const kept = {};
        for (const p of pb.parameters || []) {
                const input = form.querySelector(`[data-param="${CSS.escape(p.name)}"] input, [data-param="${CSS.escape(p.name)}"] textarea, [data-param="${CSS.escape(p.name)}"] select`);
                if (p.name in body.parameters && !isSecret(p, input) && p.type !== 'file')
                        kept[p.name] = body.parameters[p.name];
        }
        store(LAST_PREFIX + pb.id, { parameters: kept, credential: body.credential_name || '',
                                     debug: !!body.debug_mode, timeouts: overrides }, localStorage);
        return true;
}

// --- a run's context ------------------------------------------------------------------------

// The "started with" box of an execution's detail; fills itself from the bridge.
export function contextBox(id) {
        const { h } = ui;
        const box = h('section', { class: 'run-context', id: 'run-context', 'aria-labelledby': 'run-context-heading' },
                      h('h3', { id: 'run-context-heading', text: 'Started with' }),
                      h('p', { class: 'muted small', text: 'Loading…' }));
        fillContext(id, box);
        return box;
}

async function fillContext(id, box) {
        const { h, api, state } = ui;
        let ctx;
        try {
                ctx = await api('GET', `api/executions/${encodeURIComponent(id)}/context`);
        } catch (e) {
                if (box.isConnected)
                        box.replaceChildren(h('h3', { id: 'run-context-heading', text: 'Started with' }),
                                            h('p', { class: 'muted small', text: `Not available: ${e.message}` }));
                return;
        }
        if (!box.isConnected)
                return;
        const params = ctx.parameters || {};
        const names = Object.keys(params).sort();
        const timeouts = ctx.timeout_overrides || {};
        const inLibrary = (state.playbooks || []).some((p) => p.id === ctx.playbook);
        const show = (name, v) => (v === MASK || SECRET_NAME.test(name) ? h('span', { class: 'masked', text: 'hidden' })
                                                                         : h('code', { text: typeof v === 'string' ? v : JSON.stringify(v) }));
        box.replaceChildren(
                h('div', { class: 'pane-head' },
                  h('h3', { id: 'run-context-heading', text: 'Started with' }),
                  h('button', { type: 'button', id: 'run-again', disabled: !inLibrary,
                                title: inLibrary ? null : 'Only library playbooks can be run again from here',
                                text: 'Run again…', onclick: () => runAgain(ctx) })),
                h('dl', { class: 'context-list' },
                  h('dt', { text: 'Credential' }), h('dd', { id: 'run-context-credential', text: ctx.credential || 'none' }),
                  ctx.gateway_url ? [h('dt', { text: 'Gateway URL' }), h('dd', { class: 'mono', text: ctx.gateway_url })] : null,
                  h('dt', { text: 'Parameters' }),
                  h('dd', {}, names.length
                          ? h('ul', { class: 'context-params', id: 'run-context-params' },
                              names.map((n) => h('li', { 'data-param': n }, h('span', { class: 'mono', text: `${n} = ` }), show(n, params[n]))))
                          : h('span', { class: 'muted', text: 'none' })),
                  Object.keys(timeouts).length
                          ? [h('dt', { text: 'Step timeouts' }),
                             h('dd', { id: 'run-context-timeouts', text: Object.entries(timeouts).map(([k, v]) => `${k}: ${v} s`).join(', ') })]
                          : null));
}

function runAgain(ctx) {
        const parameters = {};
        // What the credential filled is left for it to fill again (it may have changed).
        for (const [k, v] of Object.entries(ctx.parameters || {}))
                if (v !== MASK && !SECRET_NAME.test(k) && !(ctx.credential && FILLS[k]))
                        parameters[k] = v;
        store(RERUN_KEY, { playbook: ctx.playbook, parameters, credential: ctx.credential || '',
                           debug: !!ctx.debug_mode, timeouts: ctx.timeout_overrides || {} }, sessionStorage);
        location.hash = `#/run/${encodeURIComponent(ctx.playbook)}`;
}
