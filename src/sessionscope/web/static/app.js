// Entry point and router: /sessions (list) and /sessions/<encodeURIComponent(key)> (detail).
import { h, replace } from "./dom.js";
import { mountSessionList } from "./views/session-list.js";
import { mountSessionDetail } from "./views/session-detail.js";

const LIST_PATH = "/sessions";
const LIST_QUERY_STORAGE = "sessionscope.listQuery";

let current = null; // the mounted view: {unmount()}

/** Detail tabs with a path of their own (Conversation is the bare detail path). */
export const DETAIL_TABS = ["context", "metrics"];

/** The path of a session's detail page (or one of its tabs); tenant only when it is not the default. */
export function detailHref(key, tenant, tab = null) {
  const query = tenant && tenant !== "default" ? `?tenant=${encodeURIComponent(tenant)}` : "";
  const suffix = tab && DETAIL_TABS.includes(tab) ? `/${tab}` : "";
  return `${LIST_PATH}/${encodeURIComponent(key)}${suffix}${query}`;
}

/** The list URL with the filters and sort the user last had (kept across reloads). */
export function listHref() {
  let query = "";
  try {
    query = sessionStorage.getItem(LIST_QUERY_STORAGE) || "";
  } catch {
    // storage may be unavailable; the plain list is a fine fallback
  }
  return LIST_PATH + query;
}

export function rememberListQuery(search) {
  try {
    sessionStorage.setItem(LIST_QUERY_STORAGE, search);
  } catch {
    // ignore: see listHref
  }
}

/** Go to `url` inside the app (pushState), or replace the current entry. */
export function navigate(url, { replace: replaceEntry = false } = {}) {
  if (replaceEntry) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  render({ moveFocus: true });
}

function parseRoute(pathname) {
  if (pathname === "/" || pathname === LIST_PATH || pathname === `${LIST_PATH}/`) return { name: "list" };
  if (pathname.startsWith(`${LIST_PATH}/`)) {
    // The key is one encoded segment (its own slashes are %2F); a tab may follow it.
    const [encoded, tab, ...rest] = pathname.slice(LIST_PATH.length + 1).split("/");
    if (rest.length || (tab !== undefined && !DETAIL_TABS.includes(tab))) return { name: "unknown", path: pathname };
    try {
      return { name: "detail", key: decodeURIComponent(encoded), tab: tab || "conversation" };
    } catch {
      return { name: "bad-link", path: pathname };
    }
  }
  return { name: "unknown", path: pathname };
}

function render({ moveFocus = false } = {}) {
  const main = document.getElementById("main");
  const route = parseRoute(location.pathname);
  const params = new URLSearchParams(location.search);
  // Back/forward between the tabs of the session on screen: switch the tab, keep the page.
  if (route.name === "detail" && current?.showsSession?.(route.key, params.get("tenant") || null)) {
    current.showTab(route.tab);
    return;
  }
  current?.unmount?.();
  current = null;
  if (moveFocus) {
    // A new page: start keyboard and screen-reader users at its top, as a full load would.
    window.scrollTo(0, 0);
    main.focus({ preventScroll: true });
  }
  if (route.name === "list") {
    if (location.pathname === "/") history.replaceState(null, "", LIST_PATH + location.search);
    document.title = "Sessions · sessionscope";
    current = mountSessionList(main, { params });
  } else if (route.name === "detail") {
    let tab = route.tab;
    if (tab === "conversation" && DETAIL_TABS.includes(params.get("tab"))) {
      // Old links carried the tab as ?tab=: keep them working, under the path form.
      tab = params.get("tab");
      history.replaceState(null, "", detailHref(route.key, params.get("tenant"), tab));
    }
    current = mountSessionDetail(main, { key: route.key, tenant: params.get("tenant") || null, tab });
  } else {
    document.title = "Not found · sessionscope";
    replace(main, h("div", { class: "state state-error", role: "alert" },
      h("p", { class: "state-title" }, "This page does not exist."),
      h("p", { class: "state-detail" }, route.path),
      h("a", { href: LIST_PATH, "data-link": "" }, "Go to the session list")));
  }
}

// Same-document links: <a data-link href="..."> navigate without a reload, unless the user
// asks for a new tab or window.
document.addEventListener("click", (event) => {
  const link = event.target.closest?.("a[data-link]");
  if (!link || event.defaultPrevented) return;
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(link.getAttribute("href"));
});

// ---- keyboard shortcuts (listed in the ? overlay)
const SHORTCUTS = [
  ["/", "Focus the search box"],
  ["j", "Next session in the list"],
  ["k", "Previous session in the list"],
  ["Enter", "Open the focused session"],
  ["Shift+F10", "Actions of the focused session (archive, delete)"],
  ["Esc", "Back to the session list (from a session)"],
  ["?", "Show these shortcuts"],
];

function showShortcuts() {
  if (document.querySelector("dialog[data-dialog=shortcuts]")) return;
  const close = h("button", { type: "submit", class: "btn btn-primary", value: "ok" }, "Close");
  const dialog = h("dialog", { class: "dialog", "data-dialog": "shortcuts", "aria-labelledby": "shortcuts-title" },
    h("form", { method: "dialog" },
      h("h2", { class: "dialog-title", id: "shortcuts-title" }, "Keyboard shortcuts"),
      h("table", { class: "shortcuts" }, h("tbody", {}, SHORTCUTS.map(([keyName, what]) =>
        h("tr", {}, h("th", { scope: "row" }, h("kbd", {}, keyName)), h("td", {}, what))))),
      h("div", { class: "dialog-actions" }, close)));
  const opener = document.activeElement;
  dialog.addEventListener("close", () => { dialog.remove(); opener?.focus?.(); });
  document.body.append(dialog);
  dialog.showModal();
  close.focus();
}

function moveRow(step) {
  const links = [...document.querySelectorAll("tr.row a.row-link")];
  if (!links.length) return;
  const at = links.indexOf(document.activeElement);
  const next = links[Math.max(0, Math.min(links.length - 1, at === -1 ? (step > 0 ? 0 : links.length - 1) : at + step))];
  next.focus();
  next.closest("tr")?.scrollIntoView({ block: "nearest" });
}

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
  if (document.querySelector("dialog[open]")) return; // a dialog handles its own keys (Esc closes it)
  const target = event.target;
  const typing = target.closest?.("input, textarea, select, [contenteditable]");
  if (typing) {
    if (event.key === "Escape" && target.matches("input[type=search]")) target.blur();
    return;
  }
  const route = parseRoute(location.pathname);
  if (event.key === "/") {
    const search = document.querySelector("input[name=q]");
    if (search) { event.preventDefault(); search.focus(); }
  } else if (event.key === "?") {
    event.preventDefault();
    showShortcuts();
  } else if ((event.key === "j" || event.key === "k") && route.name === "list") {
    event.preventDefault();
    moveRow(event.key === "j" ? 1 : -1);
  } else if (event.key === "Escape" && route.name === "detail") {
    event.preventDefault();
    navigate(listHref());
  }
});

window.addEventListener("popstate", () => render({ moveFocus: true }));
render();
