"""How long one request may wait for a lone busy account before the client is told.

Theory of operation: when the only account that serves a model answers 429
(or 503/529) with a ``retry-after``, the request may wait and ask it again,
but all of one request's waits together stay within a budget
(``routing.max_retry_wait``). Once the next wait would overrun the budget (or
the request's deadline), there is no wait: the caller relays the answer to the
client at once, ``retry-after`` included, so the client's own back-off takes
over instead of being held for a minute.

Each wait is at least the upstream's ``retry-after`` and at least a minimum
that doubles per wait (0.25 s, 0.5 s, 1 s, ...), so ``retry-after: 0`` again
and again is no busy loop; a small slack makes sure the account's cooldown has
passed when the retry goes out. The slack counts toward the budget. Pure:
the caller passes in what it has waited so far and the time left.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RetryWaits"]

#: the shortest wait before asking a lone busy account again, doubled per wait
MIN_WAIT = 0.25
#: waiting this much beyond a retry-after makes sure the cooldown has passed
SLACK = 0.05


@dataclass(frozen=True, slots=True)
class RetryWaits:
    """The waits one request has spent on a lone busy account, against its budget."""

    budget: float
    waited: float = 0.0
    count: int = 0

    def next_wait(self, retry_after: float, time_left: float) -> float | None:
        """Seconds to wait before asking again, or None: answer the client now."""
        wait = max(retry_after, MIN_WAIT * 2.0**self.count) + SLACK
        if self.waited + wait > self.budget or wait >= time_left:
            return None
        return wait

    def after(self, wait: float) -> RetryWaits:
        """The budget's state once ``wait`` was spent."""
        return RetryWaits(self.budget, self.waited + wait, self.count + 1)
