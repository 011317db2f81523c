"""Accumulating unified events into a ChatResponse, and the stream registry."""

from __future__ import annotations

import pytest

from llm_gateway.formats.registry import FORMATS
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
from llm_gateway.streaming.accumulate import Accumulator, StreamFailed, accumulate
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
)
from llm_gateway.streaming.registry import STREAM_FORMATS

try:
    from test_stream_validators import (
        check_anthropic,
        check_chat,
        check_completion,
        check_gemini,
        check_responses,
    )
except ImportError:  # tests collected as a package
    from tests.test_stream_validators import (
        check_anthropic,
        check_chat,
        check_completion,
        check_gemini,
        check_responses,
    )


def test_interleaved_blocks_accumulate_in_index_order() -> None:
    response = accumulate(
        [
            MessageStart("id1", "m", Usage(input_tokens=5)),
            ThinkingDelta(0, "a"),
            SignatureDelta(0, "first"),
            SignatureDelta(0, "second"),  # replaces, as the Anthropic SDK does
            BlockStop(0),
            ToolCallStart(1, "c1", "f"),
            TextDelta(2, "x"),
            ToolArgsDelta(1, '{"k": '),
            TextDelta(2, "y"),
            ToolArgsDelta(1, "[1, 2]}"),
            ToolCallStart(3, "c2", "g"),
            BlockStop(1),
            BlockStop(2),
            BlockStop(3),
            MessageDelta(StopReason.STOP_SEQUENCE, "END"),
            MessageDelta(usage=Usage(input_tokens=5, output_tokens=9)),
            MessageStop(),
        ]
    )
    assert response == ChatResponse(
        id="id1",
        model="m",
        parts=(
            ThinkingPart("a", "second"),
            ToolUsePart("c1", "f", JSONValue('{"k":[1,2]}')),
            TextPart("xy"),
            ToolUsePart("c2", "g", EMPTY_OBJECT),
        ),
        stop_reason=StopReason.STOP_SEQUENCE,
        stop_sequence="END",
        usage=Usage(input_tokens=5, output_tokens=9),
    )


def test_a_later_delta_without_stop_reason_keeps_it() -> None:
    response = accumulate(
        [
            MessageStart(None, None),
            MessageDelta(StopReason.MAX_TOKENS),
            MessageDelta(),
            MessageStop(),
        ]
    )
    assert response.stop_reason is StopReason.MAX_TOKENS and response.id == ""


@pytest.mark.parametrize("arguments", ['{"a":', "[1, 2]", "42"])
def test_tool_arguments_that_are_not_a_json_object_fail(arguments: str) -> None:
    events = [
        MessageStart("i", "m"),
        ToolCallStart(0, "c", "f"),
        ToolArgsDelta(0, arguments),
        MessageStop(),
    ]
    with pytest.raises(StreamFailed) as info:
        accumulate(events)
    assert info.value.status == 502 and "'f'" in info.value.message


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("rate_limit_error", 429),
        ("overloaded_error", 503),
        ("invalid_request_error", 400),
        ("api_error", 502),
        ("something_new", 502),
    ],
)
def test_stream_error_raises_with_a_fitting_status(kind: str, status: int) -> None:
    with pytest.raises(StreamFailed) as info:
        accumulate([MessageStart("i", "m"), TextDelta(0, "x"), StreamError(kind, "it broke")])
    assert (info.value.kind, info.value.status, info.value.message) == (kind, status, "it broke")


def test_incomplete_stream_fails() -> None:
    with pytest.raises(StreamFailed):
        accumulate([MessageStart("i", "m"), TextDelta(0, "x")])


def test_events_after_the_end_are_ignored() -> None:
    accumulator = Accumulator()
    for event in (MessageStart("i", "m"), TextDelta(0, "x"), MessageStop(), TextDelta(0, "late")):
        accumulator.feed(event)
    assert accumulator.result().parts == (TextPart("x"),)


def test_stream_formats_match_the_codec_formats() -> None:
    assert set(STREAM_FORMATS) == set(FORMATS)
    for name, fmt in STREAM_FORMATS.items():
        assert fmt.name == name


@pytest.mark.parametrize("name", sorted(STREAM_FORMATS))
def test_factories_make_independent_objects(name: str) -> None:
    fmt = STREAM_FORMATS[name]
    assert fmt.parser_factory() is not fmt.parser_factory()
    one = fmt.renderer_factory(model="a", include_usage=False, created=1)
    two = fmt.renderer_factory(model="b", include_usage=False, created=1)
    first = one.feed(MessageStart("first", "up")) + one.feed(TextDelta(0, "x"))
    second = two.feed(MessageStart("second", "up")) + two.feed(TextDelta(0, "x"))
    assert b"first" in first and b"second" in second and b"first" not in second


@pytest.mark.parametrize("name", sorted(STREAM_FORMATS))
def test_error_event_for_passthrough_streams(name: str) -> None:
    # A passthrough stream has no renderer; the format still knows how to end it.
    raw = STREAM_FORMATS[name].error_event(StreamError("rate_limit_error", "slow down"))
    if name == "anthropic-messages":
        assert check_anthropic(raw).error == ("rate_limit_error", "slow down")
    elif name == "openai-chat":
        assert check_chat(raw, include_usage=False).error == ("rate_limit_error", "slow down")
    elif name == "gemini-generate-content":
        assert check_gemini(raw).error == ("RESOURCE_EXHAUSTED", "slow down")
    elif name == "openai-responses":
        assert check_responses(raw).error == ("rate_limit_exceeded", "slow down")
    else:
        assert check_completion(raw, include_usage=True).error == ("rate_limit_error", "slow down")
