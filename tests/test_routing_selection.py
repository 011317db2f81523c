"""Candidate ordering for failover, per strategy, over simulated time."""

from __future__ import annotations

from collections import Counter
from fnmatch import fnmatchcase

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.routing.health import FailureKind, HealthPolicy, HealthTracker
from llm_gateway.routing.selection import (
    Candidate,
    Selector,
    Strategy,
    matches,
    soonest_available,
)


def ids(candidates: list[Candidate]) -> list[str]:
    return [c.account_id for c in candidates]


def firsts(
    selector: Selector,
    candidates: list[Candidate],
    health: HealthTracker,
    picks: int,
    strategy: Strategy = Strategy.HEALTH_FIRST,
) -> list[str]:
    out = []
    for _ in range(picks):
        ordered = selector.order(candidates, health, 0.0, strategy=strategy)
        out.append(ordered[0].account_id)
    return out


def open_circuit(health: HealthTracker, account_id: str, now: float) -> None:
    for _ in range(health.policy.failure_threshold):
        health.record_failure(account_id, now, FailureKind.CONNECT)


TRIO = [Candidate("a", weight=5), Candidate("b", weight=1), Candidate("c", weight=1)]


def test_smooth_weighted_round_robin_is_exact_and_interleaved() -> None:
    selector, health = Selector(), HealthTracker()
    picks = firsts(selector, TRIO, health, 14)
    assert picks == ["a", "a", "b", "a", "c", "a", "a"] * 2
    assert Counter(picks[:7]) == {"a": 5, "b": 1, "c": 1}


def test_every_order_lists_all_available_candidates_once() -> None:
    selector, health = Selector(), HealthTracker()
    for _ in range(10):
        assert sorted(ids(selector.order(TRIO, health, 0.0))) == ["a", "b", "c"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=8), min_size=1, max_size=5))
def test_weighted_round_robin_is_proportional_in_every_cycle(weights: list[int]) -> None:
    candidates = [Candidate(f"acct{i}", weight=w) for i, w in enumerate(weights)]
    cycle = sum(weights)
    for strategy in (Strategy.HEALTH_FIRST, Strategy.WEIGHTED):
        selector, health = Selector(), HealthTracker()
        picks = firsts(selector, candidates, health, 3 * cycle, strategy)
        for start in range(0, 3 * cycle, cycle):
            counts = Counter(picks[start : start + cycle])
            assert counts == {c.account_id: c.weight for c in candidates}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=8), min_size=2, max_size=5))
def test_no_account_waits_longer_than_a_cycle(weights: list[int]) -> None:
    candidates = [Candidate(f"acct{i}", weight=w) for i, w in enumerate(weights)]
    cycle = sum(weights)
    picks = firsts(Selector(), candidates, HealthTracker(), 4 * cycle)
    for candidate in candidates:
        seen = [i for i, p in enumerate(picks) if p == candidate.account_id]
        gaps = [b - a for a, b in zip([-1, *seen], [*seen, len(picks)], strict=True)]
        assert max(gaps) <= cycle


def test_unavailable_accounts_sit_out_and_the_rest_share() -> None:
    selector, health = Selector(), HealthTracker()
    health.record_auth_failure("a", 0.0, "key refused")
    picks = firsts(selector, TRIO, health, 6)
    assert Counter(picks) == {"b": 3, "c": 3}


def test_health_first_falls_back_to_the_next_priority_group() -> None:
    selector, health = Selector(), HealthTracker()
    candidates = [
        Candidate("backup", priority=1),
        Candidate("p1", priority=0),
        Candidate("p2", priority=0),
        Candidate("last", priority=5),
    ]
    ordered = ids(selector.order(candidates, health, 0.0))
    assert sorted(ordered[:2]) == ["p1", "p2"]
    assert ordered[2:] == ["backup", "last"]
    health.record_rate_limited("p1", 0.0, retry_after=10.0)
    open_circuit(health, "p2", 0.0)
    assert ids(selector.order(candidates, health, 1.0)) == ["backup", "last"]
    assert sorted(ids(selector.order(candidates, health, 10.0))[:2]) == ["p1", "p2"]


