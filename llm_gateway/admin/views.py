"""What the admin endpoints show: accounts, gateway keys and the gateway itself.

Pure functions from the configuration and health snapshots to plain JSON data;
the times they need are passed in (``mono``: ``time.monotonic()``, the clock
the health tracker keeps; ``wall``: ``time.time()``). Nothing secret is ever
copied out: an account's sealed key and OAuth tokens, a gateway key's hash and
an OAuth flow's pending verifier stay behind. Remaining times are given in
seconds from now, wall-clock moments as ISO 8601 in UTC.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..config.accounts import UpstreamAccount
from ..config.schema import Config, GatewayKey
from ..ledger.query import BudgetUse
from ..routing.health import AccountHealth, CircuitState

__all__ = ["account_state", "account_view", "key_view", "status_view"]


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


def _remaining(until: float | None, now: float) -> float | None:
    """Seconds from ``now`` to ``until``, or None when that moment has passed."""
    if until is None or until <= now:
        return None
    return round(until - now, 1)


def account_state(account: UpstreamAccount, health: AccountHealth, mono: float) -> str:
    """One word or two for the account's table row: why it is or is not routed to."""
    if not account.enabled:
        return "disabled"
    if account.type == "oauth":
        if account.oauth.needs_reauth:
            return "needs re-authorisation"
        if not account.oauth.access_token:
            return "not authorised"
    if health.auth_error is not None:
        return "credentials failing"
    if health.cooldown_until is not None and health.cooldown_until > mono:
        return "rate limited"
    if health.state is CircuitState.OPEN:
        return "circuit open"
    if health.state is CircuitState.HALF_OPEN:
        return "circuit half-open"
    return "healthy"


def _oauth_view(account: UpstreamAccount, wall: float) -> dict[str, Any] | None:
    if account.type != "oauth":
        return None
    oauth = account.oauth
    return {
        "authorized": bool(oauth.access_token),
        "needs_reauth": oauth.needs_reauth,
        "expires_at": _iso(oauth.expires_at),
        "expires_in_s": _remaining(oauth.expires_at, wall),
        "last_refresh": _iso(oauth.last_refresh),
        "last_error": oauth.last_error,
    }


def account_view(
    account: UpstreamAccount, health: AccountHealth, mono: float, wall: float
) -> dict[str, Any]:
    """One upstream account with its live health, without its credentials."""
    return {
        "id": account.id,
        "name": account.name,
        "provider": account.provider,
        "type": account.type,
        "enabled": account.enabled,
        "priority": account.priority,
        "weight": account.weight,
        "models": list(account.models),
        "state": account_state(account, health, mono),
        "available": account.enabled and health.available,
        "circuit": health.state.value,
        "consecutive_failures": health.consecutive_failures,
        "circuit_open_s": _remaining(health.open_until, mono)
        if health.state is CircuitState.OPEN
        else None,
        "cooldown_s": _remaining(health.cooldown_until, mono),
        "auth_error": health.auth_error,
        "auth_retry_s": _remaining(health.auth_until, mono),
        "in_flight": health.in_flight,
        "latency_ms": round(health.latency_ewma * 1000, 1) if health.latency_ewma else None,
        "last_error": health.last_error.value if health.last_error else None,
        "last_error_s_ago": round(mono - health.last_error_at, 1)
        if health.last_error_at is not None
        else None,
        "successes": health.total_successes,
        "failures": health.total_failures,
        "rate_limited": health.total_rate_limited,
        "oauth": _oauth_view(account, wall),
    }


def key_view(key: GatewayKey, budget: BudgetUse | None = None) -> dict[str, Any]:
    """One gateway key's settings and limits: never the key, never its hash.

    ``budget``: what the key spent in its current budget period (from the
    ledger), for a key with a budget."""
    return {
        "id": key.id,
        "name": key.name,
        "enabled": key.enabled,
        "permissions": list(key.permissions),
        "models": list(key.models),
        "rpm": key.rpm,
        "tpm": key.tpm,
        "created_at": key.created_at or None,
        "expires_at": key.expires_at,
        "budget": key.budget,
        "budget_period": key.budget_period if key.budget is not None else None,
        "budget_spent": None if budget is None else round(budget.spent, 6),
        "budget_resets_at": None if budget is None else _iso(budget.end),
    }


def status_view(
    config: Config,
    *,
    version: str,
    config_path: str,
    config_error: str | None,
    restart_needed: tuple[str, ...],
    uptime_s: float,
) -> dict[str, Any]:
    """The gateway as a whole: version, uptime, the config file and its state."""
    return {
        "version": version,
        "uptime_s": round(uptime_s, 1),
        "config_path": config_path,
        "config": "ok" if config_error is None else f"error: {config_error}",
        "restart_needed": list(restart_needed),
        "gateway_keys": len(config.gateway_keys),
        "upstream_accounts": len(config.upstream_accounts),
    }
