"""Per-key rate-limit buckets in Redis, shared by gateway instances on many hosts.

Theory of operation: a key's two buckets (requests, tokens) live in one Redis
hash, ``<prefix>rl:<key id>``, with the fields ``rc ru ra`` and ``tc tu ta``
(capacity, units, updated). One Lua script (``_SCRIPT``) does a request's
whole check atomically in one round trip: it reads the hash, applies the
arithmetic of ``routing/ratelimit.py`` (``fit``, ``charge``, ``take``),
writes the hash back and sets it to expire when both buckets would be full
again, so an idle key leaves nothing behind. It returns the buckets as
numbers in one line of text (Lua's numbers would reach redis-py as truncated
integers); the headers are then made here by the same ``decide`` as
everywhere else.

A response's tokens (``record_tokens``) are not a round trip of their own:
they wait, added up per key, and the key's next check charges them before it
decides (the order they would have had anyway); tokens still waiting after
``CHARGE_DELAY`` seconds are charged by themselves. So each request costs one
round trip, and other instances see a response's tokens at most
``CHARGE_DELAY`` seconds late.

The time is Redis's own ``TIME``, one clock for every host (the caller's
``now`` is its monotonic clock, which other hosts do not share). Redis 5 and
later replicate a script's effects, so reading the time in it is allowed.

When Redis cannot be reached (``StateUnavailable`` from the link, at once
while it is known to be down), the check goes to ``fallback``, this host's
own buckets (in-process, or shared by ``--workers``), with every limit
divided by ``state.instances``: each instance then enforces its share, and
the total over all instances stays within the limit. When Redis returns, its
buckets are used again; what the fallback admitted meanwhile is not charged
to them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..errors import StateUnavailable
from ..routing.ratelimit import Bucket, Decision, KeyLimits, decide
from ..routing.state import RateBuckets
from .redis_link import RedisLink

__all__ = ["CHARGE_DELAY", "RedisBuckets", "share"]

#: seconds a response's tokens may wait for the key's next check before being charged alone
CHARGE_DELAY = 0.2

# KEYS[1]: the key's hash. ARGV: mode ("check", or "charge" alone), rpm, tpm (0: unlimited),
# tokens to charge first. Returns "allowed retry_after requests' capacity and units, tokens'
# capacity and units" as one line ("-" for a bucket the key has no limit for).
_SCRIPT = """
local key = KEYS[1]
local mode, rpm, tpm, used = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local epsilon = 1e-9
local stored = redis.call('HMGET', key, 'rc', 'ru', 'ra', 'tc', 'tu', 'ta')

local function fit(c, u, at, limit)
  if limit == 0 then return nil end
  if not c then return {limit, limit, now} end
  c, u, at = tonumber(c), tonumber(u), tonumber(at)
  if now > at then
    u = math.min(c, u + (now - at) * c / 60)
    at = now
  end
  if c ~= limit then
    c = limit
    u = math.min(u, c)
  end
  return {c, u, at}
end

local requests = fit(stored[1], stored[2], stored[3], rpm)
local tokens = fit(stored[4], stored[5], stored[6], tpm)
local allowed, wait = 1, 0
if tokens and used > 0 then
  local charged = math.min(used, 2 * tokens[1])
  tokens[2] = math.max(tokens[2] - charged, -tokens[1])
end
if mode == 'check' then
  for _, b in ipairs({requests or false, tokens or false}) do
    if b and b[2] + epsilon < 1 then
      allowed = 0
      wait = math.max(wait, (1 - b[2]) * 60 / b[1])
    end
  end
  if allowed == 1 and requests then requests[2] = requests[2] - 1 end
end

-- the hash goes when both buckets are full again (the same as never created)
local out, refill = {}, 0
for _, pair in ipairs({{'r', requests}, {'t', tokens}}) do
  local b = pair[2]
  if b then
    for i, suffix in ipairs({'c', 'u', 'a'}) do
      table.insert(out, pair[1] .. suffix)
      table.insert(out, string.format('%.17g', b[i]))
    end
    refill = math.max(refill, (b[1] - b[2]) * 60 / b[1])
  end
