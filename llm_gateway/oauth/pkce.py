"""PKCE (RFC 7636) and the ``state`` parameter: random values and the S256 challenge.

Theory of operation: the verifier is a fresh random string of unreserved
characters (43 to 128 of them), the challenge is the unpadded base64url of its
SHA-256, and the state is an independent random string that ties a pasted
code to the authorisation that asked for it. Pure apart from ``secrets``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

__all__ = ["MAX_VERIFIER", "MIN_VERIFIER", "make_state", "make_verifier", "s256_challenge"]

MIN_VERIFIER = 43
MAX_VERIFIER = 128


def make_verifier(length: int = 64) -> str:
    """A random code verifier of ``length`` characters from ``[A-Za-z0-9_-]``."""
    if not MIN_VERIFIER <= length <= MAX_VERIFIER:
        raise ValueError(f"a PKCE verifier has {MIN_VERIFIER} to {MAX_VERIFIER} characters")
    return secrets.token_urlsafe(length)[:length]  # n bytes give at least n characters


def s256_challenge(verifier: str) -> str:
    """``BASE64URL(SHA256(ASCII(verifier)))`` without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def make_state() -> str:
    """A random, URL-safe ``state`` value (256 bits)."""
    return secrets.token_urlsafe(32)
