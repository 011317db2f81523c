"""Legacy completions codec."""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.errors import InvalidRequest, UpstreamError
from llm_gateway.formats import anthropic_messages as am
from llm_gateway.formats import openai_completions as cp
from llm_gateway.formats.unified import (
    ChatResponse,
    Message,
    Role,
    StopReason,
    TextPart,
    ThinkingPart,
    ToolUsePart,
    Usage,
)


def completion(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test", **fields}


def test_prompt_becomes_one_user_message() -> None:
    req = cp.parse_request(completion(prompt=""))
    assert req.messages == (Message(Role.USER, (TextPart(""),)),)
    assert req.max_tokens is None  # the legacy default of 16 is not applied


def test_legacy_default_max_tokens_is_not_applied() -> None:
    out = am.render_request(cp.parse_request(completion(model="claude-3-5-haiku-latest")))
    assert out["max_tokens"] == 8192


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m"}, "prompt"),
        (completion(prompt=5), "prompt"),
        (completion(prompt={"text": "x"}), "prompt"),
        (completion(max_tokens=0), "max_tokens"),
        (completion(echo="yes"), "echo"),
        ({"prompt": "x"}, "model"),
    ],
)
def test_invalid_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        cp.parse_request(body)
    assert caught.value.param == param


def test_render_response() -> None:
    resp = ChatResponse(
        "msg_1",
        "claude",
        (ThinkingPart("t", "s"), TextPart("Hello"), TextPart(" world"), ToolUsePart("x", "f")),
        StopReason.MAX_TOKENS,
        usage=Usage(input_tokens=3, output_tokens=2, cache_read_tokens=1),
        created=1700000000,
    )
    assert cp.render_response(resp, model="davinci-alias") == {
        "id": "cmpl-1",  # an Anthropic id in the completions style
        "object": "text_completion",
        "created": 1700000000,
        "model": "davinci-alias",
        "choices": [
            {"text": "Hello world", "index": 0, "logprobs": None, "finish_reason": "length"}
        ],
        "usage": {
            "prompt_tokens": 4,
            "completion_tokens": 2,
            "total_tokens": 6,
            "prompt_tokens_details": {"cached_tokens": 1},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }


def test_parse_response_errors() -> None:
    with pytest.raises(UpstreamError) as caught:
        cp.parse_response({"id": "c", "choices": []})
    assert caught.value.param == "choices"
    with pytest.raises(UpstreamError) as caught:
        cp.parse_response({"id": "c", "choices": [{"text": 5}]})
    assert caught.value.param == "choices[0].text"
