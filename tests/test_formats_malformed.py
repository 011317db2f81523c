"""Malformed input never escapes a codec as anything but the gateway's own errors.

Valid bodies from the format strategies get one value somewhere replaced by
arbitrary JSON; parsing (and rendering into every other format) must then
either succeed or raise ``InvalidRequest`` (requests) / ``UpstreamError``
(responses), never KeyError, TypeError, AttributeError, ...
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_formats_strategies import (
    anthropic_requests,
    anthropic_responses,
    chat_requests,
    chat_responses,
    completions_requests,
    completions_responses,
    json_value,
)

from llm_gateway.errors import InvalidRequest, UpstreamError
from llm_gateway.formats.registry import FORMATS

examples = settings(max_examples=150, deadline=None, derandomize=True, database=None)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*prefix, index)))
    return found


@st.composite
def mutated(draw: Any, bodies: st.SearchStrategy[dict[str, Any]]) -> Any:
    body = copy.deepcopy(draw(bodies))  # strategies may share sampled objects
    path = draw(st.sampled_from(_paths(body)))
    replacement = draw(json_value | st.sampled_from([{}, [], "", 0, -1, None, True, [{}]]))
    if not path:
        return replacement
    target = body
    for step in path[:-1]:
        target = target[step]
    if draw(st.booleans()) and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = replacement
    return body


REQUESTS = {
    "openai-chat": chat_requests(),
    "anthropic-messages": anthropic_requests(),
    "openai-completions": completions_requests(),
}
RESPONSES = {
    "openai-chat": chat_responses(),
    "anthropic-messages": anthropic_responses(),
    "openai-completions": completions_responses(),
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_malformed_requests_raise_invalid_request(name: str) -> None:
    @examples
    @given(mutated(REQUESTS[name]))
    def check(body: Any) -> None:
        try:
            unified = FORMATS[name].parse_request(body)
        except InvalidRequest as exc:
            assert exc.status == 400
            assert exc.message
            return
        for target in FORMATS.values():
            with contextlib.suppress(InvalidRequest):  # refusing to render is allowed
                target.render_request(unified)

    check()


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_malformed_responses_raise_upstream_error(name: str) -> None:
    @examples
    @given(mutated(RESPONSES[name]))
    def check(body: Any) -> None:
        try:
            unified = FORMATS[name].parse_response(body)
        except UpstreamError as exc:
            assert exc.status == 502
            return
        for target in FORMATS.values():
            target.render_response(unified, model="client-model")

    check()


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("body", [None, [], "text", 3, {"model": 1}, {"messages": "x"}])
def test_bodies_that_are_not_requests(name: str, body: object) -> None:
    with pytest.raises(InvalidRequest):
        FORMATS[name].parse_request(body)
    with pytest.raises(UpstreamError):
        FORMATS[name].parse_response(body)


def _chat_completion(**message: object) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}}],
    }


@pytest.mark.parametrize(
    "body",
    [
        _chat_completion(content=123),
        _chat_completion(content={"a": 1}),
        _chat_completion(content=[{"type": "image_url", "image_url": {"url": "x"}}]),
        _chat_completion(content=[{"type": "text"}]),
    ],
    ids=["number", "object", "image-part", "text-part-without-text"],
)
def test_a_malformed_answer_is_the_upstreams_fault_not_the_clients(body: object) -> None:
    # The same content readers serve requests (400) and answers (502).
    with pytest.raises(UpstreamError) as caught:
        FORMATS["openai-chat"].parse_response(body)
    assert caught.value.status == 502
    assert "choices[0].message.content" in caught.value.message
