"""The Claude Code subscription flow: OAuth 2.0 authorisation code with PKCE.

Theory of operation, as Claude Code itself logs in:

1. ``authorize_url`` sends the user to ``oauth.authorize_url`` with
   ``code=true``, the client id, ``response_type=code``, the redirect URI, the
   scopes (space-separated), the S256 PKCE challenge and a random state.
2. After login the provider's callback page shows ``code#state``;
   ``parse_pasted_code`` reads it (or a whole callback URL with ``code`` and
   ``state`` query parameters). The caller compares the state with the one it
   saved.
3. ``exchange_body`` is the JSON the token URL takes for the code;
   ``refresh_body`` the JSON that refreshes. Both go to ``oauth.token_url``,
   with ``oauth.token_fallback_url`` as the fallback (some users find the
   first refusing non-browser clients).

Everything here is pure; the settings come from ``Config.oauth``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from ..config.accounts import OAuthSettings
from ..config.schema import Config
from .flow import TokenRequest, Tokens, json_request, parse_token_response

__all__ = [
    "FLOW",
    "ClaudeCodeFlow",
    "PastedCodeError",
    "authorize_url",
    "exchange_body",
    "parse_pasted_code",
    "refresh_body",
]


class PastedCodeError(ValueError):
    """The pasted text is not ``code#state`` (nor a callback URL carrying both)."""


def authorize_url(settings: OAuthSettings, challenge: str, state: str) -> str:
    """The URL the user opens to authorise the gateway."""
    query = urlencode(
        [
            ("code", "true"),
            ("client_id", settings.client_id),
            ("response_type", "code"),
            ("redirect_uri", settings.redirect_uri),
            ("scope", " ".join(settings.scopes)),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("state", state),
        ],
        quote_via=quote,
    )
    separator = "&" if "?" in settings.authorize_url else "?"
    return settings.authorize_url + separator + query


def parse_pasted_code(text: str) -> tuple[str, str]:
    """``(code, state)`` from ``code#state`` or from a callback URL."""
    text = text.strip()
    if text.startswith(("http://", "https://")):
        params = parse_qs(urlsplit(text).query)
        codes, states = params.get("code", []), params.get("state", [])
        if len(codes) != 1 or len(states) != 1 or not codes[0] or not states[0]:
            raise PastedCodeError("the pasted URL does not carry one code and one state")
        return codes[0], states[0]
    code, sep, state = text.partition("#")
    if not sep or not code or not state or "#" in state or any(c.isspace() for c in text):
        raise PastedCodeError(
            "expected the code as shown after login, in the form CODE#STATE "
            "(both parts, joined by '#')"
        )
    return code, state


def exchange_body(settings: OAuthSettings, code: str, state: str, verifier: str) -> dict[str, str]:
    """The token request that trades an authorisation code for tokens."""
    return {
        "grant_type": "authorization_code",
        "code": code,
        "state": state,
        "client_id": settings.client_id,
        "redirect_uri": settings.redirect_uri,
        "code_verifier": verifier,
    }


def refresh_body(settings: OAuthSettings, refresh_token: str) -> dict[str, str]:
    """The token request that trades a refresh token for new tokens."""
    return {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": settings.client_id,
    }


@dataclass(frozen=True, slots=True)
class ClaudeCodeFlow:
    """Claude Code subscriptions: a ``flow.PastedCodeFlow``."""

    name: str = "claude-code"

    def token_endpoints(self, config: Config) -> tuple[str, ...]:
        settings = config.oauth
        urls = [settings.token_url]
        if settings.token_fallback_url and settings.token_fallback_url != settings.token_url:
            urls.append(settings.token_fallback_url)
        return tuple(urls)

    def login_url(self, config: Config, challenge: str, state: str) -> str:
        return authorize_url(config.oauth, challenge, state)

    def exchange_request(
        self, config: Config, code: str, state: str, verifier: str
    ) -> TokenRequest:
        return json_request(exchange_body(config.oauth, code, state, verifier))

    def refresh_request(self, config: Config, refresh_token: str) -> TokenRequest:
        return json_request(refresh_body(config.oauth, refresh_token))

    def parse_token_response(
        self, status: int, body: bytes, *, now: float, previous_refresh: str | None
    ) -> Tokens:
        return parse_token_response(status, body, now=now, previous_refresh=previous_refresh)


FLOW = ClaudeCodeFlow()
