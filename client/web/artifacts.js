// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The artifacts of a run in the execution view: a gallery of each step's screenshots
// and download links for the other files it wrote (gateway backups, project exports,
// browser downloads). Live runs and runs in history alike: the bridge answers
// GET api/executions/ID/artifacts[/NAME] from the daemon's list and file descriptors.
//
// Files come through fetch() with the bearer token (an <img src> or <a href> cannot
// carry it) and are shown or saved from blob: URLs, revoked when no longer shown.

import { h as el, ensureStylesheet, formatSize } from './dom.js';

function baseName(name) {
        const slash = name.lastIndexOf('/');
        return slash >= 0 ? name.slice(slash + 1) : name;
}

function isImage(a) {
        return /^image\/(png|jpeg|gif|webp)$/.test(a.content_type || '');
}

export class ArtifactsPane {
        // @getToken: returns the bridge's bearer token (the page keeps it).
        constructor(getToken) {
                ensureStylesheet('itk-artifacts-css', 'artifacts.css');
                this.getToken = getToken;
                this.id = null;
                this.signature = '';
                this.loading = false;
                this.again = false;
                this.disposed = false;
                this.urls = new Map(); // "name\nsha256" -> blob: URL of a shown image
                this.gallery = el('div', { class: 'artifact-gallery', id: 'artifact-gallery' });
                this.files = el('ul', { class: 'artifact-files', id: 'artifact-files', 'aria-label': 'Files' });
                this.message = el('p', { class: 'artifact-msg muted', role: 'status' });
                this.element = el('section', { class: 'artifacts-pane', id: 'artifacts', 'aria-labelledby': 'artifacts-heading', hidden: true },
                                  el('h3', { id: 'artifacts-heading', text: 'Artifacts' }),
                                  this.message, this.gallery, this.files);
        }

        dispose() {
                this.disposed = true;
                for (const url of this.urls.values())
                        URL.revokeObjectURL(url);
                this.urls.clear();
        }

        // Shows the artifacts of run @id, reading the list again (call it whenever the
        // run's record was read: a finished step may have written a file).
        show(id) {
                if (this.disposed)
                        return;
                if (id !== this.id) {
                        this.id = id;
                        this.signature = '';
                        for (const url of this.urls.values())
                                URL.revokeObjectURL(url);
                        this.urls.clear();
                        this.gallery.replaceChildren();
                        this.files.replaceChildren();
                        this.element.hidden = true;
                }
                if (this.loading) {
                        this.again = true;
                        return;
                }
                this.load();
        }

        async fetch(path) {
                const res = await fetch(path, { headers: { Authorization: `Bearer ${this.getToken()}` }, cache: 'no-store' });
                if (!res.ok) {
                        let message = res.statusText;
                        try {
                                message = (await res.json()).message || message;
                        } catch (e) {
                                // not JSON
                        }
                        throw new Error(message);
                }
                return res;
        }

        url(name) {
                return `api/executions/${encodeURIComponent(this.id)}/artifacts/${name.split('/').map(encodeURIComponent).join('/')}`;
        }

        async load() {
                const id = this.id;
                this.loading = true;
                try {
                        const res = await this.fetch(`api/executions/${encodeURIComponent(id)}/artifacts`);
                        const list = await res.json();
                        if (this.disposed || id !== this.id)
                                return;
                        const signature = JSON.stringify(list.map((a) => [a.name, a.sha256]));
                        if (signature !== this.signature) {
                                this.signature = signature;
                                await this.render(list);
                        }
                } catch (e) {
                        if (!this.disposed && id === this.id) {
                                this.message.textContent = `Could not list the files: ${e.message}`;
                                this.element.hidden = false;
                        }
                } finally {
                        this.loading = false;
                        if (this.again && !this.disposed) {
                                this.again = false;
                                this.load();
                        }
                }
        }

        async render(list) {
                const id = this.id;
                const images = list.filter(isImage);
                const others = list.filter((a) => !isImage(a));
                this.element.hidden = list.length === 0;
                this.message.textContent = '';
                // One group of screenshots per step, in the order they were taken.
                const groups = new Map();
                for (const a of images) {
                        if (!groups.has(a.step))
                                groups.set(a.step, []);
                        groups.get(a.step).push(a);
                }
                const keep = new Set();
                const figures = [];
                for (const [step, shots] of groups) {
                        const items = [];
                        for (const a of shots) {
                                const key = `${a.name}\n${a.sha256}`;
                                keep.add(key);
                                const img = el('img', { alt: `Screenshot ${a.name} of step ${step}`, loading: 'lazy', 'data-artifact': a.name });
                                items.push(el('figure', { class: 'artifact-shot' },
                                              el('a', { href: '#', class: 'artifact-open', 'aria-label': `Open ${a.name} full size`,
                                                        onclick: (ev) => { ev.preventDefault(); this.open(a); } }, img),
                                              el('figcaption', {},
                                                 el('span', { class: 'mono', text: a.name }), ' ',
                                                 el('button', { type: 'button', class: 'link-button', 'data-download': a.name,
                                                                text: 'Download', 'aria-label': `Download ${a.name}`,
                                                                onclick: () => this.download(a) }))));
                                this.imageUrl(a, key).then((url) => {
                                        if (url && id === this.id)
                                                img.src = url;
                                }).catch((e) => {
                                        img.alt = `${a.name}: ${e.message}`;
                                });
                        }
                        figures.push(el('div', { class: 'artifact-step', 'data-step': step },
                                        el('h4', { text: `Step ${step}` }), items));
                }
                for (const [key, url] of this.urls) {
                        if (!keep.has(key)) {
                                URL.revokeObjectURL(url);
                                this.urls.delete(key);
                        }
                }
                this.gallery.replaceChildren(...figures);
                this.files.replaceChildren(...others.map((a) => el('li', { 'data-artifact': a.name },
                        el('button', { type: 'button', class: 'link-button', 'data-download': a.name,
                                       text: a.name, 'aria-label': `Download ${a.name}`,
                                       onclick: () => this.download(a) }),
                        el('span', { class: 'muted', text: ` ${formatSize(a.size)} · step ${a.step} · ` }),
                        el('span', { class: 'mono small', title: `SHA-256 ${a.sha256}`, text: a.sha256.slice(0, 12) }))));
        }

        async imageUrl(a, key) {
                if (this.urls.has(key))
                        return this.urls.get(key);
                const blob = await (await this.fetch(this.url(a.name))).blob();
                if (this.disposed) {
                        return null;
                }
                const url = URL.createObjectURL(blob);
                this.urls.set(key, url);
                return url;
        }

        async open(a) {
                const url = this.urls.get(`${a.name}\n${a.sha256}`);
                if (url)
                        window.open(url, '_blank', 'noopener');
        }

        async download(a) {
                try {
                        const blob = await (await this.fetch(this.url(a.name))).blob();
                        const url = URL.createObjectURL(blob);
                        const link = el('a', { href: url, download: baseName(a.name), hidden: true });
                        document.body.append(link);
                        link.click();
                        link.remove();
                        // Long enough for the browser to have taken the bytes.
                        setTimeout(() => URL.revokeObjectURL(url), 60000);
                        this.message.textContent = '';
                } catch (e) {
                        this.message.textContent = `Could not download ${a.name}: ${e.message}`;
                }
        }
}
