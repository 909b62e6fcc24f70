// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The old tool's playbooks (ITK_COMPAT_PLAYBOOKS, else ../shared/compat/playbooks
// beside the source tree): their selectors and browser steps are test input.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './harness.mjs';

export function compatDir() {
        const dir = process.env.ITK_COMPAT_PLAYBOOKS ||
                    path.resolve(ROOT, '..', 'shared', 'compat', 'playbooks');
        return existsSync(dir) ? dir : null;
}

export async function loadYaml(file) {
        const yaml = (await import('js-yaml')).default;
        return yaml.load(readFileSync(file, 'utf8'));
}

// Every playbook file below @dir, relative paths, sorted.
export function playbookFiles(dir) {
        const out = [];
        for (const sub of readdirSync(dir, { withFileTypes: true })) {
                if (!sub.isDirectory())
                        continue;
                for (const f of readdirSync(path.join(dir, sub.name)))
                        if (f.endsWith('.yaml') || f.endsWith('.yml'))
                                out.push(path.join(sub.name, f));
        }
        return out.sort();
}

function collect(steps, out) {
        for (const step of steps || []) {
                const sel = step && step.parameters && step.parameters.selector;
                if (typeof sel === 'string' && !sel.includes('{{'))
                        out.add(sel);
                const excl = step && step.parameters && step.parameters.exclude_selectors;
                if (Array.isArray(excl))
                        for (const s of excl)
                                if (typeof s === 'string')
                                        out.add(s);
        }
}

// Every literal selector the compat playbooks use (steps and rollback).
export async function compatSelectors(dir) {
        const out = new Set();
        for (const rel of playbookFiles(dir)) {
                const doc = await loadYaml(path.join(dir, rel));
                collect(doc.steps, out);
                collect(doc.rollback, out);
        }
        return [...out];
}
