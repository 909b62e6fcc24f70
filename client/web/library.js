// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The playbook library page: search and filter, a playbook's description,
// parameters, steps and YAML before running it, and the local library's editor
// (duplicate, edit with the daemon's validation as you type, import, export,
// save, delete). Routes: #/library, #/library/view/ID, #/library/edit/ID,
// #/library/new. Everything shown comes from the bridge; the daemon decides
// what is valid and what may be written (shipped playbooks are read-only).

const VALIDATE_DELAY_MS = 300;

let ui = null; // helpers from app.js: h, $, api, notice, clearNotice, state, loadPlaybooks
const filters = { text: '', origin: 'all', group: '' };
let draft = null; // {id, source, from} for #/library/new (duplicate, import, blank)
let editor = null; // the open editor's elements and validation sequence

export function setup(helpers) {
        ui = helpers;
        // The top bar says which page is open.
        const mark = () => {
                for (const [id, re] of [['nav-library', /^#\/library(\/|$)/], ['nav-credentials', /^#\/credentials$/]]) {
                        const a = document.getElementById(id);
                        if (a && re.test(location.hash))
                                a.setAttribute('aria-current', 'page');
                        else if (a)
                                a.removeAttribute('aria-current');
                }
        };
        window.addEventListener('hashchange', mark);
        mark();
}

export function parseRoute(hash) {
        if (hash === 'library')
                return { view: 'library' };
        let m = /^library\/(view|edit)\/(.+)$/.exec(hash);
        if (m)
                return { view: `library-${m[1]}`, id: decodeURIComponent(m[2]) };
        if (hash === 'library/new')
                return { view: 'library-new' };
        return null;
}

// Builds the page for @route; false when the route is not the library's.
export function build(route) {
        editor = null;
        switch (route.view) {
        case 'library':
                buildList();
                return true;
        case 'library-view':
                buildView(route.id);
                return true;
        case 'library-edit':
                buildEditor({ id: route.id, existing: true });
                return true;
        case 'library-new':
                buildEditor(draft || { id: '', source: '', from: null });
                return true;
        }
        return false;
}

// The playbook list changed (loaded, saved, deleted): redraw the list if shown.
export function playbooksChanged() {
        if (ui.state.route.view === 'library')
                renderList();
}

export function idPath(id) {
        return id.split('/').map(encodeURIComponent).join('/');
}

function main() {
        return ui.$('main');
}

function errorText(e) {
        return e && e.message ? e.message : String(e);
}

// --- list ---------------------------------------------------------------------------------

let listBox = null;
let listCount = null;

function buildList() {
        const { h } = ui;
        document.title = 'Playbook library — Ignition Toolkit';
        const search = h('input', { type: 'search', id: 'lib-search', value: filters.text,
                                    placeholder: 'Name, id, description…', autocomplete: 'off',
                                    oninput: (ev) => { filters.text = ev.target.value; renderList(); } });
        const origin = h('select', { id: 'lib-origin',
                                     onchange: (ev) => { filters.origin = ev.target.value; renderList(); } },
                         h('option', { value: 'all', text: 'All playbooks' }),
                         h('option', { value: 'local', text: 'Local library (editable)' }),
                         h('option', { value: 'read-only', text: 'Shipped and configured (read-only)' }),
                         h('option', { value: 'invalid', text: 'Not valid' }));
        origin.value = filters.origin;
        const group = h('select', { id: 'lib-group',
                                    onchange: (ev) => { filters.group = ev.target.value; renderList(); } });
        const importInput = h('input', { type: 'file', id: 'lib-import', accept: '.yaml,.yml,text/yaml',
                                         class: 'sr-only', tabindex: '-1', 'aria-hidden': 'true',
                                         onchange: (ev) => importFile(ev.target) });
        listBox = h('div', { id: 'lib-list' });
        listCount = h('p', { id: 'lib-count', class: 'muted', role: 'status', 'aria-live': 'polite' });
        main().replaceChildren(h('section', { class: 'panel library', 'aria-labelledby': 'lib-heading' },
                                 h('div', { class: 'panel-head' },
                                   h('h2', { id: 'lib-heading', text: 'Playbook library' }),
                                   h('div', { class: 'lib-actions' },
                                     h('button', { type: 'button', id: 'lib-new', text: 'New playbook',
                                                   onclick: () => openDraft({ id: 'local/new-playbook.yaml', source: BLANK, from: null }) }),
                                     h('button', { type: 'button', id: 'lib-import-button', text: 'Import file…',
                                                   onclick: () => importInput.click() }),
                                     importInput)),
                                 h('div', { class: 'lib-filters', role: 'search', 'aria-label': 'Filter playbooks' },
                                   h('div', { class: 'field' }, h('label', { for: 'lib-search', text: 'Search' }), search),
                                   h('div', { class: 'field' }, h('label', { for: 'lib-origin', text: 'Show' }), origin),
                                   h('div', { class: 'field' }, h('label', { for: 'lib-group', text: 'Group' }), group)),
                                 listCount, listBox));
        renderList();
}

const BLANK = `name: New playbook
version: "1.0"
description: What this playbook does.
steps:
  - id: hello
    name: Say hello
    type: utility.log
    parameters:
      message: hello
`;

function groupOf(pb) {
        return pb.group || pb.domain || 'Other';
}

function matches(pb) {
        if (filters.origin === 'local' && !pb.local)
                return false;
        if (filters.origin === 'read-only' && pb.local)
                return false;
        if (filters.origin === 'invalid' && pb.valid !== false)
                return false;
        if (filters.group && groupOf(pb) !== filters.group)
                return false;
        const q = filters.text.trim().toLowerCase();
        if (!q)
                return true;
        return [pb.name, pb.id, pb.description, pb.group, pb.domain]
                .some((s) => (s || '').toLowerCase().includes(q));
}

function renderList() {
        const { h, state, $ } = ui;
        if (!listBox || !listBox.isConnected)
                return;
        if (!state.playbooks) {
                listBox.replaceChildren(h('p', { class: 'muted', text: 'Loading playbooks…' }));
                return;
        }
        const groupSel = $('lib-group');
        const groups = [...new Set(state.playbooks.map(groupOf))].sort();
        const keep = filters.group;
        groupSel.replaceChildren(h('option', { value: '', text: 'All groups' }),
                                 ...groups.map((g) => h('option', { value: g, text: g })));
        groupSel.value = groups.includes(keep) ? keep : '';
        filters.group = groupSel.value;
        const shown = state.playbooks.filter(matches)
                .sort((a, b) => (a.name || a.id).localeCompare(b.name || b.id));
        listCount.textContent = `${shown.length} of ${state.playbooks.length} playbooks`;
        if (!shown.length) {
                listBox.replaceChildren(h('p', { class: 'muted', text: 'No playbook matches.' }));
                return;
        }
        listBox.replaceChildren(h('ul', { class: 'lib-list', 'aria-label': 'Playbooks' },
                                  shown.map((pb) => h('li', { class: 'lib-item', 'data-id': pb.id },
                                                      h('div', { class: 'lib-item-head' },
                                                        h('a', { href: `#/library/view/${idPath(pb.id)}`, class: 'lib-name',
                                                                 text: pb.name || pb.id }),
                                                        pb.local ? h('span', { class: 'tag tag-local', text: 'local' })
                                                                 : h('span', { class: 'tag', text: 'read-only' }),
                                                        pb.valid === false ? h('span', { class: 'tag tag-bad', text: 'invalid' }) : null,
                                                        pb.verified ? h('span', { class: 'tag tag-ok', text: 'verified' }) : null),
                                                      h('div', { class: 'lib-id mono muted', text: pb.id }),
                                                      pb.description ? h('p', { class: 'lib-desc', text: pb.description }) : null,
                                                      h('div', { class: 'muted small',
                                                                 text: `${groupOf(pb)} · ${pb.step_count ?? 0} steps · ${(pb.parameters || []).length} parameters` })))));
}

// --- one playbook -------------------------------------------------------------------------

async function buildView(id) {
        const { h, api } = ui;
        document.title = 'Playbook — Ignition Toolkit';
        const box = h('section', { class: 'panel library-view', 'aria-labelledby': 'libv-heading' },
                      h('h2', { id: 'libv-heading', text: id }),
                      h('p', { class: 'muted', text: 'Loading…' }));
        main().replaceChildren(box);
        let pb;
        try {
                pb = await api('GET', `api/playbooks/${idPath(id)}`);
        } catch (e) {
                if (!box.isConnected)
                        return;
                box.replaceChildren(h('h2', { id: 'libv-heading', text: 'Playbook not found' }),
                                    h('p', { class: 'error', text: errorText(e) }),
                                    h('p', {}, h('a', { href: '#/library', text: 'Back to the library' })));
                return;
        }
        if (!box.isConnected)
                return;
        document.title = `${pb.name || pb.id} — Ignition Toolkit`;
        const confirmBox = h('div', { class: 'confirm', role: 'group', 'aria-label': 'Confirm deletion', hidden: true });
        const status = h('span', { class: 'form-status', role: 'status' });
        const actions = h('div', { class: 'lib-actions', role: 'group', 'aria-label': 'Playbook actions' },
                          h('a', { class: 'button primary', id: 'libv-run', href: `#/run/${encodeURIComponent(pb.id)}`, text: 'Run…' }),
                          pb.local ? h('a', { class: 'button', id: 'libv-edit', href: `#/library/edit/${idPath(pb.id)}`, text: 'Edit' }) : null,
                          h('button', { type: 'button', id: 'libv-duplicate', text: 'Duplicate',
                                        onclick: () => openDraft({ id: copyId(pb.id), source: renameCopy(pb.source || ''), from: pb.id }) }),
                          h('button', { type: 'button', id: 'libv-export', text: 'Export',
                                        onclick: () => download(pb.id, pb.source || '') }),
                          pb.local ? h('button', { type: 'button', id: 'libv-delete', class: 'danger', text: 'Delete…',
                                                   onclick: () => askDelete(pb, confirmBox, status) }) : null,
                          status);
        const params = pb.parameters || [];
        const steps = pb.steps || [];
        box.replaceChildren(...[
                h('div', { class: 'panel-head' },
                  h('h2', { id: 'libv-heading', text: pb.name || pb.id }),
                  h('span', { class: 'muted', text: `${pb.id} · version ${pb.version || '?'}` })),
                h('p', { class: 'muted small', id: 'libv-origin',
                         text: pb.local ? 'In the local library: you can edit and delete it.'
                                        : `Read-only (${pb.origin || 'shipped'}): duplicate it to change it.` }),
                pb.description ? h('p', { class: 'description', id: 'libv-description', text: pb.description }) : null,
                pb.valid === false ? h('div', { class: 'banner banner-error', role: 'alert' },
                                       h('strong', { text: 'This playbook is not valid: ' }),
                                       h('ul', {}, (pb.errors || []).map((e) => h('li', { text: e })))) : null,
                actions, confirmBox,
                h('h3', { id: 'libv-params-heading', text: `Parameters (${params.length})` }),
                params.length
                        ? h('table', { class: 'lib-table', id: 'libv-params', 'aria-labelledby': 'libv-params-heading' },
                            h('thead', {}, h('tr', {}, ['Name', 'Type', 'Required', 'Default', 'Description'].map((t) => h('th', { scope: 'col', text: t })))),
                            h('tbody', {}, params.map((p) => h('tr', {},
                                                                 h('td', { class: 'mono', text: p.name }),
                                                                 h('td', { text: p.type }),
                                                                 h('td', { text: p.required ? 'yes' : 'no' }),
                                                                 h('td', { class: 'mono', text: p.default === undefined ? '' : JSON.stringify(p.default) }),
                                                                 h('td', { text: p.description || '' })))))
                        : h('p', { class: 'muted', text: 'No parameters.' }),
                h('h3', { id: 'libv-steps-heading', text: `Steps (${steps.length})` }),
                h('ol', { class: 'lib-steps', id: 'libv-steps', 'aria-labelledby': 'libv-steps-heading' },
                  steps.map((s) => h('li', {},
                                     h('span', { class: 'lib-step-name', text: s.name || s.id }), ' ',
                                     h('code', { text: s.type }),
                                     h('span', { class: 'muted small', text: ` · ${s.id}${s.timeout ? ` · timeout ${s.timeout} s` : ''}${s.on_failure && s.on_failure !== 'abort' ? ` · on failure ${s.on_failure}` : ''}` })))),
                (pb.rollback || []).length ? h('p', { class: 'muted small', text: `Rollback: ${(pb.rollback || []).map((s) => s.name || s.id).join(', ')}` }) : null,
                h('details', { class: 'lib-yaml', id: 'libv-yaml' },
                  h('summary', { text: 'YAML' }),
                  h('pre', { class: 'mono yaml', tabindex: '0', 'aria-label': 'Playbook YAML', text: pb.source || '' })),
        ].filter(Boolean));
}

function askDelete(pb, confirmBox, status) {
        const { h, api, loadPlaybooks } = ui;
        const yes = h('button', { type: 'button', class: 'danger', id: 'libv-delete-confirm', text: `Delete ${pb.id}`,
                                  onclick: async () => {
                                          yes.disabled = true;
                                          try {
                                                  await api('DELETE', `api/playbooks/${idPath(pb.id)}`);
                                          } catch (e) {
                                                  status.textContent = `Could not delete: ${errorText(e)}`;
                                                  status.classList.add('error');
                                                  confirmBox.hidden = true;
                                                  return;
                                          }
                                          await loadPlaybooks();
                                          location.hash = '#/library';
                                  } });
        const no = h('button', { type: 'button', text: 'Keep it',
                                 onclick: () => { confirmBox.hidden = true; ui.$('libv-delete').focus(); } });
        confirmBox.replaceChildren(h('span', { text: 'Delete this playbook from the local library? This cannot be undone.' }), yes, no);
        confirmBox.hidden = false;
        no.focus();
}

function copyId(id) {
        return id.replace(/(\.ya?ml)?$/, '-copy.yaml');
}

// The copy's display name says it is one, so the two are told apart in lists.
function renameCopy(source) {
        return source.replace(/^name:[ \t]*(["']?)(.*?)\1[ \t]*$/m,
                              (all, quote, name) => `name: ${quote}${name} (copy)${quote}`);
}

function download(id, text) {
        const a = document.createElement('a');
        const url = URL.createObjectURL(new Blob([text], { type: 'application/yaml' }));
        a.href = url;
        a.download = id.split('/').pop();
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 0);
}

function openDraft(d) {
        draft = d;
        if (location.hash === '#/library/new')
                build({ view: 'library-new' });
        else
                location.hash = '#/library/new';
}

async function importFile(input) {
        const file = input.files && input.files[0];
        input.value = '';
        if (!file)
                return;
        if (file.size > 1024 * 1024) {
                ui.notice(`${file.name} is larger than the 1 MiB a playbook may have.`);
                return;
        }
        const text = await file.text();
        const base = file.name.replace(/\.ya?ml$/i, '').replace(/[^A-Za-z0-9_.-]+/g, '-') || 'imported';
        openDraft({ id: `imported/${base}.yaml`, source: text, from: file.name });
}

// --- editor ---------------------------------------------------------------------------------

async function buildEditor(d) {
        const { h, api } = ui;
        document.title = 'Edit playbook — Ignition Toolkit';
        const box = h('section', { class: 'panel library-edit', 'aria-labelledby': 'libe-heading' },
                      h('h2', { id: 'libe-heading', text: d.existing ? `Edit ${d.id}` : 'New playbook' }));
        main().replaceChildren(box);
        let source = d.source;
        const loading = h('p', { class: 'muted', text: 'Loading…' });
        if (d.existing) {
                box.append(loading);
                try {
                        const pb = await api('GET', `api/playbooks/${idPath(d.id)}`);
                        if (!pb.local)
                                throw new Error(`${d.id} is read-only: duplicate it to change it.`);
                        source = pb.source || '';
                } catch (e) {
                        if (box.isConnected)
                                box.replaceChildren(h('h2', { id: 'libe-heading', text: 'Cannot edit' }),
                                                    h('p', { class: 'error', text: errorText(e) }),
                                                    h('p', {}, h('a', { href: '#/library', text: 'Back to the library' })));
                        return;
                }
                if (!box.isConnected)
                        return;
        }
        const idInput = h('input', { type: 'text', id: 'libe-id', class: 'mono', value: d.id, spellcheck: 'false',
                                     autocomplete: 'off', readonly: !!d.existing, 'aria-describedby': 'libe-id-hint' });
        const text = h('textarea', { id: 'libe-source', class: 'mono editor-text', wrap: 'off', spellcheck: 'false',
                                     autocapitalize: 'off', 'aria-describedby': 'libe-check', value: source });
        const gutter = h('div', { class: 'editor-gutter mono', 'aria-hidden': 'true' });
        const notes = h('div', { class: 'editor-notes mono', 'aria-hidden': 'true' });
        const check = h('p', { id: 'libe-check', class: 'editor-check', role: 'status', 'aria-live': 'polite' });
        const diagList = h('ul', { id: 'libe-diagnostics', class: 'diagnostics', 'aria-label': 'Problems' });
        const save = h('button', { type: 'submit', class: 'primary', id: 'libe-save', text: 'Save to the local library' });
        const status = h('span', { class: 'form-status', id: 'libe-status', role: 'status' });
        const form = h('form', { class: 'editor-form', novalidate: true, 'aria-labelledby': 'libe-heading',
                                 onsubmit: (ev) => { ev.preventDefault(); savePlaybook(); } },
                       h('div', { class: 'field' },
                         h('label', { for: 'libe-id', text: 'Id in the local library' }), idInput,
                         h('div', { class: 'hint', id: 'libe-id-hint',
                                    text: 'A relative path ending in .yaml, e.g. site/restart.yaml. Letters, digits, _ . - and /.' })),
                       h('div', { class: 'field' },
                         h('label', { for: 'libe-source', text: 'YAML' }),
                         h('div', { class: 'editor' }, gutter, text, notes)),
                       check, diagList,
                       h('div', { class: 'form-actions' }, save,
                         h('a', { href: d.existing ? `#/library/view/${idPath(d.id)}` : '#/library', text: 'Cancel' }),
                         status));
        if (d.from)
                box.append(h('p', { class: 'muted small', text: `From ${d.from}. Nothing is saved until you press Save.` }));
        box.append(form);
        loading.remove();
        editor = { text, gutter, notes, check, diagList, save, status, idInput, seq: 0, timer: null, diagnostics: [], errors: 0 };
        const ed = editor;
        text.addEventListener('input', () => {
                if (draft && !d.existing)
                        draft.source = text.value;
                drawGutter(ed);
                scheduleValidate(ed);
        });
        idInput.addEventListener('input', () => {
                if (draft && !d.existing)
                        draft.id = idInput.value;
        });
        text.addEventListener('scroll', () => {
                gutter.scrollTop = text.scrollTop;
                notes.scrollTop = text.scrollTop;
        });
        drawGutter(ed);
        validateNow(ed);
}

function scheduleValidate(ed) {
        clearTimeout(ed.timer);
        ed.check.textContent = 'Checking…';
        ed.check.className = 'editor-check';
        ed.timer = setTimeout(() => validateNow(ed), VALIDATE_DELAY_MS);
}

async function validateNow(ed) {
        const seq = ++ed.seq;
        let res;
        try {
                res = await ui.api('POST', 'api/playbooks/validate', { source: ed.text.value });
        } catch (e) {
                if (seq === ed.seq && editor === ed) {
                        ed.check.textContent = `Could not check: ${errorText(e)}`;
                        ed.check.className = 'editor-check error';
                }
                return;
        }
        // Only the newest text's answer counts.
        if (seq !== ed.seq || editor !== ed)
                return;
        ed.diagnostics = res.diagnostics || [];
        ed.errors = ed.diagnostics.filter((x) => x.severity === 'error').length;
        const warnings = ed.diagnostics.length - ed.errors;
        ed.check.textContent = ed.errors
                ? `${ed.errors} ${ed.errors === 1 ? 'error' : 'errors'}${warnings ? `, ${warnings} warnings` : ''}: fix them to save.`
                : `Valid${warnings ? ` (${warnings} warnings)` : ''}.`;
        ed.check.className = `editor-check ${ed.errors ? 'error' : 'ok'}`;
        ed.text.setAttribute('aria-invalid', ed.errors ? 'true' : 'false');
        drawDiagnostics(ed);
        drawGutter(ed);
}

function where(x) {
        return x.line ? (x.column ? `${x.line}:${x.column}` : `${x.line}`) : '';
}

function drawDiagnostics(ed) {
        const { h } = ui;
        ed.diagList.replaceChildren(...ed.diagnostics.map((x) => h('li', { class: `diag diag-${x.severity}` },
                h('button', { type: 'button', class: 'link-button diag-where', disabled: !x.line,
                              'aria-label': x.line ? `${where(x)}: go to line ${x.line}${x.column ? `, column ${x.column}` : ''}` : null,
                              text: where(x) || '—', onclick: () => goTo(ed, x.line, x.column) }),
                ` ${x.severity}: `, x.step_id ? h('span', { class: 'mono', text: `${x.step_id}: ` }) : null,
                h('span', { class: 'diag-message', text: x.message }))));
}

function goTo(ed, line, column) {
        const lines = ed.text.value.split('\n');
        let pos = 0;
        for (let i = 0; i < line - 1 && i < lines.length; i++)
                pos += lines[i].length + 1;
        pos += Math.max(0, (column || 1) - 1);
        ed.text.focus();
        ed.text.setSelectionRange(pos, pos);
}

// Line numbers, and each problem beside the line it is on.
function drawGutter(ed) {
        const { h } = ui;
        const count = ed.text.value.split('\n').length;
        const byLine = new Map();
        for (const x of ed.diagnostics) {
                const line = x.line || 1;
                if (!byLine.has(line))
                        byLine.set(line, []);
                byLine.get(line).push(x);
        }
        const nums = [];
        const notes = [];
        for (let i = 1; i <= Math.max(count, ...byLine.keys()); i++) {
                const here = byLine.get(i) || [];
                const sev = here.some((x) => x.severity === 'error') ? 'error' : here.length ? 'warning' : '';
                const label = here.map((x) => `${where(x)} ${x.message}`).join(' · ');
                nums.push(h('div', { class: `gutter-line${sev ? ` gutter-${sev}` : ''}`, 'data-line': i, title: label || null },
                            sev ? '● ' : '', String(i)));
                notes.push(h('div', { class: `note-line${sev ? ` note-${sev}` : ''}`, 'data-line': i, title: label || null,
                                      text: label }));
        }
        ed.gutter.replaceChildren(...nums);
        ed.notes.replaceChildren(...notes);
        ed.gutter.scrollTop = ed.text.scrollTop;
        ed.notes.scrollTop = ed.text.scrollTop;
}

async function savePlaybook() {
        const ed = editor;
        if (!ed)
                return;
        const id = ed.idInput.value.trim();
        ed.status.className = 'form-status';
        if (!/^[A-Za-z0-9_.\/-]+\.yaml$/.test(id) || id.split('/').some((p) => !p || p.startsWith('.'))) {
                ed.status.textContent = 'The id must be a relative path ending in .yaml (letters, digits, _ . - and /).';
                ed.status.classList.add('error');
                ed.idInput.setAttribute('aria-invalid', 'true');
                ed.idInput.focus();
                return;
        }
        ed.idInput.removeAttribute('aria-invalid');
        ed.save.disabled = true;
        ed.save.setAttribute('aria-busy', 'true');
        ed.status.textContent = 'Saving…';
        try {
                await ui.api('PUT', `api/playbooks/${idPath(id)}`, { source: ed.text.value });
        } catch (e) {
                ed.status.textContent = `Not saved: ${errorText(e)}`;
                ed.status.classList.add('error');
                return;
        } finally {
                ed.save.disabled = false;
                ed.save.removeAttribute('aria-busy');
        }
        draft = null;
        await ui.loadPlaybooks();
        location.hash = `#/library/view/${idPath(id)}`;
}
