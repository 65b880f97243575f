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

function waterfall(execution) {
  const layers = execution.layers || [];
  if (!layers.length) return h("p", { class: "muted" }, "No pipeline layers were recorded for this execution.");
  const span = Math.max(execution.duration_ms || 0, ...layers.map((l) => (l.start_ms || 0) + (l.duration_ms || 0)), 1);
  const slowest = layers.reduce((a, b) => ((b.duration_ms || 0) > (a.duration_ms || 0) ? b : a));
  return h("div", { class: "waterfall", role: "list", "aria-label": "Pipeline layers" },
    h("div", { class: "wf-axis", "aria-hidden": "true" },
      h("span", {}, "0 ms"), h("span", {}, `${fmtNumber(Math.round(span))} ms`)),
    layers.map((layer) => {
      const isSlowest = layer === slowest && layers.length > 1;
      const bar = h("div", { class: "wf-bar" });
      bar.style.left = `${pct(layer.start_ms || 0, span)}%`;
      bar.style.width = `${Math.max(pct(layer.duration_ms || 0, span), 0.5)}%`;
      return h("div", { class: ["wf-row", isSlowest ? "is-slowest" : null, layer.error ? "is-error" : null],
        role: "listitem", "data-layer": layer.name },
      h("span", { class: "wf-name mono" }, layer.name,
        isSlowest ? h("span", { class: "badge badge-warn" }, "slowest") : null,
        layer.error ? h("span", { class: "badge badge-error", title: String(layer.error) }, "error") : null),
      h("div", { class: "wf-track" }, bar),
      h("span", { class: "wf-ms" }, `${fmtNumber(layer.duration_ms)} ms`),
      h("span", { class: "wf-msgs", title: "messages in → out" },
        `${fmtNumber(layer.messages_in)} → ${fmtNumber(layer.messages_out)} msgs`));
    }));
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
