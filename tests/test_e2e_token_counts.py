"""End to end: ``count_tokens`` from the ``anthropic`` SDK goes to the upstream's own
counter (Gemini ``:countTokens``, OpenAI ``/v1/responses/input_tokens``) with the
system prompt and tools, and is estimated, conservatively and marked so, where
the upstream has no counter (Azure, OpenAI-compatible servers)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import pytest
from fake_upstream import (
    OPENAI_UPSTREAM_KEY,
    FakeUpstream,
    add_account,
    add_gateway_key,
    anthropic_client,
    isolate_environment,
    json_reply,
    running_gateway,
)
from gemini_fake import GEMINI_UPSTREAM_KEY

from llm_gateway.config.store import ConfigStore

SYSTEM = "You are a careful assistant."
TOOL = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": [
            {
                "type": "tool_use",
                "id": "toolu_01",
                "name": "get_weather",
                "input": {"city": "Paris"},
            }
        ],
    },
    {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "sunny"}],
    },
]


@dataclass
class Upstreams:
    gemini: FakeUpstream
    openai: FakeUpstream
    azure: FakeUpstream
    client: Any


@pytest.fixture
def ups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Upstreams]:
    isolate_environment(monkeypatch, tmp_path / "home")
    with FakeUpstream() as gemini, FakeUpstream() as openai, FakeUpstream() as azure:
        add_account("gemini", gemini.base_url + "/v1beta", name="g", key=GEMINI_UPSTREAM_KEY)
        add_account("openai", openai.base_url + "/v1", name="o", key=OPENAI_UPSTREAM_KEY)
        add_account("azure", azure.base_url, name="z", key="z" * 32, models="az-deploy")
        add_account("openai-compatible", azure.base_url, name="c", key="c" * 32, models="qwen*")
        key = add_gateway_key()
        store = ConfigStore(tmp_path / "home" / "config.yaml")
        with running_gateway(store) as (_, port):
            client = anthropic_client(port, key)
            try:
                yield Upstreams(gemini, openai, azure, client)
            finally:
                client.close()


def test_a_gemini_model_is_counted_by_count_tokens_with_system_and_tools(ups: Upstreams) -> None:
    ups.gemini.respond(json_reply({"totalTokens": 231, "promptTokensDetails": []}))
    raw = ups.client.messages.with_raw_response.count_tokens(
        model="gemini-2.5-flash", system=SYSTEM, tools=[TOOL], messages=HISTORY
    )
    assert raw.parse().input_tokens == 231
    assert raw.headers.get("x-llm-gateway-estimate") is None
    (received,) = ups.gemini.requests
    assert received.path == "/v1beta/models/gemini-2.5-flash:countTokens"
    assert received.header("x-goog-api-key") == GEMINI_UPSTREAM_KEY
    counted = received.json()["generateContentRequest"]
    assert counted["model"] == "models/gemini-2.5-flash"
    assert counted["systemInstruction"] == {"parts": [{"text": SYSTEM}]}
    (declaration,) = counted["tools"][0]["functionDeclarations"]
    assert declaration["name"] == "get_weather"
    assert [c["role"] for c in counted["contents"]] == ["user", "model", "user"]
    assert counted["contents"][1]["parts"][0]["functionCall"]["args"] == {"city": "Paris"}
    assert "maxOutputTokens" not in str(counted)


def test_an_openai_model_is_counted_by_responses_input_tokens(ups: Upstreams) -> None:
    ups.openai.respond(json_reply({"object": "response.input_tokens", "input_tokens": 118}))
    raw = ups.client.messages.with_raw_response.count_tokens(
        model="gpt-4o", system=SYSTEM, tools=[TOOL], messages=HISTORY
    )
    assert raw.parse().input_tokens == 118
    assert raw.headers.get("x-llm-gateway-estimate") is None
    (received,) = ups.openai.requests
    assert received.path == "/v1/responses/input_tokens"
    sent = received.json()
    assert sent["model"] == "gpt-4o"
    assert sent["instructions"] == SYSTEM
    assert sent["input"][0] == {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "Weather in Paris?"}],
    }
    call, output = sent["input"][1], sent["input"][2]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    assert output == {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}
    assert sent["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": TOOL["input_schema"],
            "strict": False,
        }
    ]
    assert "max_tokens" not in sent and "max_output_tokens" not in sent


def test_a_counter_answer_without_a_count_is_a_502(ups: Upstreams) -> None:
    ups.openai.respond(json_reply({"object": "response.input_tokens"}))
    with pytest.raises(anthropic.APIStatusError) as caught:
        ups.client.messages.count_tokens(model="gpt-4o", messages=HISTORY[:1])
    assert caught.value.status_code == 502


def test_a_counter_error_reaches_the_client_in_its_format(ups: Upstreams) -> None:
    error = {"error": {"message": "Invalid model", "type": "invalid_request_error"}}
    ups.openai.respond(json_reply(error, 400))
    with pytest.raises(anthropic.BadRequestError) as caught:
        ups.client.messages.count_tokens(model="gpt-4o", messages=HISTORY[:1])
    assert "Invalid model" in caught.value.message


@pytest.mark.parametrize("model", ["az-deploy", "qwen-max"])
def test_without_a_counter_the_estimate_is_marked_and_does_not_undercount(
    ups: Upstreams, model: str
) -> None:
    text = "お誕生日おめでとう" * 50  # 450 tokens in cl100k_base (9 per greeting)
    raw = ups.client.messages.with_raw_response.count_tokens(
        model=model, system=SYSTEM, tools=[TOOL], messages=[{"role": "user", "content": text}]
    )
    assert raw.headers.get("x-llm-gateway-estimate") == "true"
    tokens = raw.parse().input_tokens
    # the text alone, the tools' own prompt (346) and their schema come on top
    assert tokens >= 450 + 346 + 20
    assert ups.azure.requests == []


def test_an_upstream_without_the_counter_endpoint_gets_the_estimate(ups: Upstreams) -> None:
    # e.g. an OpenAI account whose base URL is a proxy that has no /responses/input_tokens
    ups.openai.respond(json_reply({"error": {"message": "Not found", "type": "not_found"}}, 404))
    raw = ups.client.messages.with_raw_response.count_tokens(
        model="gpt-4o", system=SYSTEM, messages=[{"role": "user", "content": "2 + 2 = 4"}]
    )
    assert raw.headers.get("x-llm-gateway-estimate") == "true"
    assert raw.parse().input_tokens >= 7 + 6  # the published count of the text, the system's
    assert len(ups.openai.requests) == 1
