"""Reading the ledger: the query API of the CLI and the admin endpoints.

``LedgerReader(path)`` opens the file read-only per call (a missing file reads
as empty) and answers three questions: ``summary`` (totals grouped by key,
model, account, day or hour), ``recent`` (the latest records, newest first,
filtered) and ``series`` (totals per time bucket, for charts). ``spent`` is a
key's cost since a time, for budgets. Times are seconds since the epoch; days
and hours are UTC. This API is stable: the admin page reads it.
"""

from __future__ import annotations

import fnmatch
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .budgets import period_bounds
from .records import COLUMNS, LedgerRecord
from .store import connect

__all__ = [
    "GROUPS",
    "BudgetUse",
    "LedgerReader",
    "SeriesPoint",
    "SummaryRow",
    "status_matches",
]

#: ``summary(by=...)`` -> the SQL expression of the group
GROUPS = {
    "key": "key_id",
    "model": "model",
    "account": "account_id",
    "day": "strftime('%Y-%m-%d', time, 'unixepoch')",
    "hour": "strftime('%Y-%m-%dT%H:00Z', time, 'unixepoch')",
}

_TOTALS = (
    "COUNT(*), SUM(status >= 400), SUM(input_tokens), SUM(output_tokens), "
    "SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(reasoning_tokens), SUM(cost)"
)


@dataclass(frozen=True, slots=True)
class SummaryRow:
    group: str
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost: float

    @property
    def cache_hit_rate(self) -> float:
        """Cache reads over every input token (fresh, cache read, cache write)."""
        prompt = self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
        return self.cache_read_tokens / prompt if prompt else 0.0


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    #: the bucket's start (seconds since the epoch)
    start: float
    group: str
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost: float


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """A key's spend in its current budget period (UTC)."""

    spent: float
    start: float
    end: float


def status_matches(pattern: str, status: int) -> bool:
    """``5xx``, ``4xx``, ``429``, ``ok`` (below 400) or ``error`` (400 and above)."""
    if pattern == "ok":
        return status < 400
    if pattern == "error":
        return status >= 400
    if len(pattern) == 3 and pattern.endswith("xx") and pattern[0].isdigit():
        return status // 100 == int(pattern[0])
    return pattern.isdigit() and int(pattern) == status


def _row(values: tuple[object, ...]) -> SummaryRow:
    group, count, errors, inp, out, read, write, reasoning, cost = values
    return SummaryRow(
        str(group),
        int(count or 0),  # type: ignore[call-overload]
        int(errors or 0),  # type: ignore[call-overload]
        int(inp or 0),  # type: ignore[call-overload]
        int(out or 0),  # type: ignore[call-overload]
        int(read or 0),  # type: ignore[call-overload]
        int(write or 0),  # type: ignore[call-overload]
        int(reasoning or 0),  # type: ignore[call-overload]
        float(cost or 0.0),  # type: ignore[arg-type]
    )


def _record(values: tuple[object, ...]) -> LedgerRecord:
    record = LedgerRecord(*values)  # type: ignore[arg-type]
    return record._replace(streamed=bool(record.streamed))


class LedgerReader:
    def __init__(self, path: Path):
        self.path = path

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection | None]:
        if not self.path.exists():
            yield None
            return
        conn = connect(self.path, readonly=True)
        try:
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'requests'")
            yield conn if found.fetchone() else None  # a file being created reads as empty
        finally:
            conn.close()

    def summary(
        self, since: float | None = None, until: float | None = None, by: str = "model"
    ) -> list[SummaryRow]:
        """Totals per group, largest cost first (days and hours in time order)."""
        group = GROUPS[by]
        where, args = _window(since, until)
        order = "1" if by in ("day", "hour") else "9 DESC, 1"
        sql = f"SELECT {group}, {_TOTALS} FROM requests{where} GROUP BY 1 ORDER BY {order}"
        with self._conn() as conn:
            if conn is None:
                return []
            return [_row(r) for r in conn.execute(sql, args)]

    def total(self, since: float | None = None, until: float | None = None) -> SummaryRow:
        where, args = _window(since, until)
        with self._conn() as conn:
            if conn is None:
                return _row(("total", 0, 0, 0, 0, 0, 0, 0, 0.0))
            values = conn.execute(f"SELECT 'total', {_TOTALS} FROM requests{where}", args)
            return _row(values.fetchone())

    def recent(
        self,
        limit: int = 50,
        *,
        key: str | None = None,
        model: str | None = None,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[LedgerRecord]:
        """The latest records, newest first; ``model`` is a glob, ``status`` as in
        ``status_matches``."""
        where, args = _window(since, until)
        if key is not None:
            where += " AND key_id = ?" if where else " WHERE key_id = ?"
            args.append(key)
        sql = f"SELECT {', '.join(COLUMNS)} FROM requests{where} ORDER BY time DESC, rowid DESC"
        found: list[LedgerRecord] = []
        with self._conn() as conn:
            if conn is None:
                return found
            for values in conn.execute(sql, args):
                record = _record(values)
                if model is not None and not fnmatch.fnmatchcase(record.model, model):
                    continue
                if status is not None and not status_matches(status, record.status):
                    continue
                found.append(record)
                if len(found) >= limit:
                    break
        return found

    def records(
        self, since: float | None = None, until: float | None = None
    ) -> Iterator[LedgerRecord]:
        """Every record in the window, oldest first (for exports)."""
        where, args = _window(since, until)
        sql = f"SELECT {', '.join(COLUMNS)} FROM requests{where} ORDER BY time, rowid"
        with self._conn() as conn:
            if conn is None:
                return
            for values in conn.execute(sql, args):
                yield _record(values)

    def series(
        self,
        since: float,
        until: float,
        step: float,
        by: str | None = None,
    ) -> list[SeriesPoint]:
        """Totals per ``step`` seconds from ``since`` (buckets with no request are
        absent), optionally split by ``key``, ``model`` or ``account``."""
        group = GROUPS[by] if by is not None else "''"
        where, args = _window(since, until)
        sql = (
            f"SELECT CAST((time - ?) / ? AS INTEGER), {group}, COUNT(*), SUM(status >= 400),"
            " SUM(input_tokens + cache_read_tokens + cache_write_tokens),"
            f" SUM(output_tokens), SUM(cost) FROM requests{where} GROUP BY 1, 2 ORDER BY 1, 2"
        )
        with self._conn() as conn:
            if conn is None:
                return []
            return [
                SeriesPoint(
                    since + int(b) * step,
                    str(g),
                    int(n),
                    int(e or 0),
                    int(i or 0),
                    int(o or 0),
                    float(c or 0.0),
                )
                for b, g, n, e, i, o, c in conn.execute(sql, [since, step, *args])
            ]

    def spent(self, key_id: str, since: float) -> float:
        """What ``key_id``'s requests cost since ``since``."""
        with self._conn() as conn:
            if conn is None:
                return 0.0
            cursor = conn.execute(
                "SELECT SUM(cost) FROM requests WHERE key_id = ? AND time >= ?", (key_id, since)
            )
            value = cursor.fetchone()[0]
            return float(value or 0.0)

    def budget_use(self, key_id: str, period: str, now: float) -> BudgetUse:
        """What ``key_id`` spent in the ``period`` (day, week, month) holding ``now``."""
        start, end = period_bounds(period, now)
        return BudgetUse(self.spent(key_id, start), start, end)


def _window(since: float | None, until: float | None) -> tuple[str, list[object]]:
    clauses, args = [], []
    if since is not None:
        clauses.append("time >= ?")
        args.append(since)
    if until is not None:
        clauses.append("time < ?")
        args.append(until)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), list(args)
