"""End to end through the official SDKs: ``openai`` and ``anthropic`` clients talk
HTTP to a running gateway, which talks HTTP to fake upstreams on 127.0.0.1.

Every client format (OpenAI chat, Anthropic messages, OpenAI legacy
completions) meets every upstream format (OpenAI, Anthropic), plain and
streamed, with and without a ``model_map`` rename. Each test checks what the
SDK returned and what the upstream received: the same-format body byte for
byte (or field for field where the gateway must change it), the converted
body field by field, and the credentials (the upstream key, never the
gateway key).

Tests that only succeed share one gateway (module scope); tests that make an
account fail get a gateway of their own, because failures change an
account's health for the requests after them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from conftest import exchange, free_port, raw_request, run
from fake_upstream import (
    ANTHROPIC_ALIAS,
    ANTHROPIC_UPSTREAM_KEY,
    MODELS,
    OPENAI_ALIAS,
    OPENAI_UPSTREAM_KEY,
    PROVIDERS,
    Answer,
    Drop,
    Gate,
    Hang,
    Received,
    Stream,
    ToolCall,
    Wired,
    answering,
    anthropic_error,
    body_events,
    body_json,
    isolate_environment,
    json_reply,
    openai_error,
    wired_gateway,
)
from test_stream_validators import check_anthropic, check_chat

CLIENTS = ("chat", "messages", "completions")

#: the client format each upstream speaks natively
NATIVE = {"openai": ("chat", "completions"), "anthropic": ("messages",)}
UPSTREAM_PATH = {
    ("chat", "openai"): "/v1/chat/completions",
    ("completions", "openai"): "/v1/completions",
    ("messages", "openai"): "/v1/chat/completions",
    ("chat", "anthropic"): "/v1/messages",
    ("completions", "anthropic"): "/v1/messages",
    ("messages", "anthropic"): "/v1/messages",
}

TEXT = "Hello there from the fake upstream"


@pytest.fixture(scope="module")
def wired(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wired]:
    with pytest.MonkeyPatch.context() as patch:
        isolate_environment(patch, tmp_path_factory.mktemp("e2e-sdk") / "home")
        with wired_gateway() as setup:
            yield setup


@pytest.fixture
def gw(wired: Wired) -> Wired:
    wired.reset()
    return wired


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Wired]:
    """A gateway of this test's own (for tests that make an account fail)."""
    isolate_environment(monkeypatch, tmp_path / "home")
    with wired_gateway() as setup:
        yield setup


# --- helpers ---------------------------------------------------------------------


def sent_body(capture: list[Any]) -> bytes:
    assert len(capture) == 1, capture
    body: bytes = capture[0].content
    return body


def call_text(
    gw: Wired, client: str, model: str, stream: bool, capture: list[Any]
) -> tuple[str, set[str]]:
    """One request with a system prompt and sampling fields; (text, model names seen)."""
    if client == "chat":
        oa = gw.openai(capture)
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Say hello"},
            ],
            "max_tokens": 50,
            "temperature": 0.5,
            "stop": ["\n\n"],
            "user": "user-42",
        }
        if not stream:
            completion = oa.chat.completions.create(**kwargs)
            assert completion.choices[0].finish_reason == "stop"
            return completion.choices[0].message.content, {completion.model}
        chunks = list(oa.chat.completions.create(**kwargs, stream=True))
        assert chunks[-1].choices[0].finish_reason == "stop"
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return text, {c.model for c in chunks}
    if client == "completions":
        oa = gw.openai(capture)
        kwargs = {
            "model": model,
            "prompt": "Say hello",
            "max_tokens": 50,
            "temperature": 0.5,
            "stop": ["\n\n"],
            "user": "user-42",
        }
        if not stream:
            completion = oa.completions.create(**kwargs)
            assert completion.choices[0].finish_reason == "stop"
            return completion.choices[0].text, {completion.model}
        chunks = list(oa.completions.create(**kwargs, stream=True))
        assert chunks[-1].choices[0].finish_reason == "stop"
        return "".join(c.choices[0].text for c in chunks if c.choices), {c.model for c in chunks}
    an = gw.anthropic(capture)
    kwargs = {
        "model": model,
        "max_tokens": 50,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Say hello"}],
        "stop_sequences": ["\n\n"],
        "metadata": {"user_id": "user-42"},
        "extra_body": {"temperature": 0.5},  # this SDK version has no parameter for it
    }
    if not stream:
        message = an.messages.create(**kwargs)
        assert message.stop_reason == "end_turn"
        return "".join(b.text for b in message.content if b.type == "text"), {message.model}
    text, models = "", set()
    for event in an.messages.create(**kwargs, stream=True):
        if event.type == "message_start":
            models.add(event.message.model)
        elif event.type == "content_block_delta" and event.delta.type == "text_delta":
            text += event.delta.text
        elif event.type == "message_delta":
            assert event.delta.stop_reason == "end_turn"
    return text, models


