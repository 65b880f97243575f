"""A varied, seeded set of agent sessions with planted facts, for judging compaction.

    PYTHONPATH=src python bench/compaction_eval_set.py [--seed N] [--count N] [--show I]

Five shapes (a coding agent, a support conversation, an ops incident, research with search
results, a long multi-day cron session), each written from pools of phrasings, tool names,
result formats (JSON, key/value text, tables, logs, prose snippets) and vocabularies, so that no
one template carries the facts. Every session plants facts; about half appear *only* inside a
tool result (never repeated by the user or the assistant). Chatter with no fact in it is planted
too, so a bench can count summary lines that repeat it.

The summarizer never sees `facts` or `noise`: only the bench reads them.
"""

from __future__ import annotations

import argparse
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Msg = dict[str, Any]

CHATTER_USER = [
    "The weather in the office is nice today, by the way.",
    "Thanks, that makes sense so far.",
    "Could you clarify what you meant by the earlier point?",
    "Sorry, I was in a meeting, carry on.",
    "Cool, appreciate the help!",
    "Hmm, interesting.",
    "Great, keep going.",
    "Ok that sounds reasonable to me.",
    "I'm grabbing a coffee, back in a minute.",
    "Sure, whatever you think is best.",
    "Nice, that was quicker than I expected.",
    "Right, I see what you mean now.",
]
CHATTER_ASSISTANT = [
    "Sure, happy to help with that.",
    "Let me take a look.",
    "Good question, let me think about it for a moment.",
    "I'll keep digging.",
    "That's a fair point.",
    "Understood, continuing from here.",
    "Alright, one moment while I look around.",
    "Thanks for your patience while I work through this.",
    "Okay, that part looks fine to me.",
    "Let me check a couple more things before concluding.",
]


@dataclass
class Session:
    shape: str
    messages: list[Msg] = field(default_factory=list)
    facts: list[tuple[str, bool]] = field(default_factory=list)  # (exact text, only in a tool result)
    noise: list[str] = field(default_factory=list)


class Gen:
    """Builds one session; every random choice goes through self.rng, so a seed fixes it all."""

    def __init__(self, rng: random.Random, shape: str) -> None:
        self.rng = rng
        self.s = Session(shape)
        self._calls = 0

    # ---- identifiers of every kind, fresh per session
    def hexid(self, n: int = 10) -> str:
        while True:
            h = "".join(self.rng.choice("0123456789abcdef") for _ in range(n))
            if any(c.isdigit() for c in h) and any(c.isalpha() for c in h):
                return h

    def ticket(self, prefixes: list[str] | None = None) -> str:
        prefix = self.rng.choice(prefixes or ["SUP", "OPS", "BUG", "PAY", "INC", "CS", "PLAT", "DATA", "WEB"])
        return f"{prefix}-{self.rng.randint(100, 99999)}"

    def version(self) -> str:
        return f"{self.rng.randint(0, 9)}.{self.rng.randint(0, 40)}.{self.rng.randint(0, 30)}"

    def word(self, pool: list[str]) -> str:
        return self.rng.choice(pool)

    def ip(self) -> str:
        return f"10.{self.rng.randint(0, 255)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"

    def slug(self, k: int = 5) -> str:
        return "".join(self.rng.choice(string.ascii_lowercase + string.digits) for _ in range(k))

    # ---- conversation pieces
    def user(self, text: str) -> None:
        self.s.messages.append({"role": "user", "content": text})

    def assistant(self, text: str) -> None:
        self.s.messages.append({"role": "assistant", "content": text})

    def call(self, tool: str, args: dict[str, Any], result: str, *, error: bool = False,
             say: str | None = None) -> None:
        self._calls += 1
        call_id = f"call_{self.slug(8)}_{self._calls}"
        self.s.messages.append({
            "role": "assistant", "content": say or "",
            "tool_calls": [{"id": call_id, "name": tool, "arguments": json.dumps(args)}],
        })
        self.s.messages.append({"role": "tool", "tool_call_id": call_id, "tool_name": tool,
                                "content": result, "is_error": error})

    def plant(self, text: str, tool_only: bool) -> str:
        self.s.facts.append((text, tool_only))
        return text

    def chatter(self, p: float = 0.35) -> None:
        if self.rng.random() < p:
            line = self.rng.choice(CHATTER_USER)
            self.s.noise.append(line)
            self.user(line)
        if self.rng.random() < p:
            line = self.rng.choice(CHATTER_ASSISTANT)
            self.s.noise.append(line)
            self.assistant(line)

    def pick(self, *options: str) -> str:
        return self.rng.choice(options)


