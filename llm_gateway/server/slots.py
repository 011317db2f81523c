"""Which connection gives up its slot when every slot is taken.

Theory of operation: a connection is always in one ``Phase``. It starts
``READING`` (its first request's head and body), is ``ANSWERING`` while the
application runs and the response is written, then ``IDLE`` on keep-alive
until a byte of its next request arrives (``READING`` again). ``CLOSING``
covers the last words of a connection the server refused.

At ``max_connections``, a new connection does not get 503 at once: it takes
the slot of an idle keep-alive connection (as nginx reuses idle keep-alive
connections when it runs short), or else of the connection that has been
reading its request longest, once that has lasted ``displace_after``
seconds. A connection whose request is being answered is never displaced, so
clients that sent a whole request (and got past authentication) keep their
slots however many connections trickle headers or bodies: a trickler holds a
slot only until a client that talks at a normal pace needs it. Only when no
connection qualifies is the newcomer refused.

Pure: the caller passes each connection's phase, when it entered it, and
the current time.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import TypeVar

__all__ = ["Phase", "pick_displaced"]


class Phase(enum.Enum):
    READING = "reading"
    ANSWERING = "answering"
    IDLE = "idle"
    CLOSING = "closing"


T = TypeVar("T")


def pick_displaced(
    connections: Iterable[tuple[T, Phase, float]], now: float, displace_after: float
) -> T | None:
    """The connection to displace, from ``(connection, phase, since)`` triples; None
    when every slot is answering, closing, or reading for less than ``displace_after``."""
    oldest: T | None = None
    oldest_since = now - displace_after
    for connection, phase, since in connections:
        if phase is Phase.IDLE:
            return connection
        if phase is Phase.READING and since <= oldest_since:
            oldest, oldest_since = connection, since
    return oldest
