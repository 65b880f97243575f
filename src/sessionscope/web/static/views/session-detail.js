// The session detail (/sessions/<key>): breadcrumb, info bar, actions and three lazy tabs.
import { ERROR_INVALID_PARAMS, ERROR_NOT_FOUND, isAbort, rpc } from "../api.js";
import { detailHref, listHref, navigate } from "../app.js";
import { fmtCost, fmtMessages, fmtNumber, h, notify, replace, stateBlock, timeEl, triggerDownload } from "../dom.js";
import { compactDialog, summaryNode } from "./compact-dialog.js";
import { confirmDialog, messageDialog } from "./dialogs.js";
import { mountConversation, ITEMS_PAGE } from "./conversation.js";
import { mountContextState } from "./context-state.js";
import { mountMetrics } from "./metrics.js";

const TABS = [
  { id: "conversation", label: "Conversation", mount: (panel, ctx) => mountConversation(panel, ctx) },
  { id: "context", label: "Context State", mount: (panel, ctx) => mountContextState(panel, ctx) },
  { id: "metrics", label: "Metrics", mount: (panel, ctx) => mountMetrics(panel, ctx) },
];
const sameTenant = (a, b) => (a && a !== "default" ? a : null) === (b && b !== "default" ? b : null);
const plural = (n, word) => `${fmtNumber(n)} ${word}${n === 1 ? "" : "s"}`;

