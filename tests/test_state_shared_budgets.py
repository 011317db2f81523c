"""Spend totals in shared memory: the same answers as the in-process book, one
total across forked processes, and settlements that never wait for the lock."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Iterator

import pytest

from llm_gateway.ledger.budgets import BudgetBook
from llm_gateway.state.shared_budgets import SharedBudgets

NOW = 1_767_225_600.0  # 2026-01-01 00:00 UTC


@pytest.fixture
def table() -> Iterator[SharedBudgets]:
    created = SharedBudgets.create(slots=32)
    yield created
    created.close()


def test_the_same_decisions_as_the_in_process_book(table: SharedBudgets) -> None:
    book = BudgetBook()

    async def both() -> None:
        assert await table.due("k", "day", NOW) == book.due("k", "day", NOW) == NOW
        await table.load("k", "day", NOW, 1.0)
        book.load("k", "day", NOW, 1.0)
        for step in range(6):
            now = NOW + step
            ours = await table.reserve("k", 3.0, 0.4, now)
            assert ours == book.reserve_held("k", 3.0, 0.4, now), step
            if step == 2:
                table.settle("k", ours[1], 0.9, now)
                book.settle("k", ours[1], 0.9, now)
                await asyncio.sleep(0.01)
        assert await table.due("k", "day", NOW + 1) is None  # known and fresh
        assert await table.due("k", "day", NOW + 86_400) == NOW + 86_400  # a new day

    asyncio.run(both())


def test_forked_processes_see_each_others_reservations(table: SharedBudgets) -> None:
    """Two processes asking ten times each against room for four: four in all."""
    asyncio.run(table.load("k", "day", NOW, 0.0))
    reader, writer = os.pipe()
    pids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:

                async def ask() -> int:
                    answers = [await table.reserve("k", 4.0, 1.0, NOW) for _ in range(10)]
                    return sum(decision.allowed for decision, _ in answers)

                os.write(writer, bytes([asyncio.run(ask())]))
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0
    os.close(writer)
    counts = list(os.read(reader, 16))
    os.close(reader)
    assert sum(counts) == 4


def test_a_settlement_while_another_process_holds_the_lock_finishes_afterwards(
    table: SharedBudgets,
) -> None:
    asyncio.run(table.load("k", "day", NOW, 0.0))
    decision, held = asyncio.run(table.reserve("k", 10.0, 2.0, NOW))
    assert decision.allowed and held == 2.0
    held_signal, held_by_child = os.pipe()
    release_child, released = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            fcntl.lockf(table._fd, fcntl.LOCK_EX)
            os.write(held_by_child, b"x")
            os.read(release_child, 1)
        finally:
            os._exit(0)

    async def run() -> None:
        assert os.read(held_signal, 1) == b"x"  # the child holds the lock now
        table.settle("k", held, 3.0, NOW)  # returns at once
        await asyncio.sleep(0.05)
        assert table._settling  # still waiting for the lock
        os.write(released, b"x")
        for _ in range(1000):
            if not table._settling:
                break
            await asyncio.sleep(0.01)
        decision, _ = await table.reserve("k", 10.0, 0.0, NOW)
        assert (decision.spent, decision.reserved) == (3.0, 3.0)  # its cost, then a new hold

    try:
        asyncio.run(run())
    finally:
        os.write(released, b"x")
        os.waitpid(pid, 0)
