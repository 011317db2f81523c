"""OpenAI chat stream parser and renderer: the quirks, one by one."""

from __future__ import annotations

import json
from typing import Any

from llm_gateway.formats.unified import StopReason, Usage
from llm_gateway.streaming.events import (
    BlockStop,
    MessageDelta,
    MessageStart,
    MessageStop,
    SignatureDelta,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    ToolCallStart,
    UnifiedEvent,
)
from llm_gateway.streaming.openai_chat import OpenAIChatParser, OpenAIChatRenderer
from llm_gateway.streaming.sse import SSEEvent

try:
    from test_stream_validators import CREATED, MODEL, check_chat
except ImportError:  # tests collected as a package
    from tests.test_stream_validators import CREATED, MODEL, check_chat


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> SSEEvent:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    body.update(extra)
    return SSEEvent(None, json.dumps(body))


DONE = SSEEvent(None, "[DONE]")


def parse(*events: SSEEvent, finish: bool = True) -> list[UnifiedEvent]:
    parser = OpenAIChatParser()
    out = [u for event in events for u in parser.feed(event)]
    return out + parser.finish() if finish else out


def call(
    index: int | None = None, id: str | None = None, name: str | None = None, args: str = ""
) -> dict[str, Any]:
    entry: dict[str, Any] = {"function": {"arguments": args}}
    if index is not None:
        entry["index"] = index
    if id is not None:
        entry["id"] = id
        entry["type"] = "function"
    if name is not None:
        entry["function"]["name"] = name
    return entry


def tool_events(events: list[UnifiedEvent]) -> list[UnifiedEvent]:
    return [e for e in events if isinstance(e, (ToolCallStart, ToolArgsDelta))]


# --- parser ---------------------------------------------------------------------


def test_text_stream() -> None:
    events = parse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, "stop"),
        DONE,
    )
    assert events == [
        MessageStart("chatcmpl-1", "m"),
        TextDelta(0, "Hel"),
        TextDelta(0, "lo"),
        BlockStop(0),
        MessageDelta(StopReason.END_TURN),
        MessageStop(),
    ]


def test_parallel_tool_calls_are_keyed_by_index_not_collapsed() -> None:
    events = parse(
        chunk({"tool_calls": [call(0, "call_a", "f")]}),
        chunk({"tool_calls": [call(1, "call_b", "g")]}),
        chunk({"tool_calls": [call(0, args='{"x"')]}),
        chunk({"tool_calls": [call(1, args="{}")]}),
        chunk({"tool_calls": [call(0, args=":1}")]}),
        chunk({}, "tool_calls"),
        DONE,
    )
    assert tool_events(events) == [
        ToolCallStart(0, "call_a", "f"),
        ToolCallStart(1, "call_b", "g"),
        ToolArgsDelta(0, '{"x"'),
        ToolArgsDelta(1, "{}"),
        ToolArgsDelta(0, ":1}"),
    ]
    assert events[-4:] == [
        BlockStop(0),
        BlockStop(1),
        MessageDelta(StopReason.TOOL_USE),
        MessageStop(),
    ]


def test_tool_calls_without_index_are_keyed_by_id() -> None:
    events = parse(
        chunk({"tool_calls": [call(None, "call_a", "f", "{")]}),
        chunk({"tool_calls": [call(None, "call_b", "g", "{")]}),
        chunk({"tool_calls": [{"id": "call_a", "function": {"arguments": "}"}}]}),
        chunk({"tool_calls": [{"id": "call_b", "function": {"arguments": "}"}}]}),
        chunk({}, "tool_calls"),
    )
    assert tool_events(events) == [
        ToolCallStart(0, "call_a", "f"),
        ToolArgsDelta(0, "{"),
        ToolCallStart(1, "call_b", "g"),
        ToolArgsDelta(1, "{"),
        ToolArgsDelta(0, "}"),
        ToolArgsDelta(1, "}"),
    ]


def test_deltas_with_neither_index_nor_id_continue_the_latest_call() -> None:
    events = parse(
        chunk({"tool_calls": [call(None, "call_a", "f")]}),
        chunk({"tool_calls": [call(args='{"a":')]}),
        chunk({"tool_calls": [call(None, "call_b", "g")]}),
        chunk({"tool_calls": [call(args="2}")]}),
        chunk({"tool_calls": [call(args="")]}),
        chunk({}, "tool_calls"),
    )
    assert tool_events(events) == [
        ToolCallStart(0, "call_a", "f"),
        ToolArgsDelta(0, '{"a":'),
        ToolCallStart(1, "call_b", "g"),
        ToolArgsDelta(1, "2}"),
    ]
    assert events[-4:-2] == [BlockStop(0), BlockStop(1)]


