// Small render helpers. Text always goes in through textContent / text nodes;
// the only innerHTML in the app is the server-sanitized `content_html` and `summary_html` (conversation.js).

/**
 * Create an element.
 *   h("button", {class: "btn", type: "button", onclick: fn, dataset: {key}}, "Label", childNode)
 * Attribute values are set with setAttribute (never parsed as HTML); `on*` functions become
 * listeners; strings, numbers and nodes are appended as children (strings as text nodes).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name.startsWith("on")) {
      // Handlers are functions only: a string here would be an inline script.
      if (typeof value === "function") el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    } else if (name === "text") {
      el.textContent = value;
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

/** Append children (strings become text nodes; arrays are flattened; null is skipped). */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replace all children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

const NUMBER = new Intl.NumberFormat();
// One precision for every cost: four significant figures ($0.08600 beside $0.1717, $12.35).
const USD = new Intl.NumberFormat(undefined, {
  style: "currency", currency: "USD", minimumSignificantDigits: 4, maximumSignificantDigits: 4,
});
const USD_LARGE = new Intl.NumberFormat(undefined, { style: "currency", currency: "USD", maximumFractionDigits: 0 });
const DATE_TIME = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
});
const RELATIVE = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

export const fmtNumber = (n) => (n === null || n === undefined ? "—" : NUMBER.format(n));
export const fmtCost = (n) => (n === null || n === undefined ? "—"
  : Math.abs(n) >= 1000 ? USD_LARGE.format(n) : USD.format(n));

/** Markdown reduced to its text, for one-line previews (`**ingest-worker**` → `ingest-worker`). */
export function stripMarkdown(text) {
  if (!text) return "";
  return text
    .replace(/```[^\n]*\n?/g, "")
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/\[([^\]]+)\]\([^)]*\)/g, "$1")
    .replace(/^\s{0,3}(#{1,6}\s+|>\s?|[-*+]\s+|\d+[.)]\s+)/gm, "")
    .replace(/(\*\*|__)(?=\S)([^]*?\S)\1/g, "$2")
    .replace(/(^|[^\w*])[*_](?=\S)([^*_\n]*?\S)[*_](?=$|[^\w*])/g, "$1$2")
    .replace(/~~(.+?)~~/g, "$1")
    .replace(/`([^`]*)`/g, "$1")
    .replace(/\s+/g, " ")
    .trim();
}
export const fmtPercent = (x) => (x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)}%`);

/**
 * A session's message count: the live conversation first; after a reset or a compaction the
 * stored count beside it, since those messages are kept (dimmed) for audit.
 */
export function fmtMessages(session) {
  const live = session.live_messages ?? session.message_count;
  if (live >= session.message_count) return fmtNumber(session.message_count);
  return `${fmtNumber(live)} live · ${fmtNumber(session.message_count)} kept for audit`;
}

export function fmtDateTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : DATE_TIME.format(d);
}

const UNITS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400],
  ["hour", 3600], ["minute", 60], ["second", 1]];

export function fmtRelative(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return "—";
  const seconds = (d.getTime() - Date.now()) / 1000;
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === "second") {
      return RELATIVE.format(Math.round(seconds / size), unit);
    }
  }
  return "—";
}

/** A <time> element: local date and time as text, the exact ISO time as its title. */
export function timeEl(iso, { relative = false } = {}) {
  return h("time", { datetime: iso, title: iso }, relative ? fmtRelative(iso) : fmtDateTime(iso));
}

/** Call `fn` once `ms` have passed without another call. */
export function debounce(fn, ms) {
  let timer = 0;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

/** Start a browser download of `url` saved as `filename` (a temporary <a download>). */
export function triggerDownload(url, filename) {
  const a = h("a", { href: url, download: filename || "", class: "visually-hidden" });
  document.body.append(a);
  a.click();
  a.remove();
}

/** Announce a short message: errors in the assertive region, the rest in the polite one. */
export function notify(message, { kind = "info" } = {}) {
  const error = kind === "error";
  const region = document.getElementById(error ? "toast-error" : "toast");
  const other = document.getElementById(error ? "toast" : "toast-error");
  if (!region) return;
  if (other) other.hidden = true;
  region.dataset.kind = kind;
  region.textContent = message;
  region.title = message; // the strip is one line; the whole message is a hover away
  region.hidden = false;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => { region.hidden = true; }, 6000);
}

/** A loading / empty / error block. `action` is an optional {label, onclick}. */
export function stateBlock(kind, title, detail, action) {
  return h("div", { class: ["state", `state-${kind}`], role: kind === "error" ? "alert" : null,
    "aria-busy": kind === "loading" ? "true" : null },
  h("p", { class: "state-title" }, title),
  detail ? h("p", { class: "state-detail" }, detail) : null,
  action ? h("button", { type: "button", class: "btn", onclick: action.onclick }, action.label) : null);
}
