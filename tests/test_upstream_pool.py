"""Keep-alive, the per-origin cap, idle expiry and replacement of dead idle connections."""

from __future__ import annotations

import asyncio

import pytest
from upstream_fakes import (
    FakeServer,
    Recorded,
    ServerConn,
    keep_alive,
    ok,
    run,
    within,
)

from llm_gateway.errors import UpstreamError
from llm_gateway.upstream import (
    ConnectionPool,
    OriginStats,
    PoolClosed,
    PoolTimeout,
    ProxySettings,
    RemoteProtocolError,
    Timeouts,
)


async def get(pool: ConnectionPool, url: str) -> bytes:
    response = await pool.request("GET", url, headers=[])
    async with response:
        return await response.aread()


def test_sequential_requests_share_one_connection() -> None:
    async def scenario() -> None:
        async with FakeServer(keep_alive(ok)) as server:
            pool = ConnectionPool()
            for i in range(100):
                assert await get(pool, server.url(f"/r{i}")) == f"ok /r{i}".encode()
            stats = pool.stats()
            await pool.aclose()
        assert server.accepted == 1
        assert stats.opened == 1
        assert stats.origins[f"http://127.0.0.1:{server.port}"].idle == 1

    run(scenario())


def test_concurrent_requests_respect_the_per_origin_cap() -> None:
    cap = 4

    async def scenario() -> None:
        all_open = asyncio.Event()
        server: FakeServer

        async def respond(conn: ServerConn, request: Recorded) -> None:
            # Hold the first answers until the pool has opened `cap` connections,
            # so the test also fails if it opened fewer than allowed.
            if server.accepted >= cap:
                all_open.set()
            await within(all_open.wait())
            await ok(conn, request)

        async with FakeServer(keep_alive(respond)) as server:
            pool = ConnectionPool(max_connections_per_origin=cap)
            bodies = await asyncio.gather(*(get(pool, server.url(f"/{i}")) for i in range(20)))
            stats = pool.stats()
            await pool.aclose()
        assert bodies == [f"ok /{i}".encode() for i in range(20)]
        assert server.accepted == cap
        assert stats.opened == cap
        assert stats.idle == cap

    run(scenario())


@pytest.mark.parametrize("close_when", ["after_response", "while_idle"])
def test_connection_closed_by_server_is_replaced(close_when: str) -> None:
    async def scenario() -> None:
        idle = asyncio.Event()

        async def respond_then_close(conn: ServerConn, request: Recorded) -> None:
            await ok(conn, request)
            if close_when == "while_idle":
                await within(idle.wait())  # the client has put the connection back
            conn.close()

        log: list[Recorded] = []
        async with FakeServer(keep_alive(respond_then_close, log)) as server:
            pool = ConnectionPool()
            assert await get(pool, server.url("/a")) == b"ok /a"
            if close_when == "while_idle":
                assert pool.stats().idle == 1
            idle.set()
            await within(server.conns[0].writer.wait_closed())
            assert await get(pool, server.url("/b")) == b"ok /b"
            assert pool.stats().opened == 2
            await pool.aclose()
        assert server.accepted == 2
        assert [r.target for r in log] == ["/a", "/b"]

    run(scenario())


def test_connection_with_stray_bytes_after_the_response_is_not_reused() -> None:
    async def scenario() -> None:
        stray = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale"

        async def respond(conn: ServerConn, request: Recorded) -> None:
            body = b"ok " + request.target.encode()
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            # An unsolicited second response rides along with the real one.
            await conn.send_raw(head + body + stray)

        async with FakeServer(keep_alive(respond)) as server:
            pool = ConnectionPool()
            assert await get(pool, server.url("/a")) == b"ok /a"
            assert await get(pool, server.url("/b")) == b"ok /b"
            await pool.aclose()
        assert server.accepted == 2

    run(scenario())


def test_reused_connection_dropped_before_answer_is_retried_once() -> None:
    async def scenario() -> None:
        log: list[Recorded] = []

        async def handler(conn: ServerConn) -> None:
            first = await conn.next_request()
            assert first is not None
            log.append(first)
            await ok(conn, first)
            if len(server.conns) == 1:
                # The first connection swallows its second request and closes.
                second = await conn.next_request()
                assert second is not None
                log.append(second)
                return
            await keep_alive(ok, log)(conn)

        async with FakeServer(handler) as server:
            pool = ConnectionPool()
            assert await get(pool, server.url("/a")) == b"ok /a"
            response = await pool.request("POST", server.url("/b"), headers=[], body=b"x")
            assert await response.aread() == b"ok /b"
            await pool.aclose()
        assert [(r.method, r.target, r.body) for r in log] == [
            ("GET", "/a", b""),
            ("POST", "/b", b"x"),
            ("POST", "/b", b"x"),
        ]
        assert server.accepted == 2

    run(scenario())


def test_first_request_on_a_new_connection_is_not_retried() -> None:
    async def scenario() -> None:
        async def swallow(conn: ServerConn) -> None:
            await conn.next_request()

        async with FakeServer(swallow) as server:
            pool = ConnectionPool()
            with pytest.raises(RemoteProtocolError) as caught:
                await pool.request("POST", server.url("/x"), headers=[], body=b"{}")
            await pool.aclose()
        assert server.accepted == 1
        assert f"127.0.0.1:{server.port}" in str(caught.value)
        assert caught.value.status == 502

    run(scenario())


