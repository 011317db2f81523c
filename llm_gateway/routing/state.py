"""What the request path asks of shared state, whichever backend holds it.

Theory of operation: state that several gateway processes must agree on is
reached through the small protocols here. The request path holds one object
per protocol, chosen by the composition root (``runtime.py``), and
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

Account health (``SharedHealth``): every process keeps its own
``HealthTracker`` (``health.py``), the pure, synchronous core that counts
failures and runs each account's circuit breaker. What the other processes
need to know of it is small: *this account is out until T, because R*. A
process publishes such a ``HealthMark`` when its tracker opens a circuit,
starts a 429 cooldown or excludes rejected credentials, and a mark with
``until == 0`` when the account recovered (its circuit closed, its
credentials passed). Before choosing accounts for a request, the request
path awaits one ``read`` of the marks of the request's candidate accounts
(one round trip for a backend over the network) and hands them to the
tracker, whose ``available`` and ``available_at`` honour them beside its own
state. ``until`` is wall-clock time (Unix seconds): monotonic clocks agree
between the processes of one host but not between hosts, so the conversion
to the tracker's monotonic scale happens where marks are read and written.
A mark lapses by itself when its time has passed, so a process that died
after publishing never keeps an account out for longer than it said.

Spend budgets have their protocol, ``SpendBudgets``, beside their arithmetic
in ``ledger/budgets.py``: budgets are the ledger's business, not routing's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from .ratelimit import Decision, KeyLimits

__all__ = ["HealthMark", "MarkReason", "RateBuckets", "SharedHealth"]


class RateBuckets(Protocol):
    """Per-gateway-key request and token buckets (see ``ratelimit.py``)."""

    async def check_request(self, key_id: str, limits: KeyLimits, now: float) -> Decision:
        """Admit or deny one request; an admitted one uses a request unit."""
        ...

    async def record_tokens(self, key_id: str, limits: KeyLimits, tokens: int, now: float) -> None:
        """Charge the tokens a response used."""
        ...


class MarkReason(str, Enum):
    """Why an account is out, as one process saw it."""

    CIRCUIT = "circuit"  # its circuit opened: the upstream looks broken
    COOLDOWN = "cooldown"  # a 429: the upstream wants fewer requests for a while
    AUTH = "auth"  # its credentials were refused


@dataclass(frozen=True, slots=True)
class HealthMark:
    """One account out for one reason until a wall-clock time."""

    account_id: str
    reason: MarkReason
    #: Unix seconds until which the account is out; 0: it recovered (the mark goes)
    until: float


class SharedHealth(Protocol):
    """The marks the gateway's processes leave each other about upstream accounts.

    A backend keeps at most one mark per (account, reason). ``now`` is
    wall-clock time (Unix seconds), like every ``until``.
    """

    async def read(self, account_ids: Sequence[str], now: float) -> Sequence[HealthMark]:
        """The marks of these accounts still in force (``until > now``), in any order."""
        ...

    async def publish(self, marks: Sequence[HealthMark], now: float) -> None:
        """Store marks: for each (account, reason) the later ``until`` wins, and a
        mark with ``until == 0`` removes the stored one (the account recovered)."""
        ...
