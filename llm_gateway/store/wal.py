"""Switching a SQLite file to WAL mode when other processes open it at the same time.

Theory of operation: ``PRAGMA journal_mode=WAL`` on a file that another
connection is creating or switching at that moment fails at once with
``database is locked``: SQLite does not call the busy handler for it, whatever
the connection's timeout. Two ``--workers`` opening the ledger at start-up do
exactly that. ``enable_wal`` retries the switch, backing off from 5 ms to
100 ms, until ``timeout`` seconds have passed, and only then lets the error out.
"""

from __future__ import annotations

import sqlite3
import time

__all__ = ["enable_wal"]

_FIRST_PAUSE = 0.005
_LONGEST_PAUSE = 0.1


def enable_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Put ``conn``'s file in WAL mode, waiting up to ``timeout`` s for other openers."""
    deadline = time.monotonic() + timeout
    pause = _FIRST_PAUSE
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)
