/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The page agent: evaluated by the browser steps in an isolated world of every
 * document (AGENT-API.md). It resolves the playbooks' selector dialect, checks
 * actionability and waits for elements on DOM mutations and animation frames.
 *
 * Rules it keeps: plain script, no modules, no build step; evaluating it twice
 * keeps the first agent; it touches none of the page's globals; it never calls
 * setTimeout or setInterval (the daemon's pausable timer owns the clock).
 */
(function () {
        'use strict';

        if (globalThis.__itkAgent)
                return;

        /* Captured once, so that later changes to the globals of this world
         * (there should be none: it is isolated) cannot break a wait. */
        const raf = globalThis.requestAnimationFrame.bind(globalThis);
        const cancelRaf = globalThis.cancelAnimationFrame.bind(globalThis);
        const MutationObserverCtor = globalThis.MutationObserver;

        /* ---------------------------------------------------------------
         * Selector grammar (the same as itk-selector.c):
         *   selector := part ( '>>' part )*
         *   part     := 'text=' body | 'css=' css | '"..."' | "'...'" | css
         *   css      := complex ( ',' complex )*, CSS plus :has-text(arg)
         * Brackets, parentheses and quotes must balance; no part may be empty.
         * --------------------------------------------------------------- */

        class SelectorError extends Error {
                constructor(message, offset) {
                        super(message);
                        this.offset = offset;
                }
        }

        /* Byte offsets, for the C side's line:column (selectors may hold UTF-8). */
        function byteOffset(s, index) {
                let bytes = 0;
                for (let i = 0; i < index && i < s.length; i++) {
                        const c = s.charCodeAt(i);
                        if (c < 0x80)
                                bytes += 1;
                        else if (c < 0x800)
                                bytes += 2;
                        else if (c >= 0xd800 && c <= 0xdbff) {
                                bytes += 4;
                                i++;
                        } else
                                bytes += 3;
                }
                return bytes;
        }

        /* Splits @s at top-level occurrences of @sep (outside quotes, brackets
         * and parentheses), checking the balance on the way. Returns
         * [{text, start}]. */
        /* An unquoted text= body is plain words: quotes and brackets in it
         * ("text=Don't save") mean nothing. Returns where such a body starts
         * at @i (after spaces), or -1. */
        function plainTextAt(s, i) {
                while (i < s.length && /\s/.test(s[i]))
                        i++;
                if (!s.startsWith('text=', i))
                        return -1;
                let j = i + 5;
                while (j < s.length && /\s/.test(s[j]))
                        j++;
                return s[j] === '"' || s[j] === "'" ? -1 : i;
        }

        function splitTopLevel(s, sep, base) {
                const parts = [];
                const stack = [];
                let quote = null;
                let quoteAt = 0;
                let start = 0;
                for (let i = 0; i < s.length; i++) {
                        if (sep === '>>' && i === start && plainTextAt(s, i) >= 0) {
                                const next = s.indexOf('>>', i);
                                if (next < 0)
                                        break;
                                parts.push({ text: s.slice(start, next), start: base + start });
                                start = next + 2;
                                i = next + 1;
                                continue;
                        }
                        const c = s[i];
                        if (quote) {
                                if (c === '\\')
                                        i++;
                                else if (c === quote)
                                        quote = null;
                                continue;
                        }
                        if (c === '\\') {
                                i++;
                        } else if (c === '"' || c === "'") {
                                quote = c;
                                quoteAt = i;
                        } else if (c === '[' || c === '(') {
                                stack.push({ c, at: i });
                        } else if (c === ']' || c === ')') {
                                const open = c === ']' ? '[' : '(';
                                if (!stack.length || stack[stack.length - 1].c !== open)
                                        throw new SelectorError(`unbalanced '${c}' in selector`,
                                                                base + i);
                                stack.pop();
                        } else if (!stack.length && s.startsWith(sep, i)) {
                                parts.push({ text: s.slice(start, i), start: base + start });
                                i += sep.length - 1;
                                start = i + 1;
                        }
                }
                if (quote)
                        throw new SelectorError(`unterminated ${quote === '"' ? 'double' : 'single'} quote in selector`,
                                                base + quoteAt);
                if (stack.length) {
                        const top = stack[stack.length - 1];
                        throw new SelectorError(`unbalanced '${top.c}' in selector`, base + top.at);
                }
                parts.push({ text: s.slice(start), start: base + start });
                return parts;
        }

        function isQuoted(s) {
                return s.length >= 2 && (s[0] === '"' || s[0] === "'") && s[s.length - 1] === s[0];
        }

        function unquote(s) {
                return s.slice(1, -1).replace(/\\(.)/g, '$1');
        }

        function leadingSpace(s) {
                return s.length - s.trimStart().length;
        }

        /* Parses the whole selector: a list of parts, each a text matcher or
         * a list of CSS complex selectors. Throws SelectorError (offsets in
         * UTF-16 units of @selector). */
        function parseSelector(selector) {
                if (typeof selector !== 'string')
                        throw new SelectorError('selector is not a string', 0);
                if (!selector.trim())
                        throw new SelectorError('empty selector', 0);
                const chain = splitTopLevel(selector, '>>', 0);
                const parts = [];
                chain.forEach((piece, n) => {
                        const text = piece.text.trim();
                        const at = piece.start + leadingSpace(piece.text);
                        if (!text)
                                throw new SelectorError(n === 0 ? "empty selector before '>>'"
                                                                : "empty selector after '>>'",
                                                        at);
                        parts.push(parsePart(text, at));
                });
                return parts;
        }

        function parsePart(text, at) {
                if (text.startsWith('text=')) {
                        const body = text.slice(5).trim();
                        if (!body)
                                throw new SelectorError("empty text after 'text='", at + 5);
                        return textPart(body);
                }
                if (isQuoted(text))
                        return textPart(text);
                let css = text;
                let cssAt = at;
                if (text.startsWith('css=')) {
                        css = text.slice(4);
                        cssAt = at + 4 + leadingSpace(css);
                        css = css.trim();
                        if (!css)
                                throw new SelectorError("empty selector after 'css='", at + 4);
                }
                return { kind: 'css', list: parseCssList(css, cssAt) };
        }

        function textPart(body) {
                if (isQuoted(body))
                        return { kind: 'text', exact: true, value: normalize(unquote(body)) };
                return { kind: 'text', exact: false, value: normalize(body).toLowerCase() };
        }

        /* A CSS selector list: each complex selector becomes compounds joined
         * by combinators; :has-text() (and :not(:has-text())) are taken out of
         * the compounds as predicates, the rest stays native CSS. */
        function parseCssList(css, at) {
                const list = [];
                for (const piece of splitTopLevel(css, ',', at)) {
                        const text = piece.text.trim();
                        if (!text)
                                throw new SelectorError("empty selector in ',' list",
                                                        piece.start + leadingSpace(piece.text));
                        list.push(parseComplex(text, piece.start + leadingSpace(piece.text)));
                }
                return list;
        }

        function parseComplex(text, at) {
                /* Compounds are separated by whitespace or > + ~ at top level. */
                const compounds = [];
                let pending = null; /* an explicit combinator waiting for its compound */
                let cur = '';
                let curAt = at;
                let depth = 0;
                let quote = null;
                const append = (i, chars) => {
                        if (!cur)
                                curAt = at + i;
                        cur += chars;
                };
                const flush = () => {
                        if (!cur)
                                return;
                        compounds.push(parseCompound(cur, curAt,
                                                     compounds.length ? pending || ' ' : null));
                        cur = '';
                        pending = null;
                };
                for (let i = 0; i < text.length; i++) {
                        const c = text[i];
                        if (quote) {
                                if (c === '\\') {
                                        append(i, c + (text[i + 1] || ''));
                                        i++;
                                        continue;
                                }
                                if (c === quote)
                                        quote = null;
                                append(i, c);
                                continue;
                        }
                        if (c === '\\') {
                                append(i, c + (text[i + 1] || ''));
                                i++;
                                continue;
                        }
                        if (c === '"' || c === "'") {
                                quote = c;
                                append(i, c);
                                continue;
                        }
                        if (c === '[' || c === '(')
                                depth++;
                        else if (c === ']' || c === ')')
                                depth--;
                        if (depth === 0 && (c === '>' || c === '+' || c === '~')) {
                                flush();
                                if (!compounds.length)
                                        throw new SelectorError(`selector starts with '${c}'`, at + i);
                                if (pending)
                                        throw new SelectorError(`two combinators in a row ('${pending}' and '${c}')`,
                                                                at + i);
                                pending = c;
                                continue;
                        }
                        if (depth === 0 && /\s/.test(c)) {
                                flush();
                                continue;
                        }
                        append(i, c);
                }
                flush();
                if (pending)
                        throw new SelectorError(`selector ends with '${pending}'`, at + text.length);
                return { compounds, native: compounds.map(nativeOf).join(''), at };
        }

        function nativeOf(c, i) {
                const sel = c.native || '*';
                return i === 0 ? sel : ` ${c.combinator === ' ' ? '' : c.combinator + ' '}${sel}`;
        }

        const HAS_TEXT = ':has-text(';
        const NOT_HAS_TEXT = ':not(:has-text(';

        /* Finds the matching ')' of the '(' just before @i; returns its index. */
        function closeParen(s, i) {
                let depth = 1;
                let quote = null;
                for (; i < s.length; i++) {
                        const c = s[i];
                        if (quote) {
                                if (c === '\\')
                                        i++;
                                else if (c === quote)
                                        quote = null;
                        } else if (c === '\\') {
                                i++;
                        } else if (c === '"' || c === "'") {
                                quote = c;
                        } else if (c === '(') {
                                depth++;
                        } else if (c === ')' && --depth === 0) {
                                return i;
                        }
                }
                return -1;
        }

        function hasTextArg(raw, at) {
                const arg = raw.trim();
                if (!arg)
                        throw new SelectorError('empty argument of :has-text()', at);
                return normalize(isQuoted(arg) ? unquote(arg) : arg).toLowerCase();
        }

        function parseCompound(text, at, combinator) {
                const has = [];
                const hasNot = [];
                let native = '';
                let i = 0;
                while (i < text.length) {
                        const lower = text.slice(i).toLowerCase();
                        if (lower.startsWith(NOT_HAS_TEXT)) {
                                const open = i + NOT_HAS_TEXT.length;
                                const end = closeParen(text, open);
                                if (end < 0 || text[end + 1] !== ')')
                                        throw new SelectorError(':not(:has-text()) must hold only :has-text()',
                                                                at + i);
                                hasNot.push(hasTextArg(text.slice(open, end), at + open));
                                i = end + 2;
                                continue;
                        }
                        if (lower.startsWith(HAS_TEXT)) {
                                const open = i + HAS_TEXT.length;
                                const end = closeParen(text, open);
                                if (end < 0)
                                        throw new SelectorError("unbalanced '(' in selector", at + open - 1);
                                has.push(hasTextArg(text.slice(open, end), at + open));
                                i = end + 1;
                                continue;
                        }
                        const c = text[i];
                        if (c === '"' || c === "'" || c === '\\' || c === '(' || c === '[') {
                                /* Copy a quoted string, escape or bracketed run as is. */
                                let end;
                                if (c === '\\')
                                        end = i + 1;
                                else if (c === '(')
                                        end = closeParen(text, i + 1);
                                else if (c === '[')
                                        end = closeBracket(text, i + 1);
                                else
                                        end = findQuoteEnd(text, i);
                                if (end < 0)
                                        end = text.length - 1;
                                if (c === '(' && /:has-text\(/i.test(text.slice(i, end)))
                                        throw new SelectorError(':has-text() is not supported inside this pseudo-class',
                                                                at + i);
                                native += text.slice(i, end + 1);
                                i = end + 1;
                                continue;
                        }
                        native += c;
                        i++;
                }
                return { combinator, native, has, hasNot, at };
        }

        function closeBracket(s, i) {
                for (; i < s.length; i++) {
                        if (s[i] === '\\')
                                i++;
                        else if (s[i] === '"' || s[i] === "'")
                                i = findQuoteEnd(s, i) < 0 ? s.length : findQuoteEnd(s, i);
                        else if (s[i] === ']')
                                return i;
                }
                return -1;
        }

        function findQuoteEnd(s, i) {
                const q = s[i];
                for (let j = i + 1; j < s.length; j++) {
                        if (s[j] === '\\')
                                j++;
                        else if (s[j] === q)
                                return j;
                }
                return -1;
        }

        /* Native CSS syntax is the browser's to judge: a selector it refuses
         * is invalid. Custom pseudo-classes were taken out already. */
        function checkNative(parts) {
                for (const part of parts) {
                        if (part.kind !== 'css')
                                continue;
                        for (const complex of part.list) {
                                for (const c of complex.compounds) {
                                        if (!c.native)
                                                continue;
                                        try {
                                                document.createDocumentFragment().querySelector(c.native);
                                        } catch (e) {
                                                throw new SelectorError(`invalid CSS '${c.native}'`, c.at);
                                        }
                                }
                                try {
                                        document.createDocumentFragment().querySelector(complex.native);
                                } catch (e) {
                                        throw new SelectorError(`invalid CSS '${complex.native}'`, complex.at);
                                }
                        }
                }
        }

        const parseCache = new Map();

        function compile(selector) {
                let parts = parseCache.get(selector);
                if (parts)
                        return parts;
                try {
                        parts = parseSelector(selector);
                        checkNative(parts);
                } catch (e) {
                        if (e instanceof SelectorError)
                                throw new Error(`invalid selector: ${e.message}`);
                        throw e;
                }
                if (parseCache.size > 200)
                        parseCache.clear();
                parseCache.set(selector, parts);
                return parts;
        }

        /* ---------------------------------------------------------------
         * Text
         * --------------------------------------------------------------- */

        function normalize(s) {
                return String(s).replace(/\u200b/g, '').trim().replace(/\s+/g, ' ');
        }

        function skipForText(el) {
                const n = el.nodeName;
                return n === 'SCRIPT' || n === 'NOSCRIPT' || n === 'STYLE' ||
                       (document.head !== null && document.head.contains(el));
        }

        /* {full, normalized, own}: @own holds the runs of the element's direct
         * text nodes, for the exact text= form. Cached per query. */
        function textOf(cache, node) {
                let t = cache.get(node);
                if (t)
                        return t;
                t = { full: '', normalized: '', own: [] };
                if (node.nodeType === Node.ELEMENT_NODE && skipForText(node)) {
                        cache.set(node, t);
                        return t;
                }
                if (node.nodeName === 'INPUT' && (node.type === 'submit' || node.type === 'button')) {
                        t.full = node.value;
                        t.own.push(node.value);
                } else {
                        let run = '';
                        for (let child = node.firstChild; child; child = child.nextSibling) {
                                if (child.nodeType === Node.TEXT_NODE) {
                                        t.full += child.nodeValue;
                                        run += child.nodeValue;
                                } else if (child.nodeType === Node.ELEMENT_NODE) {
                                        if (run)
                                                t.own.push(run);
                                        run = '';
                                        t.full += textOf(cache, child).full;
                                }
                        }
                        if (run)
                                t.own.push(run);
                        if (node.shadowRoot)
                                t.full += textOf(cache, node.shadowRoot).full;
                }
                t.normalized = normalize(t.full);
                cache.set(node, t);
                return t;
        }

        function laxMatch(cache, node, needle) {
                return textOf(cache, node).normalized.toLowerCase().includes(needle);
        }

        function exactMatch(cache, node, value) {
                const t = textOf(cache, node);
                if (!value && !t.own.length)
                        return true;
                return t.own.some((run) => normalize(run) === value);
        }

        /* 'none', 'self' (only the element itself matches) or 'children'
         * (a child element matches as well: the element is not the smallest). */
        function textMatchKind(cache, el, match) {
                if (skipForText(el) || !match(el))
                        return 'none';
                for (let child = el.firstElementChild; child; child = child.nextElementSibling) {
                        if (match(child))
                                return 'children';
                }
                if (el.shadowRoot && match(el.shadowRoot))
                        return 'children';
                return 'self';
        }

        /* ---------------------------------------------------------------
         * Matching
         * --------------------------------------------------------------- */

        function parentOrHost(el) {
                if (el.parentElement)
                        return el.parentElement;
                const root = el.parentNode;
                return root && root.nodeType === Node.DOCUMENT_FRAGMENT_NODE && root.host ? root.host : null;
        }

        /* Every element under @scope, its shadow trees too: first the light
         * tree in document order, then each shadow tree in the order of its
         * host (the order Playwright's engine reports matches in). */
        function allElements(scope) {
                const out = [];
                const walk = (root) => {
                        const hosts = [];
                        const it = document.createTreeWalker(root, NodeFilter.SHOW_ELEMENT);
                        for (let n = it.nextNode(); n; n = it.nextNode()) {
                                out.push(n);
                                if (n.shadowRoot)
                                        hosts.push(n.shadowRoot);
                        }
                        if (root.nodeType === Node.ELEMENT_NODE && root.shadowRoot)
                                walk(root.shadowRoot);
                        for (const shadow of hosts)
                                walk(shadow);
                };
                walk(scope);
                return out;
        }

        function compoundMatches(cache, el, c) {
                if (c.native && !el.matches(c.native))
                        return false;
                for (const needle of c.has) {
                        if (textMatchKind(cache, el, (n) => laxMatch(cache, n, needle)) === 'none')
                                return false;
                }
                for (const needle of c.hasNot) {
                        if (textMatchKind(cache, el, (n) => laxMatch(cache, n, needle)) !== 'none')
                                return false;
                }
                return true;
        }

        /* Right to left, with backtracking over ancestors and siblings. */
        function complexMatches(cache, el, compounds, i) {
                const c = compounds[i];
                if (!compoundMatches(cache, el, c))
                        return false;
                if (i === 0)
                        return true;
                switch (c.combinator) {
                case '>': {
                        const p = parentOrHost(el);
                        return p !== null && complexMatches(cache, p, compounds, i - 1);
                }
                case '+': {
                        const s = el.previousElementSibling;
                        return s !== null && complexMatches(cache, s, compounds, i - 1);
                }
                case '~':
                        for (let s = el.previousElementSibling; s; s = s.previousElementSibling) {
                                if (complexMatches(cache, s, compounds, i - 1))
                                        return true;
                        }
                        return false;
                default:
                        for (let p = parentOrHost(el); p; p = parentOrHost(p)) {
                                if (complexMatches(cache, p, compounds, i - 1))
                                        return true;
                        }
                        return false;
                }
        }

        function hasCustom(complex) {
                return complex.compounds.some((c) => c.has.length || c.hasNot.length);
        }

        /* Every shadow root of the document, in the order matches are
         * reported: a root's light tree first, then its own shadow tree, then
         * the shadow trees of its descendants in document order (recursively). */
        function allShadowRoots() {
                const out = [];
                const visit = (root) => {
                        if (root.nodeType === Node.ELEMENT_NODE && root.shadowRoot) {
                                out.push(root.shadowRoot);
                                visit(root.shadowRoot);
                        }
                        for (const el of root.querySelectorAll('*')) {
                                if (el.shadowRoot) {
                                        out.push(el.shadowRoot);
                                        visit(el.shadowRoot);
                                }
                        }
                };
                visit(document);
                return out;
        }

        function insideComposed(node, scope) {
                for (let n = node; n; n = parentOrHost(n)) {
                        if (n === scope)
                                return true;
                }
                return false;
        }

        /* The roots to query under @scope: itself and the shadow trees below. */
        function rootsOf(ctx, scope) {
                if (!ctx.shadows)
                        ctx.shadows = allShadowRoots();
                if (!ctx.shadows.length)
                        return [scope];
                if (scope === document)
                        return [document, ...ctx.shadows];
                return [scope, ...ctx.shadows.filter((r) => insideComposed(r.host, scope))];
        }

        /* Elements whose text may hold the match: a subtree whose whole text
         * lacks it is skipped at once. */
        function textCandidates(scope, mayHold) {
                const out = [];
                const filter = { acceptNode: (n) => (mayHold(n) ? NodeFilter.FILTER_ACCEPT
                                                                : NodeFilter.FILTER_REJECT) };
                const walk = (root) => {
                        const hosts = [];
                        const it = document.createTreeWalker(root, NodeFilter.SHOW_ELEMENT, filter);
                        for (let n = it.nextNode(); n; n = it.nextNode()) {
                                out.push(n);
                                if (n.shadowRoot)
                                        hosts.push(n.shadowRoot);
                        }
                        if (root.nodeType === Node.ELEMENT_NODE && root.shadowRoot)
                                walk(root.shadowRoot);
                        for (const shadow of hosts)
                                walk(shadow);
                };
                walk(scope);
                return out;
        }

        function queryPart(ctx, scope, part) {
                const cache = ctx.cache;
                if (part.kind === 'text') {
                        const match = part.exact ? (n) => exactMatch(cache, n, part.value)
                                                 : (n) => laxMatch(cache, n, part.value);
                        const mayHold = !part.value ? () => true
                                : part.exact ? (n) => textOf(cache, n).normalized.includes(part.value)
                                             : (n) => laxMatch(cache, n, part.value);
                        return textCandidates(scope, mayHold).filter((el) => {
                                const kind = textMatchKind(cache, el, match);
                                return kind === 'self' || (kind === 'children' && part.exact);
                        });
                }
                const roots = rootsOf(ctx, scope);
                const found = [];
                const seen = new Set();
                for (const complex of part.list) {
                        const last = complex.compounds[complex.compounds.length - 1];
                        const custom = hasCustom(complex);
                        for (const root of roots) {
                                for (const el of root.querySelectorAll(custom ? last.native || '*' : complex.native)) {
                                        if (seen.has(el))
                                                continue;
                                        if (custom && !complexMatches(cache, el, complex.compounds,
                                                                      complex.compounds.length - 1))
                                                continue;
                                        seen.add(el);
                                        found.push(el);
                                }
                        }
                }
                /* One selector reports the light tree, then shadow trees (as
                 * querySelectorAll per root would); a union is sorted. */
                return part.list.length > 1 ? sortDocumentOrder(found) : found;
        }

        function queryAll(selector, ctx) {
                const parts = compile(selector);
                ctx = ctx || { cache: new Map(), shadows: null };
                let scopes = [document];
                for (const part of parts) {
                        const found = new Set();
                        for (const scope of scopes) {
                                for (const el of queryPart(ctx, scope, part))
                                        found.add(el);
                        }
                        scopes = scopes.length > 1 ? sortDocumentOrder([...found]) : [...found];
                }
                return scopes;
        }

        function composedPath(el) {
                const path = [];
                for (let n = el; n; n = parentOrHost(n))
                        path.unshift(n);
                return path;
        }

        /* Light children first, then the host's shadow children. */
        function siblingRank(n) {
                let i = 0;
                for (let s = n.previousElementSibling; s; s = s.previousElementSibling)
                        i++;
                return n.parentNode && n.parentNode.nodeType === Node.DOCUMENT_FRAGMENT_NODE ? 1e9 + i : i;
        }

        /* Document order of the composed tree (a shadow tree's content after
         * its host's light children): the order of a union. */
        function sortDocumentOrder(list) {
                if (list.length < 2)
                        return list;
                const paths = new Map(list.map((el) => [el, composedPath(el)]));
                return list.sort((a, b) => {
                        const pa = paths.get(a);
                        const pb = paths.get(b);
                        let i = 0;
                        while (i < pa.length && i < pb.length && pa[i] === pb[i])
                                i++;
                        if (i === pa.length)
                                return -1;
                        if (i === pb.length)
                                return 1;
                        return siblingRank(pa[i]) - siblingRank(pb[i]);
                });
        }

        /* ---------------------------------------------------------------
         * States (BROWSER.md "Actionability")
         * --------------------------------------------------------------- */

        function isAttached(el) {
                return !!el && el.isConnected;
        }

        function isVisible(el) {
                if (!isAttached(el))
                        return false;
                const style = getComputedStyle(el);
                if (style.display === 'contents') {
                        for (let c = el.firstChild; c; c = c.nextSibling) {
                                if (c.nodeType === Node.ELEMENT_NODE && isVisible(c))
                                        return true;
                                if (c.nodeType === Node.TEXT_NODE && c.nodeValue.trim())
                                        return true;
                        }
                        return false;
                }
                if (typeof el.checkVisibility === 'function' && !el.checkVisibility())
                        return false;
                if (style.visibility !== 'visible')
                        return false;
                const r = el.getBoundingClientRect();
                return r.width > 0 && r.height > 0;
        }

        const NATIVE_DISABLE = new Set(['BUTTON', 'INPUT', 'SELECT', 'TEXTAREA', 'OPTION', 'OPTGROUP']);

        function inDisabledFieldset(el) {
                for (let p = el.parentElement; p; p = p.parentElement) {
                        if (p.nodeName !== 'FIELDSET' || !p.hasAttribute('disabled'))
                                continue;
                        /* The first legend's content stays enabled. */
                        const legend = p.querySelector(':scope > legend');
                        if (!legend || !legend.contains(el))
                                return true;
                }
                return false;
        }

        function isDisabled(el) {
                if (NATIVE_DISABLE.has(el.nodeName)) {
                        if (el.hasAttribute('disabled'))
                                return true;
                        if ((el.nodeName === 'OPTION' || el.nodeName === 'OPTGROUP') &&
                            el.closest('select[disabled], optgroup[disabled]'))
                                return true;
                        if (inDisabledFieldset(el))
                                return true;
                }
                for (let n = el; n; n = parentOrHost(n)) {
                        const v = n.getAttribute('aria-disabled');
                        if (v !== null && v.toLowerCase() === 'true')
                                return true;
                        if (v !== null && v.toLowerCase() === 'false')
                                return false;
                }
                return false;
        }

        const NOT_FILLABLE = new Set(['checkbox', 'radio', 'file', 'button', 'submit', 'reset',
                                      'image', 'hidden']);
        const SET_VALUE_TYPES = new Set(['color', 'date', 'time', 'datetime-local', 'month', 'range',
                                         'week']);

        function editableKind(el) {
                if (el.nodeName === 'INPUT')
                        return NOT_FILLABLE.has(el.type) ? null : 'input';
                if (el.nodeName === 'TEXTAREA')
                        return 'input';
                if (el.nodeName === 'SELECT')
                        return 'select';
                if (el.isContentEditable)
                        return 'contenteditable';
                return null;
        }

        function isReadonly(el) {
                if (el.nodeName === 'INPUT' || el.nodeName === 'TEXTAREA' || el.nodeName === 'SELECT')
                        return el.hasAttribute('readonly');
                const v = el.getAttribute('aria-readonly');
                return v !== null && v.toLowerCase() === 'true';
        }

        function describe(el) {
                if (!el || el.nodeType !== Node.ELEMENT_NODE)
                        return String(el);
                let s = '<' + el.nodeName.toLowerCase();
                if (el.id)
                        s += ` id="${el.id}"`;
                const cls = el.getAttribute('class');
                if (cls)
                        s += ` class="${cls.trim().slice(0, 60)}"`;
                s += '>';
                const text = normalize(el.textContent || '').slice(0, 40);
                return text ? `${s}${text}</${el.nodeName.toLowerCase()}>` : s;
        }

        /* Synchronous states: {ok, reason}. */
        function checkNow(el, state) {
                if (!isAttached(el))
                        return state === 'hidden' ? { ok: true, reason: '' }
                                                  : { ok: false, reason: 'element is not attached to the document' };
                switch (state) {
                case 'attached':
                        return { ok: true, reason: '' };
                case 'visible':
                        return isVisible(el) ? { ok: true, reason: '' } : { ok: false, reason: 'element is not visible' };
                case 'hidden':
                        return !isVisible(el) ? { ok: true, reason: '' } : { ok: false, reason: 'element is visible' };
                case 'enabled':
                        return !isDisabled(el) ? { ok: true, reason: '' } : { ok: false, reason: 'element is disabled' };
                case 'disabled':
                        return isDisabled(el) ? { ok: true, reason: '' } : { ok: false, reason: 'element is enabled' };
                case 'editable':
                        if (!editableKind(el))
                                return { ok: false, reason: `element is not editable: ${describe(el)}` };
                        if (isDisabled(el))
                                return { ok: false, reason: 'element is disabled' };
                        if (isReadonly(el))
                                return { ok: false, reason: 'element is readonly' };
                        return { ok: true, reason: '' };
                default:
                        throw new Error(`unknown state '${state}'`);
                }
        }

        function rectKey(el) {
                const r = el.getBoundingClientRect();
                return `${r.x},${r.y},${r.width},${r.height}`;
        }

        function nextFrame() {
                return new Promise((resolve) => raf(() => resolve()));
        }

        /* ---------------------------------------------------------------
         * Waiting
         * --------------------------------------------------------------- */

        const waits = new Set();

        const OBSERVE = { subtree: true, childList: true, attributes: true, characterData: true };

        const WAIT_STATES = new Set(['attached', 'visible', 'detached', 'hidden', 'click', 'fill',
                                     'enabled', 'disabled']);

        /* What a candidate must satisfy now for each wait state (stability is
         * tracked across frames separately). */
        const REQUIRES = {
                attached: [],
                visible: ['visible'],
                click: ['visible', 'enabled'],
                fill: ['visible', 'editable'],
                enabled: ['enabled'],
                disabled: ['disabled'],
        };

        function finishWait(w, value) {
                if (w.done)
                        return;
                w.done = true;
                waits.delete(w);
                if (w.observer)
                        w.observer.disconnect();
                if (w.frame)
                        cancelRaf(w.frame);
                w.resolve(value);
        }

        function evaluateWait(w, fromFrame) {
                if (w.done)
                        return;
                let matches;
                const ctx = { cache: new Map(), shadows: null };
                try {
                        matches = queryAll(w.selector, ctx);
                        /* A MutationObserver on the document does not see into
                         * shadow trees: observe each one as it turns up. */
                        for (const root of ctx.shadows || allShadowRoots()) {
                                if (!w.observed.has(root)) {
                                        w.observed.add(root);
                                        w.observer.observe(root, OBSERVE);
                                }
                        }
                } catch (e) {
                        w.done = true;
                        waits.delete(w);
                        if (w.observer)
                                w.observer.disconnect();
                        w.reject(e);
                        return;
                }
                if (w.state === 'detached') {
                        if (!matches.length)
                                finishWait(w, null);
                        return;
                }
                if (w.state === 'hidden') {
                        if (!matches.some(isVisible))
                                finishWait(w, null);
                        return;
                }
                const needs = REQUIRES[w.state];
                const rects = new Map();
                for (const el of matches) {
                        if (!needs.every((s) => checkNow(el, s).ok))
                                continue;
                        if (w.state !== 'click') {
                                finishWait(w, el);
                                return;
                        }
                        /* Stable: the same box on two consecutive frames. */
                        const key = rectKey(el);
                        rects.set(el, key);
                        if (fromFrame && w.rects.get(el) === key) {
                                finishWait(w, el);
                                return;
                        }
                }
                /* Boxes are compared frame to frame only: a mutation in between
                 * re-checks the other states but does not count as a frame. */
                if (w.state === 'click' && fromFrame)
                        w.rects = rects;
        }

        function frameTick(w) {
                w.frame = 0;
                if (w.done)
                        return;
                evaluateWait(w, true);
                if (!w.done)
                        w.frame = raf(() => frameTick(w));
        }

        function waitFor(selector, options) {
                options = options || {};
                let state = options.state || 'visible';
                if (!WAIT_STATES.has(state))
                        return Promise.reject(new Error(`unknown wait state '${state}'`));
                if (options.force && state !== 'detached' && state !== 'hidden')
                        state = 'attached';
                try {
                        compile(selector);
                } catch (e) {
                        return Promise.reject(e);
                }
                return new Promise((resolve, reject) => {
                        const w = { selector, state, resolve, reject, done: false, observer: null,
                                    observed: new Set(), frame: 0, rects: new Map() };
                        w.observer = new MutationObserverCtor(() => evaluateWait(w, false));
                        waits.add(w);
                        evaluateWait(w, false);
                        if (w.done)
                                return;
                        w.observer.observe(document, OBSERVE);
                        /* Layout and style can change without a mutation (CSS
                         * animations, transitions, viewport): states that depend on
                         * them are also checked every frame while the wait lasts. */
                        if (state !== 'attached' && state !== 'detached' && state !== 'enabled' &&
                            state !== 'disabled')
                                w.frame = raf(() => frameTick(w));
                });
        }

        function abortWaits() {
                const all = [...waits];
                for (const w of all)
                        finishWait(w, null);
                return all.length;
        }

        /* ---------------------------------------------------------------
         * Actions
         * --------------------------------------------------------------- */

        function deepElementFromPoint(x, y) {
                let root = document;
                let hit = null;
                for (;;) {
                        const next = root.elementFromPoint(x, y);
                        if (!next || next === hit)
                                break;
                        hit = next;
                        if (!hit.shadowRoot)
                                break;
                        root = hit.shadowRoot;
                }
                return hit;
        }

        function hitTarget(el, x, y) {
                if (!isAttached(el))
                        return { ok: false, reason: 'element is not attached to the document' };
                const hit = deepElementFromPoint(x, y);
                if (!hit)
                        return { ok: false, reason: `nothing at (${x}, ${y}): the point is outside the viewport` };
                for (let n = hit; n; n = parentOrHost(n)) {
                        if (n === el)
                                return { ok: true, reason: '' };
                }
                return { ok: false, reason: `${describe(hit)} intercepts pointer events` };
        }

        function actionPoint(el) {
                if (!isAttached(el))
                        return null;
                if (typeof el.scrollIntoViewIfNeeded === 'function')
                        el.scrollIntoViewIfNeeded(true);
                else
                        el.scrollIntoView({ block: 'center', inline: 'center', behavior: 'instant' });
                for (const r of el.getClientRects()) {
                        if (r.width > 0 && r.height > 0)
                                return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
                }
                return null;
        }

        function dispatchValueEvents(el) {
                el.dispatchEvent(new Event('input', { bubbles: true, composed: true }));
                el.dispatchEvent(new Event('change', { bubbles: true }));
        }

        function prepareFill(el, value) {
                const kind = isAttached(el) ? editableKind(el) : null;
                value = value === undefined || value === null ? '' : String(value);
                if (!kind) {
                        if (el && el.nodeName === 'INPUT')
                                throw new Error(`input of type "${el.type}" cannot be filled`);
                        throw new Error(`element is not an <input>, <textarea>, <select> or [contenteditable]: ${describe(el)}`);
                }
                if (isDisabled(el))
                        throw new Error('element is disabled');
                if (isReadonly(el))
                        throw new Error('element is readonly');
                if (kind === 'select') {
                        const options = [...el.options];
                        const option = options.find((o) => o.value === value) ||
                                       options.find((o) => normalize(o.label) === normalize(value));
                        if (!option)
                                throw new Error(`no option "${value}" in ${describe(el)}`);
                        el.value = option.value;
                        dispatchValueEvents(el);
                        return { kind: 'select' };
                }
                if (kind === 'input' && el.nodeName === 'INPUT' && SET_VALUE_TYPES.has(el.type)) {
                        /* No typing into date, colour or range pickers: set the value
                         * directly, like a select ("select" = done, nothing to type). */
                        el.focus();
                        el.value = value;
                        if (el.value !== value)
                                throw new Error(`malformed value "${value}" for input of type "${el.type}"`);
                        dispatchValueEvents(el);
                        return { kind: 'select' };
                }
                el.focus();
                if (kind === 'input') {
                        el.select();
                } else {
                        const range = document.createRange();
                        range.selectNodeContents(el);
                        const sel = el.ownerDocument.getSelection();
                        sel.removeAllRanges();
                        sel.addRange(range);
                }
                /* Input.insertText of "" inserts nothing: delete the selection here,
                 * with the input events typing a deletion would fire. */
                if (value === '')
                        document.execCommand('delete');
                return { kind };
        }

        function text(el) {
                if (!isAttached(el))
                        return '';
                if (el.nodeName === 'INPUT' || el.nodeName === 'TEXTAREA')
                        return normalize(el.value);
                return textOf(new Map(), el).normalized;
        }

        function attribute(el, name) {
                return el.getAttribute(String(name));
        }

        /* ---------------------------------------------------------------
         * perspective.discover_page
         * --------------------------------------------------------------- */

        function componentType(el) {
                const tag = el.nodeName;
                const role = (el.getAttribute('role') || '').toLowerCase();
                const type = (el.getAttribute('type') || '').toLowerCase();
                if (role === 'tab')
                        return 'tab';
                if (role === 'switch')
                        return 'toggle';
                if (role === 'checkbox' || (tag === 'INPUT' && (type === 'checkbox' || type === 'radio')))
                        return 'checkbox';
                if (tag === 'SELECT' || role === 'combobox' || role === 'listbox')
                        return 'dropdown';
                if (tag === 'BUTTON' || role === 'button' ||
                    (tag === 'INPUT' && (type === 'button' || type === 'submit' || type === 'reset')))
                        return 'button';
                if (tag === 'INPUT' || tag === 'TEXTAREA' || role === 'textbox' || el.isContentEditable)
                        return 'input';
                if (tag === 'A' && el.hasAttribute('href'))
                        return 'link';
                if (el.hasAttribute('data-component') || el.hasAttribute('data-component-path'))
                        return 'component';
                return null;
        }

        function cssIdent(s) {
                return typeof CSS !== 'undefined' && CSS.escape ? CSS.escape(s) : s.replace(/[^\w-]/g, '\\$&');
        }

        function cssString(s) {
                return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\a ') + '"';
        }

        function uniqueIn(sel, el) {
                try {
                        const found = queryAll(sel);
                        return found.length === 1 && found[0] === el;
                } catch (e) {
                        return false;
                }
        }

        /* A selector (of our dialect) that finds exactly @el: an id, then a
         * name or a stable attribute, then :nth-of-type steps from the nearest
         * anchor; an element in a shadow tree is reached through its host. */
        function uniqueSelector(el) {
                const tag = el.nodeName.toLowerCase();
                const root = el.getRootNode();
                const inShadow = root.nodeType === Node.DOCUMENT_FRAGMENT_NODE && root.host;
                const prefix = inShadow ? uniqueSelector(root.host) + ' >> ' : '';
                const candidates = [];
                if (el.id)
                        candidates.push(`#${cssIdent(el.id)}`);
                for (const attr of ['data-component-path', 'name', 'data-testid', 'aria-label',
                                    'data-label', 'placeholder', 'href']) {
                        const v = el.getAttribute(attr);
                        if (v)
                                candidates.push(`${tag}[${attr}=${cssString(v)}]`);
                }
                for (const sel of candidates) {
                        if (uniqueIn(prefix + sel, el))
                                return prefix + sel;
                }
                const steps = [];
                for (let n = el; n && n.nodeType === Node.ELEMENT_NODE; n = n.parentElement) {
                        const ntag = n.nodeName.toLowerCase();
                        if (n !== el && n.id && uniqueIn(prefix + `#${cssIdent(n.id)}`, n)) {
                                steps.unshift(`#${cssIdent(n.id)}`);
                                break;
                        }
                        if (n === document.documentElement || n === document.body) {
                                steps.unshift(ntag);
                                break;
                        }
                        let i = 1;
                        for (let s = n.previousElementSibling; s; s = s.previousElementSibling) {
                                if (s.nodeName === n.nodeName)
                                        i++;
                        }
                        steps.unshift(`${ntag}:nth-of-type(${i})`);
                }
                return prefix + steps.join(' > ');
        }

        function labelOf(el) {
                if (el.labels && el.labels.length)
                        return normalize(el.labels[0].textContent || '');
                const by = el.getAttribute('aria-labelledby');
                if (by) {
                        const parts = by.split(/\s+/).map((id) => document.getElementById(id))
                                .filter(Boolean).map((n) => normalize(n.textContent || ''));
                        if (parts.length)
                                return parts.join(' ');
                }
                return el.getAttribute('data-label') || el.getAttribute('aria-label') ||
                       el.getAttribute('placeholder') || null;
        }

        function discover(rootSelector, types, excludeSelectors) {
                rootSelector = rootSelector || 'body';
                const root = queryAll(rootSelector)[0];
                if (!root)
                        throw new Error(`no element matches the root selector '${rootSelector}'`);
                const keep = new Set((types || []).map((t) => String(t).toLowerCase()));
                const excluded = new Set();
                for (const sel of excludeSelectors || []) {
                        for (const el of queryAll(sel))
                                excluded.add(el);
                }
                const inventory = [];
                const seen = new Set();
                for (const el of allElements(root)) {
                        const type = componentType(el);
                        if (!type || seen.has(el))
                                continue;
                        if (keep.size && !keep.has(type))
                                continue;
                        let skip = false;
                        for (let n = el; n; n = parentOrHost(n)) {
                                if (excluded.has(n)) {
                                        skip = true;
                                        break;
                                }
                        }
                        if (skip)
                                continue;
                        seen.add(el);
                        const r = el.getBoundingClientRect();
                        inventory.push({
                                type,
                                selector: uniqueSelector(el),
                                id: el.id || null,
                                name: el.getAttribute('name'),
                                label: labelOf(el),
                                aria_label: el.getAttribute('aria-label'),
                                text: text(el).slice(0, 200),
                                component: el.getAttribute('data-component'),
                                component_path: el.getAttribute('data-component-path') ||
                                        (el.closest('[data-component-path]') || { getAttribute: () => null })
                                                .getAttribute('data-component-path'),
                                visible: isVisible(el),
                                enabled: !isDisabled(el),
                                rect: { x: r.x, y: r.y, width: r.width, height: r.height },
                        });
                }
                return { count: inventory.length, inventory, root_selector: rootSelector };
        }

        /* ---------------------------------------------------------------
         * The agent
         * --------------------------------------------------------------- */

        function validate(selector) {
                try {
                        const parts = parseSelector(selector);
                        checkNative(parts);
                        return null;
                } catch (e) {
                        if (e instanceof SelectorError)
                                return { message: e.message, offset: byteOffset(String(selector), e.offset) };
                        throw e;
                }
        }

        const agent = Object.freeze({
                version: 1,
                validate,
                resolveAll: (selector) => queryAll(selector),
                resolve: (selector) => queryAll(selector)[0] || null,
                waitFor,
                abortWaits,
                check(el, state) {
                        if (state !== 'stable')
                                return checkNow(el, state);
                        if (!isAttached(el))
                                return Promise.resolve({ ok: false, reason: 'element is not attached to the document' });
                        return nextFrame().then(() => {
                                const first = isAttached(el) ? rectKey(el) : null;
                                return nextFrame().then(() => {
                                        if (!isAttached(el))
                                                return { ok: false, reason: 'element is not attached to the document' };
                                        return rectKey(el) === first ? { ok: true, reason: '' }
                                                                     : { ok: false, reason: 'element is not stable' };
                                });
                        });
                },
                hitTarget,
                actionPoint,
                prepareFill,
                text,
                attribute,
                discover,
        });

        Object.defineProperty(globalThis, '__itkAgent', { value: agent, configurable: false,
                                                          enumerable: false, writable: false });
})();
