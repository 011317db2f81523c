"""Stream pipes: upstream SSE bytes in, the client's SSE bytes out, one chunk at a time.

Theory of operation: the proxy pulls a chunk from the upstream, hands it to
``feed`` and writes what comes back before pulling the next, so memory stays
bounded by one chunk. Three pipes, chosen once per stream:

* ``TapPipe``: same format and model, nothing to hide. Bytes pass through as
  they are; only events that carry usage are parsed, to record it.
* ``RewritePipe``: same format, but the model was renamed by a ``model_map``
  or the gateway asked for usage the client did not. Events are decoded and
  re-encoded by the format's rewriter, which renames the model, hides the
  gateway's usage and records usage, keeping every other field as sent.
* ``ConvertPipe``: different formats. Decoder -> the upstream format's parser
  -> unified events -> the client format's renderer.

A client that asked for its stream as a JSON array (the Gemini API without
``alt=sse``) gets the chosen pipe wrapped in an ``ArrayPipe``, which frames
the pipe's SSE output as array elements (``streaming.json_array``).
An upstream that answered with such an array (``StreamFormat.array_stream``)
has its body read by an ``ArrayInputPipe`` in front of the chosen pipe, which
turns each element into an SSE event (``streaming.json_array_reader``).

``finish`` is called at the end of the upstream body and closes the client's
stream properly: a converter emits an error event if the upstream stopped
early, and so do the passthrough pipes when the stream's bytes show neither
its final event nor a stop reason (``StreamFormat.end_marks``,
``answer_marks``). ``fail`` is called when reading the upstream failed: it
produces an error event in the client's format and ends the stream; nothing
follows it. ``complete`` turns true once the client has the stream's final
event (every pipe watches its output for the client format's end marks): the
proxy then waits only briefly for the rest of the upstream body, and a failure
after that point is no longer the client's concern.

Every error event that reaches the client passes the attempt's ``Redactor``
(the account's credential and key-shaped strings masked): the upstream's own
error events in the passthrough pipes (only events that mention ``"error"``
are looked at), the converted ones, and those the pipes write themselves.
Response ids keep the client format's style: the passthrough pipes look for
the style in the stream's first event (``StreamFormat.id_marks``) and, when
it is not there, hand the stream to the format's rewriter to restyle them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from ..formats.error_relay import Redactor
from ..formats.unified import Usage
from ..streaming.events import MessageDelta, MessageStart, StreamError, UnifiedEvent
from ..streaming.json_array import JSONArrayFramer
from ..streaming.json_array_reader import JSONArrayReader
from ..streaming.registry import STREAM_FORMATS, StreamFormat, StreamRewriter
from ..streaming.sse import SSEDecoder, SSEEvent

__all__ = [
    "ArrayInputPipe",
    "ArrayPipe",
    "ConvertPipe",
    "RewritePipe",
    "StreamPipe",
    "TapPipe",
    "make_stream_pipe",
]

#: bytes of one unfinished event the fast path holds before it hands over to the
#: decoder, whose own line limit then applies
_MAX_PENDING = 1 << 20
#: what an event carrying an error has in its bytes (a text delta's quotes are escaped)
_ERROR_MARK = b'"error"'
#: a pipe made without the account's redactor still masks key-shaped strings
_PATTERNS_ONLY = Redactor()
_EVENT_ENDS = (b"\n\n", b"\r\n\r\n", b"\r\r")


class StreamPipe(Protocol):
    @property
    def usage(self) -> Usage | None: ...

    @property
    def complete(self) -> bool: ...

    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...

    def fail(self, kind: str, message: str) -> bytes: ...


class _Progress:
    """How far a client stream got, read from its bytes (see ``StreamFormat``)."""

    __slots__ = ("_answer_marks", "_end_marks", "answered", "complete")

    def __init__(self, fmt: StreamFormat) -> None:
        self._end_marks = fmt.end_marks
        self._answer_marks = fmt.answer_marks
        self.complete = False  # its final event went out
        self.answered = False  # a stop or finish reason went out

    def watch(self, out: bytes) -> None:
        if any(mark in out for mark in self._end_marks):
            self.complete = self.answered = True
        elif not self.answered and any(mark in out for mark in self._answer_marks):
            self.answered = True

    def seen(self, out: bytes) -> bytes:
        """``out``, watched on its way to the client (until the stream is complete)."""
        if out and not self.complete:
            self.watch(out)
        return out


class _PassthroughEnd:
    """What the two passthrough pipes share: their progress and how they end."""

    __slots__ = ()
    _format: StreamFormat
    _progress: _Progress
    _redactor: Redactor

    @property
    def complete(self) -> bool:
        return self._progress.complete

    def _ended(self, tail: bytes) -> bytes:
        """``tail`` (the last bytes), and an error event if the answer is not whole."""
        self._progress.watch(tail)
        if self._progress.answered:
            return tail
        early = StreamError(
            "api_error", "the upstream ended the stream before the answer was complete"
        )
        return tail + self._format.error_event(early)

    def fail(self, kind: str, message: str) -> bytes:
        if self._progress.answered:  # the client has the whole answer already
            return b""
        return self._format.error_event(StreamError(kind, self._redactor.text(message)))


def _guarded(rewriter: StreamRewriter, redactor: Redactor) -> Callable[[SSEEvent], bytes]:
    """``rewriter.feed``, with the events that carry an error redacted."""
    rewrite = rewriter.feed

    def feed(event: SSEEvent) -> bytes:
        out = rewrite(event)
        return redactor.body(out) if '"error"' in event.data else out

    return feed


class RewritePipe(_PassthroughEnd):
    __slots__ = ("_decoder", "_format", "_progress", "_redactor", "_rewrite", "_rewriter")

    def __init__(
        self,
        client_format: str,
        rename_to: str | None,
        strip_usage: bool,
        redactor: Redactor = _PATTERNS_ONLY,
    ):
        self._format = STREAM_FORMATS[client_format]
        self._progress = _Progress(self._format)
        self._decoder = SSEDecoder()
        self._redactor = redactor
        self._rewriter = self._format.rewriter_factory(
            model=rename_to, strip_usage=strip_usage, id_prefix=self._format.id_prefix
        )
        self._rewrite = _guarded(self._rewriter, redactor)

    @property
    def usage(self) -> Usage | None:
        return self._rewriter.usage

    def feed(self, data: bytes) -> bytes:
        rewrite = self._rewrite
        out = b"".join([rewrite(event) for event in self._decoder.feed(data)])
        return self._progress.seen(out)

    def finish(self) -> bytes:
        rewrite = self._rewrite
        out = b"".join([rewrite(event) for event in self._decoder.close()])
        return self._ended(out + self._rewriter.finish())


class TapPipe(_PassthroughEnd):
    """Same format, same model: the upstream's bytes go out as they are.

    Only whole events are passed on (a partial event waits for its end, which
    a client could not use earlier anyway), found with one ``rfind`` per chunk;
    the format's rewriter sees just the events that mention ``"usage"``, to
    record usage and to hide the usage the gateway asked for, and the
    redactor those that mention ``"error"``. Streams with CR line endings, or
    whose first event shows an id not in the client format's style, are
    handed to the full decoder instead (with a rewriter that restyles ids).
    """

    __slots__ = (
        "_decoder",
        "_events",
        "_format",
        "_head",
        "_pending",
        "_progress",
        "_redactor",
        "_rewrite",
        "_rewriter",
        "_strip",
    )

    def __init__(self, client_format: str, strip_usage: bool, redactor: Redactor = _PATTERNS_ONLY):
        self._format = STREAM_FORMATS[client_format]
        self._progress = _Progress(self._format)
        self._strip = strip_usage
        self._redactor = redactor
        self._events = SSEDecoder()  # only ever fed whole events, so it holds no state
        self._pending = b""
        #: the stream's start, until its first event shows the id style (None: seen)
        self._head: bytes | None = b""
        self._decoder: SSEDecoder | None = None  # set once the fast path no longer applies
        self._rewriter = self._format.rewriter_factory(model=None, strip_usage=strip_usage)
        self._rewrite = _guarded(self._rewriter, redactor)

    @property
    def usage(self) -> Usage | None:
        return self._rewriter.usage

    def feed(self, data: bytes) -> bytes:
        if self._head is not None:
            data = self._first_event(data)
            if not data:
                return b""
        return self._progress.seen(self._pass(data))

    def _first_event(self, data: bytes) -> bytes:
        """Hold the stream's bytes until its first event is whole; if that event
        has no id in the client format's style, every event goes through a
        rewriter that gives it one. Returns what may go on (nothing yet, or all)."""
        assert self._head is not None
        head = self._head + data
        if not any(end in head for end in _EVENT_ENDS) and len(head) <= _MAX_PENDING:
            self._head = head
            return b""
        return self._styled(head)

    def _styled(self, head: bytes) -> bytes:
        """``head`` (the first event) decides whether ids need restyling."""
        self._head = None
        if self._format.id_prefix and not any(mark in head for mark in self._format.id_marks):
            self._decoder = SSEDecoder()
            self._rewriter = self._format.rewriter_factory(
                model=None, strip_usage=self._strip, id_prefix=self._format.id_prefix
            )
            self._rewrite = _guarded(self._rewriter, self._redactor)
        return head

    def _pass(self, data: bytes) -> bytes:
        if self._decoder is None and (b"\r" in data or len(self._pending) > _MAX_PENDING):
            self._decoder = SSEDecoder()
            data, self._pending = self._pending + data, b""
        if self._decoder is not None:
            rewrite = self._rewrite
            return b"".join([rewrite(event) for event in self._decoder.feed(data)])
        buffer = self._pending + data if self._pending else data
        cut = buffer.rfind(b"\n\n")
        if cut < 0:
            self._pending = buffer
            return b""
        complete, self._pending = buffer[: cut + 2], buffer[cut + 2 :]
        if not self._needs_rewriter(complete) and _ERROR_MARK not in complete:
            return complete
        return self._rewrite_events(complete)

    def _needs_rewriter(self, data: bytes) -> bool:
        """Does ``data`` carry usage (or usage the gateway must hide)?

        OpenAI puts ``"usage":null`` on every chunk once usage is asked for; a
        null carries nothing to record, so only hiding it needs the rewriter.
        """
        mentions = data.count(b'"usage"')
        if not mentions or self._strip:
            return mentions > 0
        return mentions > data.count(b'"usage":null') + data.count(b'"usage": null')

    def _rewrite_events(self, complete: bytes) -> bytes:
        """Whole LF-framed events: those that mention usage go through the rewriter,
        those that mention an error through the redactor."""
        out = []
        for raw in complete.split(b"\n\n")[:-1]:
            event = raw + b"\n\n"
            if self._needs_rewriter(raw):
                event = self._decode_and_rewrite(event)
            if _ERROR_MARK in raw:
                event = self._redactor.body(event)
            out.append(event)
        return b"".join(out)

    def _decode_and_rewrite(self, data: bytes) -> bytes:
        rewrite = self._rewriter.feed
        events = self._events.feed(data) + self._events.close()
        return b"".join([rewrite(event) for event in events])

    def finish(self) -> bytes:
        out = b""
        if self._head:  # a stream shorter than one whole event
            out = self._pass(self._styled(self._head))
        self._head = None
        if self._decoder is not None:
            rewrite = self._rewrite
            out += b"".join([rewrite(event) for event in self._decoder.close()])
        elif self._pending.strip():
            event = self._decode_and_rewrite(self._pending)
            out += self._redactor.body(event) if _ERROR_MARK in self._pending else event
        self._pending = b""
        return self._ended(out + self._rewriter.finish())


class ConvertPipe:
    """Different formats; the renderer ends the client's stream itself."""

    __slots__ = ("_decoder", "_parser", "_progress", "_redactor", "_renderer", "usage")

    def __init__(
        self,
        client_format: str,
        upstream_format: str,
        client_model: str,
        include_usage: bool,
        redactor: Redactor = _PATTERNS_ONLY,
    ):
        self._redactor = redactor
        self._progress = _Progress(STREAM_FORMATS[client_format])
        self._decoder = SSEDecoder()
        self._parser = STREAM_FORMATS[upstream_format].parser_factory()
        self._renderer = STREAM_FORMATS[client_format].renderer_factory(
            model=client_model, include_usage=include_usage, created=int(time.time())
        )
        self.usage: Usage | None = None

    def _render(self, unified: UnifiedEvent) -> bytes:
        if isinstance(unified, (MessageStart, MessageDelta)) and unified.usage is not None:
            self.usage = unified.usage
        elif isinstance(unified, StreamError):
            unified = StreamError(unified.kind, self._redactor.text(unified.message))
        return self._renderer.feed(unified)

    @property
    def complete(self) -> bool:
        return self._progress.complete

    def feed(self, data: bytes) -> bytes:
        parse, render = self._parser.feed, self._render
        out = b"".join(
            [render(unified) for event in self._decoder.feed(data) for unified in parse(event)]
        )
        return self._progress.seen(out)

    def finish(self) -> bytes:
        parse, render = self._parser.feed, self._render
        out = [render(unified) for event in self._decoder.close() for unified in parse(event)]
        out += [render(unified) for unified in self._parser.finish()]
        out.append(self._renderer.finish())
        return b"".join(out)

    def fail(self, kind: str, message: str) -> bytes:
        error = StreamError(kind, self._redactor.text(message))
        return self._renderer.feed(error) + self._renderer.finish()


