"""End to end: the ``openai`` and ``anthropic`` SDKs through the gateway to a fake
Azure OpenAI upstream (``azure_fake``) on 127.0.0.1.

Each test checks what the SDK got and what Azure received: the URL of the
account's style (a deployment path with ``api-version``, or the v1 API with
the deployment in the body), the key in ``api-key`` and nowhere else. Azure's
own shapes come along: a stream's first chunk without choices, filter results
on every answer, a content filter stopping an answer or blocking a prompt
(a refusal in the client's format, never an error the SDK cannot read), its
error shape and ``retry-after-ms``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from azure_fake import (
    AZURE_UPSTREAM_KEY,
    UNDERLYING_MODEL,
    answering_azure,
    azure_error,
    azure_filtered_stream,
    azure_prompt_filtered,
)
from conftest import run_cli
from fake_upstream import (
    Answer,
    FakeUpstream,
    ToolCall,
    add_gateway_key,
    anthropic_client,
    isolate_environment,
    openai_client,
    running_gateway,
)

from llm_gateway.config.store import ConfigStore

#: what clients ask for, and the deployment it is mapped to
MODEL, DEPLOYMENT = "gpt-4o", "prod-gpt4o"
TEXT = "Hello there from the fake Azure"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@dataclass
class Azure:
    up: FakeUpstream
    port: int
    key: str
    style: str
    clients: list[Any] = field(default_factory=list)

    def openai(self) -> Any:
        self.clients.append(openai_client(self.port, self.key))
        return self.clients[-1]

    def anthropic(self) -> Any:
        self.clients.append(anthropic_client(self.port, self.key))
        return self.clients[-1]

    def check_request(self, request: Any) -> None:
        """The URL of the account's style, the key in ``api-key`` only."""
        if self.style == "v1":
            assert request.path == "/openai/v1/chat/completions"
            assert request.query == ""
            assert request.json()["model"] == DEPLOYMENT
        else:
            assert request.path == f"/openai/deployments/{DEPLOYMENT}/chat/completions"
            assert request.query == "api-version=2024-10-21"
        assert request.header("api-key") == AZURE_UPSTREAM_KEY
        assert request.header("authorization") is None
        assert self.key not in json.dumps([request.headers, request.path, request.query])


def add_azure_account(base_url: str, style: str) -> str:
    args = ["upstream", "add", "--type", "api-key", "--provider", "azure"]
    args += ["--name", "azure-main", "--key", AZURE_UPSTREAM_KEY, "--base-url", base_url]
    args += ["--model-map", f"{MODEL}={DEPLOYMENT}", "--azure-style", style, "--json"]
    account_id: str = run_cli(*args).json()["id"]
    return account_id


@pytest.fixture(params=["deployments", "v1"])
def azure(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Azure]:
    isolate_environment(monkeypatch, tmp_path / "home")
    with FakeUpstream() as up:
        add_azure_account(up.base_url, request.param)
        key = add_gateway_key()
        store = ConfigStore(tmp_path / "home" / "config.yaml")
        with running_gateway(store) as (_, port):
            setup = Azure(up, port, key, request.param)
            try:
                yield setup
            finally:
                for client in setup.clients:
                    client.close()


# --- text ---------------------------------------------------------------------------


def test_openai_sdk_text(azure: Azure) -> None:
    azure.up.respond(answering_azure(Answer(text=TEXT, input_tokens=12, output_tokens=5)))
    completion = azure.openai().chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ],
        max_tokens=50,
    )
    assert completion.choices[0].message.content == TEXT
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == MODEL
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 5)
    request = azure.up.last()
    azure.check_request(request)
    assert request.json()["messages"][0] == {"role": "system", "content": "Be brief."}


def test_anthropic_sdk_text(azure: Azure) -> None:
    azure.up.respond(answering_azure(Answer(text=TEXT, input_tokens=12, output_tokens=5)))
    message = azure.anthropic().messages.create(
        model=MODEL,
        max_tokens=50,
        system="Be brief.",
        messages=[{"role": "user", "content": "Say hello"}],
    )
    assert [block.text for block in message.content] == [TEXT]
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 5)
    request = azure.up.last()
    azure.check_request(request)
    assert request.json()["messages"][0] == {"role": "system", "content": "Be brief."}


