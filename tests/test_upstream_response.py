"""Request heads on the wire, response framing, streaming, cancellation, bad responses."""

from __future__ import annotations

import asyncio

import h11
import pytest
from upstream_fakes import FakeServer, Recorded, ServerConn, keep_alive, ok, run, within

from llm_gateway.errors import InvalidRequest
from llm_gateway.upstream import (
    ConnectionPool,
    RemoteProtocolError,
    Response,
    ResponseTooLarge,
)


def test_request_head_is_exactly_what_the_caller_asked_for() -> None:
    async def scenario() -> None:
        async with FakeServer(keep_alive(ok)) as server:
            pool = ConnectionPool()
            headers = [("X-Api-Key", "k"), ("accept-encoding", "identity")]
            response = await pool.request(
                "POST", server.url("/v1/messages?beta=true"), headers=headers, body=b'{"a":1}'
            )
            await response.aread()
            response = await pool.request("GET", server.url("/models"), headers=[])
            await response.aread()
            await pool.aclose()
        port = server.port
        assert bytes(server.conns[0].raw) == (
            b"POST /v1/messages?beta=true HTTP/1.1\r\n"
            + f"Host: 127.0.0.1:{port}\r\n".encode()
            + b"X-Api-Key: k\r\naccept-encoding: identity\r\nContent-Length: 7\r\n\r\n"
            + b'{"a":1}'
            + b"GET /models HTTP/1.1\r\n"
            + f"Host: 127.0.0.1:{port}\r\n\r\n".encode()
        )

    run(scenario())


def test_caller_host_is_kept_and_caller_framing_headers_replaced() -> None:
    async def scenario() -> None:
        log: list[Recorded] = []
        async with FakeServer(keep_alive(ok, log)) as server:
            pool = ConnectionPool()
            headers = [
                ("Host", "api.example"),
                ("Content-Length", "99"),
                ("Transfer-Encoding", "chunked"),
            ]
            response = await pool.request("PUT", server.url("/x"), headers=headers, body=b"")
            await response.aread()
            await pool.aclose()
        assert log[0].headers == [("host", "api.example"), ("content-length", "0")]

    run(scenario())


def test_invalid_header_value_is_refused_without_echoing_it() -> None:
    async def scenario() -> None:
        pool = ConnectionPool()
        with pytest.raises(InvalidRequest) as caught:
            await pool.request(
                "GET", "http://127.0.0.1:1/", headers=[("Authorization", "sk-secret\r\nX: y")]
            )
        assert "sk-secret" not in str(caught.value)
        await pool.aclose()

    run(scenario())


def test_response_headers_are_lowercased_and_joined() -> None:
    async def scenario() -> None:
        async def respond(conn: ServerConn, request: object) -> None:
            await conn.send_raw(
                b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
                b"X-Multi: a\r\nx-multi: b\r\nRetry-After: 7\r\nContent-Length: 2\r\n\r\n{}"
            )

        async with FakeServer(keep_alive(respond)) as server:
            pool = ConnectionPool()
            response = await pool.request("GET", server.url(), headers=[])
            assert response.status == 429
            assert response.reason == "Too Many Requests"
            assert response.headers == [
                ("content-type", "application/json"),
                ("x-multi", "a"),
                ("x-multi", "b"),
                ("retry-after", "7"),
                ("content-length", "2"),
            ]
            assert response.header("Retry-After") == "7"
            assert response.header("X-MULTI") == "a, b"
            assert response.header("missing") is None
            assert await response.aread() == b"{}"
            await pool.aclose()

    run(scenario())


def test_chunked_body_streams_incrementally() -> None:
    async def scenario() -> None:
        first_seen = asyncio.Event()

        async def respond(conn: ServerConn, request: object) -> None:
            await conn.send(
                h11.Response(status_code=200, headers=[("Transfer-Encoding", "chunked")])
            )
            await conn.send(h11.Data(data=b"data: one\n\n"))
            # The second chunk is sent only after the client got the first.
            await within(first_seen.wait())
            await conn.send(h11.Data(data=b"data: two\n\n"))
            await conn.send(h11.EndOfMessage())

        async with FakeServer(keep_alive(respond)) as server:
            pool = ConnectionPool()
            response = await pool.request("GET", server.url(), headers=[])
            chunks = []
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                first_seen.set()
            assert chunks == [b"data: one\n\n", b"data: two\n\n"]
            assert pool.stats().idle == 1  # fully read chunked body: kept alive
            await pool.aclose()

    run(scenario())


