"""End to end: the ``openai`` and ``anthropic`` SDKs through the gateway to a fake
Gemini upstream (``gemini_fake``) on 127.0.0.1.

Each test checks what the SDK got and what the Gemini upstream received: the
path (model in the URL, ``:streamGenerateContent?alt=sse`` for streams), the
key in ``x-goog-api-key`` and nowhere else, and the converted body. The tool
tests run two turns: the second request must carry each function call back
with its thought signature, byte for byte, and answer it by name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from fake_upstream import (
    Answer,
    FakeUpstream,
    ToolCall,
    add_account,
    add_gateway_key,
    anthropic_client,
    isolate_environment,
    openai_client,
    running_gateway,
)
from gemini_fake import (
    GEMINI_UPSTREAM_KEY,
    THOUGHT_SIGNATURE,
    answering_gemini,
    gemini_error,
)

from llm_gateway.config.store import ConfigStore

MODEL = "gemini-3-pro-preview"
TEXT = "Hello there from the fake Gemini"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
CALLS = (
    ToolCall("g1", "get_weather", {"city": "Paris"}),
    ToolCall("g2", "get_weather", {"city": "Tokyo"}),
)


class Gemini:
    def __init__(self, up: FakeUpstream, port: int, key: str) -> None:
        self.up, self.port, self.key = up, port, key
        self.clients: list[Any] = []

    def openai(self) -> Any:
        self.clients.append(openai_client(self.port, self.key))
        return self.clients[-1]

    def anthropic(self) -> Any:
        self.clients.append(anthropic_client(self.port, self.key))
        return self.clients[-1]


@pytest.fixture
def gemini(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gemini]:
    isolate_environment(monkeypatch, tmp_path / "home")
    with FakeUpstream() as up:
        add_account("gemini", up.base_url + "/v1beta", name="gemini-main", key=GEMINI_UPSTREAM_KEY)
        key = add_gateway_key()
        store = ConfigStore(tmp_path / "home" / "config.yaml")
        with running_gateway(store) as (_, port):
            setup = Gemini(up, port, key)
            try:
                yield setup
            finally:
                for client in setup.clients:
                    client.close()


def check_credentials(gemini: Gemini) -> None:
    for request in gemini.up.requests:
        assert request.header("x-goog-api-key") == GEMINI_UPSTREAM_KEY
        assert request.header("authorization") is None
        assert GEMINI_UPSTREAM_KEY not in request.path + request.query
        assert gemini.key not in json.dumps([request.headers, request.path, request.query])


# --- text -------------------------------------------------------------------------


def test_openai_sdk_text_with_system_prompt(gemini: Gemini) -> None:
    gemini.up.respond(answering_gemini(Answer(text=TEXT, input_tokens=12, output_tokens=5)))
    completion = gemini.openai().chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ],
        max_tokens=50,
        temperature=0.5,
        stop=["\n\n"],
    )
    assert completion.choices[0].message.content == TEXT
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == MODEL
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 5)
    request = gemini.up.last()
    assert request.path == f"/v1beta/models/{MODEL}:generateContent"
    assert request.query == ""
    assert request.json() == {
        "contents": [{"role": "user", "parts": [{"text": "Say hello"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"temperature": 0.5, "maxOutputTokens": 50, "stopSequences": ["\n\n"]},
    }
    check_credentials(gemini)


def test_anthropic_sdk_stream_with_system_prompt(gemini: Gemini) -> None:
    gemini.up.respond(answering_gemini(Answer(text=TEXT, input_tokens=12, output_tokens=5)))
    with gemini.anthropic().messages.stream(
        model=MODEL,
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": "Say hello"}],
    ) as stream:
        pieces = list(stream.text_stream)
        message = stream.get_final_message()
    assert len(pieces) > 1 and "".join(pieces) == TEXT
    assert message.stop_reason == "end_turn"
    assert message.model == MODEL
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 5)
    request = gemini.up.last()
    assert request.path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert request.query == "alt=sse"
    assert request.json()["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    check_credentials(gemini)


def test_openai_sdk_stream_with_usage_and_a_max_tokens_ending(gemini: Gemini) -> None:
    answer = Answer(text=TEXT, stop="length", input_tokens=9, output_tokens=4)
    gemini.up.respond(answering_gemini(answer))
    chunks = list(
        gemini.openai().chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Say hello"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TEXT
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (9, 4)
    assert gemini.up.last().query == "alt=sse"


# --- tools, two turns -----------------------------------------------------------------


def test_openai_sdk_parallel_calls_and_a_second_turn_with_the_signature(gemini: Gemini) -> None:
    gemini.up.respond(answering_gemini(Answer(tool_calls=CALLS)))
    oa = gemini.openai()
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris and Tokyo?"}]
    first = oa.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    calls = first.choices[0].message.tool_calls
    assert first.choices[0].finish_reason == "tool_calls"
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Tokyo"}),
    ]
    assert calls[0].id != calls[1].id
    sent_tools = gemini.up.last().json()["tools"]
    assert sent_tools == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather in a city",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                }
            ]
        }
    ]

    gemini.up.respond(answering_gemini(Answer(text="Sunny and rainy.")))
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages += [
        {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny"},
        {"role": "tool", "tool_call_id": calls[1].id, "content": "rainy"},
    ]
    second = oa.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "Sunny and rainy."
    contents = gemini.up.last().json()["contents"]
    assert contents[1:] == [
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": THOUGHT_SIGNATURE,
                },
                {"functionCall": {"name": "get_weather", "args": {"city": "Tokyo"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}},
                {"functionResponse": {"name": "get_weather", "response": {"output": "rainy"}}},
            ],
        },
    ]
    check_credentials(gemini)


def test_anthropic_sdk_streamed_thinking_and_calls_come_back_signed(gemini: Gemini) -> None:
    """Gemini 3 style: calls with Gemini's own ids, a signed thought; Claude Code's loop."""
    answer = Answer(reasoning="Two cities.", tool_calls=CALLS)
    gemini.up.respond(answering_gemini(answer, with_ids=True))
    client = gemini.anthropic()
    tools = [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": WEATHER["function"]["parameters"],  # type: ignore[index]
        }
    ]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris and Tokyo?"}]
    with client.messages.stream(
        model=MODEL,
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=tools,
        messages=messages,
    ) as stream:
        first = stream.get_final_message()
    assert gemini.up.last().json()["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 1024,
        "includeThoughts": True,
    }
    assert first.stop_reason == "tool_use"
    kinds = [block.type for block in first.content]
    assert kinds == ["thinking", "tool_use", "tool_use"]
    assert first.content[0].thinking == "Two cities."
    uses = first.content[1:]
    assert [u.input for u in uses] == [{"city": "Paris"}, {"city": "Tokyo"}]
    assert uses[0].id != uses[1].id

    gemini.up.respond(answering_gemini(Answer(text="Sunny and rainy.")))
    messages.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": uses[0].id, "content": "sunny"},
                {"type": "tool_result", "tool_use_id": uses[1].id, "content": "rainy"},
            ],
        }
    )
    second = client.messages.create(
        model=MODEL,
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=tools,
        messages=messages,
    )
    assert second.content[0].text == "Sunny and rainy."
    contents = gemini.up.last().json()["contents"]
    assert contents[1:] == [
        {
            "role": "model",
            "parts": [
                {"text": "Two cities.", "thought": True, "thoughtSignature": THOUGHT_SIGNATURE},
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "g1"},
                    "thoughtSignature": THOUGHT_SIGNATURE,
                },
                {"functionCall": {"name": "get_weather", "args": {"city": "Tokyo"}, "id": "g2"}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"output": "sunny"},
                        "id": "g1",
                    }
                },
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"output": "rainy"},
                        "id": "g2",
                    }
                },
            ],
        },
    ]


# --- errors ----------------------------------------------------------------------------


def test_a_429_is_the_openai_sdk_rate_limit_error(gemini: Gemini) -> None:
    gemini.up.respond(
        gemini_error(429, "Resource has been exhausted (e.g. check quota).", [("retry-after", "7")])
    )
    with pytest.raises(openai.RateLimitError) as caught:
        gemini.openai().chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 429
    assert "Resource has been exhausted" in caught.value.message
    assert caught.value.response.headers.get("retry-after") == "7"


def test_a_500_is_the_anthropic_sdk_internal_server_error(gemini: Gemini) -> None:
    gemini.up.respond(gemini_error(500, "An internal error has occurred."))
    with pytest.raises(anthropic.InternalServerError) as caught:
        gemini.anthropic().messages.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 500
    assert "An internal error has occurred." in caught.value.message
    assert caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]


# --- a Claude Code-shaped session ------------------------------------------------------


def post_messages(gemini: Gemini, body: dict[str, Any]) -> Any:
    from fake_upstream import sdk_http_client

    with sdk_http_client() as http:
        return http.post(
            f"http://127.0.0.1:{gemini.port}/v1/messages?beta=true",
            headers={
                "x-api-key": gemini.key,
                "anthropic-version": "2023-06-01",
                "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
            },
            json=body,
        )


def test_a_claude_code_tool_round_trip(gemini: Gemini) -> None:
    """Claude Code's request shape (two dozen tools with JSON Schema Gemini rejects,
    cache_control, thinking, context_management, streaming) over two turns."""
    from test_formats_gemini import fixture, keywords_outside_the_subset
    from test_stream_validators import check_anthropic

    body = fixture("claude_code_tools.request.json")
    body["model"] = MODEL
    call = ToolCall("", "Bash", {"command": "ls", "description": "List files"})
    gemini.up.respond(answering_gemini(Answer(reasoning="Run ls.", tool_calls=(call,))))
    first = post_messages(gemini, body)
    assert first.status_code == 200, first.text
    view = check_anthropic(first.content, model=MODEL)
    assert view.stop_reason == "tool_use"
    (thinking, tool_use) = view.blocks
    assert thinking == ("thinking", "Run ls.", "gemini:" + THOUGHT_SIGNATURE)
    assert tool_use[2:] == ("Bash", {"command": "ls", "description": "List files"})
    sent = gemini.up.last().json()
    for declaration in sent["tools"][0]["functionDeclarations"]:
        assert keywords_outside_the_subset(declaration["parameters"]) == []
    assert "cachedContent" not in sent and gemini.up.last().query == "alt=sse"

    gemini.up.respond(answering_gemini(Answer(text="Two files.")))
    body["messages"] += [
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": thinking[1], "signature": thinking[2]},
                {"type": "tool_use", "id": tool_use[1], "name": "Bash", "input": tool_use[3]},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": tool_use[1], "content": "a.txt\nb.txt"}
            ],
        },
    ]
    second = post_messages(gemini, body)
    assert check_anthropic(second.content, model=MODEL).blocks == (("text", "Two files."),)
    contents = gemini.up.last().json()["contents"]
    assert contents[-2:] == [
        {
            "role": "model",
            "parts": [
                {"text": "Run ls.", "thought": True, "thoughtSignature": THOUGHT_SIGNATURE},
                {
                    "functionCall": {"name": "Bash", "args": tool_use[3]},
                    "thoughtSignature": THOUGHT_SIGNATURE,
                },
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "Bash", "response": {"output": "a.txt\nb.txt"}}}
            ],
        },
    ]


# --- broken upstream answers --------------------------------------------------------------


def test_an_error_mid_stream_ends_the_openai_stream_with_an_error_the_sdk_raises(
    gemini: Gemini,
) -> None:
    from fake_upstream import Stream

    events = [
        b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Once"}]},"index":0}]}\n\n',
        b'data: {"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}\n\n',
    ]
    gemini.up.respond(Stream(events))
    stream = gemini.openai().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Tell a story"}], stream=True
    )
    with pytest.raises(openai.APIError, match="The model is overloaded."):
        list(stream)


def test_an_answer_that_is_not_a_gemini_response_is_a_502(gemini: Gemini) -> None:
    from fake_upstream import json_reply

    gemini.up.respond(json_reply({"candidates": "not a list"}))
    with pytest.raises(anthropic.APIStatusError) as caught:
        gemini.anthropic().messages.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 502


def test_legacy_completions_reach_gemini_as_generate_content(gemini: Gemini) -> None:
    gemini.up.respond(answering_gemini(Answer(text=TEXT)))
    completion = gemini.openai().completions.create(model=MODEL, prompt="Say hello", max_tokens=20)
    assert completion.choices[0].text == TEXT
    request = gemini.up.last()
    assert request.path == f"/v1beta/models/{MODEL}:generateContent"
    assert request.json()["contents"] == [{"role": "user", "parts": [{"text": "Say hello"}]}]
