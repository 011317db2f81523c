"""End to end, cross-format conversion as the SDKs see it: tool calls and tool
results both ways, the SDKs' stream accumulators, and Claude Code's kind of
request against an OpenAI-format upstream.

Tools: an OpenAI client gets ``tool_calls`` (JSON-string arguments) from an
Anthropic upstream's ``tool_use`` blocks, an Anthropic client gets
``tool_use`` blocks (object input) from an OpenAI upstream's ``tool_calls``,
parallel calls included, and the next turn's tool results reach the upstream
converted (checked in the upstream's body).

Claude Code speaks Anthropic messages: large requests with 20+ tools, the
system prompt as cached blocks, extended thinking, ``metadata.user_id``,
beta headers, always streaming. Pointed at an OpenAI-compatible server
(through a ``model_map``), the gateway must send a valid OpenAI chat request
(tools converted, system first, nothing Anthropic-only leaked, thinking
mapped per docs/conversion.md) and turn the OpenAI stream into an Anthropic
stream the SDK's accumulator (and a strict checker) accept, tool use
included; the next turn, carrying the tool result, must convert too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import exchange, raw_request, run
from fake_upstream import (
    MODELS,
    PROVIDERS,
    Answer,
    FakeUpstream,
    ToolCall,
    Wired,
    add_account,
    answering,
    isolate_environment,
    wired_gateway,
)
from test_stream_validators import check_anthropic

from llm_gateway.pipeline.proxy import _PREPARE_ON_THREAD_BYTES


@pytest.fixture(scope="module")
def wired(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wired]:
    with pytest.MonkeyPatch.context() as patch:
        isolate_environment(patch, tmp_path_factory.mktemp("e2e-conversion") / "home")
        with wired_gateway() as setup:
            yield setup


@pytest.fixture
def gw(wired: Wired) -> Wired:
    wired.reset()
    return wired


TEXT = "Hello there from the fake upstream"


# --- tool calls ----------------------------------------------------------------------

WEATHER = ToolCall("toolu_01weather", "get_weather", {"city": "Paris", "unit": "celsius"})
CLOCK = ToolCall("toolu_02clock", "get_time", {"timezone": "Europe/Paris"})
OA_WEATHER = ToolCall("call_weather01", "get_weather", {"city": "Paris", "unit": "celsius"})
OA_CLOCK = ToolCall("call_clock02", "get_time", {"timezone": "Europe/Paris"})

SCHEMAS = {
    "get_weather": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
    "get_time": {
        "type": "object",
        "properties": {"timezone": {"type": "string"}},
        "required": ["timezone"],
        "additionalProperties": False,
    },
}
DESCRIPTIONS = {"get_weather": "Current weather in a city", "get_time": "Local time in a zone"}


def openai_tools(strict: bool = False) -> list[dict[str, Any]]:
    tools = []
    for name, schema in SCHEMAS.items():
        function: dict[str, Any] = {
            "name": name,
            "description": DESCRIPTIONS[name],
            "parameters": schema,
        }
        if strict:
            function["strict"] = True
        tools.append({"type": "function", "function": function})
    return tools


def anthropic_tools() -> list[dict[str, Any]]:
    return [
        {"name": name, "description": DESCRIPTIONS[name], "input_schema": schema}
        for name, schema in SCHEMAS.items()
    ]


def calls_of(message: Any) -> list[tuple[str, str, Any]]:
    """(id, name, parsed arguments) of an OpenAI message's tool calls; arguments are strings."""
    out = []
    for call in message.tool_calls or []:
        assert isinstance(call.function.arguments, str)
        out.append((call.id, call.function.name, json.loads(call.function.arguments)))
    return out