def test_a_new_id_at_an_old_index_is_a_new_call() -> None:
    # Some servers put every call at index 0; the id tells them apart.
    events = parse(
        chunk({"tool_calls": [call(0, "call_a", "f", "{}")]}),
        chunk({"tool_calls": [call(0, "call_b", "g")]}),
        chunk({"tool_calls": [call(0, args="{}")]}),
        chunk({}, "tool_calls"),
    )
    assert tool_events(events) == [
        ToolCallStart(0, "call_a", "f"),
        ToolArgsDelta(0, "{}"),
        ToolCallStart(1, "call_b", "g"),
        ToolArgsDelta(1, "{}"),
    ]


def test_the_same_id_repeated_in_every_delta_is_one_call() -> None:
    events = parse(
        chunk({"tool_calls": [call(0, "call_a", "f", "{")]}),
        chunk({"tool_calls": [call(0, "call_a", "f", "}")]}),
        chunk({}, "tool_calls"),
    )
    assert tool_events(events) == [
        ToolCallStart(0, "call_a", "f"),
        ToolArgsDelta(0, "{"),
        ToolArgsDelta(0, "}"),
    ]


def test_a_call_without_id_gets_one() -> None:
    events = parse(chunk({"tool_calls": [call(0, None, "f")]}), chunk({}, "tool_calls"))
    start = tool_events(events)[0]
    assert isinstance(start, ToolCallStart) and start.id.startswith("call_") and start.name == "f"


def test_reasoning_content_is_thinking_and_closes_before_text() -> None:
    events = parse(
        chunk({"role": "assistant", "content": None, "reasoning_content": ""}),
        chunk({"reasoning_content": "hmm"}),
        chunk({"reasoning": " ok"}),  # the field name some servers use
        chunk({"content": "answer", "reasoning_content": None}),
        chunk({}, "stop"),
    )
    assert events[1:5] == [
        ThinkingDelta(0, "hmm"),
        ThinkingDelta(0, " ok"),
        BlockStop(0),
        TextDelta(1, "answer"),
    ]


def test_text_resuming_after_a_tool_call_opens_a_new_block() -> None:
    events = parse(
        chunk({"content": "a"}),
        chunk({"tool_calls": [call(0, "c", "f", "{}")]}),
        chunk({"content": "b"}),
        chunk({}, "stop"),
    )
    assert events[1:7] == [
        TextDelta(0, "a"),
        BlockStop(0),
        ToolCallStart(1, "c", "f"),
        ToolArgsDelta(1, "{}"),
        TextDelta(2, "b"),
        BlockStop(2),
    ]


def test_refusal_text_is_kept() -> None:
    events = parse(chunk({"refusal": "I can't"}), chunk({}, "content_filter"))
    assert events[1:4] == [TextDelta(0, "I can't"), BlockStop(0), MessageDelta(StopReason.REFUSAL)]


def test_other_choices_are_ignored() -> None:
    body = {
        "id": "x",
        "model": "m",
        "choices": [{"index": 1, "delta": {"content": "other"}, "finish_reason": None}],
    }
    assert parse(SSEEvent(None, json.dumps(body)), finish=False) == [MessageStart("x", "m")]


USAGE = {
    "prompt_tokens": 30,
    "completion_tokens": 5,
    "total_tokens": 35,
    "prompt_tokens_details": {"cached_tokens": 10},
}


def test_usage_null_is_ignored_and_the_late_usage_chunk_is_read() -> None:
    events = parse(
        chunk({"content": "x"}, usage=None),
        chunk({}, "stop", usage=None),
        chunk(None, usage=USAGE),
        DONE,
    )
    assert events[-3:] == [
        MessageDelta(StopReason.END_TURN),
        MessageDelta(usage=Usage(input_tokens=20, output_tokens=5, cache_read_tokens=10)),
        MessageStop(),
    ]


def test_usage_on_the_finish_chunk() -> None:
    events = parse(chunk({}, "length", usage=USAGE), DONE)
    assert events[-2] == MessageDelta(
        StopReason.MAX_TOKENS, None, Usage(input_tokens=20, output_tokens=5, cache_read_tokens=10)
    )


def test_done_without_finish_reason_ends_the_turn() -> None:
    assert parse(chunk({"content": "x"}), DONE) == [
        MessageStart("chatcmpl-1", "m"),
        TextDelta(0, "x"),
        BlockStop(0),
        MessageDelta(StopReason.END_TURN),
        MessageStop(),
    ]


def test_end_after_finish_reason_without_done_is_complete() -> None:
    events = parse(chunk({"content": "x"}), chunk({}, "stop"))
    assert events[-1] == MessageStop()


def test_end_before_finish_reason_is_an_error() -> None:
    events = parse(chunk({"content": "x"}))
    assert isinstance(events[-1], StreamError) and events[-1].kind == "api_error"


def test_empty_upstream_is_an_error() -> None:
    assert parse() == [StreamError("api_error", "upstream stream ended before it finished")]


