"""Upstream retry-after and rate-limit reset headers, in each provider's dialect."""

from __future__ import annotations

import calendar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.routing.health import retry_after_from_headers
from llm_gateway.routing.retry_headers import format_duration, parse_duration, parse_rfc3339

# 2025-08-21T12:40:00Z, a moment from Anthropic's documented header examples.
NOW = float(calendar.timegm((2025, 8, 21, 12, 40, 0, 0, 0, 0)))


def test_retry_after_seconds() -> None:
    assert retry_after_from_headers({"retry-after": "7"}, NOW) == 7.0
    assert retry_after_from_headers({"Retry-After": " 1.5 "}, NOW) == 1.5
    assert retry_after_from_headers([("RETRY-AFTER", "0")], NOW) == 0.0


def test_retry_after_http_date() -> None:
    headers = {"retry-after": "Thu, 21 Aug 2025 12:40:30 GMT"}
    assert retry_after_from_headers(headers, NOW) == 30.0
    past = {"retry-after": "Thu, 21 Aug 2025 12:39:00 GMT"}
    assert retry_after_from_headers(past, NOW) == 0.0


def test_retry_after_ms_wins_over_retry_after() -> None:
    headers = [("retry-after", "2"), ("retry-after-ms", "1250")]
    assert retry_after_from_headers(headers, NOW) == 1.25


def test_garbage_is_skipped_not_raised() -> None:
    assert retry_after_from_headers({"retry-after": "soon"}, NOW) is None
    assert retry_after_from_headers({"retry-after": "-5"}, NOW) is None
    assert retry_after_from_headers({"retry-after-ms": "nan", "retry-after": "3"}, NOW) == 3.0
    assert retry_after_from_headers({"retry-after": "1e3"}, NOW) is None
    assert retry_after_from_headers({"x-ratelimit-reset-requests": "6 minutes"}, NOW) is None
    assert retry_after_from_headers({"anthropic-ratelimit-tokens-reset": "tomorrow"}, NOW) is None


def test_no_relevant_headers() -> None:
    assert retry_after_from_headers({}, NOW) is None
    assert retry_after_from_headers([("content-type", "application/json")], NOW) is None


def test_first_of_repeated_headers_wins() -> None:
    assert retry_after_from_headers([("retry-after", "4"), ("Retry-After", "9")], NOW) == 4.0


def test_explicit_retry_after_wins_over_reset_headers() -> None:
    headers = {
        "retry-after": "3",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2025-08-21T12:41:00Z",
    }
    assert retry_after_from_headers(headers, NOW) == 3.0


@pytest.mark.parametrize(
    "kind", ["requests", "tokens", "input-tokens", "output-tokens"], ids=lambda k: k
)
def test_anthropic_reset_headers(kind: str) -> None:
    headers = {f"anthropic-ratelimit-{kind}-reset": "2025-08-21T12:40:59Z"}
    assert retry_after_from_headers(headers, NOW) == 59.0


def test_anthropic_reset_in_the_past_means_now() -> None:
    headers = {"anthropic-ratelimit-requests-reset": "2025-08-21T12:39:59Z"}
    assert retry_after_from_headers(headers, NOW) == 0.0


def test_anthropic_exhausted_limit_decides() -> None:
    headers = {
        "anthropic-ratelimit-requests-limit": "1000",
        "anthropic-ratelimit-requests-remaining": "999",
        "anthropic-ratelimit-requests-reset": "2025-08-21T12:40:01Z",
        "anthropic-ratelimit-input-tokens-limit": "80000",
        "anthropic-ratelimit-input-tokens-remaining": "0",
        "anthropic-ratelimit-input-tokens-reset": "2025-08-21T12:40:20Z",
        "anthropic-ratelimit-output-tokens-remaining": "0",
        "anthropic-ratelimit-output-tokens-reset": "2025-08-21T12:40:45Z",
    }
    assert retry_after_from_headers(headers, NOW) == 45.0


def test_without_remaining_counts_the_soonest_reset_is_used() -> None:
    headers = {
        "anthropic-ratelimit-requests-reset": "2025-08-21T12:40:10Z",
        "anthropic-ratelimit-tokens-reset": "2025-08-21T12:40:04Z",
    }
    assert retry_after_from_headers(headers, NOW) == 4.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("12ms", 0.012), ("1h2m3.5s", 3723.5)],
)
def test_openai_reset_durations(value: str, seconds: float) -> None:
    assert retry_after_from_headers({"x-ratelimit-reset-requests": value}, NOW) == pytest.approx(
        seconds
    )
    assert retry_after_from_headers({"x-ratelimit-reset-tokens": value}, NOW) == pytest.approx(
        seconds
    )


def test_openai_exhausted_limit_decides() -> None:
    headers = {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-limit-tokens": "150000",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    assert retry_after_from_headers(headers, NOW) == 360.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("3", 3.0),
        ("0s", 0.0),
        ("1.5s", 1.5),
        (".5s", 0.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("250us", 0.00025),
        ("250µs", 0.00025),
        ("100ns", 1e-7),
        ("1m30s", 90.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "-1s", "1x", "1s2", "one second", "1 s", "inf"])
def test_parse_duration_rejects(text: str) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2025-08-21T12:40:59Z", NOW + 59),
        ("2025-08-21t12:40:59z", NOW + 59),
        ("2025-08-21T12:40:59.25Z", NOW + 59.25),
        ("2025-08-21T14:40:59+02:00", NOW + 59),
        ("2025-08-21T11:40:59-01:00", NOW + 59),
        ("2016-12-31T23:59:60Z", float(calendar.timegm((2017, 1, 1, 0, 0, 0, 0, 0, 0)))),
    ],
)
def test_parse_rfc3339(text: str, epoch: float) -> None:
    assert parse_rfc3339(text) == pytest.approx(epoch)


@pytest.mark.parametrize(
    "text", ["2025-02-30T00:00:00Z", "2025-08-21T12:40:59", "2025-08-21", "yesterday"]
)
def test_parse_rfc3339_rejects(text: str) -> None:
    assert parse_rfc3339(text) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (-3.0, "0s"),
        (0.0001, "1ms"),
        (0.02, "20ms"),
        (0.999, "999ms"),
        (1.0, "1s"),
        (7.2, "7.2s"),
        (12.0, "12s"),
        (59.9996, "1m0s"),
        (90.0, "1m30s"),
        (360.0, "6m0s"),
        (3600.0, "1h0m0s"),
        (3723.5, "1h2m3.5s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0.001, max_value=1_000_000.0))
def test_format_then_parse_round_trips_to_the_millisecond(seconds: float) -> None:
    parsed = parse_duration(format_duration(seconds))
    assert parsed is not None
    assert abs(parsed - seconds) <= 0.0005 + 1e-9
