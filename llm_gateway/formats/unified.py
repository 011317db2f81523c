"""The unified representation every format converts through.

Theory of operation: a format's codec parses its JSON into these frozen
dataclasses and renders them back; no codec ever converts directly into
another format. Nothing in here knows any provider's JSON.

Conventions:

* Everything is a frozen, slotted dataclass; sequences are tuples.
* A value that is genuinely opaque JSON (a tool's JSON schema, a tool call's
  input, OpenAI ``logit_bias``) is a ``JSONValue``: an immutable wrapper that
  holds the value's compact JSON text, key order preserved. Two JSONValues are
  equal when their texts are equal.
* ``None`` means "the client did not say"; renderers then omit the field so the
  upstream's own default applies. (Anthropic's required ``max_tokens`` is the
  one exception, filled in by the Anthropic codec from a documented table.)
* Messages keep their order. System text given as a top-level field (Anthropic
  ``system``) lives in ``ChatRequest.system``; system/developer *messages*
  (OpenAI, or Claude Code's mid-conversation ``role: "system"``) stay in
  ``messages`` at their position, with role SYSTEM or DEVELOPER, and each
  renderer decides where they go.
* Tool results are ``ToolResultPart`` s inside a USER message (Anthropic's
  model); the OpenAI codec turns each into a ``role: "tool"`` message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeAlias

from ..json_text import dumps

__all__ = [
    "Base64Source",
    "CacheControl",
    "ChatRequest",
    "ChatResponse",
    "DocumentPart",
    "EMPTY_OBJECT",
    "ImagePart",
    "JSONValue",
    "Message",
    "Part",
    "Reasoning",
    "RedactedThinkingPart",
    "ResponseFormat",
    "ResponseFormatType",
    "Role",
    "StopReason",
    "TextPart",
    "ThinkingMode",
    "ThinkingPart",
    "Tool",
    "ToolChoice",
    "ToolChoiceMode",
    "ToolResultContent",
    "ToolResultPart",
    "ToolUsePart",
    "URLSource",
    "Usage",
]


class StopReason(str, Enum):
    """Why the model stopped, in neutral terms."""

    END_TURN = "end_turn"
    MAX_TOKENS = "max_tokens"
    STOP_SEQUENCE = "stop_sequence"
    TOOL_USE = "tool_use"
    REFUSAL = "refusal"
    PAUSE_TURN = "pause_turn"


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts. ``input_tokens`` excludes cache reads and writes (Anthropic's meaning).

    ``output_tokens`` includes reasoning tokens (both providers count them as
    output); ``reasoning_tokens`` is the part of it spent on reasoning, when
    the upstream reports it (0 otherwise).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    #: the part of ``cache_write_tokens`` written for one hour (Anthropic's
    #: ``cache_creation.ephemeral_1h_input_tokens``), priced apart
    cache_write_1h_tokens: int = 0


@dataclass(frozen=True, slots=True)
class JSONValue:
    """An opaque JSON value, held as its compact JSON text (key order preserved).

    Build one with ``JSONValue.of(python_value)`` or ``JSONValue.parse(text)``;
    read it with ``.value()`` (a fresh copy each call, so nobody can mutate
    the stored value) or ``.text``.
    """

    text: str

    @classmethod
    def of(cls, value: object) -> JSONValue:
        """Wrap a JSON-compatible Python value. Raises ValueError otherwise."""
        try:
            text = dumps(value, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise ValueError(f"not a JSON value: {exc}") from None
        return cls(text)

    @classmethod
    def parse(cls, text: str) -> JSONValue:
        """Parse JSON text (normalising it to compact form). Raises ValueError if invalid."""
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"invalid JSON: {exc}") from None
        return cls.of(value)

    def value(self) -> Any:
        """The Python value (a new copy on every call)."""
        return json.loads(self.text)

    def is_object(self) -> bool:
        """True when the value is a JSON object."""
        return self.text.startswith("{")


EMPTY_OBJECT = JSONValue("{}")


class Role(str, Enum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    DEVELOPER = "developer"


@dataclass(frozen=True, slots=True)
class CacheControl:
    """A prompt-caching breakpoint (Anthropic ``cache_control``)."""

    type: str = "ephemeral"
    ttl: str | None = None


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str
    cache_control: CacheControl | None = None


@dataclass(frozen=True, slots=True)
class Base64Source:
    """Inline image bytes, base64-encoded."""

    media_type: str
    data: str


@dataclass(frozen=True, slots=True)
class URLSource:
    """An image the upstream fetches itself (http or https URL)."""

    url: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    source: Base64Source | URLSource
    detail: str | None = None  # OpenAI "auto" / "low" / "high"
    cache_control: CacheControl | None = None


@dataclass(frozen=True, slots=True)
class ToolUsePart:
    """A tool call made by the assistant. ``input`` is a JSON object."""

    id: str
    name: str
    input: JSONValue = EMPTY_OBJECT
    cache_control: CacheControl | None = None


@dataclass(frozen=True, slots=True)
class DocumentPart:
    """A document (PDF) given inline (base64) or by URL."""

    source: Base64Source | URLSource
    title: str | None = None
    cache_control: CacheControl | None = None


ToolResultContent: TypeAlias = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ToolResultPart:
    """The result of one tool call, sent back by the client in a USER message."""

    tool_use_id: str
    content: tuple[ToolResultContent, ...] = ()
    is_error: bool = False
    cache_control: CacheControl | None = None


@dataclass(frozen=True, slots=True)
class ThinkingPart:
    """Visible reasoning. ``signature`` is Anthropic's opaque integrity token ("" if none)."""

    text: str
    signature: str = ""


