"""Per-key spend totals in memory shared by forked workers (``SpendBudgets``).

Theory of operation: the table is made like the rate-limit table
(``shared_table.py``: created before the fork, an ``fcntl`` lock, a CRC per
slot). A slot holds a 16-byte digest of a key id and that key's
``KeyTotals`` (period, spent, reserved, last cost, ledger read times). Every
operation loads the key's totals under the lock, applies the very method of
``ledger/budgets.py``'s ``BudgetBook`` the single-process gateway uses, and
writes the result back, so a reservation made by one worker counts for all
of them at once and a nearly spent budget is overshot by at most about one
request's cost whichever workers serve the requests.

``settle`` runs in the application's synchronous "request finished" hook:
it takes the lock if it is free at once, and otherwise finishes in a task on
the event loop, so the hook never waits.

A slot whose period has ended is free for another key; when every slot in
a key's window of ``PROBE`` slots holds a live period, the one read from the
ledger longest ago is taken over, and its key reads its total from the
ledger again (losing only the reservations in flight). A slot torn by a
worker killed while writing it reads as absent: that key's total is read
from the ledger again.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable
from typing import IO, TypeVar

from ..errors import ServiceUnavailable
from ..ledger.budgets import REFRESH, BudgetBook, Decision, KeyTotals
from .shared_table import (
    digest,
    lock,
    new_file,
    read_slot,
    shared_map,
    slot_size,
    try_lock,
    unlock,
    write_slot,
)

__all__ = ["PROBE", "SLOTS", "SharedBudgets"]

log = logging.getLogger(__name__)

#: slots in the table (96 bytes each): 1024 take 96 KiB
SLOTS = 1024
#: how far from its home slot a key may live
PROBE = 16
#: longest wait for the lock (a holder that is alive but stopped) before a 503
LOCK_WAIT = 5.0

_BODY = struct.Struct("<16s7d")
_SLOT_SIZE = slot_size(_BODY)
_T = TypeVar("_T")


class SharedBudgets:
    """``SpendBudgets`` for the processes forked after ``create``."""

    def __init__(self, file: IO[bytes], slots: int):
        self._file = file
        self._fd = file.fileno()
        self._slots = slots
        self._map = shared_map(file, slots * _SLOT_SIZE)
        #: settlements waiting for the lock (referenced until done)
        self._settling: set[asyncio.Task[None]] = set()

    @classmethod
    def create(cls, slots: int = SLOTS) -> SharedBudgets:
        """A new, empty table; create it in the parent, before forking."""
        if slots < 1:
            raise ValueError("slots must be positive")
        return cls(new_file(slots * _SLOT_SIZE), slots)

    async def due(self, key_id: str, period: str, now: float) -> float | None:
        # the usual answer (known and fresh) needs no lock: a read the checksum vouches for
        key = digest(key_id)
        index = self._home(key)
        for step in range(min(PROBE, self._slots)):
            fields = read_slot(self._map, ((index + step) % self._slots) * _SLOT_SIZE, _BODY)
            if fields is not None and fields[0] == key:
                start, end, loaded_at = fields[1], fields[2], fields[6]
                if start <= now < end and now - loaded_at < REFRESH:
                    return None
                break
        return await self._apply(key_id, now, lambda book: book.due(key_id, period, now))

    async def load(self, key_id: str, period: str, now: float, spent: float) -> None:
        await self._apply(key_id, now, lambda book: book.load(key_id, period, now, spent))

    async def reserve(
        self, key_id: str, budget: float, estimate: float, now: float
    ) -> tuple[Decision, float]:
        return await self._apply(
            key_id, now, lambda book: book.reserve_held(key_id, budget, estimate, now)
        )

    def settle(self, key_id: str, reserved: float, cost: float, now: float) -> None:
        def apply(book: BudgetBook) -> None:
            book.settle(key_id, reserved, cost, now)

        if try_lock(self._fd):
            try:
                self._apply_locked(key_id, now, apply)
            finally:
                unlock(self._fd)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop: nothing else to let run meanwhile
            asyncio.run(self._settle_later(key_id, now, apply))
            return
        task = loop.create_task(self._settle_later(key_id, now, apply))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle_later(
        self, key_id: str, now: float, apply: Callable[[BudgetBook], None]
    ) -> None:
        try:
            await self._apply(key_id, now, apply)
        except ServiceUnavailable as error:  # the ledger still has it: the next read counts it
            log.warning("a request's cost was not added to its key's budget: %s", error.message)

    def close(self) -> None:
        self._map.close()
        self._file.close()

    async def _apply(self, key_id: str, now: float, op: Callable[[BudgetBook], _T]) -> _T:
        await lock(self._fd, LOCK_WAIT, "budget table")
        try:
            return self._apply_locked(key_id, now, op)
        finally:
            unlock(self._fd)

    def _apply_locked(self, key_id: str, now: float, op: Callable[[BudgetBook], _T]) -> _T:
        """``op`` on a one-key book holding the key's stored totals, written back."""
        key = digest(key_id)
        index, totals = self._find(key, now)
        before = None if totals is None else _numbers(totals)
        book = BudgetBook({key_id: totals} if totals is not None else {})
        result = op(book)
        after = book.accounts.get(key_id)
        numbers = None if after is None else _numbers(after)
        if numbers != before:
            fields = None if numbers is None else (key, *numbers)
            write_slot(self._map, index * _SLOT_SIZE, _BODY, fields)
        return result

    def _find(self, key: bytes, now: float) -> tuple[int, KeyTotals | None]:
        """Under the lock: the slot of ``key`` and its totals, or a slot to take."""
        home = self._home(key)
        free: int | None = None
        oldest, oldest_read = home, float("inf")
        for step in range(min(PROBE, self._slots)):
            index = (home + step) % self._slots
            fields = read_slot(self._map, index * _SLOT_SIZE, _BODY)
            if fields is not None and fields[0] == key:
                return index, KeyTotals(*fields[1:])
            if free is not None:
                continue
            if fields is None or fields[2] <= now:  # empty, torn, or its period is over
                free = index
            elif fields[6] < oldest_read:
                oldest, oldest_read = index, fields[6]
        return (free if free is not None else oldest), None

    def _home(self, key: bytes) -> int:
        return int.from_bytes(key[:8], "little") % self._slots


def _numbers(totals: KeyTotals) -> tuple[float, ...]:
    """The totals in the slot's field order (``KeyTotals``' own)."""
    return (
        totals.start,
        totals.end,
        totals.spent,
        totals.reserved,
        totals.last_cost,
        totals.loaded_at,
        totals.settled_since_load,
    )
