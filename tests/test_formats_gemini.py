"""The Gemini codec: golden payloads shaped like the Gemini API documentation's,
converted to and from the other formats.

Covers parallel function calls (distinct ids, order, the first call's
signature), thinking with signatures across two turns (Anthropic and OpenAI
clients), tool schemas outside Gemini's subset (a Claude Code-shaped tool
list with ``$schema``, ``additionalProperties``, ``$ref``/``$defs``, ...),
MAX_TOKENS and SAFETY endings, usage with thought and cached tokens, and
Google's error shape.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llm_gateway.errors import InvalidRequest
from llm_gateway.formats.error_relay import redact_secrets
from llm_gateway.formats.gemini_carry import read_call_id
from llm_gateway.formats.gemini_schema import to_gemini_schema
from llm_gateway.formats.registry import FORMATS
from llm_gateway.formats.unified import StopReason, ThinkingPart, ToolUsePart

GEMINI = FORMATS["gemini-generate-content"]
CHAT = FORMATS["openai-chat"]
ANTHROPIC = FORMATS["anthropic-messages"]
FIXTURES = Path(__file__).parent / "fixtures" / "gemini"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def as_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


# --- parallel function calls ------------------------------------------------------


def test_parallel_calls_keep_order_distinct_ids_and_the_first_calls_signature() -> None:
    resp = GEMINI.parse_response(fixture("parallel_calls.response.json"))
    calls = [p for p in resp.parts if isinstance(p, ToolUsePart)]
    assert [c.name for c in calls] == ["power_disco_ball", "start_music", "dim_lights"]
    assert len({c.id for c in calls}) == 3
    carried = [read_call_id(c.id) for c in calls]
    assert [c.signature for c in carried if c is not None] == [
        "CiwBVKhc7nVf0HtdQnqCZ1RQ2bR5c3lnbmF0dXJlLW9uZQ==",
        "",
        "",
    ]
    assert resp.stop_reason is StopReason.TOOL_USE

    chat = CHAT.render_response(resp, model="gemini-alias")
    message = chat["choices"][0]["message"]
    assert chat["choices"][0]["finish_reason"] == "tool_calls"
    assert [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in message["tool_calls"]
    ] == [
        (calls[0].id, "power_disco_ball", {"power": True}),
        (calls[1].id, "start_music", {"energetic": True, "loud": True}),
        (calls[2].id, "dim_lights", {"brightness": 0.5}),
    ]
    assert all(
        set(c["id"]) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
        for c in message["tool_calls"]
    )
    anthropic = ANTHROPIC.render_response(resp, model="gemini-alias")
    assert anthropic["stop_reason"] == "tool_use"
    assert [b["type"] for b in anthropic["content"]] == ["tool_use"] * 3


def test_the_second_turn_sends_each_call_back_with_its_signature_and_answers_by_name() -> None:
    resp = GEMINI.parse_response(fixture("parallel_calls.response.json"))
    assistant = CHAT.render_response(resp, model="m")["choices"][0]["message"]
    calls = assistant["tool_calls"]
    request = {
        "model": "gemini-3-pro-preview",
        "messages": [
            {"role": "user", "content": "Turn this place into a party!"},
            assistant,
            *(
                {"role": "tool", "tool_call_id": c["id"], "content": f"done {n}"}
                for n, c in enumerate(calls)
            ),
        ],
    }
    body = GEMINI.render_request(CHAT.parse_request(as_json(request)))
    assert body["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "power_disco_ball", "args": {"power": True}},
                    "thoughtSignature": "CiwBVKhc7nVf0HtdQnqCZ1RQ2bR5c3lnbmF0dXJlLW9uZQ==",
                },
                {
                    "functionCall": {
                        "name": "start_music",
                        "args": {"energetic": True, "loud": True},
                    }
                },
                {"functionCall": {"name": "dim_lights", "args": {"brightness": 0.5}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "power_disco_ball",
                        "response": {"output": "done 0"},
                    }
                },
                {"functionResponse": {"name": "start_music", "response": {"output": "done 1"}}},
                {"functionResponse": {"name": "dim_lights", "response": {"output": "done 2"}}},
            ],
        },
    ]


def test_a_tool_result_finds_its_function_name_in_the_id_when_the_call_is_gone() -> None:
    resp = GEMINI.parse_response(fixture("parallel_calls.response.json"))
    call = next(p for p in resp.parts if isinstance(p, ToolUsePart))
    request = {
        "model": "gemini-2.5-flash",
        "max_tokens": 100,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "on"}],
            }
        ],
    }
    body = GEMINI.render_request(ANTHROPIC.parse_request(request))
    assert body["contents"] == [
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "power_disco_ball", "response": {"output": "on"}}}
            ],
        }
    ]


def test_a_tool_result_that_answers_nothing_is_a_clear_400() -> None:
    request = {
        "model": "gemini-2.5-flash",
        "max_tokens": 100,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "?"}],
            }
        ],
    }
    with pytest.raises(InvalidRequest, match="toolu_x"):
        GEMINI.render_request(ANTHROPIC.parse_request(request))


def test_calls_from_another_model_get_gemini_3s_placeholder_signature_and_keep_their_ids() -> None:
    def history(model: str) -> dict[str, Any]:
        return {
            "model": model,
            "max_tokens": 100,
            "messages": [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hm", "signature": "EqQBanthropicSig"},
                        {"type": "tool_use", "id": "toolu_01", "name": "f", "input": {}},
                        {"type": "tool_use", "id": "toolu_02", "name": "g", "input": {"a": 1}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_01",
                            "content": "x",
                            "is_error": True,
                        },
                        {"type": "tool_result", "tool_use_id": "toolu_02", "content": "y"},
                    ],
                },
            ],
        }

    body = GEMINI.render_request(ANTHROPIC.parse_request(history("gemini-3-pro-preview")))
    assert body["contents"][1]["parts"] == [
        {
            "functionCall": {"name": "f", "args": {}, "id": "toolu_01"},
            "thoughtSignature": "skip_thought_signature_validator",
        },
        {"functionCall": {"name": "g", "args": {"a": 1}, "id": "toolu_02"}},
    ]
    assert body["contents"][2]["parts"] == [
        {"functionResponse": {"name": "f", "response": {"error": "x"}, "id": "toolu_01"}},
        {"functionResponse": {"name": "g", "response": {"output": "y"}, "id": "toolu_02"}},
    ]
    older = GEMINI.render_request(ANTHROPIC.parse_request(history("gemini-2.5-pro")))
    assert "thoughtSignature" not in older["contents"][1]["parts"][0]


# --- thinking across two turns -------------------------------------------------------


def test_thoughts_become_anthropic_thinking_and_come_back_byte_for_byte() -> None:
    resp = GEMINI.parse_response(fixture("thinking.response.json"))
    assert isinstance(resp.parts[0], ThinkingPart)
    anthropic = ANTHROPIC.render_response(resp, model="claude-alias")
    thinking, tool_use = anthropic["content"]
    assert thinking["type"] == "thinking"
    assert thinking["thinking"].startswith("**Checking the forecast**")
    assert thinking["signature"] == "gemini:EpwCCpkCAdHtim9thought+signature/two=="

    request = {
        "model": "gemini-2.5-flash",
        "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [
            {"role": "user", "content": "Weather in Lisbon?"},
            {"role": "assistant", "content": anthropic["content"]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": tool_use["id"], "content": "18C"}
                ],
            },
        ],
    }
    body = GEMINI.render_request(ANTHROPIC.parse_request(as_json(request)))
    assert body["contents"][1] == {
        "role": "model",
        "parts": [
            {
                "text": thinking["thinking"],
                "thought": True,
                "thoughtSignature": "EpwCCpkCAdHtim9thought+signature/two==",
            },
            {
                "functionCall": {"name": "get_weather", "args": {"location": "Lisbon"}},
                "thoughtSignature": "CiQBcsjafGfunction+call/signature==",
            },
        ],
    }
    assert body["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 2048,
        "includeThoughts": True,
    }


def test_thoughts_become_openai_reasoning_content_and_the_call_keeps_its_signature() -> None:
    resp = GEMINI.parse_response(fixture("thinking.response.json"))
    message = CHAT.render_response(resp, model="m")["choices"][0]["message"]
    assert message["reasoning_content"].startswith("**Checking the forecast**")
    call_id = message["tool_calls"][0]["id"]
    request = {
        "model": "gemini-3-flash-preview",
        "reasoning_effort": "high",
        "messages": [
            {"role": "user", "content": "Weather in Lisbon?"},
            message,
            {"role": "tool", "tool_call_id": call_id, "content": "18C"},
        ],
    }
    body = GEMINI.render_request(CHAT.parse_request(as_json(request)))
    assert body["contents"][1]["parts"] == [
        {
            "functionCall": {"name": "get_weather", "args": {"location": "Lisbon"}},
            "thoughtSignature": "CiQBcsjafGfunction+call/signature==",
        }
    ]
    assert body["generationConfig"]["thinkingConfig"] == {
        "thinkingLevel": "high",
        "includeThoughts": True,
    }


def test_reasoning_effort_is_a_budget_on_gemini_2_and_disabled_thinking_is_left_out() -> None:
    def config(model: str, **extra: Any) -> Any:
        request = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
        return GEMINI.render_request(CHAT.parse_request(request)).get("generationConfig")

    assert config("gemini-2.5-flash", reasoning_effort="low") == {
        "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True}
    }
    assert config("gemini-3-pro-preview", reasoning_effort="minimal") == {
        "thinkingConfig": {"thinkingLevel": "low", "includeThoughts": True}
    }
    assert config("gemini-2.5-flash", reasoning_effort="none") is None


# --- tool schemas ----------------------------------------------------------------------

ALLOWED = {
    "type", "format", "description", "nullable", "enum", "maxItems", "minItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
    "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum",
    "maximum",
}  # fmt: skip


def keywords_outside_the_subset(schema: Any, path: str = "") -> list[str]:
    bad = []
    for key, value in schema.items():
        if key not in ALLOWED:
            bad.append(f"{path}.{key}")
        if key == "properties":
            for name, sub in value.items():
                bad += keywords_outside_the_subset(sub, f"{path}.{name}")
        elif key == "items":
            bad += keywords_outside_the_subset(value, f"{path}[]")
        elif key == "anyOf":
            for n, sub in enumerate(value):
                bad += keywords_outside_the_subset(sub, f"{path}|{n}")
    if "required" in schema:
        missing = set(schema["required"]) - set(schema.get("properties", {}))
        bad += [f"{path}.required:{m}" for m in sorted(missing)]
    return bad


def test_a_claude_code_tool_list_is_rewritten_into_geminis_subset() -> None:
    request = fixture("claude_code_tools.request.json")
    body = GEMINI.render_request(ANTHROPIC.parse_request(request))
    declarations = body["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in declarations] == [t["name"] for t in request["tools"]]
    for declaration in declarations:
        assert keywords_outside_the_subset(declaration["parameters"]) == [], declaration["name"]
    assert "cachedContent" not in body  # caching is never a precondition
    assert body["systemInstruction"]["parts"][0]["text"].startswith("You are Claude Code")
    mcp = declarations[-1]["parameters"]
    assert mcp["required"] == ["title"]
    assert mcp["properties"]["due"] == {"type": "string", "nullable": True}
    assert mcp["properties"]["labels"]["items"] == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "color": {"type": "string", "pattern": "^#[0-9a-f]{6}$", "nullable": True},
        },
        "required": ["name"],
    }
    outline = mcp["properties"]["outline"]
    assert outline["properties"]["children"]["items"] == {"type": "object"}  # recursion cut
    assert mcp["properties"]["kind"] == {"type": "string", "enum": ["bug"]}
    assert mcp["properties"]["priority"] == {"type": "integer", "maximum": 5}
    assert mcp["properties"]["estimate"] == {"anyOf": [{"type": "number"}, {"type": "string"}]}


def test_claude_codes_thinking_budget_fits_gemini_2s_range() -> None:
    request = fixture("claude_code_tools.request.json")  # budget_tokens 31999
    for model, budget in (("gemini-2.5-flash", 24576), ("gemini-3-pro-preview", 31999)):
        body = GEMINI.render_request(ANTHROPIC.parse_request({**request, "model": model}))
        assert body["generationConfig"]["thinkingConfig"] == {
            "thinkingBudget": budget,
            "includeThoughts": True,
        }


def test_schema_rewriting_is_deterministic_and_leaves_the_input_alone() -> None:
    schema = fixture("claude_code_tools.request.json")["tools"][-1]["input_schema"]
    before = json.dumps(schema)
    first = to_gemini_schema(schema, "t")
    assert json.dumps(to_gemini_schema(json.loads(before), "t")) == json.dumps(first)
    assert json.dumps(schema) == before


def test_tool_choice_maps_to_function_calling_config() -> None:
    def choice(value: Any) -> Any:
        request = {
            "model": "gemini-2.5-flash",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "f",
                        "parameters": {"type": "object", "properties": {"a": {"type": "string"}}},
                    },
                }
            ],
            "tool_choice": value,
        }
        return GEMINI.render_request(CHAT.parse_request(request))["toolConfig"]

    assert choice("auto") == {"functionCallingConfig": {"mode": "AUTO"}}
    assert choice("required") == {"functionCallingConfig": {"mode": "ANY"}}
    assert choice("none") == {"functionCallingConfig": {"mode": "NONE"}}
    assert choice({"type": "function", "function": {"name": "f"}}) == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}
    }


# --- endings and usage ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "openai_finish", "anthropic_stop"),
    [
        ("max_tokens.response.json", "length", "max_tokens"),
        ("safety.response.json", "content_filter", "refusal"),
        ("prompt_blocked.response.json", "content_filter", "refusal"),
    ],
)
def test_endings_map_to_each_client_format(
    name: str, openai_finish: str, anthropic_stop: str
) -> None:
    resp = GEMINI.parse_response(fixture(name))
    assert CHAT.render_response(resp, model="m")["choices"][0]["finish_reason"] == openai_finish
    assert ANTHROPIC.render_response(resp, model="m")["stop_reason"] == anthropic_stop


def test_usage_counts_thoughts_as_reasoning_and_cached_tokens_apart() -> None:
    resp = GEMINI.parse_response(fixture("thinking.response.json"))
    usage = CHAT.render_response(resp, model="m")["usage"]
    assert usage["prompt_tokens"] == 70
    assert usage["prompt_tokens_details"] == {"cached_tokens": 20}
    assert usage["completion_tokens"] == 115  # candidates + thoughts
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 100}
    assert usage["total_tokens"] == 185
    anthropic = ANTHROPIC.render_response(resp, model="m")["usage"]
    assert (anthropic["input_tokens"], anthropic["cache_read_input_tokens"]) == (50, 20)
    assert anthropic["output_tokens"] == 115
    assert GEMINI.render_response(resp, model="m")["usageMetadata"] == {
        "promptTokenCount": 70,
        "candidatesTokenCount": 15,
        "totalTokenCount": 185,
        "cachedContentTokenCount": 20,
        "thoughtsTokenCount": 100,
    }


# --- errors ---------------------------------------------------------------------------------


def test_errors_are_googles_shape() -> None:
    assert GEMINI.render_error(429, "rate_limit_error", "slow down") == {
        "error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}
    }
    assert GEMINI.render_error(400, "invalid_request_error", "bad", "contents")["error"] == {
        "code": 400,
        "message": "contents: bad",
        "status": "INVALID_ARGUMENT",
    }
    assert GEMINI.render_error(503, "overloaded_error", "busy")["error"]["status"] == "UNAVAILABLE"


@pytest.mark.parametrize(
    ("status", "name", "kind"),
    [
        (400, "INVALID_ARGUMENT", "invalid_request_error"),
        (403, "PERMISSION_DENIED", "permission_error"),
        (404, "NOT_FOUND", "not_found_error"),
        (429, "RESOURCE_EXHAUSTED", "rate_limit_error"),
        (500, "INTERNAL", "api_error"),
        (503, "UNAVAILABLE", "overloaded_error"),
    ],
)
def test_upstream_errors_are_read_by_their_status_name(status: int, name: str, kind: str) -> None:
    body = {"error": {"code": status, "message": "it failed", "status": name}}
    assert GEMINI.parse_error(status, json.dumps(body).encode()) == (kind, "it failed")
    assert GEMINI.parse_error(status, json.dumps([body]).encode()) == (kind, "it failed")
    assert GEMINI.parse_error(status, b"<html>") == (
        GEMINI.parse_error(status, b"")[0],
        f"upstream returned HTTP {status}",
    )


def test_google_api_keys_are_masked_in_relayed_messages() -> None:
    message = "API key not valid: AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"
    assert "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW" not in redact_secrets(message)
