// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The history page (#/history?status=&playbook=&since=&until=&q=): finished runs from
// GET /api/history, filtered by status, playbook, dates and a search, paged by cursor
// ("Load more"), each row with its result and duration; delete a run, export the
// filtered set as JSON. The filter lives in the address so a reload keeps it.

const PAGE_SIZE = 50;
const EXPORT_PAGE = 1000;
// Bound on one export: the file and the page's memory stay reasonable.
export const EXPORT_MAX = 20000;
const STATUSES = ['completed', 'failed', 'cancelled'];

// 'YYYY-MM-DD' (local) -> µs at that day's start; '' -> ''.
function dayStart(value, plusDays = 0) {
        const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || '');
        if (!m)
                return '';
        return String(new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + plusDays).getTime() * 1000);
}

export function parseHistoryQuery(text) {
        const p = new URLSearchParams(text || '');
        const f = {};
        for (const k of ['status', 'playbook', 'since', 'until', 'q']) {
                const v = (p.get(k) || '').trim();
                if (v)
                        f[k] = v;
        }
        if (f.status && !STATUSES.includes(f.status))
                delete f.status;
        return f;
}

// The API query of a filter: dates become [since's day start, until's next day start).
function apiQuery(f, limit, cursor) {
        const q = new URLSearchParams();
        if (f.status)
                q.set('status', f.status);
        if (f.playbook)
                q.set('playbook', f.playbook);
        if (f.since && dayStart(f.since))
                q.set('since', dayStart(f.since));
        if (f.until && dayStart(f.until, 1))
                q.set('until', dayStart(f.until, 1));
        if (f.q)
                q.set('q', f.q);
        q.set('limit', String(limit));
        if (cursor)
                q.set('cursor', cursor);
        return `api/history?${q}`;
}

// The playbooks arrived after the page was built: fill the picker, keeping its value.
export function historyPlaybooksLoaded(playbooks) {
        const sel = document.getElementById('hist-playbook');
        if (!sel)
                return;
        const keep = sel.value;
        const ids = [...new Set([...playbooks.map((p) => p.id), keep].filter(Boolean))].sort();
        sel.replaceChildren(new Option('Any', ''), ...ids.map((id) => new Option(id, id)));
        sel.value = keep;
}

