"""A pool of keep-alive HTTP/1.1 connections to upstream origins.

Theory of operation: connections are kept per ``Route`` (origin, proxy,
verify_tls), at most ``max_connections_per_origin`` of them, NEW, ACTIVE and
IDLE counted alike. A request joins one FIFO queue of waiters; ``_dispatch``
(synchronous, no I/O) then

1. drops IDLE connections that expired (idle longer than ``idle_expiry``) or
   that the server closed or wrote to while idle (EOF or stray bytes seen by
   the protocol); this sweep runs at most once a second, and a connection
   is checked again right before it is reused,
2. walks the queue and gives each waiter the most recently used IDLE
   connection of its route (kept on a per-route stack, so taking one costs
   O(1) however many connections are open), or a NEW one while the route is
   under its cap, and
3. returns the dropped connections, which the caller closes afterwards.

When nobody is queued, a request skips the queue and takes a connection
directly. A waiter that gets nothing waits for a release, at most ``Timeouts.pool``
seconds, then fails with ``PoolTimeout``. (This is its own limit rather than
``connect``: a request queued behind long-running streams has not started
connecting yet.) Every change that can free a slot (a body finished, a
connection closed) runs ``_dispatch`` again.

The request task opens a NEW connection itself, sends the request and waits
for the response head; the ``Response`` then owns the connection until the
body ends or is abandoned. If a *reused* connection fails with
RemoteProtocolError before any response byte arrived (the server closed it
while it sat idle, racing our check), the request is sent once more on a
fresh connection. This is the usual pool behaviour even for POST: the server
most likely never processed it (rarely it did and died before answering; every
HTTP/1.1 pool accepts that trade-off). Timeouts are never retried here.

A request may name its own proxy (an upstream account's ``proxy``); it then
goes through that proxy whatever the pool's settings say, and its connections
are kept apart from the others' because the proxy is part of the route.

Expired idle connections are closed lazily, at the next request or release;
nothing runs in the background. Cancelling a request closes its connection.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from llm_gateway.upstream.connection import Connection, ConnState
from llm_gateway.upstream.errors import (
    PoolClosed,
    PoolTimeout,
    RemoteProtocolError,
    ResponseHeadersTimeout,
    timeout_message,
)
from llm_gateway.upstream.proxy import ProxySettings, ProxyURL, own_proxy_url, proxy_for
from llm_gateway.upstream.response import Response
from llm_gateway.upstream.routes import Route, Target, build_request_head, parse_target
from llm_gateway.upstream.timeouts import DEFAULT_TIMEOUTS, Budget, Timeouts
from llm_gateway.upstream.tls import TLSContexts

__all__ = ["ConnectionPool", "OriginStats", "PoolStats"]

#: idle connections are checked for expiry at most this often (seconds)
_SWEEP_INTERVAL = 1.0
#: how many distinct upstream URLs the pool remembers parsed (then it starts over)
_KNOWN_URLS = 1024


@dataclass(frozen=True, slots=True)
class OriginStats:
    """Connections to one origin (``scheme://host:port``) right now."""

    connecting: int = 0
    active: int = 0
    idle: int = 0
    waiting: int = 0


@dataclass(frozen=True, slots=True)
class PoolStats:
    origins: Mapping[str, OriginStats]
    opened: int  # connections established (TCP, tunnel, TLS) since the pool started

    @property
    def active(self) -> int:
        return sum(o.active + o.connecting for o in self.origins.values())

    @property
    def idle(self) -> int:
        return sum(o.idle for o in self.origins.values())


@dataclass(frozen=True, slots=True, eq=False)
class _Waiter:
    route: Route
    fresh: bool  # must not reuse an idle connection (the retry after a failed reuse)
    future: asyncio.Future[Connection]


class ConnectionPool:
    """Keep-alive connections to upstream origins; see the module docstring."""

    def __init__(
        self,
        *,
        max_connections_per_origin: int = 32,
        idle_expiry: float = 60.0,
        proxy: ProxySettings | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_connections_per_origin < 1:
            raise ValueError("max_connections_per_origin must be at least 1")
        self._max = max_connections_per_origin
        self._idle_expiry = idle_expiry
        self._proxy = proxy
        self._tls = TLSContexts(ssl_context)
        self._clock = clock
        #: every connection of a route (an ordered set), NEW, ACTIVE and IDLE alike
        self._routes: dict[Route, dict[Connection, None]] = {}
        #: a route's IDLE connections, most recently used last (entries that left
        #: the IDLE state since are skipped when met)
        self._idle: dict[Route, list[Connection]] = {}
        self._queue: list[_Waiter] = []
        #: parsed URL and route per (URL, verify_tls, account proxy), for the proxy
        #: settings in use
        self._known_urls: dict[tuple[str, bool, str | None], tuple[Target, Route]] = {}
        self._last_sweep = clock()
        self._opened = 0
        self._closed = False

    def set_proxy(self, proxy: ProxySettings | None) -> None:
        """Use ``proxy`` for requests from now on (pooled connections keep their route:
        connections are keyed by origin *and* proxy, so none is reused wrongly)."""
        self._proxy = proxy
        self._known_urls.clear()

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Sequence[tuple[str, str]],
        body: bytes = b"",
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        verify_tls: bool = True,
        proxy: str | None = None,
    ) -> Response:
        """Send a request; return once the response headers arrived.

        ``proxy``: an ``http://[user:pass@]host:port`` proxy for this request
        (an upstream account's own), used instead of the pool's proxy settings.

        The body is then read through the returned ``Response``, which must be
        closed. Raises the errors of ``llm_gateway.upstream.errors`` (all
        ``UpstreamError``), ``InvalidRequest`` for a header that is not valid
        HTTP, and ``PoolClosed`` after ``aclose()``. If the calling task is
        cancelled, the connection in use is closed at once.
        """
        started = _now()
        target, route = self._route_for(url, verify_tls, proxy)
        head = build_request_head(method, target, route, headers, body)
        context = None
        if target.origin.scheme == "https":
            context = self._tls.for_origin(str(target.origin), verify=verify_tls)
        may_retry = True
        while True:
            connection = await self._acquire(route, timeouts, fresh=not may_retry)
            try:
                if connection.state is ConnState.NEW:
                    await connection.open(context, timeouts)
                    self._opened += 1
                now = _now()
                budget = Budget.until(now, timeouts.response_headers, ResponseHeadersTimeout)
                await connection.send_request(head, body, budget)
                response_head = await connection.receive_head(budget)
            except RemoteProtocolError:
                retry = may_retry and connection.reused and connection.nothing_received
                self._discard(connection)
                if not retry:
                    raise
                may_retry = False
                continue
            except BaseException:
                self._discard(connection)
                raise
            return Response(response_head, connection, self._release, timeouts, started)

    def _route_for(
        self, url: str, verify_tls: bool, own_proxy: str | None = None
    ) -> tuple[Target, Route]:
        """Where ``url`` leads and how; remembered per URL (accounts' URLs are few)."""
        key = (url, verify_tls, own_proxy)
        known = self._known_urls.get(key)
        if known is None:
            target = parse_target(url)
            proxy: ProxyURL | None = None
            if own_proxy is not None:
                proxy = own_proxy_url(own_proxy)
            elif self._proxy is not None:
                proxy = proxy_for(url, self._proxy)
            known = (target, Route(target.origin, proxy, verify_tls))
            if len(self._known_urls) >= _KNOWN_URLS:
                self._known_urls.clear()
            self._known_urls[key] = known
        return known

    def stats(self) -> PoolStats:
        counts: dict[str, dict[ConnState | str, int]] = {}
        for route, connections in self._routes.items():
            per_origin = counts.setdefault(str(route.origin), {})
            for connection in connections:
                per_origin[connection.state] = per_origin.get(connection.state, 0) + 1
        for waiter in self._queue:
            per_origin = counts.setdefault(str(waiter.route.origin), {})
            per_origin["waiting"] = per_origin.get("waiting", 0) + 1
        origins = {
            origin: OriginStats(
                connecting=c.get(ConnState.NEW, 0),
                active=c.get(ConnState.ACTIVE, 0),
                idle=c.get(ConnState.IDLE, 0),
                waiting=c.get("waiting", 0),
            )
            for origin, c in counts.items()
        }
        return PoolStats(origins=origins, opened=self._opened)

    async def aclose(self) -> None:
        """Close every connection, idle or busy, and refuse further requests."""
        self._closed = True
        for waiter in self._queue:
            if not waiter.future.done():
                waiter.future.set_exception(PoolClosed("the upstream connection pool is closed"))
        self._queue.clear()
        connections = [c for group in self._routes.values() for c in group]
        self._routes.clear()
        self._idle.clear()
        for connection in connections:
            connection.close()
        await asyncio.gather(*(c.wait_closed() for c in connections))

    # -- bookkeeping (synchronous) ----------------------------------------------
    def _dispatch(self) -> list[Connection]:
        """Match queued waiters with connections; return the connections to close.

        Costs O(waiters) plus, at most once per ``_SWEEP_INTERVAL``, a sweep of
        the idle connections; never a scan of every connection per request.
        """
        to_close = self._sweep()
        for waiter in list(self._queue):
            if waiter.future.done():
                self._queue.remove(waiter)
                continue
            assigned = self._assign(waiter.route, waiter.fresh, to_close)
            if assigned is not None:
                self._queue.remove(waiter)
                waiter.future.set_result(assigned)
        return to_close

    def _sweep(self) -> list[Connection]:
        """Drop expired or server-closed idle connections (throttled)."""
        now = self._clock()
        if now - self._last_sweep < _SWEEP_INTERVAL:
            return []
        self._last_sweep = now
        to_close: list[Connection] = []
        for route, idle in list(self._idle.items()):
            keep = []
            for connection in idle:
                if connection.state is not ConnState.IDLE:
                    continue
                if self._stale(connection, now):
                    self._forget(connection)
                    to_close.append(connection)
                else:
                    keep.append(connection)
            if keep:
                self._idle[route] = keep
            else:
                del self._idle[route]
        for route in [r for r, group in self._routes.items() if not group]:
            del self._routes[route]
        return to_close

    def _stale(self, connection: Connection, now: float) -> bool:
        return (
            now - connection.idle_since >= self._idle_expiry or not connection.usable_while_idle()
        )

    def _assign(self, route: Route, fresh: bool, to_close: list[Connection]) -> Connection | None:
        connections = self._routes.get(route, {})
        idle = self._idle.get(route)
        if idle and not fresh:
            now = self._clock()
            while idle:
                candidate = idle.pop()  # the most recently used first
                if candidate.state is not ConnState.IDLE:
                    continue
                if self._stale(candidate, now):
                    self._forget(candidate)
                    to_close.append(candidate)
                    continue
                candidate.reactivate()
                return candidate
        if len(connections) >= self._max:
            oldest = self._oldest_idle(route)
            if oldest is None:
                return None
            connections.pop(oldest, None)
            to_close.append(oldest)
        connection = Connection(route, self._clock)
        self._routes.setdefault(route, {})[connection] = None
        return connection

    def _oldest_idle(self, route: Route) -> Connection | None:
        idle = self._idle.get(route)
        while idle:
            candidate = idle.pop(0)
            if candidate.state is ConnState.IDLE:
                return candidate
        return None

    def _forget(self, connection: Connection) -> None:
        group = self._routes.get(connection.route)
        if group is not None:
            group.pop(connection, None)
            if not group:
                del self._routes[connection.route]

    # -- bookkeeping, then the closing I/O ----------------------------------------
    def _release(self, connection: Connection) -> None:
        """A response is done with ``connection`` (now IDLE or CLOSED)."""
        to_close = []
        if connection.state is ConnState.CLOSED:
            self._forget(connection)
        elif self._closed:
            self._forget(connection)
            to_close.append(connection)
        elif connection.state is ConnState.IDLE:
            self._idle.setdefault(connection.route, []).append(connection)
        if not self._closed:
            to_close += self._dispatch()
        for stale in to_close:
            stale.close()

    def _discard(self, connection: Connection) -> None:
        connection.close()
        self._release(connection)

    async def _acquire(self, route: Route, timeouts: Timeouts, *, fresh: bool) -> Connection:
        if self._closed:
            raise PoolClosed("the upstream connection pool is closed")
        if not self._queue:  # nobody waits before us: try to take a connection directly
            to_close = self._sweep()
            connection = self._assign(route, fresh, to_close)
            for stale in to_close:
                stale.close()
            if connection is not None:
                return connection
        waiter = _Waiter(route, fresh, asyncio.get_running_loop().create_future())
        self._queue.append(waiter)
        for stale in self._dispatch():
            stale.close()
        if not waiter.future.done():
            try:
                await asyncio.wait({waiter.future}, timeout=timeouts.pool)
            except BaseException:
                self._give_up(waiter)
                raise
        if not waiter.future.done():
            self._give_up(waiter)
            what = f"waiting for a free connection to {route.label}"
            raise PoolTimeout(timeout_message(PoolTimeout, what, timeouts.pool))
        return waiter.future.result()

    def _give_up(self, waiter: _Waiter) -> None:
        """The waiting request left; hand back a connection it may have been given."""
        if waiter in self._queue:
            self._queue.remove(waiter)
        future = waiter.future
        if not future.done():
            future.cancel()
        elif not future.cancelled() and future.exception() is None:
            self._discard(future.result())


#: the event loop's clock (``loop.time()`` is ``time.monotonic()``), read without
#: looking the running loop up (which costs a ``getpid`` system call on 3.11)
_now = time.monotonic
