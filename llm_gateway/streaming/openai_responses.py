"""OpenAI Responses streams: upstream parser, client renderer, passthrough rewriter.

Theory of operation. A Responses stream is named SSE events, each carrying
its ``type`` and a ``sequence_number`` counting from 0:
``response.created``, ``response.in_progress``, then each output item in
``output_index`` order (``output_item.added``, its parts and deltas,
``output_item.done``), then exactly one of ``response.completed`` /
``response.incomplete`` / ``response.failed`` with the whole response.

The renderer (unified -> client) opens an output item per unified block.
Unified tool calls may interleave with other blocks, but an output item
must be done before the next opens (the SDKs' stream helpers break
otherwise), so only one block is *live* at a time: events of the others
wait in their block's buffer, and when the live block stops, the next block
in order of appearance replays its buffer (and closes, if it stopped
meanwhile). Text is a ``message`` item with one ``output_text`` part;
thinking a ``reasoning`` item with one summary part (its signature carried
in ``encrypted_content``); a tool call a ``function_call`` item, or a
``custom_tool_call`` whose input is sent whole when the call ends (its
arguments are JSON ``{"input": ...}`` until then). The terminal event's
response holds every item as ``output_item.done`` gave it.

The parser (upstream -> unified) maps each message content part to a text
block, each reasoning item to a thinking block (summary parts joined by a
blank line) and each call item to a tool call; the terminal event gives the
stop reason and usage, ``response.failed`` and ``error`` a StreamError.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from llm_gateway.errors import UpstreamError
from llm_gateway.formats import openai_family
from llm_gateway.formats.fields import FieldReader
from llm_gateway.formats.responses_carry import (
    CUSTOM_INPUT,
    ToolName,
    encrypted_for_redacted,
    encrypted_for_signature,
    flat_name,
    read_encrypted,
    read_name,
)
from llm_gateway.formats.responses_output import (
    call_item,
    item_id,
    message_item,
    new_response_id,
    parse_usage,
    reasoning_item,
    response_object,
    status_of,
    stop_of,
    summary_separator,
)
from llm_gateway.formats.unified import StopReason, Usage
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
from llm_gateway.streaming.sse import SSEEvent, compact_json, encode_event

__all__ = [
    "ResponsesModelRewriter",
    "ResponsesStreamParser",
    "ResponsesStreamRenderer",
    "error_event",
    "usage_from_responses",
]

ID_PREFIX = "resp_"
_TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def _error_object(error: StreamError) -> dict[str, Any]:
    shape = openai_family.render_error(502, error.kind, error.message)["error"]
    return {"code": shape["code"] or shape["type"], "message": error.message}


def error_event(error: StreamError) -> bytes:
    """The end of a passthrough Responses stream that cannot go on: an ``error`` event."""
    body = {"type": "error", **_error_object(error), "param": None, "sequence_number": 0}
    return encode_event(compact_json(body), "error")


# -- renderer ---------------------------------------------------------------------------


class _Kind(str, Enum):
    TEXT = "text"
    THINKING = "thinking"
    TOOL = "tool"
    REDACTED = "redacted"


@dataclass(slots=True)
class _Block:
    kind: _Kind
    pending: list[UnifiedEvent] = field(default_factory=list)
    stopped: bool = False
    opened: bool = False
    output_index: int = -1
    item_id: str = ""
    text: list[str] = field(default_factory=list)
    signature: str = ""
    call_id: str = ""
    name: str = ""
    data: str = ""
    summary_open: bool = False  # the reasoning item's summary part was added


class _State(Enum):
    BEFORE_START = "before_start"
    STREAMING = "streaming"
    DONE = "done"


class ResponsesStreamRenderer:
    """Unified events -> a strict Responses event stream for one client."""

    def __init__(self, *, model: str, created: int) -> None:
        self._model = model
        self._created = created
        self._state = _State.BEFORE_START
        self._sequence = 0
        self._id = ""
        self._blocks: dict[int, _Block] = {}
        self._order: list[int] = []
        self._live = 0  # position in _order of the block streaming now
        self._items: list[dict[str, Any]] = []
        self._opened = 0  # output items opened so far
        self._stop: StopReason | None = None
        self._usage: Usage | None = None

    # -- the public face ----------------------------------------------------------

    def feed(self, event: UnifiedEvent) -> bytes:
        if self._state is _State.DONE:
            return b""
        if isinstance(event, MessageStart):
            if self._state is _State.BEFORE_START:
                self._usage = event.usage
                return self._start(event.id)
            return b""
        out = self._start(None) if self._state is _State.BEFORE_START else b""
        if isinstance(event, MessageDelta):
            if event.usage is not None:
                self._usage = event.usage
            if event.stop_reason is not None:
                self._stop = event.stop_reason
            return out
        if isinstance(event, MessageStop):
            return out + self._complete()
        if isinstance(event, StreamError):
            return out + self._fail(event)
        return out + self._block_event(event)

    def finish(self) -> bytes:
        if self._state is _State.DONE:
            return b""
        return self.feed(StreamError("api_error", "upstream stream ended unexpectedly"))

    # -- lifecycle -------------------------------------------------------------------

    def _emit(self, kind: str, body: dict[str, Any]) -> bytes:
        data = {"type": kind, "sequence_number": self._sequence, **body}
        self._sequence += 1
        return encode_event(compact_json(data), kind)

    def _response(self, status: str, **extra: Any) -> dict[str, Any]:
        return response_object(
            response_id=self._id,
            model=self._model,
            created=self._created,
            status=status,
            output=list(self._items),
            usage=extra.pop("usage", None),
            **extra,
        )

    def _start(self, upstream_id: str | None) -> bytes:
        self._state = _State.STREAMING
        self._id = new_response_id(upstream_id)
        response = self._response("in_progress")
        return self._emit("response.created", {"response": response}) + self._emit(
            "response.in_progress", {"response": response}
        )

    def _complete(self) -> bytes:
        out = self._drain_all()
        status, incomplete = status_of(self._stop)
        self._state = _State.DONE
        response = self._response(status, usage=self._usage or Usage(), incomplete=incomplete)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return out + self._emit(kind, {"response": response})

    def _fail(self, error: StreamError) -> bytes:
        self._state = _State.DONE
        response = self._response("failed", usage=self._usage, error=_error_object(error))
        return self._emit("response.failed", {"response": response})

    # -- blocks ------------------------------------------------------------------------

    def _block_event(self, event: UnifiedEvent) -> bytes:
        index: int = getattr(event, "index")  # noqa: B009 - every block event has one
        block = self._blocks.get(index)
        if block is None:
            if isinstance(event, BlockStop):
                return b""
            block = _Block(_kind_of(event))
            self._blocks[index] = block
            self._order.append(index)
        if self._order[self._live] != index:
            block.pending.append(event)
            if isinstance(event, BlockStop):
                block.stopped = True
            return b""
        out = self._live_event(block, event)
        if isinstance(event, BlockStop):
            out += self._advance()
        return out

    def _advance(self) -> bytes:
        """The live block stopped: replay the next blocks' buffers, in order."""
        out = b""
        self._live += 1
        while self._live < len(self._order):
            block = self._blocks[self._order[self._live]]
            pending, block.pending = block.pending, []
            for event in pending:
                out += self._live_event(block, event)
            if not block.stopped:
                break
            self._live += 1
        return out

    def _drain_all(self) -> bytes:
        out = b""
        while self._live < len(self._order):
            block = self._blocks[self._order[self._live]]
            pending, block.pending = block.pending, []
            for event in pending:
                out += self._live_event(block, event)
            if not block.stopped:
                out += self._live_event(block, BlockStop(self._order[self._live]))
            self._live += 1
        return out

    def _live_event(self, block: _Block, event: UnifiedEvent) -> bytes:
        if isinstance(event, BlockStop):
            block.stopped = True
            return self._open(block) + self._close(block)
        out = self._open(block, event)
        if isinstance(event, TextDelta) and event.text:
            block.text.append(event.text)
            out += self._emit(
                "response.output_text.delta",
                {**self._at(block, content=True), "delta": event.text, "logprobs": []},
            )
        elif isinstance(event, ThinkingDelta) and event.text:
            if not block.summary_open:
                block.summary_open = True
                part = {"type": "summary_text", "text": ""}
                out += self._emit(
                    "response.reasoning_summary_part.added",
                    {**self._at(block, summary=True), "part": part},
                )
            block.text.append(event.text)
            out += self._emit(
                "response.reasoning_summary_text.delta",
                {**self._at(block, summary=True), "delta": event.text},
            )
        elif isinstance(event, SignatureDelta):
            block.signature = event.signature
        elif isinstance(event, RedactedThinking):
            block.data = event.data
        elif isinstance(event, ToolArgsDelta) and event.partial_json:
            block.text.append(event.partial_json)
            if not read_name(block.name).custom:
                out += self._emit(
                    "response.function_call_arguments.delta",
                    {**self._at(block), "delta": event.partial_json},
                )
        return out

    def _at(self, block: _Block, *, content: bool = False, summary: bool = False) -> dict[str, Any]:
        at: dict[str, Any] = {"item_id": block.item_id, "output_index": block.output_index}
        if content:
            at["content_index"] = 0
        if summary:
            at["summary_index"] = 0
        return at

    def _open(self, block: _Block, event: UnifiedEvent | None = None) -> bytes:
        if block.opened:
            return b""
        block.opened = True
        block.output_index = self._opened
        self._opened += 1
        if isinstance(event, ToolCallStart):
            block.call_id, block.name = event.id, event.name
        if isinstance(event, RedactedThinking):
            block.data = event.data
        if block.kind is _Kind.TEXT:
            block.item_id = item_id("message", self._id, block.output_index)
            item: dict[str, Any] = {**message_item(block.item_id, "", "in_progress"), "content": []}
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            return self._added(block, item) + self._emit(
                "response.content_part.added", {**self._at(block, content=True), "part": part}
            )
        if block.kind is _Kind.TOOL:
            kind = "custom_tool_call" if read_name(block.name).custom else "function_call"
            block.item_id = item_id(kind, self._id, block.output_index)
            item = call_item(block.item_id, block.call_id, block.name, "", "in_progress")
            return self._added(block, item)
        block.item_id = item_id("reasoning", self._id, block.output_index)
        return self._added(block, reasoning_item(block.item_id, "", None))

    def _added(self, block: _Block, item: dict[str, Any]) -> bytes:
        return self._emit(
            "response.output_item.added", {"output_index": block.output_index, "item": item}
        )

    def _close(self, block: _Block) -> bytes:
        text = "".join(block.text)
        out = b""
        if block.kind is _Kind.TEXT:
            part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
            out += self._emit(
                "response.output_text.done",
                {**self._at(block, content=True), "text": text, "logprobs": []},
            )
            out += self._emit(
                "response.content_part.done", {**self._at(block, content=True), "part": part}
            )
            item = message_item(block.item_id, text, "completed")
        elif block.kind is _Kind.TOOL:
            arguments = text if text.strip() else "{}"
            if not text:
                out += (
                    self._live_event(block, ToolArgsDelta(0, "{}"))
                    if not read_name(block.name).custom
                    else b""
                )
            item = call_item(block.item_id, block.call_id, block.name, arguments, "completed")
            if item["type"] == "custom_tool_call":
                at = self._at(block)
                out += self._emit(
                    "response.custom_tool_call_input.delta", {**at, "delta": item["input"]}
                )
                out += self._emit(
                    "response.custom_tool_call_input.done", {**at, "input": item["input"]}
                )
            else:
                out += self._emit(
                    "response.function_call_arguments.done",
                    {**self._at(block), "name": item["name"], "arguments": arguments},
                )
        elif block.kind is _Kind.THINKING:
            if block.summary_open:
                at = self._at(block, summary=True)
                part = {"type": "summary_text", "text": text}
                out += self._emit("response.reasoning_summary_text.done", {**at, "text": text})
                out += self._emit("response.reasoning_summary_part.done", {**at, "part": part})
            encrypted = encrypted_for_signature(block.signature) if block.signature else None
            item = reasoning_item(block.item_id, text, encrypted)
        else:
            item = reasoning_item(block.item_id, "", encrypted_for_redacted(block.data))
        self._items.append(item)
        return out + self._emit(
            "response.output_item.done", {"output_index": block.output_index, "item": item}
        )


