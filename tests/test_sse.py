"""The SSE decoder against the WHATWG EventSource parsing rules, and the encoder.

Expected events below follow the spec's "Interpreting an event stream" rules:
line endings LF/CR/CRLF, one optional space after the colon, comments, the
blank line that dispatches, ``id``/``retry`` as stream state, a leading BOM.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.errors import UpstreamError
from llm_gateway.streaming.sse import (
    DONE_EVENT,
    SSEDecoder,
    SSEError,
    SSEEvent,
    encode_event,
    is_done,
)


def decode(*chunks: bytes, max_line_bytes: int = 1 << 20) -> list[SSEEvent]:
    decoder = SSEDecoder(max_line_bytes)
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.close()


def every_split(data: bytes) -> list[list[bytes]]:
    """The input whole, byte by byte, and cut in two at every position."""
    splits = [[data], [data[i : i + 1] for i in range(len(data))]]
    splits.extend([data[:i], data[i:]] for i in range(1, len(data)))
    return splits


# --- fields and dispatch ------------------------------------------------------


def test_named_event_with_data() -> None:
    assert decode(b"event: message_start\ndata: {}\n\n") == [SSEEvent("message_start", "{}")]


def test_unnamed_event_has_no_type() -> None:
    assert decode(b"data: hello\n\n") == [SSEEvent(None, "hello")]


def test_multi_line_data_is_joined_with_lf() -> None:
    assert decode(b"data: one\ndata: two\ndata:\ndata: three\n\n") == [
        SSEEvent(None, "one\ntwo\n\nthree")
    ]


def test_only_one_leading_space_is_removed() -> None:
    assert decode(b"data:  two spaces\n\ndata:none\n\n") == [
        SSEEvent(None, " two spaces"),
        SSEEvent(None, "none"),
    ]


def test_line_without_colon_is_a_field_with_empty_value() -> None:
    # "data" alone appends an empty line; the event is dispatched with data "".
    assert decode(b"data\n\n") == [SSEEvent(None, "")]


def test_comments_and_unknown_fields_are_ignored() -> None:
    stream = b": keep-alive\nfoo: bar\ndata: x\n: another\n\n"
    assert decode(stream) == [SSEEvent(None, "x")]


def test_block_without_data_is_not_dispatched_and_resets_the_type() -> None:
    stream = b"event: ping\n\ndata: after\n\n"
    assert decode(stream) == [SSEEvent(None, "after")]


def test_blank_lines_alone_dispatch_nothing() -> None:
    assert decode(b"\n\n\r\n\r\r") == []


def test_later_event_field_wins() -> None:
    assert decode(b"event: a\nevent: b\ndata: x\n\n") == [SSEEvent("b", "x")]


def test_empty_event_name_means_no_type() -> None:
    assert decode(b"event:\ndata: x\n\n") == [SSEEvent(None, "x")]


def test_id_and_retry_are_stream_state() -> None:
    stream = b"id: 7\nretry: 1500\ndata: a\n\ndata: b\n\nid\ndata: c\n\n"
    assert decode(stream) == [
        SSEEvent(None, "a", "7", 1500),
        SSEEvent(None, "b", "7", 1500),
        SSEEvent(None, "c", "", 1500),
    ]


def test_invalid_id_and_retry_are_ignored() -> None:
    stream = b"id: 1\nid: a\x00b\nretry: 12x\nretry: \xc2\xb2\ndata: x\n\n"
    assert decode(stream) == [SSEEvent(None, "x", "1", None)]


def test_field_names_are_case_sensitive() -> None:
    assert decode(b"Data: x\nDATA: y\n\n") == []


# --- line endings, splits, encodings -----------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"])
def test_line_endings(eol: bytes) -> None:
    stream = eol.join([b"event: e", b"data: 1", b"data: 2", b"", b"data: 3", b"", b""])
    expected = [SSEEvent("e", "1\n2"), SSEEvent(None, "3")]
    for chunks in every_split(stream):
        assert decode(*chunks) == expected, chunks


def test_mixed_line_endings() -> None:
    stream = b"data: a\r\ndata: b\rdata: c\n\r\n"
    for chunks in every_split(stream):
        assert decode(*chunks) == [SSEEvent(None, "a\nb\nc")], chunks


def test_cr_at_chunk_end_followed_by_lf_is_one_line_ending() -> None:
    # Were the LF read as its own blank line, "a" would be dispatched alone.
    assert decode(b"data: a\r", b"\ndata: b\r\n\r\n") == [SSEEvent(None, "a\nb")]


def test_multibyte_utf8_split_anywhere() -> None:
    stream = "data: héllo ✓ 😀\n\n".encode()
    for chunks in every_split(stream):
        assert decode(*chunks) == [SSEEvent(None, "héllo ✓ 😀")], chunks


def test_invalid_utf8_is_replaced() -> None:
    assert decode(b"data: a\xffb\n\n") == [SSEEvent(None, "a\ufffdb")]


def test_bom_at_stream_start_is_dropped_even_when_split() -> None:
    stream = b"\xef\xbb\xbfdata: x\n\n"
    for chunks in every_split(stream):
        assert decode(*chunks) == [SSEEvent(None, "x")], chunks


def test_bom_later_in_the_stream_is_data() -> None:
    assert decode(b"data: a\n\n\xef\xbb\xbfdata: b\n\n") == [SSEEvent(None, "a")]


def test_empty_feeds_are_harmless() -> None:
    assert decode(b"", b"data: x", b"", b"\n", b"", b"\n") == [SSEEvent(None, "x")]


def test_feed_returns_events_as_soon_as_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: one\n") == []
    assert decoder.feed(b"\ndata: tw") == [SSEEvent(None, "one")]
    assert decoder.feed(b"o\n\n") == [SSEEvent(None, "two")]
    assert decoder.close() == []


# --- end of input ---------------------------------------------------------------


def test_close_dispatches_an_event_missing_its_blank_line() -> None:
    assert decode(b"data: [DONE]\n") == [SSEEvent(None, "[DONE]")]


def test_close_reads_an_unterminated_last_line() -> None:
    assert decode(b"data: [DONE]") == [SSEEvent(None, "[DONE]")]


def test_close_with_nothing_pending() -> None:
    assert decode(b"data: x\n\n: comment") == [SSEEvent(None, "x")]


def test_decoder_is_reusable_after_close() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id: 1\nevent: e\ndata: partial")
    decoder.close()
    assert decoder.feed(b"\xef\xbb\xbfdata: fresh\n\n") == [SSEEvent(None, "fresh")]


# --- memory bounds --------------------------------------------------------------


def test_overlong_line_in_one_chunk_raises() -> None:
    decoder = SSEDecoder(max_line_bytes=16)
    with pytest.raises(SSEError) as info:
        decoder.feed(b"data: " + b"x" * 11 + b"\n\n")
    assert isinstance(info.value, UpstreamError)
    assert info.value.status == 502


def test_line_at_the_limit_is_accepted() -> None:
    assert decode(b"data: " + b"x" * 10 + b"\n\n", max_line_bytes=16) == [SSEEvent(None, "x" * 10)]


def test_overlong_unterminated_line_raises_before_buffering_it() -> None:
    decoder = SSEDecoder(max_line_bytes=64)
    for _ in range(6):
        decoder.feed(b"data: " + b"y" * 4)  # 60 bytes buffered, no line end yet
    with pytest.raises(SSEError):
        decoder.feed(b"y" * 8)


def test_overlong_line_split_in_many_chunks_raises() -> None:
    decoder = SSEDecoder(max_line_bytes=100)
    with pytest.raises(SSEError):
        for _ in range(200):
            decoder.feed(b"z")


def test_event_data_is_bounded_too() -> None:
    decoder = SSEDecoder(max_line_bytes=32)
    with pytest.raises(SSEError):
        for _ in range(10):
            decoder.feed(b"data: 0123456789\n")  # short lines, one growing event


def test_max_line_bytes_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SSEDecoder(0)


# --- encoder and [DONE] ---------------------------------------------------------


def test_encode_named_event() -> None:
    assert encode_event('{"type":"ping"}', "ping") == b'event: ping\ndata: {"type":"ping"}\n\n'


def test_encode_unnamed_event() -> None:
    assert encode_event("[DONE]") == b"data: [DONE]\n\n" == DONE_EVENT


def test_encode_multi_line_data() -> None:
    assert encode_event("a\nb\r\nc\rd", "x") == b"event: x\ndata: a\ndata: b\ndata: c\ndata: d\n\n"


def test_encode_empty_data_round_trips() -> None:
    assert encode_event("") == b"data: \n\n"
    assert decode(encode_event("")) == [SSEEvent(None, "")]


def test_encode_rejects_line_break_in_event_name() -> None:
    with pytest.raises(ValueError):
        encode_event("x", "bad\nname")


def test_is_done() -> None:
    assert is_done(SSEEvent(None, "[DONE]"))
    assert is_done(SSEEvent(None, "[DONE] "))
    assert not is_done(SSEEvent(None, '"[DONE]"'))
    assert not is_done(SSEEvent(None, "{}"))


# --- property: encode, concatenate, split anywhere, decode ----------------------

_names = st.none() | st.text(
    st.characters(codec="utf-8", exclude_characters="\r\n"), min_size=1, max_size=12
)
# Data may hold LF (several data lines); CR would come back as LF, so it is left out.
_data = st.text(st.characters(codec="utf-8", exclude_characters="\r"), max_size=40)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    events=st.lists(st.tuples(_data, _names), max_size=8),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
    eol=st.sampled_from(["\n", "\r\n", "\r"]),
    bom=st.booleans(),
)
def test_any_split_decodes_to_the_encoded_events(
    events: list[tuple[str, str | None]], cuts: list[int], eol: str, bom: bool
) -> None:
    stream = b"".join(encode_event(data, name) for data, name in events)
    # The encoder writes LF; the other line endings are equally valid input.
    stream = stream.replace(b"\n", eol.encode())
    if bom:
        stream = b"\xef\xbb\xbf" + stream
    points = sorted({cut % (len(stream) + 1) for cut in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert decode(*chunks) == [SSEEvent(name or None, data) for data, name in events]
