"""The connection state machine, driven directly against a fake server."""

from __future__ import annotations

import asyncio
import time

import pytest
from upstream_fakes import FakeServer, Recorded, ServerConn, keep_alive, ok, run, within

from llm_gateway.upstream import Timeouts
from llm_gateway.upstream.connection import Connection, ConnState
from llm_gateway.upstream.errors import ResponseHeadersTimeout, StreamIdleTimeout
from llm_gateway.upstream.routes import Route, build_request_head, parse_target
from llm_gateway.upstream.timeouts import Budget


def state(connection: Connection) -> ConnState:
    """The current state (a call, so a type checker does not pin it after one assert)."""
    return connection.state


async def exchange(connection: Connection, url: str) -> bytes:
    target = parse_target(url)
    head = build_request_head("GET", target, connection.route, [], b"")
    now = asyncio.get_running_loop().time()
    await connection.send_request(head, b"", Budget.until(now, 5.0, ResponseHeadersTimeout))
    response = await connection.receive_head(Budget.until(now, 5.0, ResponseHeadersTimeout))
    assert response.status == 200
    body = b""
    while (
        chunk := await connection.receive_body_chunk(Budget.per_read(5.0, StreamIdleTimeout))
    ) is not None:
        body += chunk
    return body


def test_lifecycle_and_idle_close_detection() -> None:
    async def scenario() -> None:
        close_now = asyncio.Event()

        async def respond(conn: ServerConn, request: Recorded) -> None:
            await ok(conn, request)
            if request.target == "/last":
                await within(close_now.wait())
                conn.close()

        async with FakeServer(keep_alive(respond)) as server:
            connection = Connection(Route(parse_target(server.url()).origin), time.monotonic)
            assert connection.state.value == "new"
            await connection.open(None, Timeouts())
            assert state(connection) is ConnState.ACTIVE and not connection.reused
            assert await exchange(connection, server.url("/first")) == b"ok /first"
            assert state(connection) is ConnState.IDLE
            assert connection.usable_while_idle()

            connection.reactivate()
            assert await exchange(connection, server.url("/last")) == b"ok /last"
            assert connection.reused and state(connection) is ConnState.IDLE
            assert connection.usable_while_idle()

            close_now.set()
            while connection.usable_while_idle():  # until the loop has seen the FIN
                await within(asyncio.sleep(0.001))
            connection.close()
            assert state(connection) is ConnState.CLOSED
            await within(connection.wait_closed())

    run(scenario())


def test_illegal_transitions_are_refused() -> None:
    connection = Connection(Route(parse_target("http://127.0.0.1:1/").origin), time.monotonic)
    with pytest.raises(RuntimeError):
        connection.reactivate()  # NEW -> ACTIVE happens only through open()
    connection.close()
    connection.close()  # idempotent
    with pytest.raises(RuntimeError):
        connection.reactivate()
    assert state(connection) is ConnState.CLOSED
