"""Cost in USD from recorded usage, using genai-prices' offline price snapshot."""

from __future__ import annotations

import functools

from genai_prices import Usage, calc_price


@functools.lru_cache(maxsize=512)
def _price(model: str, provider: str | None, inp: int, out: int, cread: int, cwrite: int) -> float | None:
    usage = Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=cread or None,
        cache_write_tokens=cwrite or None,
    )
    try:
        result = calc_price(usage, model_ref=model, provider_id=provider or None)
    except LookupError:
        if provider is None:
            return None
        return _price(model, None, inp, out, cread, cwrite)
    return float(result.total_price)


def cost_usd(
    model: str | None,
    provider: str | None,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> float | None:
    """None when the model is unknown to the price data; callers then store no cost, not a guess."""
    if not model:
        return None
    # genai-prices counts cached tokens as part of input_tokens; agents usually report them apart.
    total_input = input_tokens + cache_read_tokens + cache_write_tokens
    return _price(model, provider, total_input, output_tokens, cache_read_tokens, cache_write_tokens)
