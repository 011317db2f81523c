"""CORS: which browser origins may call the gateway, and the headers that say so.

Pure functions over the configured origins and the request's headers. A
preflight (``OPTIONS`` with ``Access-Control-Request-Method``) is answered
before authentication, since browsers never send credentials with it. The
allowed request headers cover what the OpenAI and Anthropic browser SDKs send:
auth headers, ``anthropic-*``, ``content-type`` and the SDKs' ``x-stainless-*``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["is_preflight", "origin_allowed", "preflight_headers", "response_headers"]

_ALLOWED_HEADERS = frozenset(
    {
        "authorization",
        "x-api-key",
        "x-goog-api-key",
        "anthropic-version",
        "anthropic-beta",
        "anthropic-dangerous-direct-browser-access",
        "content-type",
        "accept",
        "x-session-id",
        "x-request-id",
        "openai-organization",
        "openai-project",
    }
)
_ALLOWED_PREFIXES = ("x-stainless-",)
_EXPOSED = (
    "x-request-id, retry-after, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, "
    "x-ratelimit-reset-requests, x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, "
    "x-ratelimit-reset-tokens"
)
_METHODS = "GET, POST, OPTIONS"
MAX_AGE = "600"


def origin_allowed(origin: str | None, allowed: Sequence[str]) -> bool:
    return origin is not None and ("*" in allowed or origin in allowed)


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    return method == "OPTIONS" and "access-control-request-method" in headers


def _header_allowed(name: str) -> bool:
    return name in _ALLOWED_HEADERS or name.startswith(_ALLOWED_PREFIXES)


def preflight_headers(origin: str, headers: Mapping[str, str]) -> list[tuple[str, str]] | None:
    """Headers for an allowed origin's preflight, or None if it asks for more than allowed."""
    requested = [
        h.strip().lower()
        for h in headers.get("access-control-request-headers", "").split(",")
        if h.strip()
    ]
    if not all(_header_allowed(h) for h in requested):
        return None
    if headers.get("access-control-request-method", "").upper() not in ("GET", "POST"):
        return None
    result = [
        ("access-control-allow-origin", origin),
        ("access-control-allow-methods", _METHODS),
        ("access-control-max-age", MAX_AGE),
        ("vary", "Origin"),
    ]
    if requested:
        result.append(("access-control-allow-headers", ", ".join(requested)))
    return result


def response_headers(origin: str) -> list[tuple[str, str]]:
    return [
        ("access-control-allow-origin", origin),
        ("access-control-expose-headers", _EXPOSED),
        ("vary", "Origin"),
    ]
