"""OpenAI chat codec: field validation, conversation structure, responses."""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.errors import InvalidRequest, UpstreamError
from llm_gateway.formats import anthropic_messages as am
from llm_gateway.formats import openai_chat as oc
from llm_gateway.formats.unified import (
    Base64Source,
    ChatResponse,
    ImagePart,
    JSONValue,
    Message,
    Role,
    StopReason,
    TextPart,
    ThinkingPart,
    ToolResultPart,
    ToolUsePart,
    URLSource,
    Usage,
)


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}], **fields}


CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def with_call(arguments: object) -> dict[str, Any]:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    return chat(
        messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
        ]
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m"}, "messages"),
        (chat(messages="hi"), "messages"),
        (chat(messages=[]), "messages"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        (chat(model=7), "model"),
        (chat(messages=[{"role": "robot", "content": "x"}]), "messages[0].role"),
        (chat(messages=[{"content": "x"}]), "messages[0].role"),
        (chat(messages=["hello"]), "messages[0]"),
        (chat(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (chat(messages=[{"role": "user"}]), "messages[0].content"),
        (
            chat(messages=[{"role": "user", "content": [{"text": "x"}]}]),
            "messages[0].content[0].type",
        ),
        (with_call("{not json"), "messages[1].tool_calls[0].function.arguments"),
        (with_call("[1, 2]"), "messages[1].tool_calls[0].function.arguments"),
        (with_call(3), "messages[1].tool_calls[0].function.arguments"),
        (chat(temperature="hot"), "temperature"),
        (chat(temperature=True), "temperature"),
        (chat(max_completion_tokens=0), "max_completion_tokens"),
        (chat(max_tokens=1.5), "max_tokens"),
        (chat(stop=["a", 3]), "stop[1]"),
        (chat(stop=7), "stop"),
        (chat(stream="yes"), "stream"),
        (chat(tools=[{"type": "function"}]), "tools[0].function"),
        (
            chat(tools=[{"type": "function", "function": {"name": "f", "parameters": []}}]),
            "tools[0].function.parameters",
        ),
        (chat(tool_choice="sometimes"), "tool_choice"),
        (chat(tool_choice={"type": "function", "function": {}}), "tool_choice.function.name"),
        (chat(response_format={"type": "xml"}), "response_format.type"),
        (
            chat(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
            "response_format.json_schema.name",
        ),
        (chat(reasoning_effort=3), "reasoning_effort"),
        (chat(logit_bias={"1": float("nan")}), "logit_bias"),
    ],
)
def test_invalid_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        oc.parse_request(body)
    assert caught.value.param == param
    assert param in caught.value.message or param.split(".")[-1] in caught.value.message


def test_tool_message_needs_a_call_id() -> None:
    body = chat(messages=[{"role": "user", "content": "x"}, {"role": "tool", "content": "r"}])
    with pytest.raises(InvalidRequest) as caught:
        oc.parse_request(body)
    assert caught.value.param == "messages[1].tool_call_id"


def test_image_urls_must_be_http_or_data() -> None:
    part = {"type": "image_url", "image_url": {"url": "ftp://e.com/a.png"}}
    with pytest.raises(InvalidRequest) as caught:
        oc.parse_request(chat(messages=[{"role": "user", "content": [part]}]))
    assert caught.value.param == "messages[0].content[0].image_url.url"


def test_images_parse_into_sources() -> None:
    parts = [
        {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGRg=="}},
        {"type": "image_url", "image_url": {"url": "http://e.com/a.gif", "detail": "low"}},
    ]
    req = oc.parse_request(chat(messages=[{"role": "user", "content": parts}]))
    assert req.messages[0].parts == (
        ImagePart(Base64Source("image/webp", "UklGRg==")),
        ImagePart(URLSource("http://e.com/a.gif"), detail="low"),
    )


def test_tool_messages_and_following_text_form_one_user_turn() -> None:
    calls = [CALL, {**CALL, "id": "call_2"}]
    req = oc.parse_request(
        chat(
            messages=[
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": "calling", "tool_calls": calls},
                {"role": "tool", "tool_call_id": "call_1", "content": "one"},
                {"role": "tool", "tool_call_id": "call_2", "content": ""},
                {"role": "user", "content": "thanks"},
                {"role": "user", "content": "again"},
            ]
        )
    )
    assert req.messages == (
        Message(Role.USER, (TextPart("go"),)),
        Message(
            Role.ASSISTANT,
            (TextPart("calling"), ToolUsePart("call_1", "f"), ToolUsePart("call_2", "f")),
        ),
        Message(
            Role.USER,
            (
                ToolResultPart("call_1", (TextPart("one"),)),
                ToolResultPart("call_2", ()),
                TextPart("thanks"),
            ),
        ),
        Message(Role.USER, (TextPart("again"),)),
    )


@pytest.mark.parametrize("arguments", ["", "   ", None])
def test_empty_tool_arguments_become_an_empty_object(arguments: object) -> None:
    function: dict[str, Any] = {"name": "f"}
    if arguments is not None:
        function["arguments"] = arguments
    call = {"id": "c", "type": "function", "function": function}
    body = chat(
        messages=[{"role": "user", "content": "go"}, {"role": "assistant", "tool_calls": [call]}]
    )
    out = am.render_request(oc.parse_request(body))
    assert out["messages"][1]["content"] == [
        {"type": "tool_use", "id": "c", "name": "f", "input": {}}
    ]


def test_tool_arguments_keep_key_order_and_unicode() -> None:
    req = oc.parse_request(with_call('{"z": 1, "a": "Bogotá", "m": [true, null]}'))
    call = req.messages[1].parts[0]
    assert isinstance(call, ToolUsePart)
    assert call.input == JSONValue('{"z":1,"a":"Bogotá","m":[true,null]}')
    rendered = oc.render_request(req)["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert rendered == '{"z":1,"a":"Bogotá","m":[true,null]}'


@pytest.mark.parametrize(
    ("stop", "expected"),
    [("END", ["END"]), (["a", "b"], ["a", "b"]), (None, None), ([], None)],
)
def test_stop_string_or_list(stop: object, expected: list[str] | None) -> None:
    out = am.render_request(oc.parse_request(chat(stop=stop)))
    assert out.get("stop_sequences") == expected
    assert oc.render_request(oc.parse_request(chat(stop=stop))).get("stop") == expected


def test_max_completion_tokens_is_the_rendered_field() -> None:
    assert oc.render_request(oc.parse_request(chat(max_tokens=77)))["max_completion_tokens"] == 77
    assert "max_tokens" not in oc.render_request(oc.parse_request(chat(max_tokens=77)))


TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"tool_choice": "auto"}, {"type": "auto"}),
        ({"tool_choice": "none"}, {"type": "none"}),
        ({"tool_choice": "required"}, {"type": "any"}),
        (
            {"tool_choice": {"type": "function", "function": {"name": "lookup"}}},
            {"type": "tool", "name": "lookup"},
        ),
        ({"parallel_tool_calls": False}, {"type": "auto", "disable_parallel_tool_use": True}),
        (
            {"tool_choice": "required", "parallel_tool_calls": True},
            {"type": "any", "disable_parallel_tool_use": False},
        ),
        ({"tool_choice": "none", "parallel_tool_calls": False}, {"type": "none"}),
        ({}, None),
    ],
)
def test_tool_choice_variants(fields: dict[str, Any], expected: dict[str, Any] | None) -> None:
    out = am.render_request(oc.parse_request(chat(tools=[TOOL], **fields)))
    assert out.get("tool_choice") == expected
    assert out["tools"] == [{"name": "lookup", "input_schema": {"type": "object"}}]


