"""Reading an upstream's "come back later" headers; writing OpenAI-style durations.

Theory of operation: when an upstream answers 429 (or 529/503), it usually
says how long to wait, in one of several dialects. ``retry_after_from_headers``
turns whichever it finds into a delay in seconds from ``now_epoch`` (the
caller's wall clock, passed in; this module never reads a clock):

1. ``retry-after-ms``: milliseconds (OpenAI's SDKs honour it first, being the
   most precise).
2. ``retry-after``: delta-seconds or an HTTP-date (RFC 9110 section 10.2.3).
3. The per-limit reset headers, when no explicit retry delay was sent:

   * Anthropic: ``anthropic-ratelimit-{requests,tokens,input-tokens,
     output-tokens}-reset`` hold the RFC 3339 time at which that limit is
     fully replenished (for example ``2025-08-21T12:40:59Z``).
   * OpenAI: ``x-ratelimit-reset-{requests,tokens}`` hold the time until the
     limit resets, as a Go-style duration (``1s``, ``6m0s``, ``20ms``).

   A reset header only says when one limit refills; the one that matters is
   the limit that ran out. When a matching ``-remaining`` header reads 0, the
   longest delay among those exhausted limits is used; when none is marked
   exhausted, the soonest reset is used (a second 429 simply cools the account
   down again).

Unparseable values are skipped, never raised: a quirky header must not turn a
rate limit into a crash. Delays are never negative (a reset time in the past
means "now").

``format_duration`` writes the same Go-style durations, for the gateway's own
``x-ratelimit-reset-*`` headers; ``parse_duration`` reads them back.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime

__all__ = [
    "format_duration",
    "parse_duration",
    "parse_rfc3339",
    "retry_after_from_headers",
]

Headers = Mapping[str, str] | Sequence[tuple[str, str]]

# (reset header, matching remaining header, how the reset value is written)
_ABSOLUTE = "rfc3339"
_RELATIVE = "duration"
_RESET_HEADERS: tuple[tuple[str, str, str], ...] = (
    (
        "anthropic-ratelimit-requests-reset",
        "anthropic-ratelimit-requests-remaining",
        _ABSOLUTE,
    ),
    ("anthropic-ratelimit-tokens-reset", "anthropic-ratelimit-tokens-remaining", _ABSOLUTE),
    (
        "anthropic-ratelimit-input-tokens-reset",
        "anthropic-ratelimit-input-tokens-remaining",
        _ABSOLUTE,
    ),
    (
        "anthropic-ratelimit-output-tokens-reset",
        "anthropic-ratelimit-output-tokens-remaining",
        _ABSOLUTE,
    ),
    ("x-ratelimit-reset-requests", "x-ratelimit-remaining-requests", _RELATIVE),
    ("x-ratelimit-reset-tokens", "x-ratelimit-remaining-tokens", _RELATIVE),
)

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # micro sign
    "μs": 1e-6,  # Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?"
    r"(?:[Zz]|([+-])(\d{2}):(\d{2}))"
)


def retry_after_from_headers(headers: Headers, now_epoch: float) -> float | None:
    """The delay in seconds the upstream asks for, or None if it names none."""
    table = _lower_first(headers)

    millis = table.get("retry-after-ms")
    if millis is not None:
        number = _non_negative_number(millis)
        if number is not None:
            return number / 1000.0

    plain = table.get("retry-after")
    if plain is not None:
        delay = _parse_retry_after(plain, now_epoch)
        if delay is not None:
            return delay

    exhausted: list[float] = []
    others: list[float] = []
    for reset_name, remaining_name, style in _RESET_HEADERS:
        value = table.get(reset_name)
        if value is None:
            continue
        if style == _ABSOLUTE:
            moment = parse_rfc3339(value)
            delay = None if moment is None else max(0.0, moment - now_epoch)
        else:
            delay = parse_duration(value)
        if delay is None:
            continue
        remaining = _non_negative_number(table.get(remaining_name, ""))
        (exhausted if remaining == 0.0 else others).append(delay)
    if exhausted:
        return max(exhausted)
    if others:
        return min(others)
    return None


def parse_duration(text: str) -> float | None:
    """Seconds in a Go-style duration (``6m0s``, ``1.5s``, ``20ms``), or None.

    A bare number is read as seconds (some OpenAI-compatible servers send one).
    """
    text = text.strip()
    if not text:
        return None
    bare = _non_negative_number(text)
    if bare is not None:
        return bare
    total = 0.0
    position = 0
    while position < len(text):
        part = _DURATION_PART.match(text, position)
        if part is None:
            return None
        total += float(part.group(1)) * _UNIT_SECONDS[part.group(2)]
        position = part.end()
    return total if math.isfinite(total) else None


def format_duration(seconds: float) -> str:
    """A Go-style duration at millisecond resolution: ``0s``, ``20ms``, ``7.2s``, ``6m0s``.

    Any positive delay shorter than a millisecond is written as ``1ms``, so a
    non-zero wait never reads as zero.
    """
    if not seconds > 0.0:
        return "0s"
    if not math.isfinite(seconds):
        raise ValueError("duration must be finite")
    millis = max(1, round(seconds * 1000.0))
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, fraction = divmod(rest, 1000)
    secs = f"{whole}" if fraction == 0 else f"{whole}.{fraction:03d}".rstrip("0")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def parse_rfc3339(text: str) -> float | None:
    """Epoch seconds of an RFC 3339 timestamp (``2025-08-21T12:40:59Z``), or None.

    Written by hand because ``datetime.fromisoformat`` on Python 3.10 rejects
    the ``Z`` suffix and fractions that are not 3 or 6 digits long.
    """
    found = _RFC3339.fullmatch(text.strip())
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(found.group(i)) for i in range(1, 7))
    leap = 0
    if second == 60:  # a leap second: 23:59:60 is one second after 23:59:59
        second, leap = 59, 1
    try:
        moment = _dt.datetime(year, month, day, hour, minute, second, tzinfo=_dt.timezone.utc)
    except ValueError:
        return None
    epoch = moment.timestamp() + leap
    if found.group(7):
        epoch += float(found.group(7))
    if found.group(8):
        offset = int(found.group(9)) * 3600 + int(found.group(10)) * 60
        epoch -= offset if found.group(8) == "+" else -offset
    return epoch


def _parse_retry_after(value: str, now_epoch: float) -> float | None:
    seconds = _non_negative_number(value)
    if seconds is not None:
        return seconds
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC with no claim about local time
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return max(0.0, moment.timestamp() - now_epoch)


def _non_negative_number(text: str) -> float | None:
    """A plain finite decimal number >= 0, or None (no signs, exponents or words)."""
    text = text.strip()
    if not text or not all(ch.isdigit() or ch == "." for ch in text) or not text.isascii():
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _lower_first(headers: Headers) -> dict[str, str]:
    """Header names lower-cased; the first of repeated names wins."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    table: dict[str, str] = {}
    for name, value in pairs:
        table.setdefault(name.lower(), value)
    return table
