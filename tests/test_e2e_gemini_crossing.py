"""End to end: conversations that cross from a Gemini account to another provider,
and the Gemini upstream's own ways of saying things.

* A first turn served by Gemini leaves what the gateway carried for Gemini in
  the client's history (long ``call_gm…`` tool-call ids, ``gemini:`` thinking
  signatures). When the next turn falls over to an OpenAI or Anthropic account,
  those upstreams must get a request they accept: the fakes here refuse what the
  real ones refuse (OpenAI: a tool-call id over 40 characters; Anthropic: a
  thinking signature it did not make, and thinking on with tool calls that lack
  their thinking block).
* Gemini refuses a bad key with 400 ``API_KEY_INVALID``: the account is excluded
  like on a 401 and the next one serves.
* ``:countTokens`` in the REST ``generateContentRequest`` form is counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from conftest import wait_until
from fake_upstream import (
    ANTHROPIC_UPSTREAM_KEY,
    OPENAI_UPSTREAM_KEY,
    THINKING_SIGNATURE,
    Answer,
    FakeUpstream,
    Received,
    Reply,
    ToolCall,
    add_account,
    add_gateway_key,
    answering,
    anthropic_client,
    anthropic_error,
    isolate_environment,
    json_reply,
    openai_client,
    openai_error,
    running_gateway,
    sdk_http_client,
)
from gemini_fake import GEMINI_UPSTREAM_KEY, THOUGHT_SIGNATURE, answering_gemini, gemini_error

from llm_gateway.config.store import ConfigStore

TO_OPENAI, TO_ANTHROPIC = "crossing-to-openai", "crossing-to-anthropic"
WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
CALLS = (
    ToolCall("", "get_weather", {"city": "Paris"}),
    ToolCall("", "get_weather", {"city": "Tokyo"}),
)
BAD_GEMINI_KEY = "AIzaSyRevokedGeminiKey00000000000000000"


@dataclass
class Crossing:
    gemini: FakeUpstream
    openai: FakeUpstream
    anthropic: FakeUpstream
    port: int
    key: str
    gateway: Any
    clients: list[Any]
    revoked: str = ""

    def openai_sdk(self) -> Any:
        self.clients.append(openai_client(self.port, self.key))
        return self.clients[-1]

    def anthropic_sdk(self) -> Any:
        self.clients.append(anthropic_client(self.port, self.key))
        return self.clients[-1]

    def post(self, path: str, body: dict[str, Any]) -> Any:
        with sdk_http_client() as http:
            return http.post(
                f"http://127.0.0.1:{self.port}{path}",
                headers={"x-goog-api-key": self.key},
                json=body,
            )

    def health(self) -> dict[str, Any]:
        with sdk_http_client() as http:
            answer: dict[str, Any] = http.get(f"http://127.0.0.1:{self.port}/health").json()
            return answer


@pytest.fixture
def crossing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Crossing]:
    """Gemini serves both models first; OpenAI and Anthropic accounts are next in line."""
    isolate_environment(monkeypatch, tmp_path / "home")
    with FakeUpstream() as gemini, FakeUpstream() as oa, FakeUpstream() as an:
        add_account(
            "gemini",
            gemini.base_url + "/v1beta",
            name="gemini-main",
            key=GEMINI_UPSTREAM_KEY,
            models=f"gemini-*,{TO_OPENAI},{TO_ANTHROPIC}",
            priority=0,
        )
        add_account(
            "openai", oa.base_url + "/v1", name="oa", key=OPENAI_UPSTREAM_KEY, models=TO_OPENAI
        )
        add_account(
            "anthropic", an.base_url, name="an", key=ANTHROPIC_UPSTREAM_KEY, models=TO_ANTHROPIC
        )
        oa.respond(strict_openai(Answer(text="It is sunny in both.")))
        an.respond(strict_anthropic(Answer(text="It is sunny in both.")))
        key = add_gateway_key()
        store = ConfigStore(tmp_path / "home" / "config.yaml")
        with running_gateway(store) as (gateway, port):
            setup = Crossing(gemini, oa, an, port, key, gateway, [])
            try:
                yield setup
            finally:
                for client in setup.clients:
                    client.close()


# --- fakes that refuse what the real providers refuse --------------------------------------


def strict_openai(answer: Answer) -> Any:
    """OpenAI chat: tool-call ids of at most 40 characters, each result naming a call."""
    answer_with = answering(answer)

    def handler(request: Received) -> Reply:
        called: set[str] = set()
        for index, message in enumerate(request.json()["messages"]):
            for number, call in enumerate(message.get("tool_calls") or ()):
                if len(call["id"]) > 40:
                    where = f"messages[{index}].tool_calls[{number}].id"
                    return openai_error(
                        400,
                        "invalid_request_error",
                        f"Invalid '{where}': string too long. Expected a string with maximum "
                        f"length 40, but got a string with length {len(call['id'])} instead.",
                    )
                called.add(call["id"])
            if message["role"] == "tool" and message["tool_call_id"] not in called:
                return openai_error(400, "invalid_request_error", "tool_call_id matches no call")
        return answer_with(request)

    return handler


def strict_anthropic(answer: Answer) -> Any:
    """Anthropic: thinking signatures must be its own; with thinking on, the last
    assistant message's tool calls must follow a thinking block."""
    answer_with = answering(answer)

    def handler(request: Received) -> Reply:
        body = request.json()
        assistants = [m for m in body["messages"] if m["role"] == "assistant"]
        for message in assistants:
            for block in message["content"] if isinstance(message["content"], list) else ():
                if block["type"] == "thinking" and block["signature"] != THINKING_SIGNATURE:
                    return anthropic_error(
                        400, "invalid_request_error", "Invalid `signature` in `thinking` block"
                    )
        thinking = body.get("thinking", {}).get("type") in ("enabled", "adaptive")
        if thinking and assistants and isinstance(assistants[-1]["content"], list):
            content = assistants[-1]["content"]
            calls = any(b["type"] == "tool_use" for b in content)
            if calls and content[0]["type"] not in ("thinking", "redacted_thinking"):
                return anthropic_error(
                    400,
                    "invalid_request_error",
                    "Expected `thinking` or `redacted_thinking`, but found `tool_use`.",
                )
        return answer_with(request)

    return handler