export function mountSessionDetail(root, { key, tenant, tab }) {
  const lifetime = new AbortController();
  // Without ?tenant= the server resolves the key across the caller's tenants; once the session
  // is loaded, every later call names the tenant it was found in.
  let scope = tenant ? { key, tenant } : { key };
  let status = null; // the latest session.status result
  let mounted = {}; // tab id -> mounted view
  let activeTab = TABS.some((t) => t.id === tab) ? tab : "conversation";
  document.title = `${key} · Sessions · sessionscope`;

  const crumbs = (current) => h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" },
    h("a", { href: listHref(), "data-link": "", "data-crumb": "list" }, "Sessions"),
    h("span", { class: "crumb-sep", "aria-hidden": "true" }, "›"),
    h("span", { "aria-current": "page", class: "crumb-current" }, current));

  async function load() {
    replace(root, crumbs(key), stateBlock("loading", "Loading session…"));
    try {
      status = await rpc("session.status", { ...scope, limit: ITEMS_PAGE }, { signal: lifetime.signal });
    } catch (err) {
      if (isAbort(err) || lifetime.signal.aborted) return;
      if (err.code === ERROR_INVALID_PARAMS && Array.isArray(err.data?.tenants)) {
        document.title = `${key} · Sessions · sessionscope`;
        replace(root, crumbs(key), h("div", { class: "state state-empty", "data-state": "ambiguous" },
          h("h1", { class: "state-title" }, "Which tenant?"),
          h("p", { class: "state-detail" }, "The key ", h("code", {}, key), " exists in several tenants:"),
          h("ul", { class: "tenant-choices" }, ...err.data.tenants.map((t) =>
            h("li", {}, h("a", { href: `${detailHref(key)}?tenant=${encodeURIComponent(t)}`, "data-link": "", "data-tenant": t }, t))))));
        return;
      }
      if (err.code === ERROR_NOT_FOUND) {
        document.title = "Session not found · sessionscope";
        replace(root, crumbs(key), h("div", { class: "state state-empty", "data-state": "not-found" },
          h("h1", { class: "state-title" }, "Session not found"),
          h("p", { class: "state-detail" }, "No session has the key ", h("code", {}, key),
            tenant ? ` in tenant ${tenant}` : "", ". It may have been deleted."),
          h("a", { href: listHref(), "data-link": "" }, "Back to the session list")));
      } else {
        replace(root, crumbs(key), stateBlock("error", "Could not load this session.", err.message,
          { label: "Retry", onclick: load }));
      }
      return;
    }
    scope = { key, tenant: status.session.tenant };
    if (!lifetime.signal.aborted) renderPage();
  }

  // ---- page skeleton
  const infoBar = h("dl", { class: "info-bar" });
  const heading = h("div", { class: "detail-head" });
  // Archive or Unarchive, whichever applies: its label follows the session in renderHeader.
  const archiveButton = h("button", { type: "button", class: "btn", onclick: () => toggleArchived() });
  const tabButtons = [];
  const panels = {};

  function renderPage() {
    const session = status.session;
    document.title = `${session.label || session.key} · Sessions · sessionscope`;
    renderHeader();
    const actions = h("div", { class: "actions", role: "group", "aria-label": "Session actions" },
      h("button", { type: "button", class: "btn", "data-action": "reset", onclick: doReset }, "Reset"),
      h("button", { type: "button", class: "btn", "data-action": "compact", onclick: doCompact }, "Compact"),
      h("button", { type: "button", class: "btn", "data-action": "export", onclick: doExport }, "Export JSONL"),
      archiveButton,
      h("button", { type: "button", class: "btn btn-danger", "data-action": "delete", onclick: doDelete }, "Delete"),
      h("button", { type: "button", class: "btn btn-quiet", "data-action": "refresh", onclick: reloadStatus }, "Refresh"));
    const tablist = h("div", { class: "tabs", role: "tablist", "aria-label": "Session views" });
    tabButtons.length = 0;
    for (const tab of TABS) {
      const button = h("button", { type: "button", role: "tab", id: `tab-${tab.id}`, class: "tab",
        "aria-controls": `panel-${tab.id}`, "data-tab": tab.id }, tab.label);
      button.addEventListener("click", () => activate(tab.id, { focus: false }));
      button.addEventListener("keydown", onTabKey);
      tabButtons.push(button);
      tablist.append(button);
      panels[tab.id] = h("section", { role: "tabpanel", id: `panel-${tab.id}`, class: "tab-panel",
        "aria-labelledby": `tab-${tab.id}`, tabindex: 0, hidden: true, "data-panel": tab.id });
    }
    replace(root, h("article", { class: "detail-view" },
      crumbs(session.label || session.key), heading, infoBar, actions, tablist, ...Object.values(panels)));
    activate(activeTab, { focus: false, initial: true });
  }

  function renderHeader() {
    const session = status.session;
    replace(heading, h("div", { class: "title-row" },
      h("h1", { class: "detail-title" }, session.label || session.key),
      session.archived_at ? h("span", { class: "badge", "data-badge": "archived",
        title: `Archived ${new Date(session.archived_at).toLocaleString()}` }, "Archived") : null,
      h("button", { type: "button", class: "btn btn-quiet btn-small", "data-action": "rename", onclick: startRename },
        "Rename")),
    session.label ? h("p", { class: "sub mono", "data-field": "key" }, session.key) : null);
    archiveButton.dataset.action = session.archived_at ? "unarchive" : "archive";
    archiveButton.textContent = session.archived_at ? "Unarchive" : "Archive";
    const item = (label, field, value) => h("div", { class: "info-item", "data-field": field },
      h("dt", {}, label), h("dd", {}, value));
    replace(infoBar,
      item("Agent", "agent", session.agent),
      item("Channel", "channel", h("span", { class: "chip" }, session.channel)),
      item("Messages", "message_count", fmtMessages(session)),
      item("Tokens", "total_tokens", fmtNumber(session.total_tokens)),
      item("Created", "created_at", timeEl(session.created_at)),
      item("Last active", "updated_at", timeEl(session.updated_at, { relative: true })),
      item("Cost", "cost_usd", fmtCost(session.cost_usd)),
      session.tenant !== "default" ? item("Tenant", "tenant", session.tenant) : null);
  }

  // ---- tabs: each is mounted on its first activation only
  function activate(id, { focus = true, initial = false } = {}) {
    activeTab = id;
    for (const button of tabButtons) {
      const selected = button.dataset.tab === id;
      button.setAttribute("aria-selected", String(selected));
      button.tabIndex = selected ? 0 : -1;
      if (selected && focus) button.focus();
    }
    for (const [tabId, panel] of Object.entries(panels)) panel.hidden = tabId !== id;
    if (!mounted[id]) {
      const tab = TABS.find((t) => t.id === id);
      mounted[id] = tab.mount(panels[id], { ...scope, status, onChanged: reloadStatus });
    }
    if (!initial) {
      // Each tab is a page of its own in the history: back returns to the previous tab.
      const href = detailHref(key, tenant, id);
      if (href !== location.pathname + location.search) history.pushState(null, "", href);
    }
  }

  function onTabKey(event) {
    const index = tabButtons.indexOf(event.currentTarget);
    const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: tabButtons.length - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = tabButtons[(moves[event.key] + tabButtons.length) % tabButtons.length];
    activate(next.dataset.tab);
  }

  /** After an action: refresh the header and the conversation; other tabs reload when next shown. */
  async function reloadStatus() {
    try {
      status = await rpc("session.status", { ...scope, limit: ITEMS_PAGE }, { signal: lifetime.signal });
    } catch (err) {
      if (!isAbort(err)) notify(`Could not refresh the session: ${err.message}`, { kind: "error" });
      return;
    }
    renderHeader();
    for (const view of Object.values(mounted)) view?.unmount?.();
    mounted = {};
    for (const panel of Object.values(panels)) panel.replaceChildren();
    activate(activeTab, { focus: false, initial: true });
  }

  // ---- actions
  const name = () => status.session.label || status.session.key;

  /** Rename in place: the label is for people; the key never changes. */
  function startRename() {
    const input = h("input", { type: "text", class: "input", name: "label", maxlength: 512,
      value: status.session.label || "", "aria-label": "Session label", placeholder: status.session.key });
    const cancel = () => renderHeader();
    const form = h("form", { class: "rename-form", "data-form": "rename" }, input,
      h("button", { type: "submit", class: "btn btn-primary btn-small" }, "Save"),
      status.session.label ? h("button", { type: "button", class: "btn btn-small", "data-action": "clear-label",
        onclick: () => saveLabel(null) }, "Clear label") : null,
      h("button", { type: "button", class: "btn btn-quiet btn-small", onclick: cancel }, "Cancel"));
    form.addEventListener("submit", (event) => { event.preventDefault(); saveLabel(input.value.trim() || null); });
    input.addEventListener("keydown", (event) => { if (event.key === "Escape") { event.stopPropagation(); cancel(); } });
    replace(heading, form);
    input.focus();
    input.select();
  }

  async function saveLabel(label) {
    try {
      const result = await rpc("session.label", { ...scope, label });
      status = { ...status, session: result.session };
      notify(label ? `Renamed to “${label}”.` : "The label was cleared.");
    } catch (err) {
      notify(`Rename failed: ${err.message}`, { kind: "error" });
    }
    renderHeader();
    document.title = `${name()} · Sessions · sessionscope`;
    root.querySelector(".crumb-current")?.replaceChildren(name());
  }

  async function doReset() {
    const ok = await confirmDialog({
      title: "Reset this session?",
      body: [`This clears the conversation history of “${name()}” (${plural(status.session.message_count, "message")}). `
        + "The agent starts fresh, with no memory of earlier messages.", "Executions, usage and cost are kept."],
      confirmLabel: "Reset session", danger: true });
    if (!ok) return;
    try {
      await rpc("session.reset", scope);
      notify("The session was reset.");
      await reloadStatus();
    } catch (err) {
      notify(`Reset failed: ${err.message}`, { kind: "error" });
    }
  }

  async function doCompact() {
    const params = await compactDialog(scope);
    if (!params) return;
    let result;
    try {
      result = await rpc("session.compact", params, { timeoutMs: 120000 });
    } catch (err) {
      await messageDialog({ title: "Nothing was compacted", body: [err.message] });
      return;
    }
    const compaction = result.compaction;
    if (!result.compacted || !compaction) {
      await messageDialog({ title: "Nothing to compact",
        body: [result.message || "This session has no older messages to summarize yet."] });
      return;
    }
    await reloadStatus();
    await messageDialog({ title: "Session compacted", wide: true, body: [
      `${plural(compaction.messages_compacted, "message")} summarized: `
        + `${fmtNumber(result.tokens_before)} → ${fmtNumber(result.tokens_after)} tokens`
        + `${result.summarizer ? ` (summarizer: ${result.summarizer})` : ""}.`,
      result.fallback_reason ? `Note: ${result.fallback_reason}` : "",
      compaction.summary ? summaryNode(result) : ""].filter(Boolean) });
  }

  async function doExport() {
    try {
      const { url, filename } = await rpc("session.export", scope);
      triggerDownload(url, filename);
    } catch (err) {
      notify(`Export failed: ${err.message}`, { kind: "error" });
    }
  }

  async function toggleArchived() {
    const archived = Boolean(status.session.archived_at);
    if (!archived) {
      const ok = await confirmDialog({
        title: "Archive this session?",
        body: [`“${name()}” leaves the default session list; nothing is deleted. `
          + "The list's Archived filter shows it, and Unarchive brings it back."],
        confirmLabel: "Archive session" });
      if (!ok) return;
    }
    try {
      await rpc(archived ? "session.unarchive" : "session.archive", scope);
    } catch (err) {
      notify(`${archived ? "Unarchive" : "Archive"} failed: ${err.message}`, { kind: "error" });
      return;
    }
    notify(archived ? `“${name()}” is back in the session list.` : `Archived “${name()}”.`);
    await reloadStatus();
  }

  async function doDelete() {
    const ok = await confirmDialog({
      title: "Delete this session?",
      body: [`This permanently removes “${name()}” with all its messages, executions and search entries. `
        + "This cannot be undone.", "Export it first if you want to keep a copy."],
      confirmLabel: "Delete session", danger: true });
    if (!ok) return;
    try {
      await rpc("session.delete", scope);
    } catch (err) {
      notify(`Delete failed: ${err.message}`, { kind: "error" });
      return;
    }
    notify(`Deleted “${name()}”.`);
    navigate(listHref());
  }

  load();
  return {
    showsSession: (otherKey, otherTenant) => otherKey === key && sameTenant(otherTenant, tenant)
      && tabButtons.length > 0,
    showTab(id) { if (id !== activeTab) activate(id, { focus: false, initial: true }); },
    unmount() {
      lifetime.abort();
      for (const view of Object.values(mounted)) view?.unmount?.();
    },
  };
}