# --- streams: Azure's first chunk has no choices ---------------------------------------


def test_openai_sdk_stream_with_azure_first_chunk(azure: Azure) -> None:
    azure.up.respond(answering_azure(Answer(text=TEXT, input_tokens=12, output_tokens=5)))
    stream = azure.openai().chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Say hello"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TEXT
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 12
    assert all(c.model in (MODEL, "") for c in chunks)
    azure.check_request(azure.up.last())


def test_anthropic_sdk_stream_with_azure_first_chunk(azure: Azure) -> None:
    azure.up.respond(answering_azure(Answer(text=TEXT, input_tokens=12, output_tokens=5)))
    with azure.anthropic().messages.stream(
        model=MODEL,
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": "Say hello"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == TEXT
    assert final.stop_reason == "end_turn"
    assert final.model == MODEL
    assert final.usage.output_tokens == 5
    azure.check_request(azure.up.last())


# --- tools, two turns ----------------------------------------------------------------


def test_openai_sdk_tools_with_a_second_turn(azure: Azure) -> None:
    call = ToolCall("call_az1", "get_weather", {"city": "Paris"})
    azure.up.queue(answering_azure(Answer(tool_calls=(call,)))(_stream_request(False)))
    client = azure.openai()
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    assert first.choices[0].finish_reason == "tool_calls"
    (tool_call,) = first.choices[0].message.tool_calls
    assert (tool_call.id, tool_call.function.name) == ("call_az1", "get_weather")
    assert json.loads(tool_call.function.arguments) == {"city": "Paris"}
    azure.up.respond(answering_azure(Answer(text="Sunny in Paris.")))
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": tool_call.id, "content": "sunny, 21C"})
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "Sunny in Paris."
    sent = azure.up.last().json()
    assert sent["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_az1",
        "content": "sunny, 21C",
    }
    assert sent["messages"][-2]["tool_calls"][0]["id"] == "call_az1"
    azure.check_request(azure.up.last())


def test_anthropic_sdk_streamed_tools_with_a_second_turn(azure: Azure) -> None:
    call = ToolCall("call_az2", "get_weather", {"city": "Tokyo"})
    azure.up.queue(answering_azure(Answer(tool_calls=(call,)))(_stream_request(True)))
    client = azure.anthropic()
    tool = {
        "name": "get_weather",
        "description": "Weather in a city",
        "input_schema": WEATHER["function"]["parameters"],  # type: ignore[index]
    }
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Tokyo?"}]
    with client.messages.stream(
        model=MODEL, max_tokens=100, messages=messages, tools=[tool]
    ) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    (use,) = [b for b in first.content if b.type == "tool_use"]
    assert (use.name, use.input) == ("get_weather", {"city": "Tokyo"})
    azure.up.respond(answering_azure(Answer(text="Rainy in Tokyo.")))
    messages.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
    result = {"type": "tool_result", "tool_use_id": use.id, "content": "rain, 14C"}
    messages.append({"role": "user", "content": [result]})
    second = client.messages.create(model=MODEL, max_tokens=100, messages=messages, tools=[tool])
    assert [b.text for b in second.content if b.type == "text"] == ["Rainy in Tokyo."]
    sent = azure.up.last().json()
    assert sent["messages"][-1]["role"] == "tool"
    assert sent["messages"][-1]["content"] == "rain, 14C"
    assert sent["messages"][-1]["tool_call_id"] == sent["messages"][-2]["tool_calls"][0]["id"]
    azure.check_request(azure.up.last())


def _stream_request(stream: bool) -> Any:
    """A recorded request stand-in for answering one reply ahead of time."""
    from fake_upstream import Received

    body = json.dumps({"model": UNDERLYING_MODEL, "stream": stream}).encode()
    return Received("POST", "/", "", (), body, 0)


# --- the content filter ---------------------------------------------------------------


def test_a_filtered_answer_is_a_refusal_for_the_anthropic_sdk(azure: Azure) -> None:
    azure.up.respond(azure_filtered_stream("Once upon a time "))
    with azure.anthropic().messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "A story"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Once upon a time "
    assert final.stop_reason == "refusal"


def test_a_filtered_answer_ends_the_openai_stream_with_content_filter(azure: Azure) -> None:
    azure.up.respond(azure_filtered_stream("Once upon a time "))
    chunks = list(
        azure.openai().chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "A story"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Once upon a time "
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"


def test_a_blocked_prompt_is_an_openai_refusal_not_an_error(azure: Azure) -> None:
    azure.up.respond(azure_prompt_filtered())
    completion = azure.openai().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "something blocked"}]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "content_filter"
    assert choice.message.content is None
    assert choice.message.refusal is not None
    assert "content filter" in choice.message.refusal
    assert "hate (medium)" in choice.message.refusal
    assert completion.model == MODEL
    assert completion.id.startswith("chatcmpl-")
    assert len(azure.up.requests) == 1  # a refusal is not retried