# ------------------------------------------------------------------ shared filler

CODE_DIRS = ["src/core", "src/api", "lib/common", "app/handlers", "pkg/internal", "services/worker", "web/src"]
CODE_WORDS = ["cache", "queue", "models", "views", "helpers", "schema", "tasks", "events", "auth", "io",
              "billing", "router", "session", "storage", "metrics", "retry"]


def filler_code(g: Gen, path: str, lines: int) -> str:
    out = [f"# {path}", "import logging", "", "log = logging.getLogger(__name__)", ""]
    for _ in range(lines):
        fn = f"{g.word(['load', 'parse', 'check', 'render', 'flush', 'emit', 'merge'])}_{g.word(CODE_WORDS)}"
        out += [f"def {fn}(value, limit={g.rng.randint(1, 500)}):", "    if not value:", "        return None",
                f"    log.debug('{fn} %s', value)", "    return value[:limit]", ""]
    return "\n".join(out)


PROSE = [
    "This section explains the general approach in more detail.",
    "Most teams find that the defaults work well for typical workloads.",
    "In practice the trade-off depends on the size of the data and the latency budget.",
    "The following paragraphs describe the background and the motivation.",
    "Results vary across settings, and careful measurement is recommended.",
    "Customers often ask about this, and the answer depends on their plan.",
    "We recommend reading the full guide before changing anything in production.",
    "Earlier work looked at the problem from a different angle.",
    "There are several ways to approach this, each with its own costs.",
    "The details are covered in the appendix and in the related articles.",
]


def prose(g: Gen, sentences: int) -> str:
    return " ".join(g.rng.choice(PROSE) for _ in range(sentences))


def filler_step(g: Gen) -> None:
    """An exploration step whose result holds identifiers nobody needs again."""
    kind = g.rng.randrange(5)
    base = g.word(CODE_DIRS)
    if kind == 0:
        names = g.rng.sample(CODE_WORDS, 7)
        g.call(g.pick("list_dir", "ls", "glob"), {"path": base},
               "\n".join(f"{base}/{n}.py" for n in names), say=g.pick("", "Looking around first.", ""))
    elif kind == 1:
        path = f"{base}/{g.word(CODE_WORDS)}.py"
        g.call(g.pick("read_file", "cat", "open_file"), {"path": path}, filler_code(g, path, g.rng.randint(8, 40)))
    elif kind == 2:
        term = g.pick("TODO", "timeout", "deprecated", "retry")
        hits = "\n".join(f"{base}/{g.word(CODE_WORDS)}.py:{g.rng.randint(5, 400)}: # {term}: revisit"
                         for _ in range(g.rng.randint(3, 20)))
        g.call(g.pick("grep", "search_code", "rg"), {"pattern": term, "path": base}, hits)
    elif kind == 3:
        dots = "".join(g.rng.choice("....s") for _ in range(50))
        g.call(g.pick("shell", "bash", "run"), {"cmd": f"pytest {base.replace('src', 'tests')} -q"},
               f"{dots}\n{g.rng.randint(20, 300)} passed, {g.rng.randint(0, 4)} skipped in "
               f"{g.rng.randint(2, 60)}.{g.rng.randint(10, 99)}s")
    else:
        g.chatter(1.0)


def fillers(g: Gen, lo: int, hi: int) -> None:
    for _ in range(g.rng.randint(lo, hi)):
        filler_step(g)
        g.chatter(0.15)


# ------------------------------------------------------------------ shape: coding agent

