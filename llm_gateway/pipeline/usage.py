"""Token usage read from upstream answers, for logs and per-key token limits.

Non-streaming bodies are read by format; streams report usage through their
pipe. ``billable`` is what a tokens-per-minute limit counts: every input token
(fresh, cache read, cache write) plus every output token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..formats.unified import Usage
from ..streaming.anthropic_messages import usage_from_anthropic
from ..streaming.openai_chat import usage_from_openai
from ..streaming.openai_responses import usage_from_responses

__all__ = ["billable", "usage_of_body"]


def _anthropic(body: dict[str, Any]) -> Usage | None:
    raw = body.get("usage")
    return usage_from_anthropic(raw) if isinstance(raw, dict) else None


def _openai(body: dict[str, Any]) -> Usage | None:
    return usage_from_openai(body.get("usage"))


def _responses(body: dict[str, Any]) -> Usage | None:
    raw = body.get("usage")
    return usage_from_responses(raw) if isinstance(raw, dict) else None


_READERS: dict[str, Callable[[dict[str, Any]], Usage | None]] = {
    "anthropic-messages": _anthropic,
    "openai-chat": _openai,
    "openai-completions": _openai,
    "openai-responses": _responses,
}


def usage_of_body(fmt: str, body: dict[str, Any]) -> Usage | None:
    reader = _READERS.get(fmt)
    return reader(body) if reader is not None else None


def billable(usage: Usage) -> int:
    return (
        usage.input_tokens
        + usage.cache_read_tokens
        + usage.cache_write_tokens
        + usage.output_tokens
    )