@dataclass(frozen=True, slots=True)
class RedactedThinkingPart:
    """Encrypted reasoning (Anthropic ``redacted_thinking``); only Anthropic can use it."""

    data: str


Part: TypeAlias = (
    TextPart
    | ImagePart
    | DocumentPart
    | ToolUsePart
    | ToolResultPart
    | ThinkingPart
    | RedactedThinkingPart
)


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    parts: tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class Tool:
    """A client-defined function tool.

    ``input_schema`` is a JSON Schema object; None when the client gave none
    (OpenAI allows omitting ``parameters``: the function takes no arguments).
    """

    name: str
    description: str | None = None
    input_schema: JSONValue | None = None
    strict: bool | None = None
    cache_control: CacheControl | None = None


class ToolChoiceMode(str, Enum):
    AUTO = "auto"  # the model decides
    ANY = "any"  # must call some tool (OpenAI "required")
    NONE = "none"  # must not call a tool
    TOOL = "tool"  # must call the tool named in ToolChoice.name


@dataclass(frozen=True, slots=True)
class ToolChoice:
    mode: ToolChoiceMode
    name: str | None = None  # set exactly when mode is TOOL


class ResponseFormatType(str, Enum):
    TEXT = "text"
    JSON_OBJECT = "json_object"
    JSON_SCHEMA = "json_schema"


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """Structured output request (OpenAI ``response_format``)."""

    type: ResponseFormatType
    name: str | None = None
    description: str | None = None
    schema: JSONValue | None = None
    strict: bool | None = None


class ThinkingMode(str, Enum):
    """Anthropic ``thinking.type``: how the client asked the model to think."""

    ENABLED = "enabled"  # fixed budget (budget_tokens)
    ADAPTIVE = "adaptive"  # the model decides how much (Claude 4.6 and later)
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Reasoning:
    """Extended thinking / reasoning settings, as the client expressed them.

    A request carries whichever knobs its client used: OpenAI
    ``reasoning_effort`` (``effort``), Anthropic ``thinking`` (``thinking`` and
    ``budget_tokens``) and Anthropic ``output_config.effort`` (``effort``).
    Each renderer converts with the table in ``formats.policy``; effort
    strings are kept verbatim ("none", "minimal", "low", "medium", "high",
    "xhigh", "max").
    """

    thinking: ThinkingMode | None = None
    budget_tokens: int | None = None
    effort: str | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat request, whatever format it arrived in."""

    model: str
    messages: tuple[Message, ...]
    system: tuple[TextPart, ...] = ()
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False
    # The client wants token usage in its stream (OpenAI stream_options.include_usage;
    # always true for Anthropic clients, whose streams always carry usage).
    stream_include_usage: bool = False
    response_format: ResponseFormat | None = None
    reasoning: Reasoning | None = None
    user: str | None = None  # OpenAI "user" <-> Anthropic metadata.user_id
    # OpenAI-family sampling knobs: kept so OpenAI completions <-> chat loses nothing;
    # the Anthropic renderer drops them (see docs/conversion.md).
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: JSONValue | None = None
    service_tier: str | None = None


@dataclass(frozen=True, slots=True)
class ChatResponse:
    """One complete (non-streamed) assistant reply.

    ``created`` is Unix seconds when the upstream said (OpenAI); 0 means
    unknown, and the caller (which owns the clock) should fill it in with
    ``dataclasses.replace`` before rendering an OpenAI response.
    """

    id: str
    model: str
    parts: tuple[Part, ...]
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    usage: Usage = Usage()
    created: int = 0
