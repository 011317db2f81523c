"""Reasoning conversion tables (policy) and the Anthropic thinking renderer."""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.formats import anthropic_messages as am
from llm_gateway.formats import openai_chat as oc
from llm_gateway.formats import policy


@pytest.mark.parametrize(
    ("model", "version"),
    [
        ("claude-3-5-sonnet-20241022", ("sonnet", 3, 5)),
        ("claude-3-haiku-20240307", ("haiku", 3, 0)),
        ("claude-sonnet-4-20250514", ("sonnet", 4, 0)),
        ("claude-opus-4-1-20250805", ("opus", 4, 1)),
        ("claude-haiku-4-5", ("haiku", 4, 5)),
        ("claude-sonnet-4-5@20250929", ("sonnet", 4, 5)),
        ("us.anthropic.claude-3-7-sonnet-20250219-v1:0", ("sonnet", 3, 7)),
        ("claude-opus-4-6", ("opus", 4, 6)),
        ("gpt-4o", None),
        ("claude-instant", None),
    ],
)
def test_claude_version(model: str, version: tuple[str | None, int, int] | None) -> None:
    assert policy.claude_version(model) == version


@pytest.mark.parametrize(
    ("model", "default"),
    [
        ("claude-3-haiku-20240307", 4096),
        ("claude-3-opus-latest", 4096),
        ("claude-3-5-haiku-20241022", 8192),
        ("claude-3-7-sonnet-20250219", 64000),
        ("claude-sonnet-4-20250514", 64000),
        ("claude-opus-4-20250514", 32000),
        ("claude-opus-4-1", 32000),
        ("claude-sonnet-4-5", 64000),
        ("claude-haiku-4-5-20251001", 64000),
        ("claude-opus-4-6", 128000),
        ("claude-sonnet-4-6", 128000),
        ("claude-haiku-4-6", 64000),
        ("claude-sonnet-5", 64000),
        ("my-alias", 4096),
        ("glm-4.6", 4096),
    ],
)
def test_default_max_tokens(model: str, default: int) -> None:
    assert policy.default_max_tokens(model) == default
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    assert am.render_request(oc.parse_request(body))["max_tokens"] == default


@pytest.mark.parametrize(
    ("effort", "max_tokens", "budget"),
    [
        ("minimal", 64000, 1024),
        ("low", 64000, 2048),
        ("medium", 64000, 8192),
        ("high", 64000, 16384),
        ("xhigh", 64000, 32768),
        ("high", 10000, 5000),  # the table value does not fit: half of max_tokens
        ("medium", 1500, 1024),  # half would be below the minimum
        ("low", 1024, None),  # no budget fits under max_tokens
    ],
)
def test_effort_to_budget(effort: str, max_tokens: int, budget: int | None) -> None:
    assert policy.effort_to_budget(effort, max_tokens) == budget
    if budget is not None:
        assert policy.MIN_THINKING_BUDGET <= budget < max_tokens


@pytest.mark.parametrize(
    ("budget", "effort"),
    [
        (1024, "low"),
        (2048, "low"),
        (2049, "medium"),
        (8192, "medium"),
        (10000, "high"),
        (60000, "high"),
    ],
)
def test_budget_to_effort(budget: int, effort: str) -> None:
    assert policy.budget_to_effort(budget) == effort


def chat(**fields: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "think"}], **fields}


@pytest.mark.parametrize(
    ("fields", "thinking", "output_config"),
    [
        (
            {"model": "claude-opus-4-6", "reasoning_effort": "minimal"},
            {"type": "adaptive"},
            {"effort": "low"},
        ),
        (
            {"model": "claude-opus-4-6", "reasoning_effort": "medium"},
            {"type": "adaptive"},
            {"effort": "medium"},
        ),
        (
            {"model": "claude-sonnet-4-6", "reasoning_effort": "xhigh"},
            {"type": "adaptive"},
            {"effort": "max"},
        ),
        (
            {"model": "claude-3-7-sonnet-latest", "reasoning_effort": "high"},
            {"type": "enabled", "budget_tokens": 16384},
            None,
        ),
        (
            {
                "model": "claude-sonnet-4-5",
                "reasoning_effort": "high",
                "max_completion_tokens": 3000,
            },
            {"type": "enabled", "budget_tokens": 1500},
            None,
        ),
        (
            {
                "model": "claude-sonnet-4-5",
                "reasoning_effort": "low",
                "max_completion_tokens": 1000,
            },
            None,
            None,
        ),
        (
            {"model": "some-alias", "reasoning_effort": "low"},
            {"type": "enabled", "budget_tokens": 2048},
            None,
        ),
    ],
)
def test_reasoning_effort_to_anthropic(
    fields: dict[str, Any], thinking: Any, output_config: Any
) -> None:
    out = am.render_request(oc.parse_request(chat(**fields)))
    assert out.get("thinking") == thinking
    assert out.get("output_config") == output_config


@pytest.mark.parametrize(
    ("thinking", "output_config", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, None, "low"),
        ({"type": "enabled", "budget_tokens": 4096}, None, "medium"),
        ({"type": "enabled", "budget_tokens": 31999}, None, "high"),
        ({"type": "adaptive"}, {"effort": "low"}, "low"),
        ({"type": "adaptive"}, {"effort": "high"}, "high"),
        ({"type": "adaptive"}, {"effort": "max"}, "xhigh"),
        (None, {"effort": "medium"}, "medium"),
        ({"type": "adaptive"}, None, None),
        ({"type": "disabled"}, None, None),
    ],
)
def test_anthropic_thinking_to_reasoning_effort(
    thinking: Any, output_config: Any, effort: str | None
) -> None:
    body: dict[str, Any] = {
        "model": "o3",
        "max_tokens": 40000,
        "messages": [{"role": "user", "content": "q"}],
    }
    if thinking is not None:
        body["thinking"] = thinking
    if output_config is not None:
        body["output_config"] = output_config
    assert oc.render_request(am.parse_request(body)).get("reasoning_effort") == effort


def test_anthropic_thinking_forms_are_kept_between_anthropic_bodies() -> None:
    body = {
        "model": "claude-opus-4-5",
        "max_tokens": 30000,
        "messages": [{"role": "user", "content": "q"}],
        "thinking": {"type": "enabled", "budget_tokens": 12345},
        "output_config": {"effort": "medium"},
    }
    assert am.render_request(am.parse_request(body)) == body
    disabled = {**body, "thinking": {"type": "disabled"}}
    assert am.render_request(am.parse_request(disabled)) == disabled
