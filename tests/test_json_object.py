"""A client's JSON object read in one pass: as json.loads reads it, but no key twice at the top."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.errors import InvalidRequest
from llm_gateway.json_object import loads_object

_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.dictionaries(st.text(), _values, max_size=8), st.sampled_from(["", " ", "\n\t "]))
def test_an_object_reads_as_json_loads_reads_it(body: dict[str, Any], space: str) -> None:
    compact = json.dumps(body, ensure_ascii=False).encode()
    spaced = json.dumps(body, separators=(space + "," + space, space + ":" + space)).encode()
    for raw in (compact, spaced, space.encode() + compact + space.encode()):
        assert loads_object(raw) == json.loads(raw)


@pytest.mark.parametrize(
    "raw",
    [b'{"model": "a", "model": "b"}', b'{ "x":1 ,"model":"a","y":{},"model" : "a" }'],
)
def test_a_top_level_key_given_twice_is_refused(raw: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        loads_object(raw)
    assert caught.value.param in ("model",)


def test_repeated_keys_inside_values_are_left_to_the_reader() -> None:
    assert loads_object(b'{"a": {"k": 1, "k": 2}}') == {"a": {"k": 2}}


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b'{"a"',
        b'{"a":}',
        b'{"a":1,}',
        b'{"a" 1}',
        b'{"a":1 "b":2}',
        b'{"a":1} x',
        b"\xff",
    ],
)
def test_what_is_not_json_fails_as_json_loads_fails(raw: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(raw)
    with pytest.raises(ValueError):
        loads_object(raw)


def test_other_values_and_encodings_read_as_json_loads_reads_them() -> None:
    for raw in (b"[1, 2]", b'"text"', b'\xef\xbb\xbf{"a": 1}', '{"a": "é"}'.encode("utf-16")):
        assert loads_object(raw) == json.loads(raw)
