"""Responses as an upstream: an OpenAI account told to use ``/v1/responses``.

An account declares the API its chat turns use (``upstream add/update --wire
responses``, or ``--responses-models`` for some of its models), so chat and
Anthropic clients reach a model served only on ``/v1/responses``. The fake
upstream here is Responses-only: ``/v1/chat/completions`` answers 404, as
OpenAI does for such models.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from fake_upstream import (
    Answer,
    FakeUpstream,
    Received,
    Reply,
    ToolCall,
    add_account,
    add_gateway_key,
    answering,
    anthropic_client,
    clear_proxy_environment,
    openai_client,
    openai_error,
    running_gateway,
)

from llm_gateway.config.store import ConfigStore

MODEL = "gpt-5-pro"
UPSTREAM_KEY = "sk-upstream-responses-" + "r" * 24


def responses_only(answer: Answer) -> Callable[[Received], Reply]:
    handle = answering(answer)

    def handler(request: Received) -> Reply:
        if request.path != "/v1/responses":
            return openai_error(
                404, "invalid_request_error", "This model is only supported in v1/responses"
            )
        return handle(request)

    return handler


@pytest.fixture
def up(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeUpstream]:
    clear_proxy_environment(monkeypatch)
    with FakeUpstream() as upstream:
        yield upstream


def gateway(home: Path) -> Any:
    return running_gateway(ConfigStore(home / "config.yaml"))


def test_wire_is_declared_shown_and_cleared_through_the_cli(home: Path, up: FakeUpstream) -> None:
    account = add_account("openai", up.base_url + "/v1", name="pro", key=UPSTREAM_KEY)
    assert run_cli("upstream", "update", account, "--wire", "responses").code == 0
    shown = run_cli("upstream", "show", account, "--json").json()
    assert shown["wire"] == "responses" and UPSTREAM_KEY not in json.dumps(shown)
    updated = run_cli(
        "upstream", "update", account, "--wire", "default", "--responses-models", "gpt-5*-pro"
    )
    assert updated.code == 0, updated.output
    shown = run_cli("upstream", "show", account, "--json").json()
    assert shown["wire"] is None and shown["responses_models"] == ["gpt-5*-pro"]
    claude = add_account("anthropic", up.base_url, name="claude", key="sk-ant-" + "a" * 24)
    refused = run_cli("upstream", "update", claude, "--wire", "responses")
    assert refused.code != 0 and "--wire does not apply" in refused.output


def test_chat_client_reaches_a_responses_only_model(home: Path, up: FakeUpstream) -> None:
    up.respond(responses_only(Answer(text="Served by the Responses API.")))
    account = add_account("openai", up.base_url + "/v1", name="pro", key=UPSTREAM_KEY, models="*")
    assert run_cli("upstream", "update", account, "--wire", "responses").code == 0
    key = add_gateway_key()
    with gateway(home) as (_, port):
        client = openai_client(port, key)
        reply = client.chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
            ],
        )
        assert reply.choices[0].message.content == "Served by the Responses API."
        assert reply.model == MODEL and reply.usage.prompt_tokens == 11
        stream = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "Served by the Responses API."
    posts = [r for r in up.requests if r.method == "POST"]
    assert [r.path for r in posts] == ["/v1/responses", "/v1/responses"]
    first = posts[0].json()
    assert first["model"] == MODEL
    assert first["input"][0]["role"] == "system"
    assert first["input"][0]["content"][0]["text"] == "Be brief."
    assert first["store"] is False
    assert posts[0].header("authorization") == f"Bearer {UPSTREAM_KEY}"
    assert posts[1].json()["stream"] is True


def test_anthropic_client_runs_a_tool_round_trip_on_a_responses_upstream(
    home: Path, up: FakeUpstream
) -> None:
    def turn(request: Received) -> Reply:
        items = request.json()["input"]
        if any(i.get("type") == "function_call_output" for i in items):
            return responses_only(Answer(text="It is 21 degrees."))(request)
        call = ToolCall("call_w1", "weather", {"city": "Paris"})
        return responses_only(Answer(tool_calls=(call,)))(request)

    up.respond(turn)
    account = add_account("openai", up.base_url + "/v1", name="pro", key=UPSTREAM_KEY, models="*")
    assert run_cli("upstream", "update", account, "--responses-models", "gpt-5*-pro").code == 0
    key = add_gateway_key()
    tool = {
        "name": "weather",
        "description": "Weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    messages: list[dict[str, object]] = [{"role": "user", "content": "Weather in Paris?"}]
    with gateway(home) as (_, port):
        client = anthropic_client(port, key)
        first = client.messages.create(model=MODEL, max_tokens=200, messages=messages, tools=[tool])
        assert first.stop_reason == "tool_use"
        use = first.content[-1]
        assert use.type == "tool_use" and use.name == "weather" and use.input == {"city": "Paris"}
        messages += [
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "21C"}],
            },
        ]
        with client.messages.stream(
            model=MODEL, max_tokens=200, messages=messages, tools=[tool]
        ) as s:
            final = s.get_final_message()
        assert final.content[0].text == "It is 21 degrees."
    posts = [r for r in up.requests if r.method == "POST"]
    assert [r.path for r in posts] == ["/v1/responses", "/v1/responses"]
    second = posts[1].json()
    output = [i for i in second["input"] if i.get("type") == "function_call_output"]
    assert output and output[0]["call_id"] == "call_w1" and "21C" in json.dumps(output[0])
    assert second["tools"][0]["name"] == "weather"


def test_only_the_declared_models_use_the_responses_api(home: Path, up: FakeUpstream) -> None:
    up.respond(answering(Answer(text="ok")))
    account = add_account("openai", up.base_url + "/v1", name="mixed", key=UPSTREAM_KEY, models="*")
    assert run_cli("upstream", "update", account, "--responses-models", "gpt-5*-pro").code == 0
    key = add_gateway_key()
    with gateway(home) as (_, port):
        client = openai_client(port, key)
        for model in ("gpt-4o", MODEL):
            reply = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "Hi"}]
            )
            assert reply.choices[0].message.content == "ok"
    paths = [r.path for r in up.requests if r.method == "POST"]
    assert paths == ["/v1/chat/completions", "/v1/responses"]