def expected_converted(
    client: str, provider: str, upstream_model: str, stream: bool
) -> dict[str, Any]:
    """The body ``call_text`` must reach a foreign-format upstream as (docs/conversion.md)."""
    if provider == "anthropic":
        body: dict[str, Any] = {"model": upstream_model}
        if client == "chat":
            body["system"] = "Be brief."
        body.update(
            messages=[{"role": "user", "content": "Say hello"}],
            max_tokens=50,
            temperature=0.5,
            stop_sequences=["\n\n"],
            metadata={"user_id": "user-42"},
        )
        if stream:
            body["stream"] = True
        return body
    assert client == "messages"
    body = {
        "model": upstream_model,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ],
        "max_completion_tokens": 50,
        "temperature": 0.5,
        "stop": ["\n\n"],
        "user": "user-42",
    }
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return body


def check_credentials(gw: Wired, provider: str, received: Received) -> None:
    if provider == "anthropic":
        assert received.header_values("x-api-key") == [ANTHROPIC_UPSTREAM_KEY]
        assert received.header("authorization") is None
    else:
        assert received.header_values("authorization") == [f"Bearer {OPENAI_UPSTREAM_KEY}"]
        assert received.header("x-api-key") is None
    for name, value in received.headers:
        assert gw.key not in value, f"the gateway key went upstream in {name}"
    assert gw.key.encode() not in received.body


# --- A. every client format against every upstream format ----------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("mapped", [False, True], ids=["same-name", "model_map"])
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("client", CLIENTS)
def test_text_answer_through_every_format_pair(
    gw: Wired, client: str, provider: str, mapped: bool, stream: bool
) -> None:
    model, upstream_model = MODELS[(provider, mapped)]
    up = gw.upstream(provider)
    up.respond(answering(Answer(text=TEXT)))
    capture: list[Any] = []

    text, models_seen = call_text(gw, client, model, stream, capture)

    assert text == TEXT
    assert models_seen == {model}  # never the upstream's name for it
    (received,) = up.requests
    assert received.path == UPSTREAM_PATH[(client, provider)]
    check_credentials(gw, provider, received)
    if provider == "anthropic":  # the client's version, else the documented default
        expected_version = "2023-06-01"
        if client == "messages":
            expected_version = capture[0].headers["anthropic-version"]
        assert received.header_values("anthropic-version") == [expected_version]
    sent = sent_body(capture)
    if client in NATIVE[provider]:
        adds_usage = stream and provider == "openai"  # the gateway asks OpenAI for usage
        if not mapped and not adds_usage:
            assert received.body == sent  # byte for byte
        else:
            expected = json.loads(sent)
            if mapped:
                expected["model"] = upstream_model
            if adds_usage:
                expected["stream_options"] = {"include_usage": True}
            assert received.json() == expected
            assert list(received.json()) == list(expected)  # field order kept too
    else:
        assert received.json() == expected_converted(client, provider, upstream_model, stream)