# --- carried tool-call ids to OpenAI -------------------------------------------------------


def test_an_openai_conversation_moves_from_gemini_to_openai_with_its_long_ids(
    crossing: Crossing,
) -> None:
    """Turn 1 on Gemini gives parallel calls with ids that carry the signature; turn 2
    falls over to OpenAI (same format: passthrough), which refuses ids over 40."""
    crossing.gemini.respond(answering_gemini(Answer(tool_calls=CALLS)))
    client = crossing.openai_sdk()
    tools = [
        {
            "type": "function",
            "function": {
                "name": WEATHER["name"],
                "description": WEATHER["description"],
                "parameters": WEATHER["input_schema"],
            },
        }
    ]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris and Tokyo?"}]
    first = client.chat.completions.create(model=TO_OPENAI, messages=messages, tools=tools)
    calls = first.choices[0].message.tool_calls
    assert [len(call.id) > 40 for call in calls] == [True, True]
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages += [
        {"role": "tool", "tool_call_id": call.id, "content": f"sunny in {city}"}
        for call, city in zip(calls, ("Paris", "Tokyo"), strict=True)
    ]

    crossing.gemini.respond(gemini_error(503, "The model is overloaded."))
    second = client.chat.completions.create(model=TO_OPENAI, messages=messages, tools=tools)

    assert second.choices[0].message.content == "It is sunny in both."
    sent = crossing.openai.last().json()["messages"]
    ids = [call["id"] for call in sent[1]["tool_calls"]]
    assert all(len(i) <= 40 for i in ids) and len(set(ids)) == 2
    assert [m["tool_call_id"] for m in sent[2:]] == ids
    assert [m["content"] for m in sent[2:]] == ["sunny in Paris", "sunny in Tokyo"]
    # the same long id always gets the same short one
    crossing.openai.respond(strict_openai(Answer(text="Again.")))
    client.chat.completions.create(model=TO_OPENAI, messages=messages, tools=tools)
    assert [c["id"] for c in crossing.openai.last().json()["messages"][1]["tool_calls"]] == ids