def coding(g: Gen) -> None:
    module = f"{g.word(CODE_DIRS)}/{g.word(CODE_WORDS)}.py"
    ticket = g.plant(g.ticket(["BUG", "PAY", "WEB", "PLAT", "API"]), False)
    test_id = f"tests/test_{g.word(CODE_WORDS)}.py::test_{g.word(CODE_WORDS)}_{g.word(['rounding', 'expiry', 'retry', 'order', 'limit'])}"
    g.user(g.pick(
        f"Can you fix {ticket}? The {g.word(CODE_WORDS)} code in {module} breaks under load.",
        f"{ticket} is assigned to us: {module} returns stale data after a retry. Please sort it out.",
        f"Need a fix for {ticket} in {module}, customers are seeing duplicate rows.",
    ) + " " + g.pick("Don't change the public API.", "Keep the change small.", "No new dependencies please."))
    fillers(g, 4, 9)
    # tool-only: a setting in a file the agent reads
    key = g.pick("max_retries", "pool_size", "cache_ttl_s", "batch_limit", "lock_timeout_ms")
    value = str(g.rng.randint(3, 9000))
    cfg_path = g.pick("config/settings.toml", "deploy/values.yaml", "etc/app.ini", "settings/base.py")
    g.plant(f"{key} = {value}", True)
    g.call(g.pick("read_file", "cat", "open_file"), {"path": cfg_path},
           filler_code(g, cfg_path, g.rng.randint(3, 20)) + f"\n{key} = {value}\n" + filler_code(g, cfg_path, 5),
           say=g.pick("Reading the config.", "", "Let me see the settings."))
    fillers(g, 2, 6)
    # tool-only: the failing test id and the error only appear in the test output
    err = g.pick("AssertionError: expected 2 rows, got 3", "KeyError: 'currency'",
                 "TypeError: unsupported operand type(s) for +: 'NoneType' and 'int'",
                 "ValueError: invalid literal for int() with base 10: 'n/a'")
    g.plant(test_id, True)
    g.call(g.pick("run_tests", "shell", "bash"), {"cmd": f"pytest {test_id.split('::')[0]} -x"},
           f"FAILED {test_id} - {err}\n1 failed, {g.rng.randint(10, 90)} passed in {g.rng.randint(1, 9)}.2s",
           error=g.rng.random() < 0.5)
    fillers(g, 1, 2)
    fix_file = g.plant(f"{g.word(CODE_DIRS)}/{g.word(CODE_WORDS)}_{g.word(['utils', 'core', 'guard'])}.py", False)
    g.call(g.pick("edit_file", "apply_patch", "str_replace"), {"path": fix_file, "old": "x", "new": "y"},
           g.pick("ok", "Applied 1 edit.", "patched"),
           say=g.pick(f"Fixed it by guarding the empty case in {fix_file}.",
                      f"The fix: {fix_file} now skips rows that were already merged.",
                      f"Resolved by deduplicating in {fix_file} before the write."))
    g.call(g.pick("run_tests", "shell"), {"cmd": "pytest -q"}, f"{g.rng.randint(100, 400)} passed in 8.1s")
    g.chatter()
    commit = g.plant(g.hexid(int(g.pick("7", "10", "12"))), True)
    g.call("git", {"args": ["log", "-1", "--oneline"]}, f"{commit} {g.word(CODE_WORDS)}: fix {ticket.lower()}")
    pkg = g.word(["requests", "sqlalchemy", "pydantic", "httpx", "redis", "celery"])
    ver = g.plant(g.version(), True)
    g.call(g.pick("shell", "bash"), {"cmd": f"pip show {pkg}"}, f"Name: {pkg}\nVersion: {ver}\nLocation: /venv/lib")
    choice = g.pick("a unique index", "an idempotency key", "optimistic locking")
    g.assistant(g.pick(f"We decided to use {choice} on `{key}` paths instead of a global lock.",
                       f"Going with {choice} rather than retries in a loop."))
    g.plant(choice, False)
    fillers(g, 3, 8)
    deadline = g.plant(f"2026-{g.rng.randint(1, 12):02d}-{g.rng.randint(10, 28)}", False)
    g.user(g.pick(f"It has to ship before {deadline}.", f"Release freeze is {deadline}, so aim for that."))
    fillers(g, 1, 3)
    g.assistant(g.pick(f"Next I will add a regression test for {ticket}.",
                       "Next: open the PR and ask for review."))


# ------------------------------------------------------------------ shape: support conversation

