"""Cost in USD from recorded usage, using genai-prices' offline price snapshot.

genai-prices takes 56-95 µs to price one usage (bench/pricing.py: its unit registry decomposes
the counts on every call), and real usage is never the same twice: a cache of whole
calculations missed on every execution of a real agent, so each cost about as much server time
as a whole OTLP span. Its prices are affine in the counts, though, between the thresholds of
tiered prices (TieredPrices: crossing a tier reprices all tokens). So each model's price is
asked of genai-prices at a few points of a tier's range (`_Priced.line`), once, and every usage
in that range is priced from them: the same Decimal arithmetic, to the digit
(tests/test_pricing.py compares the two on every model of the snapshot).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from genai_prices import Usage, data_snapshot
from genai_prices.types import TieredPrices

# Model prices kept, each with its lines: far more than the models that one store sees.
MAX_PRICES = 4096


@dataclass(frozen=True)
class _Line:
    """A price's affine form over one tier range: `base` plus a rate per token of each kind."""

    base: Decimal
    uncached_input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal  # 5-minute writes
    cache_write_1h: Decimal

    def price(self, uncached: int, out: int, cread: int, cwrite_5m: int, cwrite_1h: int) -> Decimal:
        return (self.base + self.uncached_input * uncached + self.output * out + self.cache_read * cread
                + self.cache_write * cwrite_5m + self.cache_write_1h * cwrite_1h)


class _Priced:
    """One model price (as genai-prices resolves it at a moment) and its lines, by tier range."""

    def __init__(self, prices: Any) -> None:
        self.prices = prices
        self.starts = sorted({tier.start for value in vars(prices).values() if isinstance(value, TieredPrices)
                              for tier in value.tiers})
        self.lines: dict[int, _Line | None] = {}

    def range_of(self, total_input: int) -> int:
        """Which tier range a usage falls in: a tier applies once the input is above its start."""
        return sum(1 for start in self.starts if total_input > start)

    def exact(self, inp: int, out: int, cread: int, cwrite: int, cwrite_1h: int) -> Decimal:
        return self.prices.calc_price(_usage(inp, out, cread, cwrite, cwrite_1h))["total_price"]

    def line(self, tier_range: int) -> _Line | None:
        """The price's affine form over a tier range, from genai-prices' own prices at six points
        of it; None when the range is too narrow to hold them (then each usage is asked)."""
        if tier_range not in self.lines:
            low = self.starts[tier_range - 1] + 1 if tier_range else 0
            line = None
            if self.range_of(low + 1) == tier_range:
                start = self.exact(low, 0, 0, 0, 0)
                per_input = self.exact(low + 1, 0, 0, 0, 0) - start
                line = _Line(
                    base=start - per_input * low,
                    uncached_input=per_input,
                    output=self.exact(low, 1, 0, 0, 0) - start,
                    cache_read=self.exact(low + 1, 0, 1, 0, 0) - start,
                    cache_write=self.exact(low + 1, 0, 0, 1, 0) - start,
                    cache_write_1h=self.exact(low + 1, 0, 0, 1, 1) - start,
                )
            self.lines[tier_range] = line
        return self.lines[tier_range]


# By id of genai-prices' price object (they live as long as its snapshot): bounded by the models seen.
_priced: dict[int, _Priced] = {}


@functools.lru_cache(maxsize=512)
def _model(model: str, provider: str | None) -> Any:
    """genai-prices' ModelInfo for the model (of the provider, else of any), or None."""
    try:
        return data_snapshot.get_snapshot().find_provider_model(model, None, provider or None, None)[1]
    except LookupError:
        return None if provider is None else _model(model, None)


def _usage(inp: int, out: int, cread: int, cwrite: int, cwrite_1h: int) -> Usage:
    # genai-prices prices `cache_write_1h_tokens` at the model's 1-hour rate and the rest of
    # `cache_write_tokens` at the 5-minute rate; the 1-hour count must come with the total.
    return Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=cread or None,
                 cache_write_tokens=cwrite or None, cache_write_1h_tokens=cwrite_1h or None)


def _price(model: str, provider: str | None, inp: int, out: int, cread: int, cwrite: int,
           cwrite_1h: int) -> float | None:
    found = _model(model, provider)
    if found is None:
        return None
    prices = found.get_prices(datetime.now(tz=UTC))  # a price may change at a date or an hour
    priced = _priced.get(id(prices))
    if priced is None or priced.prices is not prices:
        if len(_priced) >= MAX_PRICES:
            _priced.clear()
        priced = _priced[id(prices)] = _Priced(prices)
    line = priced.line(priced.range_of(inp))
    if line is None:
        return float(priced.exact(inp, out, cread, cwrite, cwrite_1h))
    return float(line.price(inp - cread - cwrite, out, cread, cwrite - cwrite_1h, cwrite_1h))


def cost_usd(
    model: str | None,
    provider: str | None,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    cache_write_1h_tokens: int = 0,
) -> float | None:
    """None when the model is unknown to the price data; callers then store no cost, not a guess.

    ``cache_write_1h_tokens`` is the share of ``cache_write_tokens`` written for one hour."""
    if not model:
        return None
    # genai-prices counts cached tokens as part of input_tokens; agents usually report them apart.
    total_input = input_tokens + cache_read_tokens + cache_write_tokens
    return _price(model, provider, total_input, output_tokens, cache_read_tokens, cache_write_tokens,
                  min(cache_write_1h_tokens, cache_write_tokens))
