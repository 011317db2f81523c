"""What a request cost: token usage times the price table's rates (pure).

Rates are per million tokens. ``input_tokens`` are fresh input; cache reads,
five-minute and one-hour cache writes each have their own rate; reasoning
tokens are part of the output and charged at ``reasoning`` when it is set.
When a request's input (fresh, read and written) is above a rule's
``long_context_threshold``, the whole request is charged at its
``long_context`` rates, as providers do. A model no rule matches costs 0.
"""

from __future__ import annotations

import fnmatch

from ..config.schema import PriceRule, PricesConfig, Rates
from ..formats.unified import Usage

__all__ = ["cost_of", "price_rule", "rates_for"]

_MILLION = 1_000_000


def price_rule(prices: PricesConfig, *models: str) -> PriceRule | None:
    """The first rule matching the first of ``models`` that any rule matches."""
    for model in models:
        if not model:
            continue
        for rule in prices.models:
            if fnmatch.fnmatchcase(model, rule.match):
                return rule
    return None


def rates_for(rule: PriceRule, usage: Usage) -> Rates:
    prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    threshold = rule.long_context_threshold
    if rule.long_context is not None and threshold is not None and prompt > threshold:
        return rule.long_context
    return rule.rates


def cost_of(usage: Usage, rule: PriceRule | None) -> float:
    if rule is None:
        return 0.0
    rates = rates_for(rule, usage)
    read = rates.input if rates.cache_read is None else rates.cache_read
    write_5m = rates.input if rates.cache_write_5m is None else rates.cache_write_5m
    write_1h = write_5m if rates.cache_write_1h is None else rates.cache_write_1h
    reasoning = rates.output if rates.reasoning is None else rates.reasoning
    one_hour = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
    reasoning_tokens = min(usage.reasoning_tokens, usage.output_tokens)
    total = (
        usage.input_tokens * rates.input
        + usage.cache_read_tokens * read
        + (usage.cache_write_tokens - one_hour) * write_5m
        + one_hour * write_1h
        + (usage.output_tokens - reasoning_tokens) * rates.output
        + reasoning_tokens * reasoning
    )
    return total / _MILLION
