"""The ``server``, ``proxy`` and ``environment`` sections: how the gateway
listens, how it reaches upstreams (timeouts and limits), and the outbound
HTTP proxies of the environment.
"""

from __future__ import annotations

from dataclasses import dataclass

from .fields import (
    Section,
    read_int,
    read_int_or_auto,
    read_non_negative,
    read_seconds,
    read_str,
    read_str_list,
)

__all__ = [
    "EnvironmentConfig",
    "ProxyConfig",
    "ServerConfig",
    "read_environment",
    "read_proxy",
    "read_server",
]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    #: loopback by default: listening on every interface (0.0.0.0) is a deliberate choice
    host: str = "127.0.0.1"
    port: int = 3847
    max_body_bytes: int = 32 * 1024 * 1024
    max_header_bytes: int = 64 * 1024
    header_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    #: None (``auto``): sized at start from the open-file limit (``server/capacity.py``)
    max_connections: int | None = None
    shutdown_timeout: float = 30.0
    cors_origins: tuple[str, ...] = ()
    #: a request body must arrive within this many seconds, plus its size at
    #: ``body_min_rate`` bytes per second (0: no allowance for size)
    body_timeout: float = 30.0
    body_min_rate: int = 65536
    #: seconds of upstream silence after which a stream gets a keepalive (0: never)
    stream_keepalive: float = 15.0


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """Timeouts and limits for requests to upstreams (all seconds)."""

    connect_timeout: float = 10.0
    tls_timeout: float = 10.0
    response_timeout: float = 300.0
    stream_idle_timeout: float = 300.0
    request_timeout: float = 600.0
    idle_connection_timeout: float = 60.0
    #: None (``auto``): no cap below what the open-file limit allows (``server/capacity.py``)
    max_connections_per_upstream: int | None = None
    max_response_bytes: int = 64 * 1024 * 1024
    #: bytes of memory large requests (1 MiB and more) may hold at once while
    #: parsed, converted and sent (estimated); the others wait their turn
    large_request_memory: int = 128 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class EnvironmentConfig:
    http_proxy: str | None = None
    https_proxy: str | None = None
    no_proxy: str | None = None

    def as_mapping(self) -> dict[str, str | None]:
        return {
            "http_proxy": self.http_proxy,
            "https_proxy": self.https_proxy,
            "no_proxy": self.no_proxy,
        }


def read_server(data: object) -> ServerConfig:
    s, d = Section(data, "server"), ServerConfig()
    result = ServerConfig(
        host=s.get("host", d.host, read_str),
        port=s.get("port", d.port, read_int(0, 65535)),
        max_body_bytes=s.get("max_body_bytes", d.max_body_bytes, read_int(1)),
        max_header_bytes=s.get("max_header_bytes", d.max_header_bytes, read_int(1024)),
        header_timeout=s.get("header_timeout", d.header_timeout, read_seconds),
        keepalive_timeout=s.get("keepalive_timeout", d.keepalive_timeout, read_seconds),
        max_connections=s.get("max_connections", d.max_connections, read_int_or_auto(1)),
        shutdown_timeout=s.get("shutdown_timeout", d.shutdown_timeout, read_seconds),
        cors_origins=s.get("cors_origins", d.cors_origins, read_str_list),
        body_timeout=s.get("body_timeout", d.body_timeout, read_seconds),
        body_min_rate=s.get("body_min_rate", d.body_min_rate, read_int(0)),
        stream_keepalive=s.get("stream_keepalive", d.stream_keepalive, read_non_negative),
    )
    s.finish()
    return result


def read_proxy(data: object) -> ProxyConfig:
    s, d = Section(data, "proxy"), ProxyConfig()
    result = ProxyConfig(
        connect_timeout=s.get("connect_timeout", d.connect_timeout, read_seconds),
        tls_timeout=s.get("tls_timeout", d.tls_timeout, read_seconds),
        response_timeout=s.get("response_timeout", d.response_timeout, read_seconds),
        stream_idle_timeout=s.get("stream_idle_timeout", d.stream_idle_timeout, read_seconds),
        request_timeout=s.get("request_timeout", d.request_timeout, read_seconds),
        idle_connection_timeout=s.get(
            "idle_connection_timeout", d.idle_connection_timeout, read_seconds
        ),
        max_connections_per_upstream=s.get(
            "max_connections_per_upstream", d.max_connections_per_upstream, read_int_or_auto(1)
        ),
        max_response_bytes=s.get("max_response_bytes", d.max_response_bytes, read_int(1)),
        large_request_memory=s.get(
            "large_request_memory", d.large_request_memory, read_int(1 << 20)
        ),
    )
    s.finish()
    return result


def read_environment(data: object) -> EnvironmentConfig:
    s = Section(data, "environment")
    result = EnvironmentConfig(
        http_proxy=s.get("http_proxy", None, read_str),
        https_proxy=s.get("https_proxy", None, read_str),
        no_proxy=s.get("no_proxy", None, read_str),
    )
    s.finish()
    return result
