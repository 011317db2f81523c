"""One HTTP/1.1 connection to an upstream: h11 over a NetworkStream.

Theory of operation: a connection has an explicit state, changed only in
``_set_state`` and only along these edges::

    NEW ──open()──▶ ACTIVE ──body complete, keep-alive──▶ IDLE
     │                │  ▲                                  │
     │                │  └──────────── reactivate() ────────┘
     └──── close() ───┴────────────▶ CLOSED ◀── close() ────┘

NEW is a connection the pool reserved for a request that is still opening it
(TCP, then a CONNECT tunnel through a proxy if needed, then TLS). ACTIVE
carries exactly one request/response. When the response body ends and h11
says both sides are DONE, the connection starts the next h11 cycle and
becomes IDLE; otherwise (``Connection: close``, a close-delimited body) it
closes. Any error or cancellation while ACTIVE closes it.

Bytes meet h11 in exactly two methods: ``_send`` (event -> bytes -> stream)
and ``_receive`` (stream -> bytes -> event). Both take a ``Budget`` and ask it
for the wait of every single read or write, so each named timeout is applied
at the I/O edge. The CONNECT exchange with a proxy uses the same two methods
on a throwaway h11 state, replaced by a fresh one once the tunnel is up.

The connection counts the bytes received since the current request started
(``nothing_received``) and whether it served an earlier request
(``reused``); the pool uses both to decide whether a failed request may be
retried on a fresh connection.
"""

from __future__ import annotations

import enum
import ssl
import time
from collections.abc import Callable

import h11

from llm_gateway.upstream.errors import (
    ConnectTimeout,
    PoolClosed,
    ProxyError,
    RemoteProtocolError,
    TLSTimeout,
)
from llm_gateway.upstream.network import NetworkStream, Phase, open_tcp, translating
from llm_gateway.upstream.routes import Route
from llm_gateway.upstream.timeouts import Budget, Timeouts, Wait

__all__ = ["ConnState", "Connection", "ResponseHead"]

_READ_SIZE = 64 * 1024
#: h11 events are immutable: one end-of-message serves every request
_END = h11.EndOfMessage()
#: a request body larger than this is written in pieces of this size
_BODY_PIECE = 1 << 20


class ConnState(enum.Enum):
    NEW = "new"
    ACTIVE = "active"
    IDLE = "idle"
    CLOSED = "closed"


_EDGES: dict[ConnState, frozenset[ConnState]] = {
    ConnState.NEW: frozenset({ConnState.ACTIVE, ConnState.CLOSED}),
    ConnState.ACTIVE: frozenset({ConnState.IDLE, ConnState.CLOSED}),
    ConnState.IDLE: frozenset({ConnState.ACTIVE, ConnState.CLOSED}),
    ConnState.CLOSED: frozenset(),
}


class ResponseHead:
    """Status line and headers of a response (names lowercased by h11)."""

    __slots__ = ("headers", "reason", "status")

    def __init__(self, event: h11.Response) -> None:
        self.status: int = event.status_code
        self.reason: str = bytes(event.reason).decode("latin-1")
        self.headers: list[tuple[str, str]] = [
            (name.lower().decode("latin-1"), value.decode("latin-1"))
            for name, value in event.headers.raw_items()
        ]


