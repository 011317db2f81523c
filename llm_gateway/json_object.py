"""A client's JSON object, read in one pass, refusing duplicate top-level keys.

Theory of operation: ``{"model": "allowed", ..., "model": "forbidden"}`` is
valid JSON that parsers read differently (Python keeps the last value, others
the first), so a gateway that checks one value while the upstream acts on the
other can be fooled. ``loads_object`` walks the top-level object itself and
hands each value to the standard library's C scanner, so nested values are
read at full speed and only the top level (a dozen keys) costs Python steps;
an ``object_pairs_hook`` would run Python code for every nested object.
"""

from __future__ import annotations

import json
import re
from _json import scanstring
from collections.abc import Callable
from json import scanner
from json.decoder import JSONDecodeError
from typing import Any, cast

from .errors import InvalidRequest

__all__ = ["loads_object"]

_DECODER = json.JSONDecoder()
#: one JSON value at an index -> (value, end); the C scanner json.loads uses
_SCAN = cast(Callable[[str, int], tuple[Any, int]], cast(Any, scanner.make_scanner)(_DECODER))
_SPACE = re.compile(r"[ \t\n\r]*")
_WHITESPACE = frozenset(" \t\n\r")
#: a key named in an error is cut to this many characters
_MAX_KEY_SHOWN = 64


def _space(text: str, at: int) -> int:
    """Where the whitespace at ``at`` ends."""
    found = _SPACE.match(text, at)
    return found.end() if found is not None else at


def loads_object(raw: bytes) -> Any:
    """``raw`` parsed as ``json.loads`` would; a top-level object with a key given
    twice raises InvalidRequest. Raises ValueError (JSONDecodeError,
    UnicodeDecodeError) for what is not JSON and RecursionError for JSON nested
    too deeply, as ``json.loads`` does."""
    if raw[:1] == b"{":  # UTF-8 without a BOM: what clients send
        text = raw.decode("utf-8", "surrogatepass")
        at = 1
    else:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        at = _space(text, 0)
        if not text.startswith("{", at):
            return _DECODER.decode(text)
        at += 1
    end = len(text)
    space = _WHITESPACE
    obj: dict[str, Any] = {}
    if at < end and text[at] in space:
        at = _space(text, at)
    if text.startswith("}", at):
        at += 1
    else:
        while True:
            if not text.startswith('"', at):
                raise JSONDecodeError("Expecting property name enclosed in double quotes", text, at)
            key, at = scanstring(text, at + 1)
            if at < end and text[at] in space:
                at = _space(text, at)
            if not text.startswith(":", at):
                raise JSONDecodeError("Expecting ':' delimiter", text, at)
            at += 1
            if at < end and text[at] in space:
                at = _space(text, at)
            try:
                value, at = _SCAN(text, at)
            except StopIteration as stop:
                raise JSONDecodeError("Expecting value", text, stop.value) from None
            if key in obj:
                shown = key[:_MAX_KEY_SHOWN]
                raise InvalidRequest(
                    f"the request body gives the key '{shown}' more than once", param=shown
                )
            obj[key] = value
            if at < end and text[at] in space:
                at = _space(text, at)
            if text.startswith(",", at):
                at += 1
                if at < end and text[at] in space:
                    at = _space(text, at)
                continue
            if text.startswith("}", at):
                at += 1
                break
            raise JSONDecodeError("Expecting ',' delimiter", text, at)
    if at != end and _space(text, at) != end:
        raise JSONDecodeError("Extra data", text, at)
    return obj