def support(g: Gen) -> None:
    name = g.word(["Dana", "Luis", "Priya", "Tomasz", "Aiko", "Femi", "Greta"])
    order = g.plant(f"{g.pick('ORD', 'SO', 'A')}-{g.rng.randint(10000, 999999)}", True)
    g.user(g.pick(
        f"Hi, I'm {name}. My order still hasn't arrived and support isn't answering.",
        f"Hello, {name} here, I was charged twice for my last purchase.",
        f"{name} again. The package I ordered says delivered but it isn't here.",
    ))
    g.chatter()
    lookup = g.pick("lookup_ticket", "get_ticket", "crm_fetch_case", "helpdesk.find")
    ticket = g.plant(g.ticket(["CS", "SUP", "HD", "CASE"]), True)
    status = g.pick("blocked", "escalated", "pending_vendor", "on_hold")
    payload = {"ticket": {"id": ticket, "status": status, "priority": g.pick("p2", "p3", "high"),
                          "customer": {"name": name, "tier": g.pick("gold", "basic", "pro")},
                          "order_ref": order, "created_at": "2026-10-0" + str(g.rng.randint(1, 9)),
                          "tags": g.rng.sample(["billing", "shipping", "refund", "vip", "repeat"], 2)}}
    g.call(lookup, {"email": f"{name.lower()}@example.com"}, json.dumps(payload, indent=g.rng.choice([None, 2])),
           say=g.pick("Let me pull up your case.", "", "One moment, checking your account."))
    g.plant(status, True)
    fillers_support(g)
    amount = g.plant(f"${g.rng.randint(20, 900)}.{g.rng.randint(10, 99)}", True)
    tracking = g.plant(f"1Z{g.slug(4).upper()}{g.rng.randint(10**9, 10**10 - 1)}", True)
    carrier = g.word(["UPS", "DHL", "FedEx", "PostNL"])
    orders_tool = g.pick("get_order", "orders.lookup", "shop_api_order")
    g.call(orders_tool, {"order_id": order},
           g.pick(
               json.dumps({"order": order, "total": amount, "carrier": carrier, "tracking": tracking,
                           "items": [{"sku": f"SKU-{g.rng.randint(1000, 9999)}", "qty": 1}]}),
               f"order: {order}\ntotal: {amount}\ncarrier: {carrier}\ntracking: {tracking}\nstate: in_transit",
           ))
    fillers_support(g)
    policy_days = g.plant(f"{g.rng.choice([14, 30, 45, 60])} days", False)
    g.user(g.pick(f"Your site says refunds are possible within {policy_days}, right?",
                  f"I read the refund window is {policy_days}. I want my money back."))
    refund_id = g.plant(f"re_{g.slug(10)}", True)
    g.call(g.pick("refund_order", "payments.refund", "issue_refund"), {"order_id": order, "amount": amount},
           json.dumps({"refund": refund_id, "state": "succeeded"}))
    g.assistant(g.pick(
        f"We decided to refund the full amount and close {ticket} once the carrier confirms.",
        f"I've agreed to a full refund; {ticket} stays open until the carrier confirms.",
    ))
    g.user(g.pick(f"Please email me at {name.lower()}@example.com when it's done.",
                  f"Send the confirmation to {name.lower()}@example.com please."))
    g.plant(f"{name.lower()}@example.com", False)
    g.chatter()
    g.assistant(g.pick("Next I will check with the carrier tomorrow and update the case.",
                       "I'll follow up with the carrier and update the ticket."))


def fillers_support(g: Gen) -> None:
    for _ in range(g.rng.randint(3, 6)):
        kb = g.pick("search_kb", "kb.search", "help_articles")
        g.call(kb, {"q": g.pick("late delivery", "double charge", "refund policy")},
               "\n\n".join(f"{g.pick('How to', 'Why', 'When')} {g.word(['track', 'cancel', 'return'])} "
                             f"an order\n{prose(g, g.rng.randint(5, 15))}" for _ in range(g.rng.randint(2, 5))))
        g.chatter(0.3)


# ------------------------------------------------------------------ shape: ops incident

