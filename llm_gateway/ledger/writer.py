"""The edge that writes ledger records: a bounded buffer and one writer thread.

Theory of operation: the request path calls ``LedgerWriter.submit``, which
only appends the record to a buffer (never blocks, never wakes the thread: a
full buffer drops the record and counts it in ``dropped``). The thread wakes
every ``flush_interval`` seconds, or as soon as ``batch_size`` records are
waiting, and commits what is waiting in transactions of at most
``batch_size`` records. Waking on a timer rather than for every record is
what keeps the ledger cheap under load: one wake-up and one commit serve
hundreds of requests, and the event loop never hands the GIL to the thread
per request. A record is on disk within about ``flush_interval`` after its
request finished; a slow disk slows only this thread; the event loop never
waits for SQLite; the file is created with the first record. Once an hour
(and with the first batch) records older than the retention are deleted.
``close`` writes what is waiting and stops.

A process killed without warning loses at most the records it had not yet
committed (those of the last ``flush_interval``, at most ``batch_size`` of
them unless the disk is slower than the requests); SQLite's WAL keeps the
file intact.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from .records import LedgerRecord
from .store import LedgerStore

__all__ = ["LedgerWriter"]

log = logging.getLogger("llm_gateway.ledger")

#: seconds between two retention passes
PRUNE_INTERVAL = 3600.0
#: seconds ``close`` waits for the thread to write what is waiting
CLOSE_TIMEOUT = 10.0


class LedgerWriter:
    def __init__(
        self,
        path: Path,
        *,
        batch_size: int = 256,
        flush_interval: float = 0.5,
        queue_size: int = 10_000,
        retention: float | None = None,
        clock: Callable[[], float] = time.time,
        on_written: Callable[[list[LedgerRecord]], None] | None = None,
    ):
        self.path = path
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.queue_size = queue_size
        self.retention = retention
        self.clock = clock
        self.on_written = on_written
        #: records submitted and not yet taken by the thread (appends and
        #: pops of a deque are atomic, so the two sides need no lock)
        self.pending: deque[LedgerRecord] = deque()
        #: records dropped because the buffer was full or the file unusable,
        #: and batches that failed
        self.dropped = 0
        self.failed_batches = 0
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()

    def submit(self, record: LedgerRecord) -> None:
        pending = self.pending
        waiting = len(pending)
        if waiting >= self.queue_size:
            self.dropped += 1
            return
        pending.append(record)
        if waiting + 1 == self.batch_size:
            self._wake.set()  # a whole batch: write it now rather than at the next tick

    def close(self) -> None:
        if self._thread is None:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join(CLOSE_TIMEOUT)
        self._thread = None

    def _run(self) -> None:
        store: LedgerStore | None = None  # the file is created with the first record
        next_prune = self.clock()
        try:
            while True:
                # True: a whole batch is waiting; False: the interval is up
                whole = self._wake.wait(self.flush_interval)
                self._wake.clear()
                stopping = self._stopping  # read before taking: what follows is written too
                due = self._due(whole and not stopping)
                while due > 0:
                    batch = self._take(min(due, self.batch_size))
                    due -= len(batch)
                    if store is None:
                        try:
                            store = LedgerStore(self.path)
                        except sqlite3.Error as error:
                            log.error("usage ledger unavailable", extra={"error": str(error)})
                            self.dropped += len(batch)
                            self._drop_until_closed()
                            return
                    self._write(store, batch)
                if store is not None and self.retention is not None and self.clock() >= next_prune:
                    next_prune = self.clock() + PRUNE_INTERVAL
                    self._prune(store)
                if stopping:
                    return
        finally:
            if store is not None:
                store.close()

    def _due(self, woken_for_a_batch: bool) -> int:
        """How many waiting records to write in this round: the whole batches when
        woken for one (a remainder waits for the next batch or tick), everything
        when the interval is up. What arrives meanwhile waits for the next round,
        so the thread never spins committing a few records at a time."""
        waiting = len(self.pending)
        return waiting - waiting % self.batch_size if woken_for_a_batch else waiting

    def _take(self, count: int) -> list[LedgerRecord]:
        """The ``count`` oldest waiting records."""
        pending = self.pending
        return [pending.popleft() for _ in range(count)]

    def _write(self, store: LedgerStore, batch: list[LedgerRecord]) -> None:
        try:
            store.insert(batch)
        except sqlite3.Error as error:
            self.failed_batches += 1
            log.error(
                "usage records not written",
                extra={"error": str(error), "count": len(batch)},
            )
            return
        if self.on_written is not None:
            self.on_written(batch)

    def _prune(self, store: LedgerStore) -> None:
        assert self.retention is not None
        try:
            store.prune(self.clock() - self.retention)
        except sqlite3.Error as error:
            log.warning("old usage records not pruned", extra={"error": str(error)})

    def _drop_until_closed(self) -> None:
        """Without a file, waiting records are counted as dropped until close."""
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            stopping = self._stopping
            while self.pending:
                self.pending.popleft()
                self.dropped += 1
            if stopping:
                return
