"""Keepalives through the whole gateway: an upstream stream falls silent for
longer than ``server.stream_keepalive`` (a model thinking), and the official
SDKs still parse the stream, while the raw bytes show what kept it alive: an
SSE comment for OpenAI clients, Anthropic's own ``ping`` event for Anthropic
clients, each between two whole events.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import exchange, run
from fake_upstream import (
    MODELS,
    PROVIDERS,
    Answer,
    Gate,
    Received,
    Stream,
    Wired,
    body_events,
    isolate_environment,
    wired_gateway,
)
from test_e2e_transport import chat_body, messages_body, post

#: seconds of upstream silence in the middle of each stream, and the keepalive interval
SILENCE = 1.2
INTERVAL = 0.2
TEXT = "Hello after a long think"
OPENAI_KEEPALIVE = b": keepalive\n\n"
ANTHROPIC_PING = b'event: ping\ndata: {"type": "ping"}\n\n'


@pytest.fixture(scope="module")
def wired(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wired]:
    def keepalive(document: dict[str, Any]) -> None:
        document["server"]["stream_keepalive"] = INTERVAL

    with pytest.MonkeyPatch.context() as patch:
        isolate_environment(patch, tmp_path_factory.mktemp("e2e-keepalive") / "home")
        with wired_gateway(keepalive) as setup:
            yield setup


@pytest.fixture
def gw(wired: Wired) -> Wired:
    wired.reset()
    return wired


def _thinking(request: Received) -> Stream:
    """The answer's first two events, a silence, then the rest."""
    events = body_events(Answer(text=TEXT), request)
    return Stream([*events[:2], Gate(timeout=SILENCE), *events[2:]])


def _thinking_first(request: Received) -> Stream:
    """A silence before the first event (the gateway's head is out already)."""
    return Stream([Gate(timeout=SILENCE), *body_events(Answer(text=TEXT), request)])


SILENCES = pytest.mark.parametrize(
    "reply", [_thinking, _thinking_first], ids=["between-events", "before-the-first"]
)


@SILENCES
@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_openai_sdk_parses_a_stream_kept_alive_through_a_silence(
    gw: Wired, provider: str, reply: Any
) -> None:
    gw.upstream(provider).respond(reply)
    model = MODELS[(provider, False)][0]
    chunks = list(
        gw.openai().chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Think, then say hello"}],
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TEXT
    assert chunks[-1].choices == [] or chunks[-1].choices[0].finish_reason == "stop"


@SILENCES
@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_anthropic_sdk_parses_a_stream_kept_alive_through_a_silence(
    gw: Wired, provider: str, reply: Any
) -> None:
    gw.upstream(provider).respond(reply)
    model = MODELS[(provider, False)][0]
    with gw.anthropic().messages.stream(
        model=model, max_tokens=64, messages=[{"role": "user", "content": "Think, then say hello"}]
    ) as stream:
        kinds = [event.type for event in stream]
        message = stream.get_final_message()
    assert "".join(b.text for b in message.content if b.type == "text") == TEXT
    assert message.stop_reason == "end_turn"
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("client", ["chat", "messages"])
def test_the_keepalive_is_the_client_formats_own_and_falls_between_events(
    gw: Wired, client: str, provider: str
) -> None:
    gw.upstream(provider).respond(_thinking)
    model = MODELS[(provider, False)][0]
    if client == "chat":
        request = post(gw, "/v1/chat/completions", chat_body(model, stream=True))
    else:
        request = post(gw, "/v1/messages", messages_body(model, stream=True))
    response = run(exchange(gw.port, request))
    assert response.status == 200
    # Every chunk is whole events; a keepalive is one of them, never inside another.
    assert all(chunk.endswith(b"\n\n") for chunk in response.chunks)
    events = [event + b"\n\n" for event in response.body.split(b"\n\n")[:-1]]
    if client == "chat":
        assert OPENAI_KEEPALIVE in events
        assert ANTHROPIC_PING not in events
        others = [e for e in events if e != OPENAI_KEEPALIVE]
        assert all(e.startswith(b"data: ") for e in others)
    else:
        # The upstream's own ping (an Anthropic upstream sends one) plus the gateway's.
        upstream_pings = 1 if provider == "anthropic" else 0
        assert events.count(ANTHROPIC_PING) > upstream_pings
        assert OPENAI_KEEPALIVE not in events
        assert events[0].startswith(b"event: message_start\n")
