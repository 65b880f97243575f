// The Context State tab (mounted on first activation): token-budget bar and pipeline waterfalls.
import { isAbort, rpc } from "../api.js";
import { fmtCost, fmtNumber, h, replace, stateBlock, timeEl } from "../dom.js";

const SEGMENTS = [
  { field: "system", label: "System prompt" },
  { field: "tools", label: "Tools" },
  { field: "context", label: "Context" },
  { field: "messages", label: "Messages" },
];
const pct = (part, whole) => (whole > 0 ? (part / whole) * 100 : 0);

function budgetSection(budget) {
  const used = SEGMENTS.reduce((sum, s) => sum + (budget[s.field] || 0), 0);
  const window = budget.window || 0;
  const scale = Math.max(window, used);
  const parts = SEGMENTS.map((s) => ({ ...s, tokens: budget[s.field] || 0 }))
    .concat({ field: "free", label: "Free", tokens: Math.max(0, window - used) });
  const bar = h("div", { class: "segbar", role: "img",
    "aria-label": parts.map((p) => `${p.label} ${fmtNumber(p.tokens)} tokens`).join(", ") });
  for (const part of parts) {
    if (!part.tokens) continue;
    const seg = h("div", { class: ["seg", `seg-${part.field}`], "data-segment": part.field,
      title: `${part.label}: ${fmtNumber(part.tokens)} tokens (${pct(part.tokens, scale).toFixed(1)}%)` });
    seg.style.width = `${pct(part.tokens, scale)}%`;
    bar.append(seg);
  }
  const legend = h("ul", { class: "legend" }, parts.map((part) => h("li", { "data-segment": part.field },
    h("span", { class: ["swatch", `seg-${part.field}`], "aria-hidden": "true" }),
    h("span", { class: "legend-label" }, part.label),
    h("strong", { class: "legend-value" }, fmtNumber(part.tokens)),
    h("span", { class: "legend-pct" }, `${pct(part.tokens, scale).toFixed(1)}%`))));
  return h("section", { class: "card budget", "aria-labelledby": "budget-title" },
    h("div", { class: "card-head" },
      h("h2", { id: "budget-title" }, "Token budget"),
      h("p", { class: "muted" }, `${fmtNumber(used)} of ${fmtNumber(window)} tokens in the context window`,
        budget.since_reset ? " (estimated from the live messages: no execution has run since the reset)"
          : budget.estimated ? " (estimated from the live messages: no execution recorded a budget)" : "",
        used > window ? " — over budget" : "")),
    bar, legend);
}

const fmtMs = (ms) => `${fmtNumber(Math.round((ms || 0) * 100) / 100)} ms`;
const layerEnd = (l) => (l.start_ms || 0) + (l.duration_ms || 0);

// Milliseconds of [0, until) that the layers cover (layers may overlap or leave gaps).
function covered(layers, until) {
  const spans = layers.map((l) => [Math.max(0, l.start_ms || 0), Math.min(until, layerEnd(l))])
    .filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  let total = 0, reach = 0;
  for (const [a, b] of spans) {
    if (b <= reach) continue;
    total += b - Math.max(a, reach);
    reach = b;
  }
  return total;
}

// The rows after the layers, so that layers + model call (+ unattributed) = the execution's duration:
// the model call as the agent reported it, else the time the layers leave uncovered, labelled as inferred.
function tailRows(execution, layers) {
  const duration = execution.duration_ms || 0;
  const uncovered = Math.max(0, duration - covered(layers, duration));
  const start = Math.min(duration, Math.max(0, ...layers.map(layerEnd)));
  if (execution.model_ms == null) {
    return uncovered > 0 ? [{ kind: "inferred", name: "model call (inferred)", start_ms: start, duration_ms: uncovered,
      title: "Not reported by the agent: the execution's time its layers do not cover" }] : [];
  }
  const model = { kind: "model", name: "model call", start_ms: start, duration_ms: execution.model_ms,
    title: "Model call, as reported by the agent" };
  const rest = Math.max(0, uncovered - execution.model_ms);
  return rest > 0 ? [model, { kind: "unattributed", name: "unattributed", start_ms: start + execution.model_ms,
    duration_ms: rest, title: "Time neither the layers nor the model call account for" }] : [model];
}