def test_a_blocked_prompt_is_an_anthropic_refusal_streamed_or_not(azure: Azure) -> None:
    azure.up.respond(azure_prompt_filtered())
    client = azure.anthropic()
    message = client.messages.create(
        model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "something blocked"}]
    )
    assert message.stop_reason == "refusal"
    assert message.model == MODEL
    assert "content filter" in "".join(b.text for b in message.content if b.type == "text")
    with client.messages.stream(
        model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "something blocked"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "refusal"


def test_a_blocked_prompt_in_an_openai_stream_is_a_refusal_chunk(azure: Azure) -> None:
    azure.up.respond(azure_prompt_filtered())
    chunks = list(
        azure.openai().chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "blocked"}], stream=True
        )
    )
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "content_filter"
    said = "".join(
        (c.choices[0].delta.content or "") + (c.choices[0].delta.refusal or "")
        for c in chunks
        if c.choices
    )
    assert "content filter" in said


# --- errors ----------------------------------------------------------------------------


def test_a_429_with_retry_after_ms_is_waited_out_then_answered(azure: Azure) -> None:
    busy = "Requests to the ChatCompletions_Create Operation have exceeded token rate limit."
    azure.up.queue(azure_error(429, "429", busy, [("retry-after-ms", "300")]))
    azure.up.respond(answering_azure(Answer(text=TEXT)))
    completion = azure.openai().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content == TEXT
    assert len(azure.up.requests) == 2


def test_a_long_429_is_the_openai_sdk_rate_limit_error_with_retry_after_ms(azure: Azure) -> None:
    busy = "Requests to the ChatCompletions_Create Operation have exceeded token rate limit."
    azure.up.respond(azure_error(429, "429", busy, [("retry-after-ms", "600000")]))
    with pytest.raises(openai.RateLimitError) as caught:
        azure.openai().chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 429
    assert "exceeded token rate limit" in caught.value.message
    assert caught.value.response.headers.get("retry-after-ms") == "600000"
    assert len(azure.up.requests) == 1


def test_a_500_is_the_anthropic_sdk_internal_server_error(azure: Azure) -> None:
    azure.up.respond(azure_error(500, "InternalServerError", "The server had an error."))
    with pytest.raises(anthropic.InternalServerError) as caught:
        azure.anthropic().messages.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 500
    assert "The server had an error." in caught.value.message


def test_a_missing_deployment_is_the_anthropic_sdk_not_found_error(azure: Azure) -> None:
    missing = (
        "The API deployment for this resource does not exist. If you created the deployment "
        "within the last 5 minutes, please wait a moment and try again."
    )
    azure.up.respond(azure_error(404, "DeploymentNotFound", missing))
    with pytest.raises(anthropic.NotFoundError) as caught:
        azure.anthropic().messages.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert "deployment for this resource does not exist" in caught.value.message
    assert AZURE_UPSTREAM_KEY not in json.dumps(caught.value.body)


# --- /v1/models -------------------------------------------------------------------------


def test_models_lists_the_configured_names_and_never_asks_azure(azure: Azure) -> None:
    client = azure.openai()
    for _ in range(2):  # the second listing would show what a fetch found
        names = [m.id for m in client.models.list()]
        assert names == [MODEL]
    assert all(not r.path.endswith("/models") for r in azure.up.requests)
