"""The only module that touches inbound sockets: asyncio streams framed by h11.

Theory of operation (after hypercorn): each accepted connection gets one task
running ``_Connection.run``, a loop of request cycles:

1. *Read a request.* Bytes go into the h11 connection until it yields a
   ``Request``. The first request of a connection must complete its headers
   within ``header_timeout``; later ones may idle ``keepalive_timeout`` before
   their first byte, then have ``header_timeout``. Headers beyond
   ``max_header_bytes`` get 431, malformed HTTP 400, a stalled request 408,
   each followed by a close. The body is read (gaps of at most
   ``header_timeout``, the whole within ``body_timeout`` plus its size at
   ``body_min_rate``) up to ``max_body_bytes``; beyond that, 413 and close,
   as soon as a declared length or chunk size says so. A request with both
   ``Content-Length`` and ``Transfer-Encoding`` is 400 and close (RFC 9112
   allows it; a proxy in front may frame it the other way).
2. *Respond.* The application runs in the connection's task; if the client
   goes away meanwhile (a reset, or a write that fails, noticed by the
   protocol), the task is cancelled at once, which closes its upstream
   request. A half-close (EOF while the client still reads, ``nc -N``) is not
   leaving: the answer is still written. EOF alone cannot tell a half-close
   from a client that closed its socket, so the server probes: on EOF it
   sends a ``100 Continue`` (or, once a stream's head is out, its keepalive)
   twice, a moment apart; a client that really left answers the first with
   a reset, the second write fails, and the request is cancelled. A
   streamed body is pulled one chunk at a time. Its head and chunks are
   queued and written when the task next waits (so what the upstream
   delivered in one piece leaves in one write, and nothing waits longer than
   that), and after each chunk the task waits while the client is not
   keeping up (``drain()``), so a slow client slows the producer instead of
   growing memory. While a stream is silent it gets its keepalive (the
   response's ``keepalive`` bytes, between chunks) every ``stream_keepalive``
   seconds (``keepalive.py``).
3. *Next cycle* if both sides keep the connection alive and the server is not
   shutting down.

At ``max_connections`` a new connection takes the slot of an idle keep-alive
connection or of one that has been reading its request the longest (see
``slots.py``); when no slot can be freed it is answered 503 and closed. Shutdown
stops listening, closes idle connections, lets busy ones finish within
``shutdown_timeout`` and then cancels them. No exception text ever reaches a
client: unexpected errors are logged with the request id and answered 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import h11

from .keepalive import StreamKeepalive
from .messages import Request, Response
from .raw_answers import default_error, raw_error, reason
from .slots import Phase, pick_displaced

__all__ = ["App", "HTTPServer", "ServerLimits", "new_request_id", "new_request_id_prefix"]

log = logging.getLogger("llm_gateway.server")

App = Callable[[Request], Awaitable[Response]]
#: (status, message, request path or "" when unknown) -> a complete error response;
#: the application picks the error's shape (its client format) from the path
ErrorRenderer = Callable[[int, str, str], Response]

_READ_SIZE = 65536
#: queued response bytes beyond this are written at once (see ``_queue``)
_QUEUE_LIMIT = 64 * 1024
_LINGER_SECONDS = 2.0
#: h11 events are immutable: one end-of-message serves every response
_END = h11.EndOfMessage()
_LINGER_BYTES = 8 * 1024 * 1024
#: a chunk size beyond this is no size at all (nginx's bound too): 400
_MAX_CHUNK_SIZE = 2**63 - 1
#: after a client's EOF, the delay before the second probe (see ``client_half_closed``)
_PROBE_DELAY = 0.5
_CONTINUE = h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")


_ID_PREFIX = "req_" + secrets.token_hex(6)
_id_counter = itertools.count(1)


def new_request_id() -> str:
    """Unique per process and across processes (a random prefix per process,
    then a counter): no system call per request."""
    return f"{_ID_PREFIX}{next(_id_counter):012x}"


def new_request_id_prefix() -> None:
    """Choose a fresh random prefix: a forked worker calls this first, so its ids
    do not repeat the parent's (and its siblings') prefix."""
    global _ID_PREFIX
    _ID_PREFIX = "req_" + secrets.token_hex(6)


@dataclass(frozen=True, slots=True)
class ServerLimits:
    max_body_bytes: int = 32 * 1024 * 1024
    max_header_bytes: int = 64 * 1024
    header_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    max_connections: int = 1024
    shutdown_timeout: float = 30.0
    max_requests_per_connection: int = 10_000
    #: longest wait for a client to take more of a response it stopped reading
    send_timeout: float = 120.0
    #: a whole body must arrive within ``body_timeout`` + its size / ``body_min_rate``
    body_timeout: float = 30.0
    body_min_rate: int = 65536
    #: seconds of silence before a stream gets its keepalive (0: never)
    stream_keepalive: float = 15.0
    #: at ``max_connections``, a connection reading its request this long may be displaced
    displace_after: float = 1.0


def _head_size(head: h11.Request) -> int:
    """The size of a request line and headers as sent (give or take whitespace)."""
    line = len(head.method) + len(head.target) + len(b"  HTTP/1.1\r\n")
    fields = head.headers.raw_items()
    return line + sum(len(k) + len(v) + len(b": \r\n") for k, v in fields) + 2


async def _linger(reader: asyncio.StreamReader) -> None:
    """Read and discard what the client is still sending, briefly, before closing.

    Closing a socket with unread input makes the kernel send a reset, which can
    destroy the error response before the client reads it (a 413 for a large
    upload is the classic case). Bounded in time and bytes.
    """
    deadline = time.monotonic() + _LINGER_SECONDS
    discarded = 0
    with contextlib.suppress(OSError, asyncio.TimeoutError):
        while discarded < _LINGER_BYTES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            data = await asyncio.wait_for(reader.read(_READ_SIZE), remaining)
            if not data:
                break
            discarded += len(data)


class _Closed(Exception):
    """The connection is done (peer gone, timeout handled, error answered)."""


class _Refused(Exception):
    """A request the server answers itself with ``status`` and closes."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class _Protocol(asyncio.StreamReaderProtocol):
    """asyncio's stream protocol, plus a word to the connection when the client
    half-closes or leaves.

    Noticing EOF or a lost connection here, instead of keeping a read pending
    in a second task while a response is produced, costs nothing per request.
    """

    connection: _Connection | None = None

    def eof_received(self) -> bool:
        keep_open = bool(super().eof_received())
        if self.connection is not None:
            self.connection.client_half_closed()
        return keep_open

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.connection is not None:
            self.connection.client_gone()


