// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Small DOM helpers shared by the web UI's modules.

// An element with attributes and children. Properties that are not strings
// (booleans, numbers, functions) are set as properties; "style" goes through the
// CSSOM, which a strict style-src Content-Security-Policy allows.
export function h(tag, attrs, ...children) {
        const el = document.createElement(tag);
        for (const [k, v] of Object.entries(attrs || {})) {
                if (v === null || v === undefined || v === false)
                        continue;
                if (k === 'class')
                        el.className = v;
                else if (k === 'text')
                        el.textContent = v;
                else if (k === 'value')
                        el.value = v;
                else if (k === 'style')
                        el.style.cssText = v;
                else if (k.startsWith('on'))
                        el.addEventListener(k.slice(2), v);
                else if (k in el && typeof v !== 'string')
                        el[k] = v;
                else
                        el.setAttribute(k, v === true ? '' : v);
        }
        for (const c of children.flat()) {
                if (c === null || c === undefined || c === false)
                        continue;
                el.append(c instanceof Node ? c : document.createTextNode(String(c)));
        }
        return el;
}

// A feature's stylesheet, added to the page the first time the feature is shown.
export function ensureStylesheet(id, href) {
        if (document.getElementById(id))
                return;
        const link = document.createElement('link');
        link.id = id;
        link.rel = 'stylesheet';
        link.href = href;
        document.head.append(link);
}

// A byte count for people: "512 B", "1.5 KiB", "20 MiB".
export function formatSize(bytes) {
        if (bytes < 1024)
                return `${bytes} B`;
        const units = ['KiB', 'MiB', 'GiB', 'TiB'];
        let v = bytes;
        let i = -1;
        do {
                v /= 1024;
                i++;
        } while (v >= 1024 && i < units.length - 1);
        return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
