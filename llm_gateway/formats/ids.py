"""Response ids in a client format's style.

Theory of operation: a client sees response ids in its own format's style
(OpenAI chat ``chatcmpl-...``, completions ``cmpl-...``, Anthropic
``msg_...``), whatever the upstream. When the upstream gave an id we keep its
distinctive part, so logs on both sides can be matched; an id already in the
style is kept as it is; otherwise a random one is made. A format whose ids have
no style of their own (Gemini's) gets the distinctive part alone.

Tool-call ids an upstream would refuse as too long (``upstream_fit``) are
replaced by ``short_call_id``: ``call_`` and a digest of the whole id, so the
same id always gets the same short one and different ids stay different.
"""

from __future__ import annotations

import base64
import hashlib
import uuid

__all__ = ["response_id", "short_call_id"]

_SHORT_PREFIX = "call_"

_KNOWN_PREFIXES = ("chatcmpl-", "cmpl-", "msg_", "resp_")


def response_id(prefix: str, upstream_id: str | None) -> str:
    """``prefix`` followed by the upstream id without its own known prefix, or random."""
    if not upstream_id:
        return prefix + uuid.uuid4().hex
    if prefix and upstream_id.startswith(prefix):
        return upstream_id
    for known in _KNOWN_PREFIXES:
        if upstream_id.startswith(known) and len(upstream_id) > len(known):
            return prefix + upstream_id[len(known) :]
    return prefix + upstream_id


def short_call_id(call_id: str, limit: int) -> str:
    """``call_id`` itself when it has at most ``limit`` characters; otherwise
    ``call_`` + URL-safe base64 of its SHA-256, cut to ``limit`` (at least 16
    characters of digest are kept)."""
    if len(call_id) <= limit:
        return call_id
    digest = hashlib.sha256(call_id.encode("utf-8", "surrogatepass")).digest()
    text = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
    return _SHORT_PREFIX + text[: max(limit - len(_SHORT_PREFIX), 16)]
