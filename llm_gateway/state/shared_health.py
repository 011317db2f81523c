"""Account health marks in memory shared by forked workers (``SharedHealth``).

Theory of operation: the table is made like the rate-limit table
(``shared_table.py``: created before the fork, an ``fcntl`` lock for
writers, a CRC per slot). A slot holds a 16-byte digest of an account id and,
for each ``MarkReason``, the wall-clock time until which that reason keeps
the account out (0: no mark). Writing (``publish``) is rare: a circuit
opened, a cooldown started, credentials failed or an account recovered. It
happens under the lock, keeps the later time per reason (a recovery, time 0,
clears the reason), and then bumps the generation counter in the table's
header.

Reading happens on every request and takes no lock. A process keeps what it
last read of each account, and only reads the slots again when the
generation counter moved; a slot caught half-written by another process
fails its checksum and is read again under the lock. Marks lapse by time, so
a worker that died after publishing never keeps an account out for longer
than it said, and a slot whose times have all passed is free for another
account. A window of ``PROBE`` slots from the account's home slot holds it;
when every slot there carries live marks, the one whose marks end soonest is
taken over (its account is then simply not marked any more).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import IO

from ..routing.state import HealthMark, MarkReason
from .shared_table import (
    digest,
    lock,
    new_file,
    read_slot,
    shared_map,
    slot_size,
    unlock,
    write_slot,
)

__all__ = ["PROBE", "SLOTS", "SharedHealthTable"]

#: slots in the table (48 bytes each): 1024 take 48 KiB
SLOTS = 1024
#: how far from its home slot an account may live
PROBE = 16
#: longest wait for the lock (a holder that is alive but stopped) before giving up
LOCK_WAIT = 5.0
#: what one process remembers of the table between generations, at most
_CACHED = 4096

_REASONS = tuple(MarkReason)
_BODY = struct.Struct("<16s" + "d" * len(_REASONS))
_SLOT_SIZE = slot_size(_BODY)
_HEADER = struct.Struct("<Q8x")  # the generation counter

_Times = tuple[float, ...]
_NONE: _Times = (0.0,) * len(_REASONS)


class SharedHealthTable:
    """``SharedHealth`` for the processes forked after ``create``."""

    def __init__(self, file: IO[bytes], slots: int):
        self._file = file
        self._fd = file.fileno()
        self._slots = slots
        self._map = shared_map(file, _HEADER.size + slots * _SLOT_SIZE)
        self._generation = -1
        self._known: dict[str, _Times] = {}

    @classmethod
    def create(cls, slots: int = SLOTS) -> SharedHealthTable:
        """A new, empty table; create it in the parent, before forking."""
        if slots < 1:
            raise ValueError("slots must be positive")
        return cls(new_file(_HEADER.size + slots * _SLOT_SIZE), slots)

    async def read(self, account_ids: Sequence[str], now: float) -> Sequence[HealthMark]:
        (generation,) = _HEADER.unpack_from(self._map, 0)
        if generation != self._generation or len(self._known) > _CACHED:
            self._known.clear()
            self._generation = generation
        marks: list[HealthMark] = []
        for account_id in account_ids:
            times = self._known.get(account_id)
            if times is None:
                times = self._known[account_id] = await self._times(account_id)
            if times is _NONE:
                continue
            for reason, until in zip(_REASONS, times, strict=True):
                if until > now:
                    marks.append(HealthMark(account_id, reason, until))
        return marks

    async def publish(self, marks: Sequence[HealthMark], now: float) -> None:
        if not marks:
            return
        await lock(self._fd, LOCK_WAIT, "health table")
        try:
            for mark in marks:
                key = digest(mark.account_id)
                index, times = self._find(key, now)
                changed = list(times)
                slot = _REASONS.index(mark.reason)
                changed[slot] = 0.0 if mark.until <= 0.0 else max(changed[slot], mark.until)
                live = any(until > now for until in changed)
                fields = (key, *changed) if live else None
                write_slot(self._map, self._offset(index), _BODY, fields)
            (generation,) = _HEADER.unpack_from(self._map, 0)
            _HEADER.pack_into(self._map, 0, (generation + 1) % 2**64)
        finally:
            unlock(self._fd)

    def close(self) -> None:
        self._map.close()
        self._file.close()

    async def _times(self, account_id: str) -> _Times:
        """The account's times as stored, read without the lock unless a slot was torn."""
        key = digest(account_id)
        found = self._search(key)
        if found is not None:
            return found
        await lock(self._fd, LOCK_WAIT, "health table")
        try:
            found = self._search(key)
        finally:
            unlock(self._fd)
        return _NONE if found is None else found

    def _search(self, key: bytes) -> _Times | None:
        """The times stored for ``key`` (``_NONE`` if none); None if its slot was torn."""
        home = int.from_bytes(key[:8], "little") % self._slots
        for step in range(min(PROBE, self._slots)):
            offset = self._offset((home + step) % self._slots)
            if self._map[offset : offset + 16] != key:
                continue
            fields = read_slot(self._map, offset, _BODY)
            if fields is None or fields[0] != key:
                return None
            times: _Times = tuple(fields[1:])
            return times
        return _NONE

    def _find(self, key: bytes, now: float) -> tuple[int, _Times]:
        """Under the lock: the slot of ``key`` and its times, or a slot to take."""
        home = int.from_bytes(key[:8], "little") % self._slots
        free: int | None = None
        soonest, soonest_end = home, float("inf")
        for step in range(min(PROBE, self._slots)):
            index = (home + step) % self._slots
            fields = read_slot(self._map, self._offset(index), _BODY)
            if fields is not None and fields[0] == key:
                return index, tuple(fields[1:])
            if free is not None:
                continue
            end = 0.0 if fields is None else max(fields[1:])
            if end <= now:
                free = index
            elif end < soonest_end:
                soonest, soonest_end = index, end
        return (free if free is not None else soonest), _NONE

    def _offset(self, index: int) -> int:
        return _HEADER.size + index * _SLOT_SIZE