// @ctx: {api, h, badge, fmtTime, fmtDuration, playbooks(), onDeleted(id)} from app.js.
export function buildHistory(main, filter, ctx) {
        const { h } = ctx;
        const view = { rows: new Map(), cursor: '', loading: false, count: 0 };
        document.title = 'History — Ignition Toolkit';

        const field = (id, label, input) => h('div', { class: 'field' }, h('label', { for: id, text: label }), input);
        const status = h('select', { id: 'hist-status', name: 'status' },
                         h('option', { value: '', text: 'Any' }),
                         STATUSES.map((s) => h('option', { value: s, text: s })));
        status.value = filter.status || '';
        const ids = [...new Set([...(ctx.playbooks() || []).map((p) => p.id), filter.playbook].filter(Boolean))].sort();
        const playbook = h('select', { id: 'hist-playbook', name: 'playbook' },
                           h('option', { value: '', text: 'Any' }),
                           ids.map((id) => h('option', { value: id, text: id })));
        playbook.value = filter.playbook || '';
        const since = h('input', { type: 'date', id: 'hist-since', name: 'since', value: filter.since || '' });
        const until = h('input', { type: 'date', id: 'hist-until', name: 'until', value: filter.until || '' });
        const q = h('input', { type: 'search', id: 'hist-q', name: 'q', value: filter.q || '',
                               placeholder: 'id, playbook, error…' });
        const form = h('form', { class: 'hist-filter', role: 'search', 'aria-label': 'Filter the history',
                                 onsubmit: (ev) => { ev.preventDefault(); apply(); } },
                       field('hist-status', 'Status', status), field('hist-playbook', 'Playbook', playbook),
                       field('hist-since', 'From', since), field('hist-until', 'To', until),
                       field('hist-q', 'Search', q),
                       h('div', { class: 'hist-actions' },
                         h('button', { type: 'submit', class: 'primary', id: 'hist-apply', text: 'Apply' }),
                         h('a', { href: '#/history', class: 'small', text: 'Clear' })));
        for (const el of [status, playbook, since, until])
                el.addEventListener('change', apply);

        const tbody = h('tbody', { id: 'hist-rows' });
        const table = h('table', { class: 'hist-table', id: 'hist-table' },
                        h('caption', { class: 'sr-only', text: 'Finished runs, newest first' }),
                        h('thead', {}, h('tr', {},
                                         ['Playbook', 'Result', 'Started', 'Duration', 'Actions'].map((t) =>
                                                 h('th', { scope: 'col', text: t })))),
                        tbody);
        const summary = h('p', { class: 'hist-summary', id: 'hist-summary', role: 'status' });
        const more = h('button', { type: 'button', id: 'hist-more', hidden: true, text: 'Load more',
                                   onclick: () => load() });
        const exportBtn = h('button', { type: 'button', id: 'hist-export', text: 'Export JSON',
                                        onclick: () => exportJson() });
        const exportMsg = h('span', { class: 'control-msg', role: 'status', id: 'hist-export-msg' });
        main.replaceChildren(h('section', { class: 'panel history', 'aria-labelledby': 'history-heading' },
                               h('div', { class: 'panel-head' }, h('h2', { id: 'history-heading', text: 'History' }),
                                 h('span', { class: 'hist-tools' }, exportBtn, exportMsg)),
                               form, summary,
                               h('div', { class: 'table-scroll', tabindex: '0', role: 'region', 'aria-label': 'Runs' }, table),
                               h('div', { class: 'hist-more' }, more)));

        function apply() {
                const next = new URLSearchParams();
                for (const [k, el] of [['status', status], ['playbook', playbook], ['since', since],
                                       ['until', until], ['q', q]]) {
                        if (el.value.trim())
                                next.set(k, el.value.trim());
                }
                const hash = `#/history${next.toString() ? `?${next}` : ''}`;
                if (location.hash !== hash)
                        location.hash = hash;
                else
                        reload();
        }

        function reload() {
                view.rows.clear();
                view.cursor = '';
                view.count = 0;
                tbody.replaceChildren();
                load();
        }

        function row(r) {
                const failed = r.status === 'failed';
                const del = h('button', { type: 'button', class: 'danger small-button', 'data-delete': r.execution_id,
                                          'aria-label': `Delete the run of ${r.playbook_name || r.playbook} started ${ctx.fmtTime(r.started_at)}`,
                                          text: 'Delete', onclick: () => remove(r, del) });
                return h('tr', { 'data-execution': r.execution_id, 'data-status': r.status },
                         h('td', {}, h('a', { href: `#/execution/${r.execution_id}`, text: r.playbook_name || r.playbook || r.execution_id }),
                           h('div', { class: 'muted small mono', text: r.playbook })),
                         h('td', {}, ctx.badge(r.status),
                           r.error ? h('div', { class: `hist-error${failed ? ' error' : ''}`, text: r.error }) : null),
                         h('td', { text: ctx.fmtTime(r.started_at) }),
                         h('td', { class: 'hist-duration', text: r.started_at ? ctx.fmtDuration(r.started_at, r.finished_at) : '—' }),
                         h('td', {}, del));
        }

        async function load() {
                if (view.loading)
                        return;
                view.loading = true;
                more.disabled = true;
                more.setAttribute('aria-busy', 'true');
                summary.textContent = view.count ? summary.textContent : 'Loading…';
                let page;
                try {
                        page = await ctx.api('GET', apiQuery(filter, PAGE_SIZE, view.cursor));
                } catch (e) {
                        summary.textContent = e.status === 401 ? '' : `Could not load the history: ${e.message}`;
                        summary.classList.add('error');
                        view.loading = false;
                        more.disabled = false;
                        more.removeAttribute('aria-busy');
                        return;
                }
                summary.classList.remove('error');
                const frag = document.createDocumentFragment();
                for (const r of page.runs || []) {
                        if (view.rows.has(r.execution_id))
                                continue;
                        const tr = row(r);
                        view.rows.set(r.execution_id, tr);
                        frag.append(tr);
                        view.count++;
                }
                tbody.append(frag);
                view.cursor = page.next_cursor || '';
                view.loading = false;
                more.hidden = !view.cursor;
                more.disabled = false;
                more.removeAttribute('aria-busy');
                summary.textContent = view.count === 0 && !view.cursor ? 'No runs match.'
                        : `${view.count} run${view.count === 1 ? '' : 's'} shown${view.cursor ? '; more below' : ''}.`;
        }

        async function remove(r, button) {
                if (!window.confirm(`Delete the run of ${r.playbook_name || r.playbook} (${r.execution_id}) and its log for good?`))
                        return;
                button.disabled = true;
                button.setAttribute('aria-busy', 'true');
                try {
                        await ctx.api('DELETE', `api/executions/${encodeURIComponent(r.execution_id)}`);
                } catch (e) {
                        button.disabled = false;
                        button.removeAttribute('aria-busy');
                        if (e.status !== 401)
                                summary.textContent = `Could not delete: ${e.message}`;
                        return;
                }
                const tr = view.rows.get(r.execution_id);
                // Keep keyboard focus in the table: on the next row's Delete, else the previous.
                const next = tr && (tr.nextElementSibling || tr.previousElementSibling);
                tr?.remove();
                view.rows.delete(r.execution_id);
                view.count--;
                summary.textContent = `Deleted the run ${r.execution_id}. ${view.count} shown.`;
                (next?.querySelector('button[data-delete]') || exportBtn).focus();
                ctx.onDeleted(r.execution_id);
        }

        async function exportJson() {
                if (exportBtn.disabled)
                        return;
                exportBtn.disabled = true;
                exportBtn.setAttribute('aria-busy', 'true');
                exportMsg.textContent = 'Exporting…';
                const runs = [];
                let cursor = '';
                let truncated = false;
                try {
                        do {
                                const page = await ctx.api('GET', apiQuery(filter, EXPORT_PAGE, cursor));
                                runs.push(...(page.runs || []));
                                cursor = page.next_cursor || '';
                                if (runs.length >= EXPORT_MAX) {
                                        truncated = !!cursor || runs.length > EXPORT_MAX;
                                        runs.length = Math.min(runs.length, EXPORT_MAX);
                                        break;
                                }
                        } while (cursor);
                } catch (e) {
                        exportMsg.textContent = e.status === 401 ? '' : `Export failed: ${e.message}`;
                        exportBtn.disabled = false;
                        exportBtn.removeAttribute('aria-busy');
                        return;
                }
                const doc = { exported_at: new Date().toISOString(), filter, truncated, count: runs.length, runs };
                const blob = new Blob([JSON.stringify(doc, null, 2)], { type: 'application/json' });
                const url = URL.createObjectURL(blob);
                const a = h('a', { href: url, download: `ignition-history-${new Date().toISOString().slice(0, 10)}.json`, hidden: true });
                document.body.append(a);
                a.click();
                a.remove();
                setTimeout(() => URL.revokeObjectURL(url), 10000);
                exportMsg.textContent = `Exported ${runs.length} run${runs.length === 1 ? '' : 's'}${truncated ? ` (the first ${EXPORT_MAX} only)` : ''}.`;
                exportBtn.disabled = false;
                exportBtn.removeAttribute('aria-busy');
        }

        load();
}
