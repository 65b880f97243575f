// The Conversation tab: messages, tool-call cards and compaction markers, newest page first,
// older pages on scroll-up or the "older" button.
import { isAbort, rpc } from "../api.js";
import { fmtNumber, h, notify, replace, stateBlock, timeEl } from "../dom.js";
import { confirmDialog } from "./dialogs.js";

/** Items per session.status page. */
export const ITEMS_PAGE = 100;
/** Load the next older page when the scroll position gets this close to the top. */
const OLDER_THRESHOLD_PX = 120;
/** At most this many replaced messages are shown inside an expanded compaction marker. */
const REPLACED_PREVIEW_LIMIT = 200;
/** Longer compaction summaries start clamped, with a toggle. */
const SUMMARY_CLAMP_LINES = 6;
const SUMMARY_CLAMP_CHARS = 600;

const ROLE_LABELS = { user: "User", assistant: "Assistant", system: "System", tool: "Tool" };
const plural = (n, word) => `${fmtNumber(n)} ${word}${n === 1 ? "" : "s"}`;

let firstItemsMarked = false;

/** Pretty-print JSON text (or a value); other text is returned unchanged. */
function pretty(value) {
  if (value === null || value === undefined) return "";
  if (typeof value !== "string") return JSON.stringify(value, null, 2);
  try {
    return JSON.stringify(JSON.parse(value), null, 2);
  } catch {
    return value;
  }
}

/** Attachments shown inline: only these image types become data: URLs (no SVG, no HTML). */
const INLINE_IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
const KIND_BADGES = {
  injected: ["injected", "Added to the conversation by the client, not typed by the user"],
  event: ["event", "A record of the source kept as it was; not part of the model's context"],
};

function messageHead(item, label, state) {
  const kind = KIND_BADGES[item.message_kind];
  return h("header", { class: "msg-head" },
    h("span", { class: "msg-role" }, label),
    kind ? h("span", { class: "badge", title: kind[1] }, kind[0]) : null,
    item.stop_reason ? h("span", { class: "badge badge-stop", title: "Why the turn stopped" }, item.stop_reason) : null,
    state === "is-compacted" ? h("span", { class: "badge", title: "Summarized: no longer in the live context" }, "compacted") : null,
    state === "is-cleared" ? h("span", { class: "badge", title: "Cleared by a reset; kept for audit" }, "cleared") : null,
    item.tokens ? h("span", { class: "msg-tokens" }, plural(item.tokens, "token")) : null,
    timeEl(item.timestamp));
}

/** The body of a message: server-rendered, nh3-sanitized markdown for assistants; text otherwise. */
function messageBody(item) {
  if (item.role === "assistant" && typeof item.content_html === "string") {
    const body = h("div", { class: "msg-body markdown" });
    body.innerHTML = item.content_html; // sanitized on the server (nh3); with summary_html the only innerHTML
    return body;
  }
  return h("div", { class: "msg-body text" }, item.content);
}

/** The turn's reasoning (thinking), collapsed. */
function reasoningBlock(item) {
  if (!item.reasoning) return null;
  const size = item.reasoning_tokens ? plural(item.reasoning_tokens, "token") : plural(item.reasoning.length, "character");
  return h("details", { class: "msg-reasoning" },
    h("summary", {}, `Reasoning (${size})`),
    h("div", { class: "msg-body text" }, item.reasoning));
}

/** Image attachments as thumbnails; an image kept without its bytes shows its type and size. */
function attachmentList(item) {
  if (!item.attachments || !item.attachments.length) return null;
  return h("div", { class: "msg-attachments" }, item.attachments.map((a) => {
    const label = `${a.mime_type}, ${fmtNumber(a.size)} bytes`;
    if (a.data && INLINE_IMAGE_TYPES.has(a.mime_type)) {
      return h("img", { class: "msg-thumb", src: `data:${a.mime_type};base64,${a.data}`, alt: label, title: label });
    }
    return h("span", { class: "badge" }, `${label} (${a.data ? "not shown" : "not kept"})`);
  }));
}

function toolOutput(result) {
  if (!result) return h("p", { class: "muted tool-pending" }, "No result recorded.");
  return h("div", { class: "tool-output" },
    h("div", { class: "tool-section-head" }, h("h4", {}, result.is_error ? "Error" : "Output"), timeEl(result.timestamp)),
    h("pre", { class: ["code", result.is_error ? "code-error" : null] }, pretty(result.content)),
    attachmentList(result));
}

/** A collapsible card for one tool call (call may be null when only the result is loaded). */
function toolCard(call, result, opened) {
  const name = call?.name || result?.tool_name || "tool";
  const id = call?.id || result?.tool_call_id || "";
  const isError = Boolean(result?.is_error);
  const card = h("details", { class: ["tool-card", isError ? "is-error" : null],
    "data-tool-call-id": id, "data-tool-name": name },
  h("summary", { class: "tool-summary" },
    h("span", { class: "tool-label" }, "Tool call"),
    h("span", { class: "tool-name mono" }, name),
    isError ? h("span", { class: "badge badge-error" }, "error") : null,
    !result ? h("span", { class: "badge" }, "no result") : null),
  h("div", { class: "tool-body" },
    call ? h("div", { class: "tool-input" }, h("h4", {}, "Input"), h("pre", { class: "code" }, pretty(call.arguments))) : null,
    toolOutput(result)));
  if (opened.has(id)) card.open = true;
  card.addEventListener("toggle", () => (card.open ? opened.add(id) : opened.delete(id)));
  return card;
}

