"""A response whose body is read from its connection on demand.

Theory of operation: ``ConnectionPool.request`` returns a ``Response`` as soon
as the headers arrived; the connection stays ACTIVE and belongs to the
response until the body is finished or abandoned. The body is read only when
the consumer asks for the next chunk, so a slow client slows the upstream
down instead of filling memory.

``aiter_bytes()`` applies the ``stream_idle`` timeout to every read, or the
shorter one ``wind_down`` sets once the consumer has all it needs.
``aread()`` also applies ``total``, counted from the start of the request.

Exactly one of two things ends a response's hold on its connection, and it
happens once:

* the body ends (h11 EndOfMessage): the connection has already become IDLE
  (or CLOSED when it cannot be kept alive) and is handed back to the pool;
* anything else (an error, cancellation of the reading task, the consumer
  leaving the loop, ``aclose()`` before the end): the connection is closed at
  once, so the upstream sees the TCP connection end, and the pool forgets it.

``aclose()`` is always safe to call, any number of times. Use
``async with response:`` (or ``finally: await response.aclose()``) so that a
consumer leaving early never leaves the connection busy until the garbage
collector finalises the body iterator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from types import TracebackType

from llm_gateway.upstream.connection import Connection, ResponseHead
from llm_gateway.upstream.errors import ResponseTooLarge, StreamIdleTimeout, TotalTimeout
from llm_gateway.upstream.timeouts import Budget, Timeouts

__all__ = ["Response"]


class Response:
    """Status and headers of an upstream response, and its streamed body."""

    def __init__(
        self,
        head: ResponseHead,
        connection: Connection,
        release: Callable[[Connection], None],
        timeouts: Timeouts,
        started: float,
    ) -> None:
        self.status: int = head.status
        self.reason: str = head.reason
        self.headers: list[tuple[str, str]] = head.headers
        self._connection = connection
        self._release = release
        self._timeouts = timeouts
        self._started = started
        self._claimed = False
        self._released = False
        self._tail_budget: Budget | None = None

    def __repr__(self) -> str:
        return f"<Response {self.status} from {self._connection.route.label}>"

    def header(self, name: str) -> str | None:
        """The header's value (several occurrences joined by ", "), or None."""
        wanted = name.lower()
        values = [value for key, value in self.headers if key == wanted]
        return ", ".join(values) if values else None

    def wind_down(self, seconds: float) -> None:
        """The consumer has what it needs: allow ``seconds`` of silence before each
        further read of ``aiter_bytes`` instead of ``stream_idle``. (The rest of the
        body, normally its end already on the way, still lets the connection be
        kept; an upstream that goes quiet instead costs only ``seconds``.)"""
        self._tail_budget = Budget.per_read(seconds, StreamIdleTimeout)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Yield body chunks as they arrive; at most ``stream_idle`` between them."""
        self._claim()
        budget = Budget.per_read(self._timeouts.stream_idle, StreamIdleTimeout)
        try:
            while True:
                chunk = await self._next_chunk(self._tail_budget or budget)
                if chunk is None:
                    return
                yield chunk
        finally:
            self._abandon()

    async def aread(self, max_bytes: int | None = None) -> bytes:
        """The whole body, within the ``total`` timeout of the request.

        Raises ResponseTooLarge (and closes the connection) once the body
        grows beyond ``max_bytes``.
        """
        self._claim()
        timeouts = self._timeouts
        budget = Budget.per_read(timeouts.stream_idle, StreamIdleTimeout).with_deadline(
            self._started, timeouts.total, TotalTimeout
        )
        parts: list[bytes] = []
        size = 0
        try:
            while True:
                chunk = await self._next_chunk(budget)
                if chunk is None:
                    return b"".join(parts)
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise ResponseTooLarge(
                        f"response body from {self._connection.route.label} "
                        f"exceeds {max_bytes} bytes"
                    )
                parts.append(chunk)
        finally:
            self._abandon()

    async def aclose(self) -> None:
        """Give the connection back if the body was read, else close it now."""
        self._abandon()

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _claim(self) -> None:
        if self._claimed:
            raise RuntimeError("the response body can be read only once")
        self._claimed = True

    async def _next_chunk(self, budget: Budget) -> bytes | None:
        if self._released:
            raise RuntimeError("the response was closed before its body was read")
        chunk = await self._connection.receive_body_chunk(budget)
        if chunk is None:  # the connection is IDLE or CLOSED now
            self._released = True
            self._release(self._connection)
        return chunk

    def _abandon(self) -> None:
        """Close the connection unless the body ended; idempotent."""
        if not self._released:
            self._released = True
            self._connection.close()
            self._release(self._connection)
