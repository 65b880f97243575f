// The session list (/sessions): search, filters, server-side sort, cursor paging, bulk actions.
import { rpc, isAbort } from "../api.js";
import { detailHref, rememberListQuery } from "../app.js";
import { debounce, fmtCost, fmtMessages, fmtNumber, h, stripMarkdown, notify, replace, stateBlock, timeEl } from "../dom.js";
import { createBulkBar } from "./bulk-actions.js";
import { rowMenu } from "./row-menu.js";

export const PAGE_SIZE = 50;
export const SEARCH_DEBOUNCE_MS = 250;
const DEFAULT_SORT = "updated_at";
const DEFAULT_ORDER = "desc";

const COLUMNS = [
  { label: "Session", sort: "key", order: "asc" },
  { label: "Agent", sort: "agent", order: "asc" },
  { label: "Channel", sort: "channel", order: "asc" },
  { label: "Messages", sort: "message_count", order: "desc", numeric: true },
  { label: "Tokens", sort: "total_tokens", order: "desc", numeric: true },
  { label: "Cost", sort: "cost_usd", order: "desc", numeric: true },
  { label: "Last active", sort: "updated_at", order: "desc" },
];
const SORTS = new Set(COLUMNS.map((c) => c.sort).concat("created_at"));
const FILTERS = ["q", "query", "agent", "channel", "tenant", "archived", "errors"];
// session.list's `archived`: the list leaves archived sessions out unless asked.
const ARCHIVED = [["", "Not archived"], ["only", "Archived only"], ["include", "All, archived too"]];

let firstRowsMarked = false;

function readState(params) {
  const sort = SORTS.has(params.get("sort")) ? params.get("sort") : DEFAULT_SORT;
  const order = params.get("order") === "asc" || params.get("order") === "desc" ? params.get("order") : DEFAULT_ORDER;
  return { q: params.get("q") || "", query: params.get("query") || "", agent: params.get("agent") || "",
    channel: params.get("channel") || "",
    errors: params.get("errors") === "1" ? "1" : "",
    archived: ARCHIVED.some(([value]) => value && value === params.get("archived")) ? params.get("archived") : "",
    tenant: params.get("tenant") || "", sort, order };
}

