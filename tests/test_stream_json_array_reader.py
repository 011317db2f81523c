"""``streaming.json_array_reader``: an upstream's JSON-array stream (Gemini's
``:streamGenerateContent`` without ``alt=sse``), cut at any byte, read as SSE
events; and the pipes fed it convert it exactly as they convert the SSE form."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fake_upstream import Answer, ToolCall
from gemini_fake import gemini_response
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.pipeline.streams import make_stream_pipe
from llm_gateway.streaming.json_array_reader import JSONArrayError, JSONArrayReader
from llm_gateway.streaming.registry import STREAM_FORMATS
from llm_gateway.streaming.sse import SSEDecoder

# What Google's reference shows for the array form: pretty-printed elements,
# "[{" ... "}\n,\r\n{" ... "}]" (taken from a :streamGenerateContent answer).
DOCUMENTED = (
    b'[{\n  "candidates": [\n    {\n      "content": {\n        "parts": [\n          {\n'
    b'            "text": "The"\n          }\n        ],\n        "role": "model"\n      },\n'
    b'      "index": 0\n    }\n  ],\n  "usageMetadata": {\n    "promptTokenCount": 4,\n'
    b'    "totalTokenCount": 4\n  },\n  "modelVersion": "gemini-2.5-flash"\n}\n,\r\n{\n'
    b'  "candidates": [\n    {\n      "content": {\n        "parts": [\n          {\n'
    b'            "text": " sky is blue."\n          }\n        ],\n        "role": "model"\n'
    b'      },\n      "finishReason": "STOP",\n      "index": 0\n    }\n  ],\n'
    b'  "usageMetadata": {\n    "promptTokenCount": 4,\n    "candidatesTokenCount": 5,\n'
    b'    "totalTokenCount": 9\n  },\n  "modelVersion": "gemini-2.5-flash"\n}\n]'
)


def events_of(sse: bytes) -> list[Any]:
    decoder = SSEDecoder()
    return [json.loads(event.data) for event in decoder.feed(sse) + decoder.close()]


def read_in_pieces(body: bytes, cuts: list[int]) -> tuple[bytes, JSONArrayReader]:
    reader = JSONArrayReader()
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    out = b"".join(reader.feed(body[a:b]) for a, b in zip(points, points[1:], strict=False))
    return out, reader


def test_the_documented_shape_gives_its_two_elements() -> None:
    out, reader = read_in_pieces(DOCUMENTED, [])
    assert reader.complete
    elements = json.loads(DOCUMENTED)
    assert events_of(out) == elements
    # each element is one data line: the SSE form Gemini sends with alt=sse
    assert out.count(b"\n\n") == 2 and out.count(b"\n") == 4


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=12,
)
elements = st.lists(st.dictionaries(st.text(), json_values, max_size=4), max_size=5)


@settings(max_examples=300, deadline=None)
@given(elements, st.sampled_from([None, 1, 2]), st.lists(st.integers(min_value=0), max_size=12))
def test_any_array_cut_anywhere_gives_its_elements_in_order(
    items: list[dict[str, Any]], indent: int | None, cuts: list[int]
) -> None:
    body = json.dumps(items, indent=indent, ensure_ascii=indent == 2).encode()
    out, reader = read_in_pieces(body, cuts)
    assert reader.complete
    assert events_of(out) == items


@settings(max_examples=100, deadline=None)
@given(elements.filter(bool), st.lists(st.integers(min_value=0), max_size=8))
def test_an_array_that_stops_early_gives_the_whole_elements_only(
    items: list[dict[str, Any]], cuts: list[int]
) -> None:
    body = json.dumps(items).encode()
    last = json.dumps(items[-1]).encode()
    cut = body[: len(body) - len(last) - 1 + len(last) // 2]  # halfway through the last one
    out, reader = read_in_pieces(cut, cuts)
    assert not reader.complete
    assert events_of(out) == items[:-1]


def test_a_lone_object_is_a_one_element_stream() -> None:
    body = b'\xef\xbb\xbf  {"candidates": [], "x": "]"}  '
    out, reader = read_in_pieces(body, [1, 2, 5])
    assert reader.complete and events_of(out) == [{"candidates": [], "x": "]"}]


@pytest.mark.parametrize(
    "body",
    [
        b"data: {}\n\n",  # SSE under the wrong content type
        b'["text"]',
        b"[{},,{}]",
        b"[,{}]",
        b"[{}]{}",
        b"[{} {}]",
        b"[{},]",
        b'[{"a":\n 1 2}]',  # a pretty-printed element that is not JSON
    ],
)
def test_what_is_not_an_array_of_objects_is_an_upstream_error(body: bytes) -> None:
    reader = JSONArrayReader()
    with pytest.raises(JSONArrayError):
        reader.feed(body)


def test_an_element_larger_than_the_limit_is_refused_without_waiting_for_its_end() -> None:
    reader = JSONArrayReader()
    reader.feed(b'[{"text": "')
    with pytest.raises(JSONArrayError, match="exceeds"):
        for _ in range(40):
            reader.feed(b"x" * 65536)


# --- the pipes read it exactly as they read SSE -----------------------------------------


ANSWER = Answer(
    text="Two calls.",
    reasoning="Think first.",
    tool_calls=(
        ToolCall("", "get_weather", {"city": "Paris"}),
        ToolCall("", "get_weather", {"city": "Tokyo"}),
    ),
    input_tokens=12,
    output_tokens=9,
)


def chunks(model: str) -> list[dict[str, Any]]:
    """The answer in stream chunks: thought, text, each call, then the finish."""
    whole = gemini_response(ANSWER, model)
    parts = whole["candidates"][0]["content"]["parts"]
    out = []
    for part in parts:
        out.append({"candidates": [{"content": {"role": "model", "parts": [part]}, "index": 0}]})
    out[-1]["candidates"][0]["finishReason"] = "STOP"
    out[-1]["usageMetadata"] = whole["usageMetadata"]
    for chunk in out:
        chunk["modelVersion"] = model
        chunk["responseId"] = "resp-array-1"
    return out


def run_pipe(client_format: str, body: bytes, cuts: list[int], array_input: bool) -> bytes:
    passthrough = client_format == "gemini-generate-content"
    pipe = make_stream_pipe(
        client_format=client_format,
        upstream_format="gemini-generate-content",
        client_model="gemini-3-pro-preview",
        rename_model=False,
        passthrough=passthrough,
        include_usage=True,
        strip_usage=False,
        array_input=array_input,
    )
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    out = b"".join(pipe.feed(body[a:b]) for a, b in zip(points, points[1:], strict=False))
    return re.sub(rb'"created(_at)?": ?\d+', b'"created":0', out + pipe.finish())


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(sorted(STREAM_FORMATS)),
    st.sampled_from([None, 2]),
    st.lists(st.integers(min_value=0), max_size=10),
)
def test_every_client_format_gets_the_same_stream_from_the_array_as_from_sse(
    client_format: str, indent: int | None, cuts: list[int]
) -> None:
    pieces = chunks("gemini-3-pro-preview")
    sse = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in pieces)
    array = json.dumps(pieces, indent=indent).encode()
    from_sse = run_pipe(client_format, sse, [], array_input=False)
    from_array = run_pipe(client_format, array, cuts, array_input=True)
    if client_format == "gemini-generate-content":  # passthrough: the same JSON, compacted
        assert events_of(from_array) == events_of(from_sse) == pieces
    else:
        assert from_array == from_sse
    assert b"Two calls." in from_array


def test_a_broken_array_ends_the_client_stream_with_an_error_event() -> None:
    pipe = make_stream_pipe(
        client_format="openai-chat",
        upstream_format="gemini-generate-content",
        client_model="gemini-3-pro-preview",
        rename_model=False,
        passthrough=False,
        include_usage=False,
        strip_usage=False,
        array_input=True,
    )
    out = pipe.feed(b'[{"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]}')
    with pytest.raises(JSONArrayError) as caught:
        pipe.feed(b', "not an object"]')
    out += pipe.fail(caught.value.kind, caught.value.message)
    assert b'"content":"Hi"' in out
    assert b"not a JSON array of objects" in out and out.endswith(b"data: [DONE]\n\n")
