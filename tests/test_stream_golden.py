"""Golden streams modelled on the providers' published streaming examples.

``tests/fixtures/streams/*.sse`` are upstream streams shaped like the examples
in Anthropic's "Streaming Messages" guide (text, tool use with
``input_json_delta``, extended thinking with ``signature_delta``, a mid-stream
``error``) and OpenAI's chat/completions streaming references (text with the
``include_usage`` chunk, parallel tool calls, DeepSeek-style
``reasoning_content``, a legacy completion). For each one this file states,
by hand, the complete message it means; every conversion of it must check
out with the strict client checkers and mean the same thing to the client.
Gemini's (``gemini_*``) follow the Gemini API's ``streamGenerateContent?alt=sse``
examples: whole ``GenerateContentResponse`` chunks, thought parts, function
calls whole (the first signed), ``finishReason`` and usage on the last chunk.
``expected/`` holds byte-exact client streams for a selection of conversions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_gateway.formats.gemini_carry import call_nonce, make_call_id
from llm_gateway.formats.unified import (
    EMPTY_OBJECT,
    ChatResponse,
    JSONValue,
    StopReason,
    TextPart,
    ThinkingPart,
    ToolUsePart,
    Usage,
)
from llm_gateway.streaming.accumulate import StreamFailed, accumulate

try:
    from test_stream_validators import (
        FORMATS,
        check_client,
        check_unified,
        expected_view,
        pipe,
    )
except ImportError:  # tests collected as a package
    from tests.test_stream_validators import (
        FORMATS,
        check_client,
        check_unified,
        expected_view,
        pipe,
    )

STREAMS = Path(__file__).parent / "fixtures" / "streams"

UPSTREAM_FORMAT = {
    "anthropic_text": "anthropic-messages",
    "anthropic_tool_use": "anthropic-messages",
    "anthropic_thinking": "anthropic-messages",
    "openai_chat_text": "openai-chat",
    "openai_chat_tools": "openai-chat",
    "openai_chat_reasoning": "openai-chat",
    "openai_completions": "openai-completions",
    "gemini_text": "gemini-generate-content",
    "gemini_thinking_tools": "gemini-generate-content",
}
GEMINI_TOOLS_ID = "Ah4MaPu9Bry3_uMPm9vJ6Q0"

MEANING = {
    "anthropic_text": ChatResponse(
        id="msg_01XFDUDYJgAACzvnptvVoYEL",
        model="claude-sonnet-4-5",
        parts=(TextPart("Hello!"),),
        stop_reason=StopReason.END_TURN,
        usage=Usage(input_tokens=25, output_tokens=15),
    ),
    "anthropic_tool_use": ChatResponse(
        id="msg_014p7gG3wDgGV9EUtLvnow3U",
        model="claude-sonnet-4-5",
        parts=(
            TextPart("Okay, let's check the weather for San Francisco, CA:"),
            ToolUsePart(
                "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "get_weather",
                JSONValue.of({"location": "San Francisco, CA", "unit": "fahrenheit"}),
            ),
            ToolUsePart("toolu_01Ad5jT8y7tMEyrVomLCZuaP", "get_time", EMPTY_OBJECT),
        ),
        stop_reason=StopReason.TOOL_USE,
        usage=Usage(input_tokens=472, output_tokens=89),
    ),
    "anthropic_thinking": ChatResponse(
        id="msg_01Pv8GmPcrm4Tk2rj1c2YJzF",
        model="claude-sonnet-4-5",
        parts=(
            ThinkingPart(
                "Let me solve this step by step:\n\n1. First break down 27 * 453"
                "\n2. 453 = 400 + 50 + 3",
                "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
            ),
            TextPart("27 * 453 = 12,231"),
        ),
        stop_reason=StopReason.END_TURN,
        usage=Usage(input_tokens=38, output_tokens=67, cache_read_tokens=1200),
    ),
    "openai_chat_text": ChatResponse(
        id="chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        model="gpt-4o-2024-08-06",
        parts=(TextPart("Hello! How can I assist you today?"),),
        stop_reason=StopReason.END_TURN,
        # prompt_tokens 1117 includes the 1024 cached ones.
        usage=Usage(input_tokens=93, output_tokens=46, cache_read_tokens=1024),
    ),
    "openai_chat_tools": ChatResponse(
        id="chatcmpl-AKH7OQ5PdQsxRkN0ooVzMvvZ7Hu5Y",
        model="gpt-4o-2024-08-06",
        parts=(
            ToolUsePart(
                "call_LUT2Ov5aP7WI4AZXw9D3PV0g",
                "get_weather",
                JSONValue.of({"location": "Paris, France"}),
            ),
            ToolUsePart(
                "call_3m7HwBcJ1XFRCh2eyzQ7nm6C",
                "get_weather",
                JSONValue.of({"location": "Bogotá, Colombia"}),
            ),
        ),
        stop_reason=StopReason.TOOL_USE,
    ),
    "openai_chat_reasoning": ChatResponse(
        id="9d6f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
        model="deepseek-reasoner",
        parts=(
            ThinkingPart("9.11 vs 9.8: compare the tenths: 1 < 8."),
            TextPart("9.8 is greater."),
        ),
        stop_reason=StopReason.END_TURN,
        usage=Usage(input_tokens=20, output_tokens=150, reasoning_tokens=120),
    ),
    "gemini_text": ChatResponse(
        id="9hyMaOKVLpGB_uMP3NXU4Q4",
        model="gemini-2.5-flash",
        parts=(TextPart("The sky is blue because of Rayleigh scattering."),),
        stop_reason=StopReason.END_TURN,
        # Thought tokens are output tokens, spent on reasoning.
        usage=Usage(input_tokens=9, output_tokens=855, reasoning_tokens=845),
    ),
    "gemini_thinking_tools": ChatResponse(
        id=GEMINI_TOOLS_ID,
        model="gemini-3-pro-preview",
        parts=(
            ThinkingPart(
                "**Planning the lookup**\n\nTwo cities, so two calls.",
                "gemini:EvQBCvEBAdHtim8thought+sig==",
            ),
            ToolUsePart(
                make_call_id(
                    "get_weather",
                    "",
                    "CiQBcsjafFunctionCallSig==",
                    call_nonce(GEMINI_TOOLS_ID, 0),
                ),
                "get_weather",
                JSONValue.of({"location": "Paris"}),
            ),
            ToolUsePart(
                make_call_id("get_weather", "", "", call_nonce(GEMINI_TOOLS_ID, 1)),
                "get_weather",
                JSONValue.of({"location": "Tokyo"}),
            ),
        ),
        stop_reason=StopReason.TOOL_USE,
        # promptTokenCount includes the 100 cached tokens.
        usage=Usage(input_tokens=20, output_tokens=80, cache_read_tokens=100, reasoning_tokens=56),
    ),
    "openai_completions": ChatResponse(
        id="cmpl-7iA7iJjj8V2zOkCGvWF2hAkDWBQZe",
        model="gpt-3.5-turbo-instruct",
        parts=(TextPart("This is a test."),),
        stop_reason=StopReason.MAX_TOKENS,
        usage=Usage(input_tokens=5, output_tokens=7),
    ),
}


def fixture(name: str) -> bytes:
    return (STREAMS / f"{name}.sse").read_bytes()


@pytest.mark.parametrize("name", sorted(MEANING))
def test_upstream_stream_accumulates_to_its_meaning(name: str) -> None:
    piped = pipe(fixture(name), UPSTREAM_FORMAT[name], "anthropic-messages")
    check_unified(piped.unified)
    assert accumulate(piped.unified) == MEANING[name]


@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize("client", FORMATS)
@pytest.mark.parametrize("name", sorted(MEANING))
def test_every_conversion_is_valid_and_means_the_same(
    name: str, client: str, include_usage: bool
) -> None:
    raw = fixture(name)
    whole = pipe(raw, UPSTREAM_FORMAT[name], client, include_usage=include_usage)
    view = check_client(whole, client, include_usage=include_usage)
    assert view == expected_view(MEANING[name], client, include_usage=include_usage)
    # However the upstream bytes were cut, the client gets the same bytes.
    one_by_one = [raw[i : i + 1] for i in range(len(raw))]
    assert pipe(one_by_one, UPSTREAM_FORMAT[name], client, include_usage=include_usage).output == (
        whole.output
    )


GOLDEN = [
    ("openai_chat_tools", "openai-chat", "anthropic-messages", False),
    ("openai_chat_text", "openai-chat", "anthropic-messages", False),
    ("openai_chat_reasoning", "openai-chat", "anthropic-messages", False),
    ("anthropic_tool_use", "anthropic-messages", "openai-chat", True),
    ("anthropic_thinking", "anthropic-messages", "openai-chat", False),
    ("anthropic_text", "anthropic-messages", "openai-completions", True),
    ("anthropic_error", "anthropic-messages", "openai-chat", True),
    ("anthropic_error", "anthropic-messages", "anthropic-messages", False),
    ("gemini_thinking_tools", "gemini-generate-content", "anthropic-messages", False),
    ("gemini_text", "gemini-generate-content", "openai-chat", True),
]


@pytest.mark.parametrize(("name", "upstream", "client", "include_usage"), GOLDEN)
def test_byte_exact_client_stream(
    name: str, upstream: str, client: str, include_usage: bool
) -> None:
    expected = STREAMS / "expected" / f"{name}.to.{client}{'.usage' if include_usage else ''}.sse"
    piped = pipe(fixture(name), upstream, client, include_usage=include_usage)
    assert piped.output == expected.read_bytes()


def test_openai_upstream_usage_reaches_anthropic_client_in_message_delta() -> None:
    # OpenAI sends usage after the finish chunk; the Anthropic client must still see it.
    piped = pipe(fixture("openai_chat_text"), "openai-chat", "anthropic-messages")
    view = check_client(piped, "anthropic-messages", include_usage=False)
    assert view.usage == (93, 46, 1024, 0)
    held = [write for write in piped.writes if b"message_delta" in write]
    assert len(held) == 1 and held[0].endswith(
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )


@pytest.mark.parametrize("client", FORMATS)
def test_mid_stream_upstream_error(client: str) -> None:
    piped = pipe(fixture("anthropic_error"), "anthropic-messages", client, include_usage=True)
    check_unified(piped.unified)
    view = check_client(piped, client, include_usage=True)
    assert view.error is not None and view.error[1] == "Overloaded"
    with pytest.raises(StreamFailed) as info:
        accumulate(piped.unified)
    assert info.value.kind == "overloaded_error" and info.value.status == 503


@pytest.mark.parametrize("client", FORMATS)
def test_mid_stream_gemini_error(client: str) -> None:
    piped = pipe(fixture("gemini_error"), "gemini-generate-content", client, include_usage=True)
    check_unified(piped.unified)
    view = check_client(piped, client, include_usage=True)
    assert view.error is not None
    assert view.error[1] == "The model is overloaded. Please try again later."
    with pytest.raises(StreamFailed) as info:
        accumulate(piped.unified)
    assert info.value.kind == "overloaded_error"


def test_gemini_stream_ended_without_a_finish_reason_is_an_error() -> None:
    raw = fixture("gemini_text")
    cut = raw[: raw.rindex(b"data:")]  # the last chunk, with finishReason, never came
    piped = pipe(cut, "gemini-generate-content", "anthropic-messages")
    view = check_client(piped, "anthropic-messages", include_usage=True)
    assert view.error == ("api_error", "upstream stream ended before it finished")
