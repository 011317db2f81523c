"""Account health shared by processes: what a tracker publishes, how it honours
what others published, the shared-memory table across forked processes, and the
link that converts between each process's monotonic clock and wall-clock marks."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import time
from collections.abc import Iterator, Sequence

import pytest

from llm_gateway.routing.health import (
    ELSEWHERE_AUTH,
    CircuitState,
    FailureKind,
    HealthPolicy,
    HealthTracker,
)
from llm_gateway.routing.state import HealthMark, MarkReason
from llm_gateway.state import shared_health
from llm_gateway.state.health_link import HealthLink
from llm_gateway.state.shared_health import SharedHealthTable

CIRCUIT, COOLDOWN, AUTH = MarkReason.CIRCUIT, MarkReason.COOLDOWN, MarkReason.AUTH


@pytest.fixture
def table() -> Iterator[SharedHealthTable]:
    created = SharedHealthTable.create(slots=32)
    yield created
    created.close()


def read(table: SharedHealthTable, ids: Sequence[str], now: float) -> set[HealthMark]:
    return set(asyncio.run(table.read(ids, now)))


def publish(table: SharedHealthTable, *marks: HealthMark, now: float = 1000.0) -> None:
    asyncio.run(table.publish(marks, now))


def publishing() -> HealthTracker:
    tracker = HealthTracker(HealthPolicy(failure_threshold=2, open_base=10.0))
    tracker.publishing = True
    return tracker


# -- the tracker: what it publishes ---------------------------------------------------


def test_a_tracker_notes_an_opened_circuit_and_its_recovery() -> None:
    tracker = publishing()
    tracker.record_failure("a", 100.0, FailureKind.SERVER_ERROR)
    assert tracker.take_marks() == []  # one failure: the circuit is still closed
    tracker.record_failure("a", 101.0, FailureKind.SERVER_ERROR)
    assert tracker.take_marks() == [("a", CIRCUIT, 111.0)]
    assert tracker.take_marks() == []  # taken once
    assert tracker.try_acquire_probe("a", 112.0)  # half open: the probe
    tracker.record_failure("a", 112.5, FailureKind.TIMEOUT)  # reopens for twice as long
    assert tracker.take_marks() == [("a", CIRCUIT, 132.5)]
    assert tracker.try_acquire_probe("a", 133.0)
    tracker.record_success("a", 133.5, 0.1)
    assert tracker.take_marks() == [("a", CIRCUIT, 0.0)]  # recovered


def test_a_tracker_notes_cooldowns_and_refused_credentials() -> None:
    tracker = publishing()
    tracker.record_rate_limited("a", 100.0, 20.0)
    tracker.record_rate_limited("a", 101.0, 1.0)  # shorter: changes nothing
    tracker.record_auth_failure("b", 100.0, "refused")
    assert sorted(tracker.take_marks()) == [("a", COOLDOWN, 120.0), ("b", AUTH, 160.0)]
    assert tracker.try_acquire_probe("b", 161.0)  # the credential check
    tracker.record_success("b", 161.5, 0.1)
    assert tracker.take_marks() == [("b", AUTH, 0.0)]


def test_a_tracker_nobody_takes_marks_from_keeps_none() -> None:
    tracker = HealthTracker(HealthPolicy(failure_threshold=1))
    tracker.record_failure("a", 100.0, FailureKind.CONNECT)
    tracker.record_rate_limited("b", 100.0, 5.0)
    assert tracker.take_marks() == []


# -- the tracker: what others published -----------------------------------------------


def test_marks_from_elsewhere_keep_an_account_out_until_their_time() -> None:
    tracker = HealthTracker()
    tracker.apply_marks(["a", "b"], [("a", CIRCUIT, 150.0), ("b", COOLDOWN, 120.0)])
    assert not tracker.available("a", 100.0)
    assert not tracker.try_acquire_probe("a", 100.0)
    assert tracker.available_at("a", 100.0) == 150.0
    snap = tracker.snapshot("a", 100.0)
    assert (snap.state, snap.open_until, snap.available) == (CircuitState.OPEN, 150.0, False)
    assert tracker.snapshot("b", 100.0).cooldown_until == 120.0
    assert tracker.available("b", 120.0)  # the cooldown is over
    assert tracker.available("a", 150.0)
    # its own circuit was never touched: nothing to probe, nothing counted
    assert tracker.snapshot("a", 150.0).state is CircuitState.CLOSED
    assert tracker.snapshot("a", 150.0).total_failures == 0


def test_a_later_read_replaces_the_marks_of_the_accounts_read() -> None:
    tracker = HealthTracker()
    tracker.apply_marks(["a", "b"], [("a", AUTH, 500.0), ("b", CIRCUIT, 500.0)])
    snap = tracker.snapshot("a", 100.0)
    assert (snap.auth_error, snap.auth_until) == (ELSEWHERE_AUTH, 500.0)
    tracker.apply_marks(["a"], [])  # a recovered elsewhere; b was not read
    assert tracker.available("a", 100.0)
    assert not tracker.available("b", 100.0)


# -- the shared-memory table ----------------------------------------------------------


def test_the_table_keeps_the_later_time_and_a_recovery_clears_the_reason(
    table: SharedHealthTable,
) -> None:
    publish(table, HealthMark("a", COOLDOWN, 1030.0), HealthMark("a", CIRCUIT, 1010.0))
    publish(table, HealthMark("a", COOLDOWN, 1005.0))  # shorter: the later stays
    assert read(table, ["a", "b"], 1000.0) == {
        HealthMark("a", COOLDOWN, 1030.0),
        HealthMark("a", CIRCUIT, 1010.0),
    }
    publish(table, HealthMark("a", CIRCUIT, 0.0))
    assert read(table, ["a"], 1000.0) == {HealthMark("a", COOLDOWN, 1030.0)}
    assert read(table, ["a"], 1030.0) == set()  # lapsed by time


def test_a_mark_published_by_another_process_is_read_at_once(table: SharedHealthTable) -> None:
    assert read(table, ["a"], 1000.0) == set()  # read (and remembered) before
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            publish(table, HealthMark("a", CIRCUIT, 1010.0))
            code = 0
        finally:
            os._exit(code)
    assert os.waitpid(pid, 0)[1] == 0
    assert read(table, ["a"], 1000.0) == {HealthMark("a", CIRCUIT, 1010.0)}


def test_many_accounts_fit_and_lapsed_slots_are_taken_again(table: SharedHealthTable) -> None:
    ids = [f"acct-{i}" for i in range(20)]
    publish(table, *(HealthMark(i, CIRCUIT, 1010.0) for i in ids))
    assert len(read(table, ids, 1000.0)) == 20
    others = [f"other-{i}" for i in range(20)]
    publish(table, *(HealthMark(i, COOLDOWN, 1100.0) for i in others), now=1050.0)
    assert len(read(table, others, 1050.0)) == 20


def test_a_torn_slot_reads_as_no_mark(table: SharedHealthTable) -> None:
    publish(table, HealthMark("a", CIRCUIT, 1010.0))
    found = table._map.find(shared_health.digest("a"))
    table._map[found + 20 : found + 24] = b"\xff" * 4  # half a write, no checksum
    table._known.clear()
    assert read(table, ["a"], 1000.0) == set()
    publish(table, HealthMark("a", COOLDOWN, 1020.0))  # and the slot is usable again
    assert read(table, ["a"], 1000.0) == {HealthMark("a", COOLDOWN, 1020.0)}


def test_a_process_killed_holding_the_lock_does_not_wedge_the_table(
    table: SharedHealthTable,
) -> None:
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        fcntl.lockf(table._fd, fcntl.LOCK_EX)  # as a publish does, then never done
        os.write(writer, b"x")
        time.sleep(600)
        os._exit(0)
    assert os.read(reader, 1) == b"x"
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(reader)
    os.close(writer)
    publish(table, HealthMark("a", CIRCUIT, 1010.0))
    assert read(table, ["a"], 1000.0) == {HealthMark("a", CIRCUIT, 1010.0)}


# -- the link: clocks -------------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_marks_cross_processes_in_wall_clock_time_whatever_their_monotonic_clocks(
    table: SharedHealthTable,
) -> None:
    wall = Clock(1_700_000_000.0)
    here, there = HealthTracker(HealthPolicy(failure_threshold=1)), HealthTracker()
    mine = HealthLink(here, table, clock=Clock(100.0), wall_clock=wall)
    theirs = HealthLink(there, table, clock=Clock(90_000.0), wall_clock=wall)
    here.record_failure("a", 100.0, FailureKind.CONNECT)  # open for 10 s
    asyncio.run(mine.flush())
    asyncio.run(theirs.sync(["a", "b"]))
    assert there.available_at("a", 90_000.0) == pytest.approx(90_010.0)
    assert there.available("b", 90_000.0)
    # a link without a shared backend (one process) does nothing at all
    alone = HealthTracker(HealthPolicy(failure_threshold=1))
    link = HealthLink(alone, None)
    alone.record_failure("a", 100.0, FailureKind.CONNECT)
    asyncio.run(link.sync(["a"]))
    assert alone.take_marks() == []
