"""The small, socket-free types the server and the application exchange.

The TCP layer turns h11 events into a ``Request`` and writes a ``Response``;
the application never sees a socket or h11. A response body is either bytes
or an async iterable of byte chunks (with an optional ``aclose``, always
called when the exchange ends) (streamed with backpressure: the next
chunk is pulled only after the previous one was written and drained).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..json_text import dumps_bytes

__all__ = ["Request", "Response", "json_response"]


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: str
    #: lower-cased header names, values as sent (latin-1 decoded)
    headers: list[tuple[str, str]]
    body: bytes
    request_id: str
    client: str = ""
    #: what the handler learned (key id, account, tokens...), for the access log
    notes: dict[str, object] = field(default_factory=dict)
    _index: dict[str, str] | None = field(default=None, repr=False)

    def header(self, name: str) -> str | None:
        """The value of a header (the first, if repeated); ``name`` in lower case."""
        if self._index is None:
            index: dict[str, str] = {}
            for key, value in self.headers:
                index.setdefault(key, value)
            self._index = index
        return self._index.get(name)

    @property
    def header_map(self) -> Mapping[str, str]:
        self.header("")
        assert self._index is not None
        return self._index


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | AsyncIterable[bytes] = b""
    #: for a streamed body whose chunks each end between events: what the server
    #: may send between chunks while the body is silent (``server.stream_keepalive``)
    keepalive: bytes = b""


def json_response(
    status: int, payload: Any, headers: list[tuple[str, str]] | None = None
) -> Response:
    body = dumps_bytes(payload)
    return Response(
        status=status,
        headers=[("content-type", "application/json"), *(headers or [])],
        body=body,
    )