def ops(g: Gen) -> None:
    svc = g.word(["checkout", "payments", "search", "auth", "gateway", "inventory"])
    inc = g.plant(g.ticket(["INC", "SEV", "OPS"]), False)
    g.user(g.pick(f"{inc}: {svc} error rate is spiking in prod, can you dig in?",
                  f"We got paged for {svc} ({inc}). Please find the cause, don't restart anything yet.",
                  f"Pager says {svc} is down-ish, incident {inc}. Investigate."))
    pod = g.plant(f"{svc}-{g.hexid(9)}-{g.slug(5)}", True)
    pods = [f"{svc}-{g.hexid(9)}-{g.slug(5)}" for _ in range(3)] + [pod]
    g.rng.shuffle(pods)
    rows = ["NAME                         READY   STATUS             RESTARTS   AGE"]
    for p in pods:
        st = "CrashLoopBackOff" if p == pod else "Running"
        rows.append(f"{p:<28} {'0/1' if p == pod else '1/1'}     {st:<18} {g.rng.randint(0, 40) if p == pod else 0:<10} 3h")
    g.call(g.pick("kubectl", "shell", "k8s_exec"), {"cmd": f"kubectl get pods -n {svc}"}, "\n".join(rows))
    g.chatter()
    rate = g.plant(f"{g.rng.randint(2, 40)}.{g.rng.randint(1, 9)}%", True)
    p99 = g.plant(f"{g.rng.randint(900, 9000)}ms", True)
    g.call(g.pick("query_metrics", "prometheus_query", "grafana.query"),
           {"query": f"rate(http_requests_total{{service=\"{svc}\",code=~\"5..\"}}[5m])"},
           g.pick(json.dumps({"service": svc, "error_rate": rate, "p99_latency": p99, "window": "5m"}),
                  f"service={svc} error_rate={rate} p99={p99} window=5m"))
    for _ in range(g.rng.randint(3, 6)):
        g.call(g.pick("fetch_logs", "loki_query"), {"service": svc, "level": "info"},
               "\n".join(f"2026-11-2{g.rng.randint(0, 9)}T0{g.rng.randint(0, 9)}:1{g.rng.randint(0, 9)}:00Z INFO "
                         f"{g.pick('handled request', 'cache refresh', 'health check ok', 'flushed batch')} in "
                         f"{g.rng.randint(3, 90)}ms" for _ in range(g.rng.randint(30, 80))))
        g.chatter(0.25)
    err = g.pick("OOMKilled: container exceeded memory limit 512Mi",
                 "dial tcp 10.0.3.7:5432: connect: connection refused",
                 "x509: certificate has expired or is not yet valid",
                 "panic: runtime error: invalid memory address or nil pointer dereference")
    g.plant(err, False)
    g.call(g.pick("fetch_logs", "kubectl"), {"pod": pod, "tail": 50},
           "\n".join(["starting worker", "loaded config", f"ERROR {err}", "exit status 2"]), error=True)
    image = g.plant(f"v{g.version()}", True)
    prev = f"v{g.version()}"
    g.call(g.pick("deploy_history", "argo_history", "helm_history"), {"service": svc},
           f"REVISION  IMAGE     STATUS\n{g.rng.randint(10, 90)}  {prev}  superseded\n"
           f"{g.rng.randint(91, 99)}  {image}  deployed")
    node = g.plant(f"ip-{g.ip().replace('.', '-')}", True)
    g.call("kubectl", {"cmd": f"kubectl describe pod {pod}"}, f"Node: {node}\nLimits: memory 512Mi\nQoS: Burstable")
    g.assistant(g.pick(
        f"Root cause: {image} regressed; we decided to roll back to {prev}.",
        f"Decided to roll back to {prev} since {image} introduced the failure.",
    ))
    g.plant(prev, False)
    g.call(g.pick("rollback", "helm_rollback", "argo_rollback"), {"service": svc, "to": prev}, "rollback complete",
           say=f"Resolved by rolling back {svc} to {prev}.")
    runbook = g.plant(f"https://runbooks.example.com/{svc}/{g.slug(6)}", True)
    g.call(g.pick("search_wiki", "confluence_search"), {"q": f"{svc} crashloop"},
           f"Runbook: {svc} crash loops\nURL: {runbook}\nOwner: team-{svc}")
    g.chatter()
    g.user(g.pick(f"Write the postmortem for {inc} by friday.",
                  f"Thanks. Postmortem for {inc} please, keep it under 2 pages."))
    g.assistant("Next I will draft the postmortem and link the runbook.")


