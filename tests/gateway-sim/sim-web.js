// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The behaviour of the simulator's web pages: the dialogs the old tool's
// playbooks click through (install with certificate and licence acceptance,
// uninstall from a row menu, restart with "I understand the risks", trial
// reset) on top of the /web/... form endpoints of sim-web.c. Plain script.
(function () {
        'use strict';

        function el(html) {
                const t = document.createElement('template');
                t.innerHTML = html.trim();
                return t.content.firstElementChild;
        }

        function esc(s) {
                return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
        }

        async function post(url, body, type) {
                const r = await fetch(url, {
                        method: 'POST',
                        body: body || null,
                        headers: type ? { 'Content-Type': type } : {},
                        credentials: 'same-origin',
                });
                let data = null;
                try {
                        data = await r.json();
                } catch (e) {
                        data = null;
                }
                if (!r.ok && r.status !== 409)
                        throw new Error((data && data.message) || `HTTP ${r.status}`);
                return data;
        }

        // One modal at a time, over an overlay that covers the page.
        function openModal(html) {
                closeModal();
                const overlay = el('<div class="modal-overlay"></div>');
                const modal = el(`<div class="modal" role="dialog" aria-modal="true">${html}</div>`);
                overlay.appendChild(modal);
                document.body.appendChild(overlay);
                return modal;
        }

        function closeModal() {
                for (const o of document.querySelectorAll('.modal-overlay'))
                        o.remove();
        }

        function showError(modal, message) {
                let p = modal.querySelector('.modal-error');
                if (!p) {
                        p = el('<p class="modal-error" role="alert"></p>');
                        modal.appendChild(p);
                }
                p.textContent = message;
        }

        // A checkbox that enables a button, as the gateway's acceptance screens do.
        function gate(modal, checkboxSel, buttonSel) {
                const box = modal.querySelector(checkboxSel);
                const button = modal.querySelector(buttonSel);
                box.addEventListener('change', () => { button.disabled = !box.checked; });
        }

        /* ---- restart ---- */
        function openRestart() {
                const modal = openModal(`
<h2>Restart Gateway</h2>
<p>Restarting stops every client session and module until the gateway is running again.</p>
<label class="risk-ack"><input type="checkbox" id="restart-ack"> I understand the risks</label>
<div class="modal-buttons">
<button type="button" class="secondary" data-action="cancel">Cancel</button>
<button type="button" id="restart gateway-button" class="primary" disabled>Restart Gateway</button>
</div>`);
                gate(modal, '#restart-ack', '[id="restart gateway-button"]');
                modal.querySelector('[data-action="cancel"]').addEventListener('click', closeModal);
                modal.querySelector('[id="restart gateway-button"]').addEventListener('click', async () => {
                        try {
                                await post('/web/api/restart-tasks/restart?confirm=true');
                                closeModal();
                                document.body.innerHTML = '<main class="restarting-page"><h1>Gateway restarting</h1>' +
                                        '<p>The gateway is restarting. This page does not reload by itself.</p></main>';
                        } catch (e) {
                                showError(modal, e.message);
                        }
                });
        }

        /* ---- install or upgrade ---- */
        function openInstall() {
                const modal = openModal(`
<h2>Install or Upgrade a Module</h2>
<p>Choose a module file (.modl).</p>
<input type="file" accept=".modl" name="module-file" id="module-file">
<div class="modal-buttons">
<button type="button" class="secondary" data-action="cancel">Cancel</button>
<button type="button" data-component="web-ui.button" data-label="Install Module" class="primary" disabled>Install Module</button>
</div>`);
                const file = modal.querySelector('#module-file');
                const install = modal.querySelector('[data-label="Install Module"]');
                modal.querySelector('[data-action="cancel"]').addEventListener('click', closeModal);
                file.addEventListener('change', () => { install.disabled = file.files.length === 0; });
                install.addEventListener('click', async () => {
                        const f = file.files[0];
                        if (!f)
                                return;
                        install.disabled = true;
                        try {
                                const up = await post(`/web/api/modules/upload?fileName=${encodeURIComponent(f.name)}`,
                                                      f, 'application/octet-stream');
                                acceptSteps(up);
                        } catch (e) {
                                showError(modal, e.message);
                        }
                });
        }

        async function finishInstall(id) {
                await post(`/web/api/modules/install?moduleId=${encodeURIComponent(id)}`);
                closeModal();
                location.reload();
        }

        // Certificate first, then the licence, each its own screen.
        function acceptSteps(up) {
                const id = up.moduleId;
                const next = () => {
                        if (up.containsCert && !up.certAccepted) {
                                acceptScreen('Module Certificate', `The module ${esc(id)} is signed by a certificate that is not trusted yet.`,
                                             'I accept the module certificate', async () => {
                                                     await post(`/web/api/modules/certificate?moduleId=${encodeURIComponent(id)}`);
                                                     up.certAccepted = true;
                                                     next();
                                             });
                        } else if (up.containsEula && !up.licenseAccepted) {
                                acceptScreen('License Agreement', `The module ${esc(id)} comes with a license agreement.`,
                                             'I accept the terms of the license agreement', async () => {
                                                     await post(`/web/api/modules/eula?moduleId=${encodeURIComponent(id)}`);
                                                     up.licenseAccepted = true;
                                                     next();
                                             });
                        } else {
                                finishInstall(id).catch((e) => showError(document.querySelector('.modal'), e.message));
                        }
                };
                next();
        }

        function acceptScreen(title, text, label, onAccept) {
                const modal = openModal(`
<h2>${esc(title)}</h2>
<p>${text}</p>
<label class="accept-check"><input type="checkbox" class="accept-box"> ${esc(label)}</label>
<div class="modal-buttons">
<button type="button" class="secondary" data-action="cancel">Cancel</button>
<button type="button" data-component="web-ui.button" class="primary" disabled>Accept</button>
</div>`);
                gate(modal, '.accept-box', 'button[data-component]');
                modal.querySelector('[data-action="cancel"]').addEventListener('click', closeModal);
                modal.querySelector('button[data-component]').addEventListener('click', () => {
                        onAccept().catch((e) => showError(modal, e.message));
                });
        }

        /* ---- modules list: filter, row menu, uninstall ---- */
        function setupModules() {
                const table = document.querySelector('.modules-table tbody');
                const filter = document.querySelector('input[name="filter"]');
                if (!table || !filter)
                        return;
                // Non-matching rows leave the DOM, as the gateway's list does.
                const rows = [...table.querySelectorAll('tr.module-row')];
                filter.addEventListener('input', () => {
                        const q = filter.value.trim().toLowerCase();
                        table.replaceChildren(...rows.filter((r) => !q || r.dataset.moduleName.toLowerCase().includes(q)));
                });
                table.addEventListener('click', (ev) => {
                        const more = ev.target.closest('.more-button');
                        if (more)
                                openRowMenu(more);
                });
                const install = document.querySelector('.install-module-button');
                if (install)
                        install.addEventListener('click', openInstall);
        }

        function openRowMenu(button) {
                for (const m of document.querySelectorAll('.row-menu'))
                        m.remove();
                const row = button.closest('tr');
                const menu = el('<ul class="row-menu" role="menu"><li role="menuitem" data-action="uninstall">Uninstall</li></ul>');
                button.after(menu);
                menu.querySelector('[data-action="uninstall"]').addEventListener('click', () => {
                        menu.remove();
                        openUninstall(row.dataset.moduleId, row.dataset.moduleName);
                });
        }

        function openUninstall(id, name) {
                const modal = openModal(`
<h2>Uninstall Module</h2>
<p>Uninstall ${esc(name)} (${esc(id)})? The gateway must restart afterwards.</p>
<div class="modal-buttons">
<button type="button" class="secondary" data-action="cancel">Cancel</button>
<button type="button" class="danger confirm-uninstall">Uninstall</button>
</div>`);
                modal.querySelector('[data-action="cancel"]').addEventListener('click', closeModal);
                modal.querySelector('.confirm-uninstall').addEventListener('click', async () => {
                        try {
                                await post(`/web/api/modules/uninstall?moduleId=${encodeURIComponent(id)}`);
                                closeModal();
                                location.reload();
                        } catch (e) {
                                showError(modal, e.message);
                        }
                });
        }

        /* ---- trial ---- */
        async function resetTrial() {
                await post('/web/api/trial');
                location.reload();
        }

        function setup() {
                for (const b of document.querySelectorAll('.restart-bar-button'))
                        b.addEventListener('click', openRestart);
                for (const b of document.querySelectorAll('.trial-reset-button'))
                        b.addEventListener('click', () => resetTrial().catch((e) => console.error(e.message)));
                setupModules();
                // The Perspective-like page: a spinner that goes once loaded, a clock.
                for (const s of document.querySelectorAll('.loading-spinner'))
                        s.hidden = true;
                const ts = document.querySelector('.timestamp');
                if (ts)
                        ts.textContent = new Date().toISOString();
        }

        if (document.readyState === 'loading')
                document.addEventListener('DOMContentLoaded', setup);
        else
                setup();
})();
