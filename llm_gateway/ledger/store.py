"""The ledger's SQLite file: schema, batched inserts, retention.

Theory of operation: the file lives in the gateway's home and is opened in
WAL mode, so readers (the CLI, the admin endpoints) never block the writer
and a process killed mid-write loses at most its open transaction, never the
file. Every ``--workers`` process has its own connection; writes are short
transactions (one batch each) and wait for the others' locks up to
``BUSY_TIMEOUT`` instead of failing with ``database is locked``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from itertools import chain
from pathlib import Path

from ..store.wal import enable_wal
from .records import COLUMNS, LedgerRecord

__all__ = ["BUSY_TIMEOUT", "ROWS_PER_INSERT", "LedgerStore", "connect"]

#: seconds a write or read waits for another process's lock
BUSY_TIMEOUT = 30.0

_TYPES = {
    "time": "REAL NOT NULL",
    "status": "INTEGER NOT NULL",
    "attempts": "INTEGER NOT NULL",
    "duration_ms": "REAL NOT NULL",
    "ttfb_ms": "REAL",
    "streamed": "INTEGER NOT NULL",
    "cost": "REAL NOT NULL",
}

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS requests ("
    + ", ".join(
        f"{name} {_TYPES.get(name, 'INTEGER NOT NULL' if name.endswith('tokens') else 'TEXT NOT NULL')}"
        for name in COLUMNS
    )
    + ")",
    "CREATE INDEX IF NOT EXISTS requests_time ON requests (time)",
    "CREATE INDEX IF NOT EXISTS requests_key_time ON requests (key_id, time)",
)
#: records per INSERT statement: SQLite before 3.32 binds at most 999 parameters
ROWS_PER_INSERT = 999 // len(COLUMNS)
_ROW = f"({', '.join('?' for _ in COLUMNS)})"


def _insert(rows: int) -> str:
    return f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES {', '.join([_ROW] * rows)}"


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the ledger's settings (WAL, busy timeout)."""
    if readonly:  # an existing file, never created here (WAL readers need its -shm)
        conn = sqlite3.connect(
            f"{path.absolute().as_uri()}?mode=rw", uri=True, timeout=BUSY_TIMEOUT
        )
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT, isolation_level=None)
        enable_wal(conn, BUSY_TIMEOUT)
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
    return conn


class LedgerStore:
    """The writing side: one per process, used from the writer thread only."""

    def __init__(self, path: Path):
        self.path = path
        self.conn = connect(path)
        with self._transaction():
            for statement in _SCHEMA:
                self.conn.execute(statement)

    def _transaction(self) -> _Commit:
        # BEGIN IMMEDIATE takes the write lock up front (waiting up to the busy
        # timeout), so a transaction never fails half-way on another's lock
        self.conn.execute("BEGIN IMMEDIATE")
        return _Commit(self.conn)

    def insert(self, records: Sequence[LedgerRecord]) -> None:
        if not records:
            return
        # Many rows per statement, not ``executemany`` (one statement per row):
        # sqlite3's work per statement (reset, bind, step, and letting go of the
        # GIL and taking it back) is paid once per ROWS_PER_INSERT records, about
        # a fifth less per record. The parameters go as one plain tuple, which
        # sqlite3 reads item by item in C (a named tuple: one ``__getitem__`` each).
        with self._transaction():
            for start in range(0, len(records), ROWS_PER_INSERT):
                chunk = records[start : start + ROWS_PER_INSERT]
                self.conn.execute(_insert(len(chunk)), tuple(chain.from_iterable(chunk)))

    def prune(self, before: float) -> int:
        """Delete records older than ``before``; returns how many."""
        with self._transaction():
            cursor = self.conn.execute("DELETE FROM requests WHERE time < ?", (before,))
        return cursor.rowcount

    def close(self) -> None:
        self.conn.close()


class _Commit:
    """Commits on success, rolls back on an error."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self.conn.execute("COMMIT" if kind is None else "ROLLBACK")
