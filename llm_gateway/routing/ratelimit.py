"""Per-gateway-key request and token limits, as token buckets.

Theory of operation: each gateway key may carry ``KeyLimits``: requests per
minute (``rpm``) and tokens per minute (``tpm``). Each limit is a bucket that
holds up to ``limit`` units and refills continuously at ``limit / 60`` units
per second, starting full. So a key limited to 5 rpm gets exactly 5 of 8
requests sent at once, and one more every 12 seconds after that.

* ``check_request`` is called when a request arrives. It is allowed when the
  request bucket holds at least one unit and the token bucket is not empty
  (at least one unit); an allowed request takes one unit from the request
  bucket. A denied request takes nothing.
* ``record_tokens`` is called after the response, with the tokens its usage
  reports; they are taken from the token bucket, which may go negative. A
  negative bucket denies requests until it has refilled past one unit: a key
  that used a minute's worth of tokens in one burst waits about a minute. The
  debt is capped at one minute's budget, so an absurd usage report (an
  upstream's bug) locks a key out for two minutes at most, never for ever.

Every ``Decision`` carries OpenAI-style headers for the client:
``x-ratelimit-{limit,remaining,reset}-requests`` when ``rpm`` is set and
``x-ratelimit-{limit,remaining,reset}-tokens`` when ``tpm`` is set, where
``remaining`` is the whole units left (never negative) and ``reset`` the time
until the bucket is full again, as a Go-style duration (``12s``, ``1m0s``).
A denied decision adds ``retry-after``: whole seconds until the request would
be allowed, rounded up, at least 1.

Memory stays bounded: a bucket that has refilled completely is identical to
one that was never created, so full buckets are dropped (``prune``, run
automatically as the table grows). Time is always passed in.

The arithmetic (``Bucket``, ``fit``, ``take``, ``charge``; ``decide`` for the headers) is separate from
the table that holds the buckets, so a store shared between processes
(``state/shared_buckets.py``) loads a key's two buckets, applies the same
functions and writes them back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from llm_gateway.routing.retry_headers import format_duration

__all__ = [
    "Bucket",
    "Decision",
    "KeyLimits",
    "RateLimiter",
    "admit",
    "charge",
    "decide",
    "fit",
    "take",
]

_SECONDS_PER_MINUTE = 60.0
# Refills add up in floating point and can land a hair under a whole number
# (0.9999999999999987 for 1); counts within this of a whole unit are that unit.
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """A gateway key's limits; None means unlimited."""

    rpm: int | None = None
    tpm: int | None = None

    def __post_init__(self) -> None:
        for name, value in (("rpm", self.rpm), ("tpm", self.tpm)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 or unset")


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a request may proceed, and the headers to tell the client."""

    allowed: bool
    retry_after: float  # seconds until it would be allowed; 0.0 when allowed
    headers: list[tuple[str, str]]


@dataclass(slots=True)
class Bucket:
    capacity: float
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        if now > self.updated:
            gained = (now - self.updated) * self.capacity / _SECONDS_PER_MINUTE
            self.tokens = min(self.capacity, self.tokens + gained)
            self.updated = now

    def wait_for(self, amount: float) -> float:
        missing = amount - self.tokens
        return max(0.0, missing * _SECONDS_PER_MINUTE / self.capacity)

    def has_one(self) -> bool:
        return self.tokens + _EPSILON >= 1.0

    def is_full(self) -> bool:
        return self.tokens >= self.capacity

    def remaining(self) -> int:
        return max(0, math.floor(self.tokens + _EPSILON))

    def reset_after(self) -> float:
        return self.wait_for(self.capacity)


class RateLimiter:
    """Token buckets for every gateway key that has limits."""

    def __init__(self, *, prune_threshold: int = 1024) -> None:
        if prune_threshold < 1:
            raise ValueError("prune_threshold must be positive")
        self._min_prune = prune_threshold
        self._next_prune = prune_threshold
        self._requests: dict[str, Bucket] = {}
        self._tokens: dict[str, Bucket] = {}

    def check_request(self, key_id: str, limits: KeyLimits, now: float) -> Decision:
        """Admit or deny one request; an admitted one uses a request unit."""
        requests = self._bucket(self._requests, key_id, limits.rpm, now)
        tokens = self._bucket(self._tokens, key_id, limits.tpm, now)
        decision = admit(requests, tokens, limits)
        self._maybe_prune(now)
        return decision

    def record_tokens(self, key_id: str, limits: KeyLimits, tokens: int, now: float) -> None:
        """Charge the tokens a response used; the bucket may go negative."""
        if tokens <= 0:
            return
        bucket = self._bucket(self._tokens, key_id, limits.tpm, now)
        if bucket is not None:
            charge(bucket, tokens)
            self._maybe_prune(now)

    def prune(self, now: float) -> int:
        """Drop every bucket that has refilled completely; returns how many went."""
        dropped = 0
        for table in (self._requests, self._tokens):
            for key_id in list(table):
                bucket = table[key_id]
                bucket.refill(now)
                if bucket.is_full():
                    del table[key_id]
                    dropped += 1
        return dropped

    def forget(self, key_id: str) -> None:
        """Drop a key's buckets (the key was deleted or its limits reset)."""
        self._requests.pop(key_id, None)
        self._tokens.pop(key_id, None)

    def __len__(self) -> int:
        """How many buckets are held (for tests and metrics)."""
        return len(self._requests) + len(self._tokens)

    def _bucket(
        self, table: dict[str, Bucket], key_id: str, limit: int | None, now: float
    ) -> Bucket | None:
        bucket = fit(table.get(key_id), limit, now)
        if bucket is None:
            table.pop(key_id, None)
        else:
            table[key_id] = bucket
        return bucket

    def _maybe_prune(self, now: float) -> None:
        if len(self) > self._next_prune:
            self.prune(now)
            self._next_prune = max(self._min_prune, 2 * len(self))


def fit(bucket: Bucket | None, limit: int | None, now: float) -> Bucket | None:
    """``bucket`` refilled to ``now`` (a full new one if None); None when unlimited."""
    if limit is None:
        return None
    if bucket is None:
        return Bucket(capacity=float(limit), tokens=float(limit), updated=now)
    bucket.refill(now)
    if bucket.capacity != limit:  # the limit changed under a running bucket
        bucket.capacity = float(limit)
        bucket.tokens = min(bucket.tokens, bucket.capacity)
    return bucket


def admit(requests: Bucket | None, tokens: Bucket | None, limits: KeyLimits) -> Decision:
    """Admit or deny one request against refilled buckets; an admitted one uses a unit."""
    allowed, retry_after = take(requests, tokens)
    return decide(requests, tokens, limits, allowed, retry_after)


def take(requests: Bucket | None, tokens: Bucket | None) -> tuple[bool, float]:
    """The arithmetic of ``admit``: whether allowed (then a unit is taken), and the wait."""
    waits = [b.wait_for(1.0) for b in (requests, tokens) if b is not None and not b.has_one()]
    allowed = not waits
    if allowed and requests is not None:
        requests.tokens -= 1.0
    return allowed, max(waits, default=0.0)


def decide(
    requests: Bucket | None,
    tokens: Bucket | None,
    limits: KeyLimits,
    allowed: bool,
    retry_after: float,
) -> Decision:
    """The ``Decision`` for the buckets as ``take`` left them, headers included."""
    headers = _headers("requests", limits.rpm, requests) + _headers("tokens", limits.tpm, tokens)
    if not allowed:
        headers.append(("retry-after", str(max(1, math.ceil(retry_after)))))
    return Decision(allowed=allowed, retry_after=retry_after, headers=headers)


def charge(bucket: Bucket, tokens: int) -> None:
    """Take a response's tokens from a refilled bucket; the debt is capped at one minute's."""
    # min() first: ``tokens`` may be an int too large for a float
    charged = min(tokens, 2 * bucket.capacity)
    bucket.tokens = max(bucket.tokens - charged, -bucket.capacity)


def _headers(kind: str, limit: int | None, bucket: Bucket | None) -> list[tuple[str, str]]:
    if limit is None or bucket is None:
        return []
    return [
        (f"x-ratelimit-limit-{kind}", str(limit)),
        (f"x-ratelimit-remaining-{kind}", str(bucket.remaining())),
        (f"x-ratelimit-reset-{kind}", format_duration(bucket.reset_after())),
    ]