def test_an_anthropic_conversation_moves_from_gemini_to_openai_with_its_long_ids(
    crossing: Crossing,
) -> None:
    """The same with conversion: Anthropic tool_use ids from Gemini reach OpenAI short."""
    crossing.gemini.respond(answering_gemini(Answer(tool_calls=CALLS)))
    client = crossing.anthropic_sdk()
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris and Tokyo?"}]
    first = client.messages.create(
        model=TO_OPENAI, max_tokens=200, messages=messages, tools=[WEATHER]
    )
    uses = [block for block in first.content if block.type == "tool_use"]
    assert len(uses) == 2 and all(len(use.id) > 40 for use in uses)
    messages.append({"role": "assistant", "content": [use.model_dump() for use in uses]})
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": use.id, "content": "sunny"} for use in uses
            ],
        }
    )

    crossing.gemini.respond(gemini_error(500, "An internal error has occurred."))
    second = client.messages.create(
        model=TO_OPENAI, max_tokens=200, messages=messages, tools=[WEATHER]
    )

    assert second.content[0].text == "It is sunny in both."
    sent = crossing.openai.last().json()["messages"]
    ids = [call["id"] for call in sent[1]["tool_calls"]]
    assert all(len(i) <= 40 for i in ids) and len(set(ids)) == 2
    assert [m["tool_call_id"] for m in sent[2:]] == ids


# --- Gemini-signed thinking to Anthropic -----------------------------------------------


def test_claude_code_style_thinking_moves_from_gemini_to_anthropic(crossing: Crossing) -> None:
    """Turn 1 on Gemini: thinking signed ``gemini:`` and a tool call. Turn 2 falls over
    to Anthropic (passthrough): the foreign thinking is dropped, and thinking is left
    off for the tool loop Gemini started, so Anthropic accepts the request."""
    crossing.gemini.respond(answering_gemini(Answer(reasoning="Look it up.", tool_calls=CALLS[:1])))
    client = crossing.anthropic_sdk()
    thinking = {"type": "enabled", "budget_tokens": 1024}
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather in Paris?"},
    ]
    first = client.messages.create(
        model=TO_ANTHROPIC, max_tokens=2048, thinking=thinking, messages=messages, tools=[WEATHER]
    )
    assert [block.type for block in first.content] == ["thinking", "tool_use"]
    assert first.content[0].signature == "gemini:" + THOUGHT_SIGNATURE
    use = first.content[1]
    messages += [
        {"role": "assistant", "content": [block.model_dump() for block in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}],
        },
    ]

    crossing.gemini.respond(gemini_error(503, "The model is overloaded."))
    second = client.messages.create(
        model=TO_ANTHROPIC, max_tokens=2048, thinking=thinking, messages=messages, tools=[WEATHER]
    )

    assert second.content[-1].text == "It is sunny in both."
    sent = crossing.anthropic.last().json()
    assert "gemini:" not in json.dumps(sent)
    assert sent["messages"][1]["content"] == [use.model_dump()]
    assert "thinking" not in sent

    # A later turn that Anthropic itself thought through keeps thinking on
    messages += [
        {"role": "assistant", "content": [{"type": "text", "text": "It is sunny."}]},
        {"role": "user", "content": "And tomorrow?"},
    ]
    client.messages.create(
        model=TO_ANTHROPIC, max_tokens=2048, thinking=thinking, messages=messages, tools=[WEATHER]
    )
    assert crossing.anthropic.last().json()["thinking"] == thinking


