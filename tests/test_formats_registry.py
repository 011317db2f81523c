"""The format registry: one entry per codec module, nothing else."""

from __future__ import annotations

import pytest

from llm_gateway.formats import (
    anthropic_messages,
    gemini_generate_content,
    openai_chat,
    openai_completions,
    openai_responses,
)
from llm_gateway.formats.registry import FORMATS, get_format


def test_registry_lists_each_codec_once() -> None:
    modules = {
        "openai-chat": openai_chat,
        "openai-completions": openai_completions,
        "anthropic-messages": anthropic_messages,
        "gemini-generate-content": gemini_generate_content,
        "openai-responses": openai_responses,
    }
    assert set(FORMATS) == set(modules)
    for name, fmt in FORMATS.items():
        module = modules[name]
        assert fmt.name == name == module.NAME
        for attr in (
            "parse_request",
            "render_request",
            "parse_response",
            "render_response",
            "render_error",
            "parse_error",
        ):
            assert getattr(fmt, attr) is getattr(module, attr)


def test_get_format() -> None:
    assert get_format("openai-chat") is FORMATS["openai-chat"]
    with pytest.raises(KeyError, match="anthropic-messages"):
        get_format("gemini")  # the format's name is gemini-generate-content