def tool_uses_of(message: Any) -> list[tuple[str, str, Any]]:
    return [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"]


def expected_calls(*calls: ToolCall) -> list[tuple[str, str, Any]]:
    return [(c.id, c.name, c.arguments) for c in calls]


@pytest.mark.parametrize("calls", [(WEATHER,), (WEATHER, CLOCK)], ids=["one", "parallel"])
def test_openai_client_gets_tool_calls_from_anthropic_tool_use(
    gw: Wired, calls: tuple[ToolCall, ...]
) -> None:
    gw.anthropic_up.respond(answering(Answer(text="Let me check.", tool_calls=calls)))
    completion = gw.openai().chat.completions.create(
        model="claude-haiku-4-5",
        messages=[{"role": "user", "content": "Weather and time in Paris?"}],
        tools=openai_tools(),
        tool_choice="auto",
        parallel_tool_calls=len(calls) > 1,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    assert calls_of(choice.message) == expected_calls(*calls)
    assert completion.model == "claude-haiku-4-5"

    body = gw.anthropic_up.last().json()
    assert body["tools"] == anthropic_tools()
    assert body["tool_choice"]["type"] == "auto"
    # parallel_tool_calls: false -> disable_parallel_tool_use: true (true: allowed, the default)
    disabled = body["tool_choice"].get("disable_parallel_tool_use", False)
    assert disabled is (len(calls) == 1)


def test_anthropic_client_gets_tool_use_blocks_from_openai_parallel_tool_calls(gw: Wired) -> None:
    gw.openai_up.respond(answering(Answer(tool_calls=(OA_WEATHER, OA_CLOCK))))
    message = gw.anthropic().messages.create(
        model="gpt-4o",
        max_tokens=200,
        messages=[{"role": "user", "content": "Weather and time in Paris?"}],
        tools=anthropic_tools(),
        tool_choice={"type": "any"},
    )
    assert message.stop_reason == "tool_use"
    assert tool_uses_of(message) == expected_calls(OA_WEATHER, OA_CLOCK)
    assert all(isinstance(b.input, dict) for b in message.content if b.type == "tool_use")
    assert message.model == "gpt-4o"

    body = gw.openai_up.last().json()
    assert body["tools"] == openai_tools()
    assert body["tool_choice"] == "required"


def test_openai_tool_results_reach_anthropic_as_tool_result_blocks(gw: Wired) -> None:
    gw.anthropic_up.respond(answering(Answer(text="18 degrees, and it is 14:00.")))
    completion = gw.openai().chat.completions.create(
        model="claude-haiku-4-5",
        messages=[
            {"role": "user", "content": "Weather and time in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                    }
                    for c in (OA_WEATHER, OA_CLOCK)
                ],
            },
            {"role": "tool", "tool_call_id": OA_WEATHER.id, "content": "18C, sunny"},
            {"role": "tool", "tool_call_id": OA_CLOCK.id, "content": "14:00"},
        ],
        tools=openai_tools(),
    )
    assert completion.choices[0].message.content == "18 degrees, and it is 14:00."

    body = gw.anthropic_up.last().json()
    assert body["messages"] == [
        {"role": "user", "content": "Weather and time in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                for c in (OA_WEATHER, OA_CLOCK)
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": OA_WEATHER.id, "content": "18C, sunny"},
                {"type": "tool_result", "tool_use_id": OA_CLOCK.id, "content": "14:00"},
            ],
        },
    ]


