"""Stream pipes, sans I/O: what a same-format stream looks like after the gateway."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.formats.unified import Usage
from llm_gateway.pipeline.streams import RewritePipe, TapPipe, make_stream_pipe
from llm_gateway.streaming.sse import SSEDecoder


def anthropic_event(name: str, data: dict[str, object]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


ANTHROPIC = b"".join(
    [
        anthropic_event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-x",
                    "content": [],
                    "stop_reason": None,
                    "usage": {"input_tokens": 21, "output_tokens": 1},
                },
            },
        ),  # fmt: skip
        b": ping\n\n",
        anthropic_event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),  # fmt: skip
        anthropic_event(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": 'h\u00e9llo "usage"'},
            },
        ),  # fmt: skip
        anthropic_event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        anthropic_event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 9},
            },
        ),  # fmt: skip
        anthropic_event("message_stop", {"type": "message_stop"}),
    ]
)


def openai_chunk(delta: dict[str, object], finish: str | None = None, **extra: object) -> bytes:
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}  # fmt: skip
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


USAGE = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
OPENAI_WITH_USAGE = b"".join(
    [
        openai_chunk({"role": "assistant", "content": ""}),
        openai_chunk({"content": "Hi"}),
        openai_chunk({}, "stop"),
        b"data: "
        + json.dumps(
            {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "gpt-x",
                "choices": [],
                "usage": USAGE,
            }
        ).encode()
        + b"\n\n",  # fmt: skip
        b"data: [DONE]\n\n",
    ]
)


def run(pipe: TapPipe | RewritePipe, data: bytes, cuts: list[int]) -> bytes:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    return b"".join(pipe.feed(piece) for piece in pieces) + pipe.finish()


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.integers(min_value=0), max_size=12))
def test_a_same_format_anthropic_stream_passes_byte_for_byte(cuts: list[int]) -> None:
    pipe = TapPipe("anthropic-messages", strip_usage=False)
    assert run(pipe, ANTHROPIC, cuts) == ANTHROPIC
    assert pipe.usage == Usage(input_tokens=21, output_tokens=9)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.integers(min_value=0), max_size=12))
def test_the_usage_chunk_the_gateway_asked_for_is_hidden_and_counted(cuts: list[int]) -> None:
    pipe = TapPipe("openai-chat", strip_usage=True)
    out = run(pipe, OPENAI_WITH_USAGE, cuts)
    expected = OPENAI_WITH_USAGE.replace(OPENAI_WITH_USAGE.split(b"\n\n")[3] + b"\n\n", b"")
    assert out == expected
    assert pipe.usage == Usage(input_tokens=12, output_tokens=3)


def test_usage_the_client_asked_for_stays() -> None:
    pipe = TapPipe("openai-chat", strip_usage=False)
    assert run(pipe, OPENAI_WITH_USAGE, [7, 100]) == OPENAI_WITH_USAGE


def test_a_partial_event_waits_for_its_end() -> None:
    pipe = TapPipe("anthropic-messages", strip_usage=False)
    first = ANTHROPIC.index(b"event: content_block_start")
    assert pipe.feed(ANTHROPIC[: first + 10]) == ANTHROPIC[:first]
    assert pipe.feed(ANTHROPIC[first + 10 :]) == ANTHROPIC[first:]


def test_crlf_streams_fall_back_to_the_decoder_and_keep_their_events() -> None:
    crlf = ANTHROPIC.replace(b"\n", b"\r\n")
    pipe = TapPipe("anthropic-messages", strip_usage=False)
    out = run(pipe, crlf, [5, 300, 301])
    decoded = SSEDecoder().feed(out)
    original = [e for e in SSEDecoder().feed(ANTHROPIC)]
    assert [(e.event, json.loads(e.data)) for e in decoded] == [
        (e.event, json.loads(e.data)) for e in original
    ]
    assert pipe.usage == Usage(input_tokens=21, output_tokens=9)


def test_a_renamed_model_uses_the_rewriting_pipe() -> None:
    pipe = make_stream_pipe(
        client_format="anthropic-messages",
        upstream_format="anthropic-messages",
        client_model="fast",
        rename_model=True,
        passthrough=True,
        include_usage=False,
        strip_usage=False,
    )
    assert isinstance(pipe, RewritePipe)
    out = run(pipe, ANTHROPIC, [50])
    start = json.loads(SSEDecoder().feed(out)[0].data)
    assert start["message"]["model"] == "fast"


def test_null_usage_on_every_chunk_passes_untouched_and_the_real_usage_is_counted() -> None:
    # OpenAI sends "usage": null on every chunk once a stream asks for usage
    chunks = OPENAI_WITH_USAGE.split(b"\n\n")[:-1]
    with_nulls = b"".join(
        c.replace(b'"choices": [{', b'"usage": null, "choices": [{') + b"\n\n" for c in chunks
    )
    assert with_nulls.count(b'"usage": null') == 3
    pipe = TapPipe("openai-chat", strip_usage=False)
    assert run(pipe, with_nulls, [40, 41, 200]) == with_nulls
    assert pipe.usage == Usage(input_tokens=12, output_tokens=3)
    hiding = TapPipe("openai-chat", strip_usage=True)
    out = run(hiding, with_nulls, [40])
    assert b'"usage"' not in out and out.endswith(b"data: [DONE]\n\n")
    assert hiding.usage == Usage(input_tokens=12, output_tokens=3)