end
redis.call('DEL', key)
if refill > 0 then
  redis.call('HSET', key, unpack(out))
  redis.call('PEXPIRE', key, math.ceil(refill * 1000) + 1000)
end
local function num(b, i) if b then return string.format('%.17g', b[i]) end return '-' end
return table.concat({tostring(allowed), string.format('%.17g', wait),
  num(requests, 1), num(requests, 2), num(tokens, 1), num(tokens, 2)}, ' ')
"""


def share(limits: KeyLimits, instances: int) -> KeyLimits:
    """One instance's part of ``limits`` when ``instances`` enforce them apart (at least 1)."""
    if instances <= 1:
        return limits
    return KeyLimits(
        rpm=None if limits.rpm is None else max(1, limits.rpm // instances),
        tpm=None if limits.tpm is None else max(1, limits.tpm // instances),
    )


class RedisBuckets:
    """``RateBuckets`` in Redis, falling back to this host's share when it is down."""

    def __init__(self, link: RedisLink, fallback: RateBuckets, *, instances: int = 1):
        self._link = link
        self._fallback = fallback
        self._instances = instances
        self._prefix = f"{link.settings.key_prefix}rl:"
        self._script: Any = link.client.register_script(_SCRIPT)
        #: key id -> (its limits, tokens to charge with its next check)
        self._pending: dict[str, tuple[KeyLimits, int]] = {}
        self._flusher: asyncio.Task[None] | None = None

    async def check_request(self, key_id: str, limits: KeyLimits, now: float) -> Decision:
        if limits.rpm is None and limits.tpm is None:
            return decide(None, None, limits, True, 0.0)
        pending = self._pending.pop(key_id, None)
        tokens = pending[1] if pending is not None else 0
        try:
            answer = await self._run("check", key_id, limits, tokens)
        except StateUnavailable:
            mine = share(limits, self._instances)
            if tokens:
                await self._fallback.record_tokens(key_id, mine, tokens, now)
            return await self._fallback.check_request(key_id, mine, now)
        allowed, wait, rc, rt, tc, tt = answer.split()
        return decide(_bucket(rc, rt), _bucket(tc, tt), limits, allowed == "1", float(wait))

    async def record_tokens(self, key_id: str, limits: KeyLimits, tokens: int, now: float) -> None:
        if tokens <= 0 or limits.tpm is None:
            return
        if not self._link.up:
            await self._fallback.record_tokens(key_id, share(limits, self._instances), tokens, now)
            return
        waiting = self._pending.get(key_id)
        self._pending[key_id] = (limits, tokens + (waiting[1] if waiting is not None else 0))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._charge_later())

    async def aclose(self) -> None:
        """Charge the tokens still waiting (at shutdown)."""
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
        await self._charge_pending()

    async def _charge_later(self) -> None:
        await asyncio.sleep(CHARGE_DELAY)
        await self._charge_pending()

    async def _charge_pending(self) -> None:
        while self._pending:
            key_id, (limits, tokens) = self._pending.popitem()
            try:
                await self._run("charge", key_id, limits, tokens)
            except StateUnavailable:
                mine = share(limits, self._instances)
                await self._fallback.record_tokens(key_id, mine, tokens, time.monotonic())

    async def _run(self, mode: str, key_id: str, limits: KeyLimits, tokens: int) -> str:
        args = [mode, limits.rpm or 0, limits.tpm or 0, tokens]
        key = self._prefix + key_id
        answer = await self._link.call(lambda client: self._script(keys=[key], args=args))
        return answer.decode() if isinstance(answer, bytes) else str(answer)


def _bucket(capacity: str, units: str) -> Bucket | None:
    """The bucket as the script left it (its time is Redis's, which ``decide`` needs not)."""
    if capacity == "-":
        return None
    return Bucket(capacity=float(capacity), tokens=float(units), updated=0.0)
