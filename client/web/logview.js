// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The execution log, drawn incrementally. Lines are kept sorted by time (a reply may
// bring older lines after newer events); each line gets its DOM node once. A frame
// inserts only what arrived since the last one and removes only what the LOG_MAX
// trim dropped: nothing already shown is rebuilt, so selection and scroll stay put.

const PRIORITY_CLASS = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'];

// Counters the end-to-end tests read (window.__itkTestStats).
export const logStats = { added: 0, removed: 0 };

function logKey(l) {
        return `${l.usec}|${l.step_id}|${l.message}`;
}

export class LogModel {
        constructor(max) {
                this.max = max;
                this.lines = []; // {usec, priority, step_id, message, node}, by usec
                this.keys = new Set();
                this.firstDirty = Infinity; // lowest index that may lack a node
                this.dropped = []; // nodes of trimmed lines, removed at the next draw
        }

        // Index after the last line with usec <= @usec (equal times keep arrival order).
        upperBound(usec) {
                let lo = 0;
                let hi = this.lines.length;
                while (lo < hi) {
                        const mid = (lo + hi) >> 1;
                        if (this.lines[mid].usec <= usec)
                                lo = mid + 1;
                        else
                                hi = mid;
                }
                return lo;
        }

        add(lines) {
                for (const l of lines) {
                        const key = logKey(l);
                        if (this.keys.has(key))
                                continue;
                        this.keys.add(key);
                        const entry = { usec: l.usec, priority: l.priority, step_id: l.step_id,
                                        message: l.message, node: null };
                        const n = this.lines.length;
                        let at = n;
                        if (n > 0 && this.lines[n - 1].usec > l.usec)
                                at = this.upperBound(l.usec);
                        if (at === n)
                                this.lines.push(entry);
                        else
                                this.lines.splice(at, 0, entry);
                        this.firstDirty = Math.min(this.firstDirty, at);
                }
                const over = this.lines.length - this.max;
                if (over > 0) {
                        for (const e of this.lines.splice(0, over)) {
                                this.keys.delete(logKey(e));
                                if (e.node)
                                        this.dropped.push(e.node);
                        }
                        this.firstDirty = Math.max(0, this.firstDirty - over);
                }
        }

        get dirty() {
                return this.firstDirty < this.lines.length || this.dropped.length > 0;
        }
}

function lineNode(l) {
        const el = document.createElement('div');
        el.className = `log-line prio-${PRIORITY_CLASS[l.priority] || 'info'}`;
        const time = document.createElement('span');
        time.className = 'log-time';
        time.textContent = new Date(l.usec / 1000).toLocaleTimeString();
        el.append(time);
        if (l.step_id) {
                const step = document.createElement('span');
                step.className = 'log-step';
                step.textContent = l.step_id;
                el.append(step);
        }
        const msg = document.createElement('span');
        msg.className = 'log-msg';
        msg.textContent = l.message;
        el.append(msg);
        return el;
}

// Brings @container in line with @model. With @follow the view sticks to the end;
// without it, the lines in view stay where they are while old ones are trimmed.
export function drawLog(model, container, follow) {
        const placeholder = container.querySelector(':scope > .log-empty');
        if (model.lines.length === 0) {
                for (const node of model.dropped)
                        node.remove();
                model.dropped = [];
                if (!placeholder) {
                        const p = document.createElement('div');
                        p.className = 'muted log-empty';
                        p.textContent = 'No log lines yet.';
                        container.replaceChildren(p);
                }
                return;
        }
        if (placeholder)
                placeholder.remove();
        if (!model.dirty)
                return;
        const heightBefore = follow ? 0 : container.scrollHeight;
        for (const node of model.dropped)
                node.remove();
        logStats.removed += model.dropped.length;
        model.dropped = [];
        if (!follow && heightBefore) {
                // Lines vanished above the view: move up by as much as they took.
                container.scrollTop -= heightBefore - container.scrollHeight;
        }
        const lines = model.lines;
        const start = Math.min(model.firstDirty, lines.length);
        // The common case: new lines at the end, one append of a fragment.
        let tail = lines.length;
        while (tail > start && !lines[tail - 1].node)
                tail--;
        if (tail < lines.length) {
                const frag = document.createDocumentFragment();
                for (let i = tail; i < lines.length; i++) {
                        lines[i].node = lineNode(lines[i]);
                        frag.append(lines[i].node);
                }
                logStats.added += lines.length - tail;
                container.append(frag);
        }
        // Late lines in the middle: each goes before its successor.
        let next = tail < lines.length ? lines[tail].node : null;
        for (let i = tail - 1; i >= start; i--) {
                const e = lines[i];
                if (!e.node) {
                        e.node = lineNode(e);
                        container.insertBefore(e.node, next);
                        logStats.added++;
                }
                next = e.node;
        }
        model.firstDirty = Infinity;
        if (follow)
                container.scrollTop = container.scrollHeight;
}
