"""Summarizer for any OpenAI-compatible Chat Completions endpoint (OpenAI, OpenRouter, vLLM,
Ollama, llama.cpp server) through the `openai` package.

Every failure becomes LLMSummarizerError with a short reason, so the caller can fall back to
the offline summarizer and record why. No retries: the caller is an operator or an append
waiting on compaction, and the offline result is a good answer now.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sessionscope.compaction import extract
from sessionscope.compaction.offline import SECTIONS, extracted_facts
from sessionscope.compaction.settings import SummarizerSettings

# The checklist of extracted facts may take this share of the summary budget in the prompt.
CHECKLIST_SHARE = 0.75
# Tool outputs are clipped before the budget is applied, so one huge file read cannot crowd
# out the conversation around it.
MAX_TOOL_OUTPUT_CHARS = 4000
# The earlier summary is the only record of what came before it; it keeps up to this share.
EARLIER_SUMMARY_SHARE = 0.3

SYSTEM_PROMPT = """You compact the conversation history of an AI agent session.
Write a summary that lets the agent continue its work without the original messages.
Use exactly these markdown sections, in this order:
{sections}
Rules:
- Under "## Goal and requests", state the user's goal, then quote requests and constraints verbatim.
- Under "## Decisions", list what was decided and why, in a few words each.
- Under "## Facts and identifiers", keep every identifier, file path, URL, number with its unit,
  version, hash and date exactly as written, and say where each came from (e.g. "lookup_ticket
  returned status=blocked"). Tool results are where most facts are: do not drop them.
- Under "## Errors and fixes", give each error and how it was fixed (or "unresolved").
- Under "## Open tasks", say what the agent is doing now and what comes next.
- Leave out small talk and narration: a line with no fact, request, decision or error does not
  belong in the summary.
- If the transcript starts with an earlier summary, merge its content into the sections.
- Write only facts found in the transcript. Stay under {max_tokens} tokens.
- A checklist of facts extracted from the transcript follows it: every item on it must appear
  in your summary, with its identifiers exactly as written."""


class LLMSummarizerError(RuntimeError):
    """The endpoint did not give a usable summary; str(self) is the reason we record."""


def build_messages(
    messages: Sequence[dict[str, Any]], instructions: str | None, settings: SummarizerSettings
) -> list[dict[str, str]]:
    sections = "\n".join(f"## {s}" for s in SECTIONS)
    system = SYSTEM_PROMPT.format(sections=sections, max_tokens=settings.max_summary_tokens)
    if instructions:
        system += f"\nOperator instructions (these take priority for what to keep):\n{instructions}"
    transcript = render_transcript(messages, settings.max_input_tokens)
    checklist = "\n".join(f"- {line}" for line in
                          extracted_facts(messages, int(settings.max_summary_tokens * CHECKLIST_SHARE)))
    user = (f"Summarize this transcript.\n\n<transcript>\n{transcript}\n</transcript>\n\n"
            f"<checklist>\n{checklist}\n</checklist>")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def render_transcript(messages: Sequence[dict[str, Any]], max_input_tokens: int) -> str:
    """One block per message, cut to max_input_tokens keeping the most recent messages."""
    from sessionscope.tokenizer import count_tokens

    earlier = [_render_one(m) for m in messages if extract.is_summary(m)]
    blocks = [_render_one(m) for m in messages if not extract.is_summary(m)]
    budget = max_input_tokens
    head: list[str] = []
    for block in earlier:
        cost = count_tokens(block)
        if cost > budget * EARLIER_SUMMARY_SHARE:
            block = block[: int(len(block) * budget * EARLIER_SUMMARY_SHARE / cost)] + "\n[…]"
            cost = count_tokens(block)
        head.append(block)
        budget -= cost
    kept: list[str] = []
    for block in reversed(blocks):
        cost = count_tokens(block) + 1
        if cost > budget:
            break
        kept.append(block)
        budget -= cost
    dropped = len(blocks) - len(kept)
    if dropped:
        head.append(f"[{dropped} older messages omitted to fit the input budget]")
    return "\n\n".join(head + kept[::-1])


def _render_one(m: dict[str, Any]) -> str:
    content = m.get("content") or ""
    if extract.is_summary(m):
        return f"[earlier summary]\n{content}"
    role = m.get("role") or "unknown"
    if role == "tool":
        status = "error" if m.get("is_error") else "result"
        return (
            f"[tool {status}: {m.get('tool_name') or '?'} id={m.get('tool_call_id')}]\n"
            + extract.head_tail(content, MAX_TOOL_OUTPUT_CHARS * 2 // 3, MAX_TOOL_OUTPUT_CHARS // 3)
        )
    parts = [f"[{role}]", content] if content else [f"[{role}]"]
    for call in m.get("tool_calls") or ():
        parts.append(f"→ calls {call.get('name')}({call.get('arguments') or ''}) id={call.get('id')}")
    return "\n".join(parts)


def summarize_llm(
    messages: Sequence[dict[str, Any]], instructions: str | None, settings: SummarizerSettings
) -> str:
    import openai

    if not settings.model:
        raise LLMSummarizerError("no model configured")
    client = openai.OpenAI(
        base_url=settings.base_url,
        # Local servers (Ollama, llama.cpp) need no key, but the client insists on one.
        api_key=settings.api_key or "sk-no-key",
        timeout=settings.timeout_s,
        max_retries=0,
    )
    try:
        response = client.chat.completions.create(
            model=settings.model,
            messages=build_messages(messages, instructions, settings),  # type: ignore[arg-type]
            temperature=0,
        )
    except openai.APITimeoutError:
        raise LLMSummarizerError(f"timed out after {settings.timeout_s:g} s") from None
    except openai.APIStatusError as e:
        raise LLMSummarizerError(
            f"HTTP {e.status_code} from {settings.base_url or 'api.openai.com'}"
        ) from None
    except openai.APIConnectionError as e:
        raise LLMSummarizerError(f"connection failed: {e.__cause__ or e}") from None
    except (json.JSONDecodeError, openai.APIResponseValidationError) as e:
        raise LLMSummarizerError(f"malformed response: {e}") from None
    except openai.OpenAIError as e:
        raise LLMSummarizerError(f"{type(e).__name__}: {e}") from None
    finally:
        client.close()
    return _content_of(response)


def _content_of(response: Any) -> str:
    # A server that answers 200 with a non-JSON body reaches us as a str, not a ChatCompletion.
    choices = getattr(response, "choices", None)
    if not choices:
        raise LLMSummarizerError("malformed response: no choices")
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    if not isinstance(content, str) or not content.strip():
        raise LLMSummarizerError("empty summary in response")
    return content.strip() + "\n"
