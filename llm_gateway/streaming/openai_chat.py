"""OpenAI chat completions streams: parser (upstream side) and renderer (client side).

Theory of operation, parser: each ``data:`` event is one ``chat.completion.chunk``
(or ``[DONE]``). Only choice 0 is read. The state machine is

    BEFORE_START --first chunk--> STREAMING --finish_reason--> FINISHING
    FINISHING --[DONE] or end of input--> ENDED
    any --error chunk, malformed chunk, early end--> ENDED (with StreamError)

OpenAI has no content blocks, so the parser makes them: ``reasoning_content``
(DeepSeek, vLLM; ``reasoning`` as some servers name it) is a thinking block,
``content`` (and ``refusal``) a text block, each ``tool_calls`` entry a tool
block. A text or thinking block is closed as soon as anything else arrives
(text resuming later opens a new block, which every client renders the same).
Tool calls stay open until the finish chunk, because their argument pieces
may interleave. Tool deltas are keyed by ``index``; by ``id`` when an upstream
omits the index; a delta with neither continues the latest call; a delta
whose id differs from the call already at its index starts a new call
(servers that put every call at index 0). The usage chunk after the finish
chunk (or ``usage`` on any chunk) becomes a ``MessageDelta`` with usage only;
``usage: null`` is ignored. A stream that ends after its finish chunk but
before ``[DONE]`` is taken as complete.

Renderer: every chunk shares one id, ``created`` and the client's model, so
the common prefix is built once and each chunk is that prefix plus the JSON
of its delta. The first chunk carries ``role``; tool calls are numbered 0, 1,
2 in order of appearance, with id/type/name only in their first delta, and a
call without arguments gets ``"{}"``; thinking becomes ``reasoning_content``.
Exactly one chunk carries ``finish_reason``; the usage chunk (empty
``choices``) follows only when the client asked for it (with zeros if the
upstream never reported usage); then ``data: [DONE]`` once. After a
``StreamError`` the renderer writes an ``{"error": ...}`` chunk and ``[DONE]``
and ignores everything else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum, auto
from typing import Any, ClassVar

from llm_gateway.errors import UpstreamError
from llm_gateway.formats import openai_family
from llm_gateway.formats.fields import FieldReader
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
from llm_gateway.streaming.ids import new_tool_call_id, response_id
from llm_gateway.streaming.sse import DONE_EVENT, SSEEvent, compact_json, is_done

__all__ = [
    "OpenAIChatParser",
    "OpenAIChatRenderer",
    "error_event",
    "stream_error_from_openai",
    "usage_from_openai",
]

_MALFORMED = StreamError("api_error", "upstream sent a malformed stream chunk")


def usage_from_openai(raw: object) -> Usage | None:
    """An OpenAI ``usage`` value -> unified usage; None when null or malformed."""
    if not isinstance(raw, dict):
        return None
    try:
        return openai_family.parse_usage(FieldReader(raw, "usage", error=UpstreamError))
    except UpstreamError:
        return None


def stream_error_from_openai(data: str) -> StreamError:
    """A chunk ``{"error": ...}`` -> StreamError (kind mapped, message made client-safe)."""
    kind, message = openai_family.parse_error(502, data.encode())
    return StreamError(kind, message)


def error_event(error: StreamError) -> bytes:
    """The end of a failed OpenAI-format stream: an ``{"error": ...}`` chunk, then ``[DONE]``."""
    body = openai_family.render_error(502, error.kind, error.message)
    return b"data: " + compact_json(body).encode() + b"\n\n" + DONE_EVENT


def finish_reason(stop: StopReason | None) -> str:
    """The ``finish_reason`` to send; a stream that gave none stopped normally."""
    return openai_family.finish_reason(stop) or "stop"


class _ParserState(Enum):
    BEFORE_START = auto()
    STREAMING = auto()
    FINISHING = auto()
    ENDED = auto()


@dataclass(slots=True)
class _ToolCall:
    index: int  # unified block index
    id: str


class OpenAIChatParser:
    """Upstream OpenAI chat stream -> unified events. One instance per stream."""

    __slots__ = (
        "_state",
        "_next_index",
        "_text",
        "_thinking",
        "_tools",
        "_open_tools",
        "_last_tool",
    )

    def __init__(self) -> None:
        self._state = _ParserState.BEFORE_START
        self._next_index = 0
        self._text: int | None = None  # open text block
        self._thinking: int | None = None  # open thinking block
        self._tools: dict[int | str, _ToolCall] = {}  # by upstream index and by id
        self._open_tools: list[int] = []  # block indices of the calls seen, in order
        self._last_tool: _ToolCall | None = None

    def feed(self, event: SSEEvent) -> list[UnifiedEvent]:
        if self._state is _ParserState.ENDED:
            return []
        if is_done(event):
            return self._complete()
        try:
            chunk = json.loads(event.data)
        except ValueError:
            return self._fail(_MALFORMED)
        if not isinstance(chunk, dict):
            return self._fail(_MALFORMED)
        if chunk.get("error"):
            return self._fail(stream_error_from_openai(event.data))
        out: list[UnifiedEvent] = []
        if self._state is _ParserState.BEFORE_START:
            self._state = _ParserState.STREAMING
            upstream_id, model = chunk.get("id"), chunk.get("model")
            out.append(
                MessageStart(
                    upstream_id if isinstance(upstream_id, str) else None,
                    model if isinstance(model, str) else None,
                )
            )
        stop: StopReason | None = None
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                delta = self._delta_of(choice)
                if delta is not None and self._state is _ParserState.STREAMING:
                    self._delta(delta, out)
                reason = choice.get("finish_reason")
                if isinstance(reason, str) and reason:
                    stop = openai_family.stop_reason(reason)
        usage = usage_from_openai(chunk.get("usage"))
        if stop is not None and self._state is _ParserState.STREAMING:
            self._close_blocks(out)
            self._state = _ParserState.FINISHING
            out.append(MessageDelta(stop, None, usage))
        elif usage is not None:
            out.append(MessageDelta(None, None, usage))
        return out

    def finish(self) -> list[UnifiedEvent]:
        if self._state is _ParserState.ENDED:
            return []
        if self._state is _ParserState.FINISHING:
            return self._complete()
        return self._fail(StreamError("api_error", "upstream stream ended before it finished"))

    # -- internals --------------------------------------------------------

    def _delta_of(self, choice: dict[str, Any]) -> dict[str, Any] | None:
        """The choice's delta (a hook: the completions parser reads ``text`` instead)."""
        delta = choice.get("delta")
        return delta if isinstance(delta, dict) else None

    def _fail(self, error: StreamError) -> list[UnifiedEvent]:
        self._state = _ParserState.ENDED
        return [error]

    def _complete(self) -> list[UnifiedEvent]:
        out: list[UnifiedEvent] = []
        if self._state is _ParserState.BEFORE_START:
            out.append(MessageStart(None, None))
        if self._state is not _ParserState.FINISHING:
            self._close_blocks(out)
            out.append(MessageDelta(StopReason.END_TURN))
        self._state = _ParserState.ENDED
        out.append(MessageStop())
        return out

    def _new_index(self) -> int:
        index = self._next_index
        self._next_index += 1
        return index

    def _close_thinking(self, out: list[UnifiedEvent]) -> None:
        if self._thinking is not None:
            out.append(BlockStop(self._thinking))
            self._thinking = None

    def _close_text(self, out: list[UnifiedEvent]) -> None:
        if self._text is not None:
            out.append(BlockStop(self._text))
            self._text = None

    def _close_prose(self, out: list[UnifiedEvent]) -> None:
        self._close_thinking(out)
        self._close_text(out)

    def _close_blocks(self, out: list[UnifiedEvent]) -> None:
        self._close_prose(out)
        out.extend([BlockStop(index) for index in self._open_tools])
        self._open_tools.clear()
        self._tools.clear()
        self._last_tool = None

    def _delta(self, delta: dict[str, Any], out: list[UnifiedEvent]) -> None:
        reasoning = delta.get("reasoning_content")
        if not isinstance(reasoning, str):
            reasoning = delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            self._close_text(out)
            if self._thinking is None:
                self._thinking = self._new_index()
            out.append(ThinkingDelta(self._thinking, reasoning))
        for key in ("content", "refusal"):
            text = delta.get(key)
            if isinstance(text, str) and text:
                self._close_thinking(out)
                if self._text is None:
                    self._text = self._new_index()
                out.append(TextDelta(self._text, text))
        tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list):
            for piece in tool_calls:
                if isinstance(piece, dict):
                    self._tool_piece(piece, out)

    def _tool_piece(self, piece: dict[str, Any], out: list[UnifiedEvent]) -> None:
        raw_index, raw_id = piece.get("index"), piece.get("id")
        index = (
            raw_index if isinstance(raw_index, int) and not isinstance(raw_index, bool) else None
        )
        call_id = raw_id if isinstance(raw_id, str) and raw_id else None
        function = piece.get("function")
        if not isinstance(function, dict):
            function = {}
        call: _ToolCall | None
        if index is not None:
            call = self._tools.get(index)
            if call is not None and call_id is not None and call_id != call.id:
                call = None  # a new call reusing an index
        elif call_id is not None:
            call = self._tools.get(call_id)
        else:
            call = self._last_tool
        if call is None:
            self._close_prose(out)
            call = _ToolCall(self._new_index(), call_id or new_tool_call_id())
            self._open_tools.append(call.index)
            if index is not None:
                self._tools[index] = call
            if call_id is not None:
                self._tools[call_id] = call
            name = function.get("name")
            out.append(ToolCallStart(call.index, call.id, name if isinstance(name, str) else ""))
        self._last_tool = call
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            self._close_prose(out)
            out.append(ToolArgsDelta(call.index, arguments))