# ------------------------------------------------------------------ shape: research with search results

def research(g: Gen) -> None:
    topic = g.pick("speculative decoding", "vector index compression", "retrieval augmented generation evaluation",
                   "LSM tree compaction", "CRDT text editing", "federated learning privacy")
    g.user(g.pick(f"I need a short literature review on {topic}. Cite sources with links.",
                  f"Research {topic} for me: what is the state of the art, with numbers?",
                  f"Can you find recent work on {topic}? Prefer peer-reviewed sources."))
    found: list[str] = []
    for k in range(g.rng.randint(3, 5)):
        results = []
        for _ in range(g.rng.randint(3, 6)):
            arxiv = f"{g.rng.randint(20, 25)}{g.rng.randint(1, 12):02d}.{g.rng.randint(10000, 19999)}"
            results.append({"title": f"{g.pick('On', 'Towards', 'Revisiting', 'Scaling')} {topic} "
                                     f"{g.pick('at scale', 'in practice', 'for edge devices', 'with guarantees')}",
                            "url": f"https://arxiv.org/abs/{arxiv}",
                            "snippet": f"We study {topic}. {prose(g, g.rng.randint(2, 5))}"})
        keep = results[0]["url"]
        if k < 2:
            found.append(g.plant(keep, True))
        g.call(g.pick("web_search", "search", "bing_search", "scholar_search"),
               {"query": f"{topic} {g.pick('benchmark', 'survey', '2025', 'results')}"},
               g.pick(json.dumps({"results": results}),
                      "\n\n".join(f"{r['title']}\n{r['url']}\n{r['snippet']}" for r in results)),
               say=g.pick("", "Searching.", "Let me search for that."))
        g.chatter(0.3)
    for _ in range(g.rng.randint(1, 3)):
        g.call(g.pick("fetch_url", "read_page", "browse"), {"url": f"https://blog.example.org/{g.slug(8)}"},
               f"{prose(g, g.rng.randint(20, 60))}\n\nIn our tests latency dropped by {g.rng.randint(5, 60)}%.")
        g.chatter(0.3)
    metric = g.plant(f"{g.rng.randint(11, 89)}.{g.rng.randint(1, 9)}%", True)
    doi = g.plant(f"10.{g.rng.randint(1000, 9999)}/{g.slug(4)}.{g.rng.randint(2019, 2025)}.{g.rng.randint(100, 999)}",
                  True)
    g.call(g.pick("fetch_url", "read_page", "browse"), {"url": found[0]},
           f"Abstract. We revisit {topic}. {prose(g, 4)} Our method improves accuracy to {metric} on the main "
           f"benchmark while using {g.rng.randint(2, 9)}x less memory.\n\n{prose(g, g.rng.randint(10, 30))}"
           f"\nDOI: {doi}\nPublished {g.rng.randint(2019, 2025)}.\n\n{prose(g, g.rng.randint(10, 30))}")
    g.chatter()
    bench = g.plant(g.pick("MMLU-Pro", "BEIR", "LongBench", "TPC-C", "YCSB-A"), False)
    g.user(g.pick(f"Focus on results measured on {bench}.", f"Only count numbers reported on {bench}."))
    g.assistant(g.pick(f"Decided to exclude preprints without code, and to compare on {bench} only.",
                       f"We'll go with {bench} as the common yardstick and drop the rest."))
    words = g.plant(f"{g.rng.choice([500, 800, 1200, 1500])} words", False)
    g.user(g.pick(f"Keep the review to {words}.", f"Target length: {words}, no more."))
    g.assistant("Next I will draft the review with a table of the numbers.")


# ------------------------------------------------------------------ shape: long multi-day cron session