class Connection:
    """An HTTP/1.1 client connection along one route."""

    def __init__(self, route: Route, clock: Callable[[], float]) -> None:
        self.route = route
        self._clock = clock
        self._state = ConnState.NEW
        self._stream: NetworkStream | None = None
        self._h11 = h11.Connection(h11.CLIENT)
        self._requests = 0
        self._received = 0
        self.idle_since = 0.0

    def __repr__(self) -> str:
        return f"<Connection {self.route.label} {self._state.value}>"

    # -- state ---------------------------------------------------------------
    @property
    def state(self) -> ConnState:
        return self._state

    def _set_state(self, new: ConnState) -> None:
        if new not in _EDGES[self._state]:
            raise RuntimeError(f"connection cannot go from {self._state.value} to {new.value}")
        self._state = new
        if new is ConnState.IDLE:
            self.idle_since = self._clock()

    @property
    def reused(self) -> bool:
        """True once the connection carries its second or later request."""
        return self._requests > 1

    @property
    def nothing_received(self) -> bool:
        """True while no byte of the current request's response has arrived."""
        return self._received == 0

    def usable_while_idle(self) -> bool:
        """Checked before reuse: the server has not closed it nor sent stray bytes."""
        if self._state is not ConnState.IDLE or self._stream is None:
            return False
        leftover, closed = self._h11.trailing_data
        return self._stream.quiet and not leftover and not closed

    def reactivate(self) -> None:
        """IDLE -> ACTIVE: the pool hands this idle connection to a request."""
        if self._state is not ConnState.IDLE:
            raise RuntimeError(
                f"only an idle connection can be reused, not a {self._state.value} one"
            )
        self._set_state(ConnState.ACTIVE)

    def close(self) -> None:
        """Mark CLOSED and close the socket at once. Safe to call in any state."""
        if self._state is not ConnState.CLOSED:
            self._set_state(ConnState.CLOSED)
        if self._stream is not None:
            self._stream.abort()

    async def wait_closed(self) -> None:
        if self._stream is not None:
            await self._stream.wait_closed()

    # -- opening -------------------------------------------------------------
    async def open(self, context: ssl.SSLContext | None, timeouts: Timeouts) -> None:
        """NEW -> ACTIVE: connect, tunnel through the proxy if any, start TLS."""
        route, origin = self.route, self.route.origin
        connect = Wait(timeouts.connect, ConnectTimeout, timeouts.connect)
        if route.proxy is not None:
            where = route.proxy.address
            host, port, phase = route.proxy.host, route.proxy.port, Phase.PROXY_CONNECT
        else:
            where, host, port, phase = origin.authority, origin.host, origin.port, Phase.CONNECT
        self._stream = await open_tcp(host, port, phase, where, connect)
        self._unless_closed()
        if route.tunnel:
            await self._open_tunnel(timeouts.connect)
            self._unless_closed()
        if origin.scheme == "https":
            if context is None:
                raise RuntimeError("an https route needs an SSL context")
            tls = Wait(timeouts.tls, TLSTimeout, timeouts.tls)
            await self._stream.start_tls(context, origin.host, route.label, tls)
            self._unless_closed()
        self._h11 = h11.Connection(h11.CLIENT)
        self._set_state(ConnState.ACTIVE)

    def _unless_closed(self) -> None:
        """The pool may close a NEW connection (``aclose``) while it is opening."""
        if self._state is ConnState.CLOSED:
            if self._stream is not None:
                self._stream.abort()
            raise PoolClosed(f"the pool was closed while connecting to {self.route.label}")

    async def _open_tunnel(self, seconds: float) -> None:
        proxy, authority = self.route.proxy, self.route.origin.authority
        assert proxy is not None
        budget = Budget.until(_now(), seconds, ConnectTimeout)
        headers = [("Host", authority)]
        if proxy.authorization:
            headers.append(("Proxy-Authorization", proxy.authorization))
        self._h11 = h11.Connection(h11.CLIENT)
        request = h11.Request(method="CONNECT", target=authority, headers=headers)
        await self._send([request, h11.EndOfMessage()], Phase.PROXY_TUNNEL, budget)
        event = await self._receive(Phase.PROXY_TUNNEL, budget)
        while isinstance(event, h11.InformationalResponse):
            event = await self._receive(Phase.PROXY_TUNNEL, budget)
        if not isinstance(event, h11.Response):
            raise ProxyError(f"proxy {proxy.address} closed the connection instead of answering")
        if not 200 <= event.status_code < 300:
            reason = bytes(event.reason).decode("latin-1")
            raise ProxyError(
                f"proxy {proxy.address} refused CONNECT to {authority}: "
                f"{event.status_code} {reason}".rstrip()
            )
        if self._h11.trailing_data[0]:
            raise ProxyError(f"proxy {proxy.address} sent data before the TLS handshake")

    # -- one exchange --------------------------------------------------------
    async def send_request(self, head: h11.Request, body: bytes, budget: Budget) -> None:
        """Send the request; starts the count of response bytes for retry decisions."""
        if self._state is not ConnState.ACTIVE:
            raise RuntimeError(f"cannot send on a {self._state.value} connection")
        self._requests += 1
        self._received = 0
        if len(body) > _BODY_PIECE:
            # in pieces, each written once the last has drained: neither a joined
            # copy nor the transport's buffer holds a large body a second time
            await self._send([head], Phase.SEND, budget)
            for start in range(0, len(body), _BODY_PIECE):
                piece = body[start : start + _BODY_PIECE]
                await self._send([h11.Data(data=piece)], Phase.SEND, budget)
            await self._send([_END], Phase.SEND, budget)
            return
        events: list[h11.Event] = [head]
        if body:
            events.append(h11.Data(data=body))
        events.append(_END)
        await self._send(events, Phase.SEND, budget)

    async def receive_head(self, budget: Budget) -> ResponseHead:
        """Wait for the final response head, skipping 1xx responses."""
        while True:
            event = await self._receive(Phase.RESPONSE_HEADERS, budget)
            if isinstance(event, h11.Response):
                return ResponseHead(event)
            if not isinstance(event, h11.InformationalResponse):
                raise RemoteProtocolError(
                    f"{Phase.RESPONSE_HEADERS.value} {self.route.label} failed: "
                    "connection closed before a response"
                )

    async def receive_body_chunk(self, budget: Budget) -> bytes | None:
        """The next piece of body, or None at its end (then IDLE or CLOSED)."""
        while True:
            event = await self._receive(Phase.BODY, budget)
            if isinstance(event, h11.Data):
                if event.data:
                    return bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._finish_cycle()
                return None
            else:
                raise RemoteProtocolError(
                    f"{Phase.BODY.value} {self.route.label} failed: connection closed mid-body"
                )

    def _finish_cycle(self) -> None:
        if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
            self._h11.start_next_cycle()
            self._set_state(ConnState.IDLE)
        else:
            self.close()

    # -- where bytes meet h11 ------------------------------------------------
    async def _send(self, events: list[h11.Event], phase: Phase, budget: Budget) -> None:
        """Frame ``events`` and write them in one go (one system call for a whole request)."""
        assert self._stream is not None
        wait = budget.next_wait(_now())
        with translating(phase, self.route.label, wait):
            data = b"".join([self._h11.send(event) or b"" for event in events])
        if data:
            await self._stream.write(data, phase, self.route.label, wait)

    async def _receive(self, phase: Phase, budget: Budget) -> h11.Event:
        assert self._stream is not None
        while True:
            with translating(phase, self.route.label):
                event = self._h11.next_event()
            if isinstance(event, h11.Event):
                return event
            if event is h11.PAUSED:
                raise RemoteProtocolError(
                    f"{phase.value} {self.route.label} failed: protocol switched"
                )
            wait = budget.next_wait(_now())
            data = await self._stream.read(_READ_SIZE, phase, self.route.label, wait)
            self._received += len(data)
            with translating(phase, self.route.label):
                self._h11.receive_data(data)


#: the event loop's clock (``loop.time()`` is ``time.monotonic()``), without the
#: cost of looking the running loop up on every read
_now = time.monotonic