def test_health_first_prefers_fewer_in_flight() -> None:
    selector, health = Selector(), HealthTracker()
    pair = [Candidate("a"), Candidate("b")]
    health.begin_request("a")
    health.begin_request("a")
    assert firsts(selector, pair, health, 4) == ["b"] * 4
    assert ids(selector.order(pair, health, 0.0)) == ["b", "a"]


def test_health_first_weighs_in_flight_by_weight() -> None:
    selector, health = Selector(), HealthTracker()
    pair = [Candidate("big", weight=4), Candidate("small", weight=1)]
    for _ in range(3):
        health.begin_request("big")  # 3 / 4 per unit of weight
    health.begin_request("small")  # 1 / 1
    assert ids(selector.order(pair, health, 0.0)) == ["big", "small"]
    health.begin_request("big")  # 4 / 4 ties with 1 / 1: round-robin decides
    assert Counter(firsts(selector, pair, health, 5)) == {"big": 4, "small": 1}


def test_priority_strategy_is_strict_and_stable() -> None:
    selector, health = Selector(), HealthTracker()
    candidates = [
        Candidate("c", priority=2),
        Candidate("a", priority=1, weight=9),
        Candidate("b", priority=1),
        Candidate("z", priority=-1),
    ]
    for _ in range(3):
        order = selector.order(candidates, health, 0.0, strategy=Strategy.PRIORITY)
        assert ids(order) == ["z", "a", "b", "c"]
    open_circuit(health, "z", 0.0)
    order = selector.order(candidates, health, 0.0, strategy=Strategy.PRIORITY)
    assert ids(order) == ["a", "b", "c"]


def test_round_robin_ignores_weights_and_rotates() -> None:
    selector, health = Selector(), HealthTracker()
    orders = [
        ids(selector.order(TRIO, health, 0.0, strategy=Strategy.ROUND_ROBIN)) for _ in range(4)
    ]
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


def test_round_robin_skips_unavailable_evenly() -> None:
    selector, health = Selector(), HealthTracker()
    health.record_rate_limited("b", 0.0, retry_after=100.0)
    picks = firsts(selector, TRIO, health, 6, Strategy.ROUND_ROBIN)
    assert picks == ["a", "c", "a", "c", "a", "c"]


def test_weighted_spans_priorities() -> None:
    selector, health = Selector(), HealthTracker()
    candidates = [Candidate("low", priority=0, weight=1), Candidate("high", priority=9, weight=3)]
    picks = firsts(selector, candidates, health, 8, Strategy.WEIGHTED)
    assert Counter(picks) == {"high": 6, "low": 2}
    order = selector.order(candidates, health, 0.0, strategy=Strategy.WEIGHTED)
    assert sorted(ids(order)) == ["high", "low"]


def test_least_latency_learns_unknown_first_then_fastest() -> None:
    selector, health = Selector(), HealthTracker()
    candidates = [Candidate("slow"), Candidate("fast"), Candidate("new"), Candidate("mid")]
    health.record_success("slow", 0.0, latency=3.0)
    health.record_success("fast", 0.0, latency=0.2)
    health.record_success("mid", 0.0, latency=1.0)
    order = selector.order(candidates, health, 0.0, strategy=Strategy.LEAST_LATENCY)
    assert ids(order) == ["new", "fast", "mid", "slow"]
    health.record_success("new", 0.0, latency=5.0)
    order = selector.order(candidates, health, 0.0, strategy=Strategy.LEAST_LATENCY)
    assert ids(order) == ["fast", "mid", "slow", "new"]


