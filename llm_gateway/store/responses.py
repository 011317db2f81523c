"""Responses kept for ``previous_response_id``: an SQLite file in the gateway's home.

Theory of operation: a converted Responses exchange (the upstream keeps
nothing) is saved as one row: the whole input the turn was answered from,
the output items, and the response object the client got, as JSON sealed
with the gateway's secret key (``crypto.sealing``, like the credentials).
Rows are keyed by (gateway key id, response id), and the sealing context
names both, so one key can neither find nor open another key's responses.

The same file remembers which account answered a turn that went to an
OpenAI Responses account untouched (``chains`` rows: that upstream keeps
the turn, the gateway only where it lives), so a ``previous_response_id``
chain stays on its account, and ``GET``/``DELETE`` reach it, after a
restart. Such a row holds ids and a model name, nothing the conversation
said, so it is not sealed; it is keyed by gateway key like the rest.

Crash safety: SQLite in WAL mode with ``synchronous=FULL``; a write is a
transaction, so a crash leaves the file with or without the row, never
half of it. Bounds: rows older than ``max_age`` are neither read nor kept,
and after every write the oldest rows beyond ``max_stored`` are deleted
(kept turns and chain rows each).

Everything here blocks (file I/O): the request path calls the ``a*``
methods, which run on a worker thread; one lock serialises the connection.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..crypto.sealing import seal, unseal
from ..errors import SecretKeyError
from .wal import enable_wal

__all__ = ["FILE_NAME", "ChainOwner", "ResponseStore", "StoredResponse"]

FILE_NAME = "responses.sqlite3"

#: seconds a statement waits for another process's lock on the file
_BUSY_TIMEOUT = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key_id TEXT NOT NULL,
    id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    created REAL NOT NULL,
    sealed TEXT NOT NULL,
    PRIMARY KEY (key_id, id)
);
CREATE INDEX IF NOT EXISTS responses_created ON responses (created);
CREATE TABLE IF NOT EXISTS chains (
    key_id TEXT NOT NULL,
    id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    model TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (key_id, id)
);
CREATE INDEX IF NOT EXISTS chains_created ON chains (created);
"""


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One kept turn: what it was answered from, what it answered, who served it."""

    id: str
    account_id: str
    created: float
    #: the input items the turn was answered from (earlier turns included)
    input_items: tuple[Any, ...]
    #: the response's output items
    output_items: tuple[Any, ...]
    #: the response object as the client got it
    response: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChainOwner:
    """The account an upstream-kept response lives on, and the model the client named."""

    account_id: str
    model: str


def _context(key_id: str, response_id: str) -> str:
    return f"responses/{key_id}/{response_id}"


class ResponseStore:
    """The file of kept responses; ``secret_key`` gives the sealing key when needed."""

    def __init__(self, path: Path, secret_key: Callable[[], bytes]):
        self.path = path
        self._secret_key = secret_key
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    # -- blocking operations ----------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            db = sqlite3.connect(
                str(self.path),
                timeout=_BUSY_TIMEOUT,
                check_same_thread=False,
                isolation_level=None,
            )
            enable_wal(db, _BUSY_TIMEOUT)
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def put(self, key_id: str, record: StoredResponse, *, max_stored: int, max_age: float) -> None:
        """Keep ``record`` for ``key_id``; drop what is too old or beyond the count."""
        plain = json.dumps(
            {
                "input": list(record.input_items),
                "output": list(record.output_items),
                "response": record.response,
            },
            separators=(",", ":"),
        )
        sealed = seal(self._secret_key(), plain, context=_context(key_id, record.id))
        row = (key_id, record.id, record.account_id, record.created, sealed)
        self._insert_bounded("responses", row, record.created - max_age, max_stored)

    def get(
        self, key_id: str, response_id: str, *, now: float, max_age: float
    ) -> StoredResponse | None:
        """The response ``response_id`` kept for ``key_id`` (None: unknown, or too old)."""
        with self._lock:
            row = (
                self._connect()
                .execute(
                    "SELECT account_id, created, sealed FROM responses WHERE key_id = ? AND id = ?",
                    (key_id, response_id),
                )
                .fetchone()
            )
        if row is None or row[1] < now - max_age:
            return None
        try:
            data = json.loads(
                unseal(self._secret_key(), row[2], context=_context(key_id, response_id))
            )
        except SecretKeyError:
            return None  # sealed with another secret key: as good as gone
        return StoredResponse(
            id=response_id,
            account_id=row[0],
            created=row[1],
            input_items=tuple(data["input"]),
            output_items=tuple(data["output"]),
            response=data["response"],
        )

    def delete(self, key_id: str, response_id: str) -> bool:
        """Forget a response; False when ``key_id`` had none by that id."""
        with self._lock:
            db = self._connect()
            with db:
                cursor = db.execute(
                    "DELETE FROM responses WHERE key_id = ? AND id = ?", (key_id, response_id)
                )
        return cursor.rowcount > 0

    def put_owner(
        self,
        key_id: str,
        response_id: str,
        owner: ChainOwner,
        *,
        created: float,
        max_stored: int,
        max_age: float,
    ) -> None:
        """Remember that ``owner``'s account keeps ``response_id`` (made with ``key_id``)."""
        row = (key_id, response_id, owner.account_id, owner.model, created)
        self._insert_bounded("chains", row, created - max_age, max_stored)

    def _insert_bounded(
        self, table: str, row: tuple[object, ...], oldest: float, max_stored: int
    ) -> None:
        """Insert ``row`` into ``table`` (one of this file's own two), then drop the rows
        created before ``oldest`` and all but the newest ``max_stored``, in one transaction."""
        with self._lock:
            db = self._connect()
            with db:
                db.execute("BEGIN IMMEDIATE")
                db.execute(f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?, ?)", row)
                db.execute(f"DELETE FROM {table} WHERE created < ?", (oldest,))
                db.execute(
                    f"DELETE FROM {table} WHERE rowid NOT IN "
                    f"(SELECT rowid FROM {table} ORDER BY created DESC, rowid DESC LIMIT ?)",
                    (max_stored,),
                )

    def owner(
        self, key_id: str, response_id: str, *, now: float, max_age: float
    ) -> ChainOwner | None:
        """Where ``response_id`` lives (None: not a turn ``key_id`` sent to such an account)."""
        with self._lock:
            row = (
                self._connect()
                .execute(
                    "SELECT account_id, model, created FROM chains WHERE key_id = ? AND id = ?",
                    (key_id, response_id),
                )
                .fetchone()
            )
        if row is None or row[2] < now - max_age:
            return None
        return ChainOwner(row[0], row[1])

    def forget_owner(self, key_id: str, response_id: str) -> None:
        with self._lock:
            db = self._connect()
            with db:
                db.execute("DELETE FROM chains WHERE key_id = ? AND id = ?", (key_id, response_id))

    def count(self) -> int:
        with self._lock:
            row = self._connect().execute("SELECT COUNT(*) FROM responses").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- off the event loop -------------------------------------------------------------

    async def aput(
        self, key_id: str, record: StoredResponse, *, max_stored: int, max_age: float
    ) -> None:
        await asyncio.to_thread(self.put, key_id, record, max_stored=max_stored, max_age=max_age)

    async def aget(
        self, key_id: str, response_id: str, *, now: float, max_age: float
    ) -> StoredResponse | None:
        return await asyncio.to_thread(self.get, key_id, response_id, now=now, max_age=max_age)

    async def adelete(self, key_id: str, response_id: str) -> bool:
        return await asyncio.to_thread(self.delete, key_id, response_id)

    async def aput_owner(
        self,
        key_id: str,
        response_id: str,
        owner: ChainOwner,
        *,
        created: float,
        max_stored: int,
        max_age: float,
    ) -> None:
        await asyncio.to_thread(
            self.put_owner,
            key_id,
            response_id,
            owner,
            created=created,
            max_stored=max_stored,
            max_age=max_age,
        )

    async def aowner(
        self, key_id: str, response_id: str, *, now: float, max_age: float
    ) -> ChainOwner | None:
        return await asyncio.to_thread(self.owner, key_id, response_id, now=now, max_age=max_age)

    async def aforget_owner(self, key_id: str, response_id: str) -> None:
        await asyncio.to_thread(self.forget_owner, key_id, response_id)
