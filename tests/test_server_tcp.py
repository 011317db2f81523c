"""The inbound HTTP server over real loopback sockets, driven byte by byte.

Each test starts an ``HTTPServer`` on 127.0.0.1 port 0 with small limits,
serving the real ``GatewayApp`` (for /health and its error rendering) plus a
few test routes whose behaviour the test controls through ``Probe`` events
(``inbound_server``): a route that blocks until released, one that streams,
one that raises.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest
from conftest import (
    RawResponse,
    async_wait_until,
    closed_by_peer,
    connect,
    exchange,
    raw_request,
    read_body,
    read_chunk,
    read_head,
    read_response,
    run,
)
from inbound_server import (
    HEALTH,
    INTERNAL_DETAIL,
    LIMITS,
    Probe,
    assert_error,
    assert_request_id,
    start,
    trickle,
)

from llm_gateway.server.tcp import ServerLimits

# --- routing and error shapes -------------------------------------------------


def test_health_answers_json_without_any_credentials() -> None:
    async def scenario() -> None:
        server, port = await start(Probe())
        try:
            response = await exchange(port, HEALTH)
        finally:
            await server.shutdown()
        assert response.status == 200
        assert response.reason == "OK"
        assert_request_id(response)
        assert response.header("content-length") == str(len(response.body))
        body = response.json()
        assert body["status"] == "ok"
        assert body["upstreams"] == {"total": 0, "enabled": 0, "available": 0}

    run(scenario())


@pytest.mark.parametrize(
    ("method", "path", "shape"),
    [
        ("POST", "/v1/messages/no-such-endpoint", "anthropic"),
        ("GET", "/v1/messages-nothing-here", "anthropic"),
        ("GET", "/v1/no-such-endpoint", "openai"),
        ("POST", "/nothing/here", "openai"),
    ],
)
def test_unknown_path_is_404_in_the_clients_error_shape(method: str, path: str, shape: str) -> None:
    async def scenario() -> RawResponse:
        server, port = await start(Probe())
        try:
            return await exchange(port, raw_request(method, path, body=b"{}"))
        finally:
            await server.shutdown()

    response = run(scenario())
    assert response.status == 404
    assert_request_id(response)
    body = response.json()
    if shape == "anthropic":
        assert body["type"] == "error"
        assert body["error"]["type"] == "not_found_error"
        assert path in body["error"]["message"]
    else:
        assert set(body) == {"error"}
        # OpenAI reports unknown URLs as invalid_request_error
        assert body["error"]["type"] == "invalid_request_error"
        assert body["error"]["code"] == "not_found" and body["error"]["param"] is None
        assert path in body["error"]["message"]


@pytest.mark.parametrize("method", ["POST", "DELETE", "PUT"])
def test_wrong_method_on_a_known_path_is_405(method: str) -> None:
    async def scenario() -> RawResponse:
        server, port = await start(Probe())
        try:
            return await exchange(port, raw_request(method, "/health", body=b"x"))
        finally:
            await server.shutdown()

    response = run(scenario())
    assert response.status == 405
    assert response.reason == "Method Not Allowed"
    assert_request_id(response)
    assert response.header("allow") == "GET"
    error = response.json()["error"]
    assert "use GET" in error["message"]
    assert error["type"] == "invalid_request_error"  # the client's mistake, not ours


def test_handler_exception_is_a_500_json_without_internals() -> None:
    async def scenario() -> tuple[RawResponse, RawResponse]:
        server, port = await start(Probe())
        try:
            reader, writer = await connect(port)
            writer.write(raw_request("GET", "/boom"))
            failed = await read_response(reader)
            # The connection survives the failure and serves the next request.
            writer.write(HEALTH)
            after = await read_response(reader)
            writer.close()
            return failed, after
        finally:
            await server.shutdown()

    failed, after = run(scenario())
    assert failed.status == 500
    assert_request_id(failed)
    text = failed.body.decode()
    assert INTERNAL_DETAIL not in text
    assert "Traceback" not in text and "RuntimeError" not in text
    assert failed.json()["error"]["message"] == "internal error"
    assert after.status == 200


def _shape(response: RawResponse) -> tuple[str, str]:
    """("anthropic" | "openai", the error type) of an error body."""
    body = response.json()
    if body.get("type") == "error":
        assert set(body) == {"type", "error"}
        return "anthropic", body["error"]["type"]
    assert set(body) == {"error"}
    return "openai", body["error"]["type"]


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("/v1/messages", ("anthropic", "request_too_large")),
        ("/v1/messages/count_tokens", ("anthropic", "request_too_large")),
        ("/v1/chat/completions", ("openai", "invalid_request_error")),
    ],
)
def test_errors_the_server_raises_itself_are_in_the_paths_client_format(
    path: str, shape: tuple[str, str]
) -> None:
    limits = ServerLimits(max_body_bytes=1000, max_header_bytes=2048, header_timeout=0.3)

    async def scenario() -> tuple[RawResponse, RawResponse, RawResponse]:
        server, port = await start(Probe(), limits)
        try:
            large = raw_request("POST", path, headers=[("Content-Length", "1001")])
            too_large = await exchange(port, large)
            # a head whose body never comes: 408
            late = await exchange(port, raw_request("POST", path + "?x=1", body=b"{}")[:-1])
            crashed = await exchange(port, raw_request("GET", "/v1/messages/boom"))
            return too_large, late, crashed
        finally:
            await server.shutdown()

    too_large, late, crashed = run(scenario())
    assert too_large.status == 413 and _shape(too_large) == shape
    assert late.status == 408
    assert _shape(late) == (shape[0], "invalid_request_error")
    assert crashed.status == 500 and _shape(crashed) == ("anthropic", "api_error")
    assert crashed.json()["error"]["message"] == "internal error"
    assert too_large.header("content-type") == "application/json"


# --- request size limits ------------------------------------------------------


def test_body_up_to_the_limit_is_accepted_exactly() -> None:
    async def scenario() -> tuple[RawResponse, RawResponse, list[bytes]]:
        probe = Probe()
        server, port = await start(probe)
        try:
            body = bytes(range(256)) * 3 + b"z" * (1000 - 768)
            fixed = await exchange(port, raw_request("POST", "/echo", body=body))
            chunked = (
                raw_request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")])
                + b"1f4\r\n"
                + body[:500]
                + b"\r\n1f4\r\n"
                + body[500:]
                + b"\r\n0\r\n\r\n"
            )
            framed = await exchange(port, chunked)
            return fixed, framed, probe.bodies
        finally:
            await server.shutdown()

    fixed, framed, bodies = run(scenario())
    assert fixed.status == 200 and fixed.json() == {"received": 1000}
    assert framed.status == 200 and framed.json() == {"received": 1000}
    expected = bytes(range(256)) * 3 + b"z" * 232
    assert bodies == [expected, expected]


def test_declared_content_length_over_the_limit_is_413_and_closed() -> None:
    async def scenario() -> tuple[RawResponse, bool, list[bytes]]:
        probe = Probe()
        server, port = await start(probe)
        try:
            reader, writer = await connect(port)
            # Only the head is sent: the server must refuse before reading a body.
            writer.write(raw_request("POST", "/echo", headers=[("Content-Length", "1001")]))
            response = await read_response(reader)
            closed = await closed_by_peer(reader)
            writer.close()
            return response, closed, probe.bodies
        finally:
            await server.shutdown()

    response, closed, bodies = run(scenario())
    assert_error(response, 413, "exceeds the limit of 1000 bytes")
    assert response.header("connection") == "close"
    assert closed
    assert bodies == []  # the handler never ran


def test_chunked_body_growing_past_the_limit_is_413_and_closed() -> None:
    async def scenario() -> tuple[RawResponse, bool, list[bytes]]:
        probe = Probe()
        server, port = await start(probe)
        try:
            reader, writer = await connect(port)
            writer.write(raw_request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")]))
            for _ in range(3):  # 900 bytes: still within the limit
                writer.write(b"12c\r\n" + b"a" * 300 + b"\r\n")
                await writer.drain()
            writer.write(b"c8\r\n" + b"b" * 200 + b"\r\n")  # 1100 bytes: over it
            response = await read_response(reader)
            closed = await closed_by_peer(reader)
            writer.close()
            return response, closed, probe.bodies
        finally:
            await server.shutdown()

    response, closed, bodies = run(scenario())
    assert_error(response, 413, "exceeds the limit of 1000 bytes")
    assert closed
    assert bodies == []


@pytest.mark.parametrize("split", [False, True], ids=["one-write", "trickled"])
def test_headers_over_the_limit_are_431_and_closed(split: bool) -> None:
    async def scenario() -> tuple[RawResponse, bool]:
        server, port = await start(Probe())
        try:
            reader, writer = await connect(port)
            data = raw_request("GET", "/health", headers=[("X-Padding", "p" * 3000)])
            if split:
                # Stop at 2500 bytes: past the limit, with nothing left unread by the server.
                for i in range(0, 2500, 500):
                    writer.write(data[i : i + 500])
                    await writer.drain()
                    await asyncio.sleep(0.005)
            else:
                writer.write(data)
            response = await read_response(reader)
            closed = await closed_by_peer(reader)
            writer.close()
            return response, closed
        finally:
            await server.shutdown()

    response, closed = run(scenario())
    assert_error(response, 431, "headers too large")
    assert response.reason == "Request Header Fields Too Large"
    assert closed


def test_headers_just_under_the_limit_are_served() -> None:
    async def scenario() -> RawResponse:
        server, port = await start(Probe())
        try:
            return await exchange(
                port, raw_request("GET", "/health", headers=[("X-Padding", "p" * 1800)])
            )
        finally:
            await server.shutdown()

    assert run(scenario()).status == 200


# --- malformed and slow clients -----------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /health HTTP/1.1 extra\r\nHost: x\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nno colon in this header\r\n\r\n",
        b"GET /health HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # a TLS hello
    ],
    ids=["garbage", "bad-request-line", "bad-header", "no-host", "bad-length", "tls"],
)
def test_malformed_request_is_400_and_closed(data: bytes) -> None:
    async def scenario() -> tuple[RawResponse, bool]:
        server, port = await start(Probe())
        try:
            reader, writer = await connect(port)
            writer.write(data)
            response = await read_response(reader)
            closed = await closed_by_peer(reader)
            writer.close()
            return response, closed
        finally:
            await server.shutdown()

    response, closed = run(scenario())
    assert_error(response, 400, "malformed HTTP request")
    assert response.header("connection") == "close"
    assert closed


def test_slow_headers_are_408_and_closed_while_others_are_served() -> None:
    limits = ServerLimits(max_body_bytes=1000, max_header_bytes=2048, header_timeout=0.5)

    async def scenario() -> tuple[RawResponse, bool, int]:
        server, port = await start(Probe(), limits)
        try:
            reader, writer = await connect(port)
            # 60 bytes at one per 50 ms would take 3 s: far past the 0.5 s header timeout.
            sender = asyncio.ensure_future(
                trickle(writer, raw_request("GET", "/health", headers=[("X-Slow", "1" * 20)]), 0.05)
            )
            slow_response = asyncio.ensure_future(read_response(reader))
            served_meanwhile = 0
            while not slow_response.done():
                response = await exchange(port, HEALTH)
                assert response.status == 200
                served_meanwhile += 1 if not slow_response.done() else 0
            slow = slow_response.result()
            closed = await closed_by_peer(reader)
            sender.cancel()
            writer.close()
            return slow, closed, served_meanwhile
        finally:
            await server.shutdown()

    slow, closed, served_meanwhile = run(scenario())
    assert_error(slow, 408, "not received in time")
    assert slow.reason == "Request Timeout"
    assert closed
    assert served_meanwhile >= 3


def test_misbehaving_clients_do_not_starve_a_well_behaved_one() -> None:
    limits = ServerLimits(max_body_bytes=1000, max_header_bytes=2048, header_timeout=0.6)

    async def slow_client(port: int) -> int:
        reader, writer = await connect(port)
        sender = asyncio.ensure_future(trickle(writer, HEALTH + b"x" * 50, 0.05))
        try:
            return (await read_response(reader)).status
        finally:
            sender.cancel()
            writer.close()

    async def oversized_client(port: int) -> int:
        reader, writer = await connect(port)
        writer.write(raw_request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")]))
        for _ in range(4):
            writer.write(b"12c\r\n" + b"a" * 300 + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
        try:
            return (await read_response(reader)).status
        finally:
            writer.close()

    async def malformed_client(port: int) -> int:
        reader, writer = await connect(port)
        for piece in (b"GET /health", b" HTTP/1.1\r\nHost", b" x\r\n\r\n"):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.05)
        try:
            return (await read_response(reader)).status
        finally:
            writer.close()

    async def scenario() -> tuple[list[int], list[int]]:
        server, port = await start(Probe(), limits)
        try:
            bad = asyncio.gather(slow_client(port), oversized_client(port), malformed_client(port))
            good: list[int] = []
            # A keep-alive client keeps asking until every misbehaving client got its answer.
            reader, writer = await connect(port)
            while not bad.done():
                writer.write(HEALTH)
                good.append((await read_response(reader)).status)
                await asyncio.sleep(0.01)
            writer.close()
            return await bad, good
        finally:
            await server.shutdown()

    bad, good = run(scenario())
    assert bad == [408, 413, 400]
    assert len(good) >= 5
    assert set(good) == {200}


# --- connections --------------------------------------------------------------


def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    async def scenario() -> tuple[list[RawResponse], list[RawResponse]]:
        probe = Probe()
        server, port = await start(probe)
        try:
            reader, writer = await connect(port)
            sequential = []
            for i in range(4):
                writer.write(raw_request("POST", "/echo", body=b"n" * i))
                sequential.append(await read_response(reader))
            # Pipelined: three requests in one write, answered in order.
            writer.write(
                HEALTH + raw_request("POST", "/echo", body=b"pipelined") + raw_request("GET", "/x")
            )
            pipelined = [await read_response(reader) for _ in range(3)]
            writer.close()
            return sequential, pipelined
        finally:
            await server.shutdown()

    sequential, pipelined = run(scenario())
    assert [r.json() for r in sequential] == [{"received": i} for i in range(4)]
    assert [r.status for r in pipelined] == [200, 200, 404]
    assert pipelined[1].json() == {"received": 9}
    ids = [r.header("x-request-id") for r in sequential + pipelined]
    assert len(set(ids)) == len(ids)
    for response in sequential + pipelined:
        assert_request_id(response)
        assert response.header("connection") is None  # the connection stays open


def test_idle_keep_alive_connection_is_closed_after_the_timeout() -> None:
    limits = ServerLimits(keepalive_timeout=0.3, header_timeout=5.0)

    async def scenario() -> tuple[RawResponse, bool, int]:
        server, port = await start(Probe(), limits)
        try:
            reader, writer = await connect(port)
            writer.write(HEALTH)
            response = await read_response(reader)
            # Nothing more is sent: the server hangs up silently (no 408 for an idle line).
            closed = await closed_by_peer(reader, timeout=5.0)
            await async_wait_until(
                lambda: server.active_connections == 0, 2.0, "the connection to be dropped"
            )
            writer.close()
            return response, closed, server.active_connections
        finally:
            await server.shutdown()

    response, closed, active = run(scenario())
    assert response.status == 200
    assert closed
    assert active == 0


def test_connection_beyond_the_cap_gets_503() -> None:
    limits = ServerLimits(max_connections=2, header_timeout=5.0)

    async def scenario() -> tuple[RawResponse, bool, RawResponse]:
        server, port = await start(Probe(), limits)
        try:
            held = [await connect(port) for _ in range(2)]
            await async_wait_until(
                lambda: server.active_connections == 2, 2.0, "two accepted connections"
            )
            reader, writer = await connect(port)
            refused = await read_response(reader)
            closed = await closed_by_peer(reader)
            writer.close()
            # The held connections are still served.
            held[0][1].write(HEALTH)
            served = await read_response(held[0][0])
            for _, w in held:
                w.close()
            return refused, closed, served
        finally:
            await server.shutdown()

    refused, closed, served = run(scenario())
    assert_error(refused, 503, "too many connections")
    assert refused.reason == "Service Unavailable"
    assert closed
    assert served.status == 200


# --- responses ----------------------------------------------------------------


def test_streamed_body_arrives_chunked_and_incrementally() -> None:
    async def scenario() -> tuple[RawResponse, bytes | None, bool, list[bytes]]:
        probe = Probe()
        server, port = await start(probe)
        try:
            reader, writer = await connect(port)
            writer.write(raw_request("GET", "/stream"))
            head = await read_head(reader)
            first = await read_chunk(reader)
            # The first chunk arrived while the producer is still blocked on ``release``.
            produced_more = probe.release.is_set()
            probe.release.set()
            rest = []
            while (chunk := await read_chunk(reader)) is not None:
                rest.append(chunk)
            # The connection is reusable after a chunked response.
            writer.write(HEALTH)
            after = await read_response(reader)
            assert after.status == 200
            writer.close()
            return head, first, produced_more, rest
        finally:
            await server.shutdown()

    head, first, produced_more, rest = run(scenario())
    assert head.status == 200
    assert head.header("transfer-encoding") == "chunked"
    assert head.header("content-length") is None
    assert head.header("content-type") == "text/plain"
    assert_request_id(head)
    assert first == b"first chunk\n"
    assert not produced_more
    assert rest == [b"second chunk\n", b"third chunk\n"]


def test_a_streams_head_arrives_before_its_first_chunk_exists() -> None:
    async def scenario() -> tuple[RawResponse, bool, bytes | None, bytes | None]:
        probe = Probe()
        server, port = await start(probe)
        try:
            reader, writer = await connect(port)
            writer.write(raw_request("GET", "/stream-late"))
            head = await asyncio.wait_for(read_head(reader), 5)
            producer_still_waiting = not probe.release.is_set() and probe.started.is_set()
            probe.release.set()
            first = await read_chunk(reader)
            end = await read_chunk(reader)
            writer.close()
            return head, producer_still_waiting, first, end
        finally:
            await server.shutdown()

    head, producer_still_waiting, first, end = run(scenario())
    assert head.status == 200
    assert producer_still_waiting
    assert first == b"late chunk\n"
    assert end is None


def test_streamed_body_framing_is_byte_exact() -> None:
    async def scenario() -> bytes:
        probe = Probe()
        probe.release.set()
        server, port = await start(probe)
        try:
            reader, writer = await connect(port)
            writer.write(raw_request("GET", "/stream", headers=[("Connection", "close")]))
            await read_head(reader)
            data = await reader.read()  # until the server closes
            writer.close()
            return data
        finally:
            await server.shutdown()

    assert run(scenario()) == (
        b"c\r\nfirst chunk\n\r\nd\r\nsecond chunk\n\r\nc\r\nthird chunk\n\r\n0\r\n\r\n"
    )


def test_a_stream_that_fails_midway_is_cut_off_visibly() -> None:
    async def scenario() -> tuple[RawResponse, bytes | None, bytes]:
        server, port = await start(Probe())
        try:
            reader, writer = await connect(port)
            writer.write(raw_request("GET", "/stream-fails"))
            head = await read_head(reader)
            first = await read_chunk(reader)
            rest = await asyncio.wait_for(reader.read(), 5)  # the server hangs up
            writer.close()
            return head, first, rest
        finally:
            await server.shutdown()

    head, first, rest = run(scenario())
    assert head.status == 200
    assert first == b"partial"
    # No terminating zero-size chunk: the client can tell the body is incomplete.
    assert rest == b""


def test_client_disconnect_before_the_response_cancels_the_handler() -> None:
    async def scenario() -> Probe:
        probe = Probe()
        server, port = await start(probe)
        try:
            reader, writer = await connect(port)
            writer.write(raw_request("GET", "/wait"))
            await asyncio.wait_for(probe.started.wait(), 5)
            writer.close()
            await asyncio.wait_for(probe.cancelled.wait(), 5)
            await async_wait_until(
                lambda: server.active_connections == 0, 2.0, "the connection to be dropped"
            )
            return probe
        finally:
            await server.shutdown()

    probe = run(scenario())
    assert probe.cancelled.is_set()
    assert not probe.release.is_set()


def test_client_disconnect_mid_stream_cancels_the_producer() -> None:
    async def scenario() -> Probe:
        probe = Probe()
        server, port = await start(probe)
        try:
            reader, writer = await connect(port)
            writer.write(raw_request("GET", "/stream"))
            await read_head(reader)
            assert await read_chunk(reader) == b"first chunk\n"
            await asyncio.wait_for(probe.started.wait(), 5)
            writer.close()
            await asyncio.wait_for(probe.cancelled.wait(), 5)
            await asyncio.wait_for(probe.stream_closed.wait(), 5)
            return probe
        finally:
            await server.shutdown()

    probe = run(scenario())
    assert probe.cancelled.is_set() and probe.stream_closed.is_set()


def test_graceful_shutdown_finishes_in_flight_requests_and_refuses_new_ones() -> None:
    async def scenario() -> tuple[RawResponse, bool, bool]:
        probe = Probe()
        server, port = await start(probe)
        idle_reader, idle_writer = await connect(port)
        reader, writer = await connect(port)
        writer.write(raw_request("GET", "/wait"))
        await asyncio.wait_for(probe.started.wait(), 5)
        stopping = asyncio.ensure_future(server.shutdown())
        await async_wait_until(lambda: server.closing, 2.0, "the shutdown to begin")
        await asyncio.sleep(0)
        refused = False
        try:
            _, late = await connect(port)
            late.close()
        except ConnectionRefusedError:
            refused = True
        idle_closed = await closed_by_peer(idle_reader)  # idle connections go at once
        assert not stopping.done()  # still waiting for the in-flight request
        probe.release.set()
        response = await read_response(reader)
        await asyncio.wait_for(stopping, 5)
        writer.close()
        idle_writer.close()
        return response, refused, idle_closed

    response, refused, idle_closed = run(scenario())
    assert response.status == 200
    assert response.json() == {"waited": True}
    assert response.header("connection") == "close"
    assert_request_id(response)
    assert refused
    assert idle_closed


def test_shutdown_cancels_requests_that_outlast_the_deadline() -> None:
    limits = ServerLimits(shutdown_timeout=0.2)

    async def scenario() -> Probe:
        probe = Probe()
        server, port = await start(probe, limits)
        reader, writer = await connect(port)
        writer.write(raw_request("GET", "/wait"))
        await asyncio.wait_for(probe.started.wait(), 5)
        await asyncio.wait_for(server.shutdown(), 5)
        assert await closed_by_peer(reader)
        writer.close()
        return probe

    probe = run(scenario())
    assert probe.cancelled.is_set()


def test_error_bodies_are_plain_json_objects() -> None:
    async def scenario() -> list[RawResponse]:
        server, port = await start(Probe())
        try:
            return [
                await exchange(port, b"GARBAGE\r\n\r\n"),
                await exchange(port, raw_request("GET", "/nope")),
            ]
        finally:
            await server.shutdown()

    for response in run(scenario()):
        payload = json.loads(response.body)
        assert isinstance(payload["error"]["message"], str)
        assert response.header("content-length") == str(len(response.body))


@pytest.mark.parametrize(
    "data",
    [HEALTH, raw_request("GET", "/nope"), b"GARBAGE\r\n\r\n"],
    ids=["ok", "404", "400"],
)
def test_every_response_carries_a_fresh_request_id(data: bytes) -> None:
    async def scenario() -> list[RawResponse]:
        server, port = await start(Probe())
        try:
            return [await exchange(port, data) for _ in range(3)]
        finally:
            await server.shutdown()

    responses = run(scenario())
    for response in responses:
        assert_request_id(response)
    assert len({r.header("x-request-id") for r in responses}) == 3


def test_body_read_after_head_uses_declared_length() -> None:
    """A body sent after a pause (separate write) is still read whole."""

    async def scenario() -> RawResponse:
        probe = Probe()
        server, port = await start(probe)
        try:
            reader, writer = await connect(port)
            writer.write(raw_request("POST", "/echo", headers=[("Content-Length", "5")]))
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b"hello")
            response = await read_body(reader, await read_head(reader))
            writer.close()
            return response
        finally:
            await server.shutdown()

    assert run(scenario()).json() == {"received": 5}


def test_expect_100_continue_is_answered_before_the_body_is_sent() -> None:
    async def scenario() -> tuple[bytes, RawResponse, list[bytes]]:
        probe = Probe()
        server, port = await start(probe)
        try:
            reader, writer = await connect(port)
            head = raw_request(
                "POST", "/echo", headers=[("Content-Length", "5"), ("Expect", "100-continue")]
            )
            writer.write(head)
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(b"hello")
            response = await read_response(reader)
            writer.close()
            return interim, response, probe.bodies
        finally:
            await server.shutdown()

    interim, response, bodies = run(scenario())
    assert interim.startswith(b"HTTP/1.1 100 ")
    assert response.status == 200
    assert bodies == [b"hello"]


def test_the_last_request_a_connection_may_carry_says_connection_close() -> None:
    async def scenario() -> tuple[list[RawResponse], bool]:
        probe = Probe()
        limits = dataclasses.replace(LIMITS, max_requests_per_connection=3)
        server, port = await start(probe, limits)
        try:
            reader, writer = await connect(port)
            responses = []
            for _ in range(3):
                writer.write(HEALTH)
                responses.append(await read_response(reader))
            closed = await closed_by_peer(reader)
            writer.close()
            return responses, closed
        finally:
            await server.shutdown()

    responses, closed = run(scenario())
    assert [r.status for r in responses] == [200, 200, 200]
    assert [r.header("connection") for r in responses] == [None, None, "close"]
    assert closed
