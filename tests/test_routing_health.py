"""The per-account circuit breaker, cooldowns and auth exclusion, over simulated time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.routing.health import (
    LATENCY_ALPHA,
    CircuitState,
    FailureKind,
    HealthPolicy,
    HealthTracker,
)

A = "acct-a"


def tripped(tracker: HealthTracker, now: float, kind: FailureKind = FailureKind.CONNECT) -> None:
    for _ in range(tracker.policy.failure_threshold):
        tracker.record_failure(A, now, kind)


def test_unknown_account_is_available_and_closed() -> None:
    tracker = HealthTracker()
    assert tracker.available(A, 0.0)
    assert tracker.try_acquire_probe(A, 0.0)
    snap = tracker.snapshot(A, 0.0)
    assert snap.state is CircuitState.CLOSED
    assert snap.available
    assert snap.consecutive_failures == 0
    assert snap.latency_ewma is None
    assert snap.last_error is None
    assert tracker.available_at(A, 5.0) == 5.0


def test_breaker_opens_after_threshold_consecutive_failures() -> None:
    tracker = HealthTracker(HealthPolicy(failure_threshold=3, open_base=10.0))
    tracker.record_failure(A, 100.0, FailureKind.TIMEOUT)
    tracker.record_failure(A, 101.0, FailureKind.SERVER_ERROR)
    assert tracker.available(A, 101.0)
    assert tracker.snapshot(A, 101.0).consecutive_failures == 2
    tracker.record_failure(A, 102.0, FailureKind.PROTOCOL)
    snap = tracker.snapshot(A, 102.0)
    assert snap.state is CircuitState.OPEN
    assert snap.open_until == 112.0
    assert snap.last_error is FailureKind.PROTOCOL
    assert snap.last_error_at == 102.0
    assert snap.total_failures == 3
    assert not tracker.available(A, 111.999)
    assert not tracker.try_acquire_probe(A, 111.999)
    assert tracker.available_at(A, 105.0) == 112.0


def test_success_resets_the_consecutive_count() -> None:
    tracker = HealthTracker(HealthPolicy(failure_threshold=3))
    for now in (1.0, 2.0):
        tracker.record_failure(A, now, FailureKind.CONNECT)
    tracker.record_success(A, 3.0, latency=0.5)
    for now in (4.0, 5.0):
        tracker.record_failure(A, now, FailureKind.CONNECT)
    snap = tracker.snapshot(A, 5.0)
    assert snap.state is CircuitState.CLOSED
    assert snap.consecutive_failures == 2
    assert tracker.available(A, 5.0)


def test_half_open_lets_exactly_one_probe() -> None:
    tracker = HealthTracker(HealthPolicy(open_base=10.0))
    tripped(tracker, 0.0)
    assert tracker.snapshot(A, 10.0).state is CircuitState.HALF_OPEN
    assert tracker.available(A, 10.0)  # the probe slot is free
    assert tracker.try_acquire_probe(A, 10.0)
    assert not tracker.try_acquire_probe(A, 10.0)
    assert not tracker.available(A, 11.0)
    assert not tracker.try_acquire_probe(A, 50.0)
    snap = tracker.snapshot(A, 11.0)
    assert snap.probe_in_flight
    assert not snap.available
    assert tracker.available_at(A, 11.0) is None  # waiting on the probe, not on time


def test_probe_success_closes_and_resets_the_cooldown() -> None:
    tracker = HealthTracker(HealthPolicy(open_base=10.0))
    tripped(tracker, 0.0)
    assert tracker.try_acquire_probe(A, 10.0)
    tracker.record_failure(A, 10.5, FailureKind.CONNECT)  # reopens for 20 s
    assert tracker.try_acquire_probe(A, 30.5)
    tracker.record_success(A, 31.0, latency=0.2)
    snap = tracker.snapshot(A, 31.0)
    assert snap.state is CircuitState.CLOSED
    assert snap.consecutive_failures == 0
    assert snap.open_until is None
    assert not snap.probe_in_flight
    assert tracker.try_acquire_probe(A, 31.0)
    assert tracker.try_acquire_probe(A, 31.0)  # closed: everyone may go
    tripped(tracker, 40.0)
    assert tracker.snapshot(A, 40.0).open_until == 50.0  # back to open_base


def test_probe_failure_reopens_with_doubled_cooldown_up_to_the_cap() -> None:
    tracker = HealthTracker(HealthPolicy(open_base=10.0, open_max=300.0))
    tripped(tracker, 0.0)
    now = tracker.snapshot(A, 0.0).open_until
    assert now == 10.0
    cooldowns = []
    for _ in range(7):
        assert tracker.try_acquire_probe(A, now)
        tracker.record_failure(A, now, FailureKind.SERVER_ERROR)
        snap = tracker.snapshot(A, now)
        assert snap.state is CircuitState.OPEN
        assert snap.open_until is not None
        cooldowns.append(snap.open_until - now)
        now = snap.open_until
    assert cooldowns == [20.0, 40.0, 80.0, 160.0, 300.0, 300.0, 300.0]


def test_overloaded_counts_like_a_server_error_but_only_for_a_while() -> None:
    tracker = HealthTracker(HealthPolicy(failure_threshold=2, open_base=10.0))
    tracker.record_failure(A, 0.0, FailureKind.OVERLOADED)
    tracker.record_failure(A, 0.0, FailureKind.OVERLOADED)
    assert not tracker.available(A, 5.0)
    assert tracker.snapshot(A, 5.0).last_error is FailureKind.OVERLOADED
    assert tracker.available(A, 10.0)
    assert tracker.try_acquire_probe(A, 10.0)
    tracker.record_success(A, 11.0, latency=1.0)
    assert tracker.snapshot(A, 11.0).state is CircuitState.CLOSED


def test_late_outcomes_while_open_change_nothing() -> None:
    tracker = HealthTracker(HealthPolicy(open_base=10.0))
    tripped(tracker, 0.0)
    tracker.record_success(A, 1.0, latency=0.1)  # sent before the circuit opened
    tracker.record_failure(A, 2.0, FailureKind.TIMEOUT)
    snap = tracker.snapshot(A, 2.0)
    assert snap.state is CircuitState.OPEN
    assert snap.open_until == 10.0
    assert snap.total_successes == 1
    assert snap.total_failures == 4
    assert not tracker.available(A, 9.0)


def test_lost_probe_lapses_after_the_lease() -> None:
    tracker = HealthTracker(HealthPolicy(open_base=10.0, probe_lease=60.0))
    tripped(tracker, 0.0)
    assert tracker.try_acquire_probe(A, 10.0)
    assert not tracker.try_acquire_probe(A, 69.9)
    assert tracker.try_acquire_probe(A, 70.0)


def test_release_probe_frees_the_slot_without_a_verdict() -> None:
    tracker = HealthTracker()
    tripped(tracker, 0.0)
    assert tracker.try_acquire_probe(A, 10.0)
    tracker.release_probe(A, 10.5)
    assert tracker.snapshot(A, 10.5).state is CircuitState.HALF_OPEN
    assert tracker.try_acquire_probe(A, 10.5)


def test_rate_limited_cools_down_for_retry_after() -> None:
    tracker = HealthTracker()
    tracker.record_rate_limited(A, 100.0, retry_after=5.0)
    assert not tracker.available(A, 104.9)
    assert not tracker.try_acquire_probe(A, 104.9)
    assert tracker.available_at(A, 101.0) == 105.0
    snap = tracker.snapshot(A, 101.0)
    assert snap.cooldown_until == 105.0
    assert snap.total_rate_limited == 1
    assert tracker.available(A, 105.0)
    assert tracker.snapshot(A, 105.0).cooldown_until is None


def test_rate_limited_without_retry_after_uses_the_default() -> None:
    tracker = HealthTracker(HealthPolicy(rate_limit_default=30.0))
    tracker.record_rate_limited(A, 0.0, retry_after=None)
    assert not tracker.available(A, 29.9)
    assert tracker.available(A, 30.0)


def test_rate_limit_cooldown_is_capped() -> None:
    tracker = HealthTracker(HealthPolicy(rate_limit_max=600.0))
    tracker.record_rate_limited(A, 0.0, retry_after=86_400.0)
    assert tracker.available_at(A, 0.0) == 600.0


def test_a_shorter_later_429_does_not_shorten_the_cooldown() -> None:
    tracker = HealthTracker()
    tracker.record_rate_limited(A, 0.0, retry_after=60.0)
    tracker.record_rate_limited(A, 1.0, retry_after=2.0)
    assert not tracker.available(A, 10.0)
    assert tracker.available_at(A, 10.0) == 60.0


def test_rate_limits_never_trip_the_breaker() -> None:
    tracker = HealthTracker(HealthPolicy(failure_threshold=2))
    for now in range(10):
        tracker.record_rate_limited(A, float(now), retry_after=0.5)
    snap = tracker.snapshot(A, 100.0)
    assert snap.state is CircuitState.CLOSED
    assert snap.consecutive_failures == 0
    assert snap.total_rate_limited == 10
    assert tracker.available(A, 100.0)


def test_rate_limited_probe_stays_half_open_and_frees_the_slot_after_cooldown() -> None:
    tracker = HealthTracker(HealthPolicy(open_base=10.0))
    tripped(tracker, 0.0)
    assert tracker.try_acquire_probe(A, 10.0)
    tracker.record_rate_limited(A, 10.0, retry_after=3.0)
    assert tracker.snapshot(A, 11.0).state is CircuitState.HALF_OPEN
    assert not tracker.available(A, 12.9)
    assert tracker.try_acquire_probe(A, 13.0)


def test_cooldown_and_open_circuit_wait_for_the_later_of_both() -> None:
    tracker = HealthTracker(HealthPolicy(open_base=10.0))
    tripped(tracker, 0.0)
    tracker.record_rate_limited(A, 0.0, retry_after=25.0)
    assert tracker.available_at(A, 1.0) == 25.0
    assert not tracker.available(A, 15.0)
    assert tracker.available(A, 25.0)


def test_auth_failure_excludes_until_cleared_without_touching_the_breaker() -> None:
    tracker = HealthTracker(HealthPolicy(failure_threshold=1, auth_base=60.0))
    tracker.record_auth_failure(A, 0.0, "upstream rejected the API key (401)")
    snap = tracker.snapshot(A, 1.0)
    assert snap.state is CircuitState.CLOSED
    assert snap.consecutive_failures == 0
    assert snap.total_failures == 0
    assert snap.total_auth_failures == 1
    assert snap.auth_error == "upstream rejected the API key (401)"
    assert snap.auth_until == 60.0
    assert not snap.available
    assert not tracker.try_acquire_probe(A, 59.9)
    assert tracker.available_at(A, 1.0) == 60.0
    tracker.clear_auth_failure(A)
    assert tracker.available(A, 2.0)
    assert tracker.snapshot(A, 2.0).auth_error is None


def test_rejected_credentials_are_checked_again_after_a_growing_bounded_time() -> None:
    tracker = HealthTracker(HealthPolicy(auth_base=60.0, auth_max=200.0))
    tracker.record_auth_failure(A, 0.0, "upstream answered 401")
    assert not tracker.available(A, 59.0)
    assert not tracker.auth_check_due(A, 59.0)
    # due: one check may go out, and only one
    assert tracker.auth_check_due(A, 60.0)
    assert tracker.try_acquire_probe(A, 60.0)
    assert not tracker.available(A, 60.5)
    assert not tracker.try_acquire_probe(A, 60.5)
    assert tracker.available_at(A, 60.5) is None
    # rejected again: out twice as long (120 s), then capped at auth_max
    tracker.record_auth_failure(A, 61.0, "upstream answered 401")
    assert tracker.snapshot(A, 61.0).auth_until == 181.0
    assert not tracker.available(A, 180.0)
    assert tracker.try_acquire_probe(A, 181.0)
    tracker.record_auth_failure(A, 181.0, "upstream answered 401")
    assert tracker.snapshot(A, 181.0).auth_until == 381.0  # 240 s capped at 200 s
    # a check without a verdict waits as long again; a success clears the mark
    assert tracker.try_acquire_probe(A, 381.0)
    tracker.postpone_auth_check(A, 382.0)
    assert not tracker.available(A, 581.0)
    assert tracker.try_acquire_probe(A, 582.0)
    tracker.record_success(A, 582.5, latency=0.1)
    snap = tracker.snapshot(A, 583.0)
    assert snap.available and snap.auth_error is None and snap.auth_until is None
    tracker.record_auth_failure(A, 600.0, "upstream answered 403")
    assert tracker.snapshot(A, 600.0).auth_until == 660.0  # the doubling starts over


def test_client_errors_never_count() -> None:
    tracker = HealthTracker(HealthPolicy(failure_threshold=1))
    for now in range(50):
        tracker.record_client_error(A, float(now))
    snap = tracker.snapshot(A, 50.0)
    assert snap.state is CircuitState.CLOSED
    assert snap.consecutive_failures == 0
    assert snap.total_failures == 0
    assert snap.last_error is None
    assert tracker.available(A, 50.0)


def test_client_error_on_a_probe_frees_the_slot_and_keeps_half_open() -> None:
    tracker = HealthTracker(HealthPolicy(open_base=10.0))
    tripped(tracker, 0.0)
    assert tracker.try_acquire_probe(A, 10.0)
    tracker.record_client_error(A, 10.5)
    snap = tracker.snapshot(A, 10.5)
    assert snap.state is CircuitState.HALF_OPEN
    assert snap.consecutive_failures == 3
    assert tracker.try_acquire_probe(A, 10.5)


def test_in_flight_counts_and_never_goes_negative() -> None:
    tracker = HealthTracker()
    tracker.begin_request(A)
    tracker.begin_request(A)
    assert tracker.snapshot(A, 0.0).in_flight == 2
    tracker.end_request(A)
    tracker.end_request(A)
    tracker.end_request(A)
    assert tracker.in_flight(A) == 0
    tracker.end_request("never-seen")
    assert tracker.in_flight("never-seen") == 0


def test_latency_ewma() -> None:
    tracker = HealthTracker()
    tracker.record_success(A, 0.0, latency=1.0)
    assert tracker.latency(A) == 1.0
    tracker.record_success(A, 1.0, latency=2.0)
    expected = 1.0 + LATENCY_ALPHA * (2.0 - 1.0)
    assert tracker.latency(A) == pytest.approx(expected)
    tracker.record_success(A, 2.0, latency=2.0)
    expected += LATENCY_ALPHA * (2.0 - expected)
    assert tracker.snapshot(A, 2.0).latency_ewma == pytest.approx(expected)
    assert tracker.snapshot(A, 2.0).total_successes == 3


def test_forget_drops_everything() -> None:
    tracker = HealthTracker()
    tracker.record_auth_failure(A, 0.0, "bad key")
    tracker.begin_request(A)
    tracker.forget(A)
    snap = tracker.snapshot(A, 1.0)
    assert snap.available
    assert snap.auth_error is None
    assert snap.in_flight == 0
    assert snap.total_auth_failures == 0


def test_accounts_are_independent() -> None:
    tracker = HealthTracker(HealthPolicy(failure_threshold=1))
    tracker.record_failure("x", 0.0, FailureKind.CONNECT)
    assert not tracker.available("x", 1.0)
    assert tracker.available("y", 1.0)


@pytest.mark.parametrize(
    "fields",
    [
        {"failure_threshold": 0},
        {"open_base": 0.0},
        {"open_base": 20.0, "open_max": 10.0},
        {"rate_limit_default": -1.0},
        {"rate_limit_default": 700.0, "rate_limit_max": 600.0},
        {"probe_lease": 0.0},
    ],
)
def test_policy_rejects_nonsense(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        HealthPolicy(**fields)  # type: ignore[arg-type]


_OPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["acquire", "success", "failure", "rate_limited", "client_error", "release", "auth"]
        ),
        st.floats(min_value=0.0, max_value=40.0),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(_OPS)
def test_never_two_concurrent_probes(ops: list[tuple[str, float]]) -> None:
    policy = HealthPolicy(failure_threshold=2, open_base=5.0, open_max=40.0, probe_lease=1e9)
    tracker = HealthTracker(policy)
    now = 0.0
    probe_out = False  # a probe was granted in HALF_OPEN and has no outcome yet
    for op, step in ops:
        now += step
        if op == "acquire":
            was_half_open = tracker.snapshot(A, now).state is CircuitState.HALF_OPEN
            granted = tracker.try_acquire_probe(A, now)
            if was_half_open and granted:
                assert not probe_out, "a second probe while one is pending"
                probe_out = True
        else:
            probe_out = False  # every outcome resolves a pending probe
            if op == "success":
                tracker.record_success(A, now, latency=0.1)
            elif op == "failure":
                tracker.record_failure(A, now, FailureKind.SERVER_ERROR)
            elif op == "rate_limited":
                tracker.record_rate_limited(A, now, retry_after=step)
            elif op == "client_error":
                tracker.record_client_error(A, now)
            elif op == "release":
                tracker.release_probe(A, now)
            else:
                tracker.record_auth_failure(A, now, "refused")
                tracker.clear_auth_failure(A)
        snap = tracker.snapshot(A, now)
        if snap.state is CircuitState.OPEN:
            assert snap.open_until is not None
            assert now < snap.open_until <= now + policy.open_max
            assert not snap.available


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_open_cooldown_stays_within_base_and_max(reopenings: int) -> None:
    policy = HealthPolicy(open_base=10.0, open_max=300.0)
    assert 10.0 <= policy.open_cooldown(reopenings) <= 300.0
