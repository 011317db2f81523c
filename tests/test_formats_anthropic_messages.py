"""Anthropic Messages codec: field validation, rendering rules, responses."""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.errors import InvalidRequest, UpstreamError
from llm_gateway.formats import anthropic_messages as am
from llm_gateway.formats import openai_chat as oc
from llm_gateway.formats.unified import (
    CacheControl,
    ChatRequest,
    ChatResponse,
    Message,
    Reasoning,
    RedactedThinkingPart,
    Role,
    StopReason,
    TextPart,
    ThinkingMode,
    ThinkingPart,
    ToolUsePart,
    Usage,
)


def anthropic(**fields: Any) -> dict[str, Any]:
    base = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    }
    return {**base, **fields}


def user(*blocks: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": list(blocks)}]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "max_tokens": 1}, "messages"),
        (anthropic(messages=[]), "messages"),
        (anthropic(max_tokens=0), "max_tokens"),
        (anthropic(max_tokens="many"), "max_tokens"),
        (anthropic(system=5), "system"),
        (anthropic(system=[{"type": "image", "source": {}}]), "system[0].type"),
        (anthropic(system=[{"type": "text"}]), "system[0].text"),
        (anthropic(messages=[{"role": "tool", "content": "x"}]), "messages[0].role"),
        (anthropic(messages=[{"role": "user", "content": 3}]), "messages[0].content"),
        (anthropic(messages=user({"text": "no type"})), "messages[0].content[0].type"),
        (
            anthropic(
                messages=[
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": [1]}],
                    }
                ]
            ),
            "messages[0].content[0].input",
        ),
        (
            anthropic(messages=user({"type": "tool_result", "content": "x"})),
            "messages[0].content[0].tool_use_id",
        ),
        (
            anthropic(messages=user({"type": "tool_result", "tool_use_id": "t", "content": 4})),
            "messages[0].content[0].content",
        ),
        (
            anthropic(
                messages=user(
                    {
                        "type": "tool_result",
                        "tool_use_id": "t",
                        "content": [{"type": "tool_result", "tool_use_id": "u"}],
                    }
                )
            ),
            "messages[0].content[0].content[0].type",
        ),
        (
            anthropic(messages=user({"type": "image", "source": {"type": "base64", "data": "AA"}})),
            "messages[0].content[0].source.media_type",
        ),
        (anthropic(thinking={"type": "sometimes"}), "thinking.type"),
        (anthropic(thinking={"type": "enabled"}), "thinking.budget_tokens"),
        (anthropic(tool_choice={"type": "maybe"}), "tool_choice.type"),
        (anthropic(tool_choice={"type": "tool"}), "tool_choice.name"),
        (anthropic(tools=[{"name": "f"}]), "tools[0].input_schema"),
        (anthropic(tools=[{"name": "f", "input_schema": "object"}]), "tools[0].input_schema"),
        (anthropic(stop_sequences=[1]), "stop_sequences[0]"),
        (anthropic(metadata="u"), "metadata"),
        (anthropic(output_config={"format": {"type": "regex"}}), "output_config.format.type"),
        (
            anthropic(output_config={"format": {"type": "json_schema"}}),
            "output_config.format.schema",
        ),
        (anthropic(top_k=-1), "top_k"),
    ],
)
def test_invalid_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        am.parse_request(body)
    assert caught.value.param == param


def test_missing_max_tokens_is_accepted_and_filled_in_for_anthropic() -> None:
    body = anthropic()
    del body["max_tokens"]
    req = am.parse_request(body)
    assert req.max_tokens is None
    assert am.render_request(req)["max_tokens"] == 64000


def test_system_and_block_cache_control_round_trip() -> None:
    marker = {"type": "ephemeral", "ttl": "5m"}
    body = anthropic(
        system=[{"type": "text", "text": "rules", "cache_control": marker}],
        messages=user({"type": "text", "text": "q", "cache_control": {"type": "ephemeral"}}),
    )
    req = am.parse_request(body)
    assert req.system == (TextPart("rules", CacheControl("ephemeral", "5m")),)
    assert am.render_request(req) == body


