"""``pipeline.call``: what a client asked for, including the Gemini API's path and query."""

from __future__ import annotations

import pytest

from llm_gateway.errors import InvalidRequest
from llm_gateway.pipeline.call import consume_query, parse_call
from llm_gateway.pipeline.endpoints import ENDPOINTS, MODEL_ENDPOINTS
from llm_gateway.server.messages import Request

GENERATE = MODEL_ENDPOINTS["/v1beta/models/{model}:generateContent"]
STREAM = MODEL_ENDPOINTS["/v1beta/models/{model}:streamGenerateContent"]
COUNT = MODEL_ENDPOINTS["/v1beta/models/{model}:countTokens"]
BODY = b'{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}'


def test_the_model_comes_from_the_path_and_the_body_is_left_as_sent() -> None:
    path = "/v1beta/models/models%2Fgemini-2.5-flash:generateContent"
    call = parse_call(GENERATE, BODY, {}, path=path)
    assert call.model == "gemini-2.5-flash"
    assert "model" not in call.body
    assert (call.stream, call.json_array) == (False, False)


def test_the_path_decides_the_stream_and_the_query_its_framing() -> None:
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    sse = parse_call(STREAM, BODY, {}, path=path, query="alt=sse")
    array = parse_call(STREAM, BODY, {}, path=path, query="")
    assert (sse.stream, sse.json_array) == (True, False)
    assert (array.stream, array.json_array) == (True, True)
    counted = parse_call(COUNT, BODY, {}, path="/v1beta/models/g:countTokens", query="alt=sse")
    assert (counted.stream, counted.json_array) == (False, False)


def test_a_gemini_body_is_checked_as_if_it_named_the_model() -> None:
    path = "/v1beta/models/g:generateContent"
    with pytest.raises(InvalidRequest) as caught:
        parse_call(GENERATE, b'{"contents": []}', {}, path=path)
    assert caught.value.param == "contents"
    with pytest.raises(InvalidRequest) as caught:
        parse_call(GENERATE, b'{"contents": [{"role": "system", "parts": []}]}', {}, path=path)
    assert caught.value.param == "contents[0].role"


def test_fixed_paths_still_read_model_and_stream_from_the_body() -> None:
    body = b'{"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "x"}]}'
    call = parse_call(ENDPOINTS["/v1/chat/completions"], body, {}, path="/v1/chat/completions")
    assert (call.model, call.stream, call.json_array) == ("gpt-4o", True, False)


def request(query: str, headers: list[tuple[str, str]] | None = None) -> Request:
    return Request("POST", "/v1beta/models/g:generateContent", query, headers or [], b"", "r")


def test_a_key_in_the_query_becomes_a_header_and_leaves_the_query() -> None:
    r = request("alt=sse&key=gw-secret")
    consume_query(r, "key")
    assert r.query == "alt=sse"
    assert r.header("x-goog-api-key") == "gw-secret"
    assert "gw-secret" not in repr(r.query)


def test_a_header_key_wins_and_the_query_key_is_still_removed() -> None:
    r = request("key=from-query", [("x-goog-api-key", "from-header")])
    consume_query(r, "key")
    assert r.query == ""
    assert [v for k, v in r.headers if k == "x-goog-api-key"] == ["from-header"]


def test_endpoints_without_a_query_key_leave_the_query_alone() -> None:
    r = request("key=k&beta=true")
    consume_query(r, None)
    assert r.query == "key=k&beta=true"
    assert r.header("x-goog-api-key") is None