function wfRow(row, span, { slowest = false } = {}) {
  const bar = h("div", { class: "wf-bar" });
  bar.style.left = `${pct(row.start_ms || 0, span)}%`;
  bar.style.width = `${pct(row.duration_ms || 0, span)}%`;
  const ms = fmtMs(row.duration_ms);
  return h("div", { class: ["wf-row", row.kind ? `wf-${row.kind}` : null, slowest ? "is-slowest" : null,
    row.error ? "is-error" : null], role: "listitem", "data-row": row.kind || "layer", "data-layer": row.name,
  "data-ms": String(row.duration_ms || 0), title: row.title || null },
  h("span", { class: "wf-name mono" }, row.name,
    slowest ? h("span", { class: "badge badge-warn" }, "slowest") : null,
    row.error ? h("span", { class: "badge badge-error", title: String(row.error) }, "error") : null),
  h("div", { class: "wf-track", role: "img", "aria-label": `${row.name}: ${ms}` }, bar),
  h("span", { class: "wf-ms" }, ms),
  h("span", { class: "wf-msgs", title: row.kind ? null : "messages in → out" },
    row.kind ? "" : `${fmtNumber(row.messages_in)} → ${fmtNumber(row.messages_out)} msgs`));
}

function waterfall(execution) {
  const layers = execution.layers || [];
  const tail = tailRows(execution, layers);
  if (!layers.length && !tail.length) return h("p", { class: "muted" }, "No pipeline layers were recorded for this execution.");
  // The scale is the execution's duration, unless rows (a layer past the end, or a reported model
  // call longer than the uncovered time) overrun it; then the axis says so by its own label.
  const span = Math.max(execution.duration_ms || 0, ...layers.map(layerEnd), ...tail.map(layerEnd), 1);
  const slowest = layers.length > 1 ? layers.reduce((a, b) => ((b.duration_ms || 0) > (a.duration_ms || 0) ? b : a)) : null;
  const layerMs = layers.reduce((sum, l) => sum + (l.duration_ms || 0), 0);
  const parts = [`layers ${fmtMs(layerMs)}`].concat(tail.map((r) => `${r.name} ${fmtMs(r.duration_ms)}`));
  return h("div", { class: "waterfall-wrap" },
    h("div", { class: "waterfall", role: "list", "aria-label": "Pipeline layers and model call" },
      h("div", { class: "wf-axis", "aria-hidden": "true" },
        h("span", {}, "0 ms"), h("span", { "data-axis-end": "" }, fmtMs(span))),
      layers.map((layer) => wfRow(layer, span, { slowest: layer === slowest })),
      tail.map((row) => wfRow(row, span))),
    h("p", { class: "wf-total muted" },
      `${parts.join(" + ")} = ${fmtMs(layerMs + tail.reduce((sum, r) => sum + r.duration_ms, 0))}`,
      ` (execution ${fmtMs(execution.duration_ms)})`));
}

function executionCard(execution) {
  const usage = execution.usage || {};
  return h("article", { class: "card execution", "data-execution": execution.id },
    h("header", { class: "card-head execution-head" },
      h("h3", {}, timeEl(execution.started_at)),
      h("span", { class: "mono" }, [execution.model, execution.provider].filter(Boolean).join(" · ")),
      h("span", {}, `${fmtNumber(execution.duration_ms)} ms`),
      h("span", {}, `${fmtNumber(usage.input_tokens)} in / ${fmtNumber(usage.output_tokens)} out tokens`),
      h("span", {}, fmtCost(execution.cost_usd))),
    waterfall(execution));
}

export function mountContextState(panel, { key, tenant }) {
  const lifetime = new AbortController();
  const scope = tenant ? { key, tenant } : { key };

  async function load() {
    replace(panel, stateBlock("loading", "Loading the context state…"));
    let result;
    try {
      result = await rpc("session.context", scope, { signal: lifetime.signal });
    } catch (err) {
      if (isAbort(err) || lifetime.signal.aborted) return;
      replace(panel, stateBlock("error", "Could not load the context state.", err.message, { label: "Retry", onclick: load }));
      return;
    }
    const executions = result.executions || [];
    replace(panel, h("div", { class: "context-state" },
      budgetSection(result.budget || {}),
      h("section", { class: "executions", "aria-labelledby": "executions-title" },
        h("h2", { id: "executions-title" }, `Executions (${fmtNumber(executions.length)})`),
        executions.length ? executions.map(executionCard)
          : stateBlock("empty", "No executions recorded.", "Agents record their runs with session.record."))));
  }

  load();
  return { unmount() { lifetime.abort(); } };
}
