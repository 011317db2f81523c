"""End to end through the ``openai`` SDK's Responses API: ``client.responses.create``
(plain and ``stream=True``), the ``client.responses.stream()`` helper and its
final response, function tools with a second turn of ``function_call_output``,
reasoning summaries, and upstream 429/500 as the SDK's own errors.

Three upstreams: an Anthropic account (conversion), an ``openai-compatible``
account (conversion to chat: such servers may have no Responses API) and an
OpenAI account (same format: passthrough, only the model renamed).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import openai
import pytest
from conftest import exchange, raw_request, run
from fake_upstream import (
    OPENAI_ALIAS,
    OPENAI_MAPPED,
    OPENAI_UPSTREAM_KEY,
    Answer,
    Respond,
    ToolCall,
    Wired,
    add_account,
    answering,
    anthropic_error,
    isolate_environment,
    json_reply,
    openai_error,
    wired_gateway,
)
from test_stream_validators import check_responses

from llm_gateway.config.store import ConfigStore

#: upstream kind -> (the model the client asks for, the upstream path it must reach)
UPSTREAMS = {
    "anthropic": ("claude-haiku-4-5", "/v1/messages"),
    "chat": ("compat-model", "/v1/chat/completions"),
    "responses": ("gpt-4o", "/v1/responses"),
}
TEXT = "Hello from the fake upstream"
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def _compatible_account() -> None:
    """An ``openai-compatible`` account on the OpenAI fake (which serves chat too)."""
    store = ConfigStore(Path(os.environ["LLM_GATEWAY_HOME"]) / "config.yaml")
    accounts = store.read_document()["upstream_accounts"]
    base = next(a["base_url"] for a in accounts if a["provider"] == "openai")
    add_account(
        "openai-compatible", base, name="compat", key=OPENAI_UPSTREAM_KEY, models="compat-*"
    )


@pytest.fixture(scope="module")
def wired(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wired]:
    with pytest.MonkeyPatch.context() as patch:
        isolate_environment(patch, tmp_path_factory.mktemp("e2e-responses") / "home")
        with wired_gateway(before_start=_compatible_account) as setup:
            yield setup


@pytest.fixture
def gw(wired: Wired) -> Wired:
    wired.reset()
    return wired


def upstream_of(gw: Wired, kind: str) -> Any:
    return gw.anthropic_up if kind == "anthropic" else gw.openai_up


def script(gw: Wired, kind: str, answer: Answer) -> None:
    upstream_of(gw, kind).respond(answering(answer))


@pytest.mark.parametrize("kind", UPSTREAMS)
def test_plain_create(gw: Wired, kind: str) -> None:
    model, path = UPSTREAMS[kind]
    script(gw, kind, Answer(text=TEXT))
    response = gw.openai().responses.create(model=model, input="Say hello", instructions="Be brief")
    assert response.output_text == TEXT
    assert response.id.startswith("resp_")
    assert response.model == model
    assert response.status == "completed"
    assert response.usage is not None and response.usage.input_tokens == 11
    assert response.usage.output_tokens == 7
    sent = upstream_of(gw, kind).last()
    assert sent.path == path
    assert "Be brief" in json.dumps(sent.json())


@pytest.mark.parametrize("kind", UPSTREAMS)
def test_stream_true_is_a_strict_responses_stream(gw: Wired, kind: str) -> None:
    model, _ = UPSTREAMS[kind]
    script(gw, kind, Answer(text=TEXT))
    stream = gw.openai().responses.create(model=model, input="Say hello", stream=True)
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == TEXT
    assert events[-1].response.output_text == TEXT


@pytest.mark.parametrize("kind", UPSTREAMS)
def test_stream_helper_and_its_final_response(gw: Wired, kind: str) -> None:
    model, _ = UPSTREAMS[kind]
    script(gw, kind, Answer(text=TEXT, input_tokens=21, output_tokens=9))
    with gw.openai().responses.stream(model=model, input="Say hello") as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(texts) == TEXT
    assert final.output_text == TEXT
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (21, 9)


@pytest.mark.parametrize("kind", UPSTREAMS)
@pytest.mark.parametrize("stream", [False, True])
def test_function_tools_and_a_second_turn(gw: Wired, kind: str, stream: bool) -> None:
    model, _ = UPSTREAMS[kind]
    calls = (
        ToolCall("call_a1", "get_weather", {"city": "Paris"}),
        ToolCall("call_b2", "get_weather", {"city": "Rome"}),
    )
    script(gw, kind, Answer(tool_calls=calls))
    client = gw.openai()
    first_input: list[Any] = [{"role": "user", "content": "Weather in Paris and Rome?"}]
    if stream:
        with client.responses.stream(model=model, input=first_input, tools=[WEATHER_TOOL]) as s:
            for _ in s:
                pass
            first = s.get_final_response()
    else:
        first = client.responses.create(model=model, input=first_input, tools=[WEATHER_TOOL])
    made = [item for item in first.output if item.type == "function_call"]
    assert [(c.call_id, c.name, json.loads(c.arguments)) for c in made] == [
        ("call_a1", "get_weather", {"city": "Paris"}),
        ("call_b2", "get_weather", {"city": "Rome"}),
    ]
    script(gw, kind, Answer(text="Sunny in both."))
    second_input = [
        *first_input,
        *[c.model_dump(exclude_none=True) for c in made],
        {"type": "function_call_output", "call_id": "call_a1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "call_b2", "output": "sunny too"},
    ]
    second = client.responses.create(model=model, input=second_input, tools=[WEATHER_TOOL])
    assert second.output_text == "Sunny in both."
    sent = json.dumps(upstream_of(gw, kind).last().json())
    for needle in ("call_a1", "call_b2", "sunny too"):
        assert needle in sent


@pytest.mark.parametrize("kind", ["anthropic", "chat"])
def test_reasoning_summary_reaches_the_client(gw: Wired, kind: str) -> None:
    model, _ = UPSTREAMS[kind]
    script(gw, kind, Answer(text=TEXT, reasoning="Thinking it through"))
    client = gw.openai()
    response = client.responses.create(
        model=model, input="Say hello", reasoning={"effort": "low", "summary": "auto"}
    )
    reasoning = [item for item in response.output if item.type == "reasoning"]
    assert [s.text for s in reasoning[0].summary] == ["Thinking it through"]
    stream = client.responses.create(
        model=model, input="Say hello", reasoning={"effort": "low"}, stream=True
    )
    events = list(stream)
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert summary == "Thinking it through"
    kinds = [e.type for e in events]
    assert kinds.index("response.reasoning_summary_part.added") < kinds.index(
        "response.reasoning_summary_text.delta"
    )


@pytest.mark.parametrize("kind", UPSTREAMS)
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("status", "error"), [(429, openai.RateLimitError), (500, openai.InternalServerError)]
)
def test_upstream_errors_are_the_sdks_own(
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    stream: bool,
    status: int,
    error: type[Exception],
) -> None:
    isolate_environment(monkeypatch, tmp_path / "home")
    with wired_gateway(before_start=_compatible_account) as gw:
        model, _ = UPSTREAMS[kind]
        if kind == "anthropic":
            reply = anthropic_error(
                status, "rate_limit_error" if status == 429 else "api_error", "no"
            )
        else:
            reply = openai_error(
                status, "rate_limit_error" if status == 429 else "server_error", "no"
            )
        upstream_of(gw, kind).respond(reply)
        with pytest.raises(error):
            result = gw.openai().responses.create(model=model, input="hi", stream=stream)
            if stream:
                list(result)


def test_passthrough_renames_the_model_only(gw: Wired) -> None:
    script(gw, "responses", Answer(text=TEXT))
    body = {
        "model": OPENAI_ALIAS,
        "input": "hi",
        "store": True,
        "previous_response_id": "resp_upstream_own",
        "include": ["reasoning.encrypted_content"],
        "tools": [{"type": "web_search"}],
    }
    response = gw.openai().responses.create(**body)
    assert response.model == OPENAI_ALIAS
    sent = gw.openai_up.last().json()
    assert sent == {**body, "model": OPENAI_MAPPED}


def test_streamed_passthrough_keeps_the_grammar(gw: Wired) -> None:
    script(gw, "responses", Answer(text=TEXT, reasoning="hmm"))
    capture: list[Any] = []
    client = gw.openai(capture)
    raw = client.responses.with_raw_response.create(model=OPENAI_ALIAS, input="hi", stream=True)
    data = raw.http_response.read()
    view = check_responses(data, model=OPENAI_ALIAS)
    assert view.text == TEXT


def post(gw: Wired, path: str, body: dict[str, Any]) -> Any:
    headers = [("authorization", f"Bearer {gw.key}"), ("content-type", "application/json")]
    data = json.dumps(body).encode()
    return run(exchange(gw.port, raw_request("POST", path, headers=headers, body=data)))


def test_input_tokens_forwarded_or_estimated(gw: Wired) -> None:
    gw.openai_up.respond(json_reply({"object": "response.input_tokens", "input_tokens": 42}))
    forwarded = post(gw, "/v1/responses/input_tokens", {"model": "gpt-4o", "input": "hello"})
    assert forwarded.status == 200 and forwarded.json()["input_tokens"] == 42
    assert gw.openai_up.last().path == "/v1/responses/input_tokens"
    assert forwarded.header("x-llm-gateway-estimate") is None
    body = {"model": "claude-haiku-4-5", "input": "hello there, how are you today?"}
    estimated = post(gw, "/v1/responses/input_tokens", body)
    assert estimated.status == 200 and estimated.json()["input_tokens"] >= 5
    assert estimated.header("x-llm-gateway-estimate") == "true"
    assert gw.anthropic_up.wait_for_requests(0) == []


# --- previous_response_id, kept responses -------------------------------------------------


def answering_as(answer: Answer, ident: str) -> Any:
    """``answering`` with upstream message ids ``ident`` + a number counting the
    answers (real upstreams give each answer its own id; the fakes' is fixed)."""
    inner = answering(answer)
    numbers = itertools.count()

    def handler(request: Any) -> Any:
        reply = inner(request)
        own = f"{ident}_{next(numbers)}".encode()
        if isinstance(reply, Respond):
            return replace(reply, body=_renamed(reply.body, own))
        return replace(reply, events=[_renamed(e, own) for e in reply.events])

    return handler


def _renamed(data: bytes, ident: bytes) -> bytes:
    return data.replace(b"msg_fake01", ident).replace(b"resp_fake01", b"resp_" + ident)


@pytest.fixture
def own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Wired]:
    """A gateway of this test's own, keeping at most 3 responses."""
    isolate_environment(monkeypatch, tmp_path / "home")

    def configure(document: dict[str, Any]) -> None:
        document["responses"] = {"max_stored": 3}

    with wired_gateway(configure=configure) as setup:
        yield setup