def test_deprecated_output_format_is_read() -> None:
    schema = {"type": "object"}
    req = am.parse_request(anthropic(output_format={"type": "json_schema", "schema": schema}))
    assert oc.render_request(req)["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }


def test_consecutive_same_role_messages_are_merged() -> None:
    req = oc.parse_request(
        {
            "model": "claude-sonnet-4-5",
            "messages": [
                {"role": "user", "content": "one"},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "two"}, {"type": "text", "text": "three"}],
                },
                {"role": "assistant", "content": "a"},
                {"role": "assistant", "content": "b"},
            ],
        }
    )
    assert am.render_request(req)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": t} for t in ("one", "two", "three")]},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        },
    ]


def test_thinking_without_signature_is_not_replayed_to_anthropic() -> None:
    req = ChatRequest(
        model="claude-sonnet-4-5",
        messages=(
            Message(Role.USER, (TextPart("q"),)),
            Message(
                Role.ASSISTANT,
                (ThinkingPart("unsigned"), ThinkingPart("signed", "sig"), TextPart("a")),
            ),
            Message(Role.USER, (TextPart("next"),)),
        ),
    )
    assert am.render_request(req)["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "signed", "signature": "sig"},
        {"type": "text", "text": "a"},
    ]


def test_reasoning_fields_parse() -> None:
    parsed = am.parse_request(anthropic(thinking={"type": "enabled", "budget_tokens": 5000}))
    assert parsed.reasoning == Reasoning(ThinkingMode.ENABLED, 5000)
    parsed = am.parse_request(
        anthropic(thinking={"type": "adaptive"}, output_config={"effort": "low"})
    )
    assert parsed.reasoning == Reasoning(ThinkingMode.ADAPTIVE, None, "low")
    assert am.parse_request(anthropic(output_config={"effort": "max"})).reasoning == Reasoning(
        effort="max"
    )
    assert am.parse_request(anthropic()).reasoning is None


# -- responses -----------------------------------------------------------------------------------


def message(**fields: Any) -> dict[str, Any]:
    base = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 4},
    }
    return {**base, **fields}


@pytest.mark.parametrize(
    ("raw", "stop"),
    [
        ("end_turn", StopReason.END_TURN),
        ("max_tokens", StopReason.MAX_TOKENS),
        ("stop_sequence", StopReason.STOP_SEQUENCE),
        ("tool_use", StopReason.TOOL_USE),
        ("pause_turn", StopReason.PAUSE_TURN),
        ("refusal", StopReason.REFUSAL),
        ("model_context_window_exceeded", StopReason.MAX_TOKENS),
        (None, None),
    ],
)
def test_stop_reasons_parse(raw: str | None, stop: StopReason | None) -> None:
    assert am.parse_response(message(stop_reason=raw)).stop_reason == stop


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
    ],
)
def test_openai_finish_reasons_become_anthropic_stop_reasons(finish: str, stop_reason: str) -> None:
    body = {
        "id": "c",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": finish}
        ],
    }
    assert am.render_response(oc.parse_response(body), model="claude")["stop_reason"] == stop_reason


def test_response_usage_and_model() -> None:
    resp = am.parse_response(
        message(
            usage={
                "input_tokens": 10,
                "output_tokens": 2,
                "cache_creation_input_tokens": 5,
                "cache_read_input_tokens": 7,
            }
        )
    )
    assert resp.usage == Usage(
        input_tokens=10, output_tokens=2, cache_read_tokens=7, cache_write_tokens=5
    )
    out = am.render_response(resp, model="claude-alias")
    assert out["model"] == "claude-alias"
    assert out["usage"] == {
        "input_tokens": 10,
        "output_tokens": 2,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 7,
    }


def test_response_blocks_render_in_order() -> None:
    resp = ChatResponse(
        "msg",
        "m",
        (RedactedThinkingPart("enc"), TextPart("a"), ToolUsePart("t1", "f")),
        StopReason.TOOL_USE,
        stop_sequence=None,
    )
    assert am.render_response(resp, model="x")["content"] == [
        {"type": "redacted_thinking", "data": "enc"},
        {"type": "text", "text": "a"},
        {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"content": []}, "id"),
        (message(content="text"), "content"),
        (
            message(content=[{"type": "tool_use", "id": "t", "name": "f", "input": "x"}]),
            "content[0].input",
        ),
        (message(usage={"input_tokens": "3"}), "usage.input_tokens"),
    ],
)
def test_malformed_responses_are_upstream_errors(body: dict[str, Any], param: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        am.parse_response(body)
    assert caught.value.param == param
