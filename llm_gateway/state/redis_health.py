"""Account health marks in Redis, shared by gateway instances on many hosts
(``SharedHealth``, see ``routing/state.py``).

Theory of operation: an account's marks are one hash, ``<prefix>health:<account
id>``, with a field per ``MarkReason`` holding the wall-clock time until which
that reason keeps the account out. Publishing is one Lua script (``_PUBLISH``)
for all the marks a process noted: per (account, reason) the later time wins,
a time of 0 removes the field, fields whose time has passed go, and the hash
is set to expire at its latest time (``PEXPIREAT``), so a mark dies by itself
even if no process ever clears it.

Reading happens before every request's choice of account; asking Redis each
time would add a round trip to every request. What was read of an account is
used again for ``READ_AGAIN`` seconds; after that, the accounts a request asks
about are read again in one pipelined round trip (``HGETALL`` each). So a
mark published on one instance takes effect on the others within
``READ_AGAIN`` seconds, and Redis sees a few reads a second per instance
whatever the load. A process's own publications also drop what it had read of
those accounts.

When Redis cannot be reached, reading and publishing go to ``fallback``: the
``--workers`` table of this host when there is one, else nothing (each process
then keeps its own view, as its tracker always does). Publications go to the
fallback in any case, so it is current when Redis fails.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import StateUnavailable
from ..routing.state import HealthMark, MarkReason, SharedHealth
from .redis_link import RedisLink

__all__ = ["READ_AGAIN", "RedisHealth"]

#: seconds what was read of an account's marks stands before Redis is asked again
READ_AGAIN = 0.25

# KEYS: the accounts' hashes. ARGV[1]: now (Unix seconds); then triples of
# (index in KEYS, reason, until).
_PUBLISH = """
local now = tonumber(ARGV[1])
for i = 2, #ARGV, 3 do
  local key, reason, untilv = KEYS[tonumber(ARGV[i])], ARGV[i + 1], tonumber(ARGV[i + 2])
  if untilv == 0 then
    redis.call('HDEL', key, reason)
  elseif untilv > (tonumber(redis.call('HGET', key, reason) or '0') or 0) then
    redis.call('HSET', key, reason, ARGV[i + 2])
  end
end
for _, key in ipairs(KEYS) do
  local fields, latest = redis.call('HGETALL', key), 0
  for j = 1, #fields, 2 do
    local untilv = tonumber(fields[j + 1]) or 0
    if untilv > now then
      latest = math.max(latest, untilv)
    else
      redis.call('HDEL', key, fields[j])
    end
  end
  if latest > 0 then
    redis.call('PEXPIREAT', key, math.ceil(latest * 1000))
  else
    redis.call('DEL', key)
  end
end
return 1
"""

_Marks = tuple[tuple[MarkReason, float], ...]


class RedisHealth:
    """``SharedHealth`` in Redis; see the module docstring."""

    def __init__(
        self,
        link: RedisLink,
        fallback: SharedHealth | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._link = link
        self._fallback = fallback
        self._clock = clock
        self._prefix = f"{link.settings.key_prefix}health:"
        self._publish: Any = link.client.register_script(_PUBLISH)
        #: account id -> (when it was read, on ``clock``; its marks)
        self._read: dict[str, tuple[float, _Marks]] = {}

    async def read(self, account_ids: Sequence[str], now: float) -> Sequence[HealthMark]:
        if not self._link.up:
            return await self._fallback_read(account_ids, now)
        at = self._clock()
        stale = [
            a for a in account_ids if at - self._read.get(a, (-READ_AGAIN, ()))[0] >= READ_AGAIN
        ]
        if stale:
            try:
                answers = await self._link.call(lambda client: self._fetch(client, stale))
            except StateUnavailable:
                return await self._fallback_read(account_ids, now)
            for account_id, fields in zip(stale, answers, strict=True):
                self._read[account_id] = (at, _marks(fields))
        return [
            HealthMark(account_id, reason, until)
            for account_id in account_ids
            for reason, until in self._read.get(account_id, (0.0, ()))[1]
            if until > now
        ]

    async def publish(self, marks: Sequence[HealthMark], now: float) -> None:
        if not marks:
            return
        if self._fallback is not None:
            await self._fallback.publish(marks, now)
        accounts = list(dict.fromkeys(m.account_id for m in marks))
        index = {account_id: i + 1 for i, account_id in enumerate(accounts)}
        args: list[object] = [repr(now)]
        for mark in marks:
            args += [index[mark.account_id], mark.reason.value, repr(mark.until)]
        keys = [self._prefix + account_id for account_id in accounts]
        for account_id in accounts:
            self._read.pop(account_id, None)
        # unreachable: the fallback has them; the other hosts learn nothing until it returns
        with contextlib.suppress(StateUnavailable):
            await self._link.call(lambda client: self._publish(keys=keys, args=args))

    async def _fetch(self, client: Any, account_ids: list[str]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for account_id in account_ids:
            pipe.hgetall(self._prefix + account_id)
        answers: list[Any] = await pipe.execute()
        return answers

    async def _fallback_read(self, account_ids: Sequence[str], now: float) -> Sequence[HealthMark]:
        if self._fallback is None:
            return []
        return await self._fallback.read(account_ids, now)


def _marks(fields: dict[Any, Any]) -> _Marks:
    found: list[tuple[MarkReason, float]] = []
    for name, value in fields.items():
        try:
            reason = MarkReason(name.decode() if isinstance(name, bytes) else str(name))
            found.append((reason, float(value)))
        except ValueError:
            continue  # a field this version does not know: another version wrote it
    return tuple(found)