UNICODE_TEXT = "Grüße aus Köln ✓ — 你好, 世界 🙂 done"


@pytest.mark.parametrize("chunk_size", [1, 7])
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("client", CLIENTS)
def test_streams_cut_at_arbitrary_bytes_arrive_whole(
    gw: Wired, client: str, provider: str, chunk_size: int
) -> None:
    """The upstream's body arrives in pieces cut anywhere: inside events, inside
    ``data:`` lines, inside multi-byte characters."""
    gw.upstream(provider).respond(answering(Answer(text=UNICODE_TEXT), chunk_size=chunk_size))
    model = MODELS[(provider, False)][0]
    text, models_seen = call_text(gw, client, model, True, [])
    assert text == UNICODE_TEXT
    assert models_seen == {model}


@pytest.mark.parametrize("mapped", [False, True], ids=["same-name", "model_map"])
@pytest.mark.parametrize("client", ["chat", "completions"])
def test_openai_stream_that_asks_for_usage_goes_upstream_byte_for_byte(
    gw: Wired, client: str, mapped: bool
) -> None:
    model, upstream_model = MODELS[("openai", mapped)]
    gw.openai_up.respond(answering(Answer(text=TEXT)))
    capture: list[Any] = []
    oa = gw.openai(capture)
    options = {"include_usage": True}
    if client == "chat":
        messages = [{"role": "user", "content": "Say hello"}]
        stream = oa.chat.completions.create(
            model=model, messages=messages, stream=True, stream_options=options
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        stream = oa.completions.create(
            model=model, prompt="Say hello", stream=True, stream_options=options
        )
        chunks = list(stream)
        text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == TEXT
    assert {c.model for c in chunks} == {model}
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7
    sent = sent_body(capture)
    received = gw.openai_up.last()
    if mapped:
        assert received.json() == {**json.loads(sent), "model": upstream_model}
    else:
        assert received.body == sent


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_beta_header_and_query_reach_the_anthropic_upstream_untouched(
    gw: Wired, stream: bool
) -> None:
    gw.anthropic_up.respond(answering(Answer(text=TEXT)))
    capture: list[Any] = []
    an = gw.anthropic(capture)
    betas = ["context-1m-2025-08-07", "interleaved-thinking-2025-05-14"]
    kwargs: dict[str, Any] = {
        "model": "claude-haiku-4-5",
        "max_tokens": 20,
        "messages": [{"role": "user", "content": "hi"}],
        "betas": betas,
        "extra_query": {"beta": "true"},
    }
    if stream:
        with an.beta.messages.stream(**kwargs) as events:
            message = events.get_final_message()
    else:
        message = an.beta.messages.create(**kwargs)
    assert message.content[0].text == TEXT
    received = gw.anthropic_up.last()
    assert received.query == "beta=true"
    assert received.header_values("anthropic-beta") == [capture[0].headers["anthropic-beta"]]
    assert received.header("anthropic-beta") == ",".join(betas)
    assert received.header("anthropic-version") == capture[0].headers["anthropic-version"]
    assert received.body == sent_body(capture)


# --- streams as the SDKs read them ------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_openai_stream_usage_arrives_only_when_asked_for(gw: Wired, provider: str) -> None:
    up = gw.upstream(provider)
    up.respond(answering(Answer(text=TEXT, input_tokens=21, output_tokens=9)))
    model = MODELS[(provider, False)][0]
    oa = gw.openai()
    messages = [{"role": "user", "content": "Say hello"}]

    asked = list(
        oa.chat.completions.create(
            model=model,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    *content, last = asked
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (21, 9)
    assert last.usage.total_tokens == 30
    assert all(c.usage is None for c in content)
    assert "".join(c.choices[0].delta.content or "" for c in content) == TEXT

    plain = list(oa.chat.completions.create(model=model, messages=messages, stream=True))
    assert all(c.usage is None for c in plain)
    assert all(c.choices for c in plain)  # no trailing usage chunk
    assert plain[-1].choices[0].finish_reason == "stop"
    assert "".join(c.choices[0].delta.content or "" for c in plain) == TEXT
    if provider == "openai":  # the gateway asked anyway, for its own accounting
        assert up.requests[-1].json()["stream_options"] == {"include_usage": True}


def _gated(answer: Answer, gate: Gate) -> Any:
    """Stream ``answer``, stopping after the first text delta until ``gate`` opens."""

    def handler(request: Received) -> Stream:
        events: list[bytes | Gate] = list(body_events(answer, request))
        first = next(
            i
            for i, e in enumerate(events)
            if isinstance(e, bytes) and (b'"text_delta"' in e or b'"content": "Hello' in e)
        )
        events.insert(first + 1, gate)
        return Stream(events, delay=0.05)

    return handler


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("client", ["chat", "messages"])
def test_text_reaches_the_client_while_the_upstream_is_still_streaming(
    gw: Wired, client: str, provider: str
) -> None:
    """The upstream holds back everything after its first text delta until the client
    has shown that delta: a gateway that buffered the stream would never deliver it."""
    gate = Gate()
    gw.upstream(provider).respond(_gated(Answer(text=TEXT), gate))
    model = MODELS[(provider, False)][0]
    arrivals: list[tuple[float, str]] = []
    if client == "chat":
        stream = gw.openai().chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        for chunk in stream:
            delta = chunk.choices[0].delta.content if chunk.choices else None
            arrivals.append((time.monotonic(), delta or ""))
            if delta:
                gate.open()
    else:
        events = gw.anthropic().messages.create(
            model=model, max_tokens=50, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        for event in events:
            delta = ""
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                delta = event.delta.text
            arrivals.append((time.monotonic(), delta))
            if delta:
                gate.open()
    assert not gate.timed_out, "the first text delta did not reach the client while streaming"
    assert "".join(text for _, text in arrivals) == TEXT
    first_text = next(t for t, text in arrivals if text)
    assert first_text < arrivals[-1][0]
    assert sum(1 for _, text in arrivals if text) >= 4  # several deltas, not one lump


# --- errors ----------------------------------------------------------------------------


def _ask(gw: Wired, client: str, model: str, **extra: Any) -> Any:
    if client == "chat":
        return gw.openai().chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], **extra
        )
    return gw.anthropic().messages.create(
        model=model, max_tokens=20, messages=[{"role": "user", "content": "hi"}], **extra
    )


SDK = {"chat": openai, "messages": anthropic}


def upstream_error(provider: str, status: int, kind: str, message: str, headers: Any = ()) -> Any:
    build = anthropic_error if provider == "anthropic" else openai_error
    return build(status, kind, message, headers)


def error_message(client: str, error: Any) -> str:
    """The message inside an SDK error's body, checking the body has the client's shape."""
    body = error.body
    if client == "chat":
        assert set(body) >= {"message", "type"}  # the SDK unwraps {"error": {...}}
        return str(body["message"])
    assert body["type"] == "error" and set(body["error"]) >= {"type", "message"}
    return str(body["error"]["message"])


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("client", ["chat", "messages"])
def test_upstream_400_reaches_the_client_as_bad_request_with_its_message(
    fresh: Wired, client: str, provider: str, stream: bool
) -> None:
    message = f"{provider} says: max_tokens: 999999 > 8192, the maximum allowed"
    fresh.upstream(provider).respond(
        upstream_error(provider, 400, "invalid_request_error", message)
    )
    with pytest.raises(SDK[client].BadRequestError) as caught:
        _ask(fresh, client, MODELS[(provider, False)][0], stream=stream)
    assert caught.value.status_code == 400
    assert error_message(client, caught.value) == message
    assert len(fresh.upstream(provider).requests) == 1
    assert caught.value.response.headers.get("x-request-id")


@pytest.mark.parametrize(("status", "kind"), [(500, "api_error"), (529, "overloaded_error")])
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("client", ["chat", "messages"])
def test_a_lone_failing_upstream_is_relayed_with_its_status_and_message(
    fresh: Wired, client: str, provider: str, status: int, kind: str
) -> None:
    """With no other account to fail over to, the upstream's own answer goes back."""
    message = f"{provider} is having a bad day ({status})"
    fresh.upstream(provider).respond(upstream_error(provider, status, kind, message))
    with pytest.raises(SDK[client].APIStatusError) as caught:
        _ask(fresh, client, MODELS[(provider, False)][0])
    assert caught.value.status_code == status
    assert error_message(client, caught.value) == message


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("client", ["chat", "messages"])
def test_upstream_429_reaches_the_client_with_retry_after(
    fresh: Wired, client: str, provider: str
) -> None:
    fresh.upstream(provider).respond(
        upstream_error(
            provider, 429, "rate_limit_error", "Rate limit reached", [("retry-after", "7")]
        )
    )
    with pytest.raises(SDK[client].RateLimitError) as caught:
        _ask(fresh, client, MODELS[(provider, False)][0])
    assert caught.value.status_code == 429
    assert caught.value.response.headers.get("retry-after") == "7"
    assert "Rate limit reached" in error_message(client, caught.value)


@pytest.mark.parametrize("client", ["chat", "messages"])
def test_unknown_model_is_404_listing_the_models_that_exist(gw: Wired, client: str) -> None:
    with pytest.raises(SDK[client].NotFoundError) as caught:
        _ask(gw, client, "no-such-model-7")
    assert caught.value.status_code == 404
    message = error_message(client, caught.value)
    assert "no-such-model-7" in message
    for name in (OPENAI_ALIAS, ANTHROPIC_ALIAS, "claude-*", "gpt-*"):
        assert name in message
    assert gw.openai_up.requests == [] and gw.anthropic_up.requests == []


@pytest.mark.parametrize("client", ["chat", "messages"])
def test_a_bad_gateway_key_is_401_and_nothing_goes_upstream(gw: Wired, client: str) -> None:
    good = gw.key
    gw.key = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    try:
        with pytest.raises(SDK[client].AuthenticationError) as caught:
            _ask(gw, client, "gpt-4o" if client == "chat" else "claude-haiku-4-5")
    finally:
        gw.key = good
    assert caught.value.status_code == 401
    assert gw.key not in json.dumps(caught.value.body)
    assert gw.openai_up.requests == [] and gw.anthropic_up.requests == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"model": "gpt-4o", "messages": [', "not valid JSON"),
        (b'{"model": "gpt-4o", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "too deep"),
    ],
    ids=["truncated", "deep"],
)
@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("/v1/chat/completions", "openai"),
        ("/v1/completions", "openai"),
        ("/v1/messages", "anthropic"),
    ],
)
def test_malformed_json_is_400_in_the_client_format(
    gw: Wired, path: str, shape: str, body: bytes, problem: str
) -> None:
    request = raw_request(
        "POST",
        path,
        headers=[("Authorization", f"Bearer {gw.key}"), ("Content-Type", "application/json")],
        body=body,
    )
    response = run(exchange(gw.port, request))
    assert response.status == 400
    assert response.header("x-request-id")
    error = response.json()
    if shape == "openai":
        assert set(error) == {"error"}
    else:
        assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert "JSON" in error["error"]["message"] and problem in error["error"]["message"]
    assert gw.openai_up.requests == [] and gw.anthropic_up.requests == []


