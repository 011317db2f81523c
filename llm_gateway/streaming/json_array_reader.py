"""An upstream's stream written as one JSON array, read element by element as SSE.

Theory of operation: Google serves ``:streamGenerateContent`` without
``alt=sse`` as ``application/json``: a JSON array whose elements (whole
``GenerateContentResponse`` objects, usually pretty-printed) are written as
they are made. The gateway asks for SSE, but a proxy or a Vertex-style
server behind ``--base-url`` may answer in this form. ``JSONArrayReader``
takes the body's bytes, cut anywhere, and gives each element, once it is
whole, as one SSE event (``data: <element>``), so the stream pipes read it
exactly as they read the SSE form. Pure: bytes in, bytes out, one instance
per stream.

The reader is a small state machine (``_State``): before the array's ``[``
(a lone object instead of an array is read as a one-element stream), between
elements (``,``, whitespace, ``]``, or the next ``{``), inside an element,
and after the end. Inside an element it jumps from one structural byte to
the next (braces and brackets outside strings, quotes and backslashes inside
them), counting depth; every such byte is ASCII, which no byte of a UTF-8
multi-byte character can be, so a cut inside a character does no harm. An
element with line breaks (pretty-printed) is written compactly, so it fits
one ``data:`` line; any other element keeps its bytes. Anything that is not
such an array raises ``JSONArrayError`` (an ``UpstreamError``: the pipe ends
the client's stream with an error event). A body that stops before ``]`` is
not an error here: the pipe behind judges whether the answer was whole.
"""

from __future__ import annotations

import json
import re
from enum import Enum

from llm_gateway.errors import UpstreamError
from llm_gateway.json_text import dumps_bytes

__all__ = ["JSONArrayError", "JSONArrayReader"]

#: structural bytes outside a string, and inside one
_OUTSIDE = re.compile(rb'[{}\[\]"]')
_INSIDE = re.compile(rb'["\\]')
_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
#: the most one element may hold (as ``sse.SSEDecoder``'s default line limit)
MAX_ELEMENT_BYTES = 1 << 20


class JSONArrayError(UpstreamError):
    """The upstream's JSON-array stream is not one."""


class _State(Enum):
    START = "start"  # before the array's "["
    BETWEEN = "between"  # after "[" or an element: ",", "]" or the next "{"
    ELEMENT = "element"  # inside an element
    END = "end"  # after the closing "]" (or a lone object): whitespace only


class JSONArrayReader:
    """A JSON array's bytes -> its elements as SSE events (one instance per stream)."""

    __slots__ = (
        "_buf",
        "_comma",
        "_count",
        "_depth",
        "_escaped",
        "_in_string",
        "_opened",
        "_pos",
        "_state",
    )

    def __init__(self) -> None:
        self._state = _State.START
        self._buf = bytearray()  # the unread bytes, from the current element's start
        self._pos = 0  # how far into the current element the scan got
        self._depth = 0
        self._in_string = False
        self._escaped = False  # the last byte scanned was a backslash in a string
        self._count = 0  # elements read
        self._comma = False  # a "," was read since the last element
        self._opened = True  # an array was opened (False: a lone object, one element)

    @property
    def complete(self) -> bool:
        """The array's closing bracket (or a lone object's end) has been read."""
        return self._state is _State.END

    def feed(self, data: bytes) -> bytes:
        """The SSE events of the elements ``data`` completes."""
        self._buf += data
        out: list[bytes] = []
        while self._buf:
            if self._state is _State.ELEMENT:
                end = self._scan()
                if end < 0:
                    if len(self._buf) > MAX_ELEMENT_BYTES:
                        raise JSONArrayError(
                            f"an element of the upstream's JSON array exceeds "
                            f"{MAX_ELEMENT_BYTES} bytes"
                        )
                    break
                out.append(_event(bytes(self._buf[:end])))
                del self._buf[:end]
                self._pos = 0
                self._count += 1
                self._comma = False
                self._state = _State.BETWEEN if self._opened else _State.END
            elif not self._punctuation():
                break
        return b"".join(out)

    def _punctuation(self) -> bool:
        """Read whitespace and punctuation up to the next element or the end of the
        bytes; False when nothing is left to read."""
        buf = self._buf
        start = 0
        while start < len(buf) and buf[start] in _WHITESPACE:
            start += 1
        if start:
            del buf[:start]
        if not buf:
            return False
        byte = buf[0]
        state = self._state
        if state is _State.START:
            if buf.startswith(_BOM[: len(buf)]):
                if len(buf) < len(_BOM):
                    return False
                del buf[: len(_BOM)]
                return True
            if byte == 0x5B:  # [
                del buf[:1]
                self._state = _State.BETWEEN
                return True
            if byte == 0x7B:  # {: a whole answer, not an array
                self._opened = False
                self._state = _State.ELEMENT
                return True
        elif state is _State.BETWEEN:
            if byte == 0x2C and self._count and not self._comma:  # ,
                del buf[:1]
                self._comma = True
                return True
            if byte == 0x5D and not self._comma:  # ]
                del buf[:1]
                self._state = _State.END
                return True
            if byte == 0x7B and (self._comma or not self._count):  # {
                self._state = _State.ELEMENT
                return True
        raise JSONArrayError(
            f"the upstream's stream is not a JSON array of objects (unexpected "
            f"{chr(byte)!r} {'after its end' if state is _State.END else 'between elements'})"
        )

    def _scan(self) -> int:
        """The end of the current element in ``_buf`` (the index after its closing
        brace), or -1 when it is not whole yet."""
        buf = self._buf
        pos = self._pos
        while True:
            if self._in_string:
                if self._escaped:
                    if pos >= len(buf):
                        break
                    pos += 1
                    self._escaped = False
                found = _INSIDE.search(buf, pos)
                if found is None:
                    pos = len(buf)
                    break
                pos = found.end()
                if found.group() == b"\\":
                    self._escaped = True
                else:
                    self._in_string = False
                continue
            found = _OUTSIDE.search(buf, pos)
            if found is None:
                pos = len(buf)
                break
            pos = found.end()
            char = found.group()
            if char == b'"':
                self._in_string = True
            elif char in (b"{", b"["):
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth == 0:
                    return pos
        self._pos = pos
        return -1


def _event(element: bytes) -> bytes:
    """One element as an SSE event (compacted when it spans lines)."""
    if b"\n" in element or b"\r" in element:
        try:
            element = dumps_bytes(json.loads(element))
        except (UnicodeDecodeError, ValueError):
            raise JSONArrayError("an element of the upstream's JSON array is not JSON") from None
    return b"data: " + element + b"\n\n"
