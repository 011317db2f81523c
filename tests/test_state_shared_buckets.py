"""Rate-limit buckets in shared memory: the same answers as in one process, one
count across forked processes, and no harm from a process killed with SIGKILL."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from llm_gateway.errors import ServiceUnavailable
from llm_gateway.routing.ratelimit import Decision, KeyLimits, RateLimiter
from llm_gateway.state import shared_buckets
from llm_gateway.state.shared_buckets import SharedBuckets


def check(table: SharedBuckets, key_id: str, limits: KeyLimits, now: float) -> Decision:
    return asyncio.run(table.check_request(key_id, limits, now))


def record(table: SharedBuckets, key_id: str, limits: KeyLimits, tokens: int, now: float) -> None:
    asyncio.run(table.record_tokens(key_id, limits, tokens, now))


@pytest.fixture
def buckets() -> Iterator[SharedBuckets]:
    table = SharedBuckets.create(slots=64)
    yield table
    table.close()


def test_the_same_decisions_and_headers_as_the_in_process_limiter(buckets: SharedBuckets) -> None:
    local = RateLimiter()
    limits = KeyLimits(rpm=5, tpm=100)
    steps: list[tuple[str, float, int]] = [("check", 1000.0 + i * 0.5, 0) for i in range(4)]
    steps += [("tokens", 1002.5, 90), ("check", 1003.0, 0), ("check", 1030.0, 0)]
    steps += [("tokens", 1031.0, 10**30), ("check", 1040.0, 0), ("check", 1200.0, 0)]
    for what, now, tokens in steps:
        if what == "check":
            ours = check(buckets, "key_a", limits, now)
            theirs = local.check_request("key_a", limits, now)
            assert ours == theirs, now
        else:
            record(buckets, "key_a", limits, tokens, now)
            local.record_tokens("key_a", limits, tokens, now)


def test_a_key_limited_to_5_gets_5_of_8_and_another_key_its_own_5(
    buckets: SharedBuckets,
) -> None:
    limits = KeyLimits(rpm=5)
    first = [check(buckets, "key_a", limits, 0.0).allowed for _ in range(8)]
    second = [check(buckets, "key_b", limits, 0.0).allowed for _ in range(8)]
    assert first == second == [True] * 5 + [False] * 3


def _child(run: Callable[[], int]) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = run()
        finally:
            os._exit(code)
    return pid


def test_forked_processes_share_one_count(buckets: SharedBuckets) -> None:
    """Two processes asking 30 times each for a key limited to 30: 30 in all."""
    limits = KeyLimits(rpm=30)
    reader, writer = os.pipe()

    def ask() -> int:
        allowed = sum(check(buckets, "key_a", limits, 50.0).allowed for _ in range(30))
        os.write(writer, bytes([allowed]))
        return 0

    pids = [_child(ask) for _ in range(2)]
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0
    os.close(writer)
    counts = list(os.read(reader, 16))
    os.close(reader)
    assert sum(counts) == 30
    assert not check(buckets, "key_a", limits, 50.0).allowed


def test_a_process_killed_while_holding_the_lock_leaves_it_free(buckets: SharedBuckets) -> None:
    reader, writer = os.pipe()

    def hold_forever() -> int:
        fcntl.lockf(buckets._fd, fcntl.LOCK_EX)  # as a check does, then never done
        os.write(writer, b"x")
        time.sleep(600)
        return 0

    pid = _child(hold_forever)
    assert os.read(reader, 1) == b"x"  # the child holds the lock now
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    answers: list[bool] = []
    worker = threading.Thread(
        target=lambda: answers.append(
            check(buckets, "key_a", KeyLimits(rpm=1), 0.0).allowed
        ),
        daemon=True,
    )
    worker.start()
    worker.join(30)
    assert answers == [True]


def test_a_torn_slot_reads_as_a_fresh_bucket_and_spares_the_others(
    buckets: SharedBuckets,
) -> None:
    limits = KeyLimits(rpm=2)
    for key in ("key_a", "key_b"):
        assert check(buckets, key, limits, 0.0).allowed
        assert check(buckets, key, limits, 0.0).allowed
        assert not check(buckets, key, limits, 0.0).allowed
    index, _ = buckets._find(shared_buckets._digest("key_a"), 0.0)
    offset = index * shared_buckets._SLOT_SIZE + 24  # inside the request bucket's units
    buckets._map[offset : offset + 8] = b"\xff" * 8  # half a write, no checksum
    assert check(buckets, "key_a", limits, 0.0).allowed  # starts full again
    assert not check(buckets, "key_b", limits, 0.0).allowed


def test_more_keys_than_slots_stay_usable_and_a_refilled_slot_is_reused() -> None:
    table = SharedBuckets.create(slots=4)
    try:
        limits = KeyLimits(rpm=1)
        assert all(check(table, f"key_{i}", limits, 0.0).allowed for i in range(10))
        # the four last keys hold the slots, each without units
        assert not check(table, "key_9", limits, 0.0).allowed
        # a minute later every bucket is full again: any key takes a slot
        assert check(table, "key_new", limits, 60.0).allowed
        assert not check(table, "key_new", limits, 60.0).allowed
    finally:
        table.close()


def test_waiting_for_a_busy_lock_lets_other_tasks_run_and_gives_up_with_a_503(
    buckets: SharedBuckets, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, writer = os.pipe()

    def hold_forever() -> int:
        fcntl.lockf(buckets._fd, fcntl.LOCK_EX)
        os.write(writer, b"x")
        time.sleep(600)
        return 0

    pid = _child(hold_forever)
    try:
        assert os.read(reader, 1) == b"x"
        monkeypatch.setattr(shared_buckets, "LOCK_WAIT", 0.5)

        async def check_while_ticking() -> tuple[BaseException | None, int]:
            ticks = 0
            waiting = asyncio.ensure_future(buckets.check_request("key_a", KeyLimits(rpm=1), 0.0))
            while not waiting.done():
                ticks += 1
                await asyncio.sleep(0.01)
            return waiting.exception(), ticks

        error, ticks = asyncio.run(check_while_ticking())
        assert isinstance(error, ServiceUnavailable)
        assert error.status == 503
        assert ticks >= 5  # the loop was never stalled by the wait
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert check(buckets, "key_a", KeyLimits(rpm=1), 0.0).allowed