def _unreachable(document: dict[str, Any]) -> None:
    port = free_port()  # nothing listens there
    for account in document["upstream_accounts"]:
        suffix = "/v1" if account["provider"] == "openai" else ""
        account["base_url"] = f"http://127.0.0.1:{port}{suffix}"


@pytest.mark.parametrize("failure", ["refused", "dropped"])
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("client", ["chat", "messages"])
def test_unreachable_upstream_is_502_in_the_client_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: str, provider: str, failure: str
) -> None:
    """Nothing listens on the account's port, or the upstream closes the
    connection without answering."""
    isolate_environment(monkeypatch, tmp_path / "home")
    configure = _unreachable if failure == "refused" else None
    with wired_gateway(configure) as gw, pytest.raises(SDK[client].APIStatusError) as caught:
        gw.upstream(provider).respond(Drop())
        _ask(gw, client, MODELS[(provider, False)][0])
    assert caught.value.status_code == 502
    message = error_message(client, caught.value)
    assert message and OPENAI_UPSTREAM_KEY not in message and ANTHROPIC_UPSTREAM_KEY not in message


def _quick_timeout(document: dict[str, Any]) -> None:
    document["proxy"]["response_timeout"] = 0.3


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("client", ["chat", "messages"])
def test_upstream_that_never_answers_is_504(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: str, provider: str, stream: bool
) -> None:
    isolate_environment(monkeypatch, tmp_path / "home")
    with wired_gateway(_quick_timeout) as gw:
        gw.upstream(provider).respond(Hang())
        with pytest.raises(SDK[client].APIStatusError) as caught:
            _ask(gw, client, MODELS[(provider, False)][0], stream=stream)
        assert caught.value.status_code == 504
        assert error_message(client, caught.value)
        assert len(gw.upstream(provider).requests) == 1