class _Wrapping:
    """A pipe around another, whose usage and completeness are the inner pipe's."""

    __slots__ = ("_pipe",)

    def __init__(self, pipe: StreamPipe) -> None:
        self._pipe = pipe

    @property
    def usage(self) -> Usage | None:
        return self._pipe.usage

    @property
    def complete(self) -> bool:
        return self._pipe.complete


class ArrayPipe(_Wrapping):
    """Another pipe whose SSE output goes to the client as a JSON array."""

    __slots__ = ("_framer",)

    def __init__(self, pipe: StreamPipe) -> None:
        super().__init__(pipe)
        self._framer = JSONArrayFramer()

    def feed(self, data: bytes) -> bytes:
        return self._framer.feed(self._pipe.feed(data))

    def finish(self) -> bytes:
        framer = self._framer
        return framer.feed(self._pipe.finish()) + framer.finish()

    def fail(self, kind: str, message: str) -> bytes:
        framer = self._framer
        return framer.feed(self._pipe.fail(kind, message)) + framer.finish()


class ArrayInputPipe(_Wrapping):
    """Another pipe fed an upstream's JSON-array stream, element by element, as SSE."""

    __slots__ = ("_reader",)

    def __init__(self, pipe: StreamPipe) -> None:
        super().__init__(pipe)
        self._reader = JSONArrayReader()

    def feed(self, data: bytes) -> bytes:
        events = self._reader.feed(data)
        return self._pipe.feed(events) if events else b""

    def finish(self) -> bytes:
        return self._pipe.finish()

    def fail(self, kind: str, message: str) -> bytes:
        return self._pipe.fail(kind, message)


