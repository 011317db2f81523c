"""Shared pieces for turning upstream error bodies into neutral (kind, message).

Theory of operation: each codec's ``parse_error`` reads its own format's error
JSON; when the body is not that shape (an HTML page from a proxy, an empty
body) it falls back to the HTTP status via ``kind_for_status``. Messages from
upstreams are relayed to clients, so ``redact_secrets`` first masks anything
that looks like an API key (OpenAI echoes a masked key back on 401s).

``Redactor`` adds what only the request path knows: the credential the
account sent upstream, in every form it could come back in (as sent, JSON-
escaped, URL-encoded, base64). Every error body and stream error event that
reaches a client passes through one, passthrough included: an OpenAI-
compatible server that echoes ``Incorrect API key provided: <key>`` must not
hand the gateway's upstream key to a client.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from dataclasses import dataclass, field
from urllib.parse import quote

__all__ = ["Redactor", "decode_json", "kind_for_status", "redact_secrets", "relay_message"]

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
    r"\b(sk-(?:ant-|proj-)?)[A-Za-z0-9_\-*]{6,}|\b((?i:bearer)\s+)[A-Za-z0-9._\-+/=]{8,}"
    r"|\b(AIza)[A-Za-z0-9_\-]{20,}"
)

_MAX_MESSAGE = 2000
#: a credential shorter than this is only masked by the patterns above (masking
#: every occurrence of a few common characters would garble the text)
_MIN_SECRET = 8
_MASK = "***"


def kind_for_status(status: int) -> str:
    """The neutral error kind an HTTP status implies."""
    if status in _STATUS_KIND:
        return _STATUS_KIND[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def redact_secrets(text: str) -> str:
    """Mask API-key-like substrings."""
    return _SECRET.sub(lambda m: (m.group(1) or m.group(2) or m.group(3)) + "***", text)


def relay_message(message: str | None, status: int, redactor: Redactor | None = None) -> str:
    """A client-safe message: redacted, bounded, never empty."""
    if not message:
        return f"upstream returned HTTP {status}"
    if redactor is not None:
        return redactor.text(message)[:_MAX_MESSAGE]
    return redact_secrets(message)[:_MAX_MESSAGE]


@dataclass(frozen=True, slots=True)
class Redactor:
    """Masks one account's credential (every form of it) and key-shaped strings."""

    #: never shown in a repr (a traceback or a debug line must not print them)
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def for_credential(cls, credential: str) -> Redactor:
        """The redactor for one credential (made once per credential: a request's
        attempt asks for it on every request)."""
        return _redactor_for(credential)

    def text(self, text: str) -> str:
        """``text`` with the credential and key-shaped strings masked. Safe on JSON
        text: what it masks never spans a quote or a backslash escape."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, _MASK)
        return redact_secrets(text)

    def body(self, data: bytes) -> bytes:
        """An error body (JSON or not) with secrets masked; the same bytes when
        there was nothing to mask."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("utf-8", "replace")
        masked = self.text(text)
        return data if masked == text else masked.encode("utf-8")


def decode_json(body: bytes) -> object:
    """The body as JSON, or None when it is not JSON."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


@functools.lru_cache(maxsize=256)
def _redactor_for(credential: str) -> Redactor:
    if len(credential) < _MIN_SECRET:
        return Redactor()
    raw = credential.encode("utf-8", "surrogatepass")
    forms = {
        credential,
        json.dumps(credential)[1:-1],
        quote(credential, safe=""),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    # the longest first, so a form containing another is masked whole
    return Redactor(tuple(sorted(forms, key=len, reverse=True)))