def test_half_open_account_is_offered_while_its_probe_slot_is_free() -> None:
    selector = Selector()
    health = HealthTracker(HealthPolicy(open_base=10.0))
    pair = [Candidate("sick", priority=0), Candidate("ok", priority=1)]
    open_circuit(health, "sick", 0.0)
    assert ids(selector.order(pair, health, 5.0)) == ["ok"]
    assert ids(selector.order(pair, health, 10.0)) == ["sick", "ok"]
    assert health.try_acquire_probe("sick", 10.0)
    assert ids(selector.order(pair, health, 10.0)) == ["ok"]


@pytest.mark.parametrize("strategy", list(Strategy))
def test_all_unavailable_gives_an_empty_list(strategy: Strategy) -> None:
    selector = Selector()
    health = HealthTracker(HealthPolicy(open_base=10.0))
    health.record_rate_limited("a", 0.0, retry_after=30.0)
    open_circuit(health, "b", 0.0)
    health.record_auth_failure("c", 0.0, "key refused")
    assert selector.order(TRIO, health, 1.0, strategy=strategy, session="s") == []
    assert soonest_available(TRIO, health, 1.0) == 10.0


def test_soonest_available() -> None:
    health = HealthTracker()
    health.record_rate_limited("a", 0.0, retry_after=30.0)
    health.record_rate_limited("b", 0.0, retry_after=12.0)
    pair = [Candidate("a"), Candidate("b")]
    assert soonest_available(pair, health, 1.0) == 12.0
    assert soonest_available([*pair, Candidate("fresh")], health, 1.0) == 1.0
    health.record_auth_failure("c", 0.0, "key refused")
    # rejected credentials are checked again after HealthPolicy.auth_base (60 s)
    assert soonest_available([Candidate("c")], health, 1.0) == 60.0
    assert health.try_acquire_probe("c", 60.0)  # the check is out: no time to name
    assert soonest_available([Candidate("c")], health, 61.0) is None
    assert soonest_available([], health, 1.0) is None


def test_sticky_session_goes_first_while_available() -> None:
    selector, health = Selector(sticky_ttl=60.0), HealthTracker()
    selector.remember("conv-1", "c", 0.0)
    for _ in range(7):
        assert ids(selector.order(TRIO, health, 1.0, session="conv-1"))[0] == "c"
    # Pinned requests leave the rotation alone: others still get a a b a c a a.
    assert firsts(selector, TRIO, health, 7) == ["a", "a", "b", "a", "c", "a", "a"]
    assert ids(selector.order(TRIO, health, 1.0, session="other"))[0] == "a"
    health.record_rate_limited("c", 2.0, retry_after=5.0)
    order = ids(selector.order(TRIO, health, 3.0, session="conv-1"))
    assert "c" not in order
    assert ids(selector.order(TRIO, health, 7.0, session="conv-1"))[0] == "c"


def test_sticky_session_expires_and_can_be_forgotten() -> None:
    selector, health = Selector(sticky_ttl=60.0), HealthTracker()
    selector.remember("conv-1", "c", 0.0)
    assert ids(selector.order(TRIO, health, 59.9, session="conv-1"))[0] == "c"
    assert ids(selector.order(TRIO, health, 60.0, session="conv-1"))[0] == "a"
    assert selector.sticky_account("conv-1", 60.0) is None
    selector.remember("conv-2", "b", 0.0)
    selector.forget_session("conv-2")
    assert selector.sticky_account("conv-2", 1.0) is None


def test_sticky_account_outside_the_candidates_is_ignored() -> None:
    selector, health = Selector(), HealthTracker()
    selector.remember("conv-1", "elsewhere", 0.0)
    assert sorted(ids(selector.order(TRIO, health, 1.0, session="conv-1"))) == ["a", "b", "c"]


def test_sticky_map_is_capped_least_recently_used_first() -> None:
    selector = Selector(sticky_max=2)
    selector.remember("s1", "a", 0.0)
    selector.remember("s2", "b", 0.0)
    assert selector.sticky_account("s1", 1.0) == "a"  # s1 is now the most recent
    selector.remember("s3", "c", 2.0)
    assert selector.sticky_account("s2", 3.0) is None
    assert selector.sticky_account("s1", 3.0) == "a"
    assert selector.sticky_account("s3", 3.0) == "c"


