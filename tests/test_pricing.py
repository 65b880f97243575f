"""Costs: every model in genai-prices' snapshot is priced as genai-prices prices it, to the digit,
at usages on both sides of each tier threshold, with and without cache reads and writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from genai_prices import Usage, calc_price, data_snapshot
from genai_prices.types import StartDateConstraint, TieredPrices, TimeOfDateConstraint

from sessionscope import pricing
from sessionscope.pricing import cost_usd


def _reference(model: str, provider: str | None, inp: int, out: int, cread: int, cwrite: int,
               cwrite_1h: int) -> float | None:
    """genai-prices' own answer, asked as its API documents (cached tokens inside the input);
    a model the provider does not list is looked up among all providers."""
    usage = Usage(input_tokens=inp + cread + cwrite, output_tokens=out, cache_read_tokens=cread or None,
                  cache_write_tokens=cwrite or None, cache_write_1h_tokens=min(cwrite_1h, cwrite) or None)
    try:
        return float(calc_price(usage, model_ref=model, provider_id=provider).total_price)
    except LookupError:
        return None if provider is None else _reference(model, None, inp, out, cread, cwrite, cwrite_1h)


def _usages(model: Any) -> list[tuple[int, int, int, int, int]]:
    """(uncached input, output, cache read, cache write, of it 1-hour) around each tier start."""
    prices = model.prices if not isinstance(model.prices, list) else model.prices[-1].prices
    starts = {t.start for v in vars(prices).values() if isinstance(v, TieredPrices) for t in v.tiers}
    out = [(0, 0, 0, 0, 0), (1, 0, 0, 0, 0), (0, 1, 0, 0, 0), (1234, 567, 0, 0, 0), (1000, 20, 30_000, 0, 0),
           (17, 3, 9_000, 4_000, 0), (17, 3, 9_000, 4_000, 1_500), (5, 7, 0, 2_000, 2_000),
           (987_654, 12_345, 111, 222, 111)]
    for start in sorted(starts):
        for total in (start - 1, start, start + 1, start + 2, start + 50_000):
            if total >= 300:
                out += [(total, 100, 0, 0, 0), (total - 300, 100, 200, 100, 40)]
    return out


def _models() -> list[tuple[str, str, Any]]:
    return [(provider.id, model.id, model) for provider in data_snapshot.get_snapshot().providers
            for model in provider.models]


def test_every_model_is_priced_as_genai_prices_prices_it() -> None:
    checked = tiered = 0
    for provider, model_id, model in _models():
        for inp, out, cread, cwrite, cwrite_1h in _usages(model):
            try:
                expected = _reference(model_id, provider, inp, out, cread, cwrite, cwrite_1h)
            except ValueError:  # genai-prices refuses the usage for this model (e.g. per-image prices only)
                continue
            got = cost_usd(model_id, provider, inp, out, cread, cwrite, cwrite_1h)
            assert got == expected, (provider, model_id, (inp, out, cread, cwrite, cwrite_1h))
            checked += 1
            tiered += inp > 100_000
    assert checked > 10_000 and tiered > 100, (checked, tiered)


def _moments(model: Any) -> list[datetime]:
    """Either side of each date a model's price changes, and every half hour of a day for
    off-peak prices."""
    out: list[datetime] = []
    for conditional in model.prices:
        constraint = conditional.constraint
        if isinstance(constraint, StartDateConstraint):
            noon = datetime(constraint.start_date.year, constraint.start_date.month, constraint.start_date.day,
                            12, tzinfo=UTC)
            out += [noon - timedelta(days=1), noon]
        elif isinstance(constraint, TimeOfDateConstraint):
            out += [datetime(2026, 6, 1, tzinfo=UTC) + timedelta(minutes=30 * n) for n in range(48)]
    return out


def test_a_price_that_changes_with_the_date_or_the_hour_is_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    class Clock(datetime):
        moment = datetime.now(tz=UTC)

        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return cls.moment

    monkeypatch.setattr(pricing, "datetime", Clock)
    changing = [(p, m_id, m) for p, m_id, m in _models() if isinstance(m.prices, list)]
    seen: set[float | None] = set()
    for provider, model_id, model in changing:
        for moment in _moments(model):
            Clock.moment = moment
            usage = Usage(input_tokens=12_345, output_tokens=678, cache_read_tokens=2_000)
            try:
                expected = float(calc_price(usage, model_ref=model_id, provider_id=provider,
                                            genai_request_timestamp=moment).total_price)
            except (LookupError, ValueError):
                continue
            assert cost_usd(model_id, provider, 10_345, 678, 2_000) == expected, (provider, model_id, moment)
            seen.add(expected)
    assert len(changing) > 100 and len(seen) > 50


def test_a_tier_reprices_every_token_once_the_input_passes_its_start() -> None:
    # claude-sonnet-4-5's prices double past 200,000 input tokens (TieredPrices in the snapshot).
    below = cost_usd("claude-sonnet-4-5", "anthropic", 200_000, 1_000)
    above = cost_usd("claude-sonnet-4-5", "anthropic", 200_001, 1_000)
    assert below == pytest.approx(200_000 * 3e-6 + 1_000 * 15e-6)
    assert above == pytest.approx(200_001 * 6e-6 + 1_000 * 22.5e-6)


def test_unknown_models_cost_nothing_and_a_wrong_provider_falls_back_to_any() -> None:
    assert cost_usd("no-such-model-anywhere", "openai", 100, 100) is None
    assert cost_usd(None, "openai", 100, 100) is None
    assert cost_usd("gpt-4o-mini", "no-such-provider", 1_000, 1_000) == cost_usd("gpt-4o-mini", None, 1_000, 1_000)
    assert cost_usd("gpt-4o-mini", "no-such-provider", 1_000, 1_000) is not None
