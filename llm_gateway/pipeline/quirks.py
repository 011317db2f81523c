"""Per-account differences of OpenAI-format servers, applied as data.

Some OpenAI-compatible servers reject the ``developer`` role or
``max_completion_tokens``; an account says so in its ``quirks`` settings and
the outgoing body is adjusted here. Streams: OpenAI-format upstreams report
usage only when ``stream_options.include_usage`` is set, so the gateway asks
for it (the stream pipe hides the extra chunk from clients that did not).
An account's ``max_output_tokens`` caps what a request asks for (Claude Code
asks for 32k-64k tokens, which a local model refuses), whatever the format.
Every function returns its input object unchanged when there is nothing to do,
so a passthrough body stays byte-identical.
"""

from __future__ import annotations

from typing import Any

from ..config.accounts import Quirks

__all__ = ["adjust_outgoing", "ask_for_stream_usage", "cap_output_tokens"]

#: the fields through which a request in any supported format asks for output tokens
_OUTPUT_LIMITS = ("max_tokens", "max_completion_tokens", "max_output_tokens")

_OPENAI_FORMATS = frozenset({"openai-chat", "openai-completions"})


def ask_for_stream_usage(fmt: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """``body`` asking for streamed usage; True when the gateway added the request."""
    if fmt not in _OPENAI_FORMATS:
        return body, False
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        return body, False
    merged = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return {**body, "stream_options": merged}, True


def adjust_outgoing(fmt: str, body: dict[str, Any], quirks: Quirks) -> dict[str, Any]:
    if fmt != "openai-chat":
        return body
    if not quirks.max_completion_tokens and "max_completion_tokens" in body:
        limit = body["max_completion_tokens"]
        body = {k: v for k, v in body.items() if k != "max_completion_tokens"}
        body.setdefault("max_tokens", limit)
    if not quirks.developer_role:
        messages = body.get("messages")
        if isinstance(messages, list) and any(
            isinstance(m, dict) and m.get("role") == "developer" for m in messages
        ):
            body = {
                **body,
                "messages": [
                    {**m, "role": "system"}
                    if isinstance(m, dict) and m.get("role") == "developer"
                    else m
                    for m in messages
                ],
            }
    return body


def cap_output_tokens(body: dict[str, Any], cap: int) -> dict[str, Any]:
    """``body`` asking for at most ``cap`` output tokens (and a thinking budget below it)."""
    changes: dict[str, Any] = {}
    for name in _OUTPUT_LIMITS:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > cap:
            changes[name] = cap
    thinking = body.get("thinking")
    if changes and isinstance(thinking, dict):
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int) and budget >= cap:
            changes["thinking"] = {**thinking, "budget_tokens": max(1, cap - 1)}
    return {**body, **changes} if changes else body