# --- mid-stream failure ---------------------------------------------------------------------


def _breaks_after(count: int, ending: Any = "close") -> Any:
    """Stream the first ``count`` events of a long answer, then drop the connection."""

    def handler(request: Received) -> Stream:
        events = body_events(Answer(text="one two three four five six seven"), request)
        return Stream(events[:count], ending=ending)

    return handler


@pytest.mark.parametrize("ending", ["close", "reset"])
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("client", ["chat", "messages"])
def test_upstream_dropping_mid_stream_gives_the_client_an_error_event(
    fresh: Wired, client: str, provider: str, ending: str
) -> None:
    fresh.upstream(provider).respond(_breaks_after(5, ending))
    path = "/v1/chat/completions" if client == "chat" else "/v1/messages"
    model = MODELS[(provider, False)][0]
    body = {
        "model": model,
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "count"}],
    }
    request = raw_request(
        "POST",
        path,
        headers=[("x-api-key", fresh.key), ("content-type", "application/json")],
        body=json.dumps(body).encode(),
    )
    response = run(exchange(fresh.port, request), timeout=10)  # the stream ends: no hang
    assert response.status == 200
    assert response.header("x-request-id")
    frames = [f for f in response.body.decode().split("\n\n") if f.strip()]
    if client == "chat":
        datas = [f.removeprefix("data: ") for f in frames]
        assert datas.count("[DONE]") <= 1  # never a second [DONE]
        chunks = [json.loads(d) for d in datas if d != "[DONE]"]
        errors = [i for i, c in enumerate(chunks) if "error" in c]
        assert errors == [len(chunks) - 1]  # one error chunk, the last data
        assert chunks[-1]["error"]["message"] and chunks[-1]["error"]["type"]
        assert datas[-1] in ("[DONE]", datas[len(chunks) - 1])  # nothing after but [DONE]
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1])
        if provider == "anthropic":  # a stream the gateway rendered: the strict checker too
            chat_view = check_chat(
                response.body, include_usage=False, model=model, created=chunks[0]["created"]
            )
            assert chat_view.error is not None
    else:
        view = check_anthropic(response.body, model=model)  # a valid prefix, then the error
        assert view.error is not None and view.error[1]
        assert frames[-1].startswith("event: error\n")
        assert any("text_delta" in f for f in frames[:-1])


