"""Gateway key checks: who is calling, and may they do this.

Pure functions over the request headers, the configuration and the current
time. The key is looked up by the id embedded in it and compared by hash in
constant time; it is never logged and never sent upstream. Every refusal is an
``AuthenticationError`` (401) or ``PermissionDenied`` (403) whose message says
what is wrong without echoing the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from ..config.schema import Config, GatewayKey
from ..crypto.gateway_keys import parse_key_id, verify_key
from ..errors import AuthenticationError, PermissionDenied
from ..routing.selection import matches

__all__ = ["QUERY_KEY_HEADER", "authenticate", "authorize", "presented_key"]

#: the header a key given in the query (``?key=``, the Gemini API's way) is moved to
QUERY_KEY_HEADER = "x-goog-api-key"


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from ``Authorization: Bearer``, ``x-api-key`` or ``x-goog-api-key``."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return headers.get("x-api-key") or headers.get("x-goog-api-key") or None


def _expired(key: GatewayKey, now: float) -> bool:
    if not key.expires_at:
        return False
    try:
        moment = datetime.fromisoformat(key.expires_at.replace("Z", "+00:00"))
    except ValueError:
        return True  # an unreadable expiry fails closed
    return moment.timestamp() <= now


def authenticate(headers: Mapping[str, str], config: Config, now: float) -> GatewayKey:
    """The enabled, unexpired gateway key the request presents."""
    presented = presented_key(headers)
    if presented is None:
        raise AuthenticationError(
            "missing API key: send it as 'Authorization: Bearer <key>', 'x-api-key: <key>'"
            " or 'x-goog-api-key: <key>'"
        )
    key_id = parse_key_id(presented)
    key = config.key_by_id(key_id) if key_id else None
    if key is None or not verify_key(presented, key.hash):
        raise AuthenticationError("invalid API key")
    if not key.enabled:
        raise AuthenticationError("this API key is disabled")
    if _expired(key, now):
        raise AuthenticationError("this API key has expired")
    return key


def authorize(key: GatewayKey, permission: str, model: str | None = None) -> None:
    """Refuse when the key lacks ``permission`` or may not use ``model``."""
    if permission not in key.permissions and "admin" not in key.permissions:
        raise PermissionDenied(f"this API key lacks the '{permission}' permission")
    if model is not None and key.models and not matches(key.models, model):
        raise PermissionDenied(f"this API key may not use model '{model}'")