def test_no_retry_once_response_bytes_arrived() -> None:
    async def scenario() -> None:
        async def handler(conn: ServerConn) -> None:
            request = await conn.next_request()
            assert request is not None
            await ok(conn, request)
            if await conn.next_request() is not None:
                await conn.send_raw(b"HTTP/1.1 200 OK\r\nContent-Le")

        async with FakeServer(handler) as server:
            pool = ConnectionPool()
            await get(pool, server.url("/a"))
            with pytest.raises(RemoteProtocolError):
                await pool.request("GET", server.url("/b"), headers=[])
            await pool.aclose()
        assert server.accepted == 1

    run(scenario())


def test_idle_connections_expire() -> None:
    async def scenario() -> None:
        now = [1000.0]
        async with FakeServer(keep_alive(ok)) as server:
            pool = ConnectionPool(idle_expiry=30.0, clock=lambda: now[0])
            await get(pool, server.url("/a"))
            now[0] += 29.0
            await get(pool, server.url("/b"))
            assert server.accepted == 1
            now[0] += 30.0
            await get(pool, server.url("/c"))
            assert server.accepted == 2
            # The expired connection was closed by the pool: its server side sees EOF.
            await within(server.conns[0].eof.wait())
            await pool.aclose()

    run(scenario())


def test_pool_timeout_when_every_connection_is_busy() -> None:
    async def scenario() -> None:
        async with FakeServer(keep_alive(ok)) as server:
            pool = ConnectionPool(max_connections_per_origin=1)
            held = await pool.request("GET", server.url("/held"), headers=[])
            assert pool.stats().active == 1
            with pytest.raises(PoolTimeout) as caught:
                await pool.request(
                    "GET", server.url("/x"), headers=[], timeouts=Timeouts(pool=0.05)
                )
            assert "pool timeout of 0.05s" in str(caught.value)
            assert caught.value.status == 503
            # Once the held response is finished, its connection serves the next request.
            assert await held.aread() == b"ok /held"
            assert await get(pool, server.url("/y")) == b"ok /y"
            await pool.aclose()
        assert server.accepted == 1

    run(scenario())


def test_waiting_request_gets_the_released_connection() -> None:
    async def scenario() -> None:
        async with FakeServer(keep_alive(ok)) as server:
            pool = ConnectionPool(max_connections_per_origin=1)
            held = await pool.request("GET", server.url("/held"), headers=[])
            waiting = asyncio.ensure_future(get(pool, server.url("/next")))
            while pool.stats().origins[f"http://127.0.0.1:{server.port}"].waiting == 0:
                await asyncio.sleep(0)
            await held.aclose()  # partially read: closed, which frees the slot
            assert await within(waiting) == b"ok /next"
            await pool.aclose()
        assert server.accepted == 2

    run(scenario())


def test_stats_and_aclose() -> None:
    async def scenario() -> None:
        async with FakeServer(keep_alive(ok)) as server:
            pool = ConnectionPool()
            origin = f"http://127.0.0.1:{server.port}"
            response = await pool.request("GET", server.url("/a"), headers=[])
            assert pool.stats().origins[origin].active == 1
            # Reading the body to its end gives the connection back without aclose().
            assert await response.aread() == b"ok /a"
            assert pool.stats().origins[origin].idle == 1
            await response.aclose()
            assert pool.stats().origins[origin].idle == 1
            await pool.aclose()
            assert pool.stats().origins == {}
            await within(server.conns[0].eof.wait())
            with pytest.raises(PoolClosed):
                await pool.request("GET", server.url("/b"), headers=[])

    run(scenario())


def test_aclose_while_a_request_is_connecting_or_waiting() -> None:
    async def scenario() -> None:
        async with FakeServer(ServerConn.wait_for_eof) as proxy:
            # A proxy that never answers CONNECT keeps the first request opening.
            settings = ProxySettings(https_proxy=f"http://127.0.0.1:{proxy.port}")
            pool = ConnectionPool(proxy=settings, max_connections_per_origin=1)
            opening = asyncio.ensure_future(pool.request("GET", "https://127.0.0.1:9/", headers=[]))
            waiting = asyncio.ensure_future(pool.request("GET", "https://127.0.0.1:9/", headers=[]))
            while pool.stats().origins.get("https://127.0.0.1:9") != OriginStats(
                connecting=1, waiting=1
            ):
                await within(asyncio.sleep(0.001))
            await pool.aclose()
            for task in (opening, waiting):
                with pytest.raises(UpstreamError):
                    await within(task)
            assert isinstance(waiting.exception(), PoolClosed)
            await within(proxy.conns[0].eof.wait())

    run(scenario())


def test_aclose_during_a_tls_handshake_returns() -> None:
    async def scenario() -> None:
        async with FakeServer(ServerConn.wait_for_eof) as server:  # never answers the hello
            pool = ConnectionPool()
            task = asyncio.ensure_future(
                pool.request("GET", server.url(scheme="https"), headers=[])
            )
            while not server.conns or not server.conns[0].raw:
                await within(asyncio.sleep(0.001))
            await within(pool.aclose())
            with pytest.raises(UpstreamError):
                await within(task)
            await within(server.conns[0].eof.wait())

    run(scenario())
