"""The shared-state backend a gateway process uses, chosen from ``state:``.

Theory of operation: the composition root (``server/runtime.py``) asks
``open_state`` for the objects the request path and the token manager use,
and never asks which backend is behind them:

* ``local``: the buckets it was given (in-process, or shared by the forked
  ``--workers``), and no token share (OAuth refreshes use the file lock);
* ``redis``: one ``RedisLink`` per process, ``RedisBuckets`` falling back to
  the local buckets, ``RedisHealth`` falling back to the local health marks,
  and ``RedisTokens`` for OAuth leases and tokens.

``multi_host_problem`` is the start-up rule for several instances: with
``state.instances`` above 1, OAuth accounts need the redis backend, because
each host's file would otherwise keep the tokens it refreshed to itself and
the other hosts would spend a refresh token already rotated.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ..config.schema import Config, StateConfig
from ..oauth.refresh_lock import TokenShare
from ..routing.state import RateBuckets, SharedHealth
from .redis_buckets import RedisBuckets
from .redis_health import RedisHealth
from .redis_link import RedisLink
from .redis_tokens import RedisTokens

__all__ = ["SharedState", "multi_host_problem", "open_state", "token_share"]


@dataclass
class SharedState:
    """What one process uses for state it shares with others."""

    buckets: RateBuckets
    #: account health marks (None: each process keeps its own view)
    health: SharedHealth | None = None
    tokens: TokenShare | None = None
    link: RedisLink | None = None

    def report(self) -> dict[str, object]:
        """For ``/health``: the backend and, for Redis, whether it is reachable."""
        return {"backend": "local"} if self.link is None else self.link.report()

    async def start(self) -> None:
        """Try Redis once at start, so an unreachable one is reported (and logged) at once."""
        if self.link is not None:
            await self.link.check()

    async def aclose(self) -> None:
        if isinstance(self.buckets, RedisBuckets):
            await self.buckets.aclose()
        if self.link is not None:
            await self.link.aclose()


def open_state(
    settings: StateConfig, local: RateBuckets, local_health: SharedHealth | None = None
) -> SharedState:
    """The backend ``settings`` names; ``ConfigError`` when redis is named but not installed."""
    if settings.backend != "redis":
        return SharedState(buckets=local, health=local_health)
    link = RedisLink(settings)
    return SharedState(
        buckets=RedisBuckets(link, local, instances=settings.instances),
        health=RedisHealth(link, local_health),
        tokens=RedisTokens(link),
        link=link,
    )


@contextlib.asynccontextmanager
async def token_share(settings: StateConfig) -> AsyncIterator[TokenShare | None]:
    """The OAuth token share ``settings`` names (None: local), for ``oauth refresh``."""
    if settings.backend != "redis":
        yield None
        return
    link = RedisLink(settings)
    try:
        yield RedisTokens(link)
    finally:
        await link.aclose()


def multi_host_problem(config: Config) -> str | None:
    """Why ``server start`` must refuse this configuration, or None."""
    state = config.state
    if state.instances <= 1 or state.backend == "redis":
        return None
    oauth = [a.id for a in config.upstream_accounts if a.type == "oauth" and a.enabled]
    if not oauth:
        return None
    return (
        f"state.instances is {state.instances} but state.backend is {state.backend}: "
        f"the OAuth account{'s' if len(oauth) > 1 else ''} {', '.join(oauth)} would rotate "
        "their refresh tokens on one host and lock the others out; set state.backend: redis "
        "and state.url (see 'Running several instances' in the README), or "
        "state.instances: 1 for a single instance"
    )