def test_a_gemini_clients_signed_thoughts_are_dropped_for_anthropic(crossing: Crossing) -> None:
    """A Gemini client's own history (thought parts and a call, signed by Gemini),
    converted for an Anthropic account: no Gemini signature reaches Anthropic."""
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
            {
                "role": "model",
                "parts": [
                    {"text": "Look it up.", "thought": True, "thoughtSignature": THOUGHT_SIGNATURE},
                    {
                        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                        "thoughtSignature": THOUGHT_SIGNATURE,
                    },
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"out": "sunny"}}}
                ],
            },
        ],
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "parameters": WEATHER["input_schema"],
                    }
                ]
            }
        ],
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 1024}, "maxOutputTokens": 4096},
    }
    answer = crossing.post(f"/v1beta/models/{TO_ANTHROPIC}:generateContent", body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["candidates"][0]["content"]["parts"] == [{"text": "It is sunny in both."}]
    sent = crossing.anthropic.last().json()
    assert THOUGHT_SIGNATURE not in json.dumps(sent)
    assert [block["type"] for block in sent["messages"][1]["content"]] == ["tool_use"]


# --- Gemini's bad-key answer --------------------------------------------------------


def key_refusing_gemini(answer: Answer) -> Any:
    """Gemini: a 400 ``API_KEY_INVALID`` for any key but the account's good one."""
    good = answering_gemini(answer)

    def handler(request: Received) -> Reply:
        if request.header("x-goog-api-key") != GEMINI_UPSTREAM_KEY:
            return json_reply(
                {
                    "error": {
                        "code": 400,
                        "message": "API key not valid. Please pass a valid API key.",
                        "status": "INVALID_ARGUMENT",
                        "details": [
                            {
                                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                "reason": "API_KEY_INVALID",
                                "domain": "googleapis.com",
                                "metadata": {"service": "generativelanguage.googleapis.com"},
                            }
                        ],
                    }
                },
                400,
            )
        return good(request)

    return handler


@pytest.fixture
def two_gemini_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Crossing]:
    isolate_environment(monkeypatch, tmp_path / "home")
    with FakeUpstream() as gemini:
        gemini.respond(key_refusing_gemini(Answer(text="Served by the good key.")))
        base = gemini.base_url + "/v1beta"
        revoked = add_account("gemini", base, name="revoked", key=BAD_GEMINI_KEY, priority=0)
        add_account("gemini", base, name="good", key=GEMINI_UPSTREAM_KEY, priority=1)
        key = add_gateway_key()
        store = ConfigStore(tmp_path / "home" / "config.yaml")
        with running_gateway(store) as (gateway, port):
            setup = Crossing(gemini, gemini, gemini, port, key, gateway, [])
            setup.revoked = revoked
            try:
                yield setup
            finally:
                for client in setup.clients:
                    client.close()


def test_a_key_gemini_calls_invalid_excludes_the_account(two_gemini_keys: Crossing) -> None:
    setup = two_gemini_keys
    client = setup.openai_sdk()
    replies = [
        client.chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}]
        )
        for _ in range(3)
    ]
    assert [r.choices[0].message.content for r in replies] == ["Served by the good key."] * 3
    keys = [r.header("x-goog-api-key") for r in setup.gemini.requests if r.method == "POST"]
    assert keys == [BAD_GEMINI_KEY] + [GEMINI_UPSTREAM_KEY] * 3
    assert setup.health()["accounts"][setup.revoked]["state"] == "credentials failing"


def test_a_lone_account_with_a_key_gemini_calls_invalid_names_it_without_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate_environment(monkeypatch, tmp_path / "home")
    with FakeUpstream() as gemini:
        gemini.respond(key_refusing_gemini(Answer(text="never")))
        add_account("gemini", gemini.base_url + "/v1beta", name="revoked", key=BAD_GEMINI_KEY)
        key = add_gateway_key()
        with running_gateway(ConfigStore(tmp_path / "home" / "config.yaml")) as (_, port):
            with (
                anthropic_client(port, key) as client,
                pytest.raises(anthropic.APIStatusError) as caught,
            ):
                client.messages.create(
                    model="gemini-2.5-flash",
                    max_tokens=10,
                    messages=[{"role": "user", "content": "hi"}],
                )
            with openai_client(port, key) as client, pytest.raises(openai.APIStatusError) as again:
                client.chat.completions.create(
                    model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}]
                )
    for error in (caught.value, again.value):
        assert error.status_code == 502
        assert "credentials of upstream account 'revoked' were rejected" in error.message
        assert BAD_GEMINI_KEY not in error.response.text
    # excluded after the first refusal: the second request never reached Gemini
    assert len([r for r in gemini.requests if r.method == "POST"]) == 1


