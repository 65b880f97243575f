// Entry point and router: /sessions (list) and /sessions/<encodeURIComponent(key)> (detail).
import { h, replace } from "./dom.js";
import { mountSessionList } from "./views/session-list.js";
import { mountSessionDetail } from "./views/session-detail.js";

const LIST_PATH = "/sessions";
const LIST_QUERY_STORAGE = "sessionscope.listQuery";

let current = null; // the mounted view: {unmount()}

/** The path of a session's detail page; tenant only when it is not the default. */
export function detailHref(key, tenant) {
  const query = tenant && tenant !== "default" ? `?tenant=${encodeURIComponent(tenant)}` : "";
  return `${LIST_PATH}/${encodeURIComponent(key)}${query}`;
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
    const encoded = pathname.slice(LIST_PATH.length + 1);
    try {
      return { name: "detail", key: decodeURIComponent(encoded) };
    } catch {
      return { name: "bad-link", path: pathname };
    }
  }
  return { name: "unknown", path: pathname };
}

function render({ moveFocus = false } = {}) {
  const main = document.getElementById("main");
  current?.unmount?.();
  current = null;
  if (moveFocus) {
    // A new page: start keyboard and screen-reader users at its top, as a full load would.
    window.scrollTo(0, 0);
    main.focus({ preventScroll: true });
  }
  const route = parseRoute(location.pathname);
  const params = new URLSearchParams(location.search);
  if (route.name === "list") {
    if (location.pathname === "/") history.replaceState(null, "", LIST_PATH + location.search);
    document.title = "Sessions · sessionscope";
    current = mountSessionList(main, { params });
  } else if (route.name === "detail") {
    current = mountSessionDetail(main, { key: route.key, tenant: params.get("tenant") || null, params });
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

window.addEventListener("popstate", () => render({ moveFocus: true }));
render();
