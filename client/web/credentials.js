// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The credentials page (#/credentials): add, edit and delete stored credentials.
// Secrets are write-only: the bridge never returns them, so the page never has
// them to show; on edit the secret fields start empty, and empty means "keep the
// stored one".

let ui = null; // helpers from app.js: h, $, api, notice, state, loadCredentials
let editing = null; // name being edited, '' for a new one, null for none

export function setup(helpers) {
        ui = helpers;
}

export function parseRoute(hash) {
        return hash === 'credentials' ? { view: 'credentials' } : null;
}

export function build(route) {
        if (route.view !== 'credentials')
                return false;
        editing = null;
        buildPage();
        return true;
}

// The credential list changed (loaded or saved): redraw if shown.
export function credentialsChanged() {
        if (ui.state.route.view === 'credentials')
                renderList();
}

function errorText(e) {
        return e && e.message ? e.message : String(e);
}

let listBox = null;
let formBox = null;

function buildPage() {
        const { h, $ } = ui;
        document.title = 'Credentials — Ignition Toolkit';
        listBox = h('div', { id: 'cred-list' });
        formBox = h('div', { id: 'cred-form-box' });
        $('main').replaceChildren(h('section', { class: 'panel credentials', 'aria-labelledby': 'cred-heading' },
                                    h('div', { class: 'panel-head' },
                                      h('h2', { id: 'cred-heading', text: 'Credentials' }),
                                      h('button', { type: 'button', id: 'cred-add', class: 'primary', text: 'Add credential',
                                                    onclick: () => openForm('') })),
                                    h('p', { class: 'muted', text: 'A run given a credential fills its gateway URL, user name, password and API token parameters that were left empty. Passwords and tokens are stored by the daemon and never shown again.' }),
                                    formBox, listBox));
        renderList();
}

function secretKind(c) {
        if (c.has_api_token && c.has_password)
                return 'password and API token stored';
        if (c.has_api_token)
                return 'API token stored';
        if (c.has_password)
                return 'password stored';
        return 'no secret';
}

function renderList() {
        const { h, state } = ui;
        if (!listBox || !listBox.isConnected)
                return;
        const creds = [...(state.credentials || [])].sort((a, b) => a.name.localeCompare(b.name));
        if (!creds.length) {
                listBox.replaceChildren(h('p', { class: 'muted', id: 'cred-empty', text: 'No credentials stored yet.' }));
                return;
        }
        listBox.replaceChildren(h('table', { class: 'lib-table', id: 'cred-table', 'aria-label': 'Stored credentials' },
                h('thead', {}, h('tr', {}, ['Name', 'User name', 'Gateway URL', 'Secret', 'Description', 'Actions']
                        .map((t) => h('th', { scope: 'col', text: t })))),
                h('tbody', {}, creds.map((c) => h('tr', { 'data-name': c.name },
                        h('th', { scope: 'row', class: 'mono', text: c.name }),
                        h('td', { text: c.username || '' }),
                        h('td', { class: 'mono', text: c.gateway_url || '' }),
                        h('td', { text: secretKind(c) }),
                        h('td', { text: c.description || '' }),
                        h('td', { class: 'row-actions' },
                          h('button', { type: 'button', class: 'cred-edit', text: 'Edit', 'aria-label': `Edit ${c.name}`,
                                        onclick: () => openForm(c.name) }),
                          h('button', { type: 'button', class: 'danger cred-delete', text: 'Delete', 'aria-label': `Delete ${c.name}`,
                                        onclick: (ev) => askDelete(c, ev.target.closest('td')) })))))));
}

function field(id, label, input, hint) {
        const { h } = ui;
        if (hint)
                input.setAttribute('aria-describedby', `${id}-hint`);
        return h('div', { class: 'field' }, h('label', { for: id, text: label }), input,
                 hint ? h('div', { class: 'hint', id: `${id}-hint`, text: hint }) : null);
}

