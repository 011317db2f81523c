"""The I/O edge: sockets, TLS, timeouts, and translation of foreign errors.

Theory of operation: this is the only module that touches the event loop's
transports. ``open_tcp`` makes a TCP connection and returns a
``NetworkStream``; ``NetworkStream.start_tls`` upgrades it in place (directly
after connecting, or inside a proxy's CONNECT tunnel) with
``loop.start_tls``, which exists on every Python this project supports
(``StreamWriter.start_tls`` is 3.11+). Because the stream owns a small
protocol object of its own rather than asyncio's StreamReader, the upgrade
needs no private attributes: the same protocol keeps receiving, now
decrypted, bytes.

Every wait is bounded by a ``Wait`` (seconds, error class, configured limit)
and every wait and every foreign exception passes through ``translating``,
the one place where OSError, ssl errors, h11 protocol errors, EOFError and
asyncio timeouts become this package's errors, chosen by the ``Phase``.

Backpressure: bytes are read from the socket only while the protocol's buffer
holds less than ``_HIGH_WATER``; above that the transport is paused until a
reader takes bytes. Writes wait for the transport to drain.

Closing is ``abort()``: the socket is closed at once, unsent data dropped.
The pool only closes connections that are idle (nothing to send) or that it
must drop immediately (cancelled, broken, partially read), so nothing is lost
and a peer always sees the close without delay.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import ssl
from types import TracebackType
from typing import cast

import h11

from llm_gateway.errors import UpstreamError
from llm_gateway.upstream.errors import (
    ConnectError,
    LocalResourceError,
    ProxyError,
    RemoteProtocolError,
    TLSError,
    timeout_message,
)
from llm_gateway.upstream.timeouts import Wait

__all__ = ["NetworkStream", "Phase", "open_tcp", "translating"]

_HIGH_WATER = 64 * 1024
#: errors that say this process or machine is out of descriptors or socket memory
_LOCAL_LIMITS = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))


class Phase(enum.Enum):
    """What the client was doing; the value starts the error message."""

    CONNECT = "connecting to"
    PROXY_CONNECT = "connecting to proxy"
    PROXY_TUNNEL = "opening a CONNECT tunnel to"
    TLS = "TLS handshake with"
    SEND = "sending the request to"
    RESPONSE_HEADERS = "waiting for response headers from"
    BODY = "reading the response body from"


_PHASE_ERRORS: dict[Phase, type[UpstreamError]] = {
    Phase.CONNECT: ConnectError,
    Phase.PROXY_CONNECT: ProxyError,
    Phase.PROXY_TUNNEL: ProxyError,
    Phase.TLS: TLSError,
    Phase.SEND: RemoteProtocolError,
    Phase.RESPONSE_HEADERS: RemoteProtocolError,
    Phase.BODY: RemoteProtocolError,
}


class translating:  # noqa: N801 - used like a function: ``with translating(...)``
    """Turn foreign exceptions raised inside the block into upstream errors.

    A small class rather than a ``@contextmanager`` generator: it runs several
    times per request, and the message is only built when something failed.
    """

    __slots__ = ("phase", "wait", "where")

    def __init__(self, phase: Phase, where: str, wait: Wait | None = None) -> None:
        self.phase = phase
        self.where = where
        self.wait = wait

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            return
        what = f"{self.phase.value} {self.where}"
        error = _PHASE_ERRORS[self.phase]
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
            wait = self.wait
            if wait is None:
                raise error(f"{what} failed: timed out") from exc
            raise wait.error(timeout_message(wait.error, what, wait.limit)) from None
        if isinstance(exc, OSError) and exc.errno in _LOCAL_LIMITS:
            raise LocalResourceError(
                f"{what} failed: the gateway is out of resources: {_reason(exc)}"
            ) from exc
        if isinstance(exc, (OSError, EOFError, h11.ProtocolError)):
            raise error(f"{what} failed: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _StreamProtocol(asyncio.Protocol):
    """Buffers received bytes for one reader; tracks EOF, loss and write pauses."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._eof = False
        self._error: Exception | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._read_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self.lost: asyncio.Future[None] = loop.create_future()

    # -- callbacks from the transport -------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        _wake(self._read_waiter)
        if len(self._buffer) > _HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._eof = True
        _wake(self._read_waiter)
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._error = exc
        _wake(self._read_waiter)
        _wake(self._drain_waiter)
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        _wake(self._drain_waiter)

    # -- used by NetworkStream --------------------------------------------
    @property
    def quiet(self) -> bool:
        """Nothing buffered and no EOF: an idle connection still looks usable."""
        return not self._buffer and not self._eof

    async def read(self, max_bytes: int, seconds: float) -> bytes:
        """Up to ``max_bytes``; b"" at a clean EOF; raises the loss error otherwise."""
        if not self._buffer and not self._eof:
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._read_waiter = waiter
            try:
                await _bounded(self._loop, waiter, seconds)
            finally:
                self._read_waiter = None
        if self._buffer:
            data = bytes(self._buffer[:max_bytes])
            del self._buffer[:max_bytes]
            if self._reading_paused and len(self._buffer) <= _HIGH_WATER // 2 and self.transport:
                self._reading_paused = False
                self.transport.resume_reading()
            return data
        if self._error is not None:
            raise ConnectionResetError(str(self._error) or "connection lost") from self._error
        return b""

    async def drain(self, seconds: float) -> None:
        while self._writing_paused and not self.lost.done():
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._drain_waiter = waiter
            try:
                await _bounded(self._loop, waiter, seconds)
            finally:
                self._drain_waiter = None
        if self.lost.done():
            raise ConnectionResetError("connection lost while sending")


