"""Active health checks: probe accounts whose circuit is open (off by default).

With ``routing.health_check_interval`` above zero, the runtime calls
``probe_open_circuits`` that often. An account whose circuit is not closed
and whose half-open probe slot is free gets one cheap ``GET`` of its
provider's model list; the answer is recorded like any request's (a success
closes the circuit, so traffic returns without waiting for a client to be the
probe). Accounts in good health are never probed.
"""

from __future__ import annotations

import logging

from ..config.schema import Config
from ..errors import GatewayError, UpstreamError
from ..providers.base import Operation
from ..providers.registry import get_provider
from ..routing.health import CircuitState, HealthTracker
from ..upstream.pool import ConnectionPool
from .credentials import Credentials
from .exchange import timeouts_of
from .outcomes import classify_error, classify_status, record

__all__ = ["probe_open_circuits"]

log = logging.getLogger("llm_gateway.probes")


async def probe_open_circuits(
    config: Config,
    health: HealthTracker,
    pool: ConnectionPool,
    credentials: Credentials,
    now: float,
) -> int:
    """Probe every account that needs it; returns how many were probed."""
    probed = 0
    for account in config.upstream_accounts:
        provider = get_provider(account.provider)
        if not account.enabled or provider.reserved:
            continue
        if health.snapshot(account.id, now).state is CircuitState.CLOSED:
            continue
        if not health.try_acquire_probe(account.id, now):
            continue
        probed += 1
        try:
            credential = credentials.for_account(account)
            target = provider.build_target(account, credential, Operation.MODELS, "", {}, "")
            response = await pool.request(
                "GET",
                target.url,
                headers=provider.adjust_headers(
                    account, [*target.headers, ("accept", "application/json")], {}, config.oauth
                ),
                timeouts=timeouts_of(config),
                verify_tls=account.verify_tls,
                proxy=account.proxy,
            )
            async with response:
                await response.aread(max_bytes=1 << 20)
            outcome = classify_status(response.status)
        except UpstreamError as error:
            outcome = classify_error(error)
        except GatewayError:
            health.release_probe(account.id, now)
            continue
        record(health, account.id, outcome, now, message="health check")
        log.info(
            "health check",
            extra={"account_id": account.id, "reason": outcome.value},
        )
    return probed
