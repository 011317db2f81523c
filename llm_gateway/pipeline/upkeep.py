"""Background work for routing that never runs on a request's path.

Theory of operation: ``run_upkeep`` runs for the gateway's life, in two loops:

* every ``UPKEEP_INTERVAL`` seconds, accounts whose rejected credentials are
  due are checked with a cheap request (``probes.check_rejected_credentials``);
* once a client asked for ``/v1/models``, the model catalog is filled, again
  as soon as the glob-only accounts change, and every
  ``routing.models_refresh_interval`` seconds (``catalog.refresh_catalog``).

Each loop reads the configuration in force at each turn, so a reload applies
at the next one. A failure inside a turn is logged and the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..config.schema import Config
from ..errors import GatewayError
from ..routing.health import HealthTracker
from ..upstream.pool import ConnectionPool
from .catalog import ModelCache, catalog_key, refresh_catalog
from .probes import CredentialOf, check_rejected_credentials

__all__ = ["UPKEEP_INTERVAL", "run_upkeep"]

log = logging.getLogger("llm_gateway.upkeep")

#: how often due credential checks and catalog changes are looked for
UPKEEP_INTERVAL = 1.0


async def run_upkeep(
    config_of: Callable[[], Config],
    health: HealthTracker,
    pool: ConnectionPool,
    credential_of: CredentialOf,
    catalog: ModelCache,
    clock: Callable[[], float],
) -> None:
    await asyncio.gather(
        _credential_checks(config_of, health, pool, credential_of, clock),
        _catalog_refreshes(config_of, pool, credential_of, catalog, clock),
    )


async def _credential_checks(
    config_of: Callable[[], Config],
    health: HealthTracker,
    pool: ConnectionPool,
    credential_of: CredentialOf,
    clock: Callable[[], float],
) -> None:
    while True:
        await asyncio.sleep(UPKEEP_INTERVAL)
        try:
            await check_rejected_credentials(config_of(), health, pool, credential_of, clock())
        except GatewayError as error:
            log.warning("credential checks failed", extra={"error": error.message})


async def _catalog_refreshes(
    config_of: Callable[[], Config],
    pool: ConnectionPool,
    credential_of: CredentialOf,
    catalog: ModelCache,
    clock: Callable[[], float],
) -> None:
    last: float | None = None
    while True:
        config = config_of()
        interval = config.routing.models_refresh_interval
        key = catalog_key(config)
        now = clock()
        changed = key != catalog.filled_for
        stale = last is None or now - last >= interval or changed
        if catalog.wanted and interval > 0 and stale:
            catalog.filled_for = key
            last = now
            try:
                await refresh_catalog(config, catalog, pool, credential_of)
            except GatewayError as error:
                log.warning("model catalog not refreshed", extra={"error": error.message})
        await asyncio.sleep(UPKEEP_INTERVAL)
