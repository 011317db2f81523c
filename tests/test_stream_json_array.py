"""``streaming.json_array``: a client stream's SSE events as one JSON array."""

from __future__ import annotations

import json

from llm_gateway.streaming.json_array import JSONArrayFramer
from llm_gateway.streaming.sse import encode_event

CHUNKS = [{"candidates": [{"content": {"parts": [{"text": t}]}}]} for t in ("He", "llo")]


def test_each_event_is_the_next_element_as_it_comes() -> None:
    framer = JSONArrayFramer()
    first = framer.feed(encode_event(json.dumps(CHUNKS[0])))
    assert first == b"[" + json.dumps(CHUNKS[0]).encode()
    second = framer.feed(encode_event(json.dumps(CHUNKS[1])))
    assert second == b",\n" + json.dumps(CHUNKS[1]).encode()
    assert framer.finish() == b"]"
    assert json.loads(first + second + b"]") == CHUNKS


def test_events_split_across_chunks_and_an_error_element() -> None:
    framer = JSONArrayFramer()
    data = b"".join(encode_event(json.dumps(c)) for c in CHUNKS)
    error = {"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}
    data += encode_event(json.dumps(error))
    out = b"".join(framer.feed(data[i : i + 7]) for i in range(0, len(data), 7))
    out += framer.finish()
    assert json.loads(out) == [*CHUNKS, error]


def test_a_stream_without_events_is_an_empty_array() -> None:
    framer = JSONArrayFramer()
    assert framer.feed(b"") == b""
    assert framer.feed(b": comment\n\n") == b""
    assert framer.finish() == b"[]"
