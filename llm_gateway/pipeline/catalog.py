"""``GET /v1/models``: the models a gateway key can reach.

Theory of operation: accounts declare glob patterns (``claude-*``), which name
no model a client could pick from a list. The listing therefore shows

* the concrete names the configuration holds: ``models`` entries without
  wildcards, ``model_map`` names and ``model_aliases`` names (an alias only when
  some account serves its target);
* for an account whose ``models`` are all globs, the models its upstream's own
  model list returned the last time it was asked, filtered by those globs.
  ``refresh_catalog`` asks in the background and keeps the answers in a
  ``ModelCache``: once the listing was first requested (a gateway whose
  clients never list models sends its upstreams no such requests), again when
  such an account is added or changed, and every
  ``routing.models_refresh_interval`` seconds. A request never waits for an
  upstream: the first listing shows the configured names, the next ones what
  the upstreams answered meanwhile.

Each model is listed once, ``owned_by`` the provider of the first account that
serves it, and only if the key's own model allow-list admits it. The shape is
OpenAI's list, or Anthropic's when the request carries ``anthropic-version``
(the Anthropic SDK always sends it).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

from ..config.accounts import UpstreamAccount
from ..config.schema import Config, GatewayKey
from ..errors import GatewayError
from ..formats.error_relay import decode_json
from ..providers.registry import get_provider
from ..routing.models import is_glob
from ..routing.selection import matches
from ..upstream.pool import ConnectionPool
from .eligibility import not_servable
from .probes import CredentialOf, fetch_models

__all__ = ["ModelCache", "list_models", "listed_accounts", "refresh_catalog", "visible_models"]

log = logging.getLogger("llm_gateway.catalog")

#: the most model names kept per account
_MAX_MODELS = 2000


class ModelCache:
    """Per account, the model names its upstream listed when last asked."""

    def __init__(self) -> None:
        self._models: dict[str, tuple[str, ...]] = {}
        #: what the cache was last filled for (accounts and their settings)
        self.filled_for: Hashable = None
        #: someone asked for the listing: keep the cache filled from now on
        self.wanted = False

    def get(self, account_id: str) -> tuple[str, ...]:
        return self._models.get(account_id, ())

    def put(self, account_id: str, names: tuple[str, ...]) -> None:
        self._models[account_id] = names

    def keep_only(self, account_ids: set[str]) -> None:
        for gone in set(self._models) - account_ids:
            del self._models[gone]


def _usable(account: UpstreamAccount) -> bool:
    return (
        account.enabled
        and not get_provider(account.provider).reserved
        and not_servable(account) is None
    )


def listed_accounts(config: Config) -> list[UpstreamAccount]:
    """The accounts whose upstream's model list is worth asking for: only globs, and
    a provider whose list names models requests may ask for."""
    return [
        a
        for a in config.upstream_accounts
        if _usable(a)
        and a.models
        and all(is_glob(p) for p in a.models)
        and get_provider(a.provider).lists_models
    ]


def model_ids(body: bytes) -> list[str]:
    """The ``data[].id`` names of an OpenAI- or Anthropic-shaped model list."""
    parsed = decode_json(body)
    data = parsed.get("data") if isinstance(parsed, dict) else None
    if not isinstance(data, list):
        return []
    return [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]


async def refresh_catalog(
    config: Config, cache: ModelCache, pool: ConnectionPool, credential_of: CredentialOf
) -> None:
    """Ask every glob-only account's upstream for its models; failures keep the old list."""
    accounts = listed_accounts(config)
    cache.keep_only({a.id for a in accounts})
    for account in accounts:
        try:
            status, body = await fetch_models(config, account, pool, await credential_of(account))
        except GatewayError as error:
            log.info(
                "model list not fetched",
                extra={"account_id": account.id, "error": type(error).__name__},
            )
            continue
        if status != 200:
            log.info("model list not fetched", extra={"account_id": account.id, "status": status})
            continue
        names = [n for n in model_ids(body) if matches(account.models, n)]
        cache.put(account.id, tuple(dict.fromkeys(names))[:_MAX_MODELS])


def catalog_key(config: Config) -> Hashable:
    """What the cache depends on: a change means it is filled again at once."""
    return tuple((a.id, a.models, a.base_url, a.api_key) for a in listed_accounts(config))


def _concrete_models(config: Config, cache: ModelCache) -> dict[str, str]:
    """Model name -> provider, for usable accounts, in config order."""
    found: dict[str, str] = {}
    usable = [a for a in config.upstream_accounts if _usable(a)]
    for account in usable:
        names = [client for client, _ in account.model_map if not is_glob(client)]
        names += [p for p in account.models if not is_glob(p)]
        names += cache.get(account.id)
        for name in names:
            found.setdefault(name, account.provider)
    for alias, target in config.model_aliases:
        if is_glob(alias):
            continue
        serving = next((a for a in usable if matches(a.models, target) or a.maps(target)), None)
        if serving is not None:
            found.setdefault(alias, serving.provider)
    return found


def visible_models(config: Config, key: GatewayKey, cache: ModelCache) -> dict[str, str]:
    """Model name -> provider, for the models ``key`` may list."""
    cache.wanted = True
    return {
        name: provider
        for name, provider in _concrete_models(config, cache).items()
        if not key.models or matches(key.models, name)
    }


def list_models(
    config: Config, key: GatewayKey, *, anthropic_shape: bool, cache: ModelCache | None = None
) -> dict[str, Any]:
    models = visible_models(config, key, ModelCache() if cache is None else cache)
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