def test_tool_choice_without_tools_is_not_sent_to_anthropic() -> None:
    out = am.render_request(oc.parse_request(chat(tool_choice="none", parallel_tool_calls=False)))
    assert "tool_choice" not in out and "tools" not in out


def test_tool_without_parameters_gets_an_empty_object_schema() -> None:
    out = am.render_request(
        oc.parse_request(chat(tools=[{"type": "function", "function": {"name": "now"}}]))
    )
    assert out["tools"] == [{"name": "now", "input_schema": {"type": "object", "properties": {}}}]


# -- responses --------------------------------------------------------------------------------


def completion(
    message: dict[str, Any], finish: str | None = "stop", **fields: Any
) -> dict[str, Any]:
    choice = {
        "index": 0,
        "message": {"role": "assistant", **message},
        "logprobs": None,
        "finish_reason": finish,
    }
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700,
        "model": "gpt-4o",
        "choices": [choice],
        **fields,
    }


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", StopReason.END_TURN),
        ("length", StopReason.MAX_TOKENS),
        ("tool_calls", StopReason.TOOL_USE),
        ("function_call", StopReason.TOOL_USE),
        ("content_filter", StopReason.REFUSAL),
        (None, None),
    ],
)
def test_finish_reasons_parse(finish: str | None, stop: StopReason | None) -> None:
    assert oc.parse_response(completion({"content": "x"}, finish)).stop_reason == stop


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        (StopReason.END_TURN, "stop"),
        (StopReason.STOP_SEQUENCE, "stop"),
        (StopReason.PAUSE_TURN, "stop"),
        (StopReason.MAX_TOKENS, "length"),
        (StopReason.TOOL_USE, "tool_calls"),
        (StopReason.REFUSAL, "content_filter"),
        (None, None),
    ],
)
def test_finish_reasons_render(stop: StopReason | None, finish: str | None) -> None:
    out = oc.render_response(ChatResponse("r", "m", (TextPart("x"),), stop), model="client")
    assert out["choices"][0]["finish_reason"] == finish


