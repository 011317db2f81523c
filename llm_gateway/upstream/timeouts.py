"""Named timeouts, and the budget that turns them into one wait at a time.

Theory of operation: a ``Timeouts`` value says how long each phase of an
exchange may take. The connection never calls ``wait_for`` with a raw number:
for every read or write it asks a ``Budget`` how long it may wait *now* and
which error to raise if that wait runs out. A budget combines an idle limit
(restarted by every read, e.g. ``stream_idle``) with an absolute deadline
(e.g. ``response_headers`` measured from the start of sending, or ``total``
measured from the start of the request); whichever is nearer wins and names
the error. Budgets are pure: the current loop time is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

from llm_gateway.upstream.errors import TimeoutKind, TotalTimeout

__all__ = ["DEFAULT_TIMEOUTS", "Budget", "Timeouts", "Wait"]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Limits, in seconds, for each phase of an upstream exchange.

    * ``connect``: TCP connect (to the origin or the proxy), plus the proxy's
      answer to CONNECT.
    * ``tls``: the TLS handshake.
    * ``response_headers``: from starting to send the request until the
      response headers arrived.
    * ``stream_idle``: longest silence while reading a body.
    * ``total``: a whole non-streaming exchange, from the call to
      ``ConnectionPool.request`` until ``Response.aread`` returns.
    * ``pool``: how long a request waits for a free connection when its
      origin already has ``max_connections_per_origin`` busy ones.
    """

    connect: float = 10.0
    tls: float = 10.0
    response_headers: float = 120.0
    stream_idle: float = 120.0
    total: float = 600.0
    pool: float = 30.0


DEFAULT_TIMEOUTS = Timeouts()


@dataclass(frozen=True, slots=True)
class Wait:
    """One bounded wait: at most ``seconds``; on expiry raise ``error``.

    ``limit`` is the configured value the error message reports (a deadline's
    remaining time is smaller than the setting it came from).
    """

    seconds: float
    error: TimeoutKind
    limit: float


@dataclass(frozen=True, slots=True)
class Budget:
    """An idle limit, a deadline (in loop time), or both."""

    idle: float | None = None
    idle_error: TimeoutKind = TotalTimeout
    deadline: float | None = None
    deadline_error: TimeoutKind = TotalTimeout
    deadline_limit: float = 0.0

    @classmethod
    def until(cls, now: float, seconds: float, error: TimeoutKind) -> Budget:
        """A budget that ends ``seconds`` after ``now``."""
        return cls(deadline=now + seconds, deadline_error=error, deadline_limit=seconds)

    @classmethod
    def per_read(cls, seconds: float, error: TimeoutKind) -> Budget:
        """A budget that allows ``seconds`` of silence before each read."""
        return cls(idle=seconds, idle_error=error)

    def with_deadline(self, start: float, seconds: float, error: TimeoutKind) -> Budget:
        """This budget, also ending ``seconds`` after ``start``."""
        return Budget(self.idle, self.idle_error, start + seconds, error, seconds)

    def next_wait(self, now: float) -> Wait:
        """How long the next I/O may wait, starting at ``now``."""
        if self.deadline is None:
            if self.idle is None:
                raise ValueError("a budget needs an idle limit or a deadline")
            return Wait(self.idle, self.idle_error, self.idle)
        remaining = max(0.0, self.deadline - now)
        if self.idle is not None and self.idle < remaining:
            return Wait(self.idle, self.idle_error, self.idle)
        return Wait(remaining, self.deadline_error, self.deadline_limit)
