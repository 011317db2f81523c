"""Per-key rate-limit buckets in memory shared by forked workers.

Theory of operation: this is nginx's ``limit_req_zone`` design. Before
forking, the supervising parent creates a shared mapping of an unlinked
temporary file divided into fixed-size slots (``shared_table.py``); every
worker, including one started again after a crash, inherits the descriptor
and the mapping. A request's check is one read-modify-write of
its key's slot under an exclusive ``fcntl.lockf`` lock on the file, using the
pure arithmetic of ``routing/ratelimit.py`` (the headers are written after
the lock is released). The lock is held for a few microseconds and never
across an ``await``; it is taken without blocking the event loop (tried with
``LOCK_NB``, other tasks running in between), because a holder the scheduler
paused on a busy machine would otherwise stall every request of the waiting
worker.

Crashes: POSIX record locks belong to a process, and the kernel releases
them when it dies, so a worker killed with SIGKILL never leaves the table
locked. Each slot carries a CRC-32 of its contents; a slot torn by a worker
killed in the middle of writing it fails the check and reads as empty (that
key's buckets start full again), so the table is never unusable.

A slot holds a 16-byte digest of the key id, then the request and the token
bucket as (capacity, units, updated) doubles (capacity 0: no bucket), then
the checksum. A key lives within ``PROBE`` slots of the one its digest
points at. A key not found there takes the first slot that is empty or whose
buckets have refilled completely (which is the same as never created); when
every slot of that window holds a bucket still refilling, the one updated
longest ago is taken over and its key starts full again. With ``SLOTS``
slots that needs more than ``PROBE`` keys hashing next to one another and
all limited within the same minute.

Times are ``time.monotonic()`` values, one clock for every process of a host.
"""

from __future__ import annotations

import struct
from typing import IO

from ..routing.ratelimit import Bucket, Decision, KeyLimits, charge, decide, fit, take
from .shared_table import (
    EMPTY_DIGEST,
    LOCK_POLL,
    digest,
    lock,
    new_file,
    read_slot,
    shared_map,
    slot_size,
    unlock,
    write_slot,
)

__all__ = ["LOCK_POLL", "LOCK_WAIT", "PROBE", "SLOTS", "SharedBuckets"]

#: slots in the table (72 bytes each): 4096 take 288 KiB
SLOTS = 4096
#: how far from its home slot a key may live
PROBE = 32

_BODY = struct.Struct("<16s6d")
_SLOT_SIZE = slot_size(_BODY)
_EMPTY_DIGEST = EMPTY_DIGEST
_digest = digest
#: longest wait for the lock (a holder that is alive but stopped) before a 503
LOCK_WAIT = 5.0

_Pair = tuple[Bucket | None, Bucket | None]


class SharedBuckets:
    """Token buckets for every limited key, shared by the processes forked after ``create``."""

    def __init__(self, file: IO[bytes], slots: int):
        self._file = file
        self._fd = file.fileno()
        self._slots = slots
        self._map = shared_map(file, slots * _SLOT_SIZE)

    @classmethod
    def create(cls, slots: int = SLOTS) -> SharedBuckets:
        """A new, empty table; create it in the parent, before forking."""
        if slots < 1:
            raise ValueError("slots must be positive")
        return cls(new_file(slots * _SLOT_SIZE), slots)

    async def check_request(self, key_id: str, limits: KeyLimits, now: float) -> Decision:
        """Admit or deny one request; an admitted one uses a request unit."""
        digest = _digest(key_id)
        await self._lock()
        try:
            index, (requests, tokens) = self._find(digest, now)
            requests = fit(requests, limits.rpm, now)
            tokens = fit(tokens, limits.tpm, now)
            allowed, retry_after = take(requests, tokens)
            self._write(index, digest, requests, tokens)
        finally:
            unlock(self._fd)
        # the buckets are this process's copies: the headers are written unlocked
        return decide(requests, tokens, limits, allowed, retry_after)

    async def record_tokens(self, key_id: str, limits: KeyLimits, tokens: int, now: float) -> None:
        """Charge the tokens a response used; the bucket may go negative."""
        if tokens <= 0 or limits.tpm is None:
            return
        digest = _digest(key_id)
        await self._lock()
        try:
            index, (requests, bucket) = self._find(digest, now)
            bucket = fit(bucket, limits.tpm, now)
            assert bucket is not None
            charge(bucket, tokens)
            self._write(index, digest, fit(requests, limits.rpm, now), bucket)
        finally:
            unlock(self._fd)

    async def _lock(self) -> None:
        await lock(self._fd, LOCK_WAIT, "rate-limit table")

    def close(self) -> None:
        self._map.close()
        self._file.close()

    def _find(self, digest: bytes, now: float) -> tuple[int, _Pair]:
        """The slot of ``digest`` and its buckets, or a slot to take and no buckets."""
        home = int.from_bytes(digest[:8], "little") % self._slots
        free: int | None = None
        oldest, oldest_time = home, float("inf")
        for step in range(min(PROBE, self._slots)):
            index = (home + step) % self._slots
            offset = index * _SLOT_SIZE
            stored = self._map[offset : offset + 16]
            if stored == digest:
                pair = self._read(index)
                return index, pair if pair is not None else (None, None)
            if free is not None:
                continue
            pair = self._read(index) if stored != _EMPTY_DIGEST else None
            if pair is None or _refilled(pair, now):
                free = index
                continue
            updated = max(b.updated for b in pair if b is not None)
            if updated < oldest_time:
                oldest, oldest_time = index, updated
        return (free if free is not None else oldest), (None, None)

    def _read(self, index: int) -> _Pair | None:
        """The slot's buckets; None when it is empty or torn."""
        fields = read_slot(self._map, index * _SLOT_SIZE, _BODY)
        if fields is None:
            return None
        _, *numbers = fields
        return _bucket(*numbers[:3]), _bucket(*numbers[3:])

    def _write(
        self, index: int, digest: bytes, requests: Bucket | None, tokens: Bucket | None
    ) -> None:
        empty = requests is None and tokens is None
        fields = None if empty else (digest, *_numbers(requests), *_numbers(tokens))
        write_slot(self._map, index * _SLOT_SIZE, _BODY, fields)


def _bucket(capacity: float, tokens: float, updated: float) -> Bucket | None:
    return Bucket(capacity, tokens, updated) if capacity > 0 else None


def _numbers(bucket: Bucket | None) -> tuple[float, float, float]:
    return (0.0, 0.0, 0.0) if bucket is None else (bucket.capacity, bucket.tokens, bucket.updated)


def _refilled(pair: _Pair, now: float) -> bool:
    for bucket in pair:
        if bucket is not None:
            bucket.refill(now)
            if not bucket.is_full():
                return False
    return True
