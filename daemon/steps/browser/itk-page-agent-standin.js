// SPDX-License-Identifier: LGPL-2.1-or-later
// STAND-IN page agent for the browser helper's own tests, not the real one:
// the selector helper's daemon/steps/browser/itk-page-agent.js replaces it
// (meson embeds that file when it exists, this one otherwise). It follows
// AGENT-API.md with a reduced selector dialect: CSS, comma lists, text=,
// and >> chaining (no :has-text).
(function () {
  if (globalThis.__itkAgent) return;
  const norm = (s) => (s || "").replace(/\s+/g, " ").trim();
  const textOf = (el) => norm(el.innerText !== undefined ? el.innerText : el.textContent);
  function splitTop(s, sep) {
    const out = []; let depth = 0, q = null, start = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s[i];
      if (q) { if (c === q) q = null; continue; }
      if (c === '"' || c === "'") { q = c; continue; }
      if (c === "(" || c === "[") depth++;
      else if (c === ")" || c === "]") depth--;
      else if (depth === 0 && s.startsWith(sep, i)) { out.push(s.slice(start, i)); start = i + sep.length; i += sep.length - 1; }
    }
    out.push(s.slice(start));
    return out;
  }
  function validate(selector) {
    if (typeof selector !== "string" || !norm(selector)) return { message: "empty selector", offset: 0 };
    for (const part of splitTop(selector, ">>")) {
      const p = part.trim();
      if (!p) return { message: "empty selector after '>>'", offset: selector.length };
      if (p.startsWith("text=")) continue;
      try { document.createDocumentFragment().querySelector(p); } catch (e) { return { message: "invalid selector '" + p + "'", offset: Math.max(0, selector.indexOf(p)) }; }
    }
    return null;
  }
  function queryOne(root, part) {
    part = part.trim();
    if (part.startsWith("text=")) {
      let t = part.slice(5).trim(); let exact = false;
      if ((t.startsWith('"') && t.endsWith('"')) || (t.startsWith("'") && t.endsWith("'"))) { exact = true; t = t.slice(1, -1); }
      const want = exact ? t : t.toLowerCase();
      const all = Array.from(root.querySelectorAll("*")).filter((el) => {
        const x = textOf(el); return exact ? x === want : x.toLowerCase().includes(want);
      });
      return all.filter((el) => !all.some((o) => o !== el && el.contains(o)));
    }
    const out = [];
    for (const alt of splitTop(part, ",")) {
      if (alt.trim().startsWith("text=")) { out.push(...queryOne(root, alt)); continue; }
      out.push(...root.querySelectorAll(alt));
    }
    const uniq = Array.from(new Set(out));
    uniq.sort((a, b) => (a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1));
    return uniq;
  }
  function resolveAll(selector) {
    const bad = validate(selector);
    if (bad) throw new Error("invalid selector: " + bad.message);
    let roots = [document];
    for (const part of splitTop(selector, ">>")) {
      const next = [];
      for (const r of roots) next.push(...queryOne(r, part));
      roots = Array.from(new Set(next));
    }
    return roots;
  }
  const resolve = (s) => resolveAll(s)[0] || null;
  function isVisible(el) {
    if (!el.isConnected) return false;
    const st = getComputedStyle(el);
    if (st.visibility === "hidden") return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0;
  }
  function isDisabled(el) {
    if (["BUTTON", "INPUT", "SELECT", "TEXTAREA", "OPTION", "OPTGROUP"].includes(el.tagName) && el.disabled) return true;
    if (el.closest("fieldset[disabled]")) return true;
    return el.getAttribute("aria-disabled") === "true";
  }
  const isEditable = (el) => !isDisabled(el) && !el.readOnly;
  function checkNow(el, state) {
    switch (state) {
      case "attached": return el.isConnected;
      case "visible": return isVisible(el);
      case "hidden": return !isVisible(el);
      case "enabled": return !isDisabled(el);
      case "disabled": return isDisabled(el);
      case "editable": return isEditable(el);
    }
    return false;
  }
  const waits = new Set();
  function waitFor(selector, options) {
    options = options || {};
    const state = options.force ? "attached" : (options.state || "visible");
    resolveAll(selector); // throws at once when invalid
    return new Promise((resolve_) => {
      let lastRect = null, done = false, raf = 0;
      const w = { finish: null };
      const finish = (v) => { if (done) return; done = true; obs.disconnect(); cancelAnimationFrame(raf); waits.delete(w); resolve_(v); };
      w.finish = finish;
      const test = () => {
        const all = resolveAll(selector);
        if (state === "detached") { if (!all.length) finish(null); return; }
        if (state === "hidden") { if (!all.some(isVisible)) finish(null); return; }
        for (const el of all) {
          if (state === "attached" && el.isConnected) return finish(el);
          if ((state === "visible") && isVisible(el)) return finish(el);
          if ((state === "enabled" || state === "disabled") && checkNow(el, state)) return finish(el);
          if (state === "fill" && isVisible(el) && isEditable(el)) return finish(el);
          if (state === "click" && isVisible(el) && !isDisabled(el)) {
            const r = el.getBoundingClientRect(); const key = [r.x, r.y, r.width, r.height].join();
            if (lastRect === key) return finish(el);
            lastRect = key; tick(); return;
          }
        }
        lastRect = null;
      };
      const tick = () => { cancelAnimationFrame(raf); raf = requestAnimationFrame(() => { if (!done) test(); }); };
      const obs = new MutationObserver(() => test());
      obs.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
      waits.add(w);
      test();
      if (!done && (state === "visible" || state === "hidden")) tick();
    });
  }
  function abortWaits() { const n = waits.size; for (const w of Array.from(waits)) w.finish(null); return n; }
  function actionPoint(el) {
    el.scrollIntoView({ block: "center", inline: "center", behavior: "instant" });
    const r = el.getClientRects()[0]; if (!r) return null;
    return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
  }
  function hitTarget(el, x, y) {
    const hit = document.elementFromPoint(x, y);
    if (hit && (hit === el || el.contains(hit))) return { ok: true, reason: "" };
    return { ok: false, reason: hit ? "covered by <" + hit.tagName.toLowerCase() + ">" : "nothing at the point" };
  }
  function check(el, state) {
    if (state === "stable") return new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r({ ok: true, reason: "" }))));
    const ok = checkNow(el, state); return { ok, reason: ok ? "" : "not " + state };
  }
  function prepareFill(el, value) {
    if (el.tagName === "SELECT") {
      el.value = value; el.dispatchEvent(new Event("input", { bubbles: true })); el.dispatchEvent(new Event("change", { bubbles: true }));
      return { kind: "select" };
    }
    if (el.isContentEditable) { el.focus(); const s = getSelection(); s.selectAllChildren(el); return { kind: "contenteditable" }; }
    if (el.tagName === "INPUT" || el.tagName === "TEXTAREA") {
      if (!isEditable(el)) throw new Error("element is not editable");
      el.focus(); el.select(); return { kind: "input" };
    }
    throw new Error("element is not an input, textarea, select or contenteditable");
  }
  const text = (el) => textOf(el);
  const attribute = (el, name) => el.getAttribute(name);
  function discover(rootSelector, types, exclude) {
    const root = resolve(rootSelector || "body") || document.body;
    const kinds = [["button", "button, input[type=button], input[type=submit], [role=button]"],
      ["checkbox", "input[type=checkbox], [role=checkbox], [role=switch]"],
      ["input", "input:not([type=button]):not([type=submit]):not([type=checkbox]):not([type=hidden]), textarea"],
      ["dropdown", "select, [role=combobox], [role=listbox]"], ["link", "a[href]"], ["tab", "[role=tab]"],
      ["component", "[data-component], [data-component-path]"]];
    const inventory = []; const seen = new Set();
    for (const [type, css] of kinds) {
      if (types && types.length && !types.includes(type)) continue;
      for (const el of root.querySelectorAll(css)) {
        if (seen.has(el)) continue;
        if ((exclude || []).some((x) => { try { return el.closest(x); } catch (e) { return false; } })) continue;
        seen.add(el);
        const r = el.getBoundingClientRect();
        inventory.push({ type, selector: el.id ? "#" + CSS.escape(el.id) : el.name ? el.tagName.toLowerCase() + "[name='" + el.name + "']" : el.tagName.toLowerCase(),
          id: el.id || null, name: el.getAttribute("name"), label: el.labels && el.labels[0] ? textOf(el.labels[0]) : null,
          aria_label: el.getAttribute("aria-label"), text: textOf(el).slice(0, 200), component_path: el.getAttribute("data-component-path"),
          visible: isVisible(el), enabled: !isDisabled(el), rect: { x: r.x, y: r.y, width: r.width, height: r.height } });
      }
    }
    return { count: inventory.length, inventory, root_selector: rootSelector || "body" };
  }
  Object.defineProperty(globalThis, "__itkAgent", { value: Object.freeze({ validate, resolveAll, resolve, waitFor, abortWaits, check, hitTarget, actionPoint, prepareFill, text, attribute, discover }), configurable: false });
})();