def test_error_chunk_mid_stream_with_secret_redacted() -> None:
    error = {
        "error": {
            "message": "Incorrect API key provided: sk-proj-abcdefghijklmnop",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    parser = OpenAIChatParser()
    parser.feed(chunk({"content": "x"}))
    events = parser.feed(SSEEvent(None, json.dumps(error)))
    assert len(events) == 1 and isinstance(events[0], StreamError)
    assert events[0].kind == "authentication_error"
    assert "abcdefghijklmnop" not in events[0].message and "sk-proj-***" in events[0].message
    assert parser.feed(chunk({"content": "after"})) == [] and parser.finish() == []


def test_malformed_chunk_is_an_error() -> None:
    events = parse(chunk({"content": "x"}), SSEEvent(None, "{not json"), finish=False)
    assert isinstance(events[-1], StreamError)


def test_nothing_after_done() -> None:
    parser = OpenAIChatParser()
    parser.feed(DONE)
    assert parser.feed(chunk({"content": "late"})) == [] and parser.finish() == []


# --- renderer ---------------------------------------------------------------------


def render(events: list[UnifiedEvent], include_usage: bool = False) -> list[bytes]:
    renderer = OpenAIChatRenderer(model=MODEL, created=CREATED, include_usage=include_usage)
    return [renderer.feed(event) for event in events] + [renderer.finish()]


def data_of(write: bytes) -> Any:
    assert write.startswith(b"data: ") and write.endswith(b"\n\n")
    return json.loads(write[6:-2])


def test_renderer_ids_model_created_and_role() -> None:
    writes = render([MessageStart(None, "up"), TextDelta(0, "hi"), BlockStop(0), MessageStop()])
    first, text = data_of(writes[0]), data_of(writes[1])
    assert first["id"].startswith("chatcmpl-") and first["id"] == text["id"]
    assert first["model"] == MODEL and first["created"] == CREATED
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert text["choices"][0]["delta"] == {"content": "hi"}
    assert writes[-1] == b""


def test_renderer_upstream_id_keeps_its_distinctive_part() -> None:
    writes = render([MessageStart("msg_01ABC", "up"), MessageStop()])
    assert data_of(writes[0])["id"] == "chatcmpl-01ABC"


def test_renderer_without_usage_chunk_unless_asked() -> None:
    events: list[UnifiedEvent] = [
        MessageStart("x", "up"),
        MessageDelta(StopReason.END_TURN),
        MessageDelta(usage=Usage(input_tokens=3, output_tokens=4)),
        MessageStop(),
    ]
    plain = b"".join(render(events))
    assert b'"usage"' not in plain and plain.endswith(b"data: [DONE]\n\n")
    check_chat(plain, include_usage=False)
    with_usage = b"".join(render(events, include_usage=True))
    view = check_chat(with_usage, include_usage=True)
    assert view.usage == (3, 4, 0)


def test_renderer_asked_for_usage_that_never_came_sends_zeros() -> None:
    out = b"".join(
        render([MessageStart("x", "up"), MessageDelta(StopReason.END_TURN), MessageStop()], True)
    )
    assert check_chat(out, include_usage=True).usage == (0, 0, 0)


def test_renderer_one_finish_reason_only() -> None:
    out = b"".join(
        render(
            [
                MessageStart("x", "up"),
                MessageDelta(StopReason.MAX_TOKENS),
                MessageDelta(StopReason.END_TURN),
                MessageStop(),
            ]
        )
    )
    assert check_chat(out, include_usage=False).finish_reason == "length"


def test_renderer_tool_call_without_arguments_gets_empty_object() -> None:
    writes = render(
        [MessageStart("x", "up"), ToolCallStart(0, "call_1", "now"), BlockStop(0), MessageStop()]
    )
    assert data_of(writes[2])["choices"][0]["delta"] == {
        "tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]
    }


def test_renderer_drops_what_openai_cannot_carry() -> None:
    writes = render([MessageStart("x", "up"), ThinkingDelta(0, "t"), SignatureDelta(0, "sig")])
    assert writes[2] == b""


def test_renderer_error_after_start_then_done_once() -> None:
    writes = render(
        [MessageStart("x", "up"), TextDelta(0, "a"), StreamError("overloaded_error", "busy")]
    )
    assert writes[2] == (
        b'data: {"error":{"message":"busy","type":"service_unavailable_error","param":null,'
        b'"code":"server_is_overloaded"}}\n\ndata: [DONE]\n\n'
    )
    assert writes[3] == b""  # finish() after the error adds nothing
    assert check_chat(b"".join(writes), include_usage=False).error == (
        "service_unavailable_error",
        "busy",
    )


def test_renderer_ignores_everything_after_done() -> None:
    renderer = OpenAIChatRenderer(model=MODEL, created=CREATED)
    renderer.feed(MessageStart("x", "up"))
    assert renderer.feed(MessageStop()).endswith(b"data: [DONE]\n\n")
    assert renderer.feed(TextDelta(0, "late")) == b""
    assert renderer.feed(StreamError("api_error", "late")) == b""
    assert renderer.finish() == b""


def test_renderer_stream_that_never_completed_ends_with_an_error() -> None:
    writes = render([MessageStart("x", "up"), TextDelta(0, "a")])
    view = check_chat(b"".join(writes), include_usage=False)
    assert view.error is not None and writes[-1].endswith(b"data: [DONE]\n\n")
