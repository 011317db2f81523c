"""The JSON text the gateway writes: compact, UTF-8, and total over decoded JSON.

Theory of operation: JSON may carry a lone UTF-16 surrogate as an escape
(``"\\ud800"``); ``json.loads`` accepts it and yields a ``str`` that UTF-8
cannot encode. Rebuilt bodies are written with ``ensure_ascii=False`` (non-ASCII
text stays one UTF-8 sequence per character instead of a six-byte escape), so
such a string would make the final ``.encode()`` raise. These writers notice
that and fall back to ASCII escapes for that one value: the surrogate leaves as
the same escape it arrived as, exactly as a passthrough request's unchanged
bytes would, and what to make of it stays the receiver's decision.
"""

from __future__ import annotations

import json

__all__ = ["dumps", "dumps_bytes"]

_SEPARATORS = (",", ":")


def dumps(value: object, *, allow_nan: bool = True) -> str:
    """Compact JSON text of ``value`` that always encodes to UTF-8."""
    text = json.dumps(value, ensure_ascii=False, separators=_SEPARATORS, allow_nan=allow_nan)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: keep it escaped
            return json.dumps(value, separators=_SEPARATORS, allow_nan=allow_nan)
    return text


def dumps_bytes(value: object) -> bytes:
    """Compact JSON of ``value`` as UTF-8 bytes (one encode on the common path)."""
    text = json.dumps(value, ensure_ascii=False, separators=_SEPARATORS)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: keep it escaped
        return json.dumps(value, separators=_SEPARATORS).encode("ascii")
