"""The official SDKs read the client streams the gateway writes.

Each golden upstream stream is converted to a client format and handed, as a
response body, to the ``anthropic`` or ``openai`` SDK through the SDK's own
HTTP client with an in-memory transport (no socket is opened). The SDK's
stream accumulator must rebuild the message the upstream meant.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2  # the SDKs' HTTP client, used here only for its in-memory transport
import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState

from llm_gateway.formats.unified import (
    ChatResponse,
    StopReason,
    TextPart,
    ThinkingPart,
    ToolUsePart,
)

try:
    from test_stream_golden import MEANING, UPSTREAM_FORMAT, fixture
    from test_stream_validators import MODEL, pipe
except ImportError:  # tests collected as a package
    from tests.test_stream_golden import MEANING, UPSTREAM_FORMAT, fixture
    from tests.test_stream_validators import MODEL, pipe


def transport(body: bytes) -> Any:
    def handler(request: Any) -> Any:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return httpx2.Client(transport=httpx2.MockTransport(handler))


def anthropic_client(body: bytes) -> Any:
    return anthropic.Anthropic(
        api_key="test-key", base_url="http://127.0.0.1:9", http_client=transport(body)
    )


def openai_client(body: bytes) -> Any:
    return openai.OpenAI(
        api_key="test-key", base_url="http://127.0.0.1:9/v1", http_client=transport(body)
    )


def anthropic_final(body: bytes) -> Any:
    with anthropic_client(body).messages.stream(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        return stream.get_final_message()


@pytest.mark.parametrize("name", sorted(MEANING))
def test_anthropic_sdk_rebuilds_the_message(name: str) -> None:
    meaning: ChatResponse = MEANING[name]
    body = pipe(fixture(name), UPSTREAM_FORMAT[name], "anthropic-messages").output
    message = anthropic_final(body)
    assert message.model == MODEL
    assert message.id.startswith("msg_")
    expected: list[tuple[Any, ...]] = []
    for part in meaning.parts:
        if isinstance(part, TextPart):
            expected.append(("text", part.text))
        elif isinstance(part, ThinkingPart):
            expected.append(("thinking", part.text, part.signature))
        elif isinstance(part, ToolUsePart):
            expected.append(("tool_use", part.id, part.name, part.input.value()))
    got: list[tuple[Any, ...]] = []
    for block in message.content:
        if block.type == "text":
            got.append(("text", block.text))
        elif block.type == "thinking":
            got.append(("thinking", block.thinking, block.signature))
        else:
            got.append(("tool_use", block.id, block.name, block.input))
    assert got == expected
    assert message.stop_reason == (meaning.stop_reason or StopReason.END_TURN).value
    assert message.usage.input_tokens == meaning.usage.input_tokens
    assert message.usage.output_tokens == meaning.usage.output_tokens
    assert (message.usage.cache_read_input_tokens or 0) == meaning.usage.cache_read_tokens


def test_anthropic_sdk_raises_the_mid_stream_error() -> None:
    body = pipe(fixture("anthropic_error"), "anthropic-messages", "anthropic-messages").output
    with pytest.raises(anthropic.APIStatusError) as info:
        anthropic_final(body)
    assert "Overloaded" in str(info.value)


def openai_final(body: bytes, include_usage: bool) -> Any:
    """Chunks read by the SDK, accumulated by the SDK's own stream state."""
    kwargs: dict[str, Any] = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = openai_client(body).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True, **kwargs
    )
    state = ChatCompletionStreamState()
    for chunk in stream:
        state.handle_chunk(chunk)
    # The snapshot, not get_final_completion(): that one refuses finish_reason "length".
    return state.current_completion_snapshot


FINISH = {
    StopReason.END_TURN: "stop",
    StopReason.MAX_TOKENS: "length",
    StopReason.TOOL_USE: "tool_calls",
}


@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize("name", sorted(MEANING))
def test_openai_sdk_rebuilds_the_completion(name: str, include_usage: bool) -> None:
    meaning: ChatResponse = MEANING[name]
    body = pipe(
        fixture(name), UPSTREAM_FORMAT[name], "openai-chat", include_usage=include_usage
    ).output
    completion = openai_final(body, include_usage)
    assert completion.model == MODEL and completion.id.startswith("chatcmpl-")
    choice = completion.choices[0]
    text = "".join(p.text for p in meaning.parts if isinstance(p, TextPart))
    assert (choice.message.content or "") == text
    reasoning = "".join(p.text for p in meaning.parts if isinstance(p, ThinkingPart))
    assert (getattr(choice.message, "reasoning_content", None) or "") == reasoning
    calls = [
        (call.id, call.function.name, json.loads(call.function.arguments))
        for call in choice.message.tool_calls or []
    ]
    assert calls == [
        (p.id, p.name, p.input.value()) for p in meaning.parts if isinstance(p, ToolUsePart)
    ]
    assert choice.finish_reason == FINISH[meaning.stop_reason or StopReason.END_TURN]
    if include_usage:
        u = meaning.usage
        assert completion.usage.prompt_tokens == u.input_tokens + u.cache_read_tokens
        assert completion.usage.completion_tokens == u.output_tokens
    else:
        assert completion.usage is None


def test_openai_sdk_raises_the_mid_stream_error() -> None:
    body = pipe(fixture("anthropic_error"), "anthropic-messages", "openai-chat").output
    with pytest.raises(openai.APIError) as info:
        openai_final(body, include_usage=False)
    assert "Overloaded" in str(info.value)


@pytest.mark.parametrize("name", sorted(MEANING))
def test_openai_sdk_reads_completions_streams(name: str) -> None:
    meaning: ChatResponse = MEANING[name]
    body = pipe(
        fixture(name), UPSTREAM_FORMAT[name], "openai-completions", include_usage=True
    ).output
    stream = openai_client(body).completions.create(
        model=MODEL, prompt="hi", stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(chunk.choices[0].text for chunk in chunks if chunk.choices)
    assert text == "".join(p.text for p in meaning.parts if isinstance(p, TextPart))
    assert chunks[-1].usage.completion_tokens == meaning.usage.output_tokens
    assert {chunk.model for chunk in chunks} == {MODEL}
