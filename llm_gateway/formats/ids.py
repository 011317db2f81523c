"""Response ids in a client format's style.

Theory of operation: a client sees response ids in its own format's style
(OpenAI chat ``chatcmpl-...``, completions ``cmpl-...``, Anthropic
``msg_...``), whatever the upstream. When the upstream gave an id we keep its
distinctive part, so logs on both sides can be matched; an id already in the
style is kept as it is; otherwise a random one is made. A format whose ids have
no style of their own (Gemini's) gets the distinctive part alone.
"""

from __future__ import annotations

import uuid

__all__ = ["response_id"]

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