# --- countTokens in the REST form ----------------------------------------------------


COUNTED = {
    "generateContentRequest": {
        "model": "models/gemini-2.5-flash",
        "contents": [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}],
        "systemInstruction": {"parts": [{"text": "You are a careful assistant."}]},
        "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": {}}]}],
    }
}


def test_count_tokens_in_the_generate_content_request_form_reaches_anthropic(
    crossing: Crossing,
) -> None:
    crossing.anthropic.respond(json_reply({"input_tokens": 77}))
    answer = crossing.post(f"/v1beta/models/{TO_ANTHROPIC}:countTokens", COUNTED)
    assert answer.status_code == 200, answer.text
    assert answer.json()["totalTokens"] == 77
    received = crossing.anthropic.last()
    assert received.path == "/v1/messages/count_tokens"
    sent = received.json()
    assert sent["system"] == "You are a careful assistant."
    assert [tool["name"] for tool in sent["tools"]] == ["get_weather"]
    assert sent["messages"] == [{"role": "user", "content": "Weather in Paris?"}]


def test_count_tokens_in_the_generate_content_request_form_passes_to_gemini(
    crossing: Crossing,
) -> None:
    crossing.gemini.respond(json_reply({"totalTokens": 41}))
    answer = crossing.post("/v1beta/models/gemini-2.5-flash:countTokens", COUNTED)
    assert answer.status_code == 200, answer.text
    assert answer.json()["totalTokens"] == 41
    assert crossing.gemini.last().json() == COUNTED
    assert crossing.gemini.last().path == "/v1beta/models/gemini-2.5-flash:countTokens"


def test_a_renamed_model_is_renamed_inside_the_generate_content_request_too(
    crossing: Crossing,
) -> None:
    """A Gemini account that maps the client's name: the path and the wrapped
    request's ``model`` both name the upstream's model."""
    add_account(
        "gemini",
        crossing.gemini.base_url + "/v1beta",
        name="mapped",
        key=GEMINI_UPSTREAM_KEY,
        models="counted-alias",
        model_map="counted-alias=gemini-2.5-pro",
    )
    wait_until(
        lambda: any(a.name == "mapped" for a in crossing.gateway.state.config.upstream_accounts),
        10,
        "the new account to be served",
    )
    crossing.gemini.respond(json_reply({"totalTokens": 41}))
    answer = crossing.post("/v1beta/models/counted-alias:countTokens", COUNTED)
    assert answer.status_code == 200, answer.text
    received = crossing.gemini.last()
    assert received.path == "/v1beta/models/gemini-2.5-pro:countTokens"
    inner = COUNTED["generateContentRequest"]
    assert received.json() == {
        "generateContentRequest": {**inner, "model": "models/gemini-2.5-pro"}
    }


def test_count_tokens_with_both_forms_at_once_is_a_400_in_googles_shape(
    crossing: Crossing,
) -> None:
    both = {**COUNTED, "contents": COUNTED["generateContentRequest"]["contents"]}
    answer = crossing.post("/v1beta/models/gemini-2.5-flash:countTokens", both)
    assert answer.status_code == 400
    assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "generateContentRequest" in answer.json()["error"]["message"]
    assert not crossing.gemini.requests


