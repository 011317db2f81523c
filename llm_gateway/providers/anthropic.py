"""Anthropic: the Messages API.

``POST {base}/v1/messages`` (and ``/v1/messages/count_tokens``). API-key
accounts authenticate with ``x-api-key``; OAuth accounts (Claude Code
subscriptions) with ``Authorization: Bearer`` plus the ``oauth-2025-04-20``
beta flag merged into the client's own ``anthropic-beta`` list. The client's
``anthropic-version`` and ``anthropic-beta`` headers and its ``?beta=true``
query are forwarded as sent, never replaced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config.accounts import OAuthSettings, UpstreamAccount
from ..formats.token_counts import anthropic_count_request, read_anthropic_count
from ..oauth.identity import apply_claude_code_identity
from ..oauth.presentation import claude_code_headers
from .base import Operation, Provider, TokenCounter, UpstreamTarget

__all__ = ["PROVIDER"]

DEFAULT_VERSION = "2023-06-01"
_PRESENTATION_HEADERS = frozenset({"anthropic-beta", "user-agent", "x-app"})

_PATHS = {
    Operation.CHAT: "/v1/messages",
    Operation.COUNT_TOKENS: "/v1/messages/count_tokens",
    Operation.MODELS: "/v1/models",
}


def _target(
    account: UpstreamAccount,
    credential: str,
    operation: Operation,
    upstream_model: str,
    client_headers: Mapping[str, str],
    query: str,
    stream: bool,
) -> UpstreamTarget:
    url = PROVIDER.base_url(account) + _PATHS[operation]
    if query:
        url += "?" + query
    headers = [
        ("content-type", "application/json"),
        ("anthropic-version", client_headers.get("anthropic-version") or DEFAULT_VERSION),
    ]
    if account.type == "oauth":  # its beta flags and user agent: see _present
        headers.append(("authorization", f"Bearer {credential}"))
    else:
        headers.append(("x-api-key", credential))
        beta = client_headers.get("anthropic-beta")
        if beta:
            headers.append(("anthropic-beta", beta))
    headers.extend(account.quirks.extra_headers)
    return UpstreamTarget(url=url, headers=tuple(headers))


def _adjust(account: UpstreamAccount, operation: Operation, body: dict[str, Any]) -> dict[str, Any]:
    """Subscription (OAuth) accounts must present Claude Code's identity line first."""
    if account.type == "oauth" and operation is Operation.CHAT:
        return apply_claude_code_identity(body)
    return body


def _present(
    account: UpstreamAccount,
    headers: list[tuple[str, str]],
    client_headers: Mapping[str, str],
    settings: OAuthSettings,
) -> list[tuple[str, str]]:
    """Subscription (OAuth) requests carry the headers Claude Code sends (an
    account's own ``--header`` of the same name wins)."""
    if account.type != "oauth":
        return headers
    chosen = {name for name, _ in account.quirks.extra_headers}
    replaced = _PRESENTATION_HEADERS - chosen
    presented = claude_code_headers(client_headers, settings.claude_code_version)
    return [
        *((name, value) for name, value in headers if name not in replaced),
        *((name, value) for name, value in presented if name in replaced),
    ]


PROVIDER = Provider(
    name="anthropic",
    wire_formats={
        Operation.CHAT: "anthropic-messages",
        Operation.COUNT_TOKENS: "anthropic-messages",
    },
    default_base_url="https://api.anthropic.com",
    default_models=("claude-*",),
    build_target=_target,
    adjust_body=_adjust,
    adjust_headers=_present,
    token_counter=TokenCounter("anthropic-messages", anthropic_count_request, read_anthropic_count),
    path_version="/v1",
)
