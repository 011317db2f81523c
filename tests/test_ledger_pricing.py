"""Costs from the price table, budget periods and reservations: pure, no file."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from llm_gateway.config.fields import SchemaError
from llm_gateway.config.schema import parse_config
from llm_gateway.formats.unified import Usage
from llm_gateway.ledger.budgets import BudgetBook, period_bounds
from llm_gateway.ledger.pricing import cost_of, price_rule

PRICES = {
    "currency": "EUR",
    "as_of": "2026-01-01",
    "models": [
        {"match": "big-*", "input": 3, "output": 15, "cache_read": 0.3, "cache_write_5m": 3.75,
         "cache_write_1h": 6, "reasoning": 20,
         "long_context": {"threshold": 200000, "input": 6, "output": 22.5, "cache_read": 0.6}},
        {"match": "small-*", "input": 1, "output": 2},
    ],
}  # fmt: skip


def prices():  # type: ignore[no-untyped-def]
    return parse_config({"prices": PRICES}).prices


def test_every_rate_by_hand() -> None:
    rule = price_rule(prices(), "big-1")
    usage = Usage(input_tokens=1000, output_tokens=500, cache_read_tokens=4000,
                  cache_write_tokens=3000, cache_write_1h_tokens=1000, reasoning_tokens=100)  # fmt: skip
    by_hand = 1000 * 3 + 4000 * 0.3 + 2000 * 3.75 + 1000 * 6 + 400 * 15 + 100 * 20
    assert cost_of(usage, rule) == pytest.approx(by_hand / 1e6, rel=1e-12)


def test_long_context_rates_above_the_threshold() -> None:
    rule = price_rule(prices(), "big-1")
    under = Usage(input_tokens=100_000, cache_read_tokens=100_000, output_tokens=1000)
    over = Usage(input_tokens=100_001, cache_read_tokens=100_000, output_tokens=1000)
    assert cost_of(under, rule) == pytest.approx((100_000 * 3 + 100_000 * 0.3 + 1000 * 15) / 1e6)
    # above 200K input tokens the whole request is charged at the long-context rates;
    # a rate it leaves out (reasoning) stays the base one
    assert cost_of(over, rule) == pytest.approx((100_001 * 6 + 100_000 * 0.6 + 1000 * 22.5) / 1e6)


def test_missing_rates_fall_back_and_unknown_models_cost_nothing() -> None:
    config = prices()
    small = price_rule(config, "small-2")
    usage = Usage(input_tokens=10, cache_read_tokens=20, cache_write_tokens=30, output_tokens=5)
    assert cost_of(usage, small) == pytest.approx((60 * 1 + 5 * 2) / 1e6)
    assert price_rule(config, "other") is None and cost_of(usage, None) == 0.0
    assert price_rule(config, "", "small-x") is small  # the upstream model first, then the asked one


def test_price_table_errors_name_the_field() -> None:
    with pytest.raises(SchemaError, match=r"prices.models\[0\].output: is required"):
        parse_config({"prices": {"models": [{"match": "x", "input": 1}]}})
    with pytest.raises(SchemaError, match=r"prices.models\[0\].long_context.threshold"):
        parse_config({"prices": {"models": [{"match": "x", "input": 1, "output": 1,
                                             "long_context": {"input": 2}}]}})  # fmt: skip
    with pytest.raises(SchemaError, match=r"prices.models\[0\].cache_read: must not be negative"):
        parse_config({"prices": {"models": [{"match": "x", "input": 1, "output": 1, "cache_read": -1}]}})
    with pytest.raises(SchemaError, match="metrics.listen"):
        parse_config({"metrics": {"listen": "9464"}})
    with pytest.raises(SchemaError, match="budget_period"):
        parse_config({"gateway_keys": [{"id": "k", "name": "k", "hash": "h", "budget": 5,
                                        "budget_period": "year"}]})  # fmt: skip


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def test_periods_are_utc_calendar_days_weeks_months() -> None:
    now = ts("2026-02-18T15:30:00")  # a Wednesday
    assert period_bounds("day", now) == (ts("2026-02-18T00:00:00"), ts("2026-02-19T00:00:00"))
    assert period_bounds("week", now) == (ts("2026-02-16T00:00:00"), ts("2026-02-23T00:00:00"))
    assert period_bounds("month", now) == (ts("2026-02-01T00:00:00"), ts("2026-03-01T00:00:00"))
    assert period_bounds("month", ts("2026-12-31T23:59:59"))[1] == ts("2027-01-01T00:00:00")


def test_reservations_hold_concurrent_requests_and_reset_with_the_period() -> None:
    book = BudgetBook()
    now = ts("2026-02-18T10:00:00")
    assert book.due("k", "day", now) is not None
    book.load("k", "day", now, spent=8.0)
    assert book.reserve("k", 10.0, 1.0, now).allowed  # 8 + 1 held
    assert book.reserve("k", 10.0, 1.0, now).allowed  # 8 + 2 held: at the budget now
    refused = book.reserve("k", 10.0, 1.0, now)
    assert not refused.allowed and refused.reset_in == 14 * 3600
    book.settle("k", 1.0, 1.5, now)  # the real cost replaces the reservation
    assert book.spent("k") == 9.5
    tomorrow = ts("2026-02-19T00:00:01")
    assert book.due("k", "day", tomorrow) == ts("2026-02-19T00:00:00")
    book.load("k", "day", tomorrow, spent=0.0)
    assert book.reserve("k", 10.0, 1.0, tomorrow).allowed


def test_the_last_cost_is_the_smallest_reservation() -> None:
    book = BudgetBook()
    now = ts("2026-02-18T10:00:00")
    book.load("k", "month", now, spent=0.0)
    book.reserve("k", 100.0, 0.0, now)
    book.settle("k", 0.0, 4.0, now)
    assert book.reservation("k", 0.5) == 4.0