def test_anthropic_tool_results_reach_openai_as_tool_messages(gw: Wired) -> None:
    gw.openai_up.respond(answering(Answer(text="18 degrees; the clock is broken.")))
    message = gw.anthropic().messages.create(
        model="gpt-4o",
        max_tokens=200,
        messages=[
            {"role": "user", "content": "Weather and time in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                    for c in (WEATHER, CLOCK)
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": WEATHER.id, "content": "18C, sunny"},
                    {
                        "type": "tool_result",
                        "tool_use_id": CLOCK.id,
                        "content": [{"type": "text", "text": "clock unavailable"}],
                        "is_error": True,
                    },
                    {"type": "text", "text": "Summarise please."},
                ],
            },
        ],
        tools=anthropic_tools(),
    )
    assert message.content[0].text == "18 degrees; the clock is broken."

    messages = gw.openai_up.last().json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "user"]
    assert messages[0] == {"role": "user", "content": "Weather and time in Paris?"}
    assistant = messages[1]
    assert assistant["content"] is None
    assert [
        (c["id"], c["type"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in assistant["tool_calls"]
    ] == [(c.id, "function", c.name, c.arguments) for c in (WEATHER, CLOCK)]
    assert all(isinstance(c["function"]["arguments"], str) for c in assistant["tool_calls"])
    assert messages[2] == {"role": "tool", "tool_call_id": WEATHER.id, "content": "18C, sunny"}
    assert messages[3] == {
        "role": "tool",
        "tool_call_id": CLOCK.id,
        "content": "Error: clock unavailable",
    }
    assert messages[4] == {"role": "user", "content": "Summarise please."}


# --- SDK stream accumulators -------------------------------------------------------------

ANSWERS = {
    "text": lambda provider: Answer(text=TEXT),
    "tool": lambda provider: Answer(text="Checking.", tool_calls=(_call(provider, 0),)),
    "parallel": lambda provider: Answer(tool_calls=(_call(provider, 0), _call(provider, 1))),
}


def _call(provider: str, index: int) -> ToolCall:
    calls = (WEATHER, CLOCK) if provider == "anthropic" else (OA_WEATHER, OA_CLOCK)
    return calls[index]


@pytest.mark.parametrize("kind", list(ANSWERS))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_anthropic_stream_accumulator_rebuilds_the_message(
    gw: Wired, provider: str, kind: str
) -> None:
    answer = ANSWERS[kind](provider)
    gw.upstream(provider).respond(answering(answer))
    model = MODELS[(provider, False)][0]
    with gw.anthropic().messages.stream(
        model=model,
        max_tokens=300,
        messages=[{"role": "user", "content": "Weather and time in Paris?"}],
        tools=anthropic_tools(),
    ) as stream:
        message = stream.get_final_message()
    assert message.model == model
    texts = [b.text for b in message.content if b.type == "text"]
    assert texts == ([answer.text] if answer.text else [])
    assert tool_uses_of(message) == expected_calls(*answer.tool_calls)
    assert [b.type for b in message.content] == ["text"] * len(texts) + ["tool_use"] * len(
        answer.tool_calls
    )
    assert message.stop_reason == ("tool_use" if answer.tool_calls else "end_turn")
    assert message.usage.output_tokens == answer.output_tokens


@pytest.mark.parametrize("parallel", [False, True], ids=["one", "parallel"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_openai_stream_helper_accumulates_tool_calls(
    gw: Wired, provider: str, parallel: bool
) -> None:
    calls = (_call(provider, 0), _call(provider, 1)) if parallel else (_call(provider, 0),)
    gw.upstream(provider).respond(answering(Answer(tool_calls=calls)))
    model = MODELS[(provider, False)][0]
    done: list[tuple[str, Any]] = []
    with gw.openai().chat.completions.stream(
        model=model,
        messages=[{"role": "user", "content": "Weather and time in Paris?"}],
        tools=openai_tools(strict=True),
    ) as stream:
        for event in stream:
            if event.type == "tool_calls.function.arguments.done":
                done.append((event.name, event.parsed_arguments))
        completion = stream.get_final_completion()
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert calls_of(choice.message) == expected_calls(*calls)
    assert done == [(c.name, c.arguments) for c in calls]
    assert completion.model == model


# --- Claude Code ---------------------------------------------------------------------------

CLIENT_MODEL = "claude-sonnet-4-6"
UPSTREAM_MODEL = "qwen3-coder-plus"
COMPAT_KEY = "sk-compat-" + "q" * 30
BETAS = (
    "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"
)

IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
INSTRUCTIONS = "You are an interactive CLI tool that helps users with software engineering tasks."
MID_SYSTEM = "The user switched to auto-accept edits mode."
USER_ID = "user_2f1e_account_9a8b_session_77c1"


@pytest.fixture
def compat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Wired, FakeUpstream]]:
    """A gateway whose ``claude-sonnet-4-6`` is an OpenAI-compatible server's model."""
    isolate_environment(monkeypatch, tmp_path / "home")
    with FakeUpstream() as server:

        def only_compat(document: dict[str, Any]) -> None:
            for account in document["upstream_accounts"]:
                account["enabled"] = False

        def add_compat() -> None:
            add_account(
                "openai-compatible",
                server.base_url + "/v1",
                name="qwen",
                key=COMPAT_KEY,
                models="qwen*",
                model_map=f"{CLIENT_MODEL}={UPSTREAM_MODEL}",
            )

        with wired_gateway(only_compat, add_compat) as gw:
            yield gw, server


def tool_definitions() -> list[dict[str, Any]]:
    """22 tools shaped like Claude Code's; the last one marks the cache breakpoint."""
    tools = [
        {
            "name": "Read",
            "description": "Reads a file from the local filesystem.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "file_path": {"type": "string", "description": "absolute path"},
                    "offset": {"type": "number"},
                    "limit": {"type": "number"},
                },
                "required": ["file_path"],
                "additionalProperties": False,
                "$schema": "http://json-schema.org/draft-07/schema#",
            },
        },
        {
            "name": "Bash",
            "description": "Executes a bash command.",
            "input_schema": {
                "type": "object",
                "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
                "required": ["command"],
                "additionalProperties": False,
            },
        },
    ]
    for number in range(20):
        tools.append(
            {
                "name": f"mcp__server__tool_{number:02d}",
                "description": f"Tool number {number} of an MCP server.",
                "input_schema": {
                    "type": "object",
                    "properties": {"argument": {"type": "string", "enum": ["a", "b"]}},
                    "required": [],
                },
            }
        )
    tools[-1]["cache_control"] = {"type": "ephemeral"}
    return tools


