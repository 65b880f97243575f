"""Cost in USD from recorded usage, using genai-prices' offline price snapshot."""

from __future__ import annotations

import functools

from genai_prices import Usage, calc_price


@functools.lru_cache(maxsize=512)
def _price(model: str, provider: str | None, inp: int, out: int, cread: int, cwrite: int,
           cwrite_1h: int) -> float | None:
    # genai-prices prices `cache_write_1h_tokens` at the model's 1-hour rate and the rest of
    # `cache_write_tokens` at the 5-minute rate; the 1-hour count must come with the total.
    usage = Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_tokens=cread or None,
        cache_write_tokens=cwrite or None,
        cache_write_1h_tokens=cwrite_1h or None,
    )
    try:
        result = calc_price(usage, model_ref=model, provider_id=provider or None)
    except LookupError:
        if provider is None:
            return None
        return _price(model, None, inp, out, cread, cwrite, cwrite_1h)
    return float(result.total_price)


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
