"""The memory budget for large requests, without sockets: who waits, in what order."""

from __future__ import annotations

import asyncio

from conftest import run

from llm_gateway.pipeline.memory_budget import MemoryBudget, estimate


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_the_estimate_grows_with_the_body_and_its_objects() -> None:
    text = b'{"messages": [' + b",".join([b'{"role": "user", "content": "a"}'] * 1000) + b"]}"
    long = b'{"messages": [{"role": "user", "content": "' + b"a" * len(text) + b'"}]}'
    assert estimate(long) >= 4 * len(long)
    assert estimate(text) > estimate(long)  # a thousand small objects weigh more


def test_requests_beyond_the_budget_wait_their_turn_in_arrival_order() -> None:
    async def scenario() -> list[str]:
        budget = MemoryBudget(100)
        order: list[str] = []
        release = {name: asyncio.Event() for name in "abcd"}

        async def request(name: str, cost: int) -> None:
            async with budget.hold(cost):
                order.append(name)
                await release[name].wait()

        tasks = [asyncio.create_task(request("a", 60))]
        await _settle()
        tasks += [asyncio.create_task(request(n, c)) for n, c in (("b", 60), ("c", 30), ("d", 10))]
        await _settle()
        assert order == ["a"]  # c and d would fit beside a, but b came first
        assert budget.in_use == 60
        release["a"].set()
        await _settle()
        assert order == ["a", "b", "c", "d"]  # b, c and d fit together (100)
        for event in release.values():
            event.set()
        await asyncio.gather(*tasks)
        assert budget.in_use == 0
        return order

    run(scenario())


def test_a_request_larger_than_the_budget_runs_alone() -> None:
    async def scenario() -> None:
        budget = MemoryBudget(100)
        async with budget.hold(500):
            assert budget.in_use == 500
        assert budget.in_use == 0

    run(scenario())


def test_a_client_that_leaves_while_waiting_gives_its_turn_away() -> None:
    async def scenario() -> None:
        budget = MemoryBudget(100)
        admitted: list[str] = []
        first_done = asyncio.Event()

        async def request(name: str, cost: int, until: asyncio.Event | None = None) -> None:
            async with budget.hold(cost):
                admitted.append(name)
                if until is not None:
                    await until.wait()

        first = asyncio.create_task(request("first", 80, first_done))
        await _settle()
        leaving = asyncio.create_task(request("leaving", 80))
        staying = asyncio.create_task(request("staying", 20))
        await _settle()
        leaving.cancel()
        await _settle()
        assert admitted == ["first", "staying"]  # no longer behind the one that left
        first_done.set()
        await asyncio.gather(first, staying)
        assert budget.in_use == 0

    run(scenario())
