"""Active health checks: cheap ``GET``s of an account's model list.

Theory of operation: two kinds of account are asked ``GET /models`` (their
provider's model list, the cheapest authenticated request there is) instead
of waiting for a client to be the probe:

* with ``routing.health_check_interval`` above zero, accounts whose circuit
  is not closed and whose half-open probe slot is free (``probe_open_circuits``);
  a success closes the circuit, so traffic returns at once;
* always, accounts whose rejected credentials are due to be checked again
  (``check_rejected_credentials``, every second): a success clears the mark,
  another 401/403 keeps the account out twice as long, and an answer that
  proves neither (a 404 from a server without a model list, a 5xx, a timeout)
  postpones the check.

The answer is recorded like any request's. Accounts in good health are never
probed. ``fetch_models`` is the one request both checks (and the model
catalog) send.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ..config.schema import Config, UpstreamAccount
from ..errors import GatewayError, UpstreamError
from ..oauth.errors import OAuthError
from ..providers.base import Operation
from ..providers.registry import get_provider
from ..routing.health import CircuitState, HealthTracker
from ..upstream.pool import ConnectionPool
from .credentials import CredentialError, Credentials
from .exchange import timeouts_of
from .outcomes import Outcome, classify_answer, classify_error, record

__all__ = ["CredentialOf", "check_rejected_credentials", "fetch_models", "probe_open_circuits"]

#: an account's clear credential (an OAuth access token refreshed when due)
CredentialOf = Callable[[UpstreamAccount], Awaitable[str]]

log = logging.getLogger("llm_gateway.probes")

#: the most of a model list that is read
_MAX_MODELS_BYTES = 1 << 20


async def fetch_models(
    config: Config, account: UpstreamAccount, pool: ConnectionPool, credential: str
) -> tuple[int, bytes]:
    """``GET`` the account's model list: (status, body). Raises GatewayError."""
    provider = get_provider(account.provider)
    target = provider.build_target(account, credential, Operation.MODELS, "", {}, "", False)
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
        body = await response.aread(max_bytes=_MAX_MODELS_BYTES)
    return response.status, body


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
            status, body = await fetch_models(config, account, pool, credential)
            outcome = classify_answer(provider, status, body)
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


async def check_rejected_credentials(
    config: Config,
    health: HealthTracker,
    pool: ConnectionPool,
    credential_of: CredentialOf,
    now: float,
) -> int:
    """Check every account whose rejected credentials are due; returns how many."""
    checked = 0
    for account in config.upstream_accounts:
        if not account.enabled or get_provider(account.provider).reserved:
            continue
        if not health.auth_check_due(account.id, now) or not health.try_acquire_probe(
            account.id, now
        ):
            continue
        checked += 1
        try:
            credential = await credential_of(account)
            status, body = await fetch_models(config, account, pool, credential)
            outcome = classify_answer(get_provider(account.provider), status, body)
            detail = f"upstream answered {status}"
        except (CredentialError, OAuthError) as error:
            refused = not isinstance(error, OAuthError) or error.rejects_credentials
            outcome = Outcome.AUTH_FAILED if refused else Outcome.CONNECT
            detail = error.message
        except GatewayError:
            outcome, detail = Outcome.CONNECT, ""
        if outcome is Outcome.OK:
            record(health, account.id, outcome, now)
        elif outcome is Outcome.AUTH_FAILED:
            record(health, account.id, outcome, now, message=detail)
        else:
            health.postpone_auth_check(account.id, now)
        log.info(
            "credential check",
            extra={"account_id": account.id, "reason": outcome.value},
        )
    return checked
