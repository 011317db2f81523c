"""Small fake servers on 127.0.0.1 for the upstream client tests.

``FakeServer`` accepts connections and runs a handler per connection; the
handler gets a ``ServerConn`` that speaks HTTP/1.1 through h11 (server role)
or raw bytes. ``ConnectProxy`` is a CONNECT proxy (optionally demanding Basic
auth) that pipes bytes to a 127.0.0.1 target. ``make_cert`` makes a
self-signed certificate with the openssl CLI.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shutil
import socket
import ssl
import subprocess
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar

import h11

T = TypeVar("T")

SAFETY = 10.0  # seconds: a hung test fails instead of hanging; never a measured time


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one test scenario on a fresh event loop."""

    async def guarded() -> T:
        return await asyncio.wait_for(coro, SAFETY * 2)

    return asyncio.run(guarded())


async def within(awaitable: Awaitable[T]) -> T:
    """Await something the test expects to happen; fail rather than hang."""
    return await asyncio.wait_for(awaitable, SAFETY)


@dataclass
class Recorded:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


class ServerConn:
    """One accepted connection, from the server's side."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.SERVER)
        self.raw = bytearray()
        self.eof = asyncio.Event()

    async def _feed(self) -> bool:
        try:
            data = await self.reader.read(65536)
        except (ConnectionError, ssl.SSLError):
            data = b""
        self.raw += data
        if not data:
            self.eof.set()
        self.h11.receive_data(data)
        return bool(data)

    async def next_request(self) -> Recorded | None:
        """The next request on this connection, or None when the client closed it."""
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        request: h11.Request | None = None
        body = bytearray()
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError:
                return None
            if event is h11.NEED_DATA:
                await self._feed()
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                return Recorded(
                    request.method.decode(),
                    request.target.decode(),
                    [(bytes(k).decode(), bytes(v).decode()) for k, v in request.headers],
                    bytes(body),
                )
            else:
                return None

    async def respond(
        self,
        status: int = 200,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        all_headers = list(headers or [])
        if not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in all_headers):
            all_headers.append(("Content-Length", str(len(body))))
        reason = HTTPStatus(status).phrase.encode()
        await self.send(h11.Response(status_code=status, reason=reason, headers=all_headers))
        if body:
            await self.send(h11.Data(data=body))
        await self.send(h11.EndOfMessage())

    async def send(self, event: h11.Event) -> None:
        data = self.h11.send(event)
        if data:
            await self.send_raw(data)

    async def send_raw(self, data: bytes) -> None:
        """Write bytes; a write that fails because the client went away sets ``eof``."""
        try:
            self.writer.write(data)
            await self.writer.drain()
        except ConnectionError:
            self.eof.set()
            raise

    async def wait_for_eof(self) -> None:
        """Read and drop bytes until the client closes the connection."""
        while not self.eof.is_set():
            try:
                data = await self.reader.read(65536)
            except (ConnectionError, ssl.SSLError):
                data = b""
            self.raw += data
            if not data:
                self.eof.set()

    def close(self) -> None:
        self.writer.close()


Handler = Callable[[ServerConn], Awaitable[None]]


class FakeServer:
    """``async with FakeServer(handler) as server``: listens on 127.0.0.1."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.conns: list[ServerConn] = []
        self.requests: list[Recorded] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def accepted(self) -> int:
        return len(self.conns)

    def url(self, path: str = "/", *, scheme: str | None = None, host: str = "127.0.0.1") -> str:
        scheme = scheme or ("https" if self.ssl_context else "http")
        return f"{scheme}://{host}:{self.port}{path}"

    async def __aenter__(self) -> FakeServer:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", 0, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for conn in self.conns:
            conn.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = ServerConn(reader, writer)
        self.conns.append(conn)
        # The handler runs in a task of our own, so cancelling it at exit does
        # not surface through asyncio's connection callback.
        task = asyncio.ensure_future(self._serve(conn))
        self._tasks.add(task)
        await asyncio.wait({task})

    async def _serve(self, conn: ServerConn) -> None:
        try:
            await self.handler(conn)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            conn.close()


def keep_alive(
    respond: Callable[[ServerConn, Recorded], Awaitable[None]],
    log: list[Recorded] | None = None,
) -> Handler:
    """A handler that answers every request on the connection with ``respond``."""

    async def handler(conn: ServerConn) -> None:
        while (request := await conn.next_request()) is not None:
            if log is not None:
                log.append(request)
            await respond(conn, request)

    return handler


async def ok(conn: ServerConn, request: Recorded) -> None:
    await conn.respond(200, [("Content-Type", "text/plain")], b"ok " + request.target.encode())


@dataclass
class ConnectProxy:
    """A CONNECT proxy for 127.0.0.1 targets; 407 unless the credentials match."""

    credentials: tuple[str, str] | None = None
    seen: list[Recorded] = field(default_factory=list)

    async def handle(self, conn: ServerConn) -> None:
        request = await conn.next_request()
        if request is None:
            return
        self.seen.append(request)
        if self.credentials is not None:
            token = base64.b64encode(":".join(self.credentials).encode()).decode()
            if ("proxy-authorization", f"Basic {token}") not in request.headers:
                await conn.respond(407, [("Proxy-Authenticate", 'Basic realm="test"')])
                return
        host, _, port = request.target.rpartition(":")
        if request.method != "CONNECT" or host not in ("127.0.0.1", "localhost"):
            await conn.respond(403)
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", int(port))
        await conn.send(h11.Response(status_code=200, reason=b"Connection established", headers=[]))
        leftover, _ = conn.h11.trailing_data
        if leftover:
            up_writer.write(leftover)
        await asyncio.gather(
            _pipe(conn.reader, up_writer), _pipe(up_reader, conn.writer), return_exceptions=True
        )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


def closed_port() -> int:
    """A 127.0.0.1 port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


def make_cert(directory: Path) -> CertFiles | None:
    """A self-signed certificate for localhost and 127.0.0.1, or None without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return CertFiles(cert, key)