async def _bounded(
    loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[None], seconds: float
) -> None:
    """Await our own ``waiter`` for at most ``seconds`` (then ``asyncio.TimeoutError``).

    A timer that fails the future costs a fraction of ``asyncio.wait_for``,
    which wraps the await in a task of its own; this runs for every read.
    """
    handle = loop.call_later(seconds, _time_out, waiter)
    try:
        await waiter
    finally:
        handle.cancel()


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(asyncio.TimeoutError())


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class NetworkStream:
    """A connected byte stream (TCP, maybe TLS) with bounded reads and writes."""

    def __init__(self, transport: asyncio.Transport, protocol: _StreamProtocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, phase: Phase, where: str, wait: Wait) -> bytes:
        with translating(phase, where, wait):
            return await self._protocol.read(max_bytes, wait.seconds)

    async def write(self, data: bytes, phase: Phase, where: str, wait: Wait) -> None:
        with translating(phase, where, wait):
            if self._transport.is_closing():
                raise ConnectionResetError("connection closed")
            self._transport.write(data)
            await self._protocol.drain(wait.seconds)

    async def start_tls(
        self, context: ssl.SSLContext, server_hostname: str, where: str, wait: Wait
    ) -> None:
        """Upgrade this stream to TLS in place, verifying ``server_hostname``."""
        loop = asyncio.get_running_loop()
        with translating(Phase.TLS, where, wait):
            upgrade = loop.start_tls(
                self._transport,
                self._protocol,
                context,
                server_hostname=server_hostname,
                # Our own wait below fires first and names the right error.
                ssl_handshake_timeout=wait.seconds + 1.0,
            )
            transport = await asyncio.wait_for(upgrade, wait.seconds)
        if transport is None:  # the loop returns None only if the transport closed
            raise TLSError(f"{Phase.TLS.value} {where} failed: connection closed")
        self._transport = transport
        self._protocol.transport = transport

    @property
    def quiet(self) -> bool:
        """True when an idle connection has no unread bytes, no EOF and is open."""
        return self._protocol.quiet and not self._transport.is_closing()

    def abort(self) -> None:
        """Close the socket now; the peer sees the connection end at once."""
        self._transport.abort()

    async def wait_closed(self) -> None:
        """Return once the transport reported the connection lost.

        During a TLS upgrade the socket's protocol is the loop's SSL protocol,
        which may never report to ours; the aborted socket is closed anyway.
        """
        if self._transport.get_protocol() is self._protocol:
            await asyncio.shield(self._protocol.lost)


async def open_tcp(host: str, port: int, phase: Phase, where: str, wait: Wait) -> NetworkStream:
    """Connect to ``host:port`` (the origin or a proxy)."""
    loop = asyncio.get_running_loop()
    with translating(phase, where, wait):
        transport, protocol = await asyncio.wait_for(
            loop.create_connection(lambda: _StreamProtocol(loop), host, port), wait.seconds
        )
    return NetworkStream(transport, protocol)