def _quick_idle_timeout(document: dict[str, Any]) -> None:
    document["proxy"]["stream_idle_timeout"] = 0.3


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("client", ["chat", "messages"])
def test_upstream_going_silent_mid_stream_ends_the_stream_with_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: str, provider: str
) -> None:
    isolate_environment(monkeypatch, tmp_path / "home")
    with wired_gateway(_quick_idle_timeout) as gw:

        def silent_after_four(request: Received) -> Stream:
            events = body_events(Answer(text="one two three four five six"), request)
            return Stream(events[:4], ending="hang")

        gw.upstream(provider).respond(silent_after_four)
        model = MODELS[(provider, False)][0]
        path = "/v1/chat/completions" if client == "chat" else "/v1/messages"
        body = {
            "model": model,
            "max_tokens": 9,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        }
        request = raw_request(
            "POST",
            path,
            headers=[("x-api-key", gw.key), ("content-type", "application/json")],
            body=json.dumps(body).encode(),
        )
        response = run(exchange(gw.port, request), timeout=10)
        gw.upstream(provider).wait_until_closed(gw.upstream(provider).last().connection_id, 5.0)
    assert response.status == 200
    text = response.body.decode()
    if client == "chat":
        last_data = [f for f in text.split("\n\n") if f.strip() and f != "data: [DONE]"][-1]
        error = json.loads(last_data.removeprefix("data: "))["error"]
        assert error["message"]
        assert text.count("data: [DONE]") <= 1
    else:
        view = check_anthropic(response.body, model=model)
        assert view.error is not None and view.error[1]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("client", ["chat", "messages"])
