"""Why no account can take a request, said in words the client can act on.

Theory of operation: an account can be out of a request's reach for reasons
that live in the configuration (an OAuth account not authorised yet, or whose
refresh token was revoked) or in the account's health (rejected credentials,
a 429 cooldown, an open circuit). ``not_servable`` names the first kind for
one account; ``unavailable_error`` turns the second kind, for every account
of a model, into the error the client gets: a 502 that names the account and
what to run when only credentials stand in the way (waiting will not help), a
429 with ``retry-after`` when every account is cooling down after a 429 of its
own (the answer the client would have had from the upstream), else a 503 with
``retry-after``. Account names and ids are shown,
never a credential.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..config.schema import UpstreamAccount
from ..errors import GatewayError, RateLimited, ServiceUnavailable, UpstreamError
from ..routing.health import CircuitState, HealthTracker

__all__ = [
    "credentials_rejected",
    "not_servable",
    "reauthorisation_needed",
    "refused_error",
    "unavailable_error",
]

#: retry-after when no account will come back by waiting alone
_DEFAULT_RETRY = 30


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
