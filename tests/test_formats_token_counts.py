"""The upstream counters' request bodies and the counts read from their answers."""

from __future__ import annotations

from llm_gateway.formats.token_counts import (
    anthropic_count_request,
    gemini_count_request,
    openai_input_tokens_request,
    read_anthropic_count,
    read_gemini_count,
    read_openai_input_tokens,
)


def test_anthropic_keeps_only_what_count_tokens_takes() -> None:
    body = {
        "model": "claude-x",
        "max_tokens": 10,
        "stream": True,
        "temperature": 0.2,
        "system": "s",
        "messages": [],
        "tools": [],
        "thinking": {"type": "enabled", "budget_tokens": 2000},
    }
    assert anthropic_count_request(body, "claude-x") == {
        "model": "claude-x",
        "system": "s",
        "messages": [],
        "tools": [],
        "thinking": {"type": "enabled", "budget_tokens": 2000},
    }


def test_gemini_wraps_the_whole_request_with_the_model_named() -> None:
    body = {"contents": [], "systemInstruction": {"parts": [{"text": "s"}]}, "tools": []}
    assert gemini_count_request(body, "gemini-2.5-pro") == {
        "generateContentRequest": {"model": "models/gemini-2.5-pro", **body}
    }
    assert gemini_count_request(body, "models/x")["generateContentRequest"]["model"] == "models/x"


def test_openai_counter_keeps_only_what_input_tokens_takes() -> None:
    body = {
        "model": "alias",
        "instructions": "rules",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "look"}]}],
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        "tool_choice": {"type": "function", "name": "f"},
        "reasoning": {"effort": "low"},
        "text": {"format": {"type": "json_object"}},
        "max_output_tokens": 100,
        "stream": True,
        "store": False,
        "temperature": 0.2,
    }
    assert openai_input_tokens_request(body, "gpt-4o-2024") == {
        "model": "gpt-4o-2024",
        "instructions": "rules",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "look"}]}],
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        "tool_choice": {"type": "function", "name": "f"},
        "reasoning": {"effort": "low"},
        "text": {"format": {"type": "json_object"}},
    }


def test_counts_are_read_only_when_they_are_counts() -> None:
    assert read_anthropic_count({"input_tokens": 14}) == 14
    assert read_gemini_count({"totalTokens": 10, "promptTokensDetails": []}) == 10
    assert read_openai_input_tokens({"object": "response.input_tokens", "input_tokens": 3}) == 3
    for wrong in ({}, {"input_tokens": "3"}, {"input_tokens": -1}, {"input_tokens": True}, []):
        assert read_anthropic_count(wrong) is None
        assert read_openai_input_tokens(wrong) is None
    assert read_gemini_count({"totalTokens": None}) is None
