// The Metrics tab (mounted on first activation): session-level statistics from session.metrics.
import { isAbort, rpc } from "../api.js";
import { fmtCost, fmtNumber, fmtPercent, h, replace, stateBlock } from "../dom.js";

// A note is a second <dd> of its term: a <dl> may hold only dt/dd groups (axe: definition-list).
function stat(label, field, value, note) {
  return h("div", { class: "stat", "data-metric": field },
    h("dt", {}, label), h("dd", { class: "stat-value" }, value), note ? h("dd", { class: "stat-note" }, note) : null);
}

export function mountMetrics(panel, { key, tenant }) {
  const lifetime = new AbortController();
  const scope = tenant ? { key, tenant } : { key };

  async function load() {
    replace(panel, stateBlock("loading", "Loading metrics…"));
    let m;
    try {
      m = await rpc("session.metrics", scope, { signal: lifetime.signal });
    } catch (err) {
      if (isAbort(err) || lifetime.signal.aborted) return;
      replace(panel, stateBlock("error", "Could not load metrics.", err.message, { label: "Retry", onclick: load }));
      return;
    }
    replace(panel, h("div", { class: "metrics" },
      h("section", { class: "card", "aria-labelledby": "metrics-tokens" },
        h("h2", { id: "metrics-tokens" }, "Tokens"),
        h("dl", { class: "stats" },
          stat("Input tokens", "input_tokens", fmtNumber(m.input_tokens)),
          stat("Output tokens", "output_tokens", fmtNumber(m.output_tokens)),
          stat("Cache read", "cache_read_tokens", fmtNumber(m.cache_read_tokens)),
          stat("Cache write", "cache_write_tokens", fmtNumber(m.cache_write_tokens)),
          stat("Cache hit rate", "cache_hit_rate", fmtPercent(m.cache_hit_rate), "cache read / all prompt tokens"))),
      h("section", { class: "card", "aria-labelledby": "metrics-activity" },
        h("h2", { id: "metrics-activity" }, "Activity and cost"),
        h("dl", { class: "stats" },
          stat("Tool calls", "tool_calls", fmtNumber(m.tool_calls)),
          stat("Compactions", "compactions", fmtNumber(m.compactions)),
          stat("Resets", "resets", fmtNumber(m.resets)),
          stat("Executions", "executions", fmtNumber(m.executions)),
          stat("Cost", "cost_usd", fmtCost(m.cost_usd), "USD, rolled up from recorded executions")))));
  }

  load();
  return { unmount() { lifetime.abort(); } };
}
