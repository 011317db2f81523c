"""``GET /v1/models``: the models a gateway key can reach.

Accounts declare glob patterns (``claude-*``); only names without wildcards
and ``model_map`` aliases are concrete enough to list, so those are what the
listing shows, filtered by the key's own model allow-list. The shape is
OpenAI's list, or Anthropic's when the request carries ``anthropic-version``
(the Anthropic SDK always sends it).
"""

from __future__ import annotations

from typing import Any

from ..config.schema import Config, GatewayKey
from ..routing.selection import matches

__all__ = ["list_models"]

_GLOB = frozenset("*?[")


def _concrete_models(config: Config) -> dict[str, str]:
    """Model name -> provider, for enabled accounts, in config order."""
    found: dict[str, str] = {}
    for account in config.upstream_accounts:
        if not account.enabled:
            continue
        names = [client for client, _ in account.model_map]
        names += [p for p in account.models if not _GLOB.intersection(p)]
        for name in names:
            found.setdefault(name, account.provider)
    return found


def list_models(config: Config, key: GatewayKey, *, anthropic_shape: bool) -> dict[str, Any]:
    models = {
        name: provider
        for name, provider in _concrete_models(config).items()
        if not key.models or matches(key.models, name)
    }
    if anthropic_shape:
        data = [
            {
                "type": "model",
                "id": name,
                "display_name": name,
                "created_at": "1970-01-01T00:00:00Z",
            }
            for name in models
        ]
        return {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": provider}
            for name, provider in models.items()
        ],
    }
