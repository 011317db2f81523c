"""The wait budget for a lone busy account, over simulated time."""

from __future__ import annotations

from llm_gateway.routing.retry_wait import MIN_WAIT, SLACK, RetryWaits


def spend(budget: float, retry_after: float, time_left: float) -> list[float]:
    """The waits one request makes against an account answering ``retry_after`` forever."""
    waits, spent = RetryWaits(budget), []
    while (pause := waits.next_wait(retry_after, time_left - sum(spent))) is not None:
        spent.append(pause)
        waits = waits.after(pause)
    return spent


def test_retry_after_one_forever_is_waited_out_only_within_the_budget() -> None:
    spent = spend(budget=5.0, retry_after=1.0, time_left=120.0)
    # 1 s, 1 s, 1 s, then the doubling minimum (2 s) would overrun 5 s in total
    assert spent == [1.0 + SLACK] * 3
    assert sum(spent) <= 5.0


def test_retry_after_zero_backs_off_by_a_doubling_minimum() -> None:
    spent = spend(budget=5.0, retry_after=0.0, time_left=120.0)
    assert spent == [MIN_WAIT * 2**n + SLACK for n in range(4)]  # 0.25, 0.5, 1, 2 s
    assert sum(spent) <= 5.0


def test_a_retry_after_longer_than_the_budget_is_never_waited() -> None:
    assert RetryWaits(5.0).next_wait(6.0, 120.0) is None
    assert spend(budget=0.0, retry_after=0.0, time_left=120.0) == []


def test_the_deadline_stops_waiting_before_the_budget_does() -> None:
    assert spend(budget=5.0, retry_after=1.0, time_left=1.5) == [1.0 + SLACK]