def cron(g: Gen) -> None:
    job = g.pick("nightly-export", "orders-sync", "index-rebuild", "invoice-batch", "crm-mirror")
    bucket = g.pick("s3://acme-exports", "gs://data-lake-prod", "s3://warehouse-dumps")
    g.user(f"[cron] You run {job} every night: sync, verify the checksum, report anomalies. "
           f"{g.pick('Alert on any failure.', 'Only alert when a run fails twice.', 'Never delete old exports.')}")
    days = g.rng.randint(25, 45)
    bad_day = g.rng.randrange(2, days - 2)
    for d in range(days):
        date = f"2026-11-{d + 1:02d}"
        g.user(f"[cron {date} 02:00 UTC] {g.pick('Run', 'Start', 'Execute')} {job}.")
        run_id = f"run-{g.hexid(8)}"
        rows = g.rng.randint(1000, 90000)
        out = f"{bucket}/{job}/{date}/part-0000.parquet"
        if d == bad_day:
            g.plant(run_id, True)
            err = g.pick("checksum mismatch", "upstream 503 Service Unavailable", "disk quota exceeded")
            g.call(g.pick("run_job", "shell"), {"job": job, "date": date},
                   json.dumps({"run": run_id, "status": "failed", "error": err, "rows": 0}), error=True)
            g.plant(err, False)
            g.assistant(g.pick(f"{job} failed on {date}: {err}. Retrying once.",
                               f"Run {date} failed with {err}; I'll retry."))
            retry = g.plant(f"run-{g.hexid(8)}", True)
            g.call(g.pick("run_job", "shell"), {"job": job, "date": date, "retry": True},
                   json.dumps({"run": retry, "status": "ok", "rows": rows, "output": out}))
            g.assistant(g.pick("The retry succeeded.", "Resolved: the retry went through."))
        else:
            g.call(g.pick("run_job", "shell"), {"job": job, "date": date},
                   json.dumps({"run": run_id, "status": "ok", "rows": rows, "output": out}))
        if g.rng.random() < 0.5:
            g.call(g.pick("tail_log", "job_log"), {"job": job, "run": run_id},
                   "\n".join(f"[{date}T02:{k:02d}:{g.rng.randint(10, 59)}Z] INFO {g.pick('fetched', 'wrote', 'merged')} "
                             f"batch {k} ({g.rng.randint(100, 5000)} rows)" for k in range(g.rng.randint(10, 30))))
        if g.rng.random() < 0.6:
            g.call("verify_checksum", {"path": out}, f"sha256 {g.hexid(64)} OK")
        if d == days // 2:
            backlog = g.plant(f"{g.rng.randint(2, 9)},{g.rng.randint(100, 999)} rows", True)
            g.call(g.pick("queue_stats", "backlog"), {"job": job}, f"pending: {backlog}\noldest: 3h")
            g.user(g.pick(f"From now on run {job} at 03:30 UTC instead.",
                          f"Move {job} to 03:30 UTC, the db is busy at 02:00."))
            g.plant("03:30 UTC", False)
            g.assistant("Decided to switch the schedule to 03:30 UTC starting tomorrow.")
        g.chatter(0.2)
    size = g.plant(f"{g.rng.randint(2, 90)}.{g.rng.randint(1, 9)} GB", True)
    g.call("storage_usage", {"bucket": bucket}, f"{bucket}: {size} across {days} days")
    g.assistant("Next I will keep watching the runs and report weekly.")


SHAPES: dict[str, Callable[[Gen], None]] = {
    "coding": coding, "support": support, "ops": ops, "research": research, "cron": cron,
}


def build(seed: int, index: int) -> Session:
    shape = list(SHAPES)[index % len(SHAPES)]
    g = Gen(random.Random(f"{seed}:{index}"), shape)
    SHAPES[shape](g)
    # A fact counts as tool-only only if nobody but a tool result ever says it.
    said = " ".join((m.get("content") or "") + " ".join(c["arguments"] for c in m.get("tool_calls") or ())
                    for m in g.s.messages if m["role"] != "tool")
    g.s.facts = [(f, f not in said) for f, _intended in g.s.facts]
    return g.s


def eval_set(seed: int = 1, count: int = 120) -> list[Session]:
    return [build(seed, i) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=120)
    parser.add_argument("--show", type=int, default=-1)
    args = parser.parse_args()
    sessions = eval_set(args.seed, args.count)
    facts = [f for s in sessions for f in s.facts]
    print(f"{len(sessions)} sessions, {sum(len(s.messages) for s in sessions)} messages, {len(facts)} facts, "
          f"{sum(t for _, t in facts)} only in tool results")
    if args.show >= 0:
        s = sessions[args.show]
        for m in s.messages:
            print(json.dumps(m)[:300])
        print(s.facts)


if __name__ == "__main__":
    main()