class _Connection:
    def __init__(
        self,
        server: HTTPServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ):
        self.server = server
        self.limits = server.limits
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(
            h11.SERVER, max_incomplete_event_size=self.limits.max_header_bytes
        )
        self.phase = Phase.READING
        #: when the connection entered its phase (``time.monotonic()``)
        self.since = time.monotonic()
        self.last_cycle = False
        self.task: asyncio.Task[None] | None = None
        self.gone = False
        #: the keepalive bytes of the stream being written, if any
        self._stream_keepalive = b""
        self._keepalive: StreamKeepalive | None = None
        self._timed_out = False
        #: the path of the request being read, once its head is in (for error shapes)
        self._path = ""
        self._loop = asyncio.get_running_loop()
        #: framed bytes waiting for ``_flush`` (see ``_queue``)
        self._queued: list[bytes] = []
        self._flush_handle: asyncio.Handle | None = None
        peer = writer.get_extra_info("peername")
        self.client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else ""

    @property
    def idle(self) -> bool:
        """Not answering a request (so shutdown may close it at once)."""
        return self.phase is not Phase.ANSWERING

    def _enter(self, phase: Phase) -> None:
        self.phase = phase
        self.since = time.monotonic()

    def client_gone(self) -> None:
        """The connection is lost (reset, failed write): stop any response at once."""
        if self.gone:
            return
        self.gone = True
        if not self.idle and self.task is not None and not self.task.done():
            self.task.cancel()  # this closes the upstream request behind the response

    def client_half_closed(self) -> None:
        """EOF: the client sends no more, but may still read. Its answer is still
        written; meanwhile two probes a moment apart ask whether it is there: a
        client that closed its socket answers the first with a reset, and the
        second write fails (``client_gone``)."""
        if self.phase is Phase.ANSWERING:
            self._send_probe()
            self._loop.call_later(_PROBE_DELAY, self._send_probe)

    def _send_probe(self) -> None:
        """A ``100 Continue`` before the response's head (HTTP/1.1 clients skip 1xx
        answers; HTTP/1.0 clients must not get one), the stream's keepalive after it."""
        if self.phase is not Phase.ANSWERING or self._queued or not self._writable():
            return
        if self.h11.our_state is not h11.SEND_RESPONSE:
            self._send_keepalive()
        elif self.h11.their_http_version != b"1.0":
            self.writer.write(self.h11.send(_CONTINUE) or b"")

    def displace(self) -> None:
        """Give up this (idle or reading) connection's slot: end its read now."""
        self._expire()

    def _send_keepalive(self) -> bool:
        """Write the stream's keepalive, when the stream is between chunks and the
        client is taking what it is sent; True when written."""
        if (
            not self._stream_keepalive
            or self._queued
            or not self._writable()
            or self.h11.our_state is not h11.SEND_BODY
        ):
            return False
        self.writer.write(self.h11.send(h11.Data(data=self._stream_keepalive)) or b"")
        return True

    def _writable(self) -> bool:
        """The client is there and has taken everything written so far."""
        transport = self.writer.transport
        return not (self.gone or transport.is_closing() or transport.get_write_buffer_size())

    async def run(self) -> None:
        try:
            for cycle in range(self.limits.max_requests_per_connection):
                self.last_cycle = cycle == self.limits.max_requests_per_connection - 1
                request = await self._read_request(first=cycle == 0)
                self._enter(Phase.ANSWERING)
                keep_alive = await self._respond(request)
                self._enter(Phase.IDLE)
                if not keep_alive or self.server.closing:
                    break
                if self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
                    break
                self.h11.start_next_cycle()
        except _Closed:
            pass
        except (OSError, asyncio.IncompleteReadError):
            pass  # the peer went away mid-write; nothing left to tell it
        except asyncio.CancelledError:
            if not self.gone:
                raise  # shutdown, not the client
            log.info("client went away")
        finally:
            self._flush()
            self.writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await asyncio.wait_for(self.writer.wait_closed(), 1.0)

    # -- reading -----------------------------------------------------------------

    async def _receive(self, timeout: float) -> None:
        """Read once, within ``timeout`` seconds (``asyncio.TimeoutError`` after)."""
        handle = self._loop.call_later(timeout, self._expire)
        try:
            data = await self.reader.read(_READ_SIZE)
        finally:
            handle.cancel()
        if self._timed_out:
            raise asyncio.TimeoutError()
        self.h11.receive_data(data)

    def _expire(self) -> None:
        # Ending the reader's input wakes the pending read; the flag tells it why.
        # The connection is finished either way (408 or a silent close).
        self._timed_out = True
        self.reader.feed_eof()

    async def _read_request(self, *, first: bool) -> Request:
        request_id = new_request_id()
        try:
            return await self._read_request_inner(first=first, request_id=request_id)
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint if exc.error_status_hint in (400, 431) else 400
            message = "request headers too large" if status == 431 else "malformed HTTP request"
            await self._fail(status, message, request_id)
        except _Refused as refused:
            await self._fail(refused.status, refused.message, request_id)
        except asyncio.TimeoutError:
            if self.h11.their_state is h11.IDLE and not self._has_partial_request():
                raise _Closed() from None  # idle keep-alive connection: just close
            await self._fail(408, "request not received in time", request_id)
        raise _Closed()

    def _has_partial_request(self) -> bool:
        return bool(self.h11.trailing_data[0])

    async def _read_request_inner(self, *, first: bool, request_id: str) -> Request:
        limits = self.limits
        self._path = ""
        event = self.h11.next_event()
        if event is h11.NEED_DATA and not first:
            # An idle keep-alive connection may wait this long for its next request.
            await self._receive(limits.keepalive_timeout)
            event = self.h11.next_event()
        if not first:
            self._enter(Phase.READING)
        deadline = time.monotonic() + limits.header_timeout
        while not isinstance(event, h11.Request):
            if isinstance(event, h11.ConnectionClosed):
                raise _Closed()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise asyncio.TimeoutError()
            await self._receive(remaining)
            event = self.h11.next_event()
        self._path = event.target.partition(b"?")[0].decode("latin-1")
        if _head_size(event) > limits.max_header_bytes:
            # h11 bounds only an incomplete head; one that arrived whole can be larger.
            raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
        return await self._read_body(event, request_id)

    async def _read_body(self, head: h11.Request, request_id: str) -> Request:
        limits = self.limits
        # raw_items() is h11's plain list; iterating Headers itself goes through
        # the Sequence ABC one __getitem__ at a time.
        headers = [
            (k.lower().decode("latin-1"), v.decode("latin-1")) for k, v in head.headers.raw_items()
        ]
        declared = next((v for k, v in headers if k == "content-length"), None)
        if declared is not None and any(k == "transfer-encoding" for k, _ in headers):
            raise _Refused(400, "a request must not have both Content-Length and Transfer-Encoding")
        size = int(declared) if declared is not None and declared.isdigit() else 0
        if size > limits.max_body_bytes:
            raise _Refused(413, self._too_large())
        if self.h11.they_are_waiting_for_100_continue:
            await self._write(_CONTINUE)
        body = bytearray()
        start = time.monotonic()
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self._check_chunk(len(body))
                allowed = self._body_allowance(max(size, len(body)))
                remaining = start + allowed - time.monotonic()
                if remaining <= 0:
                    raise asyncio.TimeoutError()
                await self._receive(min(limits.header_timeout, remaining))
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > limits.max_body_bytes:
                    raise _Refused(413, self._too_large())
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise _Closed()
        target = head.target.decode("latin-1")
        path, _, query = target.partition("?")
        return Request(
            method=head.method.decode("ascii"),
            path=path,
            query=query,
            headers=headers,
            body=bytes(body),
            request_id=request_id,
            client=self.client,
        )

    def _too_large(self) -> str:
        return f"request body exceeds the limit of {self.limits.max_body_bytes} bytes"

    def _body_allowance(self, size: int) -> float:
        """Seconds a body of ``size`` bytes may take to arrive, in total."""
        rate = self.limits.body_min_rate
        return self.limits.body_timeout + (size / rate if rate else 0.0)

    def _check_chunk(self, received: int) -> None:
        """Refuse at once a chunk whose declared size cannot fit (instead of waiting
        for bytes that would be refused anyway, or never come)."""
        # h11 keeps the size of the chunk it is reading to itself.
        reader = getattr(self.h11, "_reader", None)
        pending = getattr(reader, "_bytes_in_chunk", 0)
        if not isinstance(pending, int) or not pending:
            return
        if pending > _MAX_CHUNK_SIZE:
            raise _Refused(400, "malformed HTTP request: chunk size out of range")
        if received + pending > self.limits.max_body_bytes:
            raise _Refused(413, self._too_large())

    async def _fail(self, status: int, message: str, request_id: str) -> None:
        """Answer a request we could not read, then let the caller close."""
        self._enter(Phase.CLOSING)
        log.info(
            "rejected request",
            extra={"request_id": request_id, "status": status, "reason": message},
        )
        response = self.server.render_error(status, message, self._path)
        with contextlib.suppress(OSError):
            self.writer.write(raw_error(response, request_id))
            await asyncio.wait_for(self.writer.drain(), self.limits.header_timeout)
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            if self.writer.can_write_eof():
                self.writer.write_eof()
        await _linger(self.reader)

    # -- responding --------------------------------------------------------------

    async def _respond(self, request: Request) -> bool:
        """Run the application for ``request``; False when the connection must close.

        If the client leaves meanwhile, ``client_gone`` cancels this task.
        """
        if self.gone:
            return False
        return await self._handle(request)

    async def _handle(self, request: Request) -> bool:
        try:
            response = await self.server.app(request)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unhandled error", extra={"request_id": request.request_id})
            response = self.server.render_error(500, "internal error", request.path)
        return await self._send(request, response)

    async def _write(self, *events: h11.Event) -> None:
        """Frame ``events`` and write them now (with anything queued before them)."""
        send = self.h11.send
        data = send(events[0]) if len(events) == 1 else b"".join([send(e) or b"" for e in events])
        if data:
            self._queued.append(data)
        self._flush()
        await self._drain()

    def _queue(self, event: h11.Event) -> None:
        """Frame ``event`` and send it once this task waits for something (or sooner).

        A stream's head, its chunks and its end are queued: what the upstream
        delivered in one piece leaves in one write, and a chunk never waits
        longer than until the task next waits (the flush runs on the loop's
        next pass, before it blocks).
        """
        data = self.h11.send(event)
        if data:
            self._queued.append(data)
            if self._flush_handle is None:
                self._flush_handle = self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        queued = self._queued
        if queued:
            data = queued[0] if len(queued) == 1 else b"".join(queued)
            queued.clear()
            self.writer.write(data)

    async def _drain(self) -> None:
        """Wait while the client is not keeping up with what was written."""
        transport = self.writer.transport
        buffered = transport.get_write_buffer_size()
        if buffered == 0 and not transport.is_closing():
            return  # the kernel took it all: nothing to wait for
        if buffered > transport.get_write_buffer_limits()[1]:
            # The client is not keeping up: wait, but not forever.
            await asyncio.wait_for(self.writer.drain(), self.limits.send_timeout)
        else:
            await self.writer.drain()

    async def _send(self, request: Request, response: Response) -> bool:
        body = response.body
        try:
            return await self._send_message(request, response)
        finally:
            # A streamed body is closed even if the client left before its first
            # chunk: that is what frees the upstream connection behind it.
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _send_message(self, request: Request, response: Response) -> bool:
        headers = [(k, v) for k, v in response.headers if k != "content-length"]
        headers.append(("x-request-id", request.request_id))
        body = response.body
        if isinstance(body, bytes):
            headers.append(("content-length", str(len(body))))
        if self.server.closing or self.last_cycle:
            headers.append(("connection", "close"))
        head = h11.Response(
            status_code=response.status, headers=headers, reason=reason(response.status)
        )
        if isinstance(body, bytes):
            # Head, body and end in one write: one system call per response.
            events: list[h11.Event] = [head]
            if body and request.method != "HEAD":
                events.append(h11.Data(data=body))
            events.append(_END)
            await self._write(*events)
            return self.h11.our_state is h11.DONE
        # A stream's head goes out no later than when the first chunk is awaited:
        # a client may wait long for the first event (a model thinking) and
        # should know meanwhile that it was accepted.
        self._queue(head)
        self._start_keepalive(response.keepalive)
        try:
            async for chunk in body:
                if chunk:
                    self._queue(h11.Data(data=chunk))
                    if self._keepalive is not None:
                        self._keepalive.touch()
                    if self._queued_bytes() > _QUEUE_LIMIT:
                        self._flush()
                    await self._drain()
        except (OSError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("response stream failed", extra={"request_id": request.request_id})
            self._flush()  # what the client was sent so far, then the close
            return False  # cannot finish the message: close the connection
        finally:
            self._stop_keepalive()
        await self._write(_END)
        return self.h11.our_state is h11.DONE

    def _start_keepalive(self, keepalive: bytes) -> None:
        self._stream_keepalive = keepalive
        interval = self.limits.stream_keepalive
        if keepalive and interval > 0:
            self._keepalive = StreamKeepalive(self._loop, interval, self._send_keepalive)

    def _stop_keepalive(self) -> None:
        self._stream_keepalive = b""
        if self._keepalive is not None:
            self._keepalive.close()
            self._keepalive = None

    def _queued_bytes(self) -> int:
        return sum(len(data) for data in self._queued)


class HTTPServer:
    """Listens, accepts, and runs one ``_Connection`` per client."""

    def __init__(
        self,
        app: App,
        limits: ServerLimits,
        *,
        render_error: ErrorRenderer | None = None,
    ):
        self.app = app
        self.limits = limits
        self.render_error: ErrorRenderer = render_error or default_error
        self.closing = False
        self._server: asyncio.AbstractServer | None = None
        self._connections: dict[asyncio.Task[None], _Connection] = {}

    @property
    def active_connections(self) -> int:
        return len(self._connections)

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> list[int]:
        """Bind and listen; returns the bound ports (useful with port 0)."""
        loop = asyncio.get_running_loop()

        def protocol() -> _Protocol:
            return _Protocol(asyncio.StreamReader(limit=_READ_SIZE, loop=loop), self._accept)

        self._server = await loop.create_server(
            protocol,
            host=host or None,
            port=port,
            reuse_address=True,
            reuse_port=reuse_port or None,
            backlog=min(4096, max(128, self.limits.max_connections)),
        )
        return sorted({s.getsockname()[1] for s in self._server.sockets})

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if len(self._connections) >= self.limits.max_connections:
            self._free_a_slot()
        if self.closing or len(self._connections) >= self.limits.max_connections:
            with contextlib.suppress(OSError):
                response = self.render_error(503, "too many connections", "")
                writer.write(raw_error(response, new_request_id()))
                await asyncio.wait_for(writer.drain(), 1.0)
            writer.close()
            return
        connection = _Connection(self, reader, writer)
        task = asyncio.current_task()
        assert task is not None
        connection.task = task
        protocol = writer.transport.get_protocol()
        if isinstance(protocol, _Protocol):
            protocol.connection = connection
        self._connections[task] = connection
        try:
            await connection.run()
        except asyncio.CancelledError:
            pass
        finally:
            self._connections.pop(task, None)

    def _free_a_slot(self) -> None:
        """Displace an idle or slow-reading connection, if one qualifies (``slots.py``)."""
        victim = pick_displaced(
            ((task, c.phase, c.since) for task, c in self._connections.items()),
            time.monotonic(),
            self.limits.displace_after,
        )
        if victim is not None:
            # Its task answers or closes it on its own; the slot is free from now.
            self._connections.pop(victim).displace()

    async def shutdown(self) -> None:
        """Stop listening; let in-flight requests finish within the deadline."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        for task, connection in list(self._connections.items()):
            if connection.idle:
                task.cancel()
        pending = set(self._connections)
        if pending:
            _, still = await asyncio.wait(pending, timeout=self.limits.shutdown_timeout)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=1.0)
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
