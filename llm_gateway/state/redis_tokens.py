"""OAuth refresh leases and the newest tokens in Redis (a ``TokenShare``).

Theory of operation: per account, three keys under ``<prefix>oauth:<id>:``:

* ``lock``: the lease, ``SET NX PX`` (``LEASE`` seconds, longer than a
  refresh with its retries may take), whose value is the lease's fence;
* ``fence``: a counter, incremented for every lease given out, so fences
  only grow;
* ``tokens``: a hash of the sealed access and refresh tokens, their expiry,
  when they were obtained and the fence of the lease that wrote them.

Taking the lease and numbering it is one script (``_ACQUIRE``); a waiter
polls every ``POLL`` seconds. Releasing deletes the lock only if it still
holds this lease's fence. Publishing (``_PUBLISH``) writes the tokens only
if neither the lock nor the stored tokens carry a newer fence: a holder
whose lease lapsed while it was paused, and that another instance has since
overtaken, cannot overwrite the newer tokens with its own.

The tokens are sealed with the gateway's secret key and the account- and
field-bound context the file uses (``oauth/records.py``); Redis never sees
them in clear, and every instance configured with the same secret key opens
them. They expire ``KEEP`` seconds after the last refresh, so an account
gone from every configuration leaves nothing for ever.

Every call goes through the ``RedisLink``: when Redis is unreachable,
``acquire`` and ``read`` answer None (the caller falls back to the file lock
and its file's tokens) and ``publish`` answers True (nothing newer is known).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ..errors import StateUnavailable
from ..oauth.errors import OAuthError
from ..oauth.refresh_lock import POLL, Lease, SharedTokens
from .redis_link import RedisLink

__all__ = ["KEEP", "LEASE", "RedisTokens"]

#: seconds a lease lasts unless released (a refresh with its retries takes less)
LEASE = 120.0
#: seconds the newest tokens are kept after a refresh
KEEP = 90 * 86400.0

_ACQUIRE = """
if redis.call('SET', KEYS[1], '0', 'NX', 'PX', ARGV[1]) then
  local fence = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], fence, 'PX', ARGV[1])
  return fence
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

_PUBLISH = """
local fence = tonumber(ARGV[1])
local holder = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local stored = tonumber(redis.call('HGET', KEYS[2], 'fence') or '0') or 0
if holder > fence or stored > fence then
  return 0
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'fence', fence, unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"""


class RedisTokens:
    """``TokenShare`` over Redis; see the module docstring."""

    def __init__(self, link: RedisLink, *, lease: float = LEASE, poll: float = POLL):
        self._link = link
        self._lease_ms = max(1, round(lease * 1000))
        self._poll = poll
        self._prefix = f"{link.settings.key_prefix}oauth:"
        client = link.client
        self._acquire: Any = client.register_script(_ACQUIRE)
        self._release: Any = client.register_script(_RELEASE)
        self._publish: Any = client.register_script(_PUBLISH)

    def _keys(self, account_id: str, *names: str) -> list[str]:
        return [f"{self._prefix}{account_id}:{name}" for name in names]

    async def acquire(self, account_id: str, wait: float) -> Lease | None:
        keys = self._keys(account_id, "lock", "fence")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            try:
                fence = await self._link.call(
                    lambda client: self._acquire(keys=keys, args=[self._lease_ms], client=client)
                )
            except StateUnavailable:
                return None
            if int(fence):
                return Lease(account_id, int(fence))
            if loop.time() >= deadline:
                raise OAuthError(
                    f"another gateway instance has been refreshing upstream account "
                    f"{account_id} for more than {wait:g} s"
                )
            await asyncio.sleep(self._poll)

    async def release(self, lease: Lease) -> None:
        keys = self._keys(lease.account_id, "lock")
        # when Redis is unreachable, the lease lapses by itself after LEASE seconds
        with contextlib.suppress(StateUnavailable):
            await self._link.call(
                lambda client: self._release(keys=keys, args=[lease.fence], client=client)
            )

    async def read(self, account_id: str) -> SharedTokens | None:
        (key,) = self._keys(account_id, "tokens")
        try:
            stored = await self._link.call(lambda client: client.hgetall(key))
        except StateUnavailable:
            return None
        fields = {_text(k): _text(v) for k, v in stored.items()}
        if not fields.get("access_token"):
            return None
        return SharedTokens(
            access_token=fields["access_token"],
            refresh_token=fields.get("refresh_token") or None,
            expires_at=_number(fields.get("expires_at")),
            last_refresh=_number(fields.get("last_refresh")),
        )

    async def publish(self, lease: Lease, tokens: SharedTokens) -> bool:
        keys = self._keys(lease.account_id, "lock", "tokens")
        args: list[object] = [lease.fence, round(KEEP * 1000), "access_token", tokens.access_token]
        for name, value in (
            ("refresh_token", tokens.refresh_token),
            ("expires_at", tokens.expires_at),
            ("last_refresh", tokens.last_refresh),
        ):
            if value is not None:
                args += [name, repr(value) if isinstance(value, float) else value]
        try:
            written = await self._link.call(
                lambda client: self._publish(keys=keys, args=args, client=client)
            )
        except StateUnavailable:
            return True
        return bool(int(written))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
