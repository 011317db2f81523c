"""Per-key rate-limit buckets in Redis, shared by gateway instances on many hosts.

Theory of operation: a key's two buckets (requests, tokens) live in one Redis
hash, ``<prefix>rl:<key id>``, with the fields ``rc ru ra`` and ``tc tu ta``
(capacity, units, updated). One Lua script (``_SCRIPT``) does a request's
whole check atomically in one round trip: it reads the hash, applies the
arithmetic of ``routing/ratelimit.py`` (``fit``, then ``take`` or ``charge``),
writes the hash back and sets it to expire when both buckets would be full
again, so an idle key leaves nothing behind. It returns the buckets as
numbers in text (Lua's numbers would reach redis-py as truncated integers);
the headers are then made here by the same ``decide`` as everywhere else.

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

from typing import Any

from ..errors import StateUnavailable
from ..routing.ratelimit import Bucket, Decision, KeyLimits, decide
from ..routing.state import RateBuckets
from .redis_link import RedisLink

__all__ = ["RedisBuckets", "share"]

# KEYS[1]: the key's hash. ARGV: mode ("check" or "charge"), rpm, tpm (0: unlimited),
# tokens to charge. Returns {allowed, retry_after, requests' capacity and units, tokens'
# capacity and units} as text ('' for a bucket the key has no limit for).
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
if mode == 'check' then
  for _, b in ipairs({requests or false, tokens or false}) do
    if b and b[2] + epsilon < 1 then
      allowed = 0
      wait = math.max(wait, (1 - b[2]) * 60 / b[1])
    end
  end
  if allowed == 1 and requests then requests[2] = requests[2] - 1 end
elseif tokens then
  local charged = math.min(used, 2 * tokens[1])
  tokens[2] = math.max(tokens[2] - charged, -tokens[1])
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
local function num(b, i) if b then return string.format('%.17g', b[i]) end return '' end
return {tostring(allowed), string.format('%.17g', wait),
        num(requests, 1), num(requests, 2), num(tokens, 1), num(tokens, 2)}
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

    async def check_request(self, key_id: str, limits: KeyLimits, now: float) -> Decision:
        if limits.rpm is None and limits.tpm is None:
            return decide(None, None, limits, True, 0.0)
        try:
            answer = await self._run("check", key_id, limits, 0)
        except StateUnavailable:
            return await self._fallback.check_request(key_id, share(limits, self._instances), now)
        allowed, wait, rc, rt, tc, tt = answer
        return decide(_bucket(rc, rt), _bucket(tc, tt), limits, allowed == "1", float(wait))

    async def record_tokens(self, key_id: str, limits: KeyLimits, tokens: int, now: float) -> None:
        if tokens <= 0 or limits.tpm is None:
            return
        try:
            await self._run("charge", key_id, limits, tokens)
        except StateUnavailable:
            await self._fallback.record_tokens(key_id, share(limits, self._instances), tokens, now)

    async def _run(self, mode: str, key_id: str, limits: KeyLimits, tokens: int) -> list[str]:
        args = [mode, limits.rpm or 0, limits.tpm or 0, tokens]
        key = self._prefix + key_id
        answer = await self._link.call(lambda client: self._script(keys=[key], args=args))
        return [_text(item) for item in answer]


def _text(item: object) -> str:
    return item.decode() if isinstance(item, bytes) else str(item)


def _bucket(capacity: str, units: str) -> Bucket | None:
    """The bucket as the script left it (its time is Redis's, which ``decide`` needs not)."""
    if not capacity:
        return None
    return Bucket(capacity=float(capacity), tokens=float(units), updated=0.0)