def _kind_of(event: UnifiedEvent) -> _Kind:
    if isinstance(event, (ThinkingDelta, SignatureDelta)):
        return _Kind.THINKING
    if isinstance(event, (ToolCallStart, ToolArgsDelta)):
        return _Kind.TOOL
    if isinstance(event, RedactedThinking):
        return _Kind.REDACTED
    return _Kind.TEXT


# -- parser -----------------------------------------------------------------------------

_MALFORMED = StreamError("api_error", "upstream sent a malformed Responses stream event")


@dataclass(slots=True)
class _ItemIn:
    kind: str
    index: int = -1  # the unified block (-1: not opened yet)
    parts: dict[int, int] = field(default_factory=dict)  # content_index -> block
    seen: dict[int, str] = field(default_factory=dict)  # content_index -> text so far
    summaries: int = 0
    has_arguments: bool = False


class ResponsesStreamParser:
    """A Responses upstream's SSE events -> unified events."""

    def __init__(self) -> None:
        self._started = False
        self._ended = False
        self._next = 0
        self._items: dict[int, _ItemIn] = {}
        self._called = False

    def feed(self, event: SSEEvent) -> list[UnifiedEvent]:
        if self._ended:
            return []
        try:
            data = json.loads(event.data)
        except ValueError:
            return self._fail(_MALFORMED)
        if not isinstance(data, dict):
            return self._fail(_MALFORMED)
        kind = data.get("type") or event.event
        try:
            return self._event(str(kind), data)
        except (UpstreamError, KeyError, TypeError, AttributeError):
            return self._fail(_MALFORMED)

    def finish(self) -> list[UnifiedEvent]:
        if self._ended:
            return []
        return self._fail(
            StreamError("api_error", "upstream stream ended before the response was complete")
        )

    # -- internals -----------------------------------------------------------------

    def _fail(self, error: StreamError) -> list[UnifiedEvent]:
        self._ended = True
        return [error]

    def _new(self) -> int:
        self._next += 1
        return self._next - 1

    def _event(self, kind: str, data: dict[str, Any]) -> list[UnifiedEvent]:
        out: list[UnifiedEvent] = []
        if kind == "error":
            message = data.get("message")
            return self._fail(
                StreamError("api_error", message if isinstance(message, str) else "upstream error")
            )
        if kind == "response.created" or not self._started:
            if not self._started:
                self._started = True
                response = data.get("response")
                if not isinstance(response, dict):
                    response = {}
                ident, model = response.get("id"), response.get("model")
                out.append(
                    MessageStart(
                        ident if isinstance(ident, str) else None,
                        model if isinstance(model, str) else None,
                    )
                )
            if kind == "response.created":
                return out
        if kind == "response.output_item.added":
            out += self._item_added(data["output_index"], data["item"])
        elif kind == "response.output_text.delta":
            out += self._text(data["output_index"], data.get("content_index", 0), data["delta"])
        elif kind == "response.output_text.done":
            out += self._text_done(data["output_index"], data.get("content_index", 0), data["text"])
        elif kind == "response.content_part.done":
            item = self._items[data["output_index"]]
            block = item.parts.pop(data.get("content_index", 0), None)
            if block is not None:
                out.append(BlockStop(block))
        elif kind == "response.reasoning_summary_part.added":
            out += self._summary_part(data["output_index"])
        elif kind == "response.reasoning_summary_text.delta":
            out += self._thinking(data["output_index"], data["delta"])
        elif kind == "response.function_call_arguments.delta":
            item = self._items[data["output_index"]]
            if data["delta"]:
                item.has_arguments = True
                out.append(ToolArgsDelta(item.index, data["delta"]))
        elif kind == "response.output_item.done":
            out += self._item_done(data["output_index"], data["item"])
        elif kind in _TERMINAL:
            out += self._terminal(kind, data["response"])
        return out

    def _item_added(self, position: int, item: dict[str, Any]) -> list[UnifiedEvent]:
        kind = item["type"]
        state = _ItemIn(kind)
        self._items[position] = state
        if kind in ("function_call", "custom_tool_call"):
            self._called = True
            state.index = self._new()
            tool = ToolName(item["name"], item.get("namespace") or "", kind == "custom_tool_call")
            return [ToolCallStart(state.index, item["call_id"], flat_name(tool))]
        return []

    def _text(self, position: int, content: int, delta: str) -> list[UnifiedEvent]:
        item = self._items[position]
        if not delta:
            return []
        if content not in item.parts:
            item.parts[content] = self._new()
        item.seen[content] = item.seen.get(content, "") + delta
        return [TextDelta(item.parts[content], delta)]

    def _text_done(self, position: int, content: int, text: str) -> list[UnifiedEvent]:
        seen = self._items[position].seen.get(content, "")
        if len(text) > len(seen) and text.startswith(seen):
            return self._text(position, content, text[len(seen) :])
        return []

    def _summary_part(self, position: int) -> list[UnifiedEvent]:
        item = self._items[position]
        item.summaries += 1
        if item.summaries > 1 and item.index >= 0:
            return [ThinkingDelta(item.index, summary_separator)]
        return []

    def _thinking(self, position: int, delta: str) -> list[UnifiedEvent]:
        item = self._items[position]
        if not delta:
            return []
        if item.index < 0:
            item.index = self._new()
        return [ThinkingDelta(item.index, delta)]

    def _item_done(self, position: int, raw: dict[str, Any]) -> list[UnifiedEvent]:
        item = self._items.pop(position, None) or _ItemIn(raw["type"])
        out: list[UnifiedEvent] = []
        kind = raw["type"]
        if kind == "message":
            out += [BlockStop(block) for block in item.parts.values()]
        elif kind == "reasoning":
            carried = read_encrypted(raw.get("encrypted_content") or "")
            if item.index < 0:
                texts = [s["text"] for s in raw.get("summary") or [] if s.get("text")]
                if texts:
                    item.index = self._new()
                    out.append(ThinkingDelta(item.index, summary_separator.join(texts)))
            if carried is not None and carried[0] == "redacted" and item.index < 0:
                index = self._new()
                out += [RedactedThinking(index, carried[1]), BlockStop(index)]
            elif item.index >= 0:
                if carried is not None and carried[0] == "thinking":
                    out.append(SignatureDelta(item.index, carried[1]))
                out.append(BlockStop(item.index))
        elif kind == "function_call":
            if not item.has_arguments and raw.get("arguments"):
                out.append(ToolArgsDelta(item.index, raw["arguments"]))
            out.append(BlockStop(item.index))
        elif kind == "custom_tool_call":
            out.append(ToolArgsDelta(item.index, compact_json({CUSTOM_INPUT: raw["input"]})))
            out.append(BlockStop(item.index))
        return out

    def _terminal(self, kind: str, response: dict[str, Any]) -> list[UnifiedEvent]:
        self._ended = True
        if kind == "response.failed":
            error = response.get("error") or {}
            message = error.get("message") if isinstance(error, dict) else None
            return [
                StreamError(
                    "api_error",
                    message if isinstance(message, str) else "the upstream response failed",
                )
            ]
        r = FieldReader(response, "response", error=UpstreamError)
        details = r.opt_obj("incomplete_details")
        reason = details.opt_str("reason") if details is not None else None
        usage = parse_usage(r.opt_obj("usage"))
        out: list[UnifiedEvent] = [
            BlockStop(b) for i in self._items.values() for b in i.parts.values()
        ]
        out += [BlockStop(i.index) for i in self._items.values() if i.index >= 0]
        stop = stop_of(r.opt_str("status"), reason, self._called)
        return [*out, MessageDelta(stop, None, usage), MessageStop()]