def make_stream_pipe(
    *,
    client_format: str,
    upstream_format: str,
    client_model: str,
    rename_model: bool,
    passthrough: bool,
    include_usage: bool,
    strip_usage: bool,
    redactor: Redactor = _PATTERNS_ONLY,
    json_array: bool = False,
    array_input: bool = False,
) -> StreamPipe:
    pipe = _pipe_for(
        client_format=client_format,
        upstream_format=upstream_format,
        client_model=client_model,
        rename_model=rename_model,
        passthrough=passthrough,
        include_usage=include_usage,
        strip_usage=strip_usage,
        redactor=redactor,
    )
    if json_array:
        pipe = ArrayPipe(pipe)
    return ArrayInputPipe(pipe) if array_input else pipe


def _pipe_for(
    *,
    client_format: str,
    upstream_format: str,
    client_model: str,
    rename_model: bool,
    passthrough: bool,
    include_usage: bool,
    strip_usage: bool,
    redactor: Redactor,
) -> StreamPipe:
    if not passthrough:
        return ConvertPipe(client_format, upstream_format, client_model, include_usage, redactor)
    if rename_model or strip_usage:
        # Hiding usage means editing every OpenAI chunk ("usage": null is on
        # each): the rewriter does that cheaper than the tap's per-event path.
        rename_to = client_model if rename_model else None
        return RewritePipe(client_format, rename_to, strip_usage, redactor)
    return TapPipe(client_format, strip_usage, redactor)