def test_two_turns_chained_to_anthropic_survive_a_restart(own: Wired) -> None:
    from fake_upstream import running_gateway

    own.anthropic_up.respond(answering_as(Answer(text="Paris is the capital."), "msg_t1"))
    client = own.openai()
    first = client.responses.create(
        model="claude-haiku-4-5", input="Capital of France?", instructions="Answer briefly"
    )
    assert first.output_text == "Paris is the capital."
    own.anthropic_up.respond(answering_as(Answer(text="About 2 million people."), "msg_t2"))
    second = client.responses.create(
        model="claude-haiku-4-5", input="And its population?", previous_response_id=first.id
    )
    assert second.output_text == "About 2 million people."
    sent = own.anthropic_up.last().json()
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert "Capital of France?" in json.dumps(sent["messages"][0])
    assert "Paris is the capital." in json.dumps(sent["messages"][1])
    assert "system" not in sent  # instructions are not carried to the next turn (OpenAI's rule)
    fetched = client.responses.retrieve(second.id)
    assert fetched.output_text == "About 2 million people."

    # a restart: a new gateway process on the same home reads the kept turns
    own.close_clients()
    with running_gateway(own.store) as (_, port):
        from fake_upstream import openai_client

        again = openai_client(port, own.key)
        try:
            own.anthropic_up.respond(answering_as(Answer(text="It is in Europe."), "msg_t3"))
            third = again.responses.create(
                model="claude-haiku-4-5", input="Which continent?", previous_response_id=second.id
            )
            assert third.output_text == "It is in Europe."
            roles = [m["role"] for m in own.anthropic_up.last().json()["messages"]]
            assert roles == ["user", "assistant", "user", "assistant", "user"]
            assert again.responses.retrieve(first.id).output_text == "Paris is the capital."
        finally:
            again.close()


