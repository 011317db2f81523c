"""The I/O edge: error translation and read backpressure, without sockets."""

from __future__ import annotations

import asyncio
import ssl

import h11
import pytest
from upstream_fakes import run

from llm_gateway.upstream.errors import (
    ConnectError,
    ConnectTimeout,
    ProxyError,
    RemoteProtocolError,
    StreamIdleTimeout,
    TLSError,
)
from llm_gateway.upstream.network import Phase, _StreamProtocol, translating
from llm_gateway.upstream.timeouts import Wait


@pytest.mark.parametrize(
    ("phase", "raised", "expected", "message"),
    [
        (
            Phase.CONNECT,
            ConnectionRefusedError(111, "Connection refused"),
            ConnectError,
            "connecting to h:1 failed: ConnectionRefusedError: [Errno 111] Connection refused",
        ),
        (
            Phase.PROXY_CONNECT,
            OSError(113, "No route to host"),
            ProxyError,
            "connecting to proxy h:1 failed: OSError: [Errno 113] No route to host",
        ),
        (
            Phase.RESPONSE_HEADERS,
            h11.RemoteProtocolError("illegal status line"),
            RemoteProtocolError,
            "waiting for response headers from h:1 failed: RemoteProtocolError: illegal status line",
        ),
        (
            Phase.BODY,
            asyncio.IncompleteReadError(b"", 10),
            RemoteProtocolError,
            "reading the response body from h:1 failed: IncompleteReadError: "
            "0 bytes read on a total of 10 expected bytes",
        ),
        (
            Phase.TLS,
            ssl.SSLError(1, "wrong version number"),
            TLSError,
            "TLS handshake with h:1 failed: SSLError: wrong version number",
        ),
    ],
)
def test_foreign_errors_become_phase_errors(
    phase: Phase, raised: BaseException, expected: type[Exception], message: str
) -> None:
    with pytest.raises(expected) as caught, translating(phase, "h:1"):
        raise raised
    assert str(caught.value) == message
    assert caught.value.__cause__ is raised


def test_timeouts_become_the_waits_error() -> None:
    wait = Wait(0.5, StreamIdleTimeout, 120.0)
    for raised in (asyncio.TimeoutError(), TimeoutError()):
        with pytest.raises(StreamIdleTimeout) as caught, translating(Phase.BODY, "h:1", wait):
            raise raised
        assert str(caught.value) == (
            "reading the response body from h:1: stream_idle timeout of 120s exceeded"
        )
    with (
        pytest.raises(ConnectTimeout),
        translating(Phase.PROXY_TUNNEL, "h:1", Wait(1, ConnectTimeout, 1)),
    ):
        raise asyncio.TimeoutError()


def test_other_exceptions_pass_through() -> None:
    with pytest.raises(KeyError), translating(Phase.BODY, "h:1"):
        raise KeyError("x")


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.paused = False
        self.pauses = 0

    def pause_reading(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume_reading(self) -> None:
        self.paused = False


def test_reading_pauses_while_the_buffer_is_full() -> None:
    async def scenario() -> None:
        protocol = _StreamProtocol(asyncio.get_running_loop())
        transport = FakeTransport()
        protocol.connection_made(transport)
        protocol.data_received(b"a" * 60_000)
        assert not transport.paused
        protocol.data_received(b"b" * 40_000)  # 100 kB buffered: stop reading the socket
        assert transport.paused
        assert await protocol.read(65_536, 1.0) == b"a" * 60_000 + b"b" * 5_536
        assert transport.paused  # 34 464 bytes still buffered
        assert await protocol.read(10_000, 1.0) == b"b" * 10_000
        assert not transport.paused  # below half the high-water mark
        protocol.eof_received()
        assert await protocol.read(65_536, 1.0) == b"b" * 24_464
        assert await protocol.read(65_536, 1.0) == b""
        assert transport.pauses == 1

    run(scenario())
