"""Rebuild a complete ``ChatResponse`` from unified stream events.

Theory of operation: one ``_Block`` per block index, kept in order of first
appearance (which is index order for streams the parsers produce); text,
thinking and argument pieces are collected in lists and joined once at the
end. ``MessageDelta`` updates stop reason and usage as ``events`` describes.
``result()`` requires a completed stream: after a ``StreamError`` it raises
``StreamFailed`` (a GatewayError whose status fits the error's kind), and
before ``MessageStop`` it raises ``StreamFailed`` too. Tool arguments must be
a JSON object: empty or blank arguments are ``{}``, anything else that is not
an object raises ``StreamFailed`` (as the non-streaming codecs reject it).

Used by the server when a non-streaming client is served from a streaming
upstream, and by tests to compare what two streams mean.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from llm_gateway.errors import (
    AuthenticationError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
)
from llm_gateway.formats.unified import (
    EMPTY_OBJECT,
    ChatResponse,
    JSONValue,
    Part,
    RedactedThinkingPart,
    StopReason,
    TextPart,
    ThinkingPart,
    ToolUsePart,
    Usage,
)
from llm_gateway.streaming.events import (
    BlockStop,
    MessageDelta,
    MessageStart,
    MessageStop,
    RedactedThinking,
    SignatureDelta,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    ToolCallStart,
    UnifiedEvent,
)

__all__ = ["Accumulator", "StreamFailed", "accumulate"]

_STATUS_BY_KIND = {
    cls.kind: cls.status
    for cls in (
        InvalidRequest,
        AuthenticationError,
        PermissionDenied,
        NotFound,
        PayloadTooLarge,
        RateLimited,
        ServiceUnavailable,
        UpstreamTimeout,
    )
}


class StreamFailed(UpstreamError):
    """A stream ended in an error, or before it completed."""

    def __init__(self, message: str, *, kind: str = "api_error") -> None:
        super().__init__(message, status=_STATUS_BY_KIND.get(kind, UpstreamError.status))
        self.kind = kind


@dataclass(slots=True)
class _Block:
    kind: type[TextPart | ThinkingPart | ToolUsePart | RedactedThinkingPart]
    pieces: list[str] = field(default_factory=list)
    signature: str = ""
    tool_id: str = ""
    name: str = ""


class Accumulator:
    """Feed unified events one by one; ``result()`` gives the complete response."""

    __slots__ = ("_id", "_model", "_usage", "_stop", "_sequence", "_blocks", "_done", "_error")

    def __init__(self) -> None:
        self._id = ""
        self._model = ""
        self._usage = Usage()
        self._stop: StopReason | None = None
        self._sequence: str | None = None
        self._blocks: dict[int, _Block] = {}
        self._done = False
        self._error: StreamError | None = None

    def feed(self, event: UnifiedEvent) -> None:
        if self._done or self._error is not None:
            return
        if isinstance(event, TextDelta):
            self._block(event.index, TextPart).pieces.append(event.text)
        elif isinstance(event, ToolArgsDelta):
            self._block(event.index, ToolUsePart).pieces.append(event.partial_json)
        elif isinstance(event, ThinkingDelta):
            self._block(event.index, ThinkingPart).pieces.append(event.text)
        elif isinstance(event, SignatureDelta):
            self._block(event.index, ThinkingPart).signature = event.signature
        elif isinstance(event, ToolCallStart):
            block = self._block(event.index, ToolUsePart)
            block.tool_id, block.name = event.id, event.name
        elif isinstance(event, RedactedThinking):
            self._block(event.index, RedactedThinkingPart).pieces.append(event.data)
        elif isinstance(event, MessageDelta):
            if event.stop_reason is not None:
                self._stop, self._sequence = event.stop_reason, event.stop_sequence
            if event.usage is not None:
                self._usage = event.usage
        elif isinstance(event, MessageStart):
            self._id, self._model = event.id or "", event.model or ""
            if event.usage is not None:
                self._usage = event.usage
        elif isinstance(event, MessageStop):
            self._done = True
        elif isinstance(event, StreamError):
            self._error = event
        else:
            assert isinstance(event, BlockStop)  # blocks need no closing here

    def result(self) -> ChatResponse:
        """The complete response. Raises StreamFailed if the stream did not complete."""
        if self._error is not None:
            raise StreamFailed(self._error.message, kind=self._error.kind)
        if not self._done:
            raise StreamFailed("upstream stream ended before it completed")
        return ChatResponse(
            id=self._id,
            model=self._model,
            parts=tuple(_part(block) for block in self._blocks.values()),
            stop_reason=self._stop,
            stop_sequence=self._sequence,
            usage=self._usage,
        )

    def _block(
        self, index: int, kind: type[TextPart | ThinkingPart | ToolUsePart | RedactedThinkingPart]
    ) -> _Block:
        block = self._blocks.get(index)
        if block is None:
            block = self._blocks[index] = _Block(kind)
        return block


def _part(block: _Block) -> Part:
    text = "".join(block.pieces)
    if block.kind is TextPart:
        return TextPart(text)
    if block.kind is ThinkingPart:
        return ThinkingPart(text, block.signature)
    if block.kind is RedactedThinkingPart:
        return RedactedThinkingPart(text)
    if not text.strip():
        return ToolUsePart(block.tool_id, block.name, EMPTY_OBJECT)
    try:
        arguments = JSONValue.parse(text)
    except ValueError:
        arguments = None
    if arguments is None or not arguments.is_object():
        raise StreamFailed(f"upstream tool call {block.name!r} arguments are not a JSON object")
    return ToolUsePart(block.tool_id, block.name, arguments)


def accumulate(events: Iterable[UnifiedEvent]) -> ChatResponse:
    """All of a stream's unified events -> the complete response."""
    accumulator = Accumulator()
    for event in events:
        accumulator.feed(event)
    return accumulator.result()
