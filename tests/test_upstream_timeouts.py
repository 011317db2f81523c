"""Each named timeout and connection failure becomes its own typed error."""

from __future__ import annotations

import asyncio

import h11
import pytest
from upstream_fakes import FakeServer, ServerConn, closed_port, run, within

from llm_gateway.errors import UpstreamError, UpstreamTimeout
from llm_gateway.upstream import (
    ConnectError,
    ConnectionPool,
    ConnectTimeout,
    ProxySettings,
    ResponseHeadersTimeout,
    StreamIdleTimeout,
    Timeouts,
    TLSTimeout,
    TotalTimeout,
)
from llm_gateway.upstream.timeouts import Budget, Wait

SHORT = 0.1


def test_connection_refused_is_connect_error() -> None:
    async def scenario() -> None:
        port = closed_port()
        pool = ConnectionPool()
        with pytest.raises(ConnectError) as caught:
            await pool.request("GET", f"http://127.0.0.1:{port}/", headers=[])
        assert str(caught.value).startswith(f"connecting to 127.0.0.1:{port} failed:")
        assert caught.value.status == 502
        assert pool.stats().origins == {}
        await pool.aclose()

    run(scenario())


def test_server_that_never_completes_tls_is_tls_timeout() -> None:
    async def scenario() -> None:
        async with FakeServer(ServerConn.wait_for_eof) as server:
            pool = ConnectionPool()
            with pytest.raises(TLSTimeout) as caught:
                await pool.request(
                    "GET", server.url(scheme="https"), headers=[], timeouts=Timeouts(tls=SHORT)
                )
            assert str(caught.value) == (
                f"TLS handshake with 127.0.0.1:{server.port}: tls timeout of 0.1s exceeded"
            )
            assert isinstance(caught.value, UpstreamTimeout)
            assert caught.value.status == 504
            await within(server.conns[0].eof.wait())
            await pool.aclose()

    run(scenario())


def test_proxy_that_never_answers_connect_is_connect_timeout() -> None:
    async def scenario() -> None:
        async with FakeServer(ServerConn.wait_for_eof) as proxy:
            settings = ProxySettings(https_proxy=f"http://user:hunter2@127.0.0.1:{proxy.port}")
            pool = ConnectionPool(proxy=settings)
            with pytest.raises(ConnectTimeout) as caught:
                await pool.request(
                    "GET", "https://127.0.0.1:9/", headers=[], timeouts=Timeouts(connect=SHORT)
                )
            message = str(caught.value)
            assert message == (
                f"opening a CONNECT tunnel to 127.0.0.1:9 via proxy 127.0.0.1:{proxy.port}: "
                "connect timeout of 0.1s exceeded"
            )
            assert "hunter2" not in message and "user" not in message
            await pool.aclose()

    run(scenario())


def test_server_that_never_answers_is_response_headers_timeout() -> None:
    async def scenario() -> None:
        async def silent(conn: ServerConn) -> None:
            await conn.next_request()
            await conn.wait_for_eof()

        async with FakeServer(silent) as server:
            pool = ConnectionPool()
            with pytest.raises(ResponseHeadersTimeout) as caught:
                await pool.request(
                    "POST", server.url(), headers=[], body=b"{}",
                    timeouts=Timeouts(response_headers=SHORT),
                )  # fmt: skip
            assert "response_headers timeout of 0.1s" in str(caught.value)
            await within(server.conns[0].eof.wait())
            assert pool.stats().origins == {}
            await pool.aclose()

    run(scenario())


def test_headers_trickled_slowly_still_hit_the_headers_deadline() -> None:
    async def scenario() -> None:
        async def trickle(conn: ServerConn) -> None:
            await conn.next_request()
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
                await conn.send_raw(bytes([byte]))
                await asyncio.sleep(SHORT / 5)

        async with FakeServer(trickle) as server:
            pool = ConnectionPool()
            with pytest.raises(ResponseHeadersTimeout):
                await pool.request(
                    "GET", server.url(), headers=[], timeouts=Timeouts(response_headers=SHORT * 3)
                )
            await pool.aclose()

    run(scenario())


def test_body_that_stalls_is_stream_idle_timeout() -> None:
    async def scenario() -> None:
        async def stall(conn: ServerConn) -> None:
            await conn.next_request()
            await conn.send(
                h11.Response(status_code=200, headers=[("Transfer-Encoding", "chunked")])
            )
            await conn.send(h11.Data(data=b"data: 1\n\n"))
            await conn.wait_for_eof()

        async with FakeServer(stall) as server:
            pool = ConnectionPool()
            response = await pool.request(
                "GET", server.url(), headers=[], timeouts=Timeouts(stream_idle=SHORT)
            )
            received = []
            with pytest.raises(StreamIdleTimeout) as caught:
                async for chunk in response.aiter_bytes():
                    received.append(chunk)
            assert received == [b"data: 1\n\n"]
            assert str(caught.value) == (
                f"reading the response body from 127.0.0.1:{server.port}: "
                "stream_idle timeout of 0.1s exceeded"
            )
            await within(server.conns[0].eof.wait())
            await pool.aclose()

    run(scenario())


def test_body_that_never_ends_is_total_timeout_for_aread() -> None:
    async def scenario() -> None:
        async def drip(conn: ServerConn) -> None:
            await conn.next_request()
            await conn.send(
                h11.Response(status_code=200, headers=[("Transfer-Encoding", "chunked")])
            )
            while True:
                await conn.send(h11.Data(data=b"."))
                await asyncio.sleep(SHORT / 5)

        async with FakeServer(drip) as server:
            pool = ConnectionPool()
            timeouts = Timeouts(stream_idle=SHORT * 2, total=SHORT * 3)
            response = await pool.request("GET", server.url(), headers=[], timeouts=timeouts)
            with pytest.raises(TotalTimeout) as caught:
                await response.aread()
            assert "total timeout of 0.3s exceeded" in str(caught.value)
            await within(server.conns[0].eof.wait())
            await pool.aclose()

    run(scenario())


def test_every_error_is_an_upstream_error() -> None:
    for kind in (ConnectError, ConnectTimeout, TLSTimeout, ResponseHeadersTimeout, TotalTimeout):
        assert issubclass(kind, UpstreamError)


# -- budgets: pure ------------------------------------------------------------


def test_budget_idle_only() -> None:
    budget = Budget.per_read(5.0, StreamIdleTimeout)
    assert budget.next_wait(100.0) == Wait(5.0, StreamIdleTimeout, 5.0)


def test_budget_deadline_only_counts_down() -> None:
    budget = Budget.until(100.0, 10.0, ResponseHeadersTimeout)
    assert budget.next_wait(104.0) == Wait(6.0, ResponseHeadersTimeout, 10.0)
    assert budget.next_wait(111.0) == Wait(0.0, ResponseHeadersTimeout, 10.0)


def test_budget_nearer_limit_wins() -> None:
    budget = Budget.per_read(5.0, StreamIdleTimeout).with_deadline(100.0, 20.0, TotalTimeout)
    assert budget.next_wait(101.0) == Wait(5.0, StreamIdleTimeout, 5.0)
    assert budget.next_wait(117.0) == Wait(3.0, TotalTimeout, 20.0)


def test_budget_needs_a_limit() -> None:
    with pytest.raises(ValueError):
        Budget().next_wait(0.0)
