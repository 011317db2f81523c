"""Where a request goes and what its head looks like: pure functions.

Theory of operation: ``parse_target`` splits a URL into an ``Origin``
(scheme, host, port) and the request target (path and query). A ``Route`` is
an origin plus the way to reach it: directly, through a proxy by CONNECT
(https origins, "tunnel"), or by sending absolute-form requests to a proxy
(http origins, "forward"); and whether TLS is verified. The pool keeps
connections per route, so a connection is only reused for requests that would
have opened the very same connection.

``build_request_head`` makes the h11 request: the caller's headers in their
order, plus ``Host`` (unless the caller gave one), ``Content-Length`` (for a
body, and for POST/PUT/PATCH even when empty) and, when forwarding through an
authenticating proxy, ``Proxy-Authorization``. Nothing else is added; a
caller's ``Content-Length`` or ``Transfer-Encoding`` is replaced by ours
because this client frames the body itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11

from llm_gateway.errors import InvalidRequest, UpstreamError
from llm_gateway.upstream.proxy import ProxyURL, bracket

__all__ = ["Origin", "Route", "Target", "build_request_head", "parse_target"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int
    #: ``host:port`` (IPv6 bracketed): the CONNECT target and log label
    authority: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "authority", f"{bracket(self.host)}:{self.port}")

    @property
    def host_header(self) -> str:
        """The ``Host`` value: the port only when it is not the scheme's default."""
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return bracket(self.host)
        return self.authority

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}"


@dataclass(frozen=True, slots=True)
class Target:
    origin: Origin
    path: str  # path and query, always starting with "/"


@dataclass(frozen=True, slots=True)
class Route:
    origin: Origin
    proxy: ProxyURL | None = None
    verify_tls: bool = True
    #: where this route leads, for messages; never includes credentials
    label: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        label = self.origin.authority
        if self.proxy is not None:
            label = f"{label} via proxy {self.proxy.address}"
        object.__setattr__(self, "label", label)

    @property
    def tunnel(self) -> bool:
        """An https origin behind a proxy: CONNECT, then TLS inside the tunnel."""
        return self.proxy is not None and self.origin.scheme == "https"

    @property
    def forward(self) -> bool:
        """An http origin behind a proxy: absolute-form requests to the proxy."""
        return self.proxy is not None and self.origin.scheme == "http"


def parse_target(url: str) -> Target:
    """Split an http(s) URL; raise UpstreamError when it cannot be requested."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UpstreamError("upstream URL is malformed") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise UpstreamError(f"upstream URL scheme {scheme!r} is not http or https")
    if not parts.hostname:
        raise UpstreamError("upstream URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UpstreamError("upstream URL must not contain credentials")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    origin = Origin(scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme])
    return Target(origin, path)


def build_request_head(
    method: str, target: Target, route: Route, headers: Sequence[tuple[str, str]], body: bytes
) -> h11.Request:
    """The request line and headers to send on a connection of ``route``."""
    out: list[tuple[bytes, bytes]] = []
    if not any(name.lower() == "host" for name, _ in headers):
        out.append((b"Host", target.origin.host_header.encode("ascii")))
    for name, value in headers:
        if name.lower() in _FRAMING_HEADERS:
            continue
        out.append((_encode(name, name, "ascii"), _encode(value, name, "latin-1")))
    if body or method.upper() in _BODY_METHODS:
        out.append((b"Content-Length", str(len(body)).encode("ascii")))
    if route.forward and route.proxy is not None and route.proxy.authorization:
        out.append((b"Proxy-Authorization", route.proxy.authorization.encode("ascii")))
    request_target = target.path
    if route.forward:
        request_target = f"http://{target.origin.authority}{target.path}"
    try:
        return h11.Request(method=method.encode("ascii"), target=request_target, headers=out)
    except (h11.LocalProtocolError, UnicodeEncodeError):
        # h11's message would quote the offending value, which may be a secret.
        raise InvalidRequest("request method, target or a header is not valid HTTP") from None


def _encode(text: str, header_name: str, encoding: str) -> bytes:
    try:
        return text.encode(encoding)
    except UnicodeEncodeError:
        safe_name = header_name.encode("ascii", "replace").decode("ascii")[:64]
        raise InvalidRequest(f"request header {safe_name!r} cannot be encoded") from None