def test_close_delimited_body_is_read_to_eof_and_not_reused() -> None:
    async def scenario() -> None:
        async def respond(conn: ServerConn) -> None:
            await conn.next_request()
            await conn.send_raw(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
            conn.close()

        async with FakeServer(respond) as server:
            pool = ConnectionPool()
            response = await pool.request("GET", server.url(), headers=[])
            assert await response.aread() == b"all of it"
            assert pool.stats().idle == 0
            await pool.aclose()

    run(scenario())


def test_cancelling_the_reader_closes_the_upstream_connection() -> None:
    async def scenario() -> None:
        got_first = asyncio.Event()

        async def respond(conn: ServerConn) -> None:
            await conn.next_request()
            await conn.send(
                h11.Response(status_code=200, headers=[("Transfer-Encoding", "chunked")])
            )
            await conn.send(h11.Data(data=b"first"))
            await conn.wait_for_eof()

        async with FakeServer(respond) as server:
            pool = ConnectionPool()
            response = await pool.request("GET", server.url(), headers=[])

            async def consume() -> None:
                async for _ in response.aiter_bytes():
                    got_first.set()

            task = asyncio.ensure_future(consume())
            await within(got_first.wait())
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await within(server.conns[0].eof.wait())
            assert pool.stats().origins == {}
            await response.aclose()  # still safe
            await pool.aclose()

    run(scenario())


def test_cancelling_while_waiting_for_headers_closes_the_connection() -> None:
    async def scenario() -> None:
        async def silent(conn: ServerConn) -> None:
            await conn.next_request()
            await conn.wait_for_eof()

        async with FakeServer(silent) as server:
            pool = ConnectionPool()
            task = asyncio.ensure_future(pool.request("GET", server.url(), headers=[]))
            while not server.conns or not server.conns[0].raw:
                await asyncio.sleep(0.001)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await within(server.conns[0].eof.wait())
            assert pool.stats().origins == {}
            await pool.aclose()

    run(scenario())


def test_aclose_on_partially_read_response_closes_the_connection() -> None:
    async def scenario() -> None:
        async def respond(conn: ServerConn) -> None:
            await conn.next_request()
            await conn.send_raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
            await conn.wait_for_eof()

        async with FakeServer(respond) as server:
            pool = ConnectionPool()
            async with await pool.request("GET", server.url(), headers=[]) as response:
                stream = response.aiter_bytes()
                assert await stream.__anext__() == b"part"
            await within(server.conns[0].eof.wait())
            assert pool.stats().origins == {}
            await response.aclose()
            await pool.aclose()

    run(scenario())


def test_malformed_response_is_a_remote_protocol_error() -> None:
    async def scenario() -> None:
        async def garbage(conn: ServerConn) -> None:
            await conn.next_request()
            await conn.send_raw(b"SMTP ready\r\n\r\n")
            await conn.wait_for_eof()

        async with FakeServer(garbage) as server:
            pool = ConnectionPool()
            with pytest.raises(RemoteProtocolError) as caught:
                await pool.request("GET", server.url(), headers=[])
            assert "waiting for response headers from 127.0.0.1:" in str(caught.value)
            await within(server.conns[0].eof.wait())
            await pool.aclose()

    run(scenario())


def test_connection_closed_mid_body_is_a_remote_protocol_error() -> None:
    async def scenario() -> None:
        async def short(conn: ServerConn) -> None:
            await conn.next_request()
            await conn.send_raw(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
            conn.close()

        async with FakeServer(short) as server:
            pool = ConnectionPool()
            response = await pool.request("GET", server.url(), headers=[])
            with pytest.raises(RemoteProtocolError) as caught:
                await response.aread()
            assert "reading the response body" in str(caught.value)
            assert pool.stats().origins == {}
            await pool.aclose()

    run(scenario())


def test_aread_max_bytes() -> None:
    async def scenario() -> None:
        async def big(conn: ServerConn, request: object) -> None:
            await conn.respond(200, [], b"x" * 1000)

        async with FakeServer(keep_alive(big)) as server:
            pool = ConnectionPool()
            response = await pool.request("GET", server.url(), headers=[])
            assert await response.aread(max_bytes=1000) == b"x" * 1000
            response = await pool.request("GET", server.url(), headers=[])
            with pytest.raises(ResponseTooLarge):
                await response.aread(max_bytes=999)
            assert pool.stats().origins == {}  # the oversized one was closed
            await pool.aclose()

    run(scenario())


def test_body_can_be_read_once() -> None:
    async def scenario() -> None:
        async with FakeServer(keep_alive(ok)) as server:
            pool = ConnectionPool()
            response: Response = await pool.request("GET", server.url(), headers=[])
            await response.aread()
            with pytest.raises(RuntimeError):
                await response.aread()
            await pool.aclose()

    run(scenario())
