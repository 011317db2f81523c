"""Unified stream events: what every parser yields and every renderer consumes.

Theory of operation: a stream is a sequence of small frozen events. A legal
sequence, as parsers produce it, is

* ``MessageStart`` first, exactly once (a ``StreamError`` may come instead);
* then content blocks. Each block has an ``index``, unique in the stream and
  assigned in the order blocks first appear (0, 1, 2, ...). A text or thinking
  block starts with its first delta; a tool call starts with ``ToolCallStart``;
  a redacted-thinking block is one ``RedactedThinking``. ``BlockStop(index)``
  ends a block; nothing refers to that index afterwards. Tool calls may stay
  open while other blocks start and their deltas may interleave (OpenAI's
  parallel tool calls can); a renderer whose format cannot interleave
  (Anthropic) serialises them. Text, thinking and redacted-thinking blocks
  never overlap one another: one is stopped before the next starts (OpenAI
  has one content string, so two text blocks could not be told apart);
* then ``MessageDelta`` events (stop reason, and usage, which may come in a
  later ``MessageDelta`` than the stop reason: OpenAI sends usage after its
  finish chunk), then ``MessageStop``.
* ``StreamError`` may replace anything after ``MessageStart`` and ends the
  stream: nothing follows it.

Deltas carry only the new piece: text, thinking text and tool arguments are
concatenated; a ``SignatureDelta`` replaces the block's signature (as the
Anthropic SDK does). ``MessageDelta.usage``, when present, is the complete
cumulative usage so far and replaces any earlier figure (``MessageStart.usage``
included). A stop reason of ``None`` leaves the previous one in place.

Empty pieces are never emitted, so a text block never exists without text.
``StreamError.kind`` is one of the neutral kinds of ``llm_gateway.errors``
(``api_error``, ``overloaded_error``, ``rate_limit_error``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from llm_gateway.formats.unified import StopReason, Usage

__all__ = [
    "BlockStop",
    "MessageDelta",
    "MessageStart",
    "MessageStop",
    "RedactedThinking",
    "SignatureDelta",
    "StreamError",
    "TextDelta",
    "ThinkingDelta",
    "ToolArgsDelta",
    "ToolCallStart",
    "UnifiedEvent",
]


@dataclass(frozen=True, slots=True)
class MessageStart:
    """The upstream's message id and model (either may be unknown), initial usage."""

    id: str | None
    model: str | None
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class SignatureDelta:
    """The opaque signature of a thinking block (replaces, not appends)."""

    index: int
    signature: str


@dataclass(frozen=True, slots=True)
class RedactedThinking:
    """A whole redacted-thinking block (Anthropic); ``BlockStop`` still follows."""

    index: int
    data: str


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    index: int
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolArgsDelta:
    """A piece of the tool call's arguments, JSON text split anywhere."""

    index: int
    partial_json: str


@dataclass(frozen=True, slots=True)
class BlockStop:
    index: int


@dataclass(frozen=True, slots=True)
class MessageDelta:
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class MessageStop:
    """The stream completed normally."""


@dataclass(frozen=True, slots=True)
class StreamError:
    """The stream failed (upstream error event, malformed data, early end)."""

    kind: str
    message: str


UnifiedEvent: TypeAlias = (
    MessageStart
    | TextDelta
    | ThinkingDelta
    | SignatureDelta
    | RedactedThinking
    | ToolCallStart
    | ToolArgsDelta
    | BlockStop
    | MessageDelta
    | MessageStop
    | StreamError
)
