"""Cost on the request path of sharing account health and budgets between workers.

What each request does, per backend:

* health: ``HealthLink.sync`` over a request's candidate accounts (4 here),
  then the tracker's ``available`` for each, as the selector asks it. With
  one process (no shared backend) the link returns at once; with the
  shared-memory table it reads the generation counter and, when nothing was
  published since, answers from what it read before. The third row has a
  second process publishing a mark every millisecond, so most reads go back
  to the table.
* budgets (a key with a spend budget): ``due`` + ``reserve`` + ``settle``,
  in-process beside the shared table.

Usage: ``python3 bench/shared_health.py [--requests 200000]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llm_gateway.ledger.budgets import SpendBudgets  # noqa: E402
from llm_gateway.routing.health import HealthTracker  # noqa: E402
from llm_gateway.routing.state import HealthMark, MarkReason  # noqa: E402
from llm_gateway.state.health_link import HealthLink  # noqa: E402
from llm_gateway.state.local_budgets import LocalBudgets  # noqa: E402
from llm_gateway.state.shared_budgets import SharedBudgets  # noqa: E402
from llm_gateway.state.shared_health import SharedHealthTable  # noqa: E402

ACCOUNTS = ["acct_a", "acct_b", "acct_c", "acct_d"]


def health_us(table: SharedHealthTable | None, requests: int) -> float:
    tracker = HealthTracker()
    link = HealthLink(tracker, table)

    async def run() -> float:
        started = time.process_time()
        for _ in range(requests):
            await link.sync(ACCOUNTS)
            now = time.monotonic()
            for account in ACCOUNTS:
                tracker.available(account, now)
        return (time.process_time() - started) / requests * 1e6

    return asyncio.run(run())


def budget_us(book: SpendBudgets, requests: int) -> float:
    async def run() -> float:
        now = time.time()
        await book.load("key", "day", now, 0.0)
        started = time.process_time()
        for _ in range(requests):
            now = time.time()
            await book.due("key", "day", now)
            _, held = await book.reserve("key", 1e12, 0.001, now)
            book.settle("key", held, 0.001, now)
        await asyncio.sleep(0)  # settlements that had to wait
        return (time.process_time() - started) / requests * 1e6

    return asyncio.run(run())


def publisher(table: SharedHealthTable) -> int:
    pid = os.fork()
    if pid == 0:
        try:

            async def publish() -> None:
                while True:
                    until = time.time() + 0.5
                    await table.publish([HealthMark("other", MarkReason.COOLDOWN, until)], 0.0)
                    await asyncio.sleep(0.001)

            asyncio.run(publish())
        finally:
            os._exit(0)
    return pid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args()
    n = args.requests
    alone = health_us(None, n)
    table = SharedHealthTable.create()
    shared = health_us(table, n)
    pid = publisher(table)
    busy = health_us(table, n)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    table.close()
    local_book = budget_us(LocalBudgets(), n)
    shared_book = SharedBudgets.create()
    shared_budget = budget_us(shared_book, n)
    shared_book.close()
    print(f"`python3 bench/shared_health.py --requests {n}`\n")
    print("| per request | CPU µs | × one process |")
    print("|---|--:|--:|")
    print(f"| health, one process (no shared backend) | {alone:.2f} | 1.00 |")
    print(f"| health, shared table, nothing published | {shared:.2f} | {shared / alone:.2f} |")
    print(f"| health, shared table, a mark every ms | {busy:.2f} | {busy / alone:.2f} |")
    print(f"| budget, in-process book | {local_book:.2f} | 1.00 |")
    print(f"| budget, shared table | {shared_budget:.2f} | {shared_budget / local_book:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
