"""Offline extractive summarizer: what it keeps, determinism, focus, carry-over, size and speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from sessionscope.compaction import SummarizerSettings, summarize, summary_message
from sessionscope.compaction.offline import summarize_offline
from sessionscope.tokenizer import count_message_tokens, count_tokens

Msg = dict[str, Any]


def conversation() -> list[Msg]:
    return [
        {
            "role": "user",
            "content": "Please migrate the billing service to PostgreSQL 16. It must not drop the "
            "invoices_2024 table, and keep downtime under 5 minutes.",
        },
        {
            "role": "assistant",
            "content": "I'll look at the config first.",
            "tool_calls": [
                {
                    "id": "c1",
                    "name": "read_file",
                    "arguments": json.dumps({"path": "services/billing/config.yaml"}),
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "c1",
            "tool_name": "read_file",
            "content": "database:\n  url: postgresql://db.internal:5432/billing\n  pool_size: 20\n",
        },
        {
            "role": "assistant",
            "content": "We decided to use pg_dump with --jobs=4 instead of logical replication.",
            "tool_calls": [
                {
                    "id": "c2",
                    "name": "shell",
                    "arguments": json.dumps({"cmd": "pytest tests/test_billing.py"}),
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "c2",
            "tool_name": "shell",
            "is_error": True,
            "content": 'Traceback (most recent call last):\n  File "x.py", line 3\n'
            "ImportError: cannot import name 'InvoiceRow' from billing.models",
        },
        {
            "role": "assistant",
            "content": "Fixed the import by renaming InvoiceRow to InvoiceRecord in "
            "billing/models.py. All tests pass now.",
        },
        {
            "role": "user",
            "content": "Great. Next, update the runbook at https://wiki.example.com/billing/runbook "
            "before 2026-12-01.",
        },
        {
            "role": "assistant",
            "content": "Next I will update the runbook and schedule the cutover for 2026-11-30.",
        },
    ]


def section(summary: str, title: str) -> str:
    """The body of one '## title' section ('' when absent)."""
    parts = summary.split("\n## ")
    for part in parts[1:]:
        head, _, body = part.partition("\n")
        if head.startswith(title):
            return body
    return ""


def test_keeps_requests_decisions_facts_errors_and_open_task() -> None:
    summary = summarize_offline(conversation())
    requests = section(summary, "Goal and requests")
    assert 'Goal: "Please migrate the billing service to PostgreSQL 16.' in requests
    assert "must not drop the invoices_2024 table" in requests
    assert "pg_dump with --jobs=4 instead of logical replication" in section(summary, "Decisions")
    facts = section(summary, "Facts and identifiers")
    assert "`read_file` returned" in facts and "pool_size: 20" in facts  # attributed to its tool
    assert "services/billing/config.yaml" in summary
    errors = section(summary, "Errors and fixes")
    assert "ImportError: cannot import name 'InvoiceRow'" in errors
    assert "fix: Fixed the import by renaming InvoiceRow to InvoiceRecord" in errors
    open_task = section(summary, "Open task")
    assert "https://wiki.example.com/billing/runbook" in open_task
    assert "2026-12-01" in open_task and "2026-11-30" in open_task


def test_unresolved_error_and_pending_call_are_reported() -> None:
    conv = [*conversation()[:5], {"role": "assistant", "content": "Trying again.", "tool_calls": [{"id": "c9", "name": "deploy", "arguments": json.dumps({"env": "staging-eu-2"})}]}]
    summary = summarize_offline(conv)
    assert "→ unresolved" in section(summary, "Errors and fixes")
    assert "Awaiting result: `deploy`" in section(summary, "Open task")
    assert "staging-eu-2" in section(summary, "Open task")


def test_same_input_gives_byte_identical_summary_across_processes() -> None:
    # Set iteration order depends on PYTHONHASHSEED; the summary must not.
    code = (
        "import json,sys; from sessionscope.compaction.offline import summarize_offline;"
        "print(summarize_offline(json.load(sys.stdin), 'billing runbook'), end='')"
    )
    outputs = set()
    for seed in ("1", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        done = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(big_session(600)),
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert outputs.pop() == summarize_offline(big_session(600), "billing runbook")


def test_instructions_make_matching_sentences_win_the_budget() -> None:
    conv = big_session(400)
    lag = "The kafka consumer lag on topic orders-v3 in the eu-west cluster was 12 seconds at peak."
    conv.insert(200, {"role": "assistant", "content": lag})
    plain = summarize_offline(conv, None, max_summary_tokens=400)
    focused = summarize_offline(conv, "focus on Kafka consumer lag", max_summary_tokens=400)
    assert lag not in section(plain, "Focus")
    assert lag in section(focused, "Focus")
    assert 'operator instructions: "focus on Kafka consumer lag"' in focused


def test_second_compaction_carries_the_earlier_summary_forward() -> None:
    first = summarize_offline(conversation())
    newer = [
        {"role": "user", "content": "Now rotate the API key stored in vault path secret/billing/stripe."},
        {"role": "assistant", "content": "We decided to rotate it with a 24 hour overlap window."},
    ]
    second = summarize_offline([summary_message(first), *newer])
    assert second.count("Summary of") == 1  # merged, not nested
    assert "secret/billing/stripe" in section(second, "Open task")  # the newest request
    assert "must not drop the invoices_2024 table" in section(second, "Goal and requests")
    assert "pg_dump with --jobs=4" in section(second, "Decisions")
    assert "24 hour overlap" in section(second, "Decisions")
    assert "Summary of 2 earlier messages" in second  # the summary itself is not counted


def test_unstructured_earlier_summary_lands_in_its_own_section() -> None:
    prior = summary_message("The team moved the cron to 03:30 UTC. Ticket OPS-991 tracks it.")
    summary = summarize_offline([prior, {"role": "user", "content": "What next for OPS-991?"}])
    assert "03:30 UTC" in section(summary, "Earlier summary")


def test_empty_input_gives_a_header_only() -> None:
    assert summarize_offline([]) == "Summary of 0 earlier messages (offline extractive summary).\n"


def big_session(n: int) -> list[Msg]:
    """n messages of realistic shape: requests, narration, tool calls with large outputs, decisions."""
    out: list[Msg] = []
    k = 0
    while len(out) < n:
        path = f"src/service_{k % 37}/module_{k % 11}.py"
        listing = "\n".join(
            f"    def handler_{j}(request):\n        return respond(request, {j})" for j in range(40)
        )
        out += [
            {
                "role": "user",
                "content": f"Please check {path} and make sure retries stay under {k % 9 + 1} attempts.",
            },
            {
                "role": "assistant",
                "content": "Let me read it.",
                "tool_calls": [{"id": f"r{k}", "name": "read_file", "arguments": json.dumps({"path": path})}],
            },
            {"role": "tool", "tool_call_id": f"r{k}", "tool_name": "read_file", "content": listing},
            {
                "role": "assistant",
                "content": f"The p95 latency of {path} was {k % 97 + 20} ms. "
                f"We decided to keep MAX_RETRIES_{k} at {k % 9 + 1} for {path}.",
            },
        ]
        k += 1
    return out[:n]


def test_ten_thousand_messages_compress_by_70_percent() -> None:
    # Speed is measured by bench/compaction_retention.py; a timing never goes in a test.
    conv = big_session(10_000)
    tokens_in = sum(count_message_tokens(conv))
    result = summarize(conv, None, SummarizerSettings())
    tokens_out = count_tokens(result.summary)
    assert result.summarizer == "offline" and result.fallback_reason is None
    assert 1 - tokens_out / tokens_in >= 0.70
    assert tokens_out <= SummarizerSettings().max_summary_tokens * 1.2  # the budget bounds the output


def test_budget_scales_with_max_summary_tokens() -> None:
    conv = big_session(2_000)
    small = count_tokens(summarize_offline(conv, None, max_summary_tokens=300))
    large = count_tokens(summarize_offline(conv, None, max_summary_tokens=3000))
    assert small <= 300 * 1.3
    assert large > 2 * small


def call(call_id: str, name: str, args: dict[str, Any], result: str, error: bool = False) -> list[Msg]:
    return [
        {"role": "assistant", "content": "", "tool_calls": [{"id": call_id, "name": name, "arguments": json.dumps(args)}]},
        {"role": "tool", "tool_call_id": call_id, "tool_name": name, "content": result, "is_error": error},
    ]


CHATTER = [
    "The weather in the office is nice today, by the way.",
    "Thanks, that makes sense so far.",
    "Could you clarify what you meant by the earlier point?",
]


def support_conversation(chatter: int = 0) -> list[Msg]:
    ticket = json.dumps({"ticket": {"id": "SUP-48213", "status": "blocked", "order_ref": "ORD-99120",
                                    "customer": {"tier": "gold"}}})
    conv: list[Msg] = [{"role": "user", "content": "My order never arrived and nobody answers my emails."}]
    conv += call("c1", "lookup_ticket", {"email": "dana@example.com"}, ticket)
    for k in range(chatter):
        conv += [{"role": "user", "content": CHATTER[k % 3]}, {"role": "assistant", "content": "Let me take a look."}]
        conv += call(f"l{k}", "fetch_logs", {"service": "orders"},
                     "\n".join(f"2026-11-2{k % 9}T01:1{j % 9}:00Z INFO handled request in {j + 3}ms" for j in range(40)))
    conv += call("c2", "get_order", {"order_id": "ORD-99120"}, "total: $184.20\ncarrier: DHL\ntracking: 1ZX99120A")
    conv += [{"role": "assistant", "content": "I've agreed to a full refund; the ticket stays open for now."}]
    return conv


def test_tool_result_facts_are_kept_and_attributed_to_their_tool() -> None:
    summary = summarize_offline(support_conversation())
    facts = section(summary, "Facts and identifiers")
    # Only the tool results say these; the summary keeps them and says which tool said them.
    assert "`lookup_ticket` returned id=SUP-48213; status=blocked; order_ref=ORD-99120" in facts
    assert "`get_order` returned" in facts and "total: $184.20" in facts and "1ZX99120A" in facts


def test_chatter_never_enters_the_summary() -> None:
    summary = summarize_offline(support_conversation(chatter=9))
    for line in [*CHATTER, "Let me take a look."]:
        assert line not in summary
    assert "INFO handled request" not in summary  # routine log lines are not facts
    assert "SUP-48213" in summary and "ORD-99120" in summary


def test_size_follows_the_information_not_the_span_length() -> None:
    short = count_tokens(summarize_offline(support_conversation()))
    padded = count_tokens(summarize_offline(support_conversation(chatter=30)))
    assert padded <= short * 1.25  # thirty rounds of chatter and logs add almost nothing
    more = support_conversation() + call("c9", "get_invoice", {"id": "INV-7781"},
                                         json.dumps({"invoice": "INV-7781", "amount": "$912.00", "due": "2026-12-15"}))
    assert count_tokens(summarize_offline(more)) > short


def test_lines_of_one_template_are_merged_into_one() -> None:
    conv: list[Msg] = [{"role": "user", "content": "[cron] Run the nightly export and report failures."}]
    for day in range(1, 31):
        conv += call(f"r{day}", "run_job", {"job": "export", "date": f"2026-11-{day:02d}"},
                     json.dumps({"run": f"run-{day:04x}a", "status": "ok", "rows": 1000 + day}))
    summary = summarize_offline(conv)
    runs = [ln for ln in summary.splitlines() if "`run_job` returned" in ln]
    assert len(runs) == 1 and "(and 29 similar)" in runs[0]


def test_an_error_is_paired_with_its_fix_and_the_retry_result() -> None:
    conv: list[Msg] = [{"role": "user", "content": "Run the nightly export for 2026-11-03."}]
    conv += call("e1", "run_job", {"job": "export"}, json.dumps({"run": "run-77a1", "status": "failed",
                                                                  "error": "disk quota exceeded"}), error=True)
    conv += [{"role": "assistant", "content": "Fixed by raising the quota to 500 GB on the export volume."}]
    conv += call("e2", "run_job", {"job": "export"}, json.dumps({"run": "run-77b2", "status": "ok"}))
    errors = section(summarize_offline(conv), "Errors and fixes")
    assert "error=disk quota exceeded" in errors and "fix: Fixed by raising the quota to 500 GB" in errors
    assert "run-77b2" in errors  # what the fixed call returned


def test_identifiers_named_last_outrank_older_ones_of_equal_weight() -> None:
    from sessionscope.compaction.extract import Entities

    entities = Entities()
    entities.add("opened src/old_module.py", 1, weight=2)
    for pos in range(2, 50):
        entities.add("nothing named here", pos, weight=2)
    entities.add("then edited src/new_module.py", 50, weight=2)
    # Room for one of the two: the one the span ended on is what the agent goes on with.
    assert entities.uncovered("", len("src/new_module.py") + 2) == ["src/new_module.py"]


def test_base64_blobs_and_closing_tags_are_not_identifiers() -> None:
    from sessionscope.compaction.extract import Entities

    entities = Entities()
    blob = "/9j/4AAQSkZJRgABAQAAAQABAAD" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/Zz"
    entities.add(f'<img src="data:image/jpeg;base64,{blob}"> <span>hi</span> see docs/guide.md', 1, weight=2)
    assert entities.uncovered("", 10_000) == ["docs/guide.md"]


def unseen_shapes_conversation() -> tuple[list[Msg], list[str]]:
    """Identifier kinds the summarizer used to lose on real sessions, each in the place it was lost.

    Returns the conversation and the identifiers an agent would need after it.
    """
    build_log = "\n".join(
        [*(f"#17 {j}.{j:03d} api:build: step {j} of 40" for j in range(40)),
         "#17 2.232 api:build: > api@0.0.1 build /srv/apps/api",
         "#17 3.687 api:build: Learn more at https://telemetry.example.org/docs",
         "#17 3.762 api:build:   ▲ Framework 14.2.35",
         "#17 5.947 api:build: Error: error TS5083: Cannot read file '/srv/tsconfig.base.json'.",
         "ERROR: failed to solve: process did not complete successfully: exit code: 1"])
    # A .jsonl file printed by cat: its escapes are not part of the URL or the word after them.
    exported = ('{"text": "the card shows \\"https://cdn.example.net/img/a1.webp\\"\\nNode.js 20 renders it"}\n'
                '{"text": "second card"}')
    code = "\n".join(f"const row{j} = selectedWorkspaceId + {j};" for j in range(60))
    conv: list[Msg] = [
        {"role": "user", "content": "Make the Docker build of the API pass, and keep `.github/workflows/ci.yml` "
                                    "green."},
        {"role": "assistant", "content": "The client builds its URL as `${baseUrl}/v2/orders/_search?${qs}`."},
        *call("b1", "exec_command", {"cmd": "docker compose build api"}, build_log, error=True),
        *call("j1", "exec_command", {"cmd": "cat export.jsonl"}, exported),
        # A long output that names what the agent goes on with in its tail, after a symbol it
        # repeats sixty times.
        *call("r1", "exec_command", {"cmd": "cat src/index.ts"},
              code + "\n" + "x" * 40_000 + "\nmoved to packages/core/src/registry.ts"),
        {"role": "assistant", "content": "Done reading."},
    ]
    needed = [".github/workflows/ci.yml", "/v2/orders/_search", "/srv/tsconfig.base.json", "/srv/apps/api",
              "14.2.35", "0.0.1", "https://telemetry.example.org/docs", "https://cdn.example.net/img/a1.webp",
              "packages/core/src/registry.ts"]
    return conv, needed


def test_identifiers_of_unseen_shapes_are_kept() -> None:
    conv, needed = unseen_shapes_conversation()
    summary = summarize_offline(conv)
    kept = [i for i in needed if i in summary]
    assert len(kept) / len(needed) >= 0.9, sorted(set(needed) - set(kept))
    listed = summary.split("Identifiers:")[-1]
    assert "a1.webp\\" not in listed and "nNode.js" not in listed  # JSON escapes are not part of them
    assert "api@0.0.1" not in listed  # a package@version is not an email


def test_a_symbol_repeated_in_one_output_does_not_outrank_a_path() -> None:
    from sessionscope.compaction.extract import Entities

    entities = Entities()
    entities.add(" ".join(["selectedWorkspaceId"] * 40), 1, weight=1)  # one file read naming it forty times
    entities.add("wrote src/store/session_store.py", 2, weight=1)
    # Salience counts the messages that name a thing, not how often one dump repeats it.
    assert entities.uncovered("", len("src/store/session_store.py") + 2) == ["src/store/session_store.py"]


def test_a_code_expression_restated_often_does_not_outrank_a_path() -> None:
    from sessionscope.compaction.extract import Entities

    entities = Entities()
    for pos in range(1, 6):
        entities.add("then call `setCelebrating(false)` once the card is gone", pos, weight=2)
    entities.add("the handler lives in apps/web/hooks/useDragCard.ts", 6, weight=2)
    # Room for one: an expression is code to read again, a path is what one looks things up by.
    assert entities.uncovered("", len("apps/web/hooks/useDragCard.ts") + 2) == ["apps/web/hooks/useDragCard.ts"]
