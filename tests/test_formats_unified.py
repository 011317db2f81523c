"""The unified representation: immutable values, JSONValue semantics."""

from __future__ import annotations

import dataclasses

import pytest

from llm_gateway.formats.unified import (
    EMPTY_OBJECT,
    ChatRequest,
    JSONValue,
    Message,
    Role,
    StopReason,
    TextPart,
    Usage,
)


def test_json_value_is_compact_and_keeps_key_order() -> None:
    value = JSONValue.of({"b": 1, "a": [1.5, None, "é"]})
    assert value.text == '{"b":1,"a":[1.5,null,"é"]}'
    assert JSONValue.parse('{ "b" : 1, "a": [1.5, null, "\\u00e9"] }') == value
    assert value.is_object()
    assert not JSONValue.of([1]).is_object()
    assert EMPTY_OBJECT.value() == {}


def test_json_value_hands_out_copies() -> None:
    value = JSONValue.of({"list": [1]})
    copy = value.value()
    copy["list"].append(2)
    assert value.value() == {"list": [1]}


@pytest.mark.parametrize("bad", [float("nan"), {"x": float("inf")}, {1, 2}, object()])
def test_json_value_rejects_non_json(bad: object) -> None:
    with pytest.raises(ValueError):
        JSONValue.of(bad)


@pytest.mark.parametrize("bad", ["{", "NaN", "[1,]", "'x'"])
def test_json_value_parse_rejects_invalid_text(bad: str) -> None:
    with pytest.raises(ValueError):
        JSONValue.parse(bad)


def test_json_value_rejects_absurd_nesting() -> None:
    with pytest.raises(ValueError):
        JSONValue.parse("[" * 100_000 + "]" * 100_000)


def test_unified_values_are_frozen_and_slotted() -> None:
    req = ChatRequest(model="m", messages=(Message(Role.USER, (TextPart("hi"),)),))
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.model = "other"  # type: ignore[misc]
    assert not hasattr(req, "__dict__")
    assert hash(req) == hash(
        ChatRequest(model="m", messages=(Message(Role.USER, (TextPart("hi"),)),))
    )


def test_stop_reason_and_usage_contract() -> None:
    assert [r.value for r in StopReason] == [
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "tool_use",
        "refusal",
        "pause_turn",
    ]
    assert Usage() == Usage(0, 0, 0, 0, 0)
