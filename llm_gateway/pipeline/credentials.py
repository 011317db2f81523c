"""Upstream credentials in memory: unsealed once, reused until they change.

Unsealing costs a ChaCha20-Poly1305 decryption in pure Python, so the clear
value is cached per (account id, sealed value): a rotated key or token is a
new sealed value and therefore a cache miss. The secret key is read from the
environment or the key file on first need.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..config.accounts import UpstreamAccount
from ..crypto.sealing import load_secret_key, unseal
from ..errors import SecretKeyError, UpstreamError
from ..oauth.records import token_context as oauth_token_context

__all__ = ["CredentialError", "Credentials", "api_key_context", "oauth_token_context"]


def api_key_context(account_id: str) -> str:
    """The associated data an account's sealed API key is bound to."""
    return f"upstream:{account_id}:api_key"


class CredentialError(UpstreamError):
    """An account's credential is missing or cannot be decrypted."""

    status = 502
    kind = "api_error"


class Credentials:
    def __init__(self, home: Path, environ: Mapping[str, str]):
        self.home = home
        self.environ = environ
        self._key: bytes | None = None
        self._cache: dict[tuple[str, str], str] = {}

    def secret_key(self) -> bytes:
        if self._key is None:
            self._key = load_secret_key(self.home, self.environ, create=False)
        return self._key

    def unseal(self, account_id: str, sealed: str, context: str) -> str:
        cached = self._cache.get((account_id, sealed))
        if cached is not None:
            return cached
        try:
            value = unseal(self.secret_key(), sealed, context=context)
        except SecretKeyError:
            raise CredentialError(
                f"the credential of upstream account {account_id} cannot be decrypted "
                "(wrong secret key?)"
            ) from None
        if len(self._cache) > 1024:
            self._cache.clear()
        self._cache[(account_id, sealed)] = value
        return value

    def for_account(self, account: UpstreamAccount) -> str:
        """The clear credential to present upstream ("" for keyless local servers)."""
        if account.type == "oauth":
            token = account.oauth.access_token
            if not token:
                raise CredentialError(f"upstream account {account.id} is not authorised yet")
            return self.unseal(account.id, token, oauth_token_context(account.id, "access_token"))
        if not account.api_key:
            return ""
        return self.unseal(account.id, account.api_key, api_key_context(account.id))
