"""Server-sent events: an incremental decoder and an encoder.

Theory of operation: ``SSEDecoder.feed`` takes whatever bytes the network
delivered and returns the events they complete, following the WHATWG
EventSource parsing rules:

* Lines end in LF, CR or CRLF. A CR at the very end of a chunk sets
  ``_skip_lf`` so that an LF starting the next chunk is not read as a second
  (blank) line. Bytes of an unfinished line wait in ``_buf``.
* Lines are split on bytes, before decoding, and CR/LF never occur inside a
  multi-byte UTF-8 sequence, so decoding line by line is correct however the
  input was split. Invalid UTF-8 is replaced with U+FFFD, as the spec says.
* A UTF-8 BOM at the start of the stream is dropped (``_head`` holds up to
  two bytes while it is still undecided).
* ``field: value`` lines fill the event being built (one space after the
  colon is dropped); ``:`` lines are comments; a blank line dispatches the
  event if it has at least one ``data`` line. ``id`` and ``retry`` are stream
  state, as in the spec: each event carries the last id and reconnection time
  set so far (``None`` if never set).
* Memory is bounded: a line longer than ``max_line_bytes`` bytes, or one
  event's data longer than ``max_line_bytes`` characters, raises ``SSEError``
  instead of growing the buffers.

One deliberate difference from the spec: ``close()`` dispatches an event that
was complete but for its final blank line (and reads an unterminated last
line), instead of discarding it. Upstreams that close right after
``data: [DONE]`` without the blank line are common enough, and the stream
parsers judge whether a stream was complete anyway.

``encode_event`` writes an event back: ``event:`` line if named, one ``data:``
line per line of data, then a blank line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from llm_gateway.errors import UpstreamError

__all__ = [
    "DONE",
    "DONE_EVENT",
    "SSEDecoder",
    "SSEError",
    "SSEEvent",
    "compact_json",
    "encode_event",
    "is_done",
]

DONE = "[DONE]"
"""The data of OpenAI's terminal event. It is ordinary SSE data, not framing."""

DONE_EVENT = b"data: [DONE]\n\n"
"""The encoded terminal event, as OpenAI-format streams end."""

_BOM = b"\xef\xbb\xbf"
_JSON_SEPARATORS = (",", ":")
_CR = 0x0D
_LF = 0x0A
_COLON = 0x3A


class SSEError(UpstreamError):
    """The upstream's event stream cannot be framed (a line or event is too long)."""


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event. ``event`` is ``None`` when the stream named no type."""

    event: str | None
    data: str
    id: str | None = None
    retry: int | None = None


def is_done(event: SSEEvent) -> bool:
    """True for OpenAI's ``data: [DONE]`` terminal event."""
    return event.data.strip() == DONE


def compact_json(value: object) -> str:
    """``value`` as compact JSON text (no spaces), for an event's data.

    A string, the commonest value (a text piece), goes through ``json``'s cached
    default encoder: ``json.dumps`` with ``separators=`` builds a new encoder per
    call, three times slower, and separators do not matter for a string.
    """
    if type(value) is str:
        return json.dumps(value)
    return json.dumps(value, separators=_JSON_SEPARATORS)


def encode_event(data: str, event: str | None = None) -> bytes:
    """Encode one event. Each line of ``data`` (split on CRLF, CR or LF) gets its own
    ``data:`` line, so the decoder reads it back joined with LF."""
    if "\n" in data or "\r" in data:
        lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        body = "".join(["data: " + line + "\n" for line in lines])
    else:
        body = "data: " + data + "\n"
    if event:
        if "\n" in event or "\r" in event:
            raise ValueError("an SSE event name cannot contain a line break")
        return ("event: " + event + "\n" + body + "\n").encode()
    return (body + "\n").encode()


