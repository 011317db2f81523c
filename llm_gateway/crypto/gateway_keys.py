"""The gateway's own API keys: generation, storage hashes, lookup ids, verification.

Theory of operation: a gateway key looks like ``lgw-<id>-<secret>``, where
``<id>`` is 8 lowercase hex digits (32 random bits, used only to find the
stored record quickly) and ``<secret>`` is ``secrets.token_urlsafe(32)``
(256 random bits, 43 URL-safe base64 characters, which may themselves contain
``-`` and ``_``). The gateway stores only ``"sha256:" + hex digest`` of the
whole key. A single fast hash is the right tool here: with 256 bits of
entropy there is nothing for a slow password hash to protect against.

Checking a presented key: ``parse_key_id`` (never raises, whatever the
input) finds the record, then ``verify_key`` compares digests in constant
time with ``hmac.compare_digest``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets

__all__ = [
    "HASH_PREFIX",
    "KEY_PREFIX",
    "generate_key",
    "hash_key",
    "parse_key_id",
    "verify_key",
]

KEY_PREFIX = "lgw-"
HASH_PREFIX = "sha256:"

_ID_BYTES = 4
_SECRET_BYTES = 32
# token_urlsafe(32) is always 43 characters (256 bits, unpadded base64).
_SECRET_CHARS = 43
_KEY_LENGTH = len(KEY_PREFIX) + 2 * _ID_BYTES + 1 + _SECRET_CHARS
_KEY_PATTERN = re.compile(r"lgw-([0-9a-f]{8})-[A-Za-z0-9_-]{43}")


def generate_key() -> tuple[str, str]:
    """A new ``(key_id, key)`` pair; show ``key`` to the user once and store only its hash."""
    key_id = secrets.token_hex(_ID_BYTES)
    return key_id, f"{KEY_PREFIX}{key_id}-{secrets.token_urlsafe(_SECRET_BYTES)}"


@functools.lru_cache(maxsize=1024)
def _digest(key: str) -> str:
    # surrogatepass: any Python string hashes, so garbage input never raises.
    # Cached: a client presents the same key on every request.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def hash_key(key: str) -> str:
    """The value to store for ``key``: ``"sha256:" + 64 lowercase hex digits``."""
    return HASH_PREFIX + _digest(key)


def parse_key_id(key: str) -> str | None:
    """The id inside a well-formed gateway key, or None for anything else."""
    if len(key) != _KEY_LENGTH:
        return None
    match = _KEY_PATTERN.fullmatch(key)
    return match.group(1) if match else None


def verify_key(key: str, stored_hash: str) -> bool:
    """Whether ``key`` hashes to ``stored_hash``, compared in constant time."""
    if not stored_hash.startswith(HASH_PREFIX):
        return False
    expected = stored_hash[len(HASH_PREFIX) :].encode("utf-8", "surrogatepass")
    return hmac.compare_digest(_digest(key).encode("ascii"), expected)
