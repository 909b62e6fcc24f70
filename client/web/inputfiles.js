// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Input files (docs/input-files.md): a `file` parameter of the run form is filled by
// uploading a file from this computer (streamed through the bridge into the daemon's
// staging area) or by choosing one of the files the administrator allows on the
// server. Never by typing a path. Either way the daemon answers a token, the file's
// size and its SHA-256, shown here; the parameter's value is "staged:TOKEN", and the
// run gets its own copy in its folder.

import { ensureStylesheet, formatSize } from './dom.js';

let ui = null;

export function setup(helpers) {
        ui = helpers;
}

// The field of a `file` parameter. Its first input is the hidden value the form reads
// (app.js readParams); @fieldId labels the upload control.
export function fileField(p, fieldId) {
        const { h } = ui;
        ensureStylesheet('itk-inputfiles-css', 'inputfiles.css');
        const value = h('input', { type: 'hidden', name: p.name, value: '', 'data-file-value': true });
        const chosenId = `${fieldId}-chosen`;
        const hostId = `${fieldId}-host`;
        const chosen = h('div', { class: 'file-chosen', id: chosenId, role: 'status', 'aria-live': 'polite' });
        const progress = h('progress', { class: 'file-progress', max: '100', value: '0', hidden: true,
                                         'aria-label': `Upload progress of ${p.name}` });
        const upload = h('input', { type: 'file', id: fieldId, class: 'file-upload',
                                    'aria-describedby': `${fieldId}-hint ${fieldId}-error ${chosenId}` });
        const hostButton = h('button', { type: 'button', class: 'file-host-button', 'aria-expanded': 'false',
                                         'aria-controls': hostId, text: 'Choose from server…' });
        const hostPanel = h('div', { class: 'file-host', id: hostId, hidden: true, role: 'group',
                                     'aria-label': `Files on the server for ${p.name}` });
        const box = h('div', { class: 'file-param' }, value,
                      h('div', { class: 'file-actions' },
                        h('span', { class: 'file-upload-label', 'aria-hidden': 'true', text: 'Upload…' }),
                        upload, hostButton),
                      progress, chosen, hostPanel,
                      p.default !== undefined && p.default !== null && p.default !== ''
                              ? h('div', { class: 'hint file-default',
                                           text: `Nothing chosen: the playbook's own default is used (${p.default}).` })
                              : null);
        const field = { p, value, chosen, progress, upload, hostButton, hostPanel, xhr: null };
        upload.addEventListener('change', () => {
                if (upload.files && upload.files[0])
                        startUpload(field, upload.files[0]);
        });
        hostButton.addEventListener('click', () => toggleHost(field));
        return box;
}

function showChosen(field, info, origin) {
        const { h } = ui;
        field.value.value = `staged:${info.token}`;
        field.value.removeAttribute('aria-invalid');
        // A "Required." from an earlier submit no longer holds.
        const err = field.chosen.closest('.field')?.querySelector('.field-error');
        if (err)
                err.textContent = '';
        field.chosen.classList.remove('error');
        field.chosen.replaceChildren(
                h('span', { class: 'file-name', text: info.name }),
                h('span', { class: 'muted', text: ` — ${formatSize(info.size)} (${info.size} bytes), ${origin}` }),
                h('div', { class: 'file-sha' }, h('span', { class: 'muted', text: 'SHA-256 ' }),
                  h('code', { class: 'file-sha256', text: info.sha256 })));
}

function showError(field, message) {
        field.value.value = '';
        field.chosen.classList.add('error');
        field.chosen.textContent = message;
}

// XMLHttpRequest, not fetch: it reports upload progress. The body is the File itself,
// so the browser sends its Content-Length and streams it from disk.
function startUpload(field, file) {
        if (field.xhr)
                field.xhr.abort();
        const xhr = new XMLHttpRequest();
        field.xhr = xhr;
        field.value.value = '';
        field.progress.hidden = false;
        field.progress.value = 0;
        field.chosen.classList.remove('error');
        field.chosen.textContent = `Uploading ${file.name} (${formatSize(file.size)})…`;
        xhr.open('POST', `api/input-files?name=${encodeURIComponent(file.name)}`);
        xhr.setRequestHeader('Authorization', `Bearer ${ui.state.token}`);
        xhr.responseType = 'json';
        xhr.upload.addEventListener('progress', (ev) => {
                if (ev.lengthComputable)
                        field.progress.value = Math.floor((ev.loaded / ev.total) * 100);
        });
        xhr.addEventListener('load', () => {
                field.xhr = null;
                field.progress.hidden = true;
                const body = xhr.response;
                if (xhr.status === 200 && body && body.token)
                        showChosen(field, body, 'uploaded');
                else
                        showError(field, `Upload failed: ${(body && body.message) || `HTTP ${xhr.status}`}`);
        });
        xhr.addEventListener('error', () => {
                field.xhr = null;
                field.progress.hidden = true;
                showError(field, 'Upload failed: the bridge cannot be reached.');
        });
        xhr.send(file);
}

async function toggleHost(field) {
        const { h, api } = ui;
        const open = field.hostPanel.hidden;
        field.hostPanel.hidden = !open;
        field.hostButton.setAttribute('aria-expanded', String(open));
        if (!open)
                return;
        field.hostPanel.replaceChildren(h('p', { class: 'muted small', text: 'Loading the server’s files…' }));
        let files;
        try {
                files = await api('GET', 'api/input-files/host');
        } catch (e) {
                field.hostPanel.replaceChildren(h('p', { class: 'error', text: `Cannot list the server’s files: ${e.message}` }));
                return;
        }
        if (!files.length) {
                field.hostPanel.replaceChildren(h('p', { class: 'muted small',
                        text: 'No files: the administrator allows no server folders, or they are empty (toolkit.conf InputFileDirectories).' }));
                return;
        }
        field.hostPanel.replaceChildren(h('ul', { class: 'file-host-list' }, files.map((f) => h('li', {},
                h('button', { type: 'button', class: 'file-host-item', 'data-name': f.name,
                              onclick: () => chooseHost(field, f) },
                  h('span', { class: 'file-name', text: f.name }),
                  h('span', { class: 'muted small', text: ` ${formatSize(f.size)} · ${f.directory}` }))))));
        const first = field.hostPanel.querySelector('button');
        if (first)
                first.focus();
}

async function chooseHost(field, f) {
        const { api } = ui;
        field.chosen.classList.remove('error');
        field.chosen.textContent = `Copying ${f.name} for the run…`;
        field.value.value = '';
        try {
                const info = await api('POST', 'api/input-files/host', { directory: f.directory, name: f.name });
                showChosen(field, info, `from ${f.directory}`);
        } catch (e) {
                showError(field, `Cannot use ${f.name}: ${e.message}`);
                return;
        }
        field.hostPanel.hidden = true;
        field.hostButton.setAttribute('aria-expanded', 'false');
        field.hostButton.focus();
}
