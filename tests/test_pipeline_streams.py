"""Stream pipes, sans I/O: what a same-format stream looks like after the gateway."""

from __future__ import annotations

import json

import pytest
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
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x",
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


# --- how a passthrough stream ends ---------------------------------------------------

OPENAI_ANSWER = OPENAI_WITH_USAGE.split(b"data: [DONE]")[0]  # finish_reason, no [DONE]
OPENAI_CUT = (
    OPENAI_WITH_USAGE.split(b"\n\n")[0] + b"\n\n" + OPENAI_WITH_USAGE.split(b"\n\n")[1] + b"\n\n"
)
ANTHROPIC_CUT = ANTHROPIC.split(b"event: message_delta")[0]  # no stop reason, no message_stop


def passthrough_pipes(client_format: str) -> list[TapPipe | RewritePipe]:
    return [
        TapPipe(client_format, strip_usage=False),
        RewritePipe(client_format, rename_to="renamed", strip_usage=False),
    ]


def events_of(data: bytes) -> list[tuple[str | None, str]]:
    return [(e.event, e.data) for e in SSEDecoder().feed(data)]


@pytest.mark.parametrize(
    ("client_format", "whole"),
    [("openai-chat", OPENAI_WITH_USAGE), ("anthropic-messages", ANTHROPIC)],
)
def test_a_stream_is_complete_once_its_final_event_went_out(
    client_format: str, whole: bytes
) -> None:
    for pipe in passthrough_pipes(client_format):
        final = whole.rstrip(b"\n").rfind(b"\n\n") + 2  # where the final event starts
        pipe.feed(whole[:final])
        assert not pipe.complete
        pipe.feed(whole[final:])
        assert pipe.complete
        # the upstream failing now (a reset before its body's end) changes nothing
        assert pipe.fail("api_error", "connection reset") == b""
        assert pipe.finish() == b""


@pytest.mark.parametrize(
    ("client_format", "cut", "error"),
    [
        ("openai-chat", OPENAI_CUT, b'data: {"error":'),
        ("anthropic-messages", ANTHROPIC_CUT, b"event: error\n"),
    ],
)
def test_a_stream_cut_before_its_answer_ends_with_an_error_event(
    client_format: str, cut: bytes, error: bytes
) -> None:
    for pipe in passthrough_pipes(client_format):
        out = pipe.feed(cut) + pipe.finish()
        assert out.count(error) == 1
        assert "before the answer was complete" in events_of(out[out.index(error) :])[0][1]
        assert not pipe.complete


def test_an_answer_without_its_final_event_is_not_an_error() -> None:
    # Some compatible servers end with the finish reason and no [DONE].
    for pipe in passthrough_pipes("openai-chat"):
        out = pipe.feed(OPENAI_ANSWER) + pipe.finish()
        assert b'"error"' not in out
        assert pipe.fail("api_error", "connection reset") == b""  # the answer is whole


def test_a_failure_before_the_answer_is_an_error_event() -> None:
    for pipe in passthrough_pipes("anthropic-messages"):
        pipe.feed(ANTHROPIC_CUT)
        failed = pipe.fail("api_error", "connection reset")
        assert events_of(failed)[0][0] == "error"
        assert json.loads(events_of(failed)[0][1])["error"]["message"] == "connection reset"


def test_a_converted_stream_is_complete_when_its_final_event_is_rendered() -> None:
    pipe = make_stream_pipe(
        client_format="openai-chat",
        upstream_format="anthropic-messages",
        client_model="fast",
        rename_model=True,
        passthrough=False,
        include_usage=False,
        strip_usage=False,
    )
    before_stop = ANTHROPIC.index(b"event: message_stop")
    out = pipe.feed(ANTHROPIC[:before_stop])
    assert not pipe.complete
    out += pipe.feed(ANTHROPIC[before_stop:])
    assert out.endswith(b"data: [DONE]\n\n")  # rendered at message_stop, not at the end
    assert pipe.complete


# --- ids in the client format's style, errors without secrets ------------------------------

_SECRET = "local-key-Zq81xWv0PlMn"


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.lists(st.integers(min_value=0), max_size=8), st.sampled_from(["tap", "rewrite"]))
def test_a_passthrough_stream_gets_one_id_in_the_clients_style(cuts: list[int], kind: str) -> None:
    """An OpenAI-compatible server's own ids become ``chatcmpl-`` ids, the same on every chunk."""
    odd = OPENAI_WITH_USAGE.replace(b'"id": "chatcmpl-1"', b'"id": "gen-77"')
    pipe = (
        TapPipe("openai-chat", strip_usage=False)
        if kind == "tap"
        else RewritePipe("openai-chat", rename_to="renamed", strip_usage=False)
    )
    out = run(pipe, odd, cuts)
    ids = {json.loads(line[6:])["id"] for line in out.split(b"\n") if line.startswith(b"data: {")}
    assert ids == {"chatcmpl-gen-77"}
    assert pipe.usage is not None


@pytest.mark.parametrize("kind", ["tap", "rewrite", "convert"])
def test_an_upstream_error_event_loses_the_accounts_key(kind: str) -> None:
    from llm_gateway.formats.error_relay import Redactor

    error = {"type": "error", "error": {"type": "api_error", "message": f"bad key {_SECRET}"}}
    data = ANTHROPIC.split(b": ping\n\n")[0] + b": ping\n\n" + anthropic_event("error", error)
    redactor = Redactor.for_credential(_SECRET)
    pipe = make_stream_pipe(
        client_format="anthropic-messages" if kind != "convert" else "openai-chat",
        upstream_format="anthropic-messages",
        client_model="claude-x",
        rename_model=kind == "rewrite",
        passthrough=kind != "convert",
        include_usage=False,
        strip_usage=False,
        redactor=redactor,
    )
    out = pipe.feed(data) + pipe.finish()
    assert b"bad key ***" in out
    assert _SECRET.encode() not in out
    failed = pipe.fail("api_error", f"cut off, Bearer {_SECRET}")
    assert _SECRET.encode() not in failed