class SSEDecoder:
    """Incremental SSE decoder: ``feed`` bytes, get the events they complete."""

    __slots__ = (
        "_max",
        "_buf",
        "_skip_lf",
        "_at_start",
        "_head",
        "_data",
        "_data_len",
        "_event",
        "_last_id",
        "_retry",
    )

    def __init__(self, max_line_bytes: int = 1 << 20) -> None:
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be positive")
        self._max = max_line_bytes
        self._reset()

    def _reset(self) -> None:
        self._buf = bytearray()  # bytes of the current, unterminated line
        self._skip_lf = False  # the previous chunk ended in CR
        self._at_start = True  # BOM not yet ruled out
        self._head = b""  # up to two bytes that may begin a BOM
        self._data: list[str] = []  # data lines of the event being built
        self._data_len = 0
        self._event: str | None = None
        self._last_id: str | None = None
        self._retry: int | None = None

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Consume ``data``; return the events it completes (often none)."""
        events: list[SSEEvent] = []
        if self._at_start:
            data = self._strip_bom(data)
        if not data:
            return events
        if not self._skip_lf and b"\r" not in data:
            self._feed_lf(data, events)
            return events
        start = 0
        if self._skip_lf:
            self._skip_lf = False
            if data[0] == _LF:
                start = 1
        n = len(data)
        buf = self._buf
        limit = self._max
        cr = data.find(b"\r", start)
        lf = data.find(b"\n", start)
        while True:
            # Each terminator is searched for again only once passed, so this is linear.
            if 0 <= cr < start:
                cr = data.find(b"\r", start)
            if 0 <= lf < start:
                lf = data.find(b"\n", start)
            if cr < 0 and lf < 0:
                break
            end = cr if lf < 0 or 0 <= cr < lf else lf
            if buf:
                buf += data[start:end]
                line = bytes(buf)
                buf.clear()
            else:
                line = data[start:end]
            if len(line) > limit:
                raise SSEError(f"upstream event stream line exceeds {limit} bytes")
            self._line(line, events)
            start = end + 1
            if end == cr:
                if start < n:
                    if data[start] == _LF:
                        start += 1
                else:
                    self._skip_lf = True
        if start < n:
            if len(buf) + (n - start) > limit:
                raise SSEError(f"upstream event stream line exceeds {limit} bytes")
            buf += data[start:]
        return events

    def _feed_lf(self, data: bytes, events: list[SSEEvent]) -> None:
        """``feed`` for input without CR (nearly every upstream): split on LF at once."""
        buf = self._buf
        limit = self._max
        if buf:
            buf += data
            data = bytes(buf)
            buf.clear()
        lines = data.split(b"\n")
        tail = lines.pop()  # the unterminated rest (b"" when data ended a line)
        if len(data) > limit and any(len(line) > limit for line in lines):
            raise SSEError(f"upstream event stream line exceeds {limit} bytes")
        for line in lines:
            self._line(line, events)
        if len(tail) > limit:
            raise SSEError(f"upstream event stream line exceeds {limit} bytes")
        buf += tail

    def close(self) -> list[SSEEvent]:
        """End of input: read an unterminated last line and dispatch a pending event.

        The decoder is reset afterwards and may be reused for a new stream.
        """
        events: list[SSEEvent] = []
        if self._head:
            self._buf += self._head
        if self._buf:
            line = bytes(self._buf)
            self._buf.clear()
            self._line(line, events)
        self._dispatch(events)
        self._reset()
        return events

    def _strip_bom(self, data: bytes) -> bytes:
        head = self._head + data if self._head else data
        if len(head) < len(_BOM) and _BOM.startswith(head):
            self._head = head
            return b""
        self._at_start = False
        self._head = b""
        return head[len(_BOM) :] if head.startswith(_BOM) else head

    def _line(self, line: bytes, events: list[SSEEvent]) -> None:
        if not line:
            self._dispatch(events)
            return
        if line[0] == _COLON:
            return  # comment
        if line.startswith(b"data: "):  # the common case, without the general split
            field = "data"
            value = line[6:].decode("utf-8", "replace")
        else:
            text = line.decode("utf-8", "replace")
            field, colon, value = text.partition(":")
            if colon and value.startswith(" "):
                value = value[1:]
        if field == "data":
            self._data_len += len(value) + 1
            if self._data_len > self._max:
                raise SSEError(f"upstream event data exceeds {self._max} bytes")
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self._last_id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        # Any other field, an id with NUL, or a retry that is not digits is ignored.

    def _dispatch(self, events: list[SSEEvent]) -> None:
        if self._data:
            data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
            events.append(SSEEvent(self._event or None, data, self._last_id, self._retry))
            self._data = []
            self._data_len = 0
        self._event = None
