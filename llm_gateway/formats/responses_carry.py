"""What the Responses format carries through the unified form between turns.

Theory of operation: the unified form knows plain function tools only, and
a thinking block's signature is one opaque string. The Responses API has
more, and the gateway keeps no state, so the codec encodes the difference
into fields every upstream returns unchanged:

* tool names: a function ``f`` inside a ``namespace`` tool ``ns`` becomes the
  function ``ns--f``; a ``custom`` tool ``c`` (free-form text input) becomes
  the function ``c--custom`` taking one string argument, ``input``. The
  upstream calls these names, and the codec turns each call back into a
  ``function_call`` (with its ``namespace``) or a ``custom_tool_call``. A
  Responses request whose own tool or namespace names contain ``--`` is
  refused: they could not be told apart on the way back.
* reasoning: a thinking block's signature (Anthropic's, or a Gemini
  ``gemini:`` one) travels in the reasoning item's ``encrypted_content`` as
  ``llmgw-thinking:`` + signature, a redacted-thinking block as
  ``llmgw-redacted:`` + data; the next request restores them. Encrypted
  content without either prefix is OpenAI's own and means nothing elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CUSTOM_INPUT",
    "SEPARATOR",
    "ToolName",
    "encrypted_for_redacted",
    "encrypted_for_signature",
    "flat_name",
    "read_encrypted",
    "read_name",
]

SEPARATOR = "--"
_CUSTOM_SUFFIX = SEPARATOR + "custom"
#: the one argument of a custom tool seen as a function
CUSTOM_INPUT = "input"
_THINKING = "llmgw-thinking:"
_REDACTED = "llmgw-redacted:"


@dataclass(frozen=True, slots=True)
class ToolName:
    """A Responses tool's identity: its name, namespace ("" if none), and kind."""

    name: str
    namespace: str = ""
    custom: bool = False


def flat_name(tool: ToolName) -> str:
    """The plain function name ``tool`` gets in the unified form."""
    prefix = tool.namespace + SEPARATOR if tool.namespace else ""
    return prefix + tool.name + (_CUSTOM_SUFFIX if tool.custom else "")


def read_name(flat: str) -> ToolName:
    """The Responses identity behind a unified function name (the inverse of ``flat_name``)."""
    custom = flat.endswith(_CUSTOM_SUFFIX) and len(flat) > len(_CUSTOM_SUFFIX)
    rest = flat[: -len(_CUSTOM_SUFFIX)] if custom else flat
    namespace, sep, name = rest.partition(SEPARATOR)
    if sep and namespace and name:
        return ToolName(name, namespace, custom)
    return ToolName(rest, "", custom)


def encrypted_for_signature(signature: str) -> str:
    return _THINKING + signature


def encrypted_for_redacted(data: str) -> str:
    return _REDACTED + data


def read_encrypted(encrypted: str) -> tuple[str, str] | None:
    """``("thinking", signature)`` or ``("redacted", data)`` carried in ``encrypted``;
    None for encrypted content the gateway did not make (OpenAI's own)."""
    if encrypted.startswith(_THINKING):
        return "thinking", encrypted[len(_THINKING) :]
    if encrypted.startswith(_REDACTED):
        return "redacted", encrypted[len(_REDACTED) :]
    return None
