"""Anthropic messages streams: parser (upstream side) and renderer (client side).

Theory of operation, parser: each event's JSON ``type`` (or, failing that, the
SSE event name) selects a handler. The state machine is

    BEFORE_START --message_start--> STREAMING --message_delta with stop_reason--> STOPPING
    STOPPING --message_stop or end of input--> ENDED
    any --error event, malformed data, early end--> ENDED (with StreamError)

Upstream block indices are mapped to unified ones, allocated when a block
first yields an event: an empty text block yields nothing at all, and blocks
of types we cannot convert (server tools and their results) are skipped, so
the unified indices stay contiguous. ``message_delta`` usage holds cumulative
counts, some of which may be omitted; they are merged over the counts from
``message_start`` so every unified usage figure is complete. ``ping`` and
unknown event or delta types are ignored.

Renderer: writes exactly ``message_start``; per block ``content_block_start``,
deltas, ``content_block_stop`` with client indices 0, 1, 2; then
``message_delta`` and ``message_stop``. Unified blocks may interleave, so the
renderer keeps a queue of blocks in order of appearance. The head of the
queue is the one block open on the client side and its deltas are written at
once; deltas for the other blocks wait in their block until it reaches the
head (when every block before it has stopped). With upstreams that send one
block at a time (all real ones, as far as we know) nothing ever waits.
``message_delta``/``message_stop`` are held back until ``MessageStop``,
because an OpenAI upstream sends usage after its finish chunk.

Empty tool input: a tool call that received no non-blank argument piece gets
one ``input_json_delta`` of ``"{}"`` before its ``content_block_stop``. The
Anthropic SDK would already report ``{}`` (it starts from the ``input: {}``
of ``content_block_start`` and ignores an empty buffer), but clients that
concatenate ``partial_json`` and parse it at block stop would fail on "".
Thinking blocks start with ``"signature": ""`` so SDK models always have the
field; an upstream signature arrives as a ``signature_delta``.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any

from llm_gateway.formats.anthropic_messages import parse_error, render_error
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
from llm_gateway.streaming.ids import response_id
from llm_gateway.streaming.sse import SSEEvent, compact_json

__all__ = [
    "AnthropicMessagesParser",
    "AnthropicMessagesRenderer",
    "error_event",
    "stop_reason_from_anthropic",
    "usage_from_anthropic",
    "usage_to_anthropic",
]

_STOP_REASONS = {reason.value: reason for reason in StopReason}


def stop_reason_from_anthropic(raw: object) -> StopReason | None:
    """Anthropic ``stop_reason`` -> unified. Unknown reasons (e.g.
    ``model_context_window_exceeded``) mean the output was cut short."""
    if not isinstance(raw, str):
        return None
    return _STOP_REASONS.get(raw, StopReason.MAX_TOKENS)


def usage_from_anthropic(raw: dict[str, Any], base: Usage | None = None) -> Usage:
    """Anthropic usage -> unified; counts that are absent or null keep ``base``'s value."""
    base = base or Usage()

    def count(key: str, default: int) -> int:
        value = raw.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    return Usage(
        input_tokens=count("input_tokens", base.input_tokens),
        output_tokens=count("output_tokens", base.output_tokens),
        cache_read_tokens=count("cache_read_input_tokens", base.cache_read_tokens),
        cache_write_tokens=count("cache_creation_input_tokens", base.cache_write_tokens),
        reasoning_tokens=base.reasoning_tokens,
        cache_write_1h_tokens=_one_hour(raw.get("cache_creation"), base.cache_write_1h_tokens),
    )


def _one_hour(creation: object, default: int) -> int:
    """``cache_creation.ephemeral_1h_input_tokens`` (one-hour cache writes)."""
    if not isinstance(creation, dict):
        return default
    value = creation.get("ephemeral_1h_input_tokens")
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def error_event(error: StreamError) -> bytes:
    """The end of a failed Anthropic-format stream: one ``error`` event."""
    body = compact_json(render_error(502, error.kind, error.message))
    return b"event: error\ndata: " + body.encode() + b"\n\n"


def usage_to_anthropic(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": usage.output_tokens,
    }


class _Kind(Enum):
    TEXT = auto()
    THINKING = auto()
    TOOL = auto()
    REDACTED = auto()


class _ParserState(Enum):
    BEFORE_START = auto()
    STREAMING = auto()
    STOPPING = auto()
    ENDED = auto()


@dataclass(slots=True)
class _UpstreamBlock:
    kind: _Kind
    index: int | None = None  # unified index, once the block has yielded an event