def first_turn() -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<system-reminder>\nAs you answer...\n</system-reminder>"},
                {
                    "type": "text",
                    "text": "Fix the failing test in src/main.py",
                    "cache_control": {"type": "ephemeral"},
                },
            ],
        },
        {"role": "assistant", "content": "Sure. Which test fails?"},
        {"role": "system", "content": MID_SYSTEM},
        {"role": "user", "content": "test_main, please look."},
    ]


def request_fields(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": CLIENT_MODEL,
        "max_tokens": 32000,
        "system": [
            {"type": "text", "text": IDENTITY, "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": INSTRUCTIONS, "cache_control": {"type": "ephemeral"}},
        ],
        "messages": messages,
        "tools": tool_definitions(),
        "thinking": {"type": "enabled", "budget_tokens": 10000},
        "metadata": {"user_id": USER_ID},
    }


READ = ToolCall("call_read_0001", "Read", {"file_path": "/src/main.py"})
BASH = ToolCall("call_bash_0002", "Bash", {"command": "pytest -q test_main.py"})
THOUGHT = "The user wants the test fixed. I should read the file and run the test."


def check_first_upstream_body(received: Any) -> None:
    assert received.path == "/v1/chat/completions"
    assert received.header("authorization") == f"Bearer {COMPAT_KEY}"
    for name in ("x-api-key", "anthropic-beta", "anthropic-version"):
        assert received.header(name) is None, f"{name} leaked to an OpenAI upstream"
    text = received.body.decode()
    assert "cache_control" not in text and "ephemeral" not in text
    assert "budget_tokens" not in text and "input_schema" not in text
    body = received.json()
    assert set(body) == {
        "model",
        "messages",
        "max_completion_tokens",
        "stream",
        "stream_options",
        "tools",
        "user",
        "reasoning_effort",
    }
    assert body["model"] == UPSTREAM_MODEL
    assert body["max_completion_tokens"] == 32000
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["user"] == USER_ID
    assert body["reasoning_effort"] == "high"  # budget 10000 > 8192 (docs/conversion.md)
    system, *rest = body["messages"]
    assert system == {
        "role": "system",
        "content": [{"type": "text", "text": IDENTITY}, {"type": "text", "text": INSTRUCTIONS}],
    }
    assert rest == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<system-reminder>\nAs you answer...\n</system-reminder>"},
                {"type": "text", "text": "Fix the failing test in src/main.py"},
            ],
        },
        {"role": "assistant", "content": "Sure. Which test fails?"},
        {"role": "system", "content": MID_SYSTEM},
        {"role": "user", "content": "test_main, please look."},
    ]
    tools = body["tools"]
    assert len(tools) == 22
    for sent, converted in zip(tool_definitions(), tools, strict=True):
        assert converted == {
            "type": "function",
            "function": {
                "name": sent["name"],
                "description": sent["description"],
                "parameters": sent["input_schema"],
            },
        }


