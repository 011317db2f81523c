"""End to end, the transport: what the gateway does with connections and bytes.

A client that leaves mid-stream frees the upstream connection; a slow client
slows the upstream instead of filling the gateway's memory; upstream
connections are pooled and reused; an outbound HTTP proxy (absolute-form and
CONNECT) is used when configured and bypassed for ``no_proxy`` hosts; every
response carries the headers clients and reverse proxies rely on; the model
listing and token counting endpoints; failover to a second account.

Clients here are raw asyncio sockets (conftest's HTTP/1.1 helpers) or the
SDKs; the upstreams are ``fake_upstream.FakeUpstream``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import (
    connect,
    exchange,
    free_port,
    raw_request,
    read_chunk,
    read_head,
    read_response,
    run,
    run_cli,
    wait_until,
)
from fake_upstream import (
    ANTHROPIC_ALIAS,
    ANTHROPIC_UPSTREAM_KEY,
    OPENAI_ALIAS,
    OPENAI_UPSTREAM_KEY,
    SAFETY,
    Answer,
    BackgroundLoop,
    Drop,
    FakeUpstream,
    Hang,
    Stream,
    Wired,
    add_account,
    answering,
    anthropic_error,
    anthropic_events,
    body_json,
    isolate_environment,
    json_reply,
    wired_gateway,
)
from upstream_fakes import make_cert


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    isolate_environment(monkeypatch, home)
    return home


@pytest.fixture
def gw(isolated: Path) -> Iterator[Wired]:
    with wired_gateway() as setup:
        yield setup


def post(
    gw: Wired, path: str, body: dict[str, Any], headers: list[tuple[str, str]] | None = None
) -> bytes:
    """The raw bytes of an authenticated JSON POST."""
    return raw_request(
        "POST",
        path,
        headers=[
            ("Authorization", f"Bearer {gw.key}"),
            ("Content-Type", "application/json"),
            *(headers or []),
        ],
        body=json.dumps(body).encode(),
    )


def messages_body(model: str = "claude-haiku-4-5", stream: bool = False) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 64,
        "stream": stream,
        "messages": [{"role": "user", "content": "hi"}],
    }


def chat_body(model: str = "gpt-4o", stream: bool = False) -> dict[str, Any]:
    return {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}


# --- a client that leaves -------------------------------------------------------------


def _endless_text(request: Any) -> Stream:
    """An answer that would take 20 s to stream, then stays open."""
    events = anthropic_events(Answer(text="word " * 400), "claude-haiku-4-5")
    return Stream(events, delay=0.05, ending="hang")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/messages", messages_body(stream=True)),  # passed through
        ("/v1/chat/completions", chat_body("claude-haiku-4-5", stream=True)),  # converted
    ],
    ids=["passthrough", "converted"],
)
def test_a_client_leaving_mid_stream_closes_the_upstream_connection(
    gw: Wired, path: str, body: dict[str, Any]
) -> None:
    gw.anthropic_up.respond(_endless_text)

    async def scenario() -> None:
        reader, writer = await connect(gw.port)
        writer.write(post(gw, path, body))
        response = await read_head(reader)
        assert response.status == 200
        first = await read_chunk(reader)
        assert first  # the stream is flowing
        assert gw.anthropic_up.open_connections == 1
        writer.transport.abort()  # the client goes away without a word

    run(scenario())
    (received,) = gw.anthropic_up.wait_for_requests(1)
    gw.anthropic_up.wait_until_closed(received.connection_id, timeout=5.0)
    assert gw.anthropic_up.open_connections == 0

    # The gateway is none the worse for it.
    gw.anthropic_up.respond(answering(Answer(text="still here")))
    response = run(exchange(gw.port, post(gw, "/v1/messages", messages_body())))
    assert response.status == 200
    assert response.json()["content"][0]["text"] == "still here"


def test_a_client_leaving_before_the_upstream_answers_closes_the_upstream_connection(
    gw: Wired,
) -> None:
    gw.anthropic_up.respond(Hang())

    async def scenario() -> None:
        reader, writer = await connect(gw.port)
        writer.write(post(gw, "/v1/messages", messages_body()))
        await writer.drain()
        await asyncio.to_thread(gw.anthropic_up.wait_for_requests, 1)
        writer.close()  # tired of waiting

    run(scenario())
    (received,) = gw.anthropic_up.requests
    gw.anthropic_up.wait_until_closed(received.connection_id, timeout=5.0)


# --- backpressure ------------------------------------------------------------------------

BIG_BODY = 50 * 1024 * 1024
#: bytes the upstream may get ahead of a stalled client. The kernel's socket buffers
#: on the gateway's two sockets (upstream receive, client send) hold about 6 MB on
#: Linux loopback even when the gateway itself buffers nothing; a gateway that
#: buffered the response would let the upstream write all 50 MB.
AHEAD_LIMIT = 12 * 1024 * 1024


def _huge_stream() -> Any:
    delta = {"type": "content_block_delta", "index": 0}
    delta["delta"] = {"type": "text_delta", "text": "x" * 2000}
    event = f"event: content_block_delta\ndata: {json.dumps(delta)}\n\n".encode()
    framing = anthropic_events(Answer(text="a"), "claude-haiku-4-5")

    def events() -> Iterator[bytes]:
        yield from framing[:3]  # message_start, ping, content_block_start
        for _ in range(BIG_BODY // len(event)):
            yield event
        yield from framing[4:]  # content_block_stop ... message_stop

    return events


async def _settled(read: Any, timeout: float = SAFETY) -> int:
    """``read()`` once it has stopped changing for 0.3 s."""
    deadline = time.monotonic() + timeout
    last, since = read(), time.monotonic()
    while time.monotonic() - since < 0.3:
        await asyncio.sleep(0.02)
        if read() != last:
            last, since = read(), time.monotonic()
        assert time.monotonic() < deadline, "the upstream never stopped writing"
    return int(last)


def test_a_slow_client_holds_the_upstream_back(isolated: Path) -> None:
    with wired_gateway() as gw:
        up = gw.anthropic_up
        up.send_buffer = 64 * 1024  # keep this side's kernel buffer out of the sum
        up.respond(Stream(_huge_stream()))

        async def scenario() -> int:
            reader, writer = await connect(gw.port)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            writer.write(post(gw, "/v1/messages", messages_body(stream=True)))
            response = await read_head(reader)
            assert response.status == 200
            consumed = 0
            for pause in (1, 2, 3):  # read 2 MB, stop, see how far the upstream got
                while consumed < pause * 2 * 1024 * 1024:
                    consumed += len(await read_chunk(reader) or b"")
                written = await _settled(lambda: up.bytes_streamed)
                assert written - consumed < AHEAD_LIMIT, (written, consumed)
            while (chunk := await read_chunk(reader)) is not None:
                consumed += len(chunk)
            writer.close()
            return consumed

        consumed = run(scenario(), timeout=30)
        assert consumed == up.bytes_streamed  # every byte arrived, in the end
        assert consumed > BIG_BODY - 4096


# --- connection reuse -----------------------------------------------------------------------

POOL_CAP = 4


def test_upstream_connections_are_reused_and_capped(isolated: Path) -> None:
    def small_pool(document: dict[str, Any]) -> None:
        document["proxy"]["max_connections_per_upstream"] = POOL_CAP

    with wired_gateway(small_pool) as gw:
        up = gw.openai_up
        up.respond(answering(Answer(text="ok")))

        async def sequential() -> None:
            reader, writer = await connect(gw.port)
            for number in range(100):  # streamed and plain, alternately
                stream = number % 2 == 1
                writer.write(post(gw, "/v1/chat/completions", chat_body(stream=stream)))
                response = await read_response(reader)
                assert response.status == 200
                assert response.body.endswith(b"data: [DONE]\n\n" if stream else b"}")
            writer.close()

        run(sequential())
        assert len(up.requests) == 100
        assert 1 <= up.connections_opened <= 2
        assert len({r.connection_id for r in up.requests}) == up.connections_opened

        up.reset()
        up.respond(lambda request: json_reply(_chat_answer(request), delay=0.05))

        async def concurrent() -> list[int]:
            request = post(gw, "/v1/chat/completions", chat_body())
            responses = await asyncio.gather(*(exchange(gw.port, request) for _ in range(50)))
            return [r.status for r in responses]

        assert run(concurrent()) == [200] * 50
        assert len(up.requests) == 50
        assert up.connections_opened <= POOL_CAP  # the cap holds under load
        assert len({r.connection_id for r in up.requests}) >= 2  # and they ran in parallel


def _chat_answer(request: Any) -> dict[str, Any]:
    return body_json(Answer(text="ok"), request)


# --- an outbound proxy ---------------------------------------------------------------------


class ForwardProxy:
    """An HTTP proxy on 127.0.0.1: absolute-form requests (one per connection,
    forwarded with ``Connection: close``) and CONNECT tunnels, to 127.0.0.1 only."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.port = 0
        self._loop: BackgroundLoop | None = None
        self._server: asyncio.AbstractServer | None = None

    def __enter__(self) -> ForwardProxy:
        self._loop = BackgroundLoop("forward-proxy")
        self._loop.run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        self._loop.run(self._stop())
        self._loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
            method, target, _ = request_line.split(" ")
            self.seen.append((method, target))
            if method == "CONNECT":
                await self._tunnel(target, reader, writer)
            else:
                await self._forward(method, target, lines, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _tunnel(
        self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        host, _, port = target.rpartition(":")
        assert host == "127.0.0.1", target
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def _forward(
        self,
        method: str,
        target: str,
        lines: list[str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        url = urlsplit(target)
        assert url.scheme == "http" and url.hostname == "127.0.0.1", target
        headers = [line.split(":", 1) for line in lines]
        length = next((int(v) for k, v in headers if k.strip().lower() == "content-length"), 0)
        body = await reader.readexactly(length)
        kept = [
            f"{k}:{v}"
            for k, v in headers
            if k.strip().lower() not in ("connection", "proxy-connection", "proxy-authorization")
        ]
        path = url.path + (f"?{url.query}" if url.query else "")
        head = "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "Connection: close", "", ""])
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", url.port)
        try:
            up_writer.write(head.encode("latin-1") + body)
            await up_writer.drain()
            await _pipe(up_reader, writer)
        finally:
            up_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def test_requests_go_through_the_configured_http_proxy(isolated: Path) -> None:
    with ForwardProxy() as proxy:
        assert run_cli("env", "set", "--http-proxy", proxy.url).code == 0
        with wired_gateway() as gw:
            gw.anthropic_up.respond(answering(Answer(text="via the proxy")))
            gw.openai_up.respond(answering(Answer(text="via the proxy too")))
            first = run(exchange(gw.port, post(gw, "/v1/messages", messages_body())))
            second = run(exchange(gw.port, post(gw, "/v1/chat/completions", chat_body())))
    assert first.status == 200 and first.json()["content"][0]["text"] == "via the proxy"
    assert second.status == 200
    assert second.json()["choices"][0]["message"]["content"] == "via the proxy too"
    assert proxy.seen == [
        ("POST", f"{gw.anthropic_up.base_url}/v1/messages"),
        ("POST", f"{gw.openai_up.base_url}/v1/chat/completions"),
    ]
    received = gw.anthropic_up.last()
    assert received.header("x-api-key") == ANTHROPIC_UPSTREAM_KEY


def test_no_proxy_hosts_bypass_the_proxy(isolated: Path) -> None:
    with ForwardProxy() as proxy:
        command = ["env", "set", "--http-proxy", proxy.url, "--no-proxy", "localhost,127.0.0.1"]
        assert run_cli(*command).code == 0
        with wired_gateway() as gw:
            gw.anthropic_up.respond(answering(Answer(text="direct")))
            response = run(exchange(gw.port, post(gw, "/v1/messages", messages_body())))
    assert response.status == 200 and response.json()["content"][0]["text"] == "direct"
    assert proxy.seen == []
    assert len(gw.anthropic_up.requests) == 1


def test_https_upstreams_are_reached_through_a_connect_tunnel(
    isolated: Path, tmp_path: Path
) -> None:
    cert = make_cert(tmp_path)
    if cert is None:
        pytest.skip("needs the openssl command to make a certificate")
    with FakeUpstream(ssl_context=cert.server_context()) as tls_up, ForwardProxy() as proxy:
        tls_up.respond(answering(Answer(text="through the tunnel")))

        def over_tls(document: dict[str, Any]) -> None:
            for account in document["upstream_accounts"]:
                if account["provider"] == "anthropic":
                    account["base_url"] = tls_up.base_url
                    account["verify_tls"] = False  # self-signed

        assert run_cli("env", "set", "--https-proxy", proxy.url).code == 0
        with wired_gateway(over_tls) as gw:
            response = run(exchange(gw.port, post(gw, "/v1/messages", messages_body())))
    assert response.status == 200
    assert response.json()["content"][0]["text"] == "through the tunnel"
    assert proxy.seen == [("CONNECT", f"127.0.0.1:{tls_up.port}")]
    (received,) = tls_up.requests
    assert received.path == "/v1/messages"
    assert received.header("x-api-key") == ANTHROPIC_UPSTREAM_KEY


def test_a_proxy_set_while_the_gateway_runs_takes_effect(isolated: Path) -> None:
    """The README: the running gateway picks up configuration changes within two
    seconds, no restart needed; ``env set`` is one of them."""
    with ForwardProxy() as proxy, wired_gateway() as gw:
        gw.anthropic_up.respond(answering(Answer(text="hello")))
        assert run(exchange(gw.port, post(gw, "/v1/messages", messages_body()))).status == 200
        assert proxy.seen == []
        assert run_cli("env", "set", "--http-proxy", proxy.url).code == 0
        wait_until(
            lambda: gw.gateway.state.config.environment.http_proxy == proxy.url,
            5.0,
            "the new environment to be loaded",
        )
        response = run(exchange(gw.port, post(gw, "/v1/messages", messages_body())))
        assert response.status == 200
        assert proxy.seen == [("POST", f"{gw.anthropic_up.base_url}/v1/messages")]


# --- headers every response carries ---------------------------------------------------------


def test_every_response_has_a_request_id_and_streams_have_sse_headers(gw: Wired) -> None:
    gw.anthropic_up.respond(answering(Answer(text="hi")))
    gw.openai_up.respond(answering(Answer(text="hi")))
    cases = {
        "json": post(gw, "/v1/messages", messages_body()),
        "stream-passthrough": post(gw, "/v1/messages", messages_body(stream=True)),
        "stream-converted": post(gw, "/v1/chat/completions", chat_body("claude-haiku-4-5", True)),
        "stream-openai": post(gw, "/v1/chat/completions", chat_body(stream=True)),
        "not-found": post(gw, "/v1/messages", messages_body("no-such-model")),
        "bad-key": raw_request(
            "POST",
            "/v1/messages",
            headers=[("x-api-key", "lgw-nope-nope"), ("content-type", "application/json")],
            body=json.dumps(messages_body()).encode(),
        ),
        "models": raw_request("GET", "/v1/models", headers=[("x-api-key", gw.key)]),
    }
    statuses = {}
    ids = set()
    for name, request in cases.items():
        response = run(exchange(gw.port, request))
        statuses[name] = response.status
        request_id = response.header("x-request-id")
        assert request_id, name
        ids.add(request_id)
        if name.startswith("stream"):
            assert (response.header("content-type") or "").startswith("text/event-stream")
            assert response.header("cache-control") == "no-cache"
            assert response.header("x-accel-buffering") == "no"
    assert statuses == {
        "json": 200,
        "stream-passthrough": 200,
        "stream-converted": 200,
        "stream-openai": 200,
        "not-found": 404,
        "bad-key": 401,
        "models": 200,
    }
    assert len(ids) == len(cases)  # one id per request


def test_an_upstream_error_answer_carries_a_request_id(gw: Wired) -> None:
    gw.anthropic_up.respond(anthropic_error(400, "invalid_request_error", "bad"))
    response = run(exchange(gw.port, post(gw, "/v1/messages", messages_body())))
    assert response.status == 400
    assert response.header("x-request-id")
    assert response.json()["error"]["message"] == "bad"


# --- model listing and token counting ----------------------------------------------------------


def test_models_listing_in_openai_and_anthropic_shapes(gw: Wired) -> None:
    listed = gw.openai().models.list()
    assert [m.id for m in listed.data] == [OPENAI_ALIAS, ANTHROPIC_ALIAS]
    assert {m.owned_by for m in listed.data} == {"openai", "anthropic"}

    raw = run(exchange(gw.port, raw_request("GET", "/v1/models", headers=[("x-api-key", gw.key)])))
    body = raw.json()
    assert body["object"] == "list"
    assert [(m["id"], m["object"]) for m in body["data"]] == [
        (OPENAI_ALIAS, "model"),
        (ANTHROPIC_ALIAS, "model"),
    ]

    page = gw.anthropic().models.list()
    assert [(m.id, m.type) for m in page.data] == [
        (OPENAI_ALIAS, "model"),
        (ANTHROPIC_ALIAS, "model"),
    ]
    headers = [("x-api-key", gw.key), ("anthropic-version", "2023-06-01")]
    shaped = run(exchange(gw.port, raw_request("GET", "/v1/models", headers=headers))).json()
    assert shaped["has_more"] is False
    assert (shaped["first_id"], shaped["last_id"]) == (OPENAI_ALIAS, ANTHROPIC_ALIAS)
    assert all(m["type"] == "model" and m["display_name"] for m in shaped["data"])
    # the upstreams' own model lists are asked for in the background only
    upstream_calls = [*gw.openai_up.requests, *gw.anthropic_up.requests]
    assert all(r.method == "GET" and r.path.endswith("/models") for r in upstream_calls)

    # An Anthropic client's failures come in its own shape too.
    headers = [("x-api-key", "lgw-wrong"), ("anthropic-version", "2023-06-01")]
    refused = run(exchange(gw.port, raw_request("GET", "/v1/models", headers=headers)))
    assert refused.status == 401
    assert refused.json()["type"] == "error"
    assert refused.json()["error"]["type"] == "authentication_error"


def test_count_tokens_is_forwarded_to_an_anthropic_upstream(gw: Wired) -> None:
    gw.anthropic_up.respond(json_reply({"input_tokens": 4242}))
    capture: list[Any] = []
    an = gw.anthropic(capture)
    raw = an.messages.with_raw_response.count_tokens(
        model="claude-haiku-4-5",
        messages=[{"role": "user", "content": "How many tokens is this?"}],
        system="Be brief.",
    )
    assert raw.parse().input_tokens == 4242
    assert raw.headers.get("x-llm-gateway-estimate") is None
    (received,) = gw.anthropic_up.requests
    assert received.path == "/v1/messages/count_tokens"
    assert received.body == capture[0].content
    assert received.header("x-api-key") == ANTHROPIC_UPSTREAM_KEY


def test_count_tokens_for_a_model_on_an_openai_upstream_asks_openais_counter(gw: Wired) -> None:
    gw.openai_up.respond(json_reply({"object": "response.input_tokens", "input_tokens": 321}))
    raw = gw.anthropic().messages.with_raw_response.count_tokens(
        model="gpt-4o", system="Be brief.", messages=[{"role": "user", "content": "x" * 400}]
    )
    assert raw.parse().input_tokens == 321
    assert raw.headers.get("x-llm-gateway-estimate") is None
    (received,) = gw.openai_up.requests
    assert received.path == "/v1/responses/input_tokens"
    assert received.json() == {
        "model": "gpt-4o",
        "instructions": "Be brief.",
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "x" * 400}],
            }
        ],
    }
    assert received.header("authorization") == f"Bearer {OPENAI_UPSTREAM_KEY}"
    assert gw.anthropic_up.requests == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gpt-4o", "messages": "hi"}, "messages"),
        ({"model": "gpt-4o"}, "messages"),
        ({"model": "gpt-4o", "messages": []}, "messages"),
        ({"model": "gpt-4o", "messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
    ],
)
def test_an_estimate_is_refused_for_a_request_that_could_not_be_sent(
    gw: Wired, body: dict[str, Any], param: str
) -> None:
    headers = [("x-api-key", gw.key), ("anthropic-version", "2023-06-01")]
    data = json.dumps(body).encode()
    raw = run(
        exchange(
            gw.port, raw_request("POST", "/v1/messages/count_tokens", headers=headers, body=data)
        )
    )
    assert raw.status == 400
    error = raw.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert param in error["error"]["message"]


