// The Compact dialog: choose how much recent context to keep (tokens or turns), see a dry run
// of session.compact (cut point, tokens before and after, the summary), then confirm.
import { rpc } from "../api.js";
import { fmtNumber, h, replace } from "../dom.js";

/** A dry run may summarize with an LLM; it gets the same time as the compaction itself. */
const COMPACT_TIMEOUT_MS = 120000;
const plural = (n, word) => `${fmtNumber(n)} ${word}${n === 1 ? "" : "s"}`;

/** The summary as the server rendered it (sanitized with nh3), else as plain text. */
export function summaryNode(result) {
  const text = result.summary || result.compaction?.summary || "";
  if (typeof result.summary_html === "string") {
    const node = h("div", { class: "marker-summary markdown compact-summary", "data-summary": "rendered" });
    node.innerHTML = result.summary_html; // the only kind of innerHTML in the app, see dom.js
    return node;
  }
  return h("pre", { class: "marker-summary compact-summary", "data-summary": "text" }, text);
}

/**
 * Resolve to the session.compact params the operator confirmed, or null when cancelled.
 * Every change of the keep fields runs a new dry run, so what is confirmed is what was shown.
 */
export function compactDialog(scope) {
  const opener = document.activeElement;
  const mode = h("select", { name: "keep_mode", class: "dialog-input", "aria-label": "Keep recent" },
    h("option", { value: "tokens" }, "tokens"), h("option", { value: "turns" }, "turns"));
  const amount = h("input", { name: "keep_amount", type: "number", min: 0, step: 1, class: "dialog-input",
    placeholder: "agent default", "aria-label": "How much recent context to keep" });
  const instructions = h("textarea", { name: "instructions", rows: 3, class: "dialog-input",
    placeholder: "e.g. Keep every file path and decision." });
  const preview = h("div", { class: "compact-preview", "data-preview": "", "aria-live": "polite" });
  const cancel = h("button", { type: "button", class: "btn", "data-action": "cancel" }, "Cancel");
  const again = h("button", { type: "button", class: "btn", "data-action": "preview" }, "Preview again");
  const confirm = h("button", { type: "submit", class: "btn btn-primary", value: "confirm",
    "data-action": "confirm", disabled: true }, "Compact");
  const form = h("form", { method: "dialog", class: "compact-form" },
    h("h2", { class: "dialog-title", id: "compact-title" }, "Compact this session?"),
    h("p", { class: "dialog-text" }, "Older messages are summarized into one compaction item. They stay stored "
      + "(dimmed, and restorable) but leave the agent's live context."),
    h("div", { class: "compact-keep" }, h("label", { class: "dialog-label" }, "Keep the most recent", amount), mode),
    h("label", { class: "dialog-label" }, "Instructions for the summary (optional)", instructions),
    preview,
    h("div", { class: "dialog-actions" }, cancel, again, confirm));
  const dialog = h("dialog", { class: "dialog dialog-wide", "aria-labelledby": "compact-title",
    "data-dialog": "compact" }, form);
  document.body.append(dialog);

  let shown = null; // params of the dry run on screen
  let asked = ""; // params of the latest dry run asked for, so a repeated change event is a no-op
  let run = 0;

  function params() {
    const p = { ...scope };
    const n = amount.value.trim() === "" ? null : Number(amount.value);
    if (n !== null && Number.isInteger(n) && n >= 0) {
      if (mode.value === "turns") p.keep_recent_turns = Math.max(1, n);
      else p.keep_recent_tokens = n;
    }
    if (instructions.value.trim()) p.instructions = instructions.value.trim();
    return p;
  }

  async function dryRun({ force = false } = {}) {
    const p = params();
    if (!force && JSON.stringify(p) === asked) return;
    asked = JSON.stringify(p);
    const mine = ++run;
    confirm.disabled = true;
    replace(preview, h("p", { class: "muted" }, "Previewing…"));
    let result;
    try {
      result = await rpc("session.compact", { ...p, dry_run: true }, { timeoutMs: COMPACT_TIMEOUT_MS });
    } catch (err) {
      if (mine === run) replace(preview, h("p", { class: "dialog-text", role: "alert" }, err.message));
      return;
    }
    if (mine !== run) return; // a newer preview was asked for meanwhile
    if (!result.dry_run || result.first_kept_seq == null) return showNothing(result);
    shown = p;
    confirm.disabled = false;
    replace(preview,
      h("p", { class: "dialog-text", "data-preview-counts": "" },
        `${plural(result.messages_compacted, "message")} before message #${result.first_kept_seq} would be summarized: `
        + `${fmtNumber(result.tokens_before)} → ${fmtNumber(result.tokens_after)} live tokens`
        + `${result.summarizer ? ` (summarizer: ${result.summarizer})` : ""}.`),
      result.fallback_reason ? h("p", { class: "dialog-text" }, `Note: ${result.fallback_reason}`) : null,
      summaryNode(result));
  }

  function showNothing(result) {
    shown = null;
    const suggestion = result.suggested_keep;
    const use = suggestion ? h("button", { type: "button", class: "btn", "data-action": "use-suggestion" },
      `Keep ${plural(suggestion.keep_recent_turns, "turn")} instead`) : null;
    use?.addEventListener("click", () => {
      mode.value = "turns";
      amount.value = String(suggestion.keep_recent_turns);
      dryRun();
    });
    replace(preview,
      h("p", { class: "dialog-title", "data-nothing": "" }, "Nothing to compact"),
      h("p", { class: "dialog-text" }, result.message || "This session has no older messages to summarize yet."),
      use);
  }

  return new Promise((resolve) => {
    let result = null;
    cancel.addEventListener("click", () => dialog.close("cancel"));
    again.addEventListener("click", () => dryRun({ force: true }));
    // The keep decides the cut, so changing it previews again; instructions only shape the
    // summary text ("Preview again" shows their effect) and are taken as they are on confirm.
    for (const field of [mode, amount]) field.addEventListener("change", () => dryRun());
    form.addEventListener("submit", () => {
      if (!shown) return;
      const { instructions: _previewed, ...keep } = shown;
      const text = instructions.value.trim();
      result = text ? { ...keep, instructions: text } : keep;
    });
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) dialog.close("cancel");
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
      resolve(dialog.returnValue === "confirm" ? result : null);
    });
    dialog.showModal();
    amount.focus();
    dryRun({ force: true });
  });
}