class AnthropicMessagesParser:
    """Upstream Anthropic message stream -> unified events. One instance per stream."""

    __slots__ = ("_state", "_blocks", "_next_index", "_usage")

    def __init__(self) -> None:
        self._state = _ParserState.BEFORE_START
        self._blocks: dict[object, _UpstreamBlock | None] = {}  # None: a skipped block type
        self._next_index = 0
        self._usage = Usage()

    def feed(self, event: SSEEvent) -> list[UnifiedEvent]:
        if self._state is _ParserState.ENDED:
            return []
        try:
            data = json.loads(event.data)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return self._fail(StreamError("api_error", "upstream sent a malformed stream event"))
        kind = data.get("type")
        if not isinstance(kind, str):
            kind = event.event
        out: list[UnifiedEvent] = []
        if kind == "content_block_delta":
            self._block_delta(data, out)
        elif kind == "content_block_start":
            self._start_if_needed(out)
            self._block_start(data, out)
        elif kind == "content_block_stop":
            block = self._blocks.pop(data.get("index"), None)
            if block is not None and block.index is not None:
                out.append(BlockStop(block.index))
        elif kind == "message_start":
            self._message_start(data, out)
        elif kind == "message_delta":
            self._start_if_needed(out)
            self._message_delta(data, out)
        elif kind == "message_stop":
            self._start_if_needed(out)
            self._complete(out)
        elif kind == "error":
            # The event's data is an error body; its message is made client-safe there.
            return self._fail(StreamError(*parse_error(502, event.data.encode())))
        return out  # ping and unknown events yield nothing

    def finish(self) -> list[UnifiedEvent]:
        if self._state is _ParserState.ENDED:
            return []
        if self._state is _ParserState.STOPPING:
            out: list[UnifiedEvent] = []
            self._complete(out)
            return out
        return self._fail(StreamError("api_error", "upstream stream ended before message_stop"))

    # -- internals --------------------------------------------------------

    def _fail(self, error: StreamError) -> list[UnifiedEvent]:
        self._state = _ParserState.ENDED
        return [error]

    def _start_if_needed(self, out: list[UnifiedEvent]) -> None:
        if self._state is _ParserState.BEFORE_START:
            self._state = _ParserState.STREAMING
            out.append(MessageStart(None, None))

    def _message_start(self, data: dict[str, Any], out: list[UnifiedEvent]) -> None:
        if self._state is not _ParserState.BEFORE_START:
            return
        self._state = _ParserState.STREAMING
        message = data.get("message")
        if not isinstance(message, dict):
            message = {}
        raw_id, model, raw_usage = message.get("id"), message.get("model"), message.get("usage")
        usage = None
        if isinstance(raw_usage, dict):
            usage = self._usage = usage_from_anthropic(raw_usage)
        out.append(
            MessageStart(
                raw_id if isinstance(raw_id, str) else None,
                model if isinstance(model, str) else None,
                usage,
            )
        )

    def _index(self, block: _UpstreamBlock) -> int:
        if block.index is None:
            block.index = self._next_index
            self._next_index += 1
        return block.index

    def _block_start(self, data: dict[str, Any], out: list[UnifiedEvent]) -> None:
        content = data.get("content_block")
        if not isinstance(content, dict):
            content = {}
        key = data.get("index")
        kind = content.get("type")
        if kind == "text":
            block = self._blocks[key] = _UpstreamBlock(_Kind.TEXT)
            text = content.get("text")
            if isinstance(text, str) and text:
                out.append(TextDelta(self._index(block), text))
        elif kind == "thinking":
            block = self._blocks[key] = _UpstreamBlock(_Kind.THINKING)
            thinking, signature = content.get("thinking"), content.get("signature")
            if isinstance(thinking, str) and thinking:
                out.append(ThinkingDelta(self._index(block), thinking))
            if isinstance(signature, str) and signature:
                out.append(SignatureDelta(self._index(block), signature))
        elif kind == "tool_use":
            block = self._blocks[key] = _UpstreamBlock(_Kind.TOOL)
            tool_id, name, tool_input = content.get("id"), content.get("name"), content.get("input")
            index = self._index(block)
            out.append(
                ToolCallStart(
                    index,
                    tool_id if isinstance(tool_id, str) else "",
                    name if isinstance(name, str) else "",
                )
            )
            if isinstance(tool_input, dict) and tool_input:
                out.append(ToolArgsDelta(index, compact_json(tool_input)))
        elif kind == "redacted_thinking":
            block = self._blocks[key] = _UpstreamBlock(_Kind.REDACTED)
            redacted = content.get("data")
            out.append(
                RedactedThinking(self._index(block), redacted if isinstance(redacted, str) else "")
            )
        else:
            self._blocks[key] = None  # server tool use and results: no counterpart elsewhere

    def _block_delta(self, data: dict[str, Any], out: list[UnifiedEvent]) -> None:
        block = self._blocks.get(data.get("index"))
        delta = data.get("delta")
        if block is None or not isinstance(delta, dict):
            return
        kind = delta.get("type")
        if kind == "text_delta" and block.kind is _Kind.TEXT:
            text = delta.get("text")
            if isinstance(text, str) and text:
                out.append(TextDelta(self._index(block), text))
        elif kind == "input_json_delta" and block.kind is _Kind.TOOL:
            piece = delta.get("partial_json")
            if isinstance(piece, str) and piece:
                out.append(ToolArgsDelta(self._index(block), piece))
        elif kind == "thinking_delta" and block.kind is _Kind.THINKING:
            thinking = delta.get("thinking")
            if isinstance(thinking, str) and thinking:
                out.append(ThinkingDelta(self._index(block), thinking))
        elif kind == "signature_delta" and block.kind is _Kind.THINKING:
            signature = delta.get("signature")
            if isinstance(signature, str) and signature:
                out.append(SignatureDelta(self._index(block), signature))
        # citations_delta and unknown delta types have no unified counterpart.

    def _close_blocks(self, out: list[UnifiedEvent]) -> None:
        for block in self._blocks.values():
            if block is not None and block.index is not None:
                out.append(BlockStop(block.index))
        self._blocks.clear()

    def _message_delta(self, data: dict[str, Any], out: list[UnifiedEvent]) -> None:
        self._close_blocks(out)
        delta = data.get("delta")
        if not isinstance(delta, dict):
            delta = {}
        stop = stop_reason_from_anthropic(delta.get("stop_reason"))
        sequence = delta.get("stop_sequence")
        raw_usage = data.get("usage")
        usage = None
        if isinstance(raw_usage, dict):
            usage = self._usage = usage_from_anthropic(raw_usage, self._usage)
        if stop is not None:
            self._state = _ParserState.STOPPING
        out.append(MessageDelta(stop, sequence if isinstance(sequence, str) else None, usage))

    def _complete(self, out: list[UnifiedEvent]) -> None:
        self._close_blocks(out)
        self._state = _ParserState.ENDED
        out.append(MessageStop())


