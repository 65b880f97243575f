// The list's bulk bar: Reset / Delete Selected behind confirmation dialogs, and Export Selected.
import { rpc } from "../api.js";
import { fmtNumber, h, notify, triggerDownload } from "../dom.js";
import { confirmDialog } from "./dialogs.js";

const BULK_CHUNK = 1000; // the RPC takes at most 1000 keys per call
const plural = (n, word) => `${fmtNumber(n)} ${word}${n === 1 ? "" : "s"}`;

/**
 * A bar over `selected` (Map of row id -> {key, tenant}). `onChanged` runs after a write so the
 * list reloads; `onClear` clears the selection. Call `update()` whenever the selection changes.
 */
export function createBulkBar(selected, { onChanged, onClear }) {
  const count = h("span", { class: "bulk-count" });
  const element = h("div", { class: "bulk-bar", role: "region", "aria-label": "Bulk actions", hidden: true },
    count,
    h("button", { type: "button", class: "btn", "data-bulk": "reset", onclick: bulkReset }, "Reset Selected"),
    h("button", { type: "button", class: "btn", "data-bulk": "export", onclick: bulkExport }, "Export Selected"),
    h("button", { type: "button", class: "btn btn-danger", "data-bulk": "delete", onclick: bulkDelete }, "Delete Selected"),
    h("button", { type: "button", class: "btn btn-quiet", "data-bulk": "clear", onclick: () => onClear() },
      "Clear selection"));

  function update() {
    element.hidden = selected.size === 0;
    count.textContent = `${plural(selected.size, "session")} selected`;
  }

  /** One call per tenant and per 1000 keys. */
  function batches() {
    const byTenant = new Map();
    for (const { key, tenant } of selected.values()) {
      if (!byTenant.has(tenant)) byTenant.set(tenant, []);
      byTenant.get(tenant).push(key);
    }
    const out = [];
    for (const [tenant, keys] of byTenant) {
      for (let i = 0; i < keys.length; i += BULK_CHUNK) out.push({ tenant, keys: keys.slice(i, i + BULK_CHUNK) });
    }
    return out;
  }

  async function run(method, resultField, pastTense) {
    let done = 0;
    try {
      for (const batch of batches()) done += (await rpc(method, batch))[resultField] ?? 0;
      notify(`${pastTense} ${plural(done, "session")}.`);
    } catch (err) {
      notify(`${pastTense} ${plural(done, "session")}, then failed: ${err.message}`, { kind: "error" });
    }
    onChanged();
  }

  async function bulkReset() {
    const n = selected.size;
    const ok = await confirmDialog({
      title: `Reset ${plural(n, "session")}?`,
      body: [`This clears the conversation history of the ${plural(n, "selected session")}. `
        + "Their agents start fresh, with no memory of earlier messages.",
      "Executions, usage and cost are kept. The sessions stay in the list."],
      confirmLabel: `Reset ${plural(n, "session")}`, danger: true });
    if (ok) await run("session.reset", "reset", "Reset");
  }

  async function bulkDelete() {
    const n = selected.size;
    const ok = await confirmDialog({
      title: `Delete ${plural(n, "session")}?`,
      body: [`This permanently removes the ${plural(n, "selected session")} with all their messages, `
        + "executions and search entries. This cannot be undone.",
      "Export them first if you want to keep a copy."],
      confirmLabel: `Delete ${plural(n, "session")}`, danger: true });
    if (ok) await run("session.delete", "deleted", "Deleted");
  }

  /** One file for the whole selection, whatever its tenants. */
  async function bulkExport() {
    const picked = [...selected.values()];
    const tenants = new Set(picked.map((s) => s.tenant));
    const params = tenants.size === 1 ? { tenant: picked[0].tenant, keys: picked.map((s) => s.key) }
      : { sessions: picked.map(({ tenant, key }) => ({ tenant, key })) };
    try {
      const { url, filename } = await rpc("session.export", params);
      triggerDownload(url, filename);
      notify(`Exporting ${plural(selected.size, "session")} as JSONL.`);
    } catch (err) {
      notify(`Export failed: ${err.message}`, { kind: "error" });
    }
  }

  return { element, update };
}
