"""Gemini ``:streamGenerateContent?alt=sse`` <-> unified stream events.

Theory of operation: every SSE ``data:`` of a Gemini stream is a whole
``GenerateContentResponse`` holding only the new parts: text and thought
text arrive in pieces, a ``functionCall`` arrives whole, and the last chunk
carries ``finishReason`` (``usageMetadata`` comes with every chunk,
cumulative). There is no end event: the stream is complete when the upstream
body ends after a ``finishReason``.

``GeminiStreamParser`` turns each chunk's parts into unified parts with the
codec's own reader (so ids and signatures are carried exactly as in a JSON
answer) and those into block events: consecutive text pieces extend one text
block, consecutive thought pieces one thinking block, each function call is
a whole tool block. The stop reason and usage are held until the body ends,
then ``MessageDelta`` and ``MessageStop`` close the stream; a body that ends
without a ``finishReason`` ends with a ``StreamError``.

``GeminiStreamRenderer`` writes unified events as such chunks for a Gemini
client: one chunk per text or thought piece, one per finished tool call, and
a last chunk with ``finishReason`` and ``usageMetadata``. Errors are Google's
error object as a ``data:`` line.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from llm_gateway.errors import UpstreamError
from llm_gateway.formats import gemini_generate_content as codec
from llm_gateway.formats.fields import FieldReader
from llm_gateway.formats.unified import (
    JSONValue,
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
from llm_gateway.streaming.ids import response_id
from llm_gateway.streaming.sse import SSEEvent, compact_json, encode_event

__all__ = [
    "GeminiModelRewriter",
    "GeminiStreamParser",
    "GeminiStreamRenderer",
    "error_event",
]

_MALFORMED = StreamError("api_error", "upstream sent a malformed stream chunk")


# The HTTP status whose Google status name says what a stream error's kind says.
_KIND_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "overloaded_error": 503,
    "timeout_error": 504,
}


def error_event(error: StreamError) -> bytes:
    """The end of a failed Gemini-format stream: Google's error object as one chunk."""
    status = _KIND_STATUS.get(error.kind, 500)
    return encode_event(compact_json(codec.render_error(status, error.kind, error.message)))


class _Open(Enum):
    """Which text-like block the parser has open."""

    NONE = "none"
    TEXT = "text"
    THINKING = "thinking"


class GeminiStreamParser:
    """Gemini SSE chunks -> unified events (one instance per stream)."""

    __slots__ = (
        "_calls",
        "_ended",
        "_finish",
        "_id",
        "_index",
        "_next",
        "_open",
        "_started",
        "_usage",
    )

    def __init__(self) -> None:
        self._started = False
        self._ended = False
        self._open = _Open.NONE
        self._index = -1  # the open text-like block's index
        self._next = 0
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._calls = 0  # function calls so far
        self._id = ""

    def feed(self, event: SSEEvent) -> list[UnifiedEvent]:
        if self._ended or not event.data.strip():
            return []
        try:
            data = json.loads(event.data)
        except ValueError:
            return self._fail(_MALFORMED)
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            return self._fail(StreamError(*codec.error_of(data, 502)))
        try:
            return self._chunk(FieldReader(data, "chunk", UpstreamError))
        except UpstreamError:
            return self._fail(_MALFORMED)

    def finish(self) -> list[UnifiedEvent]:
        if self._ended:
            return []
        if self._finish is None:
            return self._fail(StreamError("api_error", "upstream stream ended before it finished"))
        out: list[UnifiedEvent] = []
        self._close(out)
        stop = codec.stop_reason(self._finish, self._calls > 0)
        out += [MessageDelta(stop_reason=stop, usage=self._usage), MessageStop()]
        self._ended = True
        return out

    # -- internals --------------------------------------------------------

    def _fail(self, error: StreamError) -> list[UnifiedEvent]:
        self._ended = True
        return [error]

    def _chunk(self, r: FieldReader) -> list[UnifiedEvent]:
        out: list[UnifiedEvent] = []
        usage = r.opt_obj("usageMetadata")
        if usage is not None:
            self._usage = codec.parse_usage(usage)
        if not self._started:
            self._started = True
            self._id = r.opt_str("responseId") or ""
            out.append(MessageStart(self._id or None, r.opt_str("modelVersion"), self._usage))
        candidates = r.opt_list("candidates") or []
        if not candidates:
            feedback = r.opt_obj("promptFeedback")
            if feedback is not None and feedback.opt_str("blockReason"):
                self._finish = "SAFETY"
            return out
        candidate = r.child(candidates[0], "candidates[0]")
        for part in codec.response_parts(candidate.opt_obj("content"), self._id, self._calls):
            if isinstance(part, TextPart):
                self._piece(_Open.TEXT, part.text, "", out)
            elif isinstance(part, ThinkingPart):
                self._piece(_Open.THINKING, part.text, part.signature, out)
            elif isinstance(part, ToolUsePart):
                self._close(out)
                index = self._new_index()
                out += [
                    ToolCallStart(index, part.id, part.name),
                    ToolArgsDelta(index, part.input.text),
                    BlockStop(index),
                ]
                self._calls += 1
        finish = candidate.opt_str("finishReason")
        if finish is not None:
            self._finish = finish
        return out

    def _piece(self, kind: _Open, text: str, signature: str, out: list[UnifiedEvent]) -> None:
        if text and self._open is not kind:
            self._close(out)
            self._open, self._index = kind, self._new_index()
        if text:
            delta = TextDelta if kind is _Open.TEXT else ThinkingDelta
            out.append(delta(self._index, text))
        if signature and self._open is _Open.THINKING:
            out.append(SignatureDelta(self._index, signature))

    def _close(self, out: list[UnifiedEvent]) -> None:
        if self._open is not _Open.NONE:
            out.append(BlockStop(self._index))
            self._open = _Open.NONE

    def _new_index(self) -> int:
        self._next += 1
        return self._next - 1


