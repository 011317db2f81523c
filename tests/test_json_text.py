"""``json_text``: compact UTF-8 JSON for any decoded JSON value, lone surrogates included."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.json_text import dumps, dumps_bytes

#: every code point, the surrogate halves D800-DFFF included
ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(ANY_CHAR),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(ANY_CHAR), inner),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_any_value_is_written_as_utf8_json_that_reads_back_equal(value: object) -> None:
    data = dumps_bytes(value)
    assert json.loads(data.decode("utf-8")) == value
    text = dumps(value)
    assert json.loads(text) == value
    text.encode("utf-8")  # never raises


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES)
def test_without_surrogates_the_text_is_compact_and_unescaped(value: object) -> None:
    plain = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    try:
        plain.encode("utf-8")
    except UnicodeEncodeError:
        return  # covered above
    assert dumps(value) == plain
    assert dumps_bytes(value) == plain.encode("utf-8")


def test_a_lone_surrogate_leaves_as_the_escape_it_arrived_as() -> None:
    value = json.loads('{"text":"caf\\u00e9 \\ud83d"}')
    assert dumps_bytes(value) == b'{"text":"caf\\u00e9 \\ud83d"}'
    assert dumps({"text": "café"}) == '{"text":"café"}'
