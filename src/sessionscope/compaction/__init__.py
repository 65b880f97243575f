"""Compaction engine: summarizers, cut policy and settings, independent of the store.

The store calls `summarize` with the messages before the cut (and the previous summary first,
as a role "system" message with "kind": "summary"); it records `summarizer` and
`fallback_reason` on the compaction item and in the RPC result.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sessionscope.compaction.llm import LLMSummarizerError, summarize_llm
from sessionscope.compaction.offline import summarize_offline
from sessionscope.compaction.policy import choose_cut, needs_auto_compaction, validate_conversation
from sessionscope.compaction.settings import (
    AutoCompactPolicy,
    CompactionConfigError,
    CompactionSettings,
    SummarizerSettings,
    load_compaction_settings,
    validate_config_file,
)

__all__ = [
    "AutoCompactPolicy",
    "CompactionConfigError",
    "CompactionSettings",
    "SummarizerSettings",
    "SummaryResult",
    "choose_cut",
    "load_compaction_settings",
    "needs_auto_compaction",
    "summarize",
    "summarize_async",
    "summary_message",
    "validate_config_file",
    "validate_conversation",
]


@dataclass(frozen=True)
class SummaryResult:
    summary: str
    summarizer: str  # "offline" or "llm:<model>"
    fallback_reason: str | None = None  # why the llm was not used, when it was configured


def summarize(
    messages: list[dict[str, Any]], instructions: str | None, settings: SummarizerSettings
) -> SummaryResult:
    reason = None
    if settings.kind == "llm":
        try:
            return SummaryResult(summarize_llm(messages, instructions, settings), settings.label)
        except LLMSummarizerError as e:
            reason = f"llm:{settings.model} failed: {e}"
    summary = summarize_offline(messages, instructions, settings.max_summary_tokens)
    return SummaryResult(summary, "offline", reason)


async def summarize_async(
    messages: list[dict[str, Any]], instructions: str | None, settings: SummarizerSettings
) -> SummaryResult:
    """summarize() off the event loop: an llm call can take up to timeout_s."""
    return await asyncio.to_thread(summarize, messages, instructions, settings)


def summary_message(summary: str, seq: int | None = None, tokens: int | None = None) -> dict[str, Any]:
    """The live-context shape of a compaction summary, as summarize() and choose_cut() expect it."""
    message: dict[str, Any] = {"role": "system", "kind": "summary", "content": summary}
    if seq is not None:
        message["seq"] = seq
    if tokens is not None:
        message["tokens"] = tokens
    return message