class _State(Enum):
    BEFORE_START = "before_start"
    STREAMING = "streaming"
    DONE = "done"


class GeminiStreamRenderer:
    """Unified events -> Gemini SSE chunks for a Gemini client (one instance per stream)."""

    __slots__ = ("_calls", "_done", "_id", "_model", "_signatures", "_state", "_stop", "_usage")

    def __init__(self, *, model: str) -> None:
        self._model = model
        self._id = ""
        self._state = _State.BEFORE_START
        # index -> id, name, argument pieces, in the order the calls started
        self._calls: dict[int, tuple[str, str, list[str]]] = {}
        self._done: set[int] = set()  # calls whose block stopped, not yet written
        self._signatures: dict[int, str] = {}  # thinking index -> signature
        self._stop: StopReason | None = None
        self._usage = Usage()

    def feed(self, event: UnifiedEvent) -> bytes:
        if self._state is _State.DONE:
            return b""
        if isinstance(event, MessageStart):
            self._state = _State.STREAMING
            self._id = response_id("", event.id)
            self._usage = event.usage or self._usage
            return b""
        if isinstance(event, StreamError):
            self._state = _State.DONE
            return error_event(event)
        self._state = _State.STREAMING
        if isinstance(event, TextDelta):
            return self._parts([{"text": event.text}])
        if isinstance(event, ThinkingDelta):
            return self._parts([{"text": event.text, "thought": True}])
        if isinstance(event, SignatureDelta):
            self._signatures[event.index] = event.signature
            return b""
        if isinstance(event, ToolCallStart):
            self._calls[event.index] = (event.id, event.name, [])
            return b""
        if isinstance(event, ToolArgsDelta):
            self._calls[event.index][2].append(event.partial_json)
            return b""
        if isinstance(event, BlockStop):
            return self._block_stop(event.index)
        if isinstance(event, MessageDelta):
            self._stop = event.stop_reason or self._stop
            self._usage = event.usage or self._usage
            return b""
        if isinstance(event, MessageStop):
            self._state = _State.DONE
            return self._last_chunk()
        assert isinstance(event, RedactedThinking)  # no Gemini counterpart
        return b""

    def finish(self) -> bytes:
        if self._state is _State.DONE:
            return b""
        return self.feed(StreamError("api_error", "upstream stream ended unexpectedly"))

    def _block_stop(self, index: int) -> bytes:
        signature = self._signatures.pop(index, None)
        if signature is not None:
            thought = codec.render_part(ThinkingPart("", signature))
            return self._parts([thought] if thought is not None else [])
        if index not in self._calls:
            return b""
        # Calls are written whole, in the order they started (parallel calls
        # may finish in another order): every finished call at the head goes.
        self._done.add(index)
        parts: list[dict[str, Any]] = []
        while self._calls and next(iter(self._calls)) in self._done:
            first = next(iter(self._calls))
            call_id, name, pieces = self._calls.pop(first)
            self._done.discard(first)
            try:
                part = ToolUsePart(call_id, name, JSONValue.parse("".join(pieces) or "{}"))
            except ValueError:
                return self.feed(StreamError("api_error", "upstream sent malformed tool arguments"))
            rendered = codec.render_part(part)
            if rendered is not None:
                parts.append(rendered)
        return self._parts(parts) if parts else b""

    def _parts(self, parts: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> bytes:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if extra:
            candidate.update(extra)
        chunk: dict[str, Any] = {"candidates": [candidate]}
        if extra:
            chunk["usageMetadata"] = codec.render_usage(self._usage)
        chunk["modelVersion"] = self._model
        chunk["responseId"] = self._id
        return encode_event(compact_json(chunk))

    def _last_chunk(self) -> bytes:
        finish = codec.finish_reason(self._stop) or "STOP"
        return self._parts([{"text": ""}], {"finishReason": finish})


class GeminiModelRewriter:
    """Gemini stream passthrough: set each chunk's ``modelVersion``; record usage."""

    __slots__ = ("_model", "usage")

    def __init__(self, *, model: str | None) -> None:
        self._model = model
        self.usage: Usage | None = None

    def feed(self, event: SSEEvent) -> bytes:
        try:
            chunk = json.loads(event.data)
        except ValueError:
            return encode_event(event.data, event.event)
        if not isinstance(chunk, dict):
            return encode_event(event.data, event.event)
        usage = chunk.get("usageMetadata")
        if isinstance(usage, dict):
            try:
                self.usage = codec.parse_usage(FieldReader(usage, "", UpstreamError))
            except UpstreamError:
                self.usage = None  # malformed counts: unknown; the chunk goes on as sent
        if self._model is None or chunk.get("modelVersion") in (None, self._model):
            return encode_event(event.data, event.event)
        chunk["modelVersion"] = self._model
        return encode_event(compact_json(chunk), event.event)

    def finish(self) -> bytes:
        return b""
