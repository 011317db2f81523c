"""``replay.events_of``: a whole response as a stream, checked against ``accumulate``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from test_formats_strategies import anthropic_responses, chat_responses

from llm_gateway.formats.registry import FORMATS
from llm_gateway.formats.unified import ChatResponse, TextPart
from llm_gateway.streaming.accumulate import accumulate
from llm_gateway.streaming.events import TextDelta
from llm_gateway.streaming.registry import STREAM_FORMATS
from llm_gateway.streaming.replay import events_of
from llm_gateway.streaming.sse import SSEDecoder

examples = settings(max_examples=150, deadline=None, derandomize=True, database=None)


def _as_a_stream_says_it(response: ChatResponse) -> ChatResponse:
    """What a stream can carry: no empty text blocks, no creation time, and a stop
    sequence only beside a stop reason (the one delta carries both)."""
    parts = tuple(p for p in response.parts if not (isinstance(p, TextPart) and not p.text))
    sequence = response.stop_sequence if response.stop_reason is not None else None
    return replace(response, parts=parts, created=0, stop_sequence=sequence)


@pytest.mark.parametrize(
    ("name", "responses"),
    [("openai-chat", chat_responses()), ("anthropic-messages", anthropic_responses())],
)
def test_replayed_events_accumulate_to_the_same_response(name: str, responses: Any) -> None:
    @examples
    @given(responses)
    def check(body: Any) -> None:
        response = FORMATS[name].parse_response(body)
        assert accumulate(events_of(response)) == _as_a_stream_says_it(response)

    check()


@pytest.mark.parametrize("client", sorted(STREAM_FORMATS))
def test_a_replayed_answer_renders_as_a_whole_client_stream(client: str) -> None:
    response = ChatResponse("msg_1", "m", (TextPart("Hello"), TextPart(" there")))
    events = events_of(response)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello", " there"]
    renderer = STREAM_FORMATS[client].renderer_factory(
        model="client", include_usage=True, created=1
    )
    rendered = b"".join(renderer.feed(e) for e in events) + renderer.finish()
    parser = STREAM_FORMATS[client].parser_factory()
    back = [u for e in SSEDecoder().feed(rendered) for u in parser.feed(e)] + parser.finish()
    assert "".join(p.text for p in accumulate(back).parts if isinstance(p, TextPart)) == (
        "Hello there"
    )
