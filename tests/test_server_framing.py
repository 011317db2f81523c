"""The inbound server against hostile or unusual clients, over loopback sockets:
ambiguous framing, impossible chunk sizes, bodies trickled to hold a slot,
every slot taken, half-closed clients, status lines, keepalives on silent
streams, and what answers on ``/``.

The app is ``inbound_server``'s (the real ``GatewayApp`` plus test routes);
limits are small so each scenario takes a second or two.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

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
from inbound_server import HEALTH, KEEPALIVE, LIMITS, Probe, assert_error, start, trickle


async def read_final(reader: asyncio.StreamReader) -> tuple[list[str], RawResponse]:
    """The interim (1xx) status lines before the final response, and that response."""
    interim = []
    while (head := await read_head(reader)).status < 200:
        interim.append(f"{head.status} {head.reason}")
    return interim, await read_body(reader, head)


# --- framing ------------------------------------------------------------------


def test_content_length_with_transfer_encoding_is_400_and_closed() -> None:
    async def scenario() -> tuple[RawResponse, bool, list[bytes]]:
        probe = Probe()
        server, port = await start(probe)
        try:
            reader, writer = await connect(port)
            writer.write(
                raw_request(
                    "POST",
                    "/echo",
                    headers=[("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
                )
                + b"5\r\nhello\r\n0\r\n\r\n"
            )
            response = await read_response(reader)
            closed = await closed_by_peer(reader)
            writer.close()
            return response, closed, probe.bodies
        finally:
            await server.shutdown()

    response, closed, bodies = run(scenario())
    assert_error(response, 400, "both Content-Length and Transfer-Encoding")
    assert response.header("connection") == "close"
    assert closed
    assert bodies == []  # the application never saw it


@pytest.mark.parametrize(
    ("size", "status", "message"),
    [
        (b"FFFFFFFFFFFFFFFFFFFF", 400, "malformed HTTP request"),  # 20 hex digits: 2**80
        (b"FFFFFFFFFFFFFFFF", 400, "malformed HTTP request"),  # 16 digits: 2**64 - 1
        (b"3e9", 413, "exceeds the limit of 1000 bytes"),  # 1001 > max_body_bytes
    ],
    ids=["20-digits", "16-digits", "over-the-limit"],
)
def test_an_impossible_chunk_size_is_refused_at_once(
    size: bytes, status: int, message: str
) -> None:
    # A header timeout far beyond the test's patience: only an answer on sight passes.
    limits = dataclasses.replace(LIMITS, header_timeout=60.0, body_timeout=60.0)

    async def scenario() -> tuple[RawResponse, bool]:
        server, port = await start(Probe(), limits)
        try:
            reader, writer = await connect(port)
            head = raw_request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")])
            writer.write(head + size + b"\r\nabc")
            response = await asyncio.wait_for(read_response(reader), 5)
            closed = await closed_by_peer(reader)
            writer.close()
            return response, closed
        finally:
            await server.shutdown()

    response, closed = run(scenario())
    assert_error(response, status, message)
    assert closed


# --- a body trickled to hold a connection ---------------------------------------


def test_a_trickled_body_gets_408_at_its_total_deadline() -> None:
    # Each gap (0.1 s) is well inside the 1 s header timeout; the whole 200-byte
    # body may take 1 s + 200 / 1000 s, and would take 20 s.
    limits = dataclasses.replace(LIMITS, header_timeout=1.0, body_timeout=1.0, body_min_rate=1000)

    async def scenario() -> tuple[RawResponse, bool, list[bytes]]:
        probe = Probe()
        server, port = await start(probe, limits)
        try:
            reader, writer = await connect(port)
            writer.write(raw_request("POST", "/echo", headers=[("Content-Length", "200")]))
            sender = asyncio.ensure_future(trickle(writer, b"x" * 200, 0.1))
            response = await asyncio.wait_for(read_response(reader), 10)
            closed = await closed_by_peer(reader)
            sender.cancel()
            writer.close()
            return response, closed, probe.bodies
        finally:
            await server.shutdown()

    response, closed, bodies = run(scenario())
    assert_error(response, 408, "not received in time")
    assert closed
    assert bodies == []


def test_a_body_at_a_normal_pace_gets_time_for_its_size() -> None:
    # 3,000 bytes at about 1,500 bytes/s take about 2 s: past body_timeout (1 s)
    # alone, well within it plus the size at body_min_rate (1 s + 6 s).
    limits = dataclasses.replace(
        LIMITS, max_body_bytes=10_000, header_timeout=5.0, body_timeout=1.0, body_min_rate=500
    )

    async def scenario() -> RawResponse:
        server, port = await start(Probe(), limits)
        try:
            reader, writer = await connect(port)
            writer.write(raw_request("POST", "/echo", headers=[("Content-Length", "3000")]))
            for _ in range(20):
                writer.write(b"y" * 150)
                await asyncio.sleep(0.1)
            response = await read_response(reader)
            writer.close()
            return response
        finally:
            await server.shutdown()

    response = run(scenario())
    assert response.status == 200
    assert response.json() == {"received": 3000}


# --- every slot taken -----------------------------------------------------------

SLOTS = dataclasses.replace(
    LIMITS,
    max_connections=4,
    header_timeout=5.0,
    body_timeout=60.0,
    displace_after=0.3,
)


async def _trickler(port: int, responses: list[int]) -> None:
    """A body promised and sent a byte per second: it would hold its slot for minutes."""
    reader, writer = await connect(port)
    writer.write(raw_request("POST", "/echo", headers=[("Content-Length", "900")]))
    sender = asyncio.ensure_future(trickle(writer, b"z" * 900, 1.0))
    try:
        responses.append((await read_response(reader)).status)
    except (ConnectionError, asyncio.IncompleteReadError):
        responses.append(0)
    finally:
        sender.cancel()
        writer.close()


def test_slow_requests_give_up_their_slots_to_clients_that_talk_at_a_normal_pace() -> None:
    async def scenario() -> tuple[list[RawResponse], list[int]]:
        server, port = await start(Probe(), SLOTS)
        try:
            trickled: list[int] = []
            tricklers = [asyncio.ensure_future(_trickler(port, trickled)) for _ in range(4)]
            await async_wait_until(lambda: server.active_connections == 4, 5.0, "4 tricklers")
            await asyncio.sleep(0.5)  # past displace_after
            served = [await exchange(port, HEALTH) for _ in range(3)]
            await async_wait_until(lambda: trickled, 5.0, "a trickler displaced")
            for task in tricklers:
                task.cancel()
            return served, trickled
        finally:
            await server.shutdown()

    served, trickled = run(scenario())
    assert [r.status for r in served] == [200, 200, 200]
    # Each newcomer took a trickler's slot (or that of the newcomer before it,
    # idle once answered); a displaced trickler is told why.
    assert trickled and set(trickled) == {408}


def test_connections_being_answered_keep_their_slots() -> None:
    async def scenario() -> tuple[RawResponse, list[RawResponse]]:
        probe = Probe()
        server, port = await start(probe, SLOTS)
        try:
            waiting = [await connect(port) for _ in range(4)]
            for _, writer in waiting:
                writer.write(raw_request("GET", "/wait"))
            await async_wait_until(
                lambda: sum(not c.idle for c in server._connections.values()) == 4,
                5.0,
                "4 requests being answered",
            )
            await asyncio.sleep(0.5)  # past displace_after: age does not matter here
            refused = await exchange(port, HEALTH)
            probe.release.set()
            answered = [await read_response(reader) for reader, _ in waiting]
            for _, writer in waiting:
                writer.close()
            return refused, answered
        finally:
            await server.shutdown()

    refused, answered = run(scenario())
    assert_error(refused, 503, "too many connections")
    assert [r.json() for r in answered] == [{"waited": True}] * 4


def test_an_idle_keep_alive_connection_gives_up_its_slot_at_once() -> None:
    limits = dataclasses.replace(SLOTS, max_connections=1, displace_after=60.0)

    async def scenario() -> tuple[RawResponse, RawResponse, bool]:
        server, port = await start(Probe(), limits)
        try:
            reader, writer = await connect(port)
            writer.write(HEALTH)
            first = await read_response(reader)  # now idle, kept alive
            second = await exchange(port, HEALTH)
            closed = await closed_by_peer(reader)
            writer.close()
            return first, second, closed
        finally:
            await server.shutdown()

    first, second, closed = run(scenario())
    assert first.status == 200 and second.status == 200
    assert closed  # quietly: it had no request in flight


# --- half-close -------------------------------------------------------------------


def test_a_half_closed_client_gets_its_answer() -> None:
    async def scenario() -> tuple[list[str], RawResponse, bool]:
        probe = Probe()
        server, port = await start(probe)
        try:
            reader, writer = await connect(port)
            writer.write(raw_request("GET", "/wait"))
            await asyncio.wait_for(probe.started.wait(), 5)
            writer.write_eof()  # as `nc -N` does: no more to send, still listening
            await asyncio.sleep(1.0)  # both probes went out meanwhile
            probe.release.set()
            interim, response = await read_final(reader)
            writer.close()
            return interim, response, probe.cancelled.is_set()
        finally:
            await server.shutdown()

    interim, response, cancelled = run(scenario())
    assert response.status == 200
    assert response.json() == {"waited": True}
    assert not cancelled
    # What the probes look like to a client (HTTP clients skip interim answers).
    assert interim and set(interim) == {"100 Continue"}


def test_a_half_closed_http_1_0_client_gets_no_interim_answer() -> None:
    async def scenario() -> tuple[bytes, bool]:
        probe = Probe()
        server, port = await start(probe)
        try:
            reader, writer = await connect(port)
            writer.write(b"GET /wait HTTP/1.0\r\n\r\n")
            await asyncio.wait_for(probe.started.wait(), 5)
            writer.write_eof()
            await asyncio.sleep(1.0)
            probe.release.set()
            data = await asyncio.wait_for(reader.read(), 5)  # HTTP/1.0: until the close
            writer.close()
            return data, probe.cancelled.is_set()
        finally:
            await server.shutdown()

    data, cancelled = run(scenario())
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b'{"waited":true}')
    assert not cancelled


def test_a_half_closed_client_gets_the_whole_stream() -> None:
    async def scenario() -> tuple[list[bytes], bool]:
        probe = Probe()
        server, port = await start(probe)
        try:
            reader, writer = await connect(port)
            writer.write(raw_request("GET", "/silent"))
            await read_head(reader)
            await asyncio.wait_for(probe.started.wait(), 5)
            writer.write_eof()
            await asyncio.sleep(1.0)
            probe.release.set()
            chunks = []
            while (chunk := await read_chunk(reader)) is not None:
                chunks.append(chunk)
            writer.close()
            return chunks, probe.cancelled.is_set()
        finally:
            await server.shutdown()

    chunks, cancelled = run(scenario())
    assert chunks[0] == b"data: one\n\n" and chunks[-1] == b"data: two\n\n"
    assert set(chunks[1:-1]) <= {KEEPALIVE}
    assert not cancelled


def test_a_half_closed_request_sent_with_its_eof_is_answered() -> None:
    async def scenario() -> RawResponse:
        server, port = await start(Probe())
        try:
            reader, writer = await connect(port)
            writer.write(raw_request("POST", "/echo", body=b"0123456789"))
            writer.write_eof()
            response = await asyncio.wait_for(read_response(reader), 5)
            writer.close()
            return response
        finally:
            await server.shutdown()

    response = run(scenario())
    assert response.status == 200
    assert response.json() == {"received": 10}


# --- status lines and the root ----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (529, "Site Overloaded"),
        (599, "Server Error"),
        (499, "Client Error"),
        (429, "Too Many Requests"),
    ],
)
def test_every_status_line_has_a_reason_phrase(status: int, reason: str) -> None:
    async def scenario() -> RawResponse:
        server, port = await start(Probe())
        try:
            return await exchange(port, raw_request("GET", f"/status?{status}"))
        finally:
            await server.shutdown()

    response = run(scenario())
    assert response.status == status
    assert response.reason == reason


def test_the_root_says_what_answers_there_without_an_access_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> tuple[RawResponse, RawResponse]:
        server, port = await start(Probe())
        try:
            reader, writer = await connect(port)
            writer.write(raw_request("HEAD", "/"))
            head = await read_head(reader)  # a HEAD answer has no body to read
            writer.write(raw_request("GET", "/"))
            got = await read_response(reader)
            writer.close()
            return head, got
        finally:
            await server.shutdown()

    with caplog.at_level(logging.INFO, logger="llm_gateway.access"):
        head, got = run(scenario())
    assert head.status == 200 and head.reason == "OK"
    assert got.status == 200
    assert head.header("content-length") == got.header("content-length")
    body = got.json()
    assert body["name"] == "llm-gateway" and body["health"] == "/health"
    assert isinstance(body["version"], str) and body["version"]
    assert [r for r in caplog.records if r.name == "llm_gateway.access"] == []


# --- keepalives on a silent stream --------------------------------------------------


def test_a_silent_stream_gets_keepalives_between_its_chunks() -> None:
    limits = dataclasses.replace(LIMITS, stream_keepalive=0.2)

    async def scenario() -> list[bytes]:
        probe = Probe()
        server, port = await start(probe, limits)
        try:
            reader, writer = await connect(port)
            writer.write(raw_request("GET", "/silent"))
            await read_head(reader)
            chunks = [await read_chunk(reader) or b""]
            # Three keepalives arrive while the producer is still silent.
            for _ in range(3):
                chunks.append(await asyncio.wait_for(read_chunk(reader), 5) or b"")
            probe.release.set()
            while (chunk := await read_chunk(reader)) is not None:
                chunks.append(chunk)
            writer.close()
            return chunks
        finally:
            await server.shutdown()

    chunks = run(scenario())
    assert chunks[0] == b"data: one\n\n"
    assert chunks[-1] == b"data: two\n\n"
    middle = chunks[1:-1]
    assert len(middle) >= 3 and set(middle) == {KEEPALIVE}


def test_keepalives_can_be_turned_off() -> None:
    limits = dataclasses.replace(LIMITS, stream_keepalive=0.0)

    async def scenario() -> list[bytes]:
        probe = Probe()
        server, port = await start(probe, limits)
        try:
            reader, writer = await connect(port)
            writer.write(raw_request("GET", "/silent"))
            await read_head(reader)
            await asyncio.wait_for(probe.started.wait(), 5)
            await asyncio.sleep(0.6)
            probe.release.set()
            chunks = []
            while (chunk := await read_chunk(reader)) is not None:
                chunks.append(chunk)
            writer.close()
            return chunks
        finally:
            await server.shutdown()

    assert run(scenario()) == [b"data: one\n\n", b"data: two\n\n"]