# -- passthrough ------------------------------------------------------------------------


class ResponsesModelRewriter:
    """A Responses upstream's stream as it is, with the client's model name in its
    ``response`` objects; records the usage of the terminal event."""

    def __init__(self, *, model: str | None) -> None:
        self._model = model
        self.usage: Usage | None = None

    def feed(self, event: SSEEvent) -> bytes:
        if self._model is None and '"usage"' not in event.data:
            return encode_event(event.data, event.event)
        try:
            data = json.loads(event.data)
        except ValueError:
            return encode_event(event.data, event.event)
        response = data.get("response") if isinstance(data, dict) else None
        if not isinstance(response, dict):
            return encode_event(event.data, event.event)
        if isinstance(response.get("usage"), dict):
            self.usage = usage_from_responses(response["usage"]) or self.usage
        if self._model is None or response.get("model") in (None, self._model):
            return encode_event(event.data, event.event)
        response["model"] = self._model
        return encode_event(compact_json(data), event.event)

    def finish(self) -> bytes:
        return b""


def usage_from_responses(raw: dict[str, Any]) -> Usage | None:
    """A ``usage`` object read, or None when it is malformed."""
    try:
        return parse_usage(FieldReader(raw, "usage", error=UpstreamError))
    except UpstreamError:
        return None
