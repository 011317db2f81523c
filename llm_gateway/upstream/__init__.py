"""The upstream HTTP client: h11 over asyncio streams, with a connection pool.

Theory of operation: ``ConnectionPool.request`` parses the URL into a route
(``routes``), picks a proxy (``proxy``) and a TLS context (``tls``), gets a
keep-alive connection from the pool (``pool``), and sends the request over it
(``connection``, which speaks HTTP/1.1 through h11 on a ``network`` stream).
It returns a ``Response`` (``response``) once the headers arrived; the body is
read on demand. Every timeout is named in ``Timeouts`` (``timeouts``) and every
failure is one of the flat error classes in ``errors``.
"""

from llm_gateway.upstream.errors import (
    ConnectError,
    ConnectTimeout,
    PoolClosed,
    PoolTimeout,
    ProxyError,
    RemoteProtocolError,
    ResponseHeadersTimeout,
    ResponseTooLarge,
    StreamIdleTimeout,
    TLSError,
    TLSTimeout,
    TotalTimeout,
)
from llm_gateway.upstream.pool import ConnectionPool, OriginStats, PoolStats
from llm_gateway.upstream.proxy import ProxySettings, ProxyURL, parse_proxy_url, proxy_for
from llm_gateway.upstream.response import Response
from llm_gateway.upstream.timeouts import DEFAULT_TIMEOUTS, Timeouts

__all__ = [
    "DEFAULT_TIMEOUTS",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionPool",
    "OriginStats",
    "PoolClosed",
    "PoolStats",
    "PoolTimeout",
    "ProxyError",
    "ProxySettings",
    "ProxyURL",
    "RemoteProtocolError",
    "Response",
    "ResponseHeadersTimeout",
    "ResponseTooLarge",
    "StreamIdleTimeout",
    "TLSError",
    "TLSTimeout",
    "Timeouts",
    "TotalTimeout",
    "parse_proxy_url",
    "proxy_for",
]