def test_claude_code_request_against_an_openai_compatible_upstream(
    compat: tuple[Wired, FakeUpstream],
) -> None:
    gw, server = compat
    server.respond(
        answering(Answer(text="Let me look.", tool_calls=(READ, BASH), reasoning=THOUGHT))
    )
    client = gw.anthropic()
    extra = {"extra_headers": {"anthropic-beta": BETAS}, "extra_query": {"beta": "true"}}

    # Turn 1, through the SDK's stream accumulator.
    with client.messages.stream(**request_fields(first_turn()), **extra) as stream:
        message = stream.get_final_message()
    (received,) = server.requests
    check_first_upstream_body(received)
    assert message.model == CLIENT_MODEL
    assert message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert message.content[0].thinking == THOUGHT
    assert message.content[1].text == "Let me look."
    uses = [(b.id, b.name, b.input) for b in message.content[2:]]
    assert uses == [(c.id, c.name, c.arguments) for c in (READ, BASH)]
    assert message.usage.output_tokens == 7

    # The same turn as raw bytes, for the strict shape checker.
    body = json.dumps({**request_fields(first_turn()), "stream": True}).encode()
    headers = [
        ("x-api-key", gw.key),
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", BETAS),
        ("content-type", "application/json"),
    ]
    raw = run(
        exchange(gw.port, raw_request("POST", "/v1/messages?beta=true", headers=headers, body=body))
    )
    assert raw.status == 200
    view = check_anthropic(raw.body, model=CLIENT_MODEL)
    assert view.error is None and view.stop_reason == "tool_use"
    assert [b[0] for b in view.blocks] == ["thinking", "text", "tool_use", "tool_use"]
    assert view.blocks[2:] == tuple(("tool_use", c.id, c.name, c.arguments) for c in (READ, BASH))
    assert view.usage is not None and view.usage[:2] == (11, 7)
    assert server.requests[1].body == received.body  # the same conversion both times

    # Turn 2: Claude Code sends the assistant turn back with the tool results.
    server.respond(answering(Answer(text="Fixed: the assertion compared the wrong value.")))
    assistant = message.model_dump(include={"role", "content"}, exclude_none=True)
    second = [
        *first_turn(),
        assistant,
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": READ.id, "content": "def main(): ..."},
                {
                    "type": "tool_result",
                    "tool_use_id": BASH.id,
                    "content": [{"type": "text", "text": "1 failed"}],
                    "is_error": True,
                },
            ],
        },
    ]
    with client.messages.stream(**request_fields(second), **extra) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn"
    assert [b.type for b in final.content] == ["text"]
    assert final.content[0].text == "Fixed: the assertion compared the wrong value."

    sent_text = server.requests[-1].body.decode()
    assert '"thinking"' not in sent_text and THOUGHT not in sent_text  # dropped (docs)
    assert "cache_control" not in sent_text and '"is_error"' not in sent_text
    messages = server.requests[-1].json()["messages"]
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
    ]
    replayed = messages[5]
    assert replayed["content"] == "Let me look."
    assert [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in replayed["tool_calls"]
    ] == [(c.id, c.name, c.arguments) for c in (READ, BASH)]
    assert messages[6] == {"role": "tool", "tool_call_id": READ.id, "content": "def main(): ..."}
    assert messages[7] == {"role": "tool", "tool_call_id": BASH.id, "content": "Error: 1 failed"}


