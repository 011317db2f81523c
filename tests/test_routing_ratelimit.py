"""Per-gateway-key token buckets, over simulated time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.routing.ratelimit import Decision, KeyLimits, RateLimiter

KEY = "key_1"


def header(decision: Decision, name: str) -> str | None:
    values = [v for n, v in decision.headers if n == name]
    assert len(values) <= 1
    return values[0] if values else None


def test_five_rpm_admits_exactly_five_of_eight_quick_requests() -> None:
    limiter, limits = RateLimiter(), KeyLimits(rpm=5)
    decisions = [limiter.check_request(KEY, limits, 1000.0 + i * 0.01) for i in range(8)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3


def test_allowed_headers_are_byte_exact() -> None:
    limiter = RateLimiter()
    decision = limiter.check_request(KEY, KeyLimits(rpm=5), 0.0)
    assert decision == Decision(
        allowed=True,
        retry_after=0.0,
        headers=[
            ("x-ratelimit-limit-requests", "5"),
            ("x-ratelimit-remaining-requests", "4"),
            ("x-ratelimit-reset-requests", "12s"),
        ],
    )


def test_denied_headers_carry_retry_after() -> None:
    limiter, limits = RateLimiter(), KeyLimits(rpm=5)
    for _ in range(5):
        assert limiter.check_request(KEY, limits, 0.0).allowed
    denied = limiter.check_request(KEY, limits, 0.0)
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(12.0)
    assert denied.headers == [
        ("x-ratelimit-limit-requests", "5"),
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-reset-requests", "1m0s"),
        ("retry-after", "12"),
    ]


def test_retry_after_header_rounds_up_and_is_at_least_one() -> None:
    limiter, limits = RateLimiter(), KeyLimits(rpm=5)
    for _ in range(5):
        limiter.check_request(KEY, limits, 0.0)
    partway = limiter.check_request(KEY, limits, 6.5)
    assert partway.retry_after == pytest.approx(5.5)
    assert header(partway, "retry-after") == "6"
    almost = limiter.check_request(KEY, limits, 11.95)
    assert not almost.allowed
    assert almost.retry_after == pytest.approx(0.05)
    assert header(almost, "retry-after") == "1"


def test_refill_admits_one_more_every_twelve_seconds() -> None:
    limiter, limits = RateLimiter(), KeyLimits(rpm=5)
    for _ in range(5):
        limiter.check_request(KEY, limits, 0.0)
    assert not limiter.check_request(KEY, limits, 11.9).allowed
    assert limiter.check_request(KEY, limits, 12.0).allowed
    assert not limiter.check_request(KEY, limits, 12.0).allowed
    assert limiter.check_request(KEY, limits, 24.0).allowed


def test_a_full_minute_refills_completely_and_no_further() -> None:
    limiter, limits = RateLimiter(), KeyLimits(rpm=5)
    for _ in range(5):
        limiter.check_request(KEY, limits, 0.0)
    later = [limiter.check_request(KEY, limits, 600.0).allowed for _ in range(8)]
    assert later == [True] * 5 + [False] * 3


def test_denied_requests_consume_nothing() -> None:
    limiter, limits = RateLimiter(), KeyLimits(rpm=5)
    for _ in range(5):
        limiter.check_request(KEY, limits, 0.0)
    for i in range(20):
        assert not limiter.check_request(KEY, limits, i * 0.5).allowed
    assert limiter.check_request(KEY, limits, 12.0).allowed


def test_keys_are_independent() -> None:
    limiter, limits = RateLimiter(), KeyLimits(rpm=1)
    assert limiter.check_request("k1", limits, 0.0).allowed
    assert not limiter.check_request("k1", limits, 0.0).allowed
    assert limiter.check_request("k2", limits, 0.0).allowed


def test_no_limits_means_no_headers() -> None:
    decision = RateLimiter().check_request(KEY, KeyLimits(), 0.0)
    assert decision == Decision(allowed=True, retry_after=0.0, headers=[])


def test_checks_do_not_spend_tokens() -> None:
    limiter, limits = RateLimiter(), KeyLimits(tpm=1000)
    for _ in range(50):
        decision = limiter.check_request(KEY, limits, 0.0)
        assert decision.allowed
    assert decision.headers == [
        ("x-ratelimit-limit-tokens", "1000"),
        ("x-ratelimit-remaining-tokens", "1000"),
        ("x-ratelimit-reset-tokens", "0s"),
    ]


def test_tpm_counts_real_tokens_and_blocks_when_overdrawn() -> None:
    limiter, limits = RateLimiter(), KeyLimits(tpm=1000)
    assert limiter.check_request(KEY, limits, 0.0).allowed
    limiter.record_tokens(KEY, limits, 400, 0.0)
    decision = limiter.check_request(KEY, limits, 0.0)
    assert decision.allowed
    assert header(decision, "x-ratelimit-remaining-tokens") == "600"
    assert header(decision, "x-ratelimit-reset-tokens") == "24s"
    limiter.record_tokens(KEY, limits, 1100, 0.0)  # 500 in debt
    denied = limiter.check_request(KEY, limits, 0.0)
    assert not denied.allowed
    # Refilling 1000/min, the bucket holds one token again after 501 * 60 / 1000 s.
    assert denied.retry_after == pytest.approx(30.06)
    assert denied.headers == [
        ("x-ratelimit-limit-tokens", "1000"),
        ("x-ratelimit-remaining-tokens", "0"),
        ("x-ratelimit-reset-tokens", "1m30s"),
        ("retry-after", "31"),
    ]
    assert not limiter.check_request(KEY, limits, 30.0).allowed
    assert limiter.check_request(KEY, limits, 30.06).allowed


def test_both_limits_report_and_the_longer_wait_wins() -> None:
    limiter, limits = RateLimiter(), KeyLimits(rpm=60, tpm=600)
    assert limiter.check_request(KEY, limits, 0.0).allowed
    limiter.record_tokens(KEY, limits, 700, 0.0)
    denied = limiter.check_request(KEY, limits, 0.0)
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(10.1)
    assert [name for name, _ in denied.headers] == [
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
        "retry-after",
    ]
    assert header(denied, "x-ratelimit-remaining-requests") == "59"
    assert header(denied, "retry-after") == "11"


@pytest.mark.parametrize("reported", [10**6, 10**20, 10**400])
def test_an_absurd_usage_report_locks_a_key_out_for_two_minutes_at_most(reported: int) -> None:
    limiter, limits = RateLimiter(), KeyLimits(tpm=1000)
    assert limiter.check_request(KEY, limits, 0.0).allowed
    limiter.record_tokens(KEY, limits, reported, 0.0)  # 10**400 does not fit a float
    denied = limiter.check_request(KEY, limits, 0.0)
    assert not denied.allowed
    # at most one minute's budget in debt: one token again after 1001 * 60 / 1000 s
    assert denied.retry_after == pytest.approx(60.06)
    assert header(denied, "retry-after") == "61"
    assert limiter.check_request(KEY, limits, 60.06).allowed


def test_record_tokens_without_tpm_is_ignored() -> None:
    limiter, limits = RateLimiter(), KeyLimits(rpm=5)
    limiter.record_tokens(KEY, limits, 10**9, 0.0)
    assert limiter.check_request(KEY, limits, 0.0).allowed


def test_lowering_a_limit_clamps_the_running_bucket() -> None:
    limiter = RateLimiter()
    limiter.check_request(KEY, KeyLimits(rpm=100), 0.0)
    decisions = [limiter.check_request(KEY, KeyLimits(rpm=2), 0.0) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]


def test_full_buckets_are_dropped() -> None:
    limiter, limits = RateLimiter(prune_threshold=10_000), KeyLimits(rpm=5, tpm=100)
    for i in range(300):
        limiter.check_request(f"key{i}", limits, 0.0)
    assert len(limiter) == 600
    assert limiter.prune(6.0) == 300  # token buckets were never drawn on
    assert len(limiter) == 300
    assert limiter.prune(11.9) == 0
    assert limiter.prune(12.0) == 300
    assert len(limiter) == 0


def test_pruning_runs_by_itself_as_the_table_grows() -> None:
    limiter, limits = RateLimiter(prune_threshold=16), KeyLimits(rpm=5)
    for i in range(1000):
        limiter.check_request(f"key{i}", limits, i * 60.0)
    assert len(limiter) <= 32


def test_forget() -> None:
    limiter, limits = RateLimiter(), KeyLimits(rpm=1)
    limiter.check_request(KEY, limits, 0.0)
    limiter.forget(KEY)
    assert limiter.check_request(KEY, limits, 0.0).allowed


@pytest.mark.parametrize("fields", [{"rpm": 0}, {"tpm": 0}, {"rpm": -5}])
def test_limits_must_be_positive(fields: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        KeyLimits(**fields)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(min_value=1, max_value=30),
    st.lists(st.floats(min_value=0.0, max_value=5.0), min_size=1, max_size=120),
)
def test_never_more_than_capacity_plus_refill(rpm: int, gaps: list[float]) -> None:
    limiter, limits = RateLimiter(), KeyLimits(rpm=rpm)
    now, admitted = 0.0, []
    for gap in gaps:
        now += gap
        if limiter.check_request(KEY, limits, now).allowed:
            admitted.append(now)
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            window = admitted[j] - start
            assert j - i + 1 <= rpm + window * rpm / 60.0 + 1e-6


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=30), st.integers(min_value=1, max_value=200))
def test_a_burst_gets_exactly_the_limit(rpm: int, burst: int) -> None:
    limiter, limits = RateLimiter(), KeyLimits(rpm=rpm)
    allowed = sum(limiter.check_request(KEY, limits, 5.0).allowed for _ in range(burst))
    assert allowed == min(rpm, burst)
