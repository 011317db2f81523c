"""The Claude Code identity line as the first system block of a Messages request.

Theory of operation: Claude Code subscription (OAuth) tokens are accepted for
requests whose first system block is exactly the Claude Code identity line.
``apply_claude_code_identity`` makes that so without touching the rest:

* no ``system`` (or an empty one): ``system`` becomes ``[identity]``;
* a string: it becomes a list of text blocks, ``[identity, the string]``,
  unless the string *is* the identity line;
* a list: the identity block is put in front, unless the first block is a
  text block that already says it;
* anything else is left for the upstream to reject.

Comparison ignores surrounding whitespace. The input is never modified; when
nothing needs to change the very same object is returned (callers use that
to keep a passthrough body byte-for-byte). Pure.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CLAUDE_CODE_IDENTITY", "apply_claude_code_identity"]

CLAUDE_CODE_IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."


def _identity_block() -> dict[str, Any]:
    return {"type": "text", "text": CLAUDE_CODE_IDENTITY}


def _is_identity(block: object) -> bool:
    if isinstance(block, str):
        return block.strip() == CLAUDE_CODE_IDENTITY
    return (
        isinstance(block, dict)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
        and block["text"].strip() == CLAUDE_CODE_IDENTITY
    )


def apply_claude_code_identity(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with the identity line as its first system block (same object if already so)."""
    system = body.get("system")
    if system is None or system == "" or system == []:
        blocks: list[Any] = [_identity_block()]
    elif isinstance(system, str):
        if _is_identity(system):
            return body
        blocks = [_identity_block(), {"type": "text", "text": system}]
    elif isinstance(system, list):
        if _is_identity(system[0]):
            return body
        blocks = [_identity_block(), *system]
    else:
        return body
    return {**body, "system": blocks}
