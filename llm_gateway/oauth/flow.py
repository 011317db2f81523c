"""What every OAuth flow provides to the token manager, and the token answer.

Theory of operation: the token manager does not know which provider it talks
to. It asks the account's flow (see ``registry``) for the token endpoints, the
refresh request, and how to read the answer; everything here is pure data in,
data out, with the current time passed in. A flow is a small object that
satisfies ``OAuthFlow``. The interactive part that first obtains tokens differs
between flow kinds (a pasted ``code#state`` for PKCE, polling for a device
code) and lives in the flow's own module next to these methods.

``parse_token_response`` reads the standard OAuth 2.0 token answer (RFC 6749
section 5): ``access_token``, optional ``refresh_token`` (a refresh answer
without one keeps the previous refresh token) and ``expires_in`` in seconds,
plus who the tokens belong to when the answer says so (Claude's carries
``account`` {``uuid``, ``email_address``} and ``organization`` {``uuid``,
``name``}; printable text only, at most ``MAX_OWNER_TEXT`` characters each),
or ``{"error": "..."}`` (``invalid_grant`` is ``InvalidGrant``, another error
with status 401 or 403 ``CredentialsRejected``). Error messages carry the HTTP
status and the error code only: descriptions are never echoed, since they
could quote a secret.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..config.schema import Config
from .errors import CredentialsRejected, InvalidGrant, OAuthError

__all__ = [
    "MAX_OWNER_TEXT",
    "OAuthFlow",
    "Owner",
    "PastedCodeFlow",
    "TokenRequest",
    "Tokens",
    "json_request",
    "parse_token_response",
]

_ERROR_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_OWNER_TEXT = 200


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose tokens these are (not secret; shown by ``oauth status``, never logged)."""

    account_uuid: str | None = None
    account_email: str | None = None
    organization_uuid: str | None = None
    organization_name: str | None = None


@dataclass(frozen=True, slots=True)
class Tokens:
    """Tokens in the clear, as the provider issued them (never printed by ``repr``)."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    #: seconds since the epoch, or None when the provider did not say
    expires_at: float | None
    #: None when the answer does not say whose tokens these are
    owner: Owner | None = None


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """One POST to a token endpoint: the encoded body and its content type."""

    body: bytes = field(repr=False)
    content_type: str


@runtime_checkable
class OAuthFlow(Protocol):
    """The provider-specific parts of keeping an account's tokens fresh."""

    @property
    def name(self) -> str: ...

    def token_endpoints(self, config: Config) -> tuple[str, ...]:
        """Token URLs, the preferred one first; later ones are fallbacks."""
        ...

    def refresh_request(self, config: Config, refresh_token: str) -> TokenRequest: ...

    def parse_token_response(
        self, status: int, body: bytes, *, now: float, previous_refresh: str | None
    ) -> Tokens: ...


@runtime_checkable
class PastedCodeFlow(OAuthFlow, Protocol):
    """A flow whose login is a URL to open and a ``code#state`` to paste (PKCE).

    A device-code flow would instead offer ``device_request`` and a polling
    step, and ``oauth start`` would dispatch on which protocol the flow has.
    """

    def login_url(self, config: Config, challenge: str, state: str) -> str: ...

    def exchange_request(
        self, config: Config, code: str, state: str, verifier: str
    ) -> TokenRequest: ...


def json_request(fields: dict[str, str]) -> TokenRequest:
    return TokenRequest(
        body=json.dumps(fields, separators=(",", ":")).encode("utf-8"),
        content_type="application/json",
    )


def _error_code(data: object) -> str | None:
    if isinstance(data, dict):
        code = data.get("error")
        if isinstance(code, dict):  # {"error": {"type": "...", "message": "..."}}
            code = code.get("type")
        if isinstance(code, str) and _ERROR_CODE.fullmatch(code):
            return code
    return None


def _expires_at(value: object, now: float) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, (int, float)) and value > 0:
        return now + float(value)
    return None


def parse_token_response(
    status: int, body: bytes, *, now: float, previous_refresh: str | None
) -> Tokens:
    """The tokens in a token endpoint's answer; ``InvalidGrant`` or ``OAuthError`` otherwise."""
    try:
        data: object = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        data = None
    if not 200 <= status < 300:
        code = _error_code(data)
        detail = f" ({code})" if code else ""
        error: type[OAuthError] = OAuthError
        if code == "invalid_grant":
            error = InvalidGrant
        elif status in (401, 403):
            error = CredentialsRejected
        raise error(
            f"the token endpoint answered {status}{detail}", http_status=status, error_code=code
        )
    if not isinstance(data, dict):
        raise OAuthError(f"the token endpoint answered {status} without a JSON object")
    access = data.get("access_token")
    if not isinstance(access, str) or not access:
        raise OAuthError(f"the token endpoint answered {status} without an access_token")
    refresh = data.get("refresh_token")
    if not isinstance(refresh, str) or not refresh:
        refresh = previous_refresh
    return Tokens(
        access_token=access,
        refresh_token=refresh,
        expires_at=_expires_at(data.get("expires_in"), now),
        owner=_owner(data.get("account"), data.get("organization")),
    )


def _text(data: object, name: str) -> str | None:
    value = data.get(name) if isinstance(data, dict) else None
    if not isinstance(value, str):
        return None
    text = "".join(c for c in value if c.isprintable()).strip()[:MAX_OWNER_TEXT]
    return text or None


def _owner(account: object, organization: object) -> Owner | None:
    owner = Owner(
        account_uuid=_text(account, "uuid"),
        account_email=_text(account, "email_address"),
        organization_uuid=_text(organization, "uuid"),
        organization_name=_text(organization, "name"),
    )
    return None if owner == Owner() else owner
