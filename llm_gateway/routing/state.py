"""What the request path asks of shared state, whichever backend holds it.

Theory of operation: state that several gateway processes must agree on is
reached through the small protocols here. The request path holds one object
per protocol, chosen by the composition root (``server/runtime.py``), and
never asks which backend is behind it:

* in one process, the plain in-memory ``RateLimiter`` (``ratelimit.py``,
  behind ``state/local_buckets.py``);
* across the workers of ``server start --workers N``, the shared-memory
  table of ``state/shared_buckets.py``, which applies the same arithmetic
  under a lock.

The methods are coroutines: a backend may wait for a lock held by another
process (or, for a backend over the network, for an answer) without stopping
the event loop. A later backend for several hosts only has to satisfy the
same protocols.
"""

from __future__ import annotations

from typing import Protocol

from .ratelimit import Decision, KeyLimits

__all__ = ["RateBuckets"]


class RateBuckets(Protocol):
    """Per-gateway-key request and token buckets (see ``ratelimit.py``)."""

    async def check_request(self, key_id: str, limits: KeyLimits, now: float) -> Decision:
        """Admit or deny one request; an admitted one uses a request unit."""
        ...

    async def record_tokens(self, key_id: str, limits: KeyLimits, tokens: int, now: float) -> None:
        """Charge the tokens a response used."""
        ...
