"""How many large requests may be parsed, converted and sent at once.

Theory of operation: a request's body is parsed into Python objects, and a
converted one is rendered again and re-encoded; for a 30 MB body that is
about 120 MiB more, held until the upstream has answered (the parsed body is
kept for failover). Eight at once would need a gigabyte. ``MemoryBudget``
admits large requests (``LARGE_BODY_BYTES`` and more) while the memory they
are estimated to hold fits ``proxy.large_request_memory``; the others wait
their turn, in arrival order. A request larger than the whole budget runs
alone. Small requests never wait. ``estimate`` is pure: a few times the body
(strings parsed, rendered and encoded again) plus a Python object's overhead
for every JSON object in it, counted with one ``bytes.count``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator

__all__ = ["LARGE_BODY_BYTES", "MemoryBudget", "estimate"]

#: bodies this large wait for the budget; smaller ones cost too little to count
LARGE_BODY_BYTES = 1 << 20
#: memory per body byte: the body parsed, rendered and encoded again
_PER_BYTE = 4
#: memory per JSON object: a dict, its strings and their unified counterparts
_PER_OBJECT = 400


def estimate(body: bytes) -> int:
    """The memory (bytes) handling ``body`` is expected to hold at its peak."""
    return _PER_BYTE * len(body) + _PER_OBJECT * body.count(b"{")


class MemoryBudget:
    """Admits large requests while their estimated memory fits ``limit`` (bytes)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self._waiting: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    def _fits(self, cost: int) -> bool:
        return self.in_use == 0 or self.in_use + cost <= self.limit

    @contextlib.asynccontextmanager
    async def hold(self, cost: int) -> AsyncIterator[None]:
        """Wait until ``cost`` fits (after those already waiting), hold it meanwhile."""
        if self._waiting or not self._fits(cost):
            turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry = (cost, turn)
            self._waiting.append(entry)
            try:
                await turn
            except BaseException:
                if turn.done() and not turn.cancelled():
                    self._release(cost)  # admitted just as the client left
                else:
                    self._waiting.remove(entry)
                    self._admit()
                raise
        else:
            self.in_use += cost
        try:
            yield
        finally:
            self._release(cost)

    def _release(self, cost: int) -> None:
        self.in_use -= cost
        self._admit()

    def _admit(self) -> None:
        """Let the waiting requests in, in arrival order, while they fit."""
        while self._waiting and self._fits(self._waiting[0][0]):
            cost, turn = self._waiting.popleft()
            self.in_use += cost
            turn.set_result(None)