class _RendererState(Enum):
    BEFORE_START = auto()
    STREAMING = auto()
    FINISHED = auto()  # the finish_reason chunk is out
    DONE = auto()  # [DONE] is out; nothing more is written


@dataclass(slots=True)
class _ToolOut:
    number: int  # the client's tool_calls[].index
    has_arguments: bool = False


class OpenAIChatRenderer:
    """Unified events -> OpenAI ``chat.completion.chunk`` SSE bytes for one client stream.

    The chunk shape lives in ``_opening``, ``_text_chunk`` and ``_finish_line``
    (and the two class constants), which the completions renderer replaces.
    """

    _OBJECT: ClassVar[str] = "chat.completion.chunk"
    _ID_PREFIX: ClassVar[str] = "chatcmpl-"

    __slots__ = (
        "_model",
        "_created",
        "_include_usage",
        "_state",
        "_head",
        "_prefix",
        "_tools",
        "_stop_reason",
        "_usage",
    )

    def __init__(self, *, model: str, created: int, include_usage: bool = False) -> None:
        self._model = model
        self._created = created
        self._include_usage = include_usage
        self._state = _RendererState.BEFORE_START
        self._head = ""  # '{"id":...,"object":...,"created":...,"model":...,'
        self._prefix = ""  # _head + '"choices":[{"index":0,"delta":'
        self._tools: dict[int, _ToolOut] = {}
        self._stop_reason: StopReason | None = None
        self._usage: Usage | None = None

    def feed(self, event: UnifiedEvent) -> bytes:
        if self._state is _RendererState.DONE:
            return b""
        if isinstance(event, TextDelta):
            return self._start_if_needed() + self._text_chunk(event.text)
        if isinstance(event, ToolArgsDelta):
            tool = self._tools.get(event.index)
            if tool is None or not event.partial_json:
                return b""
            tool.has_arguments = tool.has_arguments or not event.partial_json.isspace()
            return self._arguments(tool.number, event.partial_json)
        if isinstance(event, ThinkingDelta):
            return self._start_if_needed() + self._chunk(
                '{"reasoning_content":' + compact_json(event.text) + "}"
            )
        if isinstance(event, ToolCallStart):
            return self._tool_start(event)
        if isinstance(event, BlockStop):
            return self._block_stop(event.index)
        if isinstance(event, MessageDelta):
            if event.usage is not None:
                self._usage = event.usage
            if event.stop_reason is not None:
                self._stop_reason = event.stop_reason
                return self._finish_chunk()
            return b""
        if isinstance(event, MessageStart):
            if self._state is _RendererState.BEFORE_START:
                self._usage = event.usage
                return self._start(event.id)
            return b""
        if isinstance(event, MessageStop):
            return self._end()
        if isinstance(event, StreamError):
            self._state = _RendererState.DONE
            return error_event(event)
        # SignatureDelta and RedactedThinking have no OpenAI counterpart.
        assert isinstance(event, (SignatureDelta, RedactedThinking))
        return b""

    def finish(self) -> bytes:
        """End of the unified stream: nothing if it completed, else an error chunk."""
        if self._state is _RendererState.DONE:
            return b""
        return self.feed(StreamError("api_error", "upstream stream ended unexpectedly"))

    # -- internals --------------------------------------------------------

    def _start(self, upstream_id: str | None) -> bytes:
        self._state = _RendererState.STREAMING
        self._head = (
            '{"id":'
            + compact_json(response_id(self._ID_PREFIX, upstream_id))
            + ',"object":"'
            + self._OBJECT
            + '","created":'
            + str(int(self._created))
            + ',"model":'
            + compact_json(self._model)
            + ","
        )
        self._prefix = self._head + '"choices":[{"index":0,"delta":'
        return self._opening()

    def _opening(self) -> bytes:
        return self._chunk('{"role":"assistant","content":""}')

    def _text_chunk(self, text: str) -> bytes:
        return self._chunk('{"content":' + compact_json(text) + "}")

    def _finish_line(self, reason: str) -> bytes:
        return self._chunk("{}", '"' + reason + '"')

    def _start_if_needed(self) -> bytes:
        return self._start(None) if self._state is _RendererState.BEFORE_START else b""

    def _chunk(self, delta: str, finish: str = "null") -> bytes:
        text = "data: " + self._prefix + delta + ',"logprobs":null,"finish_reason":'
        return (text + finish + "}]}\n\n").encode()

    def _arguments(self, number: int, piece: str) -> bytes:
        return self._chunk(
            '{"tool_calls":[{"index":'
            + str(number)
            + ',"function":{"arguments":'
            + compact_json(piece)
            + "}}]}"
        )

    def _tool_start(self, event: ToolCallStart) -> bytes:
        if event.index in self._tools:
            return b""
        tool = _ToolOut(len(self._tools))
        self._tools[event.index] = tool
        call = {
            "index": tool.number,
            "id": event.id,
            "type": "function",
            "function": {"name": event.name, "arguments": ""},
        }
        return self._start_if_needed() + self._chunk('{"tool_calls":[' + compact_json(call) + "]}")

    def _block_stop(self, index: int) -> bytes:
        tool = self._tools.get(index)
        if tool is None or tool.has_arguments:
            return b""
        tool.has_arguments = True
        return self._arguments(tool.number, "{}")  # a call without arguments takes none

    def _finish_chunk(self) -> bytes:
        if self._state is _RendererState.FINISHED:
            return b""
        out = self._start_if_needed()
        out += b"".join([self._block_stop(index) for index in self._tools])
        self._state = _RendererState.FINISHED
        return out + self._finish_line(finish_reason(self._stop_reason))

    def _end(self) -> bytes:
        out = self._finish_chunk()
        if self._include_usage:
            usage = compact_json(openai_family.render_usage(self._usage or Usage()))
            out += ("data: " + self._head + '"choices":[],"usage":' + usage + "}\n\n").encode()
        self._state = _RendererState.DONE
        return out + DONE_EVENT
