"""The inbound server under test: the real ``GatewayApp`` (for /health and its
error rendering) plus test routes whose behaviour a test controls through
``Probe`` events, served by an ``HTTPServer`` on 127.0.0.1 port 0 with small
limits; and the checks and the slow client the server tests share.

Routes: ``POST /echo`` (the body's length), ``GET /boom`` and
``/v1/messages/boom`` (raise), ``/wait`` (blocks until released), ``/stream``
(chunks around a release), ``/stream-late`` (nothing until released),
``/stream-fails`` (fails midway), ``/status?N`` (answers status N) and
``/silent`` (an event stream silent until released).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from conftest import RawResponse, raw_request

from llm_gateway.config.schema import default_document, parse_config
from llm_gateway.server.app import GatewayApp, GatewayState, error_for_status
from llm_gateway.server.messages import Request, Response, json_response
from llm_gateway.server.tcp import HTTPServer, ServerLimits

REQUEST_ID = re.compile(r"req_[0-9a-f]{24}")
HEALTH = raw_request("GET", "/health")
INTERNAL_DETAIL = "boom-detail-7f3a"
KEEPALIVE = b": keepalive\n\n"


@dataclass
class Probe:
    """What the test app's handlers let the test see and control."""

    started: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    stream_closed: asyncio.Event = field(default_factory=asyncio.Event)
    bodies: list[bytes] = field(default_factory=list)


def make_app(probe: Probe) -> GatewayApp:
    app = GatewayApp(GatewayState(parse_config(default_document())))

    async def echo(request: Request) -> Response:
        probe.bodies.append(request.body)
        return json_response(200, {"received": len(request.body)})

    async def boom(request: Request) -> Response:
        raise RuntimeError(INTERNAL_DETAIL)

    async def wait(request: Request) -> Response:
        probe.started.set()
        try:
            await probe.release.wait()
        except asyncio.CancelledError:
            probe.cancelled.set()
            raise
        return json_response(200, {"waited": True})

    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield b"first chunk\n"
            probe.started.set()
            await probe.release.wait()
            yield b"second chunk\n"
            yield b""  # empty pieces must not end the stream early
            yield b"third chunk\n"
        except asyncio.CancelledError:
            probe.cancelled.set()
            raise
        finally:
            probe.stream_closed.set()

    async def stream(request: Request) -> Response:
        # Its chunks end between "events", so the server may send KEEPALIVE between them.
        return Response(200, [("content-type", "text/plain")], chunks(), KEEPALIVE)

    async def late_chunks() -> AsyncIterator[bytes]:
        probe.started.set()
        await probe.release.wait()  # like a model thinking before its first token
        yield b"late chunk\n"

    async def stream_late(request: Request) -> Response:
        return Response(200, [("content-type", "text/plain")], late_chunks())

    async def failing_chunks() -> AsyncIterator[bytes]:
        yield b"partial"
        raise RuntimeError(INTERNAL_DETAIL)

    async def stream_fails(request: Request) -> Response:
        return Response(200, [("content-type", "text/plain")], failing_chunks())

    async def status(request: Request) -> Response:
        return json_response(int(request.query), {"status": int(request.query)})

    async def silent_chunks() -> AsyncIterator[bytes]:
        yield b"data: one\n\n"
        probe.started.set()
        await probe.release.wait()  # a model thinking in silence
        yield b"data: two\n\n"

    async def silent(request: Request) -> Response:
        return Response(200, [("content-type", "text/event-stream")], silent_chunks(), KEEPALIVE)

    app.route("GET", "/stream-fails", stream_fails)
    app.route("GET", "/stream-late", stream_late)
    app.route("POST", "/echo", echo)
    app.route("GET", "/boom", boom)
    app.route("GET", "/v1/messages/boom", boom)
    app.route("GET", "/wait", wait)
    app.route("GET", "/stream", stream)
    app.route("GET", "/status", status)
    app.route("GET", "/silent", silent)
    return app


LIMITS = ServerLimits(
    max_body_bytes=1000,
    max_header_bytes=2048,
    header_timeout=1.0,
    keepalive_timeout=1.0,
    max_connections=50,
    shutdown_timeout=5.0,
)


async def start(probe: Probe, limits: ServerLimits = LIMITS) -> tuple[HTTPServer, int]:
    server = HTTPServer(make_app(probe), limits, render_error=error_for_status)
    [port] = await server.start("127.0.0.1", 0)
    return server, port


def assert_request_id(response: RawResponse) -> None:
    request_id = response.header("x-request-id")
    assert request_id is not None and REQUEST_ID.fullmatch(request_id), response.headers


def assert_error(response: RawResponse, status: int, message_part: str) -> None:
    assert response.status == status
    assert_request_id(response)
    error = response.json()["error"]
    assert message_part in error["message"]


async def trickle(writer: asyncio.StreamWriter, data: bytes, gap: float) -> None:
    """Send ``data`` a byte at a time; stops quietly once the server hangs up."""
    try:
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(gap)
    except (ConnectionError, OSError):
        pass