def test_an_estimated_count_in_the_generate_content_request_form_counts_system_and_tools(
    crossing: Crossing,
) -> None:
    """Without a counter upstream (an OpenAI-compatible account), the estimate holds
    the system instruction and the tools too: more than the contents alone."""
    add_account(
        "openai-compatible",
        crossing.openai.base_url + "/v1",
        name="compat",
        key="c" * 32,
        models="compat-model",
    )
    wait_until(
        lambda: any(a.name == "compat" for a in crossing.gateway.state.config.upstream_accounts),
        10,
        "the new account to be served",
    )
    inner = COUNTED["generateContentRequest"]
    bare = crossing.post("/v1beta/models/compat-model:countTokens", {"contents": inner["contents"]})
    full = crossing.post("/v1beta/models/compat-model:countTokens", COUNTED)
    assert bare.status_code == full.status_code == 200, full.text
    assert full.headers["x-llm-gateway-estimate"] == "true"
    assert full.json()["totalTokens"] > bare.json()["totalTokens"]


# --- the JSON-array stream form from an upstream ---------------------------------------


def array_streaming_gemini(answer: Answer) -> Any:
    """A Gemini server that answers every stream as Google does without ``alt=sse``:
    ``application/json``, a pretty-printed array written in 7-byte pieces."""
    from fake_upstream import Stream
    from gemini_fake import gemini_events, model_of

    whole = answering_gemini(answer)

    def handler(request: Received) -> Reply:
        if not request.path.endswith(":streamGenerateContent"):
            return whole(request)
        chunks = [json.loads(e.removeprefix(b"data: ")) for e in gemini_events(answer, "g")]
        for chunk in chunks:
            chunk["modelVersion"] = model_of(request)
        body = json.dumps(chunks, indent=2).replace("\n}", "\n}\r\n").encode()
        return Stream([body], chunk_size=7, headers=(("content-type", "application/json"),))

    return handler


def test_a_json_array_stream_reaches_every_client_as_its_own_stream(crossing: Crossing) -> None:
    answer = Answer(text="Two cities.", reasoning="Look both up.", tool_calls=CALLS)
    crossing.gemini.respond(array_streaming_gemini(answer))
    # OpenAI chat
    stream = crossing.openai_sdk().chat.completions.create(
        model="gemini-3-pro-preview",
        messages=[{"role": "user", "content": "Weather?"}],
        stream=True,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    arguments: dict[int, str] = {}
    for c in chunks:
        for call in (c.choices[0].delta.tool_calls or ()) if c.choices else ():
            arguments[call.index] = arguments.get(call.index, "") + (call.function.arguments or "")
    assert text == "Two cities."
    assert [json.loads(arguments[i]) for i in sorted(arguments)] == [
        {"city": "Paris"},
        {"city": "Tokyo"},
    ]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    # Anthropic, with the thought signed
    with crossing.anthropic_sdk().messages.stream(
        model="gemini-3-pro-preview",
        max_tokens=500,
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER],
    ) as events:
        message = events.get_final_message()
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert message.content[0].signature == "gemini:" + THOUGHT_SIGNATURE
    assert message.stop_reason == "tool_use"
    # a Gemini client, as SSE and as an array of its own
    body = {"contents": [{"role": "user", "parts": [{"text": "Weather?"}]}]}
    sse = crossing.post("/v1beta/models/gemini-3-pro-preview:streamGenerateContent?alt=sse", body)
    assert sse.headers["content-type"].startswith("text/event-stream")
    sent = [
        json.loads(line.removeprefix("data: "))
        for line in sse.text.splitlines()
        if line.startswith("data: ")
    ]
    array = crossing.post("/v1beta/models/gemini-3-pro-preview:streamGenerateContent", body)
    assert array.headers["content-type"].startswith("application/json")
    assert array.json() == sent
    parts = [p for chunk in sent for p in chunk["candidates"][0]["content"]["parts"]]
    assert "".join(p.get("text", "") for p in parts if not p.get("thought")) == "Two cities."
    assert [p["functionCall"]["args"] for p in parts if "functionCall" in p] == [
        {"city": "Paris"},
        {"city": "Tokyo"},
    ]
    assert parts[0]["thoughtSignature"] == THOUGHT_SIGNATURE
    assert all(r.query == "alt=sse" for r in crossing.gemini.requests)
