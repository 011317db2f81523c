"""Anthropic stream parser and renderer: block mapping, usage, holding, serialising."""

from __future__ import annotations

import json
from typing import Any

from llm_gateway.formats.unified import StopReason, Usage
from llm_gateway.streaming.anthropic_messages import (
    AnthropicMessagesParser,
    AnthropicMessagesRenderer,
)
from llm_gateway.streaming.events import (
    BlockStop,
    MessageDelta,
    MessageStart,
    MessageStop,
    RedactedThinking,
    SignatureDelta,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    ToolCallStart,
    UnifiedEvent,
)
from llm_gateway.streaming.sse import SSEEvent

try:
    from test_stream_validators import MODEL, check_anthropic, frames
except ImportError:  # tests collected as a package
    from tests.test_stream_validators import MODEL, check_anthropic, frames


def ev(data: dict[str, Any]) -> SSEEvent:
    return SSEEvent(data["type"], json.dumps(data))


START = ev(
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "model": "claude",
            "content": [],
            "usage": {
                "input_tokens": 10,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 5,
                "output_tokens": 1,
            },
        },
    }
)


def block_start(index: int, block: dict[str, Any]) -> SSEEvent:
    return ev({"type": "content_block_start", "index": index, "content_block": block})


def delta(index: int, body: dict[str, Any]) -> SSEEvent:
    return ev({"type": "content_block_delta", "index": index, "delta": body})


def stop(index: int) -> SSEEvent:
    return ev({"type": "content_block_stop", "index": index})


def message_delta(reason: str | None, usage: dict[str, Any]) -> SSEEvent:
    return ev(
        {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": None},
            "usage": usage,
        }
    )


MESSAGE_STOP = ev({"type": "message_stop"})


def parse(*events: SSEEvent, finish: bool = True) -> list[UnifiedEvent]:
    parser = AnthropicMessagesParser()
    out = [u for event in events for u in parser.feed(event)]
    return out + parser.finish() if finish else out


# --- parser ---------------------------------------------------------------------


def test_usage_from_message_start_is_merged_with_message_delta() -> None:
    events = parse(START, message_delta("end_turn", {"output_tokens": 42}), MESSAGE_STOP)
    start_usage = Usage(
        input_tokens=10, output_tokens=1, cache_read_tokens=100, cache_write_tokens=5
    )
    assert events == [
        MessageStart("msg_1", "claude", start_usage),
        MessageDelta(
            StopReason.END_TURN,
            None,
            Usage(input_tokens=10, output_tokens=42, cache_read_tokens=100, cache_write_tokens=5),
        ),
        MessageStop(),
    ]


def test_null_and_restated_counts_in_message_delta() -> None:
    events = parse(
        START,
        message_delta(
            "max_tokens",
            {"input_tokens": 11, "cache_read_input_tokens": None, "output_tokens": 7},
        ),
        MESSAGE_STOP,
    )
    assert events[1] == MessageDelta(
        StopReason.MAX_TOKENS,
        None,
        Usage(input_tokens=11, output_tokens=7, cache_read_tokens=100, cache_write_tokens=5),
    )


def test_empty_and_server_blocks_are_skipped_and_indices_stay_contiguous() -> None:
    events = parse(
        START,
        block_start(0, {"type": "text", "text": ""}),
        stop(0),  # an empty text block: nothing to show, nothing to send back
        block_start(1, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search"}),
        delta(1, {"type": "input_json_delta", "partial_json": '{"q":1}'}),
        stop(1),
        block_start(2, {"type": "web_search_tool_result", "content": []}),
        stop(2),
        block_start(3, {"type": "text", "text": ""}),
        delta(3, {"type": "text_delta", "text": "found"}),
        delta(3, {"type": "citations_delta", "citation": {"type": "web_search_result_location"}}),
        stop(3),
        message_delta("end_turn", {"output_tokens": 3}),
        MESSAGE_STOP,
    )
    assert events[1:3] == [TextDelta(0, "found"), BlockStop(0)]


def test_thinking_signature_redacted_and_tool_blocks() -> None:
    events = parse(
        START,
        block_start(0, {"type": "thinking", "thinking": ""}),
        delta(0, {"type": "thinking_delta", "thinking": "hmm"}),
        delta(0, {"type": "signature_delta", "signature": "sig"}),
        stop(0),
        block_start(1, {"type": "redacted_thinking", "data": "opaque"}),
        stop(1),
        block_start(2, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}),
        delta(2, {"type": "input_json_delta", "partial_json": ""}),
        delta(2, {"type": "input_json_delta", "partial_json": '{"a": 1}'}),
        stop(2),
        message_delta("tool_use", {"output_tokens": 3}),
        MESSAGE_STOP,
    )
    assert events[1:-2] == [
        ThinkingDelta(0, "hmm"),
        SignatureDelta(0, "sig"),
        BlockStop(0),
        RedactedThinking(1, "opaque"),
        BlockStop(1),
        ToolCallStart(2, "toolu_1", "f"),
        ToolArgsDelta(2, '{"a": 1}'),
        BlockStop(2),
    ]


def test_tool_input_given_whole_in_block_start() -> None:
    events = parse(
        START,
        block_start(0, {"type": "tool_use", "id": "t", "name": "f", "input": {"a": [1, 2]}}),
        stop(0),
    )
    assert events[1:4] == [
        ToolCallStart(0, "t", "f"),
        ToolArgsDelta(0, '{"a":[1,2]}'),
        BlockStop(0),
    ]


def test_unknown_stop_reason_means_cut_short() -> None:
    events = parse(START, message_delta("model_context_window_exceeded", {}), MESSAGE_STOP)
    assert events[1].stop_reason is StopReason.MAX_TOKENS  # type: ignore[union-attr]


