"""Pricing one execution's usage: genai-prices' own calculation against sessionscope.pricing
(its prices evaluated as lines per tier range), each on usages that never repeat, as a real
agent's do.

    PYTHONPATH=src:. python bench/pricing.py
"""

from __future__ import annotations

import time

from genai_prices import Usage, calc_price

from sessionscope.pricing import cost_usd

MODELS = [("gpt-4o-mini", "openai"), ("claude-sonnet-4-5", "anthropic"), ("gemini-2.5-pro", "google")]
CALLS = 3_000


def _usages(n: int) -> list[tuple[int, int, int, int]]:
    """(uncached input, output, cache read, cache write), all distinct; some past 200,000 input."""
    return [(1_000 + 97 * i, 200 + i % 700, 5_000 + 13 * i, 300 + i % 50) for i in range(n)]


def main() -> None:
    usages = _usages(CALLS)
    print(f"pricing {CALLS:,} distinct usages per model, µs per call")
    print(f"{'model':<22} {'genai-prices':>13} {'sessionscope':>13}")
    for model, provider in MODELS:
        cost_usd(model, provider, 1, 1)  # the model's lookup and its first line, outside the timing
        start = time.perf_counter()
        for inp, out, cread, cwrite in usages:
            calc_price(Usage(input_tokens=inp + cread + cwrite, output_tokens=out, cache_read_tokens=cread,
                             cache_write_tokens=cwrite), model_ref=model, provider_id=provider)
        theirs = (time.perf_counter() - start) / CALLS * 1e6
        start = time.perf_counter()
        for inp, out, cread, cwrite in usages:
            cost_usd(model, provider, inp, out, cread, cwrite)
        ours = (time.perf_counter() - start) / CALLS * 1e6
        print(f"{model:<22} {theirs:>13.1f} {ours:>13.1f}")


if __name__ == "__main__":
    main()