def test_sdks_raise_on_a_stream_that_broke(fresh: Wired, client: str, provider: str) -> None:
    fresh.upstream(provider).respond(_breaks_after(5))
    model = MODELS[(provider, False)][0]
    received = ""
    with pytest.raises(SDK[client].APIError):
        if client == "chat":
            for chunk in _ask(fresh, client, model, stream=True):
                received += (chunk.choices[0].delta.content or "") if chunk.choices else ""
        else:
            for event in _ask(fresh, client, model, stream=True):
                if event.type == "content_block_delta":
                    received += event.delta.text
    assert received.startswith("one ")


# --- what happens after a stream's final event ----------------------------------------


@pytest.mark.parametrize("mapped", [False, True], ids=["direct", "alias"])
@pytest.mark.parametrize("ending", ["close", "reset"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_upstream_failing_after_the_final_event_leaves_the_sdk_a_whole_answer(
    gw: Wired, provider: str, ending: str, mapped: bool
) -> None:
    # The whole stream, then the connection closes or resets instead of ending the body.
    answer = Answer(text="all of it arrived")

    def then_broken(request: Received) -> Stream:
        return Stream(body_events(answer, request), ending=ending)  # type: ignore[arg-type]

    gw.upstream(provider).respond(then_broken)
    model = MODELS[(provider, mapped)][0]
    messages = [{"role": "user", "content": "hi"}]
    if provider == "openai":
        with gw.openai().chat.completions.create(
            model=model, messages=messages, stream=True
        ) as stream:
            chunks = list(stream)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == answer.text
        assert chunks[-1].choices[0].finish_reason == "stop"
    else:
        with gw.anthropic().messages.stream(
            model=model, max_tokens=50, messages=messages
        ) as stream:
            message = stream.get_final_message()
        assert message.content[0].text == answer.text
        assert message.stop_reason == "end_turn"


@pytest.mark.parametrize("converted", [False, True], ids=["same-format", "converted"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_upstream_silent_after_the_final_event_does_not_hold_the_client(
    gw: Wired, provider: str, converted: bool
) -> None:
    # stream_idle_timeout is minutes; once the final event has gone out the gateway
    # waits only briefly (seconds) for the rest of the upstream body, then ends the
    # client's response properly and drops the upstream connection.
    def then_silent(request: Received) -> Stream:
        return Stream(body_events(Answer(text="done"), request), ending="hang")

    gw.upstream(provider).respond(then_silent)
    client = provider if not converted else ("anthropic" if provider == "openai" else "openai")
    body = {"model": MODELS[(provider, False)][0], "max_tokens": 9, "stream": True}
    body["messages"] = [{"role": "user", "content": "hi"}]
    path = "/v1/chat/completions" if client == "openai" else "/v1/messages"
    headers = [("x-api-key", gw.key), ("content-type", "application/json")]
    request = raw_request("POST", path, headers=headers, body=json.dumps(body).encode())

    response = run(exchange(gw.port, request), timeout=15)  # the whole response, framed

    assert response.status == 200
    last = response.body.rstrip(b"\n").rsplit(b"\n\n", 1)[-1]
    if client == "openai":
        assert last == b"data: [DONE]"
    else:
        assert last.startswith(b"event: message_stop\n")
    assert b"error" not in response.body
    up = gw.upstream(provider)
    up.wait_until_closed(up.last().connection_id, 5.0)


@pytest.mark.parametrize("mapped", [False, True], ids=["direct", "alias"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_same_format_stream_ended_before_its_answer_is_an_error_for_the_sdk(
    gw: Wired, provider: str, mapped: bool
) -> None:
    # The upstream ends its body properly, but the stream stops before any stop or
    # finish reason: the client must not take the fragment for a whole answer.
    def cut_short(request: Received) -> Stream:
        events = body_events(Answer(text="one two three four five"), request)
        return Stream(events[:4])

    gw.upstream(provider).respond(cut_short)
    model = MODELS[(provider, mapped)][0]
    messages = [{"role": "user", "content": "hi"}]
    expected = "before the answer was complete"
    if provider == "openai":
        chat = gw.openai().chat.completions
        with pytest.raises(openai.APIError, match=expected):
            list(chat.create(model=model, messages=messages, stream=True))
    else:
        client = gw.anthropic()
        with pytest.raises(anthropic.APIStatusError, match=expected):
            list(client.messages.create(model=model, max_tokens=50, messages=messages, stream=True))


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("client", PROVIDERS)
def test_a_whole_json_answer_to_a_streaming_request_reaches_the_sdk_as_a_stream(
    gw: Wired, client: str, provider: str
) -> None:
    # Some OpenAI-compatible servers ignore "stream": the answer comes whole.
    answer = Answer(text="whole, not streamed", tool_calls=(ToolCall("call_1", "f", {"a": 1}),))
    gw.upstream(provider).respond(lambda request: json_reply(body_json(answer, request)))
    model = MODELS[(provider, False)][0]
    messages = [{"role": "user", "content": "hi"}]
    if client == "openai":
        with gw.openai().chat.completions.create(
            model=model, messages=messages, stream=True
        ) as stream:
            chunks = [c for c in stream if c.choices]
        deltas = [c.choices[0].delta for c in chunks]
        assert "".join(d.content or "" for d in deltas) == answer.text
        calls = [t for d in deltas for t in d.tool_calls or []]
        assert [(t.id, t.function.name) for t in calls if t.id] == [("call_1", "f")]
        assert json.loads("".join(t.function.arguments or "" for t in calls)) == {"a": 1}
        assert chunks[-1].choices[0].finish_reason == "tool_calls"
    else:
        with gw.anthropic().messages.stream(model=model, max_tokens=50, messages=messages) as s:
            message = s.get_final_message()
        assert message.content[0].text == answer.text
        assert [(b.id, b.name, b.input) for b in message.content[1:]] == [("call_1", "f", {"a": 1})]
        assert message.stop_reason == "tool_use"
        assert message.usage.output_tokens == answer.output_tokens
