"""Keepalives for a silent stream: one timer per stream, not one per chunk.

Theory of operation: a model that reasons for minutes sends nothing, and
clients (and proxies in front of the gateway) give up after a few minutes
without a byte. While a stream is being written, ``StreamKeepalive`` holds
one ``loop.call_at`` handle. Each chunk only records the time it went out
(``touch``); when the timer fires it looks at that time: if the stream has
been silent for ``interval`` seconds it asks the connection to send the
response's keepalive bytes (``send`` returns whether it could), otherwise it
sleeps until the silence would reach ``interval``. So the hot path costs one
clock read per chunk, and an active stream wakes the timer about once per
interval.

The keepalive bytes are the client format's own (an SSE comment, or
Anthropic's ``ping`` event); the connection writes them only between chunks,
and a stream's chunks each end between events, so a keepalive never lands
inside an event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["StreamKeepalive"]

#: a timer may fire this much before its time; that counts as on time
_EARLY = 0.01


class StreamKeepalive:
    __slots__ = ("_handle", "_interval", "_loop", "_send", "last")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, interval: float, send: Callable[[], bool]
    ) -> None:
        self._loop = loop
        self._interval = interval
        self._send = send
        #: when the stream last sent something (``loop.time()``)
        self.last = loop.time()
        self._handle: asyncio.TimerHandle | None = loop.call_at(self.last + interval, self._fire)

    def touch(self) -> None:
        """Something went out now."""
        self.last = self._loop.time()

    def _fire(self) -> None:
        now = self._loop.time()
        due = self.last + self._interval
        if now >= due - _EARLY:
            if self._send():
                self.last = now
            due = now + self._interval
        self._handle = self._loop.call_at(due, self._fire)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
