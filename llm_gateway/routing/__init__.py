"""Routing and reliability, without I/O: which account to try, and when not to.

* ``health``: per-account circuit breaker, rate-limit cooldowns, auth exclusion.
* ``selection``: ordering candidate accounts for failover; model globs.
* ``models``: aliases, glob model maps and fallbacks (exact names before globs).
* ``retry_wait``: how long one request may wait on a lone busy account.
* ``ratelimit``: per-gateway-key request and token buckets.
* ``state``: the protocols shared state satisfies, whichever backend holds it.
* ``retry_headers``: upstream retry-after and rate-limit reset headers.

Every function that depends on time takes ``now`` from the caller.
"""
