"""Response and tool-call ids in the client's format.

Theory of operation: a client sees ids in its own format's style (OpenAI
``chatcmpl-...``, Anthropic ``msg_...``). When the upstream gave an id we keep
its distinctive part, so logs on both sides can be matched; otherwise a random
one is made. Tool-call ids are never rewritten (the client sends them back
and they must match), only made up when an upstream omitted one.
"""

from __future__ import annotations

import uuid

__all__ = ["new_tool_call_id", "response_id"]

_KNOWN_PREFIXES = ("chatcmpl-", "cmpl-", "msg_")


def response_id(prefix: str, upstream_id: str | None) -> str:
    """``prefix`` followed by the upstream id without its own known prefix, or random."""
    if not upstream_id:
        return prefix + uuid.uuid4().hex
    if upstream_id.startswith(prefix):
        return upstream_id
    for known in _KNOWN_PREFIXES:
        if upstream_id.startswith(known) and len(upstream_id) > len(known):
            return prefix + upstream_id[len(known) :]
    return prefix + upstream_id


def new_tool_call_id() -> str:
    """An id for a tool call whose upstream did not give one."""
    return "call_" + uuid.uuid4().hex[:24]