def test_repeated_account_counts_once() -> None:
    selector, health = Selector(), HealthTracker()
    candidates = [Candidate("a"), Candidate("a", priority=7), Candidate("b")]
    assert sorted(ids(selector.order(candidates, health, 0.0))) == ["a", "b"]


def test_group_state_is_bounded() -> None:
    selector, health = Selector(max_groups=4), HealthTracker()
    for i in range(50):
        selector.order([Candidate(f"x{i}"), Candidate(f"y{i}")], health, 0.0)
    assert len(selector._current) <= 4


def test_candidate_weight_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Candidate("a", weight=0)


@pytest.mark.parametrize(
    ("patterns", "model", "expected"),
    [
        (["claude-*"], "claude-sonnet-4-5", True),
        (["claude-*"], "Claude-sonnet-4-5", False),
        (["gpt-4o"], "gpt-4o", True),
        (["gpt-4o"], "gpt-4o-mini", False),
        (["gpt-?o"], "gpt-4o", True),
        (["gpt-[34]*"], "gpt-3.5-turbo", True),
        (["gpt-[!34]*"], "gpt-3.5-turbo", False),
        (["o1", "claude-*", "gpt-*"], "gpt-5", True),
        (["*"], "", True),
        ([], "gpt-4o", False),
    ],
)
def test_matches(patterns: list[str], model: str, expected: bool) -> None:
    assert matches(patterns, model) is expected


_GLOB = st.text(alphabet="ab*?[]!-.", max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.lists(_GLOB, max_size=4), st.text(alphabet="ab-.\n[]", max_size=8))
def test_matches_agrees_with_fnmatchcase(patterns: list[str], model: str) -> None:
    assert matches(patterns, model) == any(fnmatchcase(model, p) for p in patterns)


def test_fallback_groups_rotate_only_when_they_lead() -> None:
    selector, health = Selector(), HealthTracker()
    candidates = [Candidate("p"), Candidate("f1", priority=1), Candidate("f2", priority=1)]
    for _ in range(5):
        assert ids(selector.order(candidates, health, 0.0)) == ["p", "f1", "f2"]
    health.record_auth_failure("p", 0.0, "key refused")
    assert firsts(selector, candidates, health, 4) == ["f1", "f2", "f1", "f2"]


def test_a_new_session_lands_on_the_same_account_in_every_process() -> None:
    """Two selectors (two workers) with different histories agree on each session's
    account, and on where it moves when that account is out; sessions spread by weight."""
    pool = [Candidate("a", weight=3), Candidate("b"), Candidate("c"), Candidate("low", 1)]
    busy, fresh, health = Selector(), Selector(), HealthTracker()
    for _ in range(5):  # one worker has served other requests, the other none
        busy.order(pool, health, 1.0)
    firsts: list[str] = []
    for n in range(400):
        session = f"conversation-{n}"
        mine = ids(busy.order(pool, health, 1.0, session=session))
        theirs = ids(fresh.order(pool, health, 1.0, session=session))
        assert mine == theirs, session
        assert mine[-1] == "low"  # the fallback group comes last
        firsts.append(mine[0])
    assert 0.45 < firsts.count("a") / 400 < 0.75  # weight 3 of 5
    assert firsts.count("b") > 40 and firsts.count("c") > 40
    out = HealthTracker()
    out.record_rate_limited("a", 0.0, retry_after=30.0)
    for n in range(50):
        session = f"conversation-{n}"
        moved = ids(busy.order(pool, out, 1.0, session=session))
        assert moved == ids(fresh.order(pool, out, 1.0, session=session))
        assert moved == [i for i in ids(fresh.order(pool, health, 1.0, session=session)) if i != "a"]