# -- renderer ----------------------------------------------------------------------


@dataclass(slots=True)
class _ClientBlock:
    kind: _Kind
    first: ToolCallStart | RedactedThinking | None  # what content_block_start needs
    pending: list[UnifiedEvent] = field(default_factory=list)  # deltas waiting for the head
    stopped: bool = False  # BlockStop seen
    number: int = -1  # the client's index, once opened
    has_input: bool = False  # a non-blank argument piece was written


class _RendererState(Enum):
    BEFORE_START = auto()
    STREAMING = auto()
    DONE = auto()


def _event(name: str, data: str) -> str:
    return "event: " + name + "\ndata: " + data + "\n\n"


def _delta(number: int, delta: str) -> str:
    return _event(
        "content_block_delta",
        '{"type":"content_block_delta","index":' + str(number) + ',"delta":' + delta + "}",
    )


class AnthropicMessagesRenderer:
    """Unified events -> Anthropic message stream SSE bytes for one client stream."""

    __slots__ = (
        "_model",
        "_state",
        "_blocks",
        "_queue",
        "_next_number",
        "_stop_reason",
        "_stop_sequence",
        "_usage",
    )

    def __init__(self, *, model: str) -> None:
        self._model = model
        self._state = _RendererState.BEFORE_START
        self._blocks: dict[int, _ClientBlock] = {}
        self._queue: deque[_ClientBlock] = deque()  # head: the block open on the client side
        self._next_number = 0
        self._stop_reason: StopReason | None = None
        self._stop_sequence: str | None = None
        self._usage = Usage()

    def feed(self, event: UnifiedEvent) -> bytes:
        if self._state is _RendererState.DONE:
            return b""
        if isinstance(
            event,
            (
                TextDelta,
                ToolArgsDelta,
                ThinkingDelta,
                SignatureDelta,
                ToolCallStart,
                RedactedThinking,
            ),
        ):
            return self._content(event)
        if isinstance(event, BlockStop):
            block = self._blocks.get(event.index)
            if block is None or block.stopped:
                return b""
            block.stopped = True
            return self._advance().encode() if block is self._queue[0] else b""
        if isinstance(event, MessageDelta):
            if event.stop_reason is not None:
                self._stop_reason = event.stop_reason
                self._stop_sequence = event.stop_sequence
            if event.usage is not None:
                self._usage = event.usage
            return self._start(None)
        if isinstance(event, MessageStart):
            if event.usage is not None and self._state is _RendererState.BEFORE_START:
                self._usage = event.usage
            return self._start(event.id)
        if isinstance(event, MessageStop):
            return self._end()
        assert isinstance(event, StreamError)
        self._state = _RendererState.DONE
        return error_event(event)

    def finish(self) -> bytes:
        """End of the unified stream: nothing if it completed, else an error event."""
        if self._state is _RendererState.DONE:
            return b""
        return self.feed(StreamError("api_error", "upstream stream ended unexpectedly"))

    # -- internals --------------------------------------------------------

    def _start(self, upstream_id: str | None) -> bytes:
        if self._state is not _RendererState.BEFORE_START:
            return b""
        self._state = _RendererState.STREAMING
        message: dict[str, object] = {
            "id": response_id("msg_", upstream_id),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_to_anthropic(self._usage),
        }
        body = compact_json({"type": "message_start", "message": message})
        return _event("message_start", body).encode()

    def _content(
        self,
        event: TextDelta
        | ToolArgsDelta
        | ThinkingDelta
        | SignatureDelta
        | ToolCallStart
        | RedactedThinking,
    ) -> bytes:
        start = self._start(None)
        block = self._blocks.get(event.index)
        if block is None:
            if isinstance(event, TextDelta):
                block = _ClientBlock(_Kind.TEXT, None)
            elif isinstance(event, (ThinkingDelta, SignatureDelta)):
                block = _ClientBlock(_Kind.THINKING, None)
            elif isinstance(event, ToolCallStart):
                block = _ClientBlock(_Kind.TOOL, event)
            elif isinstance(event, RedactedThinking):
                block = _ClientBlock(_Kind.REDACTED, event)
            else:
                return start  # arguments for a call that never started
            self._blocks[event.index] = block
            self._queue.append(block)
            if block.first is None:
                block.pending.append(event)
            if len(self._queue) == 1:
                return start + self._open(block).encode()
            return start
        if block.stopped:
            return start
        if block is self._queue[0]:
            return start + self._render_delta(block, event).encode()
        block.pending.append(event)
        return start

    def _open(self, block: _ClientBlock) -> str:
        block.number = self._next_number
        self._next_number += 1
        if block.kind is _Kind.TEXT:
            content = '{"type":"text","text":""}'
        elif block.kind is _Kind.THINKING:
            content = '{"type":"thinking","thinking":"","signature":""}'
        elif isinstance(block.first, ToolCallStart):
            call = block.first
            content = compact_json(
                {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
            )
        else:
            assert isinstance(block.first, RedactedThinking)
            content = compact_json({"type": "redacted_thinking", "data": block.first.data})
        parts = [
            _event(
                "content_block_start",
                '{"type":"content_block_start","index":'
                + str(block.number)
                + ',"content_block":'
                + content
                + "}",
            )
        ]
        parts.extend([self._render_delta(block, event) for event in block.pending])
        block.pending.clear()
        return "".join(parts)

    def _render_delta(self, block: _ClientBlock, event: UnifiedEvent) -> str:
        if isinstance(event, TextDelta) and block.kind is _Kind.TEXT:
            return _delta(
                block.number, '{"type":"text_delta","text":' + compact_json(event.text) + "}"
            )
        if isinstance(event, ToolArgsDelta) and block.kind is _Kind.TOOL:
            if not block.has_input and not event.partial_json.isspace():
                block.has_input = True
            return _delta(
                block.number,
                '{"type":"input_json_delta","partial_json":'
                + compact_json(event.partial_json)
                + "}",
            )
        if isinstance(event, ThinkingDelta) and block.kind is _Kind.THINKING:
            return _delta(
                block.number,
                '{"type":"thinking_delta","thinking":' + compact_json(event.text) + "}",
            )
        if isinstance(event, SignatureDelta) and block.kind is _Kind.THINKING:
            return _delta(
                block.number,
                '{"type":"signature_delta","signature":' + compact_json(event.signature) + "}",
            )
        return ""  # a delta that does not fit its block

    def _close(self, block: _ClientBlock) -> str:
        out = ""
        if block.kind is _Kind.TOOL and not block.has_input:
            out = _delta(block.number, '{"type":"input_json_delta","partial_json":"{}"}')
        body = '{"type":"content_block_stop","index":' + str(block.number) + "}"
        return out + _event("content_block_stop", body)

    def _advance(self) -> str:
        """Close stopped blocks at the head of the queue, opening each next one."""
        parts: list[str] = []
        queue = self._queue
        while queue and queue[0].stopped:
            parts.append(self._close(queue.popleft()))
            if queue:
                parts.append(self._open(queue[0]))
        return "".join(parts)

    def _end(self) -> bytes:
        start = self._start(None)
        for block in self._queue:
            block.stopped = True
        blocks = self._advance()
        self._state = _RendererState.DONE
        delta: dict[str, str | None] = {
            "stop_reason": (self._stop_reason or StopReason.END_TURN).value,
            "stop_sequence": self._stop_sequence,
        }
        body = compact_json(
            {"type": "message_delta", "delta": delta, "usage": usage_to_anthropic(self._usage)}
        )
        tail = _event("message_delta", body) + _event("message_stop", '{"type":"message_stop"}')
        return start + (blocks + tail).encode()
