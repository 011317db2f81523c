"""One finished request, as the ledger keeps it.

A ``LedgerRecord`` is built once, when the response to the client is complete
(for a stream, when it ended or the client left), from what the request path
noted. ``input_tokens`` excludes cache reads and writes (Anthropic's meaning);
``cache_write_tokens`` counts every cache write, ``cache_write_1h_tokens`` the
part of them written for one hour; ``reasoning_tokens`` is part of
``output_tokens``.

It is a ``NamedTuple``, not a dataclass: one is built for every request on
the event loop, and a named tuple is built in a third of the time of a frozen
dataclass; its fields are the table's columns, in order, so the row to insert
is a plain copy (``tuple(record)``), not one attribute read per column.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["COLUMNS", "LedgerRecord"]


class LedgerRecord(NamedTuple):
    #: wall-clock seconds since the epoch when the request finished
    time: float
    request_id: str
    key_id: str
    account_id: str
    client_format: str
    upstream_format: str
    model: str
    upstream_model: str
    status: int
    error_kind: str
    attempts: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cache_write_1h_tokens: int
    reasoning_tokens: int
    duration_ms: float
    ttfb_ms: float | None
    streamed: bool
    cost: float


#: the record's fields, in the order of the table's columns
COLUMNS: tuple[str, ...] = LedgerRecord._fields
