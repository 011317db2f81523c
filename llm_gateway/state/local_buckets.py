"""The per-key buckets of one process, behind the ``RateBuckets`` protocol.

Theory of operation: the in-process ``RateLimiter`` answers at once; this
wrapper only gives it the protocol's coroutine methods, so the request path
awaits every backend the same way.
"""

from __future__ import annotations

from ..routing.ratelimit import Decision, KeyLimits, RateLimiter

__all__ = ["LocalBuckets"]


class LocalBuckets:
    """``RateBuckets`` over a ``RateLimiter`` held by this process."""

    def __init__(self, limiter: RateLimiter):
        self.limiter = limiter

    async def check_request(self, key_id: str, limits: KeyLimits, now: float) -> Decision:
        return self.limiter.check_request(key_id, limits, now)

    async def record_tokens(self, key_id: str, limits: KeyLimits, tokens: int, now: float) -> None:
        self.limiter.record_tokens(key_id, limits, tokens, now)
