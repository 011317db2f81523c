"""The OpenAI Responses codec: requests, responses and the conversion rules
(docs/conversion.md, "OpenAI Responses"), with property round trips."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.errors import InvalidRequest
from llm_gateway.formats.registry import FORMATS
from llm_gateway.formats.unified import (
    ChatResponse,
    JSONValue,
    Part,
    RedactedThinkingPart,
    Role,
    StopReason,
    TextPart,
    ThinkingPart,
    ToolChoiceMode,
    ToolResultPart,
    ToolUsePart,
    Usage,
)

RESPONSES = FORMATS["openai-responses"]
ANTHROPIC = FORMATS["anthropic-messages"]
CHAT = FORMATS["openai-chat"]

#: the shape of what Codex sends (``codex exec``): two developer messages, namespace
#: and hosted tools, a custom (free-form) tool, encrypted reasoning asked for, nothing stored
CODEX_REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "instructions": "You are Codex, a coding agent.",
    "input": [
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "<permissions>sandboxed</permissions>"}],
        },
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "<environment>/repo</environment>"}],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ls"}]},
    ],
    "tools": [
        {
            "type": "function",
            "name": "shell",
            "description": "Runs a shell command",
            "strict": False,
            "parameters": {
                "type": "object",
                "properties": {"command": {"type": "array", "items": {"type": "string"}}},
                "required": ["command"],
            },
        },
        {
            "type": "namespace",
            "name": "mcp_docs",
            "description": "Documentation server",
            "tools": [
                {
                    "type": "function",
                    "name": "search",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                }
            ],
        },
        {
            "type": "custom",
            "name": "apply_patch",
            "description": "Apply a patch",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch"},
        },
        {"type": "web_search", "external_web_access": False},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "0199-session",
}


def test_codex_request_converts_to_anthropic() -> None:
    unified = RESPONSES.parse_request(CODEX_REQUEST)
    body = ANTHROPIC.render_request(unified)
    assert [b["text"] for b in body["system"]] == [
        "You are Codex, a coding agent.",
        "<permissions>sandboxed</permissions>",
        "<environment>/repo</environment>",
    ]
    assert body["messages"] == [{"role": "user", "content": "ls"}]
    names = [t["name"] for t in body["tools"]]
    assert names == ["shell", "mcp_docs--search", "apply_patch--custom"]  # web_search dropped
    patch = body["tools"][2]["input_schema"]
    assert patch["required"] == ["input"]
    assert "start: begin_patch" in patch["properties"]["input"]["description"]
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert body["stream"] is True


def test_codex_request_converts_to_chat() -> None:
    body = CHAT.render_request(RESPONSES.parse_request(CODEX_REQUEST))
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert [t["function"]["name"] for t in body["tools"]] == [
        "shell",
        "mcp_docs--search",
        "apply_patch--custom",
    ]
    assert body["reasoning_effort"] == "medium"


def test_hosted_tools_are_dropped_with_a_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="llm_gateway.formats"):
        RESPONSES.parse_request(CODEX_REQUEST)
    assert any("web_search" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("choice", [{"type": "web_search"}, {"type": "file_search"}])
def test_tool_choice_requiring_a_hosted_tool_is_a_400(choice: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        RESPONSES.parse_request({**CODEX_REQUEST, "tool_choice": choice})
    assert caught.value.status == 400 and caught.value.param == "tool_choice"
    assert choice["type"] in caught.value.message


def test_names_that_would_not_come_back_are_refused() -> None:
    body = {"model": "m", "input": "hi", "tools": [{"type": "function", "name": "a--b"}]}
    with pytest.raises(InvalidRequest, match="'--'"):
        RESPONSES.parse_request(body)


def test_unknown_previous_response_id_is_openais_400() -> None:
    with pytest.raises(InvalidRequest) as caught:
        RESPONSES.parse_request({"model": "m", "input": "hi", "previous_response_id": "resp_x"})
    assert caught.value.message == "Previous response with id 'resp_x' not found."
    assert caught.value.param == "previous_response_id"


def anthropic_answer(*content: dict[str, Any], stop: str = "tool_use") -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": list(content),
        "stop_reason": stop,
        "usage": {"input_tokens": 5, "output_tokens": 3, "cache_read_input_tokens": 2},
    }


def test_namespace_and_custom_calls_come_back_in_their_own_shape() -> None:
    answer = anthropic_answer(
        {"type": "tool_use", "id": "toolu_1", "name": "mcp_docs--search", "input": {"q": "x"}},
        {
            "type": "tool_use",
            "id": "toolu_2",
            "name": "apply_patch--custom",
            "input": {"input": "*** Begin Patch\n*** End Patch"},
        },
    )
    out = RESPONSES.render_response(ANTHROPIC.parse_response(answer), model="claude")
    search, patch = out["output"]
    assert (search["type"], search["namespace"], search["name"]) == (
        "function_call",
        "mcp_docs",
        "search",
    )
    assert (search["call_id"], json.loads(search["arguments"])) == ("toolu_1", {"q": "x"})
    assert (patch["type"], patch["name"], patch["call_id"]) == (
        "custom_tool_call",
        "apply_patch",
        "toolu_2",
    )
    assert patch["input"] == "*** Begin Patch\n*** End Patch"
    assert out["usage"] == {
        "input_tokens": 7,
        "input_tokens_details": {"cached_tokens": 2},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 10,
    }
    # the next turn sends both back, with their outputs: the upstream sees its own calls
    turn = RESPONSES.parse_request(
        {
            "model": "claude",
            "input": [
                {"role": "user", "content": "go"},
                search,
                patch,
                {"type": "function_call_output", "call_id": "toolu_1", "output": "found"},
                {"type": "custom_tool_call_output", "call_id": "toolu_2", "output": "Done!"},
            ],
        }
    )
    body = ANTHROPIC.render_request(turn)
    assistant, results = body["messages"][1], body["messages"][2]
    assert [(b["id"], b["name"], b["input"]) for b in assistant["content"]] == [
        ("toolu_1", "mcp_docs--search", {"q": "x"}),
        ("toolu_2", "apply_patch--custom", {"input": "*** Begin Patch\n*** End Patch"}),
    ]
    assert [(b["tool_use_id"], b["content"]) for b in results["content"]] == [
        ("toolu_1", "found"),
        ("toolu_2", "Done!"),
    ]


def test_anthropic_thinking_signature_rides_in_encrypted_content() -> None:
    answer = anthropic_answer(
        {"type": "thinking", "thinking": "Let me see", "signature": "EqQBsig"},
        {"type": "redacted_thinking", "data": "opaque=="},
        {"type": "text", "text": "Done"},
        stop="end_turn",
    )
    out = RESPONSES.render_response(ANTHROPIC.parse_response(answer), model="claude")
    reasoning, redacted, message = out["output"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Let me see"}]
    assert reasoning["encrypted_content"] != "EqQBsig"  # marked as the gateway's carry
    turn = RESPONSES.parse_request(
        {
            "model": "claude",
            "input": [
                {"role": "user", "content": "q"},
                reasoning,
                redacted,
                message,
                {"role": "user", "content": "next"},
            ],
        }
    )
    body = ANTHROPIC.render_request(turn)
    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "Let me see", "signature": "EqQBsig"},
        {"type": "redacted_thinking", "data": "opaque=="},
        {"type": "text", "text": "Done"},
    ]


def test_openais_own_encrypted_reasoning_is_not_sent_elsewhere() -> None:
    item = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA"}
    turn = RESPONSES.parse_request(
        {
            "model": "m",
            "input": [{"role": "user", "content": "q"}, item, {"role": "user", "content": "n"}],
        }
    )
    assert all(m.role is Role.USER for m in turn.messages)


def test_chat_reasoning_content_becomes_a_summary() -> None:
    chat = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "A", "reasoning_content": "why"},
                "finish_reason": "length",
            }
        ],
    }
    out = RESPONSES.render_response(CHAT.parse_response(chat), model="m")
    assert out["output"][0]["summary"] == [{"type": "summary_text", "text": "why"}]
    assert (out["status"], out["incomplete_details"]) == (
        "incomplete",
        {"reason": "max_output_tokens"},
    )


def test_render_request_for_a_responses_upstream() -> None:
    chat_request = {
        "model": "gpt-5",
        "messages": [
            {"role": "system", "content": "Be brief"},
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}},
                    {
                        "id": "c2",
                        "type": "function",
                        "function": {"name": "w", "arguments": '{"a":1}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sun"},
            {"role": "tool", "tool_call_id": "c2", "content": "rain"},
        ],
        "tools": [
            {"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}
        ],
        "tool_choice": "required",
        "max_completion_tokens": 100,
        "reasoning_effort": "high",
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object"}},
        },
    }
    body = RESPONSES.render_request(CHAT.parse_request(chat_request))
    assert body["store"] is False
    assert body["input"][0] == {
        "type": "message",
        "role": "system",
        "content": [{"type": "input_text", "text": "Be brief"}],
    }
    assert [i.get("type") for i in body["input"]] == [
        "message",
        "message",
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
    ]
    assert [i["call_id"] for i in body["input"][2:]] == ["c1", "c2", "c1", "c2"]
    # no strictness said: not strict (a Responses function without ``strict`` is strict)
    assert body["tools"] == [
        {"type": "function", "name": "w", "parameters": {"type": "object"}, "strict": False}
    ]
    assert body["tool_choice"] == "required" and body["max_output_tokens"] == 100
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert body["text"] == {
        "format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}
    }
    again = RESPONSES.parse_request(body)
    assert again.tool_choice is not None and again.tool_choice.mode is ToolChoiceMode.ANY
    assert isinstance(again.messages[-1].parts[0], ToolResultPart)


def test_tool_strictness_reaches_a_responses_upstream_as_said_or_false() -> None:
    """Anthropic tools carry ``strict`` only when a client sets it; a Responses
    upstream treats a function without it as strict and refuses loose schemas."""
    loose = {"type": "object", "properties": {"q": {"type": "string"}}}
    body = ANTHROPIC.parse_request(
        {
            "model": "gpt-5",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [
                {"name": "search", "input_schema": loose},
                {"name": "exact", "input_schema": {"type": "object"}, "strict": True},
            ],
        }
    )
    tools = RESPONSES.render_request(body)["tools"]
    assert [(t["name"], t["strict"]) for t in tools] == [("search", False), ("exact", True)]
    assert tools[0]["parameters"] == loose


# --- properties ------------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
NAMES = st.sampled_from(["get_weather", "ns--search", "apply_patch--custom", "f"])
SCALARS = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=5)


@st.composite
def parts(draw: st.DrawFn) -> Part:
    kind = draw(st.sampled_from(["text", "thinking", "redacted", "call"]))
    if kind == "text":
        return TextPart(draw(TEXT))
    if kind == "thinking":
        return ThinkingPart(draw(TEXT), draw(st.sampled_from(["", "sig"])))
    if kind == "redacted":
        return RedactedThinkingPart(draw(TEXT))
    name = draw(NAMES)
    if name.endswith("--custom"):
        arguments: Any = {"input": draw(TEXT)}
    else:
        arguments = draw(st.dictionaries(st.text(max_size=4), SCALARS, max_size=3))
    return ToolUsePart(f"call_{draw(st.integers(0, 99))}", name, JSONValue.of(arguments))


@st.composite
def responses(draw: st.DrawFn) -> ChatResponse:
    content = tuple(draw(st.lists(parts(), max_size=5)))
    called = any(isinstance(p, ToolUsePart) for p in content)
    stop = draw(st.sampled_from([StopReason.MAX_TOKENS, StopReason.REFUSAL, None]))
    if stop is None:
        stop = StopReason.TOOL_USE if called else StopReason.END_TURN
    total, cached = draw(st.integers(0, 10**6)), draw(st.integers(0, 1000))
    usage = Usage(total, draw(st.integers(0, 10**6)), cached, 0, draw(st.integers(0, 100)))
    return ChatResponse("resp_x", "m", content, stop, None, usage, draw(st.integers(1, 2**31)))


examples = settings(max_examples=100, deadline=None, derandomize=True, database=None)


@examples
@given(responses())
def test_response_round_trip(resp: ChatResponse) -> None:
    rendered = json.loads(json.dumps(RESPONSES.render_response(resp, model="m")))
    again = RESPONSES.parse_response(rendered)
    assert again.id == resp.id
    assert again == ChatResponse(
        again.id, "m", resp.parts, resp.stop_reason, None, resp.usage, resp.created
    )


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """Canonical Responses requests (what ``render_request`` writes)."""
    items: list[dict[str, Any]] = []
    for turn in range(draw(st.integers(1, 4))):
        items.append(
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": draw(TEXT)}],
            }
        )
        calls = draw(st.integers(0, 2))
        if not calls or draw(st.booleans()):  # (two user messages in a row would be one)
            items.append(
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": draw(TEXT)}],
                }
            )
        kinds = [draw(st.sampled_from(["plain", "namespace", "custom"])) for _ in range(calls)]
        for n, kind in enumerate(kinds):
            call: dict[str, Any] = {"type": "function_call", "call_id": f"c{turn}_{n}", "name": "f"}
            if kind == "custom":
                call = {**call, "type": "custom_tool_call", "input": draw(TEXT)}
            else:
                value = draw(st.dictionaries(st.text(max_size=3), SCALARS, max_size=2))
                call["arguments"] = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            if kind == "namespace" or (kind == "custom" and draw(st.booleans())):
                call["namespace"] = "ns"
            items.append(call)
        for n, kind in enumerate(kinds):
            output_type = "custom_tool_call_output" if kind == "custom" else "function_call_output"
            items.append({"type": output_type, "call_id": f"c{turn}_{n}", "output": draw(TEXT)})
    body: dict[str, Any] = {"model": "m", "input": items, "store": False}
    if draw(st.booleans()):
        body["instructions"] = draw(TEXT)
    if draw(st.booleans()):
        body["max_output_tokens"] = draw(st.integers(1, 10**5))
    if draw(st.booleans()):
        body["tools"] = [
            {
                "type": "function",
                "name": "f",
                "parameters": {"type": "object"},
                "strict": draw(st.booleans()),
            },
            {"type": "custom", "name": "g", "format": {"type": "text"}},
            {
                "type": "namespace",
                "name": "ns",
                "description": "",
                "tools": [
                    {
                        "type": "function",
                        "name": "h",
                        "parameters": {"type": "object"},
                        "strict": draw(st.booleans()),
                    }
                ],
            },
        ]
        body["tool_choice"] = draw(
            st.sampled_from(["auto", "none", "required", {"type": "function", "name": "g"}])
        )
    if draw(st.booleans()):
        body["reasoning"] = {
            "effort": draw(st.sampled_from(["low", "medium", "high"])),
            "summary": "auto",
        }
    if draw(st.booleans()):
        body["stream"] = True
    return body


@examples
@given(requests())
def test_request_round_trip(body: dict[str, Any]) -> None:
    rendered = json.loads(json.dumps(RESPONSES.render_request(RESPONSES.parse_request(body))))
    assert rendered == body