def test_kept_responses_are_bounded_and_per_key(own: Wired) -> None:
    from fake_upstream import add_gateway_key

    own.anthropic_up.respond(answering_as(Answer(text="ok"), "msg_t4"))
    client = own.openai()
    ids = [client.responses.create(model="claude-haiku-4-5", input=f"n{i}").id for i in range(5)]
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(ids[0])  # only the newest 3 are kept
    assert client.responses.retrieve(ids[4]).output_text == "ok"
    with pytest.raises(openai.BadRequestError, match="not found"):
        client.responses.create(model="claude-haiku-4-5", input="x", previous_response_id=ids[0])
    other_key = add_gateway_key("other")
    from fake_upstream import openai_client

    other = openai_client(own.port, other_key)
    try:
        with pytest.raises(openai.NotFoundError):
            other.responses.retrieve(ids[4])
        with pytest.raises(openai.BadRequestError, match="not found"):
            other.responses.create(model="claude-haiku-4-5", input="x", previous_response_id=ids[4])
    finally:
        other.close()
    client.responses.delete(ids[4])
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(ids[4])
    kept = (Path(os.environ["LLM_GATEWAY_HOME"]) / "responses.sqlite3").read_bytes()
    assert b"n3" not in kept and b"ok" not in kept  # sealed, not readable on disk


