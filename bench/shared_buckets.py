"""Cost of a per-key limit check: the in-process buckets beside the table the
workers of ``--workers N`` share, in one process and in two at once.

Each "request" is what the gateway does for a key with ``rpm`` and ``tpm``:
one ``check_request`` and one ``record_tokens``, over 100 keys in turn. The
shared table is measured alone and with a second process hammering it at the
same time (lock contention); on a 2-core machine both processes get a core.

Usage: ``python3 bench/shared_buckets.py [--requests 200000]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llm_gateway.routing.ratelimit import KeyLimits, RateLimiter  # noqa: E402
from llm_gateway.routing.state import RateBuckets  # noqa: E402
from llm_gateway.state.local_buckets import LocalBuckets  # noqa: E402
from llm_gateway.state.shared_buckets import SharedBuckets  # noqa: E402

LIMITS = KeyLimits(rpm=10**8, tpm=10**11)
KEYS = [f"key_{i:03d}" for i in range(100)]


def per_request_us(buckets: RateBuckets, requests: int) -> float:
    async def run() -> float:
        started = time.process_time()
        for i in range(requests):
            key = KEYS[i % len(KEYS)]
            now = time.monotonic()
            await buckets.check_request(key, LIMITS, now)
            await buckets.record_tokens(key, LIMITS, 300, now)
        return (time.process_time() - started) / requests * 1e6

    return asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args()
    local = per_request_us(LocalBuckets(RateLimiter()), args.requests)
    table = SharedBuckets.create()
    shared = per_request_us(table, args.requests)
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(reader)
        os.write(writer, f"{per_request_us(table, args.requests):.3f}".encode())
        os._exit(0)
    os.close(writer)
    contended = per_request_us(table, args.requests)
    os.waitpid(pid, 0)
    other = float(os.read(reader, 64))
    table.close()
    print(f"`python3 bench/shared_buckets.py --requests {args.requests}`\n")
    print("| buckets | CPU µs per request (check + charge) | × in-process |")
    print("|---|--:|--:|")
    print(f"| in-process (`LocalBuckets`) | {local:.2f} | 1.00 |")
    print(f"| shared table, one process | {shared:.2f} | {shared / local:.2f} |")
    both = (contended + other) / 2
    print(f"| shared table, two processes at once | {both:.2f} | {both / local:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
