"""Shared pieces for turning upstream error bodies into neutral (kind, message).

Theory of operation: each codec's ``parse_error`` reads its own format's error
JSON; when the body is not that shape (an HTML page from a proxy, an empty
body) it falls back to the HTTP status via ``kind_for_status``. Messages from
upstreams are relayed to clients, so ``redact_secrets`` first masks anything
that looks like an API key (OpenAI echoes a masked key back on 401s).
"""

from __future__ import annotations

import json
import re

__all__ = ["decode_json", "kind_for_status", "redact_secrets", "relay_message"]

_STATUS_KIND = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

# sk-..., sk-ant-..., sk-proj-..., Google API keys (AIza...) and bearer tokens:
# keep a short prefix only.
_SECRET = re.compile(
    r"\b(sk-(?:ant-|proj-)?)[A-Za-z0-9_\-*]{6,}|\b(Bearer\s+)[A-Za-z0-9._\-]{8,}"
    r"|\b(AIza)[A-Za-z0-9_\-]{20,}"
)

_MAX_MESSAGE = 2000


def kind_for_status(status: int) -> str:
    """The neutral error kind an HTTP status implies."""
    if status in _STATUS_KIND:
        return _STATUS_KIND[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def redact_secrets(text: str) -> str:
    """Mask API-key-like substrings."""
    return _SECRET.sub(lambda m: (m.group(1) or m.group(2) or m.group(3)) + "***", text)


def relay_message(message: str | None, status: int) -> str:
    """A client-safe message: redacted, bounded, never empty."""
    if not message:
        return f"upstream returned HTTP {status}"
    return redact_secrets(message)[:_MAX_MESSAGE]


def decode_json(body: bytes) -> object:
    """The body as JSON, or None when it is not JSON."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