def test_ping_and_unknown_events_are_ignored() -> None:
    assert parse(
        START, ev({"type": "ping"}), ev({"type": "future_event", "x": 1}), finish=False
    ) == [parse(START, finish=False)[0]]


def test_error_event_mid_stream() -> None:
    error = ev({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    parser = AnthropicMessagesParser()
    parser.feed(START)
    assert parser.feed(error) == [StreamError("overloaded_error", "Overloaded")]
    assert parser.feed(MESSAGE_STOP) == [] and parser.finish() == []


def test_end_after_message_delta_is_complete_before_it_an_error() -> None:
    complete = parse(START, message_delta("end_turn", {"output_tokens": 1}))
    assert complete[-1] == MessageStop()
    cut = parse(
        START,
        block_start(0, {"type": "text", "text": ""}),
        delta(0, {"type": "text_delta", "text": "x"}),
    )
    assert cut[-1] == StreamError("api_error", "upstream stream ended before message_stop")


def test_malformed_event_is_an_error() -> None:
    events = parse(START, SSEEvent("content_block_delta", "{oops"), finish=False)
    assert isinstance(events[-1], StreamError)


# --- renderer ---------------------------------------------------------------------


def render(events: list[UnifiedEvent]) -> list[bytes]:
    renderer = AnthropicMessagesRenderer(model=MODEL)
    return [renderer.feed(event) for event in events] + [renderer.finish()]


def names(write: bytes) -> list[str | None]:
    return [name for name, _ in frames(write)]


def test_message_delta_is_held_until_message_stop() -> None:
    writes = render(
        [
            MessageStart("chatcmpl-9", "gpt"),
            TextDelta(0, "hi"),
            BlockStop(0),
            MessageDelta(StopReason.END_TURN),
            MessageDelta(usage=Usage(input_tokens=7, output_tokens=2)),
            MessageStop(),
        ]
    )
    assert writes[3] == b"" and writes[4] == b""
    assert names(writes[5]) == ["message_delta", "message_stop"]
    view = check_anthropic(b"".join(writes))
    assert view.usage == (7, 2, 0, 0) and view.blocks == (("text", "hi"),)
    assert json.loads(frames(writes[0])[0][1])["message"]["id"] == "msg_9"


def test_input_usage_in_message_start_when_known() -> None:
    usage = Usage(input_tokens=12, output_tokens=1, cache_read_tokens=3)
    first = render([MessageStart("msg_x", "c", usage)])[0]
    assert json.loads(frames(first)[0][1])["message"]["usage"] == {
        "input_tokens": 12,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 3,
        "output_tokens": 1,
    }


def test_overlapping_tool_calls_are_serialised() -> None:
    writes = render(
        [
            MessageStart("x", "gpt"),
            ToolCallStart(0, "call_a", "f"),
            ToolCallStart(1, "call_b", "g"),
            ToolArgsDelta(1, '{"b":'),
            ToolArgsDelta(0, '{"a":1}'),
            ToolArgsDelta(1, "2}"),
            BlockStop(0),
            BlockStop(1),
            MessageDelta(StopReason.TOOL_USE),
            MessageStop(),
        ]
    )
    assert names(writes[1]) == ["content_block_start"]
    assert writes[2] == writes[3] == writes[5] == b""  # the second call waits its turn
    assert names(writes[4]) == ["content_block_delta"]
    # Closing call 0 opens call 1 and flushes what it had received meanwhile.
    assert names(writes[6]) == [
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
    ]
    view = check_anthropic(b"".join(writes))
    assert view.blocks == (
        ("tool_use", "call_a", "f", {"a": 1}),
        ("tool_use", "call_b", "g", {"b": 2}),
    )


def test_empty_tool_input_becomes_an_empty_object() -> None:
    writes = render([MessageStart("x", "gpt"), ToolCallStart(0, "c", "f"), BlockStop(0)])
    assert writes[2] == (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"input_json_delta","partial_json":"{}"}}\n\n'
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    )


def test_thinking_and_redacted_blocks() -> None:
    writes = render(
        [
            MessageStart("x", "c"),
            ThinkingDelta(0, "t"),
            SignatureDelta(0, "s"),
            BlockStop(0),
            RedactedThinking(1, "opaque"),
            BlockStop(1),
            MessageStop(),
        ]
    )
    assert check_anthropic(b"".join(writes)).blocks == (
        ("thinking", "t", "s"),
        ("redacted_thinking", "opaque"),
    )


def test_error_event_ends_the_stream() -> None:
    writes = render(
        [MessageStart("x", "c"), TextDelta(0, "a"), StreamError("rate_limit_error", "slow down")]
    )
    assert writes[2] == (
        b'event: error\ndata: {"type":"error","error":{"type":"rate_limit_error",'
        b'"message":"slow down"}}\n\n'
    )
    assert writes[3] == b""
    assert check_anthropic(b"".join(writes)).error == ("rate_limit_error", "slow down")


def test_error_before_anything_else_is_the_only_event() -> None:
    writes = render([StreamError("overloaded_error", "Overloaded")])
    assert names(b"".join(writes)) == ["error"]


def test_stream_that_never_completed_ends_with_an_error() -> None:
    writes = render([MessageStart("x", "c"), TextDelta(0, "a")])
    assert names(writes[-1]) == ["error"]
    assert check_anthropic(b"".join(writes)).error == (
        "api_error",
        "upstream stream ended unexpectedly",
    )


def test_nothing_after_message_stop() -> None:
    renderer = AnthropicMessagesRenderer(model=MODEL)
    renderer.feed(MessageStart("x", "c"))
    renderer.feed(MessageStop())
    assert renderer.feed(TextDelta(0, "late")) == b""
    assert renderer.feed(StreamError("api_error", "late")) == b""
    assert renderer.finish() == b""