def test_response_reports_the_clients_model_and_created() -> None:
    resp = oc.parse_response(completion({"content": "hello"}))
    assert resp.created == 1700
    out = oc.render_response(resp, model="my-alias")
    assert out["model"] == "my-alias"
    assert out["created"] == 1700
    assert out["object"] == "chat.completion"


def test_refusal_and_reasoning_fields_parse() -> None:
    resp = oc.parse_response(
        completion(
            {"content": None, "refusal": "I can't help with that.", "reasoning_content": "policy"}
        )
    )
    assert resp.parts == (ThinkingPart("policy"), TextPart("I can't help with that."))
    compat = oc.parse_response(completion({"content": "ok", "reasoning": "thought"}))
    assert compat.parts == (ThinkingPart("thought"), TextPart("ok"))


def test_render_response_joins_text_and_lists_calls() -> None:
    resp = ChatResponse(
        "msg_1",
        "claude",
        (
            ThinkingPart("plan", "sig"),
            TextPart("Let me "),
            TextPart("check."),
            ToolUsePart("toolu_1", "lookup", JSONValue('{"q":"x"}')),
        ),
        StopReason.TOOL_USE,
        usage=Usage(
            input_tokens=10,
            output_tokens=5,
            cache_read_tokens=100,
            cache_write_tokens=20,
            reasoning_tokens=3,
        ),
    )
    out = oc.render_response(resp, model="gpt-alias")
    assert out["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Let me check.",
        "refusal": None,
        "reasoning_content": "plan",
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"q":"x"}'},
            }
        ],
    }
    assert out["usage"] == {
        "prompt_tokens": 130,
        "completion_tokens": 5,
        "total_tokens": 135,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 3},
    }


def test_only_tool_calls_means_null_content() -> None:
    resp = ChatResponse("r", "m", (ToolUsePart("t", "f"),), StopReason.TOOL_USE)
    assert oc.render_response(resp, model="x")["choices"][0]["message"]["content"] is None


@pytest.mark.parametrize(
    "usage", [None, {}, {"prompt_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": None}]
)
def test_missing_or_null_usage_reads_as_counts(usage: object) -> None:
    body = completion({"content": "x"})
    body["usage"] = usage
    parsed = oc.parse_response(body).usage
    if isinstance(usage, dict) and usage:
        assert parsed == Usage(input_tokens=5, output_tokens=2)
    else:
        assert parsed == Usage()


def test_deepseek_cache_hits_count_as_cache_reads() -> None:
    body = completion(
        {"content": "x"},
        usage={"prompt_tokens": 100, "completion_tokens": 1, "prompt_cache_hit_tokens": 60},
    )
    assert oc.parse_response(body).usage == Usage(
        input_tokens=40, output_tokens=1, cache_read_tokens=60
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"id": "x", "choices": []}, "choices"),
        ({"id": "x"}, "choices"),
        ({"choices": [{"message": {"content": "x"}}]}, "id"),
        ({"id": "x", "choices": [{"finish_reason": "stop"}]}, "choices[0].message"),
        (
            completion(
                {"tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}]}
            ),
            "choices[0].message.tool_calls[0].function.arguments",
        ),
    ],
)
def test_malformed_responses_are_upstream_errors(body: dict[str, Any], param: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        oc.parse_response(body)
    assert caught.value.param == param
    assert caught.value.status == 502
