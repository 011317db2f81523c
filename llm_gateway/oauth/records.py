"""An account's ``oauth`` mapping in the configuration document, read and edited.

Theory of operation: the configuration file holds, per OAuth account, the
sealed tokens and their bookkeeping (see ``config.schema.OAuthState``). These
functions are the only place that knows that layout: they edit the plain
document inside ``ConfigStore.update`` (which validates and writes it
atomically) and seal every secret with the account- and field-bound context
``upstream:<id>:oauth:<field>`` (the same context ``pipeline.credentials``
unseals with). Pure apart from the randomness of sealing.
"""

from __future__ import annotations

from typing import Any

from ..crypto.sealing import seal, unseal
from .flow import Owner, Tokens

__all__ = [
    "clear_pending",
    "find_entry",
    "forget_owner",
    "mark_reauth",
    "oauth_section",
    "read_pending",
    "set_error",
    "token_context",
    "unseal_field",
    "write_pending",
    "write_tokens",
]


def token_context(account_id: str, field: str) -> str:
    """The associated data a sealed OAuth field of ``account_id`` is bound to."""
    return f"upstream:{account_id}:oauth:{field}"


def find_entry(document: dict[str, Any], account_id: str) -> dict[str, Any] | None:
    for entry in document.get("upstream_accounts") or []:
        if isinstance(entry, dict) and entry.get("id") == account_id:
            return entry
    return None


def oauth_section(entry: dict[str, Any]) -> dict[str, Any]:
    section = entry.get("oauth")
    if not isinstance(section, dict):
        section = entry["oauth"] = {}
    return section


def unseal_field(key: bytes, account_id: str, field: str, sealed: str) -> str:
    """The clear value of a sealed field; ``SecretKeyError`` when it does not open."""
    return unseal(key, sealed, context=token_context(account_id, field))


def _seal(key: bytes, account_id: str, field: str, value: str) -> str:
    return seal(key, value, context=token_context(account_id, field))


def write_tokens(
    section: dict[str, Any], key: bytes, account_id: str, tokens: Tokens, now: float
) -> None:
    """Store fresh tokens sealed; the account is authorised and healthy again."""
    section["access_token"] = _seal(key, account_id, "access_token", tokens.access_token)
    if tokens.refresh_token:
        section["refresh_token"] = _seal(key, account_id, "refresh_token", tokens.refresh_token)
    else:
        section.pop("refresh_token", None)
    if tokens.expires_at is None:
        section.pop("expires_at", None)
    else:
        section["expires_at"] = tokens.expires_at
    section["last_refresh"] = now
    section.pop("last_error", None)
    section.pop("needs_reauth", None)
    if tokens.owner is not None:  # a refresh answer may not say; then it is unchanged
        _write_owner(section, tokens.owner)


_OWNER_FIELDS = ("account_uuid", "account_email", "organization_uuid", "organization_name")


def _write_owner(section: dict[str, Any], owner: Owner) -> None:
    for name in _OWNER_FIELDS:
        value = getattr(owner, name)
        if value is None:
            section.pop(name, None)
        else:
            section[name] = value


def forget_owner(section: dict[str, Any]) -> None:
    """A new authorisation may be another subscription: forget whose tokens were held."""
    for name in _OWNER_FIELDS:
        section.pop(name, None)


def write_pending(
    section: dict[str, Any], key: bytes, account_id: str, state: str, verifier: str
) -> None:
    """Remember an authorisation in progress (sealed), replacing any earlier one."""
    section["pending_state"] = _seal(key, account_id, "pending_state", state)
    section["pending_verifier"] = _seal(key, account_id, "pending_verifier", verifier)


def read_pending(section: dict[str, Any], key: bytes, account_id: str) -> tuple[str, str] | None:
    """``(state, verifier)`` of the authorisation in progress, or None."""
    state, verifier = section.get("pending_state"), section.get("pending_verifier")
    if not isinstance(state, str) or not isinstance(verifier, str):
        return None
    return (
        unseal_field(key, account_id, "pending_state", state),
        unseal_field(key, account_id, "pending_verifier", verifier),
    )


def clear_pending(section: dict[str, Any]) -> None:
    section.pop("pending_state", None)
    section.pop("pending_verifier", None)


def set_error(section: dict[str, Any], message: str) -> None:
    section["last_error"] = message


def mark_reauth(section: dict[str, Any], message: str) -> None:
    """The refresh token was refused: keep it out of rotation until re-authorised."""
    section["needs_reauth"] = True
    section["last_error"] = message