# --- lone surrogates -----------------------------------------------------------------

#: JSON may escape half of a UTF-16 pair on its own; Python decodes it into a str
#: that UTF-8 cannot encode. Such text must travel as the escape it came as.
LONE = "half an emoji \ud83d and the other half \ude00"


def _text_of_stream(client: str, raw: bytes) -> str:
    pieces = []
    for line in raw.decode().split("\n"):
        if not line.startswith("data: {"):
            continue
        data = json.loads(line[len("data: ") :])
        if client == "openai":
            pieces += [c["delta"].get("content") or "" for c in data.get("choices", [])]
        elif data["type"] == "content_block_delta" and data["delta"]["type"] == "text_delta":
            pieces.append(data["delta"]["text"])
    return "".join(pieces)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("mapped", [False, True], ids=["direct", "mapped"])
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("client", PROVIDERS)
def test_lone_surrogates_travel_as_escapes_both_ways(
    gw: Wired, client: str, provider: str, mapped: bool, stream: bool
) -> None:
    model, upstream_model = MODELS[(provider, mapped)]
    gw.upstream(provider).respond(answering(Answer(text=LONE)))
    fields: dict[str, Any] = {"model": model, "stream": stream, "max_tokens": 50}
    fields["messages"] = [{"role": "user", "content": LONE}]
    body = json.dumps(fields).encode()  # ASCII: the surrogates are \u escapes
    assert b"\\ud83d" in body
    if client == "openai":
        path, headers = "/v1/chat/completions", [("authorization", f"Bearer {gw.key}")]
    else:
        path = "/v1/messages"
        headers = [("x-api-key", gw.key), ("anthropic-version", "2023-06-01")]
    headers.append(("content-type", "application/json"))

    raw = run(exchange(gw.port, raw_request("POST", path, headers=headers, body=body)))

    assert raw.status == 200, raw.body
    sent = gw.upstream(provider).last()
    assert b"\\ud83d" in sent.body and b"\\ude00" in sent.body
    sent_json = sent.json()
    assert sent_json["model"] == upstream_model
    assert LONE in json.dumps(sent_json["messages"], ensure_ascii=False)
    if stream:
        assert _text_of_stream(client, raw.body) == LONE
    elif client == "openai":
        assert raw.json()["choices"][0]["message"]["content"] == LONE
    else:
        assert raw.json()["content"][0]["text"] == LONE


# --- large requests --------------------------------------------------------------------


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(block["text"] for block in content if block["type"] == "text")


def test_a_request_over_the_thread_threshold_is_converted_whole(gw: Wired) -> None:
    # Bodies this large are prepared on a worker thread, so the event loop keeps
    # serving others meanwhile (bench/big_request.py); the result must not differ.
    gw.anthropic_up.respond(answering(Answer(text="read them all")))
    roles = ("user", "assistant")
    messages = [{"role": roles[i % 2], "content": f"{i}: " + "x" * 100} for i in range(12_001)]
    body = json.dumps({"model": "claude-haiku-4-5", "messages": messages}).encode()
    assert len(body) > _PREPARE_ON_THREAD_BYTES
    headers = [("authorization", f"Bearer {gw.key}"), ("content-type", "application/json")]

    raw = run(
        exchange(gw.port, raw_request("POST", "/v1/chat/completions", headers=headers, body=body))
    )

    assert raw.status == 200, raw.body
    assert raw.json()["choices"][0]["message"]["content"] == "read them all"
    sent = gw.anthropic_up.last().json()
    assert [(m["role"], _text_of(m["content"])) for m in sent["messages"]] == [
        (m["role"], m["content"]) for m in messages
    ]
    assert sent["max_tokens"] > 0