function openForm(name) {
        const { h, state } = ui;
        editing = name;
        const existing = name ? (state.credentials || []).find((c) => c.name === name) : null;
        const isNew = !existing;
        const nameInput = h('input', { type: 'text', id: 'cred-name', name: 'name', class: 'mono', autocomplete: 'off',
                                       spellcheck: 'false', value: existing ? existing.name : '', readonly: !isNew, required: true });
        const user = h('input', { type: 'text', id: 'cred-username', name: 'username', autocomplete: 'off',
                                  value: existing ? existing.username || '' : '' });
        const url = h('input', { type: 'url', id: 'cred-gateway-url', name: 'gateway_url', class: 'mono', autocomplete: 'off',
                                 placeholder: 'http://gateway:8088', value: existing ? existing.gateway_url || '' : '' });
        // Never prefilled: the page does not have the secret, and must not pretend to.
        const pass = h('input', { type: 'password', id: 'cred-password', name: 'password', autocomplete: 'new-password', value: '' });
        const token = h('input', { type: 'password', id: 'cred-api-token', name: 'api_token', autocomplete: 'new-password',
                                   placeholder: 'name:key', value: '' });
        const desc = h('input', { type: 'text', id: 'cred-description', name: 'description', autocomplete: 'off',
                                  value: existing ? existing.description || '' : '' });
        const status = h('span', { class: 'form-status', id: 'cred-status', role: 'status' });
        const submit = h('button', { type: 'submit', class: 'primary', id: 'cred-save', text: isNew ? 'Add credential' : 'Save changes' });
        const keepHint = (has, what) => (isNew ? `Write-only: stored by the daemon, never shown again.`
                                              : has ? `A ${what} is stored. Leave empty to keep it; type a new one to replace it.`
                                                    : `No ${what} is stored. Leave empty for none.`);
        const form = h('form', { class: 'cred-form', novalidate: true, 'aria-labelledby': 'cred-form-heading',
                                 onsubmit: (ev) => { ev.preventDefault(); save(isNew, form, submit, status); } },
                       h('h3', { id: 'cred-form-heading', text: isNew ? 'New credential' : `Edit ${name}` }),
                       field('cred-name', 'Name', nameInput, isNew ? 'Letters, digits, _ . and -.' : 'The name cannot change.'),
                       field('cred-username', 'User name', user),
                       field('cred-password', 'Password', pass, keepHint(existing && existing.has_password, 'password')),
                       field('cred-gateway-url', 'Gateway URL', url),
                       field('cred-api-token', 'API token', token,
                             `NAME:KEY (an Ignition 8.3 API token). ${keepHint(existing && existing.has_api_token, 'API token')}`),
                       field('cred-description', 'Description', desc),
                       h('div', { class: 'form-actions' }, submit,
                         h('button', { type: 'button', id: 'cred-cancel', text: 'Cancel',
                                       onclick: () => { formBox.replaceChildren(); editing = null; ui.$('cred-add').focus(); } }),
                         status));
        formBox.replaceChildren(form);
        (isNew ? nameInput : user).focus();
}

async function save(isNew, form, submit, status) {
        const { api, loadCredentials } = ui;
        const el = form.elements;
        const name = el.name.value.trim();
        status.className = 'form-status';
        if (!/^[A-Za-z0-9_.-]{1,128}$/.test(name)) {
                status.textContent = 'The name must be letters, digits, _ . and - (at most 128).';
                status.classList.add('error');
                el.name.setAttribute('aria-invalid', 'true');
                el.name.focus();
                return;
        }
        el.name.removeAttribute('aria-invalid');
        const body = { username: el.username.value.trim(), gateway_url: el.gateway_url.value.trim(),
                       description: el.description.value.trim() };
        // An empty secret field means "keep": it is not sent at all.
        if (el.password.value)
                body.password = el.password.value;
        if (el.api_token.value)
                body.api_token = el.api_token.value;
        submit.disabled = true;
        submit.setAttribute('aria-busy', 'true');
        status.textContent = 'Saving…';
        try {
                if (isNew)
                        await api('POST', 'api/credentials', { name, ...body });
                else
                        await api('PUT', `api/credentials/${encodeURIComponent(name)}`, body);
        } catch (e) {
                status.textContent = `Not saved: ${errorText(e)}`;
                status.classList.add('error');
                submit.disabled = false;
                submit.removeAttribute('aria-busy');
                return;
        }
        // The secrets leave the page with the form.
        el.password.value = '';
        el.api_token.value = '';
        formBox.replaceChildren(ui.h('p', { class: 'ok', id: 'cred-saved', role: 'status', text: `Saved credential ${name}.` }));
        editing = null;
        await loadCredentials();
        renderList();
}

function askDelete(c, cell) {
        const { h, api, loadCredentials } = ui;
        const original = [...cell.childNodes];
        const restore = () => {
                cell.replaceChildren(...original);
                cell.querySelector('.cred-delete').focus();
        };
        const yes = h('button', { type: 'button', class: 'danger', id: 'cred-delete-confirm', text: `Delete ${c.name}`,
                                  onclick: async () => {
                                          yes.disabled = true;
                                          try {
                                                  await api('DELETE', `api/credentials/${encodeURIComponent(c.name)}`);
                                          } catch (e) {
                                                  ui.notice(`Could not delete ${c.name}: ${errorText(e)}`);
                                                  restore();
                                                  return;
                                          }
                                          if (editing === c.name)
                                                  formBox.replaceChildren();
                                          await loadCredentials();
                                          renderList();
                                  } });
        const no = h('button', { type: 'button', text: 'Keep', onclick: restore });
        cell.replaceChildren(h('span', { class: 'small', text: 'Delete? ' }), yes, no);
        no.focus();
}