/** Where an item sits in the conversation: a compaction just before the first message it kept. */
export function position(item) {
  return item.kind === "compaction" ? item.first_kept_seq - 0.5 : item.seq;
}

export function mountConversation(panel, { key, tenant, status, onChanged }) {
  const scope = tenant ? { key, tenant } : { key };
  const lifetime = new AbortController();
  const opened = new Set(); // tool call ids whose cards are open
  const orphanResults = new Map(); // tool_call_id -> {node, item}: a result whose call is not loaded yet
  let hasMore = status.has_more;
  let oldestSeq = null;
  let latestResetSeq = 0; // messages before the newest reset were cleared (kept for audit)
  let loading = false;

  const olderButton = h("button", { type: "button", class: "btn", "data-action": "older" }, "Load older messages");
  const olderBar = h("div", { class: "older-bar" }, olderButton);
  const timeline = h("ol", { class: "timeline", "aria-label": "Conversation" });
  const scroller = h("div", { class: "conversation", tabindex: -1 }, olderBar, timeline);
  replace(panel, scroller);

  olderButton.addEventListener("click", loadOlder);
  scroller.addEventListener("scroll", () => {
    if (scroller.scrollTop < OLDER_THRESHOLD_PX && hasMore && !loading) loadOlder();
  }, { passive: true });

  /** Render a batch of items (ascending seq) into list nodes, pairing tool calls with results. */
  function renderBatch(items, orphans = orphanResults) {
    // Pages arrive newest first, so every reset newer than this batch is already known.
    for (const item of items) if (item.kind === "reset") latestResetSeq = Math.max(latestResetSeq, item.seq);
    const state = (item) => (item.compacted ? "is-compacted" : item.seq < latestResetSeq ? "is-cleared" : null);
    const results = new Map();
    for (const item of items) {
      if (item.kind === "message" && item.role === "tool" && item.tool_call_id) results.set(item.tool_call_id, item);
    }
    const consumed = new Set();
    const nodes = [];
    for (const item of items) {
      if (item.kind === "compaction") nodes.push(compactionMarker(item));
      else if (item.kind === "reset") nodes.push(resetMarker(item));
      else if (item.kind === "message") {
        if (item.role === "tool" && consumed.has(item)) continue;
        if (item.role === "tool") {
          const node = h("li", { class: ["msg", "msg-tool", state(item)], "data-seq": item.seq },
            toolCard(null, item, opened));
          if (item.tool_call_id) orphans.set(item.tool_call_id, { node, item });
          nodes.push(node);
          continue;
        }
        const cards = (item.tool_calls || []).map((call) => {
          let result = results.get(call.id) || null;
          if (result) consumed.add(result);
          else if (orphans.has(call.id)) {
            // The result was rendered alone from a newer page; fold it into this card now.
            const orphan = orphans.get(call.id);
            result = orphan.item;
            orphan.node.remove();
            orphans.delete(call.id);
          }
          return toolCard(call, result, opened);
        });
        nodes.push(h("li", { class: ["msg", `msg-${item.role}`, item.message_kind ? `msg-${item.message_kind}` : null,
          state(item)], "data-seq": item.seq, "data-role": item.role },
        messageHead(item, ROLE_LABELS[item.role] || item.role, state(item)),
        reasoningBlock(item),
        item.content || !cards.length ? messageBody(item) : null,
        attachmentList(item),
        cards.length ? h("div", { class: "tool-cards" }, cards) : null));
      }
    }
    return nodes;
  }

  function compactionMarker(item) {
    const replaced = h("div", { class: "replaced-list" });
    const restore = item.restored ? null
      : h("button", { type: "button", class: "btn", "data-action": "restore" }, "Restore these messages");
    restore?.addEventListener("click", () => restoreCompaction(item));
    const details = h("details", { class: "marker-replaced" },
      h("summary", {}, `Show the ${plural(item.messages_compacted, "message")} it replaced`),
      replaced, restore);
    details.addEventListener("toggle", () => {
      if (details.open && !replaced.dataset.loaded) loadReplaced(item, replaced);
    }, { once: false });
    return h("li", { class: ["compaction-marker", item.restored ? "is-restored" : null], "data-seq": item.seq,
      "data-kind": "compaction" },
    h("header", { class: "marker-head" },
      h("span", { class: "marker-title" }, "Compaction"),
      h("span", { class: "marker-counts" }, `${plural(item.messages_compacted, "message")} · `
        + `${fmtNumber(item.tokens_before)} → ${fmtNumber(item.tokens_after)} tokens`),
      item.reason ? h("span", { class: "badge" }, item.reason) : null,
      item.restored ? h("span", { class: "badge badge-ok" }, "restored") : null,
      timeEl(item.timestamp)),
    summaryBlock(item),
    item.instructions ? h("p", { class: "marker-meta" }, `Instructions: ${item.instructions}`) : null,
    item.summarizer ? h("p", { class: "marker-meta" }, `Summarizer: ${item.summarizer}`) : null,
    details);
  }

  function summaryBlock(item) {
    const text = item.summary || "";
    let summary;
    if (typeof item.summary_html === "string") {
      summary = h("div", { class: "marker-summary markdown" });
      summary.innerHTML = item.summary_html; // sanitized on the server (nh3), like content_html
    } else {
      summary = h("p", { class: "marker-summary" }, text);
    }
    if (text.split("\n").length <= SUMMARY_CLAMP_LINES && text.length <= SUMMARY_CLAMP_CHARS) return summary;
    summary.classList.add("is-clamped");
    const toggle = h("button", { type: "button", class: "btn btn-quiet btn-small", "aria-expanded": "false" },
      "Show the full summary");
    toggle.addEventListener("click", () => {
      const expanded = !summary.classList.toggle("is-clamped");
      toggle.setAttribute("aria-expanded", String(expanded));
      toggle.textContent = expanded ? "Show less" : "Show the full summary";
    });
    return h("div", {}, summary, toggle);
  }

  async function loadReplaced(item, container) {
    container.dataset.loaded = "1";
    const limit = Math.max(1, Math.min(item.messages_compacted || 1, REPLACED_PREVIEW_LIMIT));
    replace(container, stateBlock("loading", "Loading the replaced messages…"));
    try {
      const page = await rpc("session.status", { ...scope, before_seq: item.first_kept_seq, limit },
        { signal: lifetime.signal });
      const messages = page.items.filter((it) => it.kind === "message" && (it.compacted || item.restored));
      const shown = messages.slice(-limit);
      replace(container,
        shown.length < item.messages_compacted
          ? h("p", { class: "muted" }, `The latest ${plural(shown.length, "message")} of ${fmtNumber(item.messages_compacted)}:`)
          : null,
        h("ol", { class: "timeline nested" }, renderBatch(shown, new Map())));
    } catch (err) {
      if (isAbort(err)) return;
      delete container.dataset.loaded;
      replace(container, stateBlock("error", "Could not load the replaced messages.", err.message,
        { label: "Retry", onclick: () => loadReplaced(item, container) }));
    }
  }

  async function restoreCompaction(item) {
    const ok = await confirmDialog({
      title: "Restore these messages?",
      body: [`The ${plural(item.messages_compacted, "message")} this compaction summarized return to the live `
        + "context, and the summary leaves it. The compaction stays in the history, marked restored."],
      confirmLabel: "Restore" });
    if (!ok) return;
    try {
      await rpc("session.restore", { ...scope, seq: item.seq });
      notify("The messages were restored.");
      onChanged?.();
    } catch (err) {
      notify(`Restore failed: ${err.message}`, { kind: "error" });
    }
  }

  function resetMarker(item) {
    return h("li", { class: "reset-marker", "data-seq": item.seq, "data-kind": "reset" },
      h("span", {}, "Conversation reset"), timeEl(item.timestamp));
  }

  function addItems(items, { older }) {
    // A compaction is drawn where it cut, before the first message it kept (as the server
    // orders it); its own seq is later than every message it summarized.
    const sorted = [...items].sort((a, b) => position(a) - position(b));
    const seqs = sorted.filter((it) => it.kind !== "compaction").map((it) => it.seq);
    if (seqs.length) oldestSeq = oldestSeq === null ? seqs[0] : Math.min(oldestSeq, seqs[0]);
    const nodes = renderBatch(sorted);
    if (older) {
      const fromBottom = scroller.scrollHeight - scroller.scrollTop;
      timeline.prepend(...nodes);
      scroller.scrollTop = scroller.scrollHeight - fromBottom;
    } else {
      timeline.append(...nodes);
    }
    olderBar.hidden = !hasMore;
    if (!timeline.children.length) {
      timeline.append(h("li", { class: "timeline-empty" },
        stateBlock("empty", "No messages.", status.session.resets ? "The conversation was reset." : null)));
    }
  }

  async function loadOlder() {
    if (loading || !hasMore || oldestSeq === null) return;
    loading = true;
    olderButton.disabled = true;
    olderButton.textContent = "Loading older messages…";
    try {
      const page = await rpc("session.status", { ...scope, before_seq: oldestSeq, limit: ITEMS_PAGE },
        { signal: lifetime.signal });
      hasMore = page.has_more;
      addItems(page.items, { older: true });
    } catch (err) {
      if (!isAbort(err)) notify(`Could not load older messages: ${err.message}`, { kind: "error" });
    } finally {
      loading = false;
      olderButton.disabled = false;
      olderButton.textContent = "Load older messages";
    }
  }

  addItems(status.items, { older: false });
  if (!firstItemsMarked && status.items.length) {
    firstItemsMarked = true;
    performance.mark("sessionscope:first-items");
  }
  requestAnimationFrame(() => { scroller.scrollTop = scroller.scrollHeight; });

  return { unmount() { lifetime.abort(); } };
}
