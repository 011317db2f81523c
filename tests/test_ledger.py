"""The ledger's file, writer thread and query API, without a gateway."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from conftest import wait_until

from llm_gateway.ledger.query import LedgerReader, status_matches
from llm_gateway.ledger.records import LedgerRecord
from llm_gateway.ledger.store import LedgerStore
from llm_gateway.ledger.writer import LedgerWriter

DAY = 86400.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def rec(i: int, **changes: object) -> LedgerRecord:
    base = LedgerRecord(
        time=T0 + i,
        request_id=f"req-{i}",
        key_id="k1",
        account_id="acct-a",
        client_format="openai-chat",
        upstream_format="anthropic-messages",
        model="claude-x",
        upstream_model="claude-x-1",
        status=200,
        error_kind="",
        attempts=1,
        input_tokens=100,
        output_tokens=10,
        cache_read_tokens=300,
        cache_write_tokens=100,
        cache_write_1h_tokens=0,
        reasoning_tokens=0,
        duration_ms=12.5,
        ttfb_ms=3.0,
        streamed=False,
        cost=0.5,
    )
    return base._replace(**changes)


def test_summary_groups_and_cache_hit_rate(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path / "u.db")
    store.insert(
        [
            rec(1),
            rec(2, key_id="k2", model="gpt-y", cost=2.0, cache_read_tokens=0),
            rec(3, status=502, error_kind="UpstreamError", cost=0.0),
            rec(int(DAY) + 5, key_id="k2", model="gpt-y", cost=1.0, cache_read_tokens=0),
        ]
    )
    reader = LedgerReader(tmp_path / "u.db")
    by_model = {r.group: r for r in reader.summary(by="model")}
    assert by_model["gpt-y"].requests == 2 and by_model["gpt-y"].cost == 3.0
    claude = by_model["claude-x"]
    assert (claude.requests, claude.errors, claude.cost) == (2, 1, 0.5)
    # cache reads over every input token: 600 / (200 + 600 + 200)
    assert claude.cache_hit_rate == 0.6
    assert [r.group for r in reader.summary(by="day")] == ["2026-01-01", "2026-01-02"]
    assert [r.group for r in reader.summary(by="key")] == ["k2", "k1"]  # largest cost first
    assert reader.summary(since=T0 + DAY, by="key")[0].requests == 1
    assert reader.total().requests == 4
    assert reader.spent("k2", T0 + DAY) == 1.0


def test_recent_newest_first_with_filters(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path / "u.db")
    store.insert([rec(i, status=200 if i % 3 else 503) for i in range(1, 10)])
    store.insert([rec(20, model="gpt-4o", key_id="k9")])
    reader = LedgerReader(tmp_path / "u.db")
    assert [r.request_id for r in reader.recent(3)] == ["req-20", "req-9", "req-8"]
    assert [r.request_id for r in reader.recent(10, status="5xx")] == ["req-9", "req-6", "req-3"]
    assert [r.request_id for r in reader.recent(10, model="gpt-*")] == ["req-20"]
    assert [r.request_id for r in reader.recent(10, key="k9")] == ["req-20"]
    assert reader.recent(1)[0] == rec(20, model="gpt-4o", key_id="k9")


def test_series_buckets(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path / "u.db")
    store.insert([rec(10), rec(70), rec(75, model="m2"), rec(200)])
    points = LedgerReader(tmp_path / "u.db").series(T0, T0 + 300, 60)
    assert [(p.start - T0, p.requests) for p in points] == [(0, 1), (60, 2), (180, 1)]
    split = LedgerReader(tmp_path / "u.db").series(T0, T0 + 300, 60, by="model")
    assert [(p.start - T0, p.group) for p in split] == [
        (0, "claude-x"),
        (60, "claude-x"),
        (60, "m2"),
        (180, "claude-x"),
    ]


def test_missing_file_reads_empty(tmp_path: Path) -> None:
    reader = LedgerReader(tmp_path / "none.db")
    assert reader.summary() == [] and reader.recent() == [] and reader.spent("k", 0) == 0.0
    assert not (tmp_path / "none.db").exists()


def test_status_patterns() -> None:
    assert status_matches("5xx", 502) and not status_matches("5xx", 429)
    assert status_matches("429", 429) and status_matches("error", 400)
    assert status_matches("ok", 200) and not status_matches("ok", 404)


def test_writer_batches_off_the_caller_and_retention(tmp_path: Path) -> None:
    path = tmp_path / "u.db"
    LedgerStore(path).insert([rec(0, time=T0 - 100 * DAY)])  # older than the retention
    writer = LedgerWriter(path, flush_interval=0.05, retention=90 * DAY, clock=lambda: T0 + 10)
    writer.start()
    for i in range(1, 501):
        writer.submit(rec(i))
    reader = LedgerReader(path)
    wait_until(lambda: reader.total().requests == 500, 30, "500 records written")
    writer.close()
    assert reader.recent(1, since=0, until=T0)[0:] == []  # the old one was pruned


def test_records_trickling_in_are_written_together_not_one_transaction_each(
    tmp_path: Path,
) -> None:
    """Under load records arrive one at a time; the thread wakes for a whole batch
    or at its interval, never once per record (one commit serves many requests)."""
    batches: list[int] = []
    writer = LedgerWriter(
        tmp_path / "u.db",
        batch_size=10,
        flush_interval=60,
        on_written=lambda b: batches.append(len(b)),
    )
    writer.start()
    for i in range(25):
        writer.submit(rec(i))
        time.sleep(0.005)  # time enough for a thread woken per record to take it alone
    wait_until(lambda: sum(batches) >= 20, 30, "two whole batches written")
    assert batches == [10, 10]  # the last 5 wait for the interval (here: a minute) ...
    writer.close()  # ... or for close
    assert batches == [10, 10, 5]
    assert LedgerReader(tmp_path / "u.db").total().requests == 25


def test_full_queue_drops_and_counts(tmp_path: Path) -> None:
    writer = LedgerWriter(tmp_path / "u.db", queue_size=3)  # not started: nothing drains
    for i in range(5):
        writer.submit(rec(i))
    assert writer.dropped == 2


def test_two_writers_at_once_never_locked(tmp_path: Path) -> None:
    """Two processes' writers (here: two connections in threads) committing at once."""
    path = tmp_path / "u.db"
    errors: list[BaseException] = []

    def write(prefix: str) -> None:
        try:
            store = LedgerStore(path)
            for batch in range(50):
                store.insert([rec(i, request_id=f"{prefix}-{batch}-{i}") for i in range(20)])
            store.close()
        except sqlite3.Error as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(p,)) for p in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert LedgerReader(path).total().requests == 2000
