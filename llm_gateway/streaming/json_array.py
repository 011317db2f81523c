"""A stream of JSON objects as one JSON array, written as it arrives.

Theory of operation: Google serves ``:streamGenerateContent`` without
``alt=sse`` as a JSON array whose elements arrive one by one:
``[{...},\\n{...}]``. The gateway produces every stream as SSE; this framer
takes a client stream's SSE bytes and writes each event's ``data`` as the
next element instead: ``[`` before the first, ``,\\n`` between elements, and
``]`` when ``finish`` is called (``[]`` for a stream without events). Pure:
bytes in, bytes out, one instance per stream.
"""

from __future__ import annotations

from llm_gateway.streaming.sse import SSEDecoder, SSEEvent

__all__ = ["CONTENT_TYPE", "JSONArrayFramer"]

CONTENT_TYPE = "application/json; charset=utf-8"


class JSONArrayFramer:
    """SSE bytes -> the elements of a JSON array (one instance per stream)."""

    __slots__ = ("_decoder", "_started")

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        self._started = False

    def feed(self, data: bytes) -> bytes:
        return self._elements(self._decoder.feed(data)) if data else b""

    def finish(self) -> bytes:
        out = self._elements(self._decoder.close())
        return out + (b"]" if self._started else b"[]")

    def _elements(self, events: list[SSEEvent]) -> bytes:
        out: list[bytes] = []
        for event in events:
            if not event.data.strip():
                continue
            out.append(b",\n" if self._started else b"[")
            out.append(event.data.encode("utf-8"))
            self._started = True
        return b"".join(out)