def test_store_false_keeps_nothing(own: Wired) -> None:
    own.anthropic_up.respond(answering_as(Answer(text="ok"), "msg_t5"))
    client = own.openai()
    response = client.responses.create(model="claude-haiku-4-5", input="hi", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_streamed_turn_is_kept_and_chained(own: Wired) -> None:
    own.anthropic_up.respond(answering_as(Answer(text="Streamed answer"), "msg_t6"))
    client = own.openai()
    with client.responses.stream(model="claude-haiku-4-5", input="Stream please") as stream:
        final = stream.get_final_response()
    own.anthropic_up.respond(answering_as(Answer(text="Next"), "msg_t7"))
    client.responses.create(model="claude-haiku-4-5", input="more", previous_response_id=final.id)
    assert "Streamed answer" in json.dumps(own.anthropic_up.last().json()["messages"])


def test_passthrough_chain_stays_on_its_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two OpenAI accounts taking turns (round robin): a chain follows its first turn's."""
    from fake_upstream import FakeUpstream

    isolate_environment(monkeypatch, tmp_path / "home")

    def configure(document: dict[str, Any]) -> None:
        document["routing"] = {"strategy": "round-robin", "sticky_sessions": False}

    with FakeUpstream() as second:

        def second_account() -> None:
            add_account("openai", second.base_url + "/v1", name="two", key=OPENAI_UPSTREAM_KEY)

        with wired_gateway(configure=configure, before_start=second_account) as gw:
            gw.openai_up.respond(answering_as(Answer(text="one"), "one"))
            second.respond(answering_as(Answer(text="two"), "two"))
            client = gw.openai()
            first = client.responses.create(model="gpt-4o", input="hi")
            unchained = {
                client.responses.create(model="gpt-4o", input="x").output_text for _ in range(4)
            }
            assert unchained == {"one", "two"}  # without a chain, both serve
            for _ in range(4):
                turn = client.responses.create(
                    model="gpt-4o", input="again", previous_response_id=first.id
                )
                assert turn.output_text == first.output_text
            owner = gw.openai_up if first.output_text == "one" else second
            sent = owner.last().json()
            assert sent["previous_response_id"] == first.id  # untouched: OpenAI keeps its own


def test_an_unwritable_store_loses_only_the_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_environment(monkeypatch, tmp_path / "home")

    def block_the_store() -> None:
        (tmp_path / "home" / "responses.sqlite3").write_bytes(b"not a database" * 100)

    with wired_gateway(before_start=block_the_store) as gw:
        gw.anthropic_up.respond(answering_as(Answer(text="still answered"), "u"))
        client = gw.openai()
        assert client.responses.create(model="claude-haiku-4-5", input="hi").output_text == (
            "still answered"
        )
        with client.responses.stream(model="claude-haiku-4-5", input="hi") as stream:
            assert stream.get_final_response().output_text == "still answered"
