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

from ..config.schema import UpstreamAccount
from ..oauth.identity import apply_claude_code_identity
from .base import Operation, Provider, UpstreamTarget

__all__ = ["PROVIDER", "merge_beta"]

DEFAULT_VERSION = "2023-06-01"
OAUTH_BETA = "oauth-2025-04-20"

_PATHS = {
    Operation.CHAT: "/v1/messages",
    Operation.COUNT_TOKENS: "/v1/messages/count_tokens",
    Operation.MODELS: "/v1/models",
}


def merge_beta(client_value: str | None, flag: str) -> str:
    """The client's comma-separated beta list with ``flag`` added once."""
    items = [item.strip() for item in (client_value or "").split(",") if item.strip()]
    if flag not in items:
        items.append(flag)
    return ",".join(items)


def _target(
    account: UpstreamAccount,
    credential: str,
    operation: Operation,
    upstream_model: str,
    client_headers: Mapping[str, str],
    query: str,
) -> UpstreamTarget:
    url = PROVIDER.base_url(account) + _PATHS[operation]
    if query:
        url += "?" + query
    headers = [
        ("content-type", "application/json"),
        ("anthropic-version", client_headers.get("anthropic-version") or DEFAULT_VERSION),
    ]
    beta = client_headers.get("anthropic-beta")
    if account.type == "oauth":
        headers.append(("authorization", f"Bearer {credential}"))
        headers.append(("anthropic-beta", merge_beta(beta, OAUTH_BETA)))
    else:
        headers.append(("x-api-key", credential))
        if beta:
            headers.append(("anthropic-beta", beta))
    headers.extend(account.quirks.extra_headers)
    return UpstreamTarget(url=url, headers=tuple(headers))


def _adjust(account: UpstreamAccount, operation: Operation, body: dict[str, Any]) -> dict[str, Any]:
    """Subscription (OAuth) accounts must present Claude Code's identity line first."""
    if account.type == "oauth" and operation is Operation.CHAT:
        return apply_claude_code_identity(body)
    return body


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
    path_version="/v1",
)
