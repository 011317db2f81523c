"""The request shapes each format declares, checked without sockets."""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.errors import InvalidRequest
from llm_gateway.formats.registry import FORMATS
from llm_gateway.formats.validate import check_request

CHAT, COMPLETIONS, MESSAGES = (
    FORMATS[name].request_shape
    for name in ("openai-chat", "openai-completions", "anthropic-messages")
)
HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("shape", "body"),
    [
        (CHAT, {"model": "m", "messages": HI}),
        (CHAT, {"model": "m", "messages": HI, "max_tokens": None, "tools": None}),
        (CHAT, {"model": "m", "messages": [{"role": "developer", "content": "x"}, *HI]}),
        (CHAT, {"model": "m", "messages": HI, "stream": True, "max_completion_tokens": 5}),
        (COMPLETIONS, {"model": "m", "prompt": "hi"}),
        (COMPLETIONS, {"model": "m", "prompt": ["a", "b"]}),
        (COMPLETIONS, {"model": "m", "prompt": [1, 2, 3]}),
        (COMPLETIONS, {"model": "m", "prompt": [[1, 2], [3]]}),
        (MESSAGES, {"model": "m", "messages": HI, "max_tokens": 1}),
        (MESSAGES, {"model": "m", "messages": HI, "max_tokens": 8, "tools": []}),
    ],
)
def test_well_formed_requests_pass(shape: Any, body: dict[str, Any]) -> None:
    check_request(shape, body)


@pytest.mark.parametrize(
    ("shape", "body", "param"),
    [
        (CHAT, {"messages": HI}, "model"),
        (CHAT, {"model": "m", "messages": HI, "stream": None}, "stream"),
        (CHAT, {"model": "m", "messages": [HI[0], 3]}, "messages[1]"),
        (CHAT, {"model": "m", "messages": [{"content": "no role"}]}, "messages[0].role"),
        (CHAT, {"model": "m", "messages": HI, "max_tokens": True}, "max_tokens"),
        (COMPLETIONS, {"model": "m", "prompt": [1, "a"]}, "prompt"),
        (COMPLETIONS, {"model": "m", "prompt": [[1, "a"]]}, "prompt"),
        (MESSAGES, {"model": "m", "messages": HI}, "max_tokens"),
        (MESSAGES, {"model": "m", "messages": HI, "max_tokens": 0}, "max_tokens"),
        (
            MESSAGES,
            {"model": "m", "messages": [{"role": "tool"}], "max_tokens": 1},
            "messages[0].role",
        ),
    ],
)
def test_each_fault_names_its_field(shape: Any, body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_request(shape, body)
    assert caught.value.param == param
    assert f"'{param}'" in caught.value.message


def test_counting_tokens_needs_no_max_tokens() -> None:
    check_request(MESSAGES, {"model": "m", "messages": HI}, counting=True)
