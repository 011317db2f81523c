"""WAL mode switched on while other processes open the same SQLite file."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from llm_gateway.ledger.store import LedgerStore
from llm_gateway.store.wal import enable_wal


class _Busy:
    """A connection whose WAL switch finds the file locked ``times`` times."""

    def __init__(self, times: int, message: str = "database is locked"):
        self.left = times
        self.message = message
        self.calls = 0

    def execute(self, statement: str) -> None:
        assert statement == "PRAGMA journal_mode=WAL"
        self.calls += 1
        if self.left:
            self.left -= 1
            raise sqlite3.OperationalError(self.message)


def test_a_locked_switch_is_tried_again_until_it_goes_through() -> None:
    conn = _Busy(times=3)
    enable_wal(conn, timeout=5.0)  # type: ignore[arg-type]
    assert conn.calls == 4


def test_a_file_locked_for_longer_than_the_timeout_is_an_error() -> None:
    conn = _Busy(times=10_000)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        enable_wal(conn, timeout=0.05)  # type: ignore[arg-type]


def test_other_errors_are_not_retried() -> None:
    conn = _Busy(times=1, message="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk"):
        enable_wal(conn, timeout=5.0)  # type: ignore[arg-type]
    assert conn.calls == 1


def test_workers_opening_a_new_ledger_at_once_all_get_it(tmp_path: Path) -> None:
    """Four writers opening one new file at the same moment, many times over: as
    ``--workers`` do at start-up. Before, one of them now and then failed with
    ``database is locked`` and dropped every record it was given."""
    errors: list[BaseException] = []
    for round_ in range(40):
        path = tmp_path / f"u{round_}.db"
        start = threading.Barrier(4)

        def open_and_close(path: Path = path, start: threading.Barrier = start) -> None:
            start.wait(30)
            try:
                LedgerStore(path).close()
            except sqlite3.Error as error:
                errors.append(error)

        threads = [threading.Thread(target=open_and_close) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == []
