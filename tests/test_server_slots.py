"""Which connection gives up its slot at ``max_connections`` (``server/slots.py``)."""

from __future__ import annotations

from llm_gateway.server.slots import Phase, pick_displaced

NOW = 100.0
AFTER = 1.0


def test_an_idle_keep_alive_connection_goes_first_whatever_its_age() -> None:
    slots = [("old-reader", Phase.READING, 10.0), ("idle", Phase.IDLE, NOW)]
    assert pick_displaced(slots, NOW, AFTER) == "idle"


def test_otherwise_the_connection_reading_its_request_the_longest() -> None:
    slots = [
        ("reader", Phase.READING, 90.0),
        ("oldest", Phase.READING, 50.0),
        ("busy", Phase.ANSWERING, 1.0),
    ]
    assert pick_displaced(slots, NOW, AFTER) == "oldest"


def test_a_reader_younger_than_displace_after_keeps_its_slot() -> None:
    slots = [("fresh", Phase.READING, NOW - 0.5), ("busy", Phase.ANSWERING, 0.0)]
    assert pick_displaced(slots, NOW, AFTER) is None


def test_connections_being_answered_or_closing_are_never_displaced() -> None:
    slots = [("busy", Phase.ANSWERING, 0.0), ("closing", Phase.CLOSING, 0.0)]
    assert pick_displaced(slots, NOW, AFTER) is None
    assert pick_displaced([], NOW, AFTER) is None
