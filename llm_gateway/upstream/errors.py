"""Errors raised by the upstream HTTP client.

Theory of operation: the hierarchy is flat. Every class derives from
``llm_gateway.errors.UpstreamError`` (502) or ``UpstreamTimeout`` (504), so the
server can answer a client without knowing this package. Foreign exceptions
(OSError, ssl errors, h11 errors, asyncio timeouts) are turned into these
classes at exactly one place, ``network.translating``; nothing else in the
package catches them.

Each timeout class names the ``Timeouts`` field it enforces in ``limit_name``,
so a message can say which setting to raise. Messages name the host:port and
the phase, never credentials: proxy URLs appear only as ``host:port``.
"""

from __future__ import annotations

from llm_gateway.errors import UpstreamError, UpstreamTimeout

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "LocalResourceError",
    "PoolClosed",
    "PoolTimeout",
    "ProxyError",
    "RemoteProtocolError",
    "ResponseHeadersTimeout",
    "ResponseTooLarge",
    "StreamIdleTimeout",
    "TLSError",
    "TLSTimeout",
    "TimeoutKind",
    "TotalTimeout",
]


class ConnectError(UpstreamError):
    """The TCP connection could not be made: refused, DNS failure, unreachable."""


class ConnectTimeout(UpstreamTimeout):
    """The TCP connection (or the proxy's CONNECT answer) took too long."""

    limit_name = "connect"


class TLSError(UpstreamError):
    """The TLS handshake failed, e.g. the certificate did not verify."""


class TLSTimeout(UpstreamTimeout):
    """The TLS handshake took too long."""

    limit_name = "tls"


class ResponseHeadersTimeout(UpstreamTimeout):
    """Too long between starting to send the request and the response headers."""

    limit_name = "response_headers"


class StreamIdleTimeout(UpstreamTimeout):
    """No body bytes arrived for too long while reading a response body."""

    limit_name = "stream_idle"


class TotalTimeout(UpstreamTimeout):
    """A whole non-streaming exchange (``Response.aread``) took too long."""

    limit_name = "total"


class PoolTimeout(UpstreamTimeout):
    """Every connection allowed for the origin stayed busy for too long.

    The limit is the gateway's own, so this is reported as 503 (overloaded)
    rather than as an upstream timeout.
    """

    status = 503
    kind = "overloaded_error"
    limit_name = "pool"


class LocalResourceError(UpstreamError):
    """The gateway itself ran out of file descriptors or socket memory while connecting.

    Like ``PoolTimeout`` this is the gateway's own limit, not the upstream's
    failure: reported as 503 (overloaded).
    """

    status = 503
    kind = "overloaded_error"


class RemoteProtocolError(UpstreamError):
    """The upstream broke HTTP: malformed response, closed mid-message, reset."""


class ProxyError(UpstreamError):
    """The proxy was unreachable, refused the CONNECT (non-2xx), or is misconfigured."""


class ResponseTooLarge(UpstreamError):
    """The response body exceeded the ``max_bytes`` the caller allowed."""


class PoolClosed(UpstreamError):
    """A request was made on a pool after ``aclose()``."""


TimeoutKind = type[UpstreamTimeout]
"""The type of a timeout class: what a budget raises when it runs out."""


def _limit_name(kind: TimeoutKind) -> str:
    return str(getattr(kind, "limit_name", "timeout"))


def timeout_message(kind: TimeoutKind, what: str, seconds: float) -> str:
    """The message of a timeout: what was happening, and which limit ran out."""
    return f"{what}: {_limit_name(kind)} timeout of {seconds:g}s exceeded"
