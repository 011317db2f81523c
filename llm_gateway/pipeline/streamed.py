"""A streamed answer on its way to the client: its headers, and its body.

Theory of operation: when the upstream answers a streaming request with a
stream (SSE, or a JSON array for formats that send one), the response's body
is a ``ProxyStream``: the server pulls its chunks, each upstream chunk goes
through the request's ``StreamPipe`` (conversion, usage, the final event), and
``aclose`` settles the account's in-flight count, its health and the key's
usage exactly once, whether the stream ended, failed or the client left.
After the first byte went out there is no retry: a failure becomes an error
event in the client's format.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from ..config.accounts import UpstreamAccount
from ..config.schema import GatewayKey
from ..errors import UpstreamError
from ..formats.unified import Usage
from ..metrics.families import GatewayMetrics
from ..routing.health import HealthTracker
from ..server.messages import Request
from ..streaming.json_array import CONTENT_TYPE as JSON_ARRAY_TYPE
from ..streaming.registry import STREAM_FORMATS
from ..upstream.response import Response as UpstreamResponse
from .call import ClientCall
from .outcomes import Outcome, classify_error, client_safe, record
from .streams import StreamPipe

__all__ = [
    "AFTER_END_WAIT",
    "JSON_ARRAY_HEADERS",
    "SSE_HEADERS",
    "ProxyStream",
    "is_array_stream",
    "is_event_stream",
    "stream_debug_level",
    "stream_headers",
]

#: the request path's logger: stream failures and debug events are its lines
log = logging.getLogger("llm_gateway.proxy")

SSE_HEADERS = [
    ("content-type", "text/event-stream; charset=utf-8"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
]
#: a stream written as a JSON array (``ClientCall.json_array``)
JSON_ARRAY_HEADERS = [("content-type", JSON_ARRAY_TYPE), ("cache-control", "no-cache")]
#: once a stream's final event has gone to the client, the longest silence
#: allowed before the rest of the upstream body (normally its end, already on
#: its way, so the connection can be kept)
AFTER_END_WAIT = 2.0


class ProxyStream:
    """A streamed response body: upstream chunks through a pipe, cleaned up exactly once.

    The server pulls chunks with ``async for`` and always calls ``aclose``, even
    when the client went away before the first chunk; ``aclose`` then closes the
    upstream response (freeing its connection) and settles the account's
    in-flight count and health.
    """

    def __init__(
        self,
        upstream: UpstreamResponse,
        pipe: StreamPipe,
        request: Request,
        account: UpstreamAccount,
        key: GatewayKey,
        *,
        metrics: GatewayMetrics,
        health: HealthTracker,
        clock: Callable[[], float],
        charge: Callable[[Request, GatewayKey, Usage | None], Awaitable[None]],
    ):
        self.upstream = upstream
        self.pipe = pipe
        self.request = request
        self.account = account
        self.key = key
        self.metrics = metrics
        self.health = health
        self.clock = clock
        self.charge = charge
        self.started = clock()
        self.outcome: Outcome | None = None
        #: log each converted chunk at this level (None: don't)
        self.debug_level: int | None = None
        self._closed = False
        metrics.streams.inc((), 1)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        pipe = self.pipe
        winding_down = False
        try:
            async for chunk in self.upstream.aiter_bytes():
                out = pipe.feed(chunk)
                if out:
                    if self.debug_level is not None:
                        self._debug(out)
                    yield out
                if pipe.complete and not winding_down:
                    winding_down = True
                    self.upstream.wind_down(AFTER_END_WAIT)
            tail = pipe.finish()
            self.outcome = Outcome.OK
        except UpstreamError as error:
            if pipe.complete:  # after the stream's final event: the answer is whole
                self.outcome = Outcome.OK
                log.debug(
                    "upstream stream failed after its end",
                    extra={"request_id": self.request.request_id, "reason": error.message},
                )
                await self.aclose()
                return
            self.outcome = classify_error(error)
            log.warning(
                "upstream stream failed",
                extra={
                    "request_id": self.request.request_id,
                    "account_id": self.account.id,
                    "error": type(error).__name__,
                    "reason": error.message,
                },
            )
            self.request.notes["error"] = type(error).__name__
            tail = pipe.fail(error.kind, client_safe(error).message)
        await self.aclose()
        if tail:
            yield tail

    def _debug(self, out: bytes) -> None:
        assert self.debug_level is not None
        log.log(
            self.debug_level,
            "stream event",
            extra={"request_id": self.request.request_id, "reason": out.decode("utf-8", "replace")},
        )

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.metrics.streams.inc((), -1)
        self.health.end_request(self.account.id)
        await self.upstream.aclose()
        now = self.clock()
        if self.outcome is not None:
            record(self.health, self.account.id, self.outcome, now, latency=now - self.started)
        else:  # the client left: not the account's doing
            self.health.record_client_error(self.account.id, now)
        await self.charge(self.request, self.key, self.pipe.usage)


def stream_debug_level(request: Request, key: GatewayKey) -> int | None:
    """Converted stream events are logged with debug logging on, or at info level when
    an admin key asks with ``X-Debug-Stream: true``."""
    if request.header("x-debug-stream") == "true" and "admin" in key.permissions:
        return logging.INFO
    return logging.DEBUG if log.isEnabledFor(logging.DEBUG) else None


def stream_headers(call: ClientCall) -> list[tuple[str, str]]:
    return list(JSON_ARRAY_HEADERS if call.json_array else SSE_HEADERS)


def is_event_stream(content_type: str | None) -> bool:
    return content_type is not None and "text/event-stream" in content_type


def is_array_stream(upstream_format: str, content_type: str | None) -> bool:
    """A stream answered as a JSON array (``StreamFormat.array_stream``)."""
    return (
        content_type is not None
        and content_type.lower().startswith("application/json")
        and STREAM_FORMATS[upstream_format].array_stream
    )
