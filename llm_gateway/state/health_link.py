"""Carries health marks between this process's tracker and a ``SharedHealth``.

Theory of operation: the request path calls ``sync`` with a request's
candidate accounts before choosing among them: whatever the tracker noted
since the last call (``HealthTracker.take_marks``) is published first, then
one ``read`` brings back what every process says of those accounts, and the
tracker honours it (``apply_marks``). After each upstream attempt, ``flush``
publishes what that attempt taught. Outcomes recorded elsewhere (the end of
a stream, a background probe) go out with the next request's ``sync``.

The tracker counts time on this process's monotonic clock, the shared marks
on the wall clock (comparable between hosts); the two are converted here,
the only place that reads both clocks. Without a shared backend (one
process) both calls return at once.

A backend that cannot be reached only costs this process the others' news:
the failure is logged and the tracker goes on with its own view.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from ..errors import GatewayError
from ..routing.health import HealthTracker
from ..routing.state import HealthMark, SharedHealth

__all__ = ["HealthLink"]

log = logging.getLogger(__name__)


class HealthLink:
    """One process's tracker, linked to the marks its peers share (if any)."""

    def __init__(
        self,
        tracker: HealthTracker,
        shared: SharedHealth | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ):
        self.tracker = tracker
        self.shared = shared
        self.clock = clock
        self.wall_clock = wall_clock
        tracker.publishing = shared is not None

    async def sync(self, account_ids: Sequence[str]) -> None:
        """Publish what this process noted, then take in what all say of ``account_ids``."""
        if self.shared is None:
            return
        await self.flush()
        mono, wall = self.clock(), self.wall_clock()
        try:
            marks = await self.shared.read(account_ids, wall)
        except GatewayError as error:
            log.warning("cannot read the shared account health: %s", error.message)
            return
        self.tracker.apply_marks(
            account_ids, [(m.account_id, m.reason, m.until - wall + mono) for m in marks]
        )

    async def flush(self) -> None:
        """Publish what the tracker noted since the last call."""
        if self.shared is None:
            return
        taken = self.tracker.take_marks()
        if not taken:
            return
        mono, wall = self.clock(), self.wall_clock()
        marks = [
            HealthMark(account, reason, 0.0 if until == 0.0 else until - mono + wall)
            for account, reason, until in taken
        ]
        try:
            await self.shared.publish(marks, wall)
        except GatewayError as error:
            log.warning("cannot publish the shared account health: %s", error.message)
