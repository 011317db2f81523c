"""``GET /metrics``: the gateway's metrics in the Prometheus text format.

On the main port the scraper needs a gateway key with the ``admin``
permission (``Authorization: Bearer ...``); ``metrics.listen`` opens a
listener of its own that serves only ``/metrics``, without a key, for
scrapers on a private network. Values read at scrape time (open connections,
circuit state per account, dropped ledger records) are set just before
rendering. With ``--workers`` the answer is the sum of every worker's
snapshot (``metrics.shared``); no secret is ever a label.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ..errors import NotFound
from ..metrics.families import GatewayMetrics
from ..metrics.registry import Snapshot, merge, render
from ..metrics.shared import SharedSnapshots
from ..routing.health import CircuitState
from ..server.app import GatewayState
from ..server.messages import Request, Response
from .auth import authenticate, authorize

__all__ = ["CONTENT_TYPE", "MetricsEndpoint"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsEndpoint:
    def __init__(
        self,
        state: GatewayState,
        metrics: GatewayMetrics,
        *,
        connections: Callable[[], int],
        dropped: Callable[[], int] = lambda: 0,
        shared: SharedSnapshots | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.metrics = metrics
        self.connections = connections
        self.dropped = dropped
        self.shared = shared
        self.clock = clock

    async def scrape(self, request: Request) -> Response:
        """The main port's ``/metrics``: admin keys only."""
        config = self.state.config
        if not config.metrics.enabled:
            raise NotFound("no such endpoint: GET /metrics (metrics.enabled is false)")
        key = authenticate(request.header_map, config, time.time())
        authorize(key, "admin")
        return await self.open_scrape(request)

    async def open_scrape(self, request: Request) -> Response:
        """``/metrics`` without a key (the ``metrics.listen`` listener)."""
        self.refresh()
        snapshot = self.metrics.registry.snapshot()
        if self.shared is not None:
            shared = self.shared
            others = await asyncio.to_thread(_publish_and_read, shared, snapshot)
            snapshot = merge([snapshot, *others])
        body = render(snapshot).encode()
        return Response(200, [("content-type", CONTENT_TYPE), ("cache-control", "no-store")], body)

    def refresh(self) -> None:
        """Set the values that are read rather than counted."""
        m = self.metrics
        m.connections.set((), float(self.connections()))
        dropped = self.dropped()
        current = m.ledger_dropped.value(()) or 0.0
        if dropped > current:
            m.ledger_dropped.inc((), dropped - current)
        now = self.clock()
        m.circuit.clear()
        for account in self.state.config.upstream_accounts:
            circuit = self.state.health.snapshot(account.id, now).state
            for state in CircuitState:
                m.circuit.set((account.id, state.value), 1.0 if state is circuit else 0.0)

    async def publish_periodically(self, interval: float) -> None:
        """Keep this worker's snapshot file current (``--workers`` only)."""
        shared = self.shared
        if shared is None:
            return
        while True:
            self.refresh()
            await asyncio.to_thread(shared.publish, self.metrics.registry.snapshot())
            await asyncio.sleep(interval)


def _publish_and_read(shared: SharedSnapshots, snapshot: Snapshot) -> list[Snapshot]:
    shared.publish(snapshot)
    return shared.others()


class MetricsApp:
    """The ``metrics.listen`` listener's application: ``GET /metrics`` only."""

    def __init__(self, endpoint: MetricsEndpoint):
        self.endpoint = endpoint

    async def __call__(self, request: Request) -> Response:
        if request.method == "GET" and request.path == "/metrics":
            return await self.endpoint.open_scrape(request)
        return Response(404, [("content-type", "text/plain")], b"only GET /metrics here\n")
