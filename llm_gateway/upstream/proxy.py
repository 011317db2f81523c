"""Which proxy a request goes through: pure functions over settings.

Theory of operation: ``ProxySettings`` holds the three classic values
(``http_proxy``, ``https_proxy``, ``no_proxy``), taken from the gateway's
configuration when it sets them and from the process environment otherwise.
``proxy_for(url, settings)`` picks the proxy for the URL's scheme unless the
host matches ``no_proxy``, and parses it into a ``ProxyURL``.

``no_proxy`` is a comma-separated list. Each entry is one of:

* ``*``: every host bypasses the proxy;
* a domain, ``example.com`` or ``.example.com`` (or ``*.example.com``): the
  domain itself and all its subdomains;
* an IP address (``10.1.2.3``, ``::1``, ``[::1]``) or a CIDR network
  (``10.0.0.0/8``): hosts written as IP literals inside it (names are not
  resolved);
* any of the above followed by ``:port``: only that port.

Unparseable entries are ignored. Only ``http://`` proxies are supported;
HTTPS origins are reached through them with CONNECT. Credentials in a proxy
URL are kept out of ``repr`` and messages and sent as Basic
``Proxy-Authorization``; ``redact_proxy_url`` is how a proxy URL is shown.

An upstream account may have its own proxy (``own_proxy_url``): it is used
for all of that account's requests, ``no_proxy`` notwithstanding.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from llm_gateway.upstream.errors import ProxyError

__all__ = [
    "ProxySettings",
    "ProxyURL",
    "bracket",
    "bypasses_proxy",
    "own_proxy_url",
    "parse_proxy_url",
    "proxy_for",
    "redact_proxy_url",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ProxyURL:
    """A parsed ``http://[user:pass@]host:port`` proxy."""

    host: str
    port: int
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """``host:port``, IPv6 hosts bracketed; safe to log."""
        return f"{bracket(self.host)}:{self.port}"

    @property
    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` value, or None without credentials."""
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def __str__(self) -> str:
        return f"http://{self.address}"


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """Proxy URLs for http and https origins, and the hosts that bypass them."""

    http_proxy: str | None = field(default=None, repr=False)
    https_proxy: str | None = field(default=None, repr=False)
    no_proxy: str | None = None

    @classmethod
    def from_sources(
        cls, config_env: Mapping[str, str | None], environ: Mapping[str, str]
    ) -> ProxySettings:
        """Configuration values win; otherwise the environment.

        A key present in ``config_env`` with a non-None value decides, even
        when empty (an empty value means "no proxy"). Otherwise the
        lowercase environment variable is used, then the uppercase one.
        """

        def pick(key: str) -> str | None:
            configured = config_env.get(key)
            if configured is not None:
                return configured.strip() or None
            return environ.get(key) or environ.get(key.upper()) or None

        return cls(pick("http_proxy"), pick("https_proxy"), pick("no_proxy"))


def parse_proxy_url(text: str) -> ProxyURL:
    """Parse a proxy URL; a bare ``host:port`` means ``http://host:port``.

    Raises ValueError with a message that never contains the credentials.
    """
    raw = text.strip()
    if "://" not in raw:
        raw = "http://" + raw
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme != "http":
        raise ValueError(f"unsupported proxy scheme {scheme!r}: only http:// proxies are supported")
    host = parts.hostname
    if not host:
        raise ValueError("proxy URL has no host")
    try:
        port = parts.port or _DEFAULT_PORTS["http"]
    except ValueError:
        raise ValueError(f"proxy URL for host {host} has an invalid port") from None
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return ProxyURL(host, port, username, password)


def proxy_for(url: str, settings: ProxySettings) -> ProxyURL | None:
    """The proxy to use for ``url``, or None to connect directly.

    Raises ProxyError when the configured proxy URL cannot be used.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname
    if host is None or scheme not in _DEFAULT_PORTS:
        return None
    raw = settings.https_proxy if scheme == "https" else settings.http_proxy
    if not raw:
        return None
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        return None
    if bypasses_proxy(host, port, settings.no_proxy):
        return None
    try:
        return parse_proxy_url(raw)
    except ValueError as exc:
        raise ProxyError(f"{scheme}_proxy setting is invalid: {exc}") from None


def own_proxy_url(text: str) -> ProxyURL:
    """An upstream account's own proxy; ProxyError when it cannot be used."""
    try:
        return parse_proxy_url(text)
    except ValueError as exc:
        raise ProxyError(f"the account's proxy setting is invalid: {exc}") from None


def redact_proxy_url(text: str) -> str:
    """``http://user:pass@host:3128`` -> ``http://***@host:3128``: safe to show and log."""
    text = text.strip()
    scheme, sep, rest = text.partition("://")
    prefix, rest = (f"{scheme}{sep}", rest) if sep else ("", text)
    if "@" in rest:  # everything up to the last "@": a password may hold "/" or "@"
        rest = "***@" + rest.rpartition("@")[2]
    return prefix + rest


@dataclass(frozen=True, slots=True)
class _Rule:
    """One ``no_proxy`` entry: everything, a domain, or an IP network; maybe one port."""

    everything: bool = False
    domain: str | None = None
    network: _IPNetwork | None = None
    port: int | None = None

    def matches(
        self, host: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None, port: int
    ) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.everything:
            return True
        if self.network is not None:
            return ip is not None and ip.version == self.network.version and ip in self.network
        if self.domain is not None:
            return host == self.domain or host.endswith("." + self.domain)
        return False


def bypasses_proxy(host: str, port: int, no_proxy: str | None) -> bool:
    """True when ``host:port`` matches an entry of ``no_proxy``."""
    if not no_proxy:
        return False
    name = host.strip("[]").rstrip(".").lower()
    ip = _ip_or_none(name)
    return any(rule.matches(name, ip, port) for rule in _parse_no_proxy(no_proxy))


@functools.lru_cache(maxsize=32)
def _parse_no_proxy(no_proxy: str) -> tuple[_Rule, ...]:
    rules: list[_Rule] = []
    for entry in no_proxy.split(","):
        rule = _parse_entry(entry.strip().lower())
        if rule is not None:
            rules.append(rule)
    return tuple(rules)


def _parse_entry(entry: str) -> _Rule | None:
    if not entry:
        return None
    if entry == "*":
        return _Rule(everything=True)
    host, port = _split_port(entry)
    if port == -1:
        return None
    if "/" in host:
        try:
            return _Rule(network=ipaddress.ip_network(host, strict=False), port=port)
        except ValueError:
            return None
    ip = _ip_or_none(host)
    if ip is not None:
        return _Rule(network=ipaddress.ip_network(ip), port=port)
    domain = host.removeprefix("*").lstrip(".").rstrip(".")
    if not domain or ":" in domain:
        return None
    return _Rule(domain=domain, port=port)


def _split_port(entry: str) -> tuple[str, int | None]:
    """Split ``host:port``; a port of -1 marks an unusable entry."""
    if entry.startswith("["):
        close = entry.find("]")
        if close == -1:
            return entry, -1
        host, rest = entry[1:close], entry[close + 1 :]
        if not rest:
            return host, None
        return host, _port(rest[1:]) if rest.startswith(":") else -1
    if entry.count(":") == 1:
        host, _, port_text = entry.partition(":")
        return host, _port(port_text)
    return entry, None


def _port(text: str) -> int:
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else -1


def _ip_or_none(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def bracket(host: str) -> str:
    """``host`` as it goes before ``:port``: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host else host
