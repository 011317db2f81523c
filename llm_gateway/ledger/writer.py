"""The edge that writes ledger records: a bounded queue and one writer thread.

Theory of operation: the request path calls ``LedgerWriter.submit`` (never
blocks: a full queue drops the record and counts it in ``dropped``). The
thread takes everything queued, up to ``batch_size`` records, and commits them
in one short transaction; it waits at most ``flush_interval`` seconds for the
first record of a batch, so a record is on disk within about that long after
its request finished. A slow disk therefore slows only this thread; the event
loop never waits for SQLite; the file is created with the first record. Once
an hour (and with the first batch) records older than
the retention are deleted. ``close`` writes what is queued and stops.

A process killed without warning loses at most the batch it had not yet
committed; SQLite's WAL keeps the file intact.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .records import LedgerRecord
from .store import LedgerStore

__all__ = ["LedgerWriter"]

log = logging.getLogger("llm_gateway.ledger")

#: seconds between two retention passes
PRUNE_INTERVAL = 3600.0
#: seconds ``close`` waits for the thread to write what is queued
CLOSE_TIMEOUT = 10.0
_STOP = object()


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
        self.retention = retention
        self.clock = clock
        self.on_written = on_written
        self.queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        #: records dropped because the queue was full, and batches that failed
        self.dropped = 0
        self.failed_batches = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()

    def submit(self, record: LedgerRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        if self._thread is None:
            return
        self.queue.put(_STOP)
        self._thread.join(CLOSE_TIMEOUT)
        self._thread = None

    def _run(self) -> None:
        store: LedgerStore | None = None  # the file is created with the first record
        next_prune = self.clock()
        try:
            while True:
                batch, stopping = self._next_batch()
                if batch and store is None:
                    try:
                        store = LedgerStore(self.path)
                    except sqlite3.Error as error:
                        log.error("usage ledger unavailable", extra={"error": str(error)})
                        self.dropped += len(batch)
                        self._drain_forever()
                        return
                if batch and store is not None:
                    self._write(store, batch)
                if store is not None and self.retention is not None and self.clock() >= next_prune:
                    next_prune = self.clock() + PRUNE_INTERVAL
                    self._prune(store)
                if stopping:
                    return
        finally:
            if store is not None:
                store.close()

    def _next_batch(self) -> tuple[list[LedgerRecord], bool]:
        batch: list[LedgerRecord] = []
        try:
            first = self.queue.get(timeout=self.flush_interval)
        except queue.Empty:
            return batch, False
        item = first
        while True:
            if item is _STOP:
                return batch, True
            assert isinstance(item, LedgerRecord)
            batch.append(item)
            if len(batch) >= self.batch_size:
                return batch, False
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return batch, False

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

    def _drain_forever(self) -> None:
        """Without a file, queued records are counted as dropped until close."""
        while True:
            item = self.queue.get()
            if item is _STOP:
                return
            self.dropped += 1
