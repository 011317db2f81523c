"""``formats.upstream_fit``: what an upstream refuses of what the gateway carried for
another provider, fitted without touching the body it was given."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.formats.gemini_carry import make_call_id, signature_for_client
from llm_gateway.formats.ids import short_call_id
from llm_gateway.formats.registry import FORMATS
from llm_gateway.formats.upstream_fit import (
    OPENAI_CHAT_CALL_ID_LIMIT,
    RESPONSES_CALL_ID_LIMIT,
    fit_anthropic,
    fit_openai_chat,
    fit_responses,
)

LONG = make_call_id("get_weather", "", "CiQBcsjafGj0c2lnbmF0dXJlL2Zvcit0ZXN0cz09", "1a2b3c4d")
LONG_2 = make_call_id("get_weather", "", "", "5e6f7a8b")
SIGNED = signature_for_client("CiQBcsjafGj0c2lnbmF0dXJl")


def chat_body(*ids: str) -> dict[str, Any]:
    return {
        "model": "gpt-4o",
        "messages": [
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": i, "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    for i in ids
                ],
            },
            *({"role": "tool", "tool_call_id": i, "content": "sunny"} for i in ids),
        ],
    }


# --- short ids ----------------------------------------------------------------------


@given(st.text(min_size=1, max_size=300), st.integers(min_value=24, max_value=80))
def test_short_ids_fit_the_limit_and_are_deterministic(call_id: str, limit: int) -> None:
    short = short_call_id(call_id, limit)
    assert len(short) <= limit
    assert short == short_call_id(call_id, limit)
    if len(call_id) <= limit:
        assert short == call_id
    else:
        assert short.startswith("call_")
        assert all(c.isalnum() or c in "_-" for c in short)


def test_different_long_ids_get_different_short_ones() -> None:
    shorts = {short_call_id(LONG + str(n), 40) for n in range(1000)}
    assert len(shorts) == 1000


# --- OpenAI chat ----------------------------------------------------------------------


def test_over_long_chat_ids_are_shortened_in_calls_and_results_alike() -> None:
    body = chat_body(LONG, LONG_2, "call_short")
    before = copy.deepcopy(body)
    fitted = fit_openai_chat(body)
    assert body == before  # the client's body is never changed
    calls = fitted["messages"][1]["tool_calls"]
    ids = [c["id"] for c in calls]
    assert all(len(i) <= OPENAI_CHAT_CALL_ID_LIMIT for i in ids)
    assert ids[2] == "call_short" and len(set(ids)) == 3
    assert [m["tool_call_id"] for m in fitted["messages"][2:]] == ids
    assert calls[0]["function"] == {"name": "f", "arguments": "{}"}


def test_chat_ids_that_fit_leave_the_same_body() -> None:
    body = chat_body("call_abc", "x" * OPENAI_CHAT_CALL_ID_LIMIT)
    assert fit_openai_chat(body) is body
    assert fit_openai_chat({"model": "m"}) == {"model": "m"}


# --- Responses -------------------------------------------------------------------------


def test_over_long_responses_call_ids_are_shortened_in_calls_and_outputs() -> None:
    body = {
        "model": "gpt-5",
        "input": [
            {"type": "message", "role": "user", "content": "Weather?"},
            {"type": "function_call", "call_id": LONG, "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": LONG, "output": "sunny"},
            {"type": "function_call", "call_id": "call_ok", "name": "f", "arguments": "{}"},
        ],
    }
    before = copy.deepcopy(body)
    fitted = fit_responses(body)
    assert body == before
    call, output, kept = fitted["input"][1:]
    assert len(call["call_id"]) <= RESPONSES_CALL_ID_LIMIT
    assert output["call_id"] == call["call_id"] and kept["call_id"] == "call_ok"
    assert fit_responses(fitted) is fitted


# --- Anthropic -----------------------------------------------------------------------


def anthropic_body(thinking: dict[str, Any] | None, first: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 2048,
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": first},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}],
            },
        ],
    }
    if thinking is not None:
        body["thinking"] = thinking
    return body


USE = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
GEMINI_THINKING = {"type": "thinking", "thinking": "Look.", "signature": SIGNED}
OWN_THINKING = {"type": "thinking", "thinking": "Look.", "signature": "EqQBCkYIARgCKkB"}


def test_gemini_signed_thinking_is_dropped_and_thinking_left_off_for_its_tool_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = anthropic_body({"type": "enabled", "budget_tokens": 1024}, [GEMINI_THINKING, USE])
    before = copy.deepcopy(body)
    with caplog.at_level(logging.DEBUG, logger="llm_gateway.formats"):
        fitted = fit_anthropic(body)
    assert body == before
    assert fitted["messages"][1]["content"] == [USE]
    assert "thinking" not in fitted
    assert "signed for another provider" in caplog.text


def test_thinking_stays_on_when_the_last_tool_calls_keep_their_own_thinking() -> None:
    body = anthropic_body({"type": "adaptive"}, [GEMINI_THINKING, {"type": "text", "text": "Hi"}])
    body["messages"] += [
        {"role": "assistant", "content": [OWN_THINKING, USE]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}],
        },
    ]
    fitted = fit_anthropic(body)
    assert fitted["thinking"] == {"type": "adaptive"}
    assert fitted["messages"][1]["content"] == [{"type": "text", "text": "Hi"}]
    assert fitted["messages"][3]["content"] == [OWN_THINKING, USE]


def test_an_assistant_message_of_gemini_thinking_alone_is_left_out() -> None:
    body = anthropic_body(None, [GEMINI_THINKING])
    fitted = fit_anthropic(body)
    assert [m["role"] for m in fitted["messages"]] == ["user", "user"]


def test_anthropic_bodies_without_foreign_signatures_are_the_same_body() -> None:
    body = anthropic_body({"type": "enabled", "budget_tokens": 1024}, [OWN_THINKING, USE])
    assert fit_anthropic(body) is body


# --- the registry ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "raw", "applies"),
    [
        ("openai-chat", b'{"tool_calls":[{"id": "' + b"c" * 41 + b'"}]}', True),
        ("openai-chat", b'{"tool_call_id":"' + b"c" * 41 + b'"}', True),
        ("openai-chat", b'{"tool_calls":[{"id":"' + b"c" * 40 + b'"}]}', False),
        ("openai-chat", b'{"messages":[{"role":"user"}]}', False),
        ("anthropic-messages", b'{"signature": "gemini:abc"}', True),
        ("anthropic-messages", b'{"signature":"EqQB","text":"gemini:"}', False),
        ("openai-responses", b'{"call_id":"' + b"c" * 65 + b'"}', True),
        ("openai-responses", b'{"call_id":"' + b"c" * 64 + b'"}', False),
        ("gemini-generate-content", b'{"call_id":"' + b"c" * 65 + b'"}', False),
    ],
)
def test_each_format_declares_when_a_passthrough_body_needs_fitting(
    name: str, raw: bytes, applies: bool
) -> None:
    assert FORMATS[name].fit_upstream.applies(raw) is applies