function stateQuery(state) {
  const params = new URLSearchParams();
  for (const name of FILTERS) if (state[name]) params.set(name, state[name]);
  if (state.sort !== DEFAULT_SORT || state.order !== DEFAULT_ORDER) {
    params.set("sort", state.sort);
    params.set("order", state.order);
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

const rowId = (row) => JSON.stringify([row.tenant, row.key]);

/** The matching text of a content search: text nodes around <mark>, never markup from the server. */
function snippetEl({ text, highlights }) {
  const parts = [];
  let at = 0;
  for (const [start, end] of highlights) {
    if (start < at || end > text.length) continue; // out of order or out of range: left plain
    parts.push(text.slice(at, start), h("mark", {}, text.slice(start, end)));
    at = end;
  }
  parts.push(text.slice(at));
  return h("span", { class: "sub snippet", "data-snippet": "" }, ...parts);
}

export function mountSessionList(root, { params }) {
  const state = readState(params);
  const selected = new Map(); // rowId -> {key, tenant}
  let rows = [];
  let cursor = null;
  let total = null;
  let totalCapped = false;
  let inflight = null; // AbortController of the running session.list call
  const lifetime = new AbortController();

  // ---- controls
  const search = h("input", { type: "search", name: "q", class: "input", value: state.q,
    placeholder: "Key, agent or channel", autocomplete: "off", "aria-label": "Search sessions" });
  // Full text of the messages (session.list `query`), apart from the key/agent/channel search.
  const messageSearch = h("input", { type: "search", name: "query", class: "input", value: state.query,
    placeholder: "Words in messages", autocomplete: "off", "aria-label": "Search message text" });
  const agentSelect = h("select", { name: "agent", class: "input", "aria-label": "Agent" });
  const channelSelect = h("select", { name: "channel", class: "input", "aria-label": "Channel" });
  const tenantSelect = h("select", { name: "tenant", class: "input", "aria-label": "Tenant" });
  const archivedSelect = h("select", { name: "archived", class: "input", "aria-label": "Archived" },
    ARCHIVED.map(([value, label]) => h("option", { value }, label)));
  archivedSelect.value = state.archived;
  const errorsBox = h("input", { type: "checkbox", name: "errors" });
  errorsBox.checked = state.errors === "1";
  // In the title row, not the toolbar: it shows once tenant.list answers, after the rows, and in
  // the toolbar it could wrap onto a line of its own and push the rows from under the pointer.
  const tenantField = h("label", { class: "field field-inline", hidden: true }, h("span", {}, "Tenant"),
    tenantSelect);
  const refresh = h("button", { type: "button", class: "btn", "data-action": "refresh" }, "Refresh");
  const totalEl = h("p", { class: "list-total", "aria-live": "polite" });

  const selectAll = h("input", { type: "checkbox", "aria-label": "Select all loaded sessions", "data-select-all": "" });
  const headCells = COLUMNS.map((col) => {
    const button = h("button", { type: "button", class: "sort-button", "data-sort": col.sort }, col.label,
      h("span", { class: "sort-indicator", "aria-hidden": "true" }));
    button.addEventListener("click", () => changeSort(col));
    return h("th", { scope: "col", class: col.numeric ? "num" : null, "data-col": col.sort }, button);
  });
  const tbody = h("tbody");
  const table = h("table", { class: "session-table" },
    h("thead", {}, h("tr", {}, h("th", { class: "cell-check", scope: "col" }, selectAll), ...headCells,
      h("th", { class: "cell-menu", scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))), tbody);

  const bulk = createBulkBar(selected, { onChanged: () => load(), onClear: clearSelection });
  const bulkBar = bulk.element;

  const shown = h("span", { class: "list-shown" });
  const loadMore = h("button", { type: "button", class: "btn", "data-action": "load-more", hidden: true }, "Load more");
  const footer = h("div", { class: "list-footer" }, shown, loadMore);

  replace(root, h("section", { class: "list-view", "aria-labelledby": "list-title" },
    h("div", { class: "page-head" }, h("h1", { id: "list-title" }, "Sessions"), totalEl, tenantField, refresh),
    h("div", { class: "toolbar", role: "search" },
      h("label", { class: "field field-grow" }, h("span", {}, "Search"), search),
      h("label", { class: "field field-grow" }, h("span", {}, "Messages"), messageSearch),
      h("label", { class: "field" }, h("span", {}, "Agent"), agentSelect),
      h("label", { class: "field" }, h("span", {}, "Channel"), channelSelect),
      h("label", { class: "field" }, h("span", {}, "Archived"), archivedSelect),
      h("label", { class: "field field-check" }, errorsBox, h("span", {}, "Has errors"))),
    bulkBar,
    h("div", { class: "table-wrap" }, table),
    footer));

  // ---- events
  // Each box filters as you type (debounced into one call) and at once on Enter.
  function searchBox(input, name) {
    const apply = () => { state[name] = input.value.trim(); applyFilters(); };
    const debounced = debounce(apply, SEARCH_DEBOUNCE_MS);
    input.addEventListener("input", debounced);
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { debounced.cancel(); apply(); }
    });
    return debounced;
  }
  const pendingSearches = [searchBox(search, "q"), searchBox(messageSearch, "query")];
  agentSelect.addEventListener("change", () => { state.agent = agentSelect.value; applyFilters(); });
  channelSelect.addEventListener("change", () => { state.channel = channelSelect.value; applyFilters(); });
  archivedSelect.addEventListener("change", () => { state.archived = archivedSelect.value; applyFilters(); loadFacets(); });
  errorsBox.addEventListener("change", () => { state.errors = errorsBox.checked ? "1" : ""; applyFilters(); });
  tenantSelect.addEventListener("change", () => {
    state.tenant = tenantSelect.value;
    state.agent = "";
    state.channel = "";
    applyFilters();
    loadFacets();
  });
  refresh.addEventListener("click", () => { load(); loadFacets(); });
  loadMore.addEventListener("click", () => load({ more: true }));
  selectAll.addEventListener("change", () => {
    for (const row of rows) {
      if (selectAll.checked) selected.set(rowId(row), { key: row.key, tenant: row.tenant });
      else selected.delete(rowId(row));
    }
    for (const box of tbody.querySelectorAll("input[type=checkbox]")) box.checked = selectAll.checked;
    updateSelection();
  });

  function syncUrl() {
    const query = stateQuery(state);
    rememberListQuery(query);
    if (query !== location.search) history.replaceState(null, "", `/sessions${query}`);
  }

  function applyFilters() {
    syncUrl();
    load();
  }

  function changeSort(col) {
    if (state.sort === col.sort) state.order = state.order === "asc" ? "desc" : "asc";
    else { state.sort = col.sort; state.order = col.order; }
    applyFilters();
  }

  function renderSortHeaders() {
    for (const th of headCells) {
      const active = th.dataset.col === state.sort;
      th.setAttribute("aria-sort", active ? (state.order === "asc" ? "ascending" : "descending") : "none");
      th.querySelector(".sort-indicator").textContent = active ? (state.order === "asc" ? "▲" : "▼") : "";
    }
  }

  // ---- data
  function listParams() {
    const p = { sort: state.sort, order: state.order, limit: PAGE_SIZE };
    if (state.q) p.search = state.q;
    if (state.query) p.query = state.query;
    if (state.agent) p.agent = state.agent;
    if (state.channel) p.channel = state.channel;
    if (state.tenant) p.tenant = state.tenant;
    if (state.archived) p.archived = state.archived;
    if (state.errors) p.has_errors = true;
    return p;
  }

  async function load({ more = false } = {}) {
    inflight?.abort();
    const controller = new AbortController();
    inflight = controller;
    const params = listParams();
    if (more) params.cursor = cursor;
    else {
      selected.clear();
      updateSelection();
      renderSortHeaders();
      if (rows.length === 0) replace(tbody, messageRow(stateBlock("loading", "Loading sessions…")));
    }
    table.setAttribute("aria-busy", "true");
    loadMore.disabled = true;
    try {
      const result = await rpc("session.list", params, { signal: controller.signal });
      if (controller.signal.aborted || lifetime.signal.aborted) return;
      rows = more ? rows.concat(result.sessions) : result.sessions;
      cursor = result.next_cursor || null;
      total = result.total ?? null;
      totalCapped = Boolean(result.total_capped);
      renderRows(result.sessions, more);
    } catch (err) {
      if (isAbort(err) || controller.signal.aborted || lifetime.signal.aborted) return;
      if (more) notify(`Could not load more sessions: ${err.message}`, { kind: "error" });
      else {
        rows = [];
        replace(tbody, messageRow(stateBlock("error", "Could not load sessions.", err.message,
          { label: "Retry", onclick: () => load() })));
        totalEl.textContent = "";
        shown.textContent = "";
        loadMore.hidden = true;
      }
    } finally {
      if (inflight === controller) {
        table.removeAttribute("aria-busy");
        loadMore.disabled = false;
      }
    }
  }

  function renderRows(page, more) {
    if (!more) tbody.replaceChildren();
    if (rows.length === 0) {
      const filtered = FILTERS.some((name) => state[name]);
      tbody.append(messageRow(filtered
        ? stateBlock("empty", "No sessions match these filters.", "Try another search or clear the filters.",
          { label: "Clear filters", onclick: clearFilters })
        : stateBlock("empty", "No sessions yet.",
          "Sessions appear here once an agent appends messages or a transcript is imported.")));
    }
    for (const row of page) tbody.append(sessionRow(row));
    const totalText = total === null ? "" : `${fmtNumber(total)}${totalCapped ? "+" : ""}`;
    totalEl.textContent = total === null ? "" : `${totalText} session${total === 1 && !totalCapped ? "" : "s"}`;
    shown.textContent = rows.length ? `Showing ${fmtNumber(rows.length)}${totalText ? ` of ${totalText}` : ""}` : "";
    loadMore.hidden = !cursor;
    updateSelection();
    if (!firstRowsMarked && rows.length) {
      firstRowsMarked = true;
      performance.mark("sessionscope:first-rows");
    }
  }

  function messageRow(block) {
    return h("tr", { class: "message-row" }, h("td", { colspan: COLUMNS.length + 2 }, block));
  }

  function sessionRow(row) {
    const id = rowId(row);
    const href = detailHref(row.key, row.tenant);
    // One tab stop per row: the key's link (stretched over the row). Space on it toggles the
    // checkbox, which stays clickable but out of the tab order.
    const box = h("input", { type: "checkbox", tabindex: -1, "aria-label": `Select session ${row.label || row.key}` });
    box.checked = selected.has(id);
    box.addEventListener("change", () => {
      if (box.checked) selected.set(id, { key: row.key, tenant: row.tenant });
      else selected.delete(id);
      updateSelection();
    });
    const link = h("a", { href, "data-link": "", class: "row-link" }, row.label || row.key);
    link.addEventListener("keydown", (event) => {
      if (event.key === " ") { event.preventDefault(); box.click(); }
    });
    return h("tr", { class: "row", "data-key": row.key, "data-tenant": row.tenant },
      h("td", { class: "cell-check" }, box),
      h("td", { class: "cell-key" },
        link,
        row.error_count ? h("span", { class: "badge badge-error", "data-badge": "errors",
          title: `${fmtNumber(row.error_count)} errored message${row.error_count === 1 ? "" : "s"} (tool calls or turns)` },
        `${fmtNumber(row.error_count)} error${row.error_count === 1 ? "" : "s"}`) : null,
        row.archived_at ? h("span", { class: "badge", "data-badge": "archived" }, "Archived") : null,
        row.label ? h("span", { class: "sub mono" }, row.key) : null,
        row.snippet ? snippetEl(row.snippet)
          : row.preview ? h("span", { class: "sub preview", title: stripMarkdown(row.preview) }, stripMarkdown(row.preview))
            : null),
      h("td", { "data-col": "agent" }, row.agent),
      h("td", { "data-col": "channel" }, h("span", { class: "chip" }, row.channel)),
      h("td", { class: "num", "data-col": "message_count" }, fmtMessages(row)),
      h("td", { class: "num", "data-col": "total_tokens" }, fmtNumber(row.total_tokens)),
      h("td", { class: "num", "data-col": "cost_usd" }, fmtCost(row.cost_usd)),
      h("td", { "data-col": "updated_at" }, timeEl(row.updated_at, { relative: true })),
      h("td", { class: "cell-menu" }, rowMenu(row, link, { onChanged: () => load() })));
  }

  function updateSelection() {
    bulk.update();
    const loadedSelected = rows.filter((row) => selected.has(rowId(row))).length;
    selectAll.checked = rows.length > 0 && loadedSelected === rows.length;
    selectAll.indeterminate = loadedSelected > 0 && loadedSelected < rows.length;
    selectAll.disabled = rows.length === 0;
  }

  function clearSelection() {
    selected.clear();
    for (const box of tbody.querySelectorAll("input[type=checkbox]")) box.checked = false;
    updateSelection();
  }

  function clearFilters() {
    state.q = ""; state.query = ""; state.agent = ""; state.channel = ""; state.archived = "";
    search.value = ""; messageSearch.value = ""; agentSelect.value = ""; channelSelect.value = "";
    archivedSelect.value = ""; errorsBox.checked = false; state.errors = "";
    applyFilters();
  }

  // ---- dropdowns (never block the rows on them)
  function fillSelect(select, allLabel, items, value) {
    // Across tenants the same agent id comes once per tenant: one option, summed counts. A count
    // is what choosing the option lists under the archived filter in force.
    const counted = (item) => state.archived === "only" ? item.archived
      : state.archived === "include" ? item.sessions + item.archived : item.sessions;
    const counts = new Map();
    for (const item of items) counts.set(item.id, (counts.get(item.id) || 0) + counted(item));
    const options = [h("option", { value: "" }, allLabel)];
    for (const [id, sessions] of counts) options.push(h("option", { value: id }, `${id} (${fmtNumber(sessions)})`));
    if (value && !counts.has(value)) options.push(h("option", { value }, value));
    replace(select, options);
    select.value = value;
  }

  async function loadFacets() {
    const scope = state.tenant ? { tenant: state.tenant } : {};
    const signal = lifetime.signal;
    fillSelect(agentSelect, "All agents", [], state.agent);
    fillSelect(channelSelect, "All channels", [], state.channel);
    const settle = (promise, apply) => promise.then((r) => { if (!signal.aborted) apply(r); })
      .catch((err) => { if (!signal.aborted && !isAbort(err)) notify(err.message, { kind: "error" }); });
    settle(rpc("agent.list", scope, { signal }), (r) => fillSelect(agentSelect, "All agents", r.agents, state.agent));
    settle(rpc("channel.list", scope, { signal }),
      (r) => fillSelect(channelSelect, "All channels", r.channels, state.channel));
  }

  async function loadTenants() {
    try {
      const { tenants } = await rpc("tenant.list", {}, { signal: lifetime.signal });
      if (tenants.length > 1 || state.tenant) {
        fillSelect(tenantSelect, "All tenants", tenants, state.tenant);
        tenantField.hidden = false;
      }
    } catch (err) {
      // A caller scoped to one tenant may not list tenants; the filter simply stays hidden.
      if (!isAbort(err) && state.tenant) {
        fillSelect(tenantSelect, "All tenants", [], state.tenant);
        tenantField.hidden = false;
      }
    }
  }

  syncUrl();
  // The rows come first; the dropdowns' small queries follow, so they never delay the first rows.
  load().finally(() => {
    if (lifetime.signal.aborted) return;
    loadFacets();
    loadTenants();
  });
  if (state.q) search.focus();
  else if (state.query) messageSearch.focus();

  return {
    unmount() {
      lifetime.abort();
      inflight?.abort();
      for (const pending of pendingSearches) pending.cancel();
    },
  };
}
