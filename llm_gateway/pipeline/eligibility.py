"""Which accounts may serve a model, and why the others cannot, in words.

Theory of operation: ``serving`` lists the enabled accounts whose ``models``
globs or ``model_map`` cover a model; ``candidates`` keeps those that can be
sent anything now. An account can be out of a request's reach for reasons
that live in the configuration (an OAuth account not authorised yet, or whose
refresh token was revoked) or in the account's health (rejected credentials,
a 429 cooldown, an open circuit). ``not_servable`` names the first kind for
one account; ``unavailable_error`` turns the second kind, for every account
of a model, into the error the client gets: a 502 that names the account and
what to run when only credentials stand in the way (waiting will not help), a
429 with ``retry-after`` when every account is cooling down after a 429 of its
own (the answer the client would have had from the upstream), else a 503 with
``retry-after``. Account names and ids are shown, never a credential.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..config.accounts import UpstreamAccount
from ..config.schema import Config
from ..errors import GatewayError, NotFound, RateLimited, ServiceUnavailable, UpstreamError
from ..providers.registry import get_provider
from ..routing.health import CircuitState, HealthTracker
from ..routing.selection import matches

__all__ = [
    "available_models",
    "candidates",
    "credentials_rejected",
    "no_account_error",
    "not_servable",
    "reauthorisation_needed",
    "refused_error",
    "serving",
    "unavailable_error",
]

#: retry-after when no account will come back by waiting alone
_DEFAULT_RETRY = 30


def serving(config: Config, model: str) -> list[UpstreamAccount]:
    """Enabled accounts whose ``models`` or ``model_map`` cover ``model``, in config order."""
    return [
        account
        for account in config.upstream_accounts
        if account.enabled
        and not get_provider(account.provider).reserved
        and (matches(account.models, model) or account.maps(model))
    ]


def candidates(config: Config, model: str) -> list[UpstreamAccount]:
    """Enabled, servable accounts for ``model``, in config order."""
    return [a for a in serving(config, model) if not_servable(a) is None]


def available_models(config: Config) -> list[str]:
    """Model names (and patterns) the servable accounts declare, for messages and listings."""
    names: dict[str, None] = {}
    for alias, _ in config.model_aliases:
        names[alias] = None
    for account in config.upstream_accounts:
        if account.enabled and not_servable(account) is None:
            for client, _ in account.model_map:
                names[client] = None
            for pattern in account.models:
                names[pattern] = None
    return list(names)


def no_account_error(config: Config, model: str) -> GatewayError:
    """No candidate for ``model``: accounts waiting for someone to act, or none at all."""
    reasons = [r for a in serving(config, model) if (r := not_servable(a)) is not None]
    if reasons:
        return refused_error(model, reasons)
    known = ", ".join(available_models(config)) or "none configured"
    return NotFound(f"no upstream serves model '{model}'; models available: {known}", param="model")


def not_servable(account: UpstreamAccount) -> str | None:
    """Why an enabled account cannot be sent anything until someone acts, or None."""
    if account.type != "oauth":
        return None
    if account.oauth.needs_reauth:
        return _oauth_hint(account, "needs re-authorisation")
    if not account.oauth.access_token and not account.oauth.refresh_token:
        return _oauth_hint(account, "is not authorised")
    return None


def reauthorisation_needed(account: UpstreamAccount) -> str:
    """The message for an OAuth account whose tokens were just found unusable."""
    return _oauth_hint(account, "needs re-authorisation")


def credentials_rejected(account: UpstreamAccount, detail: str) -> str:
    return f"the credentials of upstream account '{account.name}' were rejected ({detail})"


def refused_error(model: str, reasons: Sequence[str]) -> UpstreamError:
    """No account for ``model`` can be used until someone acts (a 502)."""
    return UpstreamError(f"no upstream account can serve model '{model}': {'; '.join(reasons)}")


def unavailable_error(
    model: str, accounts: Sequence[UpstreamAccount], health: HealthTracker, now: float
) -> GatewayError:
    """Every account of ``model`` is out for now: which, why, and for how long."""
    reasons: list[str] = []
    waits: list[float] = []
    credentials_only = rate_limited_only = True
    for account in accounts:
        snap = health.snapshot(account.id, now)
        name = f"'{account.name}'"
        if snap.auth_error is not None:
            reason = credentials_rejected(account, snap.auth_error)
            if snap.auth_until is not None and snap.auth_until > now:
                reason += f"; checked again in {_seconds(snap.auth_until - now)} s"
            reasons.append(reason)
            continue
        credentials_only = False
        moment = health.available_at(account.id, now)
        if moment is not None:
            waits.append(moment - now)
        if snap.cooldown_until is not None:
            reasons.append(
                f"account {name} is rate limited for {_seconds(snap.cooldown_until - now)} s"
            )
            continue
        rate_limited_only = False
        if snap.state is CircuitState.OPEN and snap.open_until is not None:
            reasons.append(
                f"account {name} is failing (paused for {_seconds(snap.open_until - now)} s)"
            )
        else:
            reasons.append(f"account {name} is being checked after failures")
    if credentials_only and reasons:
        return refused_error(model, reasons)
    wait = _seconds(min(waits)) if waits else _DEFAULT_RETRY
    message = (
        f"every upstream account for model '{model}' is unavailable right now: "
        f"{'; '.join(reasons)}; retry in {wait} s"
    )
    headers = [("retry-after", str(wait))]
    if rate_limited_only:
        return RateLimited(message, retry_after=wait, headers=headers)
    return ServiceUnavailable(message, headers=headers)


def _oauth_hint(account: UpstreamAccount, what: str) -> str:
    return f"account '{account.name}' {what}: run llm-gateway oauth start {account.id}"


def _seconds(delay: float) -> int:
    return max(1, math.ceil(delay))