# --- failover --------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["500", "529", "refused", "dropped"])
def test_a_failing_first_account_fails_over_to_the_second(isolated: Path, failure: str) -> None:
    with FakeUpstream() as backup:
        backup.respond(answering(Answer(text="from the backup")))

        def add_backup() -> None:
            add_account(
                "anthropic",
                backup.base_url,
                name="anthropic-backup",
                key="sk-ant-backup-" + "b" * 24,
                priority=1,
            )

        def break_primary(document: dict[str, Any]) -> None:
            if failure == "refused":
                for account in document["upstream_accounts"]:
                    if account["name"] == "anthropic-main":
                        account["base_url"] = f"http://127.0.0.1:{free_port()}"

        with wired_gateway(break_primary, add_backup) as gw:
            primary = gw.anthropic_up
            if failure in ("500", "529"):
                primary.respond(anthropic_error(int(failure), "api_error", "boom"))
            elif failure == "dropped":
                primary.respond(Drop())
            message = gw.anthropic().messages.create(
                model="claude-haiku-4-5",
                max_tokens=20,
                messages=[{"role": "user", "content": "hi"}],
            )
            assert message.content[0].text == "from the backup"
            assert message.model == "claude-haiku-4-5"
            if failure != "refused":
                assert len(primary.requests) >= 1
            (received,) = backup.requests
            assert received.header("x-api-key") == "sk-ant-backup-" + "b" * 24
