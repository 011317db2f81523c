"""One secret key per configuration file.

Every secret in the file (an account's API key, an OAuth account's tokens and
pending authorisation) is sealed with the one secret key of the installation.
A command about to seal something first checks that its key opens everything
already sealed: otherwise a wrong ``LLM_GATEWAY_SECRET_KEY`` would leave a file
that no single key can fully decrypt, and the gateway would find some accounts'
credentials unusable only when it next sends a request with them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..crypto.sealing import unseal
from ..errors import SecretKeyError
from ..oauth.records import token_context
from ..pipeline.credentials import api_key_context
from .context import CliError

__all__ = ["check_secret_key", "sealed_values"]

#: the sealed fields of an account's ``oauth`` mapping
OAUTH_FIELDS = ("access_token", "refresh_token", "pending_state", "pending_verifier")


def sealed_values(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(sealed value, the context it is bound to) for every secret in ``document``."""
    for entry in document.get("upstream_accounts") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        account_id = entry["id"]
        if isinstance(entry.get("api_key"), str) and entry["api_key"]:
            yield entry["api_key"], api_key_context(account_id)
        section = entry.get("oauth")
        if isinstance(section, dict):
            for field in OAUTH_FIELDS:
                if isinstance(section.get(field), str) and section[field]:
                    yield section[field], token_context(account_id, field)


def check_secret_key(document: dict[str, Any], secret_key: bytes) -> None:
    """Refuse (``CliError``) to seal with a key that cannot open what is stored."""
    for sealed, context in sealed_values(document):
        try:
            unseal(secret_key, sealed, context=context)
        except SecretKeyError as exc:
            raise CliError(f"{exc}; nothing was changed") from None
